/**
 * The mandatory per-resource policies: exposure, container hardening, secrets in env vars and
 * ConfigMaps, volume claims, protected prod data, pinned images.
 *
 * What a policy sees: `args.props` are the resource's inputs with every Pulumi secret already
 * decrypted and unmarked (the SDK unwraps secrets before calling a validator), so no policy can
 * tell a secret input from a plain one; `args.opts` has `protect` but not `retainOnDelete`, which
 * the analyzer protocol does not carry. A Docker `RemoteImage` cannot carry labels, so every image
 * the stack pulls is checked.
 */
import * as docker from '@pulumi/docker';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { validateResourceOfType, type ResourceValidationPolicy } from '@pulumi/policy';
import {
  everyContainer,
  hasDatabaseLabel,
  isDatabaseObject,
  NOT_A_DATABASE,
  PROTECTED_STACKS_SCHEMA,
  protectedStackOf,
  runningContainers,
  subject,
  validateDatabaseWorkloads,
  workloadOf,
  type ProtectedStacksConfig,
} from './scope.ts';
import { literalCredentials, looksLikeSecretName, looksLikeSecretVariable, namesKeyFile, PEM_PRIVATE_KEY } from './secrets.ts';

type EnvVar = pulumi.Unwrap<k8s.types.input.core.v1.EnvVar>;

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
        } else if (variable.value !== undefined && variable.value !== '' && !namesKeyFile(variable.value)) {
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

/** Policy config of {@link prodDataProtected}: the stacks whose data volumes must be protected. */
export type DataProtectionConfig = ProtectedStacksConfig;

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
  return {
    name: 'database-data-protected',
    description: 'In protected stacks (prod), database StatefulSets and data volumes are protected and their volume claims retained.',
    enforcementLevel: 'mandatory',
    configSchema: PROTECTED_STACKS_SCHEMA,
    validateResource: (args, reportViolation) => {
      const statefulSet = args.asType(k8s.apps.v1.StatefulSet);
      const volume = args.asType(docker.Volume);
      if (!statefulSet && !volume) return args.notApplicable('not a StatefulSet or a Docker volume');
      if (statefulSet ? !isDatabaseObject(statefulSet.metadata) : !hasDatabaseLabel(volume?.labels)) {
        return args.notApplicable(NOT_A_DATABASE);
      }
      const stack = protectedStackOf(args, currentStack);
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
