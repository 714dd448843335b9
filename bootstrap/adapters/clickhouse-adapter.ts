/**
 * The ClickHouse adapter (the engine is `clickhouse.ts`; this module and its driver,
 * @clickhouse/client, are loaded only when a run connects). ClickHouse DDL is not transactional, so the ledger records progress per
 * statement: a run that fails in the middle of a file leaves the statements before the failure
 * applied and recorded, and the next run (with the file fixed) skips those and resumes at the
 * first statement not yet applied in the same form. The assets are idempotent besides
 * (`IF NOT EXISTS`), so even an unrecorded statement is safe to repeat.
 *
 * ClickHouse has no advisory locks: bootstraps are serialised by a lease (`bootstrap/lease.ts`)
 * in a table. A holder renews its lease while it works; a lease not renewed expires, so a killed
 * bootstrap blocks others for at most one lease period.
 *
 * Passwords rotate (README "Rotating a password"). ClickHouse's users come from its users.d file,
 * which SQL cannot change: the server reloads it when the stack's rotated Secret reaches the
 * mounted directory. The adapter logs in with the current password or, until the server has
 * reloaded the file, with the previous one the rotation keeps, and then waits for the reload.
 *
 * On a replicated stack (several members, `clickhouse-topology.ts`) a run works with one member
 * for all its requests: the one the Service gave it, or the first that holds the ledger when that
 * one does not (a member just added). Its schema statements run in their replicated form, the
 * bookkeeping tables are replicated, and every read of them first waits until the member has
 * every row written through any member before (`SYSTEM SYNC REPLICA`). A member without the
 * Replicated databases the others hold gets them before the migrations, as a change of the plan
 * (databases/clickhouse/README.md, "Replicas").
 */
import { hostname } from 'node:os';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { checksum } from '../checksum.ts';
import { clickhouse } from '../../databases/clickhouse/index.ts';
import { CLIENT_CA_PATH } from '../../databases/connection.ts';
import type { AdapterOptions, Change, Login } from '../contract.ts';
import { BootstrapError, toError } from '../errors.ts';
import { Lease, type LeaseStore } from '../lease.ts';
import type { MigrationAdapter } from '../migrations.ts';
import type { LedgerEntry, PlanStep } from '../plan.ts';
import { assetStatements } from '../sql-assets.ts';
import { CLICKHOUSE, type Statement } from '../sql.ts';
import {
  bookkeepingTables,
  CLUSTER,
  createReplicatedDatabase,
  liveLeasesQuery,
  memberUrl,
  REPLICATED_DDL_SETTINGS,
  statementFor,
  topologyOf,
  TOPOLOGY_QUERY,
  type ClickHouseTopology,
  type ClusterRow,
} from './clickhouse-topology.ts';
import { createdDatabase } from './clickhouse-replicated.ts';
import { notReachable, readiness, retryWithBackoff, sleep, stillNotReachable, TRY_AGAIN } from './backoff.ts';
import { readClientCa } from './client-ca.ts';
import { LoginRefused, openWithRotation, urlUser, waitUntilAccepted, type LoginAttempt } from './logins.ts';

const DATABASE = 'allixios_bootstrap';
const LEDGER = `${DATABASE}.ledger`;
const LOCK = `${DATABASE}.lock`;
/** Statement 0 in the ledger marks a whole asset applied; 1..n record progress within it. */
const COMPLETE = 0;
/** How long a claim waits before it looks again: long enough for a concurrent claim to be seen. */
const SETTLE_MS = 200;
/** Where the admin's password reaches the server from (rendered into the engine's Secret). */
const USERS_FILE = 'databases/clickhouse/config/users.d/allixios.xml';
/** How long one check of a login may wait for an answer: it is repeated within the readiness timeout. */
const MAX_CHECK_MS = 5000;
/** AUTHENTICATION_FAILED (a wrong user or password) and REQUIRED_PASSWORD: waiting does not fix them. */
const REFUSED_CODES = new Set(['516', '194']);

/** ClickHouse's error name (UNKNOWN_TYPE, ...): the client puts it in `type`. */
function errorType(error: unknown): string | undefined {
  const type = (error as { type?: unknown }).type;
  return typeof type === 'string' && type !== '' ? type : undefined;
}

