/**
 * The runner against a real ClickHouse engine (chdb, in-process). The conformance suite runs
 * first; then what is ClickHouse's own: the ledger statement by statement, resuming after a
 * failed statement, the lease's claim rows. chdb binds one data directory per process, so tests
 * reset the databases instead of starting new engines.
 */
import { basename } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startChdb, type ChdbEngine } from '../../bootstrap/embedded/clickhouse.ts';
import { runBootstrap, type BootstrapOptions } from '../../bootstrap/runner.ts';
import { clickhouse } from '../../databases/clickhouse/index.ts';
import { assetFolder, writeAssets } from '../support/assets.ts';
import { clickhouseHarness } from './conformance/harnesses.ts';
import { describeConformance } from './conformance/suite.ts';

let engine: ChdbEngine;
let client: ClickHouseClient;

beforeAll(() => {
  engine = startChdb('clickhouse-runner');
  client = engine.client;
});
afterAll(async () => {
  await engine?.close();
});
beforeEach(async () => {
  for (const database of ['allixios', 'allixios_bootstrap', 'runner_test']) await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
});

describeConformance(clickhouseHarness(clickhouse, () => client));

const BASE = {
  'schemas/V0001__database.sql': 'CREATE DATABASE IF NOT EXISTS runner_test;',
  'schemas/V0002__events.sql': `CREATE TABLE IF NOT EXISTS runner_test.events (at DateTime, article UInt32)
ENGINE = MergeTree ORDER BY (article, at);
CREATE TABLE IF NOT EXISTS runner_test.daily (day Date, article UInt32, views UInt64)
ENGINE = SummingMergeTree ORDER BY (article, day);
CREATE MATERIALIZED VIEW IF NOT EXISTS runner_test.daily_mv TO runner_test.daily AS
SELECT toDate(at) AS day, article, count() AS views FROM runner_test.events GROUP BY day, article;`,
  'schemas/R__views.sql': 'CREATE OR REPLACE VIEW runner_test.article_views AS SELECT article, sum(views) AS views FROM runner_test.daily GROUP BY article;',
};

function bootstrap(directory: string, extra: Partial<BootstrapOptions> = {}) {
  return runBootstrap({
    mode: 'apply',
    env: {},
    only: ['clickhouse'],
    clients: { clickhouse: client },
    assetDirectories: { clickhouse: directory },
    readyTimeoutMs: 5000,
    lockTimeoutMs: 10_000,
    lockLeaseMs: 3000,
    ...extra,
  });
}

async function rows<Row>(query: string): Promise<Row[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<Row>();
}

/** Completed assets and how often each was completed (64-bit counts may come quoted: Number them). */
const completed = async () =>
  (await rows<{ name: string; n: string | number }>(`SELECT name, count() AS n FROM allixios_bootstrap.ledger WHERE statement = 0 GROUP BY name ORDER BY name`)).map((row) => ({
    name: row.name,
    n: Number(row.n),
  }));

describe('the bootstrap runner on ClickHouse', () => {
  it('applies every asset of a fresh engine, statement by statement, and records each', async () => {
    const report = await bootstrap(assetFolder(BASE));
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed.map(({ change }) => basename(change.source))).toEqual(['V0001__database.sql', 'V0002__events.sql', 'R__views.sql']);
    expect(await completed()).toEqual([
      { name: 'R__views.sql', n: 1 },
      { name: 'V0001__database.sql', n: 1 },
      { name: 'V0002__events.sql', n: 1 },
    ]);
    const progress = await rows<{ statement: number }>(`SELECT statement FROM allixios_bootstrap.ledger WHERE name = 'V0002__events.sql' AND statement > 0 ORDER BY statement`);
    expect(progress.map((row) => Number(row.statement))).toEqual([1, 2, 3]);
    // And the rollup works: inserts flow through the materialized view.
    await client.insert({
      table: 'runner_test.events',
      values: [
        { at: '2026-11-01 10:00:00', article: 7 },
        { at: '2026-11-01 11:00:00', article: 7 },
      ],
      format: 'JSONEachRow',
    });
    const [views] = await rows<{ article: number; views: string | number }>('SELECT article, views FROM runner_test.article_views');
    expect([views!.article, Number(views!.views)]).toEqual([7, 2]);
  });

  it('resumes a failed file at the failing statement once it is fixed, without repeating what succeeded', async () => {
    // Given a file whose first statement cannot run twice and whose second is broken
    const directory = assetFolder({
      'schemas/V0001__database.sql': 'CREATE DATABASE IF NOT EXISTS runner_test;',
      'schemas/V0002__twice.sql': `CREATE TABLE runner_test.once (id UInt32) ENGINE = MergeTree ORDER BY id;
CREATE TABLE runner_test.broken (id Strin) ENGINE = MergeTree ORDER BY id;
CREATE TABLE runner_test.after (id UInt32) ENGINE = MergeTree ORDER BY id;`,
    });
    // When the bootstrap runs, it fails at statement 2 with ClickHouse's own error
    const failed = await bootstrap(directory);
    expect(failed.ok).toBe(false);
    expect(failed.engines[0]!.error).toMatch(
      /^clickhouse: schemas\/V0002__twice\.sql, statement 2, line 2, column 1: .*Unknown data type family: Strin.*ClickHouse DDL is not transactional: the 1 statement\(s\) before it stay applied and recorded, and the next run resumes here \[UNKNOWN_TYPE\]$/s,
    );
    expect(await rows(`SELECT name FROM system.tables WHERE database = 'runner_test' ORDER BY name`)).toEqual([{ name: 'once' }]);
    // And once the statement is fixed, the next run resumes there: statement 1 is not repeated
    writeAssets(directory, {
      'schemas/V0002__twice.sql': `CREATE TABLE runner_test.once (id UInt32) ENGINE = MergeTree ORDER BY id;
CREATE TABLE runner_test.broken (id String) ENGINE = MergeTree ORDER BY id;
CREATE TABLE runner_test.after (id UInt32) ENGINE = MergeTree ORDER BY id;`,
    });
    const fixed = await bootstrap(directory);
    expect(fixed.engines[0]!.error).toBeUndefined();
    expect(fixed.ok).toBe(true);
    expect(await rows(`SELECT name FROM system.tables WHERE database = 'runner_test' ORDER BY name`)).toEqual([{ name: 'after' }, { name: 'broken' }, { name: 'once' }]);
  });

  it('applies each asset once when five bootstraps start at once', async () => {
    const directory = assetFolder(BASE);
    const reports = await Promise.all(Array.from({ length: 5 }, () => bootstrap(directory)));
    expect(reports.map((report) => report.engines[0]!.error ?? 'ok')).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(reports.map((report) => report.engines[0]!.changed.length).sort()).toEqual([0, 0, 0, 0, 3]);
    expect((await completed()).map((row) => row.n)).toEqual([1, 1, 1]);
    const [statementRows] = await rows<{ n: string | number }>(`SELECT count() AS n FROM allixios_bootstrap.ledger WHERE statement > 0`);
    expect(Number(statementRows!.n)).toBe(5);
  });

  it('releases its lease when it finishes, so the next run does not wait', async () => {
    const directory = assetFolder(BASE);
    await bootstrap(directory);
    const live = await rows(`SELECT holder FROM allixios_bootstrap.lock GROUP BY holder HAVING argMax(expires_at, written_at) > now64(3)`);
    expect(live).toEqual([]);
  });
});
