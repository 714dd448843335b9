/**
 * pgBackRest with the configurations databases/postgresql/backup.ts renders, on real processes:
 * Debian's PostgreSQL 15 archiving with the rendered settings, pgBackRest's TLS server beside it
 * as the agent, and a backup job's configuration reaching it over mutual TLS (the posix variant of
 * the repository standing in for the object store; bench/drills/pgbackrest-lab.ts). Then a restore
 * with restorePostgresql, and the attacks: a client the agent must refuse, and the passphrase
 * looked for where it must not be. `npm run drill:pgbackrest` measures the same on a longer run.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPgbackrest, findPostgres, PgbackrestLab } from '../../bench/drills/pgbackrest-lab.ts';
import type { BackupSettings } from '../../databases/backup.ts';
import { AGENT_PORT, pgbackrestConfig, type PgbackrestHost, type PgbackrestRepository } from '../../databases/postgresql/backup.ts';
import { restorePostgresql, RestoreError } from '../../databases/postgresql/restore.ts';
import { hasOpenssl, issueServerCertificate } from '../support/certificates.ts';

const pgbackrest = findPgbackrest();
const postgres15 = findPostgres(15);
const skip = !pgbackrest
  ? 'pgbackrest is not installed (apt-get install -y pgbackrest)'
  : !postgres15
    ? 'PostgreSQL 15 is not installed under /usr/lib/postgresql/15 (apt-get install -y postgresql-15)'
    : !hasOpenssl
      ? 'openssl is not installed (it issues the TLS certificates)'
      : undefined;

/** Every file under a directory, as text (binary files included as latin1: a passphrase would show). */
function filesUnder(directory: string): Array<{ path: string; text: string }> {
  return readdirSync(directory).flatMap((entry) => {
    const path = join(directory, entry);
    const stat = statSync(path);
    if (stat.isDirectory()) return filesUnder(path);
    return stat.isFile() ? [{ path, text: readFileSync(path, 'latin1') }] : [];
  });
}

describe.skipIf(!pgbackrest)(`the rendered options, as pgBackRest knows them${pgbackrest ? '' : ' (skipped: pgbackrest is not installed, apt-get install -y pgbackrest)'}`, () => {
  it('are all options pgBackRest documents for the commands that read them', () => {
    const settings = (endpoint: string, identity: boolean): BackupSettings => ({
      objectStore: {
        endpoint,
        bucket: 'backups',
        prefix: 'prod',
        region: 'eu-west-1',
        forcePathStyle: true,
        credentials: identity ? { kind: 'workloadIdentity', serviceAccountAnnotations: {} } : { kind: 'secret', secretName: 's', accessKeyIdKey: 'a', secretAccessKeyKey: 'b' },
      },
      path: 'prod/postgresql',
      schedules: {},
      retention: { count: 4, days: 30 },
    });
    const repositories: PgbackrestRepository[] = [
      { kind: 'objectStore', backup: settings('https://minio.example:9000', false) },
      { kind: 'objectStore', backup: settings('https://s3.eu-west-1.amazonaws.com', true) },
      { kind: 'objectStore', backup: settings('https://storage.googleapis.com', true) },
      { kind: 'posix', path: '/srv/repository', retention: { count: 4, days: 30 } },
    ];
    const server = { data: '/data', socket: '/run', port: 5432 };
    // Each host's file is read by the commands it runs: an option counts when one of them knows it
    // (pgBackRest ignores, in a file, an option of another command).
    const hosts: Array<[PgbackrestHost, string[]]> = [
      [{ role: 'member', server, paths: { lock: '/tmp', spool: '/spool' }, archiveQueueMax: '25GB' }, ['archive-push', 'archive-get', 'restore', 'stanza-create']],
      [{ role: 'agent', server, paths: { lock: '/tmp' }, address: '*', port: AGENT_PORT, tlsDirectory: '/tls', clientCommonName: 'postgresql' }, ['server', 'backup']],
      [{ role: 'repository', members: 2, server, agent: { port: AGENT_PORT, tlsDirectory: '/tls' }, paths: { lock: '/tmp' } }, ['backup', 'expire', 'stanza-create', 'check']],
      [{ role: 'restore', data: '/data', paths: { lock: '/tmp', spool: '/spool' } }, ['restore', 'archive-get', 'info']],
    ];
    const checked = new Set<string>();
    for (const repository of repositories) {
      for (const [host, commands] of hosts) {
        const config = pgbackrestConfig(repository, host);
        for (const option of Object.keys({ ...config.global, ...config.stanza })) {
          const key = `${host.role} ${option}`;
          if (checked.has(key)) continue;
          checked.add(key);
          const known = commands.some((command) => spawnSync(pgbackrest!, ['help', command, option], { encoding: 'utf8' }).status === 0);
          expect(known, `${option}: known to none of ${commands.join(', ')} (pgbackrest help <command> ${option})`).toBe(true);
        }
      }
    }
    expect(checked.size).toBeGreaterThan(35);
  });
});

