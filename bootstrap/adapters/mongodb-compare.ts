/**
 * MongoDB's indexes and validators in a form that compares: a definition as listIndexes will
 * report it, a listIndexes entry reduced to its key and options, and what differs between the two
 * (or between two validators). Pure, and apart from the planner (`mongodb-plan.ts`): this file
 * only knows how the server spells the same thing; what to do about a difference is the planner's.
 */
import type { CollationOptions, Document, IndexDescriptionInfo, IndexDirection } from 'mongodb';
import type { NamedIndexDescription } from '../../databases/mongodb/definitions.ts';
import { sameValue } from '../canonical-json.ts';

// ---------------------------------------------------------------------------------------------
// Canonical comparison

export type KeyPattern = Array<[field: string, direction: IndexDirection]>;

/**
 * An index key as an ordered list: `{ a: 1, b: 1 }` and `{ b: 1, a: 1 }` are different indexes
 * (a compound index serves queries on its prefixes), so the key is never compared as an object.
 */
export function keyPattern(key: Record<string, IndexDirection> | Map<string, IndexDirection>): KeyPattern {
  return key instanceof Map ? [...key.entries()] : Object.entries(key);
}

// ---------------------------------------------------------------------------------------------
// Indexes: the definition in the form listIndexes reports

/** An index reduced to what makes it what it is: its key, in order, and its options. */
export interface ComparableIndex {
  key: KeyPattern;
  options: Record<string, unknown>;
}

/** Fields of a listIndexes entry that are not options of the index. */
const NOT_OPTIONS = new Set(['name', 'key', 'v', 'version', 'ns', 'background']);
/** Options whose `false` is the same as leaving them out (listIndexes omits them then). */
const FALSE_IS_ABSENT = new Set(['unique', 'sparse', 'hidden']);
/** Versions the server fills in when the definition leaves them out: compared only when it sets them. */
const SERVER_DEFAULTED = new Set(['textIndexVersion', '2dsphereIndexVersion']);

function indexOptions(index: Document): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(index)) {
    if (NOT_OPTIONS.has(name) || value === undefined) continue;
    if (FALSE_IS_ABSENT.has(name) && value === false) continue;
    options[name] = value;
  }
  return options;
}

/** A listIndexes entry, as reported. */
export function observedIndex(index: IndexDescriptionInfo): ComparableIndex {
  return { key: keyPattern(index.key), options: indexOptions(index) };
}

/**
 * A definition as listIndexes will report it once created: text fields become
 * `_fts: 'text', _ftsx: 1` at the place of the first one, with every text field in `weights`
 * (1 unless weighted) and the server's text defaults filled in; an index without a collation
 * inherits the collection's default collation.
 */
export function desiredIndex(index: NamedIndexDescription, collectionCollation?: CollationOptions): ComparableIndex {
  const pairs = keyPattern(index.key);
  const options = indexOptions(index);
  let key = pairs;
  const first = pairs.findIndex(([, direction]) => direction === 'text');
  if (first >= 0) {
    const textFields = pairs.filter(([, direction]) => direction === 'text').map(([field]) => field);
    const others = (list: KeyPattern) => list.filter(([, direction]) => direction !== 'text');
    key = [...others(pairs.slice(0, first)), ['_fts', 'text'], ['_ftsx', 1], ...others(pairs.slice(first))];
    options.weights = { ...Object.fromEntries(textFields.map((field) => [field, 1])), ...index.weights };
    options.default_language ??= 'english';
    options.language_override ??= 'language';
  }
  const collation = index.collation ?? collectionCollation;
  if (collation && collation.locale !== 'simple') options.collation = collation;
  else delete options.collation;
  return { key, options };
}

export interface Difference {
  field: string;
  server: unknown;
  definition: unknown;
}

/** Every key of the definition matches the server's; the server may fill in more (collation defaults). */
export function subsetOf(definition: unknown, server: unknown): boolean {
  if (definition === undefined || server === undefined) return definition === server;
  if (typeof definition !== 'object' || definition === null || typeof server !== 'object' || server === null) return sameValue(definition, server);
  return Object.entries(definition).every(([key, value]) => value === undefined || sameValue(value, (server as Record<string, unknown>)[key]));
}

/** What differs between a definition and the server's index of the same name; key order counts. */
export function indexDifferences(definition: ComparableIndex, server: ComparableIndex): Difference[] {
  const differences: Difference[] = [];
  if (!sameValue(definition.key, server.key)) {
    differences.push({ field: 'key', server: Object.fromEntries(server.key), definition: Object.fromEntries(definition.key) });
  }
  const names = [...new Set([...Object.keys(definition.options), ...Object.keys(server.options)])].sort();
  for (const name of names) {
    if (SERVER_DEFAULTED.has(name) && !(name in definition.options)) continue;
    const wanted = definition.options[name];
    const actual = server.options[name];
    const equal = name === 'collation' ? subsetOf(wanted, actual) : sameValue(wanted, actual);
    if (!equal) differences.push({ field: name, server: actual, definition: wanted });
  }
  return differences;
}

// ---------------------------------------------------------------------------------------------
// Validators

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;

/** Paths where two documents differ (`$jsonSchema.properties.title.maxLength`), key order ignored. */
export function differingPaths(server: unknown, definition: unknown, path = ''): Difference[] {
  if (sameValue(server, definition)) return [];
  if (isPlainObject(server) && isPlainObject(definition)) {
    const keys = [...new Set([...Object.keys(server), ...Object.keys(definition)])].sort();
    return keys.flatMap((key) => differingPaths(server[key], definition[key], path ? `${path}.${key}` : key));
  }
  if (Array.isArray(server) && Array.isArray(definition) && server.length === definition.length) {
    return server.flatMap((item, index) => differingPaths(item, definition[index], `${path}[${index}]`));
  }
  return [{ field: path || '(the whole document)', server, definition }];
}
