/**
 * The key order of rendered documents, for reviewers: what an object is before what it holds.
 * Pulumi hands the render every object with its keys sorted, which puts a ConfigMap's `data`
 * before its `kind` and a container's `env` before its `name`. Each rule below applies to the
 * objects under one key (for a list, to its items): its `first` keys in that order, then the keys
 * it does not name in alphabetical order, then its `last` keys (long or nested parts). Every
 * object without a rule of its own puts `name` first. The same input always gives the same order.
 */

interface KeyOrder {
  first?: readonly string[];
  last?: readonly string[];
}

/** The rule of the document itself (a Kubernetes object, or one Docker resource). */
export const DOCUMENT = '';

const CONTAINER: KeyOrder = {
  first: ['name', 'image', 'imagePullPolicy', 'command', 'args', 'workingDir', 'ports', 'env', 'envFrom', 'resources'],
  last: ['startupProbe', 'readinessProbe', 'livenessProbe', 'securityContext', 'volumeMounts'],
};

/** Rules by the key an object sits under; `spec` serves every kind (their fields do not clash). */
const KEY_ORDER: Readonly<Record<string, KeyOrder>> = {
  [DOCUMENT]: { first: ['apiVersion', 'kind', 'metadata'], last: ['spec', 'status', 'data', 'binaryData', 'stringData'] },
  metadata: { first: ['name', 'generateName', 'namespace', 'labels', 'annotations'] },
  spec: {
    first: ['type', 'clusterIP', 'publishNotReadyAddresses', 'serviceName', 'replicas', 'podSelector', 'policyTypes', 'selector', 'ports'],
    // Pod settings before the containers; a workload's own settings before its pod template.
    last: ['initContainers', 'containers', 'volumes', 'template', 'volumeClaimTemplates', 'ingress', 'egress'],
  },
  template: { first: ['metadata', 'spec'] },
  containers: CONTAINER,
  initContainers: CONTAINER,
  env: { first: ['name', 'value', 'valueFrom'] },
  ports: { first: ['name', 'containerPort', 'port', 'targetPort', 'internal', 'external', 'ip', 'protocol'] },
  volumeMounts: { first: ['name', 'mountPath', 'subPath', 'readOnly'] },
  volumes: { first: ['name', 'volumeName', 'containerPath'] },
  items: { first: ['key', 'path', 'mode'] },
  secretKeyRef: { first: ['name', 'key'] },
  configMapKeyRef: { first: ['name', 'key'] },
  ingress: { first: ['from', 'ports'] },
  matchExpressions: { first: ['key', 'operator', 'values'] },
  // Docker resources, under their kind in an engine's file.
  container: {
    first: ['name', 'image', 'hostname', 'user', 'entrypoints', 'command', 'envs', 'ports', 'networksAdvanced', 'volumes'],
    last: ['healthcheck', 'labels', 'uploads'],
  },
  image: { first: ['imageName', 'build'] },
  labels: { first: ['label', 'value'] },
  uploads: { first: ['file', 'owner', 'group', 'permissions', 'content'] },
};

const DEFAULT_ORDER: KeyOrder = { first: ['name'] };

function orderedKeys(keys: readonly string[], rule: KeyOrder): string[] {
  const first = (rule.first ?? []).filter((key) => keys.includes(key));
  const last = (rule.last ?? []).filter((key) => keys.includes(key) && !first.includes(key));
  const rest = keys.filter((key) => !first.includes(key) && !last.includes(key)).sort();
  return [...first, ...rest, ...last];
}

/**
 * `value` with every object's keys in review order. `under` is the key the value sits under
 * ({@link DOCUMENT} for a document; a Docker resource's kind, `container`, for one of its parts).
 * Objects are rebuilt in that order (a key that reads as an array index would still come first
 * in JavaScript; Kubernetes and Docker inputs have none).
 */
export function orderKeys(value: unknown, under: string = DOCUMENT): unknown {
  if (Array.isArray(value)) return value.map((item) => orderKeys(item, under));
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  const rule = KEY_ORDER[under] ?? DEFAULT_ORDER;
  return Object.fromEntries(orderedKeys(Object.keys(record), rule).map((key) => [key, orderKeys(record[key], key)]));
}
