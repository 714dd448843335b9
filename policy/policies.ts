/**
 * The policies of the Allixios database layer, as plain objects so tests can call their
 * validators directly; `index.ts` puts them into a PolicyPack.
 *
 * Scope: a "database resource" is a Kubernetes object, Docker container or Docker volume labelled
 * `app.kubernetes.io/part-of: allixios` (the program labels everything it creates so). Resources
 * without the label are reported as not applicable. A Docker `RemoteImage` cannot carry labels,
 * so every image the stack pulls is checked.
 *
 * What a policy sees: `args.props` are the resource's inputs with every Pulumi secret already
 * decrypted and unmarked (the SDK unwraps secrets before calling a validator), so no policy can
 * tell a secret input from a plain one; `args.opts` has `protect` but not `retainOnDelete`, which
 * the analyzer protocol does not carry. The README of this folder lists each rule's limits.
 */
import * as docker from '@pulumi/docker';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import {
  validateResourceOfType,
  type PolicyResource,
  type ReportViolation,
  type ResourceValidation,
  type ResourceValidationArgs,
  type ResourceValidationPolicy,
  type StackValidationPolicy,
} from '@pulumi/policy';

export type { PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy };

export const PART_OF_LABEL = 'app.kubernetes.io/part-of';
/** Must equal `PART_OF` in `stacks/labels.ts` (a test holds them together). */
export const PART_OF = 'allixios';
/** Stacks whose data volumes must be protected, unless the policy config says otherwise. */
export const DEFAULT_PROTECTED_STACKS: readonly string[] = ['prod'];

const NOT_A_DATABASE = `not labelled ${PART_OF_LABEL}: ${PART_OF}`;

type ObjectMeta = pulumi.Unwrap<k8s.types.input.meta.v1.ObjectMeta>;
type PodSpec = pulumi.Unwrap<k8s.types.input.core.v1.PodSpec>;
type Container = pulumi.Unwrap<k8s.types.input.core.v1.Container>;
type EnvVar = pulumi.Unwrap<k8s.types.input.core.v1.EnvVar>;
type LabelSelector = pulumi.Unwrap<k8s.types.input.meta.v1.LabelSelector>;
type StatefulSetProps = pulumi.Unwrap<k8s.apps.v1.StatefulSetArgs>;
type NetworkPolicyProps = pulumi.Unwrap<k8s.networking.v1.NetworkPolicyArgs>;
type PodDisruptionBudgetProps = pulumi.Unwrap<k8s.policy.v1.PodDisruptionBudgetArgs>;
/** Docker containers and volumes carry labels as a list. */
type DockerLabels = readonly { label: string; value: string }[] | undefined;

function isDatabaseObject(metadata: ObjectMeta | undefined): boolean {
  return metadata?.labels?.[PART_OF_LABEL] === PART_OF;
}

function hasDatabaseLabel(labels: DockerLabels): boolean {
  return (labels ?? []).some((entry) => entry.label === PART_OF_LABEL && entry.value === PART_OF);
}

function subject(kind: string, metadata: ObjectMeta | undefined, resourceName: string): string {
  return `${kind} "${metadata?.name ?? resourceName}"`;
}

// ---------------------------------------------------------------------------------------------
// Workloads: every Kubernetes kind that carries a pod template.

interface Workload {
  kind: string;
  metadata?: ObjectMeta;
  pod?: PodSpec;
  /** Runs until stopped (StatefulSet, Deployment, ...), as opposed to a Job or a bare Pod. */
  longRunning: boolean;
}

function workloadOf(args: ResourceValidationArgs): Workload | undefined {
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
function runningContainers(pod: PodSpec | undefined): Container[] {
  return [...(pod?.containers ?? []), ...(pod?.initContainers ?? []).filter((container) => container.restartPolicy === 'Always')];
}

function everyContainer(pod: PodSpec | undefined): Container[] {
  return [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])];
}

type WorkloadCheck = (workload: Workload, who: string, report: ReportViolation) => void;

/** Runs `check` on database workloads; `longRunningOnly` leaves out Jobs, CronJobs and Pods. */
function validateDatabaseWorkloads(longRunningOnly: boolean, check: WorkloadCheck): ResourceValidation {
  return (args, reportViolation) => {
    const workload = workloadOf(args);
    if (!workload) return args.notApplicable('not a Kubernetes workload');
    if (longRunningOnly && !workload.longRunning) return args.notApplicable(`a ${workload.kind} is not a long-running workload`);
    if (!isDatabaseObject(workload.metadata)) return args.notApplicable(NOT_A_DATABASE);
    check(workload, subject(workload.kind, workload.metadata, args.name), reportViolation);
  };
}

