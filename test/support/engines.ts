/** Engine descriptions as a stack would render them, for the engine config tests. */
import { join } from 'node:path';
import { engineSpec, type EngineModule, type EngineSpec, type Environment } from '../../databases/engine.ts';

export interface DescribeOverrides {
  /** Engine options, validated by the engine's own schema as the stack config would. */
  options?: Record<string, unknown>;
  /** A memory limit other than the environment's default. */
  memoryLimit?: string;
  /** Served over TLS (default: off, as on the docker target). */
  tls?: boolean;
  /** Members (default: the environment's, as a Kubernetes stack gets them). */
  replicas?: number;
}

/** The engine with its defaults for `environment`, as a stack without overrides would get it. */
export function describeWithDefaults(module: EngineModule, environment: Environment, overrides: DescribeOverrides = {}): EngineSpec {
  const sizing = module.sizing[environment];
  const resources = overrides.memoryLimit ? { ...sizing.resources, limits: { ...sizing.resources.limits, memory: overrides.memoryLimit } } : sizing.resources;
  return engineSpec(module, {
    environment,
    version: module.defaultVersion,
    // The environment's members, as a Kubernetes stack gets them (Redis: three in prod).
    replicas: overrides.replicas ?? sizing.replicas ?? 1,
    storage: sizing.storage,
    resources,
    options: module.optionsSchema.parse(overrides.options ?? {}),
    tls: overrides.tls ?? false,
  });
}

/** The repository file an engine mounts at `mountPath`. */
export function repositoryPathOf(module: EngineModule, spec: EngineSpec, mountPath: string): string {
  const file = [...spec.configFiles, ...spec.secretFiles].find((candidate) => candidate.mountPath === mountPath);
  if (!file) {
    throw new Error(`${spec.name}: no file is mounted at ${mountPath} (mounted: ${spec.configFiles.map((candidate) => candidate.mountPath).join(', ')})`);
  }
  return join(module.directory, file.source);
}

/** A TCP port on 127.0.0.1 that nothing listens on right now, for a test's own server. */
export { freePort } from '../../bootstrap/embedded/postgresql.ts';
