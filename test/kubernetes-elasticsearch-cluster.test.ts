/**
 * Elasticsearch as the prod stack renders it (under mocks, from Pulumi.prod.yaml): three
 * master-eligible data nodes started together, never two on one node, spread across zones, each
 * told its name, its transport address and its node's zone by its pod; the transport port open to
 * the members and nothing else; a budget that keeps two of three; a certificate that names every
 * member and the seed host; probes that tell a live node from one that has joined the cluster;
 * every object valid against the Kubernetes schema; and the policy pack's checks passed. The
 * engine's settings are checked against Elasticsearch's documentation in
 * test/engines/elasticsearch-config.test.ts; the generic mechanism in
 * test/kubernetes-high-availability.test.ts.
 */
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { beforeAll, describe, expect, it } from 'vitest';
import { KEYSTORE_LINK_LINES } from '../databases/elasticsearch/backup.ts';
import { joinedClusterCheck, memberStartScript } from '../databases/elasticsearch/cluster.ts';
import {
  databasePolicies,
  databaseTls,
  networkPolicyCoverage,
  podDisruptionBudgetCoverage,
  type PolicyResource,
  type ResourceValidationArgs,
  type ResourceValidationPolicy,
  type StackValidationPolicy,
} from '../policy/policies.ts';
import { unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluate, evaluateStack, type Evaluation } from './support/pulumi.ts';
import { withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const MODELS: Record<string, new (data: Json) => { validate(): void }> = { ConfigMap, Secret, Service, StatefulSet, PodDisruptionBudget, NetworkPolicy };

const SELECTOR = { 'app.kubernetes.io/name': 'elasticsearch', 'app.kubernetes.io/instance': 'allixios-prod' };

/** Elasticsearch's recorded resources (labelled app.kubernetes.io/name: elasticsearch). */
const elasticsearchResources = (evaluation: Evaluation) =>
  evaluation.resources.filter((resource) => resource.type.startsWith('kubernetes:') && (resource.inputs as Json).metadata?.labels?.['app.kubernetes.io/name'] === 'elasticsearch');
const objects = (evaluation: Evaluation, kind: string) =>
  elasticsearchResources(evaluation)
    .filter((resource) => resource.inputs.kind === kind)
    .map((resource) => resource.inputs as Json);

// ---------------------------------------------------------------------------------------------
// The policy pack's validators, called as its server calls them (test/policy.test.ts does the same
// for every engine; here for Elasticsearch's cluster alone).

class NotApplicable extends Error {}

const policyOptions = (protect: boolean) => ({
  protect,
  ignoreChanges: [],
  aliases: [],
  additionalSecretOutputs: [],
  customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
});
const isTypeOf = (type: string, resourceClass: unknown) => (resourceClass as { __pulumiType?: string }).__pulumiType === type;

interface Seen {
  type: string;
  name: string;
  props: Json;
  protect: boolean;
}

function seen(evaluation: Evaluation): Seen[] {
  return evaluation.resources.map((resource) => ({
    type: resource.type,
    name: resource.name,
    props: unwrapSecrets(resource.inputs) as Json,
    protect: evaluation.options.get(resource.name)?.protect === true,
  }));
}

async function resourceViolations(policy: ResourceValidationPolicy, resource: Seen): Promise<{ applied: boolean; violations: string[] }> {
  const violations: string[] = [];
  let applied = true;
  const args: ResourceValidationArgs = {
    type: resource.type,
    name: resource.name,
    urn: `urn:pulumi:prod::allixios::${resource.type}::${resource.name}`,
    props: resource.props,
    opts: policyOptions(resource.protect),
    stackTags: new Map(),
    isType: (resourceClass) => isTypeOf(resource.type, resourceClass),
    asType: ((resourceClass: unknown) => (isTypeOf(resource.type, resourceClass) ? resource.props : undefined)) as ResourceValidationArgs['asType'],
    getConfig: <T extends object>() => ({}) as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason);
    },
  };
  for (const validation of Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource!]) {
    try {
      await validation(args, (message) => violations.push(`${policy.name}: ${message}`));
    } catch (error) {
      if (!(error instanceof NotApplicable)) throw error;
      applied = false;
    }
  }
  return { applied, violations };
}

async function stackViolations(policy: StackValidationPolicy, resources: Seen[]): Promise<string[]> {
  const reported: string[] = [];
  await policy.validateStack(
    {
      resources: resources.map((resource): PolicyResource => ({
        type: resource.type,
        name: resource.name,
        urn: `urn:pulumi:prod::allixios::${resource.type}::${resource.name}`,
        props: resource.props,
        opts: policyOptions(resource.protect),
        dependencies: [],
        propertyDependencies: {},
        isType: (resourceClass) => isTypeOf(resource.type, resourceClass),
        asType: ((resourceClass: unknown) => (isTypeOf(resource.type, resourceClass) ? resource.props : undefined)) as PolicyResource['asType'],
      })),
      stackTags: new Map(),
      getConfig: <T extends object>() => ({}) as T,
      notApplicable: (reason?: string): never => {
        throw new NotApplicable(reason);
      },
    },
    (message) => reported.push(`${policy.name}: ${message}`),
  );
  return reported;
}

