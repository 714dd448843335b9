/** What a target gives back for each engine, whatever the target. */
import type * as pulumi from '@pulumi/pulumi';
import type { EngineName } from '../databases/engine.ts';

export interface EngineEndpoint {
  /** Host name inside the Docker network or the cluster. */
  host: pulumi.Output<string>;
  port: number;
  /** The variable the platform reads the URL from (`DATABASE_URL`, ...). */
  urlVariable: string;
  /** The application's connection URL (secret). */
  url: pulumi.Output<string>;
  /** The bootstrap's connection URL: owner, admin or superuser (secret). */
  adminUrl: pulumi.Output<string>;
  /**
   * The application's read-only URL, for an engine with read replicas (`readUrlVariable`): the
   * replicas' Service, or the primary's where there are none (secret).
   */
  readUrl?: { variable: string; url: pulumi.Output<string> };
  /** The application's URL through the published port on 127.0.0.1, when there is one (secret). */
  hostUrl?: pulumi.Output<string>;
  /**
   * Settings for the engine's clients besides its URLs, by variable (not secret): a companion's
   * addresses and names (Redis: `REDIS_SENTINELS`, `REDIS_MASTER_NAME`). Kubernetes only.
   */
  settings?: Record<string, pulumi.Output<string>>;
  /** Variables the bootstrap gets besides the URL: the engine's secret files it compares (secret). */
  bootstrapEnv: Record<string, pulumi.Output<string>>;
}

/** The stack's enabled engines by name. */
export type Endpoints = Record<EngineName, EngineEndpoint>;
