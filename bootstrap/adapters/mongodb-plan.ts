/**
 * The MongoDB planner: a pure function from the desired state (`databases/mongodb/definitions.ts`)
 * and what the server has (listCollections, listIndexes, the bootstrap's ledger) to the changes,
 * in the order they must be applied. No I/O: the adapter observes and applies, this file decides.
 *
 * Collections are matched by name, indexes by name within their collection. What MongoDB can
 * change in place is changed (a validator with collMod, a TTL's expireAfterSeconds or an index's
 * hidden flag with collMod); what it cannot is refused and named, never left stale in silence:
 * an index whose key or options differ, an index on the server the definitions do not list, a
 * creation-only option. `--replace-indexes` turns the two index refusals into drops (and creates).
 *
 * How the server spells an index or a validator, and what differs between two of them, is
 * `mongodb-compare.ts`'s; this file decides what to do about it.
 */
import type { CreateCollectionOptions, Document, IndexDescriptionInfo } from 'mongodb';
import type { CollectionDefinition, CreationOptions, NamedIndexDescription } from '../../databases/mongodb/definitions.ts';
import { definitionChecksum, sameValue } from '../canonical-json.ts';
import type { Change, Flags, Plan } from '../contract.ts';
import type { MongoUserPasswords } from './mongodb-credentials.ts';
import type { ReplicaSetDesired } from './mongodb-replica-set-plan.ts';
import { desiredIndex, differingPaths, indexDifferences, observedIndex, subsetOf, type Difference } from './mongodb-compare.ts';

/** The ledger: one document per subject the bootstrap changed, in the platform's database. */
export const LEDGER_COLLECTION = 'allixios_bootstrap';
/** The lock: one document `_id: 'bootstrap'` while a bootstrap applies. */
export const LOCK_COLLECTION = 'allixios_bootstrap_lock';

export interface MongoDesired {
  collections: readonly CollectionDefinition[];
  /**
   * The passwords the stack wants for the platform's users (`MONGODB_USER_PASSWORDS`); absent
   * when the variable is not set, and then no password is checked. Not this planner's: the
   * adapter plans them (`mongodb-credentials.ts`), before the collections.
   */
  users?: MongoUserPasswords;
  /**
   * The replica set the stack wants (`MONGODB_REPLICA_SET_MEMBERS`, set by the Kubernetes Job);
   * absent for a single server (Docker, a URL of one's own), whose membership is nobody's to keep.
   * Not this planner's: `mongodb-replica-set-plan.ts` plans it, before anything else.
   */
  replicaSet?: ReplicaSetDesired;
}

/** One collection as listCollections and listIndexes report it. */
export interface ObservedCollection {
  name: string;
  /** `collection`, `view` or `timeseries`. */
  type: string;
  /** listCollections' `options`: validator, validationLevel, validationAction, creation options. */
  options: Document;
  /** listIndexes, as the server reports them (a text key as `{ _fts: 'text', _ftsx: 1 }`). */
  indexes: IndexDescriptionInfo[];
}

export interface MongoLedgerEntry {
  subject: string;
  action: Change['action'];
  /** `sha256:<hex>` of the definition applied (canonical JSON, see `definitionChecksum`). */
  definitionChecksum: string;
  appliedAt: Date;
  appliedBy: string;
}

export interface MongoObserved {
  /** The desired collections that exist on the server (others are not the bootstrap's). */
  collections: ObservedCollection[];
  ledger: MongoLedgerEntry[];
}

/** What the adapter runs for a change; `checksum` goes to the ledger. */
export type MongoPayload =
  | { kind: 'create-collection'; collection: string; options: CreateCollectionOptions; checksum: string }
  | {
      kind: 'modify-collection';
      collection: string;
      validator: Document;
      validationLevel: CollectionDefinition['validationLevel'];
      validationAction: CollectionDefinition['validationAction'];
      checksum: string;
    }
  | { kind: 'create-index'; collection: string; index: NamedIndexDescription; checksum: string }
  | { kind: 'replace-index'; collection: string; index: NamedIndexDescription; checksum: string }
  | { kind: 'modify-index'; collection: string; name: string; expireAfterSeconds?: number; hidden?: boolean; checksum: string }
  | { kind: 'drop-index'; collection: string; name: string; checksum: string };

