/**
 * `npm run check`: starts throwaway engines this machine can run embedded (PostgreSQL from npm,
 * ClickHouse in-process through chdb, Redis when `redis-server` is on PATH),
 * applies every asset with the real runner, runs it a second time (which must apply nothing),
 * prints a summary per engine and tears everything down. Exit code 1 on any failure.
 * The fast way to validate a new migration without Docker.
 */
import { spawnSync } from 'node:child_process';
import type { EngineName } from '../databases/engine.ts';
import type { AdapterOptions } from './adapters/types.ts';
import { startChdb } from './embedded/clickhouse.ts';
import { ROLE_VERIFIERS_VARIABLE, startEmbeddedPostgres } from './embedded/postgresql.ts';
import { startEmbeddedRedis } from './embedded/redis.ts';
import { reportText } from './format.ts';
import { runBootstrap, type BootstrapReport } from './runner.ts';

interface CheckResult {
  engine: string;
  /** `null`: not checked on this machine (said plainly, and not a failure). */
  ok: boolean | null;
  summary: string;
}

const TIMEOUTS = { readyTimeoutMs: 30_000, lockTimeoutMs: 30_000 };

/** What a run said of the application's login, checked after it. */
function logins(engine: BootstrapReport['engines'][number]): string {
  return engine.verifiedLogin ? `; ${engine.verifiedLogin}'s login accepted` : '';
}

/** Applies everything, then checks that a second run applies nothing; the summary says what ran. */
async function applyTwice(engine: EngineName, connection: { env: Record<string, string>; clients?: AdapterOptions['clients'] }, what: string): Promise<CheckResult> {
  const started = performance.now();
  const options = { mode: 'apply' as const, only: [engine], ...connection, ...TIMEOUTS };
  const first: BootstrapReport = await runBootstrap(options);
  if (!first.ok) return { engine, ok: false, summary: reportText(first).err.trim() };
  const second = await runBootstrap(options);
  const again = second.engines[0]?.applied.length ?? 0;
  if (!second.ok || again > 0) {
    return { engine, ok: false, summary: `a second run applied ${again} asset(s) again: ${reportText(second).err.trim()}` };
  }
  const applied = first.engines[0]!.applied;
  const versioned = applied.filter((step) => step.asset.kind === 'versioned').length;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  return {
    engine,
    ok: true,
    summary: `${versioned} migrations and ${applied.length - versioned} repeatable assets applied to ${what}, second run applied nothing${logins(second.engines[0]!)}, ${seconds} s`,
  };
}

async function checkPostgresql(): Promise<CheckResult> {
  const server = await startEmbeddedPostgres();
  try {
    // The role verifiers and the application's URL as a deployment hands them over: the roles'
    // passwords are compared with the stack's, and the application's login checked after the run.
    const env = { DATABASE_URL: server.url('allixios_owner'), DATABASE_URL_APP: server.url('allixios_app'), [ROLE_VERIFIERS_VARIABLE]: server.roleVerifiers! };
    const result = await applyTwice('postgresql', { env }, 'PostgreSQL 18 (embedded)');
    return result.ok ? { ...result, summary: `${result.summary}; every role's password the stack's (allixios_credentials)` } : result;
  } finally {
    await server.stop();
  }
}

async function checkClickhouse(): Promise<CheckResult> {
  const engine = startChdb('check');
  try {
    const [row] = await (await engine.client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' })).json<{ version: string }>();
    const result = await applyTwice('clickhouse', { env: {}, clients: { clickhouse: engine.client } }, `ClickHouse ${row?.version ?? ''} (chdb, in-process)`);
    // chdb has no users.d: the users and grants of config/users.d are a server's, checked by
    // test/engines/clickhouse-config.test.ts, not here.
    return result.ok ? { ...result, summary: `${result.summary}; users come from users.d on a server (chdb has none)` } : result;
  } finally {
    await engine.close();
  }
}

/** Redis is a state engine: a server started from the project's files must be in sync, twice. */
async function checkRedis(): Promise<CheckResult> {
  if (spawnSync('redis-server', ['--version']).error) {
    return { engine: 'redis', ok: null, summary: 'not checked: redis-server is not on PATH (apt-get install -y redis-server)' };
  }
  const server = await startEmbeddedRedis();
  try {
    const env = { REDIS_URL: server.url('allixios_admin'), REDIS_URL_APP: server.url('allixios_app'), REDIS_USERS_ACL: server.usersAcl };
    const options = { mode: 'apply' as const, only: ['redis' as const], env, ...TIMEOUTS };
    const first = await runBootstrap(options);
    if (!first.ok) return { engine: 'redis', ok: false, summary: reportText(first).err.trim() };
    const second = await runBootstrap(options);
    const again = second.engines[0]?.changed.length ?? 0;
    if (!second.ok || again > 0) return { engine: 'redis', ok: false, summary: `a second run changed ${again} thing(s) again: ${reportText(second).err.trim()}` };
    const inSync = second.engines[0]!.statePlan!.inSync.length;
    return {
      engine: 'redis',
      ok: true,
      summary: `${first.engines[0]!.changed.length} changed, ${inSync} ACL users and config values in sync on redis-server (embedded), second run changed nothing${logins(second.engines[0]!)}`,
    };
  } finally {
    await server.stop();
  }
}

/** Engines no machine of this kind can run: say so, with what checks them instead. */
const NOT_RUNNABLE: CheckResult[] = [
  {
    engine: 'mongodb',
    ok: null,
    summary:
      'not checked: no MongoDB server can run here (no Debian package; npm packages download binaries at run time). npm test checks its definitions and plans; set MONGODB_URL to run the bootstrap tests against a server',
  },
  {
    engine: 'elasticsearch',
    ok: null,
    summary:
      'not checked: no Elasticsearch server can run here (no Debian package; npm packages download it at run time). npm test checks its mappings and plans; set ELASTICSEARCH_URL to run the bootstrap tests against a server',
  },
];

const results: CheckResult[] = [];
for (const check of [checkPostgresql, checkRedis, checkClickhouse]) {
  try {
    results.push(await check());
  } catch (error) {
    results.push({ engine: check.name.replace(/^check/, '').toLowerCase(), ok: false, summary: (error as Error).message });
  }
}
results.push(...NOT_RUNNABLE);
const label = (ok: boolean | null) => (ok === null ? 'skipped' : ok ? 'ok     ' : 'FAILED ');
for (const result of results) process.stdout.write(`${label(result.ok)}  ${result.engine}: ${result.summary}\n`);
process.exit(results.some((result) => result.ok === false) ? 1 : 0);
