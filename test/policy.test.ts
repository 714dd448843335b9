/**
 * The policy pack (policy/): each policy's validator on compliant and violating resources, shaped
 * as `args.props` would be; then every policy over what the real program registers for `prod` (and
 * `dev` for Docker images), so a program change that breaks a policy fails here; and last the pack
 * as the Pulumi CLI runs it, through the CLI's policy runner and its gRPC interface.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { credentials } from '@grpc/grpc-js';
import { AnalyzerClient } from '@pulumi/pulumi/proto/analyzer_grpc_pb.js';
import { AnalyzeRequest, AnalyzerResourceOptions, EnforcementLevel, type AnalyzeResponse, type AnalyzerInfo } from '@pulumi/pulumi/proto/analyzer_pb.js';
import { Empty } from 'google-protobuf/google/protobuf/empty_pb.js';
import { Struct } from 'google-protobuf/google/protobuf/struct_pb.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  containerNonRoot,
  containerProbes,
  containerResources,
  CERTIFICATE_TYPE,
  databasePolicies,
  databaseTls,
  ENCRYPTED_STORAGE_CLASSES_ANNOTATION,
  ENCRYPTED_STORAGE_CLASSES_KEY,
  encryptedVolumeClaims,
  networkPolicyCoverage,
  noExposedDatabaseServices,
  noSecretEnvValues,
  noSecretsInConfigMaps,
  PART_OF,
  pinnedImages,
  podDisruptionBudgetCoverage,
  prodDataProtected,
  selects,
  statefulSetVolumeClaims,
  type PolicyResource,
  type ResourceValidationArgs,
  type ResourceValidationPolicy,
  type StackValidationPolicy,
} from '../policy/policies.ts';
import { namespaceConfig } from '../stacks/config/index.ts';
import { keyName } from '../stacks/config/messages.ts';
import { ENCRYPTED_STORAGE_CLASSES_ANNOTATION as PROGRAM_ENCRYPTED_STORAGE_CLASSES_ANNOTATION, PART_OF as PROGRAM_PART_OF } from '../stacks/labels.ts';
import { SECRET_SIGNATURE, SECRET_SIGNATURE_KEY, unwrapSecrets, type RecordedResource } from '../stacks/render/mocks.ts';
import { readStackFile } from '../stacks/render/stack-file.ts';
import { evaluate, evaluateStack, ROOT, type Evaluation } from './support/pulumi.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- fixtures shaped as args.props

const STATEFUL_SET = 'kubernetes:apps/v1:StatefulSet';
const DEPLOYMENT = 'kubernetes:apps/v1:Deployment';
const JOB = 'kubernetes:batch/v1:Job';
const CRON_JOB = 'kubernetes:batch/v1:CronJob';
const SERVICE = 'kubernetes:core/v1:Service';
const CONFIG_MAP = 'kubernetes:core/v1:ConfigMap';
const NETWORK_POLICY = 'kubernetes:networking.k8s.io/v1:NetworkPolicy';
const PDB = 'kubernetes:policy/v1:PodDisruptionBudget';
const REMOTE_IMAGE = 'docker:index/remoteImage:RemoteImage';
const DOCKER_CONTAINER = 'docker:index/container:Container';
const DOCKER_VOLUME = 'docker:index/volume:Volume';
const PVC = 'kubernetes:core/v1:PersistentVolumeClaim';

const NOT_A_DATABASE = 'not labelled app.kubernetes.io/part-of: allixios';

// ---------------------------------------------------------------------------------------------
// The policy server's arguments, without the gRPC (see @pulumi/policy's server.js).

interface TestResource {
  type: string;
  name: string;
  props: Json;
  protect?: boolean;
}

interface Outcome {
  violations: string[];
  notApplicable?: string;
}

class NotApplicable extends Error {}

/** The server matches a class by its `__pulumiType`, which the generated SDK classes carry. */
function isTypeOf(type: string, resourceClass: unknown): boolean {
  return (resourceClass as { __pulumiType?: string }).__pulumiType === type;
}

function options(protect = false) {
  return { protect, ignoreChanges: [], aliases: [], additionalSecretOutputs: [], customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 } };
}

function resourceArgs(resource: TestResource, config: object): ResourceValidationArgs {
  return {
    type: resource.type,
    name: resource.name,
    urn: `urn:pulumi:test::allixios::${resource.type}::${resource.name}`,
    props: resource.props,
    opts: options(resource.protect),
    stackTags: new Map(),
    isType: (resourceClass) => isTypeOf(resource.type, resourceClass),
    asType: ((resourceClass: unknown) => (isTypeOf(resource.type, resourceClass) ? resource.props : undefined)) as ResourceValidationArgs['asType'],
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason);
    },
  };
}

/** Runs a resource policy's validators as the server does and collects what they report. */
async function check(policy: ResourceValidationPolicy, resource: TestResource, config: object = {}): Promise<Outcome> {
  const outcome: Outcome = { violations: [] };
  const validations = Array.isArray(policy.validateResource) ? policy.validateResource : [policy.validateResource!];
  for (const validation of validations) {
    try {
      await validation(resourceArgs(resource, config), (message) => outcome.violations.push(message));
    } catch (error) {
      if (!(error instanceof NotApplicable)) throw error;
      outcome.notApplicable = error.message;
    }
  }
  return outcome;
}

async function violations(policy: ResourceValidationPolicy, resource: TestResource, config: object = {}): Promise<string[]> {
  const outcome = await check(policy, resource, config);
  expect(outcome.notApplicable, `${policy.name} should apply to ${resource.type} ${resource.name}`).toBeUndefined();
  return outcome.violations;
}

function stackResource(resource: TestResource): PolicyResource {
  const urn = `urn:pulumi:test::allixios::${resource.type}::${resource.name}`;
  return {
    type: resource.type,
    name: resource.name,
    urn,
    props: resource.props,
    opts: options(resource.protect),
    dependencies: [],
    propertyDependencies: {},
    isType: (resourceClass) => isTypeOf(resource.type, resourceClass),
    asType: ((resourceClass: unknown) => (isTypeOf(resource.type, resourceClass) ? resource.props : undefined)) as PolicyResource['asType'],
  };
}

async function checkStack(policy: StackValidationPolicy, resources: TestResource[], config: object = {}): Promise<{ message: string; urn?: string }[]> {
  const reported: { message: string; urn?: string }[] = [];
  await policy.validateStack(
    {
      resources: resources.map(stackResource),
      stackTags: new Map(),
      getConfig: <T extends object>() => config as T,
      notApplicable: (reason?: string): never => {
        throw new NotApplicable(reason);
      },
    },
    (message, urn) => reported.push({ message, ...(urn ? { urn } : {}) }),
  );
  return reported;
}

// ---------------------------------------------------------------------------------------------
// Fixtures: one compliant database of each kind, copied and broken per test.

const SELECTOR = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'allixios-prod' };
const LABELS = { ...SELECTOR, 'app.kubernetes.io/component': 'database', 'app.kubernetes.io/part-of': 'allixios' };
const DIGEST = `sha256:${'a'.repeat(64)}`;

function engineContainer(): Json {
  const probe = { exec: { command: ['pg_isready'] }, periodSeconds: 10 };
  return {
    name: 'postgresql',
    image: 'postgres:18.4',
    env: [
      { name: 'POSTGRES_DB', value: 'allixios' },
      { name: 'POSTGRES_PASSWORD', valueFrom: { secretKeyRef: { name: 'postgresql-credentials', key: 'superuser-password' } } },
      { name: 'POSTGRES_PASSWORD_FILE', value: '/run/secrets/superuser-password' },
      { name: 'PASSWORD_ENCRYPTION', value: 'scram-sha-256' },
    ],
    resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '4Gi' } },
    startupProbe: probe,
    readinessProbe: probe,
    livenessProbe: probe,
    securityContext: { allowPrivilegeEscalation: false, runAsUser: 999 },
  };
}

