/**
 * ClickHouse's bootstrap side: its migration files and how they are checked and planned. The
 * adapter (`clickhouse-adapter.ts`, with @clickhouse/client) is loaded only when a run connects.
 */
import { clickhouse } from '../../databases/clickhouse/index.ts';
import { migrationEngine } from '../migrations.ts';
import type { Asset } from '../assets.ts';
import { BootstrapError } from '../errors.ts';
import { assetStatements, checkSqlAsset } from '../sql-assets.ts';
import { CLICKHOUSE } from '../sql.ts';
import { ReplicatedFormError } from './clickhouse-replicated.ts';
import { statementFor } from './clickhouse-topology.ts';

/** Refuses an asset with a statement that has no replicated form, naming the statement and why. */
function checkReplicatedForm(asset: Asset): void {
  for (const statement of assetStatements(clickhouse.name, asset, CLICKHOUSE)) {
    try {
      statementFor({ kind: 'replicated', members: [], member: '' }, statement.text);
    } catch (error) {
      if (!(error instanceof ReplicatedFormError)) throw error;
      throw new BootstrapError(clickhouse.name, `no replicated form for a stack of several members: ${error.message}`, {
        location: { file: asset.path, statement: statement.index, line: statement.line, column: statement.column },
      });
    }
  }
}

/** ClickHouse: DDL is not transactional, so progress is recorded per statement instead. */
export const clickhouseEngine = migrationEngine({
  module: clickhouse,
  assets: { folders: ['schemas'], extension: '.sql', transactions: false },
  // Every statement must also have a replicated form (a stack of several members runs that one).
  checkAsset: (asset) => {
    checkSqlAsset(clickhouse.name, asset, CLICKHOUSE);
    checkReplicatedForm(asset);
  },
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
