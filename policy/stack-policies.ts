/**
 * The stack policies, which look at several resources together: the advisory ones (every database
 * StatefulSet's pods are covered by a NetworkPolicy that restricts ingress and by a
 * PodDisruptionBudget) and the mandatory TLS one (in prod, every database container mounts a
 * cert-manager certificate). They see the resources' outputs after the provider ran;
 * during a preview some are unknown.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { PolicyResource, StackValidationPolicy } from '@pulumi/policy';
import { selects } from './label-selector.ts';
import { isDatabaseObject, runningContainers, subject } from './scope.ts';

export { selects };

type StatefulSetProps = pulumi.Unwrap<k8s.apps.v1.StatefulSetArgs>;
type NetworkPolicyProps = pulumi.Unwrap<k8s.networking.v1.NetworkPolicyArgs>;
type PodDisruptionBudgetProps = pulumi.Unwrap<k8s.policy.v1.PodDisruptionBudgetArgs>;
type ServiceProps = pulumi.Unwrap<k8s.core.v1.ServiceArgs>;

interface DatabasePods {
  resource: PolicyResource;
  who: string;
  namespace?: string;
  podLabels: Record<string, string>;
  pod?: pulumi.Unwrap<k8s.types.input.core.v1.PodSpec>;
  /** A StatefulSet's governing (headless) Service; none for the other kinds. */
  serviceName?: string;
}

/** The long-running workloads that may run a database, by their resource types. */
const WORKLOAD_KINDS = [
  ['StatefulSet', 'kubernetes:apps/v1:StatefulSet'],
  ['Deployment', 'kubernetes:apps/v1:Deployment'],
  ['ReplicaSet', 'kubernetes:apps/v1:ReplicaSet'],
] as const;

/** The database workloads among `resources` of the given kinds (StatefulSets unless told). */
function databaseWorkloads(resources: PolicyResource[], kinds: readonly (typeof WORKLOAD_KINDS)[number][0][] = ['StatefulSet']): DatabasePods[] {
  return resources.flatMap((resource) => {
    const kind = WORKLOAD_KINDS.find(([name, type]) => kinds.includes(name) && resource.type === type)?.[0];
    if (!kind) return [];
    const props = resource.props as StatefulSetProps;
    if (!isDatabaseObject(props.metadata)) return [];
    return [
      {
        resource,
        who: `${subject(kind, props.metadata, resource.name)}${props.metadata?.namespace ? ` in namespace ${props.metadata.namespace}` : ''}`,
        namespace: props.metadata?.namespace,
        podLabels: props.spec?.template?.metadata?.labels ?? {},
        pod: props.spec?.template?.spec,
        ...(kind === 'StatefulSet' && props.spec?.serviceName ? { serviceName: props.spec.serviceName } : {}),
      },
    ];
  });
}

const databaseStatefulSets = (resources: PolicyResource[]) => databaseWorkloads(resources);

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

// ---------------------------------------------------------------------------------------------
// TLS in transit.

/** The resource type of a cert-manager Certificate as the Kubernetes provider registers it. */
export const CERTIFICATE_TYPE = 'kubernetes:cert-manager.io/v1:Certificate';

/** Stacks whose engines must serve TLS, unless the policy config says otherwise. */
export const DEFAULT_TLS_STACKS: readonly string[] = ['prod'];

export interface TlsConfig {
  /** Stacks in which every database container must mount a certificate. */
  tlsStacks?: string[];
}

interface CertificateProps {
  metadata?: { name?: string; namespace?: string };
  spec?: { secretName?: string; dnsNames?: string[] };
}

type Volume = pulumi.Unwrap<k8s.types.input.core.v1.Volume>;

/** The keys of a Certificate's Secret an engine serves TLS with (cert-manager writes them). */
const SERVED_KEYS = ['tls.crt', 'tls.key'];

/**
 * Why a volume of a Certificate's Secret does not give the engine its certificate, or undefined:
 * `items` that leave out the certificate or the key (a CA-only mount), or `optional`, with which
 * the pod starts without the files while the Secret does not exist (a Certificate never issued).
 */
function incompleteCertificateVolume(volume: Volume): string | undefined {
  const secret = volume.secret!;
  const where = `its volume "${volume.name}" (Secret ${secret.secretName})`;
  if (secret.optional) return `${where} is optional: the pod starts without the certificate when the Secret is missing`;
  const keys = secret.items?.map((item) => item.key);
  const missing = keys ? SERVED_KEYS.filter((key) => !keys.includes(key)) : [];
  if (missing.length > 0) return `${where} leaves out ${missing.join(', ')} (items): the engine cannot serve TLS without them`;
  return undefined;
}

