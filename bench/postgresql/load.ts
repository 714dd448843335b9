/**
 * Loading the PostgreSQL benchmark's data set: every table's rows generated from the world and
 * sent in unnest() batches over two connections (ParallelInserter), the large tables' secondary
 * indexes dropped before their load and built again after it, and the server settings the load
 * and the measurements run with (ALTER SYSTEM).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { postgresql } from '../../databases/postgresql/index.ts';
import { random, SEED } from '../scale.ts';
import type { LoadReport } from '../stats.ts';
import {
  between,
  capitalise,
  DAY_MS,
  END_MS,
  FIRST_NAMES,
  GENERAL_WORDS,
  isoDay,
  LAST_NAMES,
  nextArticleMeta,
  pick,
  pickGeneralWord,
  REPORT_DAYS,
  slugify,
  STATS_DAYS,
  TOPICS,
  Writer,
  type World,
} from './data.ts';

//--------------------------------------------------------------------------------------------
// Loading
//--------------------------------------------------------------------------------------------

/**
 * Sends INSERT ... SELECT FROM unnest($1::type[], ...) batches over several connections, so
 * the server builds rows (generated columns, index entries) while the next batch is generated.
 * One array parameter per column: one round trip and one statement per batch, close to COPY
 * for this purpose without a dependency.
 */
class ParallelInserter {
  private readonly idle: pg.Client[];
  private readonly waiting: Array<(client: pg.Client) => void> = [];
  private readonly running = new Set<Promise<void>>();
  private failure: Error | undefined;

  constructor(clients: pg.Client[]) {
    this.idle = [...clients];
  }

  private acquire(): Promise<pg.Client> {
    const client = this.idle.pop();
    return client ? Promise.resolve(client) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(client: pg.Client): void {
    const next = this.waiting.shift();
    if (next) next(client);
    else this.idle.push(client);
  }

  /** Resolves once the batch is on its way (a connection was free), not when it is stored. */
  async submit(table: string, sql: string, values: unknown[]): Promise<void> {
    if (this.failure) throw this.failure;
    const client = await this.acquire();
    const task: Promise<void> = client
      .query(sql, values)
      .then(
        () => undefined,
        (error: Error) => {
          this.failure ??= new Error(`loading ${table} failed: ${error.message}`, { cause: error });
        },
      )
      .finally(() => {
        this.running.delete(task);
        this.release(client);
      });
    this.running.add(task);
  }

  /** Waits for every batch and throws the first failure. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.failure) throw this.failure;
  }
}

/** Collects rows column by column and sends them as one unnest() insert per batch. */
class TableWriter {
  private columns: unknown[][];
  private count = 0;
  rows = 0;
  private readonly sql: string;

  constructor(
    private readonly inserter: ParallelInserter,
    private readonly table: string,
    columns: ReadonlyArray<readonly [name: string, type: string]>,
    private readonly batchRows: number,
  ) {
    this.columns = columns.map(() => []);
    const names = columns.map(([name]) => name).join(', ');
    const arrays = columns.map(([, type], k) => `$${k + 1}::${type}[]`).join(', ');
    this.sql = `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${arrays})`;
  }

  /** Adds a row; sends the batch when it is full. */
  async add(values: readonly unknown[]): Promise<void> {
    for (let k = 0; k < values.length; k++) this.columns[k]!.push(values[k]);
    this.count += 1;
    if (this.count >= this.batchRows) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.count === 0) return;
    const batch = this.columns;
    this.rows += this.count;
    this.columns = batch.map(() => []);
    this.count = 0;
    await this.inserter.submit(this.table, this.sql, batch);
  }
}

/** What the load leaves behind for the queries: parameters drawn from the generated rows. */
export interface LoadedSamples {
  /** Slugs of published articles (reservoir sample). */
  slugs: string[];
  /** Authors (user ids) with at least one draft. */
  draftAuthors: string[];
  /** Authors (user ids) with statistics in the report's window. */
  statsAuthors: string[];
  /** Tags carried by at least one article. */
  usedTags: string[];
}

const SLUG_SAMPLE = 2_000;
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** One table's load: generates and sends its rows, returns how many (the caller waits for them to be stored). */
type TableLoad = (inserter: ParallelInserter, world: World, samples: LoadedSamples, log: (line: string) => void) => Promise<number>;

async function loadUsers(inserter: ParallelInserter, world: World): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'users',
    [
      ['id', 'uuid'],
      ['email', 'text'],
      ['display_name', 'text'],
      ['role', 'text'],
      ['status', 'text'],
      ['created_at', 'timestamptz'],
      ['updated_at', 'timestamptz'],
    ],
    5_000,
  );
  const rand = random(SEED + 11);
  const firstAuthor = world.authors[0]!;
  const lastAuthor = world.authors.at(-1)!;
  for (const [index, id] of world.userIds.entries()) {
    const role = index === 0 ? 'admin' : index < firstAuthor ? 'editor' : index <= lastAuthor ? 'author' : 'reader';
    const first = pick(rand, FIRST_NAMES);
    const last = pick(rand, LAST_NAMES);
    const created = iso(END_MS - Math.floor(rand() * 5 * 365 * DAY_MS));
    await writer.add([id, `${first}.${last}.${index}@example.com`.toLowerCase(), `${first} ${last}`, role, rand() < 0.01 ? 'suspended' : 'active', created, created]);
  }
  await writer.flush();
  return writer.rows;
}

