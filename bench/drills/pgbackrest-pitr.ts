/**
 * `npm run drill:pgbackrest`: PostgreSQL's backups and point-in-time recovery on real processes.
 * Debian's PostgreSQL 15 with the archiving settings `databases/postgresql/backup.ts` renders,
 * pgBackRest 2.45 with the program's rendered configurations (a local directory standing in for
 * the object store: the posix variant of `pgbackrestConfig`), and pgBackRest's TLS server beside
 * the server as the agent a backup job reaches over mutual TLS, as on Kubernetes:
 *
 * 1. load data, create the stanza and take a full backup through the agent (measured);
 * 2. commit marked rows, one every 200 ms for 10 s, reading each commit's time as the server
 *    recorded it (`track_commit_timestamp`); pick a target time between two marks;
 * 3. restore to that time with `restorePostgresql` into a fresh data directory (measured) and
 *    check that exactly the marks committed up to the target are there;
 * 4. RPO: keep committing rows until archive_timeout has forced a WAL segment out (no switch of
 *    ours), a few seconds more, then kill -9 the primary and restore the latest into another fresh
 *    directory: how many acknowledged commits are missing, over how many seconds, and how old the
 *    newest archived WAL was at the kill. It fails when the loss exceeds what archive_timeout bounds.
 *
 * Writes a JSON report (bench/results/pgbackrest-drill-<time>.json, or --out) and prints a table.
 * Exit 1 when a restore misses or adds a row it must not, or the loss exceeds archive_timeout's
 * bound; the figures themselves are reported, not asserted.
 */
import { join } from 'node:path';
import { sleep } from '../../bootstrap/adapters/backoff.ts';
import { defineCommand } from '../../bootstrap/command-line.ts';

const command = defineCommand({
  name: 'drill:pgbackrest',
  synopsis: ['npm run drill:pgbackrest -- [options]'],
  summary:
    'Backs up a PostgreSQL 15 with pgBackRest through its TLS agent, with the settings databases/postgresql/backup.ts renders, restores it to a moment between two marked commits and to the latest after a kill -9, and measures backup and restore times and the data lost (RPO).',
  options: {
    out: { type: 'string', value: '<file>', description: 'where to write the JSON report (default bench/results/pgbackrest-drill-<time>.json)' },
    keep: { type: 'boolean', description: "keep the drill's directory (configurations, repository, logs) after the drill" },
  },
  notes: 'Needs the Debian packages postgresql-15 and pgbackrest, and openssl. As root it runs PostgreSQL and pgBackRest as the OS user postgres.',
  exitCodes: {
    ok: 'both restores held exactly the rows they must, and the loss stayed within archive_timeout',
    failed: 'a restore missed or added a row, or lost more than archive_timeout bounds, or a step failed',
  },
});
const { values } = command.parse();

const { PgbackrestLab } = await import('./pgbackrest-lab.ts');
const { restorePostgresql } = await import('../../databases/postgresql/restore.ts');
const { ARCHIVE_TIMEOUT_SECONDS } = await import('../../databases/postgresql/backup.ts');
const { finishDrill, startDrill, stopOnExit, toolVersion } = await import('./drill-run.ts');
type Lab = import('./pgbackrest-lab.ts').PgbackrestLab;
type RestoredServer = import('../../databases/postgresql/restore.ts').RestoredServer;

/** Generous bounds: beyond them the drill fails; within them the figures are only reported. */
const BOUNDS = {
  /** The longest wait for archive_timeout to force a segment out, after the last switch. */
  forcedSwitchSeconds: ARCHIVE_TIMEOUT_SECONDS + 30,
  /** The most commits the latest restore may miss, in seconds before the kill: archive_timeout and the push. */
  lossSeconds: ARCHIVE_TIMEOUT_SECONDS + 10,
  restoreSeconds: 120,
};
const MARKS = 50;
const MARK_INTERVAL_MS = 200;
const LOAD_ROWS = 200_000;

const started = performance.now();
const run = startDrill(BOUNDS);
const { seconds, log, report, failures } = run;
report.command = ['npm run drill:pgbackrest --', ...process.argv.slice(2)].join(' ');

let lab: Lab | undefined;
const restored: RestoredServer[] = [];
stopOnExit(
  run,
  async () => {
    for (const server of restored) await server.stop().catch(() => {});
    await lab?.stop(values.keep);
  },
  () => lab?.killAllNow(),
);

