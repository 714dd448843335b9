/**
 * The advisory stack policies: every database StatefulSet's pods are covered by a NetworkPolicy
 * that restricts ingress and by a PodDisruptionBudget. They see the resources' outputs after the
 * provider ran; during a preview some are unknown.
 */
import * as k8s from '@pulumi/kubernetes';
import type * as pulumi from '@pulumi/pulumi';
import type { PolicyResource, StackValidationPolicy } from '@pulumi/policy';
import { selects } from './label-selector.ts';
import { isDatabaseObject, subject } from './scope.ts';

export { selects };

type StatefulSetProps = pulumi.Unwrap<k8s.apps.v1.StatefulSetArgs>;
type NetworkPolicyProps = pulumi.Unwrap<k8s.networking.v1.NetworkPolicyArgs>;
type PodDisruptionBudgetProps = pulumi.Unwrap<k8s.policy.v1.PodDisruptionBudgetArgs>;

interface DatabasePods {
  resource: PolicyResource;
  who: string;
  namespace?: string;
  podLabels: Record<string, string>;
}

function databaseStatefulSets(resources: PolicyResource[]): DatabasePods[] {
  return resources
    .filter((resource) => resource.isType(k8s.apps.v1.StatefulSet))
    .map((resource) => ({ resource, props: resource.props as StatefulSetProps }))
    .filter(({ props }) => isDatabaseObject(props.metadata))
    .map(({ resource, props }) => ({
      resource,
      who: `${subject('StatefulSet', props.metadata, resource.name)}${props.metadata?.namespace ? ` in namespace ${props.metadata.namespace}` : ''}`,
      namespace: props.metadata?.namespace,
      podLabels: props.spec?.template?.metadata?.labels ?? {},
    }));
}

/** A NetworkPolicy restricts ingress when it lists Ingress in policyTypes, or lists none (the default). */
function restrictsIngress(policy: NetworkPolicyProps): boolean {
  const types = policy.spec?.policyTypes;
  return types === undefined || types.length === 0 || types.includes('Ingress');
}

export const networkPolicyCoverage: StackValidationPolicy = {
  name: 'database-network-policy',
  description: "Every database StatefulSet's pods are selected by a NetworkPolicy that restricts ingress.",
  enforcementLevel: 'advisory',
  validateStack: (args, reportViolation) => {
    const policies = args.resources
      .filter((resource) => resource.isType(k8s.networking.v1.NetworkPolicy))
      .map((resource) => resource.props as NetworkPolicyProps)
      .filter(restrictsIngress);
    for (const statefulSet of databaseStatefulSets(args.resources)) {
      const covered = policies.some((policy) => policy.metadata?.namespace === statefulSet.namespace && selects(policy.spec?.podSelector, statefulSet.podLabels));
      if (!covered) {
        reportViolation(`${statefulSet.who}: no NetworkPolicy restricting ingress selects its pods, so any pod in the cluster can connect to the engine`, statefulSet.resource.urn);
      }
    }
  },
};

export const podDisruptionBudgetCoverage: StackValidationPolicy = {
  name: 'database-pod-disruption-budget',
  description: "Every database StatefulSet's pods are selected by a PodDisruptionBudget.",
  enforcementLevel: 'advisory',
  validateStack: (args, reportViolation) => {
    const budgets = args.resources.filter((resource) => resource.isType(k8s.policy.v1.PodDisruptionBudget)).map((resource) => resource.props as PodDisruptionBudgetProps);
    for (const statefulSet of databaseStatefulSets(args.resources)) {
      const covered = budgets.some((budget) => budget.metadata?.namespace === statefulSet.namespace && selects(budget.spec?.selector, statefulSet.podLabels));
      if (!covered) {
        reportViolation(`${statefulSet.who}: no PodDisruptionBudget selects its pods, so voluntary disruptions such as node drains are not limited`, statefulSet.resource.urn);
      }
    }
  },
};
