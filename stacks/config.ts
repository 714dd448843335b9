/**
 * The stack configuration: one schema, validated before any resource is created.
 *
 * Every error names the key (`allixios:engines.postgresql.replicas`), what was expected and what
 * was given, and all errors are reported at once. Password values are never echoed.
 */
import { z } from 'zod';
import { ENGINES } from '../databases/index.ts';
import {
  ENGINE_NAMES,
  ENVIRONMENTS,
  EngineSettingError,
  memoryBytes,
  type ComputeResources,
  type EngineModule,
  type EngineName,
  type EngineSpec,
  type Environment,
} from '../databases/engine.ts';
import { ENVIRONMENT_PROFILES, type PvcRetention, type Target } from './environments.ts';

export const CONFIG_NAMESPACE = 'allixios';
export const TARGETS = ['docker', 'kubernetes'] as const;
export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

/** Thrown for an invalid stack configuration; `problems` holds one sentence per problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid stack configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const oneOf = (values: readonly string[]) => `one of ${values.join(', ')}`;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_LABEL_PHRASE = 'a DNS label (lowercase letters, digits and "-", at most 63 characters) such as allixios-staging';
const CPU_PHRASE = 'a CPU quantity such as 500m or 2';
const MEMORY_PHRASE = 'a memory quantity such as 512Mi or 2Gi';
const STORAGE_PHRASE = 'a Kubernetes quantity such as 20Gi';
const MEMORY_QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/;

const cpu = z.string({ error: CPU_PHRASE }).regex(/^\d+(\.\d+)?m?$/, { error: CPU_PHRASE });
const memory = z.string({ error: MEMORY_PHRASE }).regex(MEMORY_QUANTITY, { error: MEMORY_PHRASE });
const resourcePair = z.strictObject({ cpu: cpu.optional(), memory: memory.optional() }, { error: 'an object with cpu and memory' });

const engineSchema = z.strictObject(
  {
    enabled: z.boolean({ error: 'true or false' }).optional(),
    version: z
      .string({ error: 'an image tag such as 18.4' })
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { error: 'an image tag such as 18.4' })
      .refine((tag) => tag !== 'latest', { error: 'a pinned version tag, not "latest"' })
      .optional(),
    replicas: z
      .number({ error: 'a positive integer' })
      .int({ error: 'a positive integer' })
      .min(1, { error: 'a positive integer' })
      .max(1, { error: '1 (replicated topologies are not supported yet)' })
      .optional(),
    storage: z.string({ error: STORAGE_PHRASE }).regex(MEMORY_QUANTITY, { error: STORAGE_PHRASE }).optional(),
    storageClass: z.string({ error: 'a StorageClass name' }).regex(DNS_LABEL, { error: 'a StorageClass name' }).optional(),
    resources: z
      .strictObject({ requests: resourcePair.optional(), limits: resourcePair.optional() }, { error: 'an object with requests and limits' })
      .optional(),
    hostPort: z
      .number({ error: 'a port number from 1 to 65535' })
      .int({ error: 'a port number from 1 to 65535' })
      .min(1, { error: 'a port number from 1 to 65535' })
      .max(65535, { error: 'a port number from 1 to 65535' })
      .optional(),
    serviceType: z.enum(SERVICE_TYPES, { error: oneOf(SERVICE_TYPES) }).optional(),
    // Validated against the engine's own schema once the engine is known.
    options: z.record(z.string(), z.unknown(), { error: 'an object of engine options' }).optional(),
  },
  { error: 'an object of engine settings' },
);

const IMAGE_PHRASE = 'a pinned image reference such as ghcr.io/acme/allixios-bootstrap:1.4.0 or …@sha256:<digest>';
const bootstrapSchema = z.strictObject(
  {
    enabled: z.boolean({ error: 'true or false' }).optional(),
    image: z
      .string({ error: IMAGE_PHRASE })
      .regex(/^[a-z0-9][a-z0-9._\/-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[0-9a-f]{64})$/, { error: IMAGE_PHRASE })
      .refine((image) => !image.endsWith(':latest'), { error: IMAGE_PHRASE })
      .optional(),
    timeoutSeconds: z
      .number({ error: 'a whole number of seconds from 60 to 7200' })
      .int({ error: 'a whole number of seconds from 60 to 7200' })
      .min(60, { error: 'a whole number of seconds from 60 to 7200' })
      .max(7200, { error: 'a whole number of seconds from 60 to 7200' })
      .optional(),
  },
  { error: 'an object with enabled, image and timeoutSeconds' },
);

const passwordSchema = z.string({ error: 'a string of at least 16 characters' }).min(16, { error: 'a string of at least 16 characters' });

/** What the previous password of a rotation becomes: kept (the default) or retired. */
export const PREVIOUS_PASSWORD_STATES = ['keep', 'retire'] as const;
const GENERATION_PHRASE = 'a whole number from 0 (the first generated password) up';
const rotationSchema = z.strictObject(
  {
    generation: z.number({ error: GENERATION_PHRASE }).int({ error: GENERATION_PHRASE }).min(0, { error: GENERATION_PHRASE }).optional(),
    previous: z.enum(PREVIOUS_PASSWORD_STATES, { error: oneOf(PREVIOUS_PASSWORD_STATES) }).optional(),
    previousPassword: passwordSchema.optional(),
  },
  { error: 'an object with generation, previous and previousPassword' },
);

