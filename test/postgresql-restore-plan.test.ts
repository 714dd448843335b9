/**
 * The plan of a PostgreSQL restore (databases/postgresql/restore.ts), decided without a repository:
 * stand-ins for `pgbackrest` (its `info` answer from a file, its arguments and environment
 * recorded) and for `postgres --version`. What to restore from, what is refused and why, and that
 * the passphrase travels in the environment only. The restore itself runs on real engines in
 * test/engines/pgbackrest.test.ts.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseTargetTime, planPostgresqlRestore, restorePostgresql, RestoreError, type PostgresqlRestoreOptions } from '../databases/postgresql/restore.ts';

const directory = mkdtempSync(join(tmpdir(), 'allixios-restore-plan-'));
const infoFile = join(directory, 'info.json');
const argvFile = join(directory, 'argv');
const envFile = join(directory, 'env');
const pgbackrest = join(directory, 'pgbackrest');
const bin = join(directory, 'bin');
mkdirSync(bin);
writeFileSync(pgbackrest, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argvFile}'\nenv > '${envFile}'\ncat '${infoFile}'\n`);
writeFileSync(join(bin, 'postgres'), `#!/bin/sh\necho 'postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)'\n`);
chmodSync(pgbackrest, 0o755);
chmodSync(join(bin, 'postgres'), 0o755);

const PASSPHRASE = 'correct-horse-battery-staple-0123456789';
const at = (iso: string) => Date.parse(iso) / 1000;
const backup = (label: string, type: 'full' | 'diff', start: string, stop: string) => ({
  label,
  type,
  error: false,
  timestamp: { start: at(start), stop: at(stop) },
  database: { id: 1 },
});
const BACKUPS = [
  backup('20261129-010002F', 'full', '2026-11-29T01:00:02Z', '2026-11-29T01:20:00Z'),
  backup('20261129-010002F_20261130-010003D', 'diff', '2026-11-30T01:00:03Z', '2026-11-30T01:05:00Z'),
  backup('20261206-010002F', 'full', '2026-12-06T01:00:02Z', '2026-12-06T01:21:00Z'),
];

function repositoryInfo(backups: unknown[], db = [{ id: 1, version: '15' }], status = { code: 0, message: 'ok' }): void {
  writeFileSync(infoFile, JSON.stringify([{ name: 'allixios', status, backup: backups, db, repo: [{ status: { code: 0, message: 'ok' } }] }]));
}

let target = 0;
function options(overrides: Partial<PostgresqlRestoreOptions> = {}): PostgresqlRestoreOptions {
  return {
    repository: { kind: 'posix', path: '/srv/repository', retention: { count: 4, days: 30 } },
    credentials: { cipherPass: PASSPHRASE },
    target: { latest: true },
    dataDirectory: join(directory, `restored-${++target}`),
    binaries: { postgresql: bin, pgbackrest },
    now: () => new Date('2026-12-08T12:00:00Z'),
    ...overrides,
  };
}

const refusal = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(RestoreError);
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
};

beforeEach(() => repositoryInfo(BACKUPS));

describe('the restore plan', () => {
  it('starts the latest from the newest backup and recovers to the end of the archived WAL, archiving off', async () => {
    const plan = await planPostgresqlRestore(options());
    expect(plan.backup).toMatchObject({ label: '20261206-010002F', type: 'full', stoppedAt: '2026-12-06T01:21:00Z', postgresqlVersion: '15' });
    expect(plan.target).toEqual({ kind: 'latest' });
    expect(plan.pgbackrestArguments).toEqual(['--stanza=allixios', '--set=20261206-010002F', '--type=default', '--archive-mode=off', 'restore']);
    expect(plan.steps).toHaveLength(5);
    expect(plan.steps.join('\n')).toMatch(/end of the archived WAL/);
  });

  it('starts a point in time from the newest backup that ended before it, and promotes there', async () => {
    const plan = await planPostgresqlRestore(options({ target: { time: '2026-12-01T10:15:00.25+01:00' } }));
    expect(plan.backup.label).toBe('20261129-010002F_20261130-010003D');
    expect(plan.target).toEqual({ kind: 'time', time: '2026-12-01 10:15:00.250000+01:00' });
    expect(plan.pgbackrestArguments).toEqual([
      '--stanza=allixios',
      '--set=20261129-010002F_20261130-010003D',
      '--type=time',
      '--target=2026-12-01 10:15:00.250000+01:00',
      '--target-action=promote',
      '--archive-mode=off',
      'restore',
    ]);
    // During a full backup that had not ended yet: the one before it.
    expect((await planPostgresqlRestore(options({ target: { time: '2026-12-06T01:10:00Z' } }))).backup.label).toBe('20261129-010002F_20261130-010003D');
  });

  it('restores a backup as it was when it ended', async () => {
    const plan = await planPostgresqlRestore(options({ target: { backup: '20261129-010002F' } }));
    expect(plan.pgbackrestArguments).toEqual(['--stanza=allixios', '--set=20261129-010002F', '--type=immediate', '--target-action=promote', '--archive-mode=off', 'restore']);
  });

  it('only reads: nothing is created, the pgbackrest info it runs reads its repository from arguments and its passphrase from the environment', async () => {
    const opts = options();
    await planPostgresqlRestore(opts);
    expect(existsSync(opts.dataDirectory)).toBe(false);
    const argv = readFileSync(argvFile, 'utf8');
    expect(argv).toContain('--repo1-path=/srv/repository');
    expect(argv).toContain('--repo1-cipher-type=aes-256-cbc');
    expect(argv.split('\n').at(-2)).toBe('info');
    expect(argv).not.toContain(PASSPHRASE);
    expect(readFileSync(envFile, 'utf8')).toContain(`PGBACKREST_REPO1_CIPHER_PASS=${PASSPHRASE}`);
    // Nor is it in what the plan says.
    const plan = await restorePostgresql(opts);
    expect(plan.result).toBeUndefined();
    expect(JSON.stringify(plan)).not.toContain(PASSPHRASE);
  });
});

describe('refusals, each naming what was expected and what was found', () => {
  it('refuses a target time it cannot read, without an offset, or that does not exist', async () => {
    for (const time of ['yesterday', '2026-12-01 10:15', '2026-12-01T10:15:00', '2026-02-30T10:00:00Z', '2026-12-01T25:00:00Z', '2026-12-01T10:15:00+15:00', '']) {
      const message = await refusal(planPostgresqlRestore(options({ target: { time } })));
      expect(message, time).toMatch(/^PostgreSQL restore: target time: expected a time with its offset, such as 2026-12-02T10:15:00Z .*got "/);
      expect(message).toContain(JSON.stringify(time));
    }
  });

  it('refuses a moment before the end of the first backup kept: the repository cannot recover it', async () => {
    const message = await refusal(planPostgresqlRestore(options({ target: { time: '2026-11-29T01:10:00Z' } })));
    expect(message).toMatch(/target time: expected a moment after the end of the oldest backup kept \(20261129-010002F, ended 2026-11-29T01:20:00Z\).*got "2026-11-29T01:10:00Z"/);
  });

  it('refuses a moment in the future', async () => {
    expect(await refusal(planPostgresqlRestore(options({ target: { time: '2026-12-09T00:00:00Z' } })))).toMatch(
      /target time: expected a moment in the past \(now is 2026-12-08T12:00:00.000Z\), got "2026-12-09T00:00:00Z"/,
    );
  });

  it('refuses a backup label the repository does not hold, listing those it does', async () => {
    expect(await refusal(planPostgresqlRestore(options({ target: { backup: '20261201-010002F' } })))).toMatch(
      /backup: expected one of the repository's backups \(20261129-010002F, 20261129-010002F_20261130-010003D, 20261206-010002F\), got "20261201-010002F"/,
    );
    expect(await refusal(planPostgresqlRestore(options({ target: { backup: 'last-sunday' } })))).toMatch(/backup: expected a pgBackRest backup label/);
  });

  it('refuses a data directory that is not new and empty, naming it', async () => {
    const used = join(directory, 'used');
    mkdirSync(used);
    writeFileSync(join(used, 'PG_VERSION'), '15\n');
    expect(await refusal(planPostgresqlRestore(options({ dataDirectory: used })))).toBe(
      `PostgreSQL restore: data directory ${used}: expected a new, empty directory (a restore never writes over data), got one holding 1 entry (PG_VERSION)`,
    );
    expect(await refusal(planPostgresqlRestore(options({ dataDirectory: join(used, 'PG_VERSION') })))).toMatch(/expected a new, empty directory, got a file/);
    expect(await refusal(planPostgresqlRestore(options({ dataDirectory: join(directory, 'missing', 'data') })))).toMatch(/whose parent .* does not exist/);
  });

  it('refuses binaries of another major version than the backup', async () => {
    repositoryInfo(BACKUPS, [{ id: 1, version: '18' }]);
    expect(await refusal(planPostgresqlRestore(options()))).toMatch(/binaries\.postgresql: expected PostgreSQL 18, the version of backup 20261206-010002F, got 15/);
  });

  it('refuses an empty repository, a missing stanza, and a passphrase that reads garbage', async () => {
    repositoryInfo([]);
    expect(await refusal(planPostgresqlRestore(options()))).toMatch(/holds no backup of stanza allixios yet/);
    repositoryInfo([], [], { code: 1, message: 'missing stanza path' });
    expect(await refusal(planPostgresqlRestore(options()))).toMatch(/has no stanza allixios .*missing stanza path/);
    writeFileSync(infoFile, '[{"name":"allixios","repo":[{"status":{"code":99,"message":"[FormatError] unable to load info file \\u0001\\u0002"}}]');
    expect(await refusal(planPostgresqlRestore(options()))).toMatch(/decrypts to garbage: expected the stack's backup-cipher-pass as the passphrase/);
    expect(await refusal(planPostgresqlRestore(options({ credentials: { cipherPass: '' } })))).toMatch(/credentials\.cipherPass: expected the stack's backup-cipher-pass/);
  });
});

describe('target times', () => {
  it('reads ISO 8601 with its offset to the microsecond, as PostgreSQL will', () => {
    expect(parseTargetTime('2026-12-02T10:15:00Z').text).toBe('2026-12-02 10:15:00.000000+00:00');
    expect(parseTargetTime('2026-12-02 10:15:00.123456+00').text).toBe('2026-12-02 10:15:00.123456+00:00');
    expect(parseTargetTime('2026-12-02 10:15-0530').text).toBe('2026-12-02 10:15:00.000000-05:30');
    expect(parseTargetTime('2026-12-02T10:15:00.5+01:00').epochMicros).toBe(BigInt(Date.parse('2026-12-02T09:15:00.500Z')) * 1000n);
  });
});
