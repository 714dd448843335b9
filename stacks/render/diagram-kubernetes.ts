/**
 * The diagram of a Kubernetes stack: each namespace, the workloads (engines' StatefulSets, the
 * bootstrap Job) grouped by the file they are rendered to, their Services, and three kinds of
 * edges: a NetworkPolicy's ingress rule (source -> workload, its ports), a Service selecting
 * pods, and a workload's connection URL naming a Service (the bootstrap's `DATABASE_URL`, ...).
 */
import { selects, type LabelSelector } from '../../policy/label-selector.ts';
import { compare, Graph, idOf, type Group } from './flowchart.ts';

type Labels = Record<string, string>;

interface KubernetesObject {
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Labels };
  spec?: Record<string, unknown>;
}

interface PodTemplate {
  metadata?: { labels?: Labels };
  spec?: { containers?: Array<{ name?: string; image?: string; env?: Array<{ name?: string; value?: unknown }> }> };
}

interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr?: string; except?: string[] };
}

interface NetworkPolicyRule {
  from?: NetworkPolicyPeer[];
  ports?: Array<{ port?: number | string; protocol?: string; endPort?: number }>;
}

/** `a=b, c in (d, e)`; `everything` for an empty selector. */
function describeSelector(selector: LabelSelector): string {
  const terms = [
    ...Object.entries(selector.matchLabels ?? {})
      .sort(([a], [b]) => compare(a, b))
      .map(([key, value]) => `${key}=${value}`),
    ...(selector.matchExpressions ?? []).map(({ key, operator, values = [] }) => {
      if (operator === 'Exists') return key;
      if (operator === 'DoesNotExist') return `!${key}`;
      return `${key} ${operator.toLowerCase()} (${values.join(', ')})`;
    }),
  ];
  return terms.length > 0 ? terms.join(', ') : 'everything';
}

/** Namespaces a selector names by `kubernetes.io/metadata.name` alone, or undefined. */
function namespaceNames(selector: LabelSelector): string[] | undefined {
  const expressions = selector.matchExpressions ?? [];
  const labels = Object.keys(selector.matchLabels ?? {});
  if (labels.length === 1 && labels[0] === 'kubernetes.io/metadata.name' && expressions.length === 0) return [selector.matchLabels!['kubernetes.io/metadata.name']!];
  if (labels.length === 0 && expressions.length === 1 && expressions[0]!.key === 'kubernetes.io/metadata.name' && expressions[0]!.operator === 'In') {
    return [...(expressions[0]!.values ?? [])].sort(compare);
  }
  return undefined;
}

function portsOf(rule: NetworkPolicyRule): string {
  if (!rule.ports?.length) return 'all ports';
  return rule.ports.map((port) => `${port.port ?? 'any'}${port.endPort ? `-${port.endPort}` : ''}/${port.protocol ?? 'TCP'}`).join(', ');
}

const POD_TEMPLATE_KINDS = new Set(['StatefulSet', 'Deployment', 'DaemonSet', 'ReplicaSet', 'Job']);

interface Workload {
  object: KubernetesObject;
  namespace: string;
  podLabels: Labels;
  template: PodTemplate;
  id: string;
}

function describeWorkload(object: KubernetesObject, template: PodTemplate): string[] {
  const spec = object.spec ?? {};
  const images = [...new Set((template.spec?.containers ?? []).map((container) => container.image).filter((image): image is string => typeof image === 'string'))];
  const lines = [`${object.kind} ${object.metadata?.name}`, ...images];
  if (typeof spec.replicas === 'number') lines.push(`${spec.replicas} replica${spec.replicas === 1 ? '' : 's'}`);
  const claims = (spec.volumeClaimTemplates ?? []) as Array<{
    metadata?: { name?: string };
    spec?: { storageClassName?: string; resources?: { requests?: { storage?: string } } };
  }>;
  for (const claim of claims) {
    const size = claim.spec?.resources?.requests?.storage;
    lines.push(`volume ${claim.metadata?.name}: ${[size, claim.spec?.storageClassName].filter(Boolean).join(' ')}`);
  }
  return lines;
}

/** A value that is a URL with a host (`scheme://user@host:port/...`), parsed. */
function parsedUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return undefined;
  try {
    const url = new URL(value);
    return url.hostname ? url : undefined;
  } catch {
    return undefined;
  }
}

