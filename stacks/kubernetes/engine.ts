/**
 * One engine on Kubernetes: Secret, ConfigMap, headless and ClusterIP Services, StatefulSet with
 * a volumeClaimTemplate, PodDisruptionBudget, an ingress NetworkPolicy, a CronJob per scheduled
 * task, and its pooler and companions (`pooler.ts`, `companion.ts`). Nothing engine-specific:
 * everything comes from the engine's {@link EngineSpec}.
 */
import { posix } from 'node:path';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { EngineSpec } from '../../databases/engine.ts';
import type { ResolvedEngine, StackConfig } from '../config/index.ts';
import { configFiles, type EngineCredentials, type MountedFile } from '../credentials.ts';
import { ENCRYPTED_STORAGE_CLASSES_ANNOTATION, engineLabels, selectorLabels } from '../labels.ts';
import { clusterConnections, managerAccess, memberEnv, memberSpec, placement, replicasServiceName } from './high-availability.ts';
import { companionName, KubernetesCompanion } from './companion.ts';
import { KubernetesPooler } from './pooler.ts';
import { configMapName, engineClients, healthProbes, restrictedContainer } from './pod-security.ts';
import { BACKUP_JOB_LABEL, backupAgentConfigFiles, backupMemberParts, backupServiceAccountName, KubernetesBackups } from './backups.ts';
import { scheduledTaskCronJob } from './scheduled-tasks.ts';
import { certificateArgs, certificateDnsNames, certificateName, readinessWithReload, RELOAD_STATE_DIRECTORY, type IssuerRef } from './tls.ts';

type StatefulSetSpec = k8s.types.input.apps.v1.StatefulSetSpec;
type Container = k8s.types.input.core.v1.Container;

/** Arguments of {@link KubernetesEngine}. */
export interface KubernetesEngineArgs extends Pick<
  StackConfig,
  'environment' | 'protectData' | 'pvcRetention' | 'clientNamespaces' | 'encryptedStorageClasses' | 'clusterDomain' | 'backups'
> {
  engine: ResolvedEngine;
  credentials: EngineCredentials;
  namespace: pulumi.Input<string>;
  /** `app.kubernetes.io/instance` of every object, e.g. `allixios-prod`. */
  instance: string;
  /** The issuer of the engine's certificate, when it serves TLS (`stacks/kubernetes/tls.ts`). */
  issuerRef?: IssuerRef;
}

const CONFIG_VOLUME = 'config';
const DATA_VOLUME = 'data';
const SHARED_MEMORY_VOLUME = 'shared-memory';
const TLS_VOLUME = 'tls';
const TLS_RELOAD_VOLUME = 'tls-reload';

function withoutVersion(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([key]) => key !== 'app.kubernetes.io/version'));
}

function scratchVolumeName(index: number): string {
  return `scratch-${index}`;
}

/** A file mounted on its own from the ConfigMap: config files change only with the ConfigMap's name, which rolls the pods. */
function fileMounts(volume: string, files: readonly MountedFile<unknown>[]): k8s.types.input.core.v1.VolumeMount[] {
  return files.map((file) => ({ name: volume, mountPath: file.mountPath, subPath: file.key, readOnly: true }));
}

function fileItems(files: readonly MountedFile<unknown>[], mode: number, path: (file: MountedFile<unknown>) => string = (file) => file.key): k8s.types.input.core.v1.KeyToPath[] {
  return files.map((file) => ({ key: file.key, path: path(file), mode: file.executable ? 0o555 : mode }));
}

/** A directory of secret files, mounted whole from the engine's Secret. */
export interface SecretDirectory {
  volume: string;
  path: string;
  files: MountedFile<unknown>[];
}

/**
 * The engine's secret files grouped by the directory they live in, each directory a volume of
 * the Secret mounted as a whole. Not file by file with `subPath`: such a mount never sees a
 * change of the Secret, while a whole-directory mount is refreshed by the kubelet (atomically,
 * within its sync period), so a rotated password reaches the running engine without a restart.
 * A mounted directory hides what the image had there, so no config file may live in one.
 */