/** Bylines of the staff and the authors (the listings join them). */
async function loadAuthorProfiles(inserter: ParallelInserter, world: World): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'author_profiles',
    [
      ['user_id', 'uuid'],
      ['display_name', 'text'],
      ['bio', 'text'],
      ['website_url', 'text'],
    ],
    5_000,
  );
  const rand = random(SEED + 12);
  for (let index = 1; index <= world.authors.at(-1)!; index++) {
    const topic = pick(rand, TOPICS);
    const bio = `Writes about ${topic.label} and ${pick(rand, TOPICS).label}; ${pick(rand, GENERAL_WORDS)} ${pick(rand, GENERAL_WORDS)} since ${2000 + between(rand, 0, 25)}.`;
    await writer.add([world.userIds[index], `${pick(rand, FIRST_NAMES)} ${pick(rand, LAST_NAMES)}`, bio, rand() < 0.3 ? `https://${topic.label}.example.com/${index}` : null]);
  }
  await writer.flush();
  return writer.rows;
}

async function loadCategories(inserter: ParallelInserter, world: World): Promise<number> {
  let rows = 0;
  // Parents first: the tree guard and the foreign key look them up.
  for (const topLevel of [true, false]) {
    const writer = new TableWriter(
      inserter,
      'categories',
      [
        ['id', 'uuid'],
        ['parent_id', 'uuid'],
        ['slug', 'text'],
        ['name', 'text'],
        ['description', 'text'],
        ['position', 'integer'],
      ],
      5_000,
    );
    for (const [index, category] of world.categories.entries()) {
      if ((category.parent === null) !== topLevel) continue;
      const parent = category.parent === null ? null : world.categories[category.parent]!.id;
      await writer.add([category.id, parent, category.slug, category.name, `Articles about ${TOPICS[category.topic]!.label}.`, index]);
    }
    await writer.flush();
    await inserter.drain();
    rows += writer.rows;
  }
  return rows;
}

async function loadTags(inserter: ParallelInserter, world: World): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'tags',
    [
      ['id', 'uuid'],
      ['slug', 'text'],
      ['name', 'text'],
    ],
    5_000,
  );
  const rand = random(SEED + 13);
  for (const [index, id] of world.tagIds.entries()) {
    const name = `${capitalise(pick(rand, pick(rand, TOPICS).words))} ${capitalise(pickGeneralWord(rand))}`;
    await writer.add([id, `${slugify(name)}-${index + 1}`, name]);
  }
  await writer.flush();
  return writer.rows;
}

