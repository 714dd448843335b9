/**
 * MongoDB's replica set as the stacks render it (under mocks): on Kubernetes, members of `rs0`
 * that authenticate each other with a generated key file (copied at each start to memory with mode
 * 0400), are ready as primary or secondary and alive while they answer, are spread across nodes,
 * kept to one voluntary disruption at a time, and reach each other on 27017 alone; URLs that name
 * the set and the platform's write concern; a bootstrap Job that knows every desired member; every
 * object valid against the Kubernetes schema and the policy pack satisfied. On Docker, the single
 * mongod of before. The options themselves are checked in test/engines/mongodb-config.test.ts, the
 * bootstrap's planner in test/bootstrap/mongodb-replica-set-plan.test.ts.
 */
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { beforeAll, describe, expect, it } from 'vitest';
import { KEYFILE_MOUNT_PATH, KEYFILE_PATH, MEMBER_READY_SCRIPT, MEMBER_START, REPLICA_SET_MEMBERS_VARIABLE } from '../databases/mongodb/replica-set.ts';
import { databasePolicies, type ResourceValidationArgs, type ResourceValidationPolicy } from '../policy/policies.ts';
import { unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluate, evaluateStack, unwrap, type Evaluation } from './support/pulumi.ts';
import { PROD_BACKUPS, withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const BOOTSTRAP = { image: 'ghcr.io/allixios/allixios-bootstrap:0.1.0' };
const SELECTOR = { 'app.kubernetes.io/name': 'mongodb', 'app.kubernetes.io/instance': 'allixios-prod' };

const objects = (evaluation: Evaluation, kind: string) =>
  evaluation.resources
    .filter(
      (resource) =>
        resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind && (resource.inputs as Json).metadata?.labels?.['app.kubernetes.io/name'] === 'mongodb',
    )
    .map((resource) => resource.inputs as Json);
const only = (evaluation: Evaluation, kind: string) => {
  const found = objects(evaluation, kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};
const bootstrapJob = (evaluation: Evaluation) => evaluation.resources.find((resource) => resource.type === 'kubernetes:batch/v1:Job')!.inputs as Json;
const jobEnv = (evaluation: Evaluation) => Object.fromEntries((bootstrapJob(evaluation).spec.template.spec.containers[0].env as Json[]).map((entry) => [entry.name, entry]));
const member = (ordinal: number, namespace = 'allixios-prod') => `mongodb-${ordinal}.mongodb-headless.${namespace}.svc.cluster.local:27017`;

describe('MongoDB on the prod stack (Pulumi.prod.yaml)', () => {
  let prod: Evaluation;
  let statefulSet: Json;
  let container: Json;
  beforeAll(async () => {
    prod = await evaluateStack('prod');
    statefulSet = only(prod, 'StatefulSet');
    container = statefulSet.spec.template.spec.containers[0];
  });

  it('runs three members of rs0 from the official image, every object valid against the Kubernetes schema', () => {
    expect(statefulSet.spec.replicas).toBe(3);
    expect(container.image).toMatch(/^mongo:8\.0\.\d+$/);
    expect(container.args.slice(-4)).toEqual(['--replSet', 'rs0', '--keyFile', KEYFILE_PATH]);
    // The single server's own arguments come first: config file, cache size, TLS
    expect(container.args.slice(0, 3)).toEqual(['mongod', '--config', '/etc/mongo/mongod.conf']);
    expect(container.args.join(' ')).toContain('--tlsMode requireTLS');
    new StatefulSet(statefulSet as never).validate();
    for (const service of objects(prod, 'Service')) new Service(service as never).validate();
    new NetworkPolicy(only(prod, 'NetworkPolicy') as never).validate();
    new PodDisruptionBudget(only(prod, 'PodDisruptionBudget') as never).validate();
    new Secret(unwrapSecrets(only(prod, 'Secret')) as never).validate();
    new Job(unwrapSecrets(bootstrapJob(prod)) as never).validate();
  });

  it('never puts two members on one node, spreads them across zones, and lets one go at a time', () => {
    const pod = statefulSet.spec.template.spec;
    expect(pod.affinity.podAntiAffinity).toEqual({
      requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: SELECTOR } }],
    });
    expect(pod.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: SELECTOR } },
    ]);
    // Three voters, one voluntarily down at most: two remain, a majority, and keep (or elect) a primary
    expect(only(prod, 'PodDisruptionBudget').spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: SELECTOR } });
    // No Kubernetes API access: MongoDB elects by itself
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBeUndefined();
    expect(objects(prod, 'Role')).toEqual([]);
  });

  it('admits the members to each other on 27017, with the clients and the bootstrap, and on no other port', () => {
    const policy = only(prod, 'NetworkPolicy');
    expect(policy.spec.ingress).toHaveLength(1);
    const rule = (policy.spec.ingress as Json[])[0]!;
    expect(rule.ports).toEqual([{ port: 27017, protocol: 'TCP' }]);
    expect(rule.from).toContainEqual({ podSelector: { matchLabels: SELECTOR } });
    // No rule without ports (which would admit every port) for the members
    expect((policy.spec.ingress as Json[]).every((ingress) => Array.isArray(ingress.ports) && ingress.ports.length > 0)).toBe(true);
  });

  it('addresses the members by their headless names, which their certificate carries, and serves clients through one Service over every member', () => {
    const services = objects(prod, 'Service');
    expect(services.map((service) => service.metadata.name).sort()).toEqual(['mongodb', 'mongodb-headless']);
    const headless = services.find((service) => service.metadata.name === 'mongodb-headless')!;
    expect(headless.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, selector: SELECTOR });
    expect(statefulSet.spec.serviceName).toBe('mongodb-headless');
    const certificate = prod.resources.find(
      (resource) => resource.type === 'kubernetes:cert-manager.io/v1:Certificate' && (resource.inputs as Json).metadata.name === 'mongodb-tls',
    )!.inputs as Json;
    expect(certificate.spec.dnsNames).toContain('*.mongodb-headless.allixios-prod.svc.cluster.local');
    // Members present it to each other as clients too
    expect(certificate.spec.usages).toContain('client auth');
  });

  it('gives each member the key file from the Secret, copied at start to memory with mode 0400, and keeps it out of ConfigMaps', async () => {
    expect(container.command).toEqual(['sh', '-c', MEMBER_START, 'mongodb-member']);
    const secret = unwrapSecrets(only(prod, 'Secret')) as Json;
    expect(secret.stringData['config.replica-set-keyfile']).toBe(`${secret.stringData['replica-set-keyfile']}\n`);
    const volume = (statefulSet.spec.template.spec.volumes as Json[]).find((candidate) => candidate.secret?.secretName === 'mongodb-credentials')!;
    expect(volume.secret.items).toContainEqual({ key: 'config.replica-set-keyfile', path: 'replica-set-keyfile', mode: 0o440 });
    const mount = (container.volumeMounts as Json[]).find((candidate) => candidate.name === volume.name)!;
    expect(`${mount.mountPath}/replica-set-keyfile`).toBe(KEYFILE_MOUNT_PATH);
    expect(mount.subPath).toBeUndefined();
    // The key is no command-line argument, no variable, no ConfigMap entry
    const key = secret.stringData['replica-set-keyfile'] as string;
    expect(JSON.stringify(statefulSet)).not.toContain(key);
    expect(JSON.stringify(objects(prod, 'ConfigMap'))).not.toContain(key);
    expect(prod.generatedSecrets).toContain(key);
  });

  it('tells a ready member (primary or secondary) from a live one (answers a ping, in initial sync too)', () => {
    const readiness = (container.readinessProbe.exec.command as string[]).at(-1);
    expect(readiness).toBe(MEMBER_READY_SCRIPT);
    // The readiness check also reloads a renewed certificate (stacks/kubernetes/tls.ts)
    expect((container.readinessProbe.exec.command as string[]).join(' ')).toContain('rotateCertificates');
    for (const probe of [container.livenessProbe, container.startupProbe]) {
      expect((probe.exec.command as string[]).at(-1)).toBe("quit(db.adminCommand('ping').ok === 1 ? 0 : 1)");
      expect(probe.exec.command.join(' ')).not.toContain('hello');
    }
  });

  it('exports URLs that name the set and the write concern, through the Service that reaches every member', async () => {
    for (const output of [prod.outputs.urls.MONGODB_URL!, prod.outputs.bootstrapUrls.MONGODB_URL!]) {
      const url = new URL(await unwrap(output));
      expect(url.host).toBe('mongodb.allixios-prod.svc:27017');
      expect(url.searchParams.get('replicaSet')).toBe('rs0');
      expect(url.searchParams.get('w')).toBe('majority');
      expect(url.searchParams.get('tls')).toBe('true');
    }
  });

  it("hands the bootstrap Job every desired member's address, and its URLs name the set", () => {
    const env = jobEnv(prod);
    expect(env[REPLICA_SET_MEMBERS_VARIABLE]).toEqual({ name: REPLICA_SET_MEMBERS_VARIABLE, value: [0, 1, 2].map((ordinal) => member(ordinal)).join(',') });
    for (const variable of ['MONGODB_URL', 'MONGODB_URL_APP']) expect(new URL(env[variable].value).searchParams.get('replicaSet'), variable).toBe('rs0');
  });

  it('passes every mandatory policy of the pack', async () => {
    const mongodbResources = prod.resources.filter((resource) => JSON.stringify(resource.inputs).includes('"app.kubernetes.io/name":"mongodb"'));
    expect(mongodbResources.length).toBeGreaterThan(5);
    const policies = databasePolicies({ currentStack: () => 'prod' }).filter(
      (policy): policy is ResourceValidationPolicy => 'validateResource' in policy && policy.enforcementLevel === 'mandatory',
    );
    const violations: string[] = [];
    let applied = 0;
    for (const policy of policies) {
      const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource!];
      for (const resource of [...mongodbResources, ...prod.resources.filter((candidate) => candidate.type === 'kubernetes:batch/v1:Job')]) {
        const props = unwrapSecrets(resource.inputs) as Json;
        const args = {
          type: resource.type,
          name: resource.name,
          urn: `urn:pulumi:prod::allixios::${resource.type}::${resource.name}`,
          props,
          opts: {
            protect: prod.options.get(resource.name)?.protect === true,
            ignoreChanges: [],
            aliases: [],
            additionalSecretOutputs: [],
            customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
          },
          stackTags: new Map(),
          isType: (resourceClass: unknown) => (resourceClass as { __pulumiType?: string }).__pulumiType === resource.type,
          asType: (resourceClass: unknown) => ((resourceClass as { __pulumiType?: string }).__pulumiType === resource.type ? props : undefined),
          getConfig: () => ({}),
          notApplicable: (): never => {
            throw new Error('not applicable');
          },
        } as unknown as ResourceValidationArgs;
        for (const validation of validations) {
          try {
            await validation(args, (message) => violations.push(`${policy.name}: ${message}`));
            applied += 1;
          } catch (error) {
            if ((error as Error).message !== 'not applicable') throw error;
          }
        }
      }
    }
    expect(violations).toEqual([]);
    // Not vacuous: the workload policies (resources, probes, non-root, secrets from Secrets, pinned
    // images, claims, protection, TLS) applied to the StatefulSet and the Job, the others to theirs
    expect(applied).toBeGreaterThanOrEqual(10);
  });
});

