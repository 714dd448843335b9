import pg from 'pg';
import { startEmbeddedPostgres } from './bootstrap/embedded/postgresql.ts';
import { applyPostgresAssets } from './test/support/postgres.ts';
const server = await startEmbeddedPostgres();
await applyPostgresAssets(server.url('allixios_owner'));
const o = new pg.Client({ connectionString: server.url('allixios_owner') }); await o.connect();
await o.query(`INSERT INTO users (id, email, display_name, role) VALUES ('11111111-1111-1111-1111-111111111111', 'x@y.z', 'X', 'author')`);
await o.query(`INSERT INTO categories (id, slug, name) VALUES ('22222222-2222-2222-2222-222222222222', 'c', 'C')`);
await o.query(`INSERT INTO articles (slug, title, body, author_id, category_id, status, published_at) SELECT 'p' || i, 'Title ' || i, 'ordinary published words ' || i, '11111111-1111-1111-1111-111111111111', '22222222-2222-2222-2222-222222222222', 'published', now() FROM generate_series(1, 3000) i`);
await o.query(`INSERT INTO articles (slug, title, body, author_id) VALUES ('secret', 'Merger', 'quokkasecret', '11111111-1111-1111-1111-111111111111')`);
await o.query(`ANALYZE articles`);
const mutated = process.argv[2] === 'mutated';
if (mutated) await o.query(`CREATE INDEX articles_all_search_idx ON public.articles USING gin (search_vector); DROP INDEX public.articles_published_search_idx; DROP INDEX public.articles_unpublished_search_idx;`);
const body = (await o.query(`SELECT prosrc FROM pg_proc WHERE proname = 'search_articles'`)).rows[0].prosrc.replace(/search_articles\.query/g, '$1::text').replace(/search_articles\.max_results/g, '20');
for (const w of ['quokkasecret', 'xyzzyplugh']) {
  await o.query('BEGIN'); await o.query(`SELECT app_claim(NULL, 'anonymous')`);
  const r = await o.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) ${body}`, [w]);
  await o.query('ROLLBACK');
  console.log(w, '\n' + r.rows.map((x: any) => x['QUERY PLAN']).filter((l: string) => /Scan|Buffers|Filter|never/.test(l)).join('\n'));
}
await o.end(); await server.stop();
