/**
 * Resolution: a config the schema accepted, with the defaults of its environment and engines
 * applied, checked across keys (what one key allows depends on another), and each engine
 * described for the stack (`engineSpec`).
 */
import {
  EngineSettingError,
  engineSpec,
  memoryBytes,
  type ComputeResources,
  type EngineModule,
  type EngineName,
  type EngineSpec,
  type Environment,
} from '../../databases/engine.ts';
import { ENVIRONMENT_PROFILES, type PvcRetention, type Target } from '../environments.ts';
import { ConfigError, describeIssues, keyName } from './messages.ts';
import type { BackupSettings, ObjectStoreSpec } from '../../databases/backup.ts';
import { DNS_LABEL_PHRASE, ENGINE_IMAGE_PHRASE, IMAGE_PHRASE, type IssuerKind, type RawBackups, type RawEngine, type RawStackConfig, type ServiceType } from './schema.ts';

/** An engine as the stack deploys it. */
export interface ResolvedEngine {
  module: EngineModule;
  spec: EngineSpec;
  /** Host port on 127.0.0.1 for the client port, when the Docker target publishes ports. */
  hostPort: number;
  serviceType: ServiceType;
  storageClass?: string;
  /** Per secret key, where its current and previous passwords come from (README "Rotating a password"). */
  passwords: Record<string, PasswordSettings>;
}

/** A password: given in secret config, or generated (one generation per rotation). */
export type PasswordSource = { configured: string } | { generation: number };

/** Where an engine secret's passwords come from. */
export interface PasswordSettings {
  current: PasswordSource;
  /**
   * The password before the current one, while the rotation keeps it: the bootstrap logs in with
   * it when the engine does not have the current one yet, and an engine that can hold two
   * passwords for a user (Redis) still accepts it. Absent once retired.
   */
  previous?: PasswordSource;
}

/** An existing cert-manager issuer the stack's certificates come from (`allixios:tls.issuer`). */
export interface IssuerSettings {
  kind: IssuerKind;
  name: string;
  /** The issuer's CA certificate(s), PEM: what clients verify the engines with. */
  caBundle: string;
}

/**
 * TLS in transit (`allixios:tls`). On Kubernetes the certificates come from cert-manager: the
 * named issuer, or, without one, a CA issuer the stack creates in its namespace. On Docker the
 * program generates a CA and the certificates itself.
 */
export type TlsSettings = { enabled: false } | { enabled: true; issuer?: IssuerSettings };

/** The validated stack configuration with every default applied. */
export interface StackConfig {
  project: string;
  stack: string;
  environment: Environment;
  target: Target;
  /** Kubernetes namespace; for the Docker target, the prefix of container and volume names. */
  namespace: string;
  exposeHostPorts: boolean;
  protectData: boolean;
  clientNamespaces: string[];
  /**
   * The StorageClasses the operator vouches for as encrypting their volumes at rest. The program
   * encrypts nothing itself: it hands the list to the policy pack (an annotation on each
   * StatefulSet), whose advisory `database-storage-encrypted` warns about a prod claim on any other
   * class (README "Encryption at rest"). Kubernetes only.
   */
  encryptedStorageClasses: string[];
  /**
   * The cluster's DNS domain (kubelet's `clusterDomain`, `cluster.local` unless the cluster was set
   * up otherwise): the engines' certificates name their Services' fully qualified names in it.
   * Kubernetes only.
   */
  clusterDomain: string;
  pvcRetention: { whenDeleted: PvcRetention; whenScaled: PvcRetention };
  /** Enabled engines, in the platform's engine order. */
  engines: ResolvedEngine[];
  /** The bootstrap run inside `pulumi up` (see `stacks/bootstrap/`). */
  bootstrap: BootstrapSettings;
  tls: TlsSettings;
  /** Backups to the stack's object store (`allixios:backups`); each engine's part is in its `spec.backup`. */
  backups: BackupsSettings;
  /**
   * What the preview must say about a valid config that leaves something weaker than the
   * default (TLS off on Kubernetes, an engine without TLS support); the program warns with each.
   */
  warnings: string[];
}

