/**
 * An engine under its HA manager on Kubernetes (`EngineSpec.highAvailability`): what each member
 * runs, and the objects the manager needs beside the StatefulSet. Nothing engine-specific: the
 * engine's description says which manager, image, settings and access.
 */
import * as k8s from '@pulumi/kubernetes';
import type * as pulumi from '@pulumi/pulumi';
import type { EngineSpec, HighAvailabilitySpec } from '../../databases/engine.ts';

/**
 * The engine as each member runs it: the manager's image, command, settings, config files and
 * health check in place of the engine's own, its ports added (after the engine's, so the first
 * port stays the clients'). The manager starts the engine with the engine's settings.
 */
export function memberSpec(spec: EngineSpec): EngineSpec {
  const ha = spec.highAvailability;
  if (!ha) return spec;
  const { command: _command, args: _args, ...rest } = spec;
  return {
    ...rest,
    image: ha.image,
    ...(ha.command ? { command: ha.command } : {}),
    ...(ha.args ? { args: ha.args } : {}),
    env: { ...spec.env, ...ha.env },
    configFiles: [...spec.configFiles, ...ha.configFiles],
    ports: [...spec.ports, ...ha.ports],
    healthCheck: ha.healthCheck ?? spec.healthCheck,
  };
}

/** The container's variables from the member's pod (name, namespace, address). */
export function podFieldEnv(ha: HighAvailabilitySpec | undefined): k8s.types.input.core.v1.EnvVar[] {
  return Object.entries(ha?.podFields ?? {}).map(([name, fieldPath]) => ({ name, valueFrom: { fieldRef: { fieldPath } } }));
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
}

/**
 * The manager's identity and access: a ServiceAccount for the members, a Role with the rules the
 * engine names (and nothing else: no cluster-wide access, no Secrets), bound to it.
 */
export function managerAccess(name: string, args: ManagerAccessArgs): { serviceAccount: k8s.core.v1.ServiceAccount; role: k8s.rbac.v1.Role; roleBinding: k8s.rbac.v1.RoleBinding } {
  const objectName = `${args.spec.name}-${args.ha.manager.toLowerCase()}`;
  const serviceAccount = new k8s.core.v1.ServiceAccount(
    `${name}-service-account`,
    { metadata: args.metadata(args.spec.name), automountServiceAccountToken: false },
    { parent: args.parent },
  );
  const role = new k8s.rbac.v1.Role(`${name}-role`, { metadata: args.metadata(objectName), rules: args.ha.kubernetesAccess }, { parent: args.parent });
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
