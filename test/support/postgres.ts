/** Brings a test database to the platform's schema with the real bootstrap runner. */
import pg from 'pg';
import { applyAssets } from '../../bootstrap/apply.ts';

/**
 * Says who acts in the client's open transaction, as the platform does after BEGIN
 * (databases/postgresql/README.md): `SELECT app_claim(user_id, role)`.
 */
export async function claim(client: pg.ClientBase, role: string, userId: string | null): Promise<void> {
  await client.query('SELECT app_claim($1, $2)', [userId, role]);
}

/** Applies every PostgreSQL asset (or those of `directory`) as the owner; throws the runner's error. */
export async function applyPostgresAssets(ownerUrl: string, directory?: string): Promise<void> {
  await applyAssets('postgresql', { env: { DATABASE_URL: ownerUrl }, ...(directory ? { assetDirectories: { postgresql: directory } } : {}) });
}

/**
 * Ends a pool and waits until its connections are closed. Pool.end() resolves before they are,
 * and a connection still open when the server stops gets an error no one listens to any more.
 */
export async function closePool(pool: pg.Pool | undefined): Promise<void> {
  if (!pool) return;
  const open = pool.totalCount;
  let removed = 0;
  const closed = new Promise<void>((resolve) => {
    if (open === 0) resolve();
    pool.on('remove', () => {
      removed += 1;
      if (removed === open) resolve();
    });
  });
  await pool.end();
  await closed;
}
