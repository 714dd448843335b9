/**
 * The shape of one MongoDB collection's desired state: its validator, how strictly the validator
 * applies, its indexes and any creation-only options. `definitions.ts` lists them all; the
 * bootstrap's MongoDB adapter compares them with the server (collections by name, indexes by name)
 * and creates or updates what differs.
 */
import type { CreateCollectionOptions, IndexDescription, IndexDirection } from 'mongodb';
import type { BsonSchema } from './json-schema.ts';

/**
 * An index as the driver's `createIndexes` takes it, with the name required: the bootstrap
 * compares indexes by name, so an index without an explicit name (MongoDB would derive one from
 * the key) could never be matched. Keys are a plain object, not a Map, so definitions stay data.
 */
export type NamedIndexDescription = IndexDescription & {
  name: string;
  key: Record<string, IndexDirection>;
};

/**
 * `validationLevel` values the project uses. `off` is left out: a collection without validation
 * should have no validator at all, not one that is ignored.
 */
export type ValidationLevel = 'strict' | 'moderate';

/**
 * `validationAction` values of MongoDB 8.0, the server the stack runs (`errorAndLog` needs 8.1).
 */
export type ValidationAction = 'error' | 'warn';

/**
 * Options that only take effect when the collection is created (time series, clustered, capped,
 * default collation). Changing one later means recreating the collection, which the bootstrap
 * must refuse to do on its own.
 */
export type CreationOptions = Pick<
  CreateCollectionOptions,
  'capped' | 'size' | 'max' | 'timeseries' | 'clusteredIndex' | 'expireAfterSeconds' | 'collation' | 'changeStreamPreAndPostImages'
>;

export interface CollectionDefinition {
  /** Collection name in the `allixios` database. */
  name: string;
  /** What the collection holds and who writes it; shown by the bootstrap's status and the README. */
  description: string;
  validator: { $jsonSchema: BsonSchema };
  validationLevel: ValidationLevel;
  validationAction: ValidationAction;
  indexes: NamedIndexDescription[];
  /** Creation-only options; none of the current collections needs any. */
  options?: CreationOptions;
}

/** Seconds in `days` days, for TTL indexes (`expireAfterSeconds`). */
export function days(count: number): number {
  return count * 24 * 60 * 60;
}
