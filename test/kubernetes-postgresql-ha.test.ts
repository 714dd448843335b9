/**
 * PostgreSQL under Patroni with PgBouncer in front, as the prod stack renders it (under mocks, from
 * Pulumi.prod.yaml, which pins the project's image): three members from the pinned image, each
 * told who it is by its pod, one patroni.yml for all without a password in it, Kubernetes as the
 * DCS with a Role limited to Endpoints and pods, the primary's Service written by Patroni and the
 * replicas' selected by the role label Patroni keeps, PgBouncer's Deployment carrying the
 * application's URL, and every object valid against the Kubernetes schema. The generic mechanism
 * (any engine under any manager) is test/kubernetes-high-availability.test.ts's.
 */
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { redactSecrets, unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluateStack, unwrap, type Evaluation } from './support/pulumi.ts';
import { POSTGRESQL_IMAGE } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const MODELS: Record<string, new (data: Json) => { validate(): void }> = {
  ConfigMap,
  Secret,
  Service,
  ServiceAccount,
  StatefulSet,
  Deployment,
  PodDisruptionBudget,
  NetworkPolicy,
  Role,
  // Its constructor's type requires roleRef, which a rendered object's type does not state.
  RoleBinding: RoleBinding as unknown as new (data: Json) => { validate(): void },
  CronJob,
};

/** PostgreSQL's objects and PgBouncer's (`app.kubernetes.io/name` postgresql or postgresql-pgbouncer), by kind. */
const postgresqlObjects = (evaluation: Evaluation, kind: string, name = 'postgresql') =>
  evaluation.resources
    .filter(
      (resource) => resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind && (resource.inputs as Json).metadata?.labels?.['app.kubernetes.io/name'] === name,
    )
    .map((resource) => resource.inputs as Json);

/** Every key of a parsed document, at any depth. */
function keysOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysOf);
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([key, inner]) => [key, ...keysOf(inner)]);
  return [];
}

const SELECTOR = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'allixios-prod' };

