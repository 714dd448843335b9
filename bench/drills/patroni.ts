/**
 * `npm run drill:patroni`: PostgreSQL's high availability on real processes. A 3-member Patroni
 * cluster (etcd as the DCS in place of Kubernetes, the PostgreSQL installed here in place of 18)
 * with the settings `databases/postgresql/patroni.ts` renders for prod, and a client committing
 * sequence-numbered rows in a loop throughout:
 *
 * 1. failover: kill -9 of the leader's Patroni and PostgreSQL (a node lost); the time until a
 *    write succeeds again, and every acknowledged commit checked on the new leader;
 * 2. rejoin: the lost member started again comes back as a streaming replica (pg_rewind when its
 *    timeline diverged);
 * 3. switchover: a planned one through the REST API; the longest pause between two
 *    acknowledged commits, and again no acknowledged commit missing.
 *
 * The client finds the primary as libpq's `target_session_attrs=read-write` does (node-postgres
 * has no multi-host URLs): it tries each member in turn and keeps the first that is not read-only.
 * It depends on nothing but the servers, so what it measures is when a primary accepts writes.
 *
 * Writes a JSON report (bench/results/patroni-drill-<time>.json, or --out) and prints a table.
 * Exit 1 when an acknowledged commit is missing or the cluster does not recover within the
 * bounds; the figures themselves are reported, not asserted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { defineCommand } from '../../bootstrap/command-line.ts';
import { finishDrill, startDrill, stopOnExit, toolVersion } from './drill-run.ts';

const command = defineCommand({
  name: 'drill:patroni',
  synopsis: ['npm run drill:patroni -- [options]'],
  summary:
    'Runs a 3-member Patroni cluster of real processes (etcd, PostgreSQL 15+) with the prod settings of databases/postgresql/patroni.ts, and measures a failover (kill -9 of the leader), the old leader rejoining and a switchover while a client commits in a loop.',
  options: {
    out: { type: 'string', value: '<file>', description: 'where to write the JSON report (default bench/results/patroni-drill-<time>.json)' },
    keep: { type: 'boolean', description: "keep the cluster's directory (configurations, logs) after the drill" },
  },
  notes: 'Needs the Debian packages patroni, etcd-server and postgresql (15 or later). As root it runs everything as the OS user postgres.',
  exitCodes: { ok: 'every acknowledged commit survived and the cluster recovered within the bounds', failed: 'a commit was lost, or the cluster did not recover in time' },
});
const { values } = command.parse();

const { PatroniCluster } = await import('./patroni-cluster.ts');
type Cluster = import('./patroni-cluster.ts').PatroniCluster;
type Member = import('./patroni-cluster.ts').Member;

/** Generous bounds: beyond them the drill fails; within them the figures are only reported. */
const BOUNDS = { readySeconds: 90, failoverSeconds: 90, rejoinSeconds: 90, switchoverSeconds: 60 };

const started = performance.now();
const run = startDrill(BOUNDS);
const { seconds, log, report, failures } = run;

interface Ack {
  seq: number;
  at: number;
  member: string;
}

/** The client: commits rows 1, 2, 3, ... on whichever member accepts writes, and records each acknowledgement. */
class Writer {
  readonly acks: Ack[] = [];
  readonly inDoubt: number[] = [];
  private seq = 0;
  private stopped = false;
  private running?: Promise<void>;

  constructor(private readonly cluster: Cluster) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /**
   * The first acknowledgement after `time` from a member other than `except`. (A commit the
   * killed leader acknowledged an instant after the kill was already on its way: it counts as
   * acknowledged, not as a write on the new leader.)
   */
  firstAckAfter(time: number, except: string): Ack | undefined {
    return this.acks.find((ack) => ack.at > time && ack.member !== except);
  }

