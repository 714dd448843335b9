/**
 * A small evaluator of MongoDB `$jsonSchema` validators against documents as the Node.js driver
 * would store them, for tests that cannot reach a server (ENGINES.md: no MongoDB runs here).
 *
 * Honest about its limits: it implements the keywords the project's validators use, with MongoDB's
 * semantics where they differ from plain JSON Schema (bsonType, draft 4 exclusive bounds), and
 * throws on any other keyword rather than silently accepting. It decides BSON types the way the
 * driver's serializer does: a JavaScript number that is an integer in the int32 range is stored
 * as `int`, any other number as `double`, a bigint as `long`, a Date as `date`, undefined as
 * `null` (the driver's default without ignoreUndefined). A document it
 * accepts can still be refused by the server (regex dialect, string length counting); the
 * server tests (MONGODB_URL) are the authority.
 */
import { Binary, Decimal128, Double, Int32, Long, ObjectId, Timestamp } from 'mongodb';
import type { BsonSchema, BsonTypeAlias } from '../../databases/mongodb/json-schema.ts';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** The BSON type the driver would store `value` as. */
export function bsonTypeOf(value: unknown): BsonTypeAlias {
  // The driver stores a field set to undefined as null unless the client sets ignoreUndefined.
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'bigint') return 'long';
  if (typeof value === 'number') {
    return Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX && !Object.is(value, -0) ? 'int' : 'double';
  }
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'date';
  if (value instanceof RegExp) return 'regex';
  if (value instanceof ObjectId) return 'objectId';
  if (value instanceof Int32) return 'int';
  if (value instanceof Long) return 'long';
  if (value instanceof Double) return 'double';
  if (value instanceof Decimal128) return 'decimal';
  if (value instanceof Timestamp) return 'timestamp';
  if (value instanceof Binary) return 'binData';
  if (typeof value === 'object') return 'object';
  throw new Error(`bson-schema-evaluator: no BSON type for ${typeof value}`);
}

const NUMERIC: ReadonlySet<string> = new Set(['int', 'long', 'double', 'decimal']);

function matchesAlias(value: unknown, alias: BsonTypeAlias): boolean {
  const actual = bsonTypeOf(value);
  return alias === 'number' ? NUMERIC.has(actual) : actual === alias;
}

function numericValue(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Int32 || value instanceof Double || value instanceof Long) return Number(value.valueOf());
  return undefined;
}

function isObjectValue(value: unknown): value is Record<string, unknown> {
  return bsonTypeOf(value) === 'object';
}

/** Code points, which is how MongoDB counts minLength and maxLength. */
function stringLength(value: string): number {
  return [...value].length;
}

const IMPLEMENTED: ReadonlySet<string> = new Set([
  'bsonType',
  'enum',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'additionalItems',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'maxProperties',
  'minProperties',
  'anyOf',
  'title',
  'description',
]);

/**
 * Violations of `schema` by `value`, one sentence each with the document path; empty when the
 * value satisfies the schema. Keywords other than those it implements throw.
 */
export function schemaViolations(schema: BsonSchema, value: unknown, path = '(document)'): string[] {
  for (const keyword of Object.keys(schema)) {
    if (!IMPLEMENTED.has(keyword)) throw new Error(`bson-schema-evaluator: keyword ${keyword} at ${path} is not implemented`);
  }
  const violations: string[] = [];
  const fail = (message: string): void => {
    violations.push(`${path}: ${message}`);
  };

  if (schema.bsonType !== undefined) {
    const aliases = typeof schema.bsonType === 'string' ? [schema.bsonType] : schema.bsonType;
    if (!aliases.some((alias) => matchesAlias(value, alias))) {
      // A type mismatch makes the remaining keywords meaningless for this value.
      return [`${path}: expected bsonType ${aliases.join(' or ')}, got ${bsonTypeOf(value)}`];
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((allowed) => allowed === value)) {
    fail(`expected one of ${JSON.stringify(schema.enum)}, got ${JSON.stringify(value)}`);
  }
  if (schema.anyOf !== undefined && !schema.anyOf.some((option) => schemaViolations(option, value, path).length === 0)) {
    fail('matches none of anyOf');
  }

  if (typeof value === 'string') {
    const length = stringLength(value);
    if (schema.minLength !== undefined && length < schema.minLength) fail(`shorter than ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && length > schema.maxLength) fail(`longer than ${schema.maxLength} characters`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) fail(`does not match /${schema.pattern}/`);
  }

  const number = numericValue(value);
  if (number !== undefined) {
    if (schema.minimum !== undefined && number < schema.minimum) fail(`below the minimum ${schema.minimum}`);
    if (schema.maximum !== undefined && number > schema.maximum) fail(`above the maximum ${schema.maximum}`);
  }

  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) fail(`fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) fail(`more than ${schema.maxItems} items`);
    const items = schema.items;
    if (Array.isArray(items)) {
      const tuple = items as readonly BsonSchema[];
      value.forEach((item, index) => {
        const itemSchema = tuple[index];
        if (itemSchema) violations.push(...schemaViolations(itemSchema, item, `${path}[${index}]`));
        else if (schema.additionalItems === false) fail(`item ${index} beyond the ${tuple.length} allowed`);
        else if (typeof schema.additionalItems === 'object') violations.push(...schemaViolations(schema.additionalItems, item, `${path}[${index}]`));
      });
    } else if (items !== undefined) {
      value.forEach((item, index) => violations.push(...schemaViolations(items as BsonSchema, item, `${path}[${index}]`)));
    }
  }

  if (isObjectValue(value)) {
    const keys = Object.keys(value);
    if (schema.minProperties !== undefined && keys.length < schema.minProperties) fail(`fewer than ${schema.minProperties} fields`);
    if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) fail(`more than ${schema.maxProperties} fields`);
    for (const name of schema.required ?? []) {
      if (!keys.includes(name)) fail(`missing required field ${name}`);
    }
    const properties = schema.properties ?? {};
    for (const key of keys) {
      const propertySchema = properties[key];
      if (propertySchema) {
        violations.push(...schemaViolations(propertySchema, value[key], `${path}.${key}`));
      } else if (schema.additionalProperties === false) {
        fail(`field ${key} is not allowed`);
      } else if (typeof schema.additionalProperties === 'object') {
        violations.push(...schemaViolations(schema.additionalProperties, value[key], `${path}.${key}`));
      }
    }
  }
  return violations;
}