/**
 * A refused login: the client parses ClickHouse's error (`Code: 516. ... (AUTHENTICATION_FAILED)`)
 * into its code; a proxy's 401/403 page is only text.
 */
function isLoginRefused(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && REFUSED_CODES.has(code)) return true;
  return /Authentication failed|AUTHENTICATION_FAILED|REQUIRED_PASSWORD/.test(toError(error).message ?? '');
}

/** How one authenticated request went: accepted, refused, or not answered (yet). */
type Check = { accepted: true } | { accepted: false; refused: boolean; reason: string; code?: string };

const asAttempt = (check: Check): LoginAttempt => (check.accepted ? check : { accepted: false, reason: check.refused ? `refused: ${check.reason}` : check.reason });

/**
 * The changes before the migrations: a rotation's (nothing to the server, it waits for the
 * server's reload of users.d) and, on a replicated stack, a Replicated database created on the
 * members that do not have it yet (a member added, or one rebuilt from an empty volume).
 */
export type ClickHouseCredentialPayload = { kind: 'wait' } | { kind: 'replicate-database'; database: string };

/** The settings of a schema statement on a replicated stack (the client's types know fewer values than the server). */
const replicatedDdlSettings = REPLICATED_DDL_SETTINGS as unknown as NonNullable<Parameters<ClickHouseClient['command']>[0]['clickhouse_settings']>;

/** The client's options (the package exports no name for them). */
type ClientOptions = NonNullable<Parameters<typeof createClient>[0]>;

/**
 * The client's options for `url`: its server and credentials, and for an `https:` URL the stack's
 * CA bundle (read from `caFile`), which Node verifies the chain and the host name with (neither
 * turned off here). The URL carries no CA: ClickHouse's TLS form is its scheme.
 */
export function clickhouseClientOptions(url: string, caFile: string = CLIENT_CA_PATH): ClientOptions {
  const parsed = new URL(url);
  return {
    // The bootstrap creates the platform's database itself: it must not be the default.
    url: `${parsed.protocol}//${parsed.host}`,
    username: decodeURIComponent(parsed.username) || 'default',
    password: decodeURIComponent(parsed.password),
    ...(parsed.protocol === 'https:' ? { tls: { ca_cert: readClientCa('clickhouse', caFile) } } : {}),
    application: 'allixios-bootstrap',
    request_timeout: 300_000,
    // The client logs every failed request: a server not up yet, a password not reloaded yet, a
    // lease renewal refused during the reload. The adapter handles each and reports what it
    // gave up on, with the engine's own error: the client's log would only repeat it.
    log: { level: ClickHouseLogLevel.OFF },
  };
}

export interface ClickHouseAdapterOptions extends AdapterOptions {
  /** A ready client instead of one made from the URL: chdb in `npm run check` and the tests. */
  client?: ClickHouseClient;
}

export class ClickHouseAdapter implements MigrationAdapter {
  readonly engine = clickhouse.name;
  readonly target: string;
  /** The admin URL; none with an injected client (chdb), which has no logins to rotate. */
  private readonly url?: string;
  private readonly user: string;
  /** The client the adapter works with. */
  private connection?: ClickHouseClient;
  /** The client with the stack's current password, once made. */
  private current?: ClickHouseClient;
  /**
   * Clients made from URLs, closed only by `close()`: a lease renewal may still be running on
   * one given up for another, and closing it under the renewal would lose the lock.
   */
  private readonly owned: ClickHouseClient[] = [];
  private loggedIn?: Login;
  /** The lease the lock is (`bootstrap/lease.ts`). */
  readonly lease: Lease;
  private ledgerReady = false;
  /** Set by `connect()`: a single server, or the members of a replicated stack and the one this run works with. */
  private topology: ClickHouseTopology = { kind: 'single' };
  /** On a replicated stack, the member every request of this run goes to (its stable host name). */
  private member?: string;

