/**
 * Engines whose schema is a desired state rather than a history of migrations: Redis (ACL users,
 * runtime config), MongoDB (collections, validators, indexes), Elasticsearch (indices, aliases,
 * templates). The bootstrap observes what the engine has, a pure function compares it with the
 * desired state and lists the changes, and the adapter applies them. Same contract as the
 * migration engines: plan then apply, dry run and status from the plan, a lock, a bounded
 * readiness wait, clear errors, and a second run with nothing to change changes nothing.
 */
import type { EngineName } from '../databases/engine.ts';
import type { AdapterOptions, CredentialAdapter } from './adapters/types.ts';

/** One change the bootstrap would make to an engine. */
export interface Change<Payload = unknown> {
  /** What it changes, e.g. `collection content_drafts`, `index content_drafts.by_author`. */
  subject: string;
  action: 'create' | 'update' | 'replace' | 'delete';
  /** Why, in a sentence: `missing`, `validator differs: ...`. */
  detail: string;
  /** Where the desired state is defined (a path relative to the repository). */
  source: string;
  /** What the adapter needs to apply it; never printed. */
  payload: Payload;
}

export interface StatePlan<Payload = unknown> {
  engine: EngineName;
  /** In the order they must be applied. */
  changes: Array<Change<Payload>>;
  /** Subjects that already match the desired state. */
  inSync: string[];
  /**
   * Differences the bootstrap will not resolve on its own (an index whose options differ, a
   * breaking mapping change without a new version), each naming the subject, what differs and
   * how to proceed. A plan with refusals applies nothing, unless its engine's repairs are
   * independent of each other ({@link StateEngine.applyDespiteRefusals}): then the rest is
   * applied, and the run still fails on the refusals.
   */
  refusals: string[];
}

/** Flags that allow changes the bootstrap refuses by default. */
export interface StateFlags {
  /** Replace (drop and recreate) an index whose definition differs from the desired one. */
  replaceIndexes?: boolean;
}

/** What the runner needs from a state engine's adapter. */
export interface StateAdapter<Observed, Payload> extends CredentialAdapter {
  readonly engine: EngineName;
  /** Where it connects, without credentials, for messages. */
  readonly target: string;
  connect(): Promise<void>;
  lock(): Promise<void>;
  /** What the engine has now, as the planner compares it. */
  observe(): Promise<Observed>;
  apply(change: Change<Payload>): Promise<void>;
  close(): Promise<void>;
}

/** A state engine: its desired state, the pure planner, and how to reach it. */
export interface StateEngine<Desired = unknown, Observed = unknown, Payload = unknown> {
  kind: 'state';
  name: EngineName;
  urlVariable: string;
  /**
   * The desired state, read from the engine's folder. `env` is the run's environment (the URL
   * variables and, for Elasticsearch, `ALLIXIOS_ENVIRONMENT`), never `process.env` directly.
   */
  desired(env: Readonly<Record<string, string | undefined>>): Desired;
  /** Pure: the changes from `observed` (null: an empty engine, for offline dry runs) to `desired`. */
  plan(desired: Desired, observed: Observed | null, flags: StateFlags): StatePlan<Payload>;
  /**
   * Whether the changes of a plan with refusals are applied all the same. For an engine whose
   * changes do not depend on each other (Redis: one user, one directive each), so that one
   * refusal does not hold back a security repair.
   */
  applyDespiteRefusals?: boolean;
  createAdapter(url: string, options: AdapterOptions, desired: Desired): StateAdapter<Observed, Payload>;
}