// ---------------------------------------------------------------------------------------------

let prod: Evaluation;
let statefulSet: Json;
let pod: Json;
let container: Json;
let env: Record<string, Json>;
beforeAll(async () => {
  prod = await evaluateStack('prod');
  statefulSet = objects(prod, 'StatefulSet')[0]!;
  pod = statefulSet!.spec.template.spec;
  container = pod.containers[0];
  env = Object.fromEntries((container.env as Json[]).map((entry) => [entry.name, entry]));
});

describe('Elasticsearch on the prod stack: a cluster of three nodes', () => {
  it('renders every object valid against the Kubernetes schema', () => {
    const kinds = elasticsearchResources(prod).map((resource) => resource.inputs.kind as string);
    expect(kinds.sort()).toEqual(['Certificate', 'ConfigMap', 'NetworkPolicy', 'PodDisruptionBudget', 'Secret', 'Service', 'Service', 'StatefulSet']);
    for (const resource of elasticsearchResources(prod)) {
      const Model = MODELS[resource.inputs.kind as string];
      if (Model) expect(() => new Model(unwrapSecrets(resource.inputs) as Json).validate(), `${resource.inputs.kind} ${resource.name}`).not.toThrow();
    }
  });

  it('starts three members together, never two on one node, spread across zones', () => {
    expect(statefulSet.spec).toMatchObject({ replicas: 3, serviceName: 'elasticsearch-headless', podManagementPolicy: 'Parallel', updateStrategy: { type: 'RollingUpdate' } });
    expect(pod.affinity.podAntiAffinity).toEqual({
      requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: SELECTOR } }],
    });
    expect(pod.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: SELECTOR } },
    ]);
    // Elasticsearch never talks to the Kubernetes API
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBeUndefined();
    expect(objects(prod, 'Role')).toEqual([]);
  });

  it("tells each member its name, its transport address and its node's zone from its pod, and starts it with the cluster's settings", () => {
    expect(container.image).toBe('docker.elastic.co/elasticsearch/elasticsearch:9.5.3');
    expect(container.command).toBeUndefined();
    // prod backs up with the object store's keys: the start links the backup keystore first (databases/elasticsearch/backup.ts)
    expect(prod.config.engines.find((engine) => engine.spec.name === 'elasticsearch')!.spec.backup?.memberInit).toBeDefined();
    expect(container.args).toEqual([
      'sh',
      '-c',
      memberStartScript({ configPath: '/usr/share/elasticsearch/config', entrypoint: '/usr/local/bin/docker-entrypoint.sh' }, KEYSTORE_LINK_LINES),
    ]);
    expect(container.ports).toEqual([
      { name: 'http', containerPort: 9200, protocol: 'TCP' },
      { name: 'transport', containerPort: 9300, protocol: 'TCP' },
    ]);
    // The pod's name first: the address expands it
    const names = (container.env as Json[]).map((entry) => entry.name);
    expect(names.indexOf('ALLIXIOS_MEMBER_NAME')).toBeLessThan(names.indexOf('ALLIXIOS_TRANSPORT_ADDRESS'));
    expect(env['node.name']).toEqual({ name: 'node.name', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(env.ALLIXIOS_TRANSPORT_ADDRESS!.value).toBe('$(ALLIXIOS_MEMBER_NAME).elasticsearch-headless.allixios-prod.svc.cluster.local:9300');
    expect(env.ALLIXIOS_ZONE).toEqual({ name: 'ALLIXIOS_ZONE', valueFrom: { fieldRef: { fieldPath: "metadata.labels['topology.kubernetes.io/zone']" } } });
    const literal = (name: string) => env[name]?.value;
    expect(['discovery.type', 'transport.host', 'transport.port'].map(literal)).toEqual(['multi-node', '0.0.0.0', '9300']);
    expect(['xpack.security.transport.ssl.enabled', 'xpack.security.transport.ssl.verification_mode'].map(literal)).toEqual(['true', 'full']);
    // An existing stack grows from its single node: no initial master nodes unless the stack forms a new cluster
    expect(env['cluster.initial_master_nodes']).toBeUndefined();
  });

  it('is ready once joined to a cluster with an elected master, alive while it answers HTTP at all', () => {
    expect(container.readinessProbe.exec.command).toEqual(
      joinedClusterCheck({ curl: 'curl --cacert /usr/share/elasticsearch/config/tls/ca.crt --resolve localhost:9200:127.0.0.1', node: 'https://localhost:9200' }),
    );
    const alive = container.livenessProbe.exec.command as string[];
    expect(alive.join(' ')).toContain(
      'curl --cacert /usr/share/elasticsearch/config/tls/ca.crt --resolve localhost:9200:127.0.0.1 -sS --max-time 8 -o /dev/null https://localhost:9200/',
    );
    expect(container.startupProbe.exec.command).toEqual(alive);
    expect(container.startupProbe.failureThreshold * container.startupProbe.periodSeconds).toBeGreaterThanOrEqual(300);
  });

  it('serves clients on 9200 from every ready member; the headless Service carries the transport port for the members', () => {
    const services = Object.fromEntries(objects(prod, 'Service').map((service) => [service.metadata.name, service.spec]));
    expect(services['elasticsearch']).toMatchObject({ selector: SELECTOR, ports: [{ name: 'http', port: 9200, targetPort: 'http', protocol: 'TCP' }] });
    expect(services['elasticsearch-headless']).toMatchObject({
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: SELECTOR,
      ports: [
        { name: 'http', port: 9200, targetPort: 'http', protocol: 'TCP' },
        { name: 'transport', port: 9300, targetPort: 'transport', protocol: 'TCP' },
      ],
    });
  });

  it('opens the transport port to the members and nothing else, and keeps two of three members through a voluntary disruption', () => {
    const [policy] = objects(prod, 'NetworkPolicy');
    const rules = policy!.spec.ingress as Json[];
    expect(rules).toHaveLength(2);
    const transport = rules.find((rule) => rule.ports.some((port: Json) => port.port === 9300))!;
    expect(transport).toEqual({ from: [{ podSelector: { matchLabels: SELECTOR } }], ports: [{ port: 9300, protocol: 'TCP' }] });
    const clients = rules.find((rule) => rule !== transport)!;
    expect(clients.ports).toEqual([{ port: 9200, protocol: 'TCP' }]);
    const [budget] = objects(prod, 'PodDisruptionBudget');
    expect(budget!.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: SELECTOR } });
  });

  it("has a certificate for the seed host and every member's published name, for transport as for HTTP", () => {
    const [certificate] = objects(prod, 'Certificate');
    const names = certificate!.spec.dnsNames as string[];
    expect(names).toContain('elasticsearch-headless.allixios-prod.svc.cluster.local');
    expect(names).toContain('*.elasticsearch-headless.allixios-prod.svc.cluster.local');
    expect(certificate!.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
  });

  it("passes the policy pack's resource checks on each of its objects, and its TLS, NetworkPolicy and budget checks", async () => {
    const resources = seen(prod);
    const mine = new Set(elasticsearchResources(prod).map((resource) => resource.name));
    const policies = databasePolicies({ currentStack: () => 'prod' });
    let applied = 0;
    for (const policy of policies.filter((candidate): candidate is ResourceValidationPolicy => 'validateResource' in candidate)) {
      for (const resource of resources.filter((candidate) => mine.has(candidate.name))) {
        const outcome = await resourceViolations(policy, resource);
        // Advisory: no StorageClass is listed as encrypting in Pulumi.prod.yaml (README "Encryption at rest").
        if (policy.name === 'database-storage-encrypted') continue;
        expect(outcome.violations, `${policy.name} on ${resource.name}`).toEqual([]);
        if (outcome.applied) applied += 1;
      }
    }
    expect(applied).toBeGreaterThanOrEqual(10);
    expect(
      await stackViolations(
        databaseTls(() => 'prod'),
        resources,
      ),
    ).toEqual([]);
    expect(await stackViolations(networkPolicyCoverage, resources)).toEqual([]);
    expect(await stackViolations(podDisruptionBudgetCoverage, resources)).toEqual([]);
  });
});

