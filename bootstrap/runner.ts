/**
 * The bootstrap runner: for each engine asked for, in a fixed order, read its assets, read its
 * ledger, plan (a pure function), then apply the plan under the engine's lock. Dry runs and
 * status stop after the plan.
 */
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineName } from '../databases/engine.ts';
import { ENGINES } from '../databases/index.ts';
import { loadAssets, type Asset } from './assets.ts';
import type { AdapterOptions, CredentialAdapter, EngineAdapter, Login } from './adapters/types.ts';
import { APP_SUFFIX, PREVIOUS_SUFFIX } from './env.ts';
import { urlUser } from './adapters/logins.ts';
import { BOOTSTRAP_ENGINES, type BootstrapEngine, type MigrationEngine } from './engines.ts';
import { BootstrapError } from './errors.ts';
import { planEngine, type EnginePlan } from './plan.ts';
import type { Change, StateAdapter, StateEngine, StateFlags, StatePlan } from './state.ts';

export const REPOSITORY_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export type Mode = 'apply' | 'dry-run' | 'status';

export interface BootstrapOptions extends AdapterOptions {
  mode: Mode;
  /** Plan for empty engines without connecting (dry run only). */
  offline?: boolean;
  /** Only these engines; by default every engine whose URL variable is set. */
  only?: readonly EngineName[];
  /** Where the URL variables are read from (normally `process.env`). */
  env: Readonly<Record<string, string | undefined>>;
  /** Asset folders per engine, instead of `databases/<engine>` (tests). */
  assetDirectories?: Partial<Record<EngineName, string>>;
  /** Changes a state engine refuses by default (`--replace-indexes`). */
  flags?: StateFlags;
  /** The engines to run, in order; by default every engine the bootstrap knows (`engines.ts`). */
  registry?: readonly BootstrapEngine[];
  /** Progress as it happens (the CLI prints it; `--json` collects the report instead). */
  onProgress?: (event: ProgressEvent) => void;
}

export type ProgressEvent =
  | { type: 'connecting'; engine: EngineName; target: string }
  | { type: 'waiting-for-lock'; engine: EngineName }
  | { type: 'applied'; engine: EngineName; asset: Asset; reason: 'pending' | 'changed'; durationMs: number }
  | { type: 'changed'; engine: EngineName; change: Change; durationMs: number }
  | { type: 'verifying-login'; engine: EngineName; user: string };

export interface EngineReport {
  engine: EngineName;
  target?: string;
  /** Migration engines: the plan over the engine's asset files. */
  plan?: EnginePlan;
  /** State engines: the changes from what the engine has to what it should have. */
  statePlan?: StatePlan;
  /** Steps applied by this run, in order (migration engines). */
  applied: Array<{ asset: Asset; durationMs: number }>;
  /** Changes made by this run, in order (state engines). */
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

function selectEngines(options: BootstrapOptions): { engines: BootstrapEngine[]; error?: string } {
  const registry = options.registry ?? BOOTSTRAP_ENGINES;
  const asked = options.only ? registry.filter((engine) => options.only!.includes(engine.name)) : registry;
  if (options.offline) return { engines: [...asked] };
  const reachable = (engine: BootstrapEngine) =>
    Boolean(options.env[engine.urlVariable]) || (engine.kind === 'migrations' && (engine.hasClient?.(options) ?? false));
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

/** What every adapter has: where it connects, connecting, locking, closing, and its logins. */
interface Connection extends CredentialAdapter {
  readonly target: string;
  connect(): Promise<void>;
  lock(): Promise<void>;
  close(): Promise<void>;
}

/** The adapter options of one engine: the run's, with the engine's other logins from the environment. */
function engineOptions(engine: BootstrapEngine, options: BootstrapOptions): BootstrapOptions {
  const previousUrl = options.env[`${engine.urlVariable}${PREVIOUS_SUFFIX}`];
  const appUrl = options.env[`${engine.urlVariable}${APP_SUFFIX}`];
  return { ...options, logins: { ...(previousUrl ? { previousUrl } : {}), ...(appUrl ? { appUrl } : {}) } };
}

/** Takes the engine's lock at most once per run, however many phases need it. */
function lockOnce(adapter: Connection): () => Promise<void> {
  let locked: Promise<void> | undefined;
  return () => (locked ??= adapter.lock());
}

/**
 * Brings the engine's logins to the stack's passwords (a rotation), before anything else: the
 * changes are planned, and in an apply with work to do planned again under the lock and applied.
 */
async function applyCredentials(engine: BootstrapEngine, options: BootstrapOptions, report: EngineReport, adapter: Connection, lock: () => Promise<void>): Promise<void> {
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
  engine: BootstrapEngine,
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
      throw new BootstrapError(engine.name, `${change.subject}: ${change.action} failed: ${(error as Error).message}`, { file: change.source });
    }
    const durationMs = Math.round(performance.now() - started);
    done.push({ change, durationMs });
    options.onProgress?.({ type: 'changed', engine: engine.name, change, durationMs });
  }
}

/**
 * Connects an adapter, brings its logins to the stack's passwords, runs `work` with it, checks
 * that the application's URL is accepted (apply only), and always closes it.
 */
