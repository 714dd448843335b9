/**
 * A workload beside an engine's members (`EngineSpec.companions`: Redis's Sentinels, ClickHouse
 * Keeper) on Kubernetes: a StatefulSet of its members, a headless Service (their stable DNS
 * names), a Service over the ready ones, a PodDisruptionBudget that keeps a majority, a
 * NetworkPolicy that admits each port's audience and nothing else, and on a TLS stack a
 * certificate for its names. Nothing engine-specific: the companion's description says what to run.
 */
import { posix } from 'node:path';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { CompanionAudience, CompanionSpec, EngineSpec } from '../../databases/engine.ts';
import type { StackConfig } from '../config/index.ts';
import { fileKey, type MountedFile } from '../credentials.ts';
import { ENCRYPTED_STORAGE_CLASSES_ANNOTATION, partLabels, selectorLabels } from '../labels.ts';
import { memberEnv, placement } from './high-availability.ts';
import { configMapName, engineClients, healthProbes, restrictedContainer } from './pod-security.ts';
import { certificateArgs, certificateDnsNames, certificateName, readinessWithReload, RELOAD_STATE_DIRECTORY, type IssuerRef } from './tls.ts';

type NetworkPolicyPeer = k8s.types.input.networking.v1.NetworkPolicyPeer;

export interface KubernetesCompanionArgs extends Pick<
  StackConfig,
  'environment' | 'clientNamespaces' | 'clusterDomain' | 'protectData' | 'pvcRetention' | 'encryptedStorageClasses'
> {
  spec: EngineSpec;
  companion: CompanionSpec;
  namespace: pulumi.Input<string>;
  instance: string;
  /** The engine's Secret, which holds the companion's files too. */
  secretName: pulumi.Input<string>;
  files: readonly MountedFile[];
  /** The labels selecting the engine's members (the `engine` audience). */
  engineSelector: Record<string, string>;
  storageClass?: string;
  issuerRef?: IssuerRef;
}

/** The companion's objects' name: `<engine>-<companion>`. */
export function companionName(spec: Pick<EngineSpec, 'name'>, companion: Pick<CompanionSpec, 'name'>): string {
  return `${spec.name}-${companion.name}`;
}

/** The companion's headless Service, under which each member has its DNS name. */
export function companionHeadlessName(spec: Pick<EngineSpec, 'name'>, companion: Pick<CompanionSpec, 'name'>): string {
  return `${companionName(spec, companion)}-headless`;
}

/**
 * How many members may be away at once with a majority left: 1 of 3, 2 of 5; none of 1 or 2
 * would leave a majority, yet a budget of 0 blocks every node drain forever, so one member may
 * go there too (it comes back on another node).
 */
export function companionMaxUnavailable(replicas: number): number {
  return Math.max(1, Math.floor((replicas - 1) / 2));
}

/**
 * The members' addresses on the main port, `host:port` each, in ordinal order: the names their
 * certificate carries.
 */
export function companionAddresses(spec: Pick<EngineSpec, 'name'>, companion: CompanionSpec, namespace: string, clusterDomain: string): string[] {
  const name = companionName(spec, companion);
  const headless = companionHeadlessName(spec, companion);
  return Array.from({ length: companion.replicas }, (_, ordinal) => `${name}-${ordinal}.${headless}.${namespace}.svc.${clusterDomain}:${companion.ports[0]!.containerPort}`);
}

/** A companion as a StatefulSet. Type token `allixios:kubernetes:Companion`. */
export class KubernetesCompanion extends pulumi.ComponentResource {
  readonly configMap?: k8s.core.v1.ConfigMap;
  readonly headlessService: k8s.core.v1.Service;
  readonly service: k8s.core.v1.Service;
  readonly statefulSet: k8s.apps.v1.StatefulSet;
  readonly podDisruptionBudget: k8s.policy.v1.PodDisruptionBudget;
  readonly networkPolicy: k8s.networking.v1.NetworkPolicy;
  readonly certificate?: k8s.apiextensions.CustomResource;
  /** The members' addresses on the main port (`host:port`), for the engine's clients. */
  readonly addresses: pulumi.Output<string[]>;