export function secretDirectories(spec: Pick<EngineSpec, 'name'>, secretFiles: readonly MountedFile<unknown>[], configs: readonly MountedFile<unknown>[]): SecretDirectory[] {
  const byPath = new Map<string, MountedFile<unknown>[]>();
  for (const file of secretFiles) {
    const directory = posix.dirname(file.mountPath);
    byPath.set(directory, [...(byPath.get(directory) ?? []), file]);
  }
  return [...byPath].map(([path, files], index) => {
    const inside = configs.find((config) => config.mountPath.startsWith(`${path}/`));
    if (inside) {
      throw new Error(
        `${spec.name}: the config file ${inside.source} is mounted at ${inside.mountPath}, inside ${path}, the directory the engine's secret files are mounted as; give the secret files a directory of their own`,
      );
    }
    return { volume: `secret-files-${index}`, path, files };
  });
}

/**
 * A database engine as a StatefulSet. Type token `allixios:kubernetes:<Engine>`, e.g.
 * `allixios:kubernetes:PostgreSQL`.
 */
export class KubernetesEngine extends pulumi.ComponentResource {
  readonly secret: k8s.core.v1.Secret;
  readonly configMap?: k8s.core.v1.ConfigMap;
  readonly headlessService: k8s.core.v1.Service;
  readonly service: k8s.core.v1.Service;
  readonly statefulSet: k8s.apps.v1.StatefulSet;
  readonly podDisruptionBudget: k8s.policy.v1.PodDisruptionBudget;
  readonly networkPolicy: k8s.networking.v1.NetworkPolicy;
  /** The engine's cert-manager Certificate, when it serves TLS. */
  readonly certificate?: k8s.apiextensions.CustomResource;
  /** The engine's connection pooler (`pooler.ts`). */
  readonly pooler?: KubernetesPooler;
  /** The workloads beside the engine's members (`companion.ts`), in the order the engine names them. */
  readonly companions: KubernetesCompanion[];
  /** The engine's scheduled tasks (`scheduled-tasks.ts`). */
  readonly cronJobs: k8s.batch.v1.CronJob[];
  /** The engine's backup jobs, when the stack backs up (`backups.ts`). */
  readonly backups?: KubernetesBackups;
  /** In-cluster host name of the ClusterIP Service (the primary's, under an HA manager). */
  readonly host: pulumi.Output<string>;
  /** Where reads go: the replicas' Service when there are replicas, else {@link host}. */
  readonly readHost: pulumi.Output<string>;
  /** Under an HA manager: the replicas' Service, the Services of the manager's objects, its identity and access. */
  readonly replicasService?: k8s.core.v1.Service;
  readonly managedServices: k8s.core.v1.Service[];
  readonly managerAccess?: ReturnType<typeof managerAccess>;
  readonly port: number;

