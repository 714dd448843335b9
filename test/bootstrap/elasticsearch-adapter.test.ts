/**
 * The Elasticsearch adapter's own behaviour on the wire: the real `@elastic/elasticsearch` client
 * against a small HTTP server that answers as Elasticsearch does for the few requests at hand
 * (no Elasticsearch runs here; the tests against a real one need ELASTICSEARCH_URL). Each case is
 * one situation Elasticsearch produces that the adapter got wrong: a 401 while the security
 * index recovers, a lost reply to a lock renewal, a data stream that keeps an old retention.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { describeReindexFailure, ElasticsearchAdapter } from '../../bootstrap/adapters/elasticsearch.ts';
import { planElasticsearch, type ElasticsearchObserved } from '../../bootstrap/adapters/elasticsearch-plan.ts';
import { elasticsearchEngine } from '../../bootstrap/adapters/elasticsearch.ts';

interface Request {
  method: string;
  path: string;
  body: unknown;
}

/** What the fake answers: a status and a JSON body, or `drop` (the reply is lost). */
type Answer = { status: number; body?: unknown } | 'drop';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Starts the fake on a free port; `answer` sees every request, in order. */
async function fakeElasticsearch(answer: (request: Request) => Answer): Promise<{ url: string; requests: Request[] }> {
  const requests: Request[] = [];
  server = createServer((incoming: IncomingMessage, response: ServerResponse) => {
    let raw = '';
    incoming.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    incoming.on('end', () => {
      const request = { method: incoming.method ?? 'GET', path: incoming.url ?? '/', body: raw ? JSON.parse(raw) : undefined };
      requests.push(request);
      const reply = answer(request);
      if (reply === 'drop') {
        incoming.socket.destroy();
        return;
      }
      // The client refuses a server that does not say it is Elasticsearch.
      response.writeHead(reply.status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      response.end(JSON.stringify(reply.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server!.address() as { port: number };
  return { url: `http://elastic:secret@127.0.0.1:${port}`, requests };
}

const unauthorised: Answer = { status: 401, body: { error: { type: 'security_exception', reason: 'unable to authenticate user [elastic] for REST request [/_cluster/health]' }, status: 401 } };
const healthy: Answer = { status: 200, body: { status: 'green', timed_out: false } };

function adapter(url: string, extra: Partial<ConstructorParameters<typeof ElasticsearchAdapter>[1]> = {}) {
  return new ElasticsearchAdapter(url, { readyTimeoutMs: 3_000, lockTimeoutMs: 3_000, watch: { aliases: [], templates: [] }, ...extra });
}

describe('connecting', () => {
  it('waits through the 401s of a node whose security index still recovers, within the readiness budget', async () => {
    // Given a node that refuses the login twice, then answers
    let calls = 0;
    const fake = await fakeElasticsearch(() => (++calls <= 2 ? unauthorised : healthy));
    // When the adapter connects / Then it gets through, having asked three times
    await adapter(fake.url).connect();
    expect(fake.requests.filter((request) => request.path.startsWith('/_cluster/health'))).toHaveLength(3);
  });

  it('gives up on a 401 that lasts past the readiness budget, saying both possible causes', async () => {
    const fake = await fakeElasticsearch(() => unauthorised);
    const started = Date.now();
    await expect(adapter(fake.url, { readyTimeoutMs: 1_500 }).connect()).rejects.toThrow(
      /^elasticsearch: cannot connect to 127\.0\.0\.1:\d+ after \d\.\d s: authentication failed as elastic \(a wrong password, or the security index still recovering\): security_exception/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
  });
});

describe('the lock', () => {
  it('keeps the lock when a renewal was applied but its reply was lost, instead of thinking it lost the lock to itself', async () => {
    // Given a lock the adapter holds, and a cluster that applies the first renewal but drops its reply
    let version = 1;
    let holder = '';
    let renewals = 0;
    const fake = await fakeElasticsearch((request) => {
      if (request.method === 'HEAD') return { status: 200 };
      if (request.path.startsWith('/lock-index/_create/lock') || request.path.includes('op_type=create')) {
        holder = (request.body as { holder: string }).holder;
        return { status: 201, body: { _seq_no: version, _primary_term: 1, result: 'created' } };
      }
      if (request.method === 'GET' && request.path.startsWith('/lock-index/_doc/lock')) {
        return { status: 200, body: { found: true, _seq_no: version, _primary_term: 1, _source: { holder, expiresAt: new Date(Date.now() + 60_000).toISOString() } } };
      }
      if (request.method === 'PUT' && request.path.startsWith('/lock-index/_doc/lock')) {
        renewals += 1;
        if (!request.path.includes(`if_seq_no=${version}`)) return { status: 409, body: { error: { type: 'version_conflict_engine_exception', reason: 'conflict' }, status: 409 } };
        version += 1;
        return renewals === 1 ? 'drop' : { status: 200, body: { _seq_no: version, _primary_term: 1, result: 'updated' } };
      }
      if (request.path.startsWith('/_data_stream/')) return { status: 200, body: { acknowledged: true } };
      if (request.path.startsWith('/ledger-index')) return { status: 201, body: { result: 'created' } };
      return { status: 404, body: { error: { type: 'not_found', reason: request.path }, status: 404 } };
    });
    const es = adapter(fake.url, { lockLeaseMs: 600, lockIndex: 'lock-index', ledgerIndex: 'ledger-index' });
    await es.lock();
    // When the heartbeat renews a few times
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // Then it renewed past the lost reply and still applies under the lock
    expect(renewals).toBeGreaterThanOrEqual(3);
    await es.apply({ subject: 'data stream x', action: 'update', detail: '', source: 'test', payload: { kind: 'put-data-stream-lifecycle', name: 'x', dataRetention: '30d' } });
    await es.close();
  });
});

describe('data streams and reindex failures', () => {
  const desired = elasticsearchEngine.desired({ ALLIXIOS_ENVIRONMENT: 'prod' });
  const template = desired.templates[0]!;
  const retention = (template.request.template?.lifecycle as { data_retention: string }).data_retention;

  it('puts the template\'s retention on a data stream it made earlier, which a template change does not reach', () => {
    // Given the analytics template as the definitions want it, and a stream made under an older retention
    const observed: ElasticsearchObserved = {
      indices: [],
      templates: {},
      dataStreams: { [template.request.name]: [{ name: 'search-analytics-prod', lifecycle: { enabled: true, data_retention: '7d' } }] },
      ledger: [],
    };
    // When planned
    const plan = planElasticsearch(desired, observed, {});
    // Then the stream itself is updated, not only the template
    const change = plan.changes.find((candidate) => candidate.subject === 'data stream search-analytics-prod');
    expect(change).toMatchObject({ action: 'update', payload: { kind: 'put-data-stream-lifecycle', name: 'search-analytics-prod', dataRetention: retention } });
    expect(change!.detail).toMatch(/^data_retention "7d" → /);
    // and a stream that already has it is in sync
    const inSync = planElasticsearch(desired, { ...observed, dataStreams: { [template.request.name]: [{ name: 'search-analytics-prod', lifecycle: { enabled: true, data_retention: retention } }] } }, {});
    expect(inSync.changes.filter((candidate) => candidate.subject.startsWith('data stream'))).toEqual([]);
    expect(inSync.inSync).toContain('data stream search-analytics-prod');
  });

  it('sends the retention to the stream\'s own lifecycle', async () => {
    const fake = await fakeElasticsearch((request) => (request.path.startsWith('/ledger-index') || request.method === 'HEAD' ? { status: 200, body: { result: 'created' } } : { status: 200, body: { acknowledged: true } }));
    const es = adapter(fake.url, { ledgerIndex: 'ledger-index' });
    await es.apply({ subject: 'data stream s', action: 'update', detail: '', source: 'test', payload: { kind: 'put-data-stream-lifecycle', name: 's', dataRetention: '90d' } });
    expect(fake.requests.find((request) => request.path.startsWith('/_data_stream/s/_lifecycle'))).toMatchObject({ method: 'PUT', body: { data_retention: '90d' } });
    await es.close();
  });

  it('reports a reindex failure of either kind: a refused document, or a shard it could not read (no cause field)', () => {
    expect(describeReindexFailure({ index: 'articles_v2', id: '42', cause: { type: 'mapper_parsing_exception', reason: 'failed to parse field [x]' }, status: 400 })).toBe(
      'document 42: mapper_parsing_exception: failed to parse field [x]',
    );
    expect(describeReindexFailure({ shard: 3, index: 'articles_v1', node: 'n1', reason: { type: 'node_disconnected_exception', reason: 'node left' } })).toBe(
      'reading articles_v1 shard 3: node_disconnected_exception: node left',
    );
    expect(describeReindexFailure({ something: 'else' })).toBe('{"something":"else"}');
  });
});
