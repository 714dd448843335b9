/**
 * The Elasticsearch bootstrap's planner: a pure function from the desired state (the typed
 * definitions of `databases/elasticsearch/`) and what the cluster has (read by the adapter) to
 * the changes, the subjects already as defined, and the refusals.
 *
 * A versioned index lives behind its alias (`articles` → `articles_v1`):
 * - neither alias nor index: create `<alias>_v<version>` with its settings, mappings and the alias
 *   in one create-index request;
 * - the alias on the desired version: compare mapping and settings; additive mapping changes and
 *   dynamic settings (replicas, refresh) are applied in place, anything else is refused with the
 *   instruction to bump the version;
 * - the alias on an older version: create the new version, reindex into it and move the alias in
 *   one `_aliases` call (a single `replace` change); the old index stays;
 * - the alias on a newer version: refused, the cluster is ahead of the code.
 * Index templates are put whenever the parts that matter differ from the cluster's copy.
 *
 * How the cluster spells a mapping, settings or a template, and what differs, is
 * `elasticsearch-compare.ts`'s; this file decides what to do about it.
 */
import type { estypes } from '@elastic/elasticsearch';
import type { Environment } from '../../databases/engine.ts';
import { classifyMappingChange, nextIndexName, parseIndexVersion } from '../../databases/elasticsearch/definitions.ts';
import type { Change, Flags, Plan } from '../contract.ts';
import { sameValue } from '../canonical-json.ts';
import { comparableMapping, compareIndexSettings, compareTemplate, show } from './elasticsearch-compare.ts';

// ---------------------------------------------------------------------------------------------
// What the planner compares

/** One versioned index as the bootstrap wants it, for one environment. */
export interface DesiredIndex {
  alias: string;
  version: number;
  /** `<alias>_v<version>`. */
  index: string;
  settings: estypes.IndicesIndexSettingsKeys;
  mappings: estypes.MappingTypeMapping;
  /** Where the mappings and settings are defined (a path relative to the repository). */
  source: string;
  /** Where `version` is defined, named by the refusal that asks to bump it. */
  versionSource: string;
}

export interface DesiredTemplate {
  request: estypes.IndicesPutIndexTemplateRequest;
  source: string;
}

export interface ElasticsearchDesired {
  environment: Environment;
  /** How the environment was chosen, for the change details: `ALLIXIOS_ENVIRONMENT=prod`. */
  environmentFrom: string;
  indices: DesiredIndex[];
  templates: DesiredTemplate[];
  /**
   * The snapshot repository and lifecycle policy, when the stack backs up (`ALLIXIOS_BACKUP_ELASTICSEARCH`);
   * absent: the stack does not, and a policy of ours left on the cluster is deleted.
   */
  backup?: DesiredBackup;
}

/** The backups as cluster state (`databases/elasticsearch/backup.ts`). */
export interface DesiredBackup {
  repository: { name: string; definition: estypes.SnapshotS3Repository };
  policy: { id: string; definition: estypes.SlmPolicy };
  /** Where they are defined, and where their settings come from, for the change details. */
  source: string;
  from: string;
}

/** A concrete index as the cluster describes it. */
export interface ObservedIndex {
  /** As `GET <index>/_mapping` returns it. */
  mappings: estypes.MappingTypeMapping;
  /** As `GET <index>/_settings` returns them, flat (`index.number_of_shards: "1"`) or nested. */
  settings: Record<string, unknown>;
}

/** Everything the cluster has under one alias's names. */
export interface ObservedAliasedIndex {
  alias: string;
  /** The concrete indices the alias points at (normally exactly one). */
  aliasTargets: string[];
  /** No alias of that name, but an index or data stream: a write before the bootstrap created it. */
  nameTakenByIndex: boolean;
  /** The indices named `<alias>_v<N>`, whether or not the alias points at them. */
  versions: Record<string, ObservedIndex>;
}

/** A record of the ledger index: one change applied by a bootstrap. */
export interface LedgerRecord {
  subject: string;
  action: Change['action'];
  detail: string;
  /** ISO 8601. */
  appliedAt: string;
  appliedBy: string;
}

