/**
 * Redis under Sentinel as the Kubernetes target renders it (under mocks): the members (a master and
 * two replicas in prod) started by their script, the Sentinels as a companion workload of their own
 * (three, quorum 2), each with a budget that keeps a majority, NetworkPolicies that open each port
 * to its audience only, probes that tell a live member from a ready one, the secrets in the Secret
 * only, and the settings a Sentinel-aware client needs in the stack's outputs. The rendered
 * configuration on real processes: test/engines/redis-sentinel.test.ts and `npm run drill:redis-sentinel`.
 */
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import { beforeAll, describe, expect, it } from 'vitest';
import { MASTER_NAME, minReplicasToWrite, sentinelQuorum } from '../databases/redis/sentinel.ts';
import { companionAddresses, companionMaxUnavailable } from '../stacks/kubernetes/companion.ts';
import { evaluate, evaluateStack, unwrap, type Evaluation } from './support/pulumi.ts';
import { withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const named = (evaluation: Evaluation, kind: string, name: string): Json =>
  evaluation.resources.find((resource) => resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind && (resource.inputs as Json).metadata?.name === name)
    ?.inputs as Json;
const container = (statefulSet: Json): Json => statefulSet.spec.template.spec.containers[0];
const env = (statefulSet: Json): Record<string, Json> => Object.fromEntries((container(statefulSet).env as Json[]).map((entry) => [entry.name, entry]));

let prod: Evaluation;
let staging: Evaluation;
let ephemeral: Evaluation;
beforeAll(async () => {
  prod = await evaluateStack('prod');
  staging = await evaluate({ environment: 'staging', namespace: 'allixios-staging', bootstrap: { enabled: false }, engines: withPostgresqlImage() }, 'staging');
  ephemeral = await evaluate({ environment: 'ephemeral', namespace: 'allixios-pr-7', bootstrap: { enabled: false } }, 'pr-7');
});

describe('Redis members under Sentinel', () => {
  it('runs a master and two replicas in prod and staging, one member on an ephemeral stack, never two on one node in prod', () => {
    const redis = named(prod, 'StatefulSet', 'redis');
    new StatefulSet(redis as never).validate();
    expect([redis.spec.replicas, named(staging, 'StatefulSet', 'redis').spec.replicas, named(ephemeral, 'StatefulSet', 'redis').spec.replicas]).toEqual([3, 3, 1]);
    expect(redis.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([
      { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': 'allixios-prod' } } },
    ]);
    // One member at a time may be drained: two of three stay.
    expect(named(prod, 'PodDisruptionBudget', 'redis').spec.maxUnavailable).toBe(1);
  });

  it('starts each member by its script with the engine’s arguments, the replication user’s file and the isolated master’s bound', () => {
    const redis = named(prod, 'StatefulSet', 'redis');
    expect(container(redis).command).toEqual(['sh', '/etc/redis/ha/redis-member.sh', 'start']);
    const args = container(redis).args as string[];
    expect(args.slice(0, 2)).toEqual(['redis-server', '/etc/redis/redis.conf']);
    expect(args).toContain('--tls-replication');
    expect(args.slice(-6)).toEqual(['--include', '/etc/redis/secrets/replication.conf', '--min-replicas-to-write', '1', '--min-replicas-max-lag', '4']);
    // The member's own name under the headless Service, and its peers' and the Sentinels', from
    // the namespace's domain the target fills in first.
    const variables = env(redis);
    const names = (container(redis).env as Json[]).map((entry) => entry.name as string);
    expect(variables.ALLIXIOS_DOMAIN!.value).toBe('allixios-prod.svc.cluster.local');
    expect(names.indexOf('ALLIXIOS_DOMAIN')).toBeLessThan(names.indexOf('ALLIXIOS_SENTINELS'));
    expect(variables.REDIS_ANNOUNCE!.value).toBe('$(ALLIXIOS_MEMBER_NAME).redis-headless.allixios-prod.svc.cluster.local:6379');
    expect(variables.ALLIXIOS_REDIS_MEMBERS!.value).toBe([0, 1, 2].map((n) => `redis-${n}.redis-headless.$(ALLIXIOS_DOMAIN):6379`).join(' '));
    // The Sentinels' names as the companion renders them.
    expect(variables.ALLIXIOS_SENTINELS!.value.replaceAll('$(ALLIXIOS_DOMAIN)', 'allixios-prod.svc.cluster.local')).toBe(
      companionAddresses(
        prod.config.engines.find(({ spec }) => spec.name === 'redis')!.spec,
        prod.config.engines.find(({ spec }) => spec.name === 'redis')!.spec.companions![0]!,
        'allixios-prod',
        'cluster.local',
      ).join(' '),
    );
    // The script and the replication user's password: the one from the ConfigMap, the other from the Secret.
    const mounts = Object.fromEntries((container(redis).volumeMounts as Json[]).map((mount) => [mount.mountPath, mount]));
    expect(mounts['/etc/redis/ha/redis-member.sh']!.subPath).toBe('config.redis-member.sh');
    const secretVolume = (redis.spec.template.spec.volumes as Json[]).find((volume) => volume.name === mounts['/etc/redis/secrets']!.name)!;
    expect(secretVolume.secret.items.map((item: Json) => item.path).sort()).toEqual(['admin-password', 'monitor-password', 'replication.conf', 'users.acl']);
  });

  it('tells a live member (it answers, loading counts) from a ready one (master, or replica in sync)', () => {
    const redis = container(named(prod, 'StatefulSet', 'redis'));
    expect(redis.livenessProbe.exec.command).toEqual(['sh', '/etc/redis/ha/redis-member.sh', 'live']);
    expect(redis.startupProbe.exec.command).toEqual(['sh', '/etc/redis/ha/redis-member.sh', 'live']);
    // On a TLS stack the readiness check also reloads a renewed certificate, then runs the member's check.
    expect(redis.readinessProbe.exec.command.slice(-3)).toEqual(['sh', '/etc/redis/ha/redis-member.sh', 'ready']);
  });

  it('admits the Sentinels to the members on the client port, and adds no rule that would open every port', () => {
    const policy = named(prod, 'NetworkPolicy', 'redis-ingress');
    new NetworkPolicy(policy as never).validate();
    expect(policy.spec.ingress).toHaveLength(1);
    const [rule] = policy.spec.ingress as Json[];
    expect(rule!.ports).toEqual([{ port: 6379, protocol: 'TCP' }]);
    expect(rule!.from).toContainEqual({ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis-sentinel', 'app.kubernetes.io/instance': 'allixios-prod' } } });
    expect(rule!.from).toContainEqual({ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': 'allixios-prod' } } });
  });
});

describe('the Sentinels, a companion of their own', () => {
  it('runs three Sentinels in prod and staging (quorum 2), one on an ephemeral stack (quorum 1), on nodes of their own in prod', () => {
    const sentinel = named(prod, 'StatefulSet', 'redis-sentinel');
    new StatefulSet(sentinel as never).validate();
    expect([sentinel.spec.replicas, named(staging, 'StatefulSet', 'redis-sentinel').spec.replicas, named(ephemeral, 'StatefulSet', 'redis-sentinel').spec.replicas]).toEqual([
      3, 3, 1,
    ]);
    expect([sentinelQuorum(3), sentinelQuorum(1)]).toEqual([2, 1]);
    const template = (evaluation: Evaluation) =>
      Object.values(
        named(evaluation, 'ConfigMap', named(evaluation, 'StatefulSet', 'redis-sentinel').spec.template.spec.volumes.find((volume: Json) => volume.configMap).configMap.name).data,
      ).join('\n');
    expect(template(prod)).toContain(`sentinel monitor ${MASTER_NAME} @MASTER_HOST@ @MASTER_PORT@ 2`);
    expect(template(ephemeral)).toContain(`sentinel monitor ${MASTER_NAME} @MASTER_HOST@ @MASTER_PORT@ 1`);
    // Not with Redis's members (the selector differs), and never two Sentinels on one node in prod:
    // a node lost costs one member of each.
    expect(sentinel.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'redis-sentinel', 'app.kubernetes.io/instance': 'allixios-prod' });
    expect(sentinel.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels).toEqual(
      sentinel.spec.selector.matchLabels,
    );
    expect(sentinel.spec.podManagementPolicy).toBe('Parallel');
    // Their rewritten configuration on a volume of their own.
    expect(sentinel.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('128Mi');
    expect(prod.options.get('allixios-redis-sentinel-statefulset')?.protect).toBe(true);
  });

  it('keeps a majority through voluntary disruptions', () => {
    const budget = named(prod, 'PodDisruptionBudget', 'redis-sentinel');
    new PodDisruptionBudget(budget as never).validate();
    expect(budget.spec.maxUnavailable).toBe(1);
    expect([1, 3, 5, 7].map(companionMaxUnavailable)).toEqual([1, 1, 2, 3]);
  });

  it('opens its port to the engine’s clients, the members and the other Sentinels only', () => {
    const policy = named(prod, 'NetworkPolicy', 'redis-sentinel-ingress');
    new NetworkPolicy(policy as never).validate();
    expect(policy.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'redis-sentinel', 'app.kubernetes.io/instance': 'allixios-prod' });
    expect(policy.spec.ingress).toEqual([
      {
        from: [
          { podSelector: { matchLabels: { 'allixios.io/client-redis': 'true' } } },
          { podSelector: { matchLabels: { 'app.kubernetes.io/component': 'bootstrap', 'app.kubernetes.io/part-of': 'allixios' } } },
          {
            namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['allixios-platform'] }] },
            podSelector: { matchLabels: { 'allixios.io/client-redis': 'true' } },
          },
          { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': 'allixios-prod' } } },
          { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis-sentinel', 'app.kubernetes.io/instance': 'allixios-prod' } } },
        ],
        ports: [{ port: 26379, protocol: 'TCP' }],
      },
    ]);
  });

  it('has a headless Service for each Sentinel’s name, a Service over the ready ones, and a certificate for both', () => {
    const headless = named(prod, 'Service', 'redis-sentinel-headless');
    const service = named(prod, 'Service', 'redis-sentinel');
    for (const object of [headless, service]) new Service(object as never).validate();
    expect(headless.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, ports: [{ name: 'sentinel', port: 26379 }] });
    expect(service.spec.selector).toEqual({ 'app.kubernetes.io/name': 'redis-sentinel', 'app.kubernetes.io/instance': 'allixios-prod' });
    const certificate = prod.resources.find(
      (resource) => resource.type === 'kubernetes:cert-manager.io/v1:Certificate' && (resource.inputs as Json).metadata.name === 'redis-sentinel-tls',
    )!.inputs as Json;
    expect(certificate.spec.dnsNames).toEqual(
      expect.arrayContaining(['redis-sentinel.allixios-prod.svc', '*.redis-sentinel-headless.allixios-prod.svc.cluster.local', 'localhost']),
    );
    const pod = named(prod, 'StatefulSet', 'redis-sentinel').spec.template.spec;
    expect(pod.volumes.find((volume: Json) => volume.name === 'tls').secret.secretName).toBe('redis-sentinel-tls');
  });

  it('tells a live Sentinel (it answers) from a ready one (it sees a majority: CKQUORUM), and restarts it for a renewed certificate', () => {
    const sentinel = container(named(prod, 'StatefulSet', 'redis-sentinel'));
    expect(sentinel.livenessProbe.exec.command).toEqual(['sh', '/etc/redis/sentinel/sentinel.sh', 'live']);
    const readiness = sentinel.readinessProbe.exec.command as string[];
    expect(readiness.slice(-3)).toEqual(['sh', '/etc/redis/sentinel/sentinel.sh', 'ready']);
    expect(readiness[2]).toContain("'sh' '/etc/redis/sentinel/sentinel.sh' 'reload'");
    expect(sentinel.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
  });

  it('holds its passwords in the Secret: digests in its ACL file, the outgoing ones in a file only it mounts, none in a ConfigMap', () => {
    const pod = named(prod, 'StatefulSet', 'redis-sentinel').spec.template.spec;
    const secretVolume = (pod.volumes as Json[]).find((volume) => volume.secret?.secretName === 'redis-credentials')!;
    expect(secretVolume.secret.items.map((item: Json) => item.key).sort()).toEqual(['config.monitor-password', 'config.sentinel-auth.conf', 'config.sentinel-users.acl']);
    const configMaps = JSON.stringify(prod.resources.filter((resource) => resource.inputs.kind === 'ConfigMap').map((resource) => resource.inputs));
    for (const secret of prod.generatedSecrets) expect(configMaps).not.toContain(secret);
    // The members do not mount the Sentinels' files.
    const members = named(prod, 'StatefulSet', 'redis').spec.template.spec.volumes as Json[];
    expect(JSON.stringify(members)).not.toContain('sentinel-auth');
  });
});

describe('the settings of a Sentinel-aware client', () => {
  it('exports the Sentinels’ names and the master’s name beside REDIS_URL, not secret', async () => {
    const sentinels = await unwrap(prod.outputs.settings.REDIS_SENTINELS!);
    expect(sentinels).toBe([0, 1, 2].map((n) => `redis-sentinel-${n}.redis-sentinel-headless.allixios-prod.svc.cluster.local:26379`).join(','));
    expect(await unwrap(prod.outputs.settings.REDIS_MASTER_NAME!)).toBe(MASTER_NAME);
    expect(await unwrap(ephemeral.outputs.settings.REDIS_SENTINELS!)).toBe('redis-sentinel-0.redis-sentinel-headless.allixios-pr-7.svc.cluster.local:26379');
    expect(prod.outputs.urls.REDIS_URL).toBeDefined();
  });

  it('hands the bootstrap Job the same settings', () => {
    const job = prod.resources.find((resource) => resource.inputs.kind === 'Job')!.inputs as Json;
    const variables = Object.fromEntries((job.spec.template.spec.containers[0].env as Json[]).map((entry) => [entry.name, entry.value]));
    expect(variables.REDIS_MASTER_NAME).toBe(MASTER_NAME);
    expect(variables.REDIS_SENTINELS).toContain('redis-sentinel-0.redis-sentinel-headless.allixios-prod.svc.cluster.local:26379');
  });

  it('runs no Sentinel on Docker: dev stays one plain server', async () => {
    const dev = await evaluateStack('dev');
    expect(dev.outputs.settings).toEqual({});
    // (users.acl names the Sentinel's and the replication user on every stack; nothing runs or mounts their files.)
    for (const marker of ['redis-sentinel', 'sentinel.sh', 'redis-member.sh', 'replication.conf', 'sentinel-auth']) {
      expect(
        dev.resources.filter((resource) => JSON.stringify(resource.inputs).includes(marker)).map((resource) => resource.name),
        marker,
      ).toEqual([]);
    }
  });

  it('bounds an isolated master: half the members must have its writes (1 of 3, 2 of 5), none with fewer than 3', () => {
    expect([1, 2, 3, 4, 5].map(minReplicasToWrite)).toEqual([0, 0, 1, 2, 2]);
  });
});
