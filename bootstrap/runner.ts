/**
 * The bootstrap runner: for each engine asked for, in a fixed order, read its desired state,
 * observe the engine, plan (a pure function), then apply the plan under the engine's lock. Dry
 * runs and status stop after the plan. One path for every engine (`contract.ts`).
 */
import type { EngineName } from '../databases/engine.ts';
import { isTlsUrl, TLS_ENGINES_VARIABLE } from '../databases/connection.ts';
import type { WaitProgress } from './adapters/backoff.ts';
import { urlUser } from './adapters/logins.ts';
import type { Adapter, AdapterOptions, AnyBootstrapEngine, Change, Flags, Login, MembershipPlan, Plan } from './contract.ts';
import { ENGINE_MODULES } from '../databases/index.ts';
import { loadEngine, type EngineEntry } from './engines.ts';
import { APP_SUFFIX, PREVIOUS_SUFFIX } from './env.ts';
import { BootstrapError, toError } from './errors.ts';

export { REPOSITORY_ROOT } from './paths.ts';

export type Mode = 'apply' | 'dry-run' | 'status';

export interface BootstrapOptions extends AdapterOptions {
  mode: Mode;
  /** Plan for empty engines without connecting (dry run only). */
  offline?: boolean;
  /** Only these engines; by default every engine whose URL variable is set. */
  only?: readonly EngineName[];
  /** Where the URL variables are read from (normally `process.env`). */
  env: Readonly<Record<string, string | undefined>>;
  /** Folders an engine's desired state is read from, instead of `databases/<engine>` (tests). */
  assetDirectories?: Readonly<Record<EngineName, string>>;
  /** Changes an engine refuses by default (`--replace-indexes`). */
  flags?: Flags;
  /**
   * The engines to choose from, in order; by default every engine the bootstrap knows
   * (`ENGINE_MODULES` of `databases/index.ts`). A module is loaded only when the run chooses it.
   */
  registry?: readonly EngineEntry[];
  /** Progress as it happens (the CLI prints it; `--json` collects the report instead). */
  onProgress?: (event: ProgressEvent) => void;
}

export type ProgressEvent =
  | { type: 'connecting'; engine: EngineName; target: string }
  | { type: 'waiting-for-lock'; engine: EngineName }
  | { type: 'changed'; engine: EngineName; change: Change; durationMs: number }
  | { type: 'verifying-login'; engine: EngineName; user: string }
  /** A wait still going (readiness, a lock, a reindex): now and then, with the time waited and its bound. */
  | ({ type: 'waiting'; engine: EngineName } & WaitProgress);

export interface EngineReport {
  engine: EngineName;
  target?: string;
  /** The changes from what the engine has to what it should have (absent when the run failed before planning). */
  plan?: Plan;
  /** Changes made by this run, in order. */
  changed: Array<{ change: Change; durationMs: number }>;
  /** Of `durationMs`, the time spent connecting (readiness wait included). */
  connectMs?: number;
  /** Which password the bootstrap logged in with: `previous` while a rotation is being applied. */
  login?: Login;
  /**
   * The changes that bring the engine's logins to the stack's passwords (a rotation), and those
   * this run made; absent for engines whose users are part of their state plan (Redis).
   */
  credentials?: { changes: Change[]; changed: Array<{ change: Change; durationMs: number }> };
  /**
   * The changes that bring the engine's cluster members to the stack's (a replica set initiated,
   * members added or removed), and those this run made; absent for engines without a membership
   * the bootstrap keeps.
   */
  membership?: { plan: MembershipPlan; changed: Array<{ change: Change; durationMs: number }> };
  /** The application's login (`<URL variable>_APP`) the engine was seen to accept after the run. */
  verifiedLogin?: string;
  durationMs: number;
  error?: string;
}

export interface BootstrapReport {
  mode: Mode;
  offline: boolean;
  /** True only when everything asked for is done (applied, or for status: nothing pending). */
  ok: boolean;
  engines: EngineReport[];
  /** A problem before any engine was reached (nothing to do, an engine without URL). */
  error?: string;
}

