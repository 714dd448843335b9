/**
 * Elasticsearch's backups (databases/elasticsearch/backup.ts and slm-schedule.ts): the conversion
 * of the stack's 5-field cron expressions into SLM's schedule, the repository and the policy, the
 * settings the stack hands the bootstrap, and what the members get (the S3 client's node settings,
 * the keystore's init container, the links of the engine's start). No Elasticsearch runs here: the
 * init container's script is run by a real `bash` with a stand-in `elasticsearch-keystore` that
 * records its arguments and what it reads on standard input.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupSettings } from '../../databases/backup.ts';
import {
  ACCESS_KEY_VARIABLE,
  backupSettingsValue,
  elasticsearchBackup,
  KEYSTORE_DIRECTORY,
  KEYSTORE_FILE,
  keystoreInit,
  parseBackupSettings,
  SECRET_KEY_VARIABLE,
  slmPolicy,
  snapshotRepository,
  WEB_IDENTITY_TOKEN_LINK,
} from '../../databases/elasticsearch/backup.ts';
import { elasticsearch } from '../../databases/elasticsearch/index.ts';
import { convertCron, slmSchedule } from '../../databases/elasticsearch/slm-schedule.ts';
import { engineSpec, type Environment } from '../../databases/engine.ts';

const SECRET_STORE: BackupSettings = {
  objectStore: {
    endpoint: 'https://minio.backup.svc:9000',
    bucket: 'allixios-backups',
    prefix: 'prod',
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { kind: 'secret', secretName: 'backup-store', accessKeyIdKey: 'access-key-id', secretAccessKeyKey: 'secret-access-key' },
  },
  path: 'prod/elasticsearch',
  schedules: { snapshot: '0 2 * * *' },
  retention: { count: 7, days: 30 },
};
const WORKLOAD_IDENTITY: BackupSettings = {
  ...SECRET_STORE,
  objectStore: { ...SECRET_STORE.objectStore, credentials: { kind: 'workloadIdentity', serviceAccountAnnotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/b' } } },
};

function describeWithBackup(environment: Environment, backup: BackupSettings | null, tls = true) {
  const sizing = elasticsearch.sizing[environment];
  return engineSpec(elasticsearch, {
    environment,
    version: elasticsearch.defaultVersion,
    replicas: sizing.replicas ?? 1,
    storage: sizing.storage,
    resources: sizing.resources,
    options: elasticsearch.optionsSchema.parse({}),
    tls,
    ...(backup ? { backup } : {}),
  });
}

describe("the stack's cron expressions in SLM's syntax", () => {
  it.each([
    ['0 2 * * *', '0 0 2 * * ?', 1],
    ['30 1 * * *', '0 30 1 * * ?', 1],
    ['*/15 * * * *', '0 0/15 * * * ?', 96],
    ['5 */6 * * *', '0 5 0/6 * * ?', 4],
    ['0 0,12 * * *', '0 0 0,12 * * ?', 2],
    ['0 8-18/2 * * *', '0 0 8-18/2 * * ?', 6],
    ['10/20 3 * * *', '0 10/20 3 * * ?', 3],
    ['0 3 1 * *', '0 0 3 1 * ?', 1],
    ['0 3 1,15 * *', '0 0 3 1,15 * ?', 1],
    ['0 2 */2 * *', '0 0 2 1/2 * ?', 1],
    ['0 4 * JAN-MAR *', '0 0 4 * JAN-MAR ?', 1],
    ['0 4 1 jan,jul *', '0 0 4 1 JAN,JUL ?', 1],
    ['0 0 * * 0', '0 0 0 ? * SUN', 1],
    ['0 0 * * 7', '0 0 0 ? * SUN', 1],
    ['30 1 * * 1-5', '0 30 1 ? * MON,TUE,WED,THU,FRI', 1],
    ['0 0 * * 5-7', '0 0 0 ? * SUN,FRI,SAT', 1],
    ['0 0 * * sat,sun', '0 0 0 ? * SUN,SAT', 1],
    ['0 1 * * */2', '0 0 1 ? * SUN,TUE,THU,SAT', 1],
    ['0 1 * * 0-7', '0 0 1 * * ?', 1],
    ['0 3 * 2 mon', '0 0 3 ? 2 MON', 1],
    ['@daily', '0 0 0 * * ?', 1],
    ['@midnight', '0 0 0 * * ?', 1],
    ['@hourly', '0 0 * * * ?', 24],
    ['@weekly', '0 0 0 ? * SUN', 1],
    ['@monthly', '0 0 0 1 * ?', 1],
    ['@yearly', '0 0 0 1 1 ?', 1],
    ['  0   2 *  * *  ', '0 0 2 * * ?', 1],
  ])('%s becomes %s (%i a day at most)', (cron, schedule, runsPerDay) => {
    expect(convertCron(cron)).toEqual({ schedule, runsPerDay });
  });

  it.each([
    ['0 2 1 * 1', 'both the day of month (1) and the day of week (1) are restricted; Elasticsearch\'s cron needs one of them to be "?" and cannot say "either", so choose one'],
    ['0 2 */2 * 1-5', 'both the day of month (*/2) and the day of week (1-5) are restricted'],
    ['@reboot', '@reboot is not a schedule Elasticsearch can run'],
    ['@every 1h', '@every 1h is not a schedule Elasticsearch can run'],
    ['0 2 * *', 'expected 5 fields (minute hour day-of-month month day-of-week), got 4'],
    ['0 0 2 * * ?', 'expected 5 fields (minute hour day-of-month month day-of-week), got 6'],
    ['', 'expected 5 fields'],
    ['60 2 * * *', 'the minute field has 60, outside 0-59'],
    ['0 24 * * *', 'the hour field has 24, outside 0-23'],
    ['0 2 0 * *', 'the day of month field has 0, outside 1-31'],
    ['0 2 * 13 *', 'the month field has 13, outside 1-12'],
    ['0 2 * * 8', 'the day of week field has 8, outside 0-7'],
    ['0 2 L * *', 'the day of month field has "L", expected a number from 1 to 31'],
    ['0 2 * * 1#2', 'the day of week field has "1#2", expected *, a value, a range a-b, a step'],
    ['0 2 ? * *', 'the day of month field has "?"'],
    ['0 5-3 * * *', 'the hour field has the range 5-3, which runs backwards'],
    ['*/0 * * * *', 'the minute field has the step /0, expected 1 or more'],
    ['0 2 * FOO *', 'the month field has "FOO", expected a number from 1 to 12 or one of JAN'],
  ])('refuses %j: %s', (cron, reason) => {
    expect(() => slmSchedule(cron)).toThrow(`cannot convert the cron expression ${JSON.stringify(cron)} to Elasticsearch's cron syntax: ${reason}`);
  });
});

