/**
 * What the ClickHouse backup drill (`bench/drills/clickhouse-backup.ts`) and its test
 * (`test/engines/clickhouse-backup.test.ts`) share: chdb started with a server configuration file
 * (the members' `config.d/backup.xml`), and events written into the project's raw tables as the
 * platform writes them, which the materialized views roll up.
 */
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { Session } from 'chdb';
import { createChdbConnection } from 'chdb/connection';

/** chdb's connection is typed against another copy of @clickhouse/client-common (bootstrap/embedded/clickhouse.ts). */
type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];

/**
 * A client of chdb on `dataDirectory`, started with `configFile`. libchdb binds one engine per
 * process: the session with the configuration starts it, the client shares it.
 */
export function startChdbWithConfig(dataDirectory: string, configFile: string): ClickHouseClient {
  new Session(dataDirectory, { connectionArgs: [`--config-file=${configFile}`] });
  return createClient({ connection: createChdbConnection({ path: dataDirectory }) as unknown as ClientConnection });
}

/**
 * `count` user events over the last two days, a quarter as many API requests and a twentieth as
 * many revenue events; `offset` keeps batches apart.
 */
export async function writeEvents(client: ClickHouseClient, count: number, offset: number): Promise<void> {
  await client.command({
    query: `INSERT INTO allixios.user_events (event_time, event_type, anonymous_id, session_id, article_id, category_id, device, country)
      SELECT now64(3) - toIntervalSecond((number + ${offset}) % 172800), ['page_view', 'click', 'share'][(number % 3) + 1],
             generateUUIDv4(number), generateUUIDv4(number + 1),
             toUUID(concat('00000000-0000-0000-0000-', leftPad(toString(number % 40), 12, '0'))),
             toUUID(concat('00000000-0000-0000-0001-', leftPad(toString(number % 8), 12, '0'))),
             ['desktop', 'mobile'][(number % 2) + 1], 'DE'
      FROM numbers(${count})`,
  });
  await client.command({
    query: `INSERT INTO allixios.performance_metrics (event_time, endpoint, method, status, duration_ms)
      SELECT now64(3) - toIntervalSecond((number + ${offset}) % 86400), ['/articles', '/search', '/auth/login'][(number % 3) + 1], 'GET',
             [200, 200, 404, 500][(number % 4) + 1], 5 + number % 300
      FROM numbers(${Math.ceil(count / 4)})`,
  });
  await client.command({
    query: `INSERT INTO allixios.revenue_events (event_time, event_id, source, conversion_type, amount, currency)
      SELECT now64(3) - toIntervalSecond((number + ${offset}) % 86400), generateUUIDv4(number), ['ads', 'subscriptions'][(number % 2) + 1], 'purchase',
             toDecimal64(1 + number % 50, 4), 'EUR'
      FROM numbers(${Math.ceil(count / 20)})`,
  });
}

/** Rows per table of the MergeTree family in `database`. */
export async function tableCounts(client: ClickHouseClient, database: string): Promise<Record<string, number>> {
  const tables = await (
    await client.query({
      query: "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree' ORDER BY name",
      format: 'JSONEachRow',
      query_params: { db: database },
    })
  ).json<{ name: string }>();
  const result: Record<string, number> = {};
  for (const { name } of tables) {
    const [row] = await (await client.query({ query: `SELECT count() AS c FROM ${database}.${name}`, format: 'JSONEachRow' })).json<{ c: string }>();
    result[name] = Number(row!.c);
  }
  return result;
}
