/**
 * MongoDB's restore (databases/mongodb/restore.ts): its plan, mongorestore's arguments and the
 * verification of what it restored. No MongoDB runs here: the target is a stand-in of what the
 * driver reads, and mongorestore a stand-in script that records its arguments and the password
 * file it was given, then prints what mongo-tools prints. The restore against a real server needs
 * MONGODB_URL and a mongorestore binary (MONGORESTORE, default on the PATH), and is skipped without.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupSettings } from '../../databases/backup.ts';
import { mongodb } from '../../databases/mongodb/index.ts';
import {
  checkDatabaseName,
  defaultDatabaseName,
  mongodbEngineRestore,
  parseRestoreOutput,
  restoreMongodb,
  splitTargetUrl,
  type RestoreTarget,
} from '../../databases/mongodb/restore.ts';

const PASSWORD = 'root-Pw_7x"q';
const TARGET_URL = `mongodb://root:${encodeURIComponent(PASSWORD)}@restore-host:27017,restore-host-2:27017/allixios?authSource=admin&tls=true`;

/** A target server as the driver would read it: collections per database, their counts and TTL indexes. */
function fakeTarget(databases: Record<string, Record<string, { count: number; ttl?: boolean }>> = {}): RestoreTarget & { closed: boolean } {
  const target = {
    closed: false,
    collections: async (database: string) => Object.keys(databases[database] ?? {}),
    countDocuments: async (database: string, collection: string) => databases[database]?.[collection]?.count ?? 0,
    hasTtlIndex: async (database: string, collection: string) => databases[database]?.[collection]?.ttl === true,
    close: async () => {
      target.closed = true;
    },
  };
  return target;
}

/** An archive file of some bytes, and a directory for the stand-in's records. */
function workspace(): { archive: string; directory: string } {
  const directory = mkdtempSync(join(tmpdir(), 'mongodb-restore-test-'));
  const archive = join(directory, 'mongodb.archive');
  writeFileSync(archive, Buffer.alloc(1024));
  return { archive, directory };
}

/**
 * A stand-in mongorestore: records its arguments and the content of the --config file it was
 * given (and whether it was private), prints `output`, exits with `status`.
 */
function fakeMongorestore(directory: string, output: string, status = 0): string {
  const script = join(directory, 'mongorestore');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      `for word in "$@"; do printf '%s\\n' "$word"; done > ${directory}/argv`,
      'for word in "$@"; do case "$word" in --config=*) file="${word#--config=}"; cat "$file" > ' +
        `${directory}/config; stat -c %a "$file" > ${directory}/mode; printf '%s' "$file" > ${directory}/config-path;; esac; done`,
      `cat <<'EOF' >&2\n${output}\nEOF`,
      `exit ${status}`,
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  return script;
}

const NOW = new Date('2026-01-02T01:30:00Z');

