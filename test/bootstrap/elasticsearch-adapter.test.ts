/**
 * The Elasticsearch adapter's own behaviour on the wire: the real `@elastic/elasticsearch` client
 * against a small HTTP server that answers as Elasticsearch does for the few requests at hand
 * (no Elasticsearch runs here; the tests against a real one need ELASTICSEARCH_URL). Each case is
 * one situation Elasticsearch produces that the adapter got wrong: a 401 while the security
 * index recovers, a lost reply to a lock renewal, a data stream that keeps an old retention, a
 * password rotation.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { describeReindexFailure, ElasticsearchAdapter } from '../../bootstrap/adapters/elasticsearch-adapter.ts';
import { planElasticsearch, type ElasticsearchObserved } from '../../bootstrap/adapters/elasticsearch-plan.ts';
import { elasticsearchEngine } from '../../bootstrap/adapters/elasticsearch.ts';

interface Request {
  method: string;
  path: string;
  body: unknown;
  /** The Basic credentials sent, decoded (`user:password`). */
  auth?: string;
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
      const basic = /^Basic (.+)$/.exec(incoming.headers.authorization ?? '');
      const request: Request = {
        method: incoming.method ?? 'GET',
        path: incoming.url ?? '/',
        body: raw ? JSON.parse(raw) : undefined,
        ...(basic ? { auth: Buffer.from(basic[1]!, 'base64').toString() } : {}),
      };
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

