/** Labels shared by both targets, following `app.kubernetes.io/*`. */
import type { EngineName, EngineSpec } from '../databases/engine.ts';

export const PART_OF = 'allixios';

/** The labels that select one engine's pods in one stack; never change them on a live stack. */
export function selectorLabels(engine: EngineName, instance: string): Record<string, string> {
  return { 'app.kubernetes.io/name': engine, 'app.kubernetes.io/instance': instance };
}

/** The labels of one of the stack's parts (an engine, the CA, node tuning) in one stack. */
export function partLabels(name: string, instance: string, component: string): Record<string, string> {
  return {
    ...selectorLabels(name, instance),
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': PART_OF,
    'app.kubernetes.io/managed-by': 'pulumi',
  };
}

export function engineLabels(spec: EngineSpec, instance: string): Record<string, string> {
  return { ...partLabels(spec.name, instance, spec.component), 'app.kubernetes.io/version': spec.image.tag };
}

/**
 * On each database StatefulSet: `allixios:encryptedStorageClasses`, comma-separated, for the policy
 * pack, which cannot read the stack's config (`policy/storage-policies.ts`). Must equal
 * `ENCRYPTED_STORAGE_CLASSES_ANNOTATION` there (a test holds them together).
 */
export const ENCRYPTED_STORAGE_CLASSES_ANNOTATION = 'allixios.io/encrypted-storage-classes';

/** A pod with this label set to "true" may connect to the engine (NetworkPolicy). */
export function clientLabel(engine: EngineName): string {
  return `allixios.io/client-${engine}`;
}

/** The labels of the bootstrap Job's pods, which the NetworkPolicies admit to every engine. */
export const BOOTSTRAP_POD_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/component': 'bootstrap',
  'app.kubernetes.io/part-of': PART_OF,
};
