/**
 * An engine under its HA manager on Kubernetes (`EngineSpec.highAvailability`): what each member
 * runs, and the objects the manager needs beside the StatefulSet. Nothing engine-specific: the
 * engine's description says which manager, image, settings and access.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ConnectionSpec, EngineSpec, HighAvailabilitySpec, MemberHost, MemberValue } from '../../databases/engine.ts';

/**
 * The engine as each member runs it: the manager's image, command, settings, config files and
 * health check in place of the engine's own where it names them, its ports added (after the
 * engine's, so the first port stays the clients'). A manager starts the engine with the engine's
 * settings; an engine that clusters by itself keeps its own command.
 */
export function memberSpec(spec: EngineSpec): EngineSpec {
  const ha = spec.highAvailability;
  if (!ha) return spec;
  const { command: _command, args: _args, ...rest } = spec;
  const command = ha.command ?? spec.command;
  const args = ha.args ?? spec.args;
  return {
    ...rest,
    image: ha.image ?? spec.image,
    ...(command ? { command } : {}),
    ...(args && args.length > 0 ? { args } : {}),
    env: { ...spec.env, ...ha.env },
    configFiles: [...spec.configFiles, ...ha.configFiles],
    ports: [...spec.ports, ...ha.ports],
    healthCheck: ha.healthCheck ?? spec.healthCheck,
    ...(spec.tls && ha.tlsReload ? { tls: { ...spec.tls, reload: ha.tlsReload } } : {}),
  };
}

/**
 * The engine's connections as its clients use them where the members run: with the cluster's
 * query parameters (`HighAvailabilitySpec.connectionQuery`, MongoDB's `replicaSet=rs0`) after the
 * engine's own. The same spec without them for an engine that names none.
 */
export function clusterConnections<Spec extends Pick<EngineSpec, 'appConnection' | 'adminConnection' | 'highAvailability'>>(spec: Spec): Spec {
  const query = spec.highAvailability?.connectionQuery;
  if (!query) return spec;
  const withQuery = (connection: ConnectionSpec): ConnectionSpec => ({ ...connection, query: connection.query ? `${connection.query}&${query}` : query });
  return { ...spec, appConnection: withQuery(spec.appConnection), adminConnection: withQuery(spec.adminConnection) };
}

/**
 * Every member's stable address, in ordinal order: `<engine>-<i>.<engine>-headless.<namespace>.svc.<clusterDomain>:<port>`
 * for `i` below the replicas (the StatefulSet's pod names under its governing Service), as a
 * member's `{ address }` variable holds its own.
 */
export function memberAddresses(spec: Pick<EngineSpec, 'name' | 'replicas'>, namespace: string, clusterDomain: string, port: number): string[] {
  return Array.from({ length: spec.replicas }, (_, ordinal) => `${spec.name}-${ordinal}.${spec.name}-headless.${namespace}.svc.${clusterDomain}:${port}`);
}

/** The pod's name, for the member addresses built from it (Kubernetes expands `$(NAME)` of an earlier variable). */
export const MEMBER_NAME_VARIABLE = 'ALLIXIOS_MEMBER_NAME';

/** What the target knows of a member beside its pod's fields. */
export interface MemberContext {
  /** The StatefulSet, whose pods are `<workload>-<ordinal>`. */
  workload: string;
  /** The governing headless Service, under which each pod has a DNS name. */
  headlessService: string;
  namespace: pulumi.Input<string>;
  clusterDomain: string;
  /** The labels selecting the engine's members. */
  selector: Record<string, string>;
}

/**
 * The container's variables the target fills for each member (`HighAvailabilitySpec.memberEnv`):
 * pod fields from the downward API, the member's stable address from its pod's name (a variable
 * of its own first, which the addresses expand), the selector labels as JSON, the namespace's DNS
 * domain. Placed before the
 * engine's own variables.
 */