function podSpec(): Json {
  return { securityContext: { runAsNonRoot: true, runAsUser: 999 }, containers: [engineContainer()] };
}

function statefulSet(change: (props: Json) => void = () => {}, protect = true): TestResource {
  const props: Json = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'postgresql', namespace: 'allixios-prod', labels: LABELS },
    spec: {
      serviceName: 'postgresql-headless',
      selector: { matchLabels: SELECTOR },
      template: { metadata: { labels: LABELS }, spec: podSpec() },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } } } }],
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
    },
  };
  change(props);
  return { type: STATEFUL_SET, name: 'allixios-postgresql-statefulset', props, protect };
}

function deployment(change: (props: Json) => void = () => {}): TestResource {
  const props: Json = {
    metadata: { name: 'pgbouncer', namespace: 'allixios-prod', labels: LABELS },
    spec: { selector: { matchLabels: SELECTOR }, template: { metadata: { labels: LABELS }, spec: podSpec() } },
  };
  change(props);
  return { type: DEPLOYMENT, name: 'allixios-pgbouncer', props };
}

function service(type?: string, labels: Record<string, string> = LABELS): TestResource {
  return {
    type: SERVICE,
    name: 'allixios-postgresql-service',
    props: { metadata: { name: 'postgresql', labels }, spec: { ...(type ? { type } : {}), selector: SELECTOR, ports: [{ port: 5432 }] } },
  };
}

function configMap(data: Record<string, string>, binaryData?: Record<string, string>): TestResource {
  return {
    type: CONFIG_MAP,
    name: 'allixios-postgresql-config',
    props: { metadata: { name: 'postgresql-config', labels: LABELS }, data, ...(binaryData ? { binaryData } : {}) },
  };
}

const dockerLabels = [
  { label: 'app.kubernetes.io/name', value: 'redis' },
  { label: 'app.kubernetes.io/part-of', value: 'allixios' },
];

function dockerContainer(image: string): TestResource {
  return { type: DOCKER_CONTAINER, name: 'allixios-redis-container', props: { name: 'allixios-dev-redis', image, labels: dockerLabels } };
}

function remoteImage(name: string): TestResource {
  return { type: REMOTE_IMAGE, name: 'allixios-redis-image', props: { name, keepLocally: true } };
}

function networkPolicy(change: (props: Json) => void = () => {}): TestResource {
  const props: Json = {
    metadata: { name: 'postgresql-ingress', namespace: 'allixios-prod', labels: LABELS },
    spec: { podSelector: { matchLabels: SELECTOR }, policyTypes: ['Ingress'], ingress: [] },
  };
  change(props);
  return { type: NETWORK_POLICY, name: 'allixios-postgresql-ingress', props };
}

function podDisruptionBudget(change: (props: Json) => void = () => {}): TestResource {
  const props: Json = { metadata: { name: 'postgresql', namespace: 'allixios-prod', labels: LABELS }, spec: { maxUnavailable: 1, selector: { matchLabels: SELECTOR } } };
  change(props);
  return { type: PDB, name: 'allixios-postgresql-pdb', props };
}

const container = (props: Json, index = 0): Json => props.spec.template.spec.containers[index];

// ---------------------------------------------------------------------------------------------

describe('scope', () => {
  it('recognises database resources by the part-of label the program puts on everything', () => {
    expect(PART_OF).toBe(PROGRAM_PART_OF);
  });

  it('leaves resources without the part-of label alone', async () => {
    const unlabelled = { ...LABELS, 'app.kubernetes.io/part-of': 'monitoring' };
    expect(await check(noExposedDatabaseServices, service('LoadBalancer', unlabelled))).toEqual({ violations: [], notApplicable: NOT_A_DATABASE });
    const foreign = statefulSet((props) => {
      props.metadata.labels = unlabelled;
      delete container(props).resources;
    });
    expect(await check(containerResources, foreign)).toEqual({ violations: [], notApplicable: NOT_A_DATABASE });
  });
});

describe('database-service-not-exposed', () => {
  it('accepts ClusterIP and headless database Services', async () => {
    expect(await violations(noExposedDatabaseServices, service('ClusterIP'))).toEqual([]);
    expect(await violations(noExposedDatabaseServices, service())).toEqual([]);
  });

  it('refuses a database Service of type LoadBalancer or NodePort', async () => {
    for (const type of ['LoadBalancer', 'NodePort']) {
      expect(await violations(noExposedDatabaseServices, service(type))).toEqual([
        `Service "postgresql" is of type ${type}, which exposes the database outside the cluster; use ClusterIP and connect from client pods or through kubectl port-forward`,
      ]);
    }
  });
});

describe('database-container-resources', () => {
  it('accepts containers with CPU and memory requests and limits', async () => {
    expect(await violations(containerResources, statefulSet())).toEqual([]);
    expect(await violations(containerResources, deployment())).toEqual([]);
  });

  it('names each missing request and limit of each container', async () => {
    const broken = statefulSet((props) => {
      delete container(props).resources.limits.cpu;
      delete container(props).resources.requests.memory;
    });
    expect(await violations(containerResources, broken)).toEqual(['StatefulSet "postgresql": container "postgresql" has no resources.requests.memory, resources.limits.cpu']);
    const bare = deployment((props) => delete container(props).resources);
    expect(await violations(containerResources, bare)).toEqual([
      'Deployment "pgbouncer": container "postgresql" has no resources.requests.cpu, resources.requests.memory, resources.limits.cpu, resources.limits.memory',
    ]);
  });

  it('checks native sidecars but not run-to-completion init containers', async () => {
    const withInit = statefulSet((props) => {
      props.spec.template.spec.initContainers = [
        { name: 'sysctl', image: 'busybox:1.37.0', securityContext: { privileged: true, runAsUser: 0 } },
        { name: 'exporter', image: 'postgres-exporter:0.17.1', restartPolicy: 'Always' },
      ];
    });
    expect(await violations(containerResources, withInit)).toEqual([
      'StatefulSet "postgresql": container "exporter" has no resources.requests.cpu, resources.requests.memory, resources.limits.cpu, resources.limits.memory',
    ]);
  });

  it('does not apply to Jobs, which run to completion', async () => {
    const job: TestResource = {
      type: JOB,
      name: 'allixios-bootstrap',
      props: { metadata: { labels: LABELS }, spec: { template: { spec: { containers: [{ name: 'bootstrap', image: 'node:20.19.0' }] } } } },
    };
    expect(await check(containerResources, job)).toEqual({ violations: [], notApplicable: 'a Job is not a long-running workload' });
  });
});

describe('database-container-probes', () => {
  it('accepts containers with startup, readiness and liveness probes', async () => {
    expect(await violations(containerProbes, statefulSet())).toEqual([]);
  });

  it('names the missing probes', async () => {
    const broken = statefulSet((props) => {
      delete container(props).startupProbe;
      delete container(props).livenessProbe;
    });
    expect(await violations(containerProbes, broken)).toEqual(['StatefulSet "postgresql": container "postgresql" has no startupProbe, livenessProbe']);
  });
});

describe('database-container-non-root', () => {
  it('accepts runAsNonRoot on the pod with privilege escalation off on the container', async () => {
    expect(await violations(containerNonRoot, statefulSet())).toEqual([]);
  });

  it('accepts runAsNonRoot on the container alone', async () => {
    const containerLevel = statefulSet((props) => {
      delete props.spec.template.spec.securityContext;
      container(props).securityContext.runAsNonRoot = true;
    });
    expect(await violations(containerNonRoot, containerLevel)).toEqual([]);
  });

  it('refuses a container that may escalate privileges or run as root', async () => {
    const escalating = statefulSet((props) => delete container(props).securityContext.allowPrivilegeEscalation);
    expect(await violations(containerNonRoot, escalating)).toEqual([
      'StatefulSet "postgresql": container "postgresql" does not set securityContext.allowPrivilegeEscalation: false',
    ]);
    const overridden = statefulSet((props) => (container(props).securityContext.runAsNonRoot = false));
    expect(await violations(containerNonRoot, overridden)).toEqual([
      'StatefulSet "postgresql": container "postgresql" may run as root; set securityContext.runAsNonRoot: true on the container or the pod',
    ]);
    const unset = deployment((props) => delete props.spec.template.spec.securityContext);
    expect(await violations(containerNonRoot, unset)).toEqual([
      'Deployment "pgbouncer": container "postgresql" may run as root; set securityContext.runAsNonRoot: true on the container or the pod',
    ]);
  });

  it("leaves a privileged run-to-completion init container (Elasticsearch's sysctl) to the namespace's Pod Security level", async () => {
    const sysctl = statefulSet((props) => {
      props.spec.template.spec.initContainers = [{ name: 'sysctl', image: 'busybox:1.37.0', securityContext: { privileged: true, runAsUser: 0, runAsNonRoot: false } }];
    });
    expect(await violations(containerNonRoot, sysctl)).toEqual([]);
  });
});

