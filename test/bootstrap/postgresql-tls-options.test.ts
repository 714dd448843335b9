/**
 * The bootstrap's PostgreSQL URLs attacked without a server: node-postgres reads every query
 * parameter of the URL (pg-connection-string; the last of a repeated one wins), so a URL can turn
 * the verification of the server off behind the stack's `sslmode=verify-full`. Each attack is shown
 * on the driver's own parse first, then refused by the adapter before it connects. The real server
 * is test/engines/postgresql-tls.test.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PostgresAdapter, postgresTlsCheck } from '../../bootstrap/adapters/postgresql-adapter.ts';

const directory = mkdtempSync(join(tmpdir(), 'allixios-postgresql-tls-options-'));
const caFile = join(directory, 'ca.crt');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n');
/** The stack's URL: verify-full against the CA bundle. */
const STACK_URL = `postgresql://allixios_owner:secret@postgresql.allixios.svc:5432/allixios?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`;
const OPTIONS = { readyTimeoutMs: 1000, lockTimeoutMs: 1000 };

/** The TLS options node-postgres's connection would use for the URL (its `Connection` keeps them as `ssl`): off, or what they verify. */
function driverTls(url: string): false | { rejectUnauthorized?: boolean; checksHostName: boolean } {
  const { ssl } = new pg.Client({ connectionString: url }).connection as unknown as { ssl: false | true | { rejectUnauthorized?: boolean; checkServerIdentity?: unknown } };
  if (!ssl) return false;
  if (ssl === true) return { checksHostName: true };
  return { ...(ssl.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}), checksHostName: ssl.checkServerIdentity === undefined };
}

describe("the bootstrap's checks of a PostgreSQL URL", () => {
  it("accepts the stack's verify-full URL, a plain one and one trusting Node's built-in CAs", () => {
    expect(driverTls(STACK_URL)).toEqual({ checksHostName: true });
    expect(() => postgresTlsCheck(STACK_URL)).not.toThrow();
    expect(() => postgresTlsCheck('postgresql://u:p@localhost:5432/allixios')).not.toThrow();
    expect(() => postgresTlsCheck('postgresql://u:p@db.example.com:5432/allixios?sslmode=verify-full')).not.toThrow();
  });

  it('refuses a URL that turns the verification of the chain off', () => {
    // Given the stack's URL with a second sslmode or ssl=no-verify, which the driver follows
    for (const url of [`${STACK_URL}&sslmode=no-verify`, 'postgresql://u:p@postgresql.allixios.svc:5432/allixios?ssl=no-verify']) {
      expect(driverTls(url), url).toMatchObject({ rejectUnauthorized: false });
      // Then the bootstrap refuses it
      expect(() => postgresTlsCheck(url), url).toThrow(/does not verify the server's certificate/);
    }
  });

  it('refuses a URL that turns host name verification off', () => {
    // libpq's meaning of sslmode, which pg follows with uselibpqcompat (and by default in its next major version)
    for (const url of [`${STACK_URL}&uselibpqcompat=true&sslmode=verify-ca`, `${STACK_URL}&uselibpqcompat=true&sslmode=require`]) {
      expect(driverTls(url), url).toEqual({ checksHostName: false });
      expect(() => postgresTlsCheck(url), url).toThrow(/does not verify the server's certificate/);
    }
    for (const mode of ['require', 'prefer', 'allow', 'verify-ca']) {
      expect(() => postgresTlsCheck(`postgresql://u:p@localhost:5432/allixios?sslmode=${mode}`), mode).toThrow(`sslmode=${mode}`);
    }
  });

  it('refuses a URL that names a CA bundle but connects in clear text', () => {
    const url = `${STACK_URL}&sslmode=disable`;
    expect(driverTls(url)).toBe(false);
    expect(() => postgresTlsCheck(url)).toThrow(/connects in clear text/);
  });

  it('fails with the engine and the path when the CA bundle cannot be read, rather than connecting unverified', () => {
    // sslrootcert=system is libpq's "the system's CAs"; pg reads a file of that name
    for (const file of ['/nowhere/ca.crt', 'system']) {
      expect(() => postgresTlsCheck(`postgresql://u:p@localhost:5432/allixios?sslmode=verify-full&sslrootcert=${encodeURIComponent(file)}`), file).toThrow(
        `the CA bundle ${file} cannot be read`,
      );
    }
  });

  it('refuses such a URL before connecting, for the admin URL and the application URL it checks', async () => {
    const url = `${STACK_URL}&sslmode=no-verify`;
    await expect(new PostgresAdapter(url, OPTIONS).connect()).rejects.toThrow(/does not verify the server's certificate/);
    await expect(new PostgresAdapter(STACK_URL, OPTIONS).verifyLogin(url)).rejects.toThrow(/does not verify the server's certificate/);
  });
});