/** An object keyed by engine, then by each engine's secret keys, of `value` (passwords, rotations). */
function perSecret<Value extends z.ZodType>(value: Value, what: string) {
  return z
    .strictObject(
      Object.fromEntries(
        ENGINE_NAMES.map((name) => [
          name,
          z.strictObject(Object.fromEntries(ENGINES[name].secrets.map((secret) => [secret.key, value.optional()])), { error: `an object of ${what} keyed by secret name` }).optional(),
        ]),
      ),
      { error: 'an object keyed by engine name' },
    )
    .optional();
}

const stackSchema = z.strictObject({
  environment: z.enum(ENVIRONMENTS, { error: oneOf(ENVIRONMENTS) }),
  target: z.enum(TARGETS, { error: oneOf(TARGETS) }).optional(),
  namespace: z.string({ error: DNS_LABEL_PHRASE }).regex(DNS_LABEL, { error: DNS_LABEL_PHRASE }).optional(),
  exposeHostPorts: z.boolean({ error: 'true or false' }).optional(),
  protectData: z.boolean({ error: 'true or false' }).optional(),
  tls: z.literal(false, { error: 'false (TLS is reserved for a later release)' }).optional(),
  bootstrap: bootstrapSchema.optional(),
  clientNamespaces: z
    .array(z.string({ error: DNS_LABEL_PHRASE }).regex(DNS_LABEL, { error: DNS_LABEL_PHRASE }), { error: 'a list of namespace names' })
    .optional(),
  engines: z
    .strictObject(
      Object.fromEntries(ENGINE_NAMES.map((name) => [name, engineSchema.optional()])) as Record<EngineName, z.ZodOptional<typeof engineSchema>>,
      { error: 'an object keyed by engine name' },
    )
    .optional(),
  passwords: perSecret(passwordSchema, 'passwords'),
  rotations: perSecret(rotationSchema, 'rotations'),
});

type RawStackConfig = z.output<typeof stackSchema>;

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
  pvcRetention: { whenDeleted: PvcRetention; whenScaled: PvcRetention };
  /** Enabled engines, in the platform's engine order. */
  engines: ResolvedEngine[];
  /** The bootstrap run inside `pulumi up` (see `stacks/bootstrap/`). */
  bootstrap: BootstrapSettings;
}