  constructor(name: string, args: KubernetesEngineArgs, opts?: pulumi.ComponentResourceOptions) {
    const described = args.engine.spec;
    super(`allixios:kubernetes:${described.displayName}`, name, {}, opts);
    // Under an HA manager every member runs the manager's image and settings (high-availability.ts).
    const ha = described.highAvailability;
    // Its scheduled tasks and pooler connect as the platform's clients do (the cluster's query parameters).
    const spec = clusterConnections(memberSpec(described));
    const labels = engineLabels(spec, args.instance);
    const selector = selectorLabels(spec.name, args.instance);
    const metadata = (objectName: string) => ({ name: objectName, namespace: args.namespace, labels });
    this.port = spec.ports[0]!.containerPort;

    const secretName = `${spec.name}-credentials`;

    // Everything secret, and only that, goes into the Secret: passwords the env refers to and the
    // rendered secret files.
    this.secret = new k8s.core.v1.Secret(
      `${name}-credentials`,
      {
        metadata: metadata(secretName),
        type: 'Opaque',
        // One secret value per key, so a review of the render sees which keys the Secret holds.
        stringData: args.credentials.secretData(),
      },
      { parent: this },
    );

    // Backups (backups.ts): the engine's part of them when the stack backs up to its object store.
    const backup =
      spec.backup && args.backups.enabled ? { spec: spec.backup, store: args.backups.objectStore, path: `${args.backups.objectStore.prefix}/${spec.name}` } : undefined;
    // The engine's config files, and the backup agent's (its own pgbackrest.conf), in one ConfigMap;
    // each container mounts its own.
    const engineFiles = configFiles({ ...args.engine, spec });
    const agentFiles = backup ? backupAgentConfigFiles(backup.spec).map((file) => ({ ...file, executable: false })) : [];
    const files = [...engineFiles, ...agentFiles];
    if (files.length > 0) {
      this.configMap = new k8s.core.v1.ConfigMap(
        `${name}-config`,
        {
          metadata: metadata(configMapName(spec.name, files)),
          data: Object.fromEntries(files.map((file) => [file.key, file.content])),
        },
        { parent: this },
      );
    }

    const servicePort = (port: { name: string; containerPort: number }) => ({ name: port.name, port: port.containerPort, targetPort: port.name, protocol: 'TCP' });
    // Every member's port on the governing Service; the clients' ports (the engine's own, not the
    // HA manager's) on the client Services.
    const clientPorts = described.ports.map(servicePort);
    this.headlessService = new k8s.core.v1.Service(
      `${name}-headless`,
      {
        metadata: metadata(`${spec.name}-headless`),
        spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector, ports: spec.ports.map(servicePort) },
      },
      { parent: this },
    );
    const roleLabel = ha?.roleLabel;
    if (roleLabel) {
      // The primary's Service has no selector: the manager writes its endpoints (the leader's
      // address) together with the leader lock, so it never routes to a member that is not the
      // leader. Without a selector the endpoints' ports are matched by name and number.
      this.service = new k8s.core.v1.Service(
        `${name}-service`,
        {
          metadata: metadata(spec.name),
          spec: { type: args.engine.serviceType, ports: described.ports.map((port) => ({ ...servicePort(port), targetPort: port.containerPort })) },
        },
        { parent: this },
      );
      this.replicasService = new k8s.core.v1.Service(
        `${name}-replicas`,
        {
          metadata: metadata(replicasServiceName(spec.name)),
          spec: { type: args.engine.serviceType, selector: { ...selector, [roleLabel.key]: roleLabel.replica }, ports: clientPorts },
        },
        { parent: this },
      );
    } else {
      // Every member (ready ones): the engine routes, or its clients find the primary themselves.
      this.service = new k8s.core.v1.Service(
        `${name}-service`,
        { metadata: metadata(spec.name), spec: { type: args.engine.serviceType, selector, ports: clientPorts } },
        { parent: this },
      );
    }
    // The manager's other objects, which a Service of the same name keeps from being deleted.
    this.managedServices = (ha?.managedServices ?? []).map(
      (suffix) => new k8s.core.v1.Service(`${name}-service${suffix}`, { metadata: metadata(`${spec.name}${suffix}`), spec: { clusterIP: 'None' } }, { parent: this }),
    );
    // A Role only for a manager that talks to the Kubernetes API.
    const workloadIdentity = backup?.store.credentials.kind === 'workloadIdentity' ? backup.store.credentials.serviceAccountAnnotations : undefined;
    if (ha && (ha.kubernetesAccess ?? []).length > 0) {
      this.managerAccess = managerAccess(name, { spec, ha, metadata, parent: this, ...(workloadIdentity ? { annotations: workloadIdentity } : {}) });
    }

    if (spec.tls && !args.issuerRef) throw new Error(`${spec.name}: the engine serves TLS but the stack gave it no issuer`);
    if (spec.tls && args.issuerRef) {
      // Under an HA manager the read URL names the replicas' Service, which clients verify too.
      const otherServices = this.replicasService ? [replicasServiceName(spec.name)] : [];
      const dnsNames = pulumi.output(args.namespace).apply((namespace) => certificateDnsNames(spec.name, `${spec.name}-headless`, namespace, args.clusterDomain, otherServices));
      this.certificate = new k8s.apiextensions.CustomResource(
        `${name}-certificate`,
        certificateArgs(spec.name, metadata(certificateName(spec.name)), dnsNames, args.issuerRef, spec.tls),
        {
          parent: this,
        },
      );
    }

