/**
 * The subset of JSON Schema that MongoDB's `$jsonSchema` validators accept, as a TypeScript type
 * (a misspelled or unsupported keyword in a collection definition fails `tsc`) and as a runtime
 * checker (for definitions built from data, and for the bootstrap to refuse a bad validator
 * before it reaches the server with a message that names the path).
 *
 * Source: MongoDB manual, "$jsonSchema", sections "Available Keywords", "Extensions" and
 * "Omissions" (https://www.mongodb.com/docs/manual/reference/operator/query/jsonSchema/), and
 * "$type", "Available Types" for the bsonType aliases
 * (https://www.mongodb.com/docs/manual/reference/operator/query/type/).
 */
import { toError } from '../../bootstrap/errors.ts';

/**
 * BSON type aliases `bsonType` accepts: the string aliases of `$type`, without the deprecated
 * ones (undefined, dbPointer, symbol, javascriptWithScope), which no new document should hold.
 * `number` is `$type`'s alias for double, int, long and decimal together.
 */
export const BSON_TYPE_ALIASES = [
  'double',
  'string',
  'object',
  'array',
  'binData',
  'objectId',
  'bool',
  'date',
  'null',
  'regex',
  'javascript',
  'int',
  'timestamp',
  'long',
  'decimal',
  'minKey',
  'maxKey',
  'number',
] as const;
export type BsonTypeAlias = (typeof BSON_TYPE_ALIASES)[number];

/**
 * The keywords of the "Available Keywords" table, minus `type`. MongoDB accepts `type` (JSON
 * types only, and not "integer"), but this project writes `bsonType` everywhere: `type: "number"`
 * cannot tell an int from a double, and one keyword for types keeps validators uniform. So `type`
 * is refused here on purpose, as a project rule rather than a server limit.
 */
export const JSON_SCHEMA_KEYWORDS = [
  'bsonType',
  'enum',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  'multipleOf',
  'maximum',
  'exclusiveMaximum',
  'minimum',
  'exclusiveMinimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxProperties',
  'minProperties',
  'required',
  'additionalProperties',
  'properties',
  'patternProperties',
  'dependencies',
  'additionalItems',
  'items',
  'maxItems',
  'minItems',
  'uniqueItems',
  'title',
  'description',
] as const;

/** The "Omissions" list: keywords MongoDB rejects (the server refuses unknown keywords too). */
export const UNSUPPORTED_KEYWORDS = ['$ref', '$schema', 'default', 'definitions', 'format', 'id'] as const;

/**
 * A `$jsonSchema` document as MongoDB accepts it. Draft 4 semantics: `exclusiveMinimum` and
 * `exclusiveMaximum` are booleans that modify `minimum` / `maximum`.
 */
export interface BsonSchema {
  bsonType?: BsonTypeAlias | readonly BsonTypeAlias[];
  enum?: readonly unknown[];
  allOf?: readonly BsonSchema[];
  anyOf?: readonly BsonSchema[];
  oneOf?: readonly BsonSchema[];
  not?: BsonSchema;
  multipleOf?: number;
  maximum?: number;
  exclusiveMaximum?: boolean;
  minimum?: number;
  exclusiveMinimum?: boolean;
  maxLength?: number;
  minLength?: number;
  pattern?: string;
  maxProperties?: number;
  minProperties?: number;
  required?: readonly string[];
  additionalProperties?: boolean | BsonSchema;
  properties?: Readonly<Record<string, BsonSchema>>;
  patternProperties?: Readonly<Record<string, BsonSchema>>;
  dependencies?: Readonly<Record<string, BsonSchema | readonly string[]>>;
  additionalItems?: boolean | BsonSchema;
  items?: BsonSchema | readonly BsonSchema[];
  maxItems?: number;
  minItems?: number;
  uniqueItems?: boolean;
  title?: string;
  description?: string;
}

