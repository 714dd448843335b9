/**
 * Kubernetes label selector semantics (matchLabels and matchExpressions), on plain data. Imports
 * nothing, so the policy pack and the render's diagram (`stacks/render/diagram-kubernetes.ts`)
 * read selectors the same way.
 */

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: ReadonlyArray<{ key: string; operator: string; values?: readonly string[] }>;
}

/** Whether `selector` selects `labels`; an empty selector selects everything, none selects nothing. */
export function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const matchLabels = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const matchExpressions = (selector.matchExpressions ?? []).every((requirement) => {
    const value = labels[requirement.key];
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case 'In':
        return value !== undefined && values.includes(value);
      case 'NotIn':
        return value === undefined || !values.includes(value);
      case 'Exists':
        return value !== undefined;
      case 'DoesNotExist':
        return value === undefined;
      default:
        return false;
    }
  });
  return matchLabels && matchExpressions;
}
