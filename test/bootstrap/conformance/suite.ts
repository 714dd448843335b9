/**
 * The conformance suite every engine's bootstrap runs (the way golang-migrate's `database/testing`
 * is run by every driver): what the one contract of `bootstrap/contract.ts` promises, checked
 * through the runner on a real engine. An engine's `*-runner.test.ts` calls
 * {@link describeConformance} with its harness and keeps only what is particular to the engine.
 *
 * A harness says how to get a fresh engine with work to do; the rest is the same for all. The
 * cases that need a server are skipped, with the harness's reason, where none runs here
 * (MongoDB and Elasticsearch without their URL variables).
 */
import { describe, expect, it } from 'vitest';
import type { Adapter, AnyBootstrapEngine } from '../../../bootstrap/contract.ts';
import { exitCode } from '../../../bootstrap/format.ts';
import { runBootstrap, type BootstrapOptions, type BootstrapReport, type EngineReport } from '../../../bootstrap/runner.ts';
import { connectionUrl } from '../../../databases/connection.ts';
import type { EngineModule } from '../../../databases/engine.ts';
import { describeWithDefaults, freePort } from '../../support/engines.ts';

/** An engine a run can reach, with work to do (pending migrations, drift): each case gets its own. */
export interface ConformanceSubject {
  /** How a run reaches it: the URL variable (or a client) and, for a test's asset folder, the folder. */
  options: Pick<BootstrapOptions, 'env' | 'clients' | 'assetDirectories'>;
  /**
   * Another bootstrap holding the lock and alive (it keeps the lock for the whole case). Lease
   * engines need none: the suite plants a lease through the adapter's own lease store.
   */
  holdLock?(): Promise<{ holder: string; release(): Promise<void> }>;
  /** A bootstrap that died holding the lock (lease engines need none: a lease nobody renews). */
  killHolder?(): Promise<void>;
  stop(): Promise<void>;
}

export interface ConformanceHarness {
  module: EngineModule;
  /** The engine as the runner gets it (by default `module.bootstrap()`). */
  engine?: AnyBootstrapEngine;
  /** What the engine's URL variable must name, set when none does here: the cases that need a server
   * are then skipped, their titles saying "(needs <urlVariable>: <this>)". */
  unavailable?: string;
  /** A fresh engine with work to do. */
  fresh(): Promise<ConformanceSubject>;
  /** Why a wrong password cannot be tried (an engine reached through a client, without logins). */
  noLogins?: string;
}

const TIMEOUTS = { readyTimeoutMs: 10_000, lockTimeoutMs: 20_000, lockLeaseMs: 1500 };

const only = (report: BootstrapReport): EngineReport => {
  expect(report.engines).toHaveLength(1);
  return report.engines[0]!;
};
const changedCount = (report: BootstrapReport) => only(report).changed.length;
const pendingCount = (report: BootstrapReport) => only(report).plan?.changes.length ?? -1;

/** Runs `body` with a fresh subject, stopped afterwards whatever happens. */
async function withSubject(harness: ConformanceHarness, body: (subject: ConformanceSubject) => Promise<void>): Promise<void> {
  const subject = await harness.fresh();
  try {
    await body(subject);
  } finally {
    await subject.stop();
  }
}

/** A connected adapter on `subject`, for what the suite does beside a run (planting a lease). */
async function adapterOn(engine: AnyBootstrapEngine, subject: ConformanceSubject): Promise<Adapter> {
  const env = subject.options.env;
  const adapter: Adapter = await engine.createAdapter(
    env[engine.urlVariable],
    { ...TIMEOUTS, ...subject.options },
    engine.desired(env, subject.options.assetDirectories?.[engine.name]),
  );
  await adapter.connect();
  return adapter;
}

/**
 * Plants a lease for `holder` lasting `ms`, as another bootstrap would hold it: an adapter takes
 * the lock (which also creates what the engine keeps its lease in), hands it over to `holder`
 * through the engine's own lease store, and goes away; nobody renews the planted lease.
 */
async function plantLease(engine: AnyBootstrapEngine, subject: ConformanceSubject, holder: string, ms: number): Promise<void> {
  const adapter = await adapterOn(engine, subject);
  try {
    if (!adapter.lease) throw new Error(`${engine.name}: the adapter holds no lease, so the harness must say how another bootstrap holds the lock`);
    await adapter.lock();
    await adapter.lease.store.release(adapter.lease.holder);
    expect(await adapter.lease.store.tryAcquire(holder, ms)).toBe(true);
  } finally {
    await adapter.close();
  }
}

