/**
 * The program behind `index.ts`: read and validate the stack config, then hand it to the target
 * it names. Kept apart from `index.ts` so tests can run it with any config under Pulumi's mocks.
 */
import * as pulumi from '@pulumi/pulumi';
import { ENGINE_NAMES, type EngineName } from '../databases/engine.ts';
import { namespaceConfig, parseStackConfig, type StackConfig } from './config.ts';
import { DockerDatabases } from './docker/index.ts';
import type { Endpoints } from './endpoints.ts';
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
  /** Dev only: the application's URLs through 127.0.0.1 (secret). */
  hostUrls: Record<string, pulumi.Output<string>>;
  /** Per engine: host and port inside the network or cluster. */
  endpoints: Partial<Record<EngineName, { host: pulumi.Output<string>; port: number }>>;
}

/** Deploys the stack's engines on its target; `opts` apply to the top-level component. */
export function deployDatabases(config: StackConfig, name = 'allixios', opts?: pulumi.ComponentResourceOptions): DatabaseOutputs {
  const endpoints: Endpoints =
    config.target === 'docker'
      ? new DockerDatabases(name, { config }, opts).endpoints
      : new KubernetesDatabases(name, { config }, opts).endpoints;

  const outputs: DatabaseOutputs = { urls: {}, bootstrapUrls: {}, hostUrls: {}, endpoints: {} };
  for (const engine of ENGINE_NAMES) {
    const endpoint = endpoints[engine];
    if (!endpoint) continue;
    outputs.urls[endpoint.urlVariable] = endpoint.url;
    outputs.bootstrapUrls[endpoint.urlVariable] = endpoint.adminUrl;
    if (endpoint.hostUrl) outputs.hostUrls[endpoint.urlVariable] = endpoint.hostUrl;
    outputs.endpoints[engine] = { host: endpoint.host, port: endpoint.port };
  }
  return outputs;
}
