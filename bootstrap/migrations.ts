/**
 * Engines whose schema is a history of migration files (PostgreSQL, ClickHouse), under the one
 * contract of `contract.ts`: the desired state is the engine's asset files, the observed state is
 * its ledger, and a change applies one file and records it.
 */
import type { EngineModule } from '../databases/engine.ts';
import { assetLabel, loadAssets, type Asset, type AssetSource } from './assets.ts';
import { engineIdentity, type Adapter, type AdapterOptions, type BootstrapEngine, type Change, type Plan } from './contract.ts';
import { displayRoot } from './paths.ts';
import { planMigrations, type LedgerEntry, type MigrationPlan, type PlanStep } from './plan.ts';

/** A migration engine's adapter: it observes the ledger and applies one file per change. */
export type MigrationAdapter = Adapter<LedgerEntry[], PlanStep>;

export interface MigrationEngine extends BootstrapEngine<Asset[], LedgerEntry[], PlanStep> {
  /** Where its assets are in its folder and how they run. */
  assets: Pick<AssetSource, 'folders' | 'extension' | 'transactions'>;
}

export interface MigrationEngineDefinition {
  module: Pick<EngineModule, 'name' | 'urlVariable' | 'directory'>;
  assets: MigrationEngine['assets'];
  /** Refuses an asset that may not be applied at all (runs on every load: dry runs and status too). */
  checkAsset?(asset: Asset): void;
  /** Loads the engine's adapter and driver (a dynamic import: runs that never connect do not load them). */
  createAdapter(url: string | undefined, options: AdapterOptions): Promise<MigrationAdapter>;
  embedded: MigrationEngine['embedded'];
}

const shortChecksum = (value: string) => value.replace(/^sha256:/, '').slice(0, 12);

/** `V0003 article_search` for a versioned asset, the file name for a repeatable one. */
export function migrationSubject(asset: Asset): string {
  return asset.kind === 'versioned' ? `${assetLabel(asset)} ${asset.description}` : asset.name;
}

/** The migration plan in the runner's shape: a change per file to apply, the applied files in sync, the problems refused. */
export function migrationChanges(plan: MigrationPlan, transactions = true): Plan<PlanStep> {
  const entries = new Map(plan.statuses.map((status) => [status.asset, status.entry]));
  const changes = plan.steps.map((step): Change<PlanStep> => {
    const entry = entries.get(step.asset);
    const detail =
      step.reason === 'changed'
        ? `changed since it was applied (ledger checksum ${shortChecksum(entry?.checksum ?? '')}, file checksum ${shortChecksum(step.asset.checksum)})`
        : `not applied yet${transactions && !step.asset.transactional ? ', runs without a transaction (allixios:no-transaction)' : ''}`;
    return { subject: migrationSubject(step.asset), action: step.reason === 'changed' ? 're-apply' : 'apply', detail, source: step.asset.path, payload: step };
  });
  const inSync = plan.statuses
    .filter((status) => status.state === 'applied')
    .map((status) => {
      const when = status.entry?.appliedAt ? ` (applied ${status.entry.appliedAt.toISOString()}${status.entry.appliedBy ? ` by ${status.entry.appliedBy}` : ''})` : '';
      return `${migrationSubject(status.asset)}${when}`;
    });
  return { engine: plan.engine, changes, inSync, refusals: plan.problems };
}

export function migrationEngine(definition: MigrationEngineDefinition): MigrationEngine {
  const { name } = definition.module;
  return {
    ...engineIdentity(definition.module),
    assets: definition.assets,
    desired(_env, directory = definition.module.directory) {
      const assets = loadAssets({ engine: name, directory, root: displayRoot(directory), ...definition.assets });
      for (const asset of assets) definition.checkAsset?.(asset);
      return assets;
    },
    plan: (assets, ledger) => migrationChanges(planMigrations(name, assets, ledger ?? []), definition.assets.transactions !== false),
    createAdapter: (url, options) => definition.createAdapter(url, options),
    embedded: definition.embedded,
  };
}
