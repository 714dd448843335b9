/**
 * The MongoDB asset definitions (databases/mongodb/definitions.ts): validators, validation
 * settings and indexes.
 *
 * No MongoDB server runs on this machine (ENGINES.md). Without one, what the server would check is
 * checked from its documentation: validators use only the $jsonSchema keywords MongoDB accepts,
 * index definitions are well formed and name fields the validators define, and sample documents
 * pass (or fail) a local evaluation of the validators. With MONGODB_URL set, the same definitions
 * are applied to a throwaway database on a real server; without it those tests are skipped.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { MongoClient, MongoServerError, ObjectId, type Db, type Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_RETENTION_DAYS } from '../databases/mongodb/collections/audit-logs.ts';
import { APPLICATION_LOG_RETENTION_DAYS } from '../databases/mongodb/collections/application-logs.ts';
import { AUTOSAVE_LIMIT } from '../databases/mongodb/collections/content-drafts.ts';
import { days, type NamedIndexDescription } from '../databases/mongodb/collection-definition.ts';
import { MONGODB_COLLECTIONS, type CollectionDefinition } from '../databases/mongodb/definitions.ts';
import { bsonSchemaProblems, bsonTypesOf, schemaAtPath, type BsonSchema } from '../databases/mongodb/json-schema.ts';
import { schemaViolations } from './support/bson-schema-evaluator.ts';
import { typeErrors } from './support/typecheck.ts';

const MONGODB_URL = process.env.MONGODB_URL;

function collection(name: string): CollectionDefinition {
  const found = MONGODB_COLLECTIONS.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no collection ${name} in MONGODB_COLLECTIONS`);
  return found;
}

function index(collectionName: string, indexName: string): NamedIndexDescription {
  const found = collection(collectionName).indexes.find((candidate) => candidate.name === indexName);
  if (!found) throw new Error(`no index ${indexName} on ${collectionName}`);
  return found;
}

const schemaOf = (definition: CollectionDefinition): BsonSchema => definition.validator.$jsonSchema;

const NAMES = MONGODB_COLLECTIONS.map((definition) => definition.name);

// Compile-time: `type` is not a keyword of the project's BsonSchema, and an index needs a name.
// `tsc -p .` fails if either line ever compiles (an unused @ts-expect-error is an error); the
// "type errors" tests below check the same at run time.
// @ts-expect-error type is refused in favour of bsonType
const schemaWithType: BsonSchema = { type: 'string' };
// @ts-expect-error the bootstrap matches indexes by name, so the name is required
const indexWithoutName: NamedIndexDescription = { key: { userId: 1 } };
void schemaWithType;
void indexWithoutName;

/** Documents as the platform would write them, one valid per collection. */
function validSamples(): Record<string, Document> {
  const now = new Date();
  return {
    content_drafts: {
      _id: new ObjectId(),
      draftId: randomUUID(),
      articleId: randomUUID(),
      authorId: randomUUID(),
      version: 3,
      title: 'Sourdough at altitude',
      body: 'Water boils earlier up here, so…',
      blocks: [
        { id: 'b1', type: 'heading', data: { level: 2, text: 'Why altitude matters' } },
        { id: 'b2', type: 'paragraph', data: { text: 'Water boils earlier up here, so…' } },
      ],
      autosaves: [{ at: now, title: 'Sourdough at altitude', body: 'Water boils earlier' }],
      status: 'editing',
      createdAt: now,
      updatedAt: now,
    },
    user_preferences: {
      _id: new ObjectId(),
      userId: randomUUID(),
      settings: {
        theme: 'dark',
        locale: 'pt-BR',
        timezone: 'America/Sao_Paulo',
        notifications: { email: true, push: false, digest: 'weekly' },
        // A preference the schema does not know yet: allowed in settings.
        editorFontSize: 16,
      },
      createdAt: now,
      updatedAt: now,
    },
    audit_logs: {
      _id: new ObjectId(),
      actor: { type: 'user', id: randomUUID(), name: 'Ada Editor' },
      action: 'article.publish',
      target: { type: 'article', id: randomUUID() },
      at: now,
      ip: '2001:db8::1',
      requestId: 'req-42',
      details: { from: 'review', to: 'published' },
    },
    application_logs: {
      _id: new ObjectId(),
      level: 'error',
      service: 'search-api',
      message: 'Elasticsearch timed out after 2000 ms',
      at: now,
      host: 'search-api-7d9f-x2',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      context: { query: 'sourdough', attempt: 2 },
    },
    metadata: {
      _id: new ObjectId(),
      entityType: 'media',
      entityId: randomUUID(),
      data: { camera: 'X100V', iso: 400 },
      location: { type: 'Point', coordinates: [13.405, 52.52] },
      createdAt: now,
      updatedAt: now,
    },
  };
}