  /** As target_session_attrs=read-write: the first member, in order, whose sessions are not read-only. */
  private async connectReadWrite() {
    for (const member of this.cluster.members) {
      const client = this.cluster.client(member, 1000);
      client.on('error', () => {});
      try {
        await client.connect();
        const result = await client.query<{ transaction_read_only: string }>('SHOW transaction_read_only');
        if (result.rows[0]?.transaction_read_only === 'off') return { client, member };
      } catch {
        // down, starting, or refusing: the next one
      }
      await client.end().catch(() => {});
    }
    return undefined;
  }

  private async loop(): Promise<void> {
    let current: Awaited<ReturnType<Writer['connectReadWrite']>>;
    while (!this.stopped) {
      if (!current) {
        current = await this.connectReadWrite();
        if (!current) await sleep(100);
        continue;
      }
      const seq = ++this.seq;
      try {
        await current.client.query('INSERT INTO drill_commits (seq) VALUES ($1)', [seq]);
        this.acks.push({ seq, at: performance.now(), member: current.member.name });
      } catch {
        // Sent, but no acknowledgement came: it may or may not have committed.
        this.inDoubt.push(seq);
        await current.client.end().catch(() => {});
        current = undefined;
      }
    }
    await current?.client.end().catch(() => {});
  }
}

async function query<T extends pg.QueryResultRow>(cluster: Cluster, member: Member, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = cluster.client(member);
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}
/** The member that is primary now (not read-only), if any. */
async function primary(cluster: Cluster): Promise<Member | undefined> {
  for (const member of cluster.members) {
    try {
      const [row] = await query<{ recovery: boolean }>(cluster, member, 'SELECT pg_is_in_recovery() AS recovery');
      if (row && !row.recovery) return member;
    } catch {
      // down
    }
  }
  return undefined;
}

interface Replication {
  application_name: string;
  state: string;
  sync_state: string;
}

/** Waits until a primary streams to every other member, one of them synchronous; returns it. */
async function waitForHealthy(cluster: Cluster, timeoutSeconds: number, what: string): Promise<{ leader: Member; replication: Replication[] }> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  let last = 'no primary yet';
  while (performance.now() < deadline) {
    const leader = await primary(cluster);
    if (leader) {
      try {
        const replication = await query<Replication>(cluster, leader, 'SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY application_name');
        const streaming = replication.filter((row) => row.state === 'streaming');
        last = `${leader.name} leads; ${JSON.stringify(replication)}`;
        if (streaming.length === cluster.members.length - 1 && streaming.some((row) => row.sync_state === 'sync')) return { leader, replication };
      } catch (error) {
        last = (error as Error).message;
      }
    }
    await sleep(250);
  }
  throw new Error(
    `${what}: the cluster did not reach a primary streaming to ${cluster.members.length - 1} replicas (one synchronous) within ${timeoutSeconds} s; last seen: ${last}`,
  );
}

/** Waits until Patroni's view of the cluster (its REST API's /cluster) has a synchronous standby. */
async function waitForSyncStandby(cluster: Cluster, leader: Member, timeoutSeconds: number): Promise<void> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  while (performance.now() < deadline) {
    const view = (await cluster.api(leader, '/cluster')) as { members?: Array<{ name: string; role: string }> } | undefined;
    if (view?.members?.some((member) => member.role === 'sync_standby')) return;
    await sleep(250);
  }
  throw new Error(`Patroni named no synchronous standby within ${timeoutSeconds} s`);
}

/** Acknowledged commits the member does not have. */
async function missingOn(cluster: Cluster, member: Member, acks: readonly Ack[]): Promise<number[]> {
  const rows = await query<{ seq: string }>(
    cluster,
    member,
    'SELECT s AS seq FROM unnest($1::bigint[]) AS s WHERE NOT EXISTS (SELECT FROM drill_commits WHERE seq = s) ORDER BY s',
    [acks.map((ack) => ack.seq)],
  );
  return rows.map((row) => Number(row.seq));
}