const KEYWORDS: ReadonlySet<string> = new Set(JSON_SCHEMA_KEYWORDS);
const ALIASES: ReadonlySet<string> = new Set(BSON_TYPE_ALIASES);
const UNSUPPORTED: ReadonlySet<string> = new Set(UNSUPPORTED_KEYWORDS);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0;
}

/**
 * Checks a `$jsonSchema` document against what MongoDB accepts and against the project's rules.
 * Returns one sentence per problem, each naming the path inside the schema (`properties.title.
 * maxLength`); an empty list means the schema is acceptable. Checked:
 * - every keyword is in {@link JSON_SCHEMA_KEYWORDS} (`type`, the omissions and typos are not);
 * - `bsonType` holds aliases from {@link BSON_TYPE_ALIASES};
 * - keyword values have the shape the manual gives (arrays of schemas, integers, regexes...);
 * - every name in `required` is defined in the sibling `properties`.
 *
 * Property names are data, not keywords: a field called `type` inside `properties` is fine.
 */
export function bsonSchemaProblems(schema: unknown, path = '$jsonSchema'): string[] {
  const problems: string[] = [];
  if (!isPlainObject(schema)) {
    return [`${path}: expected a schema object, got ${JSON.stringify(schema)}`];
  }
  const at = (keyword: string): string => `${path}.${keyword}`;
  const nested = (value: unknown, nestedPath: string): void => {
    problems.push(...bsonSchemaProblems(value, nestedPath));
  };
  const schemaArray = (keyword: string, value: unknown): void => {
    if (!Array.isArray(value) || value.length === 0) {
      problems.push(`${at(keyword)}: expected a non-empty array of schemas, got ${JSON.stringify(value)}`);
      return;
    }
    value.forEach((item, index) => nested(item, `${at(keyword)}[${index}]`));
  };
  const schemaMap = (keyword: string, value: unknown): void => {
    if (!isPlainObject(value)) {
      problems.push(`${at(keyword)}: expected an object of schemas, got ${JSON.stringify(value)}`);
      return;
    }
    for (const [name, item] of Object.entries(value)) nested(item, `${at(keyword)}.${name}`);
  };

  for (const [keyword, value] of Object.entries(schema)) {
    if (keyword === 'type') {
      problems.push(`${at(keyword)}: use bsonType, not type (project rule: one keyword for types, and "integer" is not supported)`);
      continue;
    }
    if (UNSUPPORTED.has(keyword)) {
      problems.push(`${at(keyword)}: not supported by MongoDB's $jsonSchema (listed under "Omissions")`);
      continue;
    }
    if (!KEYWORDS.has(keyword)) {
      problems.push(`${at(keyword)}: unknown keyword; MongoDB refuses keywords outside its "Available Keywords" list`);
      continue;
    }
    switch (keyword) {
      case 'bsonType': {
        const aliases = Array.isArray(value) ? value : [value];
        if (aliases.length === 0) problems.push(`${at(keyword)}: expected at least one BSON type alias`);
        for (const alias of aliases) {
          if (typeof alias !== 'string' || !ALIASES.has(alias)) {
            problems.push(`${at(keyword)}: ${JSON.stringify(alias)} is not a BSON type alias (expected one of ${BSON_TYPE_ALIASES.join(', ')})`);
          }
        }
        break;
      }
      case 'enum':
        if (!Array.isArray(value) || value.length === 0) problems.push(`${at(keyword)}: expected a non-empty array of values, got ${JSON.stringify(value)}`);
        break;
      case 'allOf':
      case 'anyOf':
      case 'oneOf':
        schemaArray(keyword, value);
        break;
      case 'not':
        nested(value, at(keyword));
        break;
      case 'multipleOf':
        if (typeof value !== 'number' || !(value > 0)) problems.push(`${at(keyword)}: expected a number above 0, got ${JSON.stringify(value)}`);
        break;
      case 'maximum':
      case 'minimum':
        if (typeof value !== 'number' || !Number.isFinite(value)) problems.push(`${at(keyword)}: expected a number, got ${JSON.stringify(value)}`);
        break;
      case 'exclusiveMaximum':
      case 'exclusiveMinimum':
      case 'uniqueItems':
        // Draft 4: booleans. A number here is draft 6+ syntax, which MongoDB refuses.
        if (typeof value !== 'boolean') problems.push(`${at(keyword)}: expected a boolean (JSON Schema draft 4), got ${JSON.stringify(value)}`);
        break;
      case 'maxLength':
      case 'minLength':
      case 'maxProperties':
      case 'minProperties':
      case 'maxItems':
      case 'minItems':
        if (!isNonNegativeInteger(value)) problems.push(`${at(keyword)}: expected a non-negative integer, got ${JSON.stringify(value)}`);
        break;
      case 'pattern':
        if (typeof value !== 'string') {
          problems.push(`${at(keyword)}: expected a regular expression string, got ${JSON.stringify(value)}`);
        } else {
          try {
            new RegExp(value, 'u');
          } catch (error) {
            problems.push(`${at(keyword)}: not a valid regular expression: ${toError(error).message}`);
          }
        }
        break;
      case 'required':
        if (!Array.isArray(value) || value.length === 0 || value.some((name) => typeof name !== 'string')) {
          problems.push(`${at(keyword)}: expected a non-empty array of field names, got ${JSON.stringify(value)}`);
        } else if (new Set(value).size !== value.length) {
          problems.push(`${at(keyword)}: field names must be unique, got ${JSON.stringify(value)}`);
        }
        break;
      case 'additionalProperties':
      case 'additionalItems':
        if (typeof value !== 'boolean') nested(value, at(keyword));
        break;
      case 'properties':
      case 'patternProperties':
        schemaMap(keyword, value);
        break;
      case 'dependencies':
        if (!isPlainObject(value)) {
          problems.push(`${at(keyword)}: expected an object, got ${JSON.stringify(value)}`);
        } else {
          for (const [name, dependency] of Object.entries(value)) {
            if (Array.isArray(dependency)) {
              if (dependency.some((field) => typeof field !== 'string')) problems.push(`${at(keyword)}.${name}: expected field names`);
            } else {
              nested(dependency, `${at(keyword)}.${name}`);
            }
          }
        }
        break;
      case 'items':
        if (Array.isArray(value)) schemaArray(keyword, value);
        else nested(value, at(keyword));
        break;
      case 'title':
      case 'description':
        if (typeof value !== 'string') problems.push(`${at(keyword)}: expected a string, got ${JSON.stringify(value)}`);
        break;
    }
  }

  // A required field that `properties` does not define is either a typo or a field whose type
  // nobody checks; both are defects in this project's validators.
  if (Array.isArray(schema.required)) {
    const defined = isPlainObject(schema.properties) ? schema.properties : {};
    for (const name of schema.required) {
      if (typeof name === 'string' && !(name in defined)) {
        problems.push(`${at('required')}: "${name}" is required but not defined in properties`);
      }
    }
  }
  return problems;
}

/**
 * The schema of the field at a dotted path (`actor.id`), following `properties` and, through
 * arrays, `items`; undefined when the schema does not define it. Lets tests and the bootstrap
 * check that an index key names a field the validator knows.
 */
export function schemaAtPath(schema: BsonSchema, dottedPath: string): BsonSchema | undefined {
  let current: BsonSchema | undefined = schema;
  for (const segment of dottedPath.split('.')) {
    if (!current) return undefined;
    // An index on `tags.slug` reaches into the objects of an array: follow `items` first.
    if (current.items && !Array.isArray(current.items)) current = current.items as BsonSchema;
    current = current.properties?.[segment];
  }
  return current;
}

/** The bsonType aliases of a schema as a list (empty when it has no bsonType). */
export function bsonTypesOf(schema: BsonSchema): readonly BsonTypeAlias[] {
  if (schema.bsonType === undefined) return [];
  return typeof schema.bsonType === 'string' ? [schema.bsonType] : schema.bsonType;
}
