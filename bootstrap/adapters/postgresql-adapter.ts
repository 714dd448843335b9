/**
 * The PostgreSQL adapter (the engine is `postgresql.ts`; this module and its driver, pg, are
 * loaded only when a run connects): a session advisory lock serialises bootstraps (it dies with the
 * connection, so a killed run leaves no lock), each migration runs statement by statement inside
 * one transaction together with its ledger row, and the ledger lives in `allixios_bootstrap`.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import { postgresql, ROLE_VERIFIERS_VARIABLE } from '../../databases/postgresql/index.ts';
import { assetLabel } from '../assets.ts';
import { DEFAULT_STATEMENT_TIMEOUT_MS, type AdapterOptions, type Change, type Login } from '../contract.ts';
import { BootstrapError, toError } from '../errors.ts';
import type { MigrationAdapter } from '../migrations.ts';
import type { LedgerEntry, PlanStep } from '../plan.ts';
import { assetStatements } from '../sql-assets.ts';
import { lineAndColumn, POSTGRESQL, type Statement } from '../sql.ts';
import { lockContention, lockHeld, lockWait, notReachable, readiness, retryWithBackoff, stillNotReachable, TRY_AGAIN } from './backoff.ts';
import { readClientCa } from './client-ca.ts';
import { LoginRefused, openWithRotation, urlUser, waitUntilAccepted, type LoginAttempt } from './logins.ts';

/** Key of the advisory lock; any 64-bit number no other tool of the platform uses. */
export const LOCK_KEY = 7_263_001_337n;
const LEDGER = 'allixios_bootstrap.ledger';
/** lock_not_available: a lock_timeout expired. */
const LOCK_NOT_AVAILABLE = '55P03';
/**
 * protocol_violation. PostgreSQL refuses a login with 28P01 or 28000, never with this; PgBouncer
 * does ("SASL authentication failed", "no such user", "unsupported startup parameter"), so a
 * login refused with it comes from a pooler (test/engines/pgbouncer-pooling.test.ts).
 */
const PROTOCOL_VIOLATION = '08P01';

function poolerError(target: string, cause: string): BootstrapError {
  return new BootstrapError(
    'postgresql',
    `${target} looks like a connection pooler, not PostgreSQL itself (${cause}): the bootstrap keeps its lock and settings in its own session, which a pooler in transaction mode shares between clients; point the bootstrap's DATABASE_URL at the server (the engine's Service), not at PgBouncer`,
  );
}

/**
 * How long one attempt of a migration waits for a table lock. Short, as safe-migration practice
 * has it: a DDL statement waiting for a lock makes every query of the platform on that table
 * queue behind it (PostgreSQL grants locks in order), so it gives up quickly, releases
 * everything, and tries again after a pause, until the bootstrap's lock budget (--lock-timeout)
 * is spent.
 */
const MIGRATION_LOCK_TIMEOUT = '2s';

/**
 * The session every migration starts from: the settings the runner connected with (startup
 * options, which RESET ALL restores) and nothing a previous migration left behind. Not DISCARD
 * ALL, which would also release the bootstrap's advisory lock.
 */
const RESET_SESSION = 'RESET ALL; SET SESSION AUTHORIZATION DEFAULT; DEALLOCATE ALL; CLOSE ALL; UNLISTEN *; DISCARD TEMP; DISCARD SEQUENCES; DISCARD PLANS';

/** Errors that mean "not ready yet": retried until the readiness timeout. */
const TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', '57P03']);
/** A refused login: a wrong password (28P01), or no such role or no pg_hba.conf line for it (28000). */
const LOGIN_REFUSED = new Set(['28P01', '28000']);
/** object_not_in_prerequisite_state: the mounted verifiers file is not the stack's yet (allixios_credentials). */
const FILE_NOT_REFRESHED = '55000';
const VERIFIERS_SOURCE = 'databases/postgresql/initdb/role-verifiers';

/** A role whose password the bootstrap sets to the mounted Secret's verifier. */
interface VerifierPayload {
  role: string;
  fileSha256: string;
}

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

/**
 * Refuses a URL with which node-postgres would not verify the server. pg reads every query
 * parameter of the URL (pg-connection-string; the last of a repeated one wins, over the options
 * the adapter gives), so the stack's `sslmode=verify-full` is only as good as the rest of the URL:
 * a second `sslmode=no-verify`, `ssl=no-verify`, or `uselibpqcompat=true` with `verify-ca` or
 * `require` (libpq's meaning, no host name check) would connect to a server it cannot verify, and
 * `sslmode=disable` beside `sslrootcert` in clear text. The bootstrap sends the owner's password
 * over this connection, so `sslmode` must be `verify-full` (or `disable`, a plain URL naming no CA),
 * the same in every occurrence, and `ssl` `true`, `1` or `0`. Each CA bundle the URL names is read
 * here, so a missing file fails with the engine and the path (pg would read it only when it
 * connects). A plain URL (no TLS parameter) stays plain, as on a stack without TLS.
 */