describe('the repository and the policy', () => {
  const settings = parseBackupSettings(backupSettingsValue(SECRET_STORE))!;

  it('puts the repository in the bucket under the engine’s prefix, with the client whose keys the keystore holds', () => {
    expect(snapshotRepository(settings)).toEqual({ type: 's3', settings: { bucket: 'allixios-backups', base_path: 'prod/elasticsearch', client: 'allixios' } });
  });

  it('snapshots the platform’s indices and data streams only, without the global state, on the converted schedule, retention from the stack', () => {
    expect(slmPolicy(settings)).toEqual({
      name: '<allixios-{now/d}>',
      schedule: '0 0 2 * * ?',
      repository: 'allixios-backups',
      config: { indices: ['articles_v*', 'search-analytics-*'], include_global_state: false, ignore_unavailable: false, partial: false },
      retention: { expire_after: '30d', min_count: 7, max_count: 30 },
    });
  });

  it('bounds the number kept by what the schedule takes in the retention window, never below the count kept', () => {
    const hourly = { ...settings, schedule: '0 * * * *', retention: { count: 3, days: 2 } };
    expect(slmPolicy(hourly).retention).toEqual({ expire_after: '2d', min_count: 3, max_count: 48 });
    const weekly = { ...settings, schedule: '0 3 * * 0', retention: { count: 10, days: 7 } };
    expect(slmPolicy(weekly).retention?.max_count).toBe(10);
  });
});

