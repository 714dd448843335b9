/**
 * The Kubernetes rendering of an engine's backups (stacks/kubernetes/backups.ts), with a stand-in
 * MongoDB whose description uses every part of the contract (databases/backup.ts): a job that
 * dumps and is uploaded by rclone, a job that writes to the store itself as the backup user, the
 * members' archiving variables, an agent beside each member and an init command before the
 * engine. Under mocks: the CronJobs and pods valid against the Kubernetes schema, the object
 * store's keys only by reference to the stack's Secret (none under workload identity, where the
 * pods run as a ServiceAccount with the cloud role's annotations), the agent open to the backup
 * jobs only. The engines' own backups are tested with each engine.
 */
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKUP_DIRECTORY, type BackupSpec } from '../databases/backup.ts';
import type { EngineModule } from '../databases/engine.ts';
import { ENGINE_MODULES } from '../databases/index.ts';
import { mongodb } from '../databases/mongodb/index.ts';
import { backupBucketPolicy } from '../stacks/backup-policy.ts';
import { parseStackConfig } from '../stacks/config/index.ts';
import { RCLONE_IMAGE, rcloneUploadCommand } from '../stacks/kubernetes/backups.ts';
import { CA_CONFIG_MAP } from '../stacks/kubernetes/tls.ts';
import { unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluate, type Evaluation } from './support/pulumi.ts';
import { PROD_BACKUPS, withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const BACKUP: BackupSpec = {
  tool: 'a stand-in',
  expiresItself: false,
  recoveryPoint: 'what was written since the last dump',
  connection: { scheme: 'mongodb', username: 'allixios_backup', passwordSecret: 'root-password', path: '/admin', tls: { query: 'tls=true', caFileParameter: 'tlsCAFile' } },
  jobs: [
    {
      name: 'dump',
      description: 'a dump uploaded by rclone',
      schedule: '30 1 * * *',
      command: ['sh', '-c', `dump --out ${BACKUP_DIRECTORY}/dump.archive`],
      connection: { use: 'backup', urlVariable: 'SOURCE_URL', passwordVariable: 'SOURCE_PASSWORD' },
      env: { DUMP_LEVEL: 'full' },
      upload: { directory: 'dump' },
      scratchSize: '5Gi',
    },
    {
      name: 'direct',
      description: 'a job that writes to the store itself',
      schedule: '0 3 * * 0',
      command: ['direct-backup'],
      env: { STORE_URL: { objectStore: 'url' }, STORE_KEY: { objectStore: 'accessKeyId' }, STORE_SECRET: { objectStore: 'secretAccessKey' } },
      configFiles: [{ source: 'config/direct.conf', mountPath: '/etc/direct/direct.conf', content: 'level = full\n' }],
    },
  ],
  memberEnv: { ARCHIVE_URL: { objectStore: 'url' }, ARCHIVE_KEY: { objectStore: 'accessKeyId' }, ARCHIVE_ENDPOINT: { objectStore: 'endpoint' } },
  agent: {
    name: 'backup-agent',
    command: ['agent', 'serve'],
    port: { name: 'backup-agent', containerPort: 8432 },
    env: { AGENT_MODE: 'server' },
    configFiles: [{ source: 'config/agent.conf', mountPath: '/etc/agent/agent.conf', content: '[global]\n' }],
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
    healthCommand: ['agent', 'check'],
  },
  memberInit: { command: ['make-keystore'], env: { KEY: { objectStore: 'accessKeyId' }, SECRET: { objectStore: 'secretAccessKey' } }, directory: '/run/keystore' },
};

/** MongoDB, describing the stand-in backup whenever the stack backs up. */
const withBackup: EngineModule = {
  ...mongodb,
  backupSchedules: { dump: '30 1 * * *', direct: '0 3 * * 0' },
  describe: (settings) => {
    const described = mongodb.describe(settings as never);
    if (!settings.backup) return described;
    const schedules = settings.backup.schedules;
    return { ...described, backup: { ...BACKUP, jobs: BACKUP.jobs.map((job) => ({ ...job, schedule: schedules[job.name]! })) } };
  },
} as EngineModule;
const modules = ENGINE_MODULES.map((module) => (module.name === 'mongodb' ? withBackup : module));

const BOOTSTRAP = { enabled: false };
const PROD = { environment: 'prod', namespace: 'allixios-prod', bootstrap: BOOTSTRAP, engines: withPostgresqlImage() };
const IDENTITY = {
  objectStore: {
    bucket: 'allixios-prod-backups',
    region: 'eu-west-1',
    credentials: { workloadIdentity: { serviceAccountAnnotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/allixios-prod-backups' } } },
  },
};

const named = (evaluation: Evaluation, kind: string, name: string): Json =>
  evaluation.resources.find((resource) => resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind && (resource.inputs as Json).metadata?.name === name)
    ?.inputs as Json;
const podOf = (cronJob: Json): Json => cronJob.spec.jobTemplate.spec.template.spec;
const envOf = (container: Json): Record<string, Json> => Object.fromEntries((container.env as Json[]).map((entry) => [entry.name as string, entry]));

let prod: Evaluation;
let identity: Evaluation;
beforeAll(async () => {
  prod = await evaluate({ ...PROD, backups: { ...PROD_BACKUPS, schedules: { mongodb: { dump: '45 2 * * *' } } } }, 'prod', {}, modules);
  identity = await evaluate({ ...PROD, backups: IDENTITY }, 'prod', {}, modules);
});

describe('backup jobs on Kubernetes', () => {
  it('runs each job as a CronJob on its schedule in UTC, one run at a time, valid against the Kubernetes schema', () => {
    const dump = named(prod, 'CronJob', 'mongodb-backup-dump');
    const direct = named(prod, 'CronJob', 'mongodb-backup-direct');
    for (const cronJob of [dump, direct]) new CronJob(unwrapSecrets(cronJob) as never).validate();
    // The stack config's schedule for dump, the engine's default for direct.
    expect([dump.spec.schedule, direct.spec.schedule, dump.spec.timeZone, dump.spec.concurrencyPolicy]).toEqual(['45 2 * * *', '0 3 * * 0', 'Etc/UTC', 'Forbid']);
    expect(dump.metadata.annotations['allixios.io/description']).toBe('a dump uploaded by rclone');
  });

  it('dumps in the engine image into a scratch volume, then uploads it with the pinned rclone, never overwriting and never creating the bucket', () => {
    const pod = podOf(named(prod, 'CronJob', 'mongodb-backup-dump'));
    const [dump] = pod.initContainers as Json[];
    const [upload] = pod.containers as Json[];
    expect(dump!.image).toMatch(/^mongo:/);
    expect(dump!.command).toEqual(BACKUP.jobs[0]!.command);
    expect(upload!.image).toBe(`${RCLONE_IMAGE.repository}:${RCLONE_IMAGE.tag}`);
    expect(upload!.command).toEqual(rcloneUploadCommand('dump'));
    expect(upload!.command[2]).toContain('--immutable');
    expect(upload!.command[2]).toContain('":s3:$RCLONE_BUCKET/$RCLONE_PREFIX/dump/$stamp"');
    const env = envOf(upload!);
    expect([env.RCLONE_BUCKET!.value, env.RCLONE_PREFIX!.value, env.RCLONE_S3_NO_CHECK_BUCKET!.value, env.RCLONE_S3_ENDPOINT!.value]).toEqual([
      'allixios-prod-backups',
      'prod/mongodb',
      'true',
      'https://s3.eu-west-1.amazonaws.com',
    ]);
    expect((pod.volumes as Json[]).find((volume) => volume.name === 'backup')).toEqual({ name: 'backup', emptyDir: { sizeLimit: '5Gi' } });
    expect((upload!.volumeMounts as Json[]).find((mount) => mount.name === 'backup')).toEqual({ name: 'backup', mountPath: BACKUP_DIRECTORY, readOnly: true });
    for (const container of [dump!, upload!])
      expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it("takes the object store's keys from the stack's Secret by reference only, and the backup user's password from the engine's Secret", () => {
    const pod = podOf(named(prod, 'CronJob', 'mongodb-backup-dump'));
    const upload = envOf(pod.containers[0]);
    expect(upload.RCLONE_S3_ACCESS_KEY_ID!.valueFrom).toEqual({ secretKeyRef: { name: 'allixios-backup-s3', key: 'access-key-id' } });
    expect(upload.RCLONE_S3_SECRET_ACCESS_KEY!.valueFrom).toEqual({ secretKeyRef: { name: 'allixios-backup-s3', key: 'secret-access-key' } });
    const dump = envOf(pod.initContainers[0]);
    expect(dump.SOURCE_PASSWORD!.valueFrom).toEqual({ secretKeyRef: { name: 'mongodb-credentials', key: 'root-password' } });
    // The URL names the backup user, never a password.
    expect(new URL(dump.SOURCE_URL!.value as string).username).toBe('allixios_backup');
    expect(new URL(dump.SOURCE_URL!.value as string).password).toBe('');
    const direct = envOf(podOf(named(prod, 'CronJob', 'mongodb-backup-direct')).containers[0]);
    expect([direct.STORE_URL!.value, direct.STORE_KEY!.valueFrom.secretKeyRef.name]).toEqual(['s3://allixios-prod-backups/prod/mongodb', 'allixios-backup-s3']);
    // No literal value of any variable of any backup pod is a generated password.
    for (const cronJob of [named(prod, 'CronJob', 'mongodb-backup-dump'), named(prod, 'CronJob', 'mongodb-backup-direct')]) {
      const text = JSON.stringify(unwrapSecrets(cronJob));
      for (const secret of prod.generatedSecrets) expect(text).not.toContain(secret);
    }
  });

  it('mounts a job’s own config file from a ConfigMap of its own, and the CA bundle on a TLS stack', () => {
    const pod = podOf(named(prod, 'CronJob', 'mongodb-backup-direct'));
    const mounts = pod.containers[0].volumeMounts as Json[];
    expect(mounts.find((mount) => mount.mountPath === '/etc/direct/direct.conf')).toMatchObject({ name: 'config', subPath: 'config.direct.conf', readOnly: true });
    const configMapName = (pod.volumes as Json[]).find((volume) => volume.name === 'config')!.configMap.name as string;
    expect(named(prod, 'ConfigMap', configMapName).data).toEqual({ 'config.direct.conf': 'level = full\n' });
    expect((pod.volumes as Json[]).some((volume) => volume.configMap?.name === CA_CONFIG_MAP)).toBe(true);
  });
});

describe("the members' part of the backups", () => {
  it('gives the engine the archiving variables, its keys by reference, and mounts the init command’s directory read-only', () => {
    const statefulSet = named(prod, 'StatefulSet', 'mongodb');
    new StatefulSet(unwrapSecrets(statefulSet) as never).validate();
    const [engine] = statefulSet.spec.template.spec.containers as Json[];
    const env = envOf(engine!);
    expect([env.ARCHIVE_URL!.value, env.ARCHIVE_ENDPOINT!.value]).toEqual(['s3://allixios-prod-backups/prod/mongodb', 'https://s3.eu-west-1.amazonaws.com']);
    expect(env.ARCHIVE_KEY!.valueFrom).toEqual({ secretKeyRef: { name: 'allixios-backup-s3', key: 'access-key-id' } });
    expect((engine!.volumeMounts as Json[]).find((mount) => mount.name === 'backup-init')).toEqual({ name: 'backup-init', mountPath: '/run/keystore', readOnly: true });
    const [init] = statefulSet.spec.template.spec.initContainers as Json[];
    expect([init!.command, init!.volumeMounts]).toEqual([['make-keystore'], [{ name: 'backup-init', mountPath: '/run/keystore' }]]);
    expect((statefulSet.spec.template.spec.volumes as Json[]).find((volume) => volume.name === 'backup-init')).toEqual({
      name: 'backup-init',
      emptyDir: { medium: 'Memory', sizeLimit: '16Mi' },
    });
  });

  it('runs the agent beside each member on the same data, scratch directories and certificate, with its own config file and variables only', () => {
    const pod = named(prod, 'StatefulSet', 'mongodb').spec.template.spec as Json;
    const [engine, agent] = pod.containers as Json[];
    expect([agent!.name, agent!.command, agent!.ports]).toEqual(['backup-agent', ['agent', 'serve'], [{ name: 'backup-agent', containerPort: 8432, protocol: 'TCP' }]]);
    const mountsOf = (container: Json) => (container.volumeMounts as Json[]).map((mount) => `${mount.name}:${mount.mountPath}`);
    expect(mountsOf(agent!)).toEqual(['data:/data/db', 'scratch-0:/tmp', 'scratch-1:/data/configdb', 'tls:/etc/mongo/tls', 'config:/etc/agent/agent.conf']);
    // Its config file is in the engine's ConfigMap but mounted by the agent only.
    expect(mountsOf(engine!)).not.toContain('config:/etc/agent/agent.conf');
    // The members' archiving variables (the store's keys) stay with the engine.
    expect(Object.keys(envOf(agent!))).toEqual(['AGENT_MODE']);
    expect(agent!.readinessProbe.exec.command).toEqual(['agent', 'check']);
    expect(agent!.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
  });

  it('opens the agent’s port to the engine’s backup jobs only', () => {
    const rules = named(prod, 'NetworkPolicy', 'mongodb-ingress').spec.ingress as Json[];
    const agentRules = rules.filter((rule) => (rule.ports as Json[]).some((port) => port.port === 8432));
    expect(agentRules).toEqual([{ from: [{ podSelector: { matchLabels: { 'allixios.io/backup-job': 'mongodb' } } }], ports: [{ port: 8432, protocol: 'TCP' }] }]);
    // The backup jobs' pods carry that label, and the engine's client label (the client port).
    const labels = named(prod, 'CronJob', 'mongodb-backup-dump').spec.jobTemplate.spec.template.metadata.labels;
    expect([labels['allixios.io/backup-job'], labels['allixios.io/client-mongodb']]).toEqual(['mongodb', 'true']);
  });
});

describe('backups under workload identity', () => {
  it('sets no key variable anywhere, and rclone takes the credentials from the environment the cloud injects', () => {
    const pod = podOf(named(identity, 'CronJob', 'mongodb-backup-dump'));
    const upload = envOf(pod.containers[0]);
    expect([upload.RCLONE_S3_ACCESS_KEY_ID, upload.RCLONE_S3_SECRET_ACCESS_KEY, upload.RCLONE_S3_ENV_AUTH?.value]).toEqual([undefined, undefined, 'true']);
    const engine = envOf(named(identity, 'StatefulSet', 'mongodb').spec.template.spec.containers[0]);
    expect(engine.ARCHIVE_KEY).toBeUndefined();
    expect(engine.ARCHIVE_URL!.value).toBe('s3://allixios-prod-backups/prod/mongodb');
  });

  it("runs the jobs and the members that reach the store as the engine's backup ServiceAccount, which carries the cloud role", () => {
    const account = named(identity, 'ServiceAccount', 'mongodb-backup');
    expect(account.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/allixios-prod-backups' });
    expect(account.automountServiceAccountToken).toBe(false);
    expect(podOf(named(identity, 'CronJob', 'mongodb-backup-dump')).serviceAccountName).toBe('mongodb-backup');
    expect(named(identity, 'StatefulSet', 'mongodb').spec.template.spec.serviceAccountName).toBe('mongodb-backup');
    // With keys in a Secret, there is no such account and the pods run as the namespace's default (no token).
    expect(named(prod, 'ServiceAccount', 'mongodb-backup')).toBeUndefined();
    expect(named(prod, 'StatefulSet', 'mongodb').spec.template.spec.serviceAccountName).toBeUndefined();
  });
});

describe('a stack that does not back up', () => {
  it('renders no backup job, variable, agent or init command', async () => {
    const staging = await evaluate({ environment: 'staging', namespace: 'allixios-staging', bootstrap: BOOTSTRAP, engines: withPostgresqlImage() }, 'staging', {}, modules);
    expect(staging.resources.filter((resource) => resource.inputs.kind === 'CronJob').map((resource) => (resource.inputs as Json).metadata.name)).toEqual([
      'postgresql-stats-partitions',
    ]);
    const pod = named(staging, 'StatefulSet', 'mongodb').spec.template.spec as Json;
    expect([pod.containers.length, pod.initContainers]).toEqual([1, undefined]);
    expect(Object.keys(envOf(pod.containers[0]))).not.toContain('ARCHIVE_URL');
  });

  it('refuses an upload directory that is not a plain name', () => {
    expect(() => rcloneUploadCommand('../other-stack')).toThrow('backup upload directory: expected lowercase letters, digits and "-", got "../other-stack"');
  });
});

describe("the bucket's access policy and lifecycle rules (stack output backupBucket)", () => {
  const configWith = (expiresItself: boolean) => {
    const module = { ...withBackup, describe: (settings: never) => withExpiry(withBackup.describe(settings), expiresItself) } as EngineModule;
    return parseStackConfig({ environment: 'prod', namespace: 'allixios-prod', bootstrap: BOOTSTRAP, backups: PROD_BACKUPS }, 'allixios', 'prod', [module]);
  };
  const withExpiry = (described: ReturnType<EngineModule['describe']>, expiresItself: boolean) =>
    described.backup ? { ...described, backup: { ...described.backup, expiresItself } } : described;

  it('lets the credentials list the stack’s prefix and write and read backups under it, and delete nothing where a lifecycle rule expires the backups', () => {
    const bucket = backupBucketPolicy(configWith(false))!;
    expect(bucket.url).toBe('s3://allixios-prod-backups/prod');
    expect(bucket.accessPolicy.Statement).toEqual([
      {
        Sid: 'ListTheStacksPrefix',
        Effect: 'Allow',
        Action: ['s3:ListBucket', 's3:GetBucketLocation'],
        Resource: 'arn:aws:s3:::allixios-prod-backups',
        Condition: { StringLike: { 's3:prefix': ['prod', 'prod/*'] } },
      },
      {
        Sid: 'WriteAndReadBackups',
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        Resource: 'arn:aws:s3:::allixios-prod-backups/prod/*',
      },
    ]);
    expect(bucket.lifecycleRules).toEqual([
      { ID: 'allixios-prod-mongodb', Status: 'Enabled', Filter: { Prefix: 'prod/mongodb/' }, Expiration: { Days: 35 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } },
    ]);
  });

  it('lets the credentials delete only under the prefix of an engine whose tool expires its own backups', () => {
    const bucket = backupBucketPolicy(configWith(true))!;
    expect(bucket.accessPolicy.Statement[2]).toEqual({
      Sid: 'ExpireByRetention',
      Effect: 'Allow',
      Action: ['s3:DeleteObject'],
      Resource: ['arn:aws:s3:::allixios-prod-backups/prod/mongodb/*'],
    });
    expect(bucket.lifecycleRules).toEqual([]);
  });

  it('is absent on a stack that does not back up', () => {
    expect(backupBucketPolicy(parseStackConfig({ environment: 'ephemeral', namespace: 'allixios-pr-3', bootstrap: BOOTSTRAP }, 'allixios', 'pr-3'))).toBeUndefined();
  });
});