const unauthorised: Answer = {
  status: 401,
  body: { error: { type: 'security_exception', reason: 'unable to authenticate user [elastic] for REST request [/_cluster/health]' }, status: 401 },
};
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

  it("puts the template's retention on a data stream it made earlier, which a template change does not reach", () => {
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
    const inSync = planElasticsearch(
      desired,
      { ...observed, dataStreams: { [template.request.name]: [{ name: 'search-analytics-prod', lifecycle: { enabled: true, data_retention: retention } }] } },
      {},
    );
    expect(inSync.changes.filter((candidate) => candidate.subject.startsWith('data stream'))).toEqual([]);
    expect(inSync.inSync).toContain('data stream search-analytics-prod');
  });

  it("sends the retention to the stream's own lifecycle", async () => {
    const fake = await fakeElasticsearch((request) =>
      request.path.startsWith('/ledger-index') || request.method === 'HEAD' ? { status: 200, body: { result: 'created' } } : { status: 200, body: { acknowledged: true } },
    );
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

/** The fake's URL with other credentials. */
const as = (url: string, user: string, password: string) => url.replace('elastic:secret', `${user}:${password}`);

describe('a password rotation', () => {
  /**
   * A cluster whose `elastic` has `state.password`: other credentials get a 401, and a
   * _password request by elastic sets it, as the native realm does.
   */
  function rotatingCluster(state: { password: string }) {
    return fakeElasticsearch((request) => {
      if (request.auth !== `elastic:${state.password}`) return unauthorised;
      if (request.path.startsWith('/_security/user/elastic/_password')) {
        state.password = (request.body as { password: string }).password;
        return { status: 200, body: {} };
      }
      if (request.path.startsWith('/_security/_authenticate')) return { status: 200, body: { username: 'elastic' } };
      if (request.path.includes('/_search')) return { status: 200, body: { hits: { hits: [] } } };
      return healthy;
    });
  }

  it("logs in with the previous password the rotation keeps, sets the stack's with it, and works with the stack's afterwards", async () => {
    // Given a cluster that still has the previous password
    const state = { password: 'previous-pw' };
    const fake = await rotatingCluster(state);
    const es = adapter(as(fake.url, 'elastic', 'current-pw'), { logins: { previousUrl: as(fake.url, 'elastic', 'previous-pw') } });
    try {
      // When the adapter connects
      await es.connect();
      // Then it is logged in with the previous password, and plans to set the current one
      expect(es.login).toBe('previous');
      const changes = await es.planCredentials();
      expect(changes).toEqual([
        {
          subject: 'user elastic',
          action: 'update',
          detail: "the engine still has the previous password: set the stack's",
          source: 'databases/elasticsearch/index.ts',
          payload: { password: 'current-pw' },
        },
      ]);
      // When it applies the change
      const before = fake.requests.length;
      await es.applyCredential(changes[0]!);
      // Then the password was set by elastic with the previous password, to the current one
      const sets = fake.requests.filter((request) => request.path.startsWith('/_security/user/elastic/_password'));
      expect(sets).toEqual([{ method: 'PUT', path: '/_security/user/elastic/_password', body: { password: 'current-pw' }, auth: 'elastic:previous-pw' }]);
      expect(state.password).toBe('current-pw');
      // and what follows the change goes with the current password
      expect(es.login).toBe('current');
      await es.observe();
      const after = fake.requests.slice(before).filter((request) => !request.path.includes('/_password'));
      expect(after.some((request) => request.path.includes('/_search'))).toBe(true);
      expect(after.every((request) => request.auth === 'elastic:current-pw')).toBe(true);
    } finally {
      await es.close();
    }
  });

  it('plans nothing when the cluster accepts the current password by the time it plans (a concurrent bootstrap set it)', async () => {
    // Given an adapter logged in with the previous password
    const state = { password: 'previous-pw' };
    const fake = await rotatingCluster(state);
    const es = adapter(as(fake.url, 'elastic', 'current-pw'), { logins: { previousUrl: as(fake.url, 'elastic', 'previous-pw') } });
    try {
      await es.connect();
      expect(es.login).toBe('previous');
      // When another bootstrap sets the current password before this one plans
      state.password = 'current-pw';
      // Then there is nothing to set, and the adapter works with the current password
      expect(await es.planCredentials()).toEqual([]);
      expect(es.login).toBe('current');
    } finally {
      await es.close();
    }
  });

  it('names both refusals when the cluster refuses the current and the previous password past the readiness budget', async () => {
    // Given a cluster that refuses both passwords
    const fake = await rotatingCluster({ password: 'a-third-one' });
    const es = adapter(as(fake.url, 'elastic', 'current-pw'), { readyTimeoutMs: 1_500, logins: { previousUrl: as(fake.url, 'elastic', 'previous-pw') } });
    const started = Date.now();
    // When it connects / Then it waits out the budget and says both were refused, without a password
    const error = await es.connect().then(
      () => undefined,
      (reason: Error) => reason,
    );
    expect(error?.message).toMatch(
      /^elasticsearch: cannot connect to 127\.0\.0\.1:\d+ after 1\.\d s: authentication failed as elastic with the stack's current password and with the previous one the rotation keeps \(wrong passwords, or the security index still recovering\): current: security_exception: .*; previous: security_exception: /,
    );
    expect(error?.message).not.toMatch(/current-pw|previous-pw/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    // and it tried both in each attempt
    const tried = new Set(fake.requests.map((request) => request.auth));
    expect(tried).toEqual(new Set(['elastic:current-pw', 'elastic:previous-pw']));
    await es.close();
  });

  it("waits for the application's login through 401s (the file realm reloading its Secret), then accepts it", async () => {
    // Given a cluster that refuses allixios_app's new password twice, then accepts it
    let checks = 0;
    const fake = await fakeElasticsearch((request) =>
      request.path.startsWith('/_security/_authenticate') && request.auth === 'allixios_app:app-pw' && ++checks > 2
        ? { status: 200, body: { username: 'allixios_app' } }
        : unauthorised,
    );
    // When the login is verified / Then it is, after three checks
    await adapter(fake.url).verifyLogin(as(fake.url, 'allixios_app', 'app-pw'));
    expect(fake.requests.filter((request) => request.auth === 'allixios_app:app-pw')).toHaveLength(3);
  });

  it("gives up on an application's login still refused after the readiness budget, naming the user", async () => {
    const fake = await fakeElasticsearch(() => unauthorised);
    await expect(adapter(fake.url, { readyTimeoutMs: 800 }).verifyLogin(as(fake.url, 'allixios_app', 'app-pw'))).rejects.toThrow(
      /^elasticsearch: the login allixios_app is still refused after 0\.\d s \(refused: security_exception: unable to authenticate user/,
    );
  });
});
