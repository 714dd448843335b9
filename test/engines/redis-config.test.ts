/**
 * Redis's configuration and ACL file, checked by a real redis-server started with the project's
 * redis.conf and the users.acl template rendered with test passwords.
 *
 * The server is started from the engine's own args (config file, `--dir`, `--maxmemory`), with
 * only what cannot be the same outside a container overridden: the port, the data directory,
 * the ACL file's path and the bind address. An unknown or misspelled directive in redis.conf
 * stops redis-server, and so fails this file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { connectOnce } from '../support/redis.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEngineFile } from '../../databases/engine.ts';
import { redis } from '../../databases/redis/index.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';
import { describeWithDefaults, freePort, repositoryPathOf as repositoryPathIn } from '../support/engines.ts';

const PASSWORDS: Record<string, string> = {
  'admin-password': 'admin-test-password',
  'app-password': 'app-test-password',
  'monitor-password': 'monitor-test-password',
  'replication-password': 'replication-test-password',
  'sentinel-password': 'sentinel-test-password',
  'sentinel-peer-password': 'sentinel-peer-test-password',
  'backup-password': 'backup-test-password',
};

/** The engine as the dev stack renders it. */
const spec = describeWithDefaults(redis, 'dev');

/** The repository file the engine mounts at `mountPath`. */
function repositoryPathOf(mountPath: string): string {
  return repositoryPathIn(redis, spec, mountPath);
}

/** Directive lines of redis.conf (comments and blank lines dropped): name -> values in order. */
function directives(conf: string): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const line of conf.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [name, ...rest] = trimmed.split(/\s+/);
    result.set(name!, [...(result.get(name!) ?? []), rest.join(' ')]);
  }
  return result;
}

/** Starts redis-server; resolves once it accepts connections, rejects with its output if it exits. */
function startRedis(args: string[]): Promise<{ process: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) resolve({ process: child, output: () => output });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code, signal) => reject(new Error(`redis-server exited (code ${code}, signal ${signal}):\n${output}`)));
  });
}

