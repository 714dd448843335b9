import { describe, expect, it } from 'vitest';
import { ConfigError, namespaceConfig, parseStackConfig } from '../stacks/config/index.ts';
import { ENGINE_MODULES } from '../databases/index.ts';
import type { EngineModule, EngineSettings } from '../databases/engine.ts';
import { valkey } from './fixtures/valkey/index.ts';
import { createRecordingMocks } from '../stacks/render/mocks.ts';
import * as pulumi from '@pulumi/pulumi';
import { POSTGRESQL_IMAGE, PROD_BACKUPS, withPostgresqlImage } from './support/stacks.ts';

const BOOTSTRAP = { image: 'ghcr.io/allixios/allixios-bootstrap:0.1.0' };
/** A minimal valid prod stack: a prod Kubernetes stack pins PostgreSQL's project image. */
const prod = { environment: 'prod', namespace: 'allixios-prod', bootstrap: BOOTSTRAP, backups: PROD_BACKUPS, engines: withPostgresqlImage() };

function problemsOf(values: Record<string, unknown>): string[] {
  try {
    parseStackConfig(values, 'allixios', 'test');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the config to be refused');
}

/** The shape of a CA bundle (the config checks PEM framing, not the certificate). */
const CA_BUNDLE = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n';

const DNS = 'a DNS label (lowercase letters, digits and "-", at most 63 characters) such as allixios-staging';

describe('stack configuration', () => {
  it.each([
    ['negative replicas', { ...prod, engines: withPostgresqlImage({ postgresql: { replicas: -1 } }) }, 'allixios:engines.postgresql.replicas: expected a positive integer, got -1'],
    [
      'fewer than three Redis members in prod',
      { ...prod, engines: withPostgresqlImage({ redis: { replicas: 2 } }) },
      'allixios:engines.redis.replicas: expected at least 3 in prod: a master and two replicas, so one replica may be lost while writes go on (min-replicas-to-write), got 2',
    ],
    [
      'an even number of Sentinels',
      { ...prod, engines: withPostgresqlImage({ redis: { options: { sentinels: 2 } } }) },
      'allixios:engines.redis.options.sentinels: expected an odd number of Sentinels from 1 to 7, got 2',
    ],
    [
      'replicas on the docker target',
      { environment: 'dev', engines: { postgresql: { replicas: 2 } } },
      'allixios:engines.postgresql.replicas: expected 1, since the docker target runs one container per engine (replicas need the kubernetes target), got 2',
    ],
    [
      'storage in words',
      { ...prod, engines: withPostgresqlImage({ postgresql: { storage: '10 gigs' } }) },
      'allixios:engines.postgresql.storage: expected a Kubernetes quantity such as 20Gi, got "10 gigs"',
    ],
    [
      'an unknown engine',
      { ...prod, engines: withPostgresqlImage({ cassandra: { enabled: true } }) },
      'allixios:engines.cassandra: unknown key; expected one of postgresql, mongodb, redis, elasticsearch, clickhouse',
    ],
    ['an unknown target', { ...prod, target: 'nomad' }, 'allixios:target: expected one of docker, kubernetes, got "nomad"'],
    [
      'a kubernetes stack without namespace',
      { environment: 'staging', bootstrap: BOOTSTRAP, engines: withPostgresqlImage() },
      `allixios:namespace: required when allixios:target is kubernetes; expected ${DNS}`,
    ],
    ['no environment', { target: 'docker' }, 'allixios:environment: required; expected one of dev, staging, prod, ephemeral (pulumi config set allixios:environment <name>)'],
    [
      'an unknown environment',
      { environment: 'production', namespace: 'x', bootstrap: BOOTSTRAP },
      'allixios:environment: expected one of dev, staging, prod, ephemeral, got "production"',
    ],
    [
      'an unknown top-level key',
      { ...prod, replicas: 2 },
      'allixios:replicas: unknown key; expected one of environment, target, namespace, exposeHostPorts, protectData, tls, bootstrap, clientNamespaces, clusterDomain, encryptedStorageClasses, backups, engines, passwords, rotations',
    ],
    [
      'an unknown engine setting',
      { ...prod, engines: withPostgresqlImage({ mongodb: { memory: '1Gi' } }) },
      'allixios:engines.mongodb.memory: unknown key; expected one of enabled, version, replicas, storage, storageClass, resources, hostPort, serviceType, image, options',
    ],
    [
      'an encrypted StorageClass that is no StorageClass name',
      { ...prod, encryptedStorageClasses: ['gp3-encrypted', 'GP3_Encrypted'] },
      'allixios:encryptedStorageClasses.1: expected a StorageClass name (lowercase letters, digits and "-", at most 63 characters) such as gp3-encrypted, got "GP3_Encrypted"',
    ],
    [
      'encrypted StorageClasses given as one word instead of a list',
      { ...prod, encryptedStorageClasses: 'gp3-encrypted' },
      'allixios:encryptedStorageClasses: expected a list of StorageClass names such as ["gp3-encrypted"], got "gp3-encrypted"',
    ],
    [
      'encrypted StorageClasses on the docker target',
      { environment: 'dev', encryptedStorageClasses: ['gp3-encrypted'] },
      'allixios:encryptedStorageClasses: expected unset, since the docker target has no StorageClasses (its volumes are Docker volumes on the host\'s disk, encrypted only if that disk is), got ["gp3-encrypted"]',
    ],
    [
      'a cluster domain that is no DNS name',
      { ...prod, clusterDomain: 'Cluster_Local.' },
      'allixios:clusterDomain: expected the cluster\'s DNS domain, lowercase DNS labels joined by dots, such as cluster.local, got "Cluster_Local."',
    ],
    [
      'a cluster domain on the docker target',
      { environment: 'dev', clusterDomain: 'cluster.local' },
      'allixios:clusterDomain: expected unset, since the docker target has no cluster DNS (containers reach each other by name), got "cluster.local"',
    ],
    [
      "an engine's StorageClass that is no StorageClass name",
      { ...prod, engines: withPostgresqlImage({ redis: { storageClass: 'premium rwo' } }) },
      'allixios:engines.redis.storageClass: expected a StorageClass name (lowercase letters, digits and "-", at most 63 characters) such as gp3-encrypted, got "premium rwo"',
    ],
    ['TLS given as a word', { ...prod, tls: 'yes' }, 'allixios:tls: expected true, false, or an object with enabled and issuer, got "yes"'],
    ['an unknown TLS key', { ...prod, tls: { issuerName: 'ca' } }, 'allixios:tls.issuerName: unknown key; expected one of enabled, issuer'],
    [
      'an issuer kind cert-manager does not have',
      { ...prod, tls: { issuer: { kind: 'CertificateAuthority', name: 'corp-ca', caBundle: CA_BUNDLE } } },
      'allixios:tls.issuer.kind: expected one of Issuer, ClusterIssuer, got "CertificateAuthority"',
    ],
    [
      'an issuer without its CA bundle',
      { ...prod, tls: { issuer: { kind: 'ClusterIssuer', name: 'corp-ca' } } },
      "allixios:tls.issuer.caBundle: expected the issuer's CA certificate(s) in PEM, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE----- (not secret; clients verify the engines with it), got nothing",
    ],
    [
      'a private key as the CA bundle',
      { ...prod, tls: { issuer: { kind: 'ClusterIssuer', name: 'corp-ca', caBundle: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' } } },
      'allixios:tls.issuer.caBundle: expected the issuer\'s CA certificate(s) in PEM, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE----- (not secret; clients verify the engines with it), got "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"',
    ],
    [
      'an issuer on the docker target',
      { environment: 'dev', tls: { enabled: true, issuer: { kind: 'ClusterIssuer', name: 'corp-ca', caBundle: CA_BUNDLE } } },
      'allixios:tls.issuer: expected unset, since the docker target generates its own CA (cert-manager issuers exist only on kubernetes), got {"kind":"ClusterIssuer","name":"corp-ca"}',
    ],
    [
      'an issuer with TLS off',
      // (Elasticsearch on one node: its cluster needs transport TLS.)
      { ...prod, engines: withPostgresqlImage({ elasticsearch: { replicas: 1 } }), tls: { enabled: false, issuer: { kind: 'Issuer', name: 'corp-ca', caBundle: CA_BUNDLE } } },
      'allixios:tls.issuer: expected unset, since allixios:tls.enabled is false, got {"kind":"Issuer","name":"corp-ca"}',
    ],
    [
      'host ports on kubernetes',
      { ...prod, exposeHostPorts: true },
      "allixios:exposeHostPorts: expected false or unset, since only the docker target publishes host ports (use an engine's serviceType on kubernetes), got true",
    ],
    ['a namespace that is no DNS label', { ...prod, namespace: 'Allixios_Prod' }, `allixios:namespace: expected ${DNS}, got "Allixios_Prod"`],
    [
      'a CPU quantity in words',
      { ...prod, engines: withPostgresqlImage({ clickhouse: { resources: { limits: { cpu: 'two cores' } } } }) },
      'allixios:engines.clickhouse.resources.limits.cpu: expected a CPU quantity such as 500m or 2, got "two cores"',
    ],
    [
      'a memory request above the limit',
      { ...prod, engines: withPostgresqlImage({ redis: { resources: { requests: { memory: '64Gi' } } } }) },
      'allixios:engines.redis.resources.requests.memory: expected at most the memory limit 4Gi, got "64Gi"',
    ],
    [
      'the latest tag',
      { ...prod, engines: withPostgresqlImage({ elasticsearch: { version: 'latest' } }) },
      'allixios:engines.elasticsearch.version: expected a pinned version tag, not "latest", got "latest"',
    ],
    [
      'a host port out of range',
      { environment: 'dev', engines: { postgresql: { hostPort: 70000 } } },
      'allixios:engines.postgresql.hostPort: expected a port number from 1 to 65535, got 70000',
    ],
    [
      'two engines on one host port',
      { environment: 'dev', engines: { redis: { hostPort: 5432 } } },
      "allixios:engines.redis.hostPort: expected a port no other engine uses, got 5432 (also postgresql's)",
    ],
    [
      'a protected ephemeral stack',
      { environment: 'ephemeral', namespace: 'pr-12', protectData: true, bootstrap: BOOTSTRAP },
      'allixios:protectData: expected false for an ephemeral stack, whose teardown must remove everything, got true',
    ],
    [
      'a Service type Kubernetes does not have',
      { ...prod, engines: withPostgresqlImage({ postgresql: { serviceType: 'Ingress' } }) },
      'allixios:engines.postgresql.serviceType: expected one of ClusterIP, NodePort, LoadBalancer, got "Ingress"',
    ],
    [
      'a Service type on the docker target',
      { environment: 'dev', engines: { postgresql: { serviceType: 'LoadBalancer' } } },
      'allixios:engines.postgresql.serviceType: expected unset, since the docker target has no Services, got "LoadBalancer"',
    ],
    [
      'an unknown password key',
      { ...prod, passwords: { redis: { 'root-password': 'x'.repeat(20) } } },
      'allixios:passwords.redis.root-password: unknown key; expected one of admin-password, app-password, monitor-password, replication-password, sentinel-password, sentinel-peer-password, backup-password',
    ],
    [
      'a memory limit too small for the engine',
      { ...prod, engines: withPostgresqlImage({ mongodb: { resources: { requests: { memory: '128Mi' }, limits: { memory: '256Mi' } } } }) },
      'allixios:engines.mongodb.resources.limits.memory: expected at least 512Mi (the WiredTiger cache alone takes 256 MB), got "256Mi"',
    ],
    [
      'an engine option of the wrong kind',
      { ...prod, engines: withPostgresqlImage({ elasticsearch: { options: { maxMapCount: 'sysctl' } } }) },
      'allixios:engines.elasticsearch.options.maxMapCount: expected one of nodePrerequisite, daemonSet, disableMmap, got "sysctl"',
    ],
    [
      'an unknown engine option',
      { ...prod, engines: withPostgresqlImage({ postgresql: { options: { workMem: '64MB' } } }) },
      'allixios:engines.postgresql.options.workMem: unknown key; expected one of sharedBuffersRatio, statsRetentionMonths',
    ],
    [
      'a statistics retention that is not a whole number of months',
      { ...prod, engines: withPostgresqlImage({ postgresql: { options: { statsRetentionMonths: 0.5 } } }) },
      'allixios:engines.postgresql.options.statsRetentionMonths: expected a whole number of months from 1 to 120, got 0.5',
    ],
    [
      'a statistics retention of no month',
      { ...prod, engines: withPostgresqlImage({ postgresql: { options: { statsRetentionMonths: 0 } } }) },
      'allixios:engines.postgresql.options.statsRetentionMonths: expected a whole number of months from 1 to 120, got 0',
    ],
    [
      'a kubernetes stack without a bootstrap image',
      { environment: 'prod', namespace: 'allixios-prod', backups: PROD_BACKUPS, engines: withPostgresqlImage() },
      'allixios:bootstrap.image: required on the kubernetes target, where the cluster pulls the image; expected a pinned image reference such as ghcr.io/acme/allixios-bootstrap:1.4.0 or …@sha256:<digest> (or set allixios:bootstrap.enabled to false)',
    ],
    [
      'a bootstrap image on latest',
      { ...prod, bootstrap: { image: 'ghcr.io/allixios/allixios-bootstrap:latest' } },
      'allixios:bootstrap.image: expected a pinned image reference such as ghcr.io/acme/allixios-bootstrap:1.4.0 or …@sha256:<digest>, got "ghcr.io/allixios/allixios-bootstrap:latest"',
    ],
    [
      'every engine disabled',
      {
        ...prod,
        engines: Object.fromEntries(['postgresql', 'mongodb', 'redis', 'elasticsearch', 'clickhouse'].map((name) => [name, { enabled: false }])),
      },
      'allixios:engines: expected at least one enabled engine, got {"postgresql":{"enabled":false},"mongodb":{"enabled":false},"redis":{"enabled":false},"elasticsearch":{"enabled":false},"clickhouse":{"enabled":false}}',
    ],
  ])('refuses %s with a sentence naming key, expectation and value', (_case, values, expected) => {
    expect(problemsOf(values)).toEqual([expected]);
  });

  it.each([
    [
      'a generation with a configured password',
      { ...prod, passwords: { redis: { 'app-password': 'x'.repeat(20) } }, rotations: { redis: { 'app-password': { generation: 1 } } } },
      'allixios:rotations.redis.app-password.generation: expected unset, since allixios:passwords.redis.app-password is configured (a configured password is rotated by setting a new value, with the old one as previousPassword), got 1',
    ],
    [
      'a negative generation',
      { ...prod, rotations: { postgresql: { 'app-password': { generation: -1 } } } },
      'allixios:rotations.postgresql.app-password.generation: expected a whole number from 0 (the first generated password) up, got -1',
    ],
    [
      'a previous password to keep when there is none',
      { ...prod, rotations: { postgresql: { 'app-password': { previous: 'keep' } } } },
      'allixios:rotations.postgresql.app-password.previous: expected "keep" only with a password to keep (previousPassword, or a generation of 1 or more), got "keep" with none',
    ],
    [
      'an unknown state of the previous password',
      { ...prod, rotations: { postgresql: { 'app-password': { generation: 2, previous: 'drop' } } } },
      'allixios:rotations.postgresql.app-password.previous: expected one of keep, retire, got "drop"',
    ],
    [
      'a rotation of a secret the engine does not have',
      { ...prod, rotations: { redis: { 'root-password': { generation: 1 } } } },
      'allixios:rotations.redis.root-password: unknown key; expected one of admin-password, app-password, monitor-password, replication-password, sentinel-password, sentinel-peer-password, backup-password',
    ],
  ])('refuses a rotation with %s, naming key, expectation and value', (_case, values, expected) => {
    expect(problemsOf(values)).toEqual([expected]);
  });

  it('never echoes a previous password, neither a short one nor the current one given again', () => {
    const current = 'the-current-password-of-app';
    const short = problemsOf({ ...prod, rotations: { postgresql: { 'app-password': { previousPassword: 'short-pw' } } } });
    expect(short).toEqual(['allixios:rotations.postgresql.app-password.previousPassword: expected a string of at least 16 characters, got a value of 8 characters (not shown)']);
    const same = problemsOf({ ...prod, passwords: { postgresql: { 'app-password': current } }, rotations: { postgresql: { 'app-password': { previousPassword: current } } } });
    expect(same).toEqual([
      'allixios:rotations.postgresql.app-password.previousPassword: expected the password before the current one, got the current password itself (not shown)',
    ]);
    expect([...short, ...same].join('\n')).not.toMatch(/short-pw|the-current-password-of-app/);
  });

  it('says where each password comes from: a generation, a configured value, and the previous one a rotation keeps until it is retired', () => {
    const engine = (values: Record<string, unknown>) => parseStackConfig(values, 'allixios', 'prod').engines.find((candidate) => candidate.spec.name === 'redis')!.passwords;
    expect(engine(prod)['app-password']).toEqual({ current: { generation: 0 } });
    expect(engine({ ...prod, rotations: { redis: { 'app-password': { generation: 3 } } } })['app-password']).toEqual({ current: { generation: 3 }, previous: { generation: 2 } });
    expect(engine({ ...prod, rotations: { redis: { 'app-password': { generation: 3, previous: 'retire' } } } })['app-password']).toEqual({ current: { generation: 3 } });
    const configured = { ...prod, passwords: { redis: { 'app-password': 'n'.repeat(20) } }, rotations: { redis: { 'app-password': { previousPassword: 'o'.repeat(20) } } } };
    expect(engine(configured)['app-password']).toEqual({ current: { configured: 'n'.repeat(20) }, previous: { configured: 'o'.repeat(20) } });
  });

  it('never echoes a configured password, even a wrong one', () => {
    const password = 'short-pw';
    const problems = problemsOf({ ...prod, passwords: { postgresql: { 'app-password': password } } });
    expect(problems).toEqual(['allixios:passwords.postgresql.app-password: expected a string of at least 16 characters, got a value of 8 characters (not shown)']);
    expect(problems.join('\n')).not.toContain(password);
  });

  describe('TLS (allixios:tls)', () => {
    const postgresqlOnly = { postgresql: {}, mongodb: { enabled: false }, redis: { enabled: false }, elasticsearch: { enabled: false }, clickhouse: { enabled: false } };

    it("is on by default on kubernetes, with the stack's own CA issuer, and PostgreSQL serves it", () => {
      const config = parseStackConfig({ ...prod, engines: withPostgresqlImage(postgresqlOnly) }, 'allixios', 'prod');
      expect(config.tls).toEqual({ enabled: true });
      expect(config.engines[0]!.spec.tls?.directory).toBe('/etc/postgresql/tls');
      expect(config.warnings).toEqual([]);
    });

    it('is off by default on docker dev, and no engine serves it', () => {
      const config = parseStackConfig({ environment: 'dev' }, 'allixios', 'dev');
      expect(config.tls).toEqual({ enabled: false });
      expect(config.engines.filter((engine) => engine.spec.tls)).toEqual([]);
      expect(config.warnings).toEqual([]);
    });

    it('can be switched on for docker dev', () => {
      const config = parseStackConfig({ environment: 'dev', tls: true, engines: postgresqlOnly }, 'allixios', 'dev');
      expect(config.tls).toEqual({ enabled: true });
      expect(config.engines[0]!.spec.tls).toBeDefined();
    });

    it('accepts an explicit false on kubernetes, with a warning for the preview', () => {
      const config = parseStackConfig({ ...prod, tls: false, engines: withPostgresqlImage(postgresqlOnly) }, 'allixios', 'prod');
      expect(config.tls).toEqual({ enabled: false });
      expect(config.engines[0]!.spec.tls).toBeUndefined();
      expect(config.warnings).toEqual([
        'allixios:tls is false on a kubernetes stack: every password and every row crosses the cluster network in clear text. Remove the setting to serve TLS (the default).',
        // pgBackRest's agent serves TLS only (databases/postgresql/README.md).
        "allixios:engines.postgresql: PostgreSQL is not backed up on this stack: the backup jobs read each member's data directory through pgBackRest's TLS server, which admits only clients with a certificate of the stack's CA, and allixios:tls is off.",
      ]);
    });

    it('takes a named issuer with its CA bundle', () => {
      const issuer = { kind: 'ClusterIssuer', name: 'corp-ca', caBundle: CA_BUNDLE };
      expect(parseStackConfig({ ...prod, tls: { issuer }, engines: withPostgresqlImage(postgresqlOnly) }, 'allixios', 'prod').tls).toEqual({ enabled: true, issuer });
    });

    it('serves an engine without TLS support in clear text with a warning outside prod, and refuses it in prod', () => {
      // Every engine of the repository serves TLS; Valkey, the sixth-engine fixture, does not.
      const modules = [...ENGINE_MODULES, valkey];
      const staging = parseStackConfig(
        { environment: 'staging', namespace: 'allixios-staging', bootstrap: BOOTSTRAP, engines: withPostgresqlImage() },
        'allixios',
        'staging',
        modules,
      );
      expect(staging.engines.filter((engine) => !engine.spec.tls).map((engine) => engine.spec.name)).toEqual(['valkey']);
      expect(staging.warnings).toEqual([
        "allixios:tls: Valkey does not support TLS and would be served without it: its clients' passwords and data would cross the network in clear text.",
      ]);
      expect(() => parseStackConfig(prod, 'allixios', 'prod', modules)).toThrow(
        "allixios:tls: expected every engine of a prod stack to serve TLS, got Valkey does not support TLS and would be served without it: its clients' passwords and data would cross the network in clear text (describe its TlsSpec, see docs/tls-plan.md)",
      );
      // The repository's own engines all serve TLS on a prod stack, without a warning.
      const config = parseStackConfig(prod, 'allixios', 'prod');
      expect(config.engines.filter((engine) => !engine.spec.tls)).toEqual([]);
      expect(config.warnings).toEqual([]);
    });
  });

  describe("PostgreSQL's project image (allixios:engines.postgresql.image)", () => {
    const IMAGE_PHRASE = 'a pinned image reference with a tag, such as ghcr.io/acme/allixios-postgresql:18.4-1 (not latest)';
    const required = (environment: string) =>
      `allixios:engines.postgresql.image: required on the kubernetes target in ${environment}, where PostgreSQL runs as PostgreSQL under Patroni (automatic failover, replicas) with PgBouncer; expected ${IMAGE_PHRASE}, built from databases/postgresql/image/Dockerfile (the deploy workflow builds and pushes the tag the stack file pins)`;
    const replicasNeedTheImage = (replicas: number) =>
      `allixios:engines.postgresql.replicas: expected 1, since PostgreSQL runs replicas under its HA manager from the project's image, and allixios:engines.postgresql.image is unset, got ${replicas}`;

    it.each([
      ['prod', 'allixios-prod', 3],
      ['staging', 'allixios-staging', 2],
    ] as const)('is required on a %s kubernetes stack, naming the key and the Dockerfile, and the default members need it', (environment, namespace, members) => {
      expect(problemsOf({ environment, namespace, bootstrap: BOOTSTRAP, backups: PROD_BACKUPS })).toEqual([required(environment), replicasNeedTheImage(members)]);
    });

    it('runs PostgreSQL under Patroni from the pinned image with PgBouncer in front, three members in prod and two in staging', () => {
      for (const [environment, members] of [
        ['prod', 3],
        ['staging', 2],
      ] as const) {
        const values = { environment, namespace: `allixios-${environment}`, bootstrap: BOOTSTRAP, backups: PROD_BACKUPS, engines: withPostgresqlImage() };
        const spec = parseStackConfig(values, 'allixios', environment).engines.find((engine) => engine.spec.name === 'postgresql')!.spec;
        expect(spec.replicas, environment).toBe(members);
        expect([spec.highAvailability?.manager, spec.highAvailability?.image], environment).toEqual([
          'Patroni',
          { repository: 'ghcr.io/allixios/allixios-postgresql', tag: '18.4-1' },
        ]);
        expect([spec.pooler?.name, spec.pooler?.image, spec.pooler?.replicas], environment).toEqual([
          'pgbouncer',
          { repository: 'ghcr.io/allixios/allixios-postgresql', tag: '18.4-1' },
          2,
        ]);
      }
    });

    it('is optional on an ephemeral or dev kubernetes stack, where PostgreSQL runs one plain server without it', () => {
      for (const environment of ['ephemeral', 'dev'] as const) {
        const values = { environment, target: 'kubernetes', namespace: `allixios-${environment}`, bootstrap: BOOTSTRAP };
        const spec = parseStackConfig(values, 'allixios', environment).engines.find((engine) => engine.spec.name === 'postgresql')!.spec;
        expect([spec.replicas, spec.highAvailability, spec.pooler], environment).toEqual([1, undefined, undefined]);
        expect(spec.image, environment).toEqual({ repository: 'postgres', tag: '18.4' });
      }
    });

    it.each([
      [
        'on the docker target, which runs the official image as one plain server',
        { environment: 'dev', engines: { postgresql: { image: POSTGRESQL_IMAGE } } },
        `allixios:engines.postgresql.image: expected unset, since the docker target runs PostgreSQL's official image as one plain server (no HA manager), got "${POSTGRESQL_IMAGE}"`,
      ],
      [
        'beside a version, which the image pins in its Dockerfile',
        { ...prod, engines: withPostgresqlImage({ postgresql: { version: '18.4' } }) },
        `allixios:engines.postgresql.version: expected unset, since allixios:engines.postgresql.image pins the project's image, whose Dockerfile (databases/postgresql/image/Dockerfile) pins PostgreSQL's version, got "18.4"`,
      ],
      [
        'for an engine the project builds no image of',
        { ...prod, engines: withPostgresqlImage({ redis: { image: 'ghcr.io/allixios/allixios-redis:7.4-1' } }) },
        'allixios:engines.redis.image: expected unset, since the project builds no image of Redis (it runs its official image, engines.redis.version), got "ghcr.io/allixios/allixios-redis:7.4-1"',
      ],
      [
        'on the latest tag',
        { ...prod, engines: { postgresql: { image: 'ghcr.io/allixios/allixios-postgresql:latest' } } },
        `allixios:engines.postgresql.image: expected ${IMAGE_PHRASE}, got "ghcr.io/allixios/allixios-postgresql:latest"`,
      ],
      [
        'without a tag',
        { ...prod, engines: { postgresql: { image: 'ghcr.io/allixios/allixios-postgresql' } } },
        `allixios:engines.postgresql.image: expected ${IMAGE_PHRASE}, got "ghcr.io/allixios/allixios-postgresql"`,
      ],
    ])('is refused %s, in one sentence naming key, expectation and value', (_case, values, expected) => {
      expect(problemsOf(values)).toEqual([expected]);
    });

    it('is what replicas need on Kubernetes: replicas on an ephemeral stack without it are refused, saying the image is unset', () => {
      expect(problemsOf({ environment: 'ephemeral', namespace: 'pr-12', bootstrap: BOOTSTRAP, engines: { postgresql: { replicas: 2 } } })).toEqual([replicasNeedTheImage(2)]);
      // And replicas on Docker are refused whatever the image: one container per engine.
      expect(problemsOf({ environment: 'dev', engines: { postgresql: { replicas: 2 } } })).toEqual([
        'allixios:engines.postgresql.replicas: expected 1, since the docker target runs one container per engine (replicas need the kubernetes target), got 2',
      ]);
    });

    it('keeps at least two members in prod, where Patroni replicates synchronously', () => {
      expect(problemsOf({ ...prod, engines: withPostgresqlImage({ postgresql: { replicas: 1 } }) })).toEqual([
        'allixios:engines.postgresql.replicas: expected at least 2 in prod, where PostgreSQL replicates synchronously under Patroni (3 recommended), got 1',
      ]);
    });
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({ ...prod, target: 'nomad', engines: withPostgresqlImage({ postgresql: { replicas: 0, storage: 'lots' } }) });
    expect(problems).toHaveLength(3);
    expect(problems.map((problem) => problem.split(':')[1])).toEqual(['target', 'engines.postgresql.replicas', 'engines.postgresql.storage']);
  });

  it('applies the environment and engine defaults to a minimal prod config', () => {
    const config = parseStackConfig(prod, 'allixios', 'prod');
    expect(config.target).toBe('kubernetes');
    expect(config.protectData).toBe(true);
    expect(config.pvcRetention).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    expect(config.engines.map((engine) => engine.spec.name)).toEqual(['postgresql', 'mongodb', 'redis', 'elasticsearch', 'clickhouse']);
    const postgresql = config.engines[0]!;
    expect(postgresql.spec.image).toEqual({ repository: 'postgres', tag: '18.4' });
    expect(postgresql.spec.storage).toBe('100Gi');
    // Three members in prod, under Patroni from the image the stack pins
    expect(postgresql.spec.replicas).toBe(3);
    expect(postgresql.spec.highAvailability?.image).toEqual({ repository: 'ghcr.io/allixios/allixios-postgresql', tag: '18.4-1' });
  });

  it('takes the StorageClasses the operator vouches for as encrypting, none unless listed', () => {
    expect(parseStackConfig(prod, 'allixios', 'prod').encryptedStorageClasses).toEqual([]);
    const listed = parseStackConfig({ ...prod, encryptedStorageClasses: ['gp3-encrypted', 'premium-rwo-cmek'] }, 'allixios', 'prod');
    expect(listed.encryptedStorageClasses).toEqual(['gp3-encrypted', 'premium-rwo-cmek']);
  });

  it("takes the cluster's DNS domain, cluster.local unless set", () => {
    expect(parseStackConfig(prod, 'allixios', 'prod').clusterDomain).toBe('cluster.local');
    expect(parseStackConfig({ ...prod, clusterDomain: 'prod.example.internal' }, 'allixios', 'prod').clusterDomain).toBe('prod.example.internal');
  });

  it('merges a partial resources override with the environment defaults', () => {
    const config = parseStackConfig({ ...prod, engines: withPostgresqlImage({ postgresql: { resources: { limits: { memory: '16Gi' } } } }) }, 'allixios', 'prod');
    expect(config.engines[0]!.spec.resources).toEqual({ requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '16Gi' } });
  });

  it('leaves disabled engines out', () => {
    const config = parseStackConfig({ ...prod, engines: withPostgresqlImage({ mongodb: { enabled: false } }) }, 'allixios', 'prod');
    expect(config.engines.map((engine) => engine.spec.name)).not.toContain('mongodb');
  });

  it('reads Pulumi config values as the CLI hands them over, objects as JSON text', () => {
    const values = namespaceConfig({
      'allixios:environment': 'prod',
      'allixios:namespace': 'allixios-prod',
      'allixios:exposeHostPorts': 'false',
      'allixios:engines': '{"postgresql":{"replicas":1}}',
      'aws:region': 'eu-west-1',
    });
    expect(values).toEqual({ environment: 'prod', namespace: 'allixios-prod', exposeHostPorts: false, engines: { postgresql: { replicas: 1 } } });
  });

  it('stops the program before any resource is registered when the config is invalid', async () => {
    // Given a stack whose config names an unknown target
    const recorder = createRecordingMocks();
    pulumi.runtime.setMocks(recorder.mocks, 'allixios', 'broken', false);
    pulumi.runtime.setAllConfig({ 'allixios:environment': 'prod', 'allixios:target': 'nomad' });
    // When the program itself runs
    const run = import('../index.ts');
    // Then it fails with the config error and nothing was created
    await expect(run).rejects.toThrow('allixios:target: expected one of docker, kubernetes, got "nomad"');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(recorder.resources).toEqual([]);
  });
});

describe('backups (allixios:backups)', () => {
  const staging = { environment: 'staging', namespace: 'allixios-staging', bootstrap: BOOTSTRAP, engines: withPostgresqlImage() };
  const ephemeral = { environment: 'ephemeral', namespace: 'allixios-pr-9', bootstrap: BOOTSTRAP };
  const store = PROD_BACKUPS.objectStore;

  it('refuses a prod stack without an object store, or with backups turned off, naming the key', () => {
    const required =
      'allixios:backups.objectStore: required in prod, where a lost volume must not lose the platform\'s data; expected an object with bucket, region and credentials (README "Backups"), got';
    expect(problemsOf({ ...prod, backups: undefined })).toEqual([`${required} none`]);
    expect(problemsOf({ ...prod, backups: { ...PROD_BACKUPS, enabled: false } })).toEqual([`${required} backups.enabled: false`]);
  });

  it('backs up nothing in ephemeral and staging stacks that name no object store, and everything once one is named', () => {
    for (const values of [ephemeral, staging]) {
      const config = parseStackConfig(values, 'allixios', 'test');
      expect(config.backups).toEqual({ enabled: false });
      expect(config.engines.every((engine) => engine.spec.backup === undefined)).toBe(true);
    }
    const named = parseStackConfig({ ...ephemeral, backups: { objectStore: store } }, 'allixios', 'pr-9');
    expect(named.backups).toEqual({
      enabled: true,
      objectStore: {
        endpoint: 'https://s3.eu-west-1.amazonaws.com',
        bucket: 'allixios-prod-backups',
        region: 'eu-west-1',
        prefix: 'pr-9',
        forcePathStyle: false,
        credentials: { kind: 'secret', secretName: 'allixios-backup-s3', accessKeyIdKey: 'access-key-id', secretAccessKeyKey: 'secret-access-key' },
      },
      retention: { count: 1, days: 3 },
    });
  });

  it("gives each engine its prefix, its jobs' schedules (defaults, overridden per job) and the environment's retention", () => {
    const seen: Record<string, unknown> = {};
    const modules = ENGINE_MODULES.map((module) => ({
      ...module,
      describe: (settings: EngineSettings) => ((seen[module.name] = settings.backup), module.describe(settings as never)),
    })) as EngineModule[];
    const values = { ...prod, backups: { ...PROD_BACKUPS, schedules: { postgresql: { diff: '30 2 * * 1-6' } }, retention: { days: 60 } } };
    parseStackConfig(values, 'allixios', 'prod', modules);
    expect(seen.postgresql).toMatchObject({ path: 'prod/postgresql', schedules: { full: '0 1 * * 0', diff: '30 2 * * 1-6' }, retention: { count: 4, days: 60 } });
    expect(seen.redis).toMatchObject({ path: 'prod/redis', schedules: { snapshot: '15 * * * *' } });
    expect(Object.keys(seen).sort()).toEqual(['clickhouse', 'elasticsearch', 'mongodb', 'postgresql', 'redis']);
  });

  it.each([
    [
      'a plain-http endpoint',
      { ...PROD_BACKUPS, objectStore: { ...store, endpoint: 'http://minio.backups.svc:9000' } },
      'allixios:backups.objectStore.endpoint: expected the object store\'s https URL without a path, such as https://s3.eu-west-1.amazonaws.com or https://minio.backups.svc:9000 (plain http would carry its keys and every backup in clear text, and pgBackRest speaks https only), got "http://minio.backups.svc:9000"',
    ],
    [
      'an endpoint with a path',
      { ...PROD_BACKUPS, objectStore: { ...store, endpoint: 'https://s3.example.com/bucket' } },
      'allixios:backups.objectStore.endpoint: expected the object store\'s https URL without a path, such as https://s3.eu-west-1.amazonaws.com or https://minio.backups.svc:9000 (plain http would carry its keys and every backup in clear text, and pgBackRest speaks https only), got "https://s3.example.com/bucket"',
    ],
    [
      'a bucket name S3 refuses',
      { ...PROD_BACKUPS, objectStore: { ...store, bucket: 'Allixios_Backups' } },
      'allixios:backups.objectStore.bucket: expected an S3 bucket name: 3 to 63 lowercase letters, digits, "." and "-", starting and ending with a letter or digit, such as acme-allixios-backups, got "Allixios_Backups"',
    ],
    [
      'a prefix that climbs out of the stack',
      { ...PROD_BACKUPS, objectStore: { ...store, prefix: '../staging' } },
      'allixios:backups.objectStore.prefix: expected a path inside the bucket: segments of letters, digits, ".", "_" and "-" joined by "/", no leading or trailing "/", such as allixios/prod, got "../staging"',
    ],
    [
      'a schedule that is not five cron fields',
      { ...PROD_BACKUPS, schedules: { postgresql: { full: '@weekly' } } },
      'allixios:backups.schedules.postgresql.full: expected a cron schedule of five fields in UTC (minute hour day-of-month month day-of-week) such as "0 1 * * 0", got "@weekly"',
    ],
    [
      'a schedule for a job the engine does not have',
      { ...PROD_BACKUPS, schedules: { redis: { full: '0 1 * * *' } } },
      'allixios:backups.schedules.redis.full: expected one of Redis\'s backup jobs (snapshot), got "0 1 * * *" for an unknown job',
    ],
    [
      'a schedule for an engine that does not exist',
      { ...PROD_BACKUPS, schedules: { cassandra: { full: '0 1 * * *' } } },
      'allixios:backups.schedules.cassandra: expected an engine name (postgresql, mongodb, redis, elasticsearch, clickhouse), got "cassandra"',
    ],
    ['a retention of no backup', { ...PROD_BACKUPS, retention: { count: 0 } }, 'allixios:backups.retention.count: expected a whole number of full backups from 1, got 0'],
    [
      'workload identity without the annotation that binds the role',
      { objectStore: { ...store, credentials: { workloadIdentity: { serviceAccountAnnotations: {} } } } },
      'allixios:backups.objectStore.credentials.workloadIdentity.serviceAccountAnnotations: expected at least one annotation that binds the cloud role (eks.amazonaws.com/role-arn, iam.gke.io/gcp-service-account), got none',
    ],
  ])('refuses %s with a sentence naming key, expectation and value', (_what, backups, expected) => {
    expect(problemsOf({ ...prod, backups })).toEqual([expected]);
  });

  it('refuses access keys written into the stack config: the program only names the Secret that holds them', () => {
    const problems = problemsOf({ ...prod, backups: { objectStore: { ...store, credentials: { secretName: 'allixios-backup-s3', accessKeyId: 'AKIAEXAMPLEEXAMPLE12' } } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^allixios:backups\.objectStore\.credentials/);
    expect(problems[0]).not.toContain('AKIAEXAMPLEEXAMPLE12');
  });

  it('refuses backups on the docker target, which schedules nothing', () => {
    expect(problemsOf({ environment: 'dev', backups: { objectStore: store } })).toEqual([
      'allixios:backups: expected unset, since the docker target schedules nothing (back up and restore a dev stack by hand: npm run restore), got {"objectStore":"…"}',
    ]);
  });
});
