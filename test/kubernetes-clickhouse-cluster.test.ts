/**
 * ClickHouse's replicas as the stacks render them (under mocks, from Pulumi.prod.yaml and inline
 * configs): two members in prod, each told who it is by its pod and where its peers and Keeper
 * are by their stable names, its replication file in the ConfigMap without a secret in it, the
 * interserver port open to members only, every object valid against the Kubernetes schema and
 * passing the policy pack's resource policies. Staging replicates too, ephemeral runs the single
 * server. The Keeper members themselves are the companion workload's (not rendered here).
 */
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { beforeAll, describe, expect, it } from 'vitest';
import { databasePolicies, type ResourceValidationArgs, type ResourceValidationPolicy } from '../policy/policies.ts';
import { redactSecrets, unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluate, evaluateStack, type Evaluation } from './support/pulumi.ts';
import { withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const MODELS: Record<string, new (data: Json) => { validate(): void }> = { ConfigMap, Secret, Service, StatefulSet, PodDisruptionBudget, NetworkPolicy };
const BOOTSTRAP = { image: 'ghcr.io/allixios/allixios-bootstrap:0.1.0' };

/** ClickHouse's Kubernetes objects of `kind`. */
const clickhouseObjects = (evaluation: Evaluation, kind: string) =>
  evaluation.resources
    .filter(
      (resource) =>
        resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind && (resource.inputs as Json).metadata?.labels?.['app.kubernetes.io/name'] === 'clickhouse',
    )
    .map((resource) => resource.inputs as Json);

const containerOf = (evaluation: Evaluation) => clickhouseObjects(evaluation, 'StatefulSet')[0]!.spec.template.spec.containers[0] as Json;
const envOf = (evaluation: Evaluation) => Object.fromEntries((containerOf(evaluation).env as Json[]).map((entry) => [entry.name as string, entry]));
const SELECTOR = { 'app.kubernetes.io/name': 'clickhouse', 'app.kubernetes.io/instance': 'allixios-prod' };

describe('ClickHouse replicas on the prod stack', () => {
  let prod: Evaluation;
  let env: Record<string, Json>;
  let replicationXml: string;
  beforeAll(async () => {
    // Two members, as prod will run them once the stack deploys Keeper (one until then: databases/clickhouse/index.ts).
    prod = await evaluateStack('prod', (config) => (config.engines.clickhouse = { ...config.engines.clickhouse, replicas: 2 }));
    env = envOf(prod);
    replicationXml = clickhouseObjects(prod, 'ConfigMap')[0]!.data['config.config.d.replication.xml'] as string;
  });

  it('renders every ClickHouse object valid against the Kubernetes schema', () => {
    const rendered = prod.resources.filter(
      (resource) =>
        resource.type.startsWith('kubernetes:') &&
        !String(resource.inputs.apiVersion).startsWith('cert-manager.io/') &&
        (resource.inputs as Json).metadata?.labels?.['app.kubernetes.io/name'] === 'clickhouse',
    );
    expect(rendered.map((resource) => resource.inputs.kind as string).sort()).toEqual([
      'ConfigMap',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Secret',
      'Service',
      'Service',
      'StatefulSet',
    ]);
    for (const resource of rendered) {
      expect(() => new MODELS[resource.inputs.kind as string]!(redactSecrets(resource.inputs, '<redacted>') as Json).validate(), resource.name).not.toThrow();
    }
  });

  it('runs two members, never on one node, one disrupted at a time, with their own image and command (ClickHouse clusters by itself)', () => {
    const [statefulSet] = clickhouseObjects(prod, 'StatefulSet');
    expect(statefulSet!.spec.replicas).toBe(2);
    expect(statefulSet!.spec.template.spec.affinity.podAntiAffinity).toEqual({
      requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: SELECTOR } }],
    });
    expect(clickhouseObjects(prod, 'PodDisruptionBudget')[0]!.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: SELECTOR } });
    const container = containerOf(prod);
    expect(container.image).toMatch(/^clickhouse\/clickhouse-server:26\./);
    expect([container.command, container.args]).toEqual([undefined, undefined]);
    // One Service over every member (no primary): the client Service and the headless one, which alone carries the interserver port.
    const services = Object.fromEntries(clickhouseObjects(prod, 'Service').map((service) => [service.metadata.name as string, service.spec.ports.map((port: Json) => port.port)]));
    expect(services).toEqual({ clickhouse: [8443, 9440, 9363], 'clickhouse-headless': [8443, 9440, 9363, 9010] });
  });

  it("tells each member its replica name from its pod, and its own, its peers' and Keeper's stable names, which the certificates carry", () => {
    expect(env.CLICKHOUSE_REPLICA!.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.CLICKHOUSE_INTERSERVER_HOST!.value).toBe('$(ALLIXIOS_MEMBER_NAME).clickhouse-headless.allixios-prod.svc.cluster.local');
    const names = (containerOf(prod).env as Json[]).map((entry) => entry.name as string);
    expect(names.indexOf('ALLIXIOS_MEMBER_NAME')).toBeLessThan(names.indexOf('CLICKHOUSE_INTERSERVER_HOST'));
    expect([env.CLICKHOUSE_MEMBER_HOST_0!.value, env.CLICKHOUSE_MEMBER_HOST_1!.value]).toEqual([
      'clickhouse-0.clickhouse-headless.allixios-prod.svc.cluster.local',
      'clickhouse-1.clickhouse-headless.allixios-prod.svc.cluster.local',
    ]);
    expect(env.CLICKHOUSE_MEMBER_HOST_2).toBeUndefined();
    expect([0, 1, 2].map((ordinal) => env[`CLICKHOUSE_KEEPER_HOST_${ordinal}`]!.value)).toEqual(
      [0, 1, 2].map((ordinal) => `clickhouse-keeper-${ordinal}.clickhouse-keeper-headless.allixios-prod.svc.cluster.local`),
    );
    const certificate = prod.resources.find(
      (resource) => resource.type === 'kubernetes:cert-manager.io/v1:Certificate' && (resource.inputs as Json).metadata.name === 'clickhouse-tls',
    )!.inputs as Json;
    expect(certificate.spec.dnsNames).toContain('*.clickhouse-headless.allixios-prod.svc.cluster.local');
  });

  it("mounts the replication file beside the engine's own, with macros, Keeper and the cluster, and no secret value in any ConfigMap", () => {
    const [configMap] = clickhouseObjects(prod, 'ConfigMap');
    expect(Object.keys(configMap!.data).sort()).toEqual(['config.config.d.allixios.xml', 'config.config.d.replication.xml', 'config.config.d.tls.xml']);
    const mounts = Object.fromEntries((containerOf(prod).volumeMounts as Json[]).map((mount) => [mount.mountPath, mount]));
    expect(mounts['/etc/clickhouse-server/config.d/replication.xml']).toMatchObject({ subPath: 'config.config.d.replication.xml', readOnly: true });
    for (const element of ['<macros>', '<zookeeper>', '<remote_servers>', '<allixios>', '<interserver_https_port>9010</interserver_https_port>', '<port>9281</port>']) {
      expect(replicationXml).toContain(element);
    }
    expect(prod.generatedSecrets.length).toBeGreaterThan(0);
    for (const map of prod.resources.filter((resource) => resource.inputs.kind === 'ConfigMap')) {
      const text = JSON.stringify(unwrapSecrets(map.inputs));
      for (const secret of prod.generatedSecrets) expect(text, map.name).not.toContain(secret);
    }
  });

  it("gives the interserver password and the cluster secret from the engine's Secret by reference only", () => {
    expect(env.CLICKHOUSE_INTERSERVER_PASSWORD!.valueFrom).toEqual({ secretKeyRef: { name: 'clickhouse-credentials', key: 'interserver-password' } });
    expect(env.CLICKHOUSE_CLUSTER_SECRET!.valueFrom).toEqual({ secretKeyRef: { name: 'clickhouse-credentials', key: 'cluster-secret' } });
    const secret = unwrapSecrets(clickhouseObjects(prod, 'Secret')[0]!.stringData) as Record<string, string>;
    for (const key of ['interserver-password', 'cluster-secret']) expect(secret[key]!.length, key).toBeGreaterThan(0);
    expect(replicationXml).toContain('<password from_env="CLICKHOUSE_INTERSERVER_PASSWORD"/>');
    expect(replicationXml).toContain('<secret from_env="CLICKHOUSE_CLUSTER_SECRET"/>');
  });

  it('opens the interserver port to the members only, the client ports to clients and members', () => {
    const [policy] = clickhouseObjects(prod, 'NetworkPolicy');
    const rules = policy!.spec.ingress as Json[];
    const interserver = rules.filter((rule) => (rule.ports as Json[]).some((port) => port.port === 9010));
    expect(interserver).toEqual([{ from: [{ podSelector: { matchLabels: SELECTOR } }], ports: [{ port: 9010, protocol: 'TCP' }] }]);
    expect((rules[0]!.ports as Json[]).map((port) => port.port)).toEqual([8443, 9440, 9363]);
  });

  it("passes the policy pack's mandatory resource policies", async () => {
    const policies = databasePolicies({ currentStack: () => 'prod' }).filter((policy): policy is ResourceValidationPolicy => 'validateResource' in policy);
    const violations: string[] = [];
    let applied = 0;
    for (const resource of prod.resources.filter((candidate) => (candidate.inputs as Json).metadata?.labels?.['app.kubernetes.io/name'] === 'clickhouse')) {
      for (const policy of policies) {
        const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource!];
        for (const validate of validations) {
          let notApplicable = false;
          const args = {
            type: resource.type,
            name: resource.name,
            urn: `urn:pulumi:prod::allixios::${resource.type}::${resource.name}`,
            props: unwrapSecrets(resource.inputs) as Json,
            opts: {
              protect: prod.options.get(resource.name)?.protect === true,
              ignoreChanges: [],
              aliases: [],
              additionalSecretOutputs: [],
              customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
            },
            stackTags: new Map(),
            // The server matches a class by its `__pulumiType` (as test/policy.test.ts's harness does).
            isType: (resourceClass: unknown) => (resourceClass as { __pulumiType?: string }).__pulumiType === resource.type,
            asType: (resourceClass: unknown) => ((resourceClass as { __pulumiType?: string }).__pulumiType === resource.type ? unwrapSecrets(resource.inputs) : undefined),
            getConfig: () => ({}),
            notApplicable: (): never => {
              notApplicable = true;
              throw new Error('not applicable');
            },
          } as unknown as ResourceValidationArgs;
          try {
            // Advisory policies warn (the prod stack's storage class is the operator's to vouch for); mandatory ones refuse.
            await validate(args, (message) => (policy.enforcementLevel === 'advisory' ? undefined : violations.push(`${policy.name} ${resource.name}: ${message}`)));
          } catch (error) {
            if (!notApplicable) throw error;
          }
          if (!notApplicable) applied += 1;
        }
      }
    }
    expect(violations).toEqual([]);
    // The StatefulSet alone is checked by nine policies; the ConfigMap by the one on secrets.
    expect(applied).toBeGreaterThan(10);
  });
});

