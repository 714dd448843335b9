/**
 * The replicated form of ClickHouse's schema (databases/clickhouse/README.md, "Replicas"): what the
 * bootstrap sends to a member of a replicated stack instead of an asset's statement. No Keeper
 * runs here, so a Replicated database cannot be created; what can be checked is checked with the
 * real ClickHouse 26 parser (chdb's `formatQuery`): every statement of every asset, in its
 * replicated form, parses and says what it should; the rewriting itself is unit-tested on the
 * cases the assets do not have; and the lease's claim order on a replicated stack (Keeper's
 * block numbers) is run on chdb with the same table settings, against two members' clocks that
 * disagree.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouseEngine } from '../../bootstrap/adapters/clickhouse.ts';
import { createdDatabase, ReplicatedFormError, replicatedStatement } from '../../bootstrap/adapters/clickhouse-replicated.ts';
import { bookkeepingTables, createReplicatedDatabase, liveLeasesQuery, statementFor, type ClickHouseTopology } from '../../bootstrap/adapters/clickhouse-topology.ts';
import { BootstrapError } from '../../bootstrap/errors.ts';
import { replicatedDatabasePath } from '../../databases/clickhouse/replication.ts';
import { assetStatements, loadClickHouseAssets, startChdb, type ChdbEngine } from '../support/clickhouse.ts';

const REPLICATED: ClickHouseTopology = { kind: 'replicated', members: ['clickhouse-0.example', 'clickhouse-1.example'], member: 'clickhouse-0.example' };
const SINGLE: ClickHouseTopology = { kind: 'single' };
const rewrite = (sql: string) => replicatedStatement(sql, { cluster: 'allixios', databasePath: replicatedDatabasePath });

let engine: ChdbEngine;
let client: ClickHouseClient;

beforeAll(() => {
  engine = startChdb('clickhouse-replicated-form');
  client = engine.client;
});
afterAll(async () => {
  await engine?.close();
});

/** ClickHouse's own formatting of `sql`: it parses, or this throws with the parser's message. */
async function formatted(sql: string): Promise<string> {
  const result = await client.query({ query: 'SELECT formatQuery({sql:String}) AS text', query_params: { sql }, format: 'JSONEachRow' });
  return (await result.json<{ text: string }>())[0]!.text;
}

describe("the schema's replicated form", () => {
  const statements = assetStatements(loadClickHouseAssets());

  it('parses with ClickHouse 26 for every statement of every asset', async () => {
    for (const { asset, statement } of statements) {
      await expect(formatted(statementFor(REPLICATED, statement.text)), `${asset.name} statement ${statement.index}`).resolves.toEqual(expect.any(String));
    }
  });

  it('creates the database as a Replicated database on every member of the cluster, with the members macros', async () => {
    const [database] = statements.filter(({ asset }) => asset.name === 'V0001__database.sql');
    expect(await formatted(statementFor(REPLICATED, database!.statement.text))).toBe(
      "CREATE DATABASE IF NOT EXISTS allixios ON CLUSTER allixios\nENGINE = Replicated('/clickhouse/databases/allixios', '{shard}', '{replica}')",
    );
  });

  it('makes every table replicated, keeping its engine, arguments, keys, TTL and settings, and leaves views, ALTERs and the backfill as written', async () => {
    const changed: string[] = [];
    for (const { asset, statement } of statements) {
      const replicated = statementFor(REPLICATED, statement.text);
      if (replicated === statement.text) continue;
      changed.push(`${asset.name}#${statement.index}`);
      if (asset.name === 'V0001__database.sql') continue;
      const [original, form] = [await formatted(statement.text), await formatted(replicated)];
      // The same statement but for the engine's name: nothing else moved.
      const engine = /\nENGINE = (\w+)/.exec(original)![1]!;
      expect(form, `${asset.name}#${statement.index}`).toBe(original.replace(`ENGINE = ${engine}`, `ENGINE = Replicated${engine}`));
      expect(engine).toMatch(/MergeTree$/);
    }
    expect(changed).toEqual([
      'V0001__database.sql#1',
      'V0002__user_events.sql#1',
      'V0003__performance_metrics.sql#1',
      'V0004__revenue_events.sql#1',
      'V0005__article_views_daily.sql#1',
      'V0006__endpoint_latency_hourly.sql#1',
      'V0007__revenue_daily.sql#1',
      'V0008__category_visitors_daily.sql#1',
    ]);
    // SummingMergeTree's columns stay its argument: the Replicated engine takes the path and the
    // replica name from the server's defaults when its first argument is not a string.
    const revenue = statements.find(({ asset }) => asset.name === 'V0007__revenue_daily.sql')!;
    expect(await formatted(statementFor(REPLICATED, revenue.statement.text))).toContain('ENGINE = ReplicatedSummingMergeTree((amount, conversions))');
  });

  it('is not used on a single server: Docker and chdb run the assets exactly as written', () => {
    for (const { statement } of statements) expect(statementFor(SINGLE, statement.text)).toBe(statement.text);
  });
});

