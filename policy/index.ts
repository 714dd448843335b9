/**
 * The Allixios database policy pack: `pulumi preview --policy-pack policy` (from the repository
 * root) runs it against the stack being deployed. The policies live in `workload-policies.ts` and
 * `stack-policies.ts`, listed by `policies.ts`, through which the tests call them directly; creating
 * the PolicyPack starts the analyzer server the CLI talks to, so nothing but the CLI's policy runner
 * imports this file.
 */
import { PolicyPack } from '@pulumi/policy';
import { databasePolicies } from './policies.ts';

new PolicyPack('allixios-databases', {
  description: 'Security, secrets, data protection and availability rules for the Allixios databases.',
  enforcementLevel: 'mandatory',
  policies: databasePolicies(),
});