describe('database-env-secrets-from-secret', () => {
  it('accepts secrets from secretKeyRef, secret file paths and settings about secrets', async () => {
    expect(await violations(noSecretEnvValues, statefulSet())).toEqual([]);
  });

  it('refuses a secret-named variable with a plain value or from another source, in any container', async () => {
    const broken = statefulSet((props) => {
      container(props).env.push({ name: 'POSTGRES_PASSWORD', value: 'hunter2-hunter2' });
      container(props).env.push({ name: 'API_KEY', valueFrom: { configMapKeyRef: { name: 'settings', key: 'api-key' } } });
      props.spec.template.spec.initContainers = [{ name: 'restore', image: 'postgres:18.4', env: [{ name: 'backupToken', value: 'abc123' }] }];
    });
    expect(await violations(noSecretEnvValues, broken)).toEqual([
      'StatefulSet "postgresql": container "restore" sets env backupToken to a plain value; use valueFrom.secretKeyRef',
      'StatefulSet "postgresql": container "postgresql" sets env POSTGRES_PASSWORD to a plain value; use valueFrom.secretKeyRef',
      'StatefulSet "postgresql": container "postgresql" reads env API_KEY from configMapKeyRef; use valueFrom.secretKeyRef',
    ]);
  });

  it('accepts a setting that names a key file, and still refuses a password, a PEM body or a base64 value in its place', async () => {
    const withKey = (value: string) =>
      statefulSet((props) => {
        container(props).env.push({ name: 'xpack.security.http.ssl.key', value });
      });
    expect(await violations(noSecretEnvValues, withKey('config/tls/tls.key'))).toEqual([]);
    expect(await violations(noSecretEnvValues, withKey('/usr/share/elasticsearch/config/tls/tls.key'))).toEqual([]);
    for (const value of ['hunter2-hunter2', 'tls.key', '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----', 'Zm9v/YmFy+cXV4=', 'a/b c.key']) {
      expect(await violations(noSecretEnvValues, withKey(value)), value).toEqual([
        'StatefulSet "postgresql": container "postgresql" sets env xpack.security.http.ssl.key to a plain value; use valueFrom.secretKeyRef',
      ]);
    }
  });

  it('applies to Jobs as well', async () => {
    const job: TestResource = {
      type: JOB,
      name: 'allixios-bootstrap',
      props: {
        metadata: { name: 'bootstrap', labels: LABELS },
        spec: { template: { spec: { containers: [{ name: 'bootstrap', image: 'node:20.19.0', env: [{ name: 'PGPASSWORD', value: 'x' }] }] } } },
      },
    };
    expect(await violations(noSecretEnvValues, job)).toEqual(['Job "bootstrap": container "bootstrap" sets env PGPASSWORD to a plain value; use valueFrom.secretKeyRef']);
  });
});

describe('database-configmap-no-secrets', () => {
  it('accepts config files that only refer to secrets', async () => {
    const files = configMap({
      'config.postgresql.conf': "# Every stored password is a SCRAM verifier\npassword_encryption = 'scram-sha-256'\n",
      'config.users.xml': '<users><app><password from_env="CLICKHOUSE_APP_PASSWORD"/><password_sha256_hex>ab12</password_sha256_hex></app></users>',
      'initdb.sh': 'export PGPASSWORD="${ALLIXIOS_OWNER_PASSWORD}"\n# requirepass is not used: see users.acl\n',
      'initdb.sql': "\\getenv app_password ALLIXIOS_APP_PASSWORD\n-- never ALTER ROLE ... PASSWORD 'literal'\nALTER ROLE allixios_app WITH LOGIN\n  PASSWORD :'app_password';\n",
      'config.elasticsearch.yml': 'xpack.security.authc.token.enabled: false\n',
    });
    expect(await violations(noSecretsInConfigMaps, files)).toEqual([]);
  });

  it('refuses keys named like a secret', async () => {
    expect(await violations(noSecretsInConfigMaps, configMap({ 'db-password': 'x' }, { 'api-token.bin': 'eA==' }))).toEqual([
      'ConfigMap "postgresql-config": key "db-password" is named like a secret; put it in a Secret',
      'ConfigMap "postgresql-config": key "api-token.bin" is named like a secret; put it in a Secret',
    ]);
  });

  it('refuses PEM private keys and credential settings with literal values, naming the line', async () => {
    const leaky = configMap({
      'server.pem': '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n',
      'config.redis.conf': 'port 6379\nrequirepass s3cret-s3cret\n',
      'config.users.xml': '<users>\n  <app><password>s3cret</password></app>\n</users>',
      'config.elasticsearch.yml': 'cluster.name: allixios\nbootstrap.password: "changeme"\n',
      'initdb.sql': "CREATE ROLE allixios_app LOGIN PASSWORD 'hunter2';\n",
      'exporter.ini': '[service]\napi_key = 0123456789abcdef\n',
      'settings.json': '{\n  "user": "app",\n  "password": "hunter2"\n}\n',
    });
    expect(await violations(noSecretsInConfigMaps, leaky)).toEqual([
      'ConfigMap "postgresql-config": key "server.pem" holds a PEM private key; put it in a Secret',
      'ConfigMap "postgresql-config": key "config.redis.conf", line 2 gives requirepass a literal value; read it from a Secret (env or mounted file)',
      'ConfigMap "postgresql-config": key "config.users.xml", line 2 gives password a literal value; read it from a Secret (env or mounted file)',
      'ConfigMap "postgresql-config": key "config.elasticsearch.yml", line 2 gives bootstrap.password a literal value; read it from a Secret (env or mounted file)',
      'ConfigMap "postgresql-config": key "initdb.sql", line 1 gives PASSWORD a literal value; read it from a Secret (env or mounted file)',
      'ConfigMap "postgresql-config": key "exporter.ini", line 2 gives api_key a literal value; read it from a Secret (env or mounted file)',
      'ConfigMap "postgresql-config": key "settings.json", line 3 gives password a literal value; read it from a Secret (env or mounted file)',
    ]);
  });
});

describe('database-statefulset-volume-claims', () => {
  it('accepts a StatefulSet whose claims request storage', async () => {
    expect(await violations(statefulSetVolumeClaims, statefulSet())).toEqual([]);
  });

  it('refuses a StatefulSet without claims or with a claim that requests no storage', async () => {
    expect(
      await violations(
        statefulSetVolumeClaims,
        statefulSet((props) => delete props.spec.volumeClaimTemplates),
      ),
    ).toEqual(['StatefulSet "postgresql" has no volumeClaimTemplates, so its data does not outlive the pod']);
    const sizeless = statefulSet((props) => delete props.spec.volumeClaimTemplates[0].spec.resources);
    expect(await violations(statefulSetVolumeClaims, sizeless)).toEqual(['StatefulSet "postgresql": volumeClaimTemplate "data" has no spec.resources.requests.storage']);
  });
});