/** The engines a run is about, chosen by name and URL variable alone: nothing is loaded yet. */
function selectEngines(options: BootstrapOptions): { engines: EngineEntry[]; error?: string } {
  const registry = options.registry ?? ENGINE_MODULES;
  const asked = options.only ? registry.filter((engine) => options.only!.includes(engine.name)) : registry;
  if (options.offline) return { engines: [...asked] };
  const reachable = (engine: EngineEntry) => Boolean(options.env[engine.urlVariable]) || options.clients?.[engine.name] !== undefined;
  if (options.only) {
    const missing = asked.filter((engine) => !reachable(engine));
    if (missing.length > 0) {
      return { engines: [], error: missing.map((engine) => `${engine.name}: ${engine.urlVariable} is not set`).join('; ') };
    }
    return { engines: [...asked] };
  }
  const engines = asked.filter(reachable);
  if (engines.length === 0) {
    const variables = registry.map((engine) => `${engine.urlVariable} (${engine.name})`).join(', ');
    return { engines: [], error: `no engine to bootstrap: set at least one of ${variables}, or use --dry-run --offline` };
  }
  return { engines };
}

/**
 * The adapter options of one engine: the run's, with the engine's other logins from the
 * environment, and its waits reported as progress events of the engine.
 */
function engineOptions(engine: AnyBootstrapEngine, options: BootstrapOptions): BootstrapOptions {
  const previousUrl = options.env[`${engine.urlVariable}${PREVIOUS_SUFFIX}`];
  const appUrl = options.env[`${engine.urlVariable}${APP_SUFFIX}`];
  const { onProgress, onWait } = options;
  return {
    ...options,
    logins: { ...(previousUrl ? { previousUrl } : {}), ...(appUrl ? { appUrl } : {}) },
    ...(onProgress || onWait
      ? {
          onWait: (progress: WaitProgress) => {
            onWait?.(progress);
            onProgress?.({ type: 'waiting', engine: engine.name, ...progress });
          },
        }
      : {}),
  };
}

/** Takes the engine's lock at most once per run, however many phases need it. */
function lockOnce(adapter: Adapter): () => Promise<void> {
  let locked: Promise<void> | undefined;
  return () => (locked ??= adapter.lock());
}

/**
 * Brings the engine's logins to the stack's passwords (a rotation), before anything else: the
 * changes are planned, and in an apply with work to do planned again under the lock and applied.
 */
async function applyCredentials(engine: AnyBootstrapEngine, options: BootstrapOptions, report: EngineReport, adapter: Adapter, lock: () => Promise<void>): Promise<void> {
  if (!adapter.planCredentials) return;
  let changes = await adapter.planCredentials();
  report.credentials = { changes, changed: [] };
  if (options.mode !== 'apply' || changes.length === 0) return;
  await lock();
  changes = report.credentials.changes = await adapter.planCredentials();
  await applyEach(engine, options, changes, (change) => adapter.applyCredential!(change), report.credentials.changed);
}

/** Applies changes in order, recording each (and its time) in `done`; an error names the change. */
async function applyEach(
  engine: AnyBootstrapEngine,
  options: BootstrapOptions,
  changes: readonly Change[],
  apply: (change: Change) => Promise<void>,
  done: Array<{ change: Change; durationMs: number }>,
): Promise<void> {
  for (const change of changes) {
    const started = performance.now();
    try {
      await apply(change);
    } catch (error) {
      if (error instanceof BootstrapError) throw error;
      throw new BootstrapError(engine.name, `${change.subject}: ${change.action} failed: ${toError(error).message}`, { location: { file: change.source }, cause: error });
    }
    const durationMs = Math.round(performance.now() - started);
    done.push({ change, durationMs });
    options.onProgress?.({ type: 'changed', engine: engine.name, change, durationMs });
  }
}

/**
 * Brings the engine's cluster members to the stack's, before anything connects through the
 * cluster (see `MembershipPlan`); in a dry run or status, only plans. False when the engine
 * accepts no connection yet and this run does not apply the changes that would let it (a dry run
 * of a set not initiated).
 */
