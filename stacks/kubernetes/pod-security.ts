/**
 * What every container and pod of the stack gets, whatever it runs (engines, poolers, scheduled
 * tasks, the bootstrap): the Pod Security `restricted` profile, and the ingress of an engine's
 * clients. One place, so a workload added later cannot forget a line of it.
 */
import { createHash } from 'node:crypto';
import type * as k8s from '@pulumi/kubernetes';
import type { HealthCheck } from '../../databases/engine.ts';
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

/**
 * A container's probes from its health check. Startup covers initdb and first boot, liveness the
 * rest of the pod's life: both ask whether the process is alive (starting and recovering count), so
 * neither restarts one that is busy replaying or loading. Readiness asks whether it serves, and
 * gates traffic; `readiness` replaces its command (a check that also reloads a renewed certificate).
 */
export function healthProbes(
  check: HealthCheck,
  readiness: string[] = check.command,
): Pick<k8s.types.input.core.v1.Container, 'startupProbe' | 'readinessProbe' | 'livenessProbe'> {
  const alive = check.liveCommand ?? check.command;
  const probe = (command: string[], periodSeconds: number, failureThreshold: number) => ({
    exec: { command },
    periodSeconds,
    timeoutSeconds: check.timeoutSeconds,
    failureThreshold,
  });
  return {
    startupProbe: probe(alive, check.intervalSeconds, Math.ceil(check.startupSeconds / check.intervalSeconds)),
    readinessProbe: probe(readiness, check.intervalSeconds, 3),
    livenessProbe: probe(alive, check.intervalSeconds * 2, check.failureThreshold),
  };
}

/**
 * The name of a workload's ConfigMap, `<name>-config-<hash of its files>`: a change of the files
 * creates a new ConfigMap and so rolls the pods, and the old one is deleted only once the new one
 * is in use.
 */
export function configMapName(name: string, files: ReadonlyArray<{ key: string; content: string }>): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file.key}\0${file.content}\0`);
  return `${name}-config-${hash.digest('hex').slice(0, 10)}`;
}
