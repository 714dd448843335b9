/**
 * ClickHouse in-process (chdb: the same SQL engine as the server) behind the regular
 * `@clickhouse/client` interface, so the adapter and tests use one `ClickHouseClient` whether it
 * talks HTTP to a server or to chdb. libchdb binds one data directory per process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';

/**
 * chdb's connection is typed against @clickhouse/client-common 1.23.0, while @clickhouse/client
 * 1.23.1 bundles its own copy of the same declarations: one shape, two nominal types. The cast
 * bridges the copies, nothing else.
 */
type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];

export interface ChdbEngine {
  client: ClickHouseClient;
  /** Closes the client and removes the data directory. */
  close(): Promise<void>;
}

/** A client on a fresh chdb data directory (once per process). */
export function startChdb(name: string): ChdbEngine {
  const dataDir = mkdtempSync(join(tmpdir(), `allixios-${name}-`));
  const client = createClient({ connection: createChdbConnection({ path: dataDir }) as unknown as ClientConnection });
  return {
    client,
    async close() {
      await client.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
