/**
 * The plan of a migration engine, computed from the assets on disk and the ledger read from the
 * engine, with no I/O: the state of every asset, the steps to apply, and the problems that stop
 * everything. `migrations.ts` turns it into the runner's one {@link Plan} shape.
 */
import type { EngineName } from '../databases/engine.ts';
import { assetLabel, type Asset, type AssetKind } from './assets.ts';

/** One applied asset as the engine's ledger records it. */
export interface LedgerEntry {
  kind: AssetKind;
  /** Versioned assets only. */
  version?: number;
  name: string;
  checksum: string;
  appliedAt?: Date;
  durationMs?: number;
  appliedBy?: string;
  /** Where the file was when it was applied, relative to the repository (PostgreSQL's ledger keeps it). */
  path?: string;
}

/**
 * `applied`: nothing to do. `pending`: never applied. `changed`: a repeatable asset whose file
 * changed (re-applied). `edited`: a versioned migration whose file changed after it was applied
 * (a problem: nothing is applied until it is restored).
 */
export type AssetState = 'applied' | 'pending' | 'changed' | 'edited';

export interface AssetStatus {
  asset: Asset;
  state: AssetState;
  entry?: LedgerEntry;
}

export interface PlanStep {
  asset: Asset;
  reason: 'pending' | 'changed';
}

export interface MigrationPlan {
  engine: EngineName;
  statuses: AssetStatus[];
  /** In order; empty when everything is applied or when there are problems. */
  steps: PlanStep[];
  /**
   * Reasons to apply nothing at all: an applied migration edited or deleted, a new migration
   * older than one already applied. Each names the file and what differs.
   */
  problems: string[];
}

const shortChecksum = (value: string) => value.replace(/^sha256:/, '').slice(0, 12);

export function planMigrations(engine: EngineName, assets: readonly Asset[], ledger: readonly LedgerEntry[]): MigrationPlan {
  const versionedEntries = new Map(ledger.filter((entry) => entry.kind === 'versioned').map((entry) => [entry.version!, entry]));
  const repeatableEntries = new Map(ledger.filter((entry) => entry.kind === 'repeatable').map((entry) => [entry.name, entry]));
  const highestApplied = Math.max(0, ...versionedEntries.keys());
  const problems: string[] = [];
  const statuses: AssetStatus[] = [];

  for (const asset of assets) {
    const entry = asset.kind === 'versioned' ? versionedEntries.get(asset.version!) : repeatableEntries.get(asset.name);
    if (!entry) {
      if (asset.kind === 'versioned' && asset.version! < highestApplied) {
        problems.push(
          `${asset.path}: ${assetLabel(asset)} is not applied, but V${String(highestApplied).padStart(4, '0')} already is; ` +
            'a new migration needs a version above every applied one',
        );
      }
      statuses.push({ asset, state: 'pending' });
    } else if (entry.checksum === asset.checksum) {
      statuses.push({ asset, state: 'applied', entry });
    } else if (asset.kind === 'repeatable') {
      statuses.push({ asset, state: 'changed', entry });
    } else {
      problems.push(
        `${asset.path}: ${assetLabel(asset)} was changed after it was applied ` +
          `(ledger checksum ${shortChecksum(entry.checksum)}, file checksum ${shortChecksum(asset.checksum)}); ` +
          'restore the file and add a new migration for the change',
      );
      statuses.push({ asset, state: 'edited', entry });
    }
  }

  const versionsOnDisk = new Set(assets.filter((asset) => asset.kind === 'versioned').map((asset) => asset.version));
  for (const entry of versionedEntries.values()) {
    if (!versionsOnDisk.has(entry.version)) {
      problems.push(`${entry.path ?? entry.name}: V${String(entry.version).padStart(4, '0')} is applied but its file is gone; restore it (applied migrations are history)`);
    }
  }

  const steps: PlanStep[] =
    problems.length > 0
      ? []
      : statuses
          .filter((status): status is AssetStatus & { state: PlanStep['reason'] } => status.state === 'pending' || status.state === 'changed')
          .map((status) => ({ asset: status.asset, reason: status.state }));
  return { engine, statuses, steps, problems };
}
