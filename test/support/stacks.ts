/**
 * Stack config the tests build inline. A Kubernetes stack in staging or prod must pin PostgreSQL's
 * project image (`allixios:engines.postgresql.image`: PostgreSQL under Patroni with PgBouncer,
 * built from databases/postgresql/image/Dockerfile), as Pulumi.staging.yaml and Pulumi.prod.yaml do.
 */

/** The project's PostgreSQL image, the tag Pulumi.staging.yaml and Pulumi.prod.yaml pin. */
export const POSTGRESQL_IMAGE = 'ghcr.io/allixios/allixios-postgresql:18.4-1';

type Engines = Record<string, Record<string, unknown>>;

/**
 * `allixios:engines` for a staging or prod Kubernetes stack: `engines` with PostgreSQL pinned to
 * {@link POSTGRESQL_IMAGE} (PostgreSQL's own settings in `engines` are kept beside the pin).
 */
export function withPostgresqlImage(engines: Engines = {}): Engines {
  return { ...engines, postgresql: { image: POSTGRESQL_IMAGE, ...engines.postgresql } };
}

/**
 * `allixios:backups` for a prod stack, which requires it: the object store Pulumi.prod.yaml names
 * (the access key pair in a Secret of the namespace the program only names).
 */
export const PROD_BACKUPS = {
  objectStore: { bucket: 'allixios-prod-backups', region: 'eu-west-1', credentials: { secretName: 'allixios-backup-s3' } },
} as const;