describe('rewriting a statement into its replicated form', () => {
  it('renames only the engine clause, whether or not it has an equals sign or parentheses', () => {
    expect(rewrite('CREATE TABLE a.t (x UInt8) ENGINE MergeTree ORDER BY x')).toBe('CREATE TABLE a.t (x UInt8) ENGINE ReplicatedMergeTree ORDER BY x');
    expect(rewrite('CREATE TABLE a.t (x UInt8) ENGINE = MergeTree() ORDER BY x')).toBe('CREATE TABLE a.t (x UInt8) ENGINE = ReplicatedMergeTree() ORDER BY x');
    expect(rewrite('CREATE TABLE a.t (x UInt8, v UInt32) ENGINE = ReplacingMergeTree(v) ORDER BY x')).toBe(
      'CREATE TABLE a.t (x UInt8, v UInt32) ENGINE = ReplicatedReplacingMergeTree(v) ORDER BY x',
    );
    expect(rewrite('create or replace table a.t (x UInt8) engine = AggregatingMergeTree order by x')).toBe(
      'create or replace table a.t (x UInt8) engine = ReplicatedAggregatingMergeTree order by x',
    );
  });

  it('leaves a column named engine, strings and comments alone', () => {
    const sql = `CREATE TABLE a.t (
      engine String DEFAULT 'ENGINE = MergeTree', -- ENGINE = MergeTree in a comment
      /* ENGINE = MergeTree */ \`ENGINE\` String
    ) ENGINE = MergeTree ORDER BY engine COMMENT 'engine MergeTree'`;
    expect(rewrite(sql)).toBe(sql.replace(') ENGINE = MergeTree ORDER', ') ENGINE = ReplicatedMergeTree ORDER'));
  });

  it("replicates a materialized view's inner table, and leaves one that writes TO a table as it is", () => {
    expect(rewrite('CREATE MATERIALIZED VIEW a.mv ENGINE = SummingMergeTree ORDER BY k AS SELECT k, count() AS n FROM a.t GROUP BY k')).toBe(
      'CREATE MATERIALIZED VIEW a.mv ENGINE = ReplicatedSummingMergeTree ORDER BY k AS SELECT k, count() AS n FROM a.t GROUP BY k',
    );
    const to = 'CREATE MATERIALIZED VIEW IF NOT EXISTS a.mv TO a.agg AS SELECT engine, count() AS n FROM system.tables GROUP BY engine';
    expect(rewrite(to)).toBe(to);
  });

  it('leaves engines without a Replicated form to the server (which refuses those that keep data on one member) and an already replicated one as written', () => {
    for (const sql of ['CREATE TABLE a.t (x UInt8) ENGINE = Memory', 'CREATE TABLE a.t (x UInt8) ENGINE = ReplicatedMergeTree ORDER BY x', 'CREATE VIEW a.v AS SELECT 1']) {
      expect(rewrite(sql)).toBe(sql);
    }
    expect(rewrite('INSERT INTO a.t SELECT * FROM a.s')).toBe('INSERT INTO a.t SELECT * FROM a.s');
  });

  it('creates a database without an engine, or with Atomic, as Replicated ON CLUSTER, quoted names included', () => {
    expect(rewrite('CREATE DATABASE x')).toBe("CREATE DATABASE x ON CLUSTER allixios ENGINE = Replicated('/clickhouse/databases/x', '{shard}', '{replica}')");
    expect(rewrite("CREATE DATABASE IF NOT EXISTS `x` ENGINE = Atomic COMMENT 'c'")).toBe(
      "CREATE DATABASE IF NOT EXISTS `x` ON CLUSTER allixios ENGINE = Replicated('/clickhouse/databases/x', '{shard}', '{replica}') COMMENT 'c'",
    );
    expect(createdDatabase('CREATE DATABASE IF NOT EXISTS `x` ENGINE = Atomic')).toBe('x');
    expect(createdDatabase('CREATE TABLE x.t (a UInt8) ENGINE = Memory')).toBeUndefined();
    expect(createReplicatedDatabase('allixios_bootstrap')).toBe(
      "CREATE DATABASE IF NOT EXISTS allixios_bootstrap ON CLUSTER allixios ENGINE = Replicated('/clickhouse/databases/allixios_bootstrap', '{shard}', '{replica}')",
    );
  });

  it('refuses what it cannot make replicated, saying why', () => {
    expect(() => rewrite('CREATE DATABASE x ENGINE = Lazy(60)')).toThrow(
      new ReplicatedFormError("database x has the engine Lazy: only an Atomic database has a Replicated form (the Replicated engine is Atomic's, with a DDL log)"),
    );
    expect(() => rewrite('CREATE DATABASE x ON CLUSTER other')).toThrow(/an asset never says ON CLUSTER/);
    expect(() => rewrite("CREATE TABLE a.t (x UInt8) ENGINE = MergeTree('/clickhouse/tables/t', 'r') ORDER BY x")).toThrow(
      /with a string as its first argument .* the table's path in Keeper/,
    );
    expect(() => rewrite("CREATE TABLE a.t (x UInt8) ENGINE = GraphiteMergeTree('rollup') ORDER BY x")).toThrow(/GraphiteMergeTree/);
    expect(() => rewrite('CREATE DATABASE `x-y`')).toThrow(/expected letters, digits and underscores/);
  });

  it('makes the bootstrap refuse, before anything runs, an asset that has no replicated form, naming its statement', () => {
    // Given an engine folder whose only asset creates a table with an explicit Keeper path
    const directory = mkdtempSync(join(tmpdir(), 'allixios-replicated-form-'));
    mkdirSync(join(directory, 'schemas'));
    writeFileSync(
      join(directory, 'schemas', 'V0001__database.sql'),
      "CREATE DATABASE IF NOT EXISTS t;\nCREATE TABLE IF NOT EXISTS t.x (a UInt8) ENGINE = MergeTree('/clickhouse/tables/x', 'r') ORDER BY a;\n",
    );
    // When the bootstrap loads it (every mode does, a dry run and a status too)
    let error: unknown;
    try {
      clickhouseEngine.desired({}, directory);
    } catch (caught) {
      error = caught;
    }
    // Then it is refused, naming the statement and why
    expect(error).toBeInstanceOf(BootstrapError);
    expect((error as BootstrapError).message).toMatch(/no replicated form for a stack of several members: MergeTree with a string as its first argument/);
    expect((error as BootstrapError).location).toMatchObject({ statement: 2, line: 2 });
  });
});

