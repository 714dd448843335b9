/**
 * A local Redis Sentinel cluster of real processes for the drill (`bench/drills/redis-sentinel.ts`):
 * three Redis members and three Sentinels, each started by the project's own start script
 * (`databases/redis/config/redis-member.sh`, `config/sentinel.sh`) with what the program renders
 * for prod: the members' arguments of `describe()` (redis.conf, TLS, the replication user's
 * file, min-replicas-to-write), Sentinel's configuration as the companion's ConfigMap holds it,
 * and the ACL and secret files rendered from their templates with fresh passwords. Only what a
 * single machine forces differs: loopback ports instead of 6379/26379 on pod names (`localhost`,
 * which the test certificate carries, in place of each pod's DNS name), temporary directories
 * instead of the mounts, and a loopback bind.
 *
 * As root, every process runs as the OS user `redis` (Debian's package creates it) and the
 * rendered files are root's and read-only to it, as a ConfigMap and a Secret are in a pod: a
 * `CONFIG REWRITE` that Sentinel sends after a failover fails there too. Every process is started
 * in a process group of its own and stopped by its id.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { freePort } from '../../bootstrap/embedded/postgresql.ts';
import { TLS_FILES, engineSpec, readEngineFile, type CompanionSpec, type EngineSpec, type Environment } from '../../databases/engine.ts';
import { redis } from '../../databases/redis/index.ts';
import { MASTER_NAME, REPLICATION_CONF, SENTINEL_CONFIG_DIR, SENTINEL_SECRETS, SENTINEL_TEMPLATE } from '../../databases/redis/sentinel.ts';
import { TLS_DIRECTORY } from '../../databases/redis/index.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';

export interface Process {
  name: string;
  port: number;
  /** `localhost:<port>`: the address it announces and is reached at. */
  address: string;
  directory: string;
  logFile: string;
  process?: ChildProcess;
}

interface Owner {
  uid: number;
  gid: number;
}

function redisOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'redis'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Replaces `from` by `to` in `text`, and says so when `from` is not there (the render changed under the drill). */
function substitute(text: string, from: string, to: string, what: string): string {
  if (!text.includes(from)) throw new Error(`drill: ${what} no longer contains ${JSON.stringify(from)}; update redis-sentinel-cluster.ts`);
  return text.split(from).join(to);
}

export interface ClusterOptions {
  members?: number;
  sentinels?: number;
  /** Whose rendering the processes run (default prod; a test runs an ephemeral stack's one member and one Sentinel). */
  environment?: Environment;
  log: (line: string) => void;
}

export class SentinelCluster {
  readonly members: Process[];
  readonly sentinels: Process[];
  /** The engine as the prod stack describes it. */
  readonly spec: EngineSpec;
  readonly companion: CompanionSpec;
  readonly passwords: Record<string, string>;
  readonly caFile: string;
  private readonly owner = redisOwner();
  private stopped = false;

  private constructor(
    readonly directory: string,
    members: Process[],
    sentinels: Process[],
    private readonly log: (line: string) => void,
    environment: Environment = 'prod',
  ) {
    this.members = members;
    this.sentinels = sentinels;
    const settings = {
      environment,
      version: redis.defaultVersion,
      replicas: members.length,
      storage: redis.sizing[environment].storage,
      resources: redis.sizing[environment].resources,
      options: redis.optionsSchema.parse({ sentinels: sentinels.length }),
      tls: true,
    };
    this.spec = engineSpec(redis, settings);
    this.companion = this.spec.companions!.find((companion) => companion.name === 'sentinel')!;
    this.passwords = Object.fromEntries(redis.secrets.map((secret) => [secret.key, randomBytes(18).toString('base64url')]));
    this.caFile = join(directory, 'tls', TLS_FILES.ca);
  }

