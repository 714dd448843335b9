/**
 * How a versioned index evolves: the platform reads and writes an alias (`articles`) that points
 * at one concrete index (`articles_v1`). A mapping change Elasticsearch can apply in place (a new
 * field, an updatable parameter) is applied to that index; anything else (a changed type or
 * analyzer, a removed field, new analysis settings) means creating the next version, reindexing
 * into it and moving the alias in one atomic `_aliases` call.
 *
 * Pure functions on plain data, for the bootstrap's Elasticsearch adapter to plan with.
 */
import type { estypes } from '@elastic/elasticsearch';
import { sameValue } from '../../bootstrap/canonical-json.ts';
import type { Environment } from '../engine.ts';

/** An index the platform reaches through an alias, at a version of its definition. */
export interface VersionedIndexDefinition {
  /** The name clients use; always an alias, never an index. */
  alias: string;
  /**
   * Bumped for every change that cannot be applied in place, including any change to
   * `settings.analysis`: analyzers are read when an index is created, so a changed analyzer needs
   * a new index even though the mapping that names it looks the same.
   */
  version: number;
  /** `nextIndexName(alias, version)`: the concrete index of this version. */
  index: string;
  /**
   * Index settings (shards, replicas, refresh, analysis) for one environment. The `Keys` type,
   * not `IndicesIndexSettings`: the latter has an index signature, so a misspelled setting would
   * pass the compiler.
   */
  settings(environment: Environment): estypes.IndicesIndexSettingsKeys;
  mappings: estypes.MappingTypeMapping;
}

const ALIAS_PATTERN = /^[a-z][a-z0-9-]*$/;

/**
 * The concrete index of `version` behind `alias`: `nextIndexName('articles', 2)` is
 * `articles_v2`, the index the adapter creates when moving the alias to version 2.
 */
export function nextIndexName(alias: string, version: number): string {
  if (!ALIAS_PATTERN.test(alias)) {
    throw new Error(`index alias: expected lower-case letters, digits and hyphens starting with a letter, got "${alias}"`);
  }
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new Error(`index version of ${alias}: expected a positive integer, got ${JSON.stringify(version)}`);
  }
  return `${alias}_v${version}`;
}

/**
 * The version of a concrete index behind `alias` (`articles_v3` → 3), or undefined when the name
 * is not one {@link nextIndexName} produces for that alias (an index created by hand).
 */
export function parseIndexVersion(alias: string, index: string): number | undefined {
  const prefix = `${alias}_v`;
  if (!index.startsWith(prefix)) return undefined;
  const digits = index.slice(prefix.length);
  if (!/^[1-9][0-9]*$/.test(digits)) return undefined;
  const version = Number(digits);
  return Number.isSafeInteger(version) ? version : undefined;
}

export type MappingChangeKind = 'none' | 'additive' | 'breaking';

export interface MappingChange {
  /**
   * `none`: nothing to do. `additive`: everything can be applied with the update mapping API on
   * the live index (new fields, new multi-fields, parameters Elasticsearch documents as
   * updatable). `breaking`: at least one change cannot; create the next version and reindex.
   */
  kind: MappingChangeKind;
  /** One sentence per difference, naming the field path; empty when kind is none. */
  details: string[];
}

/**
 * Field parameters Elasticsearch's update mapping API can change on an existing field, each
 * documented as such on its mapping-parameter page (search_analyzer, search_quote_analyzer,
 * ignore_above, ignore_malformed, coerce, eager_global_ordinals, meta, dynamic). Any other
 * parameter change counts as breaking, which errs towards a reindex rather than a failed update.
 */
const UPDATABLE_FIELD_PARAMETERS: ReadonlySet<string> = new Set([
  'search_analyzer',
  'search_quote_analyzer',
  'ignore_above',
  'ignore_malformed',
  'coerce',
  'eager_global_ordinals',
  'meta',
  'dynamic',
]);

/** Root-level mapping entries the update mapping API replaces in place. */
const UPDATABLE_ROOT_PARAMETERS: ReadonlySet<string> = new Set(['dynamic', '_meta', 'date_detection', 'numeric_detection', 'dynamic_templates', 'runtime']);

/** Keys handled structurally rather than as parameters. */
const STRUCTURAL_KEYS: ReadonlySet<string> = new Set(['type', 'properties', 'fields']);

type Properties = Record<string, estypes.MappingProperty>;

/**
 * `dynamic` comes back from GET _mapping as a string ("false") when it was sent as a boolean;
 * compare the two spellings as one.
 */
function normalized(key: string, value: unknown): unknown {
  return key === 'dynamic' && typeof value === 'boolean' ? String(value) : value;
}

/** A field's type; a field with `properties` and no type is an object. */
function typeOf(field: estypes.MappingProperty): string {
  return field.type ?? 'object';
}

