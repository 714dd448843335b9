/**
 * The PostgreSQL benchmark's workload: the platform's read queries as it sends them, the actor
 * each one claims (asActor: the platform's transaction), the parameters drawn for every run
 * from the generated world and what the load left behind, the measured run itself (runOnce),
 * and the baseline's removal of the index strategy.
 */
import pg from 'pg';
import { toError } from '../../bootstrap/errors.ts';
import { random, SEED } from '../scale.ts';
import type { QueryReport } from '../stats.ts';
import { DAY_MS, END_MS, isoDay, pick, REPORT_DAYS, TOPICS, type Random, type World } from './data.ts';
import type { LoadedSamples } from './load.ts';

//--------------------------------------------------------------------------------------------
// Queries
//--------------------------------------------------------------------------------------------

/** The page the deep listings read (page50Cursors), and the rows of every page. */
const KEYSET_PAGE = 50;
export const PAGE_SIZE = 20;

/** Who the application says is acting, as it claims it with app_claim() in each transaction. */
type Actor = { role: 'anonymous' } | { role: 'author'; userId: string };

interface Draw {
  actor: Actor;
  values: unknown[];
}

export interface Workload {
  name: string;
  /** The statement as the platform sends it. */
  sql: string;
  /**
   * The statement whose plan is shown, when it is not `sql` itself (a function's body), and
   * whether it runs as the function's owner (SECURITY DEFINER) rather than the application.
   */
  explain?: { sql: string; values: (values: unknown[]) => unknown[]; asOwner: boolean };
  /** Measure it again without the index strategy (default true). */
  baseline?: boolean;
  /** Parameters per run, warm-up runs first; the baseline replays the same ones. */
  draws: Draw[];
  /** Indexes the plan must use. */
  indexes: string[];
  /** A partitioned table the query reads, and the only partitions of it the plan may read. */
  partitions?: { table: string; scanned: string[] };
  target?: QueryReport['target'];
  /** Facts the report needs whatever the figures (the page actually measured, matches). */
  context?: string;
  /** Why a target would be missed and what would change it, said only when it is. */
  whyMissed?: { p95?: string; speedup?: string };
}

/** The names of the measured queries, as QueryReport.name carries them. */
export const POSTGRES_QUERIES = {
  categoryPage1: 'category page 1',
  keysetPage50: 'category page 50, keyset',
  offsetPage50: 'category page 50, offset',
  slug: 'article by slug',
  drafts: "an author's drafts",
  tag: 'articles by tag',
  search: 'full-text search top 20',
  stats: "an author's daily stats report",
  /** The same search split by kind of term, to show what its cost follows (no baseline). */
  searchName: 'full-text search top 20: a name',
  searchTopic: 'full-text search top 20: two topic words',
} as const;

const FIXED_COST =
  'The indexed query reads the same few pages whatever the size of the table, while the baseline scans all of it, so the ratio grows with the data (the next scale has ten times the rows).';
const RANKING_COST =
  'The index finds the matches but does not rank them: ts_rank reads the search_vector of every match, and ts_headline parses each of the 20 results in full, so the cost follows the number of matches and the length of the articles, not the size of the table. Terms matching thousands of articles need ranking from an index (Elasticsearch, which the platform runs; in PostgreSQL the rum extension, not in core) or a bounded candidate set (rank only the newest matches).';

const SET_ACTOR = 'SELECT app_claim($1, $2)';

