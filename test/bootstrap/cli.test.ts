/** `npm run bootstrap` as a process: flags, output, exit codes, on the repository's real assets. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../bootstrap/embedded/postgresql.ts';
import { postgresqlEngine } from '../../bootstrap/adapters/postgresql.ts';
import { REPOSITORY_ROOT } from '../../bootstrap/runner.ts';

const run = promisify(execFile);

async function bootstrap(args: string[], env: Record<string, string> = {}) {
  const environment = { PATH: process.env.PATH ?? '', ...env };
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', join(REPOSITORY_ROOT, 'bootstrap/cli.ts'), ...args], {
      cwd: REPOSITORY_ROOT,
      env: environment,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

const postgresAssets = postgresqlEngine.desired({});

let server: EmbeddedPostgresServer;
beforeAll(async () => {
  server = await startEmbeddedPostgres();
});
afterAll(async () => {
  await server?.stop();
});

describe('npm run bootstrap', () => {
  it('prints the plan for an empty engine with --dry-run --offline, connecting to nothing', async () => {
    const { code, stdout } = await bootstrap(['--dry-run', '--offline']);
    expect(code).toBe(0);
    expect(stdout).toContain('postgresql  offline  (dry run: the plan for a freshly deployed engine, nothing contacted)');
    expect(postgresAssets.length).toBeGreaterThan(5);
    for (const asset of postgresAssets) expect(stdout).toContain(asset.path);
    expect(stdout).toContain(`${postgresAssets.length} to change, 0 already as defined`);
  });

  it('reports pending assets with --status and exits 1 until they are applied', async () => {
    const env = { DATABASE_URL: server.url('allixios_owner') };
    const before = await bootstrap(['--status'], env);
    expect(before.code).toBe(1);
    expect(before.stdout).toContain(`${postgresAssets.length} to change, 0 already as defined`);

    const apply = await bootstrap([], env);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain(`${postgresAssets.length} changed now, 0 already as defined`);

    const after = await bootstrap(['--status'], env);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/in sync\s+V0001 [^(]+ \(applied \d{4}-\d\d-\d\dT[\d:.]+Z by allixios_owner from /);
    expect(after.stdout).toContain(`0 to change, ${postgresAssets.length} already as defined`);

    const json = await bootstrap(['--status', '--json'], env);
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(true);
    expect(report.engines[0].changes).toEqual([]);
    expect(report.engines[0].inSync).toHaveLength(postgresAssets.length);
    expect(report.engines[0].inSync[0]).toMatch(/^V0001 [^(]+ \(applied \d{4}-/);
  });

  it('exits 1 with the error on stderr when the engine is unreachable', async () => {
    const port = await freePort();
    const { code, stderr } = await bootstrap(['--ready-timeout', '1'], { DATABASE_URL: `postgresql://allixios_owner:x@127.0.0.1:${port}/allixios` });
    expect(code).toBe(1);
    expect(stderr).toContain(`error: postgresql: not reachable at 127.0.0.1:${port} after 1.`);
  });

  it('exits 2 with usage for an unknown engine or flag', async () => {
    const engine = await bootstrap(['--only', 'oracle']);
    expect(engine.code).toBe(2);
    expect(engine.stderr).toContain('bootstrap: --only expects one of postgresql, mongodb, redis, elasticsearch, clickhouse, got "oracle"');
    const flag = await bootstrap(['--force']);
    expect(flag.code).toBe(2);
    expect(flag.stderr.split('\n')[0]).toBe('bootstrap: unknown option --force');
    const offline = await bootstrap(['--offline']);
    expect(offline.stderr).toContain('--offline only goes with --dry-run');
  });

  it("takes the password from <URL variable>_PASSWORD and encodes it, so a password with @:/#% works (the Job's way)", async () => {
    // Given the owner with a password full of URL delimiters, in a database of its own
    const database = 'cli_password';
    const superuser = new pg.Client({ connectionString: server.url('postgres', 'postgres') });
    await superuser.connect();
    const password = 'p@ss:w/o#r%d?x';
    await superuser.query(`CREATE ROLE cli_owner LOGIN PASSWORD '${password.replaceAll("'", "''")}'`);
    await superuser.query(`CREATE DATABASE ${database} OWNER cli_owner`);
    await superuser.end();
    // When the bootstrap gets the URL without the password and the password beside it
    const { code, stdout, stderr } = await bootstrap(['--status'], {
      DATABASE_URL: `postgresql://cli_owner@127.0.0.1:${server.port}/${database}`,
      DATABASE_URL_PASSWORD: password,
    });
    // Then it connects (a fresh database: everything pending, exit 1, no connection error)
    expect(stderr).not.toContain('cannot connect');
    expect(stdout).toContain(`${postgresAssets.length} to change, 0 already as defined`);
    expect(code).toBe(1);
    // And a password given twice is a usage error
    const twice = await bootstrap(['--status'], { DATABASE_URL: `postgresql://cli_owner:x@127.0.0.1:${server.port}/${database}`, DATABASE_URL_PASSWORD: password });
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('DATABASE_URL has a password and DATABASE_URL_PASSWORD is set too');
  });

  it('exits 1 and names the variables it reads when no URL is set', async () => {
    const { code, stderr } = await bootstrap([]);
    expect(code).toBe(1);
    expect(stderr).toContain('error: no engine to bootstrap: set at least one of DATABASE_URL (postgresql)');
  });
});
