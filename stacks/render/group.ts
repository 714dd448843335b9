/** Groups recorded resources into the render's files: one per engine, plus the shared ones. */
import type { EngineName } from '../../databases/engine.ts';
import { ENGINE_NAMES } from '../../databases/index.ts';
import { redactSecrets, type RecordedResource } from './mocks.ts';
import { orderKeys } from './order.ts';

/** What every secret value becomes in rendered output. */
export const REDACTED = '<redacted>';

export interface RenderedFiles {
  target: 'docker' | 'kubernetes';
  /** File name -> documents. */
  files: Record<string, unknown[]>;
}

/**
 * The file a resource goes to: its engine's (names derive from the parent's:
 * `allixios-postgresql-container`), the bootstrap run's (`allixios-bootstrap-job-<trigger>`), or
 * the stack's TLS issuer's (`allixios-tls-...`).
 */
function ownerOf(resourceName: string, engines: readonly EngineName[]): EngineName | 'bootstrap' | 'tls' | undefined {
  const parts = resourceName.split('-');
  if (parts.includes('bootstrap')) return 'bootstrap';
  // The stack's issuer and CA bundle (`allixios-tls-...`) go to tls.yaml; an engine's Certificate to its file.
  return engines.find((engine) => parts.includes(engine)) ?? (parts.includes('tls') ? 'tls' : undefined);
}

/** `engines`: the names a resource's file is named after (the platform's engines by default). */
export function groupRendered(resources: readonly RecordedResource[], engines: readonly EngineName[] = ENGINE_NAMES): RenderedFiles {
  const kubernetes = resources.some((resource) => resource.type.startsWith('kubernetes:'));
  const files: Record<string, unknown[]> = {};
  const add = (file: string, document: unknown) => (files[file] ??= []).push(document);
  /** Docker: an engine's (or the bootstrap's) resources in one object, by kind. */
  const bundles: Record<string, Record<string, unknown>> = {};

  for (const resource of resources) {
    // Serialized inputs where recorded: only what is secret is redacted, not all of a list holding it.
    const inputs = redactSecrets(resource.serializedInputs ?? resource.inputs, REDACTED) as Record<string, unknown>;
    const engine = ownerOf(resource.name, engines);
    if (resource.type.startsWith('kubernetes:')) {
      add(engine ? `${engine}.yaml` : `${String(inputs.kind ?? 'cluster').toLowerCase()}.yaml`, orderKeys(inputs));
    } else if (resource.type.startsWith('docker:')) {
      const kind = resource.type.split(':').pop()!.toLowerCase();
      if (engine) {
        (bundles[`${engine}.json`] ??= {})[kind] = orderKeys(inputs, kind);
      } else {
        add(`${kind}.json`, orderKeys(inputs, kind));
      }
    }
  }
  // Registration order depends on when outputs resolve; a review diff must not.
  for (const documents of Object.values(files)) documents.sort(byKindThenName);
  for (const [file, bundle] of Object.entries(bundles)) files[file] = [byDockerKind(bundle)];
  return { target: kubernetes ? 'kubernetes' : 'docker', files };
}

/** An engine's Docker resources, the container first: what runs, then what it runs from. */
const DOCKER_KIND_ORDER = ['container', 'image', 'remoteimage', 'volume', 'network'];

function byDockerKind(bundle: Record<string, unknown>): Record<string, unknown> {
  const rank = (kind: string) => (DOCKER_KIND_ORDER.includes(kind) ? DOCKER_KIND_ORDER.indexOf(kind) : DOCKER_KIND_ORDER.length);
  return Object.fromEntries(Object.entries(bundle).sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)));
}

const KIND_ORDER = ['Namespace', 'Secret', 'Issuer', 'ConfigMap', 'Certificate', 'Service', 'StatefulSet', 'PodDisruptionBudget', 'NetworkPolicy', 'Job'];

function byKindThenName(a: unknown, b: unknown): number {
  const key = (document: unknown) => {
    const object = document as { kind?: string; metadata?: { name?: string } };
    const rank = KIND_ORDER.indexOf(object.kind ?? '');
    return [rank === -1 ? KIND_ORDER.length : rank, object.metadata?.name ?? ''] as const;
  };
  const [rankA, nameA] = key(a);
  const [rankB, nameB] = key(b);
  // Code-point order, not the locale's: the same bytes on every machine.
  return rankA - rankB || (nameA < nameB ? -1 : nameA > nameB ? 1 : 0);
}
