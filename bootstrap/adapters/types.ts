/** What the runner needs from an engine; one adapter per engine, the runner knows none of them. */
import type { ClickHouseClient } from '@clickhouse/client';
import type { EngineName } from '../../databases/engine.ts';
import type { LedgerEntry, PlanStep } from '../plan.ts';

/** How long one statement or request may run when --statement-timeout does not say. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10 * 60_000;

export interface AdapterOptions {
  /** How long to wait for the engine to accept connections. */
  readyTimeoutMs: number;
  /** How long to wait for another bootstrap to finish, and for the locks a migration needs. */
  lockTimeoutMs: number;
  /**
   * How long one statement may run, and so how long a silent connection is waited on
   * (PostgreSQL's statement and query timeouts, MongoDB's socket timeout; default
   * DEFAULT_STATEMENT_TIMEOUT_MS).
   */
  statementTimeoutMs?: number;
  /** How long a lease lasts without renewal, for engines locked by a lease (ClickHouse, MongoDB, Redis). */
  lockLeaseMs?: number;
  /**
   * Ready clients instead of ones made from URLs: the embedded engines of `npm run check` and
   * the tests (ClickHouse in-process through chdb has no URL).
   */
  clients?: { clickhouse?: ClickHouseClient };
}

export interface EngineAdapter {
  readonly engine: EngineName;
  /** Where the adapter connects, without credentials (`host:port/database`), for messages. */
  readonly target: string;
  /** Waits (bounded, with backoff) until the engine accepts a connection. */
  connect(): Promise<void>;
  /** Serialises concurrent bootstraps; the lock must die with the connection. */
  lock(): Promise<void>;
  /** What the engine's ledger says is applied; creates nothing when there is no ledger yet. */
  readLedger(): Promise<LedgerEntry[]>;
  /** Applies one step atomically where the engine allows, and records it in the ledger. */
  apply(step: PlanStep): Promise<void>;
  close(): Promise<void>;
}