    // The engine's secret files and the members' own (a replica set's key, the replication password), grouped by directory.
    const secretDirs = secretDirectories(spec, [...args.credentials.mountedFiles, ...args.credentials.memberFiles], files);
    const scratchMounts = spec.scratchPaths.map((path, index) => ({ name: scratchVolumeName(index), mountPath: path }));
    const fsGroup = spec.runAs.fsGroup ?? spec.runAs.group;

    // The data, config files and secret files, and the certificate's Secret as a whole directory,
    // so the kubelet refreshes a renewal in place.
    const fileAndDataMounts = [
      { name: DATA_VOLUME, mountPath: spec.dataPath },
      ...fileMounts(CONFIG_VOLUME, engineFiles),
      ...secretDirs.map((directory) => ({ name: directory.volume, mountPath: directory.path, readOnly: true })),
    ];
    const tlsMounts = spec.tls ? [{ name: TLS_VOLUME, mountPath: spec.tls.directory, readOnly: true }] : [];
    // A backup agent beside the engine works on its data, talks to it through its scratch
    // directories (PostgreSQL's socket), serves with its certificate, and reads its own files.
    const agentMounts = [{ name: DATA_VOLUME, mountPath: spec.dataPath }, ...scratchMounts, ...tlsMounts, ...fileMounts(CONFIG_VOLUME, agentFiles)];
    const backupParts = backup
      ? backupMemberParts({
          spec,
          backup: backup.spec,
          store: backup.store,
          path: backup.path,
          secretName: this.secret.metadata.name,
          namespace: args.namespace,
          clusterDomain: args.clusterDomain,
          agentMounts,
        })
      : undefined;
    const container: Container = {
      name: spec.name,
      image: `${spec.image.repository}:${spec.image.tag}`,
      imagePullPolicy: 'IfNotPresent',
      ...(spec.command ? { command: spec.command } : {}),
      ...(spec.args ? { args: spec.args } : {}),
      ports: spec.ports.map((port) => ({ name: port.name, containerPort: port.containerPort, protocol: 'TCP' })),
      // The member's own values first: a variable may expand an earlier one, never a later one.
      env: memberEnv(ha, { workload: spec.name, headlessService: `${spec.name}-headless`, namespace: args.namespace, clusterDomain: args.clusterDomain, selector }).concat(
        Object.entries(spec.env).map(([variable, value]): k8s.types.input.core.v1.EnvVar => {
          if (typeof value === 'string') return { name: variable, value };
          if (!(value.secret in args.credentials.passwords)) {
            throw new Error(`${spec.name}: environment variable ${variable} names an unknown secret ${value.secret}`);
          }
          return { name: variable, valueFrom: { secretKeyRef: { name: this.secret.metadata.name, key: value.secret } } };
        }),
        backupParts?.env ?? [],
      ),
      resources: spec.resources,
      ...healthProbes(
        spec.healthCheck,
        spec.tls?.reload ? readinessWithReload(spec.healthCheck.command, { directory: spec.tls.directory, reload: spec.tls.reload }) : spec.healthCheck.command,
      ),
      securityContext: restrictedContainer({ runAs: spec.runAs, readOnlyRootFilesystem: spec.readOnlyRootFilesystem }),
      volumeMounts: [
        ...fileAndDataMounts,
        ...scratchMounts,
        ...(spec.sharedMemory ? [{ name: SHARED_MEMORY_VOLUME, mountPath: '/dev/shm' }] : []),
        ...tlsMounts,
        // Where the readiness check records the certificate last reloaded; none for an engine that watches its files.
        ...(spec.tls?.reload ? [{ name: TLS_RELOAD_VOLUME, mountPath: RELOAD_STATE_DIRECTORY }] : []),
        ...(backupParts?.engineMounts ?? []),
      ],
    };

