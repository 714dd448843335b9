/**
 * Attacks on the PostgreSQL security contract (databases/postgresql/README.md, "Threat model"),
 * on a real PostgreSQL 18 with the platform's roles and assets.
 *
 * The attacker holds allixios_app (or allixios_readonly) and sends any statement under any claim:
 * a bug, a forgotten WHERE, an injection. Each case is one statement (or a short sequence) and
 * asserts that it is refused or returns nothing the claim may not see, and that no hidden value
 * appears anywhere in what comes back: rows, row counts, error message, detail, hint or context.
 * Where a check answers yes/no, the same statement against a row that does not exist must give
 * the same answer as against a row the claim cannot see.
 *
 * Hidden values: author B's unpublished text, other users' e-mail addresses, a hidden comment,
 * a hidden reply, B's private upload. Author A is the usual attacker: A sees published articles
 * and A's own, so anything of B's that is not published is hidden from A.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_PASSWORDS, type EmbeddedPostgresServer } from '../bootstrap/embedded/postgresql.ts';
import { connectionUrl } from '../databases/connection.ts';
import { APP_SESSION_OPTIONS, postgresql } from '../databases/postgresql/index.ts';
import { claim } from './support/postgres.ts';
import { appClient as appClientOf, attacker, shape } from './support/attacker.ts';
import { describeWithDefaults } from './support/engines.ts';
import { actors, app, articles, as, asReadonly, comments, ids, owner, readonly, startWorld, stopWorld, type Actor, type Transaction } from './support/platform-world.ts';

/**
 * Values the attackers below may not see, each with the user whose own it is: what the seed and
 * this file put in rows hidden from everyone else who is not staff.
 */
const HIDDEN: ReadonlyArray<[value: string, ownerOf: string]> = [
  ['zanzibar of author b', ids.authorB], // body of B's draft and of B's review
  ['Off-topic rant', ids.authorB], // B's comment, hidden by a moderator
  ['ben@example.com', ids.authorB],
  ['eve@example.com', ids.editor],
  ['adam@example.com', ids.admin],
  ['rita@example.com', ids.reader],
  ['ann@example.com', ids.authorA],
  ['HIDDEN-REPLY-TEXT', ids.authorB], // B's reply on A's published article, hidden by a moderator
  ['SECRET-ALT-OF-B', ids.authorB], // B's upload, used nowhere
  ['SECRET-COVER-OF-B-DRAFT', ids.authorB], // B's upload, the cover of B's draft
];

const extra = {
  hiddenReply: randomUUID(),
  privateUploadOfB: randomUUID(),
  coverOfBDraft: randomUUID(),
  uploadOfA: randomUUID(),
  tag: randomUUID(),
};

let server: EmbeddedPostgresServer;

const { attack, hiddenFrom } = attacker(HIDDEN);
const appClient = () => appClientOf(server);