describe('the bookkeeping tables and the lease on a replicated stack', () => {
  it('are replicated, in statements ClickHouse 26 parses, and unchanged on a single server', async () => {
    const replicated = bookkeepingTables('allixios_bootstrap', REPLICATED);
    expect(await formatted(replicated.ledger)).toMatch(/\nENGINE = ReplicatedMergeTree\nORDER BY \(kind, version, name, statement, applied_at\)/);
    expect(await formatted(replicated.lock)).toMatch(/\nENGINE = ReplicatedMergeTree\nORDER BY \(holder, written_at\)\nTTL .*\nSETTINGS enable_block_number_column = 1$/);
    const single = bookkeepingTables('allixios_bootstrap', SINGLE);
    expect(single.lock).not.toContain('enable_block_number_column');
    expect(single.ledger).toContain('ENGINE = MergeTree ORDER BY');
    for (const sync of ['SYSTEM SYNC DATABASE REPLICA allixios_bootstrap', 'SYSTEM SYNC REPLICA allixios_bootstrap.lock LIGHTWEIGHT']) expect(await formatted(sync)).toBe(sync);
  });

  it("orders claims by Keeper's block numbers, not by the clocks of the members that wrote them, merges included", async () => {
    // Given the replicated lock table's definition on chdb (the same settings, without Keeper)
    await client.command({ query: 'CREATE DATABASE IF NOT EXISTS lease_order' });
    await client.command({ query: bookkeepingTables('lease_order', REPLICATED).lock.replace('ReplicatedMergeTree', 'MergeTree') });
    // and a claim written through a member whose clock is 5 s ahead, then one through a member whose clock is behind
    const claim = (holder: string, clockOffsetMs: number) =>
      client.command({
        query: `INSERT INTO lease_order.lock (holder, acquired_at, expires_at, written_at)
                SELECT {holder:String}, now64(3) + toIntervalMillisecond({offset:Int64}), now64(3) + toIntervalSecond(30), now64(3) + toIntervalMillisecond({offset:Int64})`,
        query_params: { holder, offset: clockOffsetMs },
      });
    await claim('first-through-a-fast-clock', 5000);
    await claim('second-through-a-slow-clock', -5000);
    const holders = async (order: 'time' | 'block') =>
      (await (await client.query({ query: liveLeasesQuery('lease_order.lock', order), format: 'JSONEachRow' })).json<{ holder: string }>()).map((row) => row.holder);
    // Then by time the later claim would look older; by block number the first claim is the oldest
    expect(await holders('time')).toEqual(['second-through-a-slow-clock', 'first-through-a-fast-clock']);
    expect(await holders('block')).toEqual(['first-through-a-fast-clock', 'second-through-a-slow-clock']);
    // and stays so once the parts are merged (the block number is a column of the rows, not the part's name)
    await client.command({ query: 'OPTIMIZE TABLE lease_order.lock FINAL' });
    expect(await holders('block')).toEqual(['first-through-a-fast-clock', 'second-through-a-slow-clock']);
  });
});
