/**
 * Side channels of the PostgreSQL security contract (databases/postgresql/README.md, "Threat
 * model"), on a real PostgreSQL 18 with the platform's roles and assets: a third red-team pass
 * (a helper acting as an attacker), whose every hole (schemas/V0019, indexes/V0020, the roles
 * script, DATABASE_URL's pinned options) is kept here as the attack that found it.
 *
 * Same rules as test/postgresql-attacks.test.ts: the attacker holds allixios_app (or
 * allixios_readonly) and sends any statement under an honest claim; every case asserts the
 * SECURE behaviour, so a case that fails is a hole. Forged claims, timing, DoS, pooled-connection
 * state, "e-mail taken" and counts/ids through EXPLAIN ANALYZE of non-text columns are out of scope
 * and not asserted here.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_PASSWORDS, type EmbeddedPostgresServer } from '../bootstrap/embedded/postgresql.ts';
import { connectionUrl } from '../databases/connection.ts';
import { postgresql } from '../databases/postgresql/index.ts';
import { describeWithDefaults } from './support/engines.ts';
import { claim } from './support/postgres.ts';
import { appClient as appClientOf, attacker, everything, shape } from './support/attacker.ts';
import { actors, articles, as, asReadonly, comments, ids, owner, startWorld, stopWorld, type Actor, type Transaction } from './support/platform-world.ts';

/** Values hidden from everyone but their owner (and the staff). */
const HIDDEN: ReadonlyArray<[value: string, ownerOf: string]> = [
  ['zanzibar of author b', ids.authorB],
  ['Off-topic rant', ids.authorB],
  ['quokkasecret', ids.authorB],
  ['Merger memo', ids.authorB],
  ['ben@example.com', ids.authorB],
  ['eve@example.com', ids.editor],
  ['adam@example.com', ids.admin],
  ['rita@example.com', ids.reader],
  ['ann@example.com', ids.authorA],
  ['HIDDEN-REPLY-TEXT', ids.authorB],
  ['COMMENT-ON-WITHDRAWN', ids.editor],
  ['SECRET-ALT-OF-B', ids.authorB],
  ['media/private-b', ids.authorB],
  ['media/cover-b-draft', ids.authorB],
];

const extra = {
  hiddenReply: randomUUID(),
  privateUploadOfB: randomUUID(),
  coverOfBDraft: randomUUID(),
  uploadOfA: randomUUID(),
  secretDraftOfB: randomUUID(),
  withdrawnOfB: randomUUID(),
};

let server: EmbeddedPostgresServer;

const { attack, expectNothingHidden } = attacker(HIDDEN);
const appClient = () => appClientOf(server);

