/**
 * Redis's TLS settings without a server: what the engine description gives a TLS stack and a
 * plain one, how the bootstrap's client reads a `rediss://` URL, and that the bootstrap's config
 * comparison leaves the TLS directives alone. The real server is test/engines/redis-tls.test.ts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisClientTarget } from '../../bootstrap/adapters/redis-adapter.ts';
import { parseRedisConf } from '../../bootstrap/adapters/redis-files.ts';
import { CLIENT_CA_PATH, connectionUrl } from '../../databases/connection.ts';
import { readEngineFile } from '../../databases/engine.ts';
import { redis, TLS_DIRECTORY, tlsArgs } from '../../databases/redis/index.ts';
import { describeWithDefaults } from '../support/engines.ts';

describe("Redis's description on a TLS stack and a plain one", () => {
  const plain = describeWithDefaults(redis, 'prod');
  const tls = describeWithDefaults(redis, 'prod', { tls: true });

  it('serves TLS only with TLS, and is unchanged without', () => {
    expect(tls.tls?.directory).toBe(TLS_DIRECTORY);
    expect(tls.args?.slice(-tlsArgs().length)).toEqual(tlsArgs());
    expect(tlsArgs()).toEqual(expect.arrayContaining(['--port', '0', '--tls-port', '6379']));
    // Without TLS: no TLS settings, no TLS arguments, the plaintext health check
    expect(plain.tls).toBeUndefined();
    expect(plain.args?.some((argument) => argument.startsWith('--tls'))).toBe(false);
    expect(plain.healthCheck.command.join(' ')).not.toContain('--tls');
    expect(tls.healthCheck.command.join(' ')).toContain(`--tls --cacert ${TLS_DIRECTORY}/ca.crt -h localhost`);
    expect(tls.healthCheck.liveCommand?.join(' ')).toContain('--tls --cacert');
  });

  it("mounts the admin's password only where the certificate reload needs it", () => {
    expect(plain.secretFiles.map((file) => file.source)).not.toContain('config/admin-password');
    expect(plain.env.REDIS_ADMIN_PASSWORD_FILE).toBeUndefined();
    const file = tls.secretFiles.find((candidate) => candidate.source === 'config/admin-password');
    expect(file?.mountPath).toBe(tls.env.REDIS_ADMIN_PASSWORD_FILE);
    expect(readEngineFile(redis, 'config/admin-password').trim()).toBe('{{ value "admin-password" }}');
    // The reload logs in as allixios_admin (the only user users.acl lets run CONFIG), never with the password on its command line
    const reloadSpec: { command: string[] } | undefined = tls.tls?.reload;
    const reload = reloadSpec?.command.join(' ') ?? '';
    expect(reload).toContain('--user allixios_admin --askpass CONFIG SET tls-cert-file /etc/redis/tls/tls.crt < "$REDIS_ADMIN_PASSWORD_FILE"');
    // Nor in an environment variable (/proc/<pid>/environ): redis-cli reads it from its standard input
    expect(reload).not.toMatch(/REDISCLI_AUTH|\$\(cat/);
    expect(readEngineFile(redis, 'config/users.acl')).toMatch(/^user allixios_admin on .* \+@all$/m);
  });

  it("renders rediss:// URLs naming the stack's CA bundle", () => {
    const url = connectionUrl(tls.appConnection, 'secret', 'redis.allixios.svc', 6379, {});
    expect(url).toBe(`rediss://allixios_app:secret@redis.allixios.svc:6379/0?tlsCAFile=${encodeURIComponent(CLIENT_CA_PATH)}`);
    expect(connectionUrl(tls.adminConnection, 'secret', 'redis', 6379, {})).toMatch(/^rediss:\/\/allixios_admin:secret@redis:6379\/0\?tlsCAFile=/);
  });
});

describe("the bootstrap's client for a Redis URL", () => {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-redis-tls-options-'));
  const caFile = join(directory, 'ca.crt');
  writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n');

  it('reads the CA bundle that a rediss:// URL names, and hands ioredis the URL without it', () => {
    const target = redisClientTarget(`rediss://allixios_admin:p%40ss@localhost:6379/0?tlsCAFile=${encodeURIComponent(caFile)}`);
    expect(target.url).toBe('rediss://allixios_admin:p%40ss@localhost:6379/0');
    expect(target.tls).toEqual({ ca: Buffer.from('-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n') });
  });

  it("trusts Node's built-in CAs for a rediss:// URL without one, and stays plain for redis://", () => {
    expect(redisClientTarget('rediss://u:p@cache.example.com:6380/0')).toEqual({ url: 'rediss://u:p@cache.example.com:6380/0', tls: {} });
    expect(redisClientTarget('redis://u:p@localhost:6379/0')).toEqual({ url: 'redis://u:p@localhost:6379/0' });
  });

  it('refuses a CA file it cannot read, or one named in a plaintext URL, naming the file', () => {
    expect(() => redisClientTarget('rediss://u:p@localhost:6379/0?tlsCAFile=%2Fnowhere%2Fca.crt')).toThrow(
      /cannot read the CA bundle \/nowhere\/ca\.crt that the URL's tlsCAFile names/,
    );
    expect(() => redisClientTarget(`redis://u:p@localhost:6379/0?tlsCAFile=${encodeURIComponent(caFile)}`)).toThrow(
      /names a CA file \(tlsCAFile\) but its scheme is redis, not rediss/,
    );
  });
});

describe("a Redis URL that would replace the bootstrap's TLS options", () => {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-redis-tls-attack-'));
  const caFile = join(directory, 'ca.crt');
  const CA = '-----BEGIN CERTIFICATE-----\nstack\n-----END CERTIFICATE-----\n';
  writeFileSync(caFile, CA);
  const stackUrl = `rediss://allixios_admin:secret@redis.allixios.svc:6379/0?tlsCAFile=${encodeURIComponent(caFile)}`;

  /** The TLS options ioredis would connect with, given the target as the adapter hands it over. */
  function ioredisTls(target: ReturnType<typeof redisClientTarget>): unknown {
    const client = new Redis(target.url, { ...(target.tls ? { tls: target.tls } : {}), lazyConnect: true });
    return client.options.tls;
  }

  it("keeps the stack's CA bundle as ioredis's trust", () => {
    expect(ioredisTls(redisClientTarget(stackUrl))).toEqual({ ca: Buffer.from(CA) });
  });

  it('refuses a URL whose tls parameter would replace the CA bundle the URL names', () => {
    // Given a query parameter ioredis reads as its own tls option, which wins over the adapter's:
    // "false" drops the CA bundle (Node's built-in CAs instead), a profile name trusts another CA
    const withoutCaFile = 'rediss://allixios_admin:secret@redis.allixios.svc:6379/0';
    expect(ioredisTls({ url: `${withoutCaFile}?tls=false`, tls: { ca: Buffer.from(CA) } })).toBe('false');
    expect(ioredisTls({ url: `${withoutCaFile}?tls=RedisCloudFixed`, tls: { ca: Buffer.from(CA) } })).not.toEqual({ ca: Buffer.from(CA) });
    const dropped = redisClientTarget.bind(undefined, `${stackUrl}&tls=false`);
    const profile = redisClientTarget.bind(undefined, `${stackUrl}&tls=RedisCloudFixed`);
    // Then the bootstrap refuses both, rather than connecting with a trust it did not choose
    expect(dropped).toThrow(/sets ioredis's tls option \(tls=false\)/);
    expect(profile).toThrow(/sets ioredis's tls option \(tls=RedisCloudFixed\)/);
    expect(() => redisClientTarget('redis://u:p@localhost:6379/0?tls=RedisCloudFixed')).toThrow(/sets ioredis's tls option/);
  });
});

describe("the bootstrap's config comparison and the TLS directives", () => {
  it('leaves them alone: a redis.conf with them compares exactly what it compares without', () => {
    const conf = readEngineFile(redis, 'config/redis.conf');
    const withTls = `${conf}\n${[
      'port 0',
      'tls-port 6379',
      'tls-cert-file /etc/redis/tls/tls.crt',
      'tls-key-file /etc/redis/tls/tls.key',
      'tls-ca-cert-file /etc/redis/tls/ca.crt',
      'tls-auth-clients no',
      'tls-replication yes',
      'tls-protocols "TLSv1.2 TLSv1.3"',
    ].join('\n')}\n`;
    const names = (text: string) => parseRedisConf(text, 'redis.conf').map((value) => `${value.name}=${value.value}`);
    expect(names(withTls)).toEqual(names(conf));
    // An unclassified tls directive would still stop the bootstrap
    expect(() => parseRedisConf(`${conf}\ntls-session-caching no\n`, 'redis.conf')).toThrow(/does not know whether tls-session-caching can be compared/);
  });
});
