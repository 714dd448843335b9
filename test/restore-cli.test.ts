/**
 * `npm run restore` (stacks/restore/cli.ts, request.ts): its refusals before anything is done,
 * the moment of `--to`, and what it hands an engine's restore from a stack's config or a local
 * copy. Each engine's own restore is tested with the engine.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPOSITORY_ROOT } from '../bootstrap/paths.ts';
import { parseRecoveryTime } from '../stacks/restore/cli.ts';
import { restoreRequest } from '../stacks/restore/request.ts';

function run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(REPOSITORY_ROOT, 'stacks/restore/cli.ts'), ...args],
      { cwd: REPOSITORY_ROOT, env: { PATH: process.env.PATH ?? '' } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run restore: what it refuses before doing anything', () => {
  it.each([
    [['--engine', 'redis', '--target', '/tmp/x'], "restore: expected exactly one of --stack (the stack's object store) and --from (a local copy)"],
    [
      ['--engine', 'redis', '--stack', 'prod', '--from', '/tmp', '--target', '/tmp/x'],
      "restore: expected exactly one of --stack (the stack's object store) and --from (a local copy)",
    ],
    [
      ['--engine', 'postgresql', '--stack', 'prod', '--target', '/tmp/x', '--to', '2026-12-01T00:00:00Z', '--backup', '20261201-010000F'],
      'restore: expected at most one of --to (a moment) and --backup (a backup)',
    ],
    [
      ['--engine', 'redis', '--stack', 'prod', '--target', '/data/redis', '--replace-existing', '/data/other', '--execute'],
      'restore: --replace-existing must name the target again ("/data/redis") and come with --execute, got "/data/other"',
    ],
    [
      ['--engine', 'redis', '--stack', 'prod', '--target', '/data/redis', '--replace-existing', '/data/redis'],
      'restore: --replace-existing must name the target again ("/data/redis") and come with --execute, got "/data/redis"',
    ],
    [['--engine', 'cassandra', '--stack', 'prod', '--target', 'x'], 'restore: --engine expects one of postgresql, mongodb, redis, elasticsearch, clickhouse, got "cassandra"'],
    [['--engine', 'redis', '--stack', 'qa', '--target', 'x'], 'restore: no stack file Pulumi.qa.yaml; stacks with a file here: dev, prod, staging'],
  ])('%j: exit 2 with one line naming what is wrong, nothing done', async (args, line) => {
    const outcome = await run(args);
    expect([outcome.code, outcome.stderr.split('\n')[0], outcome.stdout]).toEqual([2, line, '']);
  });
});

describe('the moment of --to', () => {
  it('takes ISO 8601 with a zone, so it never depends on the machine’s', () => {
    expect(parseRecoveryTime('2026-11-08T01:30:00Z').toISOString()).toBe('2026-11-08T01:30:00.000Z');
    expect(parseRecoveryTime('2026-11-08T02:30:00.250+01:00').toISOString()).toBe('2026-11-08T01:30:00.250Z');
  });

  it.each([
    ['2026-12-08 01:30', '--to: expected an ISO 8601 time with a zone such as 2026-12-08T01:30:00Z, got "2026-12-08 01:30"'],
    ['2026-12-08T01:30:00', '--to: expected an ISO 8601 time with a zone such as 2026-12-08T01:30:00Z, got "2026-12-08T01:30:00"'],
    ['2026-02-31T01:30:00Z', '--to: expected a real moment, got "2026-02-31T01:30:00Z"'],
  ])('refuses %s', (value, message) => {
    expect(() => parseRecoveryTime(value)).toThrow(message);
  });

  it('refuses a moment after now', () => {
    expect(() => parseRecoveryTime('2999-01-01T00:00:00Z')).toThrow(/^--to: expected a moment in the past, got 2999-01-01T00:00:00Z, which is after now/);
  });
});

describe('what the engine’s restore is handed', () => {
  it("takes the backup's location from the stack's allixios:backups, and the engine's URL from the platform's variable", async () => {
    const resolved = await restoreRequest(
      REPOSITORY_ROOT,
      { engine: 'clickhouse', stack: 'prod', target: 'allixios_restored', replaceExisting: false },
      { CLICKHOUSE_URL: 'https://u:p@localhost:8443' },
    );
    expect(resolved.source).toBe('s3://allixios-prod-backups/prod/clickhouse (stack prod)');
    expect(resolved.request).toMatchObject({
      target: 'allixios_restored',
      replaceExisting: false,
      url: 'https://u:p@localhost:8443',
      settings: { path: 'prod/clickhouse', objectStore: { bucket: 'allixios-prod-backups', region: 'eu-west-1' }, retention: { count: 4, days: 35 } },
    });
  });

  it('refuses a stack that does not back up, and a local copy that does not exist', async () => {
    await expect(restoreRequest(REPOSITORY_ROOT, { engine: 'clickhouse', stack: 'staging', target: 'x', replaceExisting: false }, {})).rejects.toThrow(
      'stack staging does not back up (its allixios:backups names no object store, or is turned off): nothing to restore from',
    );
    const missing = join(mkdtempSync(join(tmpdir(), 'restore-')), 'nothing-here');
    await expect(restoreRequest(REPOSITORY_ROOT, { engine: 'clickhouse', from: missing, target: 'x', replaceExisting: false }, {})).rejects.toThrow(
      `--from: ${missing} does not exist (expected a local copy of a ClickHouse backup)`,
    );
  });
});