describe('MongoDB on the other stacks', () => {
  it('staging runs three members too, preferring other nodes (a small cluster may have fewer)', async () => {
    const staging = await evaluate({ environment: 'staging', namespace: 'allixios-staging', bootstrap: BOOTSTRAP, engines: withPostgresqlImage() }, 'staging');
    const statefulSet = only(staging, 'StatefulSet');
    expect(statefulSet.spec.replicas).toBe(3);
    expect(Object.keys(statefulSet.spec.template.spec.affinity.podAntiAffinity)).toEqual(['preferredDuringSchedulingIgnoredDuringExecution']);
    expect(jobEnv(staging)[REPLICA_SET_MEMBERS_VARIABLE].value).toBe([0, 1, 2].map((ordinal) => member(ordinal, 'allixios-staging')).join(','));
  });

  it('an ephemeral stack runs a set of one member, with the same procedures, and no anti-affinity', async () => {
    const ephemeral = await evaluate({ environment: 'ephemeral', namespace: 'pr-42', bootstrap: BOOTSTRAP });
    const statefulSet = only(ephemeral, 'StatefulSet');
    expect(statefulSet.spec.replicas).toBe(1);
    expect(statefulSet.spec.template.spec.affinity).toBeUndefined();
    expect(statefulSet.spec.template.spec.containers[0].args).toContain('--replSet');
    expect(jobEnv(ephemeral)[REPLICA_SET_MEMBERS_VARIABLE].value).toBe(member(0, 'pr-42'));
    expect(new URL(await unwrap(ephemeral.outputs.urls.MONGODB_URL!)).searchParams.get('replicaSet')).toBe('rs0');
  });

  it('the members of a cluster with another DNS domain are named in it', async () => {
    const stack = await evaluate({ environment: 'ephemeral', namespace: 'pr-7', clusterDomain: 'corp.internal', bootstrap: BOOTSTRAP });
    expect(jobEnv(stack)[REPLICA_SET_MEMBERS_VARIABLE].value).toBe('mongodb-0.mongodb-headless.pr-7.svc.corp.internal:27017');
  });

  it('a change of the replicas runs the bootstrap again (a new Job), which brings the set to the new members', async () => {
    const three = await evaluate({ environment: 'ephemeral', namespace: 'pr-42', bootstrap: BOOTSTRAP, engines: { mongodb: { replicas: 3 } } });
    const one = await evaluate({ environment: 'ephemeral', namespace: 'pr-42', bootstrap: BOOTSTRAP });
    const again = await evaluate({ environment: 'ephemeral', namespace: 'pr-42', bootstrap: BOOTSTRAP });
    const name = (evaluation: Evaluation) => evaluation.resources.find((resource) => resource.type === 'kubernetes:batch/v1:Job')!.name;
    expect(name(three)).not.toBe(name(one));
    expect(name(again)).toBe(name(one));
  });

  it('Docker (dev) keeps the single mongod of before: no set, no key, no replicaSet in its URLs', async () => {
    const dev = await evaluate({ environment: 'dev', namespace: 'allixios-dev' }, 'dev');
    const container = dev.resources.find((resource) => resource.type === 'docker:index/container:Container' && resource.name === 'allixios-mongodb-container')!.inputs as Json;
    expect(container.command.join(' ')).not.toMatch(/--replSet|--keyFile/);
    expect((container.uploads as Json[]).map((upload) => upload.file)).not.toContain(KEYFILE_MOUNT_PATH);
    expect(container.entrypoints).toBeUndefined();
    for (const output of [dev.outputs.urls.MONGODB_URL!, dev.outputs.bootstrapUrls.MONGODB_URL!]) {
      const url = new URL(await unwrap(output));
      expect(url.searchParams.get('replicaSet')).toBeNull();
      expect(url.searchParams.get('w')).toBe('majority');
    }
  });
});

