/**
 * The one contract between the runner and an engine (golang-migrate's `database.Driver` is the
 * model). Every engine is a desired state and an observed state compared by a pure planner
 * (cloudnative-pg's role reconciler is the model):
 *
 * - migration engines (PostgreSQL, ClickHouse): the desired state is the asset files, the observed
 *   state is the ledger, a change applies one file (`bootstrap/migrations.ts`);
 * - state engines (MongoDB, Redis, Elasticsearch): the desired state is the definitions in the
 *   engine's folder, the observed state is what the engine has, a change creates, updates,
 *   replaces or deletes one subject.
 *
 * The runner (`runner.ts`) knows nothing else: plan then apply, dry run and status from the plan,
 * a lock, a bounded readiness wait, the logins of a password rotation, one report. Every adapter
 * passes the same conformance suite (`test/bootstrap/conformance/`).
 */
import type { EngineModule, EngineName } from '../databases/engine.ts';
import { BootstrapError } from './errors.ts';
import type { WaitProgress } from './adapters/backoff.ts';
import type { Lease } from './lease.ts';

/** How long one statement or request may run when --statement-timeout does not say. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10 * 60_000;

/** One change the bootstrap would make to an engine. */
export interface Change<Payload = unknown> {
  /** What it changes, e.g. `collection content_drafts`, `V0003`, `user allixios_app`. */
  subject: string;
  /** `apply` and `re-apply`: a migration file, applied for the first time or again (a repeatable one that changed). */
  action: 'create' | 'update' | 'replace' | 'delete' | 'apply' | 're-apply';
  /** Why, in a sentence: `missing`, `validator differs: ...`, `not applied yet`. */
  detail: string;
  /** Where the desired state is defined (a path relative to the repository). */
  source: string;
  /** What the adapter needs to apply it; never printed. */
  payload: Payload;
}

/** What the bootstrap would do to one engine, computed without I/O from the desired and observed states. */
export interface Plan<Payload = unknown> {
  engine: EngineName;
  /** In the order they must be applied. */
  changes: Array<Change<Payload>>;
  /** Subjects that already match the desired state (with what the engine knows of them, where it keeps a history). */
  inSync: string[];
  /**
   * Differences the bootstrap will not resolve on its own (an applied migration edited, an index
   * whose options differ, a breaking mapping change without a new version), each naming the
   * subject, what differs and how to proceed. A plan with refusals applies nothing, unless its
   * engine's changes are independent of each other ({@link BootstrapEngine.applyDespiteRefusals}):
   * then the rest is applied, and the run still fails on the refusals.
   */
  refusals: string[];
}