describe('database-data-protected', () => {
  const inProd = prodDataProtected(() => 'prod');

  it('accepts a protected prod StatefulSet that retains its claims, explicitly or by default', async () => {
    expect(await violations(inProd, statefulSet())).toEqual([]);
    expect(
      await violations(
        inProd,
        statefulSet((props) => delete props.spec.persistentVolumeClaimRetentionPolicy),
      ),
    ).toEqual([]);
  });

  it('refuses an unprotected prod StatefulSet and claims deleted with it or on scale-down', async () => {
    const exposed = statefulSet((props) => (props.spec.persistentVolumeClaimRetentionPolicy = { whenDeleted: 'Delete', whenScaled: 'Delete' }), false);
    expect(await violations(inProd, exposed)).toEqual([
      'StatefulSet "postgresql" is not protected: stack prod requires protect: true on every StatefulSet, which owns the data volumes',
      'StatefulSet "postgresql": persistentVolumeClaimRetentionPolicy.whenDeleted is Delete; stack prod requires Retain',
      'StatefulSet "postgresql": persistentVolumeClaimRetentionPolicy.whenScaled is Delete; stack prod requires Retain',
    ]);
  });

  it('refuses an unprotected Docker data volume in prod', async () => {
    const volume: TestResource = { type: DOCKER_VOLUME, name: 'allixios-redis-data', props: { name: 'allixios-prod-redis-data', labels: dockerLabels }, protect: false };
    expect(await violations(inProd, volume)).toEqual(['Volume "allixios-prod-redis-data" is not protected: stack prod requires protect: true on every data volume']);
  });

  it('does not apply outside the protected stacks', async () => {
    expect(
      await check(
        prodDataProtected(() => 'staging'),
        statefulSet(() => {}, false),
      ),
    ).toEqual({
      violations: [],
      notApplicable: 'stack staging is not a protected stack',
    });
  });

  it('takes the protected stacks from the policy config', async () => {
    const config = { protectedStacks: ['prod', 'prod-eu'] };
    expect(
      await violations(
        prodDataProtected(() => 'prod-eu'),
        statefulSet(() => {}, false),
        config,
      ),
    ).toEqual(['StatefulSet "postgresql" is not protected: stack prod-eu requires protect: true on every StatefulSet, which owns the data volumes']);
  });
});

describe('database-storage-encrypted (advisory)', () => {
  const inProd = encryptedVolumeClaims(() => 'prod');
  /** The fixture StatefulSet with the stack's list on it and its data claim on `storageClass` (none: unset). */
  const claimingFrom = (listed: string[] | undefined, storageClass?: string, change: (props: Json) => void = () => {}) =>
    statefulSet((props) => {
      if (listed) props.metadata.annotations = { [ENCRYPTED_STORAGE_CLASSES_ANNOTATION]: listed.join(',') };
      if (storageClass !== undefined) props.spec.volumeClaimTemplates[0].spec.storageClassName = storageClass;
      change(props);
    });
  const warning = (uses: string, claim = 'data') =>
    `StatefulSet "postgresql": volume claim template "${claim}" uses ${uses}, which allixios:encryptedStorageClasses does not list as encrypting; ` +
    'stack prod keeps its data encrypted at rest: set allixios:engines.postgresql.storageClass to a StorageClass that encrypts its volumes and list it in allixios:encryptedStorageClasses (README "Encryption at rest")';

  it('reads the list the program writes, under the config key the program reads it from', () => {
    expect(ENCRYPTED_STORAGE_CLASSES_ANNOTATION).toBe(PROGRAM_ENCRYPTED_STORAGE_CLASSES_ANNOTATION);
    expect(ENCRYPTED_STORAGE_CLASSES_KEY).toBe(keyName(['encryptedStorageClasses']));
  });

  it('stays quiet for a prod claim on a StorageClass the stack lists as encrypting', async () => {
    expect(await violations(inProd, claimingFrom(['premium-rwo-cmek', 'gp3-encrypted'], 'gp3-encrypted'))).toEqual([]);
  });

  it('warns for a prod claim on a StorageClass the list does not name, naming the claim, the class and the key to set', async () => {
    expect(await violations(inProd, claimingFrom(['gp3-encrypted'], 'gp2'))).toEqual([warning('StorageClass "gp2"')]);
    // No list at all: nothing is vouched for.
    expect(await violations(inProd, claimingFrom(undefined, 'gp3-encrypted'))).toEqual([warning('StorageClass "gp3-encrypted"')]);
  });

  it('warns for a claim that names no StorageClass: the cluster default is never taken as encrypted, even when the list names the class that is default today', async () => {
    expect(await violations(inProd, claimingFrom(['standard']))).toEqual([warning('the cluster default StorageClass (it names none)')]);
  });

  it('is not evaded by the beta annotation, an empty class, a near name, the list on the claim instead, a second claim, or a claim of its own', async () => {
    // Kubernetes reads the beta annotation before spec.storageClassName.
    const annotated = claimingFrom(['gp3-encrypted'], 'gp3-encrypted', (props) => {
      props.spec.volumeClaimTemplates[0].metadata.annotations = { 'volume.beta.kubernetes.io/storage-class': 'gp2' };
    });
    expect(await violations(inProd, annotated)).toEqual([warning('StorageClass "gp2"')]);
    // "" is no class: a pre-provisioned volume, of unknown encryption.
    expect(await violations(inProd, claimingFrom(['gp3-encrypted'], ''))).toEqual([warning('no StorageClass (storageClassName "", a pre-provisioned volume)')]);
    // Names match whole, and the list is read from the StatefulSet only.
    expect(await violations(inProd, claimingFrom([' gp3 ', 'encrypted'], 'gp3-encrypted'))).toEqual([warning('StorageClass "gp3-encrypted"')]);
    const listedOnTheClaim = claimingFrom(undefined, 'gp3-encrypted', (props) => {
      props.spec.volumeClaimTemplates[0].metadata.annotations = { [ENCRYPTED_STORAGE_CLASSES_ANNOTATION]: 'gp3-encrypted' };
    });
    expect(await violations(inProd, listedOnTheClaim)).toEqual([warning('StorageClass "gp3-encrypted"')]);
    // Every claim template counts, not just the first.
    const secondClaim = claimingFrom(['gp3-encrypted'], 'gp3-encrypted', (props) => {
      props.spec.volumeClaimTemplates.push({ metadata: { name: 'wal' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } } } });
    });
    expect(await violations(inProd, secondClaim)).toEqual([warning('the cluster default StorageClass (it names none)', 'wal')]);
    // A PersistentVolumeClaim of the database's outside any StatefulSet.
    const claim: TestResource = {
      type: PVC,
      name: 'allixios-postgresql-scratch',
      props: {
        metadata: { name: 'postgresql-scratch', namespace: 'allixios-prod', labels: LABELS },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } } },
      },
    };
    expect(await violations(inProd, claim)).toEqual([
      'PersistentVolumeClaim "postgresql-scratch" uses the cluster default StorageClass (it names none), which allixios:encryptedStorageClasses does not list as encrypting; ' +
        'stack prod keeps its data encrypted at rest: give it a StorageClass that encrypts its volumes and list it in allixios:encryptedStorageClasses (README "Encryption at rest")',
    ]);
  });

  it('stays quiet outside the protected stacks, and takes them from the policy config', async () => {
    for (const stack of ['staging', 'dev']) {
      expect(
        await check(
          encryptedVolumeClaims(() => stack),
          claimingFrom(undefined),
        ),
      ).toEqual({ violations: [], notApplicable: `stack ${stack} is not a protected stack` });
    }
    const config = { protectedStacks: ['prod', 'prod-eu'] };
    expect(
      await violations(
        encryptedVolumeClaims(() => 'prod-eu'),
        claimingFrom(['gp3-encrypted'], 'gp3-encrypted'),
        config,
      ),
    ).toEqual([]);
    expect(
      (
        await violations(
          encryptedVolumeClaims(() => 'prod-eu'),
          claimingFrom(['gp3-encrypted'], 'gp2'),
          config,
        )
      )[0],
    ).toContain('stack prod-eu keeps its data encrypted at rest');
  });

  it('leaves claims without the part-of label alone', async () => {
    const foreign = claimingFrom(undefined, 'gp2', (props) => (props.metadata.labels = { ...LABELS, 'app.kubernetes.io/part-of': 'monitoring' }));
    expect(await check(inProd, foreign)).toEqual({ violations: [], notApplicable: NOT_A_DATABASE });
  });
});

