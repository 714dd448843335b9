/**
 * Redis over TLS, proven on a real redis-server (7.0, built with TLS) started with what a TLS
 * stack renders: redis.conf, the rendered users.acl, the engine's arguments (`--port 0`,
 * `--tls-port`, the certificate's paths, `tls-auth-clients no`, `tls-replication yes`, TLS 1.2 and
 * 1.3) and a certificate signed by a throwaway CA (openssl) for the names `redis` and `localhost`,
 * as cert-manager would issue one.
 *
 * Only what cannot be the same outside a container is mapped: the port, the data directory, the
 * ACL file's path, and the container paths of the TLS directory (to the test's certificates). The
 * health check and the renewal command run as the engine describes them, through `sh`, with a
 * `redis-cli` first on PATH that adds `-p <test port>`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisClientTarget } from '../../bootstrap/adapters/redis-adapter.ts';
import { startEmbeddedRedis, type EmbeddedRedisServer } from '../../bootstrap/embedded/redis.ts';
import { runBootstrap } from '../../bootstrap/runner.ts';
import { connectionUrl } from '../../databases/connection.ts';
import { readEngineFile, TLS_FILES } from '../../databases/engine.ts';
import { redis, TLS_DIRECTORY, tlsArgs, USERS_ACL_VARIABLE } from '../../databases/redis/index.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';
import { hasOpenssl, issueCa, issueServerCertificate } from '../support/certificates.ts';
import { describeWithDefaults, freePort } from '../support/engines.ts';
import { connectOnce } from '../support/redis.ts';

/** The engine as a TLS stack renders it. */
const spec = describeWithDefaults(redis, 'ephemeral', { tls: true });

let workDir: string;
let certificates: string;
let port: number;
let server: EmbeddedRedisServer | undefined;
const clients: Redis[] = [];

/**
 * The engine's arguments after redis.conf, mapped: the embedded server sets its own data
 * directory, the TLS port is the test's, and the TLS directory is the test's certificates.
 */
function mappedArgs(): string[] {
  const [program, config, ...rest] = spec.args ?? [];
  expect([program, config]).toEqual(['redis-server', '/etc/redis/redis.conf']);
  const mapped: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const argument = rest[i]!;
    if (argument === '--dir') {
      i++;
      continue;
    }
    if (rest[i - 1] === '--tls-port') mapped.push(String(port));
    else mapped.push(argument.replace(`${TLS_DIRECTORY}/`, `${certificates}/`));
  }
  return mapped;
}

/** The stack's URL for a connection, in its TLS form, with the test's CA file (or another). */
function tlsUrl(connection: typeof spec.adminConnection, password: string, options: { host?: string; caFile?: string } = {}): string {
  return connectionUrl(connection, password, options.host ?? 'localhost', port, { caFile: options.caFile ?? join(certificates, TLS_FILES.ca) });
}

/** A client for a URL in TLS form, configured as the bootstrap configures its own (redisClientTarget). */
async function connectTls(url: string): Promise<Redis> {
  const target = redisClientTarget(url);
  return connectOnce({ ...parse(target.url), ...(target.tls ? { tls: target.tls } : {}) }, clients);
}

function parse(url: string): { host: string; port: number; username: string; password: string; db: number } {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port),
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    db: Number(parsed.pathname.slice(1) || 0),
  };
}

function tlsSocketOf(client: Redis): TLSSocket {
  const stream = (client as unknown as { stream: unknown }).stream;
  if (!(stream instanceof TLSSocket)) throw new Error('the client is not connected over TLS');
  return stream;
}

const password = (user: string) => server!.passwords[user]!;

/** The engine's certificate reload command on a TLS stack. */
function reloadCommand(): string[] {
  const reload: { command: string[] } | undefined = spec.tls?.reload;
  if (!reload) throw new Error('redis: the TLS stack renders no certificate reload command');
  return reload.command;
}

/**
 * Runs one of the engine's shell commands (health check, renewal) as the container would, with
 * the TLS directory mapped to the test's certificates and a redis-cli that adds the test's port.
 */
function runEngineCommand(command: string[], env: Record<string, string>) {
  const realCli = spawnSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' }).stdout.trim();
  if (!realCli) throw new Error('redis-cli is not on PATH: install redis-tools (a dependency of redis-server)');
  const binDir = join(workDir, 'bin');
  mkdirSync(binDir, { recursive: true });
  writeFileSync(join(binDir, 'redis-cli'), `#!/bin/sh\nexec '${realCli}' -p ${port} "$@"\n`, { mode: 0o755 });
  const [program, ...args] = command.map((part) => part.replaceAll(`${TLS_DIRECTORY}/`, `${certificates}/`));
  return spawnSync(program!, args, { encoding: 'utf8', env: { PATH: `${binDir}:${process.env.PATH}`, ...env } });
}