export function kubernetesGraph(files: Record<string, unknown[]>): Graph {
  const graph = new Graph();
  const objects = Object.entries(files)
    .sort(([a], [b]) => compare(a, b))
    .flatMap(([file, documents]) => documents.map((document) => ({ file: file.replace(/\.[a-z]+$/, ''), object: document as KubernetesObject })));

  const namespaces = new Map<string, Labels>();
  for (const { object } of objects) {
    if (object.kind === 'Namespace' && object.metadata?.name) namespaces.set(object.metadata.name, object.metadata.labels ?? {});
  }
  const namespaceGroup = (namespace: string): Group => {
    const level = namespaces.get(namespace)?.['pod-security.kubernetes.io/enforce'];
    return { id: idOf('ns', namespace), title: `namespace ${namespace}${level ? ` · Pod Security ${level}` : ''}` };
  };
  // A file's objects in a subgraph of their own where it holds more than one node (an engine's).
  const nodeCount = new Map<string, number>();
  for (const { file, object } of objects) {
    if (POD_TEMPLATE_KINDS.has(object.kind ?? '') || object.kind === 'Service') nodeCount.set(file, (nodeCount.get(file) ?? 0) + 1);
  }
  const groupsOf = (namespace: string, file: string): Group[] =>
    (nodeCount.get(file) ?? 0) > 1 ? [namespaceGroup(namespace), { id: idOf('grp', namespace, file), title: file }] : [namespaceGroup(namespace)];

  const workloads: Workload[] = [];
  for (const { file, object } of objects) {
    if (!POD_TEMPLATE_KINDS.has(object.kind ?? '')) continue;
    const namespace = object.metadata?.namespace ?? 'default';
    const template = (object.spec?.template ?? {}) as PodTemplate;
    const id = graph.node({
      id: idOf(object.kind!.toLowerCase(), namespace, object.metadata?.name ?? ''),
      lines: describeWorkload(object, template),
      shape: object.spec?.volumeClaimTemplates ? 'cylinder' : object.kind === 'Job' ? 'subroutine' : 'box',
      groups: groupsOf(namespace, file),
    });
    workloads.push({ object, namespace, podLabels: template.metadata?.labels ?? {}, template, id });
  }

  const services = new Map<string, string>();
  for (const { file, object } of objects) {
    if (object.kind !== 'Service') continue;
    const namespace = object.metadata?.namespace ?? 'default';
    const name = object.metadata?.name ?? '';
    const spec = (object.spec ?? {}) as { type?: string; clusterIP?: string; selector?: Labels; ports?: Array<{ name?: string; port?: number; targetPort?: number | string }> };
    const type = spec.clusterIP === 'None' ? 'headless' : (spec.type ?? 'ClusterIP');
    const id = graph.node({
      id: idOf('svc', namespace, name),
      lines: [
        `Service ${name} · ${type}`,
        ...(spec.ports ?? []).map((port) => `${port.port}${port.targetPort !== undefined && port.targetPort !== port.port ? ` → ${port.targetPort}` : ''}`),
      ],
      shape: 'stadium',
      groups: groupsOf(namespace, file),
    });
    services.set(`${namespace}/${name}`, id);
    if (spec.selector) {
      for (const workload of workloads) {
        if (workload.namespace === namespace && selects({ matchLabels: spec.selector }, workload.podLabels)) graph.edge({ from: id, to: workload.id, kind: 'selects' });
      }
    }
  }

  // Connections: a container's variable whose value is a URL naming a Service (`<service>`,
  // `<service>.<namespace>`, `<service>.<namespace>.svc[.cluster.local]`).
  for (const workload of workloads) {
    const variables = new Map<string, { service: string; names: string[]; ports: Set<string> }>();
    for (const container of workload.template.spec?.containers ?? []) {
      for (const variable of container.env ?? []) {
        const url = parsedUrl(variable.value);
        if (!url || !variable.name) continue;
        const [service = '', namespace = workload.namespace] = url.hostname.split('.');
        const target = services.get(`${namespace}/${service}`);
        if (!target) continue;
        const entry = variables.get(target) ?? { service, names: [], ports: new Set<string>() };
        entry.names.push(variable.name);
        if (url.port) entry.ports.add(url.port);
        variables.set(target, entry);
      }
    }
    for (const [target, { service, names, ports }] of variables) {
      graph.edge({ from: workload.id, to: target, kind: 'connects', label: names.join(', ') });
      graph.connections.push({
        from: `${workload.object.kind} ${workload.object.metadata?.name}`,
        to: `Service ${service}`,
        ports: [...ports].join(', '),
        why: `its URL: ${names.join(', ')}`,
      });
    }
  }

  // Who may connect: each NetworkPolicy ingress rule, one edge per source.
  for (const { object } of objects) {
    if (object.kind !== 'NetworkPolicy') continue;
    const namespace = object.metadata?.namespace ?? 'default';
    const policyName = object.metadata?.name ?? '';
    const spec = (object.spec ?? {}) as { podSelector?: LabelSelector; ingress?: NetworkPolicyRule[] };
    const targets = workloads.filter((workload) => workload.namespace === namespace && selects(spec.podSelector ?? {}, workload.podLabels));
    const targetIds =
      targets.length > 0
        ? targets.map((target) => target.id)
        : [
            graph.node({
              id: idOf('pods', namespace, describeSelector(spec.podSelector ?? {})),
              lines: [`pods with ${describeSelector(spec.podSelector ?? {})}`],
              shape: 'external',
              groups: [namespaceGroup(namespace)],
            }),
          ];
    const targetName = targets.map((target) => `${target.object.kind} ${target.object.metadata?.name}`).join(', ') || `pods with ${describeSelector(spec.podSelector ?? {})}`;
    for (const rule of spec.ingress ?? []) {
      const ports = portsOf(rule);
      const peers = rule.from?.length ? rule.from : [undefined];
      for (const peer of peers) {
        const { ids, text } = peerNodes(graph, peer, namespace, workloads, namespaces, namespaceGroup);
        for (const id of ids) for (const target of targetIds) graph.edge({ from: id, to: target, kind: 'policy', label: ports });
        graph.connections.push({ from: text, to: targetName, ports, why: `NetworkPolicy ${policyName}` });
      }
    }
  }
  return graph;
}

