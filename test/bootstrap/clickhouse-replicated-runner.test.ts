/**
 * The bootstrap on a replicated ClickHouse stack, on the wire: the real runner and adapter with the
 * real `@clickhouse/client` against a small HTTP server that answers as two members of a cluster
 * would for the requests at hand. No ClickHouse with Keeper runs here, so the replication itself
 * (a Replicated database's DDL log, a replicated table's fetches) is the fake's: it keeps one
 * ledger and one lock for both members, as they are once a member has synced. What is checked is
 * the bootstrap's side: which member it talks to, what it sends (the replicated form, the
 * settings, a sync before each read of the ledger and the lock), what it records, and what it
 * refuses.
 *
 * The two members listen on one port at two loopback addresses (127.0.0.1 and 127.0.0.2), and a
 * third address (127.0.0.3) plays the engine's Service, which hands a connection to a member.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ClickHouseAdapter } from '../../bootstrap/adapters/clickhouse-adapter.ts';
import { TOPOLOGY_QUERY } from '../../bootstrap/adapters/clickhouse-topology.ts';
import { checksum } from '../../bootstrap/checksum.ts';
import { runBootstrap, type BootstrapReport } from '../../bootstrap/runner.ts';
import { CLICKHOUSE, splitStatements } from '../../bootstrap/sql.ts';
import { assetFolder } from '../support/assets.ts';

const MEMBERS = ['127.0.0.1', '127.0.0.2'] as const;
type Member = (typeof MEMBERS)[number];
const SERVICE = '127.0.0.3';

interface Request {
  /** The member that answered (the Service's address is the member it hands the connection to). */
  member: Member;
  /** The host the client connected to: a member's stable name, or the Service's. */
  host: string;
  query: string;
  params: URLSearchParams;
  auth?: string;
}

