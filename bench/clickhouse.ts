/**
 * The ClickHouse benchmark: the analytics schema (databases/clickhouse/schemas) loaded with
 * generated events at a given scale, then the five dashboard questions of the issue timed as a
 * dashboard issues them (through the dashboard views, which read the rollups) and as the same
 * question answered from the raw tables, the baseline. Each query's plan is saved and checked.
 *
 * The data is made by the engine itself, `INSERT INTO ... SELECT ... FROM numbers(offset, count)`,
 * every value a function of the row number and SEED (cityHash64), so the same scale gives the same
 * rows and nothing crosses the client: 20,000,000 events load in chunks that keep memory bounded
 * while the materialized views fill the rollups block by block, as they do in production.
 *
 * Dates are offsets from an end date, today (UTC) at run time: the raw tables have TTLs (user
 * events 13 months, requests 90 days), so data pinned to a fixed calendar date would expire the
 * day it crossed them and a merge would drop it mid-run. Every row is a function of its day
 * offset, so a run on another day has the same rows shifted by whole days; what moves with the
 * date is where the month boundaries fall, which decides which monthly partitions a window reads.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { startChdb } from '../bootstrap/embedded/clickhouse.ts';
import { applyAssets } from '../bootstrap/apply.ts';
import { SEED, SIZES, type Scale, type ScaleSize } from './scale.ts';
import { measure, type LoadReport, type QueryReport, type Timing } from './stats.ts';

export interface ClickHouseBenchOptions {
  scale: Scale;
  /** Measured runs per query (200 by default). A slow baseline may run fewer, reported in its timing. */
  runs?: number;
  /** Unmeasured runs before each measurement (20 by default). */
  warmup?: number;
  /** Progress lines, as they happen. */
  log?: (line: string) => void;
  /**
   * The engine to load; by default a fresh chdb data directory, removed at the end. A given
   * client is left open, and its `allixios` database must hold no events yet.
   */
  client?: ClickHouseClient;
}

/** A query report with what ClickHouse read, for the dashboard query and its baseline. */
export interface ClickHouseQueryReport extends QueryReport {
  engine: 'clickhouse';
  /** Rows the dashboard query read (the response's statistics.rows_read), for the first run's parameters. */
  rowsRead: number;
  /**
   * The dashboard query on a period without data: what the engine spends on the query's shape
   * alone (parsing, analysing the view, building the pipeline). No rollup can make the query
   * faster than this, so baseline p50 / fixed p50 bounds the speed-up any design can show.
   */
  fixedCost: Timing;
  /** The baseline query: the same question answered from the raw table. */
  baselineSql: string;
  baselinePlan: string;
  baselineRowsRead: number;
}

export interface ClickHouseBenchReport {
  /** ClickHouse's version() (chdb reports the engine it embeds). */
  version: string;
  scale: Scale;
  /** The day the generated data ends (exclusive, UTC): events lie in the `days` days before it. */
  endDate: string;
  loads: LoadReport[];
  /** OPTIMIZE ... FINAL of every table after the load, in seconds (see `settle`). */
  settleSeconds: number;
  queries: ClickHouseQueryReport[];
}

/** The issue's targets, reported against, never asserted. */
export const CLICKHOUSE_TARGETS = { p95Ms: 50, speedup: 50 } as const;

/** Rows per INSERT ... SELECT: a few million, so one statement's memory stays bounded. */
const CHUNK_ROWS = 2_000_000;
/** A slow baseline runs for about this long at most, and at least MIN_BASELINE_RUNS times. */
const BASELINE_BUDGET_MS = 60_000;
const MIN_BASELINE_RUNS = 30;
/** Runs of a dashboard query over a period without data (its fixed cost). */
const FIXED_COST_RUNS = 50;
/**
 * Requests cover the most recent days only: raw requests are kept 90 days, whole monthly parts
 * at a time, so a 90-day span would put its oldest part on the TTL's edge, where a merge during
 * the run could drop it and leave the baseline with fewer rows than the rollup.
 */
const MAX_REQUEST_DAYS = 80;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

// ---------------------------------------------------------------------------------------------
// Deterministic values in SQL: every one a function of the row `number` and SEED.

/** A uniform Float64 in [0, 1) from the row number and a salt: 53 bits of cityHash64, exact. */
function unit(salt: string): string {
  return `(bitShiftRight(cityHash64(number, ${SEED}, '${salt}'), 11) / 9007199254740992)`;
}

/** A UUID that is a function of `kind` and the expressions: the same entity has the same id in every table. */
function uuid(kind: string, ...expressions: string[]): string {
  const key = expressions.join(', ');
  return `reinterpretAsUUID(bitOr(bitShiftLeft(toUInt128(cityHash64(${SEED}, '${kind}', ${key})), 64), toUInt128(cityHash64(${key}, '${kind}', ${SEED}))))`;
}

function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** One of the choices' values (SQL expressions), drawn by `u` in [0, 1) with the choices' weights. */
function weighted(u: string, choices: ReadonlyArray<readonly [value: string, weight: number]>): string {
  const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
  let cumulative = 0;
  const branches = choices.slice(0, -1).map(([value, weight]) => {
    cumulative += weight;
    return `${u} < ${cumulative / total}, ${value}`;
  });
  return `multiIf(${branches.join(', ')}, ${choices.at(-1)![0]})`;
}

/**
 * An index in [0, count) with zipf-like popularity (density 1/x, Zipf with s = 1): index 0 gets
 * ln 2 / ln(count + 1) of the draws (5% of them among a million articles), the top 1% two thirds,
 * the long tail the rest.
 */
function zipf(u: string, count: number): string {
  return `least(${count - 1}, toUInt32(floor(pow(${count + 1}, ${u}))) - 1)`;
}