describe('PostgreSQL under Patroni on the prod stack', () => {
  let prod: Evaluation;
  let statefulSet: Json;
  let member: Json;
  let env: Record<string, Json>;
  beforeAll(async () => {
    prod = await evaluateStack('prod');
    [statefulSet] = postgresqlObjects(prod, 'StatefulSet') as [Json];
    member = statefulSet.spec.template.spec.containers[0] as Json;
    env = Object.fromEntries((member.env as Json[]).map((entry) => [entry.name, entry]));
  });

  it('renders every object of PostgreSQL and PgBouncer valid against the Kubernetes schema', () => {
    const rendered = prod.resources.filter(
      (resource) =>
        resource.type.startsWith('kubernetes:') &&
        !String(resource.inputs.apiVersion).startsWith('cert-manager.io/') &&
        String((resource.inputs as Json).metadata?.labels?.['app.kubernetes.io/name']).startsWith('postgresql'),
    );
    expect(rendered.map((resource) => resource.inputs.kind as string).sort()).toEqual(
      [
        ...['Secret', 'ConfigMap', 'StatefulSet', 'PodDisruptionBudget', 'NetworkPolicy', 'CronJob', 'ServiceAccount', 'Role', 'RoleBinding'],
        ...['Service', 'Service', 'Service', 'Service', 'Service', 'Service'],
        ...['Deployment', 'ConfigMap', 'Service', 'PodDisruptionBudget', 'NetworkPolicy'],
        // pgBackRest's full and differential backups and their pgbackrest.conf (README "Backups").
        ...['CronJob', 'CronJob', 'ConfigMap'],
      ].sort(),
    );
    for (const resource of rendered) {
      const Model = MODELS[resource.inputs.kind as string];
      expect(Model, resource.inputs.kind as string).toBeDefined();
      expect(() => new Model!(redactSecrets(resource.inputs, '<redacted>') as Json).validate(), `${resource.inputs.kind as string} ${resource.name}`).not.toThrow();
    }
  });

  it('runs three members from the pinned project image, never two on one node, one disrupted at a time', () => {
    expect(statefulSet.spec.replicas).toBe(3);
    expect(member.image).toBe(POSTGRESQL_IMAGE);
    // The image's entrypoint runs Patroni, which starts PostgreSQL: no command or arguments of the official image's.
    expect([member.command, member.args]).toEqual([undefined, undefined]);
    expect((member.ports as Json[]).map((port) => [port.name, port.containerPort])).toEqual([
      ['postgresql', 5432],
      ['patroni', 8008],
    ]);
    expect(statefulSet.spec.template.spec.affinity.podAntiAffinity).toEqual({
      requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: SELECTOR } }],
    });
    const [budget] = postgresqlObjects(prod, 'PodDisruptionBudget');
    expect(budget!.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: SELECTOR } });
  });

  it('tells each member who it is from its pod: its name, and its addresses under the headless Service, which its certificate carries', () => {
    expect(env.PATRONI_NAME!.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.PATRONI_KUBERNETES_NAMESPACE!.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
    expect(env.PATRONI_KUBERNETES_POD_IP!.valueFrom).toEqual({ fieldRef: { fieldPath: 'status.podIP' } });
    expect(JSON.parse(env.PATRONI_KUBERNETES_LABELS!.value as string)).toEqual(SELECTOR);
    // The pod's name in a variable before the addresses that expand it (Kubernetes expands only earlier variables).
    const names = (member.env as Json[]).map((entry) => entry.name as string);
    expect(env.ALLIXIOS_MEMBER_NAME!.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(names.indexOf('ALLIXIOS_MEMBER_NAME')).toBeLessThan(names.indexOf('PATRONI_POSTGRESQL_CONNECT_ADDRESS'));
    expect(env.PATRONI_POSTGRESQL_CONNECT_ADDRESS!.value).toBe('$(ALLIXIOS_MEMBER_NAME).postgresql-headless.allixios-prod.svc.cluster.local:5432');
    expect(env.PATRONI_RESTAPI_CONNECT_ADDRESS!.value).toBe('$(ALLIXIOS_MEMBER_NAME).postgresql-headless.allixios-prod.svc.cluster.local:8008');
    const certificate = prod.resources.find(
      (resource) => resource.type === 'kubernetes:cert-manager.io/v1:Certificate' && (resource.inputs as Json).metadata.name === 'postgresql-tls',
    )!.inputs as Json;
    expect(certificate.spec.dnsNames).toContain('*.postgresql-headless.allixios-prod.svc.cluster.local');
  });

  it("gives Patroni its passwords from the engine's Secret by reference, never as values", () => {
    for (const variable of ['PATRONI_SUPERUSER_PASSWORD', 'PATRONI_REPLICATION_PASSWORD', 'PATRONI_REWIND_PASSWORD', 'PATRONI_RESTAPI_PASSWORD']) {
      expect(env[variable], variable).toEqual({ name: variable, valueFrom: { secretKeyRef: { name: 'postgresql-credentials', key: expect.any(String) } } });
    }
    expect(env.PATRONI_SUPERUSER_PASSWORD!.valueFrom.secretKeyRef.key).toBe('superuser-password');
    const secret = unwrapSecrets(postgresqlObjects(prod, 'Secret')[0]!.stringData) as Record<string, string>;
    for (const key of ['replication-password', 'rewind-password', 'patroni-api-password']) expect(secret[key]!.length, key).toBeGreaterThan(0);
  });

  it('reads one patroni.yml: synchronous replication, Kubernetes Endpoints as the DCS, the post-bootstrap script, and no password', () => {
    const [configMap] = postgresqlObjects(prod, 'ConfigMap');
    const text = configMap!.data['patroni.patroni.yml'] as string;
    // YAML 1.1, as Patroni's PyYAML reads it.
    const config = parse(text, { version: '1.1' }) as Json;
    expect(config.scope).toBe('postgresql');
    expect(config.bootstrap.dcs.synchronous_mode).toBe(true);
    expect(config.kubernetes).toMatchObject({ use_endpoints: true, scope_label: 'app.kubernetes.io/name', role_label: 'allixios.io/role' });
    expect(config.bootstrap.post_bootstrap).toBe('/etc/patroni/post-bootstrap.sh');
    // Mounted where the configuration says, executable, and patroni.yml where the image's entrypoint reads it.
    const mounts = Object.fromEntries((member.volumeMounts as Json[]).map((mount) => [mount.mountPath, mount]));
    expect(mounts['/etc/patroni/patroni.yml']).toMatchObject({ subPath: 'patroni.patroni.yml', readOnly: true });
    expect(mounts['/etc/patroni/post-bootstrap.sh']).toMatchObject({ subPath: 'patroni.post-bootstrap.sh', readOnly: true });
    const items = (statefulSet.spec.template.spec.volumes as Json[]).find((volume) => volume.name === 'config')!.configMap.items as Json[];
    expect(items.find((item) => item.key === 'patroni.post-bootstrap.sh')!.mode).toBe(0o555);
    // No password: no key names one, and no generated secret appears in it.
    expect(keysOf(config).filter((key) => /password/i.test(key))).toEqual([]);
    expect(config.postgresql.authentication).toEqual({
      superuser: { username: 'postgres' },
      replication: { username: 'allixios_replicator', sslmode: 'verify-full', sslrootcert: '/etc/postgresql/tls/ca.crt' },
      rewind: { username: 'allixios_rewind', sslmode: 'verify-full', sslrootcert: '/etc/postgresql/tls/ca.crt' },
    });
    expect(prod.generatedSecrets.length).toBeGreaterThan(0);
    for (const secret of prod.generatedSecrets) expect(text).not.toContain(secret);
  });

  it('lets Patroni, as its own ServiceAccount, reach only Endpoints and pods of its namespace', () => {
    const [account] = postgresqlObjects(prod, 'ServiceAccount');
    const [role] = postgresqlObjects(prod, 'Role');
    const [binding] = postgresqlObjects(prod, 'RoleBinding');
    expect(role!.rules.map((rule: Json) => [rule.apiGroups, rule.resources])).toEqual([
      [[''], ['endpoints']],
      [[''], ['pods']],
    ]);
    const resources = (role!.rules as Json[]).flatMap((rule) => rule.resources as string[]);
    expect(resources).not.toContain('secrets');
    expect(resources).not.toContain('configmaps');
    expect((role!.rules as Json[]).flatMap((rule) => rule.verbs as string[])).not.toContain('*');
    expect(binding!.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role!.metadata.name });
    expect(binding!.subjects).toEqual([{ kind: 'ServiceAccount', name: account!.metadata.name, namespace: 'allixios-prod' }]);
    // The members run as it, with its token; no other pod of the stack does.
    const pod = statefulSet.spec.template.spec as Json;
    expect([pod.serviceAccountName, pod.automountServiceAccountToken]).toEqual([account!.metadata.name, true]);
    expect(account!.automountServiceAccountToken).toBe(false);
  });

  it("routes the primary's Service by the Endpoints Patroni writes and the replicas' by the role label Patroni keeps", () => {
    const services = Object.fromEntries(postgresqlObjects(prod, 'Service').map((service) => [service.metadata.name as string, service]));
    expect(Object.keys(services).sort()).toEqual(['postgresql', 'postgresql-config', 'postgresql-failover', 'postgresql-headless', 'postgresql-replicas', 'postgresql-sync']);
    // No selector: Patroni writes the leader's address into the Endpoints of the same name, ports matched by name.
    expect(services.postgresql!.spec.selector).toBeUndefined();
    expect(services.postgresql!.spec.ports).toEqual([{ name: 'postgresql', port: 5432, targetPort: 5432, protocol: 'TCP' }]);
    expect(services['postgresql-replicas']!.spec.selector).toEqual({ ...SELECTOR, 'allixios.io/role': 'replica' });
    for (const suffix of ['config', 'failover', 'sync']) expect(services[`postgresql-${suffix}`]!.spec, suffix).toEqual({ clusterIP: 'None' });
    // Reads go to the replicas, whose name the engine's certificate carries too (the read URL verifies it).
    const certificate = prod.resources.find(
      (resource) => resource.type === 'kubernetes:cert-manager.io/v1:Certificate' && (resource.inputs as Json).metadata.name === 'postgresql-tls',
    )!.inputs as Json;
    expect(certificate.spec.dnsNames).toEqual(expect.arrayContaining(['postgresql-replicas.allixios-prod.svc', 'postgresql-replicas.allixios-prod.svc.cluster.local']));
  });

  it("puts PgBouncer in front: two replicas with their Service, budget and NetworkPolicy, carrying the application's URL", async () => {
    const [deployment] = postgresqlObjects(prod, 'Deployment', 'postgresql-pgbouncer');
    expect(deployment!.metadata.name).toBe('postgresql-pgbouncer');
    expect(deployment!.spec.replicas).toBe(2);
    const container = deployment!.spec.template.spec.containers[0] as Json;
    expect(container.image).toBe(POSTGRESQL_IMAGE);
    expect(container.command).toEqual(['pgbouncer', '/etc/pgbouncer/pgbouncer.ini']);
    // Admitted by PostgreSQL's NetworkPolicy as its client.
    expect(deployment!.spec.template.metadata.labels['allixios.io/client-postgresql']).toBe('true');
    const [service] = postgresqlObjects(prod, 'Service', 'postgresql-pgbouncer');
    expect([service!.metadata.name, service!.spec.ports]).toEqual(['postgresql-pgbouncer', [{ name: 'pgbouncer', port: 6432, targetPort: 'pgbouncer', protocol: 'TCP' }]]);
    expect(service!.spec.selector).toEqual(deployment!.spec.selector.matchLabels);
    const [budget] = postgresqlObjects(prod, 'PodDisruptionBudget', 'postgresql-pgbouncer');
    expect(budget!.spec).toEqual({ minAvailable: 1, selector: { matchLabels: deployment!.spec.selector.matchLabels } });
    const [policy] = postgresqlObjects(prod, 'NetworkPolicy', 'postgresql-pgbouncer');
    expect(policy!.spec.podSelector).toEqual({ matchLabels: deployment!.spec.selector.matchLabels });
    expect(policy!.spec.ingress[0].ports).toEqual([{ port: 6432, protocol: 'TCP' }]);
    // The application's URL goes through it; the bootstrap reaches the primary itself.
    expect(new URL(await unwrap(prod.outputs.urls.DATABASE_URL!)).host).toBe('postgresql-pgbouncer.allixios-prod.svc:6432');
    expect(new URL(await unwrap(prod.outputs.bootstrapUrls.DATABASE_URL!)).host).toBe('postgresql.allixios-prod.svc:5432');
    // Its configuration holds no password; its auth file comes from the engine's Secret.
    const [configMap] = postgresqlObjects(prod, 'ConfigMap', 'postgresql-pgbouncer');
    for (const secret of prod.generatedSecrets) expect(JSON.stringify(configMap!.data)).not.toContain(secret);
    expect((deployment!.spec.template.spec.volumes as Json[]).some((volume) => volume.secret?.secretName === 'postgresql-credentials')).toBe(true);
  });
});