export function postgresTlsCheck(url: string, engine = 'postgresql'): void {
  const queryAt = url.indexOf('?');
  const query = new URLSearchParams(queryAt >= 0 ? url.slice(queryAt + 1) : '');
  const refuse = (what: string) =>
    new BootstrapError(engine, `the URL ${what}; the bootstrap connects only to a server it can verify (sslmode=verify-full, with sslrootcert naming the CA bundle)`);
  const modes = [...new Set(query.getAll('sslmode'))];
  const unverified = modes.filter((mode) => mode !== 'verify-full' && mode !== 'disable');
  if (unverified.length > 0) throw refuse(`does not verify the server's certificate and host name (${unverified.map((mode) => `sslmode=${mode}`).join(', ')})`);
  const ssl = query.getAll('ssl').filter((value) => !['true', '1', '0'].includes(value));
  if (ssl.length > 0) throw refuse(`does not verify the server's certificate (${ssl.map((value) => `ssl=${value}`).join(', ')})`);
  const caFiles = query.getAll('sslrootcert');
  if (modes.includes('disable') && caFiles.length > 0) throw refuse(`names a CA bundle (sslrootcert=${caFiles[0]}) but connects in clear text (sslmode=disable)`);
  if (modes.length > 1) throw refuse(`gives sslmode twice (${modes.map((mode) => `sslmode=${mode}`).join(', ')}), and the driver follows the last one`);
  for (const caFile of caFiles) readClientCa(engine, caFile);
}

export class PostgresAdapter implements MigrationAdapter {
  readonly engine = postgresql.name;
  readonly target: string;
  login?: Login;
  private readonly url: URL;
  private client?: pg.Client;

  constructor(
    url: string,
    private readonly options: AdapterOptions,
  ) {
    this.url = new URL(url);
    this.target = `${this.url.hostname}:${this.url.port || '5432'}${this.url.pathname}`;
  }

  private get db(): pg.Client {
    if (!this.client) throw new BootstrapError(this.engine, 'not connected');
    return this.client;
  }

  async connect(): Promise<void> {
    let last: { message: string; code?: string } = { message: 'no attempt made' };
    const statementTimeoutMs = this.options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
    // The runner's own settings, as startup options: RESET ALL between migrations comes back to
    // them, so nothing a migration sets can clear them.
    const settings: Record<string, string> = {
      lock_timeout: MIGRATION_LOCK_TIMEOUT,
      // A statement that runs longer than this fails (index builds on a large table: raise it
      // with --statement-timeout), and the client below stops waiting for a reply soon after.
      statement_timeout: `${statementTimeoutMs}ms`,
      // A bootstrap killed in the middle of a long statement: the server notices the dead client
      // within a second and ends the session, and with it the advisory lock.
      client_connection_check_interval: '1s',
    };
    const attempt = async (url: string): Promise<pg.Client | typeof TRY_AGAIN> => {
      const client = new pg.Client({
        connectionString: url,
        application_name: 'allixios-bootstrap',
        options: Object.entries(settings)
          .map(([name, value]) => `-c ${name}=${value}`)
          .join(' '),
        connectionTimeoutMillis: Math.max(1000, Math.min(5000, this.options.readyTimeoutMs)),
        // A network path that goes silent (a stopped pooler, a dropped NAT entry): TCP keepalive
        // notices a dead peer, and no reply is awaited longer than the statement may run.
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        query_timeout: statementTimeoutMs + 5_000,
      });
      try {
        await client.connect();
        client.on('error', () => undefined); // A dropped connection surfaces on the next query.
        await this.refusePooler(client, settings);
        return client;
      } catch (error) {
        await client.end().catch(() => undefined);
        if (error instanceof BootstrapError) throw error;
        const code = errorCode(error);
        const message = toError(error).message;
        if (/unsupported startup parameter/i.test(message)) throw poolerError(this.target, message);
        if (code === PROTOCOL_VIOLATION)
          throw poolerError(this.target, `it refused the login with "${message}" [${code}], which PostgreSQL never answers a login with; PgBouncer does`);
        if (code !== undefined && LOGIN_REFUSED.has(code)) throw new LoginRefused(this.engine, message, `cannot connect to ${this.target}: ${message}`, code);
        if (!((code !== undefined && TRANSIENT.has(code)) || /terminated unexpectedly|timeout/i.test(message))) {
          throw new BootstrapError(this.engine, `cannot connect to ${this.target}: ${message}`, { code });
        }
        last = { message, ...(code ? { code } : {}) };
        return TRY_AGAIN;
      }
    };
    const address = `${this.url.hostname}:${this.url.port || '5432'}`;
    const open = (url: string) => {
      postgresTlsCheck(url, this.engine);
      return retryWithBackoff(
        readiness(this.options.readyTimeoutMs),
        () => attempt(url),
        (elapsed) => notReachable(this.engine, address, elapsed, last.message, last.code),
        stillNotReachable(this.options.onWait, address, () => last.message),
      );
    };
    const opened = await openWithRotation(this.engine, { current: this.url.toString(), previous: this.options.logins?.previousUrl }, open);
    this.client = opened.client;
    this.login = opened.login;
  }

