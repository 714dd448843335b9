/**
 * What every container and pod of the stack gets, whatever it runs (engines, poolers, scheduled
 * tasks, the bootstrap): the Pod Security `restricted` profile, and the ingress of an engine's
 * clients. One place, so a workload added later cannot forget a line of it.
 */
import type * as k8s from '@pulumi/kubernetes';
import { BOOTSTRAP_POD_LABELS, clientLabel } from '../labels.ts';

type SecurityContext = k8s.types.input.core.v1.SecurityContext;
type NetworkPolicyPeer = k8s.types.input.networking.v1.NetworkPolicyPeer;

/** A container that runs as non-root, gains nothing and writes only its volumes (`readOnlyRootFilesystem` unless told). */
export function restrictedContainer(options: { readOnlyRootFilesystem?: boolean; runAs?: { user: number; group: number } } = {}): SecurityContext {
  return {
    runAsNonRoot: true,
    ...(options.runAs ? { runAsUser: options.runAs.user, runAsGroup: options.runAs.group } : {}),
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: options.readOnlyRootFilesystem ?? true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * A run-to-completion pod (a Job's, a CronJob's) that runs as `runAs`, holds no API token and
 * sees no Service variables.
 */
export function restrictedJobPod(runAs: {
  user: number;
  group: number;
}): Pick<k8s.types.input.core.v1.PodSpec, 'restartPolicy' | 'automountServiceAccountToken' | 'enableServiceLinks' | 'securityContext'> {
  return {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: { runAsNonRoot: true, runAsUser: runAs.user, runAsGroup: runAs.group, seccompProfile: { type: 'RuntimeDefault' } },
  };
}

/**
 * Who may connect to an engine (or its pooler): pods labelled as its clients in the stack's
 * namespace and in `clientNamespaces`, the bootstrap's pods, and the engine's own members
 * (`peers`: replication, cluster membership).
 */
export function engineClients(engine: string, clientNamespaces: readonly string[], peers?: Record<string, string>): NetworkPolicyPeer[] {
  const clientPods = { matchLabels: { [clientLabel(engine)]: 'true' } };
  return [
    { podSelector: clientPods },
    { podSelector: { matchLabels: { ...BOOTSTRAP_POD_LABELS } } },
    ...(peers ? [{ podSelector: { matchLabels: peers } }] : []),
    ...(clientNamespaces.length
      ? [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [...clientNamespaces] }] }, podSelector: clientPods }]
      : []),
  ];
}
