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
 */
import type { estypes } from '@elastic/elasticsearch';
import type { Environment } from '../../databases/engine.ts';
import { classifyMappingChange, nextIndexName, parseIndexVersion } from '../../databases/elasticsearch/definitions.ts';
import { sameValue } from '../canonical-json.ts';
import type { Change, Flags, Plan } from '../contract.ts';

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
  | { kind: 'put-data-stream-lifecycle'; name: string; dataRetention: string };

export type ElasticsearchChange = Change<ElasticsearchPayload>;
export type ElasticsearchPlan = Plan<ElasticsearchPayload>;

// ---------------------------------------------------------------------------------------------
// Normalisation: the cluster's spelling of the same thing

/**
 * Parameters at their documented default, per field type. GET _mapping leaves out a parameter
 * set to its default value (Elasticsearch serialises a mapping parameter only when it is
 * configured to something else), so `positive_score_impact: true` sent at creation is missing
 * from the live mapping. Both sides are compared with these removed; a parameter set to any
 * other value still counts.
 */
const DEFAULTS_EVERY_FIELD: Readonly<Record<string, unknown>> = { index: true, store: false };
const DEFAULTS_BY_TYPE: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  keyword: { doc_values: true, norms: false },
  text: { norms: true, fielddata: false },
  date: { doc_values: true },
  boolean: { doc_values: true },
  ip: { doc_values: true },
  ...Object.fromEntries(['long', 'integer', 'short', 'byte', 'double', 'float', 'half_float', 'scaled_float'].map((type) => [type, { doc_values: true }])),
  rank_feature: { positive_score_impact: true },
  rank_features: { positive_score_impact: true },
  object: { enabled: true },
  nested: { enabled: true, include_in_parent: false, include_in_root: false },
};

type Properties = Record<string, estypes.MappingProperty>;

function withoutDefaultParameters(properties: Properties | undefined): Properties | undefined {
  if (properties === undefined) return undefined;
  const result: Properties = {};
  for (const [name, field] of Object.entries(properties)) {
    const record = { ...(field as Record<string, unknown>) };
    const type = typeof record.type === 'string' ? record.type : 'object';
    const defaults = { ...DEFAULTS_EVERY_FIELD, ...DEFAULTS_BY_TYPE[type] };
    for (const [parameter, value] of Object.entries(defaults)) {
      if (record[parameter] === value) delete record[parameter];
    }
    if (record.properties !== undefined) record.properties = withoutDefaultParameters(record.properties as Properties);
    if (record.fields !== undefined) record.fields = withoutDefaultParameters(record.fields as Properties);
    result[name] = record as estypes.MappingProperty;
  }
  return result;
}

/** A mapping as GET _mapping would return it, for comparison only. */
export function comparableMapping(mapping: estypes.MappingTypeMapping): estypes.MappingTypeMapping {
  const properties = withoutDefaultParameters(mapping.properties);
  return properties === undefined ? { ...mapping } : { ...mapping, properties };
}

type SettingValue = string | string[];

/**
 * Settings as one flat map without the `index.` prefix and with every value a string, the form
 * GET _settings?flat_settings=true uses (`index.number_of_shards: "1"`), whatever form they come
 * in: the definitions' nested numbers and booleans, the cluster's flat strings, or lists spelled
 * `filter.0`, `filter.1`. An empty list is the same as none.
 */
export function flatSettings(settings: Record<string, unknown> | undefined): Map<string, SettingValue> {
  const flat = new Map<string, SettingValue>();
  const visit = (value: unknown, path: string): void => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      if (value.length > 0) flat.set(path, value.map(String));
      return;
    }
    if (typeof value === 'object') {
      for (const [key, entry] of Object.entries(value as Record<string, unknown>)) visit(entry, path ? `${path}.${key}` : key);
      return;
    }
    flat.set(path, String(value));
  };
  visit(settings, '');
  const result = new Map<string, SettingValue>();
  const lists = new Map<string, string[]>();
  for (const [path, value] of flat) {
    const key = path.startsWith('index.') ? path.slice('index.'.length) : path;
    const item = /^(.*)\.(\d+)$/.exec(key);
    if (item && typeof value === 'string') {
      const list = lists.get(item[1]!) ?? [];
      list[Number(item[2])] = value;
      lists.set(item[1]!, list);
    } else {
      result.set(key, value);
    }
  }
  for (const [key, list] of lists)
    if (!result.has(key))
      result.set(
        key,
        list.filter((entry) => entry !== undefined),
      );
  return result;
}

