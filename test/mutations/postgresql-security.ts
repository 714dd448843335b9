/**
 * Mutation check of the PostgreSQL security contract: each fix of the threat model
 * (databases/postgresql/README.md) is undone in turn, on a fresh server, by a statement run as the
 * superuser right after the assets are applied, and the attack, side-channel and matrix suites
 * run against the result. Every fix must make at least one test fail when it is gone: a fix no test notices is
 * not proven. Not part of `npm test` (it runs the suites once per fix, about 8 minutes):
 *
 *   npx tsx test/mutations/postgresql-security.ts [fix name filter...]
 *
 * The undo statement reaches the test world through ALLIXIOS_TEST_MUTATION_SQL
 * (test/support/platform-world.ts). Fixes in code rather than SQL (DATABASE_URL's pinned options,
 * pg_stat_statements.track_utility in postgresql.conf) are proven by their own tests' assertions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineCommand } from '../../bootstrap/command-line.ts';

interface Mutation {
  fix: string;
  /** SQL run as the superuser after the assets, undoing the fix. */
  undo: string;
}

const MUTATIONS: Mutation[] = [
  {
    fix: 'claim stamp (V0010)',
    undo: "CREATE OR REPLACE FUNCTION public.app_transaction_stamp() RETURNS text LANGUAGE sql STABLE RETURN coalesce(current_setting('app.claimed_in', true), '');",
  },
  {
    fix: 'column privileges (V0011)',
    undo: 'GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO allixios_app; CREATE POLICY r_ins ON public.article_revisions FOR INSERT TO allixios_app WITH CHECK (true);',
  },
  {
    fix: 'published-only slug uniqueness (V0012)',
    undo: 'DROP INDEX public.articles_published_slug_key; ALTER TABLE public.articles ADD CONSTRAINT articles_slug_key UNIQUE (slug);',
  },
  {
    fix: 'RLS on categories/tags/media/stats (V0013)',
    undo: 'ALTER TABLE public.categories DISABLE ROW LEVEL SECURITY; ALTER TABLE public.tags DISABLE ROW LEVEL SECURITY; ALTER TABLE public.media DISABLE ROW LEVEL SECURITY; ALTER TABLE public.daily_article_stats DISABLE ROW LEVEL SECURITY;',
  },
  {
    fix: 'never-published deletion (V0013)',
    undo: "ALTER POLICY articles_app_delete ON public.articles USING (CASE (SELECT public.app_current_role()) WHEN 'editor' THEN true WHEN 'admin' THEN true WHEN 'author' THEN author_id = (SELECT public.app_current_user_id()) AND status IN ('draft','review') ELSE false END);",
  },
  {
    fix: 'staff-only comment deletion (V0013)',
    undo: "ALTER POLICY comments_app_delete ON public.comments USING (CASE (SELECT public.app_current_role()) WHEN 'editor' THEN true WHEN 'admin' THEN true WHEN 'anonymous' THEN false ELSE author_id = (SELECT public.app_current_user_id()) END);",
  },
  {
    fix: 'visible reply parent (V0013)',
    undo: 'CREATE OR REPLACE FUNCTION public.comment_reply_allowed(parent_id uuid, article_id uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER RETURN true;',
  },
  {
    fix: 'visible covers/avatars (V0013)',
    undo: 'CREATE OR REPLACE FUNCTION public.media_usable(media_id uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER RETURN true;',
  },
  {
    fix: 'editorial guard (publication rules)',
    undo: "CREATE OR REPLACE TRIGGER articles_guard_editorial BEFORE INSERT OR UPDATE OF status, published_at ON public.articles FOR EACH ROW WHEN (NEW.status = 'published' AND false) EXECUTE FUNCTION public.articles_guard_editorial();",
  },
  {
    fix: 'e-mail guard trigger',
    undo: 'DROP TRIGGER users_guard_email ON public.users;',
  },
  {
    fix: 'slug trigger skips foreign authors',
    undo: "DO $d$ DECLARE src text; BEGIN SELECT pg_get_functiondef('public.articles_fill_slug'::regproc) INTO src; src := regexp_replace(src, 'IF NOT by_migrator AND NOT public\\.app_is_staff\\(\\).*?THEN.*?END IF;', ''); EXECUTE src; END $d$;",
  },
  {
    fix: 'e-mail guard skips refused writers',
    undo: "DO $d$ DECLARE src text; BEGIN SELECT pg_get_functiondef('public.users_guard_email'::regproc) INTO src; src := regexp_replace(src, 'IF TG_OP = .INSERT. AND claimed_role <> .admin..*?THEN.*?END IF;', ''); EXECUTE src; END $d$;",
  },
  {
    fix: 'statistics views revoke (roles script)',
    undo: "GRANT SELECT ON pg_stat_xact_user_tables, pg_stat_user_tables, pg_statio_user_tables, pg_stat_user_indexes, pg_locks, pg_stat_activity, pg_stat_statements TO PUBLIC; DO $d$ DECLARE f regprocedure; BEGIN FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname ~ '^pg_stat_get_' OR proname IN ('pg_lock_status','pg_stat_statements') LOOP EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f); END LOOP; END $d$;",
  },
  {
    fix: 'no statistics of hidden text (V0015)',
    undo: 'ALTER TABLE public.articles ALTER COLUMN slug SET STATISTICS -1; ALTER TABLE public.users ALTER COLUMN email SET STATISTICS -1; ALTER INDEX public.users_email_lookup_idx ALTER COLUMN 1 SET STATISTICS -1;',
  },
  {
    fix: 'slug claims (V0017)',
    undo: 'CREATE OR REPLACE FUNCTION public.article_slug_claim(article uuid, author uuid, candidate text) RETURNS boolean LANGUAGE sql VOLATILE RETURN NOT EXISTS (SELECT 1 FROM public.articles a WHERE a.author_id = author AND a.slug = candidate AND a.id <> article);',
  },
  {
    fix: 'bounded body (V0016)',
    undo: 'ALTER TABLE public.articles DROP CONSTRAINT articles_body_length;',
  },
  {
    fix: 'category tree locks',
    undo: "CREATE OR REPLACE FUNCTION categories_guard_tree() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$\nBEGIN\n  IF NEW.parent_id IS NULL OR NEW.parent_id = NEW.id THEN RETURN NEW; END IF;\n  IF EXISTS (WITH RECURSIVE ancestors (id, parent_id) AS (SELECT c.id, c.parent_id FROM public.categories c WHERE c.id = NEW.parent_id UNION SELECT c.id, c.parent_id FROM public.categories c JOIN ancestors up ON c.id = up.parent_id) SELECT 1 FROM ancestors WHERE ancestors.id = NEW.id) THEN\n    RAISE EXCEPTION 'category % cannot be placed under %: that category is inside it', NEW.id, NEW.parent_id USING ERRCODE = 'check_violation';\n  END IF;\n  RETURN NEW;\nEND; $$;",
  },
  {
    fix: 'advisory lock revoke (roles script)',
    undo: "SELECT 1; DO $$ DECLARE f regprocedure; BEGIN FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE pronamespace='pg_catalog'::regnamespace AND proname ~ '^pg_(try_)?advisory_' LOOP EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f); END LOOP; END $$;",
  },
  {
    fix: 'large object / notify / terminate revoke (roles script)',
    undo: 'GRANT EXECUTE ON FUNCTION lo_from_bytea(oid, bytea), lo_create(oid), lo_creat(integer), pg_notify(text, text), pg_terminate_backend(integer, bigint), pg_cancel_backend(integer) TO PUBLIC;',
  },
  {
    fix: 'other databases (roles script)',
    undo: 'GRANT CONNECT ON DATABASE postgres, template1 TO PUBLIC;',
  },
  {
    fix: 'role limits (roles script)',
    undo: 'ALTER ROLE allixios_app RESET ALL; ALTER ROLE allixios_app CONNECTION LIMIT -1;',
  },
  {
    fix: 'slug text in no index (plans)',
    undo: 'CREATE INDEX articles_any_slug_idx ON public.articles (slug);',
  },
  {
    fix: 'no statistics of search words (V0018)',
    undo: 'ALTER TABLE public.articles ALTER COLUMN search_vector SET STATISTICS -1;',
  },
  {
    fix: 'lock wait graph revoke (roles script)',
    undo: 'GRANT EXECUTE ON FUNCTION pg_isolation_test_session_is_blocked(integer, integer[]) TO PUBLIC;',
  },
  {
    fix: 'published_at is never cleared (editorial guard)',
    undo: "DO $d$ DECLARE src text; BEGIN SELECT pg_get_functiondef('public.articles_guard_editorial'::regproc) INTO src; src := replace(src, 'AND NEW.published_at IS NULL AND NOT public.app_is_migrator()', 'AND false'); EXECUTE src; END $d$;",
  },
  {
    fix: 'claims read per row and failing closed in the policies (V0019)',
    undo: 'CREATE OR REPLACE FUNCTION public.app_policy_role() RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN public.app_current_role(); END $$;',
  },
  {
    fix: 'comments judged on the row, not on articles (V0019)',
    undo: "ALTER POLICY comments_app_select ON public.comments USING (CASE WHEN app_policy_role() IN ('editor', 'admin') THEN true WHEN app_policy_role() IN ('anonymous', 'reader', 'author') THEN (status = 'visible' AND EXISTS (SELECT 1 FROM public.articles a WHERE a.id = comments.article_id AND a.status = 'published')) OR author_id::text = app_policy_user_id() ELSE false END);",
  },
  {
    fix: 'revisions judged on the row, not on articles (V0019)',
    undo: "ALTER POLICY article_revisions_app_select ON public.article_revisions USING (CASE app_policy_role() WHEN 'editor' THEN true WHEN 'admin' THEN true WHEN 'author' THEN EXISTS (SELECT 1 FROM public.articles a WHERE a.id = article_revisions.article_id AND a.author_id::text = app_policy_user_id()) ELSE false END);",
  },
  {
    fix: 'media judged on the row, not on articles (V0019)',
    undo: "CREATE FUNCTION public.media_shown_old(media_id uuid) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$ SELECT EXISTS (SELECT 1 FROM public.articles a WHERE a.cover_media_id = media_id AND public.article_visible(a.status, a.author_id, public.app_policy_role(), public.app_policy_user_id())) OR EXISTS (SELECT 1 FROM public.author_profiles p WHERE p.avatar_media_id = media_id) $$; GRANT EXECUTE ON FUNCTION public.media_shown_old(uuid) TO allixios_app; ALTER POLICY media_app_select ON public.media USING (CASE WHEN app_policy_role() IN ('editor', 'admin') THEN true WHEN app_policy_role() IN ('anonymous', 'reader', 'author') THEN uploaded_by::text = app_policy_user_id() OR public.media_shown_old(id) ELSE false END);",
  },
  {
    fix: 'no B-tree over storage keys (V0019)',
    undo: 'CREATE UNIQUE INDEX media_storage_key_btree ON public.media (storage_key);',
  },
  {
    fix: 'e-mail uniqueness out of reach (V0019)',
    undo: 'CREATE UNIQUE INDEX users_email_btree ON public.users (lower(email));',
  },
  {
    fix: 'search reads published postings only (V0020)',
    undo: 'CREATE INDEX articles_all_search_idx ON public.articles USING gin (search_vector); DROP INDEX public.articles_published_search_idx; DROP INDEX public.articles_unpublished_search_idx;',
  },
  {
    fix: 'no statistics of mime types (V0019)',
    undo: 'ALTER TABLE public.media ALTER COLUMN mime_type SET STATISTICS -1;',
  },
  {
    fix: 'WAL messages revoked (roles script)',
    undo: "DO $d$ DECLARE f regprocedure; BEGIN FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname = 'pg_logical_emit_message' LOOP EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f); END LOOP; END $d$;",
  },
];

