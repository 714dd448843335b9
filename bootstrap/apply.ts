/**
 * Applies every asset of one engine with the runner and throws the runner's own errors: for tools
 * that need an engine at the platform's schema before they start (the benchmark, the tests).
 */
import type { EngineName } from '../databases/engine.ts';
import { reportErrors } from './format.ts';
import { runBootstrap, type BootstrapOptions, type BootstrapReport } from './runner.ts';

export type EngineConnection = Pick<BootstrapOptions, 'env' | 'clients' | 'assetDirectories'>;

export async function applyAssets(
  engine: EngineName,
  connection: EngineConnection,
  timeouts: Pick<BootstrapOptions, 'readyTimeoutMs' | 'lockTimeoutMs'> = { readyTimeoutMs: 10_000, lockTimeoutMs: 30_000 },
): Promise<BootstrapReport> {
  const report = await runBootstrap({ mode: 'apply', only: [engine], ...connection, ...timeouts });
  if (!report.ok) throw new Error(reportErrors(report).join('\n'));
  return report;
}
