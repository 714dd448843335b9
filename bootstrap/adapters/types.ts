/** What the runner needs from an engine; one adapter per engine, the runner knows none of them. */
import type { EngineName } from '../../databases/engine.ts';
import type { LedgerEntry, PlanStep } from '../plan.ts';

export interface AdapterOptions {
  /** How long to wait for the engine to accept connections. */
  readyTimeoutMs: number;
  /** How long to wait for another bootstrap to finish. */
  lockTimeoutMs: number;
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
