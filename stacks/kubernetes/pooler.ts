/**
 * An engine's connection pooler (`EngineSpec.pooler`, PostgreSQL's PgBouncer) on Kubernetes: a
 * Deployment beside the StatefulSet, its Service, a PodDisruptionBudget and a NetworkPolicy. Its
 * pods carry the engine's client label (so the engine's NetworkPolicy admits them) and admit the
 * engine's clients (the same label). Its configuration in a ConfigMap named by its content (a
 * change rolls the pods), its credentials' files from the engine's Secret (mounted whole, so a
 * rotation reaches them), and on a TLS stack a certificate of its own for its Service's names.
 * Nothing engine-specific: the pooler's description says what to run.
 */
import { posix } from 'node:path';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { TLS_FILES, type EngineSpec, type PoolerSpec } from '../../databases/engine.ts';
import type { StackConfig } from '../config/index.ts';
import { fileKey, type MountedFile } from '../credentials.ts';
import { clientLabel, partLabels, selectorLabels } from '../labels.ts';
import { configMapName, engineClients, healthProbes, restrictedContainer } from './pod-security.ts';
import { certificateArgs, certificateDnsNames, certificateName, readinessWithReloadOf, RELOAD_STATE_DIRECTORY, type IssuerRef } from './tls.ts';

export interface KubernetesPoolerArgs extends Pick<StackConfig, 'clientNamespaces' | 'clusterDomain'> {
  spec: EngineSpec;
  pooler: PoolerSpec;
  namespace: pulumi.Input<string>;
  instance: string;
  /** The engine's Secret, which holds the pooler's files too. */
  secretName: pulumi.Input<string>;
  files: readonly MountedFile[];
  issuerRef?: IssuerRef;
}

/** The pooler's objects' name: `<engine>-<pooler>`. */
export function poolerName(spec: Pick<EngineSpec, 'name'>, pooler: Pick<PoolerSpec, 'name'>): string {
  return `${spec.name}-${pooler.name}`;
}

/** A pooler as a Deployment. Type token `allixios:kubernetes:Pooler`. */
export class KubernetesPooler extends pulumi.ComponentResource {
  readonly configMap: k8s.core.v1.ConfigMap;
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  readonly podDisruptionBudget: k8s.policy.v1.PodDisruptionBudget;
  readonly networkPolicy: k8s.networking.v1.NetworkPolicy;
  readonly certificate?: k8s.apiextensions.CustomResource;
  /** In-cluster host name of its Service. */
  readonly host: pulumi.Output<string>;
  readonly port: number;