async function connected<Adapter extends Connection>(
  engine: BootstrapEngine,
  options: BootstrapOptions,
  report: EngineReport,
  adapter: Adapter,
  work: (adapter: Adapter, lock: () => Promise<void>) => Promise<void>,
): Promise<void> {
  try {
    report.target = adapter.target;
    options.onProgress?.({ type: 'connecting', engine: engine.name, target: adapter.target });
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
async function planUnderLock<Plan>(
  engine: BootstrapEngine,
  options: BootstrapOptions,
  lock: () => Promise<void>,
  plan: () => Promise<Plan>,
  hasWork: (plan: Plan) => boolean,
): Promise<Plan> {
  const first = await plan();
  if (options.mode !== 'apply' || !hasWork(first)) return first;
  options.onProgress?.({ type: 'waiting-for-lock', engine: engine.name });
  await lock();
  return plan();
}

function refuse(engine: BootstrapEngine, problems: readonly string[], restApplied = false): void {
  if (problems.length === 0) return;
  const what = restApplied ? 'repaired everything else, but not' : 'refusing to apply anything';
  throw new BootstrapError(engine.name, `${what}:\n  ${problems.join('\n  ')}`);
}

async function runStateEngine(engine: StateEngine, runOptions: BootstrapOptions, report: EngineReport): Promise<void> {
  const options = engineOptions(engine, runOptions);
  const desired = engine.desired(options.env);
  const flags = options.flags ?? {};
  if (options.offline) {
    report.statePlan = engine.plan(desired, null, flags);
    return;
  }
  await connected(engine, options, report, engine.createAdapter(options.env[engine.urlVariable]!, options, desired), async (adapter: StateAdapter<unknown, unknown>, lock) => {
    const plan = (report.statePlan = await planUnderLock(
      engine,
      options,
      lock,
      async () => engine.plan(desired, await adapter.observe(), flags),
      (candidate) => candidate.changes.length > 0,
    ));
    if (!engine.applyDespiteRefusals) refuse(engine, plan.refusals);
    if (options.mode !== 'apply') return refuse(engine, plan.refusals);
    await applyEach(engine, options, plan.changes, (change) => adapter.apply(change), report.changed);
    // What could be repaired is; what could not still fails the run.
    refuse(engine, plan.refusals, true);
  });
}

async function runMigrationEngine(engine: MigrationEngine, runOptions: BootstrapOptions, report: EngineReport): Promise<void> {
  const options = engineOptions(engine, runOptions);
  const directory = options.assetDirectories?.[engine.name] ?? ENGINES[engine.name].directory;
  // Paths in messages and the ledger are relative to the repository (`databases/postgresql/...`),
  // or to the folder itself when it lies elsewhere (an asset folder given by a test).
  const root = relative(REPOSITORY_ROOT, directory).startsWith('..') ? directory : REPOSITORY_ROOT;
  const assets = loadAssets({ engine: engine.name, directory, root, ...engine.assets });
  for (const asset of assets) engine.checkAsset?.(asset);
  if (options.offline) {
    report.plan = planEngine(engine.name, assets, []);
    return;
  }
  await connected(engine, options, report, engine.createAdapter(options.env[engine.urlVariable], options), async (adapter: EngineAdapter, lock) => {
    const plan = (report.plan = await planUnderLock(
      engine,
      options,
      lock,
      async () => planEngine(engine.name, assets, await adapter.readLedger()),
      (candidate) => candidate.steps.length > 0,
    ));
    refuse(engine, plan.problems);
    if (options.mode !== 'apply') return;
    for (const step of plan.steps) {
      const started = performance.now();
      await adapter.apply(step);
      const durationMs = Math.round(performance.now() - started);
      report.applied.push({ asset: step.asset, durationMs });
      options.onProgress?.({ type: 'applied', engine: engine.name, asset: step.asset, reason: step.reason, durationMs });
    }
  });
}

async function runEngine(engine: BootstrapEngine, options: BootstrapOptions): Promise<EngineReport> {
  const started = performance.now();
  const report: EngineReport = { engine: engine.name, applied: [], changed: [], durationMs: 0 };
  try {
    if (engine.kind === 'state') await runStateEngine(engine, options, report);
    else await runMigrationEngine(engine, options, report);
  } catch (error) {
    report.error = error instanceof BootstrapError ? error.message : `${engine.name}: ${(error as Error).message}`;
  }
  report.durationMs = Math.round(performance.now() - started);
  return report;
}

function engineDone(report: EngineReport, mode: Mode): boolean {
  if (report.error) return false;
  const credentials = report.credentials;
  if (credentials && mode === 'apply' && credentials.changed.length !== credentials.changes.length) return false;
  if (credentials && mode === 'status' && credentials.changes.length > 0) return false;
  if (report.statePlan) {
    if (report.statePlan.refusals.length > 0) return false;
    if (mode === 'apply') return report.changed.length === report.statePlan.changes.length;
    if (mode === 'status') return report.statePlan.changes.length === 0;
    return true;
  }
  if (!report.plan || report.plan.problems.length > 0) return false;
  if (mode === 'apply') return report.applied.length === report.plan.steps.length;
  if (mode === 'status') return report.plan.steps.length === 0;
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
