/**
 * The policies of the Allixios database layer, as plain objects so tests can call their
 * validators directly; `index.ts` puts them into a PolicyPack. This module assembles the pack's
 * list and re-exports the public symbols, so importers (the tests) need this one module:
 *
 * - `scope.ts`: which resources are the database layer's (the part-of label, workloads, containers);
 * - `secrets.ts`: what looks like a secret (names, literal credentials in config files);
 * - `workload-policies.ts`: the mandatory per-resource policies;
 * - `storage-policies.ts`: the advisory at-rest policy (volume claims on StorageClasses listed as encrypting);
 * - `stack-policies.ts`: the stack policies (NetworkPolicy and PodDisruptionBudget coverage, advisory;
 *   TLS in prod, mandatory).
 */
import type { PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy } from '@pulumi/policy';
import { databaseTls, networkPolicyCoverage, podDisruptionBudgetCoverage } from './stack-policies.ts';
import { encryptedVolumeClaims } from './storage-policies.ts';
import {
  containerNonRoot,
  containerProbes,
  containerResources,
  noExposedDatabaseServices,
  noSecretEnvValues,
  noSecretsInConfigMaps,
  pinnedImages,
  prodDataProtected,
  statefulSetVolumeClaims,
} from './workload-policies.ts';

export type { PolicyResource, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationPolicy };
export { DEFAULT_PROTECTED_STACKS, PART_OF, PART_OF_LABEL, type ProtectedStacksConfig } from './scope.ts';
export { literalCredentials, looksLikeSecretName, looksLikeSecretVariable } from './secrets.ts';
export { CERTIFICATE_TYPE, databaseTls, DEFAULT_TLS_STACKS, networkPolicyCoverage, podDisruptionBudgetCoverage, selects, type TlsConfig } from './stack-policies.ts';
export {
  BETA_STORAGE_CLASS_ANNOTATION,
  claimStorageClass,
  ENCRYPTED_STORAGE_CLASSES_ANNOTATION,
  ENCRYPTED_STORAGE_CLASSES_KEY,
  encryptedStorageClasses,
  encryptedVolumeClaims,
} from './storage-policies.ts';
export {
  containerNonRoot,
  containerProbes,
  containerResources,
  noExposedDatabaseServices,
  noSecretEnvValues,
  noSecretsInConfigMaps,
  pinnedImages,
  prodDataProtected,
  statefulSetVolumeClaims,
  unpinnedImage,
  type DataProtectionConfig,
} from './workload-policies.ts';

/** Every policy of the pack, in the order the CLI reports them. */
export function databasePolicies(options: { currentStack?: () => string } = {}): (ResourceValidationPolicy | StackValidationPolicy)[] {
  return [
    noExposedDatabaseServices,
    containerResources,
    containerProbes,
    containerNonRoot,
    noSecretEnvValues,
    noSecretsInConfigMaps,
    statefulSetVolumeClaims,
    prodDataProtected(options.currentStack),
    pinnedImages,
    databaseTls(options.currentStack),
    encryptedVolumeClaims(options.currentStack),
    networkPolicyCoverage,
    podDisruptionBudgetCoverage,
  ];
}
