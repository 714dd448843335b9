/**
 * The MongoDB planner on plain data: what listCollections and listIndexes would report, in the
 * shapes MongoDB reports them, against collection definitions. No server: every decision of the
 * bootstrap (create, collMod, refuse, replace, drop) is taken here.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CollationOptions, Document, IndexDescriptionInfo } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { mongodbEngine } from '../../bootstrap/adapters/mongodb.ts';
import { keyPattern } from '../../bootstrap/adapters/mongodb-compare.ts';
import { planMongo, type MongoChange, type MongoDesired, type MongoLedgerEntry, type MongoObserved, type ObservedCollection } from '../../bootstrap/adapters/mongodb-plan.ts';
import { canonicalJson, definitionChecksum, sameValue } from '../../bootstrap/canonical-json.ts';
import { REPOSITORY_ROOT } from '../../bootstrap/runner.ts';
import type { CollectionDefinition, NamedIndexDescription } from '../../databases/mongodb/definitions.ts';
import { MONGODB_COLLECTIONS } from '../../databases/mongodb/definitions.ts';

const posts: CollectionDefinition = {
  name: 'posts',
  description: 'a test collection',
  validator: {
    $jsonSchema: {
      bsonType: 'object',
      required: ['title', 'at'],
      properties: {
        title: { bsonType: 'string', maxLength: 200 },
        at: { bsonType: 'date' },
        slug: { bsonType: 'string' },
        location: { bsonType: 'object' },
      },
    },
  },
  validationLevel: 'strict',
  validationAction: 'error',
  indexes: [
    { name: 'title_at', key: { title: 1, at: -1 } },
    { name: 'at_ttl', key: { at: 1 }, expireAfterSeconds: 3600 },
    { name: 'slug_unique', key: { slug: 1 }, unique: true },
    { name: 'title_text', key: { title: 'text' }, weights: { title: 5 } },
    { name: 'location_2dsphere', key: { location: '2dsphere' } },
  ],
};

const tags: CollectionDefinition = {
  name: 'tags',
  description: 'another test collection',
  validator: { $jsonSchema: { bsonType: 'object', required: ['name'], properties: { name: { bsonType: 'string' } } } },
  validationLevel: 'moderate',
  validationAction: 'warn',
  indexes: [{ name: 'name_unique', key: { name: 1 }, unique: true }],
};

const DESIRED: MongoDesired = { collections: [posts, tags] };

/** What listIndexes reports for `posts` once the bootstrap created it (MongoDB 8.0). */
function postsIndexes(): IndexDescriptionInfo[] {
  return [
    { v: 2, key: { _id: 1 }, name: '_id_' },
    { v: 2, key: { title: 1, at: -1 }, name: 'title_at' },
    { v: 2, key: { at: 1 }, name: 'at_ttl', expireAfterSeconds: 3600 },
    { v: 2, key: { slug: 1 }, name: 'slug_unique', unique: true },
    // A text index is reported by its internal key, its fields in `weights`, with the defaults.
    {
      v: 2,
      key: { _fts: 'text', _ftsx: 1 },
      name: 'title_text',
      weights: { title: 5 },
      default_language: 'english',
      language_override: 'language',
      textIndexVersion: 3,
    },
    { v: 2, key: { location: '2dsphere' }, name: 'location_2dsphere', '2dsphereIndexVersion': 3 },
  ];
}

function serverCollection(definition: CollectionDefinition, indexes: IndexDescriptionInfo[], options: Document = {}): ObservedCollection {
  return {
    name: definition.name,
    type: 'collection',
    options: {
      validator: structuredClone(definition.validator),
      validationLevel: definition.validationLevel,
      validationAction: definition.validationAction,
      ...options,
    },
    indexes,
  };
}

/** The server as the bootstrap leaves it: both collections, every index. */
function inSync(): MongoObserved {
  return {
    collections: [
      serverCollection(posts, postsIndexes()),
      serverCollection(tags, [
        { v: 2, key: { _id: 1 }, name: '_id_' },
        { v: 2, key: { name: 1 }, name: 'name_unique', unique: true },
      ]),
    ],
    ledger: [],
  };
}