/** Flags that allow changes the bootstrap refuses by default. */
export interface Flags {
  /** Replace (drop and recreate) an index whose definition differs from the desired one. */
  replaceIndexes?: boolean;
}

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
  /** How long a lease lasts without renewal, for engines locked by a lease (`bootstrap/lease.ts`). */
  lockLeaseMs?: number;
  /**
   * Where a wait (readiness, a lock, a reindex) reports while it waits: a line now and then with
   * what it waits for and for how long (`adapters/backoff.ts`). Set per engine by the runner.
   */
  onWait?: (progress: WaitProgress) => void;
  /**
   * Ready clients instead of ones made from URLs, by engine name: the embedded engines of
   * `npm run check` and the tests (ClickHouse in-process through chdb has no URL). Each engine
   * checks that its entry is a client of its driver.
   */
  clients?: Readonly<Record<EngineName, unknown>>;
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
 * What an adapter does about its engine's passwords (the stack's rotations, README "Rotating a
 * password"): log in with the current password or, while a rotation keeps it, the previous one;
 * bring the engine's logins to the stack's passwords; check the application's URL. Engines whose
 * users are part of their desired state (Redis's ACL) plan them there instead and have no
 * credential changes of their own.
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

/**
 * The engine's own cluster membership (a MongoDB replica set's members), planned from what the
 * members report, like any state, and applied before anything connects through the cluster: a
 * set that is not initiated has no primary to log in to, to lock or to apply to.
 */
export interface MembershipPlan {
  /** In the order they must be applied. */
  changes: Change[];
  inSync: string[];
  /** States the bootstrap will not resolve (a lost majority), each saying what to do. */
  refusals: string[];
  /** The engine accepts no connection through its cluster before the changes are applied (a set not initiated yet). */
  blocksConnection: boolean;
}

/** What an adapter does about its engine's cluster membership (see {@link MembershipPlan}). */
export interface MembershipAdapter {
  /**
   * The changes that bring the cluster's members to the stack's, read without changing anything;
   * waits (within the readiness timeout) through states that pass by themselves (an election).
   */
  planMembership?(): Promise<MembershipPlan>;
  /** Applies one change against the membership it finds then (nothing, if a concurrent bootstrap made it). */
  applyMembership?(change: Change): Promise<void>;
}

/** One engine's connection, as the runner drives it. */
export interface Adapter<Observed = unknown, Payload = unknown> extends CredentialAdapter, MembershipAdapter {
  readonly engine: EngineName;
  /** Where it connects, without credentials (`host:port/database`), for messages. */
  readonly target: string;
  /**
   * Waits (bounded by the readiness timeout, with backoff) until the engine accepts a connection;
   * a refused password fails at once, naming the user.
   */
  connect(): Promise<void>;
  /**
   * Serialises concurrent bootstraps until `close()`; gives up after the lock timeout, naming the
   * holder. Engines without a session lock hold a lease (`bootstrap/lease.ts`).
   */
  lock(): Promise<void>;
  /** What the engine has now, as the planner compares it; creates nothing. */
  observe(): Promise<Observed>;
  /** For an engine locked by a lease: the lease (`bootstrap/lease.ts`), whose store holds other holders' too. */
  readonly lease?: Lease;
  /** Applies one change (atomically where the engine allows) and records it where the engine keeps a history. */
  apply(change: Change<Payload>): Promise<void>;
  close(): Promise<void>;
}

/** An engine as the bootstrap sees it: its desired state, the pure planner, and how to reach it. */
export interface BootstrapEngine<Desired = unknown, Observed = unknown, Payload = unknown> {
  name: EngineName;
  /** The variable holding the URL the bootstrap connects with (owner or admin credentials). */
  urlVariable: string;
  /** The engine's folder, where `desired` reads its definitions unless the run names another. */
  directory: string;
  /**
   * The desired state, read from `directory` (the engine's folder, or one a test gives). `env` is
   * the run's environment (the URL variables and, for Elasticsearch, `ALLIXIOS_ENVIRONMENT`),
   * never `process.env` directly. Throws for a definition that may not be applied at all, on
   * every run (dry runs and status too).
   */
  desired(env: Readonly<Record<string, string | undefined>>, directory?: string): Desired;
  /** Pure: the changes from `observed` (null: an empty engine, for offline dry runs) to `desired`. */
  plan(desired: Desired, observed: Observed | null, flags: Flags): Plan<Payload>;
  /**
   * Whether the changes of a plan with refusals are applied all the same. For an engine whose
   * changes do not depend on each other (Redis: one user, one directive each), so that one
   * refusal does not hold back a security repair.
   */
  applyDespiteRefusals?: boolean;
  /**
   * `url`: the URL variable's value, unset when the run hands the engine a client
   * (`AdapterOptions.clients`). Loads the adapter and its driver with a dynamic `import()`: the
   * rest of the engine (desired state, planner) never imports a driver except for its types, so
   * an offline dry run, and a run of other engines, loads none.
   */
  createAdapter(url: string | undefined, options: AdapterOptions, desired: Desired): Promise<Adapter<Observed, Payload>>;
  /** How to run a throwaway engine on a machine like this one (`npm run check`, the conformance suite), or why it cannot be. */
  embedded: { start(): Promise<EmbeddedEngine> } | { unavailable: string };
}

/** A throwaway engine started on this machine, with the project's own config and generated passwords. */
export interface EmbeddedEngine {
  /** What runs, for summaries: `PostgreSQL 18.4 (embedded)`. */
  description: string;
  /**
   * The run's environment for the engine as a deployment hands it over: the admin URL (unless
   * `client` stands for it), the application's (`<URL variable>_APP`), the rendered secret files
   * the engine's credentials are compared with.
   */
  env: Record<string, string>;
  /** A ready client where the engine has no URL here (ClickHouse in-process): the run's `clients[<engine>]`. */
  client?: unknown;
  /** What a summary adds: what this embedded engine does not check. */
  note?: string;
  /** Stops the engine and removes its files. */
  stop(): Promise<void>;
}

/** A bootstrap engine of any state types, as lists of engines hold them. */
export type AnyBootstrapEngine = BootstrapEngine<any, any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- each engine types its own states; the runner passes them through

/** `url`, or an error naming the variable it should have come from. */
export function requireUrl(engine: Pick<EngineModule, 'name' | 'urlVariable'>, url: string | undefined): string {
  if (!url) throw new BootstrapError(engine.name, `${engine.urlVariable} is not set`);
  return url;
}

/** The fields of an engine's description every bootstrap engine repeats. */
export function engineIdentity(module: Pick<EngineModule, 'name' | 'urlVariable' | 'directory'>): Pick<BootstrapEngine, 'name' | 'urlVariable' | 'directory'> {
  return { name: module.name, urlVariable: module.urlVariable, directory: module.directory };
}
