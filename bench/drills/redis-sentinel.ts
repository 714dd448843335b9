/**
 * `npm run drill:redis-sentinel`: Redis under Sentinel on real processes. Three Redis members and
 * three Sentinels (Debian's redis-server and redis-sentinel, 7.0 here; the image runs 7.4), each
 * started by the project's start scripts with the configuration, ACL and secret files the program
 * renders for prod (`bench/drills/redis-sentinel-cluster.ts`), over TLS as in prod. An ioredis client
 * built from the stack's settings (`sentinelClientOptions`: REDIS_URL, REDIS_SENTINELS,
 * REDIS_MASTER_NAME) writes sequence-numbered keys in a loop throughout:
 *
 * 1. failover: kill -9 of the master; the time until a write succeeds again, and the acknowledged
 *    writes the new master lacks (Redis replicates asynchronously: a write acknowledged an instant
 *    before the kill may not have reached a replica yet);
 * 2. rejoin: the old master started again comes back as a replica of the new one, in sync;
 * 3. isolated master: both replicas stopped (SIGSTOP: frozen with their connections open, as behind
 *    a network partition, so the master only stops hearing from them); the time until the master
 *    refuses writes (min-replicas-to-write, min-replicas-max-lag), then both resumed and the time
 *    until writes succeed again.
 *
 * Writes a JSON report (bench/results/redis-sentinel-drill-<time>.json, or --out) and prints a
 * table. Exit 1 when an acknowledged write is lost beyond what asynchronous replication allows
 * (acknowledged more than min-replicas-max-lag seconds before the kill, or lost outside the
 * failover), or when the cluster does not recover, or the isolated master does not refuse,
 * within the bounds; the figures themselves are reported, not asserted.
 */
import { Redis } from 'ioredis';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { sentinelClientOptions } from '../../bootstrap/adapters/redis-sentinel.ts';
import { defineCommand } from '../../bootstrap/command-line.ts';
import { finishDrill, startDrill, stopOnExit, toolVersion } from './drill-run.ts';
import { connectionUrl } from '../../databases/connection.ts';
import { MASTER_NAME, MIN_REPLICAS_MAX_LAG, minReplicasToWrite, SENTINEL_TIMING, sentinelQuorum } from '../../databases/redis/sentinel.ts';

const command = defineCommand({
  name: 'drill:redis-sentinel',
  synopsis: ['npm run drill:redis-sentinel -- [options]'],
  summary:
    'Runs 3 Redis members and 3 Sentinels as real processes with the prod configuration of databases/redis (TLS, ACL, min-replicas-to-write), and measures a failover (kill -9 of the master), the old master rejoining as a replica, and an isolated master refusing writes, while an ioredis client with the stack’s Sentinel settings writes in a loop.',
  options: {
    out: { type: 'string', value: '<file>', description: 'where to write the JSON report (default bench/results/redis-sentinel-drill-<time>.json)' },
    keep: { type: 'boolean', description: "keep the cluster's directory (configurations, logs) after the drill" },
  },
  notes: 'Needs the Debian packages redis-server and redis-sentinel (7.0 or later) and openssl. As root it runs everything as the OS user redis.',
  exitCodes: {
    ok: 'no acknowledged write lost beyond asynchronous replication; the cluster recovered and the isolated master refused writes within the bounds',
    failed: 'an acknowledged write was lost beyond that, or the cluster did not recover, or the isolated master did not refuse, in time',
  },
});
const { values } = command.parse();

const { SentinelCluster } = await import('./redis-sentinel-cluster.ts');
type Cluster = import('./redis-sentinel-cluster.ts').SentinelCluster;
type Process = import('./redis-sentinel-cluster.ts').Process;

/** Generous bounds: beyond them the drill fails; within them the figures are only reported. */
const BOUNDS = { readySeconds: 30, failoverSeconds: 45, rejoinSeconds: 30, refusalSeconds: 30, resumeSeconds: 30 };

const started = performance.now();
const run = startDrill(BOUNDS);
const { seconds, log, report, failures } = run;

interface Ack {
  seq: number;
  /** When the write was issued, and when its acknowledgement came. */
  sentAt: number;
  at: number;
}

interface Failure {
  seq: number;
  at: number;
  message: string;
}

/** The client: SET cache:drill:<n> for n = 1, 2, 3, ... one at a time, through Sentinel. */
class Writer {
  readonly acks: Ack[] = [];
  readonly failures: Failure[] = [];
  private seq = 0;
  private stopped = false;
  private running?: Promise<void>;