// ---------------------------------------------------------------------------------------------
// What looks like a secret.

const SECRET_WORDS = new Set(['password', 'passwd', 'pass', 'secret', 'secrets', 'token', 'key', 'apikey', 'credential', 'credentials', 'privatekey']);
const SECRET_LAST_WORDS = new Set(['password', 'passwd', 'pass', 'secret', 'token', 'key', 'apikey', 'credential', 'credentials']);
const CREDENTIAL_SETTINGS = new Set(['password', 'passwd', 'pass', 'secret', 'token', 'requirepass', 'masterauth']);
const CREDENTIAL_SETTING_PAIRS = new Set(['api key', 'private key', 'secret key', 'access key']);

/** The words of a name: `MONGO_INITDB_ROOT_PASSWORD`, `tls.key`, `dbPassword` -> lower-case words. */
function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word.length > 0);
}

/** Run-together names such as `PGPASSWORD` or `authtoken` end in one of these. */
const SECRET_SUFFIXES = ['password', 'passwd', 'secret', 'token'];

function isSecretWord(word: string, exact: ReadonlySet<string>): boolean {
  return exact.has(word) || SECRET_SUFFIXES.some((suffix) => word.endsWith(suffix));
}

/**
 * A ConfigMap key (a file name) looks like a secret when any of its words is password, passwd,
 * pass, secret(s), token, key, apikey, credential(s) or privatekey, or ends in password, passwd,
 * secret or token: `db-password`, `tls.key`, `api-token.json`, `pgpassword`. Not `keyspace.conf`
 * or `tokenizer.json`: whole words only.
 */
export function looksLikeSecretName(name: string): boolean {
  return words(name).some((word) => isSecretWord(word, SECRET_WORDS));
}

/**
 * An environment variable holds a secret when the last word of its name is password, passwd, pass,
 * secret, token, key, apikey or credential(s), or ends in password, passwd, secret or token:
 * `POSTGRES_PASSWORD`, `PGPASSWORD`, `API_KEY`, `dbToken`. Not `POSTGRES_PASSWORD_FILE` (the
 * official images read the secret from the file it names), `PASSWORD_ENCRYPTION` or `TOKEN_TTL`:
 * settings about a secret, not the secret.
 */
export function looksLikeSecretVariable(name: string): boolean {
  return isSecretWord(words(name).at(-1) ?? '', SECRET_LAST_WORDS);
}

/** A config-file setting holds a credential when its name ends in password, token, requirepass, api_key, ... */
function isCredentialSetting(name: string): boolean {
  const settingWords = words(name);
  return isSecretWord(settingWords.at(-1) ?? '', CREDENTIAL_SETTINGS) || CREDENTIAL_SETTING_PAIRS.has(settingWords.slice(-2).join(' '));
}

