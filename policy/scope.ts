/**
 * Which resources are the database layer's, and the pods they run: a "database resource" is a
 * Kubernetes object, Docker container or Docker volume labelled `app.kubernetes.io/part-of:
 * allixios` (the program labels everything it creates so). Resources without the label are reported
 * as not applicable.
 */
import * as k8s from '@pulumi/kubernetes';
import type * as pulumi from '@pulumi/pulumi';
import type { PolicyConfigSchema, ReportViolation, ResourceValidation, ResourceValidationArgs } from '@pulumi/policy';

export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
/** Must equal `PART_OF` in `stacks/labels.ts` (a test holds them together). */
export const PART_OF = 'allixios';

export const NOT_A_DATABASE = `not labelled ${PART_OF_LABEL}: ${PART_OF}`;

type ObjectMeta = pulumi.Unwrap<k8s.types.input.meta.v1.ObjectMeta>;
type PodSpec = pulumi.Unwrap<k8s.types.input.core.v1.PodSpec>;
type Container = pulumi.Unwrap<k8s.types.input.core.v1.Container>;
/** Docker containers and volumes carry labels as a list. */
type DockerLabels = readonly { label: string; value: string }[] | undefined;

/** Stacks whose data must be protected (and encrypted at rest), unless a policy's config says otherwise. */
export const DEFAULT_PROTECTED_STACKS: readonly string[] = ['prod'];

/** Policy config of the policies that apply to the protected stacks only. */
export interface ProtectedStacksConfig {
  /** Stacks the policy applies to; default {@link DEFAULT_PROTECTED_STACKS}. */
  protectedStacks?: string[];
}

export const PROTECTED_STACKS_SCHEMA: PolicyConfigSchema = {
  properties: {
    protectedStacks: { type: 'array', items: { type: 'string' }, default: [...DEFAULT_PROTECTED_STACKS] },
  },
};

/**
 * The stack being deployed when the policy's config counts it as protected, else undefined. The
 * Pulumi CLI gives a policy pack the stack's name (`PULUMI_NODEJS_STACK`, read by
 * `pulumi.getStack()`), as it does a program.
 */
export function protectedStackOf(args: Pick<ResourceValidationArgs, 'getConfig'>, currentStack: () => string): string | undefined {
  const stack = currentStack();
  const stacks = args.getConfig<ProtectedStacksConfig>().protectedStacks ?? DEFAULT_PROTECTED_STACKS;
  return stacks.includes(stack) ? stack : undefined;
}

export function isDatabaseObject(metadata: ObjectMeta | undefined): boolean {
  return metadata?.labels?.[PART_OF_LABEL] === PART_OF;
}

export function hasDatabaseLabel(labels: DockerLabels): boolean {
  return (labels ?? []).some((entry) => entry.label === PART_OF_LABEL && entry.value === PART_OF);
}

export function subject(kind: string, metadata: ObjectMeta | undefined, resourceName: string): string {
  return `${kind} "${metadata?.name ?? resourceName}"`;
}

// ---------------------------------------------------------------------------------------------
// Workloads: every Kubernetes kind that carries a pod template.

export interface Workload {
  kind: string;
  metadata?: ObjectMeta;
  pod?: PodSpec;
  /** Runs until stopped (StatefulSet, Deployment, ...), as opposed to a Job or a bare Pod. */
  longRunning: boolean;
}

export function workloadOf(args: ResourceValidationArgs): Workload | undefined {
  const statefulSet = args.asType(k8s.apps.v1.StatefulSet);
  if (statefulSet) return { kind: 'StatefulSet', metadata: statefulSet.metadata, pod: statefulSet.spec?.template?.spec, longRunning: true };
  const deployment = args.asType(k8s.apps.v1.Deployment);
  if (deployment) return { kind: 'Deployment', metadata: deployment.metadata, pod: deployment.spec?.template?.spec, longRunning: true };
  const daemonSet = args.asType(k8s.apps.v1.DaemonSet);
  if (daemonSet) return { kind: 'DaemonSet', metadata: daemonSet.metadata, pod: daemonSet.spec?.template?.spec, longRunning: true };
  const replicaSet = args.asType(k8s.apps.v1.ReplicaSet);
  if (replicaSet) return { kind: 'ReplicaSet', metadata: replicaSet.metadata, pod: replicaSet.spec?.template?.spec, longRunning: true };
  const job = args.asType(k8s.batch.v1.Job);
  if (job) return { kind: 'Job', metadata: job.metadata, pod: job.spec?.template?.spec, longRunning: false };
  const cronJob = args.asType(k8s.batch.v1.CronJob);
  if (cronJob) return { kind: 'CronJob', metadata: cronJob.metadata, pod: cronJob.spec?.jobTemplate?.spec?.template?.spec, longRunning: false };
  const pod = args.asType(k8s.core.v1.Pod);
  if (pod) return { kind: 'Pod', metadata: pod.metadata, pod: pod.spec, longRunning: false };
  return undefined;
}

/**
 * The engine's own containers: `containers` and native sidecars (init containers with
 * `restartPolicy: Always`). Run-to-completion init containers are left out: Elasticsearch's sysctl
 * init container must be privileged, and init containers take no probes.
 */
export function runningContainers(pod: PodSpec | undefined): Container[] {
  return [...(pod?.containers ?? []), ...(pod?.initContainers ?? []).filter((container) => container.restartPolicy === 'Always')];
}

export function everyContainer(pod: PodSpec | undefined): Container[] {
  return [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])];
}

export type WorkloadCheck = (workload: Workload, who: string, report: ReportViolation) => void;

/** Runs `check` on database workloads; `longRunningOnly` leaves out Jobs, CronJobs and Pods. */
export function validateDatabaseWorkloads(longRunningOnly: boolean, check: WorkloadCheck): ResourceValidation {
  return (args, reportViolation) => {
    const workload = workloadOf(args);
    if (!workload) return args.notApplicable('not a Kubernetes workload');
    if (longRunningOnly && !workload.longRunning) return args.notApplicable(`a ${workload.kind} is not a long-running workload`);
    if (!isDatabaseObject(workload.metadata)) return args.notApplicable(NOT_A_DATABASE);
    check(workload, subject(workload.kind, workload.metadata, args.name), reportViolation);
  };
}