  constructor(name: string, args: KubernetesCompanionArgs, opts?: pulumi.ComponentResourceOptions) {
    super('allixios:kubernetes:Companion', name, {}, opts);
    const { spec, companion } = args;
    const objectName = companionName(spec, companion);
    const headlessName = companionHeadlessName(spec, companion);
    const selector = selectorLabels(objectName, args.instance);
    const labels = { ...partLabels(objectName, args.instance, companion.component), 'app.kubernetes.io/version': companion.image.tag };
    const metadata = (nameOf: string) => ({ name: nameOf, namespace: args.namespace, labels });
    if (companion.ports.length === 0) throw new Error(`${objectName}: a companion needs at least one port`);

    const configs = companion.configFiles.map((file) => ({ ...file, key: fileKey(file.source), content: file.content ?? '' }));
    if (configs.length > 0) {
      this.configMap = new k8s.core.v1.ConfigMap(
        `${name}-config`,
        { metadata: metadata(configMapName(objectName, configs)), data: Object.fromEntries(configs.map((file) => [file.key, file.content])) },
        { parent: this },
      );
    }

    const servicePort = (port: { name: string; containerPort: number }) => ({ name: port.name, port: port.containerPort, targetPort: port.name, protocol: 'TCP' });
    this.headlessService = new k8s.core.v1.Service(
      `${name}-headless`,
      { metadata: metadata(headlessName), spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector, ports: companion.ports.map(servicePort) } },
      { parent: this },
    );
    const clientPorts = companion.ports.filter((port) => port.from.includes('clients'));
    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      { metadata: metadata(objectName), spec: { selector, ports: (clientPorts.length > 0 ? clientPorts : companion.ports).map(servicePort) } },
      { parent: this },
    );

    if (companion.tls && !args.issuerRef) throw new Error(`${objectName}: the companion serves TLS but the stack gave it no issuer`);
    if (companion.tls && args.issuerRef) {
      const dnsNames = pulumi.output(args.namespace).apply((namespace) => certificateDnsNames(objectName, headlessName, namespace, args.clusterDomain));
      this.certificate = new k8s.apiextensions.CustomResource(`${name}-certificate`, certificateArgs(objectName, metadata(certificateName(objectName)), dnsNames, args.issuerRef), {
        parent: this,
      });
    }

    const directories = [...new Set(args.files.map((file) => posix.dirname(file.mountPath)))];
    for (const directory of directories) {
      const inside = configs.find((config) => config.mountPath.startsWith(`${directory}/`));
      if (inside)
        throw new Error(`${objectName}: the config file ${inside.source} is mounted inside ${directory}, the directory of its secret files; give them a directory of their own`);
    }
    const check = companion.healthCheck;
    const readiness = companion.tls?.reload ? readinessWithReload(check.command, { directory: companion.tls.directory, reload: companion.tls.reload }) : check.command;

    const container: k8s.types.input.core.v1.Container = {
      name: companion.name,
      image: `${companion.image.repository}:${companion.image.tag}`,
      imagePullPolicy: 'IfNotPresent',
      ...(companion.command ? { command: companion.command } : {}),
      ...(companion.args ? { args: companion.args } : {}),
      ports: companion.ports.map((port) => ({ name: port.name, containerPort: port.containerPort, protocol: 'TCP' })),
      // The member's own values first: a literal may expand an earlier one (`$(NAME)`).
      env: memberEnv(companion, { workload: objectName, headlessService: headlessName, namespace: args.namespace, clusterDomain: args.clusterDomain, selector }).concat(
        Object.entries(companion.env).map(([variable, value]): k8s.types.input.core.v1.EnvVar => {
          if (typeof value === 'string') return { name: variable, value };
          return { name: variable, valueFrom: { secretKeyRef: { name: args.secretName, key: value.secret } } };
        }),
      ),
      resources: companion.resources,
      ...healthProbes(check, readiness),
      securityContext: restrictedContainer({ runAs: companion.runAs }),
      volumeMounts: [
        ...configs.map((file) => ({ name: 'config', mountPath: file.mountPath, subPath: file.key, readOnly: true })),
        ...directories.map((path, index) => ({ name: `secret-files-${index}`, mountPath: path, readOnly: true })),
        ...companion.scratch.map((scratch, index) => ({ name: `scratch-${index}`, mountPath: scratch.path })),
        ...(companion.volume ? [{ name: 'data', mountPath: companion.volume.path }] : []),
        ...(companion.tls ? [{ name: 'tls', mountPath: companion.tls.directory, readOnly: true }] : []),
        ...(readiness !== check.command ? [{ name: 'tls-reload', mountPath: RELOAD_STATE_DIRECTORY }] : []),
      ],
    };

    const volumes: k8s.types.input.core.v1.Volume[] = [
      ...(this.configMap
        ? [
            {
              name: 'config',
              configMap: { name: this.configMap.metadata.name, items: configs.map((file) => ({ key: file.key, path: file.key, mode: file.executable ? 0o555 : 0o444 })) },
            },
          ]
        : []),
      ...directories.map((path, index) => ({
        name: `secret-files-${index}`,
        secret: {
          secretName: args.secretName,
          items: args.files.filter((file) => posix.dirname(file.mountPath) === path).map((file) => ({ key: file.key, path: posix.basename(file.mountPath), mode: 0o440 })),
        },
      })),
      ...companion.scratch.map((scratch, index) => ({
        name: `scratch-${index}`,
        emptyDir: { ...(scratch.memory ? { medium: 'Memory' } : {}), ...(scratch.sizeLimit ? { sizeLimit: scratch.sizeLimit } : {}) },
      })),
      ...(companion.tls ? [{ name: 'tls', secret: { secretName: certificateName(objectName), defaultMode: 0o440 } }] : []),
      ...(readiness !== check.command ? [{ name: 'tls-reload', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }] : []),
    ];

    // As on the engine's StatefulSet: the StorageClasses the stack vouches for, for the policy pack.
    const annotations =
      companion.volume && args.encryptedStorageClasses.length > 0 ? { annotations: { [ENCRYPTED_STORAGE_CLASSES_ANNOTATION]: args.encryptedStorageClasses.join(',') } } : {};
    this.statefulSet = new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: { ...metadata(objectName), ...annotations },
        spec: {
          serviceName: this.headlessService.metadata.name,
          replicas: companion.replicas,
          selector: { matchLabels: selector },
          podManagementPolicy: companion.parallel ? 'Parallel' : 'OrderedReady',
          updateStrategy: { type: 'RollingUpdate' },
          revisionHistoryLimit: 5,
          ...(companion.volume ? { persistentVolumeClaimRetentionPolicy: args.pvcRetention } : {}),
          template: {
            metadata: { labels },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              terminationGracePeriodSeconds: companion.terminationGracePeriodSeconds,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: companion.runAs.user,
                runAsGroup: companion.runAs.group,
                fsGroup: companion.runAs.group,
                fsGroupChangePolicy: 'OnRootMismatch',
                seccompProfile: { type: 'RuntimeDefault' },
              },
              // A node lost costs one member of the companion, as of the engine.
              ...(companion.replicas > 1 ? placement(selector, args.environment) : {}),
              containers: [container],
              volumes,
            },
          },
          ...(companion.volume
            ? {
                volumeClaimTemplates: [
                  {
                    metadata: { name: 'data', labels: Object.fromEntries(Object.entries(labels).filter(([key]) => key !== 'app.kubernetes.io/version')) },
                    spec: {
                      accessModes: ['ReadWriteOnce'],
                      ...(args.storageClass ? { storageClassName: args.storageClass } : {}),
                      resources: { requests: { storage: companion.volume.size } },
                    },
                  },
                ],
              }
            : {}),
        },
      },
      {
        parent: this,
        dependsOn: this.certificate ? [this.certificate] : [],
        ...(companion.volume ? { protect: args.protectData, retainOnDelete: args.protectData } : {}),
      },
    );

    // A majority stays through voluntary disruptions (drains, upgrades).
    this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      { metadata: metadata(objectName), spec: { maxUnavailable: companionMaxUnavailable(companion.replicas), selector: { matchLabels: selector } } },
      { parent: this },
    );

    const peers = (audience: CompanionAudience): NetworkPolicyPeer[] => {
      switch (audience) {
        case 'peers':
          return [{ podSelector: { matchLabels: selector } }];
        case 'engine':
          return [{ podSelector: { matchLabels: args.engineSelector } }];
        default:
          return engineClients(spec.name, args.clientNamespaces);
      }
    };
    this.networkPolicy = new k8s.networking.v1.NetworkPolicy(
      `${name}-ingress`,
      {
        metadata: metadata(`${objectName}-ingress`),
        spec: {
          podSelector: { matchLabels: selector },
          policyTypes: ['Ingress'],
          ingress: companion.ports.map((port) => ({ from: port.from.flatMap(peers), ports: [{ port: port.containerPort, protocol: 'TCP' }] })),
        },
      },
      { parent: this },
    );

    this.addresses = pulumi.all([args.namespace, this.statefulSet.metadata.name]).apply(([namespace]) => companionAddresses(spec, companion, namespace, args.clusterDomain));
    this.registerOutputs({ addresses: this.addresses });
  }
}

/**
 * What the stack tells the engine's clients about its companions (`CompanionSpec.clientSettings`):
 * by variable, the members' addresses joined by commas and the literal settings. Not secret.
 */
export function companionClientSettings(spec: Pick<EngineSpec, 'name' | 'companions'>, namespace: string, clusterDomain: string): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const companion of spec.companions ?? []) {
    if (!companion.clientSettings) continue;
    settings[companion.clientSettings.addressesVariable] = companionAddresses(spec, companion, namespace, clusterDomain).join(',');
    Object.assign(settings, companion.clientSettings.variables);
  }
  return settings;
}
