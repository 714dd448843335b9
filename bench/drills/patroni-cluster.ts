/**
 * A local Patroni cluster of real processes for the drill (`bench/drills/patroni.ts`): one etcd
 * and N Patroni members, each running the PostgreSQL found under /usr/lib/postgresql, configured
 * by `renderPatroniConfig` exactly as for Kubernetes except for what a single machine forces:
 * loopback ports, temporary directories, the bin directory, and etcd as the DCS.
 *
 * Everything runs as the OS user `postgres` when we are root (PostgreSQL and Patroni refuse
 * root), else as ourselves; every process is started in a process group of its own and stopped
 * by its id.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, closeSync, existsSync, openSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { freePort } from '../../bootstrap/embedded/postgresql.ts';
import { patroniYaml, renderPatroniConfig, PATRONI_API_USER, PATRONI_USERS, type PatroniConfig } from '../../databases/postgresql/patroni.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';

/** The newest PostgreSQL of 15 or later installed the Debian way, with the tools Patroni runs. */
export function findPostgres(): { major: number; bin: string } | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .map(Number)
    .filter((major) => major >= 15 && ['postgres', 'pg_ctl', 'pg_rewind', 'pg_basebackup', 'initdb'].every((tool) => existsSync(join(root, String(major), 'bin', tool))))
    .sort((a, b) => b - a);
  return majors[0] === undefined ? undefined : { major: majors[0], bin: join(root, String(majors[0]), 'bin') };
}

/**
 * The project's postgresql.conf as an older server accepts it: the settings it does not know yet
 * are commented out (and listed in the report). Nothing else changes.
 */
export function postgresqlConfFor(major: number, text: string): { text: string; removed: string[] } {
  const newer: Array<{ name: string; since: number }> = [
    { name: 'max_notify_queue_pages', since: 17 },
    // A list of aspects from 18 on; a boolean before.
    { name: 'log_connections', since: 18 },
  ];
  const removed: string[] = [];
  const lines = text.split('\n').map((line) => {
    const setting = newer.find(({ name, since }) => major < since && new RegExp(`^\\s*${name}\\s*=`).test(line));
    if (!setting) return line;
    removed.push(`${line.trim()} (PostgreSQL ${setting.since}+)`);
    return `# drill on PostgreSQL ${major}: ${line}`;
  });
  return { text: lines.join('\n'), removed };
}

export interface Member {
  name: string;
  pgPort: number;
  apiPort: number;
  dataDir: string;
  configFile: string;
  logFile: string;
  process?: ChildProcess;
}

interface Owner {
  uid: number;
  gid: number;
}