export type MongoChange = Change<MongoPayload>;
export type MongoPlan = Plan<MongoPayload>;

// ---------------------------------------------------------------------------------------------
// Where a definition lives, and what MongoDB changes in place

/** Where a collection's validator and indexes are defined: one file per collection, named after it. */
export function sourceOf(collection: string, what: 'collection' | 'indexes'): string {
  return `databases/mongodb/${what === 'collection' ? 'collections' : 'indexes'}/${collection.replaceAll('_', '-')}.ts`;
}

/** What collMod changes on an existing index without a rebuild. */
const MODIFIABLE_IN_PLACE = new Set(['expireAfterSeconds', 'hidden']);

// ---------------------------------------------------------------------------------------------
// Collections

const CREATION_OPTIONS: ReadonlyArray<keyof CreationOptions> = [
  'capped',
  'size',
  'max',
  'timeseries',
  'clusteredIndex',
  'expireAfterSeconds',
  'collation',
  'changeStreamPreAndPostImages',
];

/** The part of a collection definition the ledger's checksum covers. */
function collectionDefinition(definition: CollectionDefinition) {
  return {
    validator: definition.validator,
    validationLevel: definition.validationLevel,
    validationAction: definition.validationAction,
    options: definition.options ?? {},
  };
}

/** The part of an index definition the ledger's checksum covers: key order is kept. */
function indexDefinition(definition: CollectionDefinition, index: NamedIndexDescription) {
  const comparable = desiredIndex(index, definition.options?.collation);
  return { name: index.name, key: comparable.key, options: comparable.options };
}

const BRIEF_LENGTH = 80;

/** A value for a message: `none` when absent, JSON otherwise, cut to a readable length. */
function brief(value: unknown): string {
  if (value === undefined) return 'none';
  const json = JSON.stringify(value instanceof Date ? value.toISOString() : value) ?? String(value);
  return json.length > BRIEF_LENGTH ? `${json.slice(0, BRIEF_LENGTH - 1)}…` : json;
}

function describeDifferences(differences: readonly Difference[]): string {
  return differences.map((difference) => `${difference.field} differs (server ${brief(difference.server)}, definition ${brief(difference.definition)})`).join('; ');
}

const SHOWN_PATHS = 3;

function describeValidator(server: unknown, definition: unknown): string {
  if (server === undefined) return 'the server has no validator';
  const paths = differingPaths(server, definition);
  const shown = paths.slice(0, SHOWN_PATHS).map((difference) => `${difference.field} (server ${brief(difference.server)}, definition ${brief(difference.definition)})`);
  const more = paths.length > SHOWN_PATHS ? ` and ${paths.length - SHOWN_PATHS} more` : '';
  return `validator differs at ${shown.join(', ')}${more}`;
}

// ---------------------------------------------------------------------------------------------
// The ledger's part: what the bootstrap did last, for the messages

function ledgerNote(ledger: ReadonlyMap<string, MongoLedgerEntry>, subject: string, checksum: string, missing: boolean): string {
  const entry = ledger.get(subject);
  if (!entry || entry.action === 'delete') return '';
  const when = `${entry.appliedAt.toISOString()} by ${entry.appliedBy}`;
  if (missing) return ` (the bootstrap created it at ${when}: dropped since)`;
  if (entry.definitionChecksum === checksum) return ` (the bootstrap applied this same definition at ${when}: changed on the server since)`;
  return ` (last applied at ${when}; the definition changed since)`;
}

// ---------------------------------------------------------------------------------------------
// The plan

const REPLACE_HINT =
  'MongoDB cannot change this in place: give the new definition a new name, or run with --replace-indexes to drop and recreate it (queries go without the index while it rebuilds)';
const EXTRA_HINT = 'add it to the definitions, or run with --replace-indexes to drop it';

function duplicates(names: readonly string[]): string[] {
  return [...new Set(names.filter((name, index) => names.indexOf(name) !== index))];
}