/** `url` with its password replaced; the user stays. */
function withWrongPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

export function describeConformance(harness: ConformanceHarness): void {
  const { module } = harness;
  const engine = async () => harness.engine ?? (await module.bootstrap());
  const run = async (subject: ConformanceSubject, extra: Partial<BootstrapOptions> = {}) =>
    runBootstrap({ mode: 'apply', registry: [await engine()], ...TIMEOUTS, ...subject.options, ...extra });
  const withServer = harness.unavailable ? it.skip : it;
  /** Another bootstrap holding the lock and alive: the harness's, or a planted lease for a minute. */
  const holdLock = async (subject: ConformanceSubject, host: string) => {
    if (subject.holdLock) return subject.holdLock();
    const holder = `${host}-host/2/${module.name}-conformance`;
    await plantLease(await engine(), subject, holder, 60_000);
    return { holder, release: async () => undefined };
  };
  const title = (what: string) => (harness.unavailable ? `${what} (needs ${module.urlVariable}: ${harness.unavailable})` : what);

  describe(`the bootstrap contract on ${module.displayName}`, () => {
    it('plans for an empty engine offline, without connecting or any URL', async () => {
      const report = await runBootstrap({ mode: 'dry-run', offline: true, env: {}, registry: [await engine()], ...TIMEOUTS });
      expect(report.ok).toBe(true);
      expect(only(report).target).toBeUndefined();
      expect(only(report).plan).toBeDefined();
    });

    it('ends the run within the readiness timeout when nothing answers, naming host and port and no password', async () => {
      // Given the engine's admin URL on a port nothing listens on
      const port = await freePort();
      const password = 'conformance-secret-password';
      const url = connectionUrl(describeWithDefaults(module, 'dev').adminConnection, password, '127.0.0.1', port);
      // When a run waits at most 1.5 s for it
      const started = Date.now();
      const report = await runBootstrap({ mode: 'apply', env: { [module.urlVariable]: url }, registry: [await engine()], ...TIMEOUTS, readyTimeoutMs: 1500 });
      const elapsed = Date.now() - started;
      // Then it gives up after about that long, saying where it tried
      expect(report.ok).toBe(false);
      expect(only(report).error).toMatch(new RegExp(`^${module.name}: not reachable at 127\\.0\\.0\\.1:${port} after 1\\.\\d s \\(.+\\)( \\[[^\\]]+\\])?$`));
      expect(only(report).error).not.toContain(password);
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      expect(elapsed).toBeLessThan(8000);
    });

    withServer(title('a second run applies nothing, and status then reports everything done (exit 0)'), async () => {
      await withSubject(harness, async (subject) => {
        // Given an engine with work to do: status says so (exit 1)
        const before = await run(subject, { mode: 'status' });
        expect(only(before).error).toBeUndefined();
        expect(pendingCount(before)).toBeGreaterThan(0);
        expect(exitCode(before)).toBe(1);
        // When it is applied twice
        const first = await run(subject);
        const second = await run(subject);
        // Then the first run did the work and the second nothing
        expect(only(first).error).toBeUndefined();
        expect(changedCount(first)).toBe(pendingCount(before));
        expect(exitCode(first)).toBe(0);
        expect(only(second).error).toBeUndefined();
        expect(changedCount(second)).toBe(0);
        expect(pendingCount(second)).toBe(0);
        const after = await run(subject, { mode: 'status' });
        expect(exitCode(after)).toBe(0);
        expect(only(after).plan!.inSync.length).toBeGreaterThan(0);
      });
    });

    withServer(title('a dry run changes nothing and lists what an apply would do'), async () => {
      await withSubject(harness, async (subject) => {
        const status = await run(subject, { mode: 'status' });
        const dryRun = await run(subject, { mode: 'dry-run' });
        expect(dryRun.ok).toBe(true);
        expect(only(dryRun).changed).toEqual([]);
        expect(only(dryRun).plan!.changes.map((change) => change.subject)).toEqual(only(status).plan!.changes.map((change) => change.subject));
        // The engine still has all of it to do
        expect(pendingCount(await run(subject, { mode: 'status' }))).toBe(pendingCount(status));
      });
    });

    withServer(title('concurrent runs apply each change once'), async () => {
      await withSubject(harness, async (subject) => {
        const pending = pendingCount(await run(subject, { mode: 'status' }));
        const reports = await Promise.all([run(subject), run(subject), run(subject)]);
        expect(reports.map((report) => only(report).error ?? 'ok')).toEqual(['ok', 'ok', 'ok']);
        expect(reports.map(changedCount).sort((a, b) => a - b)).toEqual([0, 0, pending]);
        expect(pendingCount(await run(subject, { mode: 'status' }))).toBe(0);
      });
    });

    withServer(title('gives up after the lock timeout while another bootstrap holds the lock, naming it; status does not wait'), async () => {
      await withSubject(harness, async (subject) => {
        // Given another bootstrap holding the lock
        const held = await holdLock(subject, 'busy');
        try {
          const pending = pendingCount(await run(subject, { mode: 'status' }));
          // When an apply waits at most 0.8 s for it
          const report = await run(subject, { lockTimeoutMs: 800 });
          // Then it gives up naming the holder, and changed nothing
          expect(report.ok).toBe(false);
          expect(only(report).error).toMatch(new RegExp(`^${module.name}: another bootstrap still holds the lock after 0\\.8 s \\(held by `));
          expect(only(report).error).toContain(held.holder);
          expect(only(report).changed).toEqual([]);
          // And a status, which changes nothing, does not wait for the lock
          const started = Date.now();
          expect(pendingCount(await run(subject, { mode: 'status', lockTimeoutMs: 10_000 }))).toBe(pending);
          expect(Date.now() - started).toBeLessThan(5000);
        } finally {
          await held.release();
        }
      });
    });

    withServer(title('an apply with nothing to do does not wait for another bootstrap holding the lock'), async () => {
      await withSubject(harness, async (subject) => {
        // Given an engine already as defined, and another bootstrap holding the lock
        expect(only(await run(subject)).error).toBeUndefined();
        const held = await holdLock(subject, 'idle');
        try {
          // When an apply starts, willing to wait 10 s for the lock
          const started = Date.now();
          const report = await run(subject, { lockTimeoutMs: 10_000 });
          // Then it finds nothing to do without taking the lock
          expect(only(report).error).toBeUndefined();
          expect(changedCount(report)).toBe(0);
          expect(Date.now() - started).toBeLessThan(5000);
        } finally {
          await held.release();
        }
      });
    });

    withServer(title("waits out a dead bootstrap's lock, then applies"), async () => {
      await withSubject(harness, async (subject) => {
        // Given a bootstrap that died holding the lock: a lease nobody renews (1.5 s left), or a
        // session cut off
        const leaseMs = 1500;
        const pending = pendingCount(await run(subject, { mode: 'status' }));
        if (subject.killHolder) await subject.killHolder();
        else await plantLease(await engine(), subject, `dead-host/1/${module.name}-conformance`, leaseMs);
        // When an apply starts
        const started = Date.now();
        const report = await run(subject);
        // Then it applied everything once the lock was free
        expect(only(report).error).toBeUndefined();
        expect(changedCount(report)).toBe(pending);
        if (!subject.killHolder) expect(Date.now() - started).toBeGreaterThanOrEqual(leaseMs - 500);
      });
    });

    withServer(title('fails at once on a wrong password, naming the user and not the password'), async (context) => {
      if (harness.noLogins) {
        context.skip(harness.noLogins);
        return;
      }
      await withSubject(harness, async (subject) => {
        const url = subject.options.env[module.urlVariable]!;
        const password = 'not-the-password-3f1c';
        const started = Date.now();
        const report = await run(subject, { env: { ...subject.options.env, [module.urlVariable]: withWrongPassword(url, password) }, readyTimeoutMs: 20_000 });
        expect(report.ok).toBe(false);
        expect(only(report).error).toMatch(new RegExp(`^${module.name}: `));
        expect(only(report).error).toContain(decodeURIComponent(new URL(url).username));
        expect(only(report).error).not.toContain(password);
        expect(Date.now() - started).toBeLessThan(5000);
      });
    });
  });
}