/** Midnight UTC of `end` (YYYY-MM-DD), `dayOffset` days back, plus `ms` milliseconds: a DateTime64(3) expression. */
function timeBefore(end: string, dayOffset: string, ms: string): string {
  return `toDateTime64(toDate('${end}'), 3, 'UTC') - toIntervalDay(${dayOffset}) + toIntervalMillisecond(${ms})`;
}

/** Milliseconds into a day, busier around midday (two uniform hours added: a triangle peaking at 12:00). */
const MS_OF_DAY = `toUInt32(floor((${unit('hour-a')} + ${unit('hour-b')}) * 12)) * 3600000 + toUInt32(floor(${unit('ms')} * 3600000))`;

// ---------------------------------------------------------------------------------------------
// The generated tables

/**
 * User events: 90% on an article (75% page views, then clicks, scrolls, shares), the rest home
 * page views and searches. Articles are zipf-popular; half the traffic goes to evergreen
 * articles (the same ranking all along), half to the week's fresh ones (the ranking shifted
 * every 7 days), so each week has its own top 10. A third of the events come from signed-in
 * users (two browsers each), the rest from anonymous browsers that come back (a skewed pool of
 * 20 per user). Device and country belong to the browser.
 */
function userEventsInsert(size: ScaleSize, end: string, offset: number, count: number): string {
  const users = size.users;
  const browsers = users * 20;
  return `INSERT INTO allixios.user_events (event_time, event_type, user_id, anonymous_id, session_id, article_id, category_id, referrer, device, country, properties)
SELECT
    ${timeBefore(end, 'day_offset', 'ms_of_day')} AS event_time,
    event_type,
    if(signed_in, ${uuid('user', 'user_index')}, toUUID('${NIL_UUID}')) AS user_id,
    ${uuid('browser', 'browser_index')} AS anonymous_id,
    ${uuid('session', 'browser_index', 'day_offset', 'intDiv(ms_of_day, 7200000)')} AS session_id,
    if(on_article, ${uuid('article', 'article_index')}, toUUID('${NIL_UUID}')) AS article_id,
    if(on_article, ${uuid('category', 'category_index')}, toUUID('${NIL_UUID}')) AS category_id,
    ${weighted(unit('referrer'), [
      ["''", 35],
      ["'https://www.google.com/'", 30],
      ["'https://news.ycombinator.com/'", 10],
      ["'https://t.co/'", 10],
      ["'https://www.facebook.com/'", 15],
    ])} AS referrer,
    ${weighted(`(cityHash64(${SEED}, 'device', browser_index) % 100 / 100)`, [
      ["'mobile'", 55],
      ["'desktop'", 35],
      ["'tablet'", 8],
      ["'bot'", 2],
    ])} AS device,
    arrayElement(['US', 'US', 'US', 'US', 'DE', 'DE', 'GB', 'GB', 'FR', 'IN', 'IN', 'BR', 'CA', 'ES', 'IT', 'NL', 'JP', 'PL', 'SE', ''], 1 + cityHash64(${SEED}, 'country', browser_index) % 20) AS country,
    multiIf(
        event_type = 'click', map('target', arrayElement(['related', 'author', 'tag', 'share_menu', 'comments'], 1 + number % 5)),
        event_type = 'scroll', map('depth', toString(25 * (1 + number % 4))),
        event_type = 'search', map('query_length', toString(3 + number % 20)),
        CAST(map(), 'Map(String, String)')
    ) AS properties
FROM
(
    SELECT
        number,
        1 + toUInt32(floor(${unit('day')} * ${size.days})) AS day_offset,
        ${MS_OF_DAY} AS ms_of_day,
        ${unit('on-article')} < 0.9 AS on_article,
        ${zipf(unit('article'), size.articles)} AS popularity_rank,
        if(${unit('evergreen')} < 0.5, popularity_rank, (popularity_rank + intDiv(day_offset, 7) * 7919 + 1) % ${size.articles}) AS article_index,
        cityHash64(${SEED}, 'category-of', article_index) % ${size.categories} AS category_index,
        if(on_article,
            ${weighted(unit('type'), [
              ["'page_view'", 75],
              ["'click'", 15],
              ["'scroll'", 7],
              ["'share'", 3],
            ])},
            ${weighted(unit('type'), [
              ["'page_view'", 70],
              ["'search'", 30],
            ])}) AS event_type,
        ${unit('signed-in')} < 0.35 AS signed_in,
        toUInt32(floor(${users} * pow(${unit('visitor')}, 2))) AS user_index,
        if(signed_in,
            user_index * 2 + (${unit('second-browser')} < 0.3),
            ${users * 2} + toUInt32(floor(${browsers} * pow(${unit('visitor')}, 3)))) AS browser_index
    FROM numbers(${offset}, ${count})
)`;
}

/** API routes: [template, method, share of the traffic, typical milliseconds]. */
const ROUTES: ReadonlyArray<readonly [endpoint: string, method: string, weight: number, typicalMs: number]> = [
  ['/api/articles/:id', 'GET', 30, 35],
  ['/api/articles', 'GET', 12, 60],
  ['/api/search', 'GET', 10, 120],
  ['/api/articles/:id/related', 'GET', 8, 80],
  ['/api/categories/:slug/articles', 'GET', 8, 70],
  ['/api/events', 'POST', 8, 15],
  ['/api/tags/:slug/articles', 'GET', 5, 70],
  ['/api/articles/:id/comments', 'GET', 5, 50],
  ['/api/authors/:id', 'GET', 4, 40],
  ['/api/comments', 'POST', 3, 90],
  ['/api/auth/login', 'POST', 2, 150],
  ['/api/auth/refresh', 'POST', 2, 30],
  ['/api/users/me', 'GET', 2, 25],
  ['/api/newsletter/subscribe', 'POST', 0.5, 200],
  ['/api/admin/articles', 'POST', 0.5, 250],
];

