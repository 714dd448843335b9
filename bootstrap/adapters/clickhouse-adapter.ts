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

/** What the rotation's change does: nothing to the server, it waits for the server's reload. */
export interface ClickHouseCredentialPayload {
  kind: 'wait';
}

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

  /** A client for `url`, with its credentials. */
  private clientFor(url: string): ClickHouseClient {
    return createClient(clickhouseClientOptions(url));
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
    if (!this.url) return this.waitForEmbedded();
    const urls = { current: this.url, previous: this.options.logins?.previousUrl };
    const { client, login } = await openWithRotation(this.engine, urls, (url) => this.open(url));
    this.connection = client;
    if (login === 'current') this.current = client;
    this.loggedIn = login;
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

  /** Waits (within the readiness timeout) until the server accepts the current password, then works with it. */
  async applyCredential(change: Change<ClickHouseCredentialPayload>): Promise<void> {
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
    await waitUntilAccepted(this.engine, `the login ${urlUser(url)}`, this.options, async () => {
      const client = this.clientFor(url);
      try {
        return asAttempt(await this.check(client, timeoutMs));
      } finally {
        await client.close().catch(() => undefined);
      }
    });
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
    if (!(await this.exists('ledger')) || !(await this.exists('lock'))) {
      await this.client.command({ query: `CREATE DATABASE IF NOT EXISTS ${DATABASE}` });
      await this.client.command({
        query: `CREATE TABLE IF NOT EXISTS ${LEDGER} (
          kind LowCardinality(String), version UInt32, name String, path String, checksum String,
          statement UInt32, statement_checksum String,
          applied_at DateTime64(3, 'UTC') DEFAULT now64(3), duration_ms UInt32, applied_by String
        ) ENGINE = MergeTree ORDER BY (kind, version, name, statement, applied_at)
        COMMENT 'Assets applied by the Allixios bootstrap; statement 0 = whole asset (bootstrap/README.md)'`,
      });
      await this.client.command({
        query: `CREATE TABLE IF NOT EXISTS ${LOCK} (
          holder String, acquired_at DateTime64(3, 'UTC'), expires_at DateTime64(3, 'UTC'),
          written_at DateTime64(3, 'UTC') DEFAULT now64(3)
        ) ENGINE = MergeTree ORDER BY (holder, written_at)
        TTL toDateTime(written_at) + INTERVAL 1 DAY`,
      });
    }
    this.ledgerReady = true;
  }

  /** Live leases: the newest row of each holder, if it has not expired. Oldest claim first. */
  private async liveLeases(): Promise<Array<{ holder: string; acquired_at: string }>> {
    const result = await this.client.query({
      query: `SELECT holder, min(acquired_at) AS acquired_at FROM ${LOCK} GROUP BY holder
              HAVING argMax(expires_at, written_at) > now64(3) ORDER BY acquired_at, holder`,
      format: 'JSONEachRow',
    });
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
    if (!(await this.exists('ledger'))) return [];
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
        await this.client.command({ query: statement.text });
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
