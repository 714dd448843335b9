/**
 * A local pgBackRest setup of real processes, for the PITR drill (`bench/drills/pgbackrest-pitr.ts`)
 * and the real-engine test (`test/engines/pgbackrest.test.ts`): a PostgreSQL (Debian's 15) started
 * with the archiving settings `databases/postgresql/backup.ts` renders, pgBackRest's TLS server
 * beside it as the agent, and a repository host that reaches the agent over mutual TLS, as the
 * Kubernetes backup jobs do. The configurations are the program's own (`pgbackrestConfig`), with a
 * local directory standing in for the object store (its posix variant); only paths, ports and the
 * agent's address (loopback) differ. Certificates are issued with openssl as cert-manager issues
 * the engine's: CN `postgresql`, server and client auth.
 *
 * As root everything runs as the OS user `postgres` (PostgreSQL refuses root); every process is
 * started in a process group of its own and stopped by its id.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { freePort } from '../../bootstrap/embedded/postgresql.ts';
import { TLS_FILES } from '../../databases/engine.ts';
import {
  AGENT_CLIENT_COMMON_NAME,
  archiveParameters,
  PGBACKREST_VARIABLES,
  pgbackrestConf,
  pgbackrestConfig,
  STANZA,
  type PgbackrestConfig,
  type PgbackrestRepository,
} from '../../databases/postgresql/backup.ts';
import { issueCa, issueServerCertificate } from '../../test/support/certificates.ts';

/** Debian's PostgreSQL of the given major (or the newest of 15 and later) with the programs the lab runs. */
export function findPostgres(major?: number): { major: number; bin: string } | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .map(Number)
    .filter(
      (candidate) =>
        (major === undefined ? candidate >= 15 : candidate === major) && ['postgres', 'initdb'].every((tool) => existsSync(join(root, String(candidate), 'bin', tool))),
    )
    .sort((a, b) => b - a);
  return majors[0] === undefined ? undefined : { major: majors[0], bin: join(root, String(majors[0]), 'bin') };
}

/** The pgbackrest program on the PATH, or undefined. */
export function findPgbackrest(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v pgbackrest'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface Owner {
  uid: number;
  gid: number;
}

function postgresOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

const running = (child: ChildProcess | undefined): child is ChildProcess => child !== undefined && child.exitCode === null && child.signalCode === null;

export interface PgbackrestLabOptions {
  /** The PostgreSQL major to use (default: the newest of 15 and later). */
  major?: number;
  /** Retention the repository is rendered with. */
  retention?: { count: number; days: number };
}

export class PgbackrestLab {
  readonly directory: string;
  readonly postgres: { major: number; bin: string };
  readonly pgbackrest: string;
  readonly owner = postgresOwner();
  /** This run's repository passphrase: in the processes' environment only. */
  readonly cipherPass = randomBytes(24).toString('base64url');
  readonly repository: PgbackrestRepository;
  readonly paths: { data: string; socket: string; repo: string; tls: string; memberConf: string; agentConf: string; repositoryConf: string; serverLog: string; agentLog: string };
  readonly port: number;
  readonly agentPort: number;
  readonly memberConfig: PgbackrestConfig;
  readonly agentConfig: PgbackrestConfig;
  readonly repositoryConfig: PgbackrestConfig;
  server?: ChildProcess;
  agent?: ChildProcess;

  private constructor(fields: {
    directory: string;
    postgres: { major: number; bin: string };
    pgbackrest: string;
    port: number;
    agentPort: number;
    retention: { count: number; days: number };
  }) {
    this.directory = fields.directory;
    this.postgres = fields.postgres;
    this.pgbackrest = fields.pgbackrest;
    this.port = fields.port;
    this.agentPort = fields.agentPort;
    const at = (...parts: string[]) => join(this.directory, ...parts);
    this.paths = {
      data: at('primary', 'data'),
      socket: at('primary', 'socket'),
      repo: at('repository'),
      tls: at('tls'),
      memberConf: at('primary', 'pgbackrest.conf'),
      agentConf: at('primary', 'agent.conf'),
      repositoryConf: at('backup-job', 'pgbackrest.conf'),
      serverLog: at('primary', 'postgresql.log'),
      agentLog: at('primary', 'agent.log'),
    };
    this.repository = { kind: 'posix', path: this.paths.repo, retention: fields.retention };
    const server = { data: this.paths.data, socket: this.paths.socket, port: this.port };
    this.memberConfig = pgbackrestConfig(this.repository, {
      role: 'member',
      server,
      paths: { lock: at('primary', 'lock'), spool: at('primary', 'spool') },
      archiveQueueMax: '1GB',
    });
    this.agentConfig = pgbackrestConfig(this.repository, {
      role: 'agent',
      server,
      paths: { lock: at('primary', 'agent-lock') },
      address: '127.0.0.1',
      port: this.agentPort,
      tlsDirectory: this.paths.tls,
      clientCommonName: AGENT_CLIENT_COMMON_NAME,
    });
    this.repositoryConfig = pgbackrestConfig(this.repository, {
      role: 'repository',
      members: 1,
      hosts: ['localhost'],
      server,
      agent: { port: this.agentPort, tlsDirectory: this.paths.tls },
      paths: { lock: at('backup-job', 'lock') },
    });
  }