function postgresOwner(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * The project's roles script (initdb/10-roles.sh) as an older server accepts it: the role
 * settings it does not know yet are left out (and listed in the report). Nothing else changes.
 */
export function rolesScriptFor(major: number, text: string): { text: string; removed: string[] } {
  const newer: Array<{ name: string; since: number }> = [{ name: 'transaction_timeout', since: 17 }];
  const removed: string[] = [];
  const lines = text.split('\n').map((line) => {
    const setting = newer.find(({ name, since }) => major < since && new RegExp(`^ALTER ROLE \\S+ SET ${name} `).test(line));
    if (!setting) return line;
    removed.push(`${line.trim()} (PostgreSQL ${setting.since}+)`);
    return `-- drill on PostgreSQL ${major}: ${line}`;
  });
  return { text: lines.join('\n'), removed };
}

/** The platform roles' passwords of one drill run, for the role verifiers file the roles script reads. */
function platformPasswords(): Record<string, string> {
  const secret = () => randomBytes(18).toString('base64url');
  return { 'owner-password': secret(), 'app-password': secret(), 'readonly-password': secret() };
}

/** The credentials of one drill run: random, in the processes' environment only, never on disk. */
function drillCredentials(): Record<string, string> {
  const secret = () => randomBytes(18).toString('base64url');
  return {
    PATRONI_SUPERUSER_USERNAME: PATRONI_USERS.superuser,
    PATRONI_SUPERUSER_PASSWORD: secret(),
    PATRONI_REPLICATION_PASSWORD: secret(),
    PATRONI_REWIND_PASSWORD: secret(),
    PATRONI_RESTAPI_USERNAME: PATRONI_API_USER,
    PATRONI_RESTAPI_PASSWORD: secret(),
  };
}

export interface ClusterOptions {
  members: number;
  /** Called with progress lines. */
  log: (line: string) => void;
}

/** Signal a whole process group, ignoring one already gone. */
function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The process group of a pid (field 5 of /proc/<pid>/stat). */
function processGroup(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

export class PatroniCluster {
  readonly directory: string;
  readonly members: Member[] = [];
  readonly postgres: { major: number; bin: string };
  readonly confAdjustments: string[];
  readonly config: PatroniConfig;
  private readonly owner = postgresOwner();
  private readonly credentials = drillCredentials();
  /** The platform roles' passwords (allixios_owner, allixios_app, allixios_readonly) of this run. */
  readonly platformPasswords = platformPasswords();
  /** What the post-bootstrap script reads from the environment, as the container's variables give it. */
  private bootstrapEnvironment: Record<string, string> = {};
  private etcd?: ChildProcess;
  private etcdPort = 0;

  private constructor(directory: string, postgres: { major: number; bin: string }, confAdjustments: string[], config: PatroniConfig) {
    this.directory = directory;
    this.postgres = postgres;
    this.confAdjustments = confAdjustments;
    this.config = config;
  }

  /** Writes the members' configurations (not started yet). */
  static async create(options: ClusterOptions): Promise<PatroniCluster> {
    const postgres = findPostgres();
    if (!postgres) throw new Error('no PostgreSQL 15 or later under /usr/lib/postgresql (apt-get install postgresql)');
    for (const tool of ['etcd', 'patroni', 'patronictl']) {
      try {
        execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      } catch {
        throw new Error(`${tool} is not installed (apt-get install patroni etcd-server)`);
      }
    }
    const directory = mkdtempSync(join(tmpdir(), 'allixios-patroni-drill-'));
    const conf = postgresqlConfFor(postgres.major, readFileSync(new URL('../../databases/postgresql/config/postgresql.conf', import.meta.url), 'utf8'));
    writeFileSync(join(directory, 'postgresql.conf'), conf.text);
    // Patroni's post_bootstrap as on Kubernetes: the project's script, which runs the roles script
    // with the verifiers of this run's passwords (verifiers only on disk, as in the Secret).
    const roles = rolesScriptFor(postgres.major, readFileSync(new URL('../../databases/postgresql/initdb/10-roles.sh', import.meta.url), 'utf8'));
    writeFileSync(join(directory, '10-roles.sh'), roles.text, { mode: 0o755 });
    writeFileSync(join(directory, 'post-bootstrap.sh'), readFileSync(new URL('../../databases/postgresql/patroni/post-bootstrap.sh', import.meta.url)), { mode: 0o755 });
    const cluster = new PatroniCluster(directory, postgres, [...conf.removed, ...roles.removed], undefined as unknown as PatroniConfig);
    const template = readFileSync(new URL('../../databases/postgresql/initdb/role-verifiers', import.meta.url), 'utf8');
    const verifiers = renderSecretFile(template, { 'superuser-password': cluster.credentials.PATRONI_SUPERUSER_PASSWORD!, ...cluster.platformPasswords }, 'initdb/role-verifiers');
    writeFileSync(join(directory, 'role-verifiers'), verifiers, { mode: 0o600 });
    cluster.bootstrapEnvironment = {
      POSTGRES_USER: PATRONI_USERS.superuser,
      POSTGRES_DB: 'allixios',
      ALLIXIOS_REWIND_ROLE: PATRONI_USERS.rewind,
      ALLIXIOS_ROLE_VERIFIERS_FILE: join(directory, 'role-verifiers'),
      ALLIXIOS_ROLES_SCRIPT: join(directory, '10-roles.sh'),
    };
    cluster.etcdPort = await freePort();
    const rendered: PatroniConfig[] = [];
    for (let index = 1; index <= options.members; index++) {
      const name = `member-${index}`;
      const [pgPort, apiPort] = [await freePort(), await freePort()];
      const home = join(directory, name);
      mkdirSync(home);
      const config = renderPatroniConfig({
        environment: 'prod',
        scope: 'allixios-drill',
        members: options.members,
        dcs: { etcd3: { hosts: [`127.0.0.1:${cluster.etcdPort}`] } },
        member: {
          name,
          postgresql: { listen: `127.0.0.1:${pgPort}`, connectAddress: `127.0.0.1:${pgPort}` },
          restApi: { listen: `127.0.0.1:${apiPort}`, connectAddress: `127.0.0.1:${apiPort}` },
        },
        directories: { data: join(home, 'data'), bin: postgres.bin, socket: home, pgpass: join(home, 'pgpass'), customConf: join(directory, 'postgresql.conf') },
        postBootstrap: join(directory, 'post-bootstrap.sh'),
      });
      rendered.push(config);
      const configFile = join(home, 'patroni.yml');
      writeFileSync(configFile, patroniYaml(config));
      cluster.members.push({ name, pgPort, apiPort, dataDir: join(home, 'data'), configFile, logFile: join(directory, `${name}.log`) });
    }
    (cluster as { config: PatroniConfig }).config = rendered[0]!;
    cluster.chownAll();
    return cluster;
  }

  private chownAll(): void {
    if (!this.owner) return;
    const walk = (path: string) => {
      chownSync(path, this.owner!.uid, this.owner!.gid);
      for (const entry of readdirSync(path, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(join(path, entry.name));
        else chownSync(join(path, entry.name), this.owner!.uid, this.owner!.gid);
      }
    };
    walk(this.directory);
  }

  /**
   * Starts a process in a process group of its own, its output appended to `logFile` through a
   * file descriptor it writes itself (no stream of ours: a killed process's pipe closing must
   * not end the log of the one started after it).
   */
  private spawnLogged(command: string, args: string[], logFile: string, env: Record<string, string> = {}): ChildProcess {
    const log = openSync(logFile, 'a');
    if (this.owner) chownSync(logFile, this.owner.uid, this.owner.gid);
    try {
      return spawn(command, args, {
        cwd: this.directory,
        detached: true,
        stdio: ['ignore', log, log],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: this.directory, ...env },
        ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}),
      });
    } finally {
      closeSync(log);
    }
  }

  async startEtcd(): Promise<void> {
    const peerPort = await freePort();
    const peer = `http://127.0.0.1:${peerPort}`;
    const client = `http://127.0.0.1:${this.etcdPort}`;
    this.etcd = this.spawnLogged(
      'etcd',
      [
        '--name=drill',
        `--data-dir=${join(this.directory, 'etcd')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=drill=${peer}`,
      ],
      join(this.directory, 'etcd.log'),
    );
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`${client}/health`)).ok) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new Error(`etcd did not answer on ${client} within 20 s:\n${this.tail(join(this.directory, 'etcd.log'))}`);
  }

  start(member: Member): void {
    member.process = this.spawnLogged('patroni', [member.configFile], member.logFile, { ...this.bootstrapEnvironment, ...this.credentials });
  }

  /** kill -9 of a member's Patroni and of its PostgreSQL (the postmaster's whole process group): a node lost. */
  killNode(member: Member): void {
    const postmaster = this.postmasterPid(member);
    const groups = [member.process?.pid, postmaster === undefined ? undefined : processGroup(postmaster)].filter((pid): pid is number => pid !== undefined);
    for (const group of groups) killGroup(group, 'SIGKILL');
    member.process = undefined;
  }

  postmasterPid(member: Member): number | undefined {
    try {
      const pid = Number(readFileSync(join(member.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** A client as the superuser, on one member. */
  client(member: Member, timeoutMs = 2000): pg.Client {
    return new pg.Client({
      host: '127.0.0.1',
      port: member.pgPort,
      user: PATRONI_USERS.superuser,
      password: this.credentials.PATRONI_SUPERUSER_PASSWORD,
      database: 'postgres',
      connectionTimeoutMillis: timeoutMs,
      query_timeout: 5000,
      application_name: 'allixios-drill',
    });
  }

  /** Logs in as a platform role with this run's password; its `current_user`, or the error's message. */
  async login(member: Member, user: string, secret: string, database: string): Promise<string> {
    const client = new pg.Client({ host: '127.0.0.1', port: member.pgPort, user, password: this.platformPasswords[secret], database, connectionTimeoutMillis: 5000 });
    try {
      await client.connect();
      const result = await client.query<{ current_user: string }>('SELECT current_user');
      return result.rows[0]!.current_user;
    } catch (error) {
      return (error as Error).message;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Patroni's REST API of a member: GET a JSON document, or undefined when it does not answer. */
  async api(member: Member, path: string): Promise<unknown> {
    try {
      const response = await fetch(`http://127.0.0.1:${member.apiPort}${path}`, { signal: AbortSignal.timeout(2000) });
      return (await response.json()) as unknown;
    } catch {
      return undefined;
    }
  }

  /** POST to a member's REST API with the API's basic authentication. */
  async apiPost(member: Member, path: string, body: unknown): Promise<{ status: number; text: string }> {
    const auth = Buffer.from(`${PATRONI_API_USER}:${this.credentials.PATRONI_RESTAPI_PASSWORD}`).toString('base64');
    const response = await fetch(`http://127.0.0.1:${member.apiPort}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${auth}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    return { status: response.status, text: await response.text() };
  }

  tail(file: string, lines = 30): string {
    try {
      return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return `(no ${file})`;
    }
  }

  private stopped = false;

  /**
   * SIGKILL to everything this cluster started and has not stopped yet, synchronously: for a
   * process that is exiting without having run {@link stop} (an uncaught error).
   */
  killAllNow(): void {
    if (this.stopped) return;
    for (const member of this.members) {
      if (member.process?.pid) killGroup(member.process.pid, 'SIGKILL');
      const postmaster = this.postmasterPid(member);
      const group = postmaster === undefined ? undefined : processGroup(postmaster);
      if (group !== undefined) killGroup(group, 'SIGKILL');
    }
    if (this.etcd?.pid) killGroup(this.etcd.pid, 'SIGKILL');
    this.stopped = true;
  }

  /** Stops everything this cluster started, by process group, then removes its directory. */
  async stop(keep = false): Promise<void> {
    if (this.stopped) return;
    for (const member of this.members) if (member.process?.pid) killGroup(member.process.pid, 'SIGTERM');
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && this.members.some((member) => (member.process?.pid && alive(member.process.pid)) || this.postmasterPid(member))) await sleep(200);
    for (const member of this.members) {
      if (member.process?.pid) killGroup(member.process.pid, 'SIGKILL');
      const postmaster = this.postmasterPid(member);
      const group = postmaster === undefined ? undefined : processGroup(postmaster);
      if (group !== undefined) killGroup(group, 'SIGKILL');
    }
    if (this.etcd?.pid) {
      killGroup(this.etcd.pid, 'SIGTERM');
      await sleep(300);
      killGroup(this.etcd.pid, 'SIGKILL');
    }
    this.stopped = true;
    if (!keep) rmSync(this.directory, { recursive: true, force: true });
  }
}