export interface BootstrapSettings {
  enabled: boolean;
  /** A pinned registry reference; unset on Docker, where the program builds the image itself. */
  image?: string;
  /** How long the run may take before it counts as failed. */
  timeoutSeconds: number;
}

/** `allixios:engines.postgresql.replicas` from a path inside the config namespace. */
function keyName(path: readonly PropertyKey[]): string {
  return `${CONFIG_NAMESPACE}:${path.map(String).join('.')}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/** Whether a config path holds a password, whose value is never shown. */
function isPasswordPath(path: readonly PropertyKey[]): boolean {
  return path[0] === 'passwords' || (path[0] === 'rotations' && path[3] === 'previousPassword');
}

function describeValue(value: unknown, path: readonly PropertyKey[]): string {
  if (isPasswordPath(path)) {
    return typeof value === 'string' ? `a value of ${value.length} characters (not shown)` : `a ${typeof value} (not shown)`;
  }
  if (value === undefined) return 'nothing';
  return JSON.stringify(value);
}

/** The keys an object schema accepts at `path`, for "unknown key" messages. */
function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  for (const segment of [...path, null]) {
    while (current instanceof z.ZodOptional || current instanceof z.ZodDefault) {
      current = current.def.innerType as z.ZodType;
    }
    if (!(current instanceof z.ZodObject)) return [];
    if (segment === null) return Object.keys(current.shape);
    current = current.shape[String(segment)] as z.ZodType | undefined;
  }
  return [];
}

/**
 * What an issue expected. Schemas here carry their expectation as the message; for zod's own
 * default messages (engine option schemas may rely on them) it is derived from the issue.
 */
function expectation(issue: z.core.$ZodIssue): string {
  if (!/^(Invalid|Too (small|big))/.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_value':
      return oneOf(issue.values.map((value) => String(value)));
    case 'invalid_type':
      return `a value of type ${issue.expected}`;
    case 'too_small':
      return `${issue.origin === 'string' ? 'a length' : 'a value'} of at least ${String(issue.minimum)}`;
    case 'too_big':
      return `${issue.origin === 'string' ? 'a length' : 'a value'} of at most ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

/** Turns schema issues into sentences, relative to `prefix` (a path inside the namespace). */
function describeIssues(error: z.ZodError, input: unknown, schema: z.ZodType, prefix: readonly PropertyKey[] = []): string[] {
  return error.issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, issue.path);
      return issue.keys.map((key) => `${keyName([...path, key])}: unknown key; expected ${known.length ? oneOf(known) : 'no keys here'}`);
    }
    const given = valueAt(input, issue.path);
    return [`${keyName(path)}: expected ${expectation(issue)}, got ${describeValue(given, path)}`];
  });
}

/**
 * Reads the namespace's keys from Pulumi's config map (`allixios:engines` -> JSON text). Values
 * that are not JSON stay strings, so `namespace: prod-db` needs no quoting.
 */
export function namespaceConfig(allConfig: Readonly<Record<string, string>>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [fullKey, text] of Object.entries(allConfig)) {
    const separator = fullKey.indexOf(':');
    if (fullKey.slice(0, separator) !== CONFIG_NAMESPACE) continue;
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // A plain string value.
    }
    result[fullKey.slice(separator + 1)] = value;
  }
  return result;
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

type RawEngine = z.output<typeof engineSchema>;

const cpuMillis = (quantity: string) => (quantity.endsWith('m') ? Number(quantity.slice(0, -1)) : Number(quantity) * 1000);