/** The server's `posts`, changed by `change`. */
function withPosts(change: (collection: ObservedCollection) => void): MongoObserved {
  const observed = inSync();
  change(observed.collections[0]!);
  return observed;
}

function withIndex(name: string, change: (index: IndexDescriptionInfo) => IndexDescriptionInfo | undefined): MongoObserved {
  return withPosts((collection) => {
    collection.indexes = collection.indexes.flatMap((index) => {
      if (index.name !== name) return [index];
      const changed = change(index);
      return changed ? [changed] : [];
    });
  });
}

const summary = (changes: readonly MongoChange[]) => changes.map((change) => `${change.action} ${change.subject}`);

describe('the MongoDB plan', () => {
  it('creates every collection, each followed by its indexes, on a fresh database', () => {
    // Given no server state (offline) and an empty database
    for (const observed of [null, { collections: [], ledger: [] }]) {
      // When planned
      const plan = planMongo(DESIRED, observed, {});
      // Then everything is created, collections before their indexes, in definition order
      expect(summary(plan.changes)).toEqual([
        'create collection posts',
        'create index posts.title_at',
        'create index posts.at_ttl',
        'create index posts.slug_unique',
        'create index posts.title_text',
        'create index posts.location_2dsphere',
        'create collection tags',
        'create index tags.name_unique',
      ]);
      expect(plan.refusals).toEqual([]);
      expect(plan.inSync).toEqual([]);
      expect(plan.changes[0]!.detail).toBe('missing');
      expect(plan.changes[0]!.source).toBe('databases/mongodb/collections/posts.ts');
      expect(plan.changes[1]!.source).toBe('databases/mongodb/indexes/posts.ts');
    }
  });

  it('creates a collection with its validator, validation level and action', () => {
    const plan = planMongo(DESIRED, null, {});
    const create = plan.changes.find((change) => change.subject === 'collection tags')!;
    expect(create.payload).toMatchObject({
      kind: 'create-collection',
      collection: 'tags',
      options: { validator: tags.validator, validationLevel: 'moderate', validationAction: 'warn' },
    });
    const index = plan.changes.find((change) => change.subject === 'index tags.name_unique')!;
    expect(index.payload).toMatchObject({ kind: 'create-index', collection: 'tags', index: tags.indexes[0] });
  });

  it('changes nothing when the server has what the definitions say', () => {
    const plan = planMongo(DESIRED, inSync(), {});
    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([]);
    expect(plan.inSync).toEqual([
      'collection posts',
      'index posts.title_at',
      'index posts.at_ttl',
      'index posts.slug_unique',
      'index posts.title_text',
      'index posts.location_2dsphere',
      'collection tags',
      'index tags.name_unique',
    ]);
  });

  it('updates a validator that differs with collMod, naming where it differs', () => {
    // Given a server whose validator allows shorter titles than the definition
    const observed = withPosts((collection) => {
      (collection.options.validator as Document).$jsonSchema.properties.title.maxLength = 100;
    });
    // When planned
    const plan = planMongo(DESIRED, observed, {});
    // Then the collection is updated (with the whole desired validator), nothing else
    expect(summary(plan.changes)).toEqual(['update collection posts']);
    const [change] = plan.changes;
    expect(change!.detail).toBe('validator differs at $jsonSchema.properties.title.maxLength (server 100, definition 200): collMod (existing documents are not re-checked)');
    expect(change!.payload).toEqual({
      kind: 'modify-collection',
      collection: 'posts',
      validator: posts.validator,
      validationLevel: 'strict',
      validationAction: 'error',
      checksum: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(plan.inSync).not.toContain('collection posts');
    expect(plan.inSync).toContain('index posts.title_at');
  });

  it('updates a collection without a validator', () => {
    const plan = planMongo(
      DESIRED,
      withPosts((collection) => delete collection.options.validator),
      {},
    );
    expect(summary(plan.changes)).toEqual(['update collection posts']);
    expect(plan.changes[0]!.detail).toMatch(/^the server has no validator: collMod/);
  });

  it('updates a validation level or action that differs', () => {
    const level = planMongo(
      DESIRED,
      withPosts((collection) => (collection.options.validationLevel = 'moderate')),
      {},
    );
    expect(summary(level.changes)).toEqual(['update collection posts']);
    expect(level.changes[0]!.detail).toMatch(/^validationLevel differs \(server moderate, definition strict\): collMod/);

    const action = planMongo(
      DESIRED,
      withPosts((collection) => (collection.options.validationAction = 'warn')),
      {},
    );
    expect(summary(action.changes)).toEqual(['update collection posts']);
    expect(action.changes[0]!.detail).toMatch(/^validationAction differs \(server warn, definition error\): collMod/);
  });

  it('reads a level and action the server does not report as its defaults (strict, error)', () => {
    // posts is strict/error: in sync without the fields
    const defaults = (collection: ObservedCollection) => {
      delete collection.options.validationLevel;
      delete collection.options.validationAction;
    };
    expect(planMongo(DESIRED, withPosts(defaults), {}).changes).toEqual([]);
    // tags is moderate/warn: both differ
    const observed = inSync();
    defaults(observed.collections[1]!);
    const plan = planMongo(DESIRED, observed, {});
    expect(summary(plan.changes)).toEqual(['update collection tags']);
    expect(plan.changes[0]!.detail).toMatch(/^validationLevel differs \(server strict, definition moderate\); validationAction differs \(server error, definition warn\)/);
  });

  it('ignores the key order of validators', () => {
    // Given the server's validator with every object's keys in another order
    const reversed = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reversed)
        : value !== null && typeof value === 'object'
          ? Object.fromEntries(
              Object.entries(value)
                .reverse()
                .map(([key, item]) => [key, reversed(item)]),
            )
          : value;
    const observed = withPosts((collection) => (collection.options.validator = reversed(posts.validator) as Document));
    expect(Object.keys((observed.collections[0]!.options.validator as Document).$jsonSchema)).toEqual(['properties', 'required', 'bsonType']);
    // Then nothing changes
    expect(planMongo(DESIRED, observed, {}).changes).toEqual([]);
  });

  it('creates a missing index, and only that', () => {
    const plan = planMongo(
      DESIRED,
      withIndex('slug_unique', () => undefined),
      {},
    );
    expect(summary(plan.changes)).toEqual(['create index posts.slug_unique']);
    expect(plan.changes[0]!.payload).toMatchObject({ kind: 'create-index', collection: 'posts', index: { name: 'slug_unique', key: { slug: 1 }, unique: true } });
    expect(plan.refusals).toEqual([]);
  });

  it('refuses an index whose options differ, naming it and what differs', () => {
    // Given slug_unique on the server without unique
    const observed = withIndex('slug_unique', ({ unique: _unique, ...index }) => index);
    const plan = planMongo(DESIRED, observed, {});
    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([
      'index posts.slug_unique: unique differs (server none, definition true); MongoDB cannot change this in place: give the new definition a new name, or run with --replace-indexes to drop and recreate it (queries go without the index while it rebuilds)',
    ]);
  });

  it('replaces an index whose options differ when replaceIndexes allows it', () => {
    const observed = withIndex('slug_unique', (index) => ({ ...index, unique: false, sparse: true }));
    const plan = planMongo(DESIRED, observed, { replaceIndexes: true });
    expect(plan.refusals).toEqual([]);
    expect(summary(plan.changes)).toEqual(['replace index posts.slug_unique']);
    expect(plan.changes[0]!.detail).toBe('sparse differs (server true, definition none); unique differs (server none, definition true): dropped and created (--replace-indexes)');
    expect(plan.changes[0]!.payload).toMatchObject({ kind: 'replace-index', collection: 'posts', index: { name: 'slug_unique', unique: true } });
  });

  it('treats key order as significant for indexes', () => {
    // Given title_at on the server as { at: -1, title: 1 }: another index, same fields
    const observed = withIndex('title_at', (index) => ({ ...index, key: { at: -1, title: 1 } }));
    const plan = planMongo(DESIRED, observed, {});
    expect(plan.refusals).toHaveLength(1);
    expect(plan.refusals[0]).toMatch(/^index posts\.title_at: key differs \(server \{"at":-1,"title":1\}, definition \{"title":1,"at":-1\}\); MongoDB cannot change this in place/);
    expect(summary(planMongo(DESIRED, observed, { replaceIndexes: true }).changes)).toEqual(['replace index posts.title_at']);
  });

  it('updates a TTL with collMod, without the flag, when only expireAfterSeconds differs', () => {
    const observed = withIndex('at_ttl', (index) => ({ ...index, expireAfterSeconds: 60 }));
    const plan = planMongo(DESIRED, observed, {});
    expect(plan.refusals).toEqual([]);
    expect(summary(plan.changes)).toEqual(['update index posts.at_ttl']);
    expect(plan.changes[0]!.detail).toBe('expireAfterSeconds differs (server 60, definition 3600): collMod, no rebuild');
    expect(plan.changes[0]!.payload).toEqual({ kind: 'modify-index', collection: 'posts', name: 'at_ttl', expireAfterSeconds: 3600, checksum: expect.any(String) });
  });

  it('refuses to change a TTL in place when its key differs too, and to remove a TTL', () => {
    const keyAndTtl = planMongo(
      DESIRED,
      withIndex('at_ttl', (index) => ({ ...index, key: { at: -1 }, expireAfterSeconds: 60 })),
      {},
    );
    expect(keyAndTtl.changes).toEqual([]);
    expect(keyAndTtl.refusals[0]).toMatch(/^index posts\.at_ttl: key differs .*; expireAfterSeconds differs \(server 60, definition 3600\)/);
    // Given a TTL on title_at, which the definition does not expire: collMod cannot remove a TTL
    const removal = planMongo(
      DESIRED,
      withIndex('title_at', (index) => ({ ...index, expireAfterSeconds: 60 })),
      {},
    );
    expect(removal.changes).toEqual([]);
    expect(removal.refusals[0]).toMatch(/^index posts\.title_at: expireAfterSeconds differs \(server 60, definition none\)/);
  });

  it('refuses a TTL on a compound index at plan time, on a fresh collection and on an existing index alike', () => {
    // Given title_at (title, at) defined with a TTL
    const withTtl: MongoDesired = {
      collections: [{ ...posts, indexes: posts.indexes!.map((index) => (index.name === 'title_at' ? { ...index, expireAfterSeconds: 86_400 } : index)) }, tags],
    };
    const onExisting = planMongo(
      withTtl,
      withIndex('title_at', (index) => index),
      {},
    );
    const onFresh = planMongo(withTtl, null, {});
    // Then neither plans a change MongoDB would refuse (collMod) or ignore (create)
    for (const plan of [onExisting, onFresh]) {
      expect(plan.changes.filter((change) => change.subject === 'index posts.title_at')).toEqual([]);
      expect(plan.refusals).toEqual([expect.stringMatching(/^index posts\.title_at \{"title":1,"at":-1\}: expireAfterSeconds on a compound index, which MongoDB does not expire/)]);
    }
  });

  it('unhides a hidden index with collMod', () => {
    const plan = planMongo(
      DESIRED,
      withIndex('title_at', (index) => ({ ...index, hidden: true })),
      {},
    );
    expect(summary(plan.changes)).toEqual(['update index posts.title_at']);
    expect(plan.changes[0]!.payload).toMatchObject({ kind: 'modify-index', name: 'title_at', hidden: false });
    expect(plan.changes[0]!.payload).not.toHaveProperty('expireAfterSeconds');
  });

  it('compares a text index in the form listIndexes reports it, ignoring the server-filled version', () => {
    // In sync (above) despite _fts/_ftsx and textIndexVersion; a weight change is a difference
    const observed = withIndex('title_text', (index) => ({ ...index, weights: { title: 1 } }));
    const plan = planMongo(DESIRED, observed, {});
    expect(plan.refusals).toEqual([expect.stringMatching(/^index posts\.title_text: weights differs \(server \{"title":1\}, definition \{"title":5\}\)/)]);
    const language = planMongo(
      DESIRED,
      withIndex('title_text', (index) => ({ ...index, default_language: 'portuguese' })),
      {},
    );
    expect(language.refusals[0]).toMatch(/default_language differs \(server "portuguese", definition "english"\)/);
  });

  it("places a compound text index's fields where listIndexes puts them", () => {
    const definition: CollectionDefinition = {
      ...tags,
      indexes: [{ name: 'owner_text', key: { owner: 1, title: 'text', body: 'text', at: -1 } }],
    };
    const observed: MongoObserved = {
      collections: [
        serverCollection(definition, [
          { v: 2, key: { _id: 1 }, name: '_id_' },
          {
            v: 2,
            key: { owner: 1, _fts: 'text', _ftsx: 1, at: -1 },
            name: 'owner_text',
            weights: { body: 1, title: 1 },
            default_language: 'english',
            language_override: 'language',
            textIndexVersion: 3,
          },
        ]),
      ],
      ledger: [],
    };
    const plan = planMongo({ collections: [definition] }, observed, {});
    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([]);
    expect(plan.inSync).toContain('index tags.owner_text');
  });

  it('refuses an index on the server that the definitions do not list, and drops it with replaceIndexes', () => {
    const observed = withPosts((collection) => collection.indexes.push({ v: 2, key: { views: -1 }, name: 'by_views' }));
    const refused = planMongo(DESIRED, observed, {});
    expect(refused.changes).toEqual([]);
    expect(refused.refusals).toEqual([
      'index posts.by_views {"views":-1}: on the server, not in databases/mongodb/indexes/posts.ts; add it to the definitions, or run with --replace-indexes to drop it',
    ]);
    const replaced = planMongo(DESIRED, observed, { replaceIndexes: true });
    expect(replaced.refusals).toEqual([]);
    expect(summary(replaced.changes)).toEqual(['delete index posts.by_views']);
    expect(replaced.changes[0]!.payload).toMatchObject({ kind: 'drop-index', collection: 'posts', name: 'by_views' });
  });

  it('names a renamed index, and drops the old name before creating the new one', () => {
    // Given title_at on the server under its former name
    const observed = withIndex('title_at', (index) => ({ ...index, name: 'title_1_at_-1' }));
    const refused = planMongo(DESIRED, observed, {});
    expect(refused.refusals[0]).toMatch(/^index posts\.title_1_at_-1 .*: on the server, not in databases\/mongodb\/indexes\/posts\.ts; it is defined as title_at \(a rename/);
    const replaced = planMongo(DESIRED, observed, { replaceIndexes: true });
    expect(summary(replaced.changes)).toEqual(['delete index posts.title_1_at_-1', 'create index posts.title_at']);
  });

  it('never drops the _id index', () => {
    const plan = planMongo(DESIRED, inSync(), { replaceIndexes: true });
    expect(plan.changes).toEqual([]);
  });

  it('refuses a creation option that differs, since only recreating the collection would change it', () => {
    const observed = withPosts((collection) => Object.assign(collection.options, { capped: true, size: 4096 }));
    const plan = planMongo(DESIRED, observed, { replaceIndexes: true });
    expect(plan.refusals).toEqual([
      expect.stringMatching(
        /^collection posts: creation option capped differs \(server true, definition none\); size differs \(server 4096, definition none\); MongoDB sets it only when a collection is created/,
      ),
    ]);
    expect(plan.inSync).not.toContain('collection posts');
  });

  it('compares a collation by the keys the definition sets (the server reports every default)', () => {
    const definition: CollectionDefinition = { ...tags, options: { collation: { locale: 'en', strength: 2 } } };
    // As the server reports it: every default filled in, and the ICU version.
    const reported: CollationOptions & { version: string } = {
      locale: 'en',
      caseLevel: false,
      caseFirst: 'off',
      strength: 2,
      numericOrdering: false,
      alternate: 'non-ignorable',
      maxVariable: 'punct',
      normalization: false,
      backwards: false,
      version: '57.1',
    };
    const observed = (collation: CollationOptions): MongoObserved => ({
      collections: [
        serverCollection(
          definition,
          [
            { v: 2, key: { _id: 1 }, name: '_id_', collation },
            // Indexes inherit the collection's default collation.
            { v: 2, key: { name: 1 }, name: 'name_unique', unique: true, collation },
          ],
          { collation },
        ),
      ],
      ledger: [],
    });
    const same = planMongo({ collections: [definition] }, observed(reported), {});
    expect(same.refusals).toEqual([]);
    expect(same.changes).toEqual([]);
    const other = planMongo({ collections: [definition] }, observed({ ...reported, strength: 3 }), {});
    expect(other.refusals).toEqual([
      expect.stringMatching(/^collection tags: creation option collation differs/),
      expect.stringMatching(/^index tags\.name_unique: collation differs/),
    ]);
  });

  it('refuses a view where a collection is defined', () => {
    const observed = withPosts((collection) => {
      collection.type = 'view';
      collection.options = { viewOn: 'elsewhere', pipeline: [] };
      collection.indexes = [];
    });
    const plan = planMongo(DESIRED, observed, {});
    expect(plan.refusals).toEqual(['collection posts: the server has a view of that name, not a collection; drop or rename the view by hand']);
    expect(plan.changes).toEqual([]);
  });

  it('refuses definitions that name a collection or an index twice', () => {
    const twice: MongoDesired = { collections: [posts, { ...tags, indexes: [...tags.indexes, { name: 'name_unique', key: { other: 1 } }] }, posts] };
    const plan = planMongo(twice, null, {});
    expect(plan.refusals).toEqual([
      'collection posts: defined more than once in databases/mongodb/definitions.ts',
      'index tags.name_unique: defined more than once in databases/mongodb/indexes/tags.ts',
    ]);
  });

  it('tells from the ledger whether the server drifted or the definition changed', () => {
    const drifted = withPosts((collection) => (collection.options.validationLevel = 'moderate'));
    const appliedAt = new Date('2026-11-20T10:00:00.000Z');
    const current = planMongo(DESIRED, null, {}).changes[0]!.payload.checksum;
    const entry = (definitionChecksum: string): MongoLedgerEntry => ({ subject: 'collection posts', action: 'create', definitionChecksum, appliedAt, appliedBy: 'root from ci' });

    drifted.ledger = [entry(current)];
    expect(planMongo(DESIRED, drifted, {}).changes[0]!.detail).toMatch(
      /collMod \(existing documents are not re-checked\) \(the bootstrap applied this same definition at 2026-11-20T10:00:00\.000Z by root from ci: changed on the server since\)$/,
    );
    drifted.ledger = [entry('sha256:older')];
    expect(planMongo(DESIRED, drifted, {}).changes[0]!.detail).toMatch(/\(last applied at 2026-11-20T10:00:00\.000Z by root from ci; the definition changed since\)$/);
    // And a subject the bootstrap created that is gone
    const gone: MongoObserved = { collections: [], ledger: [entry(current)] };
    expect(planMongo(DESIRED, gone, {}).changes[0]!.detail).toBe('missing (the bootstrap created it at 2026-11-20T10:00:00.000Z by root from ci: dropped since)');
  });
});

describe('canonical comparison', () => {
  it('ignores the key order of objects and keeps the order of arrays', () => {
    expect(sameValue({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(sameValue({ a: { c: [1, 2], d: 1 } }, { a: { d: 1, c: [1, 2] } })).toBe(true);
    expect(sameValue([1, 2], [2, 1])).toBe(false);
    expect(sameValue({ a: 1 }, { a: 1, b: undefined })).toBe(true);
    expect(sameValue({ a: 1 }, { a: '1' })).toBe(false);
    expect(sameValue(new Date(0), '1970-01-01T00:00:00.000Z')).toBe(false);
    expect(sameValue(/a/i, /a/)).toBe(false);
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
  });

  it('keeps the field order of an index key', () => {
    expect(keyPattern({ title: 1, at: -1 })).toEqual([
      ['title', 1],
      ['at', -1],
    ]);
    expect(sameValue(keyPattern({ title: 1, at: -1 }), keyPattern({ at: -1, title: 1 }))).toBe(false);
    expect(
      keyPattern(
        new Map<string, 1 | -1>([
          ['b', 1],
          ['a', -1],
        ]),
      ),
    ).toEqual([
      ['b', 1],
      ['a', -1],
    ]);
  });

  it('checksums validators regardless of key order, index keys by their order', () => {
    expect(definitionChecksum({ validator: { a: 1, b: 2 } })).toBe(definitionChecksum({ validator: { b: 2, a: 1 } }));
    const checksumOf = (index: NamedIndexDescription) => planMongo({ collections: [{ ...tags, indexes: [index] }] }, null, {}).changes[1]!.payload.checksum;
    expect(checksumOf({ name: 'x', key: { a: 1, b: 1 } })).not.toBe(checksumOf({ name: 'x', key: { b: 1, a: 1 } }));
    expect(checksumOf({ name: 'x', key: { a: 1 }, unique: false })).toBe(checksumOf({ name: 'x', key: { a: 1 } }));
  });
});

describe("the plan for the platform's definitions", () => {
  it('creates every collection and index, collections before their indexes, offline', () => {
    // Given the real definitions and no server
    const plan = mongodbEngine.plan(mongodbEngine.desired({}), null, {});
    // Then each collection is created, followed by its indexes, in definition order
    const expected = MONGODB_COLLECTIONS.flatMap((definition) => [
      `create collection ${definition.name}`,
      ...definition.indexes.map((index) => `create index ${definition.name}.${index.name}`),
    ]);
    expect(summary(plan.changes)).toEqual(expected);
    expect(plan.changes).toHaveLength(MONGODB_COLLECTIONS.length + MONGODB_COLLECTIONS.reduce((count, definition) => count + definition.indexes.length, 0));
    expect(plan.changes.filter((change) => change.subject.startsWith('collection ')).map((change) => change.subject)).toEqual([
      'collection content_drafts',
      'collection user_preferences',
      'collection audit_logs',
      'collection application_logs',
      'collection metadata',
    ]);
    expect(plan.refusals).toEqual([]);
  });

  it('names a source file that exists for every change', () => {
    const plan = mongodbEngine.plan(mongodbEngine.desired({}), null, {});
    for (const change of plan.changes) expect(existsSync(join(REPOSITORY_ROOT, change.source)), change.source).toBe(true);
  });

  it('is in sync with what listIndexes reports once the definitions are created', () => {
    // Given the server as MongoDB 8.0 reports the created definitions: plain indexes echo their
    // options; text and 2dsphere indexes are reported in their internal forms
    const reported = (index: NamedIndexDescription): IndexDescriptionInfo => {
      const { key, ...options } = index;
      const values = Object.values(key);
      if (values.includes('text')) {
        const weights = Object.fromEntries(
          Object.entries(key)
            .filter(([, direction]) => direction === 'text')
            .map(([field]) => [field, 1]),
        );
        return { v: 2, key: { _fts: 'text', _ftsx: 1 }, ...options, weights: { ...weights, ...index.weights }, textIndexVersion: 3 };
      }
      if (values.includes('2dsphere')) return { v: 2, key, ...options, '2dsphereIndexVersion': 3 };
      return { v: 2, key, ...options };
    };
    const observed: MongoObserved = {
      collections: MONGODB_COLLECTIONS.map((definition) => serverCollection(definition, [{ v: 2, key: { _id: 1 }, name: '_id_' }, ...definition.indexes.map(reported)])),
      ledger: [],
    };
    const plan = mongodbEngine.plan(mongodbEngine.desired({}), observed, {});
    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([]);
    expect(plan.inSync).toHaveLength(MONGODB_COLLECTIONS.length + MONGODB_COLLECTIONS.reduce((count, definition) => count + definition.indexes.length, 0));
  });
});
