/**
 * Allixios database layer: `pulumi up` deploys the engines of `databases/index.ts` (PostgreSQL,
 * MongoDB, Redis, Elasticsearch, ClickHouse) on the target the stack's config names (Docker for
 * `dev`, Kubernetes elsewhere). See README.md for the config keys.
 */
import { deployDatabases, loadStackConfig } from './stacks/program.ts';

const outputs = deployDatabases(loadStackConfig());

/**
 * The stack outputs, one object so that they follow the engines the stack enables: each
 * engine's application URL under the variable the platform reads it from (`DATABASE_URL`,
 * `MONGODB_URL`, ...), secret since it carries a password; `bootstrapUrls`, the bootstrap's
 * connections (schema owner / admin users), secret; `hostUrls` (dev), the application URLs
 * through the ports published on 127.0.0.1, secret; `endpoints`; and `bootstrap`, the bootstrap
 * run of this deployment, whose failure fails `pulumi up` with its output; `tlsCaBundle`, on a
 * TLS stack, the CA certificates (PEM, not secret) clients verify the engines with; beside the
 * URLs, the clients' other settings (`REDIS_SENTINELS`, `REDIS_MASTER_NAME`: Redis under Sentinel);
 * `backupBucket`, on a stack that backs up, the access policy and lifecycle rules its bucket needs.
 */
export default {
  ...outputs.urls,
  ...outputs.settings,
  bootstrapUrls: outputs.bootstrapUrls,
  hostUrls: outputs.hostUrls,
  endpoints: outputs.endpoints,
  ...(outputs.bootstrap ? { bootstrap: outputs.bootstrap } : {}),
  ...(outputs.tlsCaBundle ? { tlsCaBundle: outputs.tlsCaBundle } : {}),
  ...(outputs.backupBucket ? { backupBucket: outputs.backupBucket } : {}),
};