interface PlanNode {
  'Node Type'?: string;
  'Relation Name'?: string;
  'Plan Rows': number;
  'Actual Rows': number;
  'Rows Removed by Filter'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

async function plan(tx: Transaction, sql: string, params: unknown[] = [], options = 'ANALYZE, FORMAT JSON'): Promise<PlanNode> {
  const [row] = await tx.rows<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (${options}) ${sql}`, params);
  return row!['QUERY PLAN'][0]!.Plan;
}

function nodes(root: PlanNode): PlanNode[] {
  const all: PlanNode[] = [];
  const walk = (node: PlanNode) => {
    all.push(node);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(root);
  return all;
}

/** Rows the scans of `relation` met and threw away (the policy's filter). */
function removed(root: PlanNode, relation: string): number {
  return nodes(root)
    .filter((node) => node['Relation Name'] === relation)
    .reduce((sum, node) => sum + (node['Rows Removed by Filter'] ?? 0), 0);
}

/** Whether the policy's claim InitPlans ran: only when some row reached the policy's filter. */
function policyRan(root: PlanNode): boolean {
  return nodes(root).some(
    (node) => (node as { 'Parent Relationship'?: string })['Parent Relationship'] === 'InitPlan' && ((node as { 'Actual Loops'?: number })['Actual Loops'] ?? 0) > 0,
  );
}

/**
 * The smallest value of `column` among the rows `where` selects, spelled out one character at a
 * time by asking only whether any row, hidden or not, lies in [prefix, prefix + c).
 */
async function spellSmallest(exists: (low: string, high: string) => Promise<boolean>, maxLength = 80): Promise<string> {
  let prefix = '';
  for (let position = 0; position < maxLength; position += 1) {
    if (await exists(prefix, prefix + ' ')) break; // the smallest value is the prefix itself
    let [low, high] = [0x20, 0x7e];
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (!(await exists(prefix, prefix + String.fromCharCode(middle)))) low = middle;
      else high = middle - 1;
    }
    prefix += String.fromCharCode(low);
  }
  return prefix;
}

/**
 * Notices of plan dumps (debug_print_plan) with their constants decoded: a dump prints a text
 * constant as its bytes (":constvalue 29 [ 116 0 0 0 118 105 ... ]") and wraps its lines at a
 * fixed width, inside numbers too.
 */
function decodeDump(notices: string[]): string {
  const joined = notices.join(' ');
  const constants = [...joined.matchAll(/:constvalue \d+ \[([\d\s]+)\]/g)].map((match) =>
    Buffer.from(match[1]!.replace(/\n\s*/g, '').trim().split(/\s+/).map(Number)).toString('latin1'),
  );
  return `${joined}\n${constants.join('\n')}`;
}

beforeAll(async () => {
  server = await startWorld();
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
  // B's secret draft: words that appear in no article anyone but B (and the staff) can see.
  await owner.query(`INSERT INTO articles (id, slug, title, body, author_id) VALUES ($1, 'b-secret', 'Merger memo', 'Codename quokkasecret acquisition of Initech', $2)`, [
    extra.secretDraftOfB,
    ids.authorB,
  ]);
  // B rewrites the memo: the replaced text goes into B's (hidden) history
  await owner.query(`UPDATE articles SET body = 'Codename quokkasecret, second draft' WHERE id = $1`, [extra.secretDraftOfB]);
  // A visible comment on an article that is no longer published (written while it was; the
  // staff have since unpublished it): hidden from everyone but its author and the staff.
  await owner.query(
    `INSERT INTO articles (id, slug, title, body, author_id, status, published_at, category_id) VALUES ($1, 'b-withdrawn', 'Withdrawn', 'Gone again', $2, 'published', now(), $3)`,
    [extra.withdrawnOfB, ids.authorB, ids.category],
  );
  await owner.query(`INSERT INTO comments (article_id, author_id, body) VALUES ($1, $2, 'COMMENT-ON-WITHDRAWN')`, [extra.withdrawnOfB, ids.editor]);
  await owner.query(`UPDATE articles SET status = 'archived' WHERE id = $1`, [extra.withdrawnOfB]);
}, 120_000);

afterAll(stopWorld);

/**
 * Runs `work` with 3000 more published articles, so that a search reads a GIN index (as it does
 * on a real platform) rather than scanning a table this small; removes them after.
 */
async function withManyPublishedArticles<T>(work: () => Promise<T>): Promise<T> {
  await owner.query(
    `INSERT INTO articles (slug, title, body, author_id, category_id, status, published_at)
     SELECT 'many-' || i, 'Many ' || i, 'ordinary published words ' || i, $1, $2, 'published', now() FROM generate_series(1, 3000) i`,
    [ids.authorA, ids.category],
  );
  try {
    // (VACUUM moves the new entries out of the GIN indexes' pending lists, as autovacuum would)
    await owner.query('VACUUM ANALYZE articles');
    return await work();
  } finally {
    await owner.query(`DELETE FROM articles WHERE slug LIKE 'many-%'`);
  }
}

/**
 * How much work a plan did beside scanning: the loops of its subplans and the buffers it
 * touched, which a policy's per-row look at another table (an EXISTS, a SECURITY DEFINER
 * helper) adds to for every row that reaches it.
 */
function work(root: PlanNode): number {
  const loops = nodes(root)
    .filter((node) => ['SubPlan', 'InitPlan'].includes((node as { 'Parent Relationship'?: string })['Parent Relationship'] ?? ''))
    .reduce((sum, node) => sum + ((node as { 'Actual Loops'?: number })['Actual Loops'] ?? 0), 0);
  return loops + (root['Shared Hit Blocks'] ?? 0) + (root['Shared Read Blocks'] ?? 0);
}

describe('a policy that looks at another table per row would count the hidden rows it meets', () => {
  // Where a row's visibility depends on another table (a comment on its article, a revision on
  // its article's author, a file on the articles that show it), checking it per row makes the
  // check's own work (EXPLAIN (ANALYZE, BUFFERS): subplan loops, buffers) tell whether any row
  // passed the query's own conditions. The system keeps what the check needs on the row itself
  // (schemas/V0019), so no work is done per row but the comparison.
  const cases: Array<[what: string, actor: Actor, table: string, column: string, where: string, hiddenQuery: string]> = [
    [
      'a visible comment on a withdrawn article, to an anonymous visitor',
      actors.anonymous,
      'comments',
      'body',
      `status = 'visible'`,
      `SELECT c.body AS value FROM comments c JOIN articles a ON a.id = c.article_id WHERE a.status <> 'published'`,
    ],
    [
      "the revisions of B's articles, to author A",
      actors.authorA,
      'article_revisions',
      'body',
      'true',
      `SELECT r.body AS value FROM article_revisions r JOIN articles a ON a.id = r.article_id WHERE a.author_id <> '${ids.authorA}'`,
    ],
    [
      "the alt text of B's private upload, to author A, through buffers",
      actors.authorA,
      'media',
      'alt_text',
      'true',
      `SELECT alt_text AS value FROM media WHERE uploaded_by <> '${ids.authorA}' AND NOT public_use`,
    ],
  ];

  it.each(cases)('EXPLAIN (ANALYZE, BUFFERS) cannot spell out %s', async (_what, actor, table, column, where, hiddenQuery) => {
    const hidden = (await owner.query<{ value: string }>(hiddenQuery)).rows.map((row) => row.value);
    expect(hidden.length).toBeGreaterThan(0);
    const recovered = await as(actor, async (tx) => {
      const measure = async (low: string, high: string) => {
        const counts: number[] = [];
        for (let i = 0; i < 3; i += 1)
          counts.push(work(await plan(tx, `SELECT 1 FROM ${table} WHERE ${where} AND ${column} >= $1 AND ${column} < $2`, [low, high], 'ANALYZE, BUFFERS, FORMAT JSON')));
        return Math.min(...counts);
      };
      const nothing = await measure('~~~~~~', '~~~~~~~');
      return spellSmallest(async (low, high) => (await measure(low, high)) > nothing, 40);
    });
    expect(hidden, `spelled out the hidden value "${recovered}"`).not.toContain(recovered);
    expect(
      hidden.some((value) => recovered.length >= 4 && value.startsWith(recovered)),
      `spelled out the start of a hidden value: "${recovered}"`,
    ).toBe(false);
  });
});

describe('HOLES: the policy runs after cheap leakproof quals, and EXPLAIN ANALYZE shows whether it ran', () => {
  // PostgreSQL evaluates a cheap LEAKPROOF qual (text's <, >=, =) of the query before the
  // policy (createplan.c, order_qual_clauses), and the policy's claim InitPlans
  // ((SELECT app_current_role()), (SELECT app_current_user_id())) run lazily, on the first row
  // that reaches the policy. EXPLAIN ANALYZE prints them "never executed" when no row, hidden
  // or not, passed the query's own quals: one bit per probe about hidden text, enough to spell
  // out any text column of any hidden row, under any claim, without statistics or an index.
  const cases: Array<[what: string, actor: Actor, table: string, column: string, where: string, hiddenQuery: string]> = [
    [
      "B's hidden draft body, to an anonymous visitor",
      actors.anonymous,
      'articles',
      'body',
      `status <> 'published'`,
      `SELECT body AS value FROM articles WHERE status <> 'published'`,
    ],
    [
      "B's hidden titles, to author A",
      actors.authorA,
      'articles',
      'title',
      `author_id = '${ids.authorB}' AND status <> 'published'`,
      `SELECT title AS value FROM articles WHERE author_id = '${ids.authorB}' AND status <> 'published'`,
    ],
    ['e-mail addresses, to an anonymous visitor', actors.anonymous, 'users', 'email', 'true', `SELECT email AS value FROM users`],
    ['a moderated comment, to an anonymous visitor', actors.anonymous, 'comments', 'body', `status <> 'visible'`, `SELECT body AS value FROM comments WHERE status <> 'visible'`],
    [
      "the alt text of B's private upload, to author A",
      actors.authorA,
      'media',
      'alt_text',
      `uploaded_by <> '${ids.authorA}'`,
      `SELECT alt_text AS value FROM media WHERE uploaded_by <> '${ids.authorA}'`,
    ],
    ['the revision history, to a reader', actors.reader, 'article_revisions', 'body', 'true', `SELECT body AS value FROM article_revisions`],
  ];

  it.each(cases)('EXPLAIN ANALYZE cannot spell out %s', async (_what, actor, table, column, where, hiddenQuery) => {
    const hidden = (await owner.query<{ value: string }>(hiddenQuery)).rows.map((row) => row.value);
    expect(hidden.length).toBeGreaterThan(0);
    const recovered = await as(actor, (tx) =>
      spellSmallest(async (low, high) => policyRan(await plan(tx, `SELECT 1 FROM ${table} WHERE ${where} AND ${column} >= $1 AND ${column} < $2`, [low, high]))),
    );
    expect(hidden, `spelled out the hidden value "${recovered}"`).not.toContain(recovered);
  });

  it("nor does a claim broken on purpose: the policy raises only when a hidden row passed the query's own quals", async () => {
    // (No EXPLAIN at all: an invalid role grants nothing, and README says the policy raises on
    // "the first row it looks at"; which rows it looks at is the attacker's to choose.)
    const probe = (low: string, high: string) =>
      as(actors.anonymous, async (tx) => {
        await tx.rows(`SELECT set_config('app.user_role', 'not-a-role', true)`);
        return (await tx.outcome(`SELECT 1 FROM articles WHERE status <> 'published' AND body >= $1 AND body < $2`, [low, high])).error !== undefined;
      });
    const hidden = (await owner.query<{ value: string }>(`SELECT body AS value FROM articles WHERE status <> 'published'`)).rows.map((row) => row.value);
    const recovered = await spellSmallest(probe, 30);
    expect(
      hidden.some((body) => recovered.length > 3 && body.startsWith(recovered)),
      `spelled out the start of a hidden body: "${recovered}"`,
    ).toBe(false);
  });
});

describe('HOLES: plans and statistics still spell out hidden text', () => {
  it("EXPLAIN ANALYZE range probes on the storage keys cannot spell out a hidden upload's storage key", async () => {
    // Given B's private uploads, whose storage keys A may not see (media.storage_key has no
    // statistics, but the unique index holds every key and text's < / >= are leakproof)
    const hiddenKeys = (await owner.query<{ storage_key: string }>(`SELECT storage_key FROM media WHERE uploaded_by <> $1`, [ids.authorA])).rows.map((row) => row.storage_key);
    const recovered = await as(actors.authorA, async (tx) => {
      await tx.rows('SET LOCAL enable_seqscan = off');
      await tx.rows('SET LOCAL enable_bitmapscan = off');
      // hidden keys in [start, s): the rows the index scan met and the policy removed
      const start = 'media/';
      const below = async (s: string) => removed(await plan(tx, `SELECT 1 FROM media WHERE storage_key >= $1 AND storage_key < $2`, [start, s]), 'media');
      // When A bisects, character by character, for the smallest key at or after 'media/'
      let prefix = start;
      for (let position = 0; position < 80; position += 1) {
        if ((await below(prefix + ' ')) > 0) break; // the smallest hidden key is the prefix itself
        let [low, high] = [0x20, 0x7e]; // invariant: the key is >= prefix + chr(low)
        while (low < high) {
          const middle = Math.ceil((low + high) / 2);
          if ((await below(prefix + String.fromCharCode(middle))) === 0) low = middle;
          else high = middle - 1;
        }
        prefix += String.fromCharCode(low);
      }
      return prefix;
    });
    // Then nothing A recovers is the key of a hidden upload
    expect(hiddenKeys, `A spelled out the hidden storage key "${recovered}"`).not.toContain(recovered);
  });

  it("a reader cannot spell out other users' e-mail addresses from the order of an index on e-mail addresses", async () => {
    // Given the addresses hidden from the reader
    const hiddenAddresses = (await owner.query<{ email: string }>(`SELECT lower(email) AS email FROM users WHERE id <> $1`, [ids.reader])).rows.map((row) => row.email);
    // The ORDER BY needs no leakproof qual: an index scan in lower(email) order stops at the
    // reader's own row (LIMIT 1), so "Rows Removed by Filter" is the number of hidden addresses
    // that sort before it; the reader moves its own address (in its own transaction) as a pivot.
    const alphabet = [...Array(0x7e - 0x21 + 1)].map((_, i) => String.fromCharCode(0x21 + i)).filter((c) => !/[A-Z]/.test(c));
    const recovered = await as(actors.reader, async (tx) => {
      await tx.rows('SET LOCAL enable_seqscan = off');
      await tx.rows('SET LOCAL enable_sort = off');
      await tx.rows('SET LOCAL enable_bitmapscan = off');
      /** How many hidden addresses sort before `pivot` (undefined: the pivot is taken). */
      const before = async (pivot: string): Promise<number | undefined> => {
        const moved = await tx.outcome(`UPDATE users SET email = $1 WHERE id = $2`, [pivot, ids.reader]);
        if (moved.error) return undefined;
        return removed(await plan(tx, `SELECT 1 FROM users ORDER BY lower(email) LIMIT 1`), 'users');
      };
      /** Whether the smallest hidden address m >= prefix + c (prefix is a prefix of m). */
      const atLeast = async (prefix: string, c: string): Promise<boolean> => {
        const index = alphabet.indexOf(c);
        const hasAt = prefix.includes('@');
        if (index === 0) {
          // m >= prefix + '!' <=> m is longer than the prefix
          if (!hasAt || prefix.endsWith('@')) return true;
          return (await before(prefix)) !== undefined;
        }
        let previous = alphabet[index - 1]!;
        if (hasAt && previous === '@') previous = alphabet[index - 2]!;
        const pivot = previous === '@' ? `${prefix}@~~~~~~~~` : `${prefix}${previous}~~~~~~~~${hasAt ? '' : '@~'}`;
        return (await before(pivot)) === 0;
      };
      let prefix = '';
      for (let position = 0; position < 64; position += 1) {
        const candidates = prefix.includes('@') ? alphabet.filter((c) => c !== '@') : alphabet;
        if (!(await atLeast(prefix, candidates[0]!))) break;
        let [low, high] = [0, candidates.length - 1];
        while (low < high) {
          const middle = Math.ceil((low + high) / 2);
          if (await atLeast(prefix, candidates[middle]!)) low = middle;
          else high = middle - 1;
        }
        prefix += candidates[low];
      }
      return prefix;
    });
    expect(hiddenAddresses, `the reader spelled out the hidden address "${recovered}"`).not.toContain(recovered);
  });

  it("a visitor's search reads no index that holds an unpublished article, whatever the table's size", async () => {
    // Given enough published articles that the search reads a GIN index, and the statement
    // inside search_articles() as it runs: as its owner, with an anonymous visitor's claim
    await withManyPublishedArticles(async () => {
      const [definition] = (await owner.query<{ body: string }>(`SELECT prosrc AS body FROM pg_proc WHERE oid = 'public.search_articles(text, integer)'::regprocedure`)).rows;
      const body = definition!.body.replace(/\bsearch_articles\.query\b/g, '$1::text').replace(/\bsearch_articles\.max_results\b/g, '20');
      const publishedOnly = new Set(
        (
          await owner.query<{ name: string }>(`SELECT indexname AS name FROM pg_indexes WHERE tablename = 'articles' AND indexdef LIKE '%WHERE (status = ''published''::text)'`)
        ).rows.map((row) => row.name),
      );
      const client = new pg.Client({ connectionString: server.url('allixios_owner') });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SELECT app_claim(NULL, 'anonymous')`);
        const [row] = (await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${body}`, ['quokkasecret'])).rows;
        await client.query('ROLLBACK');
        // When the visitor searches for a word of B's secret draft
        const read = nodes(row!['QUERY PLAN'][0]!.Plan).filter((node) => ((node as { 'Actual Loops'?: number })['Actual Loops'] ?? 0) > 0);
        const indexes = read.map((node) => (node as { 'Index Name'?: string })['Index Name']).filter((name): name is string => name !== undefined && name.startsWith('articles_'));
        // Then the indexes it read hold published articles only (the GIN index among them)
        expect(indexes).toContain('articles_published_search_idx');
        expect(indexes.filter((name) => !publishedOnly.has(name))).toEqual([]);
      } finally {
        await client.end();
      }
    });
  });

  it('EXPLAIN (ANALYZE, BUFFERS) of search_articles() does not tell which words hidden drafts contain', async () => {
    // Given B's secret draft ("Merger memo ... quokkasecret acquisition of Initech") and A's and
    // B's drafts ("zanzibar"), none visible to an anonymous visitor, among enough published
    // articles that the search reads a GIN index (as it does on a real platform), not a scan
    const buffers = (root: PlanNode) => (root['Shared Hit Blocks'] ?? 0) + (root['Shared Read Blocks'] ?? 0);
    const result = await withManyPublishedArticles(() =>
      as(actors.anonymous, async (tx) => {
        // (a plan made for today's table: the session may hold one from before the fillers)
        await tx.rows('DISCARD PLANS');
        // (the first calls also read the catalog and build the function's cached plan)
        for (let i = 0; i < 10; i += 1) await plan(tx, `SELECT * FROM search_articles($1)`, [`warm${i}`], 'ANALYZE, BUFFERS, FORMAT JSON');
        const measure = async (word: string) => {
          const counts: number[] = [];
          for (let i = 0; i < 5; i += 1) counts.push(buffers(await plan(tx, `SELECT * FROM search_articles($1)`, [word], 'ANALYZE, BUFFERS, FORMAT JSON')));
          return Math.min(...counts);
        };
        const baseline = await measure('xyzzyplugh');
        const found: string[] = [];
        // When the visitor tries a dictionary of words through the SECURITY DEFINER search
        for (const word of ['quokkasecret', 'initech', 'merger', 'zanzibar', 'wombat', 'teapot']) {
          const rows = await tx.rows(`SELECT 1 FROM search_articles($1)`, [word]);
          if (rows.length === 0 && (await measure(word)) !== baseline) found.push(word);
        }
        return found;
      }),
    );
    // Then no word of a hidden draft stands out: the buffers the definer's plan touched before
    // article_visible() filtered are not the caller's to count
    expect(result, `words of hidden drafts told apart by buffer counts: ${result.join(', ')}`).toEqual([]);
  });

  it('EXPLAIN estimates on media.mime_type do not tell the file types of hidden uploads', async () => {
    // Given 300 uploads of B, none shown anywhere, of a telling type, and fresh statistics
    await owner.query(`INSERT INTO media (uploaded_by, mime_type, size_bytes) SELECT $1, 'application/vnd.acme-merger', 5 FROM generate_series(1, 300)`, [ids.authorB]);
    await owner.query('ANALYZE media');
    try {
      const estimate = (value: string) => as(actors.anonymous, async (tx) => (await plan(tx, `SELECT 1 FROM media WHERE mime_type = $1`, [value], 'FORMAT JSON'))['Plan Rows']);
      // When an anonymous visitor asks the planner about a type nobody has and the telling one
      const telling = await estimate('application/vnd.acme-merger');
      const none = await estimate('application/vnd.nothing-here');
      // Then the estimates are alike (the column has no statistics, like alt_text and storage_key)
      expect(telling).toBe(none);
    } finally {
      await owner.query(`DELETE FROM media WHERE mime_type = 'application/vnd.acme-merger'`);
      await owner.query('ANALYZE media');
    }
  });
});

describe('HOLES: shared primitives', () => {
  it('neither the application nor reporting (in its read-only transaction) writes WAL records with pg_logical_emit_message()', async () => {
    // Like pg_notify and the large objects: storage outside every table, unbounded, and here
    // open even to the read-only reporting role inside a read-only transaction
    const fromApp = await attack(actors.admin, `SELECT pg_logical_emit_message(false, 'allixios', repeat('x', 1000))`);
    const fromReporting = await asReadonly((tx) => tx.outcome(`SELECT pg_logical_emit_message(false, 'allixios', repeat('x', 1000))`));
    expect(fromApp.error?.code).toBe('42501');
    expect(fromReporting.error?.code).toBe('42501');
  });
});

describe("HOLES: what a compromised session sets for its role reaches the platform's connections", () => {
  it("a role default (debug_print_plan, client_min_messages) does not make the platform's sessions dump their bind values", async () => {
    // Given the URL the stack exports for the platform, with its pinned options
    const spec = describeWithDefaults(postgresql, 'prod');
    const platformUrl = connectionUrl(spec.appConnection, EMBEDDED_PASSWORDS.allixios_app, '127.0.0.1', server.port);
    const superuser = new pg.Client({ connectionString: server.url('postgres') });
    await superuser.connect();
    try {
      // When an injected statement sets defaults for every later session of the role
      const attacker = await appClient();
      await attacker.query(`ALTER ROLE allixios_app SET debug_print_plan = on`);
      await attacker.query(`ALTER ROLE allixios_app SET client_min_messages = log`);
      await attacker.end();
      // and the platform then runs a request with a user's data as a bind parameter
      const platform = new pg.Client({ connectionString: platformUrl });
      const notices: string[] = [];
      platform.on('notice', (notice) => notices.push(`${notice.message} ${notice.detail ?? ''}`));
      await platform.connect();
      const { rows } = await platform.query(`SELECT current_setting('debug_print_plan') AS plan, $1::text AS email`, ['victim-secret@example.com']);
      await platform.end();
      // Then the platform's session does not print plans carrying that value (to the server log
      // and to the client), as README says: what a role sets for itself does not reach the platform
      const dumped = decodeDump(notices);
      expect(dumped, "the platform's bind value was dumped by a role default the attacker set").not.toContain('victim-secret@example.com');
      expect(rows[0]!.plan).toBe('off');
    } finally {
      await superuser.query(`ALTER ROLE allixios_app RESET debug_print_plan`);
      await superuser.query(`ALTER ROLE allixios_app RESET client_min_messages`);
      await superuser.end();
    }
  });
});

describe('held: MERGE on hidden rows', () => {
  it.each([
    ['articles, update', `MERGE INTO articles t USING (VALUES (1)) s(x) ON true WHEN MATCHED THEN UPDATE SET excerpt = 'x'`],
    ['articles, delete', `MERGE INTO articles t USING (VALUES (1)) s(x) ON true WHEN MATCHED THEN DELETE`],
    ['articles, not matched by source', `MERGE INTO articles t USING (SELECT 1 WHERE false) s(x) ON true WHEN NOT MATCHED BY SOURCE THEN DELETE`],
    ['users', `MERGE INTO users t USING (VALUES (1)) s(x) ON true WHEN MATCHED THEN UPDATE SET display_name = 'x'`],
    ['comments', `MERGE INTO comments t USING (VALUES (1)) s(x) ON true WHEN MATCHED THEN UPDATE SET body = 'x'`],
    ['media', `MERGE INTO media t USING (VALUES (1)) s(x) ON true WHEN MATCHED THEN UPDATE SET alt_text = 'x'`],
    ['article_tags', `MERGE INTO article_tags t USING (VALUES (1)) s(x) ON true WHEN MATCHED THEN DELETE`],
  ])('a MERGE that names no target column (%s) meets hidden rows only to refuse them, naming nothing', async (_case, sql) => {
    // (Without a reference to a target column MERGE needs no SELECT right, so the SELECT policy
    // does not filter the target: hidden rows are matched, and the UPDATE/DELETE policy refuses
    // them as an error instead of skipping them.)
    for (const actor of [actors.reader, actors.authorA]) {
      const outcome = await attack(actor, sql);
      if (outcome.error) expect(outcome.error.code).toBe('42501');
    }
  });

  it('a MERGE by id on a hidden draft matches nothing, and RETURNING old/new gives nothing back', async () => {
    const sql = `MERGE INTO articles t USING (SELECT $1::uuid AS id) s ON t.id = s.id
                 WHEN MATCHED THEN UPDATE SET excerpt = 'x' WHEN NOT MATCHED THEN DO NOTHING
                 RETURNING merge_action(), old.body, new.body`;
    const hidden = await attack(actors.authorA, sql, [extra.secretDraftOfB]);
    const missing = await attack(actors.authorA, sql, [randomUUID()]);
    expect(hidden).toEqual({ rows: [], rowCount: 0 });
    expect(shape(hidden)).toEqual(shape(missing));
  });

  it('MERGE ... WHEN NOT MATCHED THEN INSERT with a hidden comment as parent is refused like a missing parent', async () => {
    const sql = `MERGE INTO comments t USING (SELECT $1::uuid AS parent) s ON t.id = s.parent
                 WHEN NOT MATCHED THEN INSERT (article_id, parent_id, body) VALUES ($2, s.parent, 'x')`;
    const hidden = await attack(actors.authorA, sql, [extra.hiddenReply, articles['a-published']]);
    const missing = await attack(actors.authorA, sql, [randomUUID(), articles['a-published']]);
    expect(hidden.error?.code).toBe('42501');
    expect(shape(hidden)).toEqual(shape(missing));
  });
});

describe('held: PostgreSQL 18 RETURNING old/new, upserts, joins', () => {
  it.each([
    ['UPDATE ... RETURNING old.*', `UPDATE articles SET title = 'x' WHERE id = $1 RETURNING old.*, new.*`],
    ['DELETE ... RETURNING old.*', `DELETE FROM articles WHERE id = $1 RETURNING old.*`],
    ['UPDATE ... FROM a hidden row', `UPDATE articles a SET excerpt = h.body FROM articles h WHERE h.id = $1 AND a.author_id = '${ids.authorA}' RETURNING a.excerpt`],
    ['DELETE ... USING a hidden row', `DELETE FROM article_tags t USING articles h WHERE h.id = $1 AND t.article_id = h.id RETURNING h.body`],
    ['INSERT ... SELECT from a hidden row', `INSERT INTO articles (title, body, author_id) SELECT 'copy', body, '${ids.authorA}' FROM articles WHERE id = $1 RETURNING body`],
    ['a data-modifying CTE', `WITH x AS (UPDATE articles SET excerpt = excerpt WHERE id = $1 RETURNING old.body) SELECT * FROM x`],
  ])("%s on B's secret draft reaches nothing", async (_case, sql) => {
    const outcome = await attack(actors.authorA, sql, [extra.secretDraftOfB]);
    expect(outcome.error).toBeUndefined();
    expect(outcome.rowCount).toBe(0);
  });

  it("an upsert on B's profile returning old.* is refused before the conflict", async () => {
    const outcome = await attack(
      actors.authorA,
      `INSERT INTO author_profiles (user_id, display_name) VALUES ($1, 'x') ON CONFLICT (user_id) DO UPDATE SET bio = 'x' RETURNING old.*`,
      [ids.authorB],
    );
    expect(outcome.error).toMatchObject({ code: '42501' });
  });

  it('a self-signup upsert on the own id that sets role = admin is refused by the guard', async () => {
    const newcomer = randomUUID();
    const address = `n-${newcomer.slice(0, 8)}@example.com`;
    await as({ role: 'reader', userId: newcomer }, async (tx) => {
      await tx.rows(`INSERT INTO users (id, email, display_name) VALUES ($1, $2, 'x')`, [newcomer, address]);
      const upsert = await tx.outcome(
        `INSERT INTO users (id, email, display_name) VALUES ($1, $2, 'x') ON CONFLICT (id) DO UPDATE SET role = 'admin' RETURNING old.role, new.role`,
        [newcomer, address],
      );
      expect(upsert.error).toMatchObject({ code: '42501' });
    });
  });
});

describe('held: locks on hidden rows are no existence oracle', () => {
  it('SELECT ... FOR UPDATE NOWAIT and UPDATE on a hidden row another transaction locks answer as for a missing row', async () => {
    const holder = await owner.connect();
    try {
      // Given B's secret draft, locked by another transaction
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM articles WHERE id = $1 FOR UPDATE`, [extra.secretDraftOfB]);
      for (const sql of [
        `SELECT 1 FROM articles WHERE id = $1 FOR UPDATE NOWAIT`,
        `SELECT 1 FROM articles WHERE id = $1 FOR KEY SHARE NOWAIT`,
        `UPDATE articles SET title = 'x' WHERE id = $1`,
        `DELETE FROM articles WHERE id = $1`,
      ]) {
        // When A locks or writes it, and an id nothing has
        const hidden = await as(actors.authorA, async (tx) => {
          await tx.rows(`SET LOCAL lock_timeout = '300ms'`);
          return tx.outcome(sql, [extra.secretDraftOfB]);
        });
        const missing = await attack(actors.authorA, sql, [randomUUID()]);
        // Then no "could not obtain lock" nor a wait tells them apart
        expect(shape(hidden), sql).toEqual(shape(missing));
      }
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
  });
});

