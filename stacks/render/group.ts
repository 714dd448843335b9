/** Groups recorded resources into the render's files: one per engine, plus the shared ones. */
import type { EngineName } from '../../databases/engine.ts';
import { ENGINE_NAMES } from '../../databases/index.ts';
import { redactSecrets, type RecordedResource } from './mocks.ts';

/** What every secret value becomes in rendered output. */
export const REDACTED = '<redacted>';

export interface RenderedFiles {
  target: 'docker' | 'kubernetes';
  /** File name -> documents. */
  files: Record<string, unknown[]>;
}

/**
 * The file a resource goes to: its engine's (names derive from the parent's:
 * `allixios-postgresql-container`), or the bootstrap run's (`allixios-bootstrap-job-<trigger>`).
 */
function ownerOf(resourceName: string, engines: readonly EngineName[]): EngineName | 'bootstrap' | undefined {
  const parts = resourceName.split('-');
  return parts.includes('bootstrap') ? 'bootstrap' : engines.find((engine) => parts.includes(engine));
}

/** `engines`: the names a resource's file is named after (the platform's engines by default). */
export function groupRendered(resources: readonly RecordedResource[], engines: readonly EngineName[] = ENGINE_NAMES): RenderedFiles {
  const kubernetes = resources.some((resource) => resource.type.startsWith('kubernetes:'));
  const files: Record<string, unknown[]> = {};
  const add = (file: string, document: unknown) => (files[file] ??= []).push(document);

  for (const resource of resources) {
    const inputs = redactSecrets(resource.inputs, REDACTED) as Record<string, unknown>;
    const engine = ownerOf(resource.name, engines);
    if (resource.type.startsWith('kubernetes:')) {
      add(engine ? `${engine}.yaml` : `${String(inputs.kind ?? 'cluster').toLowerCase()}.yaml`, inputs);
    } else if (resource.type.startsWith('docker:')) {
      const kind = resource.type.split(':').pop()!.toLowerCase();
      if (engine) {
        files[`${engine}.json`] ??= [{}];
        (files[`${engine}.json`]![0] as Record<string, unknown>)[kind] = inputs;
      } else {
        add(`${kind}.json`, inputs);
      }
    }
  }
  // Registration order depends on when outputs resolve; a review diff must not.
  for (const documents of Object.values(files)) documents.sort(byKindThenName);
  return { target: kubernetes ? 'kubernetes' : 'docker', files };
}

const KIND_ORDER = ['Namespace', 'Secret', 'ConfigMap', 'Service', 'StatefulSet', 'PodDisruptionBudget', 'NetworkPolicy', 'Job'];

function byKindThenName(a: unknown, b: unknown): number {
  const key = (document: unknown) => {
    const object = document as { kind?: string; metadata?: { name?: string } };
    const rank = KIND_ORDER.indexOf(object.kind ?? '');
    return [rank === -1 ? KIND_ORDER.length : rank, object.metadata?.name ?? ''] as const;
  };
  const [rankA, nameA] = key(a);
  const [rankB, nameB] = key(b);
  return rankA - rankB || nameA.localeCompare(nameB);
}