  /**
   * The roles whose password is not the stack's (a rotation), as the server sees them: compared
   * with the mounted verifiers file by `allixios_credentials` (initdb/10-roles.sh), once that file
   * is the one the bootstrap was given (POSTGRES_ROLE_VERIFIERS): after a rotation the kubelet
   * refreshes the mounted Secret within about a minute, which is waited on within the readiness
   * timeout. Without POSTGRES_ROLE_VERIFIERS there is nothing to compare.
   */
  async planCredentials(): Promise<Change[]> {
    const file = this.options.env?.[ROLE_VERIFIERS_VARIABLE];
    if (file === undefined) return [];
    const fileSha256 = createHash('sha256').update(file).digest('hex');
    const { rows: installed } = await this.db.query<{ ok: boolean }>(`SELECT to_regprocedure('allixios_credentials.verifier_drift(text)') IS NOT NULL AS ok`);
    if (!installed[0]!.ok) {
      throw new BootstrapError(
        this.engine,
        `the server has no allixios_credentials functions, with which the bootstrap brings the roles to the stack's passwords: its volume was initialised by an older databases/postgresql/initdb/10-roles.sh. Run the script once on it (kubectl exec <pod> -- bash /docker-entrypoint-initdb.d/10-roles.sh, or docker exec), then deploy again`,
      );
    }
    let last = '';
    const roles = await retryWithBackoff(
      readiness(this.options.readyTimeoutMs),
      async () => {
        try {
          const { rows } = await this.db.query<{ role: string }>('SELECT role FROM allixios_credentials.verifier_drift($1) AS role', [fileSha256]);
          return rows.map((row) => row.role);
        } catch (error) {
          if (errorCode(error) !== FILE_NOT_REFRESHED)
            throw new BootstrapError(this.engine, `cannot compare the roles' passwords with the stack's: ${toError(error).message}`, { code: errorCode(error), cause: error });
          last = toError(error).message;
          return TRY_AGAIN;
        }
      },
      (elapsed) =>
        new BootstrapError(
          this.engine,
          `${last} after ${(elapsed / 1000).toFixed(1)} s: the Secret mounted in the server and the bootstrap's ${ROLE_VERIFIERS_VARIABLE} differ (raise --ready-timeout if the kubelet is slow to refresh it)`,
          { code: FILE_NOT_REFRESHED },
        ),
      { onWait: this.options.onWait, waiting: () => `waiting for the server to see the Secret's new role verifiers (${last})` },
    );
    return roles.map((role) => ({
      subject: `role ${role}`,
      action: 'update' as const,
      detail: "its password is not the stack's (a rotation): set to the verifier of the mounted Secret",
      source: VERIFIERS_SOURCE,
      payload: { role, fileSha256 } satisfies VerifierPayload,
    }));
  }

  /** Gives a role the mounted Secret's verifier; its open sessions stay, new logins need the new password. */
  async applyCredential(change: Change): Promise<void> {
    const { role, fileSha256 } = change.payload as VerifierPayload;
    try {
      await this.db.query('SELECT allixios_credentials.apply_verifier($1, $2)', [role, fileSha256]);
    } catch (error) {
      throw new BootstrapError(this.engine, `${change.subject}: ${toError(error).message}`, { location: { file: change.source }, code: errorCode(error), cause: error });
    }
  }

