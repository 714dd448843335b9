/**
 * `npm run check`: starts throwaway engines this machine can run embedded (PostgreSQL from npm),
 * applies every asset with the real runner, runs it a second time (which must apply nothing),
 * prints a summary per engine and tears everything down. Exit code 1 on any failure.
 * The fast way to validate a new migration without Docker.
 */
import { startEmbeddedPostgres } from './embedded/postgresql.ts';
import { reportText } from './format.ts';
import { runBootstrap, type BootstrapReport } from './runner.ts';

interface CheckResult {
  engine: string;
  ok: boolean;
  summary: string;
}

const TIMEOUTS = { readyTimeoutMs: 30_000, lockTimeoutMs: 30_000 };

async function checkPostgres(): Promise<CheckResult> {
  const started = performance.now();
  const server = await startEmbeddedPostgres();
  try {
    const env = { DATABASE_URL: server.url('allixios_owner') };
    const first: BootstrapReport = await runBootstrap({ mode: 'apply', only: ['postgresql'], env, ...TIMEOUTS });
    if (!first.ok) return { engine: 'postgresql', ok: false, summary: reportText(first).err.trim() };
    const second = await runBootstrap({ mode: 'apply', only: ['postgresql'], env, ...TIMEOUTS });
    const again = second.engines[0]?.applied.length ?? 0;
    if (!second.ok || again > 0) {
      return { engine: 'postgresql', ok: false, summary: `a second run applied ${again} asset(s) again: ${reportText(second).err.trim()}` };
    }
    const applied = first.engines[0]!.applied;
    const versioned = applied.filter((step) => step.asset.kind === 'versioned').length;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    return {
      engine: 'postgresql',
      ok: true,
      summary: `${versioned} migrations and ${applied.length - versioned} repeatable assets applied to PostgreSQL 18 (embedded), second run applied nothing, ${seconds} s`,
    };
  } finally {
    await server.stop();
  }
}

const results: CheckResult[] = [];
for (const check of [checkPostgres]) {
  try {
    results.push(await check());
  } catch (error) {
    results.push({ engine: check.name.replace(/^check/, '').toLowerCase(), ok: false, summary: (error as Error).message });
  }
}
for (const result of results) process.stdout.write(`${result.ok ? 'ok    ' : 'FAILED'}  ${result.engine}: ${result.summary}\n`);
process.exit(results.every((result) => result.ok) ? 0 : 1);
