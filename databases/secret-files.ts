/**
 * Renders the templates of secret files (see `SecretFile` in `engine.ts`).
 *
 * A template names secrets, never holds them: `{{ sha256 "app-password" }}` becomes the hex
 * SHA-256 of the secret (Redis ACL `#<hash>` form), `{{ bcrypt "app-password" }}` its bcrypt hash
 * (Elasticsearch file realm). Digests, not plain values, so a leaked file does not leak a password.
 */
import { createHash, createHmac } from 'node:crypto';
import bcrypt from 'bcryptjs';

const PLACEHOLDER = /\{\{\s*(sha256|bcrypt)\s+"([a-z0-9-]+)"\s*\}\}/g;
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

/** Replaces every placeholder of `template` by the digest of the named secret. */
export function renderSecretFile(template: string, secrets: Readonly<Record<string, string>>, source = 'template'): string {
  return template.replace(PLACEHOLDER, (_match, fn: string, key: string) => {
    const value = secrets[key];
    if (value === undefined) {
      throw new Error(`${source}: the placeholder {{ ${fn} "${key}" }} names no secret of this engine (known: ${Object.keys(secrets).sort().join(', ')})`);
    }
    return fn === 'sha256'
      ? createHash('sha256').update(value).digest('hex')
      : bcrypt.hashSync(value, deterministicSalt(key, value));
  });
}
