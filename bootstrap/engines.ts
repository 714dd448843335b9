/**
 * The engines the bootstrap knows, in the order it applies them. Each says where its assets are
 * and how to reach it; the runner is the same for all.
 */
import type { EngineName } from '../databases/engine.ts';
import { ENGINES } from '../databases/index.ts';
import type { AssetSource } from './assets.ts';
import { PostgresAdapter } from './adapters/postgresql.ts';
import type { AdapterOptions, EngineAdapter } from './adapters/types.ts';

export interface BootstrapEngine {
  name: EngineName;
  /** The variable holding the URL the bootstrap connects with (owner or admin credentials). */
  urlVariable: string;
  assets: Pick<AssetSource, 'folders' | 'extension'>;
  createAdapter(url: string, options: AdapterOptions): EngineAdapter;
}

export const BOOTSTRAP_ENGINES: readonly BootstrapEngine[] = [
  {
    name: 'postgresql',
    urlVariable: ENGINES.postgresql.urlVariable,
    // The design document's layout; versions are unique across the three versioned folders.
    assets: { folders: ['schemas', 'indexes', 'migrations', 'functions'], extension: '.sql' },
    createAdapter: (url, options) => new PostgresAdapter(url, options),
  },
];