describe("MongoDB's replicas and key in the stack config", () => {
  const prod = { environment: 'prod', namespace: 'allixios-prod', bootstrap: BOOTSTRAP, backups: PROD_BACKUPS };

  it('refuses an even number of members, naming the key', async () => {
    await expect(evaluate({ ...prod, engines: withPostgresqlImage({ mongodb: { replicas: 2 } }) }, 'prod')).rejects.toThrow(
      'allixios:engines.mongodb.replicas: expected an odd number of members (a majority of an even number survives no more losses than one member fewer, and two members survive none), got 2',
    );
  });

  it('refuses a rotation of the key file, which needs every member to hold both keys while they restart one by one', async () => {
    await expect(evaluate({ ...prod, engines: withPostgresqlImage(), rotations: { mongodb: { 'replica-set-keyfile': { generation: 1 } } } }, 'prod')).rejects.toThrow(
      /allixios:rotations\.mongodb\.replica-set-keyfile: expected unset, since the stack does not rotate it \(every member must hold the old and the new key .*\), got \{"generation":1\}/,
    );
  });

  it('refuses a configured key mongod would refuse, without showing it', async () => {
    const attempt = evaluate({ ...prod, engines: withPostgresqlImage(), passwords: { mongodb: { 'replica-set-keyfile': 'not-base64!-but-long-enough' } } }, 'prod');
    await expect(attempt).rejects.toThrow(
      'allixios:passwords.mongodb.replica-set-keyfile: expected a key of 6 to 1024 characters of the base64 alphabet (A-Z, a-z, 0-9, +, /, =), as mongod requires of a key file, got a value that is not (not shown)',
    );
    await expect(attempt).rejects.not.toThrow(/not-base64/);
  });
});