export type BackupsSettings = { enabled: false } | { enabled: true; objectStore: ObjectStoreSpec; retention: BackupSettings['retention'] };

/**
 * How long backups are kept unless `allixios:backups.retention` says otherwise: full backups by
 * count (each with the WAL or the increments that depend on it), everything by age.
 */
export const BACKUP_RETENTION: Readonly<Record<Environment, BackupSettings['retention']>> = {
  dev: { count: 1, days: 7 },
  ephemeral: { count: 1, days: 3 },
  staging: { count: 2, days: 14 },
  prod: { count: 4, days: 35 },
};

/** The access key pair's keys in the stack's Secret unless the config names others. */
export const OBJECT_STORE_SECRET_KEYS = { accessKeyId: 'access-key-id', secretAccessKey: 'secret-access-key' } as const;

/**
 * `allixios:backups`, resolved: on unless `enabled: false`, once an object store is named; off in
 * ephemeral stacks by default (nothing names one); required in prod; refused on Docker, which
 * schedules nothing (a developer backs up and restores the dev stack by hand with the same
 * commands, `npm run restore`).
 */
function resolveBackups(raw: RawBackups | undefined, environment: Environment, target: Target, stack: string, problems: string[], warnings: string[]): BackupsSettings {
  const key = keyName(['backups']);
  if (target === 'docker') {
    if (raw !== undefined)
      problems.push(
        `${key}: expected unset, since the docker target schedules nothing (back up and restore a dev stack by hand: npm run restore), got ${JSON.stringify({ ...raw, objectStore: raw.objectStore ? '…' : undefined })}`,
      );
    return { enabled: false };
  }
  const store = raw?.objectStore;
  if (environment === 'prod' && (store === undefined || raw?.enabled === false)) {
    problems.push(
      `${keyName(['backups', 'objectStore'])}: required in prod, where a lost volume must not lose the platform's data; expected an object with bucket, region and credentials (README "Backups"), got ${raw?.enabled === false ? 'backups.enabled: false' : 'none'}`,
    );
    return { enabled: false };
  }
  if (store === undefined) {
    if (raw?.enabled === true)
      problems.push(
        `${keyName(['backups', 'objectStore'])}: required when ${keyName(['backups', 'enabled'])} is true; expected an object with bucket, region and credentials, got none`,
      );
    // Staging rebuilds its data from fixtures (environments.ts): backing it up is its operator's choice.
    return { enabled: false };
  }
  if (raw?.enabled === false) {
    warnings.push(`${key}.enabled is false: nothing of this stack is backed up.`);
    return { enabled: false };
  }
  const endpoint = (store.endpoint ?? `https://s3.${store.region}.amazonaws.com`).replace(/\/$/, '');
  const credentials: ObjectStoreSpec['credentials'] =
    'workloadIdentity' in store.credentials
      ? { kind: 'workloadIdentity', serviceAccountAnnotations: store.credentials.workloadIdentity.serviceAccountAnnotations }
      : {
          kind: 'secret',
          secretName: store.credentials.secretName,
          accessKeyIdKey: store.credentials.accessKeyIdKey ?? OBJECT_STORE_SECRET_KEYS.accessKeyId,
          secretAccessKeyKey: store.credentials.secretAccessKeyKey ?? OBJECT_STORE_SECRET_KEYS.secretAccessKey,
        };
  if (credentials.kind === 'workloadIdentity' && Object.keys(credentials.serviceAccountAnnotations).length === 0) {
    problems.push(
      `${keyName(['backups', 'objectStore', 'credentials', 'workloadIdentity', 'serviceAccountAnnotations'])}: expected at least one annotation that binds the cloud role (eks.amazonaws.com/role-arn, iam.gke.io/gcp-service-account), got none`,
    );
  }
  const defaults = BACKUP_RETENTION[environment];
  return {
    enabled: true,
    objectStore: { endpoint, bucket: store.bucket, region: store.region, prefix: store.prefix ?? stack, forcePathStyle: store.forcePathStyle ?? false, credentials },
    retention: { count: raw?.retention?.count ?? defaults.count, days: raw?.retention?.days ?? defaults.days },
  };
}