    const volumes: k8s.types.input.core.v1.Volume[] = [
      ...(this.configMap ? [{ name: CONFIG_VOLUME, configMap: { name: this.configMap.metadata.name, items: fileItems(files, 0o444) } }] : []),
      ...secretDirs.map((directory) => ({
        name: directory.volume,
        secret: { secretName: this.secret.metadata.name, items: fileItems(directory.files, 0o440, (file) => posix.basename(file.mountPath)) },
      })),
      ...spec.scratchPaths.map((_path, index) => ({ name: scratchVolumeName(index), emptyDir: {} })),
      ...(spec.sharedMemory ? [{ name: SHARED_MEMORY_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: spec.sharedMemory } }] : []),
      // Readable by the engine's group (fsGroup) only: PostgreSQL refuses a key others may read.
      ...(spec.tls ? [{ name: TLS_VOLUME, secret: { secretName: certificateName(spec.name), defaultMode: 0o440 } }] : []),
      ...(spec.tls?.reload ? [{ name: TLS_RELOAD_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }] : []),
      ...(backupParts?.volumes ?? []),
    ];
    // Under workload identity, members that reach the object store themselves run as the backup
    // ServiceAccount (or the HA manager's, which then carries the cloud role's annotations too).
    const memberIdentity =
      backup &&
      backup.store.credentials.kind === 'workloadIdentity' &&
      (backupParts!.env.length > 0 || backupParts!.containers.length > 0 || backupParts!.initContainers.length > 0)
        ? backup.store.credentials.serviceAccountAnnotations
        : undefined;

    const replicated = spec.replicas > 1;
    const statefulSetSpec: StatefulSetSpec = {
      serviceName: this.headlessService.metadata.name,
      replicas: spec.replicas,
      selector: { matchLabels: selector },
      // One member after the other, each once the one before is ready; all at once for a cluster
      // whose members cannot be ready before a quorum of them runs (HighAvailabilitySpec.startInParallel).
      podManagementPolicy: ha?.startInParallel ? 'Parallel' : 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate' },
      revisionHistoryLimit: 5,
      persistentVolumeClaimRetentionPolicy: args.pvcRetention,
      template: {
        metadata: { labels },
        spec: {
          // Only an HA manager talks to the Kubernetes API (below); the engine itself never does.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: spec.runAs.user,
            runAsGroup: spec.runAs.group,
            fsGroup,
            fsGroupChangePolicy: 'OnRootMismatch',
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(memberIdentity && !this.managerAccess ? { serviceAccountName: backupServiceAccountName(spec) } : {}),
          ...(this.managerAccess ? { serviceAccountName: this.managerAccess.serviceAccount.metadata.name, automountServiceAccountToken: true } : {}),
          ...(replicated ? placement(selector, args.environment) : {}),
          ...(backupParts && backupParts.initContainers.length > 0 ? { initContainers: backupParts.initContainers } : {}),
          containers: [container, ...(backupParts?.containers ?? [])],
          volumes,
        },
      },
      volumeClaimTemplates: [
        {
          // volumeClaimTemplates cannot change on a live StatefulSet: no version label here, or an
          // upgrade would force a replacement.
          metadata: { name: DATA_VOLUME, labels: withoutVersion(labels) },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(args.engine.storageClass ? { storageClassName: args.engine.storageClass } : {}),
            resources: { requests: { storage: spec.storage } },
          },
        },
      ],
    };

    // The StorageClasses the stack vouches for as encrypting, for the policy pack's at-rest check,
    // which sees resources but not the stack's config. On the StatefulSet's own metadata, which
    // updates in place: on the volumeClaimTemplates a change of the list would replace the StatefulSet.
    const annotations = args.encryptedStorageClasses.length > 0 ? { annotations: { [ENCRYPTED_STORAGE_CLASSES_ANNOTATION]: args.encryptedStorageClasses.join(',') } } : {};

    // The StatefulSet owns the volume claims: protecting it (and retaining it on delete) is what
    // keeps the data volumes, together with the Retain claim policy.
    this.statefulSet = new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      { metadata: { ...metadata(spec.name), ...annotations }, spec: statefulSetSpec },
      { parent: this, protect: args.protectData, retainOnDelete: args.protectData, dependsOn: this.certificate ? [this.certificate] : [] },
    );

    // One voluntary disruption at a time. With one replica a stricter budget (minAvailable: 1)
    // would block every node drain forever; the engine restarts on another node from its volume.
    this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      { metadata: metadata(spec.name), spec: { maxUnavailable: 1, selector: { matchLabels: selector } } },
      { parent: this },
    );

    this.networkPolicy = new k8s.networking.v1.NetworkPolicy(
      `${name}-ingress`,
      {
        metadata: metadata(`${spec.name}-ingress`),
        spec: {
          podSelector: { matchLabels: selector },
          policyTypes: ['Ingress'],
          ingress: [
            {
              // The engine's clients, its peers (replication, cluster membership), and the members of
              // a companion that connects to them (Sentinel).
              from: [
                ...engineClients(spec.name, args.clientNamespaces, selector),
                ...(described.companions ?? [])
                  .filter((companion) => companion.connectsToEngine)
                  .map((companion) => ({ podSelector: { matchLabels: selectorLabels(companionName(spec, companion), args.instance) } })),
              ],
              ports: described.ports.map((port) => ({ port: port.containerPort, protocol: 'TCP' })),
            },
            // The HA manager's API, or the cluster's own ports: its peers only. None for a cluster
            // whose members talk on the clients' port (Redis, MongoDB): a rule without ports would
            // admit every port.
            ...(ha && ha.ports.length > 0
              ? [{ from: [{ podSelector: { matchLabels: selector } }], ports: ha.ports.map((port) => ({ port: port.containerPort, protocol: 'TCP' })) }]
              : []),
            // The backup agent (pgBackRest's TLS server): the engine's backup jobs only.
            ...(backupParts?.agentPort
              ? [{ from: [{ podSelector: { matchLabels: { [BACKUP_JOB_LABEL]: spec.name } } }], ports: [{ port: backupParts.agentPort, protocol: 'TCP' }] }]
              : []),
          ],
        },
      },
      { parent: this },
    );

    this.host = pulumi.interpolate`${this.service.metadata.name}.${this.service.metadata.namespace}.svc`;
    // Reads go to the replicas when there are any, to the primary otherwise.
    this.readHost =
      this.replicasService && spec.replicas > 1 ? pulumi.interpolate`${this.replicasService.metadata.name}.${this.replicasService.metadata.namespace}.svc` : this.host;

    if (described.pooler) {
      this.pooler = new KubernetesPooler(
        `${name}-${described.pooler.name}`,
        {
          spec,
          pooler: described.pooler,
          namespace: args.namespace,
          instance: args.instance,
          secretName: this.secret.metadata.name,
          files: args.credentials.poolerFiles,
          clientNamespaces: args.clientNamespaces,
          clusterDomain: args.clusterDomain,
          ...(args.issuerRef ? { issuerRef: args.issuerRef } : {}),
        },
        { parent: this, dependsOn: [this.statefulSet] },
      );
    }

    this.companions = (described.companions ?? []).map(
      (companion) =>
        new KubernetesCompanion(
          `${name}-${companion.name}`,
          {
            spec,
            companion,
            namespace: args.namespace,
            instance: args.instance,
            environment: args.environment,
            clientNamespaces: args.clientNamespaces,
            clusterDomain: args.clusterDomain,
            protectData: args.protectData,
            pvcRetention: args.pvcRetention,
            encryptedStorageClasses: args.encryptedStorageClasses,
            secretName: this.secret.metadata.name,
            files: args.credentials.companionFiles[companion.name] ?? [],
            engineSelector: selector,
            ...(args.engine.storageClass ? { storageClass: args.engine.storageClass } : {}),
            ...(args.issuerRef ? { issuerRef: args.issuerRef } : {}),
          },
          { parent: this },
        ),
    );

    this.cronJobs = (spec.scheduledTasks ?? []).map(
      (task) =>
        new k8s.batch.v1.CronJob(
          `${name}-${task.name}`,
          scheduledTaskCronJob({ spec, task, namespace: args.namespace, instance: args.instance, host: this.host, secretName: this.secret.metadata.name }),
          { parent: this, dependsOn: [this.statefulSet] },
        ),
    );
    if (backup) {
      this.backups = new KubernetesBackups(
        `${name}-backup`,
        {
          spec,
          backup: backup.spec,
          store: backup.store,
          path: backup.path,
          namespace: args.namespace,
          instance: args.instance,
          host: this.host,
          secretName: this.secret.metadata.name,
          files: args.credentials.backupFiles,
          clusterDomain: args.clusterDomain,
        },
        { parent: this },
      );
    }
    this.registerOutputs({ host: this.host, port: this.port });
  }
}
