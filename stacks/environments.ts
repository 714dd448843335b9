/**
 * What each deployment profile means when the stack config does not say otherwise. Engine sizes
 * per profile live with the engines (`databases/<engine>/index.ts`); these are the stack-wide ones.
 */
import type { Environment } from '../databases/engine.ts';

export type Target = 'docker' | 'kubernetes';
export type PvcRetention = 'Retain' | 'Delete';

export interface EnvironmentProfile {
  target: Target;
  /** Publish each engine's client port on 127.0.0.1 (Docker target only). */
  exposeHostPorts: boolean;
  /** `protect` and `retainOnDelete` on data volumes: a destroy never takes the data with it. */
  protectData: boolean;
  /**
   * StatefulSet `persistentVolumeClaimRetentionPolicy`: whether the data volumes outlive the
   * StatefulSet (`whenDeleted`) and a scale-down (`whenScaled`).
   */
  pvcRetention: { whenDeleted: PvcRetention; whenScaled: PvcRetention };
}

export const ENVIRONMENT_PROFILES: Readonly<Record<Environment, EnvironmentProfile>> = {
  dev: {
    target: 'docker',
    exposeHostPorts: true,
    protectData: false,
    pvcRetention: { whenDeleted: 'Delete', whenScaled: 'Delete' },
  },
  // Test stacks must leave nothing behind when torn down.
  ephemeral: {
    target: 'kubernetes',
    exposeHostPorts: false,
    protectData: false,
    pvcRetention: { whenDeleted: 'Delete', whenScaled: 'Delete' },
  },
  // Staging data is rebuilt from fixtures, but a mistaken delete of the StatefulSet should not
  // lose it before someone notices.
  staging: {
    target: 'kubernetes',
    exposeHostPorts: false,
    protectData: false,
    pvcRetention: { whenDeleted: 'Retain', whenScaled: 'Retain' },
  },
  prod: {
    target: 'kubernetes',
    exposeHostPorts: false,
    protectData: true,
    pvcRetention: { whenDeleted: 'Retain', whenScaled: 'Retain' },
  },
};
