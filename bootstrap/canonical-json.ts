/**
 * One key-order-free JSON comparison for every planner that compares a definition with what an
 * engine reports: MongoDB validators and index options, Elasticsearch mappings, settings and
 * templates. Objects compare regardless of key order (neither engine gives it a meaning) and arrays
 * keep theirs. Dates, regular expressions, 64-bit integers and other BSON values get a tagged
 * form, so none of them collapses into a string or `{}` and compares equal to something else.
 */
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalValue(value)) ?? 'undefined';
}

function canonicalValue(value: unknown): unknown {
  if (typeof value === 'bigint') return { $numberLong: value.toString() };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { $number: String(value) };
    return Object.is(value, -0) ? 0 : value;
  }
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => (item === undefined ? null : canonicalValue(item)));
  if (value instanceof Date) return { $date: value.toISOString() };
  if (value instanceof RegExp) return { $regex: value.source, $options: value.flags };
  if (value instanceof Map) return canonicalValue(Object.fromEntries(value));
  const bsonType = (value as { _bsontype?: unknown })._bsontype;
  if (typeof bsonType === 'string') {
    // Int32 and Double are numbers to the server's comparisons as well.
    if (bsonType === 'Int32' || bsonType === 'Double') return canonicalValue(Number((value as { valueOf(): unknown }).valueOf()));
    const json = (value as { toJSON?: () => unknown }).toJSON;
    return { [`$${bsonType}`]: canonicalValue(typeof json === 'function' ? json.call(value) : String(value)) };
  }
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const item = (value as Record<string, unknown>)[key];
    if (item !== undefined) sorted[key] = canonicalValue(item);
  }
  return sorted;
}

/** Deep equality by `canonicalJson`: key order of objects is ignored, array order is not. */
export function sameValue(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** `sha256:<hex>` of the canonical JSON: what a ledger records for a definition. */
export function definitionChecksum(definition: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(definition)).digest('hex')}`;
}