/** A secret file of the engine rendered with the server's passwords (or others), as the targets mount it. */
function secretFile(source: string, secrets: Record<string, string>): string {
  const path = join(workDir, source.replaceAll('/', '-'));
  writeFileSync(path, renderSecretFile(readEngineFile(redis, source), secrets, source), { mode: 0o600 });
  return path;
}

const serverSecrets = () => ({
  'admin-password': password('allixios_admin'),
  'app-password': password('allixios_app'),
  'monitor-password': password('allixios_monitor'),
  'replication-password': password('allixios_replication'),
  'sentinel-password': password('allixios_sentinel'),
  'sentinel-peer-password': password('allixios_sentinel_peer'),
  'backup-password': password('allixios_backup'),
});

beforeAll(async () => {
  if (!hasOpenssl) return;
  workDir = await mkdtemp(join(tmpdir(), 'allixios-redis-tls-'));
  certificates = join(workDir, 'tls');
  mkdirSync(certificates);
  issueCa(certificates);
  issueServerCertificate(certificates, ['redis', 'localhost']);
  port = await freePort();
  server = await startEmbeddedRedis(undefined, { args: mappedArgs(), port });
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
  if (server) await server.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe.skipIf(!hasOpenssl)('Redis with the TLS settings a stack renders (needs /usr/bin/openssl)', () => {
  it('serves TLS only, TLS 1.2 or 1.3, from the rendered certificate paths', async () => {
    // Given the engine's TLS arguments, as the stack renders them
    expect(spec.args).toEqual(expect.arrayContaining(tlsArgs()));
    // When the admin connects over the stack's rediss:// URL
    const admin = await connectTls(tlsUrl(spec.adminConnection, password('allixios_admin')));
    // Then the server has no plaintext port, and serves the mounted certificate over TLS 1.2+
    const config = async (name: string) => ((await admin.config('GET', name)) as string[])[1];
    expect(await config('port')).toBe('0');
    expect(await config('tls-port')).toBe(String(port));
    expect(await config('tls-cert-file')).toBe(join(certificates, TLS_FILES.certificate));
    expect(await config('tls-auth-clients')).toBe('no');
    expect(await config('tls-replication')).toBe('yes');
    expect(await config('tls-protocols')).toBe('TLSv1.2 TLSv1.3');
    expect(['TLSv1.2', 'TLSv1.3']).toContain(tlsSocketOf(admin).getProtocol());
  });

  it('runs the real bootstrap over the rediss:// URLs with the CA, and the application connects over TLS', async () => {
    // Given drift the bootstrap repairs, so the run must really talk to the server
    const admin = await connectTls(tlsUrl(spec.adminConnection, password('allixios_admin')));
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const env = {
      REDIS_URL: tlsUrl(spec.adminConnection, password('allixios_admin')),
      REDIS_URL_APP: tlsUrl(spec.appConnection, password('allixios_app')),
      [USERS_ACL_VARIABLE]: server!.usersAcl,
    };
    expect(env.REDIS_URL).toMatch(/^rediss:\/\/allixios_admin:.*@localhost:\d+\/0\?tlsCAFile=/);
    // When the bootstrap applies through them
    const report = await runBootstrap({ mode: 'apply', only: ['redis'], env, readyTimeoutMs: 10_000, lockTimeoutMs: 10_000 });
    // Then it succeeded, repaired the drift, and checked the application's login
    expect(report.engines[0]!.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed.map(({ change }) => change.subject)).toEqual([expect.stringContaining('maxmemory-policy')]);
    expect(report.engines[0]!.verifiedLogin).toBeDefined();
    expect(await admin.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'volatile-ttl']);
    // And the application's URL works over TLS, within its key prefixes
    const app = await connectTls(env.REDIS_URL_APP);
    expect(['TLSv1.2', 'TLSv1.3']).toContain(tlsSocketOf(app).getProtocol());
    await app.set('session:tls-test', 'yes', 'EX', 60);
    expect(await app.get('session:tls-test')).toBe('yes');
    expect(await app.acl('WHOAMI')).toBe('allixios_app');
  }, 60_000);

  it('refuses a plaintext connection', async () => {
    // A client that does not speak TLS gets no reply to its AUTH: the server drops the connection.
    await expect(connectOnce({ host: '127.0.0.1', port, username: 'allixios_admin', password: password('allixios_admin') }, clients)).rejects.toThrow(
      /Connection is closed|ECONNRESET|socket hang up/,
    );
    // And redis-cli without --tls (the plaintext health check) fails too
    const plain = runEngineCommand(describeWithDefaults(redis, 'ephemeral').healthCheck.command, {
      REDIS_MONITOR_PASSWORD_FILE: secretFile('config/monitor-password', serverSecrets()),
    });
    expect(plain.status).not.toBe(0);
  });

  it('is refused by a client that trusts another CA', async () => {
    const otherCa = issueCa(workDir, 'Another CA', 'other-ca.crt');
    await expect(connectTls(tlsUrl(spec.adminConnection, password('allixios_admin'), { caFile: otherCa }))).rejects.toThrow(
      /self[- ]signed certificate|unable to verify|unable to get local issuer/,
    );
    // And the bootstrap refuses at once, naming the reason, rather than waiting for a server it cannot trust
    const report = await runBootstrap({
      mode: 'status',
      only: ['redis'],
      env: { REDIS_URL: tlsUrl(spec.adminConnection, password('allixios_admin'), { caFile: otherCa }) },
      readyTimeoutMs: 30_000,
      lockTimeoutMs: 10_000,
    });
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toMatch(/unable to verify|unable to get local issuer|self[- ]signed/);
  });

  it('is refused by a client that expects another host name than the certificate names', async () => {
    // The certificate names redis and localhost; a client that expects 127.0.0.1 must not accept it, though the CA is right.
    await expect(connectTls(tlsUrl(spec.adminConnection, password('allixios_admin'), { host: '127.0.0.1' }))).rejects.toThrow(
      /IP: 127\.0\.0\.1 is not in the cert's list|does not match certificate's altnames/,
    );
  });

  it("the health check pings over TLS, verifying the server's certificate with the mounted CA", () => {
    const env = { REDIS_MONITOR_PASSWORD_FILE: secretFile('config/monitor-password', serverSecrets()) };
    expect(spec.healthCheck.command.join(' ')).toContain(`--tls --cacert ${TLS_DIRECTORY}/${TLS_FILES.ca}`);
    const check = runEngineCommand(spec.healthCheck.command, env);
    expect(check.status, check.stderr).toBe(0);
    expect(runEngineCommand(spec.healthCheck.liveCommand!, env).status).toBe(0);
  });

  it('serves a renewed certificate to new connections after the reload command, without a restart', async () => {
    // Given an open connection on the first certificate
    const serialOf = (client: Redis) => tlsSocketOf(client).getPeerCertificate().serialNumber;
    const before = await connectTls(tlsUrl(spec.adminConnection, password('allixios_admin')));
    const first = serialOf(before);
    // When the certificate is renewed in place (as the kubelet refreshes cert-manager's Secret)
    issueServerCertificate(certificates, ['redis', 'localhost']);
    // Then Redis keeps serving the loaded one until it is told to reload
    expect(serialOf(await connectTls(tlsUrl(spec.adminConnection, password('allixios_admin'))))).toBe(first);
    // When the engine's reload command runs, as the readiness wrapper runs it (its password from the mounted file)
    const adminPasswordFile = spec.secretFiles.find((file) => file.source === 'config/admin-password');
    expect(spec.env.REDIS_ADMIN_PASSWORD_FILE).toBe(adminPasswordFile?.mountPath);
    const reload = runEngineCommand(reloadCommand(), { REDIS_ADMIN_PASSWORD_FILE: secretFile('config/admin-password', serverSecrets()) });
    expect(reload.status, reload.stdout + reload.stderr).toBe(0);
    // Then a new connection gets the renewed certificate, and the open one kept going
    const after = await connectTls(tlsUrl(spec.adminConnection, password('allixios_admin')));
    expect(serialOf(after)).not.toBe(first);
    expect(await before.ping()).toBe('PONG');
  });

  it('the reload command fails when it cannot log in, so the readiness wrapper tries it again', () => {
    const reload = runEngineCommand(reloadCommand(), {
      REDIS_ADMIN_PASSWORD_FILE: secretFile('config/admin-password', { ...serverSecrets(), 'admin-password': 'not-the-password' }),
    });
    expect(reload.status).not.toBe(0);
  });
});