/**
 * API requests over the last MAX_REQUEST_DAYS days: routes by traffic share, durations
 * log-normal around each route's typical time with a 1.5% slow tail (5 to 25 times slower),
 * 1% server errors, some client errors, four instances.
 */
function performanceMetricsInsert(size: ScaleSize, end: string, offset: number, count: number): string {
  const days = Math.min(size.days, MAX_REQUEST_DAYS);
  const routeIndex = weighted(
    unit('route'),
    ROUTES.map((route, index) => [String(index + 1), route[2]] as const),
  );
  return `INSERT INTO allixios.performance_metrics (event_time, endpoint, method, status, duration_ms, error_message, instance)
SELECT
    ${timeBefore(end, 'day_offset', 'ms_of_day')} AS event_time,
    arrayElement([${ROUTES.map(([endpoint]) => literal(endpoint)).join(', ')}], route) AS endpoint,
    method,
    status,
    duration_ms,
    multiIf(status = 503, 'upstream timeout', status >= 500, 'internal error', '') AS error_message,
    concat('api-', toString(number % 4)) AS instance
FROM
(
    SELECT
        number,
        1 + toUInt32(floor(${unit('day')} * ${days})) AS day_offset,
        ${MS_OF_DAY} AS ms_of_day,
        ${routeIndex} AS route,
        arrayElement([${ROUTES.map(([, method]) => literal(method)).join(', ')}], route) AS method,
        arrayElement([${ROUTES.map(([, , , typical]) => typical).join(', ')}], route) AS typical_ms,
        -- Four uniforms summed and scaled: close to a standard normal.
        (${unit('z1')} + ${unit('z2')} + ${unit('z3')} + ${unit('z4')} - 2) * 1.7320508 AS z,
        toUInt32(greatest(1, round(typical_ms * exp(0.45 * z) * if(${unit('slow')} < 0.015, 5 + 20 * ${unit('slowness')}, 1)))) AS duration_ms,
        ${weighted(unit('status'), [
          ['500', 0.7],
          ['503', 0.3],
          ['404', 1.5],
          ['400', 0.5],
          ["if(method = 'POST', 201, 200)", 97],
        ])} AS status
    FROM numbers(${offset}, ${count})
)`;
}

const SOURCES = ['google', 'direct', 'newsletter', 'facebook', 'affiliate', 'twitter', 'partner'] as const;

/**
 * Revenue and conversions: sources and campaigns by share, subscriptions at three prices,
 * purchases and affiliate commissions in cents, ad revenue below a cent, refunds negative, three
 * currencies, one to three touchpoints before the conversion.
 */
function revenueEventsInsert(size: ScaleSize, end: string, offset: number, count: number): string {
  const prices = '[49900, 99900, 990000]';
  return `INSERT INTO allixios.revenue_events (event_time, event_id, user_id, article_id, source, campaign, conversion_type, amount, currency, attribution_model, touchpoints)
SELECT
    event_time,
    ${uuid('revenue', 'number')} AS event_id,
    if(${unit('signed-in')} < 0.8, ${uuid('user', `toUInt32(floor(${size.users} * pow(${unit('visitor')}, 2)))`)}, toUUID('${NIL_UUID}')) AS user_id,
    if(${unit('on-article')} < 0.6, ${uuid('article', zipf(unit('article'), size.articles))}, toUUID('${NIL_UUID}')) AS article_id,
    source,
    ${weighted(unit('campaign'), [
      ["''", 40],
      ["'spring'", 15],
      ["'launch'", 15],
      ["'retargeting'", 20],
      ["'black_friday'", 10],
    ])} AS campaign,
    conversion_type,
    toDecimal64(ten_thousandths, 4) / 10000 AS amount,
    ${weighted(unit('currency'), [
      ["'EUR'", 50],
      ["'USD'", 40],
      ["'GBP'", 10],
    ])} AS currency,
    ${weighted(unit('attribution'), [
      ["'last_click'", 70],
      ["'first_click'", 15],
      ["'linear'", 15],
    ])} AS attribution_model,
    arrayMap(
        step -> tuple(arrayElement([${SOURCES.map(literal).join(', ')}], 1 + cityHash64(number, ${SEED}, 'touchpoint', step) % ${SOURCES.length}), '', event_time - toIntervalHour(6 * step)),
        range(1, 2 + number % 3)
    ) AS touchpoints
FROM
(
    SELECT
        number,
        ${timeBefore(end, `1 + toUInt32(floor(${unit('day')} * ${size.days}))`, MS_OF_DAY)} AS event_time,
        ${weighted(
          unit('source'),
          SOURCES.map((source, index) => [literal(source), [30, 25, 15, 10, 10, 5, 5][index]!] as const),
        )} AS source,
        ${weighted(unit('conversion'), [
          ["'subscription'", 35],
          ["'purchase'", 30],
          ["'affiliate'", 15],
          ["'ad'", 15],
          ["'refund'", 5],
        ])} AS conversion_type,
        multiIf(
            conversion_type = 'subscription', arrayElement(${prices}, 1 + number % 3),
            conversion_type = 'purchase', toInt64(100 + cityHash64(number, ${SEED}, 'cents') % 19900) * 100,
            conversion_type = 'affiliate', toInt64(50 + cityHash64(number, ${SEED}, 'cents') % 2950) * 100,
            conversion_type = 'ad', toInt64(1 + cityHash64(number, ${SEED}, 'cents') % 5000),
            -arrayElement(${prices}, 1 + number % 3)
        ) AS ten_thousandths
    FROM numbers(${offset}, ${count})
)`;
}

interface GeneratedTable {
  table: 'user_events' | 'performance_metrics' | 'revenue_events';
  rows: (size: ScaleSize) => number;
  insert: (size: ScaleSize, end: string, offset: number, count: number) => string;
}