  constructor(
    url: string | undefined,
    private readonly options: ClickHouseAdapterOptions,
  ) {
    this.lease = new Lease(this.engine, this.leaseStore(), options);
    if (options.client) {
      this.connection = options.client;
      this.target = url ? new URL(url).host : 'embedded (chdb)';
      this.user = 'default';
    } else {
      if (!url) throw new BootstrapError(this.engine, 'no URL and no client');
      const parsed = new URL(url);
      this.url = url;
      this.user = decodeURIComponent(parsed.username) || 'default';
      this.target = `${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
    }
  }

  private get client(): ClickHouseClient {
    if (!this.connection) throw new BootstrapError(this.engine, 'not connected');
    return this.connection;
  }

  /** A client for `url`, with its credentials; on a replicated stack, for the run's member. */
  private clientFor(url: string): ClickHouseClient {
    return createClient(clickhouseClientOptions(this.member ? memberUrl(url, this.member) : url));
  }

  /** How the server runs (set by `connect()`), for the tests and messages. */
  get serverTopology(): ClickHouseTopology {
    return this.topology;
  }

  /** Which password `connect()` logged in with; `current` again once the server has reloaded its users. */
  get login(): Login | undefined {
    return this.loggedIn;
  }

  /**
   * One authenticated request (`SELECT 'ping'`: the /ping endpoint checks no credentials), given
   * at most `timeoutMs` to answer.
   */
  private async check(client: ClickHouseClient, timeoutMs: number): Promise<Check> {
    const signal = AbortSignal.timeout(timeoutMs);
    const result = await client.ping({ select: true, abort_signal: signal });
    if (result.success) return { accepted: true };
    const { error } = result;
    const code = errorType(error);
    if (isLoginRefused(error)) return { accepted: false, refused: true, reason: error.message.trim(), ...(code ? { code } : {}) };
    return { accepted: false, refused: false, reason: signal.aborted ? `no answer within ${(timeoutMs / 1000).toFixed(1)} s` : error.message.trim() };
  }

  /** Waits (bounded, with backoff) until the server accepts the admin, with the current password or, when refused, the previous one. */
  async connect(): Promise<void> {
    // An injected client is chdb's, in-process: a single server.
    if (!this.url) return this.waitForEmbedded();
    const urls = { current: this.url, previous: this.options.logins?.previousUrl };
    const { client, login } = await openWithRotation(this.engine, urls, (url) => this.open(url));
    this.connection = client;
    if (login === 'current') this.current = client;
    this.loggedIn = login;
    this.topology = await this.readTopology(client);
    if (this.topology.kind === 'replicated') await this.pinMember(this.topology, login === 'current' ? this.url : urls.previous!);
  }

  private async readTopology(client: ClickHouseClient): Promise<ClickHouseTopology> {
    return topologyOf(await (await client.query({ query: TOPOLOGY_QUERY, format: 'JSONEachRow' })).json<ClusterRow>());
  }

  /**
   * Chooses the member this run works with and connects to it by its stable name: the one that
   * answered, unless it holds no ledger while another member does (a member just added or
   * rebuilt: its Replicated databases are created by this run, the ledger is read where it is).
   */
  private async pinMember(topology: Extract<ClickHouseTopology, { kind: 'replicated' }>, url: string): Promise<void> {
    let member = topology.member;
    if (!(await this.databaseOf(this.client, DATABASE))) {
      for (const other of topology.members.filter((host) => host !== topology.member)) {
        const probe = createClient(clickhouseClientOptions(memberUrl(url, other)));
        try {
          if ((await this.check(probe, MAX_CHECK_MS)).accepted && (await this.databaseOf(probe, DATABASE)) === 'Replicated') {
            member = other;
            break;
          }
        } catch {
          // A member that does not answer cannot be the one to read the ledger from.
        } finally {
          await probe.close().catch(() => undefined);
        }
      }
    }
    this.member = member;
    const client = await this.open(url);
    this.connection = client;
    if (this.loggedIn === 'current') this.current = client;
  }

  /** The engine of `database` on the server `client` reaches (undefined: no such database). */
  private async databaseOf(client: ClickHouseClient, database: string): Promise<string | undefined> {
    const result = await client.query({ query: 'SELECT engine FROM system.databases WHERE name = {database:String}', query_params: { database }, format: 'JSONEachRow' });
    return (await result.json<{ engine: string }>())[0]?.engine;
  }

  /** An injected client (chdb): waits until it answers; it has no credentials. */
  private async waitForEmbedded(): Promise<void> {
    let last = 'no attempt made';
    const attempt = async () => {
      const result = await this.client.ping();
      if (result.success) return true;
      last = result.error.message;
      return TRY_AGAIN;
    };
    await retryWithBackoff(
      readiness(this.options.readyTimeoutMs),
      attempt,
      (elapsed) => notReachable(this.engine, this.target, elapsed, last),
      stillNotReachable(this.options.onWait, this.target, () => last),
    );
  }

  /** Waits (bounded, with backoff) until the server accepts `url`; a refused login is not waited on. */
  private async open(url: string): Promise<ClickHouseClient> {
    const client = this.clientFor(url);
    let last = 'no attempt made';
    const attempt = async (remaining: number) => {
      const check = await this.check(client, Math.max(500, Math.min(MAX_CHECK_MS, remaining)));
      if (check.accepted) return true;
      if (check.refused) throw new LoginRefused(this.engine, check.reason, `cannot connect to ${this.target} as ${urlUser(url)}: ${check.reason}`, check.code);
      last = check.reason;
      return TRY_AGAIN;
    };
    try {
      await retryWithBackoff(
        readiness(this.options.readyTimeoutMs),
        attempt,
        (elapsed) => notReachable(this.engine, this.target, elapsed, last),
        stillNotReachable(this.options.onWait, this.target, () => last),
      );
    } catch (error) {
      await client.close().catch(() => undefined);
      throw error;
    }
    this.owned.push(client);
    return client;
  }

  /** The client with the stack's current password, made once. */
  private currentClient(): ClickHouseClient {
    if (!this.current) {
      this.current = this.clientFor(this.url!);
      this.owned.push(this.current);
    }
    return this.current;
  }

  /**
   * Works with the current password from now on. A lease renewal refused while the server
   * reloaded its users was skipped (see `leaseStore`): the lease is renewed at once, if it is
   * still this bootstrap's.
   */
  private async useCurrent(): Promise<void> {
    this.connection = this.currentClient();
    this.loggedIn = 'current';
    await this.lease.renewNow();
  }

  /**
   * Logged in with the previous password: the server has not reloaded its users.d from the
   * rotated Secret yet, and the change is to wait for it. Unless it accepts the current
   * password by now: then the adapter switches to it.
   */
  async planCredentials(): Promise<Array<Change<ClickHouseCredentialPayload>>> {
    return [...(await this.planLogin()), ...(await this.planMembers())];
  }

  private async planLogin(): Promise<Array<Change<ClickHouseCredentialPayload>>> {
    if (this.loggedIn !== 'previous') return [];
    if ((await this.check(this.currentClient(), MAX_CHECK_MS)).accepted) {
      await this.useCurrent();
      return [];
    }
    return [
      {
        subject: `user ${this.user}`,
        action: 'update',
        detail: "the server still has the previous password: waiting for it to reload users.d from the engine's Secret",
        source: USERS_FILE,
        payload: { kind: 'wait' },
      },
    ];
  }

  /**
   * On a replicated stack: each Replicated database of the schema (its log under
   * /clickhouse/databases/) that fewer replicas hold than the cluster has members, to be created
   * on the members without it. A database a member holds already is left as it is there.
   */
  private async planMembers(): Promise<Array<Change<ClickHouseCredentialPayload>>> {
    const topology = this.topology;
    if (topology.kind === 'single') return [];
    const result = await this.client.query({
      query: `SELECT d.name AS name, (SELECT count() FROM system.clusters WHERE cluster = d.name) AS replicas
              FROM system.databases AS d WHERE d.engine = 'Replicated' AND position(d.engine_full, concat('/clickhouse/databases/', d.name, char(39))) > 0
              ORDER BY d.name`,
      format: 'JSONEachRow',
    });
    const rows = await result.json<{ name: string; replicas: string | number }>();
    return rows
      .filter((row) => Number(row.replicas) < topology.members.length)
      .map((row) => ({
        subject: `database ${row.name}`,
        action: 'create',
        detail: `a replica on the members of ${CLUSTER} without one (${Number(row.replicas)} of ${topology.members.length} members hold it)`,
        source: 'databases/clickhouse/README.md',
        payload: { kind: 'replicate-database', database: row.name },
      }));
  }

  /** Waits (within the readiness timeout) until the server accepts the current password, then works with it; or creates a database on the members without it. */
  async applyCredential(change: Change<ClickHouseCredentialPayload>): Promise<void> {
    if (change.payload.kind === 'replicate-database') {
      await this.client.command({ query: createReplicatedDatabase(change.payload.database), clickhouse_settings: replicatedDdlSettings });
      return;
    }
    const current = this.currentClient();
    const what = `${change.subject} with the stack's current password`;
    await waitUntilAccepted(this.engine, what, this.options, async () => asAttempt(await this.check(current, MAX_CHECK_MS)));
    await this.useCurrent();
  }

  /** Waits until the server accepts `url` (the application's login), each check with a client of its own. */
  async verifyLogin(url: string): Promise<void> {
    // An injected client (chdb) has no users to log in as.
    if (!this.url) return;
    const timeoutMs = Math.min(MAX_CHECK_MS, this.options.readyTimeoutMs);
    // Each member reloads its own users.d: on a replicated stack, every member must accept it.
    const urls = this.topology.kind === 'replicated' ? this.topology.members.map((host) => ({ url: memberUrl(url, host), on: ` on ${host}` })) : [{ url, on: '' }];
    for (const target of urls) {
      await waitUntilAccepted(this.engine, `the login ${urlUser(url)}${target.on}`, this.options, async () => {
        const client = createClient(clickhouseClientOptions(target.url));
        try {
          return asAttempt(await this.check(client, timeoutMs));
        } finally {
          await client.close().catch(() => undefined);
        }
      });
    }
  }

  private async exists(table: 'ledger' | 'lock'): Promise<boolean> {
    const result = await this.client.query({
      query: 'SELECT count() AS n FROM system.tables WHERE database = {database:String} AND name = {table:String}',
      query_params: { database: DATABASE, table },
      format: 'JSONEachRow',
    });
    const [row] = await result.json<{ n: string | number }>();
    return Number(row?.n) > 0;
  }

  /** The bookkeeping tables, created the first time a bootstrap needs them. */
  private async ensureTables(): Promise<void> {
    if (this.ledgerReady) return;
    if (this.topology.kind === 'replicated') await this.refuseSingleServerDatabase();
    if (!(await this.exists('ledger')) || !(await this.exists('lock'))) {
      const replicated = this.topology.kind === 'replicated';
      const settings = replicated ? { clickhouse_settings: replicatedDdlSettings } : {};
      await this.client.command({ query: replicated ? createReplicatedDatabase(DATABASE) : `CREATE DATABASE IF NOT EXISTS ${DATABASE}`, ...settings });
      const tables = bookkeepingTables(DATABASE, this.topology);
      await this.client.command({ query: tables.ledger, ...settings });
      await this.client.command({ query: tables.lock, ...settings });
    }
    this.ledgerReady = true;
  }

  /**
   * A replicated stack's bookkeeping database must be Replicated: one a single server created
   * (Atomic) would keep a ledger on this member only. Such a stack was single and has been scaled:
   * its data is moved as the README says, never silently rewritten here.
   */
  private async refuseSingleServerDatabase(): Promise<void> {
    const engine = await this.databaseOf(this.client, DATABASE);
    if (engine !== undefined && engine !== 'Replicated') {
      throw new BootstrapError(
        this.engine,
        `${this.member ?? this.target}: the database ${DATABASE} is ${engine}, a single server's, on a stack of ${this.topology.kind === 'replicated' ? this.topology.members.length : 1} members: a single-server stack does not become replicated in place (databases/clickhouse/README.md, "Replicas", says how to move one)`,
      );
    }
  }

  /**
   * On a replicated stack: waits until this member has every row of `table` written through any
   * member before now (the rows it fetches from the others), so a read sees what earlier runs
   * and concurrent claims wrote. A single server has nothing to wait for.
   */
  private async syncReplica(table: string): Promise<void> {
    if (this.topology.kind === 'single') return;
    await this.client.command({ query: `SYSTEM SYNC DATABASE REPLICA ${DATABASE}` });
    await this.client.command({ query: `SYSTEM SYNC REPLICA ${table} LIGHTWEIGHT` });
  }

  /** Live leases: the newest row of each holder, if it has not expired. Oldest claim first. */
  private async liveLeases(): Promise<Array<{ holder: string }>> {
    await this.syncReplica(LOCK);
    const result = await this.client.query({ query: liveLeasesQuery(LOCK, this.topology.kind === 'replicated' ? 'block' : 'time'), format: 'JSONEachRow' });
    return result.json();
  }

  /**
   * Writes `holder`'s lease row; every time comes from the server's clock, so the hosts'
   * clocks never matter. `first` claims (acquired now), otherwise the claim keeps its time.
   */
  private async writeLease(holder: string, expiresInMs: number, first = false): Promise<void> {
    const acquired = first ? 'now64(3)' : `(SELECT min(acquired_at) FROM ${LOCK} WHERE holder = {holder:String})`;
    await this.client.command({
      query: `INSERT INTO ${LOCK} (holder, acquired_at, expires_at)
              SELECT {holder:String}, ${acquired}, now64(3) + toIntervalMillisecond({ms:Int64})`,
      query_params: { holder, ms: expiresInMs },
    });
  }

  /**
   * The lease as claim rows, the oldest live claim winning. Two bootstraps that claim at once
   * both see both claims after the settle delay and agree on the older one. A renewal first
   * checks that the oldest live claim is still this one's: a row written after the lease
   * expired and another claim won would otherwise make this claim the oldest again.
   */
  private leaseStore(): LeaseStore {
    return {
      tryAcquire: async (holder, leaseMs) => {
        const others = (await this.liveLeases()).filter((lease) => lease.holder !== holder);
        if (others.length > 0) return false;
        await this.writeLease(holder, leaseMs, true);
        await sleep(SETTLE_MS);
        const [oldest] = await this.liveLeases();
        if (oldest?.holder === holder) return true;
        await this.writeLease(holder, -1); // Step back: another claim is older.
        return false;
      },
      renew: async (holder, leaseMs) => {
        // The login this renewal goes with: `useCurrent` may switch while it runs.
        const login = this.loggedIn;
        try {
          const [oldest] = await this.liveLeases();
          if (oldest?.holder !== holder) return 'lost';
          await this.writeLease(holder, leaseMs);
          return 'renewed';
        } catch (error) {
          // Logged in with the previous password, the server refuses it from its reload of
          // users.d until the adapter switches to the current one (at most one check later):
          // the lease outlasts two missed renewals, and `useCurrent` renews it at once.
          if (login === 'previous' && isLoginRefused(error)) return 'skipped';
          throw error;
        }
      },
      release: (holder) => this.writeLease(holder, -1),
      // Others only: a claim of this run's may still be live behind an older one.
      describeHolder: async () =>
        (await this.liveLeases())
          .map((lease) => lease.holder)
          .filter((holder) => holder !== this.lease.holder)
          .join(', ') || undefined,
    };
  }

  async lock(): Promise<void> {
    await this.ensureTables();
    await this.lease.acquire();
  }

  /** The ledger: what is applied, statement by statement. */
  async observe(): Promise<LedgerEntry[]> {
    if (this.topology.kind === 'replicated') await this.refuseSingleServerDatabase();
    if (!(await this.exists('ledger'))) return [];
    await this.syncReplica(LEDGER);
    const result = await this.client.query({
      query: `SELECT kind, version, name, argMax(path, applied_at) AS last_path, argMax(checksum, applied_at) AS last_checksum, max(applied_at) AS last_applied_at,
                     argMax(duration_ms, applied_at) AS last_duration_ms, argMax(applied_by, applied_at) AS last_applied_by
              FROM ${LEDGER} WHERE statement = ${COMPLETE} GROUP BY kind, version, name ORDER BY kind DESC, version, name`,
      format: 'JSONEachRow',
    });
    const rows = await result.json<{
      kind: 'versioned' | 'repeatable';
      version: number;
      name: string;
      last_path: string;
      last_checksum: string;
      last_applied_at: string;
      last_duration_ms: number;
      last_applied_by: string;
    }>();
    return rows.map((row) => ({
      kind: row.kind,
      ...(row.kind === 'versioned' ? { version: Number(row.version) } : {}),
      name: row.name,
      path: row.last_path,
      checksum: row.last_checksum,
      appliedAt: new Date(`${row.last_applied_at.replace(' ', 'T')}Z`),
      durationMs: Number(row.last_duration_ms),
      appliedBy: row.last_applied_by,
    }));
  }

  /** Statements of the asset already applied in their current form since it was last completed. */
  private async appliedStatements(step: PlanStep): Promise<Map<number, string>> {
    const result = await this.client.query({
      query: `SELECT statement, statement_checksum FROM ${LEDGER}
              WHERE kind = {kind:String} AND name = {name:String} AND statement > 0
                AND applied_at > (SELECT max(applied_at) FROM ${LEDGER} WHERE kind = {kind:String} AND name = {name:String} AND statement = ${COMPLETE})`,
      query_params: { kind: step.asset.kind, name: step.asset.name },
      format: 'JSONEachRow',
    });
    const rows = await result.json<{ statement: number; statement_checksum: string }>();
    return new Map(rows.map((row) => [Number(row.statement), row.statement_checksum]));
  }

  private async record(step: PlanStep, statement: number, statementChecksum: string, durationMs: number): Promise<void> {
    const { asset } = step;
    await this.client.insert({
      table: LEDGER,
      values: [
        {
          kind: asset.kind,
          version: asset.version ?? 0,
          name: asset.name,
          path: asset.path,
          checksum: asset.checksum,
          statement,
          statement_checksum: statementChecksum,
          duration_ms: Math.round(durationMs),
          applied_by: `${hostname()}`,
        },
      ],
      format: 'JSONEachRow',
    });
  }

  private statementsOf(step: PlanStep): Statement[] {
    return assetStatements(this.engine, step.asset, CLICKHOUSE);
  }

  async apply({ payload: step }: Change<PlanStep>): Promise<void> {
    this.lease.assertHeld(step.asset.path);
    await this.ensureTables();
    const statements = this.statementsOf(step);
    const done = await this.appliedStatements(step);
    const started = performance.now();
    // Resume after the leading statements already applied in this very form; from the first
    // one that was not (or was changed), everything runs.
    let resuming = true;
    for (const statement of statements) {
      const statementChecksum = checksum(statement.text);
      if (resuming && done.get(statement.index) === statementChecksum) continue;
      resuming = false;
      const statementStarted = performance.now();
      try {
        await this.runStatement(statement.text);
      } catch (error) {
        throw new BootstrapError(
          this.engine,
          `${toError(error).message.trim()}; ClickHouse DDL is not transactional: the ${statement.index - 1} statement(s) before it stay applied and recorded, and the next run resumes here`,
          { location: { file: step.asset.path, statement: statement.index, line: statement.line, column: statement.column }, code: errorType(error) },
        );
      }
      await this.record(step, statement.index, statementChecksum, performance.now() - statementStarted);
    }
    await this.record(step, COMPLETE, step.asset.checksum, performance.now() - started);
  }

  /**
   * Runs an asset's statement: as written on a single server; on a replicated stack in its
   * replicated form (`clickhouse-replicated.ts`), and a database it creates must then be
   * Replicated on this member (an Atomic one of the same name, left by a single server, is not).
   */
  private async runStatement(text: string): Promise<void> {
    if (this.topology.kind === 'single') {
      await this.client.command({ query: text });
      return;
    }
    const query = statementFor(this.topology, text);
    await this.client.command({ query, clickhouse_settings: replicatedDdlSettings });
    const created = createdDatabase(text);
    const engine = created ? await this.databaseOf(this.client, created) : undefined;
    if (created && engine !== 'Replicated') {
      throw new BootstrapError(
        this.engine,
        `${this.member}: the database ${created} is ${engine ?? 'missing'} after its replicated CREATE DATABASE: a single server's database of that name is in the way (databases/clickhouse/README.md, "Replicas")`,
      );
    }
  }

  async close(): Promise<void> {
    await this.lease.release();
    for (const client of this.owned) await client.close().catch(() => undefined);
  }
}

/** A run's client for ClickHouse (`AdapterOptions.clients`), checked to be one. */
export function injectedClient(options: AdapterOptions): ClickHouseClient | undefined {
  const client = options.clients?.[clickhouse.name];
  if (client === undefined) return undefined;
  const candidate = client as Partial<ClickHouseClient>;
  if (typeof candidate.query !== 'function' || typeof candidate.command !== 'function' || typeof candidate.ping !== 'function') {
    throw new BootstrapError(clickhouse.name, 'the client the run was given is not a @clickhouse/client ClickHouseClient (no query, command and ping)');
  }
  return client as ClickHouseClient;
}