  constructor(readonly client: Redis) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    this.client.disconnect();
  }

  firstAckSentAfter(time: number): Ack | undefined {
    return this.acks.find((ack) => ack.sentAt > time);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const seq = ++this.seq;
      const sentAt = performance.now();
      try {
        await this.client.set(`cache:drill:${seq}`, String(seq), 'EX', 3600);
        this.acks.push({ seq, sentAt, at: performance.now() });
        await sleep(2);
      } catch (error) {
        this.failures.push({ seq, at: performance.now(), message: (error as Error).message });
        await sleep(50);
      }
    }
  }
}

/** Waits until every Sentinel names `master`, sees `replicas` replicas and the other Sentinels, and every probe passes. */
async function waitForHealthy(cluster: Cluster, replicas: number, timeoutSeconds: number, what: string): Promise<Process> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  let last = 'nothing yet';
  while (performance.now() < deadline) {
    const views = await Promise.all(cluster.sentinels.map((sentinel) => cluster.sentinelView(sentinel)));
    const addresses = new Set(views.map((view) => (view ? `${view.ip}:${view.port}` : 'none')));
    const master = views[0] ? cluster.memberAt(`${views[0].ip}:${views[0].port}`) : undefined;
    last = JSON.stringify(
      views.map((view) => view && { master: `${view.ip}:${view.port}`, flags: view.flags, replicas: view['num-slaves'], sentinels: view['num-other-sentinels'] }),
    );
    if (master && addresses.size === 1 && views.every((view) => view && view.flags === 'master' && Number(view['num-other-sentinels']) === cluster.sentinels.length - 1)) {
      const synced = await Promise.all(cluster.members.filter((member) => member !== master).map((member) => cluster.replication(member)));
      const inSync = synced.filter((info) => info?.role === 'slave' && info.master_link_status === 'up' && `${info.master_host}:${info.master_port}` === master.address).length;
      last += `; ${inSync} replicas in sync`;
      if (
        inSync >= replicas &&
        cluster.members.every((member) => !member.process || cluster.probe(member, 'redis-member.sh', 'ready')) &&
        cluster.sentinels.every((sentinel) => cluster.probe(sentinel, 'sentinel.sh', 'ready'))
      ) {
        return master;
      }
    }
    await sleep(250);
  }
  throw new Error(
    `${what}: the cluster did not settle (one master named by every Sentinel, ${replicas} replicas in sync, probes ready) within ${timeoutSeconds} s; last seen: ${last}`,
  );
}