/** The issue's proportions: requests a tenth of the events, revenue events a hundredth. */
const GENERATED: readonly GeneratedTable[] = [
  { table: 'user_events', rows: (size) => size.events, insert: userEventsInsert },
  { table: 'performance_metrics', rows: (size) => Math.round(size.events / 10), insert: performanceMetricsInsert },
  { table: 'revenue_events', rows: (size) => Math.round(size.events / 100), insert: revenueEventsInsert },
];

// ---------------------------------------------------------------------------------------------
// Helpers

type Params = Record<string, string>;

async function scalar(client: ClickHouseClient, query: string): Promise<string> {
  const [row] = await (await client.query({ query, format: 'JSONEachRow' })).json<{ value: string | number }>();
  if (row === undefined) throw new Error(`ClickHouse bench: no row from ${query}`);
  return String(row.value);
}

/** `YYYY-MM-DD` of `date` plus `days` days (UTC). */
function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/** The same parameters ten years later, where no row is: every date moved, the rest kept. */
function withoutData(params: Params): Params {
  return Object.fromEntries(Object.entries(params).map(([name, value]) => [name, /^\d{4}-\d{2}-\d{2}$/.test(value) ? addDays(value, 3650) : value]));
}

function seconds(startedMs: number): number {
  return (performance.now() - startedMs) / 1000;
}