function sameSetting(left: SettingValue | undefined, right: SettingValue | undefined): boolean {
  return JSON.stringify(left) === JSON.stringify(right);
}

function show(value: unknown): string {
  return value === undefined ? '(unset)' : JSON.stringify(value);
}

// ---------------------------------------------------------------------------------------------
// Index settings

/** Settings an existing index accepts through PUT _settings. */
const REPLICA_SETTINGS = ['number_of_replicas', 'auto_expand_replicas'] as const;
const DYNAMIC_SETTINGS: ReadonlySet<string> = new Set([...REPLICA_SETTINGS, 'refresh_interval']);
/** What the cluster reports for a setting nobody set. */
const SETTING_DEFAULTS: Readonly<Record<string, string>> = { refresh_interval: '1s', auto_expand_replicas: 'false' };

interface SettingsComparison {
  /** Differences only a new index can resolve (shards, analysis, other static settings). */
  fixed: string[];
  /** Differences PUT _settings resolves, and the request body that does. */
  dynamic: string[];
  update: estypes.IndicesIndexSettings;
}

function compareIndexSettings(desired: estypes.IndicesIndexSettingsKeys, observed: Record<string, unknown>): SettingsComparison {
  const want = flatSettings(desired as Record<string, unknown>);
  const have = flatSettings(observed);
  const comparison: SettingsComparison = { fixed: [], dynamic: [], update: {} };
  const current = (key: string) => have.get(key) ?? SETTING_DEFAULTS[key];

  // Replicas: either a fixed count or an auto-expand range. With a range, the cluster also
  // reports the number_of_replicas it derived, which is not a difference.
  const wantAuto = want.get('auto_expand_replicas');
  const haveAuto = current('auto_expand_replicas');
  if (wantAuto !== undefined) {
    if (!sameSetting(wantAuto, haveAuto)) {
      comparison.dynamic.push(`auto_expand_replicas ${show(haveAuto)} → ${show(wantAuto)}`);
      comparison.update.auto_expand_replicas = wantAuto as string;
    }
  } else if (want.has('number_of_replicas')) {
    const wantReplicas = want.get('number_of_replicas') as string;
    const haveReplicas = have.get('number_of_replicas');
    if (haveAuto !== 'false') {
      comparison.dynamic.push(`auto_expand_replicas ${show(haveAuto)} → (unset), number_of_replicas ${show(wantReplicas)}`);
      comparison.update.auto_expand_replicas = null;
      comparison.update.number_of_replicas = wantReplicas;
    } else if (!sameSetting(wantReplicas, haveReplicas)) {
      comparison.dynamic.push(`number_of_replicas ${show(haveReplicas)} → ${show(wantReplicas)}`);
      comparison.update.number_of_replicas = wantReplicas;
    }
  }
  for (const [key, value] of want) {
    if ((REPLICA_SETTINGS as readonly string[]).includes(key) || key.startsWith('analysis.')) continue;
    if (sameSetting(value, current(key))) continue;
    const sentence = `${key} ${show(current(key))} → ${show(value)}`;
    if (DYNAMIC_SETTINGS.has(key)) {
      comparison.dynamic.push(sentence);
      (comparison.update as Record<string, unknown>)[key] = value;
    } else {
      comparison.fixed.push(sentence);
    }
  }
  // Analysis is read when the index is created: any difference needs a new index.
  const analysisKeys = new Set([...want.keys(), ...have.keys()].filter((key) => key.startsWith('analysis.')));
  const analysis = [...analysisKeys].sort().filter((key) => !sameSetting(want.get(key), have.get(key)));
  if (analysis.length > 0) {
    const shown = analysis.slice(0, 3).map((key) => `${key} ${show(have.get(key))} → ${show(want.get(key))}`);
    comparison.fixed.push(`analysis differs (${shown.join('; ')}${analysis.length > 3 ? `; and ${analysis.length - 3} more` : ''})`);
  }
  return comparison;
}

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