/** Acknowledged writes the member does not have. */
async function missingOn(cluster: Cluster, member: Process, acks: readonly Ack[]): Promise<Ack[]> {
  const client = cluster.client(member);
  await client.connect();
  try {
    const missing: Ack[] = [];
    for (let offset = 0; offset < acks.length; offset += 1000) {
      const batch = acks.slice(offset, offset + 1000);
      const pipeline = client.pipeline();
      for (const ack of batch) pipeline.exists(`cache:drill:${ack.seq}`);
      const results = (await pipeline.exec()) ?? [];
      batch.forEach((ack, index) => {
        if (results[index]?.[1] !== 1) missing.push(ack);
      });
    }
    return missing;
  } finally {
    client.disconnect();
  }
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
  cluster = await SentinelCluster.create({ log });
  const members = cluster.members.length;
  report.versions = { redisServer: toolVersion(['redis-server', '--version']), redisSentinel: toolVersion(['redis-sentinel', '--version']) };
  report.settings = {
    members,
    sentinels: cluster.sentinels.length,
    quorum: sentinelQuorum(cluster.sentinels.length),
    downAfterMilliseconds: SENTINEL_TIMING.downAfterMilliseconds,
    failoverTimeoutMilliseconds: SENTINEL_TIMING.failoverTimeoutMilliseconds,
    minReplicasToWrite: minReplicasToWrite(members),
    minReplicasMaxLag: MIN_REPLICAS_MAX_LAG,
    tls: true,
  };
  log(`cluster in ${cluster.directory}: ${JSON.stringify(report.versions)}`);

  // Members one after the other, as the StatefulSet starts them (OrderedReady), then the Sentinels together.
  for (const member of cluster.members) {
    cluster.startMember(member);
    const deadline = performance.now() + BOUNDS.readySeconds * 1000;
    while (!cluster.probe(member, 'redis-member.sh', 'ready')) {
      if (performance.now() > deadline) throw new Error(`${member.name} was not ready within ${BOUNDS.readySeconds} s:\n${cluster.tail(member.logFile)}`);
      await sleep(200);
    }
  }
  for (const sentinel of cluster.sentinels) cluster.startSentinel(sentinel);
  const first = await waitForHealthy(cluster, members - 1, BOUNDS.readySeconds, 'start');
  report.startSeconds = seconds(performance.now() - started);
  log(`ready: ${first.name} is master, ${members - 1} replicas in sync, ${cluster.sentinels.length} Sentinels agree`);

  const url = connectionUrl(cluster.spec.appConnection, cluster.passwords['app-password']!, 'localhost', first.port, { caFile: cluster.caFile });
  const options = sentinelClientOptions(url, cluster.sentinels.map((sentinel) => sentinel.address).join(','), MASTER_NAME);
  const activeWriter = new Writer(new Redis({ ...options, lazyConnect: true }));
  activeWriter.client.on('error', () => {});
  writer = activeWriter;
  await activeWriter.client.connect();
  activeWriter.start();
  await sleep(3000);

  // 1. Failover: the master's node is lost.
  const lost = first;
  const killedAt = performance.now();
  const ackedBeforeKill = activeWriter.acks.length;
  cluster.kill(lost);
  log(`kill -9: ${lost.name}, the master, after ${ackedBeforeKill} acknowledged writes`);
  while (!activeWriter.firstAckSentAfter(killedAt) && performance.now() - killedAt < BOUNDS.failoverSeconds * 1000) await sleep(50);
  const firstAfter = activeWriter.firstAckSentAfter(killedAt);
  if (!firstAfter) throw new Error(`failover: no write succeeded within ${BOUNDS.failoverSeconds} s of the kill`);
  const failoverSeconds = seconds(firstAfter.at - killedAt);
  const promoted = await waitForHealthy(cluster, members - 2, BOUNDS.failoverSeconds, 'after the failover');
  const acksAtFailover = activeWriter.acks.filter((ack) => ack.at < firstAfter.at);
  const lostAtFailover = await missingOn(cluster, promoted, acksAtFailover);
  // Asynchronous replication loses at most what the replicas had not received when the master
  // died: writes acknowledged just before the kill. One older than min-replicas-max-lag is not that.
  const allowedFrom = killedAt - MIN_REPLICAS_MAX_LAG * 1000;
  const beyond = lostAtFailover.filter((ack) => ack.at < allowedFrom);
  const refusedDuring = activeWriter.failures.filter((failure) => failure.at > killedAt && failure.at < firstAfter.at);
  log(`failover: ${promoted.name} promoted; writes again ${failoverSeconds} s after the kill; ${lostAtFailover.length} of ${acksAtFailover.length} acknowledged writes missing`);
  report.failover = {
    killed: lost.name,
    newMaster: promoted.name,
    seconds: failoverSeconds,
    acknowledgedBefore: acksAtFailover.length,
    lostAcknowledged: lostAtFailover.length,
    lostMillisecondsBeforeKill: lostAtFailover.map((ack) => Math.round(killedAt - ack.at)),
    lostBeyondAsyncReplication: beyond.length,
    errorsDuring: refusedDuring.length,
    errorSample: [...new Set(refusedDuring.map((failure) => failure.message))].slice(0, 5),
  };
  if (beyond.length) failures.push(`failover lost ${beyond.length} acknowledged writes older than min-replicas-max-lag (${MIN_REPLICAS_MAX_LAG} s) before the kill`);

  // 2. The old master comes back: its start script asks the Sentinels and starts it as a replica.
  const restartedAt = performance.now();
  cluster.startMember(lost);
  let rejoinSeconds: number | undefined;
  let lostInfo: Record<string, string> | undefined;
  while (performance.now() - restartedAt < BOUNDS.rejoinSeconds * 1000) {
    lostInfo = await cluster.replication(lost);
    if (lostInfo?.role === 'slave' && lostInfo.master_link_status === 'up' && `${lostInfo.master_host}:${lostInfo.master_port}` === promoted.address) {
      rejoinSeconds = seconds(performance.now() - restartedAt);
      break;
    }
    await sleep(200);
  }
  report.rejoin = { member: lost.name, seconds: rejoinSeconds ?? null, role: lostInfo?.role ?? null, master: lostInfo ? `${lostInfo.master_host}:${lostInfo.master_port}` : null };
  if (rejoinSeconds === undefined) throw new Error(`rejoin: ${lost.name} did not replicate from ${promoted.name} within ${BOUNDS.rejoinSeconds} s:\n${cluster.tail(lost.logFile)}`);
  log(`rejoin: ${lost.name} is a replica of ${promoted.name}, in sync, ${rejoinSeconds} s after its restart`);
  const master = await waitForHealthy(cluster, members - 1, BOUNDS.rejoinSeconds, 'after the rejoin');

  // 3. The master isolated: both replicas stopped, their connections left open (a partition).
  const replicas = cluster.members.filter((member) => member !== master);
  const isolatedAt = performance.now();
  for (const replica of replicas) cluster.pause(replica);
  log(`isolation: ${replicas.map((replica) => replica.name).join(' and ')} stopped (SIGSTOP); ${master.name} is master alone`);
  let refusal: Failure | undefined;
  while (performance.now() - isolatedAt < BOUNDS.refusalSeconds * 1000) {
    refusal = activeWriter.failures.find((failure) => failure.at > isolatedAt && failure.message.startsWith('NOREPLICAS'));
    if (refusal) break;
    await sleep(50);
  }
  const acceptedWhileIsolated = activeWriter.acks.filter((ack) => ack.at > isolatedAt && (!refusal || ack.at < refusal.at)).length;
  if (!refusal)
    failures.push(`isolation: ${master.name} still accepted writes ${BOUNDS.refusalSeconds} s after losing its replicas (min-replicas-to-write ${minReplicasToWrite(members)})`);
  const refusalSeconds = refusal ? seconds(refusal.at - isolatedAt) : null;
  log(`isolation: ${refusal ? `writes refused ${refusalSeconds} s after (${refusal.message})` : 'never refused'}; ${acceptedWhileIsolated} accepted meanwhile`);
  await sleep(1000);
  const refusedThen = refusal ? activeWriter.failures.filter((failure) => failure.at > refusal.at).length : 0;
  const ackedThen = refusal ? activeWriter.acks.filter((ack) => ack.at > refusal.at).length : 0;

  // The replicas come back; writes resume once one of them has acknowledged within the lag.
  const returnedAt = performance.now();
  for (const replica of replicas) cluster.resume(replica);
  while (!activeWriter.firstAckSentAfter(returnedAt) && performance.now() - returnedAt < BOUNDS.resumeSeconds * 1000) await sleep(50);
  const resumed = activeWriter.firstAckSentAfter(returnedAt);
  if (!resumed) throw new Error(`isolation: writes did not resume within ${BOUNDS.resumeSeconds} s of the replicas' return`);
  report.isolatedMaster = {
    master: master.name,
    refusalSeconds,
    refusal: refusal?.message ?? null,
    acceptedWhileIsolated,
    refusedInTheSecondAfter: refusedThen,
    acceptedInTheSecondAfter: ackedThen,
    resumeSecondsAfterReplicasResumed: seconds(resumed.at - returnedAt),
  };
  log(`isolation: writes again ${seconds(resumed.at - returnedAt)} s after the replicas were resumed`);
  if (ackedThen > 0) failures.push(`isolation: ${ackedThen} writes accepted after the first refusal while the replicas were still down`);

  const final = await waitForHealthy(cluster, members - 1, BOUNDS.resumeSeconds, 'at the end');
  await activeWriter.stop();
  const failoverLost = new Set(lostAtFailover.map((ack) => ack.seq));
  const lostAtEnd = (await missingOn(cluster, final, activeWriter.acks)).filter((ack) => !failoverLost.has(ack.seq));
  report.end = { master: final.name, acknowledged: activeWriter.acks.length, errors: activeWriter.failures.length, lostOutsideFailover: lostAtEnd.length };
  if (lostAtEnd.length) failures.push(`${lostAtEnd.length} acknowledged writes missing at the end besides the failover's`);
  log(`end: ${final.name} is master; ${activeWriter.acks.length} writes acknowledged, ${lostAtEnd.length} missing besides the failover's`);
} catch (error) {
  failures.push((error as Error).message);
  log(String((error as Error).stack));
  if (cluster) for (const target of [...cluster.members, ...cluster.sentinels]) log(`--- ${target.name} log, last lines ---\n${cluster.tail(target.logFile, 15)}`);
} finally {
  await writer?.stop().catch(() => {});
  await cluster?.stop(values.keep);
}

finishDrill(run, {
  name: 'redis-sentinel-drill',
  ...(values.out ? { out: values.out } : {}),
  startedAt: started,
  table: (figure) => [
    '| failover s | lost acknowledged (beyond async) | rejoin s | isolated master refuses after s | accepted while isolated | writes resume s | writes acknowledged | total s |',
    '|---|---|---|---|---|---|---|---|',
    `| ${figure('failover', 'seconds')} | ${figure('failover', 'lostAcknowledged')} (${figure('failover', 'lostBeyondAsyncReplication')}) | ${figure('rejoin', 'seconds')} | ${figure('isolatedMaster', 'refusalSeconds')} | ${figure('isolatedMaster', 'acceptedWhileIsolated')} | ${figure('isolatedMaster', 'resumeSecondsAfterReplicasResumed')} | ${figure('end', 'acknowledged')} | ${report.totalSeconds} |`,
  ],
  ok: 'drill:redis-sentinel: no acknowledged write lost beyond asynchronous replication; failover, rejoin and the isolated master’s refusal within the bounds',
});
