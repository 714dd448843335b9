/**
 * ClickHouse's replicas as the stacks render them (under mocks, from Pulumi.prod.yaml and inline
 * configs): two members in prod, each told who it is by its pod and where its peers and Keeper
 * are by their stable names, its replication file in the ConfigMap without a secret in it, the
 * interserver port open to members only, every object valid against the Kubernetes schema and
 * passing the policy pack's resource policies. Staging replicates too, ephemeral runs the single
 * server. Beside the members, the Keeper ensemble as a companion workload of its own: three
 * members started together, each with its Raft id from its pod name and a persistent volume, its
 * client port open to the ClickHouse members only, Raft to its own members only, its HTTP control
 * to nobody, mutual TLS on a TLS stack.
 */
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouse, TLS_DIRECTORY } from '../databases/clickhouse/index.ts';
import { KEEPER_SERVER_ID_VARIABLE, keeperProbeScript } from '../databases/clickhouse/keeper.ts';
import { CLICKHOUSE_KEEPER } from '../databases/clickhouse/replication.ts';
import { databasePolicies, type ResourceValidationArgs, type ResourceValidationPolicy } from '../policy/policies.ts';
import { redactSecrets, unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluate, evaluateStack, type Evaluation } from './support/pulumi.ts';
import { withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const MODELS: Record<string, new (data: Json) => { validate(): void }> = { ConfigMap, Secret, Service, StatefulSet, PodDisruptionBudget, NetworkPolicy };
const BOOTSTRAP = { image: 'ghcr.io/allixios/allixios-bootstrap:0.1.0' };

/** The Kubernetes objects of `kind` whose `app.kubernetes.io/name` is `name`. */
const objectsOf = (name: string) => (evaluation: Evaluation, kind: string) =>
  evaluation.resources
    .filter(
      (resource) => resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind && (resource.inputs as Json).metadata?.labels?.['app.kubernetes.io/name'] === name,
    )
    .map((resource) => resource.inputs as Json);

/** ClickHouse's objects of a kind, and ClickHouse Keeper's (the companion's pods are `app.kubernetes.io/name: clickhouse-keeper`). */
const clickhouseObjects = objectsOf('clickhouse');
const keeperObjects = objectsOf('clickhouse-keeper');

const containerOf = (evaluation: Evaluation) => clickhouseObjects(evaluation, 'StatefulSet')[0]!.spec.template.spec.containers[0] as Json;
const envOf = (evaluation: Evaluation) => Object.fromEntries((containerOf(evaluation).env as Json[]).map((entry) => [entry.name as string, entry]));
const SELECTOR = { 'app.kubernetes.io/name': 'clickhouse', 'app.kubernetes.io/instance': 'allixios-prod' };

describe('ClickHouse replicas on the prod stack', () => {
  let prod: Evaluation;
  let env: Record<string, Json>;
  let replicationXml: string;
  beforeAll(async () => {
    prod = await evaluateStack('prod');
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
    // backup.xml: the backups' named collection (databases/clickhouse/backup.ts).
    expect(Object.keys(configMap!.data).sort()).toEqual([
      'config.config.d.allixios.xml',
      'config.config.d.backup.xml',
      'config.config.d.replication.xml',
      'config.config.d.tls.xml',
    ]);
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
    const names = new Set(['clickhouse', 'clickhouse-keeper']);
    for (const resource of prod.resources.filter((candidate) => names.has((candidate.inputs as Json).metadata?.labels?.['app.kubernetes.io/name']))) {
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
    // Each StatefulSet alone is checked by nine policies; the ConfigMaps by the one on secrets.
    expect(applied).toBeGreaterThan(20);
  });
});

describe('ClickHouse Keeper, a companion of the replicas', () => {
  let prod: Evaluation;
  let keeper: Json;
  let keeperEnv: Record<string, Json>;
  let keeperXml: string;
  const KEEPER_SELECTOR = { 'app.kubernetes.io/name': 'clickhouse-keeper', 'app.kubernetes.io/instance': 'allixios-prod' };
  beforeAll(async () => {
    prod = await evaluateStack('prod');
    keeper = keeperObjects(prod, 'StatefulSet')[0]!;
    keeperEnv = Object.fromEntries((keeper.spec.template.spec.containers[0].env as Json[]).map((entry) => [entry.name as string, entry]));
    keeperXml = Object.values(keeperObjects(prod, 'ConfigMap')[0]!.data as Record<string, string>)[0]!;
  });

  it('runs three members of the ClickHouse release, never two on one node, all started at once, one disrupted at a time, each on a volume of its own', () => {
    expect(() => new StatefulSet(redactSecrets(keeper, '<redacted>') as Json).validate()).not.toThrow();
    expect([keeper.spec.replicas, keeper.spec.podManagementPolicy]).toEqual([3, 'Parallel']);
    const container = keeper.spec.template.spec.containers[0] as Json;
    expect(container.image).toBe(`clickhouse/clickhouse-keeper:${clickhouse.defaultVersion}`);
    expect(keeper.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([
      { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: KEEPER_SELECTOR } },
    ]);
    expect(keeperObjects(prod, 'PodDisruptionBudget')[0]!.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: KEEPER_SELECTOR } });
    expect(keeper.spec.volumeClaimTemplates[0].spec).toMatchObject({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } });
    expect((container.volumeMounts as Json[]).find((mount) => mount.name === 'data')!.mountPath).toBe(CLICKHOUSE_KEEPER.dataPath);
    // The volume is protected with the stack's data: deleting the stack keeps Keeper's state.
    expect(prod.options.get(prod.resources.find((resource) => resource.inputs === keeper)!.name)?.protect).toBe(true);
  });

  it('gives each member its Raft id from its pod name (ordinal + 1) and refuses a name without an ordinal', () => {
    const [shell, flag, script] = keeper.spec.template.spec.containers[0].command as string[];
    expect([shell, flag]).toEqual(['bash', '-c']);
    expect(script).toContain('exec /entrypoint.sh');
    const idOf = (hostname: string) =>
      spawnSync('bash', ['--norc', '-c', script!.replace('exec /entrypoint.sh', `echo "$${KEEPER_SERVER_ID_VARIABLE}"`)], {
        env: { PATH: process.env.PATH, HOSTNAME: hostname },
        encoding: 'utf8',
      });
    expect([0, 1, 2].map((ordinal) => idOf(`clickhouse-keeper-${ordinal}`).stdout.trim())).toEqual(['1', '2', '3']);
    const refused = idOf('clickhouse-keeper');
    expect([refused.status, refused.stderr.trim()]).toEqual([1, "clickhouse-keeper: the pod name 'clickhouse-keeper' ends in no ordinal; expected <statefulset>-<ordinal>"]);
  });

  it('names the members as the ClickHouse members do, under its headless Service, which its certificate carries; every from_env of its file is set', () => {
    const members = [0, 1, 2].map((ordinal) => `clickhouse-keeper-${ordinal}.clickhouse-keeper-headless.allixios-prod.svc.cluster.local`);
    expect([0, 1, 2].map((ordinal) => keeperEnv[`CLICKHOUSE_KEEPER_HOST_${ordinal}`]!.value)).toEqual(members);
    const clickhouseEnv = envOf(prod);
    expect([0, 1, 2].map((ordinal) => clickhouseEnv[`CLICKHOUSE_KEEPER_HOST_${ordinal}`]!.value)).toEqual(members);
    const certificate = prod.resources.find(
      (resource) => resource.type === 'kubernetes:cert-manager.io/v1:Certificate' && (resource.inputs as Json).metadata.name === 'clickhouse-keeper-tls',
    )!.inputs as Json;
    expect(certificate.spec.dnsNames).toContain('*.clickhouse-keeper-headless.allixios-prod.svc.cluster.local');
    expect(certificate.spec.usages).toContain('client auth');
    const fromEnv = [...keeperXml.matchAll(/from_env="([A-Z0-9_]+)"/g)].map((match) => match[1]!);
    expect(fromEnv.length).toBeGreaterThan(3);
    for (const variable of fromEnv) expect(variable === KEEPER_SERVER_ID_VARIABLE || keeperEnv[variable] !== undefined, variable).toBe(true);
    expect(keeperEnv.KEEPER_CONFIG!.value).toBe('/etc/clickhouse-keeper/keeper_config.xml');
    expect((keeper.spec.template.spec.containers[0].volumeMounts as Json[]).find((mount) => mount.mountPath === keeperEnv.KEEPER_CONFIG!.value)).toMatchObject({ readOnly: true });
  });

  it('opens its client port to the ClickHouse members only, Raft to its own members only, and its HTTP control to nobody', () => {
    const [policy] = keeperObjects(prod, 'NetworkPolicy');
    expect(policy!.spec.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: SELECTOR } }], ports: [{ port: CLICKHOUSE_KEEPER.ports.clientSecure, protocol: 'TCP' }] },
      { from: [{ podSelector: { matchLabels: KEEPER_SELECTOR } }], ports: [{ port: CLICKHOUSE_KEEPER.ports.raft, protocol: 'TCP' }] },
    ]);
    const control = CLICKHOUSE_KEEPER.ports.control;
    const ports = [
      ...(keeper.spec.template.spec.containers[0].ports as Json[]).map((port) => port.containerPort as number),
      ...keeperObjects(prod, 'Service').flatMap((service) => (service.spec.ports as Json[]).map((port) => port.port as number)),
    ];
    expect(new Set(ports)).toEqual(new Set([CLICKHOUSE_KEEPER.ports.clientSecure, CLICKHOUSE_KEEPER.ports.raft]));
    expect(ports).not.toContain(control);
    expect(keeperXml).toContain(`<port>${control}</port>`);
  });

  it('requires a certificate of the stack CA from every client and Raft peer (mutual TLS), which the ClickHouse members present', () => {
    const server = keeperXml.slice(keeperXml.indexOf('<server>\n            <certificateFile>'), keeperXml.indexOf('</server>\n        <client>'));
    expect(server).toContain('<verificationMode>strict</verificationMode>');
    expect(server).toContain('<caConfig>/etc/clickhouse-keeper/tls/ca.crt</caConfig>');
    const client = keeperXml.slice(keeperXml.indexOf('<client>'));
    for (const element of [
      '<certificateFile>/etc/clickhouse-keeper/tls/tls.crt</certificateFile>',
      '<verificationMode>relaxed</verificationMode>',
      '<extendedVerification>true</extendedVerification>',
    ]) {
      expect(client).toContain(element);
    }
    const replicationXml = clickhouseObjects(prod, 'ConfigMap')[0]!.data['config.config.d.replication.xml'] as string;
    expect(replicationXml).toContain(`<certificateFile>${TLS_DIRECTORY}/tls.crt</certificateFile>`);
    expect(replicationXml).toContain(`<privateKeyFile>${TLS_DIRECTORY}/tls.key</privateKeyFile>`);
    expect(keeperXml).toContain('<secure>true</secure>');
    expect(keeperXml).not.toContain('<tcp_port>');
  });

  it('keeps the root filesystem read-only, with scratch for what the entrypoint checks, and no Secret but its certificate', () => {
    const pod = keeper.spec.template.spec as Json;
    const container = pod.containers[0] as Json;
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true, allowPrivilegeEscalation: false });
    expect(keeperEnv.CLICKHOUSE_DATA_DIR!.value).toBe(CLICKHOUSE_KEEPER.dataPath);
    const scratch = (container.volumeMounts as Json[]).filter((mount) => mount.name.startsWith('scratch-')).map((mount) => mount.mountPath);
    expect(scratch).toEqual(['/tmp', keeperEnv.LOG_DIR!.value]);
    const secrets = (pod.volumes as Json[]).filter((volume) => volume.secret).map((volume) => volume.secret.secretName);
    expect(secrets).toEqual(['clickhouse-keeper-tls']);
    for (const secret of prod.generatedSecrets) expect(keeperXml).not.toContain(secret);
  });
});