/** psql as allixios_app: what COPY and other client-side protocols need. */
function psqlAsApp(sql: string, input?: string): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('psql', ['--no-psqlrc', '-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'allixios_app', '-d', 'allixios', '-c', sql], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: EMBEDDED_PASSWORDS.allixios_app },
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

beforeAll(async () => {
  server = await startWorld();
  // Beyond the shared seed: uploads, a hidden reply, statistics, a tag on B's draft.
  await owner.query(
    `INSERT INTO media (id, uploaded_by, storage_key, mime_type, size_bytes, alt_text) VALUES
       ($1, $4, 'media/private-b', 'image/png', 10, 'SECRET-ALT-OF-B'),
       ($2, $4, 'media/cover-b-draft', 'image/png', 10, 'SECRET-COVER-OF-B-DRAFT'),
       ($3, $5, 'media/upload-a', 'image/png', 10, 'Upload of A')`,
    [extra.privateUploadOfB, extra.coverOfBDraft, extra.uploadOfA, ids.authorB, ids.authorA],
  );
  await owner.query(`UPDATE articles SET cover_media_id = $1 WHERE id = $2`, [extra.coverOfBDraft, articles['b-draft']]);
  await owner.query(`INSERT INTO comments (id, article_id, author_id, parent_id, body, status) VALUES ($1, $2, $3, $4, 'HIDDEN-REPLY-TEXT', 'hidden')`, [
    extra.hiddenReply,
    articles['a-published'],
    ids.authorB,
    comments.onPublishedByReader,
  ]);
  await owner.query(`INSERT INTO daily_article_stats (article_id, day, views, unique_visitors) VALUES ($1, '2025-01-02', 40, 10), ($2, '2025-01-02', 7, 7)`, [
    articles['b-draft'],
    articles['a-published'],
  ]);
  await owner.query(`INSERT INTO tags (id, slug, name) VALUES ($1, 'secret-project', 'Secret project')`, [extra.tag]);
  await owner.query(`INSERT INTO article_tags (article_id, tag_id) VALUES ($1, $2)`, [articles['b-draft'], extra.tag]);
}, 120_000);

afterAll(stopWorld);

describe('upserts: a conflict path never evaluates, returns or reports a hidden row', () => {
  const leakyWhere = `DO UPDATE SET title = excluded.title WHERE (articles.body)::integer = 0`;

  it("an upsert on a hidden draft's slug has no unique constraint to conflict with", async () => {
    // Given B's draft (slug b-draft), hidden from A
    // When A upserts on that slug with a WHERE that would fail on B's text
    const outcome = await attack(actors.authorA, `INSERT INTO articles (slug, title, author_id) VALUES ('b-draft', 'Mine', $1) ON CONFLICT (slug) ${leakyWhere}`, [ids.authorA]);
    // Then there is no arbiter over every slug (only published slugs are unique)
    expect(outcome.error).toMatchObject({ code: '42P10' });
  });

  it('an upsert on the published-slug index conflicts only with published articles, which every claim sees', async () => {
    // Given B's draft slug and an unused slug
    const upsert = `INSERT INTO articles (slug, title, author_id) VALUES ($2, 'Mine', $1) ON CONFLICT (slug) WHERE status = 'published' ${leakyWhere} RETURNING slug`;
    // When A upserts a draft on each
    const onHidden = await attack(actors.authorA, upsert, [ids.authorA, 'b-draft']);
    const onFree = await attack(actors.authorA, upsert, [ids.authorA, 'never-used-slug']);
    // Then both insert A's own draft: a draft is not in the published namespace, and B's draft
    // changes nothing about the answer
    expect(onHidden.rowCount).toBe(1);
    expect(onFree.rowCount).toBe(1);
  });

  it.each([
    [
      'articles by id',
      `INSERT INTO articles (id, title, author_id) VALUES ($1, 'x', $2) ON CONFLICT (id) DO UPDATE SET title = 'x' WHERE (articles.body)::integer = 0`,
      () => [articles['b-draft'], ids.authorA],
    ],
    [
      'comments by id',
      `INSERT INTO comments (id, article_id, body) VALUES ($1, $2, 'x') ON CONFLICT (id) DO UPDATE SET body = 'x' WHERE (comments.body)::integer = 0`,
      () => [comments.onPublishedHidden, articles['a-published']],
    ],
    [
      'media by id',
      `INSERT INTO media (id, mime_type, size_bytes) VALUES ($1, 'image/png', 1) ON CONFLICT (id) DO UPDATE SET alt_text = 'x' WHERE (media.alt_text)::integer = 0`,
      () => [extra.privateUploadOfB],
    ],
    [
      'a revision',
      `INSERT INTO article_revisions (article_id, revision_number, title, body, status) VALUES ($1, 1, 'x', 'x', 'draft') ON CONFLICT DO NOTHING`,
      () => [articles['b-draft']],
    ],
  ])("an upsert naming the key of a hidden row (%s) is refused: the key is the system's", async (_case, sql, params) => {
    // Given a key of a row A cannot see / When A upserts on it with a WHERE over that row
    const outcome = await attack(actors.authorA, sql, params());
    // Then A may not write that column at all
    expect(outcome.error).toMatchObject({ code: '42501' });
    expect(outcome.error?.message).toContain('permission denied');
  });

  it.each([
    [
      "another user's e-mail address",
      `INSERT INTO users (id, email, display_name) VALUES ($1, 'EVE@example.com', 'x') ON CONFLICT (lower(email)) DO UPDATE SET display_name = 'x' WHERE (users.display_name)::integer = 0`,
    ],
    [
      'a hidden storage key',
      `INSERT INTO media (id, mime_type, size_bytes) VALUES ($1, 'image/png', 1) ON CONFLICT (storage_key) DO UPDATE SET alt_text = 'x' WHERE (media.alt_text)::integer = 0`,
    ],
  ])('an upsert on %s finds no unique index to conflict on: hidden text is unique nowhere a platform role reaches', async (_case, sql) => {
    const newcomer = randomUUID();
    const outcome = await attack({ role: 'reader', userId: newcomer }, sql, [newcomer]);
    expect(outcome.error).toMatchObject({ code: '42P10', message: 'there is no unique or exclusion constraint matching the ON CONFLICT specification' });
  });

  it("a signup with another user's e-mail address says only that the address is taken", async () => {
    // Given the editor's address, and a self-signup claim
    const newcomer = randomUUID();
    const outcome = await attack({ role: 'reader', userId: newcomer }, `INSERT INTO users (id, email, display_name) VALUES ($1, 'EVE@example.com', 'x')`, [newcomer]);
    // Then it is refused saying that, and nothing else of the editor's account
    expect(outcome.error).toMatchObject({ code: '23505', message: 'an account with this e-mail address already exists' });
    expect(outcome.error?.detail).toBeUndefined();
    expect(outcome.error?.constraint).toBeUndefined();
  });

  it.each([
    ['anonymous', actors.anonymous],
    ['a reader signing up someone else', { role: 'reader', userId: randomUUID() } as Actor],
  ])('%s learns nothing about registered addresses: a taken and a free one are refused alike', async (_case, actor) => {
    // Given a registered and an unregistered address
    const signup = `INSERT INTO users (id, email, display_name) VALUES ($1, $2, 'x')`;
    // When a claim the users policy refuses inserts each
    const taken = await attack(actor, signup, [randomUUID(), 'eve@example.com']);
    const free = await attack(actor, signup, [randomUUID(), `${randomUUID()}@example.com`]);
    // Then both fail the same way, on the policy
    expect(shape(taken)).toEqual(shape(free));
    expect(taken.error).toMatchObject({ code: '42501' });
  });

  it('an upsert on a profile, statistics or a tag link of a hidden article is refused before any conflict', async () => {
    const outcomes = [
      await attack(
        actors.authorA,
        `INSERT INTO author_profiles (user_id, display_name) VALUES ($1, 'x') ON CONFLICT (user_id) DO UPDATE SET bio = 'x' WHERE (author_profiles.bio)::integer = 0`,
        [ids.authorB],
      ),
      await attack(
        actors.authorA,
        `INSERT INTO daily_article_stats (article_id, day) VALUES ($1, '2025-01-02') ON CONFLICT (article_id, day) DO UPDATE SET views = 1 WHERE daily_article_stats.views / 0 = 1`,
        [articles['b-draft']],
      ),
      await attack(actors.authorA, `INSERT INTO article_tags (article_id, tag_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [articles['b-draft'], extra.tag]),
    ];
    for (const outcome of outcomes) {
      expect(outcome.error).toMatchObject({ code: '42501' });
      expect(outcome.error?.message).toContain('row-level security');
    }
  });
});

describe('RETURNING, COPY and data-modifying CTEs return only what the claim sees', () => {
  it.each([
    ['an UPDATE ... RETURNING of a hidden draft', `UPDATE articles SET title = title WHERE id = $1 RETURNING body`, () => [articles['b-draft']]],
    ['a DELETE ... RETURNING in a CTE', `WITH gone AS (DELETE FROM articles WHERE author_id = $1 RETURNING body) SELECT * FROM gone`, () => [ids.authorB]],
    ['an UPDATE in a CTE', `WITH changed AS (UPDATE comments SET body = body RETURNING body) SELECT * FROM changed`, () => []],
    [
      'a subquery in RETURNING',
      `UPDATE articles SET excerpt = excerpt WHERE id = $1 RETURNING (SELECT string_agg(body, ' ') FROM articles WHERE author_id = $2)`,
      () => [articles['a-draft'], ids.authorB],
    ],
    ['a DELETE of statistics', `WITH gone AS (DELETE FROM daily_article_stats RETURNING views) SELECT * FROM gone`, () => []],
  ])('%s', async (_case, sql, params) => {
    // Given statements that write and return rows / When A runs them
    const outcome = await attack(actors.authorA, sql, params());
    // Then nothing hidden comes back (a refusal is fine too)
    expect(outcome.error?.code ?? 'ok').toMatch(/^(ok|42501)$/);
  });

  it('COPY ... TO STDOUT copies only the rows the claim sees', () => {
    // Given A's claim / When A copies articles and users out
    const run = psqlAsApp(`BEGIN; SELECT app_claim('${ids.authorA}', 'author'); COPY articles (slug, body) TO STDOUT; COPY users (email) TO STDOUT; COMMIT;`);
    // Then A's own and published articles, A's own address, nothing else
    expect(run.status, run.stderr).toBe(0);
    for (const value of hiddenFrom(actors.authorA)) expect(run.stdout).not.toContain(value);
    expect(run.stdout).toContain('a-draft');
    expect(run.stdout).toContain('ann@example.com');
  });

  it.each(['articles', 'categories', 'media', 'daily_article_stats', 'tags'])('COPY %s FROM STDIN is refused: it would skip row-level security', (table) => {
    // Given an editor's claim / When rows are copied into the table
    const run = psqlAsApp(`BEGIN; SELECT app_claim('${ids.editor}', 'editor'); COPY ${table} FROM STDIN; COMMIT;`, '\\.\n');
    // Then PostgreSQL refuses COPY FROM under row-level security
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/COPY FROM not supported with row-level security|permission denied/);
  });

  it.each([`COPY articles TO '/tmp/allixios-leak'`, `COPY articles TO PROGRAM 'cat > /tmp/allixios-leak'`, `COPY articles FROM '/etc/passwd'`])(
    'server-side COPY is refused: %s',
    async (sql) => {
      const outcome = await attack(actors.admin, sql);
      expect(outcome.error).toMatchObject({ code: '42501' });
    },
  );
});

describe('errors never carry a hidden value', () => {
  it.each([
    ['a cast in the select list', `SELECT body::integer FROM articles WHERE id = $1`, () => [articles['b-draft']]],
    ['a cast in WHERE', `SELECT id FROM articles WHERE body::integer = 1`, () => []],
    ["a cast in an UPDATE's WHERE", `UPDATE articles SET title = title WHERE body::integer = 1`, () => []],
    ['a division by a hidden length', `SELECT 1 / (length(body) - length(body)) FROM articles WHERE author_id = $1 AND status = 'draft'`, () => [ids.authorB]],
    ['a cast of comments', `SELECT body::integer FROM comments`, () => []],
    ['a cast of e-mail addresses', `SELECT email::integer FROM users`, () => []],
    ['a cast of media', `SELECT alt_text::integer FROM media`, () => []],
    ['a cast through the view', `SELECT excerpt::integer FROM article_summaries WHERE author_id = $1`, () => [ids.authorB]],
  ])("%s fails, if at all, on the claim's own rows", async (_case, sql, params) => {
    // Given statements whose expressions raise on the first row they meet
    for (const actor of [actors.authorA, actors.reader, actors.anonymous]) {
      // When each claim runs them / Then nothing hidden is in an error
      await attack(actor, sql, params());
    }
  });

  it('an article body has a bound, so no edit stores megabytes (and copies them into the history)', async () => {
    const outcome = await attack(actors.authorA, `UPDATE articles SET body = repeat('x', 200001) WHERE id = $1`, [articles['a-draft']]);
    expect(outcome.error).toMatchObject({ code: '23514', constraint: 'articles_body_length' });
  });

  it("a CHECK failure shows only the writer's own row", async () => {
    // Given A's draft / When A breaks a check on it
    const outcome = await attack(actors.authorA, `UPDATE articles SET excerpt = repeat('x', 2000) WHERE author_id = $1 AND status = 'draft'`, [ids.authorA]);
    // Then the failing row is A's
    expect(outcome.error).toMatchObject({ code: '23514' });
  });

  it('publish_article answers alike for a hidden and a missing article', async () => {
    // Given B's draft, which A cannot see / When A publishes it, and an id nothing has
    const hidden = await attack(actors.authorA, `SELECT publish_article($1)`, [articles['b-draft']]);
    const missing = await attack(actors.authorA, `SELECT publish_article($1)`, [randomUUID()]);
    // Then the answer is the same refusal
    expect(shape(hidden)).toEqual(shape(missing));
  });
});

describe('no yes/no answer about a hidden row: a hidden row and a missing one look the same', () => {
  it.each([
    ["updating B's draft", `UPDATE articles SET title = 'x' WHERE id = $1`, articles],
    ["deleting B's draft", `DELETE FROM articles WHERE id = $1`, articles],
    ["tagging B's draft", `INSERT INTO article_tags (article_id, tag_id) VALUES ($1, '${randomUUID()}')`, articles],
    ["commenting on B's draft", `INSERT INTO comments (article_id, body) VALUES ($1, 'x')`, articles],
    ["statistics of B's draft", `INSERT INTO daily_article_stats (article_id, day) VALUES ($1, '2025-02-02')`, articles],
  ])('%s', async (_case, sql) => {
    const hidden = await attack(actors.authorA, sql, [articles['b-draft']]);
    const missing = await attack(actors.authorA, sql, [randomUUID()]);
    expect(shape(hidden)).toEqual(shape(missing));
  });

  it.each([
    [
      'a reply to a hidden comment',
      `INSERT INTO comments (article_id, parent_id, body) VALUES ($1, $2, 'x')`,
      () => [articles['a-published'], extra.hiddenReply],
      () => [articles['a-published'], randomUUID()],
    ],
    [
      "a cover from B's private upload",
      `INSERT INTO articles (title, author_id, cover_media_id) VALUES ('x', $1, $2)`,
      () => [ids.authorA, extra.privateUploadOfB],
      () => [ids.authorA, randomUUID()],
    ],
    [
      "an avatar from B's private upload",
      `UPDATE author_profiles SET avatar_media_id = $2 WHERE user_id = $1`,
      () => [ids.authorA, extra.privateUploadOfB],
      () => [ids.authorA, randomUUID()],
    ],
  ])('%s is refused like a missing one, before any foreign key could tell them apart', async (_case, sql, hiddenParams, missingParams) => {
    // Given a hidden row and an id nothing has / When A refers to each
    const hidden = await attack(actors.authorA, sql, hiddenParams());
    const missing = await attack(actors.authorA, sql, missingParams());
    // Then both fail the policy alike
    expect(hidden.error).toMatchObject({ code: '42501' });
    expect(shape(hidden)).toEqual(shape(missing));
  });

  it("a hidden draft's slug neither conflicts nor changes the slug made for the same title", async () => {
    await as(actors.authorA, async (tx) => {
      // Given B's draft "Article b-draft" (slug b-draft) / When A writes a draft with B's slug,
      // and one titled like B's draft with no slug
      const explicit = await tx.rows<{ slug: string }>(`INSERT INTO articles (slug, title, author_id) VALUES ('b-draft', 'x', $1) RETURNING slug`, [ids.authorA]);
      const generated = await tx.rows<{ slug: string }>(`INSERT INTO articles (title, author_id) VALUES ('Article b draft', $1) RETURNING slug`, [ids.authorA]);
      // Then both succeed as if B's draft did not exist (no -2 suffix)
      expect(explicit).toEqual([{ slug: 'b-draft' }]);
      expect(generated).toEqual([{ slug: 'article-b-draft' }]);
    });
  });

  it("a slug taken by a published article or by the author's own article is refused, naming neither hidden nor foreign text", async () => {
    // Given B's published article and A's own draft
    const published = await attack(actors.authorA, `INSERT INTO articles (slug, title, author_id) VALUES ('b-published', 'x', $1)`, [ids.authorA]);
    const own = await attack(actors.authorA, `INSERT INTO articles (slug, title, author_id) VALUES ('a-draft', 'x', $1)`, [ids.authorA]);
    // Then both are refused: these are slugs A can see
    expect(published.error).toMatchObject({ code: '23505' });
    expect(own.error).toMatchObject({ code: '23505' });
  });

  it("the slug check answers nothing about another author's articles, even for a row the policy will refuse", async () => {
    // Given B's draft slug / When A inserts an article under B's name with it, and with a free one
    const hidden = await attack(actors.authorA, `INSERT INTO articles (slug, title, author_id) VALUES ('b-draft', 'x', $1)`, [ids.authorB]);
    const free = await attack(actors.authorA, `INSERT INTO articles (slug, title, author_id) VALUES ('free-slug-${randomUUID().slice(0, 8)}', 'x', $1)`, [ids.authorB]);
    // Then both fail the insert policy, not the slug check
    expect(hidden.error).toMatchObject({ code: '42501' });
    expect(shape(hidden)).toEqual(shape(free));
  });

  it('a statement that changes the claim between its rows cannot slip a row past the slug or e-mail checks', async () => {
    // Given two of A's drafts, and a statement that switches app.user_id from its second row on
    // (the policies and the triggers both read the claim per row: either refuses such a row)
    const switching = `set_config('app.user_id', '${randomUUID()}', true) IS NOT NULL`;
    const counter = `set_config('test.rows', (coalesce(nullif(current_setting('test.rows', true), ''), '0')::int + 1)::text, true)::int >= 2`;
    const slugs = await attack(
      actors.authorA,
      `UPDATE articles SET slug = CASE WHEN ${counter} AND ${switching} THEN 'one-slug' ELSE 'one-slug' END WHERE id IN ($1, $2) RETURNING slug`,
      [articles['a-draft'], articles['a-review']],
    );
    const newcomer = randomUUID();
    const signup = await attack(
      { role: 'reader', userId: newcomer },
      `INSERT INTO users (id, email, display_name)
       SELECT CASE WHEN ${counter} AND ${switching} THEN $1::uuid ELSE $1::uuid END, e.email, 'x'
         FROM (VALUES ('fresh-${newcomer.slice(0, 8)}@example.com'), ('eve@example.com')) e(email)`,
      [newcomer],
    );
    // Then the rows the triggers no longer see as the writer's are refused as the policy would
    for (const outcome of [slugs, signup]) {
      expect(outcome.error).toMatchObject({ code: '42501' });
      expect(outcome.error?.message).toMatch(/new row violates row-level security policy for table "(articles|users)"/);
    }
  });

  it('the visibility helpers answer false for a hidden row, as for a missing one', async () => {
    const rows = await as(actors.authorA, (tx) =>
      tx.rows(
        `SELECT media_usable($1) AS usable, comment_reply_allowed($2, $3) AS reply,
                      media_usable($4) AS usable_missing, comment_reply_allowed($5, $3) AS reply_missing`,
        [extra.privateUploadOfB, extra.hiddenReply, articles['a-published'], randomUUID(), randomUUID()],
      ),
    );
    expect(rows).toEqual([{ usable: false, reply: false, usable_missing: false, reply_missing: false }]);
  });

  it('the old slug oracle is gone', async () => {
    const outcome = await attack(actors.authorA, `SELECT article_slug_available('b-draft', NULL)`);
    expect(outcome.error).toMatchObject({ code: '42883' });
  });
});

describe('columns only the system sets', () => {
  it.each([
    `INSERT INTO articles (title, author_id, created_at) VALUES ('x', $1, '2000-01-01')`,
    `INSERT INTO articles (title, author_id, updated_at) VALUES ('x', $1, '2000-01-01')`,
    `UPDATE articles SET created_at = '2000-01-01' WHERE author_id = $1`,
    `UPDATE articles SET updated_at = '2000-01-01' WHERE author_id = $1`,
    `UPDATE articles SET id = gen_random_uuid() WHERE author_id = $1`,
    `INSERT INTO comments (article_id, body, status) SELECT id, 'x', 'hidden' FROM articles WHERE author_id = $1 AND status = 'published'`,
    `INSERT INTO comments (article_id, body, author_id) SELECT id, 'x', $1 FROM articles WHERE status = 'published' LIMIT 1`,
    `UPDATE comments SET author_id = $1`,
    `UPDATE comments SET article_id = article_id`,
    `UPDATE comments SET created_at = now()`,
    `INSERT INTO media (uploaded_by, mime_type, size_bytes) VALUES ($1, 'image/png', 1)`,
    `INSERT INTO media (storage_key, mime_type, size_bytes) VALUES ('media/mine' || $1, 'image/png', 1)`,
    `UPDATE media SET uploaded_by = $1`,
    `UPDATE media SET storage_key = 'media/elsewhere' WHERE uploaded_by = $1`,
    `UPDATE users SET created_at = '2000-01-01' WHERE id = $1`,
    `UPDATE users SET id = gen_random_uuid() WHERE id = $1`,
    `UPDATE author_profiles SET user_id = user_id WHERE user_id = $1`,
    `INSERT INTO article_revisions (article_id, revision_number, title, body, status, edited_by) SELECT id, 9, 'x', 'x', 'draft', $1 FROM articles WHERE author_id = $1 LIMIT 1`,
    `UPDATE article_tags SET created_at = now()`,
    `INSERT INTO article_tags (article_id, tag_id, created_at) SELECT a.id, t.id, '2000-01-01' FROM articles a, tags t WHERE a.author_id = $1 LIMIT 1`,
  ])('%s is refused for lack of the column privilege', async (sql) => {
    // Given author A (the staff too: these columns are nobody's) / When A writes a system column
    for (const actor of [actors.authorA, actors.admin]) {
      const outcome = await attack(actor, sql, sql.includes('$1') ? [actor.userId] : []);
      // Then PostgreSQL refuses the column
      expect(outcome.error, sql).toMatchObject({ code: '42501' });
      expect(outcome.error?.message).toContain('permission denied');
    }
  });

  it("the system fills in who did it: the uploader, the commenter, the revision's editor and its number", async () => {
    await as(actors.authorA, async (tx) => {
      const [upload] = await tx.rows<{ uploaded_by: string; storage_key: string }>(
        `INSERT INTO media (mime_type, size_bytes) VALUES ('image/png', 1) RETURNING uploaded_by, storage_key`,
      );
      const [comment] = await tx.rows<{ author_id: string; status: string }>(`INSERT INTO comments (article_id, body) VALUES ($1, 'x') RETURNING author_id, status`, [
        articles['b-published'],
      ]);
      await tx.rows(`UPDATE articles SET body = 'v2' WHERE id = $1`, [articles['a-review']]);
      await tx.rows(`UPDATE articles SET body = 'v3' WHERE id = $1`, [articles['a-review']]);
      const history = await tx.rows(`SELECT revision_number, edited_by FROM article_revisions WHERE article_id = $1 ORDER BY 1`, [articles['a-review']]);
      expect(upload).toEqual({ uploaded_by: ids.authorA, storage_key: expect.stringMatching(/^media\/[0-9a-f-]{36}$/) });
      expect(comment).toEqual({ author_id: ids.authorA, status: 'visible' });
      expect(history).toEqual([
        { revision_number: 1, edited_by: ids.authorA },
        { revision_number: 2, edited_by: ids.authorA },
      ]);
    });
  });
});

describe("publication rules: once published, an article is the staff's to unpublish, archive, re-slug or delete", () => {
  it.each([
    ['unpublish it', `UPDATE articles SET status = 'draft' WHERE id = $1`, 'only editors and admins unpublish or archive'],
    ['archive it', `UPDATE articles SET status = 'archived' WHERE id = $1`, 'only editors and admins unpublish or archive'],
    ['change its URL', `UPDATE articles SET slug = 'moved' WHERE id = $1`, 'only editors and admins change it'],
    ['regenerate its slug', `UPDATE articles SET slug = '' WHERE id = $1`, 'only editors and admins change it'],
    ['clear its publication date', `UPDATE articles SET published_at = NULL, status = 'review' WHERE id = $1`, 'can be moved but not cleared'],
  ])('an author cannot %s', async (_case, sql, message) => {
    const outcome = await attack(actors.authorA, sql, [articles['a-published']]);
    expect(outcome.error).toMatchObject({ code: '42501' });
    expect(outcome.error?.message).toContain(message);
  });

  it('an author cannot delete a published article, nor one the staff unpublished', async () => {
    await as(actors.authorA, async (tx) => {
      const published = await tx.affected(`DELETE FROM articles WHERE id = $1`, [articles['a-published']]);
      expect(published).toBe(0);
    });
    // Given A's article, published and then unpublished by an editor (published_at stays)
    const client = await owner.connect();
    const unpublished = randomUUID();
    try {
      await client.query(`INSERT INTO articles (id, slug, title, body, status, author_id, category_id, published_at) VALUES ($1, 'was-out', 't', 'b', 'draft', $2, $3, now())`, [
        unpublished,
        ids.authorA,
        ids.category,
      ]);
      // When A deletes it / Then nothing goes
      const deleted = await as(actors.authorA, (tx) => tx.affected(`DELETE FROM articles WHERE id = $1`, [unpublished]));
      expect(deleted).toBe(0);
    } finally {
      await client.query(`DELETE FROM articles WHERE id = $1`, [unpublished]);
      client.release();
    }
  });

  it('nobody clears published_at, the record that an article went out (so no author deletes it later)', async () => {
    // Given A's published article / When an editor unpublishes it and clears its publication time
    const outcome = await attack(actors.editor, `UPDATE articles SET status = 'draft', published_at = NULL WHERE id = $1`, [articles['a-published']]);
    // Then the guard keeps it; moving it (redating) stays the staff's
    expect(outcome.error).toMatchObject({ code: '42501' });
    expect(outcome.error?.message).toContain('can be moved but not cleared');
    expect((await attack(actors.editor, `UPDATE articles SET status = 'draft' WHERE id = $1`, [articles['a-published']])).rowCount).toBe(1);
  });

  it.each(['archived', 'published'])('an author cannot create an article %s', async (status) => {
    const outcome = await attack(actors.authorA, `INSERT INTO articles (title, author_id, status) VALUES ('x', $1, $2)`, [ids.authorA, status]);
    expect(outcome.error).toMatchObject({ code: '42501' });
  });
});

describe('every table has a policy for every command the application may run', () => {
  it('no table is granted to a platform role without row-level security forced and a policy for each granted command', async () => {
    // Given the catalog: every table of public and what each platform role may do with it
    const { rows } = await owner.query<{ table: string; role: string; command: string; forced: boolean; policies: number }>(`
      SELECT c.relname AS table, r.role, cmd.command, c.relrowsecurity AND c.relforcerowsecurity AS forced,
             (SELECT count(*)::int FROM pg_policy p
               WHERE p.polrelid = c.oid AND p.polcmd IN (cmd.code, '*')
                 AND r.role::regrole::oid = ANY (p.polroles)) AS policies
        FROM pg_class c
       CROSS JOIN (VALUES ('allixios_app'), ('allixios_readonly')) r(role)
       CROSS JOIN (VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')) cmd(command, code)
       WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
         AND (has_table_privilege(r.role, c.oid, cmd.command)
              OR (cmd.command IN ('SELECT', 'INSERT', 'UPDATE') AND has_any_column_privilege(r.role, c.oid, cmd.command)))
       ORDER BY 1, 2, 3`);
    // Then each such pair has row-level security forced and a policy for that command
    expect(rows.length).toBeGreaterThan(30);
    expect(rows.filter((row) => !row.forced || row.policies === 0)).toEqual([]);
  });

  const staffOnly: Array<[string, string, () => unknown[]]> = [
    ['rename a category', `UPDATE categories SET name = 'Defaced'`, () => []],
    ['delete a category', `DELETE FROM categories WHERE id = $1`, () => [ids.category]],
    ['create a category', `INSERT INTO categories (slug, name) VALUES ('x', 'x')`, () => []],
    ['rename a tag', `UPDATE tags SET name = 'Defaced'`, () => []],
    ['delete a tag (and the links of drafts it is on)', `DELETE FROM tags WHERE id = $1`, () => [extra.tag]],
    ['create a tag', `INSERT INTO tags (slug, name) VALUES ('x', 'x')`, () => []],
    ['delete an upload (and the covers that use it)', `DELETE FROM media WHERE id = $1`, () => [extra.coverOfBDraft]],
    ["describe someone else's upload", `UPDATE media SET alt_text = 'x' WHERE id = $1`, () => [extra.privateUploadOfB]],
    ['write statistics', `UPDATE daily_article_stats SET views = views + 1000`, () => []],
    ['delete a comment (one with a hidden reply)', `DELETE FROM comments WHERE id = $1`, () => [comments.onPublishedByReader]],
  ];

  it.each(staffOnly)('anonymous, readers and authors cannot %s', async (_case, sql, params) => {
    for (const actor of [actors.anonymous, actors.reader, actors.authorA, { role: null, userId: null } as Actor]) {
      // When a claim that is not staff tries it
      const outcome = await attack(actor, sql, params());
      // Then it is refused, or touches nothing, and no foreign key tells what hangs on the row
      if (outcome.error) expect(outcome.error.code, `${sql} as ${actor.role}`).toBe('42501');
      else expect(outcome.rowCount, `${sql} as ${actor.role}`).toBe(0);
    }
  });

  it('a reader deleting their own comment is refused without learning that it has a hidden reply', async () => {
    // Given the reader's comment, which has a hidden reply
    const outcome = await attack(actors.reader, `DELETE FROM comments WHERE id = $1`, [comments.onPublishedByReader]);
    // Then nothing is deleted and no foreign-key error names the reply
    expect(outcome).toEqual({ rows: [], rowCount: 0 });
  });

  it('an author sees the statistics of their own articles only; readers none', async () => {
    const read = (tx: Transaction) => tx.rows<{ article_id: string }>(`SELECT article_id FROM daily_article_stats ORDER BY views`);
    expect(await as(actors.authorA, read)).toEqual([{ article_id: articles['a-published'] }]);
    expect(await as(actors.reader, read)).toEqual([]);
    expect(await as(actors.anonymous, read)).toEqual([]);
    expect(await as(actors.editor, read)).toHaveLength(2);
  });

  it("media: A sees A's uploads and what visible articles show; B's private upload and B's draft cover stay hidden", async () => {
    const read = (tx: Transaction) => tx.rows<{ id: string }>(`SELECT id FROM media ORDER BY id`).then((rows) => rows.map((row) => row.id));
    expect(await as(actors.authorA, read)).toEqual([extra.uploadOfA]);
    expect(await as(actors.authorB, read)).toEqual([extra.privateUploadOfB, extra.coverOfBDraft].sort());
    expect(await as(actors.anonymous, read)).toEqual([]);
    expect(await as(actors.editor, read)).toHaveLength(3);
  });
});

describe('concurrency: checks that read other rows hold under concurrent transactions', () => {
  async function staffSession(isolation = 'READ COMMITTED'): Promise<pg.Client> {
    const client = await appClient();
    await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
    await claim(client, 'editor', ids.editor);
    return client;
  }

  it.each(['READ COMMITTED', 'REPEATABLE READ'])('two moves X under Y and Y under X (%s) never both commit', async (isolation) => {
    // Given two top-level categories
    const [x, y] = [randomUUID(), randomUUID()];
    await owner.query(`INSERT INTO categories (id, slug, name) VALUES ($1, $3, 'X'), ($2, $4, 'Y')`, [x, y, `x-${x.slice(0, 8)}`, `y-${y.slice(0, 8)}`]);
    const first = await staffSession(isolation);
    const second = await staffSession(isolation);
    try {
      // When one session moves X under Y and, before it commits, another moves Y under X
      await first.query(`UPDATE categories SET parent_id = $1 WHERE id = $2`, [y, x]);
      const secondMove = second.query(`UPDATE categories SET parent_id = $1 WHERE id = $2`, [x, y]).then(
        () => second.query('COMMIT').then(() => 'committed'),
        (error: pg.DatabaseError) => error.code,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const firstOutcome = await first.query('COMMIT').then(
        () => 'committed',
        (error: pg.DatabaseError) => error.code,
      );
      const secondOutcome = await secondMove;
      // Then one of them fails (a cycle refused, a deadlock or a serialization failure) and the tree has no cycle
      expect([firstOutcome, secondOutcome].filter((outcome) => outcome === 'committed')).toHaveLength(1);
      expect([firstOutcome, secondOutcome].filter((outcome) => outcome !== 'committed')[0]).toMatch(/^(23514|40P01|40001)$/);
      const { rows } = await owner.query<{ parent_id: string | null }>(`SELECT parent_id FROM categories WHERE id IN ($1, $2)`, [x, y]);
      expect(rows.filter((row) => row.parent_id === null)).toHaveLength(1);
    } finally {
      await first.query('ROLLBACK').catch(() => undefined);
      await second.query('ROLLBACK').catch(() => undefined);
      await Promise.all([first.end(), second.end()]);
      await owner.query(`UPDATE categories SET parent_id = NULL WHERE id IN ($1, $2)`, [x, y]);
      await owner.query(`DELETE FROM categories WHERE id IN ($1, $2)`, [x, y]);
    }
  });

  it.each(['READ COMMITTED', 'REPEATABLE READ'])('two transactions (%s) of one author slugging the same title get different slugs', async (isolation) => {
    const title = `Race ${randomUUID().slice(0, 8)}`;
    const [first, second] = [await appClient(), await appClient()];
    try {
      for (const client of [first, second]) {
        await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
        // (a snapshot taken now, before the other transaction commits its slug)
        await client.query('SELECT count(*) FROM articles');
        await claim(client, 'author', ids.authorA);
      }
      // When both insert the title with no slug, the second before the first commits
      const [{ slug: one }] = (await first.query<{ slug: string }>(`INSERT INTO articles (title, author_id) VALUES ($1, $2) RETURNING slug`, [title, ids.authorA])).rows as [
        { slug: string },
      ];
      const secondInsert = second.query<{ slug: string }>(`INSERT INTO articles (title, author_id) VALUES ($1, $2) RETURNING slug`, [title, ids.authorA]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await first.query('COMMIT');
      const two = (await secondInsert).rows[0]!.slug;
      await second.query('COMMIT');
      // Then the second waited for the first and took the next suffix
      expect([one, two]).toEqual([title.toLowerCase().replace(' ', '-'), `${title.toLowerCase().replace(' ', '-')}-2`]);
    } finally {
      await Promise.all([first.end(), second.end()]);
      await owner.query(`DELETE FROM articles WHERE title = $1`, [title]);
    }
  });

  it("an author's slug lock does not block another author writing the same title", async () => {
    const title = `Shared ${randomUUID().slice(0, 8)}`;
    const [holder, other] = [await appClient(), await appClient()];
    try {
      await holder.query('BEGIN');
      await claim(holder, 'author', ids.authorB);
      await holder.query(`INSERT INTO articles (title, author_id) VALUES ($1, $2)`, [title, ids.authorB]);
      // When A writes the same title while B's transaction stays open
      await other.query('BEGIN');
      await claim(other, 'author', ids.authorA);
      await other.query(`SET LOCAL lock_timeout = '1s'`);
      const { rows } = await other.query<{ slug: string }>(`INSERT INTO articles (title, author_id) VALUES ($1, $2) RETURNING slug`, [title, ids.authorA]);
      // Then A is not kept waiting, and gets the same slug
      expect(rows[0]!.slug).toBe(title.toLowerCase().replace(' ', '-'));
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await other.query('ROLLBACK').catch(() => undefined);
      await Promise.all([holder.end(), other.end()]);
    }
  });

  it('two signups with one e-mail address: one account', async () => {
    const email = `twin-${randomUUID().slice(0, 8)}@example.com`;
    const ids2 = [randomUUID(), randomUUID()];
    const [first, second] = [await appClient(), await appClient()];
    try {
      for (const [index, client] of [first, second].entries()) {
        await client.query('BEGIN');
        await claim(client, 'reader', ids2[index]!);
      }
      await first.query(`INSERT INTO users (id, email, display_name) VALUES ($1, $2, 'One')`, [ids2[0], email]);
      const secondSignup = second.query(`INSERT INTO users (id, email, display_name) VALUES ($1, $2, 'Two')`, [ids2[1], email]).then(
        () => 'inserted',
        (error: pg.DatabaseError) => `${error.code} ${error.message}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      await first.query('COMMIT');
      expect(await secondSignup).toBe('23505 an account with this e-mail address already exists');
    } finally {
      await second.query('ROLLBACK').catch(() => undefined);
      await Promise.all([first.end(), second.end()]);
      await owner.query(`DELETE FROM users WHERE email = $1`, [email]);
    }
  });
});

describe('shared primitives: locks, other databases, storage outside the tables, other sessions', () => {
  it.each([
    'SELECT pg_try_advisory_lock(7263001337)',
    'SELECT pg_advisory_lock(7263001337)',
    'SELECT pg_advisory_xact_lock(1, 2)',
    'SELECT pg_try_advisory_xact_lock_shared(7263001337)',
    'SELECT pg_advisory_unlock_all()',
    `SELECT app_transaction_lock('articles.slug', 'x')`,
    `SELECT lo_from_bytea(0, 'exfiltrated')`,
    'SELECT lo_create(0)',
    'SELECT lo_creat(-1)',
    `SELECT pg_notify('channel', 'payload')`,
    'SELECT pg_terminate_backend(pg_backend_pid())',
    'SELECT pg_cancel_backend(pg_backend_pid())',
    'SELECT pg_isolation_test_session_is_blocked(pg_backend_pid(), ARRAY[pg_backend_pid()])',
    `SET session_replication_role = replica`,
    `SET temp_file_limit = -1`,
    `ALTER ROLE allixios_app CONNECTION LIMIT -1`,
    `ALTER ROLE allixios_app SET temp_file_limit = -1`,
    `ALTER ROLE allixios_app SET app.user_role = 'admin'`,
    `SELECT * FROM allixios_bootstrap.ledger`,
    `SELECT * FROM app_private.article_slugs`,
    `EXPLAIN SELECT 1 FROM app_private.article_slugs WHERE slug > 'm'`,
    `CREATE TEMP TABLE articles (id uuid)`,
    `SELECT * FROM pg_stat_xact_user_tables`,
    `SELECT pg_stat_get_xact_tuples_fetched('articles'::regclass)`,
    `SELECT pg_stat_get_tuples_updated('articles'::regclass)`,
    `SELECT n_tup_upd FROM pg_stat_user_tables`,
    `SELECT * FROM pg_statio_user_tables`,
    `SELECT * FROM pg_stat_user_indexes`,
    `SELECT classid, objid FROM pg_locks`,
    `SELECT * FROM pg_lock_status()`,
    `SELECT query FROM pg_stat_activity`,
    `SELECT * FROM pg_stat_get_activity(NULL)`,
    `SELECT query FROM pg_stat_statements`,
  ])('the application cannot run: %s', async (sql) => {
    for (const actor of [actors.admin, { role: null, userId: null } as Actor]) {
      const outcome = await attack(actor, sql);
      expect(outcome.error, sql).toBeDefined();
      expect(outcome.error!.code).toMatch(/^(42501|55000|0A000|25001)$/);
    }
  });

  it('the application cannot keep a prepared transaction (and its locks) past its session', async () => {
    const client = await appClient();
    try {
      await client.query('BEGIN');
      await claim(client, 'author', ids.authorA);
      await client.query(`UPDATE articles SET excerpt = excerpt WHERE id = $1`, [articles['a-draft']]);
      const error = await client.query(`PREPARE TRANSACTION 'kept'`).then(
        () => undefined,
        (caught: pg.DatabaseError) => caught,
      );
      expect(error).toMatchObject({ code: '55000', message: 'prepared transactions are disabled' });
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  });

  it('reporting cannot take advisory locks, create large objects or read the statistics either', async () => {
    for (const sql of [
      'SELECT pg_try_advisory_lock(7263001337)',
      `SELECT lo_from_bytea(0, 'x')`,
      'SELECT * FROM pg_stat_xact_user_tables',
      'SELECT query FROM pg_stat_activity',
      'SELECT * FROM pg_locks',
    ]) {
      const error = await asReadonly((tx) => tx.failure(sql));
      expect(error).toMatchObject({ code: '42501' });
    }
  });

  it('a search finds nothing hidden, and no counter tells how many hidden rows it met', async () => {
    // Given B's drafts, which contain "zanzibar" (A's do too) / When B's words are searched by A
    const outcome = await as(actors.authorA, async (tx) => ({
      found: await tx.rows<{ slug: string }>(`SELECT slug FROM search_articles('zanzibar author b')`),
      counters: await tx.outcome(`SELECT idx_tup_fetch, seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'articles'`),
    }));
    // Then it returns none of B's drafts, and the per-transaction counters are out of reach
    expect(outcome.found).toEqual([]);
    expect(outcome.counters.error).toMatchObject({ code: '42501' });
  });

  it('the bootstrap (allixios_owner) still takes its lock and names its holder', async () => {
    const holder = await owner.query<{ pid: number }>(`SELECT count(*)::int AS pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)`);
    expect(holder.rows[0]!.pid).toBeGreaterThan(0);
    const { rows } = await owner.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(7263001337) AS locked');
    await owner.query('SELECT pg_advisory_unlock(7263001337)');
    expect(rows).toEqual([{ locked: true }]);
  });

  it.each(['postgres', 'template1'])('no platform role connects to the %s database', async (database) => {
    for (const role of ['allixios_app', 'allixios_readonly', 'allixios_owner'] as const) {
      const client = new pg.Client({ connectionString: server.url(role, database) });
      await expect(client.connect()).rejects.toThrow(`permission denied for database "${database}"`);
      await client.end().catch(() => undefined);
    }
  });

  it("the application cannot end or cancel the platform's other sessions", async () => {
    const other = await appClient();
    try {
      const { rows } = await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const outcome = await attack(actors.admin, 'SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      expect(outcome.error).toMatchObject({ code: '42501' });
      expect((await other.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
    } finally {
      await other.end();
    }
  });

  it('the roles run with the limits of the README, and cannot raise the ones PostgreSQL enforces', async () => {
    const limits = async (pool: pg.Pool) =>
      (
        await pool.query(`SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock,
        current_setting('idle_in_transaction_session_timeout') AS idle, current_setting('transaction_timeout') AS transaction,
        current_setting('temp_file_limit') AS temp, (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) AS connections`)
      ).rows[0];
    expect(await limits(app)).toEqual({ statement: '15s', lock: '5s', idle: '30s', transaction: '1min', temp: '512MB', connections: 150 });
    expect(await limits(readonly)).toEqual({ statement: '5min', lock: '10s', idle: '10min', transaction: '30min', temp: '2GB', connections: 10 });
  });
});

describe("what a compromised session leaves behind does not reach the platform's connections", () => {
  it("a role default the application sets on itself (row_security off) is overridden by DATABASE_URL's options", async () => {
    // Given the URL the stack exports for the platform, with its pinned options
    const spec = describeWithDefaults(postgresql, 'prod');
    const platformUrl = connectionUrl(spec.appConnection, EMBEDDED_PASSWORDS.allixios_app, '127.0.0.1', server.port);
    const superuser = new pg.Client({ connectionString: server.url('postgres') });
    await superuser.connect();
    try {
      // When a session of the application sets defaults for every later session of its role
      const attacker = await appClient();
      await attacker.query(`ALTER ROLE allixios_app SET row_security = off`);
      await attacker.query(`ALTER ROLE allixios_app IN DATABASE allixios SET statement_timeout = 0`);
      await attacker.end();
      // Then a plain connection of the role is broken by them, but the platform's is not
      const plain = await appClient();
      const broken = await plain.query('SELECT count(*) FROM articles').then(
        () => undefined,
        (error: pg.DatabaseError) => error,
      );
      await plain.end();
      const platform = new pg.Client({ connectionString: platformUrl });
      await platform.connect();
      const settings = await platform.query(
        `SELECT current_setting('row_security') AS rls, current_setting('statement_timeout') AS timeout, count(*)::int AS published FROM articles WHERE status = 'published'`,
      );
      await platform.end();
      expect(broken).toMatchObject({ code: '42501' });
      expect(settings.rows).toEqual([{ rls: 'on', timeout: '15s', published: 2 }]);
    } finally {
      await superuser.query(`ALTER ROLE allixios_app RESET row_security`);
      await superuser.query(`ALTER ROLE allixios_app IN DATABASE allixios RESET statement_timeout`);
      await superuser.end();
    }
  });

  it("DATABASE_URL pins exactly the role's own defaults from initdb/10-roles.sh", async () => {
    const { rows } = await owner.query<{ rolconfig: string[] }>(`SELECT rolconfig FROM pg_roles WHERE rolname = 'allixios_app'`);
    const pinned = APP_SESSION_OPTIONS.split(/\s*-c\s+/).filter(Boolean);
    const roleDefaults = rows[0]!.rolconfig.filter((setting) => !setting.startsWith('temp_file_limit'));
    const notRoleDefaults = [
      'row_security=on',
      'default_transaction_read_only=off',
      'debug_print_parse=off',
      'debug_print_rewritten=off',
      'debug_print_plan=off',
      'client_min_messages=notice',
      'search_path=public',
    ];
    expect(pinned.filter((setting) => !notRoleDefaults.includes(setting))).toEqual(roleDefaults);
  });
});

describe('a claim holds for its own transaction only', () => {
  it('a claim left in the session (set_config(..., false)) does not reach the next transaction of a pooled connection', async () => {
    const client = await appClient();
    try {
      // Given a request whose injected statement sets an admin claim for the whole session,
      // stamp included, and commits
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.user_role', 'admin', false), set_config('app.user_id', $1, false), set_config('app.claimed_in', app_transaction_stamp(), false)`, [
        ids.admin,
      ]);
      await client.query('COMMIT');
      // When the next request on that connection claims nothing (anonymous)
      await client.query('BEGIN');
      const users = await client.query(`SELECT email FROM users`);
      const published = await client.query(`SELECT slug FROM articles`);
      const write = await client.query(`UPDATE categories SET name = name`);
      await client.query('ROLLBACK');
      // Then the leftover claim is not believed: no policy lets anything through, not even what
      // an anonymous visitor sees, and nothing is written (app_claim() is what raises on a bad
      // claim; a policy that raised would tell which rows reached it)
      expect([users.rowCount, published.rowCount, write.rowCount]).toEqual([0, 0, 0]);
      // And a request that claims for itself works as usual
      await client.query('BEGIN');
      await claim(client, 'reader', ids.reader);
      const { rows } = await client.query(`SELECT email FROM users`);
      await client.query('COMMIT');
      expect(rows).toEqual([{ email: 'rita@example.com' }]);
    } finally {
      await client.end();
    }
  });

  it('a claim outside any transaction block lasts one statement only', async () => {
    const client = await appClient();
    try {
      await client.query(`SELECT app_claim($1, 'admin')`, [ids.admin]);
      const { rows } = await client.query(`SELECT count(*)::int AS users FROM users`);
      expect(rows).toEqual([{ users: 0 }]);
    } finally {
      await client.end();
    }
  });
});

describe('plans and statistics tell nothing about hidden text', () => {
  /** The rows a plan's scans of articles met and the rows their filters removed. */
  async function probe(tx: Transaction, sql: string, params: unknown[]): Promise<{ returned: number; removed: number }> {
    const [row] = await tx.rows<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
    const nodes: PlanNode[] = [];
    const walk = (node: PlanNode) => {
      nodes.push(node);
      for (const child of node.Plans ?? []) walk(child);
    };
    walk(row!['QUERY PLAN'][0]!.Plan);
    const scans = nodes.filter((node) => node['Relation Name'] === 'articles');
    return {
      returned: Math.round(scans.reduce((sum, node) => sum + node['Actual Rows'], 0)),
      removed: scans.reduce((sum, node) => sum + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0), 0),
    };
  }
  interface PlanNode {
    'Relation Name'?: string;
    'Actual Rows': number;
    'Rows Removed by Filter'?: number;
    'Rows Removed by Index Recheck'?: number;
    Plans?: PlanNode[];
  }

  it("EXPLAIN ANALYZE of slug ranges cannot spell out a hidden draft's slug", async () => {
    await as(actors.authorA, async (tx) => {
      // Given B's draft "b-draft" and an attacker free to steer the planner to any index
      await tx.rows('SET LOCAL enable_seqscan = off');
      await tx.rows('SET LOCAL enable_bitmapscan = off');
      // When A probes the ranges on either side of it, as a binary search would
      const below = await probe(tx, `SELECT 1 FROM articles WHERE slug < $1`, ['b-draft']);
      const above = await probe(tx, `SELECT 1 FROM articles WHERE slug >= $1`, ['b-draft']);
      // Then each probe meets every row of the table (no index holds unpublished slugs), so what
      // it removed is everything it did not return: nothing tells on which side B's slug lies
      const total = (await owner.query<{ total: number }>('SELECT count(*)::int AS total FROM articles')).rows[0]!.total;
      expect(below.returned + below.removed).toBe(total);
      expect(above.returned + above.removed).toBe(total);
    });
  });

  it("EXPLAIN's estimates cannot spell out hidden slugs or e-mail addresses", async () => {
    // Given 200 hidden drafts of B whose slugs share a prefix, 200 accounts whose addresses share
    // one, and fresh statistics
    const marker = `zq${randomUUID().slice(0, 6)}`;
    await owner.query(`INSERT INTO articles (slug, title, body, author_id) SELECT $1 || '-' || i, 'Hidden ' || i, 'Codename ' || $1, $2 FROM generate_series(1, 200) i`, [
      marker,
      ids.authorB,
    ]);
    await owner.query(`INSERT INTO users (email, display_name) SELECT $1 || i || '@corp.example', 'Hidden ' || i FROM generate_series(1, 200) i`, [marker]);
    await owner.query('ANALYZE articles, users');
    try {
      const estimate = async (sql: string, value: string) => {
        const [row] = await as(actors.anonymous, (tx) => tx.rows<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(`EXPLAIN (FORMAT JSON) ${sql}`, [value]));
        return row!['QUERY PLAN'][0]!.Plan['Plan Rows'];
      };
      // When an anonymous visitor asks the planner how many rows lie on either side of the prefix
      const pairs = [
        [await estimate(`SELECT 1 FROM articles WHERE slug < $1`, marker), await estimate(`SELECT 1 FROM articles WHERE slug >= $1`, marker)],
        [await estimate(`SELECT 1 FROM articles WHERE slug = $1`, `${marker}-7`), await estimate(`SELECT 1 FROM articles WHERE slug = $1`, 'no-such-slug')],
        [await estimate(`SELECT 1 FROM users WHERE email < $1`, marker), await estimate(`SELECT 1 FROM users WHERE email >= $1`, marker)],
        [await estimate(`SELECT 1 FROM users WHERE lower(email) < $1`, marker), await estimate(`SELECT 1 FROM users WHERE lower(email) >= $1`, marker)],
        // and the words of hidden text, which search_vector holds: a word of every hidden draft
        // and a word no article has
        [
          await estimate(`SELECT 1 FROM articles WHERE search_vector @@ plainto_tsquery('english', $1)`, marker),
          await estimate(`SELECT 1 FROM articles WHERE search_vector @@ plainto_tsquery('english', $1)`, 'xyzzyplugh'),
        ],
        [
          await estimate(`SELECT 1 FROM articles WHERE search_vector @@ to_tsquery('english', $1)`, `${marker.slice(0, 4)}:*`),
          await estimate(`SELECT 1 FROM articles WHERE search_vector @@ to_tsquery('english', $1)`, 'xyzz:*'),
        ],
      ];
      // Then the planner has no statistics of that text: both sides get the same estimate
      for (const [one, other] of pairs) expect(one).toBe(other);
    } finally {
      await owner.query(`DELETE FROM articles WHERE slug LIKE $1 || '-%'`, [marker]);
      await owner.query(`DELETE FROM users WHERE email LIKE $1 || '%'`, [marker]);
    }
  });

  it('pg_stats shows nothing of a table whose rows the policies filter', async () => {
    await owner.query('ANALYZE articles, users, comments');
    const rows = await as(actors.authorA, (tx) => tx.rows(`SELECT tablename, attname FROM pg_stats WHERE tablename IN ('articles', 'users', 'comments', 'media')`));
    expect(rows).toEqual([]);
  });
});