/** The nodes a NetworkPolicy peer stands for: the rendered workloads it selects, or a node of its own. */
function peerNodes(
  graph: Graph,
  peer: NetworkPolicyPeer | undefined,
  namespace: string,
  workloads: readonly Workload[],
  namespaces: ReadonlyMap<string, Labels>,
  namespaceGroup: (namespace: string) => Group,
): { ids: string[]; text: string } {
  if (!peer) {
    return { ids: [graph.node({ id: 'any_source', lines: ['any source'], shape: 'external', groups: [] })], text: 'any source' };
  }
  if (peer.ipBlock) {
    const text = `addresses ${peer.ipBlock.cidr ?? ''}${peer.ipBlock.except?.length ? ` except ${peer.ipBlock.except.join(', ')}` : ''}`;
    return { ids: [graph.node({ id: idOf('ip', text), lines: [text], shape: 'external', groups: [] })], text };
  }
  const pods = peer.podSelector ?? {};
  const inNamespace = (candidate: string) => {
    if (!peer.namespaceSelector) return candidate === namespace;
    const labels = { ...namespaces.get(candidate), 'kubernetes.io/metadata.name': candidate };
    return selects(peer.namespaceSelector, labels);
  };
  const selected = workloads.filter((workload) => inNamespace(workload.namespace) && selects(pods, workload.podLabels));
  const podText = `pods with ${describeSelector(pods)}`;
  if (!peer.namespaceSelector) {
    if (selected.length > 0) return { ids: selected.map((workload) => workload.id), text: `${podText} (${selected.map((workload) => workload.object.metadata?.name).join(', ')})` };
    return {
      ids: [graph.node({ id: idOf('pods', namespace, describeSelector(pods)), lines: [podText], shape: 'external', groups: [namespaceGroup(namespace)] })],
      text: `${podText} in namespace ${namespace}`,
    };
  }
  const names = namespaceNames(peer.namespaceSelector);
  const namespaceText = names ? `namespace ${names.join(', ')}` : `namespaces with ${describeSelector(peer.namespaceSelector)}`;
  const text = `${podText} in ${namespaceText}`;
  if (selected.length > 0) return { ids: selected.map((workload) => workload.id), text: `${text} (${selected.map((workload) => workload.object.metadata?.name).join(', ')})` };
  const key = names ?? [describeSelector(peer.namespaceSelector)];
  const group = names?.length === 1 && namespaces.has(names[0]!) ? namespaceGroup(names[0]!) : { id: idOf('ns', ...key), title: namespaceText };
  return { ids: [graph.node({ id: idOf('pods', ...key, describeSelector(pods)), lines: [podText], shape: 'external', groups: [group] })], text };
}