/** Rows of a table on a restored server. */
async function rowsOn(server: RestoredServer, sql: string): Promise<number[]> {
  const client = server.client();
  await client.connect();
  try {
    return (await client.query<{ seq: number }>(sql)).rows.map((row) => Number(row.seq));
  } finally {
    await client.end().catch(() => {});
  }
}

/** 1..n, for comparing what a restore holds with what it must. */
const upTo = (n: number) => Array.from({ length: n }, (_, index) => index + 1);

try {
  lab = await PgbackrestLab.create({ major: 15 });
  const theLab = lab;
  report.versions = {
    postgresql: toolVersion([join(lab.postgres.bin, 'postgres'), '--version']),
    pgbackrest: toolVersion([lab.pgbackrest, 'version']),
  };
  // What the drill runs with, from the rendered configurations (no secret is in them).
  report.settings = {
    archive_timeout: `${ARCHIVE_TIMEOUT_SECONDS}s`,
    member: lab.memberConfig,
    agent: lab.agentConfig,
    repositoryHost: lab.repositoryConfig,
  };
  log(`lab in ${lab.directory}: ${JSON.stringify(report.versions)}`);

  await lab.initdb();
  await lab.startServer();
  await lab.startAgent();
  log(`PostgreSQL ${lab.postgres.major} on its socket (port ${lab.port}), the pgBackRest agent on 127.0.0.1:${lab.agentPort} (TLS, client CN checked)`);

  // 1. Data, stanza, full backup through the agent.
  await lab.query(
    `CREATE TABLE drill_load AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, ${LOAD_ROWS}) AS g;
     CREATE TABLE drill_marks (seq integer PRIMARY KEY);
     CREATE TABLE drill_rpo (seq integer PRIMARY KEY)`,
  );
  const stanzaStarted = performance.now();
  await lab.backupJob(['stanza-create']);
  const stanzaSeconds = seconds(performance.now() - stanzaStarted);
  const backupStarted = performance.now();
  await lab.backupJob(['--type=full', 'backup']);
  const backupSeconds = seconds(performance.now() - backupStarted);
  const [stanza] = await lab.info();
  const full = stanza!.backup.at(-1)!;
  report.backup = {
    label: full.label,
    seconds: backupSeconds,
    stanzaCreateSeconds: stanzaSeconds,
    databaseBytes: full.info.size,
    repositoryBytes: full.info.repository.size,
    rows: LOAD_ROWS,
  };
  log(`full backup ${full.label}: ${backupSeconds} s, ${full.info.size} bytes of cluster, ${full.info.repository.size} in the repository (zst, encrypted)`);

  // 2. Marked commits, each commit's time as the server recorded it.
  const marker = lab.client();
  await marker.connect();
  for (let seq = 1; seq <= MARKS; seq++) {
    const next = performance.now() + MARK_INTERVAL_MS;
    await marker.query('INSERT INTO drill_marks (seq) VALUES ($1)', [seq]);
    await sleep(Math.max(0, next - performance.now()));
  }
  await marker.query("SET timezone = 'UTC'");
  const marks = (await marker.query<{ seq: number; committed: string }>('SELECT seq, pg_xact_commit_timestamp(xmin)::text AS committed FROM drill_marks ORDER BY seq')).rows;
  const keep = Math.floor(MARKS / 2);
  // Halfway between the commit of mark `keep` and that of the next one, to the microsecond.
  const [{ target }] = (
    await marker.query<{ target: string }>(
      'SELECT (a + (b - a) / 2)::text AS target FROM (SELECT pg_xact_commit_timestamp(xmin) AS a FROM drill_marks WHERE seq = $1) x, (SELECT pg_xact_commit_timestamp(xmin) AS b FROM drill_marks WHERE seq = $2) y',
      [keep, keep + 1],
    )
  ).rows as [{ target: string }];
  await marker.end();
  log(`${MARKS} marks committed from ${marks[0]!.committed} to ${marks.at(-1)!.committed}; target ${target}, between mark ${keep} and ${keep + 1}`);

  // The WAL holding the marks reaches the repository: `check` (through the agent) switches the
  // segment and waits for it; then the last complete segment, which the wait below starts from.
  const checkStarted = performance.now();
  await lab.backupJob(['check']);
  report.check = { seconds: seconds(performance.now() - checkStarted) };
  const [{ segment: switched }] = (await lab.query<{ segment: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS segment')) as [{ segment: string }];
  const archived = async () =>
    (
      await theLab.query<{ wal: string | null; at: number; now: number }>(
        'SELECT last_archived_wal AS wal, extract(epoch FROM last_archived_time)::float8 AS at, extract(epoch FROM clock_timestamp())::float8 AS now FROM pg_stat_archiver',
      )
    )[0]!;
  for (const deadline = performance.now() + 30_000; ((await archived()).wal ?? '') < switched;) {
    if (performance.now() > deadline) throw new Error(`segment ${switched} was not archived within 30 s`);
    await sleep(200);
  }
  const archivedAtSwitch = await archived();

  // 4 starts now (its wait is archive_timeout's): a writer commits a row every 200 ms and keeps
  // each acknowledgement's server time, while 3 restores beside it.
  const acks: Array<{ seq: number; at: number }> = [];
  let writing = true;
  const writer = (async () => {
    const client = theLab.client();
    await client.connect();
    try {
      for (let seq = 1; writing; seq++) {
        const next = performance.now() + MARK_INTERVAL_MS;
        const [row] = (await client.query<{ at: number }>('INSERT INTO drill_rpo (seq) VALUES ($1) RETURNING extract(epoch FROM clock_timestamp())::float8 AS at', [seq])).rows;
        acks.push({ seq, at: row!.at });
        await sleep(Math.max(0, next - performance.now()));
      }
    } finally {
      await client.end().catch(() => {});
    }
  })();

  // 3. Point-in-time restore into a fresh data directory.
  const pitrTarget = lab.restoreTarget('pitr');
  const pitr = await restorePostgresql({
    repository: lab.repository,
    credentials: { cipherPass: lab.cipherPass },
    target: { time: target },
    dataDirectory: pitrTarget.data,
    workDirectory: pitrTarget.work,
    binaries: { postgresql: lab.postgres.bin, pgbackrest: lab.pgbackrest },
    ...(lab.owner ? { runAs: lab.owner } : {}),
    tables: ['drill_load', 'drill_marks'],
    keepRunning: true,
    recoveryTimeoutSeconds: BOUNDS.restoreSeconds,
    execute: true,
  });
  const pitrResult = pitr.result!;
  restored.push(pitrResult.server!);
  const pitrMarks = await rowsOn(pitrResult.server!, 'SELECT seq FROM drill_marks ORDER BY seq');
  await pitrResult.server!.stop();
  const exact = JSON.stringify(pitrMarks) === JSON.stringify(upTo(keep));
  report.pointInTime = {
    target,
    backup: pitrResult.backup,
    expectedMarks: keep,
    marksFound: pitrMarks.length,
    exact,
    loadRows: pitrResult.tables.drill_load,
    recoveryEndTime: pitrResult.recoveryEndTime,
    recoveryStop: pitrResult.recoveryStop,
    seconds: pitrResult.seconds,
    plan: pitr.plan.steps,
  };
  log(
    `point-in-time restore: ${pitrMarks.length} marks (expected 1..${keep}), ${pitrResult.tables.drill_load} load rows; ${JSON.stringify(pitrResult.seconds)} s; ${pitrResult.recoveryStop}`,
  );
  if (!exact) failures.push(`point-in-time restore to ${target}: expected marks 1..${keep}, got ${JSON.stringify(pitrMarks)}`);
  if (pitrResult.tables.drill_load !== LOAD_ROWS) failures.push(`point-in-time restore: expected ${LOAD_ROWS} load rows, got ${pitrResult.tables.drill_load}`);

  // 4. RPO: wait for archive_timeout to force the next segment out (no switch of ours since
  // `switched`; the rows are far too few to fill a segment), then commit a few seconds more.
  let forced: { wal: string | null; at: number } | undefined;
  for (const deadline = performance.now() + BOUNDS.forcedSwitchSeconds * 1000; performance.now() < deadline; await sleep(500)) {
    const now = await archived();
    if ((now.wal ?? '') > switched) {
      forced = now;
      break;
    }
  }
  if (!forced) throw new Error(`archive_timeout (${ARCHIVE_TIMEOUT_SECONDS} s) archived no segment after ${switched} within ${BOUNDS.forcedSwitchSeconds} s`);
  const forcedAfter = forced.at - archivedAtSwitch.at;
  log(`archive_timeout forced ${forced.wal} out ${forcedAfter.toFixed(1)} s after ${switched} was archived`);
  await sleep(3000);
  writing = false;
  await writer;
  const beforeKill = await archived();
  lab.killServer();
  const killedAt = beforeKill.now;
  log(`kill -9 of the primary after ${acks.length} acknowledged rows; the newest archived segment ${beforeKill.wal} was ${(killedAt - beforeKill.at).toFixed(1)} s old`);
  // The primary's volume is lost with it: what is left is the repository.
  await lab.stopProcesses();

  const latestTarget = lab.restoreTarget('latest');
  const latest = await restorePostgresql({
    repository: lab.repository,
    credentials: { cipherPass: lab.cipherPass },
    target: { latest: true },
    dataDirectory: latestTarget.data,
    workDirectory: latestTarget.work,
    binaries: { postgresql: lab.postgres.bin, pgbackrest: lab.pgbackrest },
    ...(lab.owner ? { runAs: lab.owner } : {}),
    tables: ['drill_load', 'drill_marks', 'drill_rpo'],
    keepRunning: true,
    recoveryTimeoutSeconds: BOUNDS.restoreSeconds,
    execute: true,
  });
  const latestResult = latest.result!;
  restored.push(latestResult.server!);
  const rpoRows = await rowsOn(latestResult.server!, 'SELECT seq FROM drill_rpo ORDER BY seq');
  await latestResult.server!.stop();
  const missing = acks.filter((ack) => !rpoRows.includes(ack.seq));
  const prefix = JSON.stringify(rpoRows) === JSON.stringify(upTo(rpoRows.length));
  const lostSeconds = missing.length ? killedAt - missing[0]!.at : 0;
  report.rpo = {
    archiveTimeoutSeconds: ARCHIVE_TIMEOUT_SECONDS,
    forcedSegment: forced.wal,
    forcedSwitchAfterSeconds: Number(forcedAfter.toFixed(3)),
    acknowledged: acks.length,
    restored: rpoRows.length,
    missing: missing.length,
    lostSeconds: Number(lostSeconds.toFixed(3)),
    newestArchivedWalAgeSeconds: Number((killedAt - beforeKill.at).toFixed(3)),
    lastSegmentBeforeKill: beforeKill.wal,
    restoredMarks: latestResult.tables.drill_marks,
    recoveryEndTime: latestResult.recoveryEndTime,
    seconds: latestResult.seconds,
  };
  log(
    `latest restore: ${rpoRows.length} of ${acks.length} acknowledged rows; ${missing.length} missing, committed over the last ${lostSeconds.toFixed(1)} s before the kill; ${JSON.stringify(latestResult.seconds)} s`,
  );
  if (!prefix) failures.push(`latest restore: the rows restored are not 1..n without a gap: ${JSON.stringify(rpoRows.slice(0, 20))}...`);
  if (lostSeconds > BOUNDS.lossSeconds) failures.push(`latest restore lost ${lostSeconds.toFixed(1)} s of commits, more than archive_timeout bounds (${BOUNDS.lossSeconds} s)`);
  if (latestResult.tables.drill_marks !== MARKS) failures.push(`latest restore: expected all ${MARKS} marks, got ${latestResult.tables.drill_marks}`);
} catch (error) {
  failures.push((error as Error).message);
  log(String((error as Error).stack));
  if (lab) log(`--- PostgreSQL log, last lines ---\n${lab.tail(lab.paths.serverLog, 15)}\n--- agent log ---\n${lab.tail(lab.paths.agentLog, 10)}`);
} finally {
  for (const server of restored) await server.stop().catch(() => {});
  await lab?.stop(values.keep);
  if (values.keep && lab) log(`kept ${lab.directory}`);
}

finishDrill(run, {
  name: 'pgbackrest-drill',
  ...(values.out ? { out: values.out } : {}),
  startedAt: started,
  table: (figure) => {
    const pitr = report.pointInTime as { seconds?: { total: number } } | undefined;
    const latest = report.rpo as { seconds?: { total: number } } | undefined;
    return [
      '| full backup s | PITR restore s | marks restored (expected) | latest restore s | lost commits (s before kill) | newest archived WAL age s | archive_timeout s | total s |',
      '|---|---|---|---|---|---|---|---|',
      `| ${figure('backup', 'seconds')} | ${pitr?.seconds?.total ?? '—'} | ${figure('pointInTime', 'marksFound')} (${figure('pointInTime', 'expectedMarks')}) | ${latest?.seconds?.total ?? '—'} | ${figure('rpo', 'missing')} (${figure('rpo', 'lostSeconds')}) | ${figure('rpo', 'newestArchivedWalAgeSeconds')} | ${figure('rpo', 'archiveTimeoutSeconds')} | ${report.totalSeconds} |`,
    ];
  },
  ok: 'drill:pgbackrest: the point-in-time restore held exactly the rows up to the target; the latest restore lost no more than archive_timeout bounds',
});
