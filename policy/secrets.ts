/**
 * What looks like a secret: the name heuristics for environment variables and ConfigMap keys, and
 * the settings of a config file that give a credential a literal value. Names and lines only: a
 * policy cannot tell a Pulumi secret input from a plain one (the SDK unwraps secrets before calling
 * a validator). The README of this folder lists the rules' limits.
 */
const SECRET_WORDS = new Set(['password', 'passwd', 'pass', 'secret', 'secrets', 'token', 'key', 'apikey', 'credential', 'credentials', 'privatekey']);
const SECRET_LAST_WORDS = new Set(['password', 'passwd', 'pass', 'secret', 'token', 'key', 'apikey', 'credential', 'credentials']);
const CREDENTIAL_SETTINGS = new Set(['password', 'passwd', 'pass', 'secret', 'token', 'requirepass', 'masterauth']);
const CREDENTIAL_SETTING_PAIRS = new Set(['api key', 'private key', 'secret key', 'access key']);

/** The words of a name: `MONGO_INITDB_ROOT_PASSWORD`, `tls.key`, `dbPassword` -> lower-case words. */
function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word.length > 0);
}

/** Run-together names such as `PGPASSWORD` or `authtoken` end in one of these. */
const SECRET_SUFFIXES = ['password', 'passwd', 'secret', 'token'];

function isSecretWord(word: string, exact: ReadonlySet<string>): boolean {
  return exact.has(word) || SECRET_SUFFIXES.some((suffix) => word.endsWith(suffix));
}

/**
 * A ConfigMap key (a file name) looks like a secret when any of its words is password, passwd,
 * pass, secret(s), token, key, apikey, credential(s) or privatekey, or ends in password, passwd,
 * secret or token: `db-password`, `tls.key`, `api-token.json`, `pgpassword`. Not `keyspace.conf`
 * or `tokenizer.json`: whole words only.
 */
export function looksLikeSecretName(name: string): boolean {
  return words(name).some((word) => isSecretWord(word, SECRET_WORDS));
}

/**
 * An environment variable holds a secret when the last word of its name is password, passwd, pass,
 * secret, token, key, apikey or credential(s), or ends in password, passwd, secret or token:
 * `POSTGRES_PASSWORD`, `PGPASSWORD`, `API_KEY`, `dbToken`. Not `POSTGRES_PASSWORD_FILE` (the
 * official images read the secret from the file it names), `PASSWORD_ENCRYPTION` or `TOKEN_TTL`:
 * settings about a secret, not the secret.
 */
/**
 * A value that names a key or certificate file (at least one directory, then `<name>.key`, `.pem`
 * or `.crt`): Elasticsearch's `xpack.security.http.ssl.key` is set to where the key lies, not to
 * the key. A generated password does not look like this; a PEM body (`-----BEGIN`), a bare word
 * or a path without a key file's extension still counts as a value.
 */
export function namesKeyFile(value: string): boolean {
  return /^(?:\/|\.{1,2}\/)?(?:[\w-]+\/)+[\w.-]+\.(?:key|pem|crt)$/.test(value);
}

export function looksLikeSecretVariable(name: string): boolean {
  return isSecretWord(words(name).at(-1) ?? '', SECRET_LAST_WORDS);
}

/** A config-file setting holds a credential when its name ends in password, token, requirepass, api_key, ... */
function isCredentialSetting(name: string): boolean {
  const settingWords = words(name);
  return isSecretWord(settingWords.at(-1) ?? '', CREDENTIAL_SETTINGS) || CREDENTIAL_SETTING_PAIRS.has(settingWords.slice(-2).join(' '));
}

const COMMENT = /^\s*(#|\/\/|--|;|<!--|\/\*|\*)/;
// `name = value` (conf, ini, shell), `name: value` (YAML, which wants the space after the colon;
// psql's `PASSWORD :'variable'` is a reference, not a YAML key) or `"name": value` (JSON).
const ASSIGNMENT = /^\s*(?:export\s+)?["']?([A-Za-z_][\w.-]*)["']?(?:\s*=\s*|:\s+)(.*?)\s*[;,]?\s*$/;
const REDIS_DIRECTIVE = /^\s*(requirepass|masterauth)\s+(.+?)\s*$/i;
const XML_ELEMENT = /<([A-Za-z_][\w.-]*)>([^<]*)<\/\1>/g;
const SQL_PASSWORD = /\bPASSWORD\s+'([^']*)'/gi;
export const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/** A value given literally, not a reference (`$VAR`, `${VAR}`) and not empty. */
function isLiteral(raw: string): boolean {
  const value = raw
    .trim()
    .replace(/^(['"])(.*)\1$/, '$2')
    .trim();
  return value !== '' && value !== 'null' && value !== '~' && !value.startsWith('$');
}

/** The settings in a config file that give a credential a literal value, with 1-based line numbers. */
export function literalCredentials(content: string): { line: number; setting: string }[] {
  const found: { line: number; setting: string }[] = [];
  content.split('\n').forEach((text, index) => {
    if (COMMENT.test(text)) return;
    const redis = REDIS_DIRECTIVE.exec(text);
    if (redis && isLiteral(redis[2]!)) {
      found.push({ line: index + 1, setting: redis[1]! });
      return;
    }
    const assignment = ASSIGNMENT.exec(text);
    if (assignment && isCredentialSetting(assignment[1]!) && isLiteral(assignment[2]!)) {
      found.push({ line: index + 1, setting: assignment[1]! });
      return;
    }
    for (const element of text.matchAll(XML_ELEMENT)) {
      if (isCredentialSetting(element[1]!) && isLiteral(element[2]!)) found.push({ line: index + 1, setting: element[1]! });
    }
    for (const statement of text.matchAll(SQL_PASSWORD)) {
      if (isLiteral(statement[1]!)) found.push({ line: index + 1, setting: 'PASSWORD' });
    }
  });
  return found;
}