describe('pinned-images', () => {
  it('accepts version tags, digests and Docker image IDs', async () => {
    const pinned = statefulSet((props) => {
      container(props).image = 'registry.local:5000/postgres:18.4';
      props.spec.template.spec.initContainers = [
        { name: 'sysctl', image: `busybox@${DIGEST}` },
        { name: 'restore', image: `postgres:latest@${DIGEST}` },
      ];
    });
    expect(await violations(pinnedImages, pinned)).toEqual([]);
    expect(await violations(pinnedImages, remoteImage('redis:7.4.11'))).toEqual([]);
    expect(await violations(pinnedImages, dockerContainer(DIGEST))).toEqual([]);
  });

  it('refuses a missing tag and latest in every container, including init containers', async () => {
    const floating = statefulSet((props) => {
      container(props).image = 'registry.local:5000/postgres';
      props.spec.template.spec.initContainers = [{ name: 'sysctl', image: 'busybox:latest' }];
    });
    expect(await violations(pinnedImages, floating)).toEqual([
      'StatefulSet "postgresql": container "sysctl" image "busybox:latest" uses the floating tag latest; pin a version tag or a digest',
      'StatefulSet "postgresql": container "postgresql" image "registry.local:5000/postgres" has no tag (which means latest); pin a version tag or a digest',
    ]);
  });

  it('refuses a container that names no image', async () => {
    const imageless = deployment((props) => delete container(props).image);
    expect(await violations(pinnedImages, imageless)).toEqual(['Deployment "pgbouncer": container "postgresql" names no image']);
  });

  it('refuses unpinned Docker images and containers', async () => {
    expect(await violations(pinnedImages, remoteImage('redis:latest'))).toEqual([
      'RemoteImage "allixios-redis-image": image "redis:latest" uses the floating tag latest; pin a version tag or a digest',
    ]);
    expect(await violations(pinnedImages, dockerContainer('redis'))).toEqual([
      'Container "allixios-dev-redis": image "redis" has no tag (which means latest); pin a version tag or a digest',
    ]);
  });
});

describe('label selectors', () => {
  const pod = { 'app.kubernetes.io/name': 'postgresql', tier: 'data' };

  it('select pods as Kubernetes does: all labels and every expression must hold', () => {
    const expression = (operator: string, values?: string[]) => ({ matchExpressions: [{ key: 'tier', operator, ...(values ? { values } : {}) }] });
    expect(selects({}, pod)).toBe(true);
    expect(selects(undefined, pod)).toBe(false);
    expect(selects({ matchLabels: { 'app.kubernetes.io/name': 'postgresql' } }, pod)).toBe(true);
    expect(selects({ matchLabels: { 'app.kubernetes.io/name': 'postgresql', tier: 'cache' } }, pod)).toBe(false);
    expect([selects(expression('In', ['data', 'cache']), pod), selects(expression('In', ['cache']), pod)]).toEqual([true, false]);
    expect([selects(expression('NotIn', ['cache']), pod), selects(expression('NotIn', ['data']), pod)]).toEqual([true, false]);
    expect([selects(expression('Exists'), pod), selects(expression('Exists'), {})]).toEqual([true, false]);
    expect([selects(expression('DoesNotExist'), {}), selects(expression('DoesNotExist'), pod)]).toEqual([true, false]);
    expect(selects(expression('Gt', ['1']), pod)).toBe(false);
  });
});

describe('database-network-policy (advisory)', () => {
  it('is satisfied by an ingress NetworkPolicy selecting the pods, by labels or expressions', async () => {
    expect(await checkStack(networkPolicyCoverage, [statefulSet(), networkPolicy()])).toEqual([]);
    const byExpression = networkPolicy((props) => {
      props.spec.podSelector = { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['postgresql', 'redis'] }] };
      delete props.spec.policyTypes;
    });
    expect(await checkStack(networkPolicyCoverage, [statefulSet(), byExpression])).toEqual([]);
  });

  it('reports a StatefulSet no ingress NetworkPolicy of its namespace selects', async () => {
    const expected = [
      {
        message: 'StatefulSet "postgresql" in namespace allixios-prod: no NetworkPolicy restricting ingress selects its pods, so any pod in the cluster can connect to the engine',
        urn: 'urn:pulumi:test::allixios::kubernetes:apps/v1:StatefulSet::allixios-postgresql-statefulset',
      },
    ];
    expect(await checkStack(networkPolicyCoverage, [statefulSet()])).toEqual(expected);
    const elsewhere = networkPolicy((props) => (props.metadata.namespace = 'other'));
    const egressOnly = networkPolicy((props) => (props.spec.policyTypes = ['Egress']));
    const otherPods = networkPolicy((props) => (props.spec.podSelector = { matchLabels: { 'app.kubernetes.io/name': 'redis' } }));
    expect(await checkStack(networkPolicyCoverage, [statefulSet(), elsewhere, egressOnly, otherPods])).toEqual(expected);
  });
});

describe('database-pod-disruption-budget (advisory)', () => {
  it('is satisfied by a PodDisruptionBudget selecting the pods, an empty selector selecting all', async () => {
    expect(await checkStack(podDisruptionBudgetCoverage, [statefulSet(), podDisruptionBudget()])).toEqual([]);
    expect(await checkStack(podDisruptionBudgetCoverage, [statefulSet(), podDisruptionBudget((props) => (props.spec.selector = {}))])).toEqual([]);
  });

  it('reports a StatefulSet no PodDisruptionBudget selects; a budget without selector selects nothing', async () => {
    const withoutSelector = podDisruptionBudget((props) => delete props.spec.selector);
    expect(await checkStack(podDisruptionBudgetCoverage, [statefulSet(), withoutSelector])).toEqual([
      {
        message: 'StatefulSet "postgresql" in namespace allixios-prod: no PodDisruptionBudget selects its pods, so voluntary disruptions such as node drains are not limited',
        urn: 'urn:pulumi:test::allixios::kubernetes:apps/v1:StatefulSet::allixios-postgresql-statefulset',
      },
    ]);
  });
});

