/**
 * An engine's backups on Kubernetes (`EngineSpec.backup`, databases/backup.ts): a CronJob per job,
 * and what its members need (the object store's settings in their environment, the backup agent
 * beside each member, the init command before the engine). Nothing engine-specific: the
 * description says what to run.
 *
 * A job whose command writes a dump into `/backup` runs it as an init container; rclone then sends
 * the directory to `<bucket>/<engine prefix>/<directory>/<UTC timestamp>/` with `--immutable` (it
 * never overwrites an object) and without creating the bucket, so the object store's credentials
 * need to write and read backups only. The object store's keys come from the Secret the stack
 * names, by reference; under workload identity there are none, and the pods run as the engine's
 * backup ServiceAccount, which carries the cloud role's annotations.
 */
import { posix } from 'node:path';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { BACKUP_DIRECTORY, type BackupEnvValue, type BackupJob, type BackupSpec, type ObjectStoreSpec } from '../../databases/backup.ts';
import { CLIENT_CA_PATH, connectionUrl } from '../../databases/connection.ts';
import type { EngineSpec } from '../../databases/engine.ts';
import { fileKey, type MountedFile } from '../credentials.ts';
import { clientLabel, partLabels } from '../labels.ts';
import { configMapName, restrictedContainer, restrictedJobPod } from './pod-security.ts';
import { CA_CONFIG_MAP, certificateName } from './tls.ts';

type EnvVar = k8s.types.input.core.v1.EnvVar;
type Container = k8s.types.input.core.v1.Container;
type Volume = k8s.types.input.core.v1.Volume;
type VolumeMount = k8s.types.input.core.v1.VolumeMount;

/** rclone, pinned: the upload of a dump directory to any S3-compatible store, configured from its environment. */
export const RCLONE_IMAGE = { repository: 'rclone/rclone', tag: '1.68.2' } as const;

/** The label of a backup job's pods: the engine's agent admits them, and only them. */
export const BACKUP_JOB_LABEL = 'allixios.io/backup-job';

/** A backup job's CronJob: `<engine>-backup-<job>`. */
export function backupJobName(spec: Pick<EngineSpec, 'name'>, job: Pick<BackupJob, 'name'>): string {
  return `${spec.name}-backup-${job.name}`;
}

/** The engine's backup ServiceAccount, under workload identity: `<engine>-backup`. */
export function backupServiceAccountName(spec: Pick<EngineSpec, 'name'>): string {
  return `${spec.name}-backup`;
}

/** The store as `s3://<bucket>/<path>`. */
export function objectStoreUrl(store: Pick<ObjectStoreSpec, 'bucket'>, path: string): string {
  return `s3://${store.bucket}/${path}`;
}

export interface BackupEnvContext {
  spec: EngineSpec;
  store: ObjectStoreSpec;
  /** The engine's prefix in the bucket. */
  path: string;
  /** The engine's Secret (its passwords). */
  secretName: pulumi.Input<string>;
  /** Where the variable is set, for messages. */
  where: string;
  /** `<namespace>.svc.<cluster domain>`. */
  namespaceDomain: pulumi.Input<string>;
}

/**
 * Variables from a description's values: literals, the engine's secrets by reference, the object
 * store's settings (its keys by reference to the stack's Secret, left out under workload identity).
 */
export function backupEnv(env: Record<string, BackupEnvValue>, context: BackupEnvContext): EnvVar[] {
  const { store } = context;
  const variables: EnvVar[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === 'string') {
      variables.push({ name, value });
    } else if ('cluster' in value) {
      variables.push({ name, value: context.namespaceDomain });
    } else if ('secret' in value) {
      if (!context.spec.secrets.some((secret) => secret.key === value.secret)) {
        throw new Error(`${context.where}: variable ${name} names ${value.secret}, which is not a secret of ${context.spec.name}`);
      }
      variables.push({ name, valueFrom: { secretKeyRef: { name: context.secretName, key: value.secret } } });
    } else {
      const field = value.objectStore;
      switch (field) {
        case 'accessKeyId':
        case 'secretAccessKey':
          if (store.credentials.kind === 'secret') {
            const key = field === 'accessKeyId' ? store.credentials.accessKeyIdKey : store.credentials.secretAccessKeyKey;
            variables.push({ name, valueFrom: { secretKeyRef: { name: store.credentials.secretName, key } } });
          }
          break;
        case 'endpoint':
        case 'bucket':
        case 'region':
          variables.push({ name, value: store[field] });
          break;
        case 'forcePathStyle':
          variables.push({ name, value: String(store.forcePathStyle) });
          break;
        case 'path':
          variables.push({ name, value: context.path });
          break;
        case 'url':
          variables.push({ name, value: objectStoreUrl(store, context.path) });
          break;
        default:
          throw new Error(`${context.where}: variable ${name} names an unknown object-store field ${JSON.stringify(field satisfies never)}`);
      }
    }
  }
  return variables;
}