/** Runs redis-server until it exits; for configurations it must refuse. */
function runRedisToExit(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

let workDir: string;
let dataDir: string;
let aclFile: string;
let configFile: string;
let port: number;
let server: ChildProcess | undefined;
const clients: Redis[] = [];

/**
 * A client that authenticates as `username` (or not at all) and never retries. A refused
 * handshake rejects with the server's reply (WRONGPASS, NOAUTH), not only "Connection is closed".
 */
async function connectAs(username?: string, password?: string, protocol: 2 | 3 = 3): Promise<Redis> {
  // The ready check runs INFO, which allixios_app may not; README.md says to turn it off.
  return connectOnce({ host: '127.0.0.1', port, ...(username ? { username, password } : {}), protocol }, clients);
}

const connectWithSecret = (username: string, secret: string) => connectAs(username, PASSWORDS[secret]);

beforeAll(async () => {
  // A missing redis-server must fail the run, never skip it: CI installs it.
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (version.error) {
    throw new Error(
      `redis-server is not on PATH (${version.error.message}): install redis-server (apt-get install -y redis-server); the Redis configuration cannot be tested without it`,
    );
  }

  workDir = await mkdtemp(join(tmpdir(), 'allixios-redis-config-'));
  dataDir = join(workDir, 'data');
  await mkdir(dataDir);
  port = await freePort();

  // The ACL file exactly as the targets ship it: the template rendered with the engine's secrets.
  const [aclSource] = spec.secretFiles;
  if (!aclSource) throw new Error('redis: the engine ships no ACL file');
  aclFile = join(workDir, 'users.acl');
  await writeFile(aclFile, renderSecretFile(readEngineFile(redis, aclSource.source), PASSWORDS, aclSource.source), { mode: 0o600 });

  const [program, containerConfig, ...rest] = spec.args ?? [];
  if (program !== 'redis-server' || !containerConfig) throw new Error(`redis: unexpected args ${JSON.stringify(spec.args)}`);
  configFile = repositoryPathOf(containerConfig);
  // The container's data path does not exist here: --dir is the one engine argument replaced.
  if (!rest.includes('--dir')) throw new Error(`redis: args pass no --dir: ${JSON.stringify(spec.args)}`);
  const engineArgs = rest.map((argument, i) => (rest[i - 1] === '--dir' ? dataDir : argument));

  const started = await startRedis([configFile, ...engineArgs, '--port', String(port), '--aclfile', aclFile, '--bind', '127.0.0.1', '--daemonize', 'no']);
  server = started.process;
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('redis.conf', () => {
  it('the server runs with the values the project file sets and the maxmemory index.ts computes', async () => {
    // Given the server started with the project's redis.conf
    const admin = await connectWithSecret('allixios_admin', 'admin-password');
    const fromFile = directives(await readFile(configFile, 'utf8'));
    const names = [
      'maxmemory-policy',
      'maxmemory-samples',
      'appendonly',
      'appendfsync',
      'aof-use-rdb-preamble',
      'slowlog-log-slower-than',
      'slowlog-max-len',
      'latency-monitor-threshold',
      'timeout',
      'tcp-keepalive',
      'protected-mode',
      'loglevel',
      'enable-debug-command',
      'enable-module-command',
      'enable-protected-configs',
    ];

    // When the running values are read back
    const running: Record<string, string> = {};
    for (const name of names) {
      const [, value] = (await admin.config('GET', name)) as [string, string];
      running[name] = value;
    }
    const [, save] = (await admin.config('GET', 'save')) as [string, string];
    const [, maxmemory] = (await admin.config('GET', 'maxmemory')) as [string, string];
    const [, aclfile] = (await admin.config('GET', 'aclfile')) as [string, string];

    // Then each is the file's value
    for (const name of names) {
      expect(fromFile.get(name), `redis.conf sets ${name}`).toHaveLength(1);
      expect(running[name], name).toBe(fromFile.get(name)![0]);
    }
    expect(running['maxmemory-policy']).toBe('volatile-ttl');
    expect(save).toBe(fromFile.get('save')!.join(' '));
    // And maxmemory is 45% of the dev memory limit (256Mi), as index.ts passes it: a fork's
    // copy-on-write may double the dataset
    const maxmemoryArg = spec.args![spec.args!.indexOf('--maxmemory') + 1];
    expect(maxmemoryArg).toBe('115mb');
    expect(Number(maxmemory)).toBe(115 * 2 ** 20);
    expect(aclfile).toBe(aclFile);
  });

  it('a misspelled directive in redis.conf keeps redis-server from starting', async () => {
    // Given a copy of the project's redis.conf with one directive misspelled
    const conf = await readFile(configFile, 'utf8');
    expect(conf).toMatch(/^maxmemory-policy /m);
    const misspelled = join(workDir, 'misspelled.conf');
    await writeFile(misspelled, conf.replace(/^maxmemory-policy /m, 'maxmemory-polcy '));

    // When redis-server starts with it
    const run = await runRedisToExit([misspelled, '--port', String(await freePort()), '--dir', dataDir, '--aclfile', aclFile, '--bind', '127.0.0.1']);

    // Then it refuses, pointing at the directive
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('Bad directive or wrong number of arguments');
    expect(run.output).toContain('maxmemory-polcy');
  });
});

describe('users.acl', () => {
  it('the default user cannot run commands nor log in', async () => {
    // Given a connection that has not authenticated (RESP2: no HELLO in the handshake)
    const anonymous = await connectAs(undefined, undefined, 2);
    // When it runs a command, then authentication is required
    await expect(anonymous.get('session:x')).rejects.toThrow(/NOAUTH/);
    await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    // And logging in as the default user fails whatever the password
    await expect(anonymous.auth('default', 'anything')).rejects.toThrow(/WRONGPASS/);
    // And a RESP3 client without credentials is turned away at the handshake
    await expect(connectAs()).rejects.toThrow(/NOAUTH/);
  });

  it('allixios_app reads and writes its own key prefixes', async () => {
    const app = await connectWithSecret('allixios_app', 'app-password');
    for (const key of ['session:x', 'auth:x', 'cache:x', 'ratelimit:x', 'metrics:x']) {
      await app.set(key, `value of ${key}`, 'EX', 60);
      expect(await app.get(key)).toBe(`value of ${key}`);
    }
    // Pub/Sub on its own channels too
    expect(await app.publish('events:article-published', 'x')).toBe(0);
  });

  it('allixios_app is refused keys outside its prefixes and administrative or dangerous commands', async () => {
    const app = await connectWithSecret('allixios_app', 'app-password');
    await expect(app.set('other:x', '1')).rejects.toThrow(/NOPERM/);
    await expect(app.get('sessions:x')).rejects.toThrow(/NOPERM/);
    await expect(app.publish('other-channel', 'x')).rejects.toThrow(/NOPERM/);
    await expect(app.flushall()).rejects.toThrow(/NOPERM/);
    await expect(app.flushdb()).rejects.toThrow(/NOPERM/);
    await expect(app.config('GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
    await expect(app.keys('*')).rejects.toThrow(/NOPERM/);
    await expect(app.call('SHUTDOWN', 'NOSAVE')).rejects.toThrow(/NOPERM/);
    await expect(app.call('FUNCTION', 'FLUSH')).rejects.toThrow(/NOPERM/);
    await expect(app.info()).rejects.toThrow(/NOPERM/);
    // DEBUG is refused twice over: enable-debug-command no refuses it to everyone before the
    // ACL is consulted, so the ACL's own refusal is checked with ACL DRYRUN.
    await expect(app.call('DEBUG', 'OBJECT', 'session:x')).rejects.toThrow(/DEBUG command not allowed/);
    const admin = await connectWithSecret('allixios_admin', 'admin-password');
    expect(await admin.acl('DRYRUN', 'allixios_app', 'DEBUG', 'OBJECT', 'session:x')).toMatch(/no permissions to run the 'debug' command/);
    expect(await admin.acl('DRYRUN', 'allixios_app', 'GET', 'session:x')).toBe('OK');
  });

  it('allixios_monitor can PING and read INFO but not touch a key', async () => {
    const monitor = await connectWithSecret('allixios_monitor', 'monitor-password');
    expect(await monitor.ping()).toBe('PONG');
    expect(await monitor.info('server')).toContain('redis_version:');
    expect(Array.isArray(await monitor.slowlog('GET', 10))).toBe(true);
    await expect(monitor.get('session:x')).rejects.toThrow(/NOPERM/);
    await expect(monitor.set('metrics:x', '1')).rejects.toThrow(/NOPERM/);
    await expect(monitor.config('GET', 'maxmemory')).rejects.toThrow(/NOPERM/);
  });

  it('allixios_admin can run administrative commands such as CONFIG GET', async () => {
    const admin = await connectWithSecret('allixios_admin', 'admin-password');
    expect(await admin.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'volatile-ttl']);
    expect(await admin.acl('WHOAMI')).toBe('allixios_admin');
  });

  it('a wrong password is refused for every user', async () => {
    for (const username of ['allixios_admin', 'allixios_app', 'allixios_monitor']) {
      await expect(connectAs(username, 'not-the-password')).rejects.toThrow(/WRONGPASS/);
    }
  });
});

describe('health check', () => {
  /**
   * The production command runs unchanged; only the `redis-cli` it finds first on PATH is a
   * wrapper adding `-p <test port>`, since the container's port 6379 is not the test's.
   */
  async function runHealthCheck(monitorPassword: string) {
    const passwordFile = join(workDir, 'monitor-password');
    await writeFile(passwordFile, renderSecretFile(readEngineFile(redis, 'config/monitor-password'), { ...PASSWORDS, 'monitor-password': monitorPassword }), { mode: 0o600 });
    const realCli = spawnSync('sh', ['-c', 'command -v redis-cli'], { encoding: 'utf8' }).stdout.trim();
    if (!realCli) throw new Error('redis-cli is not on PATH: install redis-tools (a dependency of redis-server)');
    const binDir = join(workDir, 'bin');
    await mkdir(binDir, { recursive: true });
    await writeFile(join(binDir, 'redis-cli'), `#!/bin/sh\nexec '${realCli}' -p ${port} "$@"\n`);
    await chmod(join(binDir, 'redis-cli'), 0o755);
    const [program, ...args] = spec.healthCheck.command;
    return spawnSync(program!, args, {
      encoding: 'utf8',
      env: { PATH: `${binDir}:${process.env.PATH}`, REDIS_MONITOR_PASSWORD_FILE: passwordFile },
    });
  }

  it('succeeds with the monitor password and keeps it off the command line', async () => {
    const result = await runHealthCheck(PASSWORDS['monitor-password']!);
    expect(result.status, result.stderr).toBe(0);
    expect(spec.healthCheck.command.join(' ')).not.toContain(PASSWORDS['monitor-password']);
  });

  it('reads the password from its secret file at every check, so a rotated password is used without a restart', async () => {
    // Given the engine reads no password from its environment, only the file's path
    expect(Object.values(spec.env).every((value) => typeof value === 'string')).toBe(true);
    expect(spec.env.REDIS_MONITOR_PASSWORD_FILE).toBe(spec.secretFiles.find((file) => file.source === 'config/monitor-password')?.mountPath);
    // When the monitor's password changes on the server and in the file (a rotation), the next check passes
    const admin = await connectWithSecret('allixios_admin', 'admin-password');
    const rotated = 'rotated-monitor-password-0123456789';
    await admin.call('ACL', 'SETUSER', 'allixios_monitor', `>${rotated}`);
    try {
      const result = await runHealthCheck(rotated);
      expect(result.status, result.stderr).toBe(0);
    } finally {
      await admin.call('ACL', 'SETUSER', 'allixios_monitor', `<${rotated}`);
    }
  });

  it('fails when the monitor password is wrong', async () => {
    const result = await runHealthCheck('not-the-password');
    expect(result.status).not.toBe(0);
  });
});

describe('eviction', () => {
  it('under memory pressure, cache entries are evicted and sessions kept', async () => {
    // Given sessions (TTL one day) and a maxmemory just above what is in use
    const admin = await connectWithSecret('allixios_admin', 'admin-password');
    const app = await connectWithSecret('allixios_app', 'app-password');
    const [, originalMaxmemory] = (await admin.config('GET', 'maxmemory')) as [string, string];
    const payload = 'x'.repeat(1024);
    for (let i = 0; i < 50; i++) await app.set(`session:${i}`, payload, 'EX', 86_400);
    const usedMemory = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
    await admin.config('SET', 'maxmemory', String(usedMemory + 2 * 2 ** 20));
    try {
      // When the application writes far more short-lived cache entries than fit
      const pipeline = app.pipeline();
      for (let i = 0; i < 20_000; i++) pipeline.set(`cache:GET:${i}`, payload, 'EX', 300);
      await pipeline.exec();

      // Then Redis evicted cache entries, and every session is still there
      const evicted = Number(/evicted_keys:(\d+)/.exec(await admin.info('stats'))?.[1]);
      expect(evicted).toBeGreaterThan(0);
      const sessions = await app.exists(...Array.from({ length: 50 }, (_, i) => `session:${i}`));
      expect(sessions).toBe(50);
    } finally {
      await admin.config('SET', 'maxmemory', originalMaxmemory);
    }
  });
});

describe('the health checks while Redis loads its data', () => {
  it('counts a server that is loading a large dataset as alive but not ready, so no probe restarts it', async () => {
    // Given a snapshot of about 250 MB, made by a scratch server (DEBUG POPULATE needs the debug
    // command, which the project's file disables)
    const loadDir = join(workDir, 'load');
    await mkdir(loadDir);
    await chmod(loadDir, 0o777);
    const scratchPort = await freePort();
    const scratch = await startRedis([
      '--port',
      String(scratchPort),
      '--bind',
      '127.0.0.1',
      '--dir',
      loadDir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--enable-debug-command',
      'yes',
      '--daemonize',
      'no',
    ]);
    const filler = new Redis({ port: scratchPort, lazyConnect: true, maxRetriesPerRequest: 0 });
    await filler.connect();
    await filler.call('DEBUG', 'POPULATE', '2000000', 'key', '100');
    await filler.save();
    await filler.quit();
    const scratchExited = new Promise((resolve) => scratch.process.once('exit', resolve));
    scratch.process.kill('SIGTERM');
    await scratchExited;

    // When a server started from the project's file (and the engine's ACL) loads it
    const [program, containerConfig] = spec.args ?? [];
    expect(program).toBe('redis-server');
    const loadingPort = await freePort();
    const loading = spawn(
      'redis-server',
      [repositoryPathOf(containerConfig!), '--port', String(loadingPort), '--bind', '127.0.0.1', '--dir', loadDir, '--appendonly', 'no', '--aclfile', aclFile, '--daemonize', 'no'],
      { stdio: 'ignore' },
    );
    const passwordFile = join(workDir, 'monitor-password-loading');
    await writeFile(passwordFile, PASSWORDS['monitor-password']!, { mode: 0o600 });
    const run = (command: string[]) =>
      spawnSync(
        command[0]!,
        command.slice(1).map((part) => part.replace('redis-cli', `redis-cli -p ${loadingPort}`)),
        {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', REDIS_MONITOR_PASSWORD_FILE: passwordFile },
          encoding: 'utf8',
        },
      ).status;
    const seen: Array<{ alive: number | null; ready: number | null }> = [];
    try {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const state = { alive: run(spec.healthCheck.liveCommand!), ready: run(spec.healthCheck.command) };
        seen.push(state);
        if (state.ready === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      const exited = new Promise((resolve) => loading.once('exit', resolve));
      loading.kill('SIGTERM');
      await exited;
    }
    // Then while it loads it is alive and not ready, and once loaded, both
    const whileLoading = seen.filter((state) => state.alive === 0 && state.ready !== 0);
    expect(whileLoading.length, JSON.stringify(seen.slice(0, 5))).toBeGreaterThan(0);
    expect(seen.at(-1)).toEqual({ alive: 0, ready: 0 });
  }, 120_000);
});
