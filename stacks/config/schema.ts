/**
 * The schema of the stack configuration (`allixios:*`), built from the list of engines: each
 * engine adds its key under `engines`, and its secrets under `passwords` and `rotations`.
 * Schemas carry their expectation as the message, which `messages.ts` turns into sentences.
 */
import { z } from 'zod';
import { ENVIRONMENTS, type EngineModule, type EngineName } from '../../databases/engine.ts';
import { oneOf } from './messages.ts';

export const TARGETS = ['docker', 'kubernetes'] as const;
export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const DNS_LABEL_PHRASE = 'a DNS label (lowercase letters, digits and "-", at most 63 characters) such as allixios-staging';
const CPU_PHRASE = 'a CPU quantity such as 500m or 2';
const MEMORY_PHRASE = 'a memory quantity such as 512Mi or 2Gi';
const STORAGE_PHRASE = 'a Kubernetes quantity such as 20Gi';
const STORAGE_CLASS_PHRASE = 'a StorageClass name (lowercase letters, digits and "-", at most 63 characters) such as gp3-encrypted';
const MEMORY_QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/;

const cpu = z.string({ error: CPU_PHRASE }).regex(/^\d+(\.\d+)?m?$/, { error: CPU_PHRASE });
const memory = z.string({ error: MEMORY_PHRASE }).regex(MEMORY_QUANTITY, { error: MEMORY_PHRASE });
const storageClassName = z.string({ error: STORAGE_CLASS_PHRASE }).regex(DNS_LABEL, { error: STORAGE_CLASS_PHRASE });
const resourcePair = z.strictObject({ cpu: cpu.optional(), memory: memory.optional() }, { error: 'an object with cpu and memory' });

export const ENGINE_IMAGE_PHRASE = 'a pinned image reference with a tag, such as ghcr.io/acme/allixios-postgresql:18.4-1 (not latest)';

/** `allixios:engines.<engine>`: the settings every engine has; `options` is the engine's own. */
const engineSchema = z.strictObject(
  {
    enabled: z.boolean({ error: 'true or false' }).optional(),
    version: z
      .string({ error: 'an image tag such as 18.4' })
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { error: 'an image tag such as 18.4' })
      .refine((tag) => tag !== 'latest', { error: 'a pinned version tag, not "latest"' })
      .optional(),
    replicas: z.number({ error: 'a positive integer' }).int({ error: 'a positive integer' }).min(1, { error: 'a positive integer' }).optional(),
    storage: z.string({ error: STORAGE_PHRASE }).regex(MEMORY_QUANTITY, { error: STORAGE_PHRASE }).optional(),
    storageClass: storageClassName.optional(),
    resources: z.strictObject({ requests: resourcePair.optional(), limits: resourcePair.optional() }, { error: 'an object with requests and limits' }).optional(),
    hostPort: z
      .number({ error: 'a port number from 1 to 65535' })
      .int({ error: 'a port number from 1 to 65535' })
      .min(1, { error: 'a port number from 1 to 65535' })
      .max(65535, { error: 'a port number from 1 to 65535' })
      .optional(),
    serviceType: z.enum(SERVICE_TYPES, { error: oneOf(SERVICE_TYPES) }).optional(),
    // The project's image of an engine that has one (EngineModule.projectImage): a tag, which the
    // pods' version label carries, never latest.
    image: z
      .string({ error: ENGINE_IMAGE_PHRASE })
      .regex(/^([a-z0-9][a-z0-9.-]*(:\d{1,5})?\/)?[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, { error: ENGINE_IMAGE_PHRASE })
      .refine((image) => !image.endsWith(':latest'), { error: ENGINE_IMAGE_PHRASE })
      .optional(),
    // Validated against the engine's own schema once the engine is known.
    options: z.record(z.string(), z.unknown(), { error: 'an object of engine options' }).optional(),
  },
  { error: 'an object of engine settings' },
);