  static async create(options: ClusterOptions): Promise<SentinelCluster> {
    const directory = mkdtempSync(join(tmpdir(), 'allixios-redis-sentinel-drill-'));
    chmodSync(directory, 0o755);
    const make = async (name: string): Promise<Process> => {
      const port = await freePort();
      const processDirectory = join(directory, name);
      return { name, port, address: `localhost:${port}`, directory: processDirectory, logFile: join(processDirectory, `${name}.log`) };
    };
    const members: Process[] = [];
    for (let index = 0; index < (options.members ?? 3); index++) members.push(await make(`redis-${index}`));
    const sentinels: Process[] = [];
    for (let index = 0; index < (options.sentinels ?? 3); index++) sentinels.push(await make(`redis-sentinel-${index}`));
    const cluster = new SentinelCluster(directory, members, sentinels, options.log, options.environment);
    cluster.writeFiles();
    return cluster;
  }

  private path(...parts: string[]): string {
    return join(this.directory, ...parts);
  }

  /** The rendered files: root's and read-only to `redis` (as mounts are), the process directories `redis`'s. */
  private writeFiles(): void {
    const module = redis;
    const render = (source: string) => renderSecretFile(readEngineFile(module, source), this.passwords, `databases/redis/${source}`);
    mkdirSync(this.path('tls'), { mode: 0o755 });
    mkdirSync(this.path('secrets'), { mode: 0o750 });
    mkdirSync(this.path('sentinel-secrets'), { mode: 0o750 });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        TLS_FILES.ca,
        '-days',
        '1',
        '-subj',
        '/CN=Allixios drill CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      { cwd: this.path('tls'), stdio: 'pipe' },
    );
    writeFileSync(this.path('tls', 'server.ext'), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
    execFileSync(
      'openssl',
      ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', TLS_FILES.key, '-out', 'server.csr', '-subj', '/CN=localhost'],
      { cwd: this.path('tls'), stdio: 'pipe' },
    );
    execFileSync(
      'openssl',
      ['x509', '-req', '-in', 'server.csr', '-CA', TLS_FILES.ca, '-CAkey', 'ca.key', '-CAcreateserial', '-out', TLS_FILES.certificate, '-days', '1', '-extfile', 'server.ext'],
      { cwd: this.path('tls'), stdio: 'pipe' },
    );
    rmSync(this.path('tls', 'ca.key'));
    const secret = (file: string, content: string) => {
      writeFileSync(file, content, { mode: 0o640 });
      chmodSync(file, 0o640);
      if (this.owner) chownSync(file, 0, this.owner.gid);
    };
    secret(this.path('tls', TLS_FILES.key), readFileSync(this.path('tls', TLS_FILES.key), 'utf8'));
    for (const dir of ['secrets', 'sentinel-secrets']) if (this.owner) chownSync(this.path(dir), 0, this.owner.gid);

    // The members' files, at the paths their arguments name.
    writeFileSync(this.path('redis.conf'), readEngineFile(module, 'config/redis.conf'), { mode: 0o444 });
    writeFileSync(this.path('redis-member.sh'), readEngineFile(module, 'config/redis-member.sh'), { mode: 0o555 });
    writeFileSync(this.path('sentinel.sh'), readEngineFile(module, 'config/sentinel.sh'), { mode: 0o555 });
    secret(this.path('secrets', 'users.acl'), render('config/users.acl'));
    secret(this.path('secrets', 'monitor-password'), render('config/monitor-password'));
    secret(this.path('secrets', 'replication.conf'), render('config/replication.conf'));
    for (const file of this.companion.secretFiles) secret(this.path('sentinel-secrets', file.mountPath.split('/').pop()!), render(file.source));

    for (const member of [...this.members, ...this.sentinels]) {
      mkdirSync(member.directory, { mode: 0o700 });
      if (this.owner) chownSync(member.directory, this.owner.uid, this.owner.gid);
    }
    // Sentinel's template as the ConfigMap holds it, with this Sentinel's paths and port.
    const template = this.companion.configFiles.find((file) => file.mountPath === SENTINEL_TEMPLATE)!.content!;
    for (const sentinel of this.sentinels) {
      let text = substitute(template, `tls-port 26379`, `tls-port ${sentinel.port}`, 'the Sentinel template');
      text = substitute(text, `${TLS_DIRECTORY}/`, `${this.path('tls')}/`, 'the Sentinel template');
      text = substitute(text, `${SENTINEL_SECRETS}/`, `${this.path('sentinel-secrets')}/`, 'the Sentinel template');
      text = substitute(text, `dir ${SENTINEL_CONFIG_DIR}`, `dir ${sentinel.directory}`, 'the Sentinel template');
      text = substitute(text, 'bind * -::*', 'bind 127.0.0.1 -::1', 'the Sentinel template');
      writeFileSync(this.path(`${sentinel.name}.conf`), text, { mode: 0o444 });
    }
  }

