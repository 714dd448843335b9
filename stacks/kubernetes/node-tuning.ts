/**
 * Kernel settings some engine needs on its nodes (`EngineSpec.nodeSysctls`, Elasticsearch's
 * `vm.max_map_count` with `maxMapCount: daemonSet`), set on every node by a privileged DaemonSet in
 * a namespace of its own. Node-wide settings can only be written by a privileged container, and a
 * privileged pod in the engines' namespace would lower that namespace's Pod Security level for all
 * five engines: here only this namespace admits `privileged`, and it runs nothing else. Each pod
 * sets the values in an init container, then idles (the pause image), so a node that joins the
 * cluster later gets them too.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { NodeSysctl } from '../../databases/engine.ts';
import { partLabels } from '../labels.ts';

/** Pinned images: the init container writes with sysctl, the main one idles. */
export const SYSCTL_IMAGE = 'busybox:1.37.0';
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';

export interface NodeTuningArgs {
  /** `<engines' namespace>-node-tuning`. */
  namespace: string;
  instance: string;
  /** Every engine's node settings, deduplicated by name. */
  sysctls: readonly NodeSysctl[];
}

/** Type token `allixios:kubernetes:NodeTuning`. */
export class NodeTuning extends pulumi.ComponentResource {
  readonly namespace: k8s.core.v1.Namespace;
  readonly daemonSet: k8s.apps.v1.DaemonSet;

  constructor(name: string, args: NodeTuningArgs, opts?: pulumi.ComponentResourceOptions) {
    super('allixios:kubernetes:NodeTuning', name, {}, opts);
    const labels = partLabels('node-tuning', args.instance, 'node-tuning');
    this.namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: args.namespace,
          labels: {
            ...labels,
            // The one place privileged pods are admitted: the DaemonSet below, nothing else.
            'pod-security.kubernetes.io/enforce': 'privileged',
            'pod-security.kubernetes.io/warn': 'privileged',
            'pod-security.kubernetes.io/audit': 'privileged',
          },
          annotations: {
            'allixios.io/why': `a privileged DaemonSet sets ${args.sysctls.map((sysctl) => sysctl.name).join(', ')} on every node; the engines' namespace stays restricted`,
          },
        },
      },
      { parent: this },
    );
    const selector = { 'app.kubernetes.io/name': 'node-tuning', 'app.kubernetes.io/instance': args.instance };
    this.daemonSet = new k8s.apps.v1.DaemonSet(
      `${name}-daemonset`,
      {
        metadata: { name: 'node-tuning', namespace: this.namespace.metadata.name, labels },
        spec: {
          selector: { matchLabels: selector },
          updateStrategy: { type: 'RollingUpdate' },
          template: {
            metadata: { labels },
            spec: {
              automountServiceAccountToken: false,
              // Every node an engine may land on, tainted ones included.
              tolerations: [{ operator: 'Exists' }],
              priorityClassName: 'system-node-critical',
              initContainers: [
                {
                  name: 'sysctl',
                  image: SYSCTL_IMAGE,
                  command: ['sysctl', '-w', ...args.sysctls.map((sysctl) => `${sysctl.name}=${sysctl.value}`)],
                  securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false },
                  resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
                },
              ],
              containers: [
                {
                  name: 'pause',
                  image: PAUSE_IMAGE,
                  securityContext: {
                    runAsNonRoot: true,
                    runAsUser: 65535,
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ['ALL'] },
                    seccompProfile: { type: 'RuntimeDefault' },
                  },
                  resources: { requests: { cpu: '5m', memory: '8Mi' }, limits: { cpu: '20m', memory: '16Mi' } },
                },
              ],
            },
          },
        },
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