describe('held: triggers, constraints and functions as the system', () => {
  it("SET CONSTRAINTS ALL IMMEDIATE breaks only the writer's own insert, naming only its own article", async () => {
    const outcome = await as(actors.authorA, async (tx) => {
      await tx.rows('SET CONSTRAINTS ALL IMMEDIATE');
      return tx.outcome(`INSERT INTO articles (title, author_id) VALUES ('Immediate', $1)`, [ids.authorA]);
    });
    expectNothingHidden(actors.authorA, everything(outcome));
    if (outcome.error) expect(outcome.error.code).toBe('23503');
  });

  it.each([
    [`SELECT * FROM search_articles('zanzibar & !(')`],
    [`SELECT * FROM search_articles('"zanzibar of author b')`],
    [`SELECT * FROM search_articles('zanz:*')`],
    [`SELECT * FROM search_articles('quokkasecret OR zanzibar -public')`],
    [`SELECT * FROM search_articles(repeat('zanzibar ', 50))`],
    [`SELECT * FROM search_articles('zanzibar', NULL)`],
    [`SELECT * FROM search_articles('zanzibar', -5)`],
    [`SELECT count(*) FROM search_articles('author', 2147483647)`],
  ])('search_articles with crafted input returns nothing hidden: %s', async (sql) => {
    for (const actor of [actors.anonymous, actors.reader, actors.authorA]) {
      const outcome = await attack(actor, sql);
      expect(outcome.error).toBeUndefined();
    }
  });

  it('publish_article(NULL) answers like a missing article', async () => {
    const nil = await attack(actors.authorA, `SELECT publish_article(NULL)`);
    const nilByEditor = await attack(actors.editor, `SELECT publish_article(NULL)`);
    const missing = await attack(actors.editor, `SELECT publish_article($1)`, [randomUUID()]);
    expect(nil.error?.code).toBe('42501');
    expect(nilByEditor.error?.code).toBe(missing.error?.code);
  });

  it.each([
    [`SELECT app_claim($1, 'Author')`, () => [ids.authorA]],
    [`SELECT app_claim(NULL, 'reader')`, () => []],
    [`SELECT app_claim($1, 'anonymous')`, () => [ids.authorA]],
    [`SELECT app_claim($1, NULL)`, () => [ids.authorA]],
    [`SELECT app_claim($1, ' author')`, () => [ids.authorA]],
  ])('app_claim with odd arguments raises: %s', async (sql, params) => {
    const outcome = await attack({ role: null, userId: null }, sql, params());
    expect(outcome.error?.code).toBe('22023');
  });

  it('planner debug output sent to the client (debug_print_plan, client_min_messages = log) carries nothing hidden', async () => {
    const client = await appClient();
    const notices: string[] = [];
    client.on('notice', (notice) => notices.push(`${notice.message} ${notice.detail ?? ''}`));
    try {
      await client.query('BEGIN');
      await claim(client, 'author', ids.authorA);
      await client.query(`SET LOCAL client_min_messages = log`);
      await client.query(`SET LOCAL debug_print_plan = on`);
      await client.query(`SET LOCAL debug_print_rewritten = on`);
      await client.query(`SELECT * FROM search_articles('zanzibar plan')`);
      await client.query(`SELECT body FROM articles WHERE id = $1`, [extra.secretDraftOfB]);
      await client.query(`UPDATE articles SET body = body || ' edit' WHERE id = $1`, [articles['a-draft']]);
      await client.query(`SELECT media_usable($1), comment_reply_allowed($2, $3)`, [extra.privateUploadOfB, extra.hiddenReply, articles['a-published']]);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
    expect(notices.length).toBeGreaterThan(0);
    expectNothingHidden(actors.authorA, decodeDump(notices));
  });
});

describe('held: roles, settings and catalog functions', () => {
  it.each([
    `SET ROLE allixios_owner`,
    `SET SESSION AUTHORIZATION allixios_owner`,
    `SELECT pg_restore_relation_stats('schemaname', 'public', 'relname', 'articles', 'reltuples', 1e9::real)`,
    `SELECT pg_restore_attribute_stats('schemaname', 'public', 'relname', 'media', 'attname', 'storage_key', 'inherited', false, 'null_frac', 0::real, 'avg_width', 20, 'n_distinct', -1::real, 'histogram_bounds', '{a,z}'::text)`,
    `SELECT pg_clear_attribute_stats('public', 'articles', 'status', false)`,
    `SELECT pg_clear_relation_stats('public', 'articles')`,
    `SELECT pg_create_logical_replication_slot('leak', 'pgoutput')`,
    `SELECT * FROM pg_logical_slot_peek_changes('leak', NULL, NULL)`,
    `SELECT pg_read_file('/etc/passwd')`,
    `SELECT current_setting('data_directory')`,
    `SELECT pg_stat_have_stats('relation', 0, 0)`,
    `LOAD 'auto_explain'`,
    `CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql RETURN 1`,
    `CREATE SCHEMA attacker`,
    `CREATE STATISTICS attacker_stats ON slug, title FROM articles`,
    `TRUNCATE articles`,
  ])('the application cannot: %s', async (sql) => {
    for (const actor of [actors.authorA, actors.admin]) {
      const outcome = await attack(actor, sql);
      expect(outcome.error, sql).toBeDefined();
      expect(outcome.error!.code).toMatch(/^(42501|55000|0A000|25001|42P01|42883|58P01)$/);
    }
  });

  it('no extended statistics exist for the roles to read', async () => {
    const outcome = await attack(actors.authorA, `SELECT * FROM pg_stats_ext`);
    expect(outcome.rows).toEqual([]);
  });

  it.each([
    `SELECT email FROM users`,
    `SELECT u FROM users u`,
    `SELECT to_jsonb(u) FROM users u`,
    `SELECT id FROM users ORDER BY lower(email) LIMIT 1`,
    `SELECT id FROM users WHERE users IS NOT NULL`,
    `SELECT xmin, ctid FROM users`,
    `COPY users TO STDOUT`,
    `SELECT media_usable(id) FROM media`,
    `SELECT * FROM search_articles('zanzibar')`,
  ])("reporting cannot reach e-mail addresses or the application's helpers: %s", async (sql) => {
    const outcome = await asReadonly((tx) => tx.outcome(sql));
    expect(outcome.error?.code, sql).toBe('42501');
  });

  it('reporting in a read-write transaction with an editor claim still publishes nothing', async () => {
    const outcome = await asReadonly(
      async (tx) => {
        await tx.rows(`SELECT app_claim($1, 'editor')`, [ids.editor]);
        return tx.outcome(`SELECT publish_article($1)`, [extra.secretDraftOfB]);
      },
      { readWrite: true },
    );
    expect(outcome.error?.code).toBe('42501');
  });
});