/** One engine's backup settings: its prefix, its jobs' schedules (defaults overridden by the config; unknown jobs refused). */
function engineBackup(module: EngineModule, backups: BackupsSettings, raw: RawBackups | undefined, problems: string[], warnings: string[]): BackupSettings | undefined {
  const overrides = raw?.schedules?.[module.name] ?? {};
  const jobs = Object.keys(module.backupSchedules ?? {});
  for (const [job, schedule] of Object.entries(overrides)) {
    if (!jobs.includes(job)) {
      problems.push(
        `${keyName(['backups', 'schedules', module.name, job])}: expected one of ${module.displayName}'s backup jobs (${jobs.length > 0 ? jobs.join(', ') : 'it has none'}), got ${JSON.stringify(schedule)} for an unknown job`,
      );
    }
  }
  if (!backups.enabled) return undefined;
  if (!module.backupSchedules) {
    warnings.push(`${keyName(['backups'])}: ${module.displayName} describes no backup of its own: its data is not backed up.`);
    return undefined;
  }
  return {
    objectStore: backups.objectStore,
    path: `${backups.objectStore.prefix}/${module.name}`,
    schedules: { ...module.backupSchedules, ...overrides },
    retention: backups.retention,
  };
}

export interface BootstrapSettings {
  enabled: boolean;
  /** A pinned registry reference; unset on Docker, where the program builds the image itself. */
  image?: string;
  /** How long the run may take before it counts as failed. */
  timeoutSeconds: number;
}

function mergeResources(defaults: ComputeResources, override: RawEngine['resources']): ComputeResources {
  return {
    requests: { ...defaults.requests, ...stripUndefined(override?.requests) },
    limits: { ...defaults.limits, ...stripUndefined(override?.limits) },
  };
}

function stripUndefined<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const cpuMillis = (quantity: string) => (quantity.endsWith('m') ? Number(quantity.slice(0, -1)) : Number(quantity) * 1000);

function resourceProblems(name: EngineName, resources: ComputeResources): string[] {
  const problems: string[] = [];
  const base = ['engines', name, 'resources'];
  if (cpuMillis(resources.requests.cpu) > cpuMillis(resources.limits.cpu)) {
    problems.push(`${keyName([...base, 'requests', 'cpu'])}: expected at most the CPU limit ${resources.limits.cpu}, got ${JSON.stringify(resources.requests.cpu)}`);
  }
  if (memoryBytes(resources.requests.memory) > memoryBytes(resources.limits.memory)) {
    problems.push(`${keyName([...base, 'requests', 'memory'])}: expected at most the memory limit ${resources.limits.memory}, got ${JSON.stringify(resources.requests.memory)}`);
  }
  return problems;
}

/**
 * Where each secret's current and previous passwords come from. A generated password is rotated
 * by raising its generation by one, which keeps the generation before as the previous password;
 * a configured one by setting a new value and the old one as `previousPassword`. The previous
 * password is kept until the rotation says `previous: retire`.
 */
function passwordSettings(module: EngineModule, raw: RawStackConfig, problems: string[]): Record<string, PasswordSettings> {
  const settings: Record<string, PasswordSettings> = {};
  for (const { key, notRotatable, format } of module.secrets) {
    const configured = raw.passwords?.[module.name]?.[key];
    if (format && configured !== undefined && !format.pattern.test(configured)) {
      problems.push(`${keyName(['passwords', module.name, key])}: expected ${format.expected}, got a value that is not (not shown)`);
    }
    const rotation = raw.rotations?.[module.name]?.[key] ?? {};
    const path = ['rotations', module.name, key];
    if (notRotatable !== undefined && raw.rotations?.[module.name]?.[key] !== undefined) {
      problems.push(
        `${keyName(path)}: expected unset, since the stack does not rotate it (${notRotatable}), got ${JSON.stringify(rotation, (name, value: unknown) => (name === 'previousPassword' ? '(not shown)' : value))}`,
      );
    }
    if (configured !== undefined && rotation.generation !== undefined) {
      problems.push(
        `${keyName([...path, 'generation'])}: expected unset, since ${keyName(['passwords', module.name, key])} is configured (a configured password is rotated by setting a new value, with the old one as previousPassword), got ${rotation.generation}`,
      );
    }
    const generation = rotation.generation ?? 0;
    const current: PasswordSource = configured !== undefined ? { configured } : { generation };
    let previous: PasswordSource | undefined;
    if (rotation.previous !== 'retire') {
      if (rotation.previousPassword !== undefined) previous = { configured: rotation.previousPassword };
      else if (configured === undefined && generation > 0) previous = { generation: generation - 1 };
    }
    if (rotation.previous === 'keep' && previous === undefined) {
      problems.push(`${keyName([...path, 'previous'])}: expected "keep" only with a password to keep (previousPassword, or a generation of 1 or more), got "keep" with none`);
    }
    if (configured !== undefined && rotation.previousPassword === configured) {
      problems.push(`${keyName([...path, 'previousPassword'])}: expected the password before the current one, got the current password itself (not shown)`);
    }
    settings[key] = { current, ...(previous ? { previous } : {}) };
  }
  return settings;
}

