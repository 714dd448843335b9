/**
 * The backups as Elasticsearch cluster state: the bootstrap's plan for the snapshot repository and
 * the SLM policy (desired from ALLIXIOS_BACKUP_ELASTICSEARCH, observed as `GET _snapshot/<name>`
 * and `GET _slm/policy/<id>` return them), and the adapter's requests, against a small HTTP server
 * answering as Elasticsearch does (no Elasticsearch runs here).
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { desiredBackup, elasticsearchDesired, elasticsearchEngine, watchedNames } from '../../bootstrap/adapters/elasticsearch.ts';
import { ElasticsearchAdapter } from '../../bootstrap/adapters/elasticsearch-adapter.ts';
import { planElasticsearch, type ElasticsearchObserved, type ObservedBackup } from '../../bootstrap/adapters/elasticsearch-plan.ts';
import { REPOSITORY, SLM_POLICY } from '../../databases/elasticsearch/backup.ts';

const SETTINGS = { bucket: 'allixios-backups', basePath: 'prod/elasticsearch', schedule: '0 2 * * *', retention: { count: 7, days: 30 } };
const ENV = { ALLIXIOS_ENVIRONMENT: 'prod', ALLIXIOS_BACKUP_ELASTICSEARCH: JSON.stringify(SETTINGS) };
const DESIRED = elasticsearchEngine.desired(ENV);
const BACKUP = DESIRED.backup!;

/** The rest of the cluster as the definitions want it, so that only the backups' subjects change. */
function clusterInSync(backup?: ObservedBackup): ElasticsearchObserved {
  const empty = planElasticsearch(DESIRED, null, {});
  expect(empty.changes.length).toBeGreaterThan(0);
  return { indices: [], templates: {}, ledger: [], ...(backup ? { backup } : {}) };
}

/** The repository and policy as Elasticsearch returns them once put: settings as strings. */
function observedAsPut(): ObservedBackup {
  const settings = Object.fromEntries(Object.entries(BACKUP.repository.definition.settings).map(([key, value]) => [key, String(value)]));
  return { repositoryName: REPOSITORY, policyId: SLM_POLICY, repository: { type: 's3', settings }, policy: JSON.parse(JSON.stringify(BACKUP.policy.definition)) };
}

const backupChanges = (observed: ElasticsearchObserved | null, desired = DESIRED) =>
  planElasticsearch(desired, observed, {}).changes.filter((change) => change.subject.startsWith('snapshot'));

