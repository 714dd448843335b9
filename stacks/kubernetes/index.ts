/**
 * The Kubernetes target (stacks `staging`, `prod`, ephemeral): a namespace and each enabled engine
 * as a StatefulSet with its Services, Secret, ConfigMap, PodDisruptionBudget and NetworkPolicy.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from '../config/index.ts';
import { EngineCredentials } from '../credentials.ts';
import type { Endpoints } from '../endpoints.ts';
import { PART_OF } from '../labels.ts';
import type { NodeSysctl } from '../../databases/engine.ts';
import { companionClientSettings } from './companion.ts';
import { KubernetesEngine } from './engine.ts';
import { clusterConnections } from './high-availability.ts';
import { NodeTuning } from './node-tuning.ts';
import { KubernetesTls } from './tls.ts';

export interface KubernetesDatabasesArgs {
  config: StackConfig;
}

/** The node settings of every engine, once each (a node-wide setting has one value). */
function nodeSysctls(config: StackConfig): NodeSysctl[] {
  const byName = new Map<string, NodeSysctl>();
  for (const engine of config.engines) for (const sysctl of engine.spec.nodeSysctls) byName.set(sysctl.name, sysctl);
  return [...byName.values()];
}

/** All engines of a stack on Kubernetes. Type token `allixios:kubernetes:Databases`. */
export class KubernetesDatabases extends pulumi.ComponentResource {
  readonly namespace: k8s.core.v1.Namespace;
  /** Only when an engine asks for node settings (Elasticsearch's `maxMapCount: daemonSet`). */
  readonly nodeTuning?: NodeTuning;
  readonly engines: readonly KubernetesEngine[];
  readonly endpoints: Endpoints;
  /** Each engine's passwords, in the order of `engines`. */
  readonly credentials: readonly EngineCredentials[];
  /** The issuer and CA bundle, when the stack serves TLS. */
  readonly tls?: KubernetesTls;

  constructor(name: string, args: KubernetesDatabasesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('allixios:kubernetes:Databases', name, {}, opts);
    const { config } = args;
    const instance = `${config.project}-${config.stack}`;

    this.namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: config.namespace,
          labels: {
            'app.kubernetes.io/part-of': PART_OF,
            'app.kubernetes.io/instance': instance,
            'app.kubernetes.io/managed-by': 'pulumi',
            // Pod Security Admission's strictest level, enforced: no engine pod is privileged,
            // runs as root, keeps capabilities or escapes its seccomp profile.
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/warn': 'restricted',
            'pod-security.kubernetes.io/audit': 'restricted',
          },
          annotations: {
            'allixios.io/pod-security':
              'restricted (Pod Security Standards): every engine runs unprivileged, as non-root, without capabilities; node settings an engine needs are met outside this namespace',
          },
        },
      },
      { parent: this, protect: config.protectData, retainOnDelete: config.protectData },
    );

    const sysctls = nodeSysctls(config);
    if (sysctls.length > 0) {
      this.nodeTuning = new NodeTuning(`${name}-node-tuning`, { namespace: `${config.namespace}-node-tuning`, instance, sysctls }, { parent: this });
    }

    if (config.tls.enabled) {
      this.tls = new KubernetesTls(
        `${name}-tls`,
        { namespace: this.namespace.metadata.name, instance, ...(config.tls.issuer ? { issuer: config.tls.issuer } : {}) },
        { parent: this },
      );
    }

    const endpoints: Endpoints = {};
    const allCredentials: EngineCredentials[] = [];
    this.engines = config.engines.map((engine) => {
      // The URLs as clients of the members use them (MongoDB's replicaSet=rs0).
      const spec = clusterConnections(engine.spec);
      const credentials = new EngineCredentials(`${name}-${spec.name}-credentials`, { engine }, { parent: this });
      allCredentials.push(credentials);
      const kubernetesEngine = new KubernetesEngine(
        `${name}-${spec.name}`,
        {
          engine,
          credentials,
          namespace: this.namespace.metadata.name,
          instance,
          environment: config.environment,
          protectData: config.protectData,
          pvcRetention: config.pvcRetention,
          clientNamespaces: config.clientNamespaces,
          encryptedStorageClasses: config.encryptedStorageClasses,
          clusterDomain: config.clusterDomain,
          backups: config.backups,
          ...(this.tls ? { issuerRef: this.tls.issuerRef } : {}),
        },
        { parent: this },
      );
      // The host resolves once the StatefulSet is ready: Pulumi awaits its readiness.
      const host = pulumi.all([kubernetesEngine.host, kubernetesEngine.statefulSet.metadata.name]).apply(([resolved]) => resolved);
      endpoints[spec.name] = {
        host,
        port: kubernetesEngine.port,
        urlVariable: engine.module.urlVariable,
        // The application's connection through the pooler when the engine has one (it carries it).
        url:
          kubernetesEngine.pooler && spec.pooler?.carries.includes('app')
            ? credentials.url(
                spec.appConnection,
                pulumi.all([kubernetesEngine.pooler.host, kubernetesEngine.pooler.deployment.metadata.name]).apply(([resolved]) => resolved),
                kubernetesEngine.pooler.port,
              )
            : credentials.url(spec.appConnection, host, kubernetesEngine.port),
        adminUrl: credentials.url(spec.adminConnection, host, kubernetesEngine.port),
        bootstrapEnv: credentials.bootstrapEnv(spec, engine.module.urlVariable, host, kubernetesEngine.port),
        // Resolved once the companions' StatefulSets are (Pulumi awaits their readiness).
        settings: Object.fromEntries(
          Object.entries(companionClientSettings(spec, config.namespace, config.clusterDomain)).map(([variable, value]) => [
            variable,
            pulumi.all(kubernetesEngine.companions.map((companion) => companion.statefulSet.metadata.name)).apply(() => value),
          ]),
        ),
        ...(engine.module.readUrlVariable
          ? {
              readUrl: {
                variable: engine.module.readUrlVariable,
                url: credentials.url(
                  spec.appConnection,
                  pulumi.all([kubernetesEngine.readHost, kubernetesEngine.statefulSet.metadata.name]).apply(([resolved]) => resolved),
                  kubernetesEngine.port,
                ),
              },
            }
          : {}),
      };
      return kubernetesEngine;
    });
    this.endpoints = endpoints;
    this.credentials = allCredentials;
    this.registerOutputs({});
  }
}