  /** The member's arguments as describe() renders them for prod, with this machine's paths and port. */
  memberArgs(member: Process): string[] {
    const ha = this.spec.highAvailability!;
    const args = [...(ha.args ?? [])].map((arg) => {
      if (arg === '/etc/redis/redis.conf') return this.path('redis.conf');
      if (arg === '/data') return member.directory;
      if (arg === REPLICATION_CONF) return this.path('secrets', 'replication.conf');
      if (arg.startsWith(`${TLS_DIRECTORY}/`)) return arg.replace(TLS_DIRECTORY, this.path('tls'));
      return arg;
    });
    const port = args.indexOf('--tls-port');
    if (port < 0 || args[port + 1] !== '6379') throw new Error(`drill: the prod arguments have no --tls-port 6379: ${args.join(' ')}`);
    args[port + 1] = String(member.port);
    // What the mounts decide on Kubernetes: where the ACL file is, and loopback only.
    return [...args, '--aclfile', this.path('secrets', 'users.acl'), '--bind', '127.0.0.1', '-::1'];
  }

  private environment(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      ALLIXIOS_REDIS_MEMBERS: this.members.map((member) => member.address).join(' '),
      ALLIXIOS_SENTINELS: this.sentinels.map((sentinel) => sentinel.address).join(' '),
      ALLIXIOS_MASTER_NAME: MASTER_NAME,
      ALLIXIOS_REDIS_CLI_TLS: `--tls --cacert ${this.caFile}`,
    };
  }

  private spawnLogged(target: Process, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    const fd = openSync(target.logFile, 'a');
    if (this.owner) chownSync(target.logFile, this.owner.uid, this.owner.gid);
    try {
      return spawn(command, args, {
        cwd: target.directory,
        env,
        stdio: ['ignore', fd, fd],
        detached: true,
        ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}),
      });
    } finally {
      closeSync(fd);
    }
  }

  /** Starts a member by its start script (`redis-member.sh start redis-server ...`). */
  startMember(member: Process): void {
    member.process = this.spawnLogged(member, 'sh', [this.path('redis-member.sh'), 'start', ...this.memberArgs(member)], {
      ...this.environment(),
      REDIS_ANNOUNCE: member.address,
      REDIS_MONITOR_PASSWORD_FILE: this.path('secrets', 'monitor-password'),
    });
  }

  /** Starts a Sentinel by its start script (`sentinel.sh start`). */
  startSentinel(sentinel: Process): void {
    sentinel.process = this.spawnLogged(sentinel, 'sh', [this.path('sentinel.sh'), 'start'], {
      ...this.environment(),
      SENTINEL_ANNOUNCE: sentinel.address,
      SENTINEL_TEMPLATE: this.path(`${sentinel.name}.conf`),
      SENTINEL_AUTH_FILE: this.path('sentinel-secrets', 'sentinel-auth.conf'),
      SENTINEL_CONFIG_DIR: sentinel.directory,
      REDIS_MONITOR_PASSWORD_FILE: this.path('sentinel-secrets', 'monitor-password'),
      SENTINEL_TLS_CERTIFICATE: this.path('tls', TLS_FILES.certificate),
    });
  }

  /** Runs a probe of a start script (`ready`, `live`, Sentinel's `reload`) as the pod's kubelet would; true on exit 0. */
  probe(target: Process, script: 'redis-member.sh' | 'sentinel.sh', mode: 'ready' | 'live' | 'reload'): boolean {
    const env =
      script === 'redis-member.sh'
        ? { ...this.environment(), REDIS_ANNOUNCE: target.address, REDIS_MONITOR_PASSWORD_FILE: this.path('secrets', 'monitor-password') }
        : {
            ...this.environment(),
            SENTINEL_ANNOUNCE: target.address,
            SENTINEL_CONFIG_DIR: target.directory,
            REDIS_MONITOR_PASSWORD_FILE: this.path('sentinel-secrets', 'monitor-password'),
            SENTINEL_TLS_CERTIFICATE: this.path('tls', TLS_FILES.certificate),
          };
    try {
      execFileSync('sh', [this.path(script), mode], { env, stdio: 'ignore', timeout: 5000, ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}) });
      return true;
    } catch {
      return false;
    }
  }

  /** kill -9 of a process (a node lost: no shutdown, no final fsync). */
  kill(target: Process): void {
    if (target.process?.pid) killGroup(target.process.pid, 'SIGKILL');
    target.process = undefined;
  }

  /**
   * SIGSTOP / SIGCONT: the process freezes with its connections open, as behind a network
   * partition (no reset reaches its peers: they only stop hearing from it).
   */
  pause(target: Process): void {
    if (target.process?.pid) killGroup(target.process.pid, 'SIGSTOP');
  }

  resume(target: Process): void {
    if (target.process?.pid) killGroup(target.process.pid, 'SIGCONT');
  }

  /** A client of one process, as `user` (admin by default), over TLS. */
  client(target: Process, user: 'allixios_admin' | 'allixios_app' = 'allixios_admin', extra: RedisOptions = {}): Redis {
    const client = new Redis({
      host: 'localhost',
      port: target.port,
      username: user,
      password: this.passwords[user === 'allixios_admin' ? 'admin-password' : 'app-password'],
      tls: { ca: readFileSync(this.caFile) },
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 2000,
      ...extra,
    });
    client.on('error', () => {});
    return client;
  }

  /** One command on a process as the admin; undefined when it does not answer. */
  async ask(target: Process, ...command: string[]): Promise<unknown> {
    const client = this.client(target);
    try {
      await client.connect();
      return await client.call(command[0]!, ...command.slice(1));
    } catch {
      return undefined;
    } finally {
      client.disconnect();
    }
  }

  /** A member's `INFO replication` as fields. */
  async replication(member: Process): Promise<Record<string, string> | undefined> {
    const text = await this.ask(member, 'INFO', 'replication');
    if (typeof text !== 'string') return undefined;
    return Object.fromEntries(
      text
        .split('\r\n')
        .filter((line) => line.includes(':'))
        .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
    );
  }

  /** What a Sentinel says of the master (`SENTINEL MASTER allixios`), as fields. */
  async sentinelView(sentinel: Process): Promise<Record<string, string> | undefined> {
    const reply = await this.ask(sentinel, 'SENTINEL', 'MASTER', MASTER_NAME);
    if (!Array.isArray(reply)) return undefined;
    const view: Record<string, string> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) view[String(reply[i])] = String(reply[i + 1]);
    return view;
  }

  memberAt(address: string): Process | undefined {
    return this.members.find((member) => member.address === address || `127.0.0.1:${member.port}` === address);
  }

  tail(file: string, lines = 30): string {
    try {
      return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return `(no ${file})`;
    }
  }

  /** SIGKILL to everything started and not stopped, synchronously (an uncaught error). */
  killAllNow(): void {
    if (this.stopped) return;
    for (const target of [...this.members, ...this.sentinels]) if (target.process?.pid) killGroup(target.process.pid, 'SIGKILL');
    this.stopped = true;
  }

  /** Stops everything by process group (SIGTERM, then SIGKILL), then removes the directory unless kept. */
  async stop(keep = false): Promise<void> {
    if (this.stopped) return;
    const all = [...this.members, ...this.sentinels];
    for (const target of all) {
      if (!target.process?.pid) continue;
      killGroup(target.process.pid, 'SIGCONT');
      killGroup(target.process.pid, 'SIGTERM');
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && all.some((target) => target.process && target.process.exitCode === null && target.process.signalCode === null)) await sleep(100);
    for (const target of all) if (target.process?.pid) killGroup(target.process.pid, 'SIGKILL');
    this.stopped = true;
    if (!keep) rmSync(this.directory, { recursive: true, force: true });
    this.log(keep ? `kept ${this.directory}` : 'cluster stopped');
  }
}