export interface ElasticsearchObserved {
  indices: ObservedAliasedIndex[];
  /** By name; null when the cluster has no template of that name. */
  templates: Record<string, estypes.IndicesIndexTemplate | null>;
  /**
   * The data streams each template has made so far, by template name, with their lifecycle
   * (`GET _data_stream/<pattern>/_lifecycle`): a template's lifecycle only reaches streams
   * created after it changes.
   */
  dataStreams?: Record<string, ObservedDataStream[]>;
  /** The latest record per subject. */
  ledger: LedgerRecord[];
  /** The backups' repository and policy (`GET _snapshot/<name>`, `GET _slm/policy/<id>`), null when missing; absent when not observed. */
  backup?: ObservedBackup;
}

export interface ObservedBackup {
  /** The names observed (the bootstrap's own, whether or not the stack backs up). */
  repositoryName: string;
  policyId: string;
  repository: { type: string; settings: Record<string, unknown> } | null;
  policy: estypes.SlmPolicy | null;
}

export interface ObservedDataStream {
  name: string;
  lifecycle?: { enabled?: boolean; data_retention?: string };
}

// ---------------------------------------------------------------------------------------------
// What the adapter is asked to do

export type ElasticsearchPayload =
  | {
      kind: 'create-index';
      alias: string;
      index: string;
      settings: estypes.IndicesIndexSettingsKeys;
      mappings: estypes.MappingTypeMapping;
      /** Delete an index of that name first (`--replace-indexes` on an index the alias misses). */
      deleteExisting: boolean;
    }
  | {
      kind: 'update-index';
      index: string;
      /** The whole desired mapping for `PUT <index>/_mapping`, when the mapping changed. */
      mappings?: estypes.MappingTypeMapping;
      /** Dynamic settings for `PUT <index>/_settings`; null resets one to its default. */
      settings?: estypes.IndicesIndexSettings;
    }
  | {
      kind: 'reindex';
      alias: string;
      from: string;
      to: string;
      settings: estypes.IndicesIndexSettingsKeys;
      mappings: estypes.MappingTypeMapping;
      /** Delete `to` first: what an interrupted earlier run left (`--replace-indexes`). */
      deleteExisting: boolean;
    }
  | { kind: 'put-template'; request: estypes.IndicesPutIndexTemplateRequest }
  /** `PUT _data_stream/<name>/_lifecycle`: an existing stream gets the template's retention. */
  | { kind: 'put-data-stream-lifecycle'; name: string; dataRetention: string }
  /** `PUT _snapshot/<name>?verify=true`: every node checks it can write to the repository. */
  | { kind: 'put-snapshot-repository'; name: string; repository: estypes.SnapshotS3Repository }
  | { kind: 'put-slm-policy'; id: string; policy: estypes.SlmPolicy }
  | { kind: 'delete-slm-policy'; id: string };

export type ElasticsearchChange = Change<ElasticsearchPayload>;
export type ElasticsearchPlan = Plan<ElasticsearchPayload>;

// ---------------------------------------------------------------------------------------------
// Versioned indices

interface Outcome {
  changes: ElasticsearchChange[];
  inSync: string[];
  refusals: string[];
}

const indexSubject = (index: string) => `index ${index}`;
const templateSubject = (name: string) => `index template ${name}`;

/** The subject with what the ledger says about it: when it last changed, and who changed it. */
function withHistory(subject: string, description: string, ledger: readonly LedgerRecord[]): string {
  const last = ledger.find((record) => record.subject === subject);
  return `${subject} (${description}${last ? `; last ${last.action} ${last.appliedAt} by ${last.appliedBy}` : ''})`;
}