describe('the settings the stack hands the bootstrap', () => {
  it('are the bucket, the prefix, the schedule and the retention, and nothing secret', () => {
    const value = backupSettingsValue(SECRET_STORE);
    expect(JSON.parse(value)).toEqual({ bucket: 'allixios-backups', basePath: 'prod/elasticsearch', schedule: '0 2 * * *', retention: { count: 7, days: 30 } });
    expect(value).not.toMatch(/access|secret/i);
  });

  it('are none when the variable is unset or empty', () => {
    expect(parseBackupSettings(undefined)).toBeUndefined();
    expect(parseBackupSettings('')).toBeUndefined();
  });

  it('refuses malformed JSON, naming the variable and what it expects', () => {
    expect(() => parseBackupSettings('{bucket')).toThrow(
      /^ALLIXIOS_BACKUP_ELASTICSEARCH is not valid JSON \(.*\): expected \{"bucket","basePath","schedule","retention":\{"count","days"\}\}$/,
    );
  });

  it('refuses each wrong key, naming it, the expectation and the value found', () => {
    const good = JSON.parse(backupSettingsValue(SECRET_STORE)) as Record<string, unknown>;
    expect(() => parseBackupSettings(JSON.stringify({ ...good, bucket: 'Not_A_Bucket' }))).toThrow(
      'ALLIXIOS_BACKUP_ELASTICSEARCH: bucket: an S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens), got "Not_A_Bucket"',
    );
    expect(() => parseBackupSettings(JSON.stringify({ ...good, basePath: '/prod/elasticsearch/' }))).toThrow(
      'ALLIXIOS_BACKUP_ELASTICSEARCH: basePath: a prefix without a leading or trailing slash, got "/prod/elasticsearch/"',
    );
    expect(() => parseBackupSettings(JSON.stringify({ ...good, retention: { count: 0, days: 30 } }))).toThrow(/^ALLIXIOS_BACKUP_ELASTICSEARCH: retention\.count: .*, got 0$/);
    expect(() => parseBackupSettings(JSON.stringify({ ...good, endpoint: 'https://x' }))).toThrow(/^ALLIXIOS_BACKUP_ELASTICSEARCH: .*endpoint/);
    expect(() => parseBackupSettings(JSON.stringify({ ...good, schedule: '0 2 1 * 1' }))).toThrow(
      /^ALLIXIOS_BACKUP_ELASTICSEARCH: schedule: cannot convert the cron expression "0 2 1 \* 1" to Elasticsearch's cron syntax: both the day of month/,
    );
  });
});

describe('what the members get', () => {
  it('nothing without backups: no BackupSpec, the start of before', () => {
    const spec = describeWithBackup('prod', null);
    expect(spec.backup).toBeUndefined();
    expect(spec.highAvailability?.args?.[2]).not.toContain('keystore');
  });

  it('no job (SLM is the scheduler), and the S3 client’s endpoint, path style and region as node settings from the object store', () => {
    const backup = describeWithBackup('prod', SECRET_STORE).backup!;
    expect(backup.jobs).toEqual([]);
    // SLM's retention deletes expired snapshots: the store's credentials must allow it under the prefix
    expect(backup.expiresItself).toBe(true);
    expect(backup.memberEnv).toEqual({
      's3.client.allixios.endpoint': { objectStore: 'endpoint' },
      's3.client.allixios.path_style_access': { objectStore: 'forcePathStyle' },
      's3.client.allixios.region': { objectStore: 'region' },
    });
    // Each is a client setting of repository-s3 (S3ClientSettings: endpoint, path_style_access, region), none a secure one
    for (const name of Object.keys(backup.memberEnv!)) expect(name).toMatch(/^s3\.client\.allixios\.(endpoint|path_style_access|region)$/);
  });

  it('with keys: an init container writing the keystore into the in-memory directory from the Secret, and the start linking to it first', () => {
    const spec = describeWithBackup('prod', SECRET_STORE);
    expect(spec.backup!.memberInit).toEqual(keystoreInit());
    expect(keystoreInit()).toMatchObject({
      directory: KEYSTORE_DIRECTORY,
      env: {
        ES_PATH_CONF: KEYSTORE_DIRECTORY,
        ELASTIC_PASSWORD: { secret: 'elastic-password' },
        [ACCESS_KEY_VARIABLE]: { objectStore: 'accessKeyId' },
        [SECRET_KEY_VARIABLE]: { objectStore: 'secretAccessKey' },
      },
    });
    const link = `  ln -sfn '${KEYSTORE_FILE}' /usr/share/elasticsearch/config/elasticsearch.keystore`;
    // A cluster's member and a single node both link it, when the init container wrote it, before the entrypoint runs
    const member = spec.highAvailability!.args![2]!.split('\n');
    expect(member.slice(0, 2)).toEqual([`if [ -f '${KEYSTORE_FILE}' ]; then`, link]);
    expect(member.findIndex((line) => line.includes('eswrapper'))).toBeGreaterThan(4);
    const single = describeWithBackup('ephemeral', SECRET_STORE).args![2]!.split('\n');
    expect(single[0]).toBe('set -e');
    expect(single.slice(1, 3)).toEqual([`if [ -f '${KEYSTORE_FILE}' ]; then`, link]);
    expect(single.slice(-2)).toEqual(['ln -sfn secrets/users /usr/share/elasticsearch/config/users', 'exec /usr/local/bin/docker-entrypoint.sh eswrapper']);
  });

  it('under workload identity: no keystore, and the start links the projected token where repository-s3 reads it', () => {
    const spec = describeWithBackup('prod', WORKLOAD_IDENTITY);
    expect(spec.backup!.memberInit).toBeUndefined();
    const member = spec.highAvailability!.args![2]!;
    expect(member).toContain(`mkdir -p /usr/share/elasticsearch/config/repository-s3 && ln -sfn "$AWS_WEB_IDENTITY_TOKEN_FILE" ${WEB_IDENTITY_TOKEN_LINK}`);
    expect(WEB_IDENTITY_TOKEN_LINK).toBe('/usr/share/elasticsearch/config/repository-s3/aws-web-identity-token-file');
    expect(member).not.toContain('elasticsearch.keystore');
  });

  it('gives starts that the shell parses, with keys and under workload identity, single node and member', () => {
    for (const backup of [SECRET_STORE, WORKLOAD_IDENTITY]) {
      for (const environment of ['ephemeral', 'prod'] as const) {
        const spec = describeWithBackup(environment, backup);
        const script = (spec.highAvailability?.args ?? spec.args)![2]!;
        const parsed = spawnSync('sh', ['-n', '-c', script], { encoding: 'utf8' });
        expect(parsed.status, `${environment}, ${backup.objectStore.credentials.kind}: ${parsed.stderr}`).toBe(0);
      }
    }
  });

  it('refuses a snapshot schedule SLM cannot run, naming the stack key', () => {
    expect(() => describeWithBackup('prod', { ...SECRET_STORE, schedules: { snapshot: '0 2 1 * 1' } })).toThrow(
      /^elasticsearch: allixios:backups\.schedules\.elasticsearch\.snapshot: cannot convert the cron expression "0 2 1 \* 1"/,
    );
    expect(() => elasticsearchBackup({ ...SECRET_STORE, schedules: {} })).toThrow(
      'elasticsearch: allixios:backups.schedules.elasticsearch.snapshot: expected a cron expression for the snapshots, got none',
    );
  });
});

