/**
 * The ClickHouse schema of the platform (databases/clickhouse/schemas), applied to a real
 * ClickHouse engine: chdb, ClickHouse 26 in-process (ENGINES.md). Tables, rollups kept by
 * materialized views, the dashboards' views on them, retention, idempotence and errors.
 *
 * Each group starts from a fresh `allixios` database, and every test that writes uses its own
 * ids (random articles, endpoints named after the test), so no test depends on another's data.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetFolder, writeAssets } from './support/assets.ts';
import { applyClickHouseAssets, applyStatements, assetStatements, loadClickHouseAssets, startChdb, type ChdbEngine } from './support/clickhouse.ts';

let engine: ChdbEngine;
let client: ClickHouseClient;

beforeAll(() => {
  // One data directory for this file: libchdb binds one per process (ENGINES.md).
  engine = startChdb('clickhouse-schema');
  client = engine.client;
});

afterAll(async () => {
  await engine?.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers

async function rows<Row>(query: string): Promise<Row[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<Row>();
}

async function insert(table: string, values: readonly Record<string, unknown>[]): Promise<void> {
  await client.insert({ table: `allixios.${table}`, values: [...values], format: 'JSONEachRow' });
}

/** The error ClickHouse raises for `run`, or undefined when it succeeds. */
async function failure(run: () => Promise<unknown>): Promise<(Error & { type?: string }) | undefined> {
  try {
    await run();
    return undefined;
  } catch (error) {
    return error as Error & { type?: string };
  }
}

/** Drops the database and applies every asset, as a first bootstrap of a new engine would. */
async function freshSchema(): Promise<void> {
  await client.command({ query: 'DROP DATABASE IF EXISTS allixios SYNC' });
  // The runner's ledger goes too: a fresh engine has neither.
  await client.command({ query: 'DROP DATABASE IF EXISTS allixios_bootstrap SYNC' });
  await applyClickHouseAssets(client);
}

