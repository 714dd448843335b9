/** What the runner needs from an engine; one adapter per engine, the runner knows none of them. */
import type { ClickHouseClient } from '@clickhouse/client';
import type { EngineName } from '../../databases/engine.ts';
import type { LedgerEntry, PlanStep } from '../plan.ts';
import type { Change } from '../state.ts';

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
  /** The engine's other logins during a password rotation (set per engine by the runner). */
  logins?: Logins;
  /**
   * The run's environment (`bootstrap/env.ts`), for what an engine reads besides its URLs: the
   * rendered secret files its credentials are compared with (POSTGRES_ROLE_VERIFIERS, ...).
   */
  env?: Readonly<Record<string, string | undefined>>;
}

/** What the runner knows about an engine's logins beside its admin URL (see `bootstrap/env.ts`). */
export interface Logins {
  /** The admin URL with the previous password, while a rotation keeps it: tried when the engine refuses the current one. */
  previousUrl?: string;
  /** The application's URL, the one the stack exports: after applying, the engine must accept it. */
  appUrl?: string;
}

/** Which password an adapter logged in with. */
export type Login = 'current' | 'previous';

/**
 * What every adapter does about its engine's passwords (the stack's rotations, README
 * "Rotating a password"): log in with the current password or, while a rotation keeps it, the
 * previous one; bring the engine's logins to the stack's passwords; check the application's URL.
 * Engines whose users are part of their desired state (Redis's ACL) plan them there instead and
 * have no credential changes of their own.
 */
export interface CredentialAdapter {
  /** Set by `connect()`. */
  readonly login?: Login;
  /**
   * The changes that bring the engine's logins to the stack's passwords, read without changing
   * anything (what a dry run and `--status` show).
   */
  planCredentials?(): Promise<Change[]>;
  applyCredential?(change: Change): Promise<void>;
  /**
   * Waits, within the readiness timeout, until the engine accepts `url` (the application's URL),
   * and throws naming the user when it does not: an engine that takes passwords from its files
   * (ClickHouse's users.d, Elasticsearch's file realm) may still be reloading them.
   */
  verifyLogin?(url: string): Promise<void>;
}

export interface EngineAdapter extends CredentialAdapter {
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
