/**
 * The engines the bootstrap knows, in the order it applies them: each engine module's bootstrap
 * side (`databases/index.ts` lists the modules; each says where its adapter is). The runner is
 * the same for all.
 */
import type { EngineModule } from '../databases/engine.ts';
import { ENGINE_MODULES } from '../databases/index.ts';
import type { AnyBootstrapEngine } from './contract.ts';

/** The bootstrap side of each module, in the modules' order. */
export function bootstrapEngines(modules: readonly EngineModule[]): Promise<AnyBootstrapEngine[]> {
  return Promise.all(modules.map((module) => module.bootstrap()));
}

/** The platform's engines, in the order the bootstrap applies them. */
export const BOOTSTRAP_ENGINES: readonly AnyBootstrapEngine[] = await bootstrapEngines(ENGINE_MODULES);