/**
 * Articles: metadata from one generator, text from another, so that the tag links and the
 * statistics can replay the metadata without writing the text again. Slugs follow the slug
 * trigger's rule (slugify(title), then -2, -3, ... while taken) and are given explicitly.
 */
async function loadArticles(inserter: ParallelInserter, world: World, samples: LoadedSamples, log: (line: string) => void): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'articles',
    [
      ['id', 'uuid'],
      ['slug', 'text'],
      ['title', 'text'],
      ['excerpt', 'text'],
      ['body', 'text'],
      ['status', 'text'],
      ['author_id', 'uuid'],
      ['category_id', 'uuid'],
      ['published_at', 'timestamptz'],
      ['created_at', 'timestamptz'],
      ['updated_at', 'timestamptz'],
    ],
    1_000,
  );
  const metaRand = random(SEED + 1);
  const text = new Writer(random(SEED + 2), world);
  const sampleRand = random(SEED + 3);
  const slugs = new Set<string>();
  const drafts = new Set<number>();
  let published = 0;
  for (let index = 0; index < world.size.articles; index++) {
    const meta = nextArticleMeta(metaRand, world);
    const title = text.title(meta);
    const base = slugify(title) || 'untitled';
    let slug = base;
    for (let suffix = 2; slugs.has(slug); suffix++) slug = `${base}-${suffix}`;
    slugs.add(slug);
    if (meta.status === 'draft') drafts.add(meta.author);
    if (meta.status === 'published') {
      published += 1;
      if (samples.slugs.length < SLUG_SAMPLE) samples.slugs.push(slug);
      else {
        const slot = Math.floor(sampleRand() * published);
        if (slot < SLUG_SAMPLE) samples.slugs[slot] = slug;
      }
    }
    await writer.add([
      meta.id,
      slug,
      title,
      text.excerpt(meta),
      text.body(meta),
      meta.status,
      world.userIds[meta.author],
      world.categories[meta.category]!.id,
      iso(meta.publishedAt),
      iso(meta.createdAt),
      iso(meta.updatedAt),
    ]);
    if ((index + 1) % 100_000 === 0) log(`postgresql: ${index + 1} articles sent`);
  }
  await writer.flush();
  samples.draftAuthors = [...drafts].sort((a, b) => a - b).map((author) => world.userIds[author]!);
  return writer.rows;
}

async function loadArticleTags(inserter: ParallelInserter, world: World, samples: LoadedSamples): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'article_tags',
    [
      ['article_id', 'uuid'],
      ['tag_id', 'uuid'],
      ['created_at', 'timestamptz'],
    ],
    10_000,
  );
  const metaRand = random(SEED + 1);
  const used = new Set<number>();
  for (let index = 0; index < world.size.articles; index++) {
    const meta = nextArticleMeta(metaRand, world);
    for (const tag of meta.tags) {
      used.add(tag);
      await writer.add([meta.id, world.tagIds[tag], iso(meta.createdAt)]);
    }
  }
  await writer.flush();
  samples.usedTags = [...used].sort((a, b) => a - b).map((tag) => world.tagIds[tag]!);
  return writer.rows;
}