async function applyMembership(engine: AnyBootstrapEngine, options: BootstrapOptions, report: EngineReport, adapter: Adapter): Promise<boolean> {
  if (!adapter.planMembership) return true;
  const plan = await adapter.planMembership();
  report.membership = { plan, changed: [] };
  refuse(engine, plan.refusals);
  if (options.mode !== 'apply') return !plan.blocksConnection;
  await applyEach(engine, options, plan.changes, (change) => adapter.applyMembership!(change), report.membership.changed);
  return true;
}

/**
 * Brings the engine's cluster members to the stack's, connects an adapter, brings its logins to
 * the stack's passwords, runs `work` with it, checks that the application's URL is accepted
 * (apply only), and always closes it. `unformed` runs instead of the rest when a dry run or status
 * finds a cluster that accepts no connection yet.
 */
async function connected(
  engine: AnyBootstrapEngine,
  options: BootstrapOptions,
  report: EngineReport,
  adapter: Adapter,
  work: (adapter: Adapter, lock: () => Promise<void>) => Promise<void>,
  unformed: () => void,
): Promise<void> {
  try {
    report.target = adapter.target;
    options.onProgress?.({ type: 'connecting', engine: engine.name, target: adapter.target });
    if (!(await applyMembership(engine, options, report, adapter))) {
      unformed();
      return;
    }
    const connecting = performance.now();
    await adapter.connect();
    report.connectMs = Math.round((performance.now() - connecting) * 10) / 10;
    if (adapter.login) report.login = adapter.login;
    const lock = lockOnce(adapter);
    await applyCredentials(engine, options, report, adapter, lock);
    await work(adapter, lock);
    if (options.mode === 'apply' && adapter.verifyLogin) {
      // Logged in with the previous password: the run must have brought the engine to the
      // current one (an engine whose credentials were not given to the bootstrap would not be).
      const adminUrl = options.env[engine.urlVariable];
      if (adapter.login === 'previous' && adminUrl) await adapter.verifyLogin(adminUrl);
      const appUrl = options.logins?.appUrl;
      if (appUrl) {
        const user = urlUser(appUrl);
        options.onProgress?.({ type: 'verifying-login', engine: engine.name, user });
        await adapter.verifyLogin(appUrl);
        report.verifiedLogin = user;
      }
    }
  } finally {
    await adapter.close();
  }
}

/**
 * Plans, and when an apply has work to do, takes the engine's lock and plans again under it:
 * whatever a concurrent bootstrap applied meanwhile is seen then. A run with nothing to do takes
 * no lock at all (on ClickHouse a lease costs a claim and a settle delay).
 */
async function planUnderLock(engine: AnyBootstrapEngine, options: BootstrapOptions, lock: () => Promise<void>, plan: () => Promise<Plan>): Promise<Plan> {
  const first = await plan();
  if (options.mode !== 'apply' || first.changes.length === 0) return first;
  options.onProgress?.({ type: 'waiting-for-lock', engine: engine.name });
  await lock();
  return plan();
}

function refuse(engine: AnyBootstrapEngine, problems: readonly string[], restApplied = false): void {
  if (problems.length === 0) return;
  const what = restApplied ? 'repaired everything else, but not' : 'refusing to apply anything';
  throw new BootstrapError(engine.name, `${what}:\n  ${problems.join('\n  ')}`);
}

/**
 * For an engine the stack serves over TLS (named in `ALLIXIOS_TLS_ENGINES`, set by its Job and its
 * Docker run), refuses every URL of it that is not in a TLS form, before anything connects: a
 * plain URL would send the password in clear text first and meet the engine's refusal after.
 */
