/**
 * What `npm run restore` hands an engine's restore: the stack's backup settings for it (read from
 * `Pulumi.<stack>.yaml` the way `npm run render` reads it, validated by the same schema), or a
 * local copy, and the engine's URL from the variable the platform reads it from.
 */
import { existsSync } from 'node:fs';
import type { EngineRestore, RestoreRequest } from '../../databases/backup.ts';
import type { EngineModule } from '../../databases/engine.ts';
import { ENGINE_MODULES } from '../../databases/index.ts';
import { namespaceConfig, parseStackConfig } from '../config/index.ts';
import { readStackFile } from '../render/stack-file.ts';

export interface RestoreArguments {
  engine: string;
  stack?: string;
  from?: string;
  to?: Date;
  backup?: string;
  target: string;
  replaceExisting: boolean;
}

export interface ResolvedRestore {
  restore: EngineRestore;
  request: RestoreRequest;
  /** Where the backup comes from, for the first line of the plan. */
  source: string;
}

async function restoreOf(module: EngineModule): Promise<EngineRestore> {
  if (!module.restore) throw new Error(`${module.displayName} has no restore of its own`);
  return module.restore();
}

export async function restoreRequest(root: string, args: RestoreArguments, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedRestore> {
  const module = ENGINE_MODULES.find((candidate) => candidate.name === args.engine);
  if (!module) throw new Error(`--engine: expected one of ${ENGINE_MODULES.map((candidate) => candidate.name).join(', ')}, got ${JSON.stringify(args.engine)}`);
  const url = env[module.urlVariable];
  const common = {
    target: args.target,
    replaceExisting: args.replaceExisting,
    ...(args.to ? { to: args.to } : {}),
    ...(args.backup !== undefined ? { backup: args.backup } : {}),
    ...(url ? { url } : {}),
  };
  if (args.from !== undefined) {
    if (!existsSync(args.from)) throw new Error(`--from: ${args.from} does not exist (expected a local copy of a ${module.displayName} backup)`);
    return { restore: await restoreOf(module), request: { ...common, source: args.from }, source: `the local copy ${args.from}` };
  }
  if (args.stack === undefined) throw new Error('expected --stack or --from');
  const file = readStackFile(root, args.stack);
  const config = parseStackConfig(namespaceConfig(file.config), file.project, file.stack);
  if (!config.backups.enabled) throw new Error(`stack ${args.stack} does not back up (its allixios:backups names no object store, or is turned off): nothing to restore from`);
  const engine = config.engines.find((candidate) => candidate.spec.name === module.name);
  if (!engine) throw new Error(`stack ${args.stack} does not run ${module.displayName} (allixios:engines.${module.name}.enabled is false)`);
  const store = config.backups.objectStore;
  const settings = { objectStore: store, path: `${store.prefix}/${module.name}`, schedules: { ...module.backupSchedules }, retention: config.backups.retention };
  return { restore: await restoreOf(module), request: { ...common, settings }, source: `s3://${store.bucket}/${settings.path} (stack ${args.stack})` };
}