describe('planning a restore', () => {
  it('restores the platform’s database renamed into a new one, with no password among mongorestore’s arguments', async () => {
    // Given an empty target and an archive
    const { archive } = workspace();
    const target = fakeTarget({ allixios: { content_drafts: { count: 5 } } });
    // When planned
    const { plan, executed } = await restoreMongodb({ archive, targetUrl: TARGET_URL, now: NOW, target });
    // Then it writes nothing, names the new database, and mongorestore would get the rename and no password
    expect(executed).toBe(false);
    expect(plan.database).toBe('allixios_restore_20260102_013000');
    expect(plan.server).toBe('restore-host:27017,restore-host-2:27017');
    expect(plan.arguments).toEqual([
      '--uri=mongodb://root@restore-host:27017,restore-host-2:27017/?authSource=admin&tls=true',
      '--config=<private temporary directory>/mongorestore.yaml',
      `--archive=${archive}`,
      '--gzip',
      '--nsInclude=allixios.*',
      '--nsFrom=allixios.*',
      '--nsTo=allixios_restore_20260102_013000.*',
      '--stopOnError',
    ]);
    expect(JSON.stringify(plan)).not.toContain('root-Pw');
    expect(plan.arguments).not.toContain('--oplogReplay');
    expect(plan.arguments.filter((word) => word.startsWith('--drop'))).toEqual([]);
    expect(plan.steps[0]).toBe('check that allixios_restore_20260102_013000 on restore-host:27017,restore-host-2:27017 holds no collection: it holds none');
    expect(target.closed).toBe(true);
  });

  it('refuses a database that holds a collection, naming it and what it holds, before writing anything', async () => {
    const { archive, directory } = workspace();
    const target = fakeTarget({ drill: { users: { count: 1 }, audit_logs: { count: 2 } } });
    const script = fakeMongorestore(directory, '');
    await expect(restoreMongodb({ archive, targetUrl: TARGET_URL, database: 'drill', execute: true, mongorestore: script, target })).rejects.toThrow(
      'mongodb restore: the database drill on restore-host:27017,restore-host-2:27017 is not empty (audit_logs, users): a restore goes into a new, empty database; name another one',
    );
    expect(existsSync(join(directory, 'argv'))).toBe(false);
    expect(target.closed).toBe(true);
  });

  it('refuses a system database, a name MongoDB forbids, the dumped database’s own name and a missing archive', async () => {
    const { archive } = workspace();
    const target = fakeTarget();
    await expect(restoreMongodb({ archive, targetUrl: TARGET_URL, database: 'admin', target })).rejects.toThrow(
      'mongodb restore: database: admin is a system database; restore into a database of its own',
    );
    await expect(restoreMongodb({ archive, targetUrl: TARGET_URL, database: 'a.b', target })).rejects.toThrow(/^mongodb restore: database: expected 1 to 63 letters.*got "a\.b"$/);
    await expect(restoreMongodb({ archive, targetUrl: TARGET_URL, database: 'allixios', target })).rejects.toThrow(/database: allixios is the dumped database's own name/);
    await expect(restoreMongodb({ archive: join(archive, 'missing'), targetUrl: TARGET_URL, target })).rejects.toThrow(/^mongodb restore: archive: no file at .*missing/);
  });

  it('names a new database after the time, and checks names as MongoDB does', () => {
    expect(defaultDatabaseName(NOW)).toBe('allixios_restore_20260102_013000');
    expect(() => checkDatabaseName('x'.repeat(64))).toThrow(/expected 1 to 63/);
    expect(() => checkDatabaseName('ok_name-1')).not.toThrow();
  });
});

describe("mongorestore's URL", () => {
  it('keeps the user and the options, drops the password and the database, and keeps authenticating where the path said', () => {
    expect(splitTargetUrl('mongodb://root:p%40ss@h:27017/allixios?authSource=admin')).toEqual({
      url: 'mongodb://root@h:27017/?authSource=admin',
      password: 'p@ss',
      hosts: 'h:27017',
    });
    // A URL that authenticated against its path's database keeps doing so
    expect(splitTargetUrl('mongodb://u:p@h/appdb').url).toBe('mongodb://u@h/?authSource=appdb');
    expect(splitTargetUrl('mongodb://h:27017').url).toBe('mongodb://h:27017/');
    expect(() => splitTargetUrl('postgres://h')).toThrow(/the target URL: expected mongodb:\/\//);
  });
});

describe('taking the steps', () => {
  const OUTPUT = [
    '2026-01-02T01:31:00.000+0000\tpreparing collections to restore from',
    '2026-01-02T01:31:01.000+0000\tfinished restoring allixios_restore_20260102_013000.content_drafts (5 documents, 0 failures)',
    '2026-01-02T01:31:01.000+0000\tfinished restoring allixios_restore_20260102_013000.application_logs (10 documents, 0 failures)',
    '2026-01-02T01:31:02.000+0000\t15 document(s) restored successfully. 0 document(s) failed to restore.',
  ].join('\n');

  it('runs mongorestore with the password in a private file it removes afterwards, then counts every collection', async () => {
    // Given an empty target that, once restored, holds what mongorestore says (and 2 expired application logs, which have a TTL index)
    const { archive, directory } = workspace();
    const database = 'allixios_restore_20260102_013000';
    const restored = { [database]: { content_drafts: { count: 5 }, application_logs: { count: 8, ttl: true } } };
    let calls = 0;
    const target = fakeTarget(restored);
    const collections = target.collections;
    target.collections = async (name) => (calls++ === 0 ? [] : collections(name));
    const script = fakeMongorestore(directory, OUTPUT);
    // When executed
    const result = await restoreMongodb({ archive, targetUrl: TARGET_URL, now: NOW, execute: true, mongorestore: script, target });
    // Then mongorestore got the password in its --config file only, mode 0600, and the file is gone
    const argv = readFileSync(join(directory, 'argv'), 'utf8');
    expect(argv).not.toContain('root-Pw');
    expect(readFileSync(join(directory, 'config'), 'utf8')).toBe(`password: ${JSON.stringify(PASSWORD)}\n`);
    expect(readFileSync(join(directory, 'mode'), 'utf8').trim()).toBe('600');
    expect(existsSync(readFileSync(join(directory, 'config-path'), 'utf8'))).toBe(false);
    // And the figures are mongorestore's and the driver's
    expect(result.executed).toBe(true);
    expect(result.figures).toMatchObject({
      restored: 15,
      failed: 0,
      counted: 13,
      collections: {
        application_logs: { restored: 10, failed: 0, counted: 8, expired: 2 },
        content_drafts: { restored: 5, failed: 0, counted: 5, expired: 0 },
      },
    });
  });

  it('fails when a collection without a TTL index holds fewer documents than mongorestore restored', async () => {
    const { archive, directory } = workspace();
    const database = 'allixios_restore_20260102_013000';
    const target = fakeTarget({ [database]: { content_drafts: { count: 4 }, application_logs: { count: 10 } } });
    let calls = 0;
    const collections = target.collections;
    target.collections = async (name) => (calls++ === 0 ? [] : collections(name));
    await expect(restoreMongodb({ archive, targetUrl: TARGET_URL, now: NOW, execute: true, mongorestore: fakeMongorestore(directory, OUTPUT), target })).rejects.toThrow(
      `mongodb restore: the restored database ${database} does not match what mongorestore reported: content_drafts: 5 documents restored, 4 counted, and it has no TTL index to explain the gap`,
    );
  });

  it('fails with mongorestore’s last words when it fails, and removes the password file all the same', async () => {
    const { archive, directory } = workspace();
    const script = fakeMongorestore(directory, 'Failed: error connecting to db server: server returned error on SASL authentication step: Authentication failed.', 1);
    await expect(restoreMongodb({ archive, targetUrl: TARGET_URL, now: NOW, execute: true, mongorestore: script, target: fakeTarget() })).rejects.toThrow(
      /^mongodb restore: .*mongorestore exited with 1: Failed: error connecting to db server: .*Authentication failed\.$/,
    );
    expect(existsSync(readFileSync(join(directory, 'config-path'), 'utf8'))).toBe(false);
  });

  it('reads mongo-tools’ figures, and refuses output without the summary', () => {
    expect(parseRestoreOutput(OUTPUT).collections['allixios_restore_20260102_013000.application_logs']).toEqual({ restored: 10, failed: 0 });
    expect(parseRestoreOutput('finished restoring a.b (1 document, 1 failure)\n1 document(s) restored successfully. 1 document(s) failed to restore.')).toEqual({
      restored: 1,
      failed: 1,
      collections: { 'a.b': { restored: 1, failed: 1 } },
    });
    expect(() => parseRestoreOutput('nothing')).toThrow(/exited without its summary/);
  });
});

describe('as npm run restore calls it', () => {
  const SETTINGS: BackupSettings = {
    objectStore: {
      endpoint: 'https://minio.example:9000',
      bucket: 'allixios-backups',
      prefix: 'prod',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { kind: 'secret', secretName: 's', accessKeyIdKey: 'a', secretAccessKeyKey: 'b' },
    },
    path: 'prod/mongodb',
    schedules: { dump: '30 1 * * *' },
    retention: { count: 7, days: 30 },
  };

  /** A stand-in rclone: lists two dumps, copies a file of 2048 bytes, records its arguments and its S3 settings. */
  function fakeRclone(directory: string): string {
    const script = join(directory, 'rclone');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        `printf '%s|%s|%s|%s\\n' "$*" "$RCLONE_S3_ENDPOINT" "$RCLONE_S3_FORCE_PATH_STYLE" "$RCLONE_S3_ENV_AUTH" >> ${directory}/rclone-calls`,
        'case "$1" in',
        "  lsf) printf '20260101T013000Z/\\n20260102T013000Z/\\n' ;;",
        '  copyto) head -c 2048 /dev/zero > "$3" ;;',
        'esac',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    return script;
  }

  const OUTPUT = ['finished restoring drill.content_drafts (2 documents, 0 failures)', '2 document(s) restored successfully. 0 document(s) failed to restore.'].join('\n');

  it('is the engine module’s restore', async () => {
    expect(typeof (await mongodb.restore!()).plan).toBe('function');
  });

  it('fetches the latest dump of the stack with rclone when executing, restores it into the target and returns the figures', async () => {
    // Given the stack's settings, a target server empty until the restore, rclone and mongorestore stand-ins
    const { directory } = workspace();
    // (empty until the stand-in mongorestore has run: it records its arguments)
    const base = fakeTarget({ drill: { content_drafts: { count: 2 } } });
    const target = { ...base, collections: async (name: string) => (existsSync(join(directory, 'argv')) ? base.collections(name) : []) };
    const restore = mongodbEngineRestore({ rclone: fakeRclone(directory), mongorestore: fakeMongorestore(directory, OUTPUT), target });
    // When planned
    const plan = await restore.plan({ settings: SETTINGS, target: 'drill', replaceExisting: false, url: TARGET_URL });
    // Then it names the latest dump, and has not fetched it yet
    expect(plan.steps[1]).toBe('fetch s3://allixios-backups/prod/mongodb/dump/20260102T013000Z/mongodb.archive into a private temporary directory');
    expect(readFileSync(join(directory, 'rclone-calls'), 'utf8').trim().split('\n')).toEqual([
      'lsf --dirs-only :s3:allixios-backups/prod/mongodb/dump/|https://minio.example:9000|true|true',
    ]);
    // When executed: fetched, restored from the fetched file, counted
    const figures = await plan.execute(() => undefined);
    expect(figures).toMatchObject({ database: 'drill', restored: 2, counted: 2, failed: 0, 'content_drafts.counted': 2 });
    const copy = readFileSync(join(directory, 'rclone-calls'), 'utf8').trim().split('\n')[1]!;
    expect(copy).toMatch(/^copyto :s3:allixios-backups\/prod\/mongodb\/dump\/20260102T013000Z\/mongodb\.archive \/.*\/mongodb\.archive\|/);
    expect(readFileSync(join(directory, 'argv'), 'utf8')).toMatch(/--archive=\/.*allixios-mongorestore-.*\/mongodb\.archive/);
  });

  it('takes a named dump (--backup) or a local copy (--from), and refuses a point in time and a missing URL', async () => {
    const { archive, directory } = workspace();
    const restore = mongodbEngineRestore({ rclone: fakeRclone(directory), target: fakeTarget() });
    expect((await restore.plan({ settings: SETTINGS, backup: '20260101T013000Z', target: 'drill', replaceExisting: false, url: TARGET_URL })).steps[1]).toContain(
      '/dump/20260101T013000Z/',
    );
    expect((await restore.plan({ source: directory, target: 'drill', replaceExisting: false, url: TARGET_URL })).steps[2]).toContain(`in ${archive} (1024 bytes)`);
    await expect(restore.plan({ source: archive, target: 'drill', replaceExisting: false, url: TARGET_URL, to: new Date() })).rejects.toThrow(
      /--to: a MongoDB backup is a nightly dump/,
    );
    await expect(restore.plan({ source: archive, target: 'drill', replaceExisting: false })).rejects.toThrow(/MONGODB_URL: expected the admin URL/);
  });

  it('drops the collections it restores into a database that holds data only when the target was named twice', async () => {
    const { archive } = workspace();
    const target = fakeTarget({ drill: { content_drafts: { count: 9 }, other: { count: 1 } } });
    await expect(mongodbEngineRestore({ target }).plan({ source: archive, target: 'drill', replaceExisting: false, url: TARGET_URL })).rejects.toThrow(
      /the database drill .* is not empty \(content_drafts, other\)/,
    );
    const plan = await mongodbEngineRestore({ target }).plan({ source: archive, target: 'drill', replaceExisting: true, url: TARGET_URL });
    expect(plan.steps[0]).toMatch(/^drill on .* holds content_drafts, other, and the operator named it twice: mongorestore drops each collection it restores first \(--drop\)/);
    expect(plan.steps.find((step) => step.startsWith('mongorestore '))).toContain(' --drop');
  });
});

const MONGODB_URL = process.env.MONGODB_URL;

describe('a restore against a real server', () => {
  it.skipIf(!MONGODB_URL)(
    'dumps a throwaway database, restores it renamed into a new one and counts it (needs MONGODB_URL, an admin URL, and mongodump/mongorestore on the PATH)',
    async () => {
      const { MongoClient } = await import('mongodb');
      const { spawnSync } = await import('node:child_process');
      const suffix = Math.random().toString(36).slice(2, 8);
      const source = `restore_src_${suffix}`;
      const database = `restore_dst_${suffix}`;
      const client = new MongoClient(MONGODB_URL!, { serverSelectionTimeoutMS: 10_000 });
      const { directory } = workspace();
      const archive = join(directory, 'dump.archive');
      try {
        // Given a database of 3 + 2 documents, dumped to an archive
        await client
          .db(source)
          .collection('drafts')
          .insertMany([{ n: 1 }, { n: 2 }, { n: 3 }]);
        await client
          .db(source)
          .collection('logs')
          .insertMany([{ n: 1 }, { n: 2 }]);
        const dump = spawnSync('mongodump', [`--uri=${MONGODB_URL}`, `--db=${source}`, `--archive=${archive}`, '--gzip'], { encoding: 'utf8' });
        expect(dump.status, dump.stderr).toBe(0);
        // When restored into a new database
        const result = await restoreMongodb({ archive, targetUrl: MONGODB_URL!, sourceDatabase: source, database, execute: true });
        // Then every document is there, counted
        expect(result.figures).toMatchObject({ restored: 5, failed: 0, counted: 5 });
      } finally {
        await client
          .db(source)
          .dropDatabase()
          .catch(() => undefined);
        await client
          .db(database)
          .dropDatabase()
          .catch(() => undefined);
        await client.close();
      }
    },
  );
});