function requireTls(engine: AnyBootstrapEngine, options: BootstrapOptions): void {
  const tlsEngines = (options.env[TLS_ENGINES_VARIABLE] ?? '').split(',').map((name) => name.trim());
  if (!tlsEngines.includes(engine.name)) return;
  const variables = [engine.urlVariable, `${engine.urlVariable}${PREVIOUS_SUFFIX}`, `${engine.urlVariable}${APP_SUFFIX}`];
  const plain = variables.filter((variable) => options.env[variable] && !isTlsUrl(options.env[variable]!));
  if (plain.length > 0) {
    throw new BootstrapError(
      engine.name,
      `the stack serves ${engine.name} over TLS (${TLS_ENGINES_VARIABLE}), but ${plain.join(', ')} ${plain.length > 1 ? 'are not TLS URLs' : 'is not a TLS URL'} ` +
        '(expected rediss:// or https://, sslmode=verify-full, or tls=true): nothing was sent',
    );
  }
}

async function runEngine(entry: EngineEntry, runOptions: BootstrapOptions): Promise<EngineReport> {
  const started = performance.now();
  const report: EngineReport = { engine: entry.name, changed: [], durationMs: 0 };
  try {
    const engine = await loadEngine(entry);
    const options = engineOptions(engine, runOptions);
    if (!options.offline) requireTls(engine, options);
    const desired: unknown = engine.desired(options.env, options.assetDirectories?.[engine.name]);
    const flags = options.flags ?? {};
    if (options.offline) {
      report.plan = engine.plan(desired, null, flags);
    } else {
      const adapter: Adapter = await engine.createAdapter(options.env[engine.urlVariable], options, desired);
      await connected(
        engine,
        options,
        report,
        adapter,
        async (connection, lock) => {
          const plan = (report.plan = await planUnderLock(engine, options, lock, async () => engine.plan(desired, await connection.observe(), flags)));
          if (!engine.applyDespiteRefusals || options.mode !== 'apply') refuse(engine, plan.refusals);
          if (options.mode !== 'apply') return;
          await applyEach(engine, options, plan.changes, (change) => connection.apply(change), report.changed);
          // What could be repaired is; what could not still fails the run.
          refuse(engine, plan.refusals, true);
        },
        // A cluster not formed yet holds nothing the bootstrap made: planned as a fresh engine.
        () => {
          report.plan = engine.plan(desired, null, flags);
        },
      );
    }
  } catch (error) {
    report.error = error instanceof BootstrapError ? error.message : `${entry.name}: ${toError(error).message}`;
  }
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

function engineDone(report: EngineReport, mode: Mode): boolean {
  if (report.error) return false;
  const membership = report.membership;
  if (membership && membership.plan.refusals.length > 0) return false;
  if (membership && mode === 'apply' && membership.changed.length !== membership.plan.changes.length) return false;
  if (membership && mode === 'status' && membership.plan.changes.length > 0) return false;
  const credentials = report.credentials;
  if (credentials && mode === 'apply' && credentials.changed.length !== credentials.changes.length) return false;
  if (credentials && mode === 'status' && credentials.changes.length > 0) return false;
  const plan = report.plan;
  if (!plan || plan.refusals.length > 0) return false;
  if (mode === 'apply') return report.changed.length === plan.changes.length;
  if (mode === 'status') return plan.changes.length === 0;
  return true;
}

/** Runs the bootstrap; never throws for engine problems, which are in the report. */
export async function runBootstrap(options: BootstrapOptions): Promise<BootstrapReport> {
  const offline = options.offline ?? false;
  if (offline && options.mode !== 'dry-run') {
    return { mode: options.mode, offline, ok: false, engines: [], error: '--offline only goes with --dry-run: without a connection there is nothing to apply or report' };
  }
  const { engines, error } = selectEngines(options);
  if (error) return { mode: options.mode, offline, ok: false, engines: [], error };
  const reports: EngineReport[] = [];
  for (const engine of engines) {
    const report = await runEngine(engine, options);
    reports.push(report);
    // Engines are applied in order; after a failure the run ends with what it has.
    if (report.error) break;
  }
  const ok = reports.length === engines.length && reports.every((report) => engineDone(report, options.mode));
  return { mode: options.mode, offline, ok, engines: reports };
}