describe('planning the repository and the policy', () => {
  it('creates the repository, then the policy that writes to it, after everything else, on a cluster without them', () => {
    // Given a cluster with neither; when planned
    const plan = planElasticsearch(DESIRED, clusterInSync({ repositoryName: REPOSITORY, policyId: SLM_POLICY, repository: null, policy: null }), {});
    // Then both are created, last, the repository first
    expect(plan.changes.slice(-2).map((change) => [change.subject, change.action, change.payload.kind])).toEqual([
      ['snapshot repository allixios-backups', 'create', 'put-snapshot-repository'],
      ['snapshot lifecycle policy allixios-snapshots', 'create', 'put-slm-policy'],
    ]);
    expect(plan.changes.at(-1)!.detail).toBe(
      'missing: snapshots 0 0 2 * * ? (UTC) into allixios-backups, expire after 30d, keep 7 to 30 (ALLIXIOS_BACKUP_ELASTICSEARCH: schedule 0 2 * * *, retention 7 snapshots / 30 days)',
    );
    expect(plan.refusals).toEqual([]);
  });

  it('plans the same two in the offline dry run (no cluster)', () => {
    expect(backupChanges(null).map((change) => change.action)).toEqual(['create', 'create']);
  });

  it('plans nothing for a repository and a policy as Elasticsearch reports them after a first bootstrap: a second one applies nothing', () => {
    const plan = planElasticsearch(DESIRED, clusterInSync(observedAsPut()), {});
    expect(plan.changes.filter((change) => change.subject.startsWith('snapshot'))).toEqual([]);
    expect(plan.inSync).toEqual(
      expect.arrayContaining([
        'snapshot repository allixios-backups (s3 allixios-backups/prod/elasticsearch)',
        'snapshot lifecycle policy allixios-snapshots (0 0 2 * * ? into allixios-backups)',
      ]),
    );
  });

  it('puts the repository again when its bucket, prefix, client or type differ, or a setting was added by hand, saying what differs', () => {
    const observed = observedAsPut();
    observed.repository = { type: 'fs', settings: { ...observed.repository!.settings, base_path: 'old/elasticsearch', compress: 'true' } };
    const [change] = backupChanges(clusterInSync(observed));
    expect(change).toMatchObject({ subject: 'snapshot repository allixios-backups', action: 'update', payload: { kind: 'put-snapshot-repository' } });
    expect(change!.detail).toMatch(/^type "fs" → "s3"; base_path "old\/elasticsearch" → "prod\/elasticsearch"; compress "true" → null \(ALLIXIOS_BACKUP_ELASTICSEARCH/);
  });

  it('puts the policy again when the schedule or the retention changed, and only the policy', () => {
    const desired = elasticsearchEngine.desired({
      ...ENV,
      ALLIXIOS_BACKUP_ELASTICSEARCH: JSON.stringify({ ...SETTINGS, schedule: '30 3 * * *', retention: { count: 7, days: 14 } }),
    });
    const changes = backupChanges(clusterInSync(observedAsPut()), desired);
    expect(changes.map((change) => [change.subject, change.action])).toEqual([['snapshot lifecycle policy allixios-snapshots', 'update']]);
    expect(changes[0]!.detail).toContain('schedule "0 0 2 * * ?" → "0 30 3 * * ?"');
    expect(changes[0]!.detail).toContain('"expire_after":"30d"');
  });

  it('deletes a policy of ours when the stack no longer backs up, keeping the repository and its snapshots', () => {
    const off = elasticsearchEngine.desired({ ALLIXIOS_ENVIRONMENT: 'prod' });
    expect(off.backup).toBeUndefined();
    const changes = backupChanges(clusterInSync(observedAsPut()), off);
    expect(changes).toEqual([
      {
        subject: 'snapshot lifecycle policy allixios-snapshots',
        action: 'delete',
        detail: 'the stack does not back up (no ALLIXIOS_BACKUP_ELASTICSEARCH): the policy stops; the repository allixios-backups and its snapshots stay',
        source: 'databases/elasticsearch/backup.ts',
        payload: { kind: 'delete-slm-policy', id: 'allixios-snapshots' },
      },
    ]);
    // And without backups and without a policy, nothing
    expect(backupChanges(clusterInSync({ repositoryName: REPOSITORY, policyId: SLM_POLICY, repository: null, policy: null }), off)).toEqual([]);
  });

  it('fails the run on malformed backup settings, naming the variable and the file', () => {
    expect(() => desiredBackup({ ALLIXIOS_BACKUP_ELASTICSEARCH: JSON.stringify({ ...SETTINGS, schedule: '0 2 1 * 1' }) })).toThrow(
      /^elasticsearch: databases\/elasticsearch\/backup\.ts: ALLIXIOS_BACKUP_ELASTICSEARCH: schedule: cannot convert the cron expression "0 2 1 \* 1"/,
    );
  });

  it('watches the repository and the policy whether or not the stack backs up', () => {
    expect(watchedNames(elasticsearchDesired('dev')).backup).toEqual({ repository: REPOSITORY, policy: SLM_POLICY });
  });
});

// ---------------------------------------------------------------------------------------------
// The adapter's requests

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

interface Seen {
  method: string;
  path: string;
  body: unknown;
}

async function fakeCluster(answer: (request: Seen) => { status: number; body?: unknown }): Promise<{ url: string; requests: Seen[] }> {
  const requests: Seen[] = [];
  server = createServer((incoming, response) => {
    let raw = '';
    incoming.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    incoming.on('end', () => {
      const request = { method: incoming.method ?? 'GET', path: incoming.url ?? '/', body: raw ? JSON.parse(raw) : undefined };
      requests.push(request);
      // The ledger's search, which every observation makes: empty.
      const reply = request.path.includes('/_search') ? { status: 200, body: { hits: { hits: [] } } } : answer(request);
      response.writeHead(reply.status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      response.end(JSON.stringify(reply.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server!.address() as { port: number };
  return { url: `http://elastic:secret@127.0.0.1:${port}`, requests };
}

describe('the adapter', () => {
  it('reads a missing repository and policy (404s) as none', async () => {
    const fake = await fakeCluster((request) =>
      request.path.startsWith('/_snapshot/')
        ? { status: 404, body: { error: { type: 'repository_missing_exception', reason: '[allixios-backups] missing' }, status: 404 } }
        : request.path.startsWith('/_slm/policy/')
          ? { status: 404, body: { error: { type: 'resource_not_found_exception', reason: 'snapshot lifecycle policy or policies [allixios-snapshots] not found' }, status: 404 } }
          : { status: 404, body: {} },
    );
    const adapter = new ElasticsearchAdapter(fake.url, {
      readyTimeoutMs: 2000,
      lockTimeoutMs: 2000,
      watch: { aliases: [], templates: [], backup: { repository: REPOSITORY, policy: SLM_POLICY } },
    });
    const observed = await adapter.observe();
    expect(observed.backup).toEqual({ repositoryName: REPOSITORY, policyId: SLM_POLICY, repository: null, policy: null });
    expect(fake.requests.map((request) => `${request.method} ${request.path.split('?')[0]}`)).toEqual(
      expect.arrayContaining(['GET /_snapshot/allixios-backups', 'GET /_slm/policy/allixios-snapshots']),
    );
  });

  it('reads the policy out of GET _slm/policy’s envelope, and puts the repository with verification and the policy as planned', async () => {
    const envelope = { [SLM_POLICY]: { version: 1, modified_date_millis: 1, policy: BACKUP.policy.definition, next_execution_millis: 2, stats: {} } };
    const fake = await fakeCluster((request) => {
      if (request.method === 'GET' && request.path.startsWith('/_slm/policy/')) return { status: 200, body: envelope };
      if (request.method === 'GET' && request.path.startsWith('/_snapshot/'))
        return { status: 200, body: { [REPOSITORY]: { type: 's3', settings: { bucket: 'b', client: 'allixios' } } } };
      return { status: 200, body: { acknowledged: true } };
    });
    const adapter = new ElasticsearchAdapter(fake.url, {
      readyTimeoutMs: 2000,
      lockTimeoutMs: 2000,
      watch: { aliases: [], templates: [], backup: { repository: REPOSITORY, policy: SLM_POLICY } },
    });
    const observed = await adapter.observe();
    expect(observed.backup?.policy).toEqual(BACKUP.policy.definition);
    expect(observed.backup?.repository).toEqual({ type: 's3', settings: { bucket: 'b', client: 'allixios' } });
    // Applying the plan's payloads, outside the lock's bookkeeping (the payloads are what matters here)
    const apply = (adapter as unknown as { applyPayload(payload: unknown): Promise<void> }).applyPayload.bind(adapter);
    for (const change of backupChanges(clusterInSync({ repositoryName: REPOSITORY, policyId: SLM_POLICY, repository: null, policy: null }))) await apply(change.payload);
    const writes = fake.requests.filter((request) => request.method === 'PUT');
    expect(writes.map((request) => request.path)).toEqual(['/_snapshot/allixios-backups?verify=true', '/_slm/policy/allixios-snapshots']);
    expect(writes[0]!.body).toEqual({ type: 's3', settings: { bucket: 'allixios-backups', base_path: 'prod/elasticsearch', client: 'allixios' } });
    expect(writes[1]!.body).toEqual(BACKUP.policy.definition);
  });
});
