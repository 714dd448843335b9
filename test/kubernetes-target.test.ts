import * as pulumi from '@pulumi/pulumi';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { DaemonSet, Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { Job } from 'kubernetes-models/batch/v1';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { redactSecrets, SECRET_SIGNATURE, SECRET_SIGNATURE_KEY, unwrapSecrets, type RecordedResource } from '../stacks/render/mocks.ts';
import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import { secretDirectories } from '../stacks/kubernetes/engine.ts';
import { namespaceConfig } from '../stacks/config/index.ts';
import { readStackFile } from '../stacks/render/stack-file.ts';
import { evaluate, evaluateStack, ROOT, unwrap, type Evaluation } from './support/pulumi.ts';
import { PROD_BACKUPS, withPostgresqlImage } from './support/stacks.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const BOOTSTRAP = { image: 'ghcr.io/allixios/allixios-bootstrap:0.1.0' };
/** A Patroni member's probe: curl on its REST API, over HTTPS verified with the stack's CA as localhost on a TLS stack. */
const patroniCurl = (path: string, tls: boolean) => [
  'curl',
  '--fail',
  '--silent',
  '--show-error',
  '--output',
  '/dev/null',
  '--max-time',
  '4',
  ...(tls ? ['--cacert', '/etc/postgresql/tls/ca.crt', `https://localhost:8008${path}`] : [`http://127.0.0.1:8008${path}`]),
];
const isEnvelope = (value: unknown) => (value as Record<string, unknown> | null)?.[SECRET_SIGNATURE_KEY] === SECRET_SIGNATURE;
const kindOf = (resource: RecordedResource) => resource.inputs.kind as string;
const objects = (evaluation: Evaluation, kind: string) =>
  evaluation.resources.filter((resource) => resource.type.startsWith('kubernetes:') && kindOf(resource) === kind).map((resource) => resource.inputs as Json);
const forEngine = (evaluation: Evaluation, kind: string, engine: string) =>
  objects(evaluation, kind).filter((object) => object.metadata.labels['app.kubernetes.io/name'] === engine);

const MODELS: Record<string, new (data: Json) => { validate(): void }> = {
  Namespace,
  Secret,
  ConfigMap,
  Service,
  StatefulSet,
  PodDisruptionBudget,
  NetworkPolicy,
  Job,
  CronJob,
  // PostgreSQL under Patroni: its identity and access, and PgBouncer in front.
  ServiceAccount,
  Role,
  // Its constructor's type requires roleRef, which a rendered object's type does not state.
  RoleBinding: RoleBinding as unknown as new (data: Json) => { validate(): void },
  Deployment,
};

describe('kubernetes target (stack prod)', () => {
  let prod: Evaluation;
  beforeAll(async () => {
    prod = await evaluateStack('prod');
  });

  it("creates the namespace and, per engine, a Secret, a ConfigMap, its Services, a StatefulSet, a PDB and a NetworkPolicy; PostgreSQL's Patroni its access and PgBouncer its own objects", () => {
    expect(objects(prod, 'Namespace').map((namespace) => namespace.metadata.name)).toEqual(['allixios-prod']);
    for (const { spec } of prod.config.engines) {
      const counts = ['Secret', 'ConfigMap', 'StatefulSet', 'PodDisruptionBudget', 'NetworkPolicy'].map((kind) => forEngine(prod, kind, spec.name).length);
      expect(counts, spec.name).toEqual([1, 1, 1, 1, 1]);
    }
    const serviceNames = (engine: string) => forEngine(prod, 'Service', engine).map((service) => service.metadata.name as string);
    // Every engine its client Service and its headless one...
    for (const engine of ['mongodb', 'redis', 'elasticsearch', 'clickhouse']) expect(serviceNames(engine).sort(), engine).toEqual([engine, `${engine}-headless`].sort());
    // ...and PostgreSQL under Patroni the replicas' too, and one for each key Patroni keeps as Endpoints beside the leader's.
    expect(serviceNames('postgresql').sort()).toEqual(['postgresql', 'postgresql-config', 'postgresql-failover', 'postgresql-headless', 'postgresql-replicas', 'postgresql-sync']);
    // Patroni's identity and access, only PostgreSQL's.
    for (const kind of ['ServiceAccount', 'Role', 'RoleBinding']) {
      expect(
        objects(prod, kind).map((object) => object.metadata.name),
        kind,
      ).toEqual([kind === 'ServiceAccount' ? 'postgresql' : 'postgresql-patroni']);
    }
    // PgBouncer: a Deployment, its configuration, Service, budget and NetworkPolicy, under a name of its own.
    const pooler = ['Deployment', 'ConfigMap', 'Service', 'PodDisruptionBudget', 'NetworkPolicy'].map((kind) =>
      forEngine(prod, kind, 'postgresql-pgbouncer').map((object) => object.metadata.name as string),
    );
    expect(pooler).toEqual([
      ['postgresql-pgbouncer'],
      [expect.stringMatching(/^postgresql-pgbouncer-config-[0-9a-f]{10}$/)],
      ['postgresql-pgbouncer'],
      ['postgresql-pgbouncer'],
      ['postgresql-pgbouncer-ingress'],
    ]);
  });

  it('validates every object against the Kubernetes OpenAPI schema', () => {
    const kubernetesObjects = prod.resources.filter((resource) => resource.type.startsWith('kubernetes:'));
    // The namespace, seven objects per engine, the bootstrap Job, and TLS: the stack's CA (Secret,
    // Issuer), the CA bundle's ConfigMap and a Certificate per engine serving TLS; a CronJob per
    // scheduled task. PostgreSQL under Patroni adds four Services (the replicas', and -config,
    // -failover, -sync for Patroni's Endpoints), a ServiceAccount, a Role and a RoleBinding; PgBouncer
    // a Deployment, its ConfigMap, Service, PDB, NetworkPolicy and its own Certificate.
    const tlsEngines = prod.config.engines.filter((engine) => engine.spec.tls).length;
    const tasks = prod.config.engines.flatMap((engine) => engine.spec.scheduledTasks ?? []).length;
    expect(tlsEngines).toBeGreaterThan(0);
    expect(tasks).toBe(1);
    const patroni = 4 + 3;
    const pgbouncer = 5 + 1;
    // Each companion (Redis's Sentinels, ClickHouse Keeper): a StatefulSet, its ConfigMap, headless
    // Service, Service, PDB, NetworkPolicy and Certificate.
    const companions = 2 * (6 + 1);
    // A CronJob per engine backup job (MongoDB's dump; Elasticsearch's SLM schedules itself).
    const backupJobs = prod.config.engines.flatMap((engine) => engine.spec.backup?.jobs ?? []).length;
    // And one ConfigMap per engine whose backup jobs read files (PostgreSQL's pgbackrest.conf, Redis's and ClickHouse's scripts).
    const backupConfigMaps = prod.config.engines.filter((engine) => (engine.spec.backup?.jobs ?? []).some((job) => (job.configFiles ?? []).length > 0)).length;
    expect(backupConfigMaps).toBe(3);
    expect(kubernetesObjects.length).toBe(1 + 5 * 7 + 1 + 3 + tlsEngines + tasks + patroni + pgbouncer + companions + backupJobs + backupConfigMaps);
    // cert-manager's kinds have no model here; their shape is checked below ("TLS").
    for (const resource of kubernetesObjects.filter((object) => !String(object.inputs.apiVersion).startsWith('cert-manager.io/'))) {
      const Model = MODELS[kindOf(resource)];
      expect(Model, kindOf(resource)).toBeDefined();
      const object = redactSecrets(resource.inputs, '<redacted>') as Json;
      expect(() => new Model!(object).validate(), `${kindOf(resource)} ${resource.name}`).not.toThrow();
    }
  });

  it('gives each StatefulSet a data volume claim, the engine-native probes and resources', () => {
    for (const { spec } of prod.config.engines) {
      const statefulSet = forEngine(prod, 'StatefulSet', spec.name)[0]!;
      const claim = statefulSet.spec.volumeClaimTemplates[0];
      expect(claim.spec.resources.requests.storage).toBe(spec.storage);
      expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
      const container = statefulSet.spec.template.spec.containers[0];
      // Under an HA manager (PostgreSQL's Patroni) the manager's health check, which the engine describes with it.
      const check = spec.highAvailability?.healthCheck ?? spec.healthCheck;
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
        const command = probe === 'readinessProbe' ? check.command : (check.liveCommand ?? check.command);
        const rendered = container[probe].exec.command as string[];
        expect(probe === 'readinessProbe' && spec.tls?.reload ? rendered.slice(-command.length) : rendered, `${spec.name} ${probe}`).toEqual(command);
      }
      expect(container.resources).toEqual(spec.resources);
      expect(container.volumeMounts[0]).toEqual({ name: 'data', mountPath: spec.dataPath });
      const mountedScratch = (container.volumeMounts as Json[]).filter((mount) => mount.name.startsWith('scratch-')).map((mount) => mount.mountPath);
      expect(mountedScratch).toEqual(spec.scratchPaths);
      expect(statefulSet.spec.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    }
    expect(forEngine(prod, 'StatefulSet', 'postgresql')[0]!.spec.volumeClaimTemplates[0].spec).toMatchObject({
      storageClassName: 'premium-rwo',
      resources: { requests: { storage: '200Gi' } },
    });
  });

  it('runs every engine container non-root, without privilege escalation or capabilities, under seccomp', () => {
    for (const { spec } of prod.config.engines) {
      const pod = forEngine(prod, 'StatefulSet', spec.name)[0]!.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: spec.runAs.user, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.fsGroup).toBe(spec.runAs.fsGroup ?? spec.runAs.group);
      // Only an HA manager talks to the Kubernetes API (PostgreSQL's Patroni, as its own ServiceAccount); no engine does,
      // nor an engine that clusters by itself (Elasticsearch, MongoDB's replica set, ClickHouse's replicas through Keeper,
      // Redis under Sentinel).
      const apiAccess = (spec.highAvailability?.kubernetesAccess ?? []).length > 0;
      expect([pod.serviceAccountName, pod.automountServiceAccountToken], spec.name).toEqual(apiAccess ? [spec.name, true] : [undefined, false]);
      expect(pod.containers[0].securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: spec.runAs.user,
        runAsGroup: spec.runAs.group,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: spec.readOnlyRootFilesystem,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
    }
    const readOnly = prod.config.engines.filter(({ spec }) => spec.readOnlyRootFilesystem).map(({ spec }) => spec.name);
    expect(readOnly).toContain('postgresql');
    expect(readOnly).toContain('redis');
    expect(prod.config.engines.filter(({ spec }) => (spec.highAvailability?.kubernetesAccess ?? []).length > 0).map(({ spec }) => spec.name)).toEqual(['postgresql']);
    // Replicated in prod: every engine, each by its own mechanism.
    expect(prod.config.engines.filter(({ spec }) => spec.highAvailability).map(({ spec }) => spec.name)).toEqual(['postgresql', 'mongodb', 'redis', 'elasticsearch', 'clickhouse']);
  });

  it("mounts a memory-backed /dev/shm sized for PostgreSQL's parallel queries", () => {
    const pod = forEngine(prod, 'StatefulSet', 'postgresql')[0]!.spec.template.spec;
    expect(pod.volumes.find((volume: Json) => volume.name === 'shared-memory')).toEqual({ name: 'shared-memory', emptyDir: { medium: 'Memory', sizeLimit: '1024Mi' } });
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: 'shared-memory', mountPath: '/dev/shm' });
  });

  it('exposes engines through ClusterIP and headless Services only', () => {
    const services = objects(prod, 'Service');
    expect(services.map((service) => service.spec.type ?? 'ClusterIP').filter((type) => type !== 'ClusterIP')).toEqual([]);
    for (const { spec } of prod.config.engines) {
      const services = forEngine(prod, 'Service', spec.name);
      const headless = services.find((service) => service.metadata.name === `${spec.name}-headless`);
      const clusterIp = services.find((service) => service.metadata.name === spec.name);
      expect(headless!.spec.clusterIP).toBe('None');
      expect(clusterIp!.metadata.name).toBe(spec.name);
      expect(forEngine(prod, 'StatefulSet', spec.name)[0]!.spec.serviceName).toBe(headless!.metadata.name);
    }
  });

  it('creates a LoadBalancer Service only when the config asks for one', async () => {
    const exposed = await evaluate({
      environment: 'staging',
      namespace: 'allixios-staging',
      bootstrap: BOOTSTRAP,
      engines: withPostgresqlImage({ postgresql: { serviceType: 'LoadBalancer' } }),
    });
    const types = objects(exposed, 'Service')
      .filter((service) => service.spec.type === 'LoadBalancer')
      .map((service) => service.metadata.name);
    // PostgreSQL's client Services, the primary's and the replicas' (under Patroni); not the
    // headless nor Patroni's own Services, nor PgBouncer's, nor another engine's.
    expect(types.sort()).toEqual(['postgresql', 'postgresql-replicas']);
    expect(objects(exposed, 'Service').find((service) => service.metadata.name === 'postgresql-pgbouncer')!.spec.type).toBeUndefined();
  });

  it('keeps passwords in Secrets: env refers to them, ConfigMaps never hold them', () => {
    for (const { spec } of prod.config.engines) {
      const secret = forEngine(prod, 'Secret', spec.name)[0]!;
      expect(isEnvelope(secret.stringData)).toBe(true);
      const stringData = unwrapSecrets(secret.stringData) as Record<string, string>;
      // The engine's passwords and secret files, its pooler's (PgBouncer's auth file), its
      // replicated members' and its companions' (Redis's replication and Sentinel files).
      const secretFiles = [
        ...spec.secretFiles,
        ...(spec.pooler?.secretFiles ?? []),
        ...(spec.highAvailability?.secretFiles ?? []),
        ...(spec.companions ?? []).flatMap((companion) => companion.secretFiles),
        // and its backup jobs' (MongoDB's mongodump password file).
        ...(spec.backup?.jobs ?? []).flatMap((job) => job.secretFiles ?? []),
      ];
      expect(Object.keys(stringData).sort()).toEqual(
        [...spec.secrets.map((definition) => definition.key), ...new Set(secretFiles.map((file) => file.source.replaceAll('/', '.')))].sort(),
      );
      for (const value of Object.values(stringData)) expect(value.length).toBeGreaterThan(0);
      const env = forEngine(prod, 'StatefulSet', spec.name)[0]!.spec.template.spec.containers[0].env as Json[];
      // The engine's variables and its HA manager's (Patroni's passwords), each by reference.
      for (const [name, value] of Object.entries({ ...spec.env, ...spec.highAvailability?.env })) {
        const entry = env.find((variable) => variable.name === name)!;
        if (typeof value === 'string') expect(entry.value).toBe(value);
        else expect(entry.valueFrom.secretKeyRef).toEqual({ name: secret.metadata.name, key: value.secret });
      }
    }
    const configMaps = JSON.stringify(objects(prod, 'ConfigMap'));
    for (const secret of prod.generatedSecrets) expect(configMaps).not.toContain(secret);
    const redis = forEngine(prod, 'ConfigMap', 'redis')[0]!;
    expect(Object.keys(redis.data)).not.toContain('config.users.acl');
    expect(Object.keys(forEngine(prod, 'ConfigMap', 'postgresql-pgbouncer')[0]!.data)).not.toContain('pgbouncer.userlist.txt');
  });

  it('admits only client pods, the bootstrap job and peers through each NetworkPolicy', () => {
    for (const { spec } of prod.config.engines) {
      const policy = forEngine(prod, 'NetworkPolicy', spec.name)[0]!;
      expect(policy.spec.policyTypes).toEqual(['Ingress']);
      expect(policy.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': spec.name, 'app.kubernetes.io/instance': 'allixios-prod' });
      const [rule] = policy.spec.ingress;
      expect(rule.from).toEqual([
        { podSelector: { matchLabels: { [`allixios.io/client-${spec.name}`]: 'true' } } },
        { podSelector: { matchLabels: { 'app.kubernetes.io/component': 'bootstrap', 'app.kubernetes.io/part-of': 'allixios' } } },
        { podSelector: { matchLabels: { 'app.kubernetes.io/name': spec.name, 'app.kubernetes.io/instance': 'allixios-prod' } } },
        {
          namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['allixios-platform'] }] },
          podSelector: { matchLabels: { [`allixios.io/client-${spec.name}`]: 'true' } },
        },
        // A companion that connects to the members (Redis's Sentinels).
        ...(spec.companions ?? [])
          .filter((companion) => companion.connectsToEngine)
          .map((companion) => ({ podSelector: { matchLabels: { 'app.kubernetes.io/name': `${spec.name}-${companion.name}`, 'app.kubernetes.io/instance': 'allixios-prod' } } })),
      ]);
      expect(rule.ports.map((port: Json) => port.port)).toEqual(spec.ports.map((port) => port.containerPort));
    }
  });

  it('labels everything with app.kubernetes.io name, instance, component, part-of and managed-by', () => {
    for (const object of prod.resources.filter((resource) => resource.type.startsWith('kubernetes:') && kindOf(resource) !== 'Namespace')) {
      expect(Object.keys((object.inputs as Json).metadata.labels)).toEqual(
        expect.arrayContaining([
          'app.kubernetes.io/name',
          'app.kubernetes.io/instance',
          'app.kubernetes.io/component',
          'app.kubernetes.io/part-of',
          'app.kubernetes.io/managed-by',
        ]),
      );
    }
  });

  it('protects and retains the prod StatefulSets that own the data volumes', () => {
    for (const { spec } of prod.config.engines) {
      const options = prod.options.get(`allixios-${spec.name}-statefulset`)!;
      expect([options.protect, options.retainOnDelete], spec.name).toEqual([true, true]);
    }
  });

  it('writes the StorageClasses the stack lists as encrypting on each StatefulSet for the policy pack, and nothing when it lists none', async () => {
    const annotation = 'allixios.io/encrypted-storage-classes';
    for (const statefulSet of objects(prod, 'StatefulSet')) expect(statefulSet.metadata.annotations?.[annotation], statefulSet.metadata.name).toBeUndefined();
    const values = { ...namespaceConfig(readStackFile(ROOT, 'prod').config), encryptedStorageClasses: ['gp3-encrypted', 'premium-rwo-cmek'] };
    const listed = await evaluate(values, 'prod');
    const statefulSets = objects(listed, 'StatefulSet');
    // The engines' and their companions' with a volume (Redis's Sentinels).
    expect(statefulSets).toHaveLength(
      listed.config.engines.length + listed.config.engines.flatMap(({ spec }) => (spec.companions ?? []).filter((companion) => companion.volume)).length,
    );
    for (const statefulSet of statefulSets) {
      expect(statefulSet.metadata.annotations[annotation], statefulSet.metadata.name).toBe('gp3-encrypted,premium-rwo-cmek');
      // Not on the claim template, which cannot change on a live StatefulSet.
      expect(statefulSet.spec.volumeClaimTemplates[0].metadata.annotations).toBeUndefined();
    }
  });

  it('leaves ephemeral stacks unprotected with volume claims deleted alongside', async () => {
    const ephemeral = await evaluate({ environment: 'ephemeral', namespace: 'pr-42', bootstrap: BOOTSTRAP });
    for (const { spec } of ephemeral.config.engines) {
      expect(ephemeral.options.get(`allixios-${spec.name}-statefulset`)!.protect).toBeFalsy();
      expect(forEngine(ephemeral, 'StatefulSet', spec.name)[0]!.spec.persistentVolumeClaimRetentionPolicy).toEqual({
        whenDeleted: 'Delete',
        whenScaled: 'Delete',
      });
    }
  });

  it('probes whether an engine is alive on startup and liveness (recovering counts) and whether it serves on readiness', () => {
    for (const { spec } of prod.config.engines) {
      const container = forEngine(prod, 'StatefulSet', spec.name)[0]!.spec.template.spec.containers[0];
      // A member under an HA manager is checked through the manager (PostgreSQL's Patroni, below).
      const check = spec.highAvailability?.healthCheck ?? spec.healthCheck;
      const alive = check.liveCommand ?? check.command;
      expect(container.startupProbe.exec.command, spec.name).toEqual(alive);
      expect(container.livenessProbe.exec.command, spec.name).toEqual(alive);
      // An engine serving TLS with a reload command reloads a renewed certificate from its
      // readiness check, then checks; one that watches its files (no reload) keeps its check.
      const readiness = container.readinessProbe.exec.command as string[];
      if (spec.tls?.reload) expect(readiness.slice(0, 2).concat(readiness.slice(3, 4))).toEqual(['sh', '-c', 'sh']);
      expect(spec.tls?.reload ? readiness.slice(4) : readiness, spec.name).toEqual(check.command);
      expect(container.startupProbe.failureThreshold * container.startupProbe.periodSeconds, spec.name).toBeGreaterThanOrEqual(check.startupSeconds);
    }
    // PostgreSQL under Patroni: curl against Patroni's REST API over HTTPS, verifying it with the
    // stack's CA as localhost. Ready: the leader, or a replica whose server runs (/readiness);
    // alive, also while it clones or replays WAL: Patroni's loop runs (/liveness).
    const postgresql = forEngine(prod, 'StatefulSet', 'postgresql')[0]!.spec.template.spec;
    const curl = (path: string) => patroniCurl(path, true);
    const [member] = postgresql.containers as Json[];
    expect(member!.startupProbe.exec.command).toEqual(curl('/liveness'));
    expect(member!.livenessProbe.exec.command).toEqual(curl('/liveness'));
    expect((member!.readinessProbe.exec.command as string[]).slice(4)).toEqual(curl('/readiness'));
    // Its readiness check tells Patroni (PID 1) to reload a renewed certificate, which it passes to PostgreSQL and its REST API.
    expect(member!.readinessProbe.exec.command[2]).toContain("'sh' '-c' 'kill -HUP 1'");
    expect(postgresql.terminationGracePeriodSeconds).toBe(133);
  });

  it("enforces Pod Security restricted on the engines' namespace, and explains it", () => {
    const [namespace] = objects(prod, 'Namespace');
    expect(namespace!.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/warn': 'restricted',
      'pod-security.kubernetes.io/audit': 'restricted',
    });
    expect(namespace!.metadata.annotations['allixios.io/pod-security']).toMatch(/^restricted/);
    // Nothing privileged by default: Elasticsearch's vm.max_map_count is a node prerequisite in prod;
    // the only init container is Elasticsearch's backup keystore, restricted like the engine.
    for (const statefulSet of objects(prod, 'StatefulSet')) {
      const init = (statefulSet.spec.template.spec.initContainers ?? []) as Json[];
      expect(
        init.map((container) => [container.name, container.securityContext.privileged ?? false, container.securityContext.allowPrivilegeEscalation]),
        statefulSet.metadata.name,
      ).toEqual(statefulSet.metadata.name === 'elasticsearch' ? [['backup-init', false, false]] : []);
    }
    expect(objects(prod, 'DaemonSet')).toEqual([]);
  });

  it("sets Elasticsearch's vm.max_map_count from a privileged DaemonSet in a namespace of its own only when the stack chooses it", async () => {
    const tuned = await evaluate({
      environment: 'prod',
      namespace: 'allixios-prod',
      bootstrap: BOOTSTRAP,
      backups: PROD_BACKUPS,
      engines: withPostgresqlImage({ elasticsearch: { options: { maxMapCount: 'daemonSet' } } }),
    });
    const namespaces = objects(tuned, 'Namespace');
    expect(namespaces.map((namespace) => [namespace.metadata.name, namespace.metadata.labels['pod-security.kubernetes.io/enforce']])).toEqual([
      ['allixios-prod', 'restricted'],
      ['allixios-prod-node-tuning', 'privileged'],
    ]);
    const [daemonSet] = objects(tuned, 'DaemonSet');
    expect(daemonSet!.metadata.namespace).toBe('allixios-prod-node-tuning');
    expect(daemonSet!.spec.template.spec.initContainers[0]).toMatchObject({ command: ['sysctl', '-w', 'vm.max_map_count=1048576'], securityContext: { privileged: true } });
    expect(daemonSet!.spec.template.spec.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(() => new DaemonSet(daemonSet as Json).validate()).not.toThrow();
    // and the engines' pods stay unprivileged: their one init container is the backup keystore's
    expect((forEngine(tuned, 'StatefulSet', 'elasticsearch')[0]!.spec.template.spec.initContainers as Json[]).map((container) => container.name)).toEqual(['backup-init']);
  });

  it('spreads replicas across nodes with pod anti-affinity when an engine has more than one', async () => {
    // In prod every engine runs several members (PostgreSQL under Patroni, the others by their own clustering): never two on one node.
    const onEachNode = (instance: string, engine = 'postgresql') => ({
      topologyKey: 'kubernetes.io/hostname',
      labelSelector: { matchLabels: { 'app.kubernetes.io/name': engine, 'app.kubernetes.io/instance': instance } },
    });
    const postgresql = forEngine(prod, 'StatefulSet', 'postgresql')[0]!;
    expect(postgresql.spec.replicas).toBe(3);
    expect(postgresql.spec.template.spec.affinity).toEqual({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [onEachNode('allixios-prod')] } });
    // Elasticsearch runs three nodes of its own cluster, under the same rule.
    const elasticsearch = forEngine(prod, 'StatefulSet', 'elasticsearch')[0]!;
    expect(elasticsearch.spec.replicas).toBe(3);
    expect(elasticsearch.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
    // MongoDB's replica set: three members, never two on one node (test/kubernetes-mongodb-cluster.test.ts).
    expect(forEngine(prod, 'StatefulSet', 'mongodb')[0]!.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    // ClickHouse: two members over a Keeper ensemble of three (test/kubernetes-clickhouse-cluster.test.ts).
    const clickhouse = forEngine(prod, 'StatefulSet', 'clickhouse')[0]!;
    expect([clickhouse.spec.replicas, clickhouse.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution]).toEqual([
      2,
      [onEachNode('allixios-prod', 'clickhouse')],
    ]);
    // So does Redis, a master and two replicas under Sentinel.
    expect(forEngine(prod, 'StatefulSet', 'redis')[0]!.spec.replicas).toBe(3);
    expect(forEngine(prod, 'StatefulSet', 'redis')[0]!.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution).toHaveLength(1);
    // Every other engine of prod is replicated.
    for (const { spec } of prod.config.engines) {
      expect(forEngine(prod, 'StatefulSet', spec.name)[0]!.spec.replicas, spec.name).toBeGreaterThan(1);
    }
    // In staging (two members) it prefers other nodes, which a small cluster may not have.
    const staging = await evaluate({ environment: 'staging', namespace: 'allixios-staging', bootstrap: BOOTSTRAP, engines: withPostgresqlImage() }, 'staging');
    const statefulSet = forEngine(staging, 'StatefulSet', 'postgresql')[0]!;
    expect(statefulSet.spec.replicas).toBe(2);
    expect(statefulSet.spec.template.spec.affinity).toEqual({
      podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: onEachNode('allixios-staging') }] },
    });
  });

  it("exports PostgreSQL's read URL: the replicas' Service while it runs replicas, the primary's while it runs one member", async () => {
    // prod: three members under Patroni; reads go to the replicas, the application's writes through PgBouncer.
    expect(await pulumi.isSecret(prod.outputs.urls.DATABASE_READ_URL!)).toBe(true);
    const [read, write] = [new URL(await unwrap(prod.outputs.urls.DATABASE_READ_URL!)), new URL(await unwrap(prod.outputs.urls.DATABASE_URL!))];
    expect(read.host).toBe('postgresql-replicas.allixios-prod.svc:5432');
    expect(write.host).toBe('postgresql-pgbouncer.allixios-prod.svc:6432');
    // The same role, database and session settings either way.
    expect([read.username, read.password, read.pathname, read.search]).toEqual([write.username, write.password, write.pathname, write.search]);
    // One member under Patroni (staging with replicas: 1): reads go to the primary's Service, not the pooler's.
    const single = await evaluate(
      { environment: 'staging', namespace: 'allixios-staging', bootstrap: BOOTSTRAP, engines: withPostgresqlImage({ postgresql: { replicas: 1 } }) },
      'staging',
    );
    expect(new URL(await unwrap(single.outputs.urls.DATABASE_READ_URL!)).host).toBe('postgresql.allixios-staging.svc:5432');
    expect(new URL(await unwrap(single.outputs.urls.DATABASE_URL!)).host).toBe('postgresql-pgbouncer.allixios-staging.svc:6432');
    // One plain server (ephemeral, no project image): the read URL is the application's own.
    const ephemeral = await evaluate({ environment: 'ephemeral', namespace: 'pr-42', bootstrap: BOOTSTRAP }, 'pr-42');
    expect(await unwrap(ephemeral.outputs.urls.DATABASE_READ_URL!)).toBe(await unwrap(ephemeral.outputs.urls.DATABASE_URL!));
  });

  it('exports secret URLs that point at the ClusterIP Services', async () => {
    for (const url of Object.values(prod.outputs.urls)) expect(await pulumi.isSecret(url)).toBe(true);
    const url = new URL(await unwrap(prod.outputs.urls.MONGODB_URL!));
    expect([url.protocol, url.username, url.host, url.pathname, url.search]).toEqual([
      'mongodb:',
      'allixios_app',
      'mongodb.allixios-prod.svc:27017',
      '/allixios',
      // prod serves TLS: the URL asks for it and names the CA bundle the driver verifies with;
      // the platform's write concern and the replica set (MongoDB's members run as rs0 here)
      '?authSource=admin&w=majority&replicaSet=rs0&tls=true&tlsCAFile=%2Fetc%2Fallixios%2Ftls%2Fca.crt',
    ]);
  });

  it('mounts each directory of secret files whole from the Secret, never file by file, so a rotated password reaches a running pod', () => {
    for (const { spec } of prod.config.engines) {
      const podSpec = forEngine(prod, 'StatefulSet', spec.name)[0]!.spec.template.spec;
      const mounts = podSpec.containers[0].volumeMounts as Json[];
      // The credentials' volumes (a TLS certificate's Secret is mounted whole too: "TLS" below).
      const secretVolumes = (podSpec.volumes as Json[]).filter((volume) => volume.secret && volume.name !== 'tls');
      // (A replicated member's own files, MongoDB's key file, Redis's replication password, beside the engine's.)
      const mounted = [...spec.secretFiles, ...(spec.highAvailability?.secretFiles ?? [])].filter((file) => file.mountPath);
      // One Secret volume per directory, mounted at the directory, without subPath
      expect(secretVolumes.length, spec.name).toBe(new Set(mounted.map((file) => file.mountPath!.replace(/\/[^/]+$/, ''))).size);
      for (const volume of secretVolumes) {
        const mount = mounts.find((candidate) => candidate.name === volume.name)!;
        expect(mount.subPath, `${spec.name} ${mount.mountPath}`).toBeUndefined();
        expect(mount.readOnly).toBe(true);
        for (const item of volume.secret.items as Json[]) {
          const file = mounted.find((candidate) => candidate.source.replaceAll('/', '.') === item.key)!;
          expect(`${mount.mountPath}/${item.path}`).toBe(file.mountPath);
          expect(item.mode).toBe(0o440);
        }
      }
      // Every secret file the engine reads is in one of them; the bootstrap's own are in none
      expect(secretVolumes.flatMap((volume) => (volume.secret.items as Json[]).map((item) => item.key)).sort()).toEqual(
        mounted.map((file) => file.source.replaceAll('/', '.')).sort(),
      );
      // And no config file hides inside a mounted secret directory
      for (const volume of secretVolumes) {
        const directory = mounts.find((candidate) => candidate.name === volume.name)!.mountPath;
        for (const config of spec.configFiles) expect(config.mountPath.startsWith(`${directory}/`), `${spec.name}: ${config.mountPath}`).toBe(false);
      }
    }
  });

  it('refuses to mount a secret directory over a config file', () => {
    const files = (paths: string[]) =>
      paths.map((mountPath) => ({ source: mountPath.slice(1), mountPath, key: mountPath.slice(1).replaceAll('/', '.'), executable: false, content: '' }));
    expect(() => secretDirectories({ name: 'redis' }, files(['/etc/redis/users.acl']), files(['/etc/redis/redis.conf']))).toThrow(
      "redis: the config file etc/redis/redis.conf is mounted at /etc/redis/redis.conf, inside /etc/redis, the directory the engine's secret files are mounted as; give the secret files a directory of their own",
    );
  });

  it('keeps the previous password of a rotated secret in the Secret, from the generation before, until the rotation retires it', async () => {
    const base = namespaceConfig(readStackFile(ROOT, 'prod').config);
    const passwordsOf = (evaluation: Evaluation) =>
      evaluation.resources
        .filter((resource) => resource.type === 'random:index/randomPassword:RandomPassword' && resource.name.includes('-redis-credentials-app-password'))
        .map((resource) => resource.name);
    const redisSecret = (evaluation: Evaluation) => unwrapSecrets(forEngine(evaluation, 'Secret', 'redis')[0]!.stringData) as Record<string, string>;

    const rotated = await evaluate({ ...base, rotations: { redis: { 'app-password': { generation: 1 } } } }, 'prod');
    expect(passwordsOf(rotated).sort()).toEqual(['allixios-redis-credentials-app-password', 'allixios-redis-credentials-app-password-g1']);
    const secret = redisSecret(rotated);
    const [previous, current] = [secret['previous-app-password']!, secret['app-password']!];
    expect(previous).toBe(redisSecret(prod)['app-password']);
    expect(current).not.toBe(previous);
    // The ACL gives allixios_app both passwords meanwhile; the others keep one
    const acl = secret['config.users.acl']!;
    expect(acl).toMatch(new RegExp(`^user allixios_app on #${sha256(current)} #${sha256(previous)} `, 'm'));
    expect(acl).toMatch(/^user allixios_admin on #[0-9a-f]{64} ~/m);
    // The application's URL is the new one
    expect(new URL(await unwrap(rotated.outputs.urls.REDIS_URL!)).password).toBe(current);

    const retired = await evaluate({ ...base, rotations: { redis: { 'app-password': { generation: 1, previous: 'retire' } } } }, 'prod');
    expect(passwordsOf(retired)).toEqual(['allixios-redis-credentials-app-password-g1']);
    expect(Object.keys(redisSecret(retired))).not.toContain('previous-app-password');
    expect(redisSecret(retired)['config.users.acl']).toMatch(new RegExp(`^user allixios_app on #${sha256(current)} ~`, 'm'));
  });
});

