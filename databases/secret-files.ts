/**
 * Renders the templates of secret files (see `SecretFile` in `engine.ts`).
 *
 * A template names secrets, never holds them. Digests, not plain values wherever the engine
 * allows, so a leaked file does not leak a password:
 *
 * - `{{ sha256 "app-password" }}`: the hex SHA-256 of the secret (ClickHouse `password_sha256_hex`).
 * - `{{ each-sha256 "app-password" "#" }}`: the SHA-256 of every password the engine accepts for
 *   the secret, each after the prefix, separated by spaces: the current one and, while a rotation
 *   keeps it, the previous one (Redis ACL `#<hash>` passwords: a user may hold two).
 * - `{{ bcrypt "app-password" }}`: its bcrypt hash (Elasticsearch file realm).
 * - `{{ scram-sha-256 "app-password" }}`: its PostgreSQL SCRAM verifier (RFC 5802/7677, what
 *   `pg_authid` stores).
 * - `{{ basic-auth "allixios_monitor" "monitor-password" }}`: an HTTP `Authorization: Basic`
 *   header for the user, for a health check that reads it from a file (`curl -H @file`) instead
 *   of putting a password on a command line.
 * - `{{ value "superuser-password" }}`: the secret itself, for what needs it: an image's `*_FILE`
 *   variable (`POSTGRES_PASSWORD_FILE`), a health check's password file.
 * - `{{ json "app-password" }}`: the secret as a JSON string literal, for a file only the
 *   bootstrap reads (MongoDB sets passwords from their plain value).
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import bcrypt from 'bcryptjs';

const PLACEHOLDER = /\{\{\s*(sha256|each-sha256|bcrypt|scram-sha-256|basic-auth|value|json)\s+"([A-Za-z0-9_-]+)"(?:\s+"([^"]*)")?\s*\}\}/g;
/** PostgreSQL's default (scram_iterations). */
const SCRAM_ITERATIONS = 4096;
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** The secret keys a template refers to, so a typo is caught before anything is deployed. */
export function templateSecretKeys(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((match) => (match[1] === 'basic-auth' ? match[3]! : match[2]!)))];
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

/** SCRAM works on SASLprep'ed passwords; rather than reimplement SASLprep, only ASCII is accepted. */
function requireAscii(password: string, key: string): void {
  if (![...password].every((char) => char.charCodeAt(0) < 0x80)) {
    throw new Error(`the password of ${key} contains a non-ASCII character: SCRAM verifiers are made for ASCII passwords only; choose another one`);
  }
}

/** The keys of SCRAM-SHA-256 (RFC 5802, RFC 7677) for a password, a salt and an iteration count. */
export function scramSha256Keys(password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer; clientKey: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return { storedKey, serverKey, clientKey };
}

/**
 * Whether `password` is the one behind stored SCRAM-SHA-256 credentials (salt and StoredKey in
 * base64, as PostgreSQL and MongoDB keep them).
 */
export function scramSha256Matches(password: string, stored: { salt: string; iterations: number; storedKey: string }, key = 'the password'): boolean {
  requireAscii(password, key);
  return scramSha256Keys(password, Buffer.from(stored.salt, 'base64'), stored.iterations).storedKey.toString('base64') === stored.storedKey;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password`:
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64 parts. The salt is derived
 * from the secret, for the same reason as the bcrypt salt above; the generated passwords are 32
 * random characters, which no dictionary holds. PostgreSQL normalises non-ASCII passwords with
 * SASLprep before hashing; rather than reimplement it, such passwords are refused.
 */
export function scramSha256Verifier(password: string, key: string): string {
  requireAscii(password, key);
  const salt = createHmac('sha256', `allixios-scram-salt:${key}`).update(password).digest().subarray(0, 16);
  const { storedKey, serverKey } = scramSha256Keys(password, salt, SCRAM_ITERATIONS);
  return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * Replaces every placeholder of `template` by the digest of the named secret. `previous` holds
 * the previous passwords a rotation keeps, by key (`each-sha256` lists them after the current).
 */
export function renderSecretFile(template: string, secrets: Readonly<Record<string, string>>, source = 'template', previous: Readonly<Record<string, string>> = {}): string {
  return template.replace(PLACEHOLDER, (match, fn: string, first: string, second: string | undefined) => {
    const key = fn === 'basic-auth' ? second : first;
    const value = key === undefined ? undefined : secrets[key];
    if (key === undefined || value === undefined) {
      throw new Error(`${source}: the placeholder ${match} names no secret of this engine (known: ${Object.keys(secrets).sort().join(', ')})`);
    }
    const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
    switch (fn) {
      case 'sha256':
        return sha256(value);
      case 'each-sha256':
        return [value, ...(previous[key] !== undefined ? [previous[key]] : [])].map((password) => `${second ?? ''}${sha256(password)}`).join(' ');
      case 'value':
        return value;
      case 'json':
        return JSON.stringify(value);
      case 'basic-auth':
        return `Authorization: Basic ${Buffer.from(`${first}:${value}`).toString('base64')}`;
      case 'scram-sha-256':
        return scramSha256Verifier(value, key);
      default:
        return bcrypt.hashSync(value, deterministicSalt(key, value));
    }
  });
}