/** The analytics job's rows for a sample of the published articles, over the last STATS_DAYS days. */
async function loadDailyStats(inserter: ParallelInserter, world: World, samples: LoadedSamples): Promise<number> {
  const writer = new TableWriter(
    inserter,
    'daily_article_stats',
    [
      ['article_id', 'uuid'],
      ['day', 'date'],
      ['views', 'bigint'],
      ['unique_visitors', 'bigint'],
      ['comments', 'integer'],
    ],
    10_000,
  );
  const metaRand = random(SEED + 1);
  const rand = random(SEED + 14);
  const firstDay = END_MS - STATS_DAYS * DAY_MS;
  const reportFrom = END_MS - REPORT_DAYS * DAY_MS;
  const authors = new Set<number>();
  for (let index = 0; index < world.size.articles; index++) {
    const meta = nextArticleMeta(metaRand, world);
    if (!meta.withStats || meta.publishedAt === null) continue;
    // Views fade after publication; a few articles are hits.
    const peak = 20 + Math.floor(5_000 * rand() ** 4);
    const publishedDay = Math.floor(meta.publishedAt / DAY_MS) * DAY_MS;
    for (let day = Math.max(firstDay, publishedDay); day < END_MS; day += DAY_MS) {
      const age = (day - publishedDay) / DAY_MS;
      const views = Math.floor((peak / (1 + age / 7)) * (0.5 + rand()));
      const visitors = Math.floor(views * (0.55 + 0.35 * rand()));
      await writer.add([meta.id, isoDay(day), views, visitors, Math.floor((views / 150) * rand())]);
      if (day >= reportFrom) authors.add(meta.author);
    }
  }
  await writer.flush();
  samples.statsAuthors = [...authors].sort((a, b) => a - b).map((author) => world.userIds[author]!);
  return writer.rows;
}

/** In load order: whatever a row references is stored before it. */
const TABLE_LOADS: ReadonlyArray<[table: string, load: TableLoad]> = [
  ['users', loadUsers],
  ['author_profiles', loadAuthorProfiles],
  ['categories', loadCategories],
  ['tags', loadTags],
  ['articles', loadArticles],
  ['article_tags', loadArticleTags],
  ['daily_article_stats', loadDailyStats],
];

/**
 * Tables whose secondary indexes are dropped before their load and built again after it, the
 * usual bulk-load practice: one sorted build (GIN in parallel since PostgreSQL 18) instead of
 * maintaining each index row by row. Constraint indexes (primary keys, UNIQUE) stay.
 */
const DEFERRED_INDEX_TABLES = ['articles', 'article_tags', 'daily_article_stats'];

interface DeferredIndex {
  name: string;
  definition: string;
  comment: string | null;
}