describe('kubernetes target: TLS (on by default)', () => {
  let prod: Evaluation;
  beforeAll(async () => {
    prod = await evaluateStack('prod');
  });
  const customResources = (evaluation: Evaluation, kind: string) =>
    evaluation.resources.filter((resource) => resource.type === `kubernetes:cert-manager.io/v1:${kind}`).map((resource) => resource.inputs as Json);

  it('gives PostgreSQL a cert-manager Certificate whose DNS names cover its client and headless Services, each pod and localhost, and PgBouncer one of its own', () => {
    const certificates = customResources(prod, 'Certificate');
    // One per engine serving TLS, named after it, and one per pooler serving TLS (PgBouncer's, for
    // its own Service). In no particular order: the mocks record a resource once its inputs are serialised, which takes longer for a larger spec (MongoDB's has an extra output format).
    expect(certificates.map((candidate) => candidate.metadata.name).sort()).toEqual(
      prod.config.engines
        .filter((engine) => engine.spec.tls)
        .flatMap((engine) => [
          `${engine.spec.name}-tls`,
          ...(engine.spec.pooler?.tls ? [`${engine.spec.name}-${engine.spec.pooler.name}-tls`] : []),
          // A companion's for its own names (Redis's Sentinels).
          ...(engine.spec.companions ?? []).filter((companion) => companion.tls).map((companion) => `${engine.spec.name}-${companion.name}-tls`),
        ])
        .sort(),
    );
    expect(certificates.map((candidate) => candidate.metadata.name)).toContain('postgresql-pgbouncer-tls');
    const certificate = certificates.find((candidate) => candidate.metadata.name === 'postgresql-tls');
    expect(certificate!.apiVersion).toBe('cert-manager.io/v1');
    expect(certificate!.metadata.name).toBe('postgresql-tls');
    expect(certificate!.spec.secretName).toBe('postgresql-tls');
    // The Services clients connect to and verify: the primary's, the replicas' (the read URL's)
    // and the headless one (the members' own names); not Patroni's Services without ports.
    const services = ['postgresql', 'postgresql-replicas', 'postgresql-headless'];
    expect(
      forEngine(prod, 'Service', 'postgresql')
        .filter((service) => (service.spec.ports ?? []).length > 0)
        .map((service) => service.metadata.name as string)
        .sort(),
    ).toEqual([...services].sort());
    const names = certificate!.spec.dnsNames as string[];
    for (const service of services) {
      for (const suffix of ['', '.allixios-prod', '.allixios-prod.svc', '.allixios-prod.svc.cluster.local']) expect(names).toContain(`${service}${suffix}`);
    }
    // The StatefulSet's pods: postgresql-0.postgresql-headless.allixios-prod.svc(.cluster.local).
    expect(names).toEqual(expect.arrayContaining(['*.postgresql-headless.allixios-prod.svc', '*.postgresql-headless.allixios-prod.svc.cluster.local', 'localhost']));
    expect(certificate!.spec.privateKey).toMatchObject({ algorithm: 'ECDSA', rotationPolicy: 'Always' });
    // PgBouncer's certificate names its own Service, which the application's URL names.
    const pooler = certificates.find((candidate) => candidate.metadata.name === 'postgresql-pgbouncer-tls')!;
    for (const suffix of ['', '.allixios-prod', '.allixios-prod.svc', '.allixios-prod.svc.cluster.local']) expect(pooler.spec.dnsNames).toContain(`postgresql-pgbouncer${suffix}`);
  });

  it("issues it from the stack's own CA Issuer, whose root is a kubernetes.io/tls Secret", () => {
    const [issuer] = customResources(prod, 'Issuer');
    expect(customResources(prod, 'Certificate')[0]!.spec.issuerRef).toEqual({ group: 'cert-manager.io', kind: 'Issuer', name: issuer!.metadata.name });
    const root = objects(prod, 'Secret').find((secret) => secret.metadata.name === issuer!.spec.ca.secretName)!;
    expect(root.type).toBe('kubernetes.io/tls');
    expect(isEnvelope(root.stringData['tls.key']) || isEnvelope(root.stringData)).toBe(true);
  });

  it('mounts the Secret as a whole directory where the engine reads it, and turns ssl on with hostssl-only pg_hba.conf', () => {
    const podSpec = forEngine(prod, 'StatefulSet', 'postgresql')[0]!.spec.template.spec;
    const volume = (podSpec.volumes as Json[]).find((candidate) => candidate.secret?.secretName === 'postgresql-tls')!;
    const mount = (podSpec.containers[0].volumeMounts as Json[]).find((candidate) => candidate.name === volume.name)!;
    expect(mount).toEqual({ name: volume.name, mountPath: '/etc/postgresql/tls', readOnly: true });
    expect(volume.secret.items).toBeUndefined();
    // Under Patroni the server's settings are in patroni.yml, which Patroni starts PostgreSQL with:
    // TLS on, from the mounted files; Patroni's REST API serves the same certificate.
    const configMap = forEngine(prod, 'ConfigMap', 'postgresql')[0]!;
    const patroni = parse(configMap.data['patroni.patroni.yml'] as string) as Json;
    expect(patroni.postgresql.parameters).toMatchObject({ ssl: 'on', ssl_cert_file: '/etc/postgresql/tls/tls.crt', ssl_key_file: '/etc/postgresql/tls/tls.key' });
    expect(patroni.restapi).toMatchObject({ certfile: '/etc/postgresql/tls/tls.crt', keyfile: '/etc/postgresql/tls/tls.key', cafile: '/etc/postgresql/tls/ca.crt' });
    // Its pg_hba: the project's TLS file, hostssl only, which Patroni writes from postgresql.pg_hba.
    const hba = configMap.data['config.pg_hba-tls.conf'] as string;
    expect(hba).toMatch(/^hostssl\s+all\s+all\s+0\.0\.0\.0\/0\s+scram-sha-256$/m);
    expect(hba).not.toMatch(/^host\s/m);
    expect(patroni.postgresql.pg_hba).toContain('hostssl all all 0.0.0.0/0 scram-sha-256');
    expect((patroni.postgresql.pg_hba as string[]).filter((rule) => rule.startsWith('host '))).toEqual([]);
  });

  it('publishes the CA bundle in a ConfigMap and as an output, and no ConfigMap holds a private key', async () => {
    const bundle = objects(prod, 'ConfigMap').find((configMap) => configMap.metadata.name === 'allixios-ca-bundle')!;
    expect(bundle.data['ca.crt']).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(await unwrap(prod.outputs.tlsCaBundle!)).toBe(bundle.data['ca.crt']);
    expect(await pulumi.isSecret(prod.outputs.tlsCaBundle!)).toBe(false);
    for (const configMap of objects(prod, 'ConfigMap')) expect(JSON.stringify(unwrapSecrets(configMap)), configMap.metadata.name).not.toContain('PRIVATE KEY');
  });

  it('gives the bootstrap Job the CA and verify-full URLs, and the platform verify-full URLs', async () => {
    const job = objects(prod, 'Job')[0]!;
    const podSpec = job.spec.template.spec;
    const volume = (podSpec.volumes as Json[]).find((candidate) => candidate.configMap?.name === 'allixios-ca-bundle')!;
    expect((podSpec.containers[0].volumeMounts as Json[]).find((mount) => mount.name === volume.name)).toEqual({
      name: volume.name,
      mountPath: '/etc/allixios/tls',
      readOnly: true,
    });
    const env = podSpec.containers[0].env as Json[];
    for (const variable of ['DATABASE_URL', 'DATABASE_URL_APP']) {
      const url = new URL(env.find((entry) => entry.name === variable)!.value);
      expect([url.searchParams.get('sslmode'), url.searchParams.get('sslrootcert')], variable).toEqual(['verify-full', '/etc/allixios/tls/ca.crt']);
    }
    // The bootstrap reaches the primary itself; the application goes through PgBouncer, verifying its certificate.
    expect(new URL(env.find((entry) => entry.name === 'DATABASE_URL')!.value).hostname).toBe('postgresql.allixios-prod.svc');
    const app = new URL(await unwrap(prod.outputs.urls.DATABASE_URL!));
    expect([app.hostname, app.searchParams.get('sslmode'), app.searchParams.get('sslrootcert')]).toEqual([
      'postgresql-pgbouncer.allixios-prod.svc',
      'verify-full',
      '/etc/allixios/tls/ca.crt',
    ]);
    // An engine without TLS support keeps its plain URL (and the preview warns); none once all serve TLS.
    for (const { spec, module } of prod.config.engines.filter((engine) => !engine.spec.tls)) {
      expect(await unwrap(prod.outputs.urls[module.urlVariable]!), spec.name).toMatch(new RegExp(`^${spec.appConnection.scheme}://`));
    }
  });

  it('takes the certificates from a named issuer, with its CA bundle, and creates no CA of its own', async () => {
    const caBundle = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n';
    const named = await evaluate({
      environment: 'staging',
      namespace: 'allixios-staging',
      bootstrap: BOOTSTRAP,
      engines: withPostgresqlImage(),
      tls: { issuer: { kind: 'ClusterIssuer', name: 'corp-ca', caBundle } },
    });
    expect(customResources(named, 'Issuer')).toEqual([]);
    expect(named.resources.some((resource) => resource.type.startsWith('tls:'))).toBe(false);
    // Every certificate, the engines' and PgBouncer's, from the named issuer.
    const certificates = customResources(named, 'Certificate');
    expect(certificates.map((certificate) => certificate.metadata.name)).toContain('postgresql-pgbouncer-tls');
    for (const certificate of certificates) {
      expect(certificate.spec.issuerRef, certificate.metadata.name).toEqual({ group: 'cert-manager.io', kind: 'ClusterIssuer', name: 'corp-ca' });
    }
    expect(objects(named, 'ConfigMap').find((configMap) => configMap.metadata.name === 'allixios-ca-bundle')!.data['ca.crt']).toBe(caBundle);
  });

  it('renders no TLS at all when the stack turns it off, and says so in the preview', async () => {
    const warn = vi.spyOn(pulumi.log, 'warn');
    let plain: Evaluation;
    try {
      // Elasticsearch's nodes talk to each other over transport TLS only: one node without TLS.
      plain = await evaluate({
        environment: 'staging',
        namespace: 'allixios-staging',
        bootstrap: BOOTSTRAP,
        engines: withPostgresqlImage({ elasticsearch: { replicas: 1 } }),
        tls: false,
      });
      expect(warn.mock.calls.map(([message]) => message)).toContain(
        'allixios:tls is false on a kubernetes stack: every password and every row crosses the cluster network in clear text. Remove the setting to serve TLS (the default).',
      );
    } finally {
      warn.mockRestore();
    }
    expect(plain.resources.filter((resource) => resource.type.startsWith('kubernetes:cert-manager.io/') || resource.type.startsWith('tls:'))).toEqual([]);
    expect(new URL(await unwrap(plain.outputs.urls.DATABASE_URL!)).searchParams.get('sslmode')).toBeNull();
    expect(new URL(await unwrap(plain.outputs.urls.DATABASE_READ_URL!)).searchParams.get('sslmode')).toBeNull();
    expect(plain.outputs.tlsCaBundle).toBeUndefined();
    // Patroni's health check then asks its REST API over plain HTTP, without a CA.
    const member = forEngine(plain, 'StatefulSet', 'postgresql')[0]!.spec.template.spec.containers[0] as Json;
    expect(member.readinessProbe.exec.command).toEqual(patroniCurl('/readiness', false));
    expect(member.livenessProbe.exec.command).toEqual(patroniCurl('/liveness', false));
  });
});
