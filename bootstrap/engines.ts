/**
 * The engines the bootstrap knows, in the order it applies them: the engine modules of
 * `databases/index.ts`. A run chooses engines by what a module says without loading anything
 * (its name, its URL variable); only the chosen engines' bootstrap side is loaded (`bootstrap()`:
 * desired state and planner), and an engine's driver only when the run connects to it
 * (`BootstrapEngine.createAdapter`). So an offline dry run loads no driver, and a run against
 * PostgreSQL alone loads pg and nothing else. The runner is the same for all.
 */
import type { EngineModule } from '../databases/engine.ts';
import type { AnyBootstrapEngine } from './contract.ts';

/** An engine as a run is given it: its module (loaded once chosen) or its bootstrap side already loaded (tests). */
export type EngineEntry = EngineModule | AnyBootstrapEngine;

function isModule(entry: EngineEntry): entry is EngineModule {
  return 'bootstrap' in entry && typeof entry.bootstrap === 'function';
}

/** The bootstrap side of an entry, loading it when the entry is a module. */
export async function loadEngine(entry: EngineEntry): Promise<AnyBootstrapEngine> {
  return isModule(entry) ? entry.bootstrap() : entry;
}
