/**
 * Elasticsearch's mappings, settings and index templates in a form that compares: parameters at
 * their default left out, settings as one flat map of strings, and the differences between a
 * definition and what the cluster reports, each said in a sentence. Pure, and apart from the
 * planner (`elasticsearch-plan.ts`): this file knows the cluster's spelling of the same thing;
 * what to do about a difference (in place, a new index version, a refusal) is the planner's.
 */
import type { estypes } from '@elastic/elasticsearch';
import { classifyMappingChange } from '../../databases/elasticsearch/definitions.ts';
import { sameValue } from '../canonical-json.ts';

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

/** A value in a difference's sentence: JSON, `(unset)` when absent. */
export function show(value: unknown): string {
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

export function compareIndexSettings(desired: estypes.IndicesIndexSettingsKeys, observed: Record<string, unknown>): SettingsComparison {
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
