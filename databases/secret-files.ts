/**
 * Renders the templates of secret files (see `SecretFile` in `engine.ts`).
 *
 * A template names secrets, never holds them: `{{ sha256 "app-password" }}` becomes the hex
 * SHA-256 of the secret (Redis ACL `#<hash>` form), `{{ bcrypt "app-password" }}` its bcrypt hash
 * (Elasticsearch file realm), `{{ scram-sha-256 "app-password" }}` its PostgreSQL SCRAM verifier
 * (RFC 5802/7677, what `pg_authid` stores). Digests, not plain values, so a leaked file does not
 * leak a password. `{{ value "superuser-password" }}` is the secret itself, for the one thing that
 * needs it: an image's `*_FILE` variable (`POSTGRES_PASSWORD_FILE`), so the password is a file
 * readable by the engine's user instead of an environment variable every process inherits and
 * `docker inspect` shows.
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import bcrypt from 'bcryptjs';

const PLACEHOLDER = /\{\{\s*(sha256|bcrypt|scram-sha-256|value)\s+"([a-z0-9-]+)"\s*\}\}/g;
/** PostgreSQL's default (scram_iterations). */
const SCRAM_ITERATIONS = 4096;
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** The secret keys a template refers to, so a typo is caught before anything is deployed. */
export function templateSecretKeys(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((match) => match[2]!))];
}

/**
 * A bcrypt salt derived from the secret itself: the hash must be the same on every `pulumi up`
 * (a fresh random salt would change the file, and so restart the engine, on every deploy).
 */
function deterministicSalt(key: string, value: string): string {
  const digest = createHmac('sha256', `allixios-bcrypt-salt:${key}`).update(value).digest();
  let salt = '';
  for (let i = 0; i < 22; i++) salt += BCRYPT_ALPHABET[digest[i]! % 64];
  return `$2a$10$${salt}`;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password`:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 parts. The salt is derived
 * from the secret, for the same reason as the bcrypt salt above; the generated passwords are 32
 * random characters, which no dictionary holds. PostgreSQL normalises non-ASCII passwords with
 * SASLprep before hashing; rather than reimplement it, such passwords are refused.
 */
export function scramSha256Verifier(password: string, key: string): string {
  if (!/^[\x00-\x7f]*$/.test(password)) {
    throw new Error(`the password of ${key} contains a non-ASCII character: PostgreSQL verifiers are made for ASCII passwords only; choose another one`);
  }
  const salt = createHmac('sha256', `allixios-scram-salt:${key}`).update(password).digest().subarray(0, 16);
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, SCRAM_ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Replaces every placeholder of `template` by the digest of the named secret. */
export function renderSecretFile(template: string, secrets: Readonly<Record<string, string>>, source = 'template'): string {
  return template.replace(PLACEHOLDER, (_match, fn: string, key: string) => {
    const value = secrets[key];
    if (value === undefined) {
      throw new Error(`${source}: the placeholder {{ ${fn} "${key}" }} names no secret of this engine (known: ${Object.keys(secrets).sort().join(', ')})`);
    }
    if (fn === 'sha256') return createHash('sha256').update(value).digest('hex');
    if (fn === 'value') return value;
    if (fn === 'scram-sha-256') return scramSha256Verifier(value, key);
    return bcrypt.hashSync(value, deterministicSalt(key, value));
  });
}