export function memberEnv(ha: Pick<HighAvailabilitySpec, 'memberEnv'> | undefined, context: MemberContext): k8s.types.input.core.v1.EnvVar[] {
  const entries = Object.entries(ha?.memberEnv ?? {});
  const ownName = (value: MemberValue) => typeof value === 'object' && ('address' in value || ('host' in value && value.host.ordinal === undefined));
  const variables: k8s.types.input.core.v1.EnvVar[] = entries.some(([, value]) => ownName(value))
    ? [{ name: MEMBER_NAME_VARIABLE, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]
    : [];
  const stableHost = (pod: string, headlessService: string) => pulumi.interpolate`${pod}.${headlessService}.${context.namespace}.svc.${context.clusterDomain}`;
  for (const [name, value] of entries) {
    if (value === 'selectorLabels') variables.push({ name, value: JSON.stringify(context.selector) });
    else if (value === 'namespaceDomain') variables.push({ name, value: pulumi.interpolate`${context.namespace}.svc.${context.clusterDomain}` });
    else if ('field' in value) variables.push({ name, valueFrom: { fieldRef: { fieldPath: value.field } } });
    else if ('address' in value) variables.push({ name, value: pulumi.interpolate`${stableHost(`$(${MEMBER_NAME_VARIABLE})`, context.headlessService)}:${value.address}` });
    else variables.push({ name, value: memberHost(name, value.host, context, stableHost) });
  }
  return variables;
}

/** The stable host name a `{ host }` variable names (`MemberHost`): the member's own, a peer's or a companion's member's. */
function memberHost(
  variable: string,
  host: MemberHost,
  context: MemberContext,
  stableHost: (pod: string, headlessService: string) => pulumi.Output<string>,
): pulumi.Output<string> {
  const { workload, ordinal } = host;
  if (ordinal !== undefined && !(Number.isInteger(ordinal) && ordinal >= 0)) {
    throw new Error(`${context.workload}: member variable ${variable}: expected an ordinal that is a whole number from 0, got ${JSON.stringify(ordinal)}`);
  }
  if (workload !== undefined && ordinal === undefined) {
    throw new Error(`${context.workload}: member variable ${variable}: expected an ordinal with the workload ${JSON.stringify(workload)} (whose member?), got none`);
  }
  if (ordinal === undefined) return stableHost(`$(${MEMBER_NAME_VARIABLE})`, context.headlessService);
  if (workload === undefined) return stableHost(`${context.workload}-${ordinal}`, context.headlessService);
  return stableHost(`${workload}-${ordinal}`, `${workload}-headless`);
}

/** The replicas' Service: `<engine>-replicas`. */
export function replicasServiceName(engine: string): string {
  return `${engine}-replicas`;
}

export interface ManagerAccessArgs {
  spec: EngineSpec;
  ha: HighAvailabilitySpec;
  metadata: (name: string) => { name: string; namespace: pulumi.Input<string>; labels: Record<string, string> };
  parent: pulumi.Resource;
  /** Annotations of the ServiceAccount: the cloud role of the members' backups under workload identity. */
  annotations?: Record<string, string>;
}

/**
 * The manager's identity and access: a ServiceAccount for the members, a Role with the rules the
 * engine names (and nothing else: no cluster-wide access, no Secrets), bound to it.
 */
export function managerAccess(name: string, args: ManagerAccessArgs): { serviceAccount: k8s.core.v1.ServiceAccount; role: k8s.rbac.v1.Role; roleBinding: k8s.rbac.v1.RoleBinding } {
  const objectName = `${args.spec.name}-${args.ha.manager.toLowerCase()}`;
  const serviceAccount = new k8s.core.v1.ServiceAccount(
    `${name}-service-account`,
    { metadata: { ...args.metadata(args.spec.name), ...(args.annotations ? { annotations: args.annotations } : {}) }, automountServiceAccountToken: false },
    { parent: args.parent },
  );
  const role = new k8s.rbac.v1.Role(`${name}-role`, { metadata: args.metadata(objectName), rules: args.ha.kubernetesAccess ?? [] }, { parent: args.parent });
  const roleBinding = new k8s.rbac.v1.RoleBinding(
    `${name}-role-binding`,
    {
      metadata: args.metadata(objectName),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount.metadata.name, namespace: serviceAccount.metadata.namespace }],
    },
    { parent: args.parent },
  );
  return { serviceAccount, role, roleBinding };
}

/**
 * Where the members of a replicated engine run: never two on one node in prod (required
 * anti-affinity: losing a node costs one member), preferably not elsewhere (a small staging cluster
 * may have fewer nodes than members); spread across zones where the nodes have zones.
 */
export function placement(selector: Record<string, string>, environment: string): Pick<k8s.types.input.core.v1.PodSpec, 'affinity' | 'topologySpreadConstraints'> {
  const onEachNode = { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } };
  return {
    affinity: {
      podAntiAffinity:
        environment === 'prod'
          ? { requiredDuringSchedulingIgnoredDuringExecution: [onEachNode] }
          : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: onEachNode }] },
    },
    topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } }],
  };
}