/**
 * In the TLS stacks (prod), every running container of a database workload mounts, as a volume,
 * the Secret of a cert-manager Certificate in the workload's namespace that names the Service its
 * clients connect to: a StatefulSet's headless Service (`serviceName`); for a Deployment or
 * ReplicaSet (a connection pooler), a Service in its namespace whose selector selects its pods.
 * Whole (no `subPath`), with its certificate and key (`items`, if any, keep
 * `tls.crt` and `tls.key`), and not `optional`: the policy cannot read an engine's settings, but an engine serving TLS has its
 * certificate mounted, and one without a mounted certificate cannot be serving it. That the
 * engine then serves TLS only is each engine's own test (see `docs/tls-plan.md`).
 *
 * @param currentStack the stack being deployed; the Pulumi CLI gives policy packs the stack's name.
 */
export function databaseTls(currentStack: () => string = () => pulumi.getStack()): StackValidationPolicy {
  return {
    name: 'database-tls',
    description: 'In TLS stacks (prod), every database container mounts the Secret of a cert-manager Certificate that names its Service.',
    enforcementLevel: 'mandatory',
    configSchema: {
      properties: {
        tlsStacks: { type: 'array', items: { type: 'string' }, default: [...DEFAULT_TLS_STACKS] },
      },
    },
    validateStack: (args, reportViolation) => {
      const stack = currentStack();
      if (!(args.getConfig<TlsConfig>().tlsStacks ?? DEFAULT_TLS_STACKS).includes(stack)) return args.notApplicable(`stack ${stack} is not a TLS stack`);
      const certificates = args.resources.filter((resource) => resource.type === CERTIFICATE_TYPE).map((resource) => resource.props as CertificateProps);
      const services = args.resources.filter((resource) => resource.isType(k8s.core.v1.Service)).map((resource) => resource.props as ServiceProps);
      // StatefulSets, and the other kinds that could run a database with a pod template of their own.
      for (const workload of databaseWorkloads(args.resources, ['StatefulSet', 'Deployment', 'ReplicaSet'])) {
        const { pod, namespace, serviceName } = workload;
        const issued = certificates.filter((certificate) => certificate.metadata?.namespace === namespace && certificate.spec?.secretName);
        // Pod volumes holding a Certificate's Secret, by volume name, with what keeps one from
        // giving the engine its certificate.
        const certificateVolumes = new Map(
          (pod?.volumes ?? []).flatMap((volume) => {
            const certificate = issued.find((candidate) => candidate.spec!.secretName === volume.secret?.secretName);
            return certificate ? [[volume.name, { certificate, incomplete: incompleteCertificateVolume(volume), secretName: volume.secret!.secretName }] as const] : [];
          }),
        );
        // Every running container, not only those declaring ports: a container port declaration is
        // informational, and a container without one still listens where its engine does.
        for (const container of runningContainers(pod)) {
          const reasons: string[] = [];
          let mounted: CertificateProps | undefined;
          for (const mount of container.volumeMounts ?? []) {
            const volume = certificateVolumes.get(mount.name);
            if (!volume) continue;
            // A subPath mount is one file of the Secret, which the kubelet never refreshes.
            if (mount.subPath || mount.subPathExpr)
              reasons.push(`it mounts volume "${mount.name}" (Secret ${volume.secretName}) with subPath: one file, never refreshed when the certificate is renewed`);
            else if (volume.incomplete) reasons.push(volume.incomplete);
            else mounted ??= volume.certificate;
          }
          if (!mounted) {
            reportViolation(
              `${workload.who}: container "${container.name}" runs without a certificate: it mounts no Secret of a cert-manager Certificate in namespace ${namespace ?? '(none)'}; stack ${stack} requires TLS (allixios:tls)${reasons.map((reason) => `; ${reason}`).join('')}`,
              workload.resource.urn,
            );
            continue;
          }
          // The name clients verify is a Service's: a StatefulSet's governing one, or those that
          // select a Deployment's pods. Without one, or without a namespace, nothing says the
          // certificate is the right one.
          const serviceNames = serviceName
            ? [serviceName]
            : services
                .filter((service) => service.metadata?.namespace === namespace && service.spec?.selector && Object.keys(service.spec.selector).length > 0)
                .filter((service) => selects({ matchLabels: service.spec!.selector! }, workload.podLabels))
                .map((service) => service.metadata?.name)
                .filter((name): name is string => name !== undefined);
          if (serviceNames.length === 0 || !namespace) {
            const missing = !namespace
              ? 'namespace'
              : workload.resource.type === WORKLOAD_KINDS[0][1]
                ? 'headless Service (a StatefulSet with serviceName)'
                : 'Service selecting its pods';
            reportViolation(
              `${workload.who}: names no ${missing}, so whether the Certificate "${mounted.metadata?.name}" names what clients connect to cannot be checked; run a database as a StatefulSet with its serviceName and namespace, or give a pooler a Service`,
              workload.resource.urn,
            );
          } else if (!serviceNames.some((name) => (mounted.spec?.dnsNames ?? []).includes(`${name}.${namespace}.svc`))) {
            const named = serviceNames.map((name) => `${name}.${namespace}.svc`).join(' or ');
            reportViolation(
              `${workload.who}: the Certificate "${mounted.metadata?.name}" it mounts does not name its Service ${named}, so clients that verify the host name refuse it`,
              workload.resource.urn,
            );
          }
        }
      }
    },
  };
}