async function dropSecondaryIndexes(client: pg.Client, table: string): Promise<DeferredIndex[]> {
  const { rows } = await client.query<DeferredIndex>(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition, obj_description(i.indexrelid, 'pg_class') AS comment
       FROM pg_index i
      WHERE i.indrelid = $1::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
      ORDER BY 1`,
    [`public.${table}`],
  );
  for (const index of rows) await client.query(`DROP INDEX ${index.name}`);
  return rows;
}

/** Builds the dropped indexes again, as they were (comments included), spread over the connections; returns seconds. */
async function rebuildIndexes(clients: pg.Client[], indexes: DeferredIndex[]): Promise<number> {
  const started = performance.now();
  const queue = [...indexes];
  await Promise.all(
    clients.map(async (client) => {
      for (let index = queue.shift(); index; index = queue.shift()) {
        await client.query(index.definition);
        if (index.comment !== null) await client.query(`COMMENT ON INDEX ${index.name} IS ${pg.escapeLiteral(index.comment)}`);
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/**
 * Loads every table as allixios_owner, the role data migrations use: its policies let it write
 * every row despite FORCE ROW LEVEL SECURITY, and the editorial guard lets it publish. Triggers
 * and foreign keys work as on any insert (explicit slugs make the slug trigger return at once).
 * The generated columns (search_vector: to_tsvector of the whole text; reading_time_minutes:
 * a regexp_count over the body) are computed by the server and are most of the articles' cost.
 * Each table's time runs from its first generated row to its last stored one, generation
 * included (it overlaps the server's work).
 */
export async function loadData(ownerUrl: string, world: World, log: (line: string) => void): Promise<{ loads: LoadReport[]; samples: LoadedSamples }> {
  const clients = [new pg.Client({ connectionString: ownerUrl }), new pg.Client({ connectionString: ownerUrl })];
  try {
    for (const client of clients) {
      await client.connect();
      // A crash of a throwaway server loses nothing worth a synchronous commit; GIN's pending
      // list gets longer and is merged with more memory (fewer, larger merges).
      await client.query(`SET synchronous_commit = off; SET work_mem = '256MB'; SET maintenance_work_mem = '1GB'; SET gin_pending_list_limit = '64MB'`);
    }
    const inserter = new ParallelInserter(clients);
    const samples: LoadedSamples = { slugs: [], draftAuthors: [], statsAuthors: [], usedTags: [] };
    const loads: LoadReport[] = [];
    for (const [table, load] of TABLE_LOADS) {
      const started = performance.now();
      const deferred = DEFERRED_INDEX_TABLES.includes(table) ? await dropSecondaryIndexes(clients[0]!, table) : [];
      const rows = await load(inserter, world, samples, log);
      await inserter.drain();
      const built = await rebuildIndexes(clients, deferred);
      const seconds = (performance.now() - started) / 1000;
      loads.push({ engine: 'postgresql', table, rows, seconds, rowsPerSecond: Math.round(rows / seconds) });
      const indexes = deferred.length > 0 ? `, ${deferred.length} indexes rebuilt after it in ${built.toFixed(1)} s` : '';
      log(`postgresql: loaded ${rows} ${table} in ${seconds.toFixed(1)} s (${Math.round(rows / seconds)} rows/s${indexes})`);
    }
    return { loads, samples };
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
  }
}

//--------------------------------------------------------------------------------------------
// Server settings
//--------------------------------------------------------------------------------------------

/**
 * Planner settings of the platform's own configuration (config/postgresql.conf), which the
 * embedded server does not read: without them plans would be those of PostgreSQL's defaults
 * (random_page_cost 4 for spinning disks, JIT on), not the platform's.
 */
const PLATFORM_PLANNER_SETTINGS = ['random_page_cost', 'effective_io_concurrency', 'jit'] as const;

export async function platformPlannerSettings(): Promise<Array<[string, string]>> {
  const file = join(postgresql.directory, 'config', 'postgresql.conf');
  const text = await readFile(file, 'utf8');
  return PLATFORM_PLANNER_SETTINGS.map((name) => {
    const match = new RegExp(`^\\s*${name}\\s*=\\s*'?([^'#\\s]+)'?`, 'm').exec(text);
    if (!match) throw new Error(`${file} does not set ${name}, which the benchmark copies onto the embedded server`);
    return [name, match[1]!];
  });
}

/**
 * For the load only (reset afterwards): fewer checkpoints while gigabytes of WAL are written
 * (each checkpoint would also force full-page images into the WAL again), and no autovacuum
 * competing for the two cores (VACUUM ANALYZE runs explicitly once the load is done).
 * shared_buffers stays at the embedded default (128MB): it needs a restart, which the embedded
 * server does not offer; the operating system's page cache holds the data instead.
 */
export const LOAD_SETTINGS: ReadonlyArray<[string, string]> = [
  ['max_wal_size', '16GB'],
  ['checkpoint_timeout', '1h'],
  ['autovacuum', 'off'],
];

export async function alterSystem(superuser: pg.Client, settings: ReadonlyArray<[string, string]>): Promise<void> {
  for (const [name, value] of settings) await superuser.query(`ALTER SYSTEM SET ${name} = '${value}'`);
  await superuser.query('SELECT pg_reload_conf()');
}

export async function resetSystem(superuser: pg.Client, names: readonly string[]): Promise<void> {
  for (const name of names) await superuser.query(`ALTER SYSTEM RESET ${name}`);
  await superuser.query('SELECT pg_reload_conf()');
}

export const REPORTED_SETTINGS = ['shared_buffers', 'work_mem', 'effective_cache_size', 'random_page_cost', 'effective_io_concurrency', 'jit', 'max_parallel_workers_per_gather'];
