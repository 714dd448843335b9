/**
 * A run loads only what it needs: the bootstrap side of the engines it chooses (chosen by the
 * modules' names and URL variables, before anything is loaded), and an engine's driver only when
 * it connects to it. Checked in the runner with engine modules that count their loads, and in
 * the CLI as a process, recording the packages the project's code imports.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { engineIdentity, type Adapter, type AnyBootstrapEngine } from '../../bootstrap/contract.ts';
import { REPOSITORY_ROOT, runBootstrap } from '../../bootstrap/runner.ts';
import type { EngineModule } from '../../databases/engine.ts';
import { ENGINE_MODULES } from '../../databases/index.ts';
import { freePort } from '../support/engines.ts';

const TIMEOUTS = { readyTimeoutMs: 1000, lockTimeoutMs: 1000 };
const DRIVERS = ['pg', 'mongodb', 'ioredis', '@elastic/elasticsearch', '@clickhouse/client'];

/** An engine with nothing to do, whose adapter connects at once; `adapters` counts the adapters made. */
function idleEngine(module: EngineModule, adapters: string[]): AnyBootstrapEngine {
  const adapter: Adapter = {
    engine: module.name,
    target: 'idle',
    connect: async () => undefined,
    lock: async () => undefined,
    observe: async () => null,
    apply: async () => undefined,
    close: async () => undefined,
  };
  return {
    ...engineIdentity(module),
    desired: () => null,
    plan: () => ({ engine: module.name, changes: [], inSync: [], refusals: [] }),
    createAdapter: async () => {
      adapters.push(module.name);
      return adapter;
    },
    embedded: { unavailable: 'an engine of this test only' },
  };
}

/** The platform's modules, each loading an idle engine and counting the loads. */
function countingModules() {
  const adapters: string[] = [];
  const modules = ENGINE_MODULES.map((module) => ({ ...module, bootstrap: vi.fn(async () => idleEngine(module, adapters)) }));
  const loaded = () => modules.filter((module) => module.bootstrap.mock.calls.length > 0).map((module) => module.name);
  return { modules, loaded, adapters };
}

describe('what a bootstrap run loads (runner)', () => {
  it('loads the bootstrap side of the engines whose URL variable is set, and no other', async () => {
    // Given only DATABASE_URL
    const { modules, loaded, adapters } = countingModules();
    // When a status run chooses its engines
    const report = await runBootstrap({ mode: 'status', env: { DATABASE_URL: 'postgresql://owner@db/allixios' }, registry: modules, ...TIMEOUTS });
    // Then PostgreSQL alone was loaded and connected to
    expect(report.ok).toBe(true);
    expect(report.engines.map((engine) => engine.engine)).toEqual(['postgresql']);
    expect(loaded()).toEqual(['postgresql']);
    expect(adapters).toEqual(['postgresql']);
  });

  it('loads only the engines --only names', async () => {
    const { modules, loaded } = countingModules();
    const env = { DATABASE_URL: 'postgresql://owner@db/allixios', REDIS_URL: 'redis://admin@cache:6379/0', CLICKHOUSE_URL: 'http://admin@olap:8123' };
    const report = await runBootstrap({ mode: 'status', env, only: ['redis'], registry: modules, ...TIMEOUTS });
    expect(report.engines.map((engine) => engine.engine)).toEqual(['redis']);
    expect(loaded()).toEqual(['redis']);
  });

  it('loads nothing when no engine is asked for, and says which variables to set', async () => {
    const { modules, loaded } = countingModules();
    const report = await runBootstrap({ mode: 'apply', env: {}, registry: modules, ...TIMEOUTS });
    expect(report.error).toMatch(/^no engine to bootstrap: set at least one of DATABASE_URL \(postgresql\)/);
    expect(loaded()).toEqual([]);
  });

  it('plans every engine offline without making an adapter (so without its driver)', async () => {
    const { modules, loaded, adapters } = countingModules();
    const report = await runBootstrap({ mode: 'dry-run', offline: true, env: {}, registry: modules, ...TIMEOUTS });
    expect(report.ok).toBe(true);
    expect(loaded()).toEqual(ENGINE_MODULES.map((module) => module.name));
    expect(adapters).toEqual([]);
  });

  it('reports an engine whose bootstrap side cannot be loaded, naming it, and stops there', async () => {
    const { modules } = countingModules();
    modules[0]!.bootstrap.mockRejectedValueOnce(new Error("Cannot find package 'pg'"));
    const report = await runBootstrap({ mode: 'dry-run', offline: true, env: {}, registry: modules, ...TIMEOUTS });
    expect(report.ok).toBe(false);
    expect(report.engines).toEqual([expect.objectContaining({ engine: 'postgresql', error: "postgresql: Cannot find package 'pg'" })]);
  });
});

describe('what npm run bootstrap imports (a process)', () => {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-imports-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  /** Runs the CLI, returning its exit code and the packages the project's code imported. */
  async function importedBy(name: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; packages: string[] }> {
    const file = join(directory, `${name}.txt`);
    const hook = join(REPOSITORY_ROOT, 'test/support/imported-packages.mjs');
    let code = 0;
    try {
      await promisify(execFile)(process.execPath, ['--import', 'tsx', '--import', hook, join(REPOSITORY_ROOT, 'bootstrap/cli.ts'), ...args], {
        cwd: REPOSITORY_ROOT,
        env: { PATH: process.env.PATH ?? '', IMPORTED_PACKAGES_FILE: file, ...env },
      });
    } catch (error) {
      code = (error as { code: number }).code;
    }
    let lines: string[] = [];
    try {
      lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    } catch {
      // nothing imported from node_modules at all
    }
    return { code, packages: [...new Set(lines)].sort() };
  }

  it('plans every engine offline without importing any driver', async () => {
    const { code, packages } = await importedBy('offline', ['--dry-run', '--offline']);
    expect(code).toBe(0);
    // The hook sees the project's imports (zod, for one); no driver among them
    expect(packages).toContain('zod');
    expect(packages.filter((name) => DRIVERS.includes(name))).toEqual([]);
  });

  it('imports pg and no other driver for a run against PostgreSQL alone', async () => {
    // Given a DATABASE_URL on a port nothing listens on: the run fails after --ready-timeout
    const port = await freePort();
    const { code, packages } = await importedBy('postgresql', ['--status', '--ready-timeout', '0.5'], {
      DATABASE_URL: `postgresql://allixios_owner:pw@127.0.0.1:${port}/allixios`,
    });
    expect(code).toBe(1);
    expect(packages.filter((name) => DRIVERS.includes(name))).toEqual(['pg']);
  });
});