  constructor(name: string, args: KubernetesPoolerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('allixios:kubernetes:Pooler', name, {}, opts);
    const { spec, pooler } = args;
    const objectName = poolerName(spec, pooler);
    const selector = selectorLabels(objectName, args.instance);
    const labels = partLabels(objectName, args.instance, 'connection-pooler');
    const metadata = (nameOf: string) => ({ name: nameOf, namespace: args.namespace, labels });
    this.port = pooler.port.containerPort;

    const configs = pooler.configFiles.map((file) => ({ ...file, key: fileKey(file.source), content: file.content ?? '' }));
    this.configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: metadata(configMapName(objectName, configs)), data: Object.fromEntries(configs.map((file) => [file.key, file.content])) },
      { parent: this },
    );

    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      { metadata: metadata(objectName), spec: { selector, ports: [{ name: pooler.port.name, port: this.port, targetPort: pooler.port.name, protocol: 'TCP' }] } },
      { parent: this },
    );

    if (pooler.tls && !args.issuerRef) throw new Error(`${objectName}: the pooler serves TLS but the stack gave it no issuer`);
    if (pooler.tls && args.issuerRef) {
      // Its own certificate: clients verify the pooler's Service name, not the engine's.
      const dnsNames = pulumi.output(args.namespace).apply((namespace) => certificateDnsNames(objectName, objectName, namespace, args.clusterDomain));
      this.certificate = new k8s.apiextensions.CustomResource(`${name}-certificate`, certificateArgs(objectName, metadata(certificateName(objectName)), dnsNames, args.issuerRef), {
        parent: this,
      });
    }

    // The credentials' files, by directory, each directory mounted whole from the engine's Secret.
    const directories = [...new Set(args.files.map((file) => posix.dirname(file.mountPath)))];
    const check = pooler.healthCheck;
    // A rotated password's auth file and a renewed certificate reach the pooler by its reload.
    const watched = [...args.files.map((file) => file.mountPath), ...(pooler.tls ? [`${pooler.tls.directory}/${TLS_FILES.certificate}`] : [])];
    const readiness = pooler.reload && watched.length > 0 ? readinessWithReloadOf(check.command, watched, pooler.reload) : check.command;

    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: metadata(objectName),
        spec: {
          replicas: pooler.replicas,
          selector: { matchLabels: selector },
          // One new pod before an old one goes: the pool sizes leave room for it (pgbouncer.ts).
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
          revisionHistoryLimit: 5,
          template: {
            // The engine's client label: the engine's NetworkPolicy admits the pooler.
            metadata: { labels: { ...labels, [clientLabel(spec.name)]: 'true' } },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: pooler.runAs.user,
                runAsGroup: pooler.runAs.group,
                fsGroup: pooler.runAs.group,
                seccompProfile: { type: 'RuntimeDefault' },
              },
              affinity: {
                podAntiAffinity: {
                  preferredDuringSchedulingIgnoredDuringExecution: [
                    { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } } },
                  ],
                },
              },
              containers: [
                {
                  name: pooler.name,
                  image: `${pooler.image.repository}:${pooler.image.tag}`,
                  imagePullPolicy: 'IfNotPresent',
                  ...(pooler.command ? { command: pooler.command } : {}),
                  ...(pooler.args ? { args: pooler.args } : {}),
                  ports: [{ name: pooler.port.name, containerPort: this.port, protocol: 'TCP' }],
                  resources: pooler.resources,
                  ...healthProbes(check, readiness),
                  securityContext: restrictedContainer(),
                  volumeMounts: [
                    ...configs.map((file) => ({ name: 'config', mountPath: file.mountPath, subPath: file.key, readOnly: true })),
                    ...directories.map((path, index) => ({ name: `secret-files-${index}`, mountPath: path, readOnly: true })),
                    { name: 'tmp', mountPath: '/tmp' },
                    ...(pooler.tls ? [{ name: 'tls', mountPath: pooler.tls.directory, readOnly: true }] : []),
                    ...(readiness !== check.command ? [{ name: 'tls-reload', mountPath: RELOAD_STATE_DIRECTORY }] : []),
                  ],
                },
              ],
              volumes: [
                { name: 'config', configMap: { name: this.configMap.metadata.name } },
                ...directories.map((path, index) => ({
                  name: `secret-files-${index}`,
                  secret: {
                    secretName: args.secretName,
                    items: args.files
                      .filter((file) => posix.dirname(file.mountPath) === path)
                      .map((file) => ({ key: file.key, path: posix.basename(file.mountPath), mode: 0o440 })),
                  },
                })),
                { name: 'tmp', emptyDir: {} },
                ...(pooler.tls ? [{ name: 'tls', secret: { secretName: certificateName(objectName), defaultMode: 0o440 } }] : []),
                ...(readiness !== check.command ? [{ name: 'tls-reload', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }] : []),
              ],
            },
          },
        },
      },
      { parent: this, dependsOn: this.certificate ? [this.certificate] : [] },
    );

    // One pooler pod may go at a time, never the last.
    this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      {
        metadata: metadata(objectName),
        spec: pooler.replicas > 1 ? { minAvailable: 1, selector: { matchLabels: selector } } : { maxUnavailable: 1, selector: { matchLabels: selector } },
      },
      { parent: this },
    );

    this.networkPolicy = new k8s.networking.v1.NetworkPolicy(
      `${name}-ingress`,
      {
        metadata: metadata(`${objectName}-ingress`),
        spec: {
          podSelector: { matchLabels: selector },
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: engineClients(spec.name, args.clientNamespaces),
              ports: [{ port: this.port, protocol: 'TCP' }],
            },
          ],
        },
      },
      { parent: this },
    );

    this.host = pulumi.interpolate`${this.service.metadata.name}.${this.service.metadata.namespace}.svc`;
    this.registerOutputs({ host: this.host, port: this.port });
  }
}