function planIndex(desired: DesiredIndex, observed: ObservedAliasedIndex, flags: Flags, environmentNote: string, ledger: readonly LedgerRecord[]): Outcome {
  const outcome: Outcome = { changes: [], inSync: [], refusals: [] };
  const { alias, index, version, source } = desired;
  const subject = indexSubject(index);
  const bump = `bump \`version\` in ${desired.versionSource} to reindex into ${nextIndexName(alias, version + 1)}`;
  const create = (deleteExisting: boolean): ElasticsearchPayload => ({
    kind: 'create-index',
    alias,
    index,
    settings: desired.settings,
    mappings: desired.mappings,
    deleteExisting,
  });

  if (observed.aliasTargets.length === 0) {
    if (observed.nameTakenByIndex) {
      outcome.refusals.push(
        `alias ${alias}: ${alias} is an index (or data stream), not an alias; something wrote to it before the bootstrap created the alias. ` +
          `Reindex what it holds into ${index} after this run, or delete it (DELETE /${alias}), then run again`,
      );
      return outcome;
    }
    const strays = Object.keys(observed.versions).sort();
    if (strays.length === 0) {
      outcome.changes.push({ subject, action: 'create', detail: `missing: created with the alias ${alias}, ${environmentNote}`, source, payload: create(false) });
      return outcome;
    }
    if (flags.replaceIndexes && strays.length === 1 && strays[0] === index) {
      outcome.changes.push({
        subject,
        action: 'replace',
        detail: `${index} exists without the alias ${alias} (--replace-indexes): deleted and created again with the alias, empty, ${environmentNote}`,
        source,
        payload: create(true),
      });
      return outcome;
    }
    outcome.refusals.push(
      `alias ${alias}: missing, but ${strays.join(', ')} exist${strays.length === 1 ? 's' : ''}; point the alias at the one that is current ` +
        `(POST /_aliases {"actions":[{"add":{"index":"…","alias":"${alias}"}}]}) so the bootstrap continues from it, or delete ` +
        `${strays.length === 1 ? 'it' : 'them'} to start empty${strays.includes(index) ? ` (or run with --replace-indexes to recreate ${index} empty)` : ''}`,
    );
    return outcome;
  }

  if (observed.aliasTargets.length > 1) {
    outcome.refusals.push(
      `alias ${alias}: points at ${observed.aliasTargets.length} indices (${[...observed.aliasTargets].sort().join(', ')}), so reads would mix them and writes fail; ` +
        `remove it from all but the current one (POST /_aliases with remove actions), then run again`,
    );
    return outcome;
  }

  const current = observed.aliasTargets[0]!;
  const currentVersion = parseIndexVersion(alias, current);
  if (currentVersion === undefined) {
    outcome.refusals.push(
      `alias ${alias}: points at ${current}, which is not a version of it (${alias}_v<N>); reindex ${current} into ${index} and move the alias by hand, then run again`,
    );
    return outcome;
  }
  if (currentVersion > version) {
    outcome.refusals.push(
      `alias ${alias}: points at ${current}, version ${currentVersion}, but ${desired.versionSource} defines version ${version}: the cluster is ahead of this code ` +
        `(a newer release bootstrapped it); deploy that release, or move the alias back to ${index} by hand if this is a rollback`,
    );
    return outcome;
  }

  if (currentVersion < version) {
    const leftover = observed.versions[index] !== undefined;
    if (leftover && !flags.replaceIndexes) {
      outcome.refusals.push(
        `index ${index}: exists, but the alias ${alias} still points at ${current}: an earlier bootstrap stopped between creating it and moving the alias ` +
          `(or it was created by hand). Delete it (DELETE /${index}) or run with --replace-indexes to delete it and reindex again`,
      );
      return outcome;
    }
    outcome.changes.push({
      subject,
      action: 'replace',
      detail:
        `version ${currentVersion} → ${version}: ${leftover ? `delete the incomplete ${index}, ` : ''}create ${index} (${environmentNote}), reindex from ${current}, ` +
        `move the alias ${alias} from ${current} to ${index} in one _aliases call; ${current} is kept (delete it when no longer needed: DELETE /${current})`,
      source,
      payload: { kind: 'reindex', alias, from: current, to: index, settings: desired.settings, mappings: desired.mappings, deleteExisting: leftover },
    });
    return outcome;
  }

  // The alias is on the desired version: compare what it has.
  const live = observed.versions[current];
  if (!live) {
    outcome.refusals.push(`index ${current}: the alias ${alias} points at it, but its mapping could not be read`);
    return outcome;
  }
  const mapping = classifyMappingChange(comparableMapping(live.mappings), comparableMapping(desired.mappings));
  const settings = compareIndexSettings(desired.settings, live.settings);
  if (mapping.kind === 'breaking' || settings.fixed.length > 0) {
    const breaking = [...(mapping.kind === 'breaking' ? mapping.details : []), ...settings.fixed.map((detail) => `settings: ${detail}`)];
    outcome.refusals.push(`index ${current}: changes Elasticsearch cannot apply to an existing index (${breaking.join('; ')}); ${bump}`);
    return outcome;
  }
  if (mapping.kind === 'additive' || settings.dynamic.length > 0) {
    const details = [
      ...(mapping.kind === 'additive' ? [`mapping: ${mapping.details.join('; ')}`] : []),
      ...(settings.dynamic.length > 0 ? [`settings (${environmentNote}): ${settings.dynamic.join('; ')}`] : []),
    ];
    outcome.changes.push({
      subject,
      action: 'update',
      detail: `in place, behind the alias ${alias}: ${details.join('; ')}`,
      source,
      payload: {
        kind: 'update-index',
        index,
        ...(mapping.kind === 'additive' ? { mappings: desired.mappings } : {}),
        ...(settings.dynamic.length > 0 ? { settings: settings.update } : {}),
      },
    });
    return outcome;
  }
  outcome.inSync.push(withHistory(subject, `behind the alias ${alias}`, ledger));
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// Index templates

function planTemplate(desired: DesiredTemplate, observed: estypes.IndicesIndexTemplate | null, environmentNote: string, ledger: readonly LedgerRecord[]): Outcome {
  const { request, source } = desired;
  const subject = templateSubject(request.name);
  const payload: ElasticsearchPayload = { kind: 'put-template', request };
  if (observed === null) {
    return { changes: [{ subject, action: 'create', detail: `missing: created, ${environmentNote}`, source, payload }], inSync: [], refusals: [] };
  }
  const details = compareTemplate(request, observed);
  if (details.length === 0) return { changes: [], inSync: [withHistory(subject, `version ${observed.version ?? '(unset)'}`, ledger)], refusals: [] };
  return {
    changes: [
      {
        subject,
        action: 'update',
        detail: `${details.join('; ')} (${environmentNote}); applies to backing indices created from now on, not to existing ones`,
        source,
        payload,
      },
    ],
    inSync: [],
    refusals: [],
  };
}

// ---------------------------------------------------------------------------------------------

const EMPTY: ElasticsearchObserved = { indices: [], templates: {}, ledger: [] };

/**
 * The plan from what the cluster has (`observed`; null for an empty cluster, the offline dry
 * run) to the desired state. Pure: the same input always gives the same plan.
 */
export function planElasticsearch(desired: ElasticsearchDesired, observed: ElasticsearchObserved | null, flags: Flags): ElasticsearchPlan {
  const cluster = observed ?? EMPTY;
  const environmentNote = `settings for ${desired.environment} (${desired.environmentFrom})`;
  const plan: ElasticsearchPlan = { engine: 'elasticsearch', changes: [], inSync: [], refusals: [] };
  const add = (outcome: Outcome) => {
    plan.changes.push(...outcome.changes);
    plan.inSync.push(...outcome.inSync);
    plan.refusals.push(...outcome.refusals);
  };
  for (const index of desired.indices) {
    const seen = cluster.indices.find((candidate) => candidate.alias === index.alias) ?? { alias: index.alias, aliasTargets: [], nameTakenByIndex: false, versions: {} };
    add(planIndex(index, seen, flags, environmentNote, cluster.ledger));
  }
  for (const template of desired.templates) {
    add(planTemplate(template, cluster.templates[template.request.name] ?? null, environmentNote, cluster.ledger));
    add(planDataStreams(template, cluster.dataStreams?.[template.request.name] ?? [], environmentNote));
  }
  // After the indices: a repository the nodes cannot write to fails its change, not theirs.
  add(planBackup(desired.backup, observed === null ? null : (cluster.backup ?? undefined), cluster.ledger));
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Backups: the snapshot repository and the lifecycle policy

/** A repository's settings as `GET _snapshot` reports them: every value a string. */
function repositoryDifferences(desired: estypes.SnapshotS3Repository, observed: { type: string; settings: Record<string, unknown> }): string[] {
  const differences: string[] = [];
  if (observed.type !== desired.type) differences.push(`type ${show(observed.type)} → ${show(desired.type)}`);
  const wanted = desired.settings as unknown as Record<string, unknown>;
  for (const key of [...new Set([...Object.keys(wanted), ...Object.keys(observed.settings)])].sort()) {
    const had = observed.settings[key];
    const want = wanted[key];
    if (had === undefined || want === undefined || String(had) !== String(want)) differences.push(`${key} ${show(had ?? null)} → ${show(want ?? null)}`);
  }
  return differences;
}

/** The parts of a policy that differ, by top-level key (`schedule`, `config`, `retention`...). */
function policyDifferences(desired: estypes.SlmPolicy, observed: estypes.SlmPolicy): string[] {
  const keys = [...new Set([...Object.keys(desired), ...Object.keys(observed)])].sort() as Array<keyof estypes.SlmPolicy>;
  return keys.filter((key) => !sameValue(observed[key], desired[key])).map((key) => `${key} ${show(observed[key] ?? null)} → ${show(desired[key] ?? null)}`);
}

/**
 * The repository, then the policy that writes to it: each created when missing, put again when it
 * differs (a `PUT` replaces the whole definition), nothing when it matches. `observed` null: the
 * offline dry run (an empty cluster); undefined: the adapter did not look.
 */
function planBackup(desired: DesiredBackup | undefined, observed: ObservedBackup | null | undefined, ledger: readonly LedgerRecord[]): Outcome {
  const outcome: Outcome = { changes: [], inSync: [], refusals: [] };
  if (!desired) {
    // Backups off: a policy of ours left on the cluster would keep snapshotting to a store the stack no longer gives it.
    if (observed?.policy) {
      outcome.changes.push({
        subject: `snapshot lifecycle policy ${observed.policyId}`,
        action: 'delete',
        detail: `the stack does not back up (no ALLIXIOS_BACKUP_ELASTICSEARCH): the policy stops; the repository ${observed.repositoryName} and its snapshots stay`,
        source: 'databases/elasticsearch/backup.ts',
        payload: { kind: 'delete-slm-policy', id: observed.policyId },
      });
    }
    return outcome;
  }
  if (observed === undefined) return outcome;
  const { repository, policy, source, from } = desired;
  const repositorySubject = `snapshot repository ${repository.name}`;
  const seenRepository = observed?.repository ?? null;
  if (seenRepository === null) {
    outcome.changes.push({
      subject: repositorySubject,
      action: 'create',
      detail: `missing: s3 bucket ${repository.definition.settings.bucket}, base_path ${repository.definition.settings.base_path} (${from}); every node verifies it can write there`,
      source,
      payload: { kind: 'put-snapshot-repository', name: repository.name, repository: repository.definition },
    });
  } else {
    const differences = repositoryDifferences(repository.definition, seenRepository);
    if (differences.length === 0)
      outcome.inSync.push(withHistory(repositorySubject, `s3 ${repository.definition.settings.bucket}/${repository.definition.settings.base_path}`, ledger));
    else {
      outcome.changes.push({
        subject: repositorySubject,
        action: 'update',
        detail: `${differences.join('; ')} (${from}); snapshots already in the old place stay there`,
        source,
        payload: { kind: 'put-snapshot-repository', name: repository.name, repository: repository.definition },
      });
    }
  }
  const policySubject = `snapshot lifecycle policy ${policy.id}`;
  const seenPolicy = observed?.policy ?? null;
  const payload: ElasticsearchPayload = { kind: 'put-slm-policy', id: policy.id, policy: policy.definition };
  if (seenPolicy === null) {
    outcome.changes.push({
      subject: policySubject,
      action: 'create',
      detail: `missing: snapshots ${policy.definition.schedule} (UTC) into ${repository.name}, expire after ${policy.definition.retention?.expire_after}, keep ${policy.definition.retention?.min_count} to ${policy.definition.retention?.max_count} (${from})`,
      source,
      payload,
    });
  } else {
    const differences = policyDifferences(policy.definition, seenPolicy);
    if (differences.length === 0) outcome.inSync.push(withHistory(policySubject, `${policy.definition.schedule} into ${repository.name}`, ledger));
    else outcome.changes.push({ subject: policySubject, action: 'update', detail: `${differences.join('; ')} (${from})`, source, payload });
  }
  return outcome;
}

/**
 * A template's retention for the data streams it already made. Changing the template changes
 * only streams created from then on; an existing one keeps the retention it was born with until
 * its own lifecycle is put. Without this the ledger said "applied" while events were kept (or
 * deleted) by the old rule.
 */
function planDataStreams(desired: DesiredTemplate, streams: readonly ObservedDataStream[], environmentNote: string): Outcome {
  const outcome: Outcome = { changes: [], inSync: [], refusals: [] };
  const retention = (desired.request.template?.lifecycle as { data_retention?: string } | undefined)?.data_retention;
  if (retention === undefined) return outcome;
  for (const stream of streams) {
    const subject = `data stream ${stream.name}`;
    const had = stream.lifecycle?.data_retention;
    if (had === retention && stream.lifecycle?.enabled !== false) {
      outcome.inSync.push(subject);
      continue;
    }
    outcome.changes.push({
      subject,
      action: 'update',
      detail: `data_retention ${show(had ?? null)} → ${show(retention)} (${environmentNote}): the template's lifecycle reaches existing streams only this way`,
      source: desired.source,
      payload: { kind: 'put-data-stream-lifecycle', name: stream.name, dataRetention: retention },
    });
  }
  return outcome;
}