/** Pure: the changes that bring `observed` (null: an empty database) to `desired`, in order. */
export function planMongo(desired: MongoDesired, observed: MongoObserved | null, flags: Flags): MongoPlan {
  const plan: MongoPlan = { engine: 'mongodb', changes: [], inSync: [], refusals: [] };
  const servers = new Map((observed?.collections ?? []).map((collection) => [collection.name, collection]));
  const ledger = new Map((observed?.ledger ?? []).map((entry) => [entry.subject, entry]));

  for (const name of duplicates(desired.collections.map((definition) => definition.name))) {
    plan.refusals.push(`collection ${name}: defined more than once in databases/mongodb/definitions.ts`);
  }
  for (const definition of desired.collections) {
    for (const name of duplicates(definition.indexes.map((index) => index.name))) {
      plan.refusals.push(`index ${definition.name}.${name}: defined more than once in ${sourceOf(definition.name, 'indexes')}`);
    }
    planCollection(plan, definition, servers.get(definition.name), ledger, flags);
  }
  return plan;
}

function planCollection(
  plan: MongoPlan,
  definition: CollectionDefinition,
  server: ObservedCollection | undefined,
  ledger: ReadonlyMap<string, MongoLedgerEntry>,
  flags: Flags,
): void {
  const subject = `collection ${definition.name}`;
  const source = sourceOf(definition.name, 'collection');
  const checksum = definitionChecksum(collectionDefinition(definition));
  const { validator, validationLevel, validationAction } = definition;

  if (!server) {
    plan.changes.push({
      subject,
      action: 'create',
      detail: `missing${ledgerNote(ledger, subject, checksum, true)}`,
      source,
      payload: {
        kind: 'create-collection',
        collection: definition.name,
        options: { ...definition.options, validator, validationLevel, validationAction },
        checksum,
      },
    });
    for (const index of definition.indexes) planIndex(plan, definition, index, undefined, ledger, flags);
    return;
  }

  if (server.type === 'view') {
    plan.refusals.push(`${subject}: the server has a view of that name, not a collection; drop or rename the view by hand`);
    return;
  }

  const creationDifferences = CREATION_OPTIONS.flatMap((option): Difference[] =>
    subsetOf(definition.options?.[option], server.options[option]) ? [] : [{ field: option, server: server.options[option], definition: definition.options?.[option] }],
  );
  if (creationDifferences.length > 0) {
    plan.refusals.push(
      `${subject}: creation option ${describeDifferences(creationDifferences)}; MongoDB sets it only when a collection is created, and the bootstrap never recreates one (its documents would go): migrate the data by hand or change the definition (${source})`,
    );
  }

  const reasons: string[] = [];
  if (!sameValue(server.options.validator, validator)) reasons.push(describeValidator(server.options.validator, validator));
  const level = (server.options.validationLevel as string | undefined) ?? 'strict';
  if (level !== validationLevel) reasons.push(`validationLevel differs (server ${level}, definition ${validationLevel})`);
  const action = (server.options.validationAction as string | undefined) ?? 'error';
  if (action !== validationAction) reasons.push(`validationAction differs (server ${action}, definition ${validationAction})`);
  if (reasons.length > 0) {
    plan.changes.push({
      subject,
      action: 'update',
      detail: `${reasons.join('; ')}: collMod (existing documents are not re-checked)${ledgerNote(ledger, subject, checksum, false)}`,
      source,
      payload: { kind: 'modify-collection', collection: definition.name, validator, validationLevel, validationAction, checksum },
    });
  } else if (creationDifferences.length === 0) {
    plan.inSync.push(subject);
  }

  const byName = new Map(server.indexes.map((index) => [index.name as string, index]));
  const wanted = new Set(definition.indexes.map((index) => index.name));
  // Drops first: a renamed index frees its key before the new name is created (MongoDB refuses
  // two indexes with the same key and options).
  for (const index of server.indexes) {
    const name = index.name as string;
    if (name === '_id_' || wanted.has(name)) continue;
    planExtraIndex(plan, definition, index, server, flags);
  }
  for (const index of definition.indexes) planIndex(plan, definition, index, byName.get(index.name), ledger, flags);
}