/** What the schema consists of: every object of the database with its full definition. */
async function schemaSnapshot(): Promise<Array<{ name: string; engine: string; create_table_query: string }>> {
  return rows("SELECT name, engine, create_table_query FROM system.tables WHERE database = 'allixios' ORDER BY name");
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Byte order of [key, value] entries, the order of ClickHouse's ORDER BY on a String. */
function byKey([a]: [string, unknown], [b]: [string, unknown]): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

/** `YYYY-MM-DD` of the UTC day `daysAgo` days before today. */
function utcDay(daysAgo: number): string {
  return new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
}

const NIL = '00000000-0000-0000-0000-000000000000';

// ---------------------------------------------------------------------------------------------

describe('applying the assets', () => {
  it('creates the raw tables, the rollups with their materialized views and the dashboard views on a fresh engine', async () => {
    // Given an engine without the database
    await client.command({ query: 'DROP DATABASE IF EXISTS allixios SYNC' });
    // The runner's ledger goes too: a fresh engine has neither.
    await client.command({ query: 'DROP DATABASE IF EXISTS allixios_bootstrap SYNC' });
    // When every asset is applied
    await applyClickHouseAssets(client);
    // Then every object exists, with the kind the files declare
    const objects = Object.fromEntries((await schemaSnapshot()).map((table) => [table.name, table.engine]));
    expect(objects).toEqual({
      user_events: 'MergeTree',
      performance_metrics: 'MergeTree',
      revenue_events: 'MergeTree',
      article_views_daily_agg: 'AggregatingMergeTree',
      article_views_daily_mv: 'MaterializedView',
      category_visitors_daily_agg: 'AggregatingMergeTree',
      category_visitors_daily_mv: 'MaterializedView',
      endpoint_latency_hourly_agg: 'AggregatingMergeTree',
      endpoint_latency_hourly_mv: 'MaterializedView',
      revenue_daily_agg: 'SummingMergeTree',
      revenue_daily_mv: 'MaterializedView',
      article_views_daily: 'View',
      article_views_period: 'View',
      category_visitors_period: 'View',
      endpoint_latency_hourly: 'View',
      revenue_daily: 'View',
    });
  });

  it('applies the versioned files in number order, then the repeatable views', () => {
    // Given the engine's assets; when they are ordered as the bootstrap applies them
    const names = loadClickHouseAssets().map((asset) => asset.name);
    // Then the database comes first, each raw table before its rollup, the views last
    expect(names).toEqual([
      'V0001__database.sql',
      'V0002__user_events.sql',
      'V0003__performance_metrics.sql',
      'V0004__revenue_events.sql',
      'V0005__article_views_daily.sql',
      'V0006__endpoint_latency_hourly.sql',
      'V0007__revenue_daily.sql',
      'V0008__category_visitors_daily.sql',
      'V0009__article_views_by_article.sql',
      'R__dashboard_views.sql',
    ]);
  });

  it('a second application, statement by statement, fails nothing, changes nothing and keeps one materialized view per rollup', async () => {
    // Given the applied schema holding one page view
    await freshSchema();
    const article = randomUUID();
    const pageView = { event_time: `${utcDay(1)} 12:00:00.000`, event_type: 'page_view', anonymous_id: randomUUID(), session_id: randomUUID(), article_id: article };
    await insert('user_events', [pageView]);
    const before = await schemaSnapshot();
    // When every statement of every asset runs again (applyStatements throws at the first failure)
    await applyStatements(client, assetStatements(loadClickHouseAssets()));
    // Then every definition is the same and the data is still there
    expect(await schemaSnapshot()).toEqual(before);
    const views = async () => rows<{ views: number }>(`SELECT toUInt32(views) AS views FROM allixios.article_views_daily WHERE article_id = '${article}'`);
    expect(await views()).toEqual([{ views: 1 }]);
    // And a new page view is counted once: no second materialized view feeds the rollup
    await insert('user_events', [pageView]);
    expect(await views()).toEqual([{ views: 2 }]);
  });

  it('a bootstrap interrupted after any statement completes the schema on the next run', async () => {
    // Given the schema a complete run produces
    await freshSchema();
    const complete = await schemaSnapshot();
    const statements = assetStatements(loadClickHouseAssets());
    expect(statements.length).toBeGreaterThan(10);
    for (let done = 1; done < statements.length; done++) {
      // When a run stops after `done` statements and the next run applies everything
      await client.command({ query: 'DROP DATABASE IF EXISTS allixios SYNC' });
      // The runner's ledger goes too: a fresh engine has neither.
      await client.command({ query: 'DROP DATABASE IF EXISTS allixios_bootstrap SYNC' });
      await applyStatements(client, statements.slice(0, done));
      await applyStatements(client, statements);
      // Then the schema is the complete one
      expect(await schemaSnapshot(), `interrupted after statement ${done} (${statements[done - 1]!.asset.name} #${statements[done - 1]!.statement.index})`).toEqual(complete);
    }
  });

  it('the category rollup, added to a database that holds events, counts them, and its backfill can run again', async () => {
    // Given a database bootstrapped before V0008 that already holds page views in a category
    await client.command({ query: 'DROP DATABASE IF EXISTS allixios SYNC' });
    await client.command({ query: 'DROP DATABASE IF EXISTS allixios_bootstrap SYNC' });
    const statements = assetStatements(loadClickHouseAssets());
    const before = statements.filter(({ asset }) => /^V\d+__/.test(asset.name) && asset.name < 'V0008');
    await applyStatements(client, before);
    const category = randomUUID();
    const visitors = [randomUUID(), randomUUID(), randomUUID()];
    const pageView = (visitor: string, day: number) => ({
      event_time: `${utcDay(day)} 10:00:00.000`,
      event_type: 'page_view',
      anonymous_id: visitor,
      session_id: randomUUID(),
      article_id: randomUUID(),
      category_id: category,
    });
    await insert('user_events', [pageView(visitors[0]!, 2), pageView(visitors[1]!, 2), pageView(visitors[0]!, 1)]);
    // When the rest of the assets is applied, a new visitor comes, and the backfill runs a second time
    await applyStatements(
      client,
      statements.filter((statement) => !before.includes(statement)),
    );
    await insert('user_events', [pageView(visitors[2]!, 1)]);
    const backfill = statements.find(({ asset, statement }) => asset.name.startsWith('V0008') && /^\s*INSERT INTO/i.test(statement.text));
    expect(backfill).toBeDefined();
    await applyStatements(client, [backfill!]);
    // Then the older events are counted, and each visitor once
    const week = await rows<{ visitors: number }>(
      `SELECT toUInt32(unique_visitors) AS visitors FROM allixios.category_visitors_period(first_day = '${utcDay(7)}', last_day = '${utcDay(0)}') WHERE category_id = '${category}'`,
    );
    expect(week).toEqual([{ visitors: 3 }]);
  });

  it('creates no users, roles or grants: users.d/allixios.xml defines them', () => {
    // Given every statement of the assets; when access-control statements are looked for
    const access = assetStatements(loadClickHouseAssets())
      .map(({ statement }) => statement.text)
      .filter((text) => /^\s*(GRANT|REVOKE|(CREATE|ALTER|DROP)\s+(USER|ROLE|ROW POLICY|QUOTA|SETTINGS PROFILE))\b/i.test(text));
    // Then there are none
    expect(access).toEqual([]);
  });
});

describe('table definitions', () => {
  beforeAll(freshSchema);

  it('each table has the engine, partition key, sorting key and TTL its file declares', async () => {
    // Given the applied schema; when system.tables is read
    const tables = await rows<{ name: string; engine: string; partition_key: string; sorting_key: string; create_table_query: string }>(
      "SELECT name, engine, partition_key, sorting_key, create_table_query FROM system.tables WHERE database = 'allixios' AND engine LIKE '%MergeTree' ORDER BY name",
    );
    const described = Object.fromEntries(
      tables.map((table) => [
        table.name,
        {
          engine: table.engine,
          partitionKey: table.partition_key,
          sortingKey: table.sorting_key,
          ttl: /\bTTL (.+?) SETTINGS\b/.exec(table.create_table_query)?.[1],
          // Expired data leaves a whole part at a time, never by rewriting parts row by row.
          dropsWholeParts: /\bSETTINGS\b.*\bttl_only_drop_parts = 1\b/.test(table.create_table_query),
        },
      ]),
    );
    // Then raw events are kept 13 months, requests 90 days, revenue 7 years; each rollup outlives its raw table
    const monthly = (column: string) => `toYYYYMM(${column})`;
    expect(described).toEqual({
      user_events: {
        engine: 'MergeTree',
        partitionKey: monthly('event_date'),
        sortingKey: 'event_type, article_id, event_time',
        ttl: 'event_date + toIntervalMonth(13)',
        dropsWholeParts: true,
      },
      performance_metrics: {
        engine: 'MergeTree',
        partitionKey: monthly('event_date'),
        sortingKey: 'endpoint, method, event_time',
        ttl: 'event_date + toIntervalDay(90)',
        dropsWholeParts: true,
      },
      revenue_events: {
        engine: 'MergeTree',
        partitionKey: monthly('event_date'),
        sortingKey: 'source, campaign, event_time',
        ttl: 'event_date + toIntervalYear(7)',
        dropsWholeParts: true,
      },
      article_views_daily_agg: {
        engine: 'AggregatingMergeTree',
        partitionKey: monthly('event_date'),
        sortingKey: 'event_date, article_id',
        ttl: 'event_date + toIntervalYear(5)',
        dropsWholeParts: true,
      },
      category_visitors_daily_agg: {
        engine: 'AggregatingMergeTree',
        partitionKey: monthly('event_date'),
        sortingKey: 'event_date, category_id',
        ttl: 'event_date + toIntervalYear(5)',
        dropsWholeParts: true,
      },
      endpoint_latency_hourly_agg: {
        engine: 'AggregatingMergeTree',
        partitionKey: monthly('hour'),
        sortingKey: 'endpoint, method, hour',
        ttl: 'toDate(hour) + toIntervalMonth(13)',
        dropsWholeParts: true,
      },
      revenue_daily_agg: {
        engine: 'SummingMergeTree',
        partitionKey: monthly('event_date'),
        sortingKey: 'event_date, source, campaign, conversion_type, currency',
        ttl: 'event_date + toIntervalYear(10)',
        dropsWholeParts: true,
      },
    });
  });

  it('each materialized view reads its raw table and writes its rollup', async () => {
    // Given the applied schema; when the dependencies ClickHouse tracks are read
    const views = await rows<{ name: string; create_table_query: string }>(
      "SELECT name, create_table_query FROM system.tables WHERE database = 'allixios' AND engine = 'MaterializedView' ORDER BY name",
    );
    const flows = Object.fromEntries(
      views.map((view) => [view.name, { to: /\bTO (\S+)/.exec(view.create_table_query)?.[1], from: /\bFROM (\S+)/.exec(view.create_table_query)?.[1] }]),
    );
    const triggers = await rows<{ name: string; dependencies_table: string[] }>(
      "SELECT name, arraySort(dependencies_table) AS dependencies_table FROM system.tables WHERE database = 'allixios' AND notEmpty(dependencies_table) ORDER BY name",
    );
    // Then each raw table triggers exactly one view, into the rollup of the same name
    expect(flows).toEqual({
      article_views_daily_mv: { from: 'allixios.user_events', to: 'allixios.article_views_daily_agg' },
      category_visitors_daily_mv: { from: 'allixios.user_events', to: 'allixios.category_visitors_daily_agg' },
      endpoint_latency_hourly_mv: { from: 'allixios.performance_metrics', to: 'allixios.endpoint_latency_hourly_agg' },
      revenue_daily_mv: { from: 'allixios.revenue_events', to: 'allixios.revenue_daily_agg' },
    });
    expect(triggers).toEqual([
      { name: 'performance_metrics', dependencies_table: ['endpoint_latency_hourly_mv'] },
      { name: 'revenue_events', dependencies_table: ['revenue_daily_mv'] },
      { name: 'user_events', dependencies_table: ['article_views_daily_mv', 'category_visitors_daily_mv'] },
    ]);
  });

  it('times, texts and durations carry the codecs the files declare; every other column keeps the default', async () => {
    // Given the applied schema; when the columns with an explicit codec are listed
    const codecs = await rows<{ table: string; name: string; compression_codec: string }>(
      "SELECT table, name, compression_codec FROM system.columns WHERE database = 'allixios' AND compression_codec != '' ORDER BY table, name",
    );
    // Then they are exactly these
    expect(codecs.map((column) => `${column.table}.${column.name} ${column.compression_codec}`)).toEqual([
      'performance_metrics.duration_ms CODEC(T64, ZSTD(1))',
      'performance_metrics.error_message CODEC(ZSTD(3))',
      'performance_metrics.event_time CODEC(Delta(8), ZSTD(1))',
      'revenue_events.event_time CODEC(Delta(8), ZSTD(1))',
      'revenue_events.touchpoints CODEC(ZSTD(1))',
      'user_events.event_time CODEC(Delta(8), ZSTD(1))',
      'user_events.properties CODEC(ZSTD(1))',
      'user_events.referrer CODEC(ZSTD(3))',
    ]);
  });

  it('derives the event date from the event time in UTC, whatever a writer sends for it', async () => {
    // Given an event a millisecond before midnight UTC, sent with a contradicting event_date
    const article = randomUUID();
    await insert('user_events', [
      { event_time: `${utcDay(10)} 23:59:59.999`, event_date: '2020-01-01', event_type: 'click', anonymous_id: randomUUID(), session_id: randomUUID(), article_id: article },
    ]);
    // When it is read back
    const [row] = await rows<{ event_date: string }>(`SELECT event_date FROM allixios.user_events WHERE article_id = '${article}'`);
    // Then its date is the UTC day of its time
    expect(row).toEqual({ event_date: utcDay(10) });
  });

  it('an anonymous event may omit its user or send null: both read back as the nil UUID', async () => {
    // Given two anonymous page views of one article, one without user_id, one with null
    const article = randomUUID();
    const event = { event_time: `${utcDay(1)} 08:00:00.000`, event_type: 'page_view', anonymous_id: randomUUID(), session_id: randomUUID(), article_id: article };
    await insert('user_events', [event, { ...event, user_id: null }]);
    // When their user ids are read back
    const users = await rows<{ user_id: string }>(`SELECT toString(user_id) AS user_id FROM allixios.user_events WHERE article_id = '${article}'`);
    // Then both are the nil UUID, which the rollup reads as "count the browser"
    expect(users).toEqual([{ user_id: NIL }, { user_id: NIL }]);
  });

  it.each([
    ['event_type_format', 'user_events', { event_type: 'PageView', anonymous_id: NIL, session_id: NIL }],
    ['country_format', 'user_events', { event_type: 'page_view', anonymous_id: NIL, session_id: NIL, country: 'fr' }],
    ['status_is_http', 'performance_metrics', { endpoint: '/api/x', method: 'GET', status: 700, duration_ms: 1 }],
    ['method_format', 'performance_metrics', { endpoint: '/api/x', method: 'get', status: 200, duration_ms: 1 }],
    ['currency_format', 'revenue_events', { event_id: NIL, source: 'google', conversion_type: 'purchase', amount: '1', currency: 'eur' }],
    ['source_present', 'revenue_events', { event_id: NIL, source: '', conversion_type: 'purchase', amount: '1', currency: 'EUR' }],
  ] as const)('the engine refuses a row that breaks %s (%s)', async (constraint, table, row) => {
    // Given a row that breaks a constraint; when it is inserted
    const error = await failure(() => insert(table, [{ event_time: `${utcDay(1)} 12:00:00.000`, ...row }]));
    // Then ClickHouse refuses it, naming the constraint
    expect(error?.type).toBe('VIOLATED_CONSTRAINT');
    expect(error?.message).toContain(`Constraint \`${constraint}\``);
  });
});

// ---------------------------------------------------------------------------------------------

describe('rollups', () => {
  beforeAll(freshSchema);

  describe('page views and unique visitors per article per day', () => {
    const articles = [randomUUID(), randomUUID(), randomUUID()];
    const days = [utcDay(3), utcDay(2), utcDay(1)];
    /** Browsers; some visitors sign in, one of them on two browsers. */
    const browsers = Array.from({ length: 8 }, () => randomUUID());
    const users = [randomUUID(), randomUUID()];
    const identities = [
      ...browsers.slice(0, 5).map((browser) => ({ user: NIL, browser })),
      { user: users[0]!, browser: browsers[5]! },
      { user: users[0]!, browser: browsers[6]! },
      { user: users[1]!, browser: browsers[7]! },
    ];
    const inList = articles.map((id) => `'${id}'`).join(', ');

    type Expected = Map<string, { views: number; visitors: Set<string> }>;
    const expectedByDay: Expected = new Map();
    const expectedByArticle: Expected = new Map();

    beforeAll(async () => {
      // Page views, clicks and shares on three articles and outside any article, over three
      // days, including both sides of a midnight; inserted in three batches, so every (day,
      // article) has several rows in the rollup before merges.
      const next = random(4);
      const events = Array.from({ length: 900 }, (_, i) => {
        const who = pick(next, identities);
        const article = pick(next, [...articles, NIL]);
        const type = pick(next, ['page_view', 'page_view', 'page_view', 'click', 'share']);
        const dayIndex = Math.floor(next() * days.length);
        const time =
          i % 50 === 0 ? '23:59:59.999' : i % 50 === 1 ? '00:00:00.000' : `${String(Math.floor(next() * 24)).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:00.000`;
        return {
          event_time: `${days[dayIndex]} ${time}`,
          event_type: type,
          user_id: who.user,
          anonymous_id: who.browser,
          session_id: randomUUID(),
          article_id: article,
          device: 'mobile',
          country: 'DE',
          properties: { position: String(i) },
        };
      });
      for (const event of events) {
        if (event.event_type !== 'page_view' || event.article_id === NIL) continue;
        const visitor = event.user_id === NIL ? event.anonymous_id : event.user_id;
        for (const [map, key] of [
          [expectedByDay, `${event.event_time.slice(0, 10)} ${event.article_id}`],
          [expectedByArticle, event.article_id],
        ] as const) {
          const entry = map.get(key) ?? { views: 0, visitors: new Set<string>() };
          entry.views++;
          entry.visitors.add(visitor);
          map.set(key, entry);
        }
      }
      for (let batch = 0; batch < 3; batch++) await insert('user_events', events.slice(batch * 300, (batch + 1) * 300));
    });

    const dashboardRows = () =>
      rows<{ key: string; views: number; visitors: number }>(
        `SELECT concat(toString(event_date), ' ', toString(article_id)) AS key, toUInt32(views) AS views, toUInt32(unique_visitors) AS visitors
         FROM allixios.article_views_daily WHERE article_id IN (${inList}) ORDER BY key`,
      );
    const expectedRows = () => [...expectedByDay.entries()].sort(byKey).map(([key, value]) => ({ key, views: value.views, visitors: value.visitors.size }));

    it('the dashboard view counts what the raw events hold, whatever the merges have done', async () => {
      // Given the events; when the dashboard view and the raw table are asked the same question
      const fromRaw = await rows<{ key: string; views: number; visitors: number }>(
        `SELECT concat(toString(event_date), ' ', toString(article_id)) AS key, toUInt32(count()) AS views,
                toUInt32(uniqExact(if(user_id = toUUID('${NIL}'), anonymous_id, user_id))) AS visitors
         FROM allixios.user_events WHERE event_type = 'page_view' AND article_id IN (${inList}) GROUP BY key ORDER BY key`,
      );
      // Then both give the counts of the events as written: clicks, shares and views outside
      // articles left out, a user on two browsers counted once, a day cut at midnight UTC
      expect(fromRaw).toEqual(expectedRows());
      expect(await dashboardRows()).toEqual(expectedRows());
      expect(expectedByDay.size).toBe(articles.length * days.length);
      // And after the background merges have run to the end, the rollup holds one row per key and the same counts
      await client.command({ query: 'OPTIMIZE TABLE allixios.article_views_daily_agg FINAL' });
      const [stored] = await rows<{ rows: number }>(`SELECT toUInt32(count()) AS rows FROM allixios.article_views_daily_agg WHERE article_id IN (${inList})`);
      expect(stored).toEqual({ rows: expectedByDay.size });
      expect(await dashboardRows()).toEqual(expectedRows());
    });

    it('unique visitors of a period count each visitor once, not once per day', async () => {
      // Given visitors who came back on several days
      const summedDaily = [...expectedByDay.values()].reduce((total, day) => total + day.visitors.size, 0);
      const distinct = [...expectedByArticle.values()].reduce((total, article) => total + article.visitors.size, 0);
      expect(summedDaily).toBeGreaterThan(distinct);
      // When the period view is asked for the three days
      const period = await rows<{ article_id: string; views: number; visitors: number }>(
        `SELECT article_id, toUInt32(views) AS views, toUInt32(unique_visitors) AS visitors
         FROM allixios.article_views_period(first_day = '${days[0]}', last_day = '${days[2]}') WHERE article_id IN (${inList}) ORDER BY toString(article_id)`,
      );
      // Then each article's visitors are the distinct visitors of the period
      expect(period).toEqual([...expectedByArticle.entries()].sort(byKey).map(([article, value]) => ({ article_id: article, views: value.views, visitors: value.visitors.size })));
      // And a period of one day is that day
      const [oneDay] = await rows<{ views: number }>(
        `SELECT toUInt32(views) AS views FROM allixios.article_views_period(first_day = '${days[1]}', last_day = '${days[1]}') WHERE article_id = '${articles[0]}'`,
      );
      expect(oneDay).toEqual({ views: expectedByDay.get(`${days[1]} ${articles[0]}`)!.views });
    });
  });

  describe('unique visitors per category per day', () => {
    const categories = [randomUUID(), randomUUID()];
    const days = [utcDay(3), utcDay(2), utcDay(1)];
    const inList = categories.map((id) => `'${id}'`).join(', ');
    /** Distinct visitors per category over the three days, as written. */
    const expected = new Map<string, Set<string>>();

    beforeAll(async () => {
      // Page views and clicks in two categories over three days by twelve visitors, some signed
      // in, who come back on several days; in three batches.
      const next = random(7);
      const identities = Array.from({ length: 12 }, (_, k) => ({ user: k < 4 ? randomUUID() : NIL, browser: randomUUID() }));
      const events = Array.from({ length: 600 }, () => {
        const who = pick(next, identities);
        return {
          event_time: `${pick(next, days)} ${String(Math.floor(next() * 24)).padStart(2, '0')}:15:00.000`,
          event_type: pick(next, ['page_view', 'page_view', 'click']),
          user_id: who.user,
          anonymous_id: who.browser,
          session_id: randomUUID(),
          article_id: randomUUID(),
          category_id: pick(next, categories),
        };
      });
      for (const event of events) {
        if (event.event_type !== 'page_view') continue;
        const visitors = expected.get(event.category_id) ?? new Set<string>();
        visitors.add(event.user_id === NIL ? event.anonymous_id : event.user_id);
        expected.set(event.category_id, visitors);
      }
      for (let batch = 0; batch < 3; batch++) await insert('user_events', events.slice(batch * 200, (batch + 1) * 200));
    });

    const period = () =>
      rows<{ category_id: string; visitors: number }>(
        `SELECT category_id, toUInt32(unique_visitors) AS visitors
         FROM allixios.category_visitors_period(first_day = '${days[0]}', last_day = '${days[2]}') WHERE category_id IN (${inList}) ORDER BY toString(category_id)`,
      );

    it('the period view counts each visitor of a category once over the days, before and after merges', async () => {
      // Given the events; when the period view is read for the three days
      const want = [...expected.entries()].sort(byKey).map(([category, visitors]) => ({ category_id: category, visitors: visitors.size }));
      // Then each category has its distinct visitors, clicks left out
      expect(await period()).toEqual(want);
      // And after the merges have run to the end, a row per category and day and the same figures
      await client.command({ query: 'OPTIMIZE TABLE allixios.category_visitors_daily_agg FINAL' });
      const [stored] = await rows<{ rows: number }>(`SELECT toUInt32(count()) AS rows FROM allixios.category_visitors_daily_agg WHERE category_id IN (${inList})`);
      expect(stored).toEqual({ rows: categories.length * days.length });
      expect(await period()).toEqual(want);
    });
  });

  describe('requests and latency quantiles per endpoint per hour', () => {
    const endpoints = ['/api/rollup-test/articles/:id', '/api/rollup-test/search'];
    const hours = [`${utcDay(1)} 10`, `${utcDay(1)} 11`];
    const expected = new Map<string, { requests: number; errors: number }>();

    beforeAll(async () => {
      // Per endpoint and hour, 3,000 requests: most fast, a slow tail (longer and heavier in the
      // second hour), 2% server errors, and a few 200s the platform flags as errors (a failed
      // downstream call); in six batches.
      const next = random(7);
      const requests = endpoints.flatMap((endpoint) =>
        hours.flatMap((hour, hourIndex) =>
          Array.from({ length: 3000 }, (_, i) => {
            const slow = next() < (hourIndex === 0 ? 0.1 : 0.2);
            const tail = hourIndex === 0 ? 200 + next() * 1800 : 1000 + next() * 4000;
            const duration = Math.round(slow ? tail : 20 + next() * 100 + (endpoint.endsWith('search') ? 50 : 0));
            const status = next() < 0.02 ? 503 : 200;
            const flagged = status === 200 && i % 500 === 0;
            return {
              event_time: `${hour}:${String(i % 60).padStart(2, '0')}:${String(Math.floor(next() * 60)).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}`,
              endpoint,
              method: 'GET',
              status,
              duration_ms: duration,
              ...(flagged ? { is_error: true, error_message: 'recommendations timed out' } : {}),
              instance: `api-${i % 3}`,
            };
          }),
        ),
      );
      for (const request of requests) {
        const key = `${request.event_time.slice(0, 13)} ${request.endpoint}`;
        const entry = expected.get(key) ?? { requests: 0, errors: 0 };
        entry.requests++;
        if (request.status >= 500 || request.is_error) entry.errors++;
        expected.set(key, entry);
      }
      for (let batch = 0; batch < 6; batch++) await insert('performance_metrics', requests.slice(batch * 2000, (batch + 1) * 2000));
    });

    it('requests and errors per endpoint per hour are exact, server errors and flagged requests alike', async () => {
      // Given the requests; when the dashboard view is read
      const fromView = await rows<{ key: string; requests: number; errors: number }>(
        `SELECT concat(formatDateTime(hour, '%Y-%m-%d %H'), ' ', endpoint) AS key, toUInt32(requests) AS requests, toUInt32(errors) AS errors
         FROM allixios.endpoint_latency_hourly WHERE endpoint LIKE '/api/rollup-test/%' ORDER BY key`,
      );
      // Then it counts what was written
      expect(fromView).toEqual([...expected.entries()].sort(byKey).map(([key, value]) => ({ key, ...value })));
      expect(fromView.every((row) => row.errors > 0)).toBe(true);
    });

    it('p50, p95 and p99 from the rollup are within half a percentile of the exact ones, for an hour and for a day', async () => {
      // Given the requests; when the rollup's quantiles are read, and the raw requests' exact
      // quantiles half a percentile below and above each level
      const levels = [0.5, 0.95, 0.99];
      const brackets = levels.flatMap((level) => [level - 0.005, level + 0.005]).join(', ');
      const fromView = await rows<{ key: string; quantiles: number[] }>(
        `SELECT concat(formatDateTime(hour, '%Y-%m-%d %H'), ' ', endpoint) AS key, [p50_ms, p95_ms, p99_ms] AS quantiles
         FROM allixios.endpoint_latency_hourly WHERE endpoint LIKE '/api/rollup-test/%' ORDER BY key`,
      );
      const exact = await rows<{ key: string; bounds: number[] }>(
        `SELECT concat(formatDateTime(toStartOfHour(event_time), '%Y-%m-%d %H'), ' ', endpoint) AS key, quantilesExact(${brackets})(duration_ms) AS bounds
         FROM allixios.performance_metrics WHERE endpoint LIKE '/api/rollup-test/%' GROUP BY key ORDER BY key`,
      );
      // Then each of the rollup's quantiles lies between the exact bounds of its level (a rank
      // error, which holds in a sparse tail where neighbouring values lie far apart)
      expect(fromView.map((row) => row.key)).toEqual(exact.map((row) => row.key));
      expect(exact).toHaveLength(endpoints.length * hours.length);
      for (const [index, row] of fromView.entries()) {
        const bounds = exact[index]!.bounds;
        levels.forEach((level, i) => {
          const message = `${row.key} p${level * 100}: ${row.quantiles[i]} outside [${bounds[2 * i]}, ${bounds[2 * i + 1]}]`;
          expect(row.quantiles[i], message).toBeGreaterThanOrEqual(bounds[2 * i]!);
          expect(row.quantiles[i], message).toBeLessThanOrEqual(bounds[2 * i + 1]!);
        });
      }
      // And a day's p95 merged from its two hours is the p95 of the day's requests, which the
      // average of the hours' p95s, with a slower second hour, is not
      const [day] = await rows<{ merged: number; averaged: number; bounds: number[] }>(
        `SELECT (SELECT quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)(duration_ms)[3] FROM allixios.endpoint_latency_hourly_agg WHERE endpoint = '${endpoints[0]}') AS merged,
                (SELECT avg(p95_ms) FROM allixios.endpoint_latency_hourly WHERE endpoint = '${endpoints[0]}') AS averaged,
                (SELECT quantilesExact(0.945, 0.955)(duration_ms) FROM allixios.performance_metrics WHERE endpoint = '${endpoints[0]}') AS bounds`,
      );
      const [low, high] = day!.bounds as [number, number];
      expect(day!.merged).toBeGreaterThanOrEqual(low);
      expect(day!.merged).toBeLessThanOrEqual(high);
      expect(day!.averaged < low || day!.averaged > high, `average of hourly p95s ${day!.averaged} inside [${low}, ${high}]`).toBe(true);
    });
  });

  describe('revenue and conversions per source per day', () => {
    const days = [utcDay(3), utcDay(2), utcDay(1)];
    const sources = ['rollup-test-google', 'rollup-test-newsletter', 'rollup-test-direct'];
    /** Sums in ten-thousandths, as BigInt: the expected values must be exact too. */
    const expected = new Map<string, { revenue: bigint; conversions: number }>();
    let refunds = 0;

    /** `-12.3400` from -123400n: the fixed four decimals toDecimalString prints. */
    const decimal = (units: bigint) => {
      const sign = units < 0n ? '-' : '';
      const digits = (units < 0n ? -units : units).toString().padStart(5, '0');
      return `${sign}${digits.slice(0, -4)}.${digits.slice(-4)}`;
    };

    beforeAll(async () => {
      // Purchases and subscriptions in two currencies, refunds as negative amounts, amounts with
      // four decimals and some near the largest Decimal(18, 4) value; in four batches.
      const next = random(11);
      const events = Array.from({ length: 400 }, (_, i) => {
        const type = pick(next, ['purchase', 'subscription', 'subscription', 'refund']);
        const large = i % 97 === 0;
        const units = BigInt(Math.floor(next() * 1_000_000)) + (large ? 99_999_999_000_000_000n : 0n);
        const amount = type === 'refund' ? -units : units;
        const source = pick(next, sources);
        return {
          event_time: `${pick(next, days)} ${String(Math.floor(next() * 24)).padStart(2, '0')}:30:00.000`,
          event_id: randomUUID(),
          user_id: randomUUID(),
          source,
          campaign: pick(next, ['', 'spring', 'launch']),
          conversion_type: type,
          amount: decimal(amount),
          currency: pick(next, ['EUR', 'USD']),
          attribution_model: 'last_click',
          touchpoints: [{ source, campaign: 'spring', touched_at: `${days[0]} 08:00:00.000` }],
        };
      });
      for (const event of events) {
        const key = `${event.event_time.slice(0, 10)} ${event.source} ${event.currency}`;
        const entry = expected.get(key) ?? { revenue: 0n, conversions: 0 };
        entry.revenue += BigInt(event.amount.replace('.', ''));
        entry.conversions++;
        expected.set(key, entry);
        if (event.amount.startsWith('-')) refunds++;
      }
      for (let batch = 0; batch < 4; batch++) await insert('revenue_events', events.slice(batch * 100, (batch + 1) * 100));
    });

    it('sums each source, currency and day to the ten-thousandth, refunds netted and currencies kept apart', async () => {
      // Given the revenue events; when the dashboard view and the raw table are read
      const fromView = await rows<{ key: string; revenue: string; conversions: number }>(
        `SELECT concat(toString(event_date), ' ', source, ' ', toString(currency)) AS key, toDecimalString(revenue, 4) AS revenue, toUInt32(conversions) AS conversions
         FROM allixios.revenue_daily WHERE source LIKE 'rollup-test-%' ORDER BY key`,
      );
      const fromRaw = await rows<{ key: string; revenue: string; conversions: number }>(
        `SELECT concat(toString(event_date), ' ', source, ' ', toString(currency)) AS key, toDecimalString(sum(amount), 4) AS revenue, toUInt32(count()) AS conversions
         FROM allixios.revenue_events WHERE source LIKE 'rollup-test-%' GROUP BY key ORDER BY key`,
      );
      // Then both are the exact sums of the amounts written
      const exact = [...expected.entries()].sort(byKey).map(([key, value]) => ({ key, revenue: decimal(value.revenue), conversions: value.conversions }));
      expect(fromRaw).toEqual(exact);
      expect(fromView).toEqual(exact);
      expect(new Set(exact.map((row) => row.key.slice(-3)))).toEqual(new Set(['EUR', 'USD']));
      // (The data holds what the claim needs: sums beyond the integers a double holds exactly, and refunds.)
      expect([...expected.values()].some((value) => value.revenue > BigInt(Number.MAX_SAFE_INTEGER))).toBe(true);
      expect(refunds).toBeGreaterThan(0);
      // And merging the rollup's rows changes no sum
      await client.command({ query: 'OPTIMIZE TABLE allixios.revenue_daily_agg FINAL' });
      expect(
        await rows(
          `SELECT concat(toString(event_date), ' ', source, ' ', toString(currency)) AS key, toDecimalString(revenue, 4) AS revenue, toUInt32(conversions) AS conversions
           FROM allixios.revenue_daily WHERE source LIKE 'rollup-test-%' ORDER BY key`,
        ),
      ).toEqual(exact);
    });
  });

  it('data past its retention leaves the raw table and stays in the rollup', async () => {
    // Given a request older than the 90 days requests are kept, and a recent one
    const endpoint = '/api/retention-test';
    await insert('performance_metrics', [{ event_time: `${utcDay(100)} 09:00:00.000`, endpoint, method: 'GET', status: 200, duration_ms: 40 }]);
    await insert('performance_metrics', [{ event_time: `${utcDay(1)} 09:00:00.000`, endpoint, method: 'GET', status: 200, duration_ms: 50 }]);
    // When the table's merges, which apply the TTL, have run
    await client.command({ query: 'OPTIMIZE TABLE allixios.performance_metrics FINAL' });
    // Then only the recent request is left in the raw table, and the rollup still has both hours
    const raw = await rows<{ duration_ms: number }>(`SELECT duration_ms FROM allixios.performance_metrics WHERE endpoint = '${endpoint}'`);
    expect(raw).toEqual([{ duration_ms: 50 }]);
    const hourly = await rows<{ day: string; requests: number }>(
      `SELECT toString(toDate(hour)) AS day, toUInt32(requests) AS requests FROM allixios.endpoint_latency_hourly WHERE endpoint = '${endpoint}' ORDER BY day`,
    );
    expect(hourly).toEqual([
      { day: utcDay(100), requests: 1 },
      { day: utcDay(1), requests: 1 },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('dashboard queries', () => {
  const article = randomUUID();
  const category = randomUUID();

  beforeAll(async () => {
    await freshSchema();
    // Enough raw rows that reading them would show: 5,000 page views of one article on one day,
    // 5,000 requests, 500 conversions.
    const day = utcDay(1);
    await insert(
      'user_events',
      Array.from({ length: 5000 }, (_, i) => ({
        event_time: `${day} 12:00:00.${String(i % 1000).padStart(3, '0')}`,
        event_type: 'page_view',
        anonymous_id: randomUUID(),
        session_id: randomUUID(),
        article_id: article,
        category_id: category,
      })),
    );
    await insert(
      'performance_metrics',
      Array.from({ length: 5000 }, (_, i) => ({ event_time: `${day} 12:00:00.000`, endpoint: '/api/articles/:id', method: 'GET', status: 200, duration_ms: 10 + (i % 90) })),
    );
    await insert(
      'revenue_events',
      Array.from({ length: 500 }, () => ({
        event_time: `${day} 12:00:00.000`,
        event_id: randomUUID(),
        source: 'google',
        conversion_type: 'purchase',
        amount: '9.99',
        currency: 'EUR',
      })),
    );
  });

  /** The tables a query's plan reads from. */
  async function tablesRead(query: string): Promise<string[]> {
    const plan = (await (await client.query({ query: `EXPLAIN ${query}`, format: 'TabSeparatedRaw' })).text()).split('\n');
    return [...new Set(plan.flatMap((line) => /ReadFromMergeTree \((\S+)\)/.exec(line)?.[1] ?? []))].sort();
  }

  it.each([
    ['SELECT * FROM allixios.article_views_daily', 'allixios.article_views_daily_agg'],
    [`SELECT * FROM allixios.article_views_period(first_day = '${utcDay(7)}', last_day = '${utcDay(0)}')`, 'allixios.article_views_daily_agg'],
    [`SELECT * FROM allixios.category_visitors_period(first_day = '${utcDay(7)}', last_day = '${utcDay(0)}')`, 'allixios.category_visitors_daily_agg'],
    ['SELECT * FROM allixios.endpoint_latency_hourly', 'allixios.endpoint_latency_hourly_agg'],
    ['SELECT * FROM allixios.revenue_daily', 'allixios.revenue_daily_agg'],
  ])('%s reads only %s', async (query, rollup) => {
    // Given the dashboard view; when ClickHouse plans a query on it
    const tables = await tablesRead(query);
    // Then the plan reads the rollup and no raw table
    expect(tables).toEqual([rollup]);
  });

  it('a dashboard query reads a handful of rollup rows, not the raw events', async () => {
    // Given 5,000 page views of one article; when the dashboard asks for the article's daily views
    const result = await (
      await client.query({ query: `SELECT toUInt32(views) AS views FROM allixios.article_views_daily WHERE article_id = '${article}'`, format: 'JSON' })
    ).json<{ views: number }>();
    // Then the answer is right and ClickHouse read no more rows than the rollup holds
    expect(result.data).toEqual([{ views: 5000 }]);
    const [rollup] = await rows<{ rows: number }>('SELECT toUInt32(count()) AS rows FROM allixios.article_views_daily_agg');
    expect(result.statistics?.rows_read).toBeLessThanOrEqual(rollup!.rows);
    expect(rollup!.rows).toBeLessThan(5000);
  });

  it("one article's daily views read the rollup's projection by article, not a granule per day", async () => {
    // Given the rollup holding the article's page views among 200,000 others on 20,000 articles over 35 days
    await client.command({
      query: `INSERT INTO allixios.user_events (event_time, event_type, anonymous_id, session_id, article_id)
              SELECT toDateTime64('${utcDay(1)} 12:00:00', 3, 'UTC') - toIntervalDay(number % 35), 'page_view', generateUUIDv4(number), generateUUIDv4(number),
                     reinterpretAsUUID(cityHash64(number % 20000, 'projection-test'))
                FROM numbers(200000)`,
    });
    const [{ id }] = (await rows<{ id: string }>(`SELECT toString(reinterpretAsUUID(cityHash64(7, 'projection-test'))) AS id`)) as [{ id: string }];
    // When the month of one of those articles (viewed on seven days across both months) is planned
    const plan = await (
      await client.query({
        query: `EXPLAIN indexes = 1 SELECT event_date, views FROM allixios.article_views_daily WHERE article_id = '${id}' AND event_date BETWEEN '${utcDay(30)}' AND '${utcDay(0)}'`,
        format: 'TabSeparatedRaw',
      })
    ).text();
    // Then every active part of the rollup carries the projection
    const parts = await rows<{ part: string; projections: string[] }>(
      `SELECT name AS part, projections FROM system.parts WHERE database = 'allixios' AND table = 'article_views_daily_agg' AND active ORDER BY name`,
    );
    expect(parts.length).toBeGreaterThan(0);
    expect(parts.filter((part) => !part.projections.includes('by_article'))).toEqual([]);
    // And ClickHouse reads the projection ordered by (article_id, event_date), keyed on the article
    expect(plan).toMatch(/ReadFromMergeTree \(by_article\)/);
    expect(plan).toMatch(/PrimaryKey\s+Keys:\s+article_id\s+event_date\s+Condition: .*article_id in/);
  });

  it('a date filter on a dashboard view reaches the rollup as a key condition', async () => {
    // Given the dashboard view of daily views; when a one-day query is planned with its indexes
    const plan = await (
      await client.query({ query: `EXPLAIN indexes = 1 SELECT * FROM allixios.article_views_daily WHERE event_date = '${utcDay(1)}'`, format: 'TabSeparatedRaw' })
    ).text();
    // Then the rollup's partition and primary key both filter on the day
    expect(plan).toMatch(/Partition\s+Keys:\s+toYYYYMM\(event_date\)\s+Condition: \(toYYYYMM\(event_date\) in \[\d+, \d+\]\)/);
    expect(plan).toMatch(/PrimaryKey\s+Keys:\s+event_date\s+Condition: \(event_date in \[\d+, \d+\]\)/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a broken asset', () => {
  const directory = assetFolder({
    'schemas/V0001__database.sql': 'CREATE DATABASE IF NOT EXISTS allixios_broken;\n',
    'schemas/V0002__tables.sql': [
      '-- A table that applies, one with a typo in a type, one that is never reached.',
      'CREATE TABLE IF NOT EXISTS allixios_broken.first (id UInt64) ENGINE = MergeTree ORDER BY id;',
      '',
      'CREATE TABLE IF NOT EXISTS allixios_broken.typo',
      '(',
      '    id   UInt64,',
      '    name Strin',
      ')',
      'ENGINE = MergeTree ORDER BY id;',
      '',
      'CREATE TABLE IF NOT EXISTS allixios_broken.last (id UInt64) ENGINE = MergeTree ORDER BY id;',
      '',
    ].join('\n'),
  });

  beforeAll(async () => {
    // Its own history: the platform's assets applied above are another V0001.
    await client.command({ query: 'DROP DATABASE IF EXISTS allixios_bootstrap SYNC' });
  });

  afterAll(async () => {
    await client.command({ query: 'DROP DATABASE IF EXISTS allixios_broken SYNC' });
    // The runner's ledger goes too: a fresh engine has neither.
    await client.command({ query: 'DROP DATABASE IF EXISTS allixios_bootstrap SYNC' });
    rmSync(directory, { recursive: true, force: true });
  });

  const tables = async () => (await rows<{ name: string }>("SELECT name FROM system.tables WHERE database = 'allixios_broken' ORDER BY name")).map((table) => table.name);

  it("fails with ClickHouse's own error, naming the file, statement and line, after applying what precedes it", async () => {
    // Given an asset whose second statement misspells String; when the assets are applied
    const error = await failure(() => applyClickHouseAssets(client, directory));
    // Then the error names the place and the problem, in ClickHouse's words and with its error name
    expect(error?.message).toMatch(/^clickhouse: schemas\/V0002__tables\.sql, statement 2, line 4, column 1: .*Unknown data type family: Strin\b.* \[UNKNOWN_TYPE\]$/s);
    // And the statements before it are applied, those after it are not
    expect(await tables()).toEqual(['first']);
  });

  it('once fixed, the next run resumes and completes', async () => {
    // Given the failed run above, and the typo fixed
    writeAssets(directory, { 'schemas/V0002__tables.sql': loadClickHouseAssets(directory)[1]!.content.replace('Strin\n', 'String\n') });
    // When the assets are applied again
    await applyClickHouseAssets(client, directory);
    // Then every table exists
    expect(await tables()).toEqual(['first', 'last', 'typo']);
  });
});