/** What both members hold: per member its databases (name -> engine); the replicated ledger and lock, shared. */
interface ClusterState {
  databases: Record<Member, Map<string, string>>;
  tables: Record<Member, Set<string>>;
  /** Replicas registered per Replicated database (a member added later is not one yet). */
  replicas: Map<string, number>;
  ledger: Array<Record<string, unknown>>;
  /** Claims in Keeper's order; a release ends a holder's. */
  lock: Array<{ holder: string; live: boolean }>;
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

const json = (rows: object[]) => rows.map((row) => `${JSON.stringify(row)}\n`).join('');

/** The fake cluster's answer to one request on `member`. */
function answer(state: ClusterState, member: Member, request: { query: string; params: URLSearchParams; data: string }): string {
  const { query, params } = request;
  const param = (name: string) => params.get(`param_${name}`) ?? '';
  if (query === TOPOLOGY_QUERY) return json(MEMBERS.map((host) => ({ host_name: host, is_local: host === member ? 1 : 0 })));
  if (query.startsWith('SELECT engine FROM system.databases')) {
    const engine = state.databases[member].get(param('database'));
    return json(engine ? [{ engine }] : []);
  }
  if (query.includes('FROM system.tables')) return json([{ n: state.tables[member].has(`${param('database')}.${param('table')}`) ? '1' : '0' }]);
  if (query.includes('FROM system.databases AS d')) {
    return json([...state.databases[member]].filter(([, engine]) => engine === 'Replicated').map(([name]) => ({ name, replicas: String(state.replicas.get(name) ?? 0) })));
  }
  const database = /^CREATE DATABASE IF NOT EXISTS (\w+) ON CLUSTER allixios ENGINE = Replicated/.exec(query)?.[1];
  if (database) {
    // ON CLUSTER: every member creates its replica of the database, which recovers its tables.
    for (const host of MEMBERS) {
      state.databases[host].set(database, 'Replicated');
      for (const table of state.tables[MEMBERS.find((other) => other !== host)!]) if (table.startsWith(`${database}.`)) state.tables[host].add(table);
    }
    state.replicas.set(database, MEMBERS.length);
    return '';
  }
  const table = /^CREATE TABLE IF NOT EXISTS (\w+\.\w+)/.exec(query)?.[1];
  if (table) {
    // The Replicated database runs it on every member holding the database.
    for (const host of MEMBERS) if (state.databases[host].has(table.split('.')[0]!)) state.tables[host].add(table);
    return '';
  }
  if (query.startsWith('INSERT INTO allixios_bootstrap.lock')) {
    const holder = param('holder');
    if (Number(param('ms')) > 0) {
      if (!state.lock.some((claim) => claim.holder === holder)) state.lock.push({ holder, live: true });
    } else {
      for (const claim of state.lock) if (claim.holder === holder) claim.live = false;
    }
    return '';
  }
  if (query.includes('FROM allixios_bootstrap.lock GROUP BY holder')) return json(state.lock.filter((claim) => claim.live).map(({ holder }, claim) => ({ holder, claim })));
  if (query.startsWith('INSERT INTO allixios_bootstrap.ledger')) {
    for (const line of request.data.split('\n').filter(Boolean)) state.ledger.push(JSON.parse(line) as Record<string, unknown>);
    return '';
  }
  if (query.includes('FROM allixios_bootstrap.ledger WHERE statement = 0')) {
    return json(
      state.ledger
        .filter((row) => row.statement === 0)
        .map((row) => ({
          kind: row.kind,
          version: row.version,
          name: row.name,
          last_path: row.path,
          last_checksum: row.checksum,
          last_applied_at: '2026-12-01 00:00:00.000',
          last_duration_ms: row.duration_ms,
          last_applied_by: row.applied_by,
        })),
    );
  }
  if (query.includes('FROM allixios_bootstrap.ledger')) return json([]);
  return query.startsWith('SELECT') ? 'ping\n' : '';
}

/** Two members behind one port: 127.0.0.1 and 127.0.0.2, and the Service's address, 127.0.0.3, handing connections to `serviceTo`. */
async function fakeCluster(state: ClusterState, serviceTo: Member): Promise<{ port: number; requests: Request[] }> {
  const requests: Request[] = [];
  server = createServer((incoming: IncomingMessage, response: ServerResponse) => {
    let body = '';
    incoming.on('data', (chunk: Buffer) => (body += chunk.toString()));
    incoming.on('end', () => {
      const address = incoming.socket.localAddress!.replace(/^::ffff:/, '');
      const member = address === SERVICE ? serviceTo : (address as Member);
      const params = new URL(incoming.url ?? '/', 'http://fake').searchParams;
      // A command sends its query as the body; an insert in the URL, its rows as the body.
      // Without the FORMAT clause the client appends to a query.
      const query = (params.get('query') ?? body).replace(/\s+FORMAT \w+\s*$/, '').trim();
      const data = params.has('query') ? body : '';
      const basic = /^Basic (.+)$/.exec(incoming.headers.authorization ?? '');
      const host = (incoming.headers.host ?? '').replace(/:\d+$/, '');
      requests.push({ member, host, query, params, ...(basic ? { auth: Buffer.from(basic[1]!, 'base64').toString() } : {}) });
      response.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8', 'x-clickhouse-summary': '{"read_rows":"1"}' });
      response.end(answer(state, member, { query, params, data }));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '0.0.0.0', resolve));
  return { port: (server!.address() as { port: number }).port, requests };
}

function emptyCluster(): ClusterState {
  return {
    databases: { '127.0.0.1': new Map(), '127.0.0.2': new Map() },
    tables: { '127.0.0.1': new Set(), '127.0.0.2': new Set() },
    replicas: new Map(),
    ledger: [],
    lock: [],
  };
}

const ASSETS = {
  'schemas/V0001__database.sql': 'CREATE DATABASE IF NOT EXISTS runner_test;',
  'schemas/V0002__events.sql': 'CREATE TABLE IF NOT EXISTS runner_test.events (at DateTime, article UInt32) ENGINE = MergeTree ORDER BY (article, at);',
};

function bootstrap(port: number, directory: string, mode: 'apply' | 'dry-run' = 'apply'): Promise<BootstrapReport> {
  return runBootstrap({
    mode,
    env: { CLICKHOUSE_URL: `http://allixios_admin:admin-pw@${SERVICE}:${port}` },
    only: ['clickhouse'],
    assetDirectories: { clickhouse: directory },
    readyTimeoutMs: 3000,
    lockTimeoutMs: 5000,
    lockLeaseMs: 3000,
  });
}

const changedOf = (report: BootstrapReport) => report.engines[0]!.changed.map(({ change }) => change.subject);

describe('the bootstrap on a replicated ClickHouse stack', () => {
  it('works with the member the Service gave it, by its stable name, and sends the schema in its replicated form', async () => {
    // Given a fresh cluster of two members, the Service handing the bootstrap to 127.0.0.1
    const state = emptyCluster();
    const fake = await fakeCluster(state, '127.0.0.1');
    const directory = assetFolder(ASSETS);
    // When the bootstrap applies the schema
    const report = await bootstrap(fake.port, directory);
    // Then both files are applied
    expect(report.ok, JSON.stringify(report.engines[0]?.error)).toBe(true);
    expect(changedOf(report)).toEqual(['V0001 database', 'V0002 events']);
    // through the Service only to learn which member answered and whether it holds a ledger; as it
    // holds none, the other member is asked whether it does (it does not: a fresh cluster); then
    // everything goes to the member the Service gave, by its stable name
    const through = (host: string) => fake.requests.filter((request) => request.host === host).map((request) => request.query.split(' FROM ')[0]!.slice(0, 40));
    expect(through(SERVICE)).toEqual(["SELECT 'ping'", 'SELECT host_name, is_local', 'SELECT engine']);
    expect(through('127.0.0.2')).toEqual(["SELECT 'ping'", 'SELECT engine']);
    const pinned = fake.requests.filter((request) => request.host === '127.0.0.1');
    expect(pinned.length + through(SERVICE).length + through('127.0.0.2').length).toBe(fake.requests.length);
    expect(pinned.every((request) => request.member === '127.0.0.1')).toBe(true);
    const sent = pinned.map((request) => request.query);
    // the bookkeeping database and tables replicated, the lock's claims numbered by Keeper
    expect(sent).toContain(
      "CREATE DATABASE IF NOT EXISTS allixios_bootstrap ON CLUSTER allixios ENGINE = Replicated('/clickhouse/databases/allixios_bootstrap', '{shard}', '{replica}')",
    );
    expect(sent.find((query) => query.startsWith('CREATE TABLE IF NOT EXISTS allixios_bootstrap.ledger'))).toContain('ENGINE = ReplicatedMergeTree ORDER BY');
    expect(sent.find((query) => query.startsWith('CREATE TABLE IF NOT EXISTS allixios_bootstrap.lock'))).toMatch(
      /ENGINE = ReplicatedMergeTree ORDER BY[\s\S]*SETTINGS enable_block_number_column = 1$/,
    );
    // the assets in their replicated form, each with the settings that keep them replicated and report the other members
    const schema = pinned.filter((request) => /^CREATE (DATABASE|TABLE) IF NOT EXISTS runner_test/.test(request.query));
    expect(schema.map((request) => request.query)).toEqual([
      "CREATE DATABASE IF NOT EXISTS runner_test ON CLUSTER allixios ENGINE = Replicated('/clickhouse/databases/runner_test', '{shard}', '{replica}')",
      'CREATE TABLE IF NOT EXISTS runner_test.events (at DateTime, article UInt32) ENGINE = ReplicatedMergeTree ORDER BY (article, at)',
    ]);
    for (const request of schema) {
      expect([request.params.get('database_replicated_allow_only_replicated_engine'), request.params.get('distributed_ddl_output_mode')]).toEqual(['1', 'throw_only_active']);
    }
    // and the ledger records each file's own statement, not its replicated form
    const original = splitStatements(readFileSync(join(directory, 'schemas/V0002__events.sql'), 'utf8'), CLICKHOUSE)[0]!.text;
    expect(state.ledger.filter((row) => row.name === 'V0002__events.sql' && row.statement === 1).map((row) => row.statement_checksum)).toEqual([checksum(original)]);
  });

  it('reads the ledger and the lock only after the member has synced them from the others', async () => {
    const state = emptyCluster();
    const fake = await fakeCluster(state, '127.0.0.2');
    expect((await bootstrap(fake.port, assetFolder(ASSETS))).ok).toBe(true);
    const sent = fake.requests.map((request) => request.query);
    const reads = sent.flatMap((query, index) => (/FROM allixios_bootstrap\.(ledger|lock)\b/.test(query) && !query.startsWith('INSERT') ? [index] : []));
    expect(reads.length).toBeGreaterThan(3);
    for (const index of reads) {
      const table = /FROM (allixios_bootstrap\.\w+)/.exec(sent[index]!)![1]!;
      // The nearest sync before the read is this table's (after the database's DDL log).
      const syncs = sent.slice(0, index).filter((query) => query.startsWith('SYSTEM SYNC'));
      expect(syncs.slice(-2), sent[index]).toEqual(['SYSTEM SYNC DATABASE REPLICA allixios_bootstrap', `SYSTEM SYNC REPLICA ${table} LIGHTWEIGHT`]);
    }
  });

  it('applies nothing again when the next run reaches the other member', async () => {
    // Given a schema applied through 127.0.0.1
    const state = emptyCluster();
    const first = await fakeCluster(state, '127.0.0.1');
    const directory = assetFolder(ASSETS);
    expect(changedOf(await bootstrap(first.port, directory))).toEqual(['V0001 database', 'V0002 events']);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    // When the next run is handed to 127.0.0.2
    const second = await fakeCluster(state, '127.0.0.2');
    const report = await bootstrap(second.port, directory);
    // Then it reads the ledger there, after syncing it, and has nothing to apply
    expect(report.ok).toBe(true);
    expect(changedOf(report)).toEqual([]);
    expect(new Set(second.requests.map((request) => request.member))).toEqual(new Set(['127.0.0.2']));
    expect(second.requests.map((request) => request.query)).toContain('SYSTEM SYNC REPLICA allixios_bootstrap.ledger LIGHTWEIGHT');
    expect(second.requests.some((request) => request.query.startsWith('CREATE'))).toBe(false);
  });

  it('reads the ledger on a member that holds it when the Service gives it a member just added, and creates the databases there first', async () => {
    // Given a schema applied while the cluster had one member, and a second member added since, without databases
    const state = emptyCluster();
    const first = await fakeCluster(state, '127.0.0.2');
    const directory = assetFolder(ASSETS);
    expect((await bootstrap(first.port, directory)).ok).toBe(true);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    state.databases['127.0.0.1'].clear();
    state.tables['127.0.0.1'].clear();
    for (const database of ['allixios_bootstrap', 'runner_test']) state.replicas.set(database, 1);
    // When a dry run is handed to the new member
    const added = await fakeCluster(state, '127.0.0.1');
    const dryRun = await bootstrap(added.port, directory, 'dry-run');
    // Then it reads the ledger on the member that holds it (the migrations are applied) and plans a replica of each database for the new one
    expect(dryRun.ok).toBe(true);
    expect(dryRun.engines[0]!.plan!.changes).toEqual([]);
    expect(dryRun.engines[0]!.credentials!.changes.map((change) => `${change.action} ${change.subject}: ${change.detail}`)).toEqual([
      'create database allixios_bootstrap: a replica on the members of allixios without one (1 of 2 members hold it)',
      'create database runner_test: a replica on the members of allixios without one (1 of 2 members hold it)',
    ]);
    expect(added.requests.filter((request) => request.query.startsWith('SELECT holder')).length).toBe(0);
    expect(added.requests.filter((request) => request.query.includes('FROM allixios_bootstrap.ledger')).every((request) => request.member === '127.0.0.2')).toBe(true);
    expect(state.databases['127.0.0.1'].size).toBe(0);
    // When it applies
    const apply = await bootstrap(added.port, directory);
    // Then each database is created on every member, and no migration runs again
    expect(apply.ok).toBe(true);
    expect(apply.engines[0]!.credentials!.changed.map(({ change }) => change.subject)).toEqual(['database allixios_bootstrap', 'database runner_test']);
    expect(changedOf(apply)).toEqual([]);
    expect([...state.databases['127.0.0.1']]).toEqual([
      ['allixios_bootstrap', 'Replicated'],
      ['runner_test', 'Replicated'],
    ]);
  });

  it("refuses a single server's ledger database on a replicated stack, pointing at the README", async () => {
    // Given a stack that ran as a single server and has been scaled to two members
    const state = emptyCluster();
    state.databases['127.0.0.1'].set('allixios_bootstrap', 'Atomic');
    state.tables['127.0.0.1'].add('allixios_bootstrap.ledger');
    state.tables['127.0.0.1'].add('allixios_bootstrap.lock');
    const fake = await fakeCluster(state, '127.0.0.1');
    // When the bootstrap runs
    const report = await bootstrap(fake.port, assetFolder(ASSETS));
    // Then it refuses, changing nothing
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toMatch(
      /the database allixios_bootstrap is Atomic, a single server's, on a stack of 2 members: a single-server stack does not become replicated in place \(databases\/clickhouse\/README\.md, "Replicas"/,
    );
    expect(fake.requests.some((request) => /^(CREATE|INSERT)/.test(request.query))).toBe(false);
  });

  it("checks the application's login on every member: each reloads its own users.d", async () => {
    const state = emptyCluster();
    const fake = await fakeCluster(state, '127.0.0.2');
    const clickhouse = new ClickHouseAdapter(`http://allixios_admin:admin-pw@${SERVICE}:${fake.port}`, { readyTimeoutMs: 3000, lockTimeoutMs: 3000 });
    try {
      await clickhouse.connect();
      expect(clickhouse.serverTopology).toEqual({ kind: 'replicated', members: [...MEMBERS], member: '127.0.0.2' });
      await clickhouse.verifyLogin(`http://allixios_app:app-pw@${SERVICE}:${fake.port}/allixios`);
      const checks = fake.requests.filter((request) => request.auth === 'allixios_app:app-pw');
      expect(checks.map((request) => request.host)).toEqual([...MEMBERS]);
    } finally {
      await clickhouse.close();
    }
  });
});