describe('the probes of a Keeper member, run by bash against an HTTP control', () => {
  let server: Server;
  let port: number;
  let answer = 200;
  beforeAll(async () => {
    server = createServer((request, response) => {
      response.writeHead(request.url === '/ready' ? answer : 404, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ status: answer === 200 ? 'ok' : 'fail' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  // Asynchronously: the HTTP control answering is this process's own server.
  const run = (kind: 'ready' | 'live', at: number) =>
    new Promise<number | null>((resolve) => {
      const child = spawn('bash', ['--norc', '-c', keeperProbeScript(kind, at)], { stdio: 'ignore', timeout: 5_000 });
      child.on('exit', (code) => resolve(code));
    });

  it('is ready when /ready answers 200 (a leader, or a follower that knows its leader), alive either way', async () => {
    answer = 200;
    expect([await run('ready', port), await run('live', port)]).toEqual([0, 0]);
    answer = 503;
    expect([await run('ready', port), await run('live', port)]).toEqual([1, 0]);
  });

  it('is neither when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const free = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect([await run('ready', free), await run('live', free)]).toEqual([1, 1]);
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
    const keeper = keeperObjects(staging, 'StatefulSet')[0]!;
    expect([keeper.spec.replicas, Object.keys(keeper.spec.template.spec.affinity.podAntiAffinity)]).toEqual([3, ['preferredDuringSchedulingIgnoredDuringExecution']]);
    expect(keeper.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('5Gi');
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

  it('runs two members and their Keeper on the staging stack file as it is, and warns of nothing', async () => {
    const staging = await evaluateStack('staging');
    expect(clickhouseObjects(staging, 'StatefulSet')[0]!.spec.replicas).toBe(2);
    expect(keeperObjects(staging, 'StatefulSet')[0]!.spec.replicas).toBe(3);
    expect(staging.config.warnings.filter((warning) => warning.includes('clickhouse'))).toEqual([]);
  });

  it('runs the single server on an ephemeral stack: one member, no replication file, no interserver port', async () => {
    const ephemeral = await evaluate({ environment: 'ephemeral', namespace: 'allixios-pr-1', bootstrap: BOOTSTRAP }, 'pr-1');
    const [statefulSet] = clickhouseObjects(ephemeral, 'StatefulSet');
    expect(statefulSet!.spec.replicas).toBe(1);
    expect(Object.keys(clickhouseObjects(ephemeral, 'ConfigMap')[0]!.data)).not.toContain('config.config.d.replication.xml');
    expect((containerOf(ephemeral).ports as Json[]).map((port) => port.containerPort)).not.toContain(9010);
    expect(envOf(ephemeral).CLICKHOUSE_REPLICA).toBeUndefined();
    expect(keeperObjects(ephemeral, 'StatefulSet')).toEqual([]);
  });
});
