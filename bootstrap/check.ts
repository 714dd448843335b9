/**
 * `npm run check`: for every engine, starts a throwaway one the way this machine can run it
 * (PostgreSQL from npm, ClickHouse in-process through chdb, Redis when `redis-server` is on
 * PATH; `embedded` of each engine's bootstrap side), applies everything with the real runner,
 * runs it a second time (which must change nothing), prints a summary per engine and tears
 * everything down. An engine this machine cannot run is said so, not counted as passing.
 * Exit code 1 on any failure. The fast way to validate a new migration without Docker.
 */
import type { AnyBootstrapEngine, EmbeddedEngine } from './contract.ts';
import { BOOTSTRAP_ENGINES } from './engines.ts';
import { toError } from './errors.ts';
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

/** Applies everything, then checks that a second run changes nothing; the summary says what ran. */
async function applyTwice(engine: AnyBootstrapEngine, embedded: EmbeddedEngine): Promise<CheckResult> {
  const started = performance.now();
  const options = {
    mode: 'apply' as const,
    only: [engine.name],
    registry: [engine],
    env: embedded.env,
    ...(embedded.client ? { clients: { [engine.name]: embedded.client } } : {}),
    ...TIMEOUTS,
  };
  const first = await runBootstrap(options);
  if (!first.ok) return { engine: engine.name, ok: false, summary: reportText(first).err.trim() };
  const second = await runBootstrap(options);
  const again = second.engines[0]?.changed.length ?? 0;
  if (!second.ok || again > 0) {
    return { engine: engine.name, ok: false, summary: `a second run changed ${again} thing(s) again: ${reportText(second).err.trim()}` };
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const inSync = second.engines[0]!.plan!.inSync.length;
  return {
    engine: engine.name,
    ok: true,
    summary:
      `${first.engines[0]!.changed.length} changes applied to ${embedded.description}, ${inSync} in sync after; second run changed nothing` +
      `${logins(second.engines[0]!)}${embedded.note ? `; ${embedded.note}` : ''}, ${seconds} s`,
  };
}

async function check(engine: AnyBootstrapEngine): Promise<CheckResult> {
  if ('unavailable' in engine.embedded) return { engine: engine.name, ok: null, summary: `not checked: ${engine.embedded.unavailable}` };
  const embedded = await engine.embedded.start();
  try {
    return await applyTwice(engine, embedded);
  } finally {
    await embedded.stop();
  }
}

const results: CheckResult[] = [];
for (const engine of BOOTSTRAP_ENGINES) {
  try {
    results.push(await check(engine));
  } catch (error) {
    results.push({ engine: engine.name, ok: false, summary: toError(error).message });
  }
}
const label = (ok: boolean | null) => (ok === null ? 'skipped' : ok ? 'ok     ' : 'FAILED ');
for (const result of results) process.stdout.write(`${label(result.ok)}  ${result.engine}: ${result.summary}\n`);
process.exit(results.some((result) => result.ok === false) ? 1 : 0);
