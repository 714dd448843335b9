/**
 * The engines the bootstrap knows, in the order it applies them. Each says where its assets are
 * and how to reach it; the runner is the same for all.
 */
import type { EngineName } from '../databases/engine.ts';
import { ENGINES } from '../databases/index.ts';
import type { Asset, AssetSource } from './assets.ts';
import { ClickHouseAdapter } from './adapters/clickhouse.ts';
import { elasticsearchEngine } from './adapters/elasticsearch.ts';
import { mongodbEngine } from './adapters/mongodb.ts';
import { PostgresAdapter } from './adapters/postgresql.ts';
import { redisEngine } from './adapters/redis.ts';
import type { AdapterOptions, EngineAdapter } from './adapters/types.ts';
import { checkSqlAsset } from './sql-assets.ts';
import { CLICKHOUSE, POSTGRESQL } from './sql.ts';
import type { StateEngine } from './state.ts';

/** An engine whose schema is a history of migration files (PostgreSQL, ClickHouse). */
export interface MigrationEngine {
  kind: 'migrations';
  name: EngineName;
  /** The variable holding the URL the bootstrap connects with (owner or admin credentials). */
  urlVariable: string;
  assets: Pick<AssetSource, 'folders' | 'extension' | 'transactions'>;
  /** Refuses an asset that may not be applied at all (runs on every load: dry runs and status too). */
  checkAsset?(asset: Asset): void;
  /** Whether the engine can be reached without its URL variable (an injected client). */
  hasClient?(options: AdapterOptions): boolean;
  createAdapter(url: string | undefined, options: AdapterOptions): EngineAdapter;
}

export type BootstrapEngine = MigrationEngine | StateEngine<any, any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- each engine types its own state

/** In the order the bootstrap applies them: the platform's engine order. */
export const BOOTSTRAP_ENGINES: readonly BootstrapEngine[] = [
  {
    kind: 'migrations',
    name: 'postgresql',
    urlVariable: ENGINES.postgresql.urlVariable,
    // The design document's layout; versions are unique across the three versioned folders.
    assets: { folders: ['schemas', 'indexes', 'migrations', 'functions'], extension: '.sql' },
    checkAsset: (asset) => checkSqlAsset('postgresql', asset, POSTGRESQL),
    createAdapter: (url, options) => {
      if (!url) throw new Error(`${ENGINES.postgresql.urlVariable} is not set`);
      return new PostgresAdapter(url, options);
    },
  },
  mongodbEngine,
  redisEngine,
  elasticsearchEngine,
  {
    kind: 'migrations',
    name: 'clickhouse',
    urlVariable: ENGINES.clickhouse.urlVariable,
    // ClickHouse DDL is not transactional: progress is recorded per statement instead.
    assets: { folders: ['schemas'], extension: '.sql', transactions: false },
    checkAsset: (asset) => checkSqlAsset('clickhouse', asset, CLICKHOUSE),
    hasClient: (options) => options.clients?.clickhouse !== undefined,
    createAdapter: (url, options) => new ClickHouseAdapter(url, { ...options, ...(options.clients?.clickhouse ? { client: options.clients.clickhouse } : {}) }),
  },
];