describe("the keystore's init container, run", () => {
  /** Runs the script with a stand-in keystore tool recording, per call, its arguments and its standard input. */
  function runInit(env: Record<string, string>) {
    const directory = mkdtempSync(join(tmpdir(), 'keystore-init-'));
    const bin = join(directory, 'bin');
    const conf = join(directory, 'conf');
    spawnSync('mkdir', ['-p', bin, conf]);
    writeFileSync(join(conf, 'elasticsearch.keystore'), 'left by an earlier run');
    writeFileSync(
      join(bin, 'elasticsearch-keystore'),
      [
        '#!/bin/bash',
        `printf 'call:%s\\n' "$*" >> ${directory}/calls`,
        'if [ "$1" = add ]; then IFS= read -r value; printf "stdin:%s\\n" "$value" >> ' + `${directory}/calls; fi`,
        'if [ "$1" = create ]; then [ ! -e "$ES_PATH_CONF/elasticsearch.keystore" ] || { echo "exists: would prompt" >&2; exit 1; }; : > "$ES_PATH_CONF/elasticsearch.keystore"; fi',
      ].join('\n'),
    );
    chmodSync(join(bin, 'elasticsearch-keystore'), 0o755);
    const init = keystoreInit();
    const result = spawnSync(init.command[0]!, init.command.slice(1), { env: { PATH: `${bin}:/usr/bin:/bin`, ES_PATH_CONF: conf, ...env }, encoding: 'utf8' });
    const calls = existsSync(join(directory, 'calls')) ? readFileSync(join(directory, 'calls'), 'utf8').split('\n').slice(0, -1) : [];
    return { result, calls };
  }

  const KEYS = { ELASTIC_PASSWORD: 'elastic-pw', [ACCESS_KEY_VARIABLE]: 'AKIAEXAMPLE', [SECRET_KEY_VARIABLE]: 'wJalr/XUtn FEMI$(id)"K7' };

  it('replaces an earlier keystore, adds the bootstrap password and the two keys through standard input only', () => {
    const { result, calls } = runInit(KEYS);
    expect(result.status, result.stderr).toBe(0);
    expect(calls).toEqual([
      'call:create',
      'call:add --stdin bootstrap.password',
      'stdin:elastic-pw',
      'call:add --stdin s3.client.allixios.access_key',
      'stdin:AKIAEXAMPLE',
      'call:add --stdin s3.client.allixios.secret_key',
      'stdin:wJalr/XUtn FEMI$(id)"K7',
      'call:list',
    ]);
    // No value on any command line
    for (const call of calls.filter((line) => line.startsWith('call:'))) expect(call).not.toMatch(/elastic-pw|AKIAEXAMPLE|wJalr/);
  });

  it('fails before touching the keystore when a key is missing, saying which', () => {
    const { result, calls } = runInit({ ELASTIC_PASSWORD: 'elastic-pw', [ACCESS_KEY_VARIABLE]: 'AKIAEXAMPLE' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`${SECRET_KEY_VARIABLE}: the secret key of the object store is not set (the backup Secret of the stack)`);
    expect(calls).toEqual([]);
  });
});