  /** Directories, certificates and the rendered configurations (nothing started). */
  static async create(options: PgbackrestLabOptions = {}): Promise<PgbackrestLab> {
    const postgres = findPostgres(options.major);
    if (!postgres) throw new Error(`no PostgreSQL ${options.major ?? '15 or later'} under /usr/lib/postgresql (apt-get install -y postgresql-${options.major ?? 15})`);
    const pgbackrest = findPgbackrest();
    if (!pgbackrest) throw new Error('pgbackrest is not installed (apt-get install -y pgbackrest)');
    const directory = mkdtempSync(join(tmpdir(), 'allixios-pgbackrest-'));
    const lab = new PgbackrestLab({ directory, postgres, pgbackrest, port: await freePort(), agentPort: await freePort(), retention: options.retention ?? { count: 4, days: 30 } });
    for (const path of ['primary', 'primary/socket', 'primary/lock', 'primary/agent-lock', 'primary/spool', 'backup-job', 'backup-job/lock', 'repository', 'tls', 'restores']) {
      mkdirSync(join(directory, path), { recursive: true, mode: 0o700 });
    }
    // The engine's certificate as the Kubernetes target has cert-manager issue it: its CN is the
    // engine's name and it proves a client too; the agent serves it, the backup job presents it.
    issueCa(lab.paths.tls);
    issueServerCertificate(lab.paths.tls, ['localhost'], { commonName: AGENT_CLIENT_COMMON_NAME, clientAuth: true });
    writeFileSync(lab.paths.memberConf, pgbackrestConf(lab.memberConfig));
    writeFileSync(lab.paths.agentConf, pgbackrestConf(lab.agentConfig));
    writeFileSync(lab.paths.repositoryConf, pgbackrestConf(lab.repositoryConfig));
    lab.chownAll();
    return lab;
  }

  chownAll(): void {
    if (!this.owner) return;
    const walk = (path: string) => {
      chownSync(path, this.owner!.uid, this.owner!.gid);
      if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
    };
    walk(this.directory);
  }

  /** A new, empty place for a restore's data directory (not created) and its work directory. */
  restoreTarget(name: string): { data: string; work: string } {
    const base = join(this.directory, 'restores', name);
    mkdirSync(base, { mode: 0o700 });
    if (this.owner) chownSync(base, this.owner.uid, this.owner.gid);
    return { data: join(base, 'data'), work: join(base, 'work') };
  }

