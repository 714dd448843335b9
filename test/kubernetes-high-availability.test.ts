/**
 * An engine under an HA manager as the Kubernetes target renders it (under mocks), from the
 * generic `EngineSpec.highAvailability`: the members run the manager's image and settings, the
 * manager gets a ServiceAccount and a Role with exactly the rules the engine names, the primary's
 * Service has no selector (the manager writes its endpoints), the replicas' Service selects by the
 * role label, the manager's API is open to peers only, the members are spread (required across
 * nodes in prod), and the read URL goes to the replicas. The fixture is PostgreSQL with a stand-in
 * manager description; PostgreSQL's own (Patroni) is tested with its configuration, and as the prod
 * stack renders it in test/kubernetes-postgresql-ha.test.ts.
 */
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Service } from 'kubernetes-models/v1/Service';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EngineModule, HighAvailabilitySpec, PoolerSpec } from '../databases/engine.ts';
import { ENGINE_MODULES } from '../databases/index.ts';
import { postgresql } from '../databases/postgresql/index.ts';
import { evaluate, unwrap, type Evaluation } from './support/pulumi.ts';
import { PROD_BACKUPS, withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const MANAGER: HighAvailabilitySpec = {
  manager: 'Manager',
  image: { repository: 'registry.example/allixios-postgresql-ha', tag: '18.4-1' },
  args: ['manager', '/etc/manager/manager.yml'],
  env: { MANAGER_SCOPE: 'postgresql', MANAGER_SUPERUSER_PASSWORD: { secret: 'superuser-password' } },
  memberEnv: {
    MANAGER_NAME: { field: 'metadata.name' },
    MANAGER_NAMESPACE: { field: 'metadata.namespace' },
    MANAGER_POD_IP: { field: 'status.podIP' },
    MANAGER_CONNECT_ADDRESS: { address: 5432 },
    MANAGER_LABELS: 'selectorLabels',
  },
  configFiles: [{ source: 'config/manager.yml', mountPath: '/etc/manager/manager.yml', content: 'scope: postgresql\n' }],
  ports: [{ name: 'manager-api', containerPort: 8008 }],
  roleLabel: { key: 'role', replica: 'replica' },
  managedServices: ['-config'],
  kubernetesAccess: [
    { apiGroups: [''], resources: ['endpoints'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'update'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  ],
};

const POOLER: PoolerSpec = {
  name: 'pooler',
  image: { repository: 'registry.example/allixios-postgresql-ha', tag: '18.4-1' },
  args: ['pooler', '/etc/pooler/pooler.ini'],
  replicas: 2,
  port: { name: 'pooler', containerPort: 6432 },
  runAs: { user: 999, group: 999 },
  resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
  configFiles: [{ source: 'config/pooler.ini', mountPath: '/etc/pooler/pooler.ini', content: '[pooler]\n' }],
  secretFiles: [{ source: 'initdb/role-verifiers', mountPath: '/etc/pooler/secrets/users.txt' }],
  healthCheck: { command: ['pooler-check'], intervalSeconds: 10, timeoutSeconds: 5, failureThreshold: 3, startupSeconds: 30 },
  carries: ['app'],
  tls: { directory: '/etc/pooler/tls' },
};

const withManager: EngineModule = {
  ...postgresql,
  readUrlVariable: 'DATABASE_READ_URL',
  sizing: { ...postgresql.sizing, prod: { ...postgresql.sizing.prod, replicas: 3 }, staging: { ...postgresql.sizing.staging, replicas: 2 } },
  describe: (settings) => ({ ...postgresql.describe(settings as never), highAvailability: MANAGER, pooler: POOLER }),
} as EngineModule;
const modules = ENGINE_MODULES.map((module) => (module.name === 'postgresql' ? withManager : module));

const objects = (evaluation: Evaluation, kind: string) =>
  evaluation.resources
    .filter(
      (resource) =>
        resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind && (resource.inputs as Json).metadata?.labels?.['app.kubernetes.io/name'] === 'postgresql',
    )
    .map((resource) => resource.inputs as Json);

let prod: Evaluation;
let staging: Evaluation;
beforeAll(async () => {
  // The stand-in keeps PostgreSQL's project image, which staging and prod must pin; its own
  // MANAGER and POOLER replace what PostgreSQL describes with the image (Patroni, PgBouncer).
  prod = await evaluate(
    { environment: 'prod', namespace: 'allixios-prod', bootstrap: { enabled: false }, backups: PROD_BACKUPS, engines: withPostgresqlImage() },
    'prod',
    {},
    modules,
  );
  staging = await evaluate({ environment: 'staging', namespace: 'allixios-staging', bootstrap: { enabled: false }, engines: withPostgresqlImage() }, 'staging', {}, modules);
});

describe('an engine under an HA manager on Kubernetes', () => {
  it("runs the environment's members, each the manager's image with its settings, the pod's fields and its identity", () => {
    const [statefulSet] = objects(prod, 'StatefulSet');
    new StatefulSet(statefulSet as never).validate();
    expect(statefulSet!.spec.replicas).toBe(3);
    expect(objects(staging, 'StatefulSet')[0]!.spec.replicas).toBe(2);
    const pod = statefulSet!.spec.template.spec as Json;
    const container = pod.containers[0] as Json;
    expect(container.image).toBe('registry.example/allixios-postgresql-ha:18.4-1');
    expect(container.args).toEqual(['manager', '/etc/manager/manager.yml']);
    const env = Object.fromEntries((container.env as Json[]).map((entry) => [entry.name, entry]));
    expect(env.MANAGER_NAME.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.MANAGER_POD_IP.valueFrom).toEqual({ fieldRef: { fieldPath: 'status.podIP' } });
    // The stable address from the pod's name, which an earlier variable holds (Kubernetes expands only those).
    const names = (container.env as Json[]).map((entry) => entry.name as string);
    expect(names.indexOf('ALLIXIOS_MEMBER_NAME')).toBeLessThan(names.indexOf('MANAGER_CONNECT_ADDRESS'));
    expect(env.ALLIXIOS_MEMBER_NAME.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.MANAGER_CONNECT_ADDRESS.value).toBe('$(ALLIXIOS_MEMBER_NAME).postgresql-headless.allixios-prod.svc.cluster.local:5432');
    expect(JSON.parse(env.MANAGER_LABELS.value as string)).toEqual(statefulSet!.spec.selector.matchLabels);
    expect(env.MANAGER_SUPERUSER_PASSWORD.valueFrom.secretKeyRef.key).toBe('superuser-password');
    expect((container.ports as Json[]).map((port) => port.containerPort)).toEqual([5432, 8008]);
    expect((container.volumeMounts as Json[]).map((mount) => mount.mountPath)).toContain('/etc/manager/manager.yml');
    expect([pod.serviceAccountName, pod.automountServiceAccountToken]).toEqual(['postgresql', true]);
  });

  it('gives the manager a Role with exactly the rules the engine names, bound to the members only', () => {
    const [role] = objects(prod, 'Role');
    const [binding] = objects(prod, 'RoleBinding');
    const [account] = objects(prod, 'ServiceAccount');
    for (const [Model, object] of [
      [Role, role],
      [RoleBinding, binding],
      [ServiceAccount, account],
    ] as const)
      new (Model as new (value: unknown) => { validate(): void })(object).validate();
    expect(role!.rules).toEqual(MANAGER.kubernetesAccess);
    expect(binding!.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'postgresql-manager' });
    expect(binding!.subjects).toEqual([{ kind: 'ServiceAccount', name: 'postgresql', namespace: 'allixios-prod' }]);
    expect(account!.automountServiceAccountToken).toBe(false);
    // The other engines keep no token at all.
    const redis = prod.resources.find((resource) => resource.inputs.kind === 'StatefulSet' && (resource.inputs as Json).metadata.name === 'redis')!.inputs as Json;
    expect(redis.spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it("routes the primary's Service by the manager's endpoints and the replicas' by the role label", () => {
    const services = Object.fromEntries(objects(prod, 'Service').map((service) => [service.metadata.name, service]));
    for (const service of Object.values(services)) new Service(service as never).validate();
    expect(Object.keys(services).sort()).toEqual(['postgresql', 'postgresql-config', 'postgresql-headless', 'postgresql-replicas']);
    expect(services.postgresql!.spec.selector).toBeUndefined();
    expect(services.postgresql!.spec.ports).toEqual([{ name: 'postgresql', port: 5432, targetPort: 5432, protocol: 'TCP' }]);
    expect(services['postgresql-replicas']!.spec.selector).toEqual({ 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'allixios-prod', role: 'replica' });
    expect(services['postgresql-replicas']!.spec.ports.map((port: Json) => port.port)).toEqual([5432]);
    expect(services['postgresql-config']!.spec).toEqual({ clusterIP: 'None' });
    expect(services['postgresql-headless']!.spec.ports.map((port: Json) => port.port)).toEqual([5432, 8008]);
  });

  it("opens the manager's API to the members only", () => {
    const [policy] = objects(prod, 'NetworkPolicy');
    new NetworkPolicy(policy as never).validate();
    const [clients, peers] = policy!.spec.ingress as Json[];
    expect(clients!.ports).toEqual([{ port: 5432, protocol: 'TCP' }]);
    expect(peers).toEqual({
      from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'allixios-prod' } } }],
      ports: [{ port: 8008, protocol: 'TCP' }],
    });
  });

  it('never places two members on one node in prod, prefers not to in staging, and spreads them across zones', () => {
    const prodPod = objects(prod, 'StatefulSet')[0]!.spec.template.spec as Json;
    expect(prodPod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(prodPod.topologySpreadConstraints[0]).toMatchObject({ topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', maxSkew: 1 });
    const stagingPod = objects(staging, 'StatefulSet')[0]!.spec.template.spec as Json;
    expect(stagingPod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname');
    // One member in a PodDisruptionBudget's drain at a time: a quorum of the three stays.
    expect(objects(prod, 'PodDisruptionBudget')[0]!.spec.maxUnavailable).toBe(1);
  });

  it('reads through the replicas, and through the primary on a stack of one member', async () => {
    expect(new URL(await unwrap(prod.outputs.urls.DATABASE_READ_URL!)).host).toBe('postgresql-replicas.allixios-prod.svc:5432');
    const single = await evaluate({ environment: 'ephemeral', namespace: 'allixios-pr-1', bootstrap: { enabled: false } }, 'pr-1', {}, modules);
    expect(new URL(await unwrap(single.outputs.urls.DATABASE_READ_URL!)).host).toBe('postgresql.allixios-pr-1.svc:5432');
  });
});

const poolerObject = (evaluation: Evaluation, kind: string) =>
  evaluation.resources.find(
    (resource) => resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind && (resource.inputs as Json).metadata?.name?.startsWith('postgresql-pooler'),
  )?.inputs as Json;

describe("an engine's connection pooler on Kubernetes", () => {
  it('runs as a Deployment of its replicas, one new pod before an old one goes, admitted to the engine as its client', () => {
    const deployment = poolerObject(prod, 'Deployment');
    new Deployment(deployment as never).validate();
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    const pod = deployment.spec.template as Json;
    expect(pod.metadata.labels['allixios.io/client-postgresql']).toBe('true');
    const container = pod.spec.containers[0] as Json;
    expect(container.args).toEqual(['pooler', '/etc/pooler/pooler.ini']);
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    // Its credentials' file from the engine's Secret, its directory mounted whole; its own certificate
    const secretVolume = (pod.spec.volumes as Json[]).find((volume) => volume.secret?.secretName === 'postgresql-credentials')!;
    expect(secretVolume.secret.items).toEqual([{ key: 'initdb.role-verifiers', path: 'users.txt', mode: 0o440 }]);
    expect((container.volumeMounts as Json[]).find((mount) => mount.name === secretVolume.name)!.mountPath).toBe('/etc/pooler/secrets');
    expect((pod.spec.volumes as Json[]).find((volume) => volume.name === 'tls')!.secret.secretName).toBe('postgresql-pooler-tls');
  });

  it("has its own Service, a budget that keeps one pod, a NetworkPolicy for the engine's clients, and a certificate for its names", () => {
    const budget = poolerObject(prod, 'PodDisruptionBudget');
    new PodDisruptionBudget(budget as never).validate();
    expect(budget.spec.minAvailable).toBe(1);
    const policy = poolerObject(prod, 'NetworkPolicy');
    new NetworkPolicy(policy as never).validate();
    expect(policy.spec.ingress[0].ports).toEqual([{ port: 6432, protocol: 'TCP' }]);
    expect(policy.spec.ingress[0].from[0]).toEqual({ podSelector: { matchLabels: { 'allixios.io/client-postgresql': 'true' } } });
    const service = poolerObject(prod, 'Service');
    new Service(service as never).validate();
    expect(service.spec.ports).toEqual([{ name: 'pooler', port: 6432, targetPort: 'pooler', protocol: 'TCP' }]);
    const certificate = prod.resources.find(
      (resource) => resource.type === 'kubernetes:cert-manager.io/v1:Certificate' && (resource.inputs as Json).metadata.name === 'postgresql-pooler-tls',
    )!.inputs as Json;
    expect(certificate.spec.dnsNames).toContain('postgresql-pooler.allixios-prod.svc');
  });

  it("carries the application's URL; the bootstrap and the reads reach the engine directly", async () => {
    expect(new URL(await unwrap(prod.outputs.urls.DATABASE_URL!)).host).toBe('postgresql-pooler.allixios-prod.svc:6432');
    expect(new URL(await unwrap(prod.outputs.bootstrapUrls.DATABASE_URL!)).host).toBe('postgresql.allixios-prod.svc:5432');
    expect(new URL(await unwrap(prod.outputs.urls.DATABASE_READ_URL!)).host).toBe('postgresql-replicas.allixios-prod.svc:5432');
  });
});

describe('an engine that clusters by itself on Kubernetes (no manager image, no role label, no API access)', () => {
  const CLUSTER: HighAvailabilitySpec = {
    manager: 'Stand-in replica set',
    args: ['--cluster', '--advertise=$(CLUSTER_ADDRESS)'],
    env: { CLUSTER_NAME: 'rs0' },
    memberEnv: { CLUSTER_ADDRESS: { address: 27017 } },
    configFiles: [],
    ports: [{ name: 'cluster', containerPort: 27018 }],
  };
  const clustering: EngineModule = {
    ...postgresql,
    sizing: { ...postgresql.sizing, prod: { ...postgresql.sizing.prod, replicas: 3 } },
    describe: (settings) => {
      const { highAvailability: _ha, pooler: _pooler, ...own } = postgresql.describe(settings as never);
      return { ...own, highAvailability: CLUSTER };
    },
  } as EngineModule;
  let clustered: Evaluation;
  beforeAll(async () => {
    clustered = await evaluate(
      { environment: 'prod', namespace: 'allixios-prod', bootstrap: { enabled: false }, backups: PROD_BACKUPS, engines: withPostgresqlImage() },
      'prod',
      {},
      ENGINE_MODULES.map((module) => (module.name === 'postgresql' ? clustering : module)),
    );
  });

  it("runs its members from the engine's own image and command, with the cluster's arguments and each member's address", () => {
    const [statefulSet] = objects(clustered, 'StatefulSet');
    new StatefulSet(statefulSet as never).validate();
    expect(statefulSet!.spec.replicas).toBe(3);
    const pod = statefulSet!.spec.template.spec as Json;
    const container = pod.containers[0] as Json;
    expect(container.image).toBe(`postgres:${postgresql.defaultVersion}`);
    expect(container.args).toEqual(['--cluster', '--advertise=$(CLUSTER_ADDRESS)']);
    const env = Object.fromEntries((container.env as Json[]).map((entry) => [entry.name, entry]));
    expect(env.CLUSTER_ADDRESS.value).toBe('$(ALLIXIOS_MEMBER_NAME).postgresql-headless.allixios-prod.svc.cluster.local:27017');
    // No Kubernetes API access: no ServiceAccount token, no Role.
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBeUndefined();
    expect(objects(clustered, 'Role')).toEqual([]);
    // Required anti-affinity in prod, as for any replicated engine.
    expect(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
  });

  it('serves clients through one Service selecting every member, and opens the cluster port to the members only', () => {
    const services = objects(clustered, 'Service');
    expect(services.map((service) => service.metadata.name).sort()).toEqual(['postgresql', 'postgresql-headless']);
    const primary = services.find((service) => service.metadata.name === 'postgresql')!;
    expect(primary.spec.selector).toEqual(objects(clustered, 'StatefulSet')[0]!.spec.selector.matchLabels);
    const [policy] = objects(clustered, 'NetworkPolicy');
    const clusterRule = (policy!.spec.ingress as Json[]).find((rule) => rule.ports.some((port: Json) => port.port === 27018))!;
    expect(clusterRule.from).toEqual([{ podSelector: { matchLabels: primary.spec.selector } }]);
  });
});
