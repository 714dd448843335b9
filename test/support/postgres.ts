/** Brings a test database to the platform's schema with the real bootstrap runner. */
import { reportErrors } from '../../bootstrap/format.ts';
import { runBootstrap } from '../../bootstrap/runner.ts';

/** Applies every PostgreSQL asset (or those of `directory`) as the owner; throws the runner's error. */
export async function applyPostgresAssets(ownerUrl: string, directory?: string): Promise<void> {
  const report = await runBootstrap({
    mode: 'apply',
    only: ['postgresql'],
    env: { DATABASE_URL: ownerUrl },
    readyTimeoutMs: 10_000,
    lockTimeoutMs: 30_000,
    ...(directory ? { assetDirectories: { postgresql: directory } } : {}),
  });
  if (!report.ok) throw new Error(reportErrors(report).join('\n'));
}
