/**
 * The Kubernetes target (stacks `staging`, `prod`, ephemeral): a namespace and each enabled engine
 * as a StatefulSet with its Services, Secret, ConfigMap, PodDisruptionBudget and NetworkPolicy.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from '../config.ts';
import { EngineCredentials } from '../credentials.ts';
import type { Endpoints } from '../endpoints.ts';
import { PART_OF } from '../labels.ts';
import { KubernetesEngine } from './engine.ts';

export interface KubernetesDatabasesArgs {
  config: StackConfig;
}

/**
 * Pod Security Admission level for the namespace: `restricted` unless an engine needs the
 * privileged sysctl init container, which only the `privileged` level admits. Warnings and audit
 * stay at `restricted` so anything else that drifts is still reported.
 */
export function podSecurityLevel(config: StackConfig): 'restricted' | 'privileged' {
  return config.engines.some((engine) => engine.spec.nodeSysctls.length > 0) ? 'privileged' : 'restricted';
}

/** All engines of a stack on Kubernetes. Type token `allixios:kubernetes:Databases`. */
export class KubernetesDatabases extends pulumi.ComponentResource {
  readonly namespace: k8s.core.v1.Namespace;
  readonly engines: readonly KubernetesEngine[];
  readonly endpoints: Endpoints;

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
            'pod-security.kubernetes.io/enforce': podSecurityLevel(config),
            'pod-security.kubernetes.io/warn': 'restricted',
            'pod-security.kubernetes.io/audit': 'restricted',
          },
        },
      },
      { parent: this, protect: config.protectData, retainOnDelete: config.protectData },
    );

    const endpoints: Endpoints = {};
    this.engines = config.engines.map((engine) => {
      const { spec } = engine;
      const credentials = new EngineCredentials(`${name}-${spec.name}-credentials`, { engine }, { parent: this });
      const kubernetesEngine = new KubernetesEngine(
        `${name}-${spec.name}`,
        {
          engine,
          credentials,
          namespace: this.namespace.metadata.name,
          instance,
          protectData: config.protectData,
          pvcRetention: config.pvcRetention,
          clientNamespaces: config.clientNamespaces,
        },
        { parent: this },
      );
      // The host resolves once the StatefulSet is ready: Pulumi awaits its readiness.
      const host = pulumi.all([kubernetesEngine.host, kubernetesEngine.statefulSet.metadata.name]).apply(([resolved]) => resolved);
      endpoints[spec.name] = {
        host,
        port: kubernetesEngine.port,
        urlVariable: engine.module.urlVariable,
        url: credentials.url(spec.appConnection, host, kubernetesEngine.port),
        adminUrl: credentials.url(spec.adminConnection, host, kubernetesEngine.port),
        bootstrapEnv: credentials.bootstrapEnv(),
      };
      return kubernetesEngine;
    });
    this.endpoints = endpoints;
    this.registerOutputs({});
  }
}