export const IMAGE_PHRASE = 'a pinned image reference such as ghcr.io/acme/allixios-bootstrap:1.4.0 or …@sha256:<digest>';
const bootstrapSchema = z.strictObject(
  {
    enabled: z.boolean({ error: 'true or false' }).optional(),
    image: z
      .string({ error: IMAGE_PHRASE })
      .regex(/^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[0-9a-f]{64})$/, { error: IMAGE_PHRASE })
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

/** A cluster's DNS domain: DNS labels joined by dots (`cluster.local`, `prod.example.internal`). */
const CLUSTER_DOMAIN = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
const CLUSTER_DOMAIN_PHRASE = "the cluster's DNS domain, lowercase DNS labels joined by dots, such as cluster.local";

/** The kinds of cert-manager issuer a stack may name. */
export const ISSUER_KINDS = ['Issuer', 'ClusterIssuer'] as const;
export type IssuerKind = (typeof ISSUER_KINDS)[number];
const ISSUER_NAME_PHRASE = 'the name of a cert-manager Issuer or ClusterIssuer (lowercase letters, digits, "-" and ".")';
const CA_BUNDLE_PHRASE = "the issuer's CA certificate(s) in PEM, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE----- (not secret; clients verify the engines with it)";
const PEM_CERTIFICATES = /^\s*(-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*)+$/;

/**
 * `allixios:tls.issuer`: an existing cert-manager issuer that signs the engines' certificates, and
 * its CA bundle (the program cannot read it from the cluster before the first deploy, and clients
 * need it to verify the engines).
 */
const issuerSchema = z.strictObject(
  {
    kind: z.enum(ISSUER_KINDS, { error: oneOf(ISSUER_KINDS) }),
    name: z.string({ error: ISSUER_NAME_PHRASE }).regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, { error: ISSUER_NAME_PHRASE }),
    caBundle: z.string({ error: CA_BUNDLE_PHRASE }).regex(PEM_CERTIFICATES, { error: CA_BUNDLE_PHRASE }),
  },
  { error: 'an object with kind, name and caBundle' },
);

/**
 * `allixios:tls`: `true`, `false`, or `{ enabled, issuer }`. A bare boolean is read as
 * `{ enabled: <boolean> }`, so `pulumi config set allixios:tls false` keeps working.
 */
const tlsSchema = z.preprocess(
  (value) => (typeof value === 'boolean' ? { enabled: value } : value),
  z.strictObject(
    {
      enabled: z.boolean({ error: 'true or false' }).optional(),
      issuer: issuerSchema.optional(),
    },
    { error: 'true, false, or an object with enabled and issuer' },
  ),
);

/** An S3 bucket's name as AWS allows it (and so every S3-compatible store): 3 to 63 lowercase letters, digits, dots and dashes. */
const BUCKET_PHRASE = 'an S3 bucket name: 3 to 63 lowercase letters, digits, "." and "-", starting and ending with a letter or digit, such as acme-allixios-backups';
const ENDPOINT_PHRASE =
  "the object store's https URL without a path, such as https://s3.eu-west-1.amazonaws.com or https://minio.backups.svc:9000 (plain http would carry its keys and every backup in clear text, and pgBackRest speaks https only)";
const PREFIX_PHRASE = 'a path inside the bucket: segments of letters, digits, ".", "_" and "-" joined by "/", no leading or trailing "/", such as allixios/prod';
const REGION_PHRASE = 'a region name such as eu-west-1 (us-east-1 for stores that ignore it)';
const SECRET_KEY_PHRASE = 'a key of a Kubernetes Secret (letters, digits, ".", "_" and "-")';
/** Five cron fields, each `*`, numbers, ranges, lists and steps (UTC): what Kubernetes CronJobs accept, without names or macros. */
export const CRON = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*( (\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*){4}$/;
export const CRON_PHRASE = 'a cron schedule of five fields in UTC (minute hour day-of-month month day-of-week) such as "0 1 * * 0"';
const positive = (phrase: string) => z.number({ error: phrase }).int({ error: phrase }).min(1, { error: phrase });

/**
 * `allixios:backups`: the stack's object store and, optionally, schedules and retention. Its
 * credentials are a Secret in the stack's namespace that the program only names (never a key in
 * the stack config), or the cloud's workload identity.
 */
const backupsSchema = z.strictObject(
  {
    enabled: z.boolean({ error: 'true or false' }).optional(),
    objectStore: z
      .strictObject(
        {
          endpoint: z
            .string({ error: ENDPOINT_PHRASE })
            .regex(/^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/?$/, { error: ENDPOINT_PHRASE })
            .optional(),
          bucket: z.string({ error: BUCKET_PHRASE }).regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: BUCKET_PHRASE }),
          region: z.string({ error: REGION_PHRASE }).regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: REGION_PHRASE }),
          prefix: z
            .string({ error: PREFIX_PHRASE })
            // No `.` or `..` segment: a prefix never climbs into another stack's.
            .regex(/^(?!(.*\/)?\.{1,2}(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, { error: PREFIX_PHRASE })
            .optional(),
          forcePathStyle: z.boolean({ error: 'true or false' }).optional(),
          credentials: z.union(
            [
              z.strictObject({
                secretName: z.string({ error: DNS_LABEL_PHRASE }).regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, { error: 'a Secret name in the stack namespace' }),
                accessKeyIdKey: z
                  .string({ error: SECRET_KEY_PHRASE })
                  .regex(/^[-._a-zA-Z0-9]+$/, { error: SECRET_KEY_PHRASE })
                  .optional(),
                secretAccessKeyKey: z
                  .string({ error: SECRET_KEY_PHRASE })
                  .regex(/^[-._a-zA-Z0-9]+$/, { error: SECRET_KEY_PHRASE })
                  .optional(),
              }),
              z.strictObject({
                workloadIdentity: z.strictObject(
                  { serviceAccountAnnotations: z.record(z.string(), z.string(), { error: 'an object of annotation names and values' }) },
                  { error: 'an object with serviceAccountAnnotations' },
                ),
              }),
            ],
            { error: 'an object with secretName (and optionally accessKeyIdKey, secretAccessKeyKey), or with workloadIdentity.serviceAccountAnnotations' },
          ),
        },
        { error: 'an object with endpoint, bucket, region, prefix, forcePathStyle and credentials' },
      )
      .optional(),
    schedules: z
      .record(
        z.string(),
        z.record(z.string(), z.string({ error: CRON_PHRASE }).regex(CRON, { error: CRON_PHRASE }), { error: 'an object of cron schedules keyed by backup job' }),
        { error: 'an object keyed by engine name' },
      )
      .optional(),
    retention: z
      .strictObject(
        { count: positive('a whole number of full backups from 1').optional(), days: positive('a whole number of days from 1').optional() },
        { error: 'an object with count and days' },
      )
      .optional(),
  },
  { error: 'an object with enabled, objectStore, schedules and retention' },
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
function perSecret<Value extends z.ZodType>(modules: readonly EngineModule[], value: Value, what: string) {
  return z
    .strictObject(
      Object.fromEntries(
        modules.map((module) => [
          module.name,
          z.strictObject(Object.fromEntries(module.secrets.map((secret) => [secret.key, value.optional()])), { error: `an object of ${what} keyed by secret name` }).optional(),
        ]),
      ),
      { error: 'an object keyed by engine name' },
    )
    .optional();
}