/** rclone's settings for the stack's store, from its environment (an on-the-fly `:s3:` remote; nothing on disk). */
export function rcloneEnv(store: ObjectStoreSpec): Record<string, BackupEnvValue> {
  return {
    RCLONE_S3_PROVIDER: store.endpoint.includes('amazonaws.com') ? 'AWS' : 'Other',
    RCLONE_S3_ENDPOINT: { objectStore: 'endpoint' },
    RCLONE_S3_REGION: { objectStore: 'region' },
    RCLONE_S3_FORCE_PATH_STYLE: { objectStore: 'forcePathStyle' },
    // Least privilege: never create the bucket, never overwrite or delete an object.
    RCLONE_S3_NO_CHECK_BUCKET: 'true',
    ...(store.credentials.kind === 'secret'
      ? { RCLONE_S3_ACCESS_KEY_ID: { objectStore: 'accessKeyId' }, RCLONE_S3_SECRET_ACCESS_KEY: { objectStore: 'secretAccessKey' } }
      : { RCLONE_S3_ENV_AUTH: 'true' }),
    RCLONE_BUCKET: { objectStore: 'bucket' },
    RCLONE_PREFIX: { objectStore: 'path' },
  };
}

/** The upload step: the dump directory to `<bucket>/<path>/<directory>/<UTC timestamp>/`, never overwriting. */
export function rcloneUploadCommand(directory: string): string[] {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(directory)) throw new Error(`backup upload directory: expected lowercase letters, digits and "-", got ${JSON.stringify(directory)}`);
  return [
    'sh',
    '-c',
    `set -eu; stamp=$(date -u +%Y%m%dT%H%M%SZ); exec rclone copy --immutable --checksum --stats-one-line -v ${BACKUP_DIRECTORY} ":s3:$RCLONE_BUCKET/$RCLONE_PREFIX/${directory}/$stamp"`,
  ];
}

export interface KubernetesBackupsArgs {
  spec: EngineSpec;
  backup: BackupSpec;
  store: ObjectStoreSpec;
  path: string;
  namespace: pulumi.Input<string>;
  instance: string;
  /** The engine's Service host and Secret. */
  host: pulumi.Input<string>;
  secretName: pulumi.Input<string>;
  /** The jobs' secret files by job name, rendered into the engine's Secret. */
  files: Readonly<Record<string, readonly MountedFile[]>>;
  clusterDomain: string;
}

/**
 * An engine's backup jobs as CronJobs, and under workload identity its backup ServiceAccount.
 * Type token `allixios:kubernetes:Backups`.
 */
export class KubernetesBackups extends pulumi.ComponentResource {
  readonly cronJobs: k8s.batch.v1.CronJob[];
  readonly configMaps: k8s.core.v1.ConfigMap[];
  readonly serviceAccount?: k8s.core.v1.ServiceAccount;

  constructor(name: string, args: KubernetesBackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('allixios:kubernetes:Backups', name, {}, opts);
    const { spec, backup, store } = args;
    if (store.credentials.kind === 'workloadIdentity') {
      this.serviceAccount = new k8s.core.v1.ServiceAccount(
        `${name}-service-account`,
        {
          metadata: {
            name: backupServiceAccountName(spec),
            namespace: args.namespace,
            labels: partLabels(backupServiceAccountName(spec), args.instance, 'backup'),
            annotations: store.credentials.serviceAccountAnnotations,
          },
          automountServiceAccountToken: false,
        },
        { parent: this },
      );
    }
    // One ConfigMap for the engine's backup jobs: jobs that read the same file (PostgreSQL's full
    // and differential backups, one pgbackrest.conf) share it.
    const configs = new Map<string, { key: string; content: string }>();
    for (const job of backup.jobs) {
      for (const file of job.configFiles ?? []) {
        const key = fileKey(file.source);
        const known = configs.get(key);
        if (known && known.content !== file.content) throw new Error(`${spec.name} backup jobs: two different files from ${file.source}; give each its own source`);
        configs.set(key, { key, content: file.content });
      }
    }
    const configMapObjectName = `${spec.name}-backup`;
    const configMap =
      configs.size > 0
        ? new k8s.core.v1.ConfigMap(
            `${name}-config`,
            {
              metadata: {
                name: configMapName(configMapObjectName, [...configs.values()]),
                namespace: args.namespace,
                labels: partLabels(configMapObjectName, args.instance, 'backup'),
              },
              data: Object.fromEntries([...configs.values()].map((file) => [file.key, file.content])),
            },
            { parent: this },
          )
        : undefined;
    this.configMaps = configMap ? [configMap] : [];
    this.cronJobs = backup.jobs.map(
      (job) =>
        new k8s.batch.v1.CronJob(`${name}-${job.name}`, backupCronJob(args, job, (job.configFiles ?? []).length > 0 ? configMap : undefined, this.serviceAccount), {
          parent: this,
        }),
    );
    this.registerOutputs({});
  }
}

