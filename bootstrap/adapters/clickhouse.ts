/**
 * ClickHouse's bootstrap side: its migration files and how they are checked and planned. The
 * adapter (`clickhouse-adapter.ts`, with @clickhouse/client) is loaded only when a run connects.
 */
import { clickhouse } from '../../databases/clickhouse/index.ts';
import { migrationEngine } from '../migrations.ts';
import { checkSqlAsset } from '../sql-assets.ts';
import { CLICKHOUSE } from '../sql.ts';

/** ClickHouse: DDL is not transactional, so progress is recorded per statement instead. */
export const clickhouseEngine = migrationEngine({
  module: clickhouse,
  assets: { folders: ['schemas'], extension: '.sql', transactions: false },
  checkAsset: (asset) => checkSqlAsset(clickhouse.name, asset, CLICKHOUSE),
  createAdapter: async (url, options) => {
    const { ClickHouseAdapter, injectedClient } = await import('./clickhouse-adapter.ts');
    const client = injectedClient(options);
    return new ClickHouseAdapter(url, { ...options, ...(client ? { client } : {}) });
  },
  embedded: {
    async start() {
      // Loaded here: the bootstrap image has no chdb (a development dependency).
      const { startChdb } = await import('../embedded/clickhouse.ts');
      const engine = startChdb('check');
      const [row] = await (await engine.client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' })).json<{ version: string }>();
      return {
        description: `ClickHouse ${row?.version ?? ''} (chdb, in-process)`,
        env: {},
        client: engine.client,
        // chdb has no users.d: the users and grants of config/users.d are a server's, checked by
        // test/engines/clickhouse-config.test.ts.
        note: 'users come from users.d on a server (chdb has none)',
        stop: () => engine.close(),
      };
    },
  },
});