  /** Waits until the server accepts a new session with `url` (the application's URL). */
  async verifyLogin(url: string): Promise<void> {
    postgresTlsCheck(url, this.engine);
    await waitUntilAccepted(this.engine, `the login ${urlUser(url)}`, this.options, async (): Promise<LoginAttempt> => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: Math.max(1000, Math.min(5000, this.options.readyTimeoutMs)) });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return { accepted: true };
      } catch (error) {
        return { accepted: false, reason: toError(error).message };
      } finally {
        await client.end().catch(() => undefined);
      }
    });
  }

  /**
   * The bootstrap needs a session of its own: its advisory lock and settings live in it. A
   * connection pooler in transaction mode hands each transaction to whichever server connection
   * is free, so two bootstraps would share a lock and one's settings reach the other. PgBouncer
   * refuses the startup options the runner connects with ("unsupported startup parameter") or,
   * told to ignore them, drops them: either way the bootstrap refuses, naming the cause.
   */
  private async refusePooler(client: pg.Client, settings: Readonly<Record<string, string>>): Promise<void> {
    const names = Object.keys(settings);
    const { rows } = await client.query<{ name: string; setting: string; source: string }>(`SELECT name, setting, source FROM pg_settings WHERE name = ANY($1)`, [names]);
    const notApplied = names.filter((name) => rows.find((row) => row.name === name)?.source !== 'client');
    if (notApplied.length > 0) {
      throw poolerError(this.target, `the settings it connected with did not reach the server (${notApplied.join(', ')})`);
    }
  }

  async lock(): Promise<void> {
    const attempt = async () => {
      const { rows } = await this.db.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [LOCK_KEY.toString()]);
      return rows[0]!.locked ? true : TRY_AGAIN;
    };
    await retryWithBackoff(lockWait(this.options.lockTimeoutMs, 50), attempt, async () => lockHeld(this.engine, this.options.lockTimeoutMs, await this.lockHolder()), {
      onWait: this.options.onWait,
      waiting: async () => `another bootstrap holds the lock (${(await this.lockHolder()) ?? 'its holder just left'})`,
    });
  }

  /** The backend holding the advisory lock, as the lock-timeout error names it. */
  private async lockHolder(): Promise<string | undefined> {
    const { rows } = await this.db.query<{ pid: number; application_name: string }>(
      `SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
        WHERE l.locktype = 'advisory' AND l.granted AND (l.classid::bigint << 32 | l.objid::bigint) = $1`,
      [LOCK_KEY.toString()],
    );
    return rows[0] ? `held by backend ${rows[0].pid}, ${rows[0].application_name}` : undefined;
  }

  /** The ledger: what is applied. */
  async observe(): Promise<LedgerEntry[]> {
    const { rows: exists } = await this.db.query<{ ledger: string | null }>(`SELECT to_regclass('${LEDGER}')::text AS ledger`);
    if (!exists[0]!.ledger) return [];
    const { rows } = await this.db.query<{
      kind: 'versioned' | 'repeatable';
      version: number | null;
      name: string;
      checksum: string;
      applied_at: Date;
      duration_ms: number;
      applied_by: string;
      path: string;
    }>(`SELECT kind, version, name, path, checksum, applied_at, duration_ms, applied_by FROM ${LEDGER} ORDER BY kind DESC, version, name`);
    return rows.map((row) => ({
      kind: row.kind,
      ...(row.version !== null ? { version: row.version } : {}),
      name: row.name,
      checksum: row.checksum,
      appliedAt: row.applied_at,
      durationMs: row.duration_ms,
      appliedBy: row.applied_by,
      path: row.path,
    }));
  }

  /** Creates the ledger the first time something is applied; never on a run with nothing to do. */
  private async ensureLedger(): Promise<void> {
    const { rows } = await this.db.query<{ ledger: string | null }>(`SELECT to_regclass('${LEDGER}')::text AS ledger`);
    if (rows[0]!.ledger) return;
    await this.db.query(`
      CREATE SCHEMA IF NOT EXISTS allixios_bootstrap;
      CREATE TABLE ${LEDGER} (
        kind        text        NOT NULL CHECK (kind IN ('versioned', 'repeatable')),
        version     integer     CHECK ((kind = 'versioned') = (version IS NOT NULL)),
        name        text        NOT NULL,
        path        text        NOT NULL,
        checksum    text        NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now(),
        duration_ms integer     NOT NULL,
        applied_by  text        NOT NULL
      );
      CREATE UNIQUE INDEX ledger_versioned_version ON ${LEDGER} (version) WHERE kind = 'versioned';
      CREATE UNIQUE INDEX ledger_repeatable_name ON ${LEDGER} (name) WHERE kind = 'repeatable';
      COMMENT ON TABLE ${LEDGER} IS 'Assets applied by the Allixios bootstrap (bootstrap/README.md)';`);
  }

  private statementsOf(step: PlanStep): Statement[] {
    return assetStatements(this.engine, step.asset, POSTGRESQL);
  }

  /** The error of a statement, located in the file from the statement's offset and the server's position. */
  private statementError(step: PlanStep, statement: Statement, error: unknown, note = ''): BootstrapError {
    const database = error as pg.DatabaseError;
    const position = Number(database.position);
    const at = Number.isFinite(position) && position > 0 ? lineAndColumn(step.asset.content, statement.offset + position - 1) : statement;
    const detail = [database.detail, database.hint ? `hint: ${database.hint}` : undefined].filter(Boolean).join('; ');
    return new BootstrapError(this.engine, `${database.message}${detail ? ` (${detail})` : ''}${note}`, {
      location: { file: step.asset.path, statement: statement.index, line: at.line, column: at.column },
      code: database.code,
    });
  }

  private async record(step: PlanStep, durationMs: number): Promise<void> {
    const { asset } = step;
    await this.db.query(
      `INSERT INTO ${LEDGER} (kind, version, name, path, checksum, duration_ms, applied_by)
       VALUES ($1, $2, $3, $4, $5, $6, current_user || ' from ' || $7)
       ON CONFLICT (name) WHERE kind = 'repeatable'
       DO UPDATE SET path = EXCLUDED.path, checksum = EXCLUDED.checksum, applied_at = now(),
                     duration_ms = EXCLUDED.duration_ms, applied_by = EXCLUDED.applied_by`,
      [asset.kind, asset.version ?? null, asset.name, asset.path, asset.checksum, durationMs, hostname()],
    );
  }

  /**
   * Applies the step, again and again while its attempts fail only for want of a lock (55P03
   * after MIGRATION_LOCK_TIMEOUT), until the lock budget is spent. A transactional attempt rolls
   * back whole; a no-transaction file runs again from its first statement (its statements must be
   * idempotent, and a failed CREATE INDEX CONCURRENTLY leaves an invalid index its DROP removes).
   */
  async apply({ payload: step }: Change<PlanStep>): Promise<void> {
    const statements = this.statementsOf(step);
    let attempts = 0;
    let lastLockError: BootstrapError | undefined;
    await retryWithBackoff(
      lockContention(this.options.lockTimeoutMs),
      async () => {
        attempts += 1;
        await this.db.query(RESET_SESSION);
        try {
          await this.applyOnce(step, statements);
          return true;
        } catch (error) {
          if (!(error instanceof BootstrapError) || error.code !== LOCK_NOT_AVAILABLE) throw error;
          lastLockError = error;
          return TRY_AGAIN;
        }
      },
      (elapsedMs) =>
        new BootstrapError(
          this.engine,
          `gave up after ${attempts} attempt(s) in ${(elapsedMs / 1000).toFixed(1)} s: each waited ${MIGRATION_LOCK_TIMEOUT} for a lock that other sessions hold, ` +
            `then stepped back so the platform's queries were not queued behind it (last: ${lastLockError?.message.replace(/^postgresql: /, '')}); ` +
            'find the long transaction on that table (pg_stat_activity), or run again with a longer --lock-timeout',
          { location: lastLockError?.location, code: LOCK_NOT_AVAILABLE },
        ),
      {
        onWait: this.options.onWait,
        waiting: () => `waiting for a lock other sessions hold, ${attempts} attempt(s) so far (last: ${lastLockError?.message.replace(/^postgresql: /, '')})`,
      },
    );
  }

  private async applyOnce(step: PlanStep, statements: readonly Statement[]): Promise<void> {
    const started = performance.now();
    if (step.asset.transactional) {
      await this.db.query('BEGIN');
      try {
        await this.ensureLedger();
        for (const statement of statements) {
          try {
            await this.db.query(statement.text);
          } catch (error) {
            throw this.statementError(step, statement, error, '; the migration was rolled back and not recorded');
          }
        }
        await this.record(step, Math.round(performance.now() - started));
        await this.db.query('COMMIT');
      } catch (error) {
        await this.db.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      return;
    }
    // `-- allixios:no-transaction`: each statement commits on its own (CREATE INDEX CONCURRENTLY
    // refuses a transaction), so such files must be idempotent: a re-run repeats what succeeded.
    await this.ensureLedger();
    for (const statement of statements) {
      try {
        await this.db.query(statement.text);
      } catch (error) {
        const done = statement.index - 1;
        throw this.statementError(
          step,
          statement,
          error,
          `; ${assetLabel(step.asset)} runs outside a transaction: ${done} earlier statement(s) stay applied, and the file is not recorded, so the next run repeats it`,
        );
      }
    }
    await this.record(step, Math.round(performance.now() - started));
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}