/** The longest time between two consecutive acknowledgements from `from` on, and when it ended. */
function longestPause(acks: readonly Ack[], from: number, until: number): number {
  let pause = 0;
  for (let i = 1; i < acks.length; i++) {
    if (acks[i]!.at < from || acks[i - 1]!.at > until) continue;
    pause = Math.max(pause, acks[i]!.at - acks[i - 1]!.at);
  }
  return pause;
}

let cluster: Cluster | undefined;
let writer: Writer | undefined;
stopOnExit(
  run,
  async () => {
    await writer?.stop().catch(() => {});
    await cluster?.stop(values.keep);
  },
  () => cluster?.killAllNow(),
);

try {
  cluster = await PatroniCluster.create({ members: 3, log });
  const settings = cluster.config.bootstrap.dcs;
  report.versions = {
    patroni: toolVersion(['patroni', '--version']),
    etcd: toolVersion(['etcd', '--version']),
    postgresql: toolVersion([join(cluster.postgres.bin, 'postgres'), '--version']),
  };
  report.settings = {
    ttl: settings.ttl,
    loop_wait: settings.loop_wait,
    retry_timeout: settings.retry_timeout,
    maximum_lag_on_failover: settings.maximum_lag_on_failover,
    synchronous_mode: settings.synchronous_mode,
    synchronous_mode_strict: settings.synchronous_mode_strict,
    use_pg_rewind: settings.postgresql.use_pg_rewind,
    use_slots: settings.postgresql.use_slots,
  };
  report.postgresqlConfAdjustments = cluster.confAdjustments;
  log(`cluster in ${cluster.directory}: ${report.versions && JSON.stringify(report.versions)}`);
  if (cluster.confAdjustments.length) log(`postgresql.conf for PostgreSQL ${cluster.postgres.major}: commented out ${cluster.confAdjustments.join('; ')}`);

  await cluster.startEtcd();
  for (const member of cluster.members) cluster.start(member);
  const ready = await waitForHealthy(cluster, BOUNDS.readySeconds, 'start');
  log(`ready: ${ready.leader.name} leads, ${ready.replication.map((row) => `${row.application_name} ${row.sync_state}`).join(', ')}`);
  // What Patroni holds in the DCS is what patroni.ts rendered (it ignores keys it does not know).
  const dynamic = (await cluster.api(ready.leader, '/config')) as Record<string, unknown> | undefined;
  report.dcsConfig = dynamic;
  for (const key of ['synchronous_mode', 'synchronous_mode_strict', 'ttl', 'loop_wait', 'retry_timeout', 'maximum_lag_on_failover'] as const) {
    if (dynamic?.[key] !== settings[key]) failures.push(`the DCS holds ${key} = ${JSON.stringify(dynamic?.[key])}, patroni.ts rendered ${JSON.stringify(settings[key])}`);
  }
  report.startSeconds = seconds(performance.now() - started);

  // What Patroni's post_bootstrap (patroni/post-bootstrap.sh and the roles script) left on the
  // cluster, seen on a replica: the platform's database and roles, the rewind role's access to
  // the database `postgres` that the hardening takes from everyone else, and a platform login.
  const replica = cluster.members.find((member) => member !== ready.leader)!;
  const [bootstrapped] = await query<{ database: boolean; roles: string[]; rewind_connect: boolean; app_connect_postgres: boolean }>(
    cluster,
    replica,
    `SELECT EXISTS (SELECT FROM pg_database WHERE datname = 'allixios') AS database,
            array(SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'allixios\\_%' ORDER BY 1) AS roles,
            has_database_privilege('allixios_rewind', 'postgres', 'CONNECT') AS rewind_connect,
            has_database_privilege('allixios_app', 'postgres', 'CONNECT') AS app_connect_postgres`,
  );
  const appLogin = await cluster.login(replica, 'allixios_app', 'app-password', 'allixios');
  report.postBootstrap = { member: replica.name, ...bootstrapped, appLogin };
  log(
    `post-bootstrap: on ${replica.name} roles ${bootstrapped?.roles.join(', ')}; allixios_rewind may connect to postgres: ${bootstrapped?.rewind_connect}; allixios_app logs in: ${appLogin}`,
  );
  const expectedRoles = ['allixios_app', 'allixios_owner', 'allixios_readonly', 'allixios_replicator', 'allixios_rewind'];
  if (!bootstrapped?.database || JSON.stringify(bootstrapped.roles) !== JSON.stringify(expectedRoles)) {
    failures.push(`post-bootstrap: expected database allixios and roles ${expectedRoles.join(', ')}, got ${JSON.stringify(bootstrapped)}`);
  }
  if (!bootstrapped?.rewind_connect || bootstrapped.app_connect_postgres)
    failures.push(`post-bootstrap: expected CONNECT on postgres for allixios_rewind only, got ${JSON.stringify(bootstrapped)}`);
  if (appLogin !== 'allixios_app') failures.push(`post-bootstrap: allixios_app could not log in with its password: ${appLogin}`);

  await query(cluster, ready.leader, 'CREATE TABLE drill_commits (seq bigint PRIMARY KEY, committed_at timestamptz NOT NULL DEFAULT clock_timestamp())');
  const activeWriter = new Writer(cluster);
  writer = activeWriter;
  activeWriter.start();
  await sleep(3000);

  // 1. Failover: the leader's node is lost.
  const lost = ready.leader;
  const ackedBeforeKill = activeWriter.acks.length;
  const killedAt = performance.now();
  cluster.killNode(lost);
  log(`kill -9: ${lost.name}'s Patroni and PostgreSQL, after ${ackedBeforeKill} acknowledged commits`);
  while (!activeWriter.firstAckAfter(killedAt, lost.name) && performance.now() - killedAt < BOUNDS.failoverSeconds * 1000) await sleep(50);
  const firstAfter = activeWriter.firstAckAfter(killedAt, lost.name);
  if (!firstAfter) throw new Error(`failover: no write succeeded within ${BOUNDS.failoverSeconds} s of the kill`);
  const failoverSeconds = seconds(firstAfter.at - killedAt);
  const newLeader = cluster.members.find((member) => member.name === firstAfter.member)!;
  const acksAtFailover = activeWriter.acks.filter((ack) => ack.at < firstAfter.at);
  const lostAtFailover = await missingOn(cluster, newLeader, acksAtFailover);
  log(`failover: writes on ${newLeader.name} ${failoverSeconds} s after the kill; ${lostAtFailover.length} of ${acksAtFailover.length} acknowledged commits missing`);
  report.failover = {
    killed: lost.name,
    newLeader: newLeader.name,
    seconds: failoverSeconds,
    acknowledgedBefore: acksAtFailover.length,
    lostAcknowledged: lostAtFailover.length,
    lostSample: lostAtFailover.slice(0, 10),
  };
  if (lostAtFailover.length) failures.push(`failover lost ${lostAtFailover.length} acknowledged commits`);

  // 2. The lost member comes back.
  const restartedAt = performance.now();
  cluster.start(lost);
  let rejoinSeconds: number | undefined;
  while (performance.now() - restartedAt < BOUNDS.rejoinSeconds * 1000) {
    const rows = await query<Replication>(cluster, newLeader, 'SELECT application_name, state, sync_state FROM pg_stat_replication WHERE application_name = $1', [lost.name]).catch(
      () => [],
    );
    if (rows.some((row) => row.state === 'streaming')) {
      rejoinSeconds = seconds(performance.now() - restartedAt);
      break;
    }
    await sleep(250);
  }
  const lostLog = readFileSync(lost.logFile, 'utf8');
  // Patroni's own log lines (patroni/postgresql/rewind.py): whether it rewound, and how that ended.
  const rewound = /running pg_rewind from/.test(lostLog);
  const rewindExit = /pg_rewind exit code=(\d+)/.exec(lostLog)?.[1];
  report.rejoin = { member: lost.name, seconds: rejoinSeconds ?? null, pgRewind: rewound, pgRewindExitCode: rewindExit === undefined ? null : Number(rewindExit) };
  if (rejoinSeconds === undefined) throw new Error(`rejoin: ${lost.name} did not stream from ${newLeader.name} within ${BOUNDS.rejoinSeconds} s:\n${cluster.tail(lost.logFile)}`);
  log(`rejoin: ${lost.name} streams from ${newLeader.name} ${rejoinSeconds} s after its restart (pg_rewind ${rewound ? 'ran' : 'did not run'})`);

  // 3. A planned switchover, once the cluster is whole again.
  const whole = await waitForHealthy(cluster, BOUNDS.rejoinSeconds, 'before the switchover');
  // Patroni refuses a switchover until its DCS names a synchronous standby, which it writes in
  // its own loop (up to loop_wait after PostgreSQL reports one).
  await waitForSyncStandby(cluster, whole.leader, BOUNDS.switchoverSeconds);
  const requestedAt = performance.now();
  const response = await cluster.apiPost(whole.leader, '/switchover', { leader: whole.leader.name });
  if (response.status !== 200) throw new Error(`switchover: the REST API answered ${response.status}: ${response.text}`);
  while (!(activeWriter.acks.at(-1)!.member !== whole.leader.name && activeWriter.acks.at(-1)!.at > requestedAt)) {
    if (performance.now() - requestedAt > BOUNDS.switchoverSeconds * 1000) throw new Error(`switchover: no write on another member within ${BOUNDS.switchoverSeconds} s`);
    await sleep(50);
  }
  const switchedAt = activeWriter.acks.at(-1)!.at;
  await sleep(1000);
  const pause = longestPause(activeWriter.acks, requestedAt, switchedAt);
  const target = cluster.members.find((member) => member.name === activeWriter.acks.at(-1)!.member)!;
  log(`switchover: ${whole.leader.name} -> ${target.name} (${response.text.trim()}); longest write pause ${seconds(pause)} s`);

  await activeWriter.stop();
  const lostAtEnd = await missingOn(cluster, target, activeWriter.acks);
  const final = await waitForHealthy(cluster, BOUNDS.rejoinSeconds, 'after the switchover');
  report.switchover = {
    from: whole.leader.name,
    to: target.name,
    pauseSeconds: seconds(pause),
    lostAcknowledged: lostAtEnd.length,
    lostSample: lostAtEnd.slice(0, 10),
  };
  if (lostAtEnd.length) failures.push(`${lostAtEnd.length} acknowledged commits missing at the end`);
  report.commits = { acknowledged: activeWriter.acks.length, inDoubt: activeWriter.inDoubt.length };
  report.final = { leader: final.leader.name, replication: final.replication };
} catch (error) {
  failures.push((error as Error).message);
  log(String((error as Error).stack));
  if (cluster) for (const member of cluster.members) log(`--- ${member.name} log, last lines ---\n${cluster.tail(member.logFile, 15)}`);
} finally {
  await writer?.stop().catch(() => {});
  await cluster?.stop(values.keep);
  if (values.keep && cluster) log(`kept ${cluster.directory}`);
}

finishDrill(run, {
  name: 'patroni-drill',
  ...(values.out ? { out: values.out } : {}),
  startedAt: started,
  table: (figure) => [
    `| failover s | lost acknowledged | rejoin s (pg_rewind) | switchover pause s | lost acknowledged | commits acknowledged | total s |`,
    `|---|---|---|---|---|---|---|`,
    `| ${figure('failover', 'seconds')} | ${figure('failover', 'lostAcknowledged')} | ${figure('rejoin', 'seconds')} (${figure('rejoin', 'pgRewind')}) | ${figure('switchover', 'pauseSeconds')} | ${figure('switchover', 'lostAcknowledged')} | ${figure('commits', 'acknowledged')} | ${report.totalSeconds} |`,
  ],
  ok: 'drill:patroni: no acknowledged commit lost; the cluster recovered within the bounds',
});