  private baseEnvironment(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: this.directory };
  }

  private spawnLogged(command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv): ChildProcess {
    const log = openSync(logFile, 'a');
    if (this.owner) chownSync(logFile, this.owner.uid, this.owner.gid);
    try {
      return spawn(command, args, { cwd: this.directory, detached: true, stdio: ['ignore', log, log], env, ...(this.owner ?? {}) });
    } finally {
      closeSync(log);
    }
  }

  /** Runs a program as the lab's user, asynchronously; its output, or an error with it. */
  run(program: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    return new Promise((done, fail) => {
      execFile(program, args, { env: { ...this.baseEnvironment(), ...env }, maxBuffer: 32 * 2 ** 20, ...(this.owner ?? {}) }, (error, stdout, stderr) => {
        if (error) fail(new Error(`${program} ${args.join(' ')} failed: ${`${stderr}${stdout}`.trim().split('\n').slice(-12).join('\n')}`));
        else done(`${stdout}${stderr}`);
      });
    });
  }

  /** initdb (checksums on, as the project's clusters) of the primary's data directory. */
  async initdb(): Promise<void> {
    await this.run(join(this.postgres.bin, 'initdb'), ['-D', this.paths.data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--data-checksums']);
  }

  /**
   * Starts the primary with the rendered archiving settings (archive_mode, the archive command,
   * archive_timeout). The archive command is the rendered one unchanged: pgBackRest finds this
   * member's configuration through PGBACKREST_CONFIG and the passphrase in the environment, as in
   * the pod. Its Unix socket only, in a private directory (trust there; nothing listens on TCP).
   * `track_commit_timestamp` lets the drill read each commit's time as the server recorded it.
   */
  async startServer(extra: Record<string, string> = {}): Promise<void> {
    const parameters = {
      ...archiveParameters(),
      listen_addresses: '',
      port: String(this.port),
      unix_socket_directories: this.paths.socket,
      track_commit_timestamp: 'on',
      ...extra,
    };
    const args = ['-D', this.paths.data, ...Object.entries(parameters).flatMap(([name, value]) => ['-c', `${name}=${value}`])];
    this.server = this.spawnLogged(join(this.postgres.bin, 'postgres'), args, this.paths.serverLog, {
      ...this.baseEnvironment(),
      PGBACKREST_CONFIG: this.paths.memberConf,
      [PGBACKREST_VARIABLES.cipherPass]: this.cipherPass,
    });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (!running(this.server)) throw new Error(`PostgreSQL exited at start:\n${this.tail(this.paths.serverLog)}`);
      const client = this.client();
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch {
        await sleep(150);
      } finally {
        await client.end().catch(() => {});
      }
    }
    throw new Error(`PostgreSQL did not accept connections within 30 s:\n${this.tail(this.paths.serverLog)}`);
  }

  /** Starts the agent (pgBackRest's TLS server) on its own configuration, with nothing secret in its environment. */
  async startAgent(): Promise<void> {
    this.agent = this.spawnLogged(this.pgbackrest, ['server'], this.paths.agentLog, { ...this.baseEnvironment(), PGBACKREST_CONFIG: this.paths.agentConf });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (!running(this.agent)) throw new Error(`the pgBackRest agent exited:\n${this.tail(this.paths.agentLog)}`);
      try {
        await this.run(this.pgbackrest, [`--tls-server-address=127.0.0.1`, `--tls-server-port=${this.agentPort}`, 'server-ping']);
        return;
      } catch {
        await sleep(150);
      }
    }
    throw new Error(`the pgBackRest agent did not answer within 15 s:\n${this.tail(this.paths.agentLog)}`);
  }

  /** A pgBackRest command on the repository host (the backup job's configuration), with the passphrase in its environment. */
  backupJob(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<string> {
    return this.run(this.pgbackrest, [`--config=${this.paths.repositoryConf}`, `--stanza=${STANZA}`, ...args], { [PGBACKREST_VARIABLES.cipherPass]: this.cipherPass, ...extra });
  }

  /** `pgbackrest info` of the repository, parsed. */
  async info(): Promise<
    Array<{ backup: Array<{ label: string; type: string; timestamp: { start: number; stop: number }; info: { size: number; repository: { size: number } } }> }>
  > {
    return JSON.parse(await this.backupJob(['--output=json', '--log-level-console=off', 'info'])) as Awaited<ReturnType<PgbackrestLab['info']>>;
  }

  /** A client of the primary, as postgres over its socket. */
  client(database = 'postgres'): pg.Client {
    return new pg.Client({ host: this.paths.socket, port: this.port, user: 'postgres', database, connectionTimeoutMillis: 3000 });
  }

  async query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = this.client();
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** kill -9 of the primary's whole process group (the postmaster and its children): a lost node. */
  killServer(): void {
    if (this.server?.pid) killGroup(this.server.pid, 'SIGKILL');
  }

  /** Bytes under the repository directory. */
  repositoryBytes(): number {
    const walk = (path: string): number => (statSync(path).isDirectory() ? readdirSync(path).reduce((sum, entry) => sum + walk(join(path, entry)), 0) : statSync(path).size);
    return walk(this.paths.repo);
  }

  tail(file: string, lines = 25): string {
    try {
      return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return `(no ${file})`;
    }
  }

  /** The TLS directory's file names (for checks that name them). */
  tlsFile(name: keyof typeof TLS_FILES): string {
    return join(this.paths.tls, TLS_FILES[name]);
  }

  private stopped = false;

  /** SIGKILL to what is still running, synchronously (an exit without {@link stop}). */
  killAllNow(): void {
    if (this.stopped) return;
    for (const child of [this.server, this.agent]) if (running(child) && child.pid) killGroup(child.pid, 'SIGKILL');
    this.stopped = true;
  }

  /** Stops the server (fast shutdown) and the agent; the directory stays. */
  async stopProcesses(): Promise<void> {
    if (this.stopped) return;
    if (running(this.server) && this.server.pid) killGroup(this.server.pid, 'SIGINT');
    if (running(this.agent) && this.agent.pid) killGroup(this.agent.pid, 'SIGTERM');
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (running(this.server) || running(this.agent))) await sleep(100);
    this.killAllNow();
  }

  /** Stops what runs, then removes the directory unless kept. */
  async stop(keep = false): Promise<void> {
    await this.stopProcesses();
    if (!keep) rmSync(this.directory, { recursive: true, force: true });
  }
}
