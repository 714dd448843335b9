/**
 * Allixios database layer: `pulumi up` deploys PostgreSQL, MongoDB, Redis, Elasticsearch and
 * ClickHouse on the target the stack's config names (Docker for `dev`, Kubernetes elsewhere).
 * See README.md for the config keys.
 */
import { deployDatabases, loadStackConfig } from './stacks/program.ts';

const outputs = deployDatabases(loadStackConfig());

// Named after the variables the platform reads; secret, since they carry passwords.
export const DATABASE_URL = outputs.urls.DATABASE_URL;
export const MONGODB_URL = outputs.urls.MONGODB_URL;
export const REDIS_URL = outputs.urls.REDIS_URL;
export const ELASTICSEARCH_URL = outputs.urls.ELASTICSEARCH_URL;
export const CLICKHOUSE_URL = outputs.urls.CLICKHOUSE_URL;
/** The bootstrap's connections (schema owner / admin users), secret. */
export const bootstrapUrls = outputs.bootstrapUrls;
/** Dev: the same application URLs through the ports published on 127.0.0.1, secret. */
export const hostUrls = outputs.hostUrls;
export const endpoints = outputs.endpoints;
/** The bootstrap run of this deployment; a failed run fails `pulumi up` with its output. */
export const bootstrap = outputs.bootstrap;
