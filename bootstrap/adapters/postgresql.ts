/**
 * The PostgreSQL adapter: a session advisory lock serialises bootstraps (it dies with the
 * connection, so a killed run leaves no lock), each migration runs statement by statement inside
 * one transaction together with its ledger row, and the ledger lives in `allixios_bootstrap`.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { assetLabel } from '../assets.ts';
import { BootstrapError } from '../errors.ts';
import type { LedgerEntry, PlanStep } from '../plan.ts';
import { lineAndColumn, splitStatements, SqlSyntaxError, type Statement } from '../sql.ts';
import { lockHeld, lockWait, notReachable, readiness, retryWithBackoff, TRY_AGAIN } from './backoff.ts';
import type { AdapterOptions, EngineAdapter } from './types.ts';

/** Key of the advisory lock; any 64-bit number no other tool of the platform uses. */
const LOCK_KEY = 7_263_001_337n;
const LEDGER = 'allixios_bootstrap.ledger';

/** Errors that mean "not ready yet": retried until the readiness timeout. */
const TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', '57P03']);

function errorCode(error: unknown): string | undefined {
  return (error as { code?: string }).code;
}

export class PostgresAdapter implements EngineAdapter {
  readonly engine = 'postgresql' as const;
  readonly target: string;
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
    const attempt = async (): Promise<pg.Client | typeof TRY_AGAIN> => {
      const client = new pg.Client({
        connectionString: this.url.toString(),
        application_name: 'allixios-bootstrap',
        connectionTimeoutMillis: Math.max(1000, Math.min(5000, this.options.readyTimeoutMs)),
      });
      try {
        await client.connect();
        // DDL waits for locks the platform holds (a long transaction on a table being altered);
        // a bounded wait fails the migration instead of queueing every query behind it.
        await client.query(`SET lock_timeout = '60s'`);
        // A bootstrap killed in the middle of a long statement: the server notices the dead client
        // within a second and ends the session, and with it the advisory lock.
        await client.query(`SET client_connection_check_interval = '1s'`);
        client.on('error', () => undefined); // A dropped connection surfaces on the next query.
        return client;
      } catch (error) {
        await client.end().catch(() => undefined);
        const code = errorCode(error);
        const message = (error as Error).message;
        if (!((code !== undefined && TRANSIENT.has(code)) || /terminated unexpectedly|timeout/i.test(message))) {
          throw new BootstrapError(this.engine, `cannot connect to ${this.target}: ${message}`, undefined, code);
        }
        last = { message, ...(code ? { code } : {}) };
        return TRY_AGAIN;
      }
    };
    const address = `${this.url.hostname}:${this.url.port || '5432'}`;
    this.client = await retryWithBackoff(readiness(this.options.readyTimeoutMs), attempt, (elapsed) => notReachable(this.engine, address, elapsed, last.message, last.code));
  }

  async lock(): Promise<void> {
    const attempt = async () => {
      const { rows } = await this.db.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [LOCK_KEY.toString()]);
      return rows[0]!.locked ? true : TRY_AGAIN;
    };
    await retryWithBackoff(lockWait(this.options.lockTimeoutMs, 50), attempt, async () => lockHeld(this.engine, this.options.lockTimeoutMs, await this.lockHolder()));
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

  async readLedger(): Promise<LedgerEntry[]> {
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
    }>(`SELECT kind, version, name, checksum, applied_at, duration_ms, applied_by FROM ${LEDGER} ORDER BY kind DESC, version, name`);
    return rows.map((row) => ({
      kind: row.kind,
      ...(row.version !== null ? { version: row.version } : {}),
      name: row.name,
      checksum: row.checksum,
      appliedAt: row.applied_at,
      durationMs: row.duration_ms,
      appliedBy: row.applied_by,
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
    try {
      return splitStatements(step.asset.content);
    } catch (error) {
      if (!(error instanceof SqlSyntaxError)) throw error;
      throw new BootstrapError(this.engine, error.message, { file: step.asset.path, line: error.line, column: error.column });
    }
  }

  /** The error of a statement, located in the file from the statement's offset and the server's position. */
  private statementError(step: PlanStep, statement: Statement, error: unknown, note = ''): BootstrapError {
    const database = error as pg.DatabaseError;
    const position = Number(database.position);
    const at = Number.isFinite(position) && position > 0 ? lineAndColumn(step.asset.content, statement.offset + position - 1) : statement;
    const detail = [database.detail, database.hint ? `hint: ${database.hint}` : undefined].filter(Boolean).join('; ');
    return new BootstrapError(
      this.engine,
      `${database.message}${detail ? ` (${detail})` : ''}${note}`,
      { file: step.asset.path, statement: statement.index, line: at.line, column: at.column },
      database.code,
    );
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

  async apply(step: PlanStep): Promise<void> {
    const statements = this.statementsOf(step);
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