function formatNumber(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function formatMs(value: number): string {
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}

// ---------------------------------------------------------------------------------------------
// Load

async function load(client: ClickHouseClient, size: ScaleSize, end: string, log: (line: string) => void): Promise<LoadReport[]> {
  const reports: LoadReport[] = [];
  for (const generated of GENERATED) {
    const rows = generated.rows(size);
    const started = performance.now();
    for (let offset = 0; offset < rows; offset += CHUNK_ROWS) {
      const count = Math.min(CHUNK_ROWS, rows - offset);
      // Both cores squash and write blocks; the materialized views run on each written block. In
      // the statement rather than in clickhouse_settings, which chdb turns into session-wide SETs.
      await client.command({ query: `${generated.insert(size, end, offset, count)}\nSETTINGS max_insert_threads = 2` });
    }
    const took = seconds(started);
    reports.push({ engine: 'clickhouse', table: generated.table, rows, seconds: took, rowsPerSecond: rows / took });
    log(`clickhouse load ${generated.table}: ${formatNumber(rows)} rows in ${took.toFixed(1)} s (${formatNumber(rows / took)} rows/s, rollup maintained by its materialized view)`);
  }
  return reports;
}

/**
 * Checks that every generated row is in its raw table and counted in its rollup: a row lost to
 * a TTL or a materialized view that missed a block would make every comparison below wrong.
 */
async function verifyLoad(client: ClickHouseClient, size: ScaleSize): Promise<void> {
  const checks: Array<[what: string, query: string, expected: string]> = [
    ...GENERATED.map(({ table, rows }) => [`rows in allixios.${table}`, `SELECT count() AS value FROM allixios.${table}`, String(rows(size))] as [string, string, string]),
    [
      'page views counted by allixios.article_views_daily_agg',
      'SELECT sum(views) AS value FROM allixios.article_views_daily_agg',
      await scalar(client, `SELECT count() AS value FROM allixios.user_events WHERE event_type = 'page_view' AND article_id != toUUID('${NIL_UUID}')`),
    ],
    ['requests counted by allixios.endpoint_latency_hourly_agg', 'SELECT sum(requests) AS value FROM allixios.endpoint_latency_hourly_agg', String(GENERATED[1]!.rows(size))],
    ['conversions counted by allixios.revenue_daily_agg', 'SELECT sum(conversions) AS value FROM allixios.revenue_daily_agg', String(GENERATED[2]!.rows(size))],
  ];
  for (const [what, query, expected] of checks) {
    const actual = await scalar(client, query);
    if (actual !== expected) throw new Error(`ClickHouse bench: ${what} is ${actual}, expected ${expected} (${query})`);
  }
}

const TABLES = [
  'user_events',
  'performance_metrics',
  'revenue_events',
  'article_views_daily_agg',
  'category_visitors_daily_agg',
  'endpoint_latency_hourly_agg',
  'revenue_daily_agg',
] as const;

/**
 * Merges every table to one part per partition (OPTIMIZE ... FINAL), the state background merges
 * converge to on data that no longer changes: the rollups hold one row per key, so the
 * measurement does not depend on how far the merges of the load happened to get, and it is the
 * same for the dashboards and the baselines. Fresh data (today's) lives in more parts in
 * production; the rollups' merge-on-read (sum, uniqMerge) keeps answers right either way.
 */
async function settle(client: ClickHouseClient, log: (line: string) => void): Promise<number> {
  const started = performance.now();
  for (const table of TABLES) await client.command({ query: `OPTIMIZE TABLE allixios.${table} FINAL` });
  const took = seconds(started);
  const parts = await (
    await client.query({
      query: "SELECT table, toUInt32(count()) AS parts, toUInt64(sum(rows)) AS rows FROM system.parts WHERE database = 'allixios' AND active GROUP BY table ORDER BY table",
      format: 'JSONEachRow',
    })
  ).json<{ table: string; parts: number; rows: string }>();
  log(
    `clickhouse settle: OPTIMIZE FINAL of every table in ${took.toFixed(1)} s; ${parts.map((part) => `${part.table} ${formatNumber(Number(part.rows))} rows in ${part.parts} parts`).join(', ')}`,
  );
  return took;
}

// ---------------------------------------------------------------------------------------------
// Plans

/** What the plan of a query is checked against. */
export interface ExpectedPlan {
  /** The table the query must read (a rollup, or a raw table where no rollup serves it). */
  reads: string;
  /** Tables it must not read. */
  avoids: readonly string[];
  /**
   * A projection of `reads` that the plan must read instead of its parts in their own order.
   * A projection's plan shows its own primary key only, so the partition check is not made.
   */
  projection?: string;
  /** The partition key expression that must carry the query's date condition. */
  partitionKey: string;
  /** Key columns the primary key condition must use. */
  keyColumns: readonly string[];
}

/** The tables a plan reads, from its ReadFromMergeTree steps. */
function tablesRead(plan: string): string[] {
  return [...new Set([...plan.matchAll(/ReadFromMergeTree \((\S+)\)/g)].map((match) => match[1]!))].sort();
}

/** The conditions an index of an `EXPLAIN indexes = 1` plan reports (`Partition`, `PrimaryKey`), one per table read. */
function indexConditions(plan: string, index: 'Partition' | 'PrimaryKey'): string[] {
  return [...plan.matchAll(new RegExp(`\\b${index}\\n\\s+Keys:[\\s\\S]*?Condition: ([^\\n]+)`, 'g'))].map((match) => match[1]!.trim());
}

/**
 * Checks an `EXPLAIN indexes = 1` plan against what it must show: the table read and no other,
 * the partition key and the primary key used by the query's conditions, and (from the rows the
 * query actually read) that the indexes pruned: fewer rows read than the table holds.
 */
export function checkPlan(plan: string, expected: ExpectedPlan, rowsRead: number, tableRows: number): QueryReport['planChecks'] {
  const read = tablesRead(plan);
  const partition = indexConditions(plan, 'Partition');
  const primary = indexConditions(plan, 'PrimaryKey');
  const source = expected.projection ?? expected.reads;
  const checks: QueryReport['planChecks'] = [
    { expectation: expected.projection ? `reads ${expected.reads} through its projection ${expected.projection}` : `reads ${expected.reads}`, ok: read.includes(source) },
    { expectation: `reads no other table (read: ${read.join(', ') || 'nothing'})`, ok: read.length === 1 },
  ];
  if (expected.avoids.length > 0) {
    checks.push({ expectation: `reads no raw table (${expected.avoids.join(', ')})`, ok: !read.some((table) => expected.avoids.includes(table)) });
  }
  if (!expected.projection) {
    checks.push({
      expectation: `the partition key ${expected.partitionKey} prunes by the date condition (${partition.join('; ') || 'no partition index in the plan'})`,
      ok: partition.length > 0 && partition.every((condition) => condition !== 'true' && condition.includes(expected.partitionKey)),
    });
  }
  for (const column of expected.keyColumns) {
    checks.push({
      expectation: `the primary key condition uses ${column} (${primary.join('; ') || 'no primary key index in the plan'})`,
      ok: primary.length > 0 && primary.every((condition) => new RegExp(`\\(${column} (not )?in\\b`).test(condition)),
    });
  }
  checks.push({
    expectation: `reads fewer rows than ${expected.reads} holds (read ${formatNumber(rowsRead)} of ${formatNumber(tableRows)})`,
    ok: Number.isFinite(rowsRead) && Number.isFinite(tableRows) && rowsRead < tableRows,
  });
  return checks;
}

async function explain(client: ClickHouseClient, sql: string, params: Params): Promise<string> {
  return (await client.query({ query: `EXPLAIN indexes = 1\n${sql}`, query_params: params, format: 'TabSeparatedRaw' })).text();
}

// ---------------------------------------------------------------------------------------------
// Queries

interface BenchQuery {
  name: string;
  /** As a dashboard issues it: through a dashboard view, with query parameters. */
  sql: string;
  /** The same question from the raw table. Omitted when the dashboard query already is that. */
  baselineSql?: string;
  /** The parameters of run i: a different article, day or window per run. */
  parameters: (i: number) => Params;
  plan: ExpectedPlan;
  baselinePlan: ExpectedPlan;
  /** Columns on which the dashboard and the baseline must give the same rows, in the same order. */
  sameColumns: readonly string[];
  /** Why a missed target is missed, and what would fix it, from what was measured. */
  explain: (facts: Facts) => string;
}

interface Facts {
  timing: Timing;
  baseline: Timing;
  fixedCost: Timing;
  speedup: number;
  rowsRead: number;
  baselineRowsRead: number;
  /** Raw rows per rollup row in the rollup the query reads. */
  compression: number;
  p95Met: boolean;
  speedupMet: boolean;
}

const RAW = ['allixios.user_events', 'allixios.performance_metrics', 'allixios.revenue_events'] as const;
const VISITOR = `if(user_id = toUUID('${NIL_UUID}'), anonymous_id, user_id)`;

/** The raw rows each rollup row stands for, per rollup: what bounds how much less a rollup can read. */
const ROLLUP_SOURCE_ROWS: Readonly<Record<string, string>> = {
  'allixios.article_views_daily_agg': 'sum(views)',
  'allixios.endpoint_latency_hourly_agg': 'sum(requests)',
  'allixios.revenue_daily_agg': 'sum(conversions)',
};

function measured(facts: Facts): string {
  const missed: string[] = [];
  if (!facts.p95Met) missed.push(`p95 ${formatMs(facts.timing.p95)} ms is above the ${CLICKHOUSE_TARGETS.p95Ms} ms target`);
  if (!facts.speedupMet) missed.push(`the speed-up is ${facts.speedup.toFixed(1)}x, not ${CLICKHOUSE_TARGETS.speedup}x`);
  const bound = facts.baseline.p50 / facts.fixedCost.p50;
  return (
    `${missed.join(' and ')}. The dashboard query read ${formatNumber(facts.rowsRead)} rollup rows, the baseline ${formatNumber(facts.baselineRowsRead)} ` +
    `raw rows (p50 ${formatMs(facts.timing.p50)} ms against ${formatMs(facts.baseline.p50)} ms). The same dashboard query over a period ` +
    `without data takes ${formatMs(facts.fixedCost.p50)} ms (p50), the engine's fixed cost for its shape (parsing, analysing the view, ` +
    `building the pipeline): against this baseline, no rollup read through the view could show more than ${bound.toFixed(1)}x.`
  );
}

function queries(size: ScaleSize, end: string, articles: readonly string[]): BenchQuery[] {
  const requestDays = Math.min(size.days, MAX_REQUEST_DAYS);
  /** A window of `length` days ending before `end`, moved back one day per run, inside the data. */
  const window = (i: number, length: number, days = size.days) => {
    const last = addDays(end, -1 - (i % (days - length + 1)));
    return { first: addDays(last, -(length - 1)), last };
  };
  const rollupPlan = (reads: string, partitionKey: string, keyColumns: readonly string[]): ExpectedPlan => ({ reads, avoids: RAW, partitionKey, keyColumns });
  const rawPlan = (reads: string, partitionKey: string, keyColumns: readonly string[]): ExpectedPlan => ({ reads, avoids: [], partitionKey, keyColumns });

  return [
    {
      name: 'views per day for one article over 30 days',
      sql: `SELECT event_date, views, unique_visitors
FROM allixios.article_views_daily
WHERE article_id = {article:UUID} AND event_date BETWEEN {first:Date} AND {last:Date}
ORDER BY event_date`,
      baselineSql: `SELECT event_date, count() AS views, uniq(${VISITOR}) AS unique_visitors
FROM allixios.user_events
WHERE event_type = 'page_view' AND article_id = {article:UUID} AND event_date BETWEEN {first:Date} AND {last:Date}
GROUP BY event_date
ORDER BY event_date`,
      parameters: (i) => ({ article: articles[i % articles.length]!, ...window(i, 30) }),
      plan: { ...rollupPlan('allixios.article_views_daily_agg', 'toYYYYMM(event_date)', ['article_id', 'event_date']), projection: 'by_article' },
      baselinePlan: rawPlan('allixios.user_events', 'toYYYYMM(event_date)', ['event_type', 'article_id']),
      sameColumns: ['event_date', 'views'],
      explain: (facts) =>
        `${measured(facts)} The rollup side reads the projection by_article (V0009), the rollup ordered by (article_id, event_date): ` +
        `one article's 30 days are a granule or two, where the rollup's own order (event_date, article_id), kept for leaderboards, ` +
        `cost a granule per day of the period. The baseline is no scan either: the raw table is sorted by (event_type, article_id, ` +
        `event_time), so its key leads straight to the article's page views too, and both sides are key lookups whose time is mostly the ` +
        `engine's fixed cost: ${CLICKHOUSE_TARGETS.speedup}x cannot be had for this question, whatever the schema.`,
    },
    {
      name: 'top 10 articles by views in the last 7 days',
      sql: `SELECT article_id, views
FROM allixios.article_views_period(first_day = {first:Date}, last_day = {last:Date})
ORDER BY views DESC, article_id
LIMIT 10`,
      baselineSql: `SELECT article_id, count() AS views
FROM allixios.user_events
WHERE event_type = 'page_view' AND article_id != toUUID('${NIL_UUID}') AND event_date BETWEEN {first:Date} AND {last:Date}
GROUP BY article_id
ORDER BY views DESC, article_id
LIMIT 10`,
      parameters: (i) => window(i, 7),
      plan: rollupPlan('allixios.article_views_daily_agg', 'toYYYYMM(event_date)', ['event_date']),
      baselinePlan: rawPlan('allixios.user_events', 'toYYYYMM(event_date)', ['event_type']),
      sameColumns: ['article_id', 'views'],
      explain: (facts) =>
        `${measured(facts)} Each rollup row stands for ${facts.compression.toFixed(1)} page views on average: most articles are viewed ` +
        `once or twice a day, so a week of the rollup (a row per article viewed per day) is only that much smaller than the week's ` +
        `page views, and it is grouped again by article. The baseline reads the page views of the months the week touches (the ` +
        `partition prunes months, the key skips the other event types). ${CLICKHOUSE_TARGETS.speedup}x would need each rollup row to ` +
        `stand for ${CLICKHOUSE_TARGETS.speedup} page views: the bound is the data, not the schema. A rolling 7-day window cannot be answered ` +
        `exactly from fewer rows than (day, article) pairs; calendar weeks could be, from a (week, article) rollup, up to 7 times fewer rows.`,
    },
    {
      name: 'p95 response time per endpoint per hour for a day',
      sql: `SELECT hour, endpoint, method, requests, p95_ms
FROM allixios.endpoint_latency_hourly
WHERE hour >= toDateTime({day:Date}, 'UTC') AND hour < toDateTime({day:Date} + 1, 'UTC')
ORDER BY endpoint, method, hour`,
      baselineSql: `SELECT toDateTime(toStartOfHour(event_time), 'UTC') AS hour, endpoint, method, count() AS requests, quantileTDigest(0.95)(duration_ms) AS p95_ms
FROM allixios.performance_metrics
WHERE event_date = {day:Date} AND event_time >= toDateTime64({day:Date}, 3, 'UTC') AND event_time < toDateTime64({day:Date} + 1, 3, 'UTC')
GROUP BY hour, endpoint, method
ORDER BY endpoint, method, hour`,
      parameters: (i) => ({ day: window(i, 1, requestDays).last }),
      plan: rollupPlan('allixios.endpoint_latency_hourly_agg', 'toYYYYMM(hour)', ['hour']),
      baselinePlan: rawPlan('allixios.performance_metrics', 'toYYYYMM(event_date)', ['event_time']),
      sameColumns: ['hour', 'endpoint', 'method', 'requests'],
      explain: (facts) =>
        `${measured(facts)} Each rollup row stands for ${facts.compression.toFixed(1)} requests (one row per endpoint, method and hour). ` +
        `The baseline is no scan either: the raw requests are sorted by (endpoint, method, event_time), so the day's condition on ` +
        `event_time prunes inside each endpoint's range and the baseline reads about one day of requests. The ratio grows with the ` +
        `request rate, while a day of the rollup stays 24 rows per endpoint; at this scale's rate (requests a tenth of the events) a day ` +
        `of raw requests is small, and the rollup needs no change.`,
    },
    {
      name: 'revenue per source per day for a month',
      sql: `SELECT event_date, source, currency, revenue, conversions
FROM allixios.revenue_daily
WHERE event_date BETWEEN {first:Date} AND {last:Date}
ORDER BY event_date, source, currency`,
      baselineSql: `SELECT event_date, source, currency, sum(amount) AS revenue, count() AS conversions
FROM allixios.revenue_events
WHERE event_date BETWEEN {first:Date} AND {last:Date}
GROUP BY event_date, source, currency
ORDER BY event_date, source, currency`,
      parameters: (i) => window(i, 30),
      plan: rollupPlan('allixios.revenue_daily_agg', 'toYYYYMM(event_date)', ['event_date']),
      baselinePlan: rawPlan('allixios.revenue_events', 'toYYYYMM(event_date)', []),
      sameColumns: ['event_date', 'source', 'currency', 'revenue', 'conversions'],
      explain: (facts) =>
        `${measured(facts)} Each rollup row stands for ${facts.compression.toFixed(1)} conversions: the rollup's key (day, source, campaign, ` +
        `conversion type, currency) has about as many combinations per day as there are conversions per day at this scale (revenue ` +
        `events are a hundredth of the events), so a month of the rollup is barely smaller than the raw month. The ratio grows with ` +
        `the conversions per day, while the rollup stays bounded by its key; a rollup keyed by the dashboard's own grouping (day, ` +
        `source, currency) would read fewer rows now, at the price of a second materialized view.`,
    },
    {
      name: 'unique visitors per category for a week',
      sql: `SELECT category_id, unique_visitors
FROM allixios.category_visitors_period(first_day = {first:Date}, last_day = {last:Date})
ORDER BY unique_visitors DESC, category_id`,
      baselineSql: `SELECT category_id, uniqCombined(${VISITOR}) AS unique_visitors
FROM allixios.user_events
WHERE event_type = 'page_view' AND category_id != toUUID('${NIL_UUID}') AND event_date BETWEEN {first:Date} AND {last:Date}
GROUP BY category_id
ORDER BY unique_visitors DESC, category_id`,
      parameters: (i) => window(i, 7),
      plan: rollupPlan('allixios.category_visitors_daily_agg', 'toYYYYMM(event_date)', ['event_date']),
      baselinePlan: rawPlan('allixios.user_events', 'toYYYYMM(event_date)', ['event_type']),
      sameColumns: ['category_id', 'unique_visitors'],
      explain: (facts) =>
        `${measured(facts)} The rollup (V0008, a visitor set per category per day) holds a row per category viewed per day, far fewer ` +
        `than the week's page views, but each row is a set of visitor hashes: merging a week of them per category costs in proportion ` +
        `to the distinct visitors, which is what the question asks for, so the ratio is bounded by how often a visitor comes back to ` +
        `a category within a day. The rollup stores uniqCombined states, the cheapest to merge of ClickHouse's estimators at full ` +
        `precision (measured on chdb for a week of 7,000,000 synthetic events: uniqCombined 35 ms p50, uniq 41, uniqHLL12 54); ` +
        `uniqCombined(12), a coarser sketch, merged in 26 ms at about 3% error, a precision trade for the product to make, not the schema.`,
    },
  ];
}

/**
 * Articles to ask about, as dashboard users pick them: the article of a random page view of the
 * last 30 days, so popular articles come up more often. The order uses ids only, which do not
 * depend on the end date, so every run day picks the same articles.
 */
async function sampleArticles(client: ClickHouseClient, end: string): Promise<string[]> {
  const rows = await (
    await client.query({
      query: `SELECT toString(article_id) AS id FROM allixios.user_events
              WHERE event_type = 'page_view' AND article_id != toUUID('${NIL_UUID}') AND event_date >= toDate('${addDays(end, -30)}')
              ORDER BY cityHash64(anonymous_id, session_id, article_id, ${SEED}) LIMIT 256`,
      format: 'JSONEachRow',
    })
  ).json<{ id: string }>();
  if (rows.length === 0) throw new Error('ClickHouse bench: no page view of an article in the last 30 days was generated');
  return rows.map((row) => row.id);
}

interface Answer {
  data: Array<Record<string, unknown>>;
  rowsRead: number;
}

/** Runs a query as a dashboard does (JSON), with what it read from the response's statistics. */
async function ask(client: ClickHouseClient, query: string, params: Params): Promise<Answer> {
  const body = await (await client.query({ query, query_params: params, format: 'JSON' })).json<Record<string, unknown>>();
  return { data: body.data, rowsRead: Number(body.statistics?.rows_read ?? Number.NaN) };
}

function project(data: Answer['data'], columns: readonly string[]): string {
  return JSON.stringify(data.map((row) => columns.map((column) => row[column])));
}

interface QueryContext {
  client: ClickHouseClient;
  runs: number;
  warmup: number;
  /** Rows of every table, by qualified name. */
  tableRows: ReadonlyMap<string, number>;
  /** Raw rows per rollup row, by rollup. */
  compression: ReadonlyMap<string, number>;
  log: (line: string) => void;
}

async function runQuery(query: BenchQuery, context: QueryContext): Promise<ClickHouseQueryReport> {
  const { client, runs, warmup, log } = context;
  const issue = (sql: string) => (params: Params) => ask(client, sql, params);

  const timing = await measure(runs, warmup, query.parameters, issue(query.sql));
  const fixedCost = await measure(Math.min(runs, FIXED_COST_RUNS), Math.min(warmup, 5), (i) => withoutData(query.parameters(i)), issue(query.sql));
  let baseline = timing;
  if (query.baselineSql !== undefined) {
    // A slow baseline gets fewer runs, at least MIN_BASELINE_RUNS: 200 runs of a scan would
    // dominate the benchmark. Its timing says how many it had.
    const probe = await measure(3, 1, query.parameters, issue(query.baselineSql));
    const affordable = Math.floor(BASELINE_BUDGET_MS / Math.max(probe.mean, 1e-3));
    baseline = await measure(Math.min(runs, Math.max(MIN_BASELINE_RUNS, affordable)), warmup, query.parameters, issue(query.baselineSql));
  }
  const baselineSql = query.baselineSql ?? query.sql;

  const first = query.parameters(0);
  const plan = await explain(client, query.sql, first);
  const baselinePlan = await explain(client, baselineSql, first);
  const answer = await ask(client, query.sql, first);
  const baselineAnswer = await ask(client, baselineSql, first);
  const rows = (table: string) => context.tableRows.get(table) ?? Number.NaN;
  const planChecks: QueryReport['planChecks'] = [
    ...checkPlan(plan, query.plan, answer.rowsRead, rows(query.plan.reads)),
    ...checkPlan(baselinePlan, query.baselinePlan, baselineAnswer.rowsRead, rows(query.baselinePlan.reads)).map((check) => ({
      ...check,
      expectation: `baseline ${check.expectation}`,
    })),
    {
      expectation: `the dashboard and the baseline give the same ${query.sameColumns.join(', ')} (${answer.data.length} and ${baselineAnswer.data.length} rows)`,
      ok: answer.data.length > 0 && project(answer.data, query.sameColumns) === project(baselineAnswer.data, query.sameColumns),
    },
  ];

  const speedup = baseline.p50 / timing.p50;
  const facts: Facts = {
    timing,
    baseline,
    fixedCost,
    speedup,
    rowsRead: answer.rowsRead,
    baselineRowsRead: baselineAnswer.rowsRead,
    compression: context.compression.get(query.plan.reads) ?? Number.NaN,
    p95Met: timing.p95 <= CLICKHOUSE_TARGETS.p95Ms,
    speedupMet: speedup >= CLICKHOUSE_TARGETS.speedup,
  };
  const note = query.baselineSql === undefined || !facts.p95Met || !facts.speedupMet ? query.explain(facts) : undefined;
  log(
    `clickhouse ${query.name}: p50 ${formatMs(timing.p50)} / p95 ${formatMs(timing.p95)} / p99 ${formatMs(timing.p99)} ms (${timing.runs} runs); ` +
      `baseline p50 ${formatMs(baseline.p50)} / p95 ${formatMs(baseline.p95)} / p99 ${formatMs(baseline.p99)} ms (${baseline.runs} runs); ${speedup.toFixed(1)}x; ` +
      `fixed cost p50 ${formatMs(fixedCost.p50)} ms; rows read ${formatNumber(answer.rowsRead)} vs ${formatNumber(baselineAnswer.rowsRead)}; ` +
      `plan ${planChecks.every((check) => check.ok) ? 'as expected' : 'NOT as expected'}`,
  );
  return {
    engine: 'clickhouse',
    name: query.name,
    sql: query.sql,
    timing,
    baseline,
    speedup,
    plan,
    planChecks,
    target: { ...CLICKHOUSE_TARGETS },
    ...(note === undefined ? {} : { note }),
    rowsRead: answer.rowsRead,
    fixedCost,
    baselineSql,
    baselinePlan,
    baselineRowsRead: baselineAnswer.rowsRead,
  };
}

// ---------------------------------------------------------------------------------------------

/**
 * Loads the scale's data into ClickHouse (a fresh chdb unless a client is given), then times the
 * dashboard queries and their raw baselines and checks their plans. Progress goes to `log`.
 */
export async function runClickHouseBench(options: ClickHouseBenchOptions): Promise<ClickHouseBenchReport> {
  const { scale, runs = 200, warmup = 20, log = () => {} } = options;
  const size = SIZES[scale];
  const engine = options.client === undefined ? startChdb('bench') : undefined;
  const client = options.client ?? engine!.client;
  try {
    // Before anything is applied: a client on a server that holds real events is refused untouched.
    const existing = await scalar(
      client,
      `SELECT toUInt64(ifNull(sum(total_rows), 0)) AS value FROM system.tables WHERE database = 'allixios' AND name IN (${GENERATED.map(({ table }) => `'${table}'`).join(', ')})`,
    );
    if (existing !== '0') {
      throw new Error(`ClickHouse bench: allixios already holds ${existing} raw rows; the bench loads and measures its own data, so it needs an empty database`);
    }
    await applyAssets('clickhouse', { env: {}, clients: { clickhouse: client } });
    const version = await scalar(client, 'SELECT version() AS value');
    const end = new Date().toISOString().slice(0, 10);
    log(`clickhouse ${version}, scale ${scale}: ${formatNumber(size.events)} events over the ${size.days} days before ${end}, seed ${SEED}`);

    const loads = await load(client, size, end, log);
    const settleSeconds = await settle(client, log);
    // After the merges, which apply the TTLs: nothing generated may have expired.
    await verifyLoad(client, size);

    const tableRows = new Map<string, number>();
    for (const table of TABLES) tableRows.set(`allixios.${table}`, Number(await scalar(client, `SELECT count() AS value FROM allixios.${table}`)));
    const compression = new Map<string, number>();
    for (const [rollup, sourceRows] of Object.entries(ROLLUP_SOURCE_ROWS)) {
      compression.set(rollup, Number(await scalar(client, `SELECT ${sourceRows} / count() AS value FROM ${rollup}`)));
    }
    const articles = await sampleArticles(client, end);

    const context: QueryContext = { client, runs, warmup, tableRows, compression, log };
    const reports: ClickHouseQueryReport[] = [];
    for (const query of queries(size, end, articles)) reports.push(await runQuery(query, context));
    return { version, scale, endDate: end, loads, settleSeconds, queries: reports };
  } finally {
    await engine?.close();
  }
}