/**
 * What differs between the template the cluster has and the desired one, in the parts that
 * decide what a new index gets. The cluster adds fields of its own (`composed_of: []`,
 * `data_stream.hidden: false`, `lifecycle.enabled: true`, creation dates) which are not
 * differences.
 */
export function compareTemplate(desired: estypes.IndicesPutIndexTemplateRequest, observed: estypes.IndicesIndexTemplate): string[] {
  const details: string[] = [];
  const list = (value: string | string[] | undefined) => (value === undefined ? [] : Array.isArray(value) ? [...value].sort() : [value]);
  if (!sameValue(list(desired.index_patterns), list(observed.index_patterns))) {
    details.push(`index_patterns ${show(list(observed.index_patterns))} → ${show(list(desired.index_patterns))}`);
  }
  if (!sameValue(desired.composed_of ?? [], observed.composed_of ?? [])) details.push(`composed_of ${show(observed.composed_of)} → ${show(desired.composed_of)}`);
  for (const key of ['priority', 'version', '_meta', 'allow_auto_create'] as const) {
    if (!sameValue(desired[key], observed[key])) details.push(`${key} ${show(observed[key])} → ${show(desired[key])}`);
  }
  if ((desired.data_stream === undefined) !== (observed.data_stream === undefined)) {
    details.push(`data_stream ${show(observed.data_stream)} → ${show(desired.data_stream)}`);
  } else if (desired.data_stream && observed.data_stream) {
    const want = desired.data_stream as Record<string, unknown>;
    const have = observed.data_stream as Record<string, unknown>;
    for (const key of new Set([...Object.keys(want), ...Object.keys(have)])) {
      if ((want[key] ?? false) !== (have[key] ?? false)) details.push(`data_stream.${key} ${show(have[key])} → ${show(want[key])}`);
    }
  }

  const want = desired.template ?? {};
  const have = observed.template ?? {};
  const wantSettings = flatSettings(want.settings as Record<string, unknown> | undefined);
  const haveSettings = flatSettings(have.settings as Record<string, unknown> | undefined);
  for (const key of [...new Set([...wantSettings.keys(), ...haveSettings.keys()])].sort()) {
    if (!sameSetting(wantSettings.get(key), haveSettings.get(key))) details.push(`template.settings.${key} ${show(haveSettings.get(key))} → ${show(wantSettings.get(key))}`);
  }
  const mapping = classifyMappingChange(comparableMapping(have.mappings ?? {}), comparableMapping(want.mappings ?? {}));
  details.push(...mapping.details.map((detail) => `template.mappings: ${detail}`));
  if (!sameValue(want.aliases ?? {}, have.aliases ?? {})) details.push(`template.aliases ${show(have.aliases)} → ${show(want.aliases)}`);
  const wantLifecycle = (want.lifecycle ?? undefined) as Record<string, unknown> | undefined;
  const haveLifecycle = (have.lifecycle ?? undefined) as Record<string, unknown> | undefined;
  if ((wantLifecycle === undefined) !== (haveLifecycle === undefined)) {
    details.push(`template.lifecycle ${show(haveLifecycle)} → ${show(wantLifecycle)}`);
  } else if (wantLifecycle && haveLifecycle) {
    // Only what the definition sets; `enabled` defaults to true, the rest the cluster derives.
    for (const key of new Set([...Object.keys(wantLifecycle), 'enabled'])) {
      const wanted = key === 'enabled' ? (wantLifecycle.enabled ?? true) : wantLifecycle[key];
      const had = key === 'enabled' ? (haveLifecycle.enabled ?? true) : haveLifecycle[key];
      if (!sameValue(wanted, had)) details.push(`template.lifecycle.${key} ${show(had)} → ${show(wanted)}`);
    }
  }
  return details;
}

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
  return plan;
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