const COMMENT = /^\s*(#|\/\/|--|;|<!--|\/\*|\*)/;
// `name = value` (conf, ini, shell), `name: value` (YAML, which wants the space after the colon;
// psql's `PASSWORD :'variable'` is a reference, not a YAML key) or `"name": value` (JSON).
const ASSIGNMENT = /^\s*(?:export\s+)?["']?([A-Za-z_][\w.-]*)["']?(?:\s*=\s*|:\s+)(.*?)\s*[;,]?\s*$/;
const REDIS_DIRECTIVE = /^\s*(requirepass|masterauth)\s+(.+?)\s*$/i;
const XML_ELEMENT = /<([A-Za-z_][\w.-]*)>([^<]*)<\/\1>/g;
const SQL_PASSWORD = /\bPASSWORD\s+'([^']*)'/gi;
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/** A value given literally, not a reference (`$VAR`, `${VAR}`) and not empty. */
function isLiteral(raw: string): boolean {
  const value = raw
    .trim()
    .replace(/^(['"])(.*)\1$/, '$2')
    .trim();
  return value !== '' && value !== 'null' && value !== '~' && !value.startsWith('$');
}

/** The settings in a config file that give a credential a literal value, with 1-based line numbers. */
export function literalCredentials(content: string): { line: number; setting: string }[] {
  const found: { line: number; setting: string }[] = [];
  content.split('\n').forEach((text, index) => {
    if (COMMENT.test(text)) return;
    const redis = REDIS_DIRECTIVE.exec(text);
    if (redis && isLiteral(redis[2]!)) {
      found.push({ line: index + 1, setting: redis[1]! });
      return;
    }
    const assignment = ASSIGNMENT.exec(text);
    if (assignment && isCredentialSetting(assignment[1]!) && isLiteral(assignment[2]!)) {
      found.push({ line: index + 1, setting: assignment[1]! });
      return;
    }
    for (const element of text.matchAll(XML_ELEMENT)) {
      if (isCredentialSetting(element[1]!) && isLiteral(element[2]!)) found.push({ line: index + 1, setting: element[1]! });
    }
    for (const statement of text.matchAll(SQL_PASSWORD)) {
      if (isLiteral(statement[1]!)) found.push({ line: index + 1, setting: 'PASSWORD' });
    }
  });
  return found;
}

// ---------------------------------------------------------------------------------------------
// Images.

/**
 * Why an image reference is not pinned, or undefined when it is: a digest pins it whatever its tag
 * says; otherwise it needs a tag other than latest. A Docker image ID (`sha256:<hex>`, what the
 * program gives its Docker containers) reads as repository `sha256` with the ID as tag: pinned.
 */
export function unpinnedImage(image: string | undefined): string | undefined {
  if (!image) return 'names no image';
  const [name = '', digest] = image.split('@');
  if (digest) return undefined;
  const lastSegment = name.slice(name.lastIndexOf('/') + 1);
  const colon = lastSegment.indexOf(':');
  const tag = colon < 0 ? '' : lastSegment.slice(colon + 1);
  if (tag === '') return `image "${image}" has no tag (which means latest); pin a version tag or a digest`;
  if (tag.toLowerCase() === 'latest') return `image "${image}" uses the floating tag latest; pin a version tag or a digest`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Mandatory resource policies.

export const noExposedDatabaseServices: ResourceValidationPolicy = {
  name: 'database-service-not-exposed',
  description: 'Database Services are reachable inside the cluster only: no LoadBalancer or NodePort.',
  enforcementLevel: 'mandatory',
  validateResource: validateResourceOfType(k8s.core.v1.Service, (service, args, reportViolation) => {
    if (!isDatabaseObject(service.metadata)) return args.notApplicable(NOT_A_DATABASE);
    const type = service.spec?.type;
    if (type === 'LoadBalancer' || type === 'NodePort') {
      reportViolation(
        `${subject('Service', service.metadata, args.name)} is of type ${type}, which exposes the database outside the cluster; ` +
          'use ClusterIP and connect from client pods or through kubectl port-forward',
      );
    }
  }),
};

const RESOURCE_FIELDS = [
  ['requests', 'cpu'],
  ['requests', 'memory'],
  ['limits', 'cpu'],
  ['limits', 'memory'],
] as const;

export const containerResources: ResourceValidationPolicy = {
  name: 'database-container-resources',
  description: 'Every database container has CPU and memory requests and limits.',
  enforcementLevel: 'mandatory',
  validateResource: validateDatabaseWorkloads(true, (workload, who, reportViolation) => {
    for (const container of runningContainers(workload.pod)) {
      const missing = RESOURCE_FIELDS.filter(([kind, resource]) => container.resources?.[kind]?.[resource] === undefined).map(
        ([kind, resource]) => `resources.${kind}.${resource}`,
      );
      if (missing.length > 0) reportViolation(`${who}: container "${container.name}" has no ${missing.join(', ')}`);
    }
  }),
};

const PROBES = ['startupProbe', 'readinessProbe', 'livenessProbe'] as const;

export const containerProbes: ResourceValidationPolicy = {
  name: 'database-container-probes',
  description: 'Every database container has a startup, a readiness and a liveness probe.',
  enforcementLevel: 'mandatory',
  validateResource: validateDatabaseWorkloads(true, (workload, who, reportViolation) => {
    for (const container of runningContainers(workload.pod)) {
      const missing = PROBES.filter((probe) => container[probe] === undefined);
      if (missing.length > 0) reportViolation(`${who}: container "${container.name}" has no ${missing.join(', ')}`);
    }
  }),
};

export const containerNonRoot: ResourceValidationPolicy = {
  name: 'database-container-non-root',
  description: 'Every database container runs as non-root (runAsNonRoot on the pod or the container) and cannot escalate privileges.',
  enforcementLevel: 'mandatory',
  validateResource: validateDatabaseWorkloads(true, (workload, who, reportViolation) => {
    const podRunsAsNonRoot = workload.pod?.securityContext?.runAsNonRoot;
    for (const container of runningContainers(workload.pod)) {
      const context = container.securityContext;
      if (context?.allowPrivilegeEscalation !== false) {
        reportViolation(`${who}: container "${container.name}" does not set securityContext.allowPrivilegeEscalation: false`);
      }
      if ((context?.runAsNonRoot ?? podRunsAsNonRoot) !== true) {
        reportViolation(`${who}: container "${container.name}" may run as root; set securityContext.runAsNonRoot: true on the container or the pod`);
      }
    }
  }),
};

function envSourceOf(variable: EnvVar): string | undefined {
  const source = variable.valueFrom;
  if (!source) return undefined;
  return Object.keys(source).find((key) => source[key as keyof typeof source] !== undefined);
}

export const noSecretEnvValues: ResourceValidationPolicy = {
  name: 'database-env-secrets-from-secret',
  description: 'Environment variables named like a secret (password, secret, token, key, ...) take their value from a Secret (valueFrom.secretKeyRef).',
  enforcementLevel: 'mandatory',
  validateResource: validateDatabaseWorkloads(false, (workload, who, reportViolation) => {
    for (const container of everyContainer(workload.pod)) {
      for (const variable of container.env ?? []) {
        if (!looksLikeSecretVariable(variable.name)) continue;
        const source = envSourceOf(variable);
        if (source === 'secretKeyRef') continue;
        if (source !== undefined) {
          reportViolation(`${who}: container "${container.name}" reads env ${variable.name} from ${source}; use valueFrom.secretKeyRef`);
        } else if (variable.value !== undefined && variable.value !== '') {
          reportViolation(`${who}: container "${container.name}" sets env ${variable.name} to a plain value; use valueFrom.secretKeyRef`);
        }
      }
    }
  }),
};

export const noSecretsInConfigMaps: ResourceValidationPolicy = {
  name: 'database-configmap-no-secrets',
  description: 'Database ConfigMaps hold no secrets: no key named like a secret, no PEM private key, no credential setting with a literal value.',
  enforcementLevel: 'mandatory',
  validateResource: validateResourceOfType(k8s.core.v1.ConfigMap, (configMap, args, reportViolation) => {
    if (!isDatabaseObject(configMap.metadata)) return args.notApplicable(NOT_A_DATABASE);
    const who = subject('ConfigMap', configMap.metadata, args.name);
    const keys = [...Object.keys(configMap.data ?? {}), ...Object.keys(configMap.binaryData ?? {})];
    for (const key of keys) {
      if (looksLikeSecretName(key)) reportViolation(`${who}: key "${key}" is named like a secret; put it in a Secret`);
    }
    for (const [key, content] of Object.entries(configMap.data ?? {})) {
      if (PEM_PRIVATE_KEY.test(content)) reportViolation(`${who}: key "${key}" holds a PEM private key; put it in a Secret`);
      for (const { line, setting } of literalCredentials(content)) {
        reportViolation(`${who}: key "${key}", line ${line} gives ${setting} a literal value; read it from a Secret (env or mounted file)`);
      }
    }
  }),
};

export const statefulSetVolumeClaims: ResourceValidationPolicy = {
  name: 'database-statefulset-volume-claims',
  description: 'Every database StatefulSet keeps its data on volume claims with a storage request.',
  enforcementLevel: 'mandatory',
  validateResource: validateResourceOfType(k8s.apps.v1.StatefulSet, (statefulSet, args, reportViolation) => {
    if (!isDatabaseObject(statefulSet.metadata)) return args.notApplicable(NOT_A_DATABASE);
    const who = subject('StatefulSet', statefulSet.metadata, args.name);
    const templates = statefulSet.spec?.volumeClaimTemplates ?? [];
    if (templates.length === 0) {
      reportViolation(`${who} has no volumeClaimTemplates, so its data does not outlive the pod`);
      return;
    }
    templates.forEach((template, index) => {
      if (template.spec?.resources?.requests?.storage === undefined) {
        reportViolation(`${who}: volumeClaimTemplate "${template.metadata?.name ?? index}" has no spec.resources.requests.storage`);
      }
    });
  }),
};

/** Policy config of {@link prodDataProtected}. */
export interface DataProtectionConfig {
  /** Stacks whose data volumes must be protected; default {@link DEFAULT_PROTECTED_STACKS}. */
  protectedStacks?: string[];
}

const PVC_RETENTION_FIELDS = ['whenDeleted', 'whenScaled'] as const;

/**
 * In the protected stacks (`prod` unless configured), every database StatefulSet is `protect`ed and
 * keeps its volume claims (`persistentVolumeClaimRetentionPolicy` Retain, which is also Kubernetes'
 * default when unset), and every database Docker volume is `protect`ed. `retainOnDelete` cannot be
 * checked: the analyzer protocol does not pass it to policies.
 *
 * @param currentStack the stack being deployed; the Pulumi CLI gives policy packs the stack's name.
 */
export function prodDataProtected(currentStack: () => string = () => pulumi.getStack()): ResourceValidationPolicy {
  const protectedStack = (args: ResourceValidationArgs): string | undefined => {
    const stack = currentStack();
    const stacks = args.getConfig<DataProtectionConfig>().protectedStacks ?? DEFAULT_PROTECTED_STACKS;
    return stacks.includes(stack) ? stack : undefined;
  };
  return {
    name: 'database-data-protected',
    description: 'In protected stacks (prod), database StatefulSets and data volumes are protected and their volume claims retained.',
    enforcementLevel: 'mandatory',
    configSchema: {
      properties: {
        protectedStacks: { type: 'array', items: { type: 'string' }, default: [...DEFAULT_PROTECTED_STACKS] },
      },
    },
    validateResource: (args, reportViolation) => {
      const statefulSet = args.asType(k8s.apps.v1.StatefulSet);
      const volume = args.asType(docker.Volume);
      if (!statefulSet && !volume) return args.notApplicable('not a StatefulSet or a Docker volume');
      if (statefulSet ? !isDatabaseObject(statefulSet.metadata) : !hasDatabaseLabel(volume?.labels)) {
        return args.notApplicable(NOT_A_DATABASE);
      }
      const stack = protectedStack(args);
      if (stack === undefined) return args.notApplicable(`stack ${currentStack()} is not a protected stack`);
      if (volume) {
        if (!args.opts.protect) {
          reportViolation(`Volume "${volume.name ?? args.name}" is not protected: stack ${stack} requires protect: true on every data volume`);
        }
        return;
      }
      const who = subject('StatefulSet', statefulSet?.metadata, args.name);
      if (!args.opts.protect) {
        reportViolation(`${who} is not protected: stack ${stack} requires protect: true on every StatefulSet, which owns the data volumes`);
      }
      const retention = statefulSet?.spec?.persistentVolumeClaimRetentionPolicy;
      for (const field of PVC_RETENTION_FIELDS) {
        const value = retention?.[field] ?? 'Retain';
        if (value !== 'Retain') {
          reportViolation(`${who}: persistentVolumeClaimRetentionPolicy.${field} is ${value}; stack ${stack} requires Retain`);
        }
      }
    },
  };
}

export const pinnedImages: ResourceValidationPolicy = {
  name: 'pinned-images',
  description: 'Every image is pinned to a version tag or a digest: no latest, no missing tag.',
  enforcementLevel: 'mandatory',
  validateResource: (args, reportViolation) => {
    const remoteImage = args.asType(docker.RemoteImage);
    if (remoteImage) {
      const problem = unpinnedImage(remoteImage.name);
      if (problem) reportViolation(`RemoteImage "${args.name}": ${problem}`);
      return;
    }
    const container = args.asType(docker.Container);
    if (container) {
      if (!hasDatabaseLabel(container.labels)) return args.notApplicable(NOT_A_DATABASE);
      const problem = unpinnedImage(container.image);
      if (problem) reportViolation(`Container "${container.name ?? args.name}": ${problem}`);
      return;
    }
    const workload = workloadOf(args);
    if (!workload) return args.notApplicable('not a workload, container or image');
    if (!isDatabaseObject(workload.metadata)) return args.notApplicable(NOT_A_DATABASE);
    const who = subject(workload.kind, workload.metadata, args.name);
    for (const podContainer of everyContainer(workload.pod)) {
      const problem = unpinnedImage(podContainer.image);
      if (problem) reportViolation(`${who}: container "${podContainer.name}" ${problem}`);
    }
  },
};

// ---------------------------------------------------------------------------------------------
// Advisory stack policies.

/** Kubernetes label selector semantics; an empty selector selects everything, none selects nothing. */
export function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const matchLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const matchExpressions = (selector.matchExpressions ?? []).every((requirement) => {
    const value = labels[requirement.key];
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case 'In':
        return value !== undefined && values.includes(value);
      case 'NotIn':
        return value === undefined || !values.includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
      default:
        return false;
    }
  });
  return matchLabels && matchExpressions;
}

interface DatabasePods {
  resource: PolicyResource;
  who: string;
  namespace?: string;
  podLabels: Record<string, string>;
}

function databaseStatefulSets(resources: PolicyResource[]): DatabasePods[] {
  return resources
    .filter((resource) => resource.isType(k8s.apps.v1.StatefulSet))
    .map((resource) => ({ resource, props: resource.props as StatefulSetProps }))
    .filter(({ props }) => isDatabaseObject(props.metadata))
    .map(({ resource, props }) => ({
      resource,
      who: `${subject('StatefulSet', props.metadata, resource.name)}${props.metadata?.namespace ? ` in namespace ${props.metadata.namespace}` : ''}`,
      namespace: props.metadata?.namespace,
      podLabels: props.spec?.template?.metadata?.labels ?? {},
    }));
}

/** A NetworkPolicy restricts ingress when it lists Ingress in policyTypes, or lists none (the default). */
function restrictsIngress(policy: NetworkPolicyProps): boolean {
  const types = policy.spec?.policyTypes;
  return types === undefined || types.length === 0 || types.includes('Ingress');
}

export const networkPolicyCoverage: StackValidationPolicy = {
  name: 'database-network-policy',
  description: "Every database StatefulSet's pods are selected by a NetworkPolicy that restricts ingress.",
  enforcementLevel: 'advisory',
  validateStack: (args, reportViolation) => {
    const policies = args.resources
      .filter((resource) => resource.isType(k8s.networking.v1.NetworkPolicy))
      .map((resource) => resource.props as NetworkPolicyProps)
      .filter(restrictsIngress);
    for (const statefulSet of databaseStatefulSets(args.resources)) {
      const covered = policies.some((policy) => policy.metadata?.namespace === statefulSet.namespace && selects(policy.spec?.podSelector, statefulSet.podLabels));
      if (!covered) {
        reportViolation(`${statefulSet.who}: no NetworkPolicy restricting ingress selects its pods, so any pod in the cluster can connect to the engine`, statefulSet.resource.urn);
      }
    }
  },
};

export const podDisruptionBudgetCoverage: StackValidationPolicy = {
  name: 'database-pod-disruption-budget',
  description: "Every database StatefulSet's pods are selected by a PodDisruptionBudget.",
  enforcementLevel: 'advisory',
  validateStack: (args, reportViolation) => {
    const budgets = args.resources.filter((resource) => resource.isType(k8s.policy.v1.PodDisruptionBudget)).map((resource) => resource.props as PodDisruptionBudgetProps);
    for (const statefulSet of databaseStatefulSets(args.resources)) {
      const covered = budgets.some((budget) => budget.metadata?.namespace === statefulSet.namespace && selects(budget.spec?.selector, statefulSet.podLabels));
      if (!covered) {
        reportViolation(`${statefulSet.who}: no PodDisruptionBudget selects its pods, so voluntary disruptions such as node drains are not limited`, statefulSet.resource.urn);
      }
    }
  },
};

/** Every policy of the pack, in the order the CLI reports them. */
export function databasePolicies(options: { currentStack?: () => string } = {}): (ResourceValidationPolicy | StackValidationPolicy)[] {
  return [
    noExposedDatabaseServices,
    containerResources,
    containerProbes,
    containerNonRoot,
    noSecretEnvValues,
    noSecretsInConfigMaps,
    statefulSetVolumeClaims,
    prodDataProtected(options.currentStack),
    pinnedImages,
    networkPolicyCoverage,
    podDisruptionBudgetCoverage,
  ];
}
