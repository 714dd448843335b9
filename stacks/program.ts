/**
 * The program behind `index.ts`: read and validate the stack config, then hand it to the target
 * it names. Kept apart from `index.ts` so tests can run it with any config under Pulumi's mocks.
 */
import { backupBucketPolicy, type BackupBucketPolicy } from './backup-policy.ts';
import * as pulumi from '@pulumi/pulumi';
import type { EngineName } from '../databases/engine.ts';
import { namespaceConfig, parseStackConfig, type StackConfig } from './config/index.ts';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerBootstrap } from './bootstrap/docker.ts';
import { KubernetesBootstrap } from './bootstrap/kubernetes.ts';
import { DockerDatabases } from './docker/index.ts';
import { credentialsFingerprint } from './credentials.ts';
import type { Endpoints } from './endpoints.ts';
import { companionClientSettings } from './kubernetes/companion.ts';
import { KubernetesDatabases } from './kubernetes/index.ts';

/** Validates the running stack's config; throws a `ConfigError` before any resource exists. */
export function loadStackConfig(): StackConfig {
  return parseStackConfig(namespaceConfig(pulumi.runtime.allConfig()), pulumi.getProject(), pulumi.getStack());
}

/** The stack outputs: connection URLs (secret) named after the platform's variables, and endpoints. */
export interface DatabaseOutputs {
  /** `DATABASE_URL`, `MONGODB_URL`, ... -> the application's URL (secret). */
  urls: Record<string, pulumi.Output<string>>;
  /** The same variables with the bootstrap's (owner/admin) credentials (secret). */
  bootstrapUrls: Record<string, pulumi.Output<string>>;
  /** Settings for clients besides the URLs, by variable (not secret): Redis's `REDIS_SENTINELS`, `REDIS_MASTER_NAME` on Kubernetes. */
  settings: Record<string, pulumi.Output<string>>;
  /** Dev only: the application's URLs through 127.0.0.1 (secret). */
  hostUrls: Record<string, pulumi.Output<string>>;
  /** Per engine: host and port inside the network or cluster. */
  endpoints: Record<EngineName, { host: pulumi.Output<string>; port: number }>;
  /** The bootstrap run of this deployment, once it succeeded. */
  bootstrap?: pulumi.Output<string>;
  /** The CA bundle (PEM) clients verify the engines with, when the stack serves TLS (not secret). */
  tlsCaBundle?: pulumi.Output<string>;
  /** What the platform team sets on the backup bucket: the credentials' access policy and the lifecycle rules (not secret). */
  backupBucket?: BackupBucketPolicy;
}

/** The repository root: the bootstrap image's build context and the content its trigger hashes. */
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** Deploys the stack's engines on its target, then the bootstrap run; `opts` apply to the top-level components. */
export function deployDatabases(config: StackConfig, name = 'allixios', opts?: pulumi.ComponentResourceOptions): DatabaseOutputs {
  // What the config accepted but the preview must point out (TLS off, engines without TLS).
  for (const warning of config.warnings) pulumi.log.warn(warning);
  let endpoints: Endpoints;
  let bootstrap: pulumi.Output<string> | undefined;
  let tlsCaBundle: pulumi.Output<string> | undefined;
  if (config.target === 'docker') {
    const databases = new DockerDatabases(name, { config }, opts);
    endpoints = databases.endpoints;
    tlsCaBundle = databases.certificateAuthority?.certificatePem;
    if (config.bootstrap.enabled) {
      const run = new DockerBootstrap(
        `${name}-bootstrap`,
        {
          config,
          root: ROOT,
          networkName: databases.network.name,
          namePrefix: config.namespace,
          env: Object.fromEntries(Object.values(endpoints).flatMap((endpoint) => [[endpoint.urlVariable, endpoint.adminUrl], ...Object.entries(endpoint.bootstrapEnv)])),
          endpoints: databases.engines.map((engine) => `${engine.host}:${engine.port}`),
          credentialsFingerprint: credentialsFingerprint(name, databases.credentials, { parent: databases }),
          engines: databases.engines.map((engine) => engine.container),
          ...(databases.certificateAuthority ? { caBundle: databases.certificateAuthority.certificatePem } : {}),
        },
        opts,
      );
      bootstrap = pulumi.interpolate`container ${run.container.name} exited with ${run.exitCode}`;
    }
  } else {
    const databases = new KubernetesDatabases(name, { config }, opts);
    endpoints = databases.endpoints;
    tlsCaBundle = databases.tls?.caBundle;
    if (config.bootstrap.enabled) {
      const run = new KubernetesBootstrap(
        `${name}-bootstrap`,
        {
          config,
          root: ROOT,
          namespace: databases.namespace.metadata.name,
          instance: `${config.project}-${config.stack}`,
          targets: config.engines.map((engine, index) => ({
            module: engine.module,
            spec: engine.spec,
            secretName: databases.engines[index]!.secret.metadata.name,
            host: `${engine.spec.name}.${config.namespace}.svc`,
            previousKeys: Object.keys(databases.credentials[index]!.previousPasswords),
            settings: companionClientSettings(engine.spec, config.namespace, config.clusterDomain),
          })),
          credentialsFingerprint: credentialsFingerprint(name, databases.credentials, { parent: databases }),
          engines: databases.engines.map((engine) => engine.statefulSet),
          ...(databases.tls ? { caConfigMap: databases.tls.caConfigMap.metadata.name } : {}),
        },
        opts,
      );
      bootstrap = run.job.metadata.name.apply((job) => `job ${job} succeeded`);
    }
  }

  const outputs: DatabaseOutputs = {
    urls: {},
    settings: {},
    bootstrapUrls: {},
    hostUrls: {},
    endpoints: {},
    ...(bootstrap ? { bootstrap } : {}),
    ...(tlsCaBundle ? { tlsCaBundle } : {}),
  };
  const bucket = backupBucketPolicy(config);
  if (bucket) outputs.backupBucket = bucket;
  for (const { spec } of config.engines) {
    const endpoint = endpoints[spec.name]!;
    outputs.urls[endpoint.urlVariable] = endpoint.url;
    if (endpoint.readUrl) outputs.urls[endpoint.readUrl.variable] = endpoint.readUrl.url;
    Object.assign(outputs.settings, endpoint.settings ?? {});
    outputs.bootstrapUrls[endpoint.urlVariable] = endpoint.adminUrl;
    if (endpoint.hostUrl) outputs.hostUrls[endpoint.urlVariable] = endpoint.hostUrl;
    outputs.endpoints[spec.name] = { host: endpoint.host, port: endpoint.port };
  }
  return outputs;
}