describe('database-tls (mandatory in prod)', () => {
  const policy = databaseTls(() => 'prod');
  const STATEFUL_SET_URN = 'urn:pulumi:test::allixios::kubernetes:apps/v1:StatefulSet::allixios-postgresql-statefulset';

  function certificate(change: (props: Json) => void = () => {}): TestResource {
    const props: Json = {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: 'postgresql-tls', namespace: 'allixios-prod', labels: LABELS },
      spec: { secretName: 'postgresql-tls', dnsNames: ['postgresql.allixios-prod.svc', 'postgresql-headless.allixios-prod.svc', 'localhost'] },
    };
    change(props);
    return { type: CERTIFICATE_TYPE, name: 'allixios-postgresql-certificate', props };
  }

  /** The engine with its certificate's Secret mounted, as the program renders it. */
  function withCertificate(change: (props: Json) => void = () => {}): TestResource {
    return statefulSet((props) => {
      props.spec.template.spec.volumes = [{ name: 'tls', secret: { secretName: 'postgresql-tls', defaultMode: 0o440 } }];
      container(props).volumeMounts = [{ name: 'tls', mountPath: '/etc/postgresql/tls', readOnly: true }];
      change(props);
    });
  }

  const unmounted = (name = 'postgresql') => ({
    message: `StatefulSet "postgresql" in namespace allixios-prod: container "${name}" runs without a certificate: it mounts no Secret of a cert-manager Certificate in namespace allixios-prod; stack prod requires TLS (allixios:tls)`,
    urn: STATEFUL_SET_URN,
  });

  const incomplete = (why: string, name = 'postgresql') => ({
    message: `${unmounted(name).message}; ${why}`,
    urn: STATEFUL_SET_URN,
  });

  it('is satisfied by a container that mounts the Secret of a Certificate naming its headless Service', async () => {
    expect(await checkStack(policy, [withCertificate(), certificate()])).toEqual([]);
  });

  it('refuses a database container without a mounted certificate', async () => {
    expect(await checkStack(policy, [statefulSet(), certificate()])).toEqual([unmounted()]);
  });

  it('refuses a Secret volume that no Certificate issues, one issued in another namespace, and one declared but not mounted', async () => {
    // A Secret of the right name that the stack made itself (a key it generated, or a copy).
    expect(await checkStack(policy, [withCertificate()])).toEqual([unmounted()]);
    const elsewhere = certificate((props) => (props.metadata.namespace = 'allixios-staging'));
    expect(await checkStack(policy, [withCertificate(), elsewhere])).toEqual([unmounted()]);
    const declaredOnly = withCertificate((props) => delete container(props).volumeMounts);
    expect(await checkStack(policy, [declaredOnly, certificate()])).toEqual([unmounted()]);
  });

  it('refuses a sidecar without the certificate, and a container that drops its port declarations does not escape', async () => {
    const sidecar = withCertificate((props) => props.spec.template.spec.containers.push({ name: 'exporter', image: 'exporter:1.0', ports: [{ containerPort: 9187 }] }));
    expect(await checkStack(policy, [sidecar, certificate()])).toEqual([unmounted('exporter')]);
    const portless = statefulSet((props) => delete container(props).ports);
    expect(await checkStack(policy, [portless, certificate()])).toEqual([unmounted()]);
  });

  it('refuses a Certificate that does not name the Service clients verify', async () => {
    const otherNames = certificate((props) => (props.spec.dnsNames = ['localhost']));
    expect(await checkStack(policy, [withCertificate(), otherNames])).toEqual([
      {
        message:
          'StatefulSet "postgresql" in namespace allixios-prod: the Certificate "postgresql-tls" it mounts does not name its Service postgresql-headless.allixios-prod.svc, so clients that verify the host name refuse it',
        urn: STATEFUL_SET_URN,
      },
    ]);
  });

  it('refuses a certificate Secret mounted without its key or certificate, as an optional volume, or one file by subPath', async () => {
    // Given the Certificate's Secret, but only the CA of it (items)
    const caOnly = withCertificate((props) => (props.spec.template.spec.volumes[0].secret.items = [{ key: 'ca.crt', path: 'ca.crt' }]));
    expect(await checkStack(policy, [caOnly, certificate()])).toEqual([
      incomplete('its volume "tls" (Secret postgresql-tls) leaves out tls.crt, tls.key (items): the engine cannot serve TLS without them'),
    ]);
    // An optional volume: the pod starts without the certificate if the Secret is not there (a Certificate never issued)
    const optional = withCertificate((props) => (props.spec.template.spec.volumes[0].secret.optional = true));
    expect(await checkStack(policy, [optional, certificate()])).toEqual([
      incomplete('its volume "tls" (Secret postgresql-tls) is optional: the pod starts without the certificate when the Secret is missing'),
    ]);
    // One file of the Secret by subPath: never refreshed on a renewal, and not the key
    const subPath = withCertificate((props) => (container(props).volumeMounts = [{ name: 'tls', mountPath: '/etc/postgresql/tls/ca.crt', subPath: 'ca.crt' }]));
    expect(await checkStack(policy, [subPath, certificate()])).toEqual([
      incomplete('it mounts volume "tls" (Secret postgresql-tls) with subPath: one file, never refreshed when the certificate is renewed'),
    ]);
  });

  it('is not evaded by running the database as a Deployment, nor by leaving out the namespace or the headless Service', async () => {
    // A Deployment without a certificate is refused like a StatefulSet.
    expect(await checkStack(policy, [deployment(), certificate()])).toEqual([
      {
        message:
          'Deployment "pgbouncer" in namespace allixios-prod: container "postgresql" runs without a certificate: it mounts no Secret of a cert-manager Certificate in namespace allixios-prod; stack prod requires TLS (allixios:tls)',
        urn: 'urn:pulumi:test::allixios::kubernetes:apps/v1:Deployment::allixios-pgbouncer',
      },
    ]);
    // With one, nothing says the certificate names what clients connect to: no Service selects its pods.
    const withCertificateDeployment = deployment((props) => {
      props.spec.template.spec.volumes = [{ name: 'tls', secret: { secretName: 'postgresql-tls' } }];
      container(props).volumeMounts = [{ name: 'tls', mountPath: '/etc/postgresql/tls', readOnly: true }];
    });
    expect((await checkStack(policy, [withCertificateDeployment, certificate()])).map((violation) => violation.message)).toEqual([
      'Deployment "pgbouncer" in namespace allixios-prod: names no Service selecting its pods, so whether the Certificate "postgresql-tls" names what clients connect to cannot be checked; run a database as a StatefulSet with its serviceName and namespace, or give a pooler a Service',
    ]);
    // A Service of another namespace, or one selecting other pods, does not count.
    const poolerService = (namespace: string, selector: Record<string, string>): TestResource => ({
      type: SERVICE,
      name: `allixios-pgbouncer-service-${namespace}`,
      props: { metadata: { name: 'pgbouncer', namespace }, spec: { selector, ports: [{ port: 6432 }] } },
    });
    expect(
      await checkStack(policy, [withCertificateDeployment, certificate(), poolerService('elsewhere', SELECTOR), poolerService('allixios-prod', { app: 'other' })]),
    ).toHaveLength(1);
    // A pooler's Service selecting its pods: the certificate must name it.
    expect((await checkStack(policy, [withCertificateDeployment, certificate(), poolerService('allixios-prod', SELECTOR)])).map((violation) => violation.message)).toEqual([
      'Deployment "pgbouncer" in namespace allixios-prod: the Certificate "postgresql-tls" it mounts does not name its Service pgbouncer.allixios-prod.svc, so clients that verify the host name refuse it',
    ]);
    const namingThePooler = certificate((props) => props.spec.dnsNames.push('pgbouncer.allixios-prod.svc'));
    expect(await checkStack(policy, [withCertificateDeployment, namingThePooler, poolerService('allixios-prod', SELECTOR)])).toEqual([]);
    // A StatefulSet and a Certificate both without a namespace, the Certificate naming only localhost.
    const unnamespaced = withCertificate((props) => delete props.metadata.namespace);
    const localOnly = certificate((props) => {
      delete props.metadata.namespace;
      props.spec.dnsNames = ['localhost'];
    });
    expect((await checkStack(policy, [unnamespaced, localOnly])).map((violation) => violation.message)).toEqual([
      'StatefulSet "postgresql": names no namespace, so whether the Certificate "postgresql-tls" names what clients connect to cannot be checked; run a database as a StatefulSet with its serviceName and namespace, or give a pooler a Service',
    ]);
  });

  it('applies only to the TLS stacks of its config (prod by default)', async () => {
    await expect(
      checkStack(
        databaseTls(() => 'staging'),
        [statefulSet()],
      ),
    ).rejects.toThrow('stack staging is not a TLS stack');
    expect(
      await checkStack(
        databaseTls(() => 'staging'),
        [statefulSet(), certificate()],
        { tlsStacks: ['staging'] },
      ),
    ).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// The program as it registers its resources.

/** What a policy sees of a recorded resource: inputs with secrets decrypted, and its protect option. */
function asPolicySees(evaluation: Evaluation, resource: RecordedResource): TestResource {
  return {
    type: resource.type,
    name: resource.name,
    props: unwrapSecrets(resource.inputs) as Json,
    protect: evaluation.options.get(resource.name)?.protect === true,
  };
}

interface ProgramReport {
  /** What the mandatory policies refuse. */
  violations: string[];
  /** What the advisory policies warn about. */
  warnings: string[];
  /** Policy name -> how many resources it applied to. */
  applied: Record<string, number>;
}

async function runResourcePolicies(evaluation: Evaluation, stack: string): Promise<ProgramReport> {
  const report: ProgramReport = { violations: [], warnings: [], applied: {} };
  const resourcePolicies = databasePolicies({ currentStack: () => stack }).filter((policy): policy is ResourceValidationPolicy => 'validateResource' in policy);
  for (const policy of resourcePolicies) {
    report.applied[policy.name] = 0;
    for (const resource of evaluation.resources) {
      const outcome = await check(policy, asPolicySees(evaluation, resource));
      if (outcome.notApplicable === undefined) report.applied[policy.name]! += 1;
      (policy.enforcementLevel === 'advisory' ? report.warnings : report.violations).push(...outcome.violations.map((message) => `${policy.name}: ${message}`));
    }
  }
  return report;
}

const isEnvelope = (value: unknown) => (value as Record<string, unknown> | null)?.[SECRET_SIGNATURE_KEY] === SECRET_SIGNATURE;

function containsEnvelope(value: unknown): boolean {
  if (isEnvelope(value)) return true;
  if (Array.isArray(value)) return value.some(containsEnvelope);
  if (value !== null && typeof value === 'object') return Object.values(value).some(containsEnvelope);
  return false;
}

/** The stack's StatefulSets with their container: each engine's, and each of its companions' (Redis's Sentinels). */
const statefulSets = (evaluation: Evaluation) =>
  evaluation.config.engines.flatMap(({ spec }) => [
    { name: spec.name, container: spec.name },
    ...(spec.companions ?? []).map((companion) => ({ name: `${spec.name}-${companion.name}`, container: companion.name })),
  ]);

describe('the prod stack as the program registers it', () => {
  let prod: Evaluation;
  beforeAll(async () => {
    prod = await evaluateStack('prod');
  });

  it('passes every mandatory policy, each applied to every database resource of its kind', async () => {
    const report = await runResourcePolicies(prod, 'prod');
    expect(report.violations).toEqual([]);
    const count = (...types: string[]) => prod.resources.filter((resource) => types.includes(resource.type)).length;
    expect(count(STATEFUL_SET)).toBe(statefulSets(prod).length);
    // One Deployment, PostgreSQL's PgBouncer: the container policies apply to it as to the engines.
    expect(prod.resources.filter((resource) => resource.type === DEPLOYMENT).map((resource) => (resource.inputs as Json).metadata.name)).toEqual(['postgresql-pgbouncer']);
    expect(report.applied).toEqual({
      'database-service-not-exposed': count(SERVICE),
      'database-container-resources': count(STATEFUL_SET, DEPLOYMENT),
      'database-container-probes': count(STATEFUL_SET, DEPLOYMENT),
      'database-container-non-root': count(STATEFUL_SET, DEPLOYMENT),
      'database-env-secrets-from-secret': count(STATEFUL_SET, DEPLOYMENT, JOB, CRON_JOB),
      'database-configmap-no-secrets': count(CONFIG_MAP),
      'database-statefulset-volume-claims': count(STATEFUL_SET),
      'database-data-protected': count(STATEFUL_SET),
      'pinned-images': count(STATEFUL_SET, DEPLOYMENT, JOB, CRON_JOB),
      'database-storage-encrypted': count(STATEFUL_SET),
    });
  });

  it('passes the TLS policy', async () => {
    const resources = prod.resources.map((resource) => asPolicySees(prod, resource));
    expect(
      await checkStack(
        databaseTls(() => 'prod'),
        resources,
      ),
    ).toEqual([]);
  });

  it("has the TLS policy report every engine and PostgreSQL's PgBouncer once the certificates are gone", async () => {
    const withoutCertificates = prod.resources.map((resource) => asPolicySees(prod, resource)).filter((resource) => resource.type !== CERTIFICATE_TYPE);
    const reported = (
      await checkStack(
        databaseTls(() => 'prod'),
        withoutCertificates,
      )
    ).map((violation) => /^(\w+ "[\w-]+")/.exec(violation.message)![1]);
    // PostgreSQL's StatefulSet twice: the engine's container and pgBackRest's agent beside it, which serves TLS too.
    expect(reported.sort()).toEqual([...statefulSets(prod).map(({ name }) => `StatefulSet "${name}"`), 'StatefulSet "postgresql"', 'Deployment "postgresql-pgbouncer"'].sort());
  });

  it('warns that no volume is known to be encrypted at rest while Pulumi.prod.yaml lists no encrypting StorageClass', async () => {
    expect(prod.config.encryptedStorageClasses).toEqual([]);
    const { warnings } = await runResourcePolicies(prod, 'prod');
    expect(warnings).toHaveLength(statefulSets(prod).length);
    for (const { name } of statefulSets(prod)) {
      expect(warnings.filter((warning) => warning.startsWith(`database-storage-encrypted: StatefulSet "${name}": volume claim template "data" uses `))).toHaveLength(1);
    }
  });

  it('passes the advisory policies, which report every engine once its NetworkPolicies and budgets are gone', async () => {
    const resources = prod.resources.map((resource) => asPolicySees(prod, resource));
    expect(await checkStack(networkPolicyCoverage, resources)).toEqual([]);
    expect(await checkStack(podDisruptionBudgetCoverage, resources)).toEqual([]);
    const bare = resources.filter((resource) => resource.type !== NETWORK_POLICY && resource.type !== PDB);
    expect(await checkStack(networkPolicyCoverage, bare)).toHaveLength(statefulSets(prod).length);
    expect(await checkStack(podDisruptionBudgetCoverage, bare)).toHaveLength(statefulSets(prod).length);
  });

  it('hands no Pulumi secret to a ConfigMap or a pod template, which no policy could tell from a plain value', () => {
    const checked = prod.resources.filter((resource) => resource.type === CONFIG_MAP || resource.type === STATEFUL_SET || resource.type === DEPLOYMENT);
    // A ConfigMap and a StatefulSet per engine and per companion (Redis's Sentinels), the CA
    // bundle's ConfigMap (certificates, no key), and PgBouncer's ConfigMap and Deployment
    // (PostgreSQL's pooler), and the backup jobs' ConfigMaps (PostgreSQL, Redis, ClickHouse).
    expect(checked).toHaveLength(2 * statefulSets(prod).length + 1 + 2 + 3);
    expect(checked.filter((resource) => containsEnvelope(resource.inputs)).map((resource) => resource.name)).toEqual([]);
    // The check sees envelopes where they are: in the Secrets.
    expect(prod.resources.filter((resource) => resource.type === 'kubernetes:core/v1:Secret').every((resource) => containsEnvelope(resource.inputs))).toBe(true);
  });
});

describe('configurations the policies refuse', () => {
  /** The prod stack's own config, as `evaluateStack('prod')` reads it. */
  const prodValues = () => namespaceConfig(readStackFile(ROOT, 'prod').config) as Json;

  it('refuses the LoadBalancer a stack config asks for', async () => {
    const values = prodValues();
    values.engines.postgresql = { ...values.engines.postgresql, serviceType: 'LoadBalancer' };
    const exposed = await evaluate(values, 'prod');
    // Both of PostgreSQL's client Services take the type under Patroni: the primary's and the replicas'.
    expect((await runResourcePolicies(exposed, 'prod')).violations).toEqual([
      'database-service-not-exposed: Service "postgresql" is of type LoadBalancer, which exposes the database outside the cluster; use ClusterIP and connect from client pods or through kubectl port-forward',
      'database-service-not-exposed: Service "postgresql-replicas" is of type LoadBalancer, which exposes the database outside the cluster; use ClusterIP and connect from client pods or through kubectl port-forward',
    ]);
  });

  it('refuses a prod stack that turns TLS off', async () => {
    // (Elasticsearch on one node: its cluster needs transport TLS.)
    const values = prodValues();
    values.engines.elasticsearch = { ...values.engines.elasticsearch, replicas: 1 };
    const clear = await evaluate({ ...values, tls: false }, 'prod');
    const resources = clear.resources.map((resource) => asPolicySees(clear, resource));
    expect(
      (
        await checkStack(
          databaseTls(() => 'prod'),
          resources,
        )
      )
        .map((violation) => violation.message)
        .sort(),
    ).toEqual(
      [
        ...statefulSets(clear).map(({ name, container }) => `StatefulSet "${name}" in namespace allixios-prod: container "${container}"`),
        // PostgreSQL's PgBouncer, which serves the application's connections, is refused too.
        'Deployment "postgresql-pgbouncer" in namespace allixios-prod: container "pgbouncer"',
      ]
        .map((who) => `${who} runs without a certificate: it mounts no Secret of a cert-manager Certificate in namespace allixios-prod; stack prod requires TLS (allixios:tls)`)
        .sort(),
    );
  });

  it('warns about prod claims the list leaves on an unlisted or the default StorageClass, and about none once every engine names a listed one (the list reaches the pack from the program)', async () => {
    const values = prodValues();
    values.encryptedStorageClasses = ['premium-rwo-cmek'];
    // Only the list: the engines without a class of their own stay on the cluster default, and
    // postgresql's premium-rwo is not listed.
    const listOnly = await runResourcePolicies(await evaluate(values, 'prod'), 'prod');
    expect(listOnly.violations).toEqual([]);
    const warned = Object.fromEntries(listOnly.warnings.map((warning) => /StatefulSet "([\w-]+)".* uses (StorageClass "[\w-]+"|the cluster default)/.exec(warning)!.slice(1)));
    expect(listOnly.warnings).toHaveLength(7);
    expect(warned).toEqual({
      postgresql: 'StorageClass "premium-rwo"',
      mongodb: 'the cluster default',
      redis: 'the cluster default',
      // Redis's Sentinels keep their state on a volume of the engine's StorageClass.
      'redis-sentinel': 'the cluster default',
      elasticsearch: 'the cluster default',
      clickhouse: 'the cluster default',
      // So does ClickHouse Keeper, its Raft log and snapshots.
      'clickhouse-keeper': 'the cluster default',
    });
    values.engines = Object.fromEntries(
      ['postgresql', 'mongodb', 'redis', 'elasticsearch', 'clickhouse'].map((engine) => [engine, { ...values.engines[engine], storageClass: 'premium-rwo-cmek' }]),
    );
    const encrypted = await runResourcePolicies(await evaluate(values, 'prod'), 'prod');
    expect(encrypted).toMatchObject({ violations: [], warnings: [] });
    expect(encrypted.applied['database-storage-encrypted']).toBe(7);
  });

  it('refuses a prod stack that turns data protection off', async () => {
    const unprotected = await evaluate({ ...prodValues(), protectData: false }, 'prod');
    expect((await runResourcePolicies(unprotected, 'prod')).violations.sort()).toEqual(
      statefulSets(unprotected)
        .map(({ name }) => `database-data-protected: StatefulSet "${name}" is not protected: stack prod requires protect: true on every StatefulSet, which owns the data volumes`)
        .sort(),
    );
  });
});

describe('the dev stack on Docker', () => {
  it('pins every image it pulls and every container it runs', async () => {
    const dev = await evaluateStack('dev');
    const report = await runResourcePolicies(dev, 'dev');
    expect(report.violations).toEqual([]);
    const containers = dev.resources.filter((resource) => resource.type === DOCKER_CONTAINER).length;
    const images = dev.resources.filter((resource) => resource.type === REMOTE_IMAGE).length;
    expect(images).toBe(dev.config.engines.length);
    expect(report.applied['pinned-images']).toBe(containers + images);
    expect(report.applied['database-data-protected']).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// The pack as the Pulumi CLI runs it: the CLI starts @pulumi/pulumi's policy runner in policy/
// (with the stack's name in PULUMI_NODEJS_STACK) and talks to the analyzer server it prints the
// port of. No Pulumi CLI here, so the test plays the CLI's part.

describe("the pack under the Pulumi CLI's policy runner", () => {
  const packDirectory = `${ROOT}policy`;
  let runner: ChildProcess;
  let client: AnalyzerClient;

  beforeAll(async () => {
    const runPolicyPack = createRequire(`${packDirectory}/package.json`).resolve('@pulumi/pulumi/cmd/run-policy-pack');
    runner = spawn(process.execPath, [runPolicyPack, '127.0.0.1:0', '.'], {
      cwd: packDirectory,
      env: { ...process.env, PULUMI_NODEJS_STACK: 'prod', PULUMI_NODEJS_PROJECT: 'allixios' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    runner.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // The server's first line of output is its port.
    const port = await new Promise<string>((resolve, reject) => {
      runner.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!.trim());
      });
      runner.once('exit', (code) => reject(new Error(`the policy runner exited with ${code}: ${stderr}`)));
    });
    client = new AnalyzerClient(`127.0.0.1:${port}`, credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
    runner?.kill();
  });

  const call = <T>(invoke: (callback: (error: Error | null, response: T) => void) => void) =>
    new Promise<T>((resolve, reject) => invoke((error, response) => (error ? reject(error) : resolve(response))));

  it('announces every policy with its enforcement level', async () => {
    const info = await call<AnalyzerInfo>((callback) => client.getAnalyzerInfo(new Empty(), callback));
    expect(info.getName()).toBe('allixios-databases');
    // The generated enum object has no reverse mapping.
    const levels = new Map([
      [EnforcementLevel.ADVISORY, 'advisory'],
      [EnforcementLevel.MANDATORY, 'mandatory'],
    ]);
    expect(Object.fromEntries(info.getPoliciesList().map((policy) => [policy.getName(), levels.get(policy.getEnforcementlevel())]))).toEqual({
      'database-service-not-exposed': 'mandatory',
      'database-container-resources': 'mandatory',
      'database-container-probes': 'mandatory',
      'database-container-non-root': 'mandatory',
      'database-env-secrets-from-secret': 'mandatory',
      'database-configmap-no-secrets': 'mandatory',
      'database-statefulset-volume-claims': 'mandatory',
      'database-data-protected': 'mandatory',
      'pinned-images': 'mandatory',
      'database-tls': 'mandatory',
      'database-storage-encrypted': 'advisory',
      'database-network-policy': 'advisory',
      'database-pod-disruption-budget': 'advisory',
    });
  });

  it('reports the violations of a resource it is sent, knowing the stack is prod', async () => {
    const { props } = statefulSet((statefulSetProps) => (container(statefulSetProps).image = 'postgres:latest'));
    const request = new AnalyzeRequest();
    request.setType(STATEFUL_SET);
    request.setName('allixios-postgresql-statefulset');
    request.setUrn(`urn:pulumi:prod::allixios::${STATEFUL_SET}::allixios-postgresql-statefulset`);
    request.setProperties(Struct.fromJavaScript(props));
    request.setOptions(new AnalyzerResourceOptions());
    const response = await call<AnalyzeResponse>((callback) => client.analyze(request, callback));
    expect(response.getDiagnosticsList().map((diagnostic) => [diagnostic.getPolicyname(), diagnostic.getMessage().split('\n').at(-1)])).toEqual([
      ['database-data-protected', 'StatefulSet "postgresql" is not protected: stack prod requires protect: true on every StatefulSet, which owns the data volumes'],
      ['pinned-images', 'StatefulSet "postgresql": container "postgresql" image "postgres:latest" uses the floating tag latest; pin a version tag or a digest'],
      [
        'database-storage-encrypted',
        'StatefulSet "postgresql": volume claim template "data" uses the cluster default StorageClass (it names none), which allixios:encryptedStorageClasses does not list as encrypting; ' +
          'stack prod keeps its data encrypted at rest: set allixios:engines.postgresql.storageClass to a StorageClass that encrypts its volumes and list it in allixios:encryptedStorageClasses (README "Encryption at rest")',
      ],
    ]);
  });
});