function describe(value: unknown): string {
  return value === undefined ? '(unset)' : JSON.stringify(value);
}

class ChangeCollector {
  readonly additive: string[] = [];
  readonly breaking: string[] = [];

  compareProperties(current: Properties | undefined, desired: Properties | undefined, prefix: string, container: 'field' | 'multi-field'): void {
    const currentProperties = current ?? {};
    const desiredProperties = desired ?? {};
    // Field names in sorted order: GET _mapping returns them sorted, definitions in authoring
    // order, and the details should read the same either way.
    for (const name of Object.keys(currentProperties).sort()) {
      if (!(name in desiredProperties)) {
        this.breaking.push(`${prefix}${name}: ${container} removed (Elasticsearch cannot drop a mapped ${container}; the next index version leaves it out)`);
      }
    }
    for (const [name, desiredField] of Object.entries(desiredProperties).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const path = `${prefix}${name}`;
      const currentField = currentProperties[name];
      if (currentField === undefined) {
        this.additive.push(
          container === 'multi-field'
            ? `${path}: new multi-field (${typeOf(desiredField)}); documents indexed before it need an _update_by_query to populate it`
            : `${path}: new ${typeOf(desiredField)} field`,
        );
        continue;
      }
      this.compareField(path, currentField, desiredField);
    }
  }

  compareField(path: string, current: estypes.MappingProperty, desired: estypes.MappingProperty): void {
    const currentType = typeOf(current);
    const desiredType = typeOf(desired);
    if (currentType !== desiredType) {
      // Nothing below a changed type can be compared meaningfully.
      this.breaking.push(`${path}: type changed from ${currentType} to ${desiredType}`);
      return;
    }
    const currentRecord = current as Record<string, unknown>;
    const desiredRecord = desired as Record<string, unknown>;
    const parameters = new Set([...Object.keys(currentRecord), ...Object.keys(desiredRecord)]);
    for (const parameter of [...parameters].sort()) {
      if (STRUCTURAL_KEYS.has(parameter)) continue;
      const before = normalized(parameter, currentRecord[parameter]);
      const after = normalized(parameter, desiredRecord[parameter]);
      if (sameValue(before, after)) continue;
      const sentence = `${path}: ${parameter} changed from ${describe(before)} to ${describe(after)}`;
      if (UPDATABLE_FIELD_PARAMETERS.has(parameter)) this.additive.push(`${sentence} (updatable in place)`);
      else this.breaking.push(sentence);
    }
    // Not every field type has sub-properties or multi-fields (match_only_text has neither), so
    // they are read as optional entries of the plain record.
    this.compareProperties(currentRecord.properties as Properties | undefined, desiredRecord.properties as Properties | undefined, `${path}.`, 'field');
    this.compareProperties(currentRecord.fields as Properties | undefined, desiredRecord.fields as Properties | undefined, `${path}.`, 'multi-field');
  }
}

/**
 * Classifies the difference between the mapping of the live index (`current`, as GET _mapping
 * returns it) and the desired one: whether it can be applied in place or needs the next index
 * version. Both mappings are compared structurally, parameter by parameter: a parameter set in
 * one and left to its default in the other counts as a change, which is exact for an index that
 * was created from these definitions (Elasticsearch returns the parameters it was given).
 *
 * Breaking: a changed field type (object and nested included), a changed analyzer or normalizer,
 * any other non-updatable parameter, a removed field or multi-field, a changed `_source` or
 * `_routing`. Additive: new fields and multi-fields, updatable parameters.
 */
export function classifyMappingChange(current: estypes.MappingTypeMapping, desired: estypes.MappingTypeMapping): MappingChange {
  const collector = new ChangeCollector();
  const currentRoot = current as Record<string, unknown>;
  const desiredRoot = desired as Record<string, unknown>;
  const rootKeys = new Set([...Object.keys(currentRoot), ...Object.keys(desiredRoot)]);
  for (const key of [...rootKeys].sort()) {
    if (key === 'properties') continue;
    const before = normalized(key, currentRoot[key]);
    const after = normalized(key, desiredRoot[key]);
    if (sameValue(before, after)) continue;
    const sentence = `(root): ${key} changed from ${describe(before)} to ${describe(after)}`;
    if (UPDATABLE_ROOT_PARAMETERS.has(key)) collector.additive.push(`${sentence} (updatable in place)`);
    else collector.breaking.push(sentence);
  }
  collector.compareProperties(current.properties, desired.properties, '', 'field');

  const details = [...collector.breaking, ...collector.additive];
  const kind: MappingChangeKind = collector.breaking.length > 0 ? 'breaking' : collector.additive.length > 0 ? 'additive' : 'none';
  return { kind, details };
}