/** One backup job's CronJob (batch/v1). */
function backupCronJob(
  args: KubernetesBackupsArgs,
  job: BackupJob,
  configMap: k8s.core.v1.ConfigMap | undefined,
  serviceAccount: k8s.core.v1.ServiceAccount | undefined,
): k8s.batch.v1.CronJobArgs {
  const { spec, backup, store } = args;
  const name = backupJobName(spec, job);
  // A client of the engine (its NetworkPolicy admits it), and a backup job of it (its agent admits it).
  const labels = { ...partLabels(name, args.instance, 'backup'), [clientLabel(spec.name)]: 'true', [BACKUP_JOB_LABEL]: spec.name };
  const context: BackupEnvContext = {
    spec,
    store,
    path: args.path,
    secretName: args.secretName,
    where: `${name}`,
    namespaceDomain: pulumi.interpolate`${args.namespace}.svc.${args.clusterDomain}`,
  };
  const connection = job.connection ? (job.connection.use === 'admin' ? spec.adminConnection : job.connection.use === 'app' ? spec.appConnection : backup.connection) : undefined;
  if (job.connection && !connection) throw new Error(`${name}: the job logs in as the backup user, but ${spec.name}'s backup describes no connection for it`);
  const connectionEnv: EnvVar[] =
    job.connection && connection
      ? [
          {
            name: job.connection.urlVariable,
            value: pulumi.output(args.host).apply((host) => connectionUrl(connection, undefined, host, spec.ports[0]!.containerPort, spec.tls ? {} : undefined)),
          },
          // A tool that reads its password from a secret file of its own names no variable.
          ...(job.connection.passwordVariable
            ? [{ name: job.connection.passwordVariable, valueFrom: { secretKeyRef: { name: args.secretName, key: connection.passwordSecret } } }]
            : []),
        ]
      : [];
  const files = args.files[job.name] ?? [];
  const secretDirectories = [...new Set(files.map((file) => posix.dirname(file.mountPath)))];
  const mounts: VolumeMount[] = [
    { name: 'tmp', mountPath: '/tmp' },
    ...(job.upload ? [{ name: 'backup', mountPath: BACKUP_DIRECTORY }] : []),
    ...(spec.tls ? [{ name: 'tls-ca', mountPath: posix.dirname(CLIENT_CA_PATH), readOnly: true }] : []),
    // The engine's certificate, for a job that authenticates with it (pgBackRest's TLS server).
    ...(spec.tls && backup.agent ? [{ name: 'tls', mountPath: spec.tls.directory, readOnly: true }] : []),
    ...(job.configFiles ?? []).map((file) => ({ name: 'config', mountPath: file.mountPath, subPath: fileKey(file.source), readOnly: true })),
    ...secretDirectories.map((directory, index) => ({ name: `secret-files-${index}`, mountPath: directory, readOnly: true })),
  ];
  const volumes: Volume[] = [
    { name: 'tmp', emptyDir: {} },
    ...(job.upload ? [{ name: 'backup', emptyDir: { sizeLimit: job.scratchSize ?? '20Gi' } }] : []),
    ...(spec.tls ? [{ name: 'tls-ca', configMap: { name: CA_CONFIG_MAP } }] : []),
    ...(spec.tls && backup.agent ? [{ name: 'tls', secret: { secretName: certificateName(spec.name), defaultMode: 0o440 } }] : []),
    ...(configMap ? [{ name: 'config', configMap: { name: configMap.metadata.name } }] : []),
    ...secretDirectories.map((directory, index) => ({
      name: `secret-files-${index}`,
      secret: {
        secretName: args.secretName,
        items: files.filter((file) => posix.dirname(file.mountPath) === directory).map((file) => ({ key: file.key, path: posix.basename(file.mountPath), mode: 0o440 })),
      },
    })),
  ];
  const resources = job.resources ?? { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } };
  const dump: Container = {
    name: job.name,
    image: `${spec.image.repository}:${spec.image.tag}`,
    imagePullPolicy: 'IfNotPresent',
    command: job.command,
    env: [...backupEnv(job.env, context), ...connectionEnv],
    resources,
    securityContext: restrictedContainer(),
    volumeMounts: mounts,
  };
  const upload: Container | undefined = job.upload
    ? {
        name: 'upload',
        image: `${RCLONE_IMAGE.repository}:${RCLONE_IMAGE.tag}`,
        imagePullPolicy: 'IfNotPresent',
        command: rcloneUploadCommand(job.upload.directory),
        env: [...backupEnv(rcloneEnv(store), context), { name: 'HOME', value: '/tmp' }],
        resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
        securityContext: restrictedContainer(),
        volumeMounts: [
          { name: 'tmp', mountPath: '/tmp' },
          { name: 'backup', mountPath: BACKUP_DIRECTORY, readOnly: true },
        ],
      }
    : undefined;
  return {
    metadata: { name, namespace: args.namespace, labels, annotations: { 'allixios.io/description': job.description } },
    spec: {
      schedule: job.schedule,
      timeZone: 'Etc/UTC',
      // One run at a time; a run missed by more than an hour is skipped, the next one catches up.
      // kube-state-metrics' kube_cronjob_status_last_successful_time is the "last successful backup" an alert reads.
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels },
        spec: {
          backoffLimit: 2,
          activeDeadlineSeconds: job.deadlineSeconds ?? 3600,
          template: {
            metadata: { labels },
            spec: {
              ...restrictedJobPod(spec.runAs),
              ...(serviceAccount ? { serviceAccountName: serviceAccount.metadata.name } : {}),
              securityContext: { ...restrictedJobPod(spec.runAs).securityContext, fsGroup: spec.runAs.fsGroup ?? spec.runAs.group },
              ...(upload ? { initContainers: [dump], containers: [upload] } : { containers: [dump] }),
              volumes,
            },
          },
        },
      },
    },
  };
}