/** One invalid document per collection, each wrong in one way a real bug would be. */
function invalidSamples(): Record<string, { document: Document; violation: RegExp }> {
  const valid = validSamples();
  const now = new Date();
  return {
    content_drafts: {
      // A writer that forgot $slice when pushing autosaves.
      document: { ...valid.content_drafts, _id: new ObjectId(), autosaves: Array.from({ length: AUTOSAVE_LIMIT + 1 }, () => ({ at: now, title: '', body: '' })) },
      violation: /autosaves: more than 10 items/,
    },
    user_preferences: {
      // An upper-case uuid would never match PostgreSQL's lower-case text in a lookup.
      document: { ...valid.user_preferences, _id: new ObjectId(), userId: randomUUID().toUpperCase() },
      violation: /userId: does not match/,
    },
    audit_logs: {
      // An entry without an actor is worthless as evidence.
      document: { _id: new ObjectId(), action: 'article.publish', at: now },
      violation: /missing required field actor/,
    },
    application_logs: {
      // A timestamp as a string would never expire: TTL indexes only read BSON dates.
      document: { ...valid.application_logs, _id: new ObjectId(), at: now.toISOString() },
      violation: /\.at: expected bsonType date, got string/,
    },
    metadata: {
      // [latitude, longitude] instead of GeoJSON's [longitude, latitude], in the south of Chile.
      document: { ...valid.metadata, _id: new ObjectId(), location: { type: 'Point', coordinates: [-53.16, -170.9] } },
      violation: /coordinates\[1\]: below the minimum -90/,
    },
  };
}

describe('MongoDB validators', () => {
  it('defines five collections with unique names', () => {
    expect(NAMES).toEqual(['content_drafts', 'user_preferences', 'audit_logs', 'application_logs', 'metadata']);
    expect(new Set(NAMES).size).toBe(NAMES.length);
  });

  it.each(NAMES)('the %s validator uses only keywords and BSON types MongoDB accepts', (name) => {
    expect(bsonSchemaProblems(schemaOf(collection(name)))).toEqual([]);
  });

  it.each(NAMES)('the %s validator refuses unknown top-level fields and lists _id', (name) => {
    const schema = schemaOf(collection(name));
    expect(schema.bsonType).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties?._id?.bsonType).toBe('objectId');
  });

  it('chooses validation level and action per collection as documented in collections/', () => {
    const settings = Object.fromEntries(MONGODB_COLLECTIONS.map((definition) => [definition.name, `${definition.validationLevel}/${definition.validationAction}`]));
    expect(settings).toEqual({
      content_drafts: 'moderate/error',
      user_preferences: 'strict/error',
      audit_logs: 'strict/error',
      application_logs: 'strict/warn',
      metadata: 'strict/error',
    });
  });
});