describe('Elasticsearch on a stack that forms a new cluster', () => {
  it('names the three members in cluster.initial_master_nodes on every member, and only there', async () => {
    const forming = await evaluate(
      {
        environment: 'staging',
        namespace: 'allixios-staging',
        bootstrap: { enabled: false },
        engines: withPostgresqlImage({ elasticsearch: { options: { formCluster: true } } }),
      },
      'staging',
    );
    const [set] = objects(forming, 'StatefulSet');
    const variables = set!.spec.template.spec.containers[0].env as Json[];
    expect(variables.filter((entry) => entry.name === 'cluster.initial_master_nodes')).toEqual([
      { name: 'cluster.initial_master_nodes', value: 'elasticsearch-0,elasticsearch-1,elasticsearch-2' },
    ]);
    // Staging: preferred anti-affinity (a small cluster may have fewer nodes than members)
    expect(set!.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
    expect(set!.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    expect(set!.spec.replicas).toBe(3);
  });

  it('runs an ephemeral stack as one node in order, with no transport port to open', async () => {
    const ephemeral = await evaluate({ environment: 'ephemeral', namespace: 'allixios-pr-7', bootstrap: { enabled: false } }, 'pr-7');
    const [set] = objects(ephemeral, 'StatefulSet');
    expect(set!.spec).toMatchObject({ replicas: 1, podManagementPolicy: 'OrderedReady' });
    const variables = Object.fromEntries((set!.spec.template.spec.containers[0].env as Json[]).map((entry) => [entry.name, entry.value]));
    expect(variables['discovery.type']).toBe('single-node');
    expect(variables['transport.host']).toBe('127.0.0.1');
    const [policy] = objects(ephemeral, 'NetworkPolicy');
    expect((policy!.spec.ingress as Json[]).flatMap((rule) => rule.ports.map((port: Json) => port.port))).toEqual([9200]);
  });
});