function planExtraIndex(plan: MongoPlan, definition: CollectionDefinition, index: IndexDescriptionInfo, server: ObservedCollection, flags: Flags): void {
  const name = index.name as string;
  const subject = `index ${definition.name}.${name}`;
  const source = sourceOf(definition.name, 'indexes');
  const reported = observedIndex(index);
  const present = new Set(server.indexes.map((candidate) => candidate.name));
  const twin = definition.indexes.find(
    (candidate) => !present.has(candidate.name) && indexDifferences(desiredIndex(candidate, definition.options?.collation), reported).length === 0,
  );
  const renamed = twin ? `; it is defined as ${twin.name} (a rename: MongoDB refuses a second index with the same key and options)` : '';
  if (flags.replaceIndexes) {
    plan.changes.push({
      subject,
      action: 'delete',
      detail: `on the server, not in the definitions${renamed}: dropped (--replace-indexes)`,
      source,
      payload: { kind: 'drop-index', collection: definition.name, name, checksum: definitionChecksum({ name, ...reported }) },
    });
  } else {
    plan.refusals.push(`${subject} ${brief(index.key)}: on the server, not in ${source}${renamed}; ${EXTRA_HINT}`);
  }
}

function planIndex(
  plan: MongoPlan,
  definition: CollectionDefinition,
  index: NamedIndexDescription,
  server: IndexDescriptionInfo | undefined,
  ledger: ReadonlyMap<string, MongoLedgerEntry>,
  flags: Flags,
): void {
  const subject = `index ${definition.name}.${index.name}`;
  const source = sourceOf(definition.name, 'indexes');
  const checksum = definitionChecksum(indexDefinition(definition, index));
  const collection = definition.name;

  // TTL indexes are single-field: MongoDB ignores expireAfterSeconds on a compound index it
  // creates, and collMod refuses to add it to one. Planned as a change, it would fail on the
  // server, or leave documents that never expire.
  if (typeof index.expireAfterSeconds === 'number' && Object.keys(index.key).length > 1) {
    plan.refusals.push(
      `${subject} ${brief(index.key)}: expireAfterSeconds on a compound index, which MongoDB does not expire (TTL indexes are single-field); give the TTL an index of its own on the date field (${source})`,
    );
    return;
  }

  if (!server) {
    plan.changes.push({
      subject,
      action: 'create',
      detail: `missing${ledgerNote(ledger, subject, checksum, true)}`,
      source,
      payload: { kind: 'create-index', collection, index, checksum },
    });
    return;
  }

  const differences = indexDifferences(desiredIndex(index, definition.options?.collation), observedIndex(server));
  if (differences.length === 0) {
    plan.inSync.push(subject);
    return;
  }
  const history = ledgerNote(ledger, subject, checksum, false);
  // collMod changes expireAfterSeconds (and makes a single-field index a TTL index, MongoDB 5.1+)
  // and the hidden flag without a rebuild. Removing a TTL is not among them.
  const inPlace = differences.every(
    (difference) => MODIFIABLE_IN_PLACE.has(difference.field) && (difference.field !== 'expireAfterSeconds' || typeof index.expireAfterSeconds === 'number'),
  );
  if (inPlace) {
    const fields = new Set(differences.map((difference) => difference.field));
    plan.changes.push({
      subject,
      action: 'update',
      detail: `${describeDifferences(differences)}: collMod, no rebuild${history}`,
      source,
      payload: {
        kind: 'modify-index',
        collection,
        name: index.name,
        ...(fields.has('expireAfterSeconds') ? { expireAfterSeconds: index.expireAfterSeconds! } : {}),
        ...(fields.has('hidden') ? { hidden: index.hidden ?? false } : {}),
        checksum,
      },
    });
    return;
  }
  if (flags.replaceIndexes) {
    plan.changes.push({
      subject,
      action: 'replace',
      detail: `${describeDifferences(differences)}: dropped and created (--replace-indexes)${history}`,
      source,
      payload: { kind: 'replace-index', collection, index, checksum },
    });
    return;
  }
  plan.refusals.push(`${subject}: ${describeDifferences(differences)}${history}; ${REPLACE_HINT}`);
}