/** The schema of the `allixios:` namespace for a list of engines (keys under `engines`, `passwords`, `rotations`). */
function buildStackSchema(modules: readonly EngineModule[]) {
  return z.strictObject({
    environment: z.enum(ENVIRONMENTS, { error: oneOf(ENVIRONMENTS) }),
    target: z.enum(TARGETS, { error: oneOf(TARGETS) }).optional(),
    namespace: z.string({ error: DNS_LABEL_PHRASE }).regex(DNS_LABEL, { error: DNS_LABEL_PHRASE }).optional(),
    exposeHostPorts: z.boolean({ error: 'true or false' }).optional(),
    protectData: z.boolean({ error: 'true or false' }).optional(),
    tls: tlsSchema.optional(),
    bootstrap: bootstrapSchema.optional(),
    clientNamespaces: z.array(z.string({ error: DNS_LABEL_PHRASE }).regex(DNS_LABEL, { error: DNS_LABEL_PHRASE }), { error: 'a list of namespace names' }).optional(),
    clusterDomain: z.string({ error: CLUSTER_DOMAIN_PHRASE }).regex(CLUSTER_DOMAIN, { error: CLUSTER_DOMAIN_PHRASE }).optional(),
    // The StorageClasses the operator vouches for as encrypting their volumes (README "Encryption at rest").
    encryptedStorageClasses: z.array(storageClassName, { error: 'a list of StorageClass names such as ["gp3-encrypted"]' }).optional(),
    backups: backupsSchema.optional(),
    engines: z
      .strictObject(Object.fromEntries(modules.map((module) => [module.name, engineSchema.optional()])) as Record<EngineName, z.ZodOptional<typeof engineSchema>>, {
        error: 'an object keyed by engine name',
      })
      .optional(),
    passwords: perSecret(modules, passwordSchema, 'passwords'),
    rotations: perSecret(modules, rotationSchema, 'rotations'),
  });
}

export type StackSchema = ReturnType<typeof buildStackSchema>;
export type RawStackConfig = z.output<StackSchema>;
export type RawEngine = z.output<typeof engineSchema>;
export type RawBackups = z.output<typeof backupsSchema>;

const schemas = new WeakMap<readonly EngineModule[], StackSchema>();

/** The stack schema for `modules`, built once per list. */
export function stackSchema(modules: readonly EngineModule[]): StackSchema {
  let schema = schemas.get(modules);
  if (!schema) schemas.set(modules, (schema = buildStackSchema(modules)));
  return schema;
}