export function resolveStackConfig(raw: RawStackConfig, values: Readonly<Record<string, unknown>>, project: string, stack: string, modules: readonly EngineModule[]): StackConfig {
  const problems: string[] = [];
  const profile = ENVIRONMENT_PROFILES[raw.environment];
  const target = raw.target ?? profile.target;
  const exposeHostPorts = raw.exposeHostPorts ?? (target === 'docker' && profile.exposeHostPorts);
  const protectData = raw.protectData ?? profile.protectData;

  if (target === 'kubernetes' && raw.namespace === undefined) {
    problems.push(`${keyName(['namespace'])}: required when ${keyName(['target'])} is kubernetes; expected ${DNS_LABEL_PHRASE}`);
  }
  if (target === 'kubernetes' && raw.exposeHostPorts === true) {
    problems.push(
      `${keyName(['exposeHostPorts'])}: expected false or unset, since only the docker target publishes host ports (use an engine's serviceType on kubernetes), got true`,
    );
  }
  if (raw.environment === 'ephemeral' && protectData) {
    problems.push(`${keyName(['protectData'])}: expected false for an ephemeral stack, whose teardown must remove everything, got true`);
  }

  // TLS: on by default on Kubernetes, where engines and clients share a cluster network; off on
  // Docker dev (a developer turns it on to reproduce a TLS problem).
  const warnings: string[] = [];
  const tlsEnabled = raw.tls?.enabled ?? target === 'kubernetes';
  if (target === 'kubernetes' && raw.tls?.enabled === false) {
    warnings.push(
      `${keyName(['tls'])} is false on a kubernetes stack: every password and every row crosses the cluster network in clear text. Remove the setting to serve TLS (the default).`,
    );
  }
  if (raw.tls?.issuer && target === 'docker') {
    problems.push(
      `${keyName(['tls', 'issuer'])}: expected unset, since the docker target generates its own CA (cert-manager issuers exist only on kubernetes), got ${JSON.stringify({ kind: raw.tls.issuer.kind, name: raw.tls.issuer.name })}`,
    );
  }
  if (raw.tls?.issuer && !tlsEnabled) {
    problems.push(
      `${keyName(['tls', 'issuer'])}: expected unset, since ${keyName(['tls', 'enabled'])} is false, got ${JSON.stringify({ kind: raw.tls.issuer.kind, name: raw.tls.issuer.name })}`,
    );
  }

  if (target === 'docker' && raw.clusterDomain !== undefined) {
    problems.push(
      `${keyName(['clusterDomain'])}: expected unset, since the docker target has no cluster DNS (containers reach each other by name), got ${JSON.stringify(raw.clusterDomain)}`,
    );
  }
  if (target === 'docker' && raw.encryptedStorageClasses !== undefined) {
    problems.push(
      `${keyName(['encryptedStorageClasses'])}: expected unset, since the docker target has no StorageClasses (its volumes are Docker volumes on the host's disk, encrypted only if that disk is), got ${JSON.stringify(raw.encryptedStorageClasses)}`,
    );
  }

  const backups = resolveBackups(raw.backups, raw.environment, target, stack, problems, warnings);
  for (const engine of Object.keys(raw.backups?.schedules ?? {})) {
    if (!modules.some((module) => module.name === engine)) {
      problems.push(`${keyName(['backups', 'schedules', engine])}: expected an engine name (${modules.map((module) => module.name).join(', ')}), got ${JSON.stringify(engine)}`);
    }
  }

  const engines: ResolvedEngine[] = [];
  for (const module of modules) {
    const name = module.name;
    const engineConfig: RawEngine = raw.engines?.[name] ?? {};
    if (engineConfig.enabled === false) continue;
    const sizing = module.sizing[raw.environment];
    const resources = mergeResources(sizing.resources, engineConfig.resources);
    problems.push(...resourceProblems(name, resources));

    const options = module.optionsSchema.safeParse(engineConfig.options ?? {});
    if (!options.success) {
      problems.push(...describeIssues(options.error, engineConfig.options ?? {}, module.optionsSchema, ['engines', name, 'options']));
      continue;
    }
    if (target === 'docker' && engineConfig.serviceType !== undefined) {
      problems.push(`${keyName(['engines', name, 'serviceType'])}: expected unset, since the docker target has no Services, got ${JSON.stringify(engineConfig.serviceType)}`);
    }
    const image = engineImage(module, engineConfig, raw.environment, target, problems);
    const backup = engineBackup(module, backups, raw.backups, problems, warnings);
    let spec: EngineSpec;
    try {
      spec = engineSpec(module, {
        environment: raw.environment,
        version: engineConfig.version ?? module.defaultVersion,
        // Docker runs one container per engine; Kubernetes the environment's default members.
        replicas: engineConfig.replicas ?? (target === 'docker' ? 1 : (sizing.replicas ?? 1)),
        storage: engineConfig.storage ?? sizing.storage,
        resources,
        options: options.data,
        tls: tlsEnabled,
        ...(image ? { image } : {}),
        ...(backup ? { backup } : {}),
      });
    } catch (error) {
      if (!(error instanceof EngineSettingError)) throw error;
      problems.push(`${keyName(['engines', name, ...error.path])}: expected ${error.expected}, got ${JSON.stringify(error.received)}`);
      continue;
    }
    if (spec.replicas > 1 && target === 'docker') {
      problems.push(
        `${keyName(['engines', name, 'replicas'])}: expected 1, since the docker target runs one container per engine (replicas need the kubernetes target), got ${spec.replicas}`,
      );
    } else if (spec.replicas > 1 && !spec.highAvailability && !(module.projectImage && engineConfig.image !== undefined)) {
      // (A project image the stack names but engineImage refused, beside `version`, is reported
      // there: the replicas are not told it is unset.)
      const why = module.projectImage
        ? `${module.displayName} runs replicas under its HA manager from the project's image, and ${keyName(['engines', name, 'image'])} is unset`
        : `${module.displayName} has no HA manager to run replicas with yet`;
      problems.push(`${keyName(['engines', name, 'replicas'])}: expected 1, since ${why}, got ${spec.replicas}`);
    }
    for (const warning of spec.warnings ?? []) warnings.push(`${keyName(['engines', name])}: ${warning}.`);
    if (tlsEnabled && !spec.tls) {
      // Every engine of this repository serves TLS; one added without it (a sixth engine) is
      // refused in prod, whose policy pack requires TLS of every database container anyway, and
      // elsewhere served in clear text with a warning, so it can be developed and tested.
      const clearText = `${module.displayName} does not support TLS and would be served without it: its clients' passwords and data would cross the network in clear text`;
      if (raw.environment === 'prod')
        problems.push(`${keyName(['tls'])}: expected every engine of a prod stack to serve TLS, got ${clearText} (describe its TlsSpec, see docs/tls-plan.md)`);
      else warnings.push(`${keyName(['tls'])}: ${clearText}.`);
    }
    engines.push({
      module,
      spec,
      hostPort: engineConfig.hostPort ?? spec.ports[0]!.containerPort,
      serviceType: engineConfig.serviceType ?? 'ClusterIP',
      ...(engineConfig.storageClass ? { storageClass: engineConfig.storageClass } : {}),
      passwords: passwordSettings(module, raw, problems),
    });
  }
  if (engines.length === 0 && problems.length === 0) {
    problems.push(`${keyName(['engines'])}: expected at least one enabled engine, got ${JSON.stringify(values.engines)}`);
  }
  if (exposeHostPorts) {
    const seen = new Map<number, EngineName>();
    for (const engine of engines) {
      const other = seen.get(engine.hostPort);
      if (other) {
        problems.push(`${keyName(['engines', engine.spec.name, 'hostPort'])}: expected a port no other engine uses, got ${engine.hostPort} (also ${other}'s)`);
      }
      seen.set(engine.hostPort, engine.spec.name);
    }
  }
  const bootstrapEnabled = raw.bootstrap?.enabled ?? true;
  if (target === 'kubernetes' && bootstrapEnabled && raw.bootstrap?.image === undefined) {
    problems.push(
      `${keyName(['bootstrap', 'image'])}: required on the kubernetes target, where the cluster pulls the image; expected ${IMAGE_PHRASE} (or set ${keyName(['bootstrap', 'enabled'])} to false)`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    project,
    stack,
    environment: raw.environment,
    target,
    namespace: raw.namespace ?? `${project}-${stack}`,
    exposeHostPorts,
    protectData,
    clientNamespaces: raw.clientNamespaces ?? [],
    encryptedStorageClasses: raw.encryptedStorageClasses ?? [],
    clusterDomain: raw.clusterDomain ?? 'cluster.local',
    pvcRetention: profile.pvcRetention,
    engines,
    bootstrap: {
      enabled: bootstrapEnabled,
      ...(raw.bootstrap?.image ? { image: raw.bootstrap.image } : {}),
      timeoutSeconds: raw.bootstrap?.timeoutSeconds ?? 900,
    },
    tls: tlsEnabled ? { enabled: true, ...(raw.tls?.issuer ? { issuer: raw.tls.issuer } : {}) } : { enabled: false },
    backups,
    warnings,
  };
}

/**
 * `allixios:engines.<engine>.image`, the project's image of an engine that has one
 * (`EngineModule.projectImage`): only on Kubernetes (Docker runs the official image, one plain
 * server), required there in the environments the engine names, never beside `version` (the image
 * pins the engine's version in its Dockerfile). Problems are added to `problems`.
 */
function engineImage(module: EngineModule, engine: RawEngine, environment: Environment, target: Target, problems: string[]): { repository: string; tag: string } | undefined {
  const key = keyName(['engines', module.name, 'image']);
  if (engine.image === undefined) {
    if (target === 'kubernetes' && module.projectImage?.requiredIn.includes(environment)) {
      problems.push(
        `${key}: required on the kubernetes target in ${environment}, where ${module.displayName} runs as ${module.projectImage.purpose}; expected ${ENGINE_IMAGE_PHRASE}, built from databases/${module.name}/${module.projectImage.dockerfile} (the deploy workflow builds and pushes the tag the stack file pins)`,
      );
    }
    return undefined;
  }
  if (!module.projectImage) {
    problems.push(
      `${key}: expected unset, since the project builds no image of ${module.displayName} (it runs its official image, engines.${module.name}.version), got ${JSON.stringify(engine.image)}`,
    );
    return undefined;
  }
  if (target === 'docker') {
    problems.push(
      `${key}: expected unset, since the docker target runs ${module.displayName}'s official image as one plain server (no HA manager), got ${JSON.stringify(engine.image)}`,
    );
    return undefined;
  }
  if (engine.version !== undefined) {
    problems.push(
      `${keyName(['engines', module.name, 'version'])}: expected unset, since ${key} pins the project's image, whose Dockerfile (databases/${module.name}/${module.projectImage.dockerfile}) pins ${module.displayName}'s version, got ${JSON.stringify(engine.version)}`,
    );
    return undefined;
  }
  const separator = engine.image.lastIndexOf(':');
  return { repository: engine.image.slice(0, separator), tag: engine.image.slice(separator + 1) };
}