describe.skipIf(skip !== undefined)(`pgBackRest with the rendered configuration, through the TLS agent${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: PgbackrestLab;

  beforeAll(async () => {
    lab = await PgbackrestLab.create({ major: 15 });
    await lab.initdb();
    await lab.startServer();
    await lab.startAgent();
    await lab.query('CREATE TABLE backed_up (id integer PRIMARY KEY); INSERT INTO backed_up SELECT generate_series(1, 1000)');
  }, 60_000);

  afterAll(async () => {
    await lab?.stop();
  }, 30_000);

  it('creates the stanza through the agent, again without complaint, and checks that the primary archives into the repository', async () => {
    expect(await lab.backupJob(['stanza-create'])).toMatch(/stanza-create command end: completed successfully/);
    expect(await lab.backupJob(['stanza-create'])).toMatch(/already exists and is valid|completed successfully/);
    const check = await lab.backupJob(['check']);
    expect(check).toMatch(/WAL segment \w+ successfully archived to '.*\.zst' on repo1/);
    // PostgreSQL counts a segment archived once its archive command returns (the segment is in the repository by then).
    let archived = 0;
    for (let attempt = 0; attempt < 50 && archived === 0; attempt++) {
      const [archiver] = await lab.query<{ archived: string }>('SELECT archived_count::text AS archived FROM pg_stat_archiver');
      archived = Number(archiver!.archived);
      if (archived === 0) await new Promise((done) => setTimeout(done, 200));
    }
    expect(archived).toBeGreaterThan(0);
  }, 60_000);

  it('refuses a client whose certificate, though signed by the same CA, has another CN', async () => {
    const intruder = join(lab.directory, 'intruder');
    spawnSync('mkdir', ['-p', intruder]);
    spawnSync('cp', [lab.tlsFile('ca'), `${lab.tlsFile('ca')}.key`, intruder]);
    issueServerCertificate(intruder, ['localhost'], { commonName: 'intruder', clientAuth: true });
    lab.chownAll();
    await expect(lab.backupJob([`--pg1-host-cert-file=${join(intruder, 'tls.crt')}`, `--pg1-host-key-file=${join(intruder, 'tls.key')}`, 'check'])).rejects.toThrow(
      /aborted with exception|unable to find primary/,
    );
  }, 60_000);

  it('backs up through the agent and restores the latest into a new directory with restorePostgresql', async () => {
    await lab.backupJob(['--type=full', 'backup']);
    await lab.query('INSERT INTO backed_up SELECT generate_series(1001, 1500)');
    await lab.backupJob(['check']);
    const target = lab.restoreTarget('latest');
    const { plan, result } = await restorePostgresql({
      repository: lab.repository,
      credentials: { cipherPass: lab.cipherPass },
      target: { latest: true },
      dataDirectory: target.data,
      workDirectory: target.work,
      binaries: { postgresql: lab.postgres.bin, pgbackrest: lab.pgbackrest },
      ...(lab.owner ? { runAs: lab.owner } : {}),
      tables: ['backed_up', 'articles'],
      recoveryTimeoutSeconds: 60,
      execute: true,
    });
    expect(plan.backup.type).toBe('full');
    // After the backup too: the archived WAL replayed; an absent table is left out.
    expect(result!.tables).toEqual({ backed_up: 1500 });
    expect(result!.database).toBe('postgres');
    expect(result!.recoveryEndTime).toMatch(/^\d{4}-\d{2}-\d{2} /);
    // The restored copy does not archive into the live repository.
    expect(readFileSync(join(target.data, 'postgresql.auto.conf'), 'utf8')).toMatch(/archive_mode = 'off'/);

    // And a second restore into the same directory is refused, naming it.
    await expect(
      restorePostgresql({
        repository: lab.repository,
        credentials: { cipherPass: lab.cipherPass },
        target: { latest: true },
        dataDirectory: target.data,
        binaries: { postgresql: lab.postgres.bin, pgbackrest: lab.pgbackrest },
      }),
    ).rejects.toThrow(`data directory ${target.data}: expected a new, empty directory`);

    // Attack: the passphrase is in no file the restore wrote (configuration, logs, the restored
    // cluster's restore_command), and in no file of the repository either (it is encrypted with it).
    for (const file of [
      ...filesUnder(target.work),
      { path: 'postgresql.auto.conf', text: readFileSync(join(target.data, 'postgresql.auto.conf'), 'latin1') },
      ...filesUnder(lab.paths.repo),
    ]) {
      expect(file.text.includes(lab.cipherPass), file.path).toBe(false);
    }
  }, 120_000);

  it('refuses a target before the first backup, from what the repository holds', async () => {
    const error = await restorePostgresql({
      repository: lab.repository,
      credentials: { cipherPass: lab.cipherPass },
      target: { time: '2020-01-01T00:00:00Z' },
      dataDirectory: lab.restoreTarget('too-early').data,
      binaries: { postgresql: lab.postgres.bin, pgbackrest: lab.pgbackrest },
      ...(lab.owner ? { runAs: lab.owner } : {}),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RestoreError);
    expect((error as Error).message).toMatch(/target time: expected a moment after the end of the oldest backup kept \(\d{8}-\d{6}F, ended .*\).*got "2020-01-01T00:00:00Z"/);
    const wrong = await restorePostgresql({
      repository: lab.repository,
      credentials: { cipherPass: 'not-the-passphrase' },
      target: { latest: true },
      dataDirectory: lab.restoreTarget('wrong-passphrase').data,
      binaries: { postgresql: lab.postgres.bin, pgbackrest: lab.pgbackrest },
      ...(lab.owner ? { runAs: lab.owner } : {}),
    }).catch((caught: unknown) => caught);
    expect((wrong as Error).message).toMatch(/decrypts to garbage: expected the stack's backup-cipher-pass/);
  }, 60_000);

  it("serves a renewed certificate after SIGHUP, which the agent's health check sends when the mounted files change", async () => {
    const served = () =>
      spawnSync('sh', ['-c', `openssl s_client -connect 127.0.0.1:${lab.agentPort} -CAfile ${lab.tlsFile('ca')} </dev/null 2>/dev/null | openssl x509 -noout -serial`], {
        encoding: 'utf8',
      }).stdout.trim();
    const before = served();
    expect(before).toMatch(/^serial=/);
    issueServerCertificate(lab.paths.tls, ['localhost'], { commonName: 'postgresql', clientAuth: true });
    lab.chownAll();
    const renewed = spawnSync('openssl', ['x509', '-in', lab.tlsFile('certificate'), '-noout', '-serial'], { encoding: 'utf8' }).stdout.trim();
    expect(renewed).not.toBe(before);
    process.kill(lab.agent!.pid!, 'SIGHUP');
    let after = before;
    for (let attempt = 0; attempt < 20 && after !== renewed; attempt++) {
      await new Promise((done) => setTimeout(done, 100));
      after = served();
    }
    expect(after).toBe(renewed);
    // And the backup job still gets through with the renewed pair.
    expect(await lab.backupJob(['check'])).toMatch(/check command end: completed successfully/);
  }, 60_000);

  it('keeps the passphrase off every command line, and out of the agent entirely', () => {
    const environOf = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'latin1');
    const commandLineOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    expect(commandLineOf(lab.server!.pid!)).toContain('archive_command=pgbackrest --stanza=allixios archive-push "%p"');
    expect(commandLineOf(lab.server!.pid!).includes(lab.cipherPass)).toBe(false);
    // The server needs it (its archiver runs archive-push); the agent never touches the repository.
    expect(environOf(lab.server!.pid!).includes(lab.cipherPass)).toBe(true);
    expect(environOf(lab.agent!.pid!).includes(lab.cipherPass)).toBe(false);
    expect(commandLineOf(lab.agent!.pid!).split('\0').filter(Boolean)).toEqual([lab.pgbackrest, 'server']);
  });
});