/** The platform's transaction: BEGIN, the claim, the work, COMMIT. */
export async function asActor<T>(client: pg.Client, actor: Actor, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query(SET_ACTOR, [actor.role === 'anonymous' ? null : actor.userId, actor.role]);
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export const anonymous: Actor = { role: 'anonymous' };

/** `count` parameters drawn from `pool` with the query's own generator. */
function drawMany<T>(seed: number, count: number, pool: readonly T[], toDraw: (item: T, rand: Random) => Draw): Draw[] {
  if (pool.length === 0) throw new Error('no parameters to draw from: the generated data set is empty');
  const rand = random(seed);
  return Array.from({ length: count }, () => toDraw(pick(rand, pool), rand));
}

const CARD_COLUMNS = 'id, slug, title, excerpt, author_display_name, category_slug, category_name, reading_time_minutes, published_at';
const CATEGORY_PAGE = `SELECT ${CARD_COLUMNS}
  FROM article_summaries
 WHERE category_id = $1 AND status = 'published'
 ORDER BY published_at DESC, id DESC
 LIMIT ${PAGE_SIZE}`;
const CATEGORY_PAGE_KEYSET = `SELECT ${CARD_COLUMNS}
  FROM article_summaries
 WHERE category_id = $1 AND status = 'published' AND (published_at, id) < ($2, $3)
 ORDER BY published_at DESC, id DESC
 LIMIT ${PAGE_SIZE}`;
const categoryPageOffset = (offset: number) => `${CATEGORY_PAGE}
OFFSET ${offset}`;
const ARTICLE_BY_SLUG = `SELECT id, slug, title, excerpt, body, status, author_id, category_id, cover_media_id,
       reading_time_minutes, published_at, updated_at
  FROM articles
 WHERE slug = $1 AND status = 'published'`;
const AUTHOR_DRAFTS = `SELECT id, slug, title, status, reading_time_minutes, updated_at
  FROM articles
 WHERE author_id = $1 AND status = 'draft'
 ORDER BY updated_at DESC
 LIMIT ${PAGE_SIZE}`;
const TAG_PAGE = `SELECT a.id, a.slug, a.title, a.excerpt, a.reading_time_minutes, a.published_at
  FROM article_tags t
  JOIN articles a ON a.id = t.article_id
 WHERE t.tag_id = $1 AND a.status = 'published'
 ORDER BY a.published_at DESC, a.id DESC
 LIMIT ${PAGE_SIZE}`;
const SEARCH = `SELECT id, slug, title, status, published_at, rank, headline
  FROM search_articles($1, ${PAGE_SIZE})`;
const AUTHOR_DAILY_STATS = `SELECT s.day, sum(s.views) AS views, sum(s.unique_visitors) AS unique_visitors, sum(s.comments) AS comments
  FROM articles a
  JOIN daily_article_stats s ON s.article_id = a.id
 WHERE a.author_id = $1 AND s.day >= $2 AND s.day < $3
 GROUP BY s.day
 ORDER BY s.day`;

/** The month partitions of daily_article_stats (migrations/V0021) that hold the days from `from` up to `to` (exclusive). */
export function statsPartitions(from: string, to: string): string[] {
  const names: string[] = [];
  for (let month = new Date(`${from.slice(0, 7)}-01T00:00:00Z`); isoDay(month.getTime()) < to; month.setUTCMonth(month.getUTCMonth() + 1)) {
    names.push(`daily_article_stats_y${isoDay(month.getTime()).slice(0, 4)}m${isoDay(month.getTime()).slice(5, 7)}`);
  }
  return names;
}

interface FunctionBody {
  sql: string;
  /** SECURITY DEFINER: the body runs as the function's owner, with the caller's claim. */
  asOwner: boolean;
}

/**
 * The statement inside search_articles(), with its arguments as parameters. A SQL function
 * with a SET clause is not inlined, so EXPLAIN of the call shows only "Function Scan"; the
 * body is read from the catalog, so this is the function as deployed, not a copy, and so is
 * whose rights it runs with.
 */
async function searchFunctionBody(client: pg.Client): Promise<FunctionBody> {
  const { rows } = await client.query<{ body: string; definer: boolean; owner: string }>(
    `SELECT prosrc AS body, prosecdef AS definer, proowner::regrole::text AS owner FROM pg_proc WHERE oid = 'public.search_articles(text, integer)'::regprocedure`,
  );
  const found = rows[0];
  const statement = (found?.body ?? '').replace(/\bsearch_articles\.query\b/g, '$1::text').replace(/\bsearch_articles\.max_results\b/g, '$2::integer');
  if (!statement.includes('$1::text') || !statement.includes('$2::integer')) {
    throw new Error(
      'search_articles(query, max_results) no longer refers to its arguments as search_articles.query and search_articles.max_results; bench/postgresql/queries.ts explains its body and must follow',
    );
  }
  if (found!.definer && found!.owner !== 'allixios_owner') {
    throw new Error(
      `search_articles() is SECURITY DEFINER owned by ${found!.owner}, not allixios_owner: the benchmark explains its body as allixios_owner and would show another plan`,
    );
  }
  return { sql: statement, asOwner: found!.definer };
}

/** Search terms people type: two words of one topic ("sourdough yeast"), or a name. */
function searchTerms(world: World): { common: string[]; selective: string[] } {
  const rand = random(SEED + 21);
  const common = Array.from({ length: 48 }, () => {
    const topic = pick(rand, TOPICS).words;
    const first = pick(rand, topic);
    let second = pick(rand, topic);
    while (second === first) second = pick(rand, topic);
    return `${first} ${second}`;
  });
  const selective = Array.from({ length: 48 }, () => pick(rand, world.names));
  return { common, selective };
}

interface Page50 {
  page: number;
  /** Categories with enough published articles, with the keyset of the row before the page. */
  cursors: Array<{ category: string; publishedAt: string; id: string }>;
}

/** The last row of page 49 of the largest categories: what the application has from the previous page. */
async function page50Cursors(owner: pg.Client): Promise<Page50> {
  const { rows } = await owner.query<{ category_id: string; published: string }>(
    `SELECT category_id, count(*) AS published FROM articles WHERE status = 'published' GROUP BY category_id ORDER BY count(*) DESC, category_id`,
  );
  const largest = Number(rows[0]?.published ?? 0);
  // At small scale no category reaches 1,000 published articles: the deepest full page then.
  const page = Math.max(2, Math.min(KEYSET_PAGE, Math.floor(largest / PAGE_SIZE)));
  const offset = (page - 1) * PAGE_SIZE;
  const eligible = rows.filter((row) => Number(row.published) >= page * PAGE_SIZE).slice(0, 50);
  const cursors: Page50['cursors'] = [];
  for (const row of eligible) {
    const { rows: last } = await owner.query<{ published_at: string; id: string }>(
      `SELECT published_at::text AS published_at, id FROM articles
        WHERE category_id = $1 AND status = 'published'
        ORDER BY published_at DESC, id DESC OFFSET $2 LIMIT 1`,
      [row.category_id, offset - 1],
    );
    if (last[0]) cursors.push({ category: row.category_id, publishedAt: last[0].published_at, id: last[0].id });
  }
  if (cursors.length === 0) throw new Error(`no category has ${page * PAGE_SIZE} published articles to page through`);
  return { page, cursors };
}

/** The workloads of the issue, in the order the report lists them. */
export async function workloads(
  world: World,
  samples: LoadedSamples,
  owner: pg.Client,
  count: number,
): Promise<{ list: Workload[]; terms: { common: string[]; selective: string[] } }> {
  const pages = await page50Cursors(owner);
  const offset = (pages.page - 1) * PAGE_SIZE;
  const pageContext = pages.page === KEYSET_PAGE ? undefined : `Page ${pages.page} measured: no category has ${KEYSET_PAGE * PAGE_SIZE} published articles at this scale.`;
  const categories = world.categories.map((category) => category.id);
  const reportTo = isoDay(END_MS);
  const reportFrom = isoDay(END_MS - REPORT_DAYS * DAY_MS);
  const body = await searchFunctionBody(owner);
  const terms = searchTerms(world);
  const mixed = terms.common.flatMap((term, k) => [term, terms.selective[k]!]);
  const list: Workload[] = [
    {
      name: POSTGRES_QUERIES.categoryPage1,
      sql: CATEGORY_PAGE,
      draws: drawMany(SEED + 31, count, categories, (id) => ({ actor: anonymous, values: [id] })),
      indexes: ['articles_published_by_category_idx'],
      target: { p95Ms: 2, speedup: 50 },
      whyMissed: { speedup: FIXED_COST },
    },
    {
      name: POSTGRES_QUERIES.keysetPage50,
      sql: CATEGORY_PAGE_KEYSET,
      draws: drawMany(SEED + 32, count, pages.cursors, (cursor) => ({ actor: anonymous, values: [cursor.category, cursor.publishedAt, cursor.id] })),
      indexes: ['articles_published_by_category_idx'],
      target: { p95Ms: 3, speedup: 50 },
      whyMissed: { speedup: FIXED_COST },
      ...(pageContext ? { context: pageContext } : {}),
    },
    {
      name: POSTGRES_QUERIES.offsetPage50,
      sql: categoryPageOffset(offset),
      draws: drawMany(SEED + 32, count, pages.cursors, (cursor) => ({ actor: anonymous, values: [cursor.category] })),
      indexes: ['articles_published_by_category_idx'],
      target: { speedup: 50 },
      whyMissed: {
        speedup: `OFFSET ${offset} reads and throws away ${offset} rows, each joined to its byline and category, before the ${PAGE_SIZE} it returns: its cost grows with the page number, which is why the design pages deep with a keyset (the keyset entry reads the same page through the same index).`,
      },
      ...(pageContext ? { context: pageContext } : {}),
    },
    {
      name: POSTGRES_QUERIES.slug,
      sql: ARTICLE_BY_SLUG,
      draws: drawMany(SEED + 33, count, samples.slugs, (slug) => ({ actor: anonymous, values: [slug] })),
      indexes: ['articles_published_slug_key'],
      target: { p95Ms: 1, speedup: 50 },
      whyMissed: { speedup: FIXED_COST },
    },
    {
      name: POSTGRES_QUERIES.drafts,
      sql: AUTHOR_DRAFTS,
      draws: drawMany(SEED + 34, count, samples.draftAuthors, (userId) => ({ actor: { role: 'author', userId }, values: [userId] })),
      indexes: ['articles_author_status_updated_idx'],
      target: { p95Ms: 2, speedup: 50 },
      whyMissed: { speedup: FIXED_COST },
    },
    {
      name: POSTGRES_QUERIES.tag,
      sql: TAG_PAGE,
      draws: drawMany(SEED + 35, count, samples.usedTags, (tag) => ({ actor: anonymous, values: [tag] })),
      indexes: ['article_tags_tag_article_idx'],
      target: { speedup: 50 },
      whyMissed: {
        speedup:
          "No index orders a tag's articles by date: every article carrying the tag is fetched (and checked against the articles policy) and sorted to find the newest 20, so the cost follows the tag's size, while the baseline's scan of article_tags, a narrow table, stays cheap until the table is large. Keeping published_at in article_tags with an index on (tag_id, published_at DESC) would read only the 20.",
      },
    },
    {
      name: POSTGRES_QUERIES.search,
      sql: SEARCH,
      explain: { ...body, values: (values) => [values[0], PAGE_SIZE] },
      // Half the searches are two words of one topic, half a proper name.
      draws: drawMany(SEED + 36, count, mixed, (term) => ({ actor: anonymous, values: [term] })),
      indexes: ['articles_published_search_idx'],
      target: { p95Ms: 30, speedup: 50 },
      whyMissed: { p95: RANKING_COST },
    },
    {
      name: POSTGRES_QUERIES.stats,
      sql: AUTHOR_DAILY_STATS,
      draws: drawMany(SEED + 37, count, samples.statsAuthors, (userId) => ({ actor: { role: 'author', userId }, values: [userId, reportFrom, reportTo] })),
      // Each month's partition of daily_article_stats_pkey (a partition's index is named after it).
      indexes: ['articles_author_status_updated_idx', ...statsPartitions(reportFrom, reportTo).map((partition) => `${partition}_pkey`)],
      partitions: { table: 'daily_article_stats', scanned: statsPartitions(reportFrom, reportTo) },
      target: { speedup: 50 },
      whyMissed: {
        speedup:
          "The indexed query reads each of the author's articles and its days of statistics (an index lookup per article), which depends on the author's output, not on the size of the tables; the baseline scans articles for the author, which grows with the table.",
      },
    },
  ];
  return { list, terms };
}

/** The search again, by kind of term: what its cost follows (the report explains with them). */
export function searchByKindOfTerm(search: Workload, terms: { common: string[]; selective: string[] }, count: number): Workload[] {
  const variant = (name: string, pool: string[], seed: number): Workload => ({
    ...search,
    name,
    draws: drawMany(seed, count, pool, (term) => ({ actor: anonymous, values: [term] })),
    baseline: false,
    whyMissed: { p95: RANKING_COST },
  });
  return [variant(POSTGRES_QUERIES.searchName, terms.selective, SEED + 41), variant(POSTGRES_QUERIES.searchTopic, terms.common, SEED + 42)];
}

/** How many published articles each distinct search term matches (what ranking has to read). */
export async function matchCounts(owner: pg.Client, termsList: readonly string[], known: Map<string, number>): Promise<string> {
  const counts: number[] = [];
  for (const term of new Set(termsList)) {
    // The split searches reuse the terms of the mixed one: each is counted once (seconds at large scale).
    let count = known.get(term);
    if (count === undefined) {
      const { rows } = await owner.query<{ matches: string }>(
        `SELECT count(*) AS matches FROM articles WHERE status = 'published' AND search_vector @@ websearch_to_tsquery('pg_catalog.english', $1)`,
        [term],
      );
      count = Number(rows[0]?.matches ?? 0);
      known.set(term, count);
    }
    counts.push(count);
  }
  counts.sort((a, b) => a - b);
  const at = (p: number) => counts[Math.min(counts.length - 1, Math.floor(p * counts.length))]!;
  return `The searched terms match ${counts[0]} to ${counts.at(-1)} published articles (median ${at(0.5)}, p95 ${at(0.95)}).`;
}

//--------------------------------------------------------------------------------------------
// Measuring
//--------------------------------------------------------------------------------------------

/** One run as the platform's transaction; returns the milliseconds of the query's own round trip. */
export async function runOnce(app: pg.Client, workload: Workload, draw: Draw): Promise<number> {
  try {
    return await asActor(app, draw.actor, async () => {
      const started = performance.now();
      await app.query(workload.sql, draw.values);
      return performance.now() - started;
    });
  } catch (error) {
    throw new Error(`postgresql query "${workload.name}" failed: ${toError(error).message}`, { cause: error });
  }
}

export const ms = (value: number): string => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));

//--------------------------------------------------------------------------------------------
// The baseline
//--------------------------------------------------------------------------------------------

/** Drops every index that is not a primary key (unique constraints too, with what depends on them). */
export async function dropIndexStrategy(owner: pg.Client): Promise<string[]> {
  const { rows } = await owner.query<{ name: string; statement: string }>(
    `SELECT i.indexrelid::regclass::text AS name,
            CASE WHEN c.conname IS NOT NULL
                 THEN format('ALTER TABLE %s DROP CONSTRAINT %I CASCADE', i.indrelid::regclass, c.conname)
                 ELSE format('DROP INDEX %s', i.indexrelid::regclass) END AS statement
       FROM pg_index i
       JOIN pg_class t ON t.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('u', 'x')
      WHERE n.nspname = 'public' AND NOT i.indisprimary
      ORDER BY 1`,
  );
  for (const row of rows) await owner.query(row.statement);
  return rows.map((row) => row.name);
}