describe('ClickHouse replicas on the other Kubernetes stacks', () => {
  it('replicates in staging, preferring other nodes (a small cluster may not have two)', async () => {
    const staging = await evaluate(
      { environment: 'staging', namespace: 'allixios-staging', bootstrap: BOOTSTRAP, engines: withPostgresqlImage({ clickhouse: { replicas: 2 } }) },
      'staging',
    );
    const [statefulSet] = clickhouseObjects(staging, 'StatefulSet');
    expect(statefulSet!.spec.replicas).toBe(2);
    expect(Object.keys(statefulSet!.spec.template.spec.affinity.podAntiAffinity)).toEqual(['preferredDuringSchedulingIgnoredDuringExecution']);
    expect(envOf(staging).CLICKHOUSE_KEEPER_HOST_0!.value).toBe('clickhouse-keeper-0.clickhouse-keeper-headless.allixios-staging.svc.cluster.local');
    // Every preview says that the members need the Keeper the stack does not deploy yet.
    expect(staging.config.warnings.some((warning) => /allixios:engines\.clickhouse: replicas: 2 members coordinate through ClickHouse Keeper .* read-only/.test(warning))).toBe(
      true,
    );
  });

  it('uses the plain Keeper, native and interserver ports on a stack without TLS', async () => {
    // (Elasticsearch's nodes need transport TLS to cluster: one node on a stack without TLS.)
    const plain = await evaluate(
      {
        environment: 'staging',
        namespace: 'allixios-staging',
        bootstrap: BOOTSTRAP,
        engines: { ...withPostgresqlImage(), elasticsearch: { replicas: 1 }, clickhouse: { replicas: 2 } },
        tls: false,
      },
      'staging',
    );
    const xml = clickhouseObjects(plain, 'ConfigMap')[0]!.data['config.config.d.replication.xml'] as string;
    expect(xml).toContain('<port>9181</port>');
    expect(xml).toContain('<port>9000</port>');
    expect(xml).toContain('<interserver_http_port>9009</interserver_http_port>');
    expect(xml).not.toContain('<secure>');
    expect((containerOf(plain).ports as Json[]).map((port) => port.containerPort)).toEqual([8123, 9000, 9363, 9009]);
  });

  it('runs one plain member on the stack files as they are, until the stack deploys Keeper, and warns of nothing', async () => {
    const staging = await evaluateStack('staging');
    expect(clickhouseObjects(staging, 'StatefulSet')[0]!.spec.replicas).toBe(1);
    expect(staging.config.warnings.filter((warning) => warning.includes('clickhouse'))).toEqual([]);
  });

  it('runs the single server on an ephemeral stack: one member, no replication file, no interserver port', async () => {
    const ephemeral = await evaluate({ environment: 'ephemeral', namespace: 'allixios-pr-1', bootstrap: BOOTSTRAP }, 'pr-1');
    const [statefulSet] = clickhouseObjects(ephemeral, 'StatefulSet');
    expect(statefulSet!.spec.replicas).toBe(1);
    expect(Object.keys(clickhouseObjects(ephemeral, 'ConfigMap')[0]!.data)).not.toContain('config.config.d.replication.xml');
    expect((containerOf(ephemeral).ports as Json[]).map((port) => port.containerPort)).not.toContain(9010);
    expect(envOf(ephemeral).CLICKHOUSE_REPLICA).toBeUndefined();
  });
});