function resourceProblems(name: EngineName, resources: ComputeResources): string[] {
  const problems: string[] = [];
  const base = ['engines', name, 'resources'];
  if (cpuMillis(resources.requests.cpu) > cpuMillis(resources.limits.cpu)) {
    problems.push(`${keyName([...base, 'requests', 'cpu'])}: expected at most the CPU limit ${resources.limits.cpu}, got ${JSON.stringify(resources.requests.cpu)}`);
  }
  if (memoryBytes(resources.requests.memory) > memoryBytes(resources.limits.memory)) {
    problems.push(
      `${keyName([...base, 'requests', 'memory'])}: expected at most the memory limit ${resources.limits.memory}, got ${JSON.stringify(resources.requests.memory)}`,
    );
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
  for (const { key } of module.secrets) {
    const configured = raw.passwords?.[module.name]?.[key];
    const rotation = raw.rotations?.[module.name]?.[key] ?? {};
    const path = ['rotations', module.name, key];
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
      problems.push(
        `${keyName([...path, 'previous'])}: expected "keep" only with a password to keep (previousPassword, or a generation of 1 or more), got "keep" with none`,
      );
    }
    if (configured !== undefined && rotation.previousPassword === configured) {
      problems.push(`${keyName([...path, 'previousPassword'])}: expected the password before the current one, got the current password itself (not shown)`);
    }
    settings[key] = { current, ...(previous ? { previous } : {}) };
  }
  return settings;
}

/**
 * Validates the stack's config and applies the defaults of its environment and engines.
 * Throws a {@link ConfigError} listing every problem; returns only a fully valid config.
 */
export function parseStackConfig(values: Readonly<Record<string, unknown>>, project: string, stack: string): StackConfig {
  const parsed = stackSchema.safeParse(values);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error, values, stackSchema);
    // A missing environment is the first thing a new stack gets wrong: say what to run.
    if (values.environment === undefined) {
      const index = problems.findIndex((problem) => problem.startsWith(`${keyName(['environment'])}:`));
      problems[index] = `${keyName(['environment'])}: required; expected ${oneOf(ENVIRONMENTS)} (pulumi config set ${keyName(['environment'])} <name>)`;
    }
    throw new ConfigError(problems);
  }
  return resolve(parsed.data, values, project, stack);
}

function resolve(raw: RawStackConfig, values: Readonly<Record<string, unknown>>, project: string, stack: string): StackConfig {
  const problems: string[] = [];
  const profile = ENVIRONMENT_PROFILES[raw.environment];
  const target = raw.target ?? profile.target;
  const exposeHostPorts = raw.exposeHostPorts ?? (target === 'docker' && profile.exposeHostPorts);
  const protectData = raw.protectData ?? profile.protectData;

  if (target === 'kubernetes' && raw.namespace === undefined) {
    problems.push(`${keyName(['namespace'])}: required when ${keyName(['target'])} is kubernetes; expected ${DNS_LABEL_PHRASE}`);
  }
  if (target === 'kubernetes' && raw.exposeHostPorts === true) {
    problems.push(`${keyName(['exposeHostPorts'])}: expected false or unset, since only the docker target publishes host ports (use an engine's serviceType on kubernetes), got true`);
  }
  if (raw.environment === 'ephemeral' && protectData) {
    problems.push(`${keyName(['protectData'])}: expected false for an ephemeral stack, whose teardown must remove everything, got true`);
  }

  const engines: ResolvedEngine[] = [];
  for (const name of ENGINE_NAMES) {
    const module = ENGINES[name];
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
    let spec: EngineSpec;
    try {
      spec = module.describe({
        environment: raw.environment,
        version: engineConfig.version ?? module.defaultVersion,
        replicas: engineConfig.replicas ?? 1,
        storage: engineConfig.storage ?? sizing.storage,
        resources,
        options: options.data,
      });
    } catch (error) {
      if (!(error instanceof EngineSettingError)) throw error;
      problems.push(`${keyName(['engines', name, ...error.path])}: expected ${error.expected}, got ${JSON.stringify(error.received)}`);
      continue;
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
    pvcRetention: profile.pvcRetention,
    engines,
    bootstrap: {
      enabled: bootstrapEnabled,
      ...(raw.bootstrap?.image ? { image: raw.bootstrap.image } : {}),
      timeoutSeconds: raw.bootstrap?.timeoutSeconds ?? 900,
    },
  };
}
