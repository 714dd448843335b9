/**
 * How the conformance suite gets a fresh engine with work to do, per kind of engine: migration
 * engines get a small asset folder of the test's own on an empty database, Redis-compatible
 * engines a server started from their folder with drift made at run time.
 */
import pg from 'pg';
import type { ClickHouseClient } from '@clickhouse/client';
import { Redis } from 'ioredis';
import { LOCK_KEY } from '../../../bootstrap/adapters/postgresql-adapter.ts';
import type { RedisCompatible } from '../../../bootstrap/adapters/redis-files.ts';
import type { EmbeddedPostgresServer } from '../../../bootstrap/embedded/postgresql.ts';
import { startEmbeddedRedis } from '../../../bootstrap/embedded/redis.ts';
import type { EngineModule } from '../../../databases/engine.ts';
import { assetFolder } from '../../support/assets.ts';
import type { ConformanceHarness, ConformanceSubject } from './suite.ts';

/** Two migrations and a repeatable function: work a fresh PostgreSQL database has to do. */
const POSTGRESQL_ASSETS = {
  'schemas/V0001__accounts.sql': 'CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);\n',
  'schemas/V0002__notes.sql': 'CREATE TABLE notes (id int PRIMARY KEY, account_id int REFERENCES accounts (id), body text);\n',
  'functions/R__note_count.sql':
    'CREATE OR REPLACE FUNCTION note_count(account int) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM notes WHERE account_id = account; $$;\n',
};

/** A client session holding the bootstrap's advisory lock, under a name of its own. */
async function lockingSession(url: string, name: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: name });
  await client.connect();
  await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY.toString()]);
  return client;
}

/** PostgreSQL: a fresh database per case on the file's embedded server; its lock dies with its session. */
export function postgresqlHarness(module: EngineModule, server: () => EmbeddedPostgresServer): ConformanceHarness {
  let databases = 0;
  return {
    module,
    async fresh(): Promise<ConformanceSubject> {
      const name = `conformance_${++databases}`;
      const admin = new pg.Client({ connectionString: server().url('postgres', 'postgres') });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name} OWNER allixios_owner`);
      await admin.end();
      const url = server().url('allixios_owner', name);
      return {
        options: { env: { [module.urlVariable]: url }, assetDirectories: { [module.name]: assetFolder(POSTGRESQL_ASSETS) } },
        async holdLock() {
          const session = await lockingSession(url, 'busy-bootstrap');
          return { holder: 'busy-bootstrap', release: () => session.end() };
        },
        async killHolder() {
          // A bootstrap whose process died: its connection is cut without a word to the server.
          const session = await lockingSession(url, 'dead-bootstrap');
          session.on('error', () => undefined);
          (session as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        },
        stop: async () => undefined,
      };
    },
  };
}

/** An asset folder of ClickHouse DDL in a database of the test's own. */
const CLICKHOUSE_ASSETS = {
  'schemas/V0001__database.sql': 'CREATE DATABASE IF NOT EXISTS conformance;',
  'schemas/V0002__events.sql': 'CREATE TABLE IF NOT EXISTS conformance.events (at DateTime, article UInt32) ENGINE = MergeTree ORDER BY (article, at);',
  'schemas/R__views.sql': 'CREATE OR REPLACE VIEW conformance.article_events AS SELECT article, count() AS events FROM conformance.events GROUP BY article;',
};

/** ClickHouse in-process (chdb binds one data directory per process): each case starts from dropped databases. */
export function clickhouseHarness(module: EngineModule, client: () => ClickHouseClient): ConformanceHarness {
  const reset = async () => {
    for (const database of ['conformance', 'allixios_bootstrap']) await client().command({ query: `DROP DATABASE IF EXISTS ${database}` });
  };
  return {
    module,
    noLogins: 'chdb runs in-process without users; clickhouse-logins.test.ts refuses a wrong password against an HTTP server',
    async fresh(): Promise<ConformanceSubject> {
      await reset();
      return {
        options: { env: {}, clients: { [module.name]: client() }, assetDirectories: { [module.name]: assetFolder(CLICKHOUSE_ASSETS) } },
        stop: reset,
      };
    },
  };
}

/**
 * A Redis-compatible engine: a redis-server started from the engine's folder (fresh, it is in
 * sync), then drift made at run time: a config value changed and a user nobody defined.
 */
export function redisCompatibleHarness(engine: RedisCompatible & { module: EngineModule }): ConformanceHarness {
  return {
    module: engine.module,
    async fresh(): Promise<ConformanceSubject> {
      const server = await startEmbeddedRedis(engine);
      const admin = new Redis(server.url('allixios_admin'), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      try {
        await admin.connect();
        await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
        await admin.call('ACL', 'SETUSER', 'intruder', 'on', '>intruder-password', '+@all', '~*');
      } finally {
        admin.disconnect();
      }
      return { options: { env: { [engine.module.urlVariable]: server.url('allixios_admin') } }, stop: () => server.stop() };
    },
  };
}