interface VitestReport {
  testResults: Array<{ assertionResults: Array<{ fullName: string; status: string }> }>;
}

const command = defineCommand({
  name: 'mutations',
  synopsis: ['npx tsx test/mutations/postgresql-security.ts [<filter>...]'],
  summary: 'Undoes each fix of the PostgreSQL threat model in turn and runs the attack, side-channel and matrix suites: every fix must make a test fail. About 8 minutes.',
  arguments: [{ name: '<filter>...', description: 'only the fixes whose name contains one of these' }],
  options: {},
  exitCodes: { ok: 'every fix undone made at least one test fail', failed: 'a fix no test notices, or the suites did not report' },
});
const filters = command.parse().positionals;
const chosen = MUTATIONS.filter((candidate) => filters.length === 0 || filters.some((filter) => candidate.fix.includes(filter)));
if (chosen.length === 0)
  command.fail(`no fix matches ${filters.map((filter) => JSON.stringify(filter)).join(', ')}; the fixes: ${MUTATIONS.map((mutation) => mutation.fix).join('; ')}`);
const report = join(mkdtempSync(join(tmpdir(), 'allixios-mutations-')), 'report.json');
let unnoticed = 0;
for (const mutation of chosen) {
  const run = spawnSync(
    'npx',
    ['vitest', 'run', 'test/postgresql-attacks.test.ts', 'test/postgresql-rls.test.ts', 'test/postgresql-side-channels.test.ts', '--reporter=json', `--outputFile.json=${report}`],
    {
      env: { ...process.env, ALLIXIOS_TEST_MUTATION_SQL: mutation.undo },
      encoding: 'utf8',
    },
  );
  let failing: string[];
  try {
    const results = JSON.parse(readFileSync(report, 'utf8')) as VitestReport;
    failing = results.testResults.flatMap((file) => file.assertionResults.filter((test) => test.status === 'failed').map((test) => test.fullName));
  } catch {
    throw new Error(`the suites did not report for "${mutation.fix}": ${run.stderr.slice(-2000)}`);
  }
  if (failing.length === 0) unnoticed += 1;
  console.log(`${failing.length === 0 ? 'UNNOTICED' : 'caught   '}  ${mutation.fix}: ${failing.length} failing test(s)`);
  for (const name of failing.slice(0, 5)) console.log(`             - ${name}`);
}
process.exitCode = unnoticed === 0 ? 0 : 1;