/** What the engine's members get for its backups: variables, the agent beside them, the init command before them. */
export interface BackupMemberParts {
  env: EnvVar[];
  containers: Container[];
  initContainers: Container[];
  volumes: Volume[];
  /** Mounts the engine's own container adds (the init command's directory). */
  engineMounts: VolumeMount[];
  /** The agent's port, which the engine's NetworkPolicy opens to the backup jobs only. */
  agentPort?: number;
}

export interface BackupMemberArgs {
  spec: EngineSpec;
  backup: BackupSpec;
  store: ObjectStoreSpec;
  path: string;
  secretName: pulumi.Input<string>;
  namespace: pulumi.Input<string>;
  clusterDomain: string;
  /** The agent's mounts: the engine's data, scratch directories and certificate, and its own config files. */
  agentMounts: VolumeMount[];
}

/** The members' part of an engine's backups (databases/backup.ts: memberEnv, agent, memberInit). */
export function backupMemberParts(args: BackupMemberArgs): BackupMemberParts {
  const { spec, backup } = args;
  const context: BackupEnvContext = {
    spec,
    store: args.store,
    path: args.path,
    secretName: args.secretName,
    where: `${spec.name} backup`,
    namespaceDomain: pulumi.interpolate`${args.namespace}.svc.${args.clusterDomain}`,
  };
  const env = backupEnv(backup.memberEnv ?? {}, context);
  const containers: Container[] = [];
  const initContainers: Container[] = [];
  const volumes: Volume[] = [];
  const engineMounts: VolumeMount[] = [];
  const image = `${spec.image.repository}:${spec.image.tag}`;
  if (backup.agent) {
    const agent = backup.agent;
    containers.push({
      name: agent.name,
      image,
      imagePullPolicy: 'IfNotPresent',
      command: agent.command,
      ports: [{ name: agent.port.name, containerPort: agent.port.containerPort, protocol: 'TCP' }],
      // Its own variables only: the members' (the repository's keys and passphrase) stay with the engine.
      env: backupEnv(agent.env, { ...context, where: `${spec.name} ${agent.name}` }),
      resources: agent.resources,
      startupProbe: { exec: { command: agent.healthCommand }, periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 24 },
      readinessProbe: { exec: { command: agent.healthCommand }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
      livenessProbe: { exec: { command: agent.healthCommand }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 },
      securityContext: restrictedContainer({ runAs: spec.runAs }),
      volumeMounts: args.agentMounts,
    });
  }
  if (backup.memberInit) {
    const init = backup.memberInit;
    volumes.push({ name: 'backup-init', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } });
    initContainers.push({
      name: 'backup-init',
      image,
      imagePullPolicy: 'IfNotPresent',
      command: init.command,
      env: backupEnv(init.env, { ...context, where: `${spec.name} backup init` }),
      resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
      securityContext: restrictedContainer({ runAs: spec.runAs }),
      volumeMounts: [{ name: 'backup-init', mountPath: init.directory }],
    });
    engineMounts.push({ name: 'backup-init', mountPath: init.directory, readOnly: true });
  }
  return { env, containers, initContainers, volumes, engineMounts, ...(backup.agent ? { agentPort: backup.agent.port.containerPort } : {}) };
}

/** The agent's config files, for the engine's ConfigMap-backed volume. */
export function backupAgentConfigFiles(backup: BackupSpec): Array<{ source: string; mountPath: string; content: string; key: string }> {
  return (backup.agent?.configFiles ?? []).map((file) => ({ ...file, key: fileKey(file.source) }));
}
