/**
 * The advisory at-rest policy: in the protected stacks (`prod`), every database volume claim uses a
 * StorageClass the stack config vouches for as encrypting its volumes
 * (`allixios:encryptedStorageClasses`). The program encrypts nothing itself; the StorageClass's
 * provisioner does (README "Encryption at rest").
 *
 * How the list reaches the pack: a policy sees resources, the stack's name and its own policy
 * config, not the stack's config (`@pulumi/policy` 1.21's server keeps only the tags of the CLI's
 * ConfigureStack call). So the program writes the list on each database StatefulSet as the
 * annotation {@link ENCRYPTED_STORAGE_CLASSES_ANNOTATION}, as it writes the part-of label the pack
 * scopes by. A claim's StorageClass is read as Kubernetes reads it: the beta annotation
 * `volume.beta.kubernetes.io/storage-class` first, then `spec.storageClassName`; neither means the
 * cluster's default class, which the list cannot vouch for (it names classes, and which one is the
 * default is the cluster's to change).
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ResourceValidationPolicy } from '@pulumi/policy';
import { isDatabaseObject, NOT_A_DATABASE, PROTECTED_STACKS_SCHEMA, protectedStackOf, subject } from './scope.ts';

/** Must equal `ENCRYPTED_STORAGE_CLASSES_ANNOTATION` in `stacks/labels.ts` (a test holds them together). */
export const ENCRYPTED_STORAGE_CLASSES_ANNOTATION = 'allixios.io/encrypted-storage-classes';
/** The stack config key the list comes from, named in every report. */
export const ENCRYPTED_STORAGE_CLASSES_KEY = 'allixios:encryptedStorageClasses';
/** The deprecated annotation Kubernetes still honours before `spec.storageClassName`. */
export const BETA_STORAGE_CLASS_ANNOTATION = 'volume.beta.kubernetes.io/storage-class';

type ObjectMeta = pulumi.Unwrap<k8s.types.input.meta.v1.ObjectMeta>;
type Claim = pulumi.Unwrap<k8s.types.input.core.v1.PersistentVolumeClaim>;

/** The StorageClasses an object's annotation lists, comma-separated; none without the annotation. */
export function encryptedStorageClasses(metadata: ObjectMeta | undefined): string[] {
  const value = metadata?.annotations?.[ENCRYPTED_STORAGE_CLASSES_ANNOTATION] ?? '';
  return value
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
}

/**
 * The StorageClass a claim gets, as Kubernetes decides it (`GetPersistentVolumeClaimClass`): the
 * beta annotation, then `spec.storageClassName`; undefined when neither is set, which the
 * DefaultStorageClass admission plugin turns into the cluster's default class. An empty string
 * means no class: the claim binds only to a pre-provisioned volume without one.
 */
export function claimStorageClass(claim: Claim): string | undefined {
  const annotated = claim.metadata?.annotations?.[BETA_STORAGE_CLASS_ANNOTATION];
  if (annotated !== undefined) return annotated;
  return claim.spec?.storageClassName ?? undefined;
}

function describeStorageClass(storageClass: string | undefined): string {
  if (storageClass === undefined) return 'the cluster default StorageClass (it names none)';
  if (storageClass === '') return 'no StorageClass (storageClassName "", a pre-provisioned volume)';
  return `StorageClass "${storageClass}"`;
}

/**
 * In the protected stacks (`prod` unless configured), every database volume claim (a StatefulSet's
 * `volumeClaimTemplates`, or a PersistentVolumeClaim) uses a StorageClass listed in
 * `allixios:encryptedStorageClasses`. Advisory: whether a class encrypts is the operator's word,
 * which the pack cannot check against the cluster.
 *
 * @param currentStack the stack being deployed; the Pulumi CLI gives policy packs the stack's name.
 */
export function encryptedVolumeClaims(currentStack: () => string = () => pulumi.getStack()): ResourceValidationPolicy {
  return {
    name: 'database-storage-encrypted',
    description: `In protected stacks (prod), database volume claims use a StorageClass listed as encrypting in ${ENCRYPTED_STORAGE_CLASSES_KEY}.`,
    enforcementLevel: 'advisory',
    configSchema: PROTECTED_STACKS_SCHEMA,
    validateResource: (args, reportViolation) => {
      const statefulSet = args.asType(k8s.apps.v1.StatefulSet);
      const claim = args.asType(k8s.core.v1.PersistentVolumeClaim);
      if (!statefulSet && !claim) return args.notApplicable('not a StatefulSet or a PersistentVolumeClaim');
      const metadata = statefulSet ? statefulSet.metadata : claim?.metadata;
      if (!isDatabaseObject(metadata)) return args.notApplicable(NOT_A_DATABASE);
      const stack = protectedStackOf(args, currentStack);
      if (stack === undefined) return args.notApplicable(`stack ${currentStack()} is not a protected stack`);

      const listed = encryptedStorageClasses(metadata);
      const engine = metadata?.labels?.['app.kubernetes.io/name'] ?? '<engine>';
      const claims: { who: string; claim: Claim; remedy: string }[] = statefulSet
        ? (statefulSet.spec?.volumeClaimTemplates ?? []).map((template, index) => ({
            who: `${subject('StatefulSet', metadata, args.name)}: volume claim template "${template.metadata?.name ?? index}"`,
            claim: template,
            remedy: `set allixios:engines.${engine}.storageClass to a StorageClass that encrypts its volumes`,
          }))
        : [{ who: subject('PersistentVolumeClaim', metadata, args.name), claim: claim!, remedy: 'give it a StorageClass that encrypts its volumes' }];
      for (const { who, claim: each, remedy } of claims) {
        const storageClass = claimStorageClass(each);
        if (storageClass !== undefined && storageClass !== '' && listed.includes(storageClass)) continue;
        reportViolation(
          `${who} uses ${describeStorageClass(storageClass)}, which ${ENCRYPTED_STORAGE_CLASSES_KEY} does not list as encrypting; ` +
            `stack ${stack} keeps its data encrypted at rest: ${remedy} and list it in ${ENCRYPTED_STORAGE_CLASSES_KEY} (README "Encryption at rest")`,
        );
      }
    },
  };
}
