/**
 * Elasticsearch's bootstrap side: the definitions of `databases/elasticsearch/` for the run's
 * environment and the pure planner (`elasticsearch-plan.ts`). The adapter
 * (`elasticsearch-adapter.ts`, with @elastic/elasticsearch, the slowest driver to load) is loaded
 * only when a run connects.
 */
import { ENVIRONMENTS, type Environment } from '../../databases/engine.ts';
import { elasticsearchAssets } from '../../databases/elasticsearch/definitions.ts';
import { BACKUP_SETTINGS_VARIABLE, parseBackupSettings, REPOSITORY, SLM_POLICY, slmPolicy, snapshotRepository } from '../../databases/elasticsearch/backup.ts';
import { elasticsearch } from '../../databases/elasticsearch/index.ts';
import { engineIdentity, requireUrl, type BootstrapEngine } from '../contract.ts';
import { BootstrapError } from '../errors.ts';
import { planElasticsearch, type DesiredBackup, type ElasticsearchDesired, type ElasticsearchObserved, type ElasticsearchPayload } from './elasticsearch-plan.ts';

/** The variable naming the environment whose settings (shards, replicas, refresh, retention) apply. */
export const ENVIRONMENT_VARIABLE = 'ALLIXIOS_ENVIRONMENT';

/** Where each definition lives, for change sources and refusals (paths relative to the repository). */
const DEFINITIONS = 'databases/elasticsearch/definitions.ts';
const INDEX_SOURCES: Readonly<Record<string, string>> = { articles: 'databases/elasticsearch/mappings/articles.ts' };
const TEMPLATE_SOURCES: Readonly<Record<string, string>> = { 'search-analytics': 'databases/elasticsearch/mappings/search-analytics.ts' };

/** The environment from ALLIXIOS_ENVIRONMENT; `dev` when unset, an error when it names none. */
export function environmentFrom(env: Readonly<Record<string, string | undefined>>): { environment: Environment; from: string } {
  const value = env[ENVIRONMENT_VARIABLE];
  if (value === undefined || value === '') return { environment: 'dev', from: `${ENVIRONMENT_VARIABLE} unset` };
  if (!(ENVIRONMENTS as readonly string[]).includes(value)) {
    throw new Error(`${ENVIRONMENT_VARIABLE}: expected one of ${ENVIRONMENTS.join(', ')}, got "${value}"`);
  }
  return { environment: value as Environment, from: `${ENVIRONMENT_VARIABLE}=${value}` };
}

/** Where the repository and the policy are defined. */
const BACKUP_SOURCE = 'databases/elasticsearch/backup.ts';

/**
 * The snapshot repository and policy the stack wants, from `ALLIXIOS_BACKUP_ELASTICSEARCH` (set by
 * the stack's bootstrap Job when it backs up; see `backupSettingsValue`); none when unset. A
 * malformed value fails the run, naming the variable, the key and what it holds.
 */
export function desiredBackup(env: Readonly<Record<string, string | undefined>>): DesiredBackup | undefined {
  let settings;
  try {
    settings = parseBackupSettings(env[BACKUP_SETTINGS_VARIABLE]);
  } catch (error) {
    throw new BootstrapError(elasticsearch.name, (error as Error).message, { location: { file: BACKUP_SOURCE }, cause: error });
  }
  if (!settings) return undefined;
  return {
    repository: { name: REPOSITORY, definition: snapshotRepository(settings) },
    policy: { id: SLM_POLICY, definition: slmPolicy(settings) },
    source: BACKUP_SOURCE,
    from: `${BACKUP_SETTINGS_VARIABLE}: schedule ${settings.schedule}, retention ${settings.retention.count} snapshots / ${settings.retention.days} days`,
  };
}

/** The desired state of the cluster for one environment, from the definitions (and the stack's backups, when it has them). */
export function elasticsearchDesired(environment: Environment, from = `environment ${environment}`, backup?: DesiredBackup): ElasticsearchDesired {
  const assets = elasticsearchAssets(environment);
  return {
    environment,
    environmentFrom: from,
    indices: assets.indices.map((definition) => ({
      alias: definition.alias,
      version: definition.version,
      index: definition.index,
      settings: definition.settings(environment),
      mappings: definition.mappings,
      source: INDEX_SOURCES[definition.alias] ?? DEFINITIONS,
      versionSource: DEFINITIONS,
    })),
    templates: assets.indexTemplates.map((request) => ({ request, source: TEMPLATE_SOURCES[request.name] ?? DEFINITIONS })),
    ...(backup ? { backup } : {}),
  };
}

/** What the adapter reads: the names the desired state uses. */
export function watchedNames(desired: ElasticsearchDesired): { aliases: string[]; templates: string[]; backup: { repository: string; policy: string } } {
  return {
    aliases: desired.indices.map((index) => index.alias),
    templates: desired.templates.map((template) => template.request.name),
    // Always: with backups off, a policy of ours left on the cluster is found and deleted.
    backup: { repository: REPOSITORY, policy: SLM_POLICY },
  };
}

/** The engine as the runner sees it; the environment is read once per run from the run's env. */
export const elasticsearchEngine: BootstrapEngine<ElasticsearchDesired, ElasticsearchObserved, ElasticsearchPayload> = {
  ...engineIdentity(elasticsearch),
  // The definitions are TypeScript (`databases/elasticsearch/`), typed with the client's own types.
  desired: (env) => {
    const { environment, from } = environmentFrom(env);
    return elasticsearchDesired(environment, from, desiredBackup(env));
  },
  plan: planElasticsearch,
  createAdapter: async (url, options) => {
    const admin = requireUrl(elasticsearch, url);
    const { ElasticsearchAdapter } = await import('./elasticsearch-adapter.ts');
    // Names do not depend on the environment: observe what the definitions name in any of them.
    return new ElasticsearchAdapter(admin, { ...options, watch: watchedNames(elasticsearchDesired('dev')) });
  },
  embedded: {
    unavailable:
      'no Elasticsearch server can run here (no Debian package; npm packages download it at run time). npm test checks its mappings and plans; set ELASTICSEARCH_URL to run the bootstrap tests against a server',
  },
};