describe('the $jsonSchema keyword checker', () => {
  it('refuses type, $ref and format, naming where they are', () => {
    const problems = bsonSchemaProblems({
      bsonType: 'object',
      properties: {
        title: { type: 'string' },
        author: { $ref: '#/definitions/author' },
        publishedAt: { bsonType: 'string', format: 'date-time' },
      },
    });
    expect(problems).toEqual([
      '$jsonSchema.properties.title.type: use bsonType, not type (project rule: one keyword for types, and "integer" is not supported)',
      '$jsonSchema.properties.author.$ref: not supported by MongoDB\'s $jsonSchema (listed under "Omissions")',
      '$jsonSchema.properties.publishedAt.format: not supported by MongoDB\'s $jsonSchema (listed under "Omissions")',
    ]);
  });

  it('refuses the other omissions and unknown keywords', () => {
    const problems = bsonSchemaProblems({ $schema: 'http://json-schema.org/draft-04/schema#', id: 'x', definitions: {}, default: {}, maxLenght: 3 });
    expect(problems).toHaveLength(5);
    expect(problems[4]).toBe('$jsonSchema.maxLenght: unknown keyword; MongoDB refuses keywords outside its "Available Keywords" list');
  });

  it('refuses a bsonType that is not a BSON alias, such as integer', () => {
    expect(bsonSchemaProblems({ bsonType: ['int', 'integer'] })).toEqual([expect.stringMatching(/^\$jsonSchema\.bsonType: "integer" is not a BSON type alias/)]);
  });

  it('refuses a required field that properties does not define', () => {
    expect(bsonSchemaProblems({ bsonType: 'object', required: ['userId'], properties: { userID: { bsonType: 'string' } } })).toEqual([
      '$jsonSchema.required: "userId" is required but not defined in properties',
    ]);
  });

  it('refuses draft-6 numeric exclusiveMinimum and a malformed pattern', () => {
    const problems = bsonSchemaProblems({ bsonType: 'int', minimum: 0, exclusiveMinimum: 0, properties: { slug: { bsonType: 'string', pattern: '(' } } });
    expect(problems).toEqual([
      '$jsonSchema.exclusiveMinimum: expected a boolean (JSON Schema draft 4), got 0',
      expect.stringMatching(/^\$jsonSchema\.properties\.slug\.pattern: not a valid regular expression/),
    ]);
  });

  it('treats a field called type as data, not as the keyword', () => {
    expect(bsonSchemaProblems({ bsonType: 'object', required: ['type'], properties: { type: { enum: ['Point'] } } })).toEqual([]);
  });

  it('checks schemas nested in items, anyOf and additionalProperties', () => {
    const problems = bsonSchemaProblems({
      bsonType: 'array',
      items: [{ bsonType: 'number' }, { type: 'number' }],
      additionalItems: { format: 'uri' },
      anyOf: [{ bsonType: 'strin' }],
    });
    expect(problems).toEqual([
      '$jsonSchema.items[1].type: use bsonType, not type (project rule: one keyword for types, and "integer" is not supported)',
      '$jsonSchema.additionalItems.format: not supported by MongoDB\'s $jsonSchema (listed under "Omissions")',
      expect.stringMatching(/^\$jsonSchema\.anyOf\[0\]\.bsonType: "strin" is not a BSON type alias/),
    ]);
  });

  it('type errors: a `type` keyword and an unnamed index do not compile, the correct forms do', () => {
    const lines = [
      "import type { BsonSchema } from '../databases/mongodb/json-schema.ts';",
      "import type { NamedIndexDescription } from '../databases/mongodb/collection-definition.ts';",
      "export const withType: BsonSchema = { type: 'string' };",
      "export const withBsonType: BsonSchema = { bsonType: 'string', maxLength: 3 };",
      "export const withInteger: BsonSchema = { bsonType: 'integer' };",
      'export const unnamed: NamedIndexDescription = { key: { userId: 1 } };',
      "export const named: NamedIndexDescription = { name: 'user_unique', key: { userId: 1 }, unique: true };",
    ];
    const errors = typeErrors(lines.join('\n'));
    const on = (constant: string): string[] => {
      const line = lines.findIndex((text) => text.includes(`const ${constant}:`)) + 1;
      return errors.filter((error) => error.startsWith(`line ${line}:`));
    };
    expect(on('withType')).toEqual([expect.stringContaining("'type' does not exist in type 'BsonSchema'")]);
    expect(on('withInteger')).toEqual([expect.stringContaining('"integer"')]);
    expect(on('unnamed')).toEqual([expect.stringContaining("Property 'name' is missing")]);
    expect(on('withBsonType')).toEqual([]);
    expect(on('named')).toEqual([]);
    expect(errors).toHaveLength(3);
  });
});

describe('MongoDB indexes', () => {
  it.each(NAMES)('every index of %s has a unique explicit name', (name) => {
    const names = collection(name).indexes.map((definition) => definition.name);
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names).size).toBe(names.length);
    // _id_ is MongoDB's own; a definition with that name would fight the server's.
    expect(names).not.toContain('_id_');
    for (const indexName of names) expect(indexName).toMatch(/^[a-z][a-z0-9_]*$/);
  });

  it.each(NAMES)('every index key of %s names a field its validator defines', (name) => {
    const definition = collection(name);
    const undefinedFields = definition.indexes.flatMap((indexDefinition) =>
      Object.keys(indexDefinition.key)
        .filter((field) => schemaAtPath(schemaOf(definition), field) === undefined)
        .map((field) => `${indexDefinition.name}: ${field}`),
    );
    expect(undefinedFields).toEqual([]);
  });

  it.each(NAMES)('TTL indexes of %s are single-field, on a required date field', (name) => {
    const definition = collection(name);
    for (const indexDefinition of definition.indexes.filter((candidate) => candidate.expireAfterSeconds !== undefined)) {
      const fields = Object.keys(indexDefinition.key);
      // MongoDB ignores expireAfterSeconds on compound indexes and refuses it on _id.
      expect(fields, indexDefinition.name).toHaveLength(1);
      const [field] = fields as [string];
      expect(field).not.toBe('_id');
      const fieldSchema = schemaAtPath(schemaOf(definition), field);
      // A document whose field is not a BSON date, or is missing, never expires.
      expect(bsonTypesOf(fieldSchema ?? {}), `${indexDefinition.name}: ${field}`).toEqual(['date']);
      expect(schemaOf(definition).required).toContain(field);
      expect(indexDefinition.expireAfterSeconds).toBeGreaterThan(0);
    }
  });

  it.each(NAMES)('%s has at most one text index, on string fields only', (name) => {
    const definition = collection(name);
    const textIndexes = definition.indexes.filter((candidate) => Object.values(candidate.key).includes('text'));
    expect(textIndexes.length).toBeLessThanOrEqual(1);
    for (const textIndex of textIndexes) {
      for (const [field, direction] of Object.entries(textIndex.key)) {
        if (direction === 'text') expect(bsonTypesOf(schemaAtPath(schemaOf(definition), field) ?? {}), field).toEqual(['string']);
      }
      // Weights only for the indexed fields: a weight on another field is ignored silently.
      expect(Object.keys(textIndex.weights ?? {}).sort()).toEqual(Object.keys(textIndex.key).sort());
    }
  });

  it('logs expire: audit entries after 400 days, application events after 30', () => {
    expect(AUDIT_RETENTION_DAYS).toBe(400);
    expect(APPLICATION_LOG_RETENTION_DAYS).toBe(30);
    expect(index('audit_logs', 'at_ttl')).toMatchObject({ key: { at: 1 }, expireAfterSeconds: days(400) });
    expect(index('application_logs', 'at_ttl')).toMatchObject({ key: { at: 1 }, expireAfterSeconds: days(30) });
    expect(days(400)).toBe(34_560_000);
  });

  it('identities are enforced by unique indexes', () => {
    expect(index('user_preferences', 'user_unique')).toMatchObject({ key: { userId: 1 }, unique: true });
    expect(index('metadata', 'entity_unique')).toMatchObject({ key: { entityType: 1, entityId: 1 }, unique: true });
    expect(index('content_drafts', 'draft_version_unique')).toMatchObject({ key: { draftId: 1, version: -1 }, unique: true });
    const uniqueIndexes = MONGODB_COLLECTIONS.flatMap((definition) =>
      definition.indexes.filter((candidate) => candidate.unique).map((candidate) => `${definition.name}.${candidate.name}`),
    );
    expect(uniqueIndexes.sort()).toEqual(['content_drafts.draft_version_unique', 'metadata.entity_unique', 'user_preferences.user_unique']);
  });

  it('the drafts text index weighs the title above the body, and the 2dsphere index is on a GeoJSON point', () => {
    const text = index('content_drafts', 'title_body_text');
    expect(text.key).toEqual({ title: 'text', body: 'text' });
    expect(text.weights?.title).toBeGreaterThan(text.weights?.body as number);
    expect(text.default_language).toBe('english');
    expect(index('metadata', 'location_2dsphere').key).toEqual({ location: '2dsphere' });
    const location = schemaAtPath(schemaOf(collection('metadata')), 'location');
    expect(location?.properties?.type?.enum).toEqual(['Point']);
  });
});

describe('sample documents against the validators (local evaluation, see support/bson-schema-evaluator.ts)', () => {
  it.each(NAMES)('a valid %s document passes', (name) => {
    expect(schemaViolations(schemaOf(collection(name)), validSamples()[name])).toEqual([]);
  });

  it.each(NAMES)('an invalid %s document fails for the reason it was made invalid', (name) => {
    const sample = invalidSamples()[name]!;
    const violations = schemaViolations(schemaOf(collection(name)), sample.document);
    expect(violations).toEqual([expect.stringMatching(sample.violation)]);
  });

  it('an unknown top-level field fails, an unknown setting in user_preferences.settings does not', () => {
    const { content_drafts: draft, user_preferences: preferences } = validSamples();
    expect(schemaViolations(schemaOf(collection('content_drafts')), { ...draft, tittle: 'typo' })).toEqual(['(document): field tittle is not allowed']);
    expect(schemaViolations(schemaOf(collection('user_preferences')), { ...preferences, settings: { ...preferences!.settings, density: 'compact' } })).toEqual([]);
  });

  it('the evaluator refuses keywords it does not implement instead of ignoring them', () => {
    expect(() => schemaViolations({ bsonType: 'object', dependencies: { a: ['b'] } }, {})).toThrow(/keyword dependencies .* is not implemented/);
  });
});

describe('on a real MongoDB server', () => {
  let client: MongoClient | undefined;
  let db: Db;

  beforeAll(async () => {
    if (!MONGODB_URL) return;
    client = new MongoClient(MONGODB_URL, { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
    // A throwaway database per run, so a test never touches the platform's data.
    db = client.db(`allixios_assets_test_${randomBytes(4).toString('hex')}`);
    for (const definition of MONGODB_COLLECTIONS) {
      await db.createCollection(definition.name, {
        ...definition.options,
        validator: definition.validator,
        validationLevel: definition.validationLevel,
        validationAction: definition.validationAction,
      });
      await db.collection(definition.name).createIndexes(definition.indexes);
    }
  });

  afterAll(async () => {
    if (!client) return;
    await db.dropDatabase();
    await client.close();
  });

  it.skipIf(!MONGODB_URL)('creates collections with validators and indexes on a real server (needs MONGODB_URL)', async () => {
    for (const definition of MONGODB_COLLECTIONS) {
      const [info] = await db.listCollections({ name: definition.name }).toArray();
      const options = (info as { options?: Document } | undefined)?.options;
      expect(options?.validationLevel, definition.name).toBe(definition.validationLevel);
      expect(options?.validationAction, definition.name).toBe(definition.validationAction);
      expect(options?.validator, definition.name).toEqual(definition.validator);

      const indexes = await db.collection(definition.name).listIndexes().toArray();
      expect(indexes.map((described) => described.name).sort(), definition.name).toEqual(['_id_', ...definition.indexes.map((described) => described.name)].sort());
      for (const expected of definition.indexes.filter((described) => described.expireAfterSeconds !== undefined)) {
        expect(indexes.find((described) => described.name === expected.name)?.expireAfterSeconds).toBe(expected.expireAfterSeconds);
      }
    }
  });

  it.skipIf(!MONGODB_URL)('stores valid documents and refuses invalid ones where the action is error (needs MONGODB_URL)', async () => {
    const valid = validSamples();
    const invalid = invalidSamples();
    for (const definition of MONGODB_COLLECTIONS) {
      await db.collection(definition.name).insertOne(valid[definition.name]!);
      const attempt = db.collection(definition.name).insertOne(invalid[definition.name]!.document);
      if (definition.validationAction === 'error') {
        await expect(attempt, definition.name).rejects.toSatisfy((error: unknown) => error instanceof MongoServerError && error.code === 121);
      } else {
        // warn: stored, and the violation goes to mongod's log.
        await expect(attempt, definition.name).resolves.toMatchObject({ acknowledged: true });
      }
    }
  });

  it.skipIf(!MONGODB_URL)('refuses a second preferences document for the same user (needs MONGODB_URL)', async () => {
    const preferences = db.collection('user_preferences');
    const userId = randomUUID();
    const now = new Date();
    await preferences.insertOne({ userId, settings: {}, createdAt: now, updatedAt: now });
    await expect(preferences.insertOne({ userId, settings: {}, createdAt: now, updatedAt: now })).rejects.toSatisfy(
      (error: unknown) => error instanceof MongoServerError && error.code === 11000,
    );
  });
});
