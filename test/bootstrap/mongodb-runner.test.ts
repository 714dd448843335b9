/**
 * The bootstrap runner with the MongoDB engine. No MongoDB server can run on this machine
 * (/work/shared/ENGINES.md): the tests that need one read MONGODB_URL (an admin connection,
 * `authSource=admin`) and are skipped without it; each run works in a throwaway database of its
 * own and drops it. What needs no server (the offline plan, an unreachable server, connection
 * strings) runs everywhere.
 */
import { randomBytes } from 'node:crypto';
import { MongoClient, type Db, type Document } from 'mongodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mongoClientOptions, parseConnectionString, withDatabase } from '../../bootstrap/adapters/mongodb-adapter.ts';
import { mongodbEngine } from '../../bootstrap/adapters/mongodb.ts';
import { LEDGER_COLLECTION, LOCK_COLLECTION, type MongoPayload } from '../../bootstrap/adapters/mongodb-plan.ts';
import { runBootstrap, type BootstrapOptions, type BootstrapReport } from '../../bootstrap/runner.ts';
import type { Change } from '../../bootstrap/contract.ts';
import { MONGODB_COLLECTIONS } from '../../databases/mongodb/definitions.ts';
import { mongodb } from '../../databases/mongodb/index.ts';
import { describeConformance } from './conformance/suite.ts';

const MONGODB_URL = process.env.MONGODB_URL;
const TIMEOUTS = { readyTimeoutMs: 20_000, lockTimeoutMs: 20_000, lockLeaseMs: 3000 };

/** Every subject of the definitions, in plan order. */
const ALL_SUBJECTS = MONGODB_COLLECTIONS.flatMap((definition) => [`collection ${definition.name}`, ...definition.indexes.map((index) => `index ${definition.name}.${index.name}`)]);

const changedSubjects = (report: BootstrapReport) => report.engines[0]!.changed.map(({ change }) => `${change.action} ${change.subject}`);

describeConformance({
  module: mongodb,
  ...(MONGODB_URL ? {} : { unavailable: 'an admin connection, authSource=admin; no MongoDB server runs here' }),
  async fresh() {
    // A throwaway database of the case's own: every collection and index is work to do.
    const database = `allixios_conformance_${randomBytes(4).toString('hex')}`;
    return {
      options: { env: { MONGODB_URL: withDatabase(MONGODB_URL!, database) } },
      async stop() {
        const client = new MongoClient(MONGODB_URL!, { serverSelectionTimeoutMS: 10_000 });
        await client.connect();
        await client.db(database).dropDatabase();
        await client.close();
      },
    };
  },
});

describe('the MongoDB bootstrap without a server', () => {
  it('plans every collection and index for an empty database offline, without connecting', async () => {
    const report = await runBootstrap({ mode: 'dry-run', offline: true, env: {}, registry: [mongodbEngine], ...TIMEOUTS });
    expect(report.ok).toBe(true);
    const plan = report.engines[0]!.plan!;
    expect(plan.changes.map((change) => change.subject)).toEqual(ALL_SUBJECTS);
    expect(plan.changes.every((change) => change.action === 'create')).toBe(true);
    expect(report.engines[0]!.target).toBeUndefined();
  });

  it('bounds every socket by the statement timeout, so a silent network path ends the run', () => {
    // (No server runs here: the driver's options are what can be checked.) The driver's default
    // socketTimeoutMS is 0, waiting forever on a connection that stopped answering.
    expect(mongoClientOptions('mongodb://localhost:27017', 5_000, {})).toMatchObject({ socketTimeoutMS: 600_000, serverSelectionTimeoutMS: 5_000, connectTimeoutMS: 5_000 });
    expect(mongoClientOptions('mongodb://localhost:27017', 5_000, { statementTimeoutMs: 30_000 }).socketTimeoutMS).toBe(30_000);
  });

  it('connects to the database the URL names, or to allixios when it names none', async () => {
    expect(parseConnectionString('mongodb://root:p%40ss@db-0.mongo:27017,db-1.mongo/platform?authSource=admin')).toEqual({
      hosts: ['db-0.mongo:27017', 'db-1.mongo:27017'],
      database: 'platform',
      username: 'root',
    });
    expect(parseConnectionString('mongodb://db:27017/?authSource=admin')).toEqual({ hosts: ['db:27017'] });
    expect(parseConnectionString('mongodb://db')).toEqual({ hosts: ['db:27017'] });
    const adapter = await mongodbEngine.createAdapter('mongodb://root:secret@db:27018/?authSource=admin', TIMEOUTS, mongodbEngine.desired({}));
    expect(adapter.target).toBe('db:27018/allixios');
    await expect(mongodbEngine.createAdapter('postgresql://db/allixios', TIMEOUTS, mongodbEngine.desired({}))).rejects.toThrow(
      /^mongodb: MONGODB_URL is not a MongoDB connection string/,
    );
  });

  it('names another database in the same connection string, keeping credentials and options', () => {
    expect(withDatabase('mongodb://root:p%40ss@h1,h2:27018/allixios?authSource=admin&replicaSet=rs0', 'scratch')).toBe(
      'mongodb://root:p%40ss@h1,h2:27018/scratch?authSource=admin&replicaSet=rs0',
    );
    expect(withDatabase('mongodb://h1?authSource=admin', 'scratch')).toBe('mongodb://h1/scratch?authSource=admin');
  });
});

describe('the MongoDB bootstrap on a real server', () => {
  const database = `allixios_bootstrap_test_${randomBytes(4).toString('hex')}`;
  const url = MONGODB_URL ? withDatabase(MONGODB_URL, database) : '';
  let client: MongoClient | undefined;
  let db: Db;

  beforeAll(async () => {
    if (!MONGODB_URL) return;
    client = new MongoClient(MONGODB_URL, { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
    db = client.db(database);
  });
  beforeEach(async () => {
    if (client) await db.dropDatabase();
  });
  afterAll(async () => {
    if (!client) return;
    await db.dropDatabase();
    await client.close();
  });

  function bootstrap(extra: Partial<BootstrapOptions> = {}): Promise<BootstrapReport> {
    return runBootstrap({ mode: 'apply', env: { MONGODB_URL: url }, registry: [mongodbEngine], ...TIMEOUTS, ...extra });
  }

  async function options(collection: string): Promise<Document> {
    const [info] = await db.listCollections({ name: collection }).toArray();
    return (info as { options?: Document } | undefined)?.options ?? {};
  }

  it.skipIf(!MONGODB_URL)('creates every collection with its validator and every index on a fresh database, and records each (needs MONGODB_URL)', async () => {
    const report = await bootstrap();
    expect(report.engines[0]!.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(changedSubjects(report)).toEqual(ALL_SUBJECTS.map((subject) => `create ${subject}`));
    for (const definition of MONGODB_COLLECTIONS) {
      const stored = await options(definition.name);
      expect(stored.validator, definition.name).toEqual(definition.validator);
      expect(stored.validationLevel, definition.name).toBe(definition.validationLevel);
      expect(stored.validationAction, definition.name).toBe(definition.validationAction);
      const names = (await db.collection(definition.name).listIndexes().toArray()).map((index) => index.name);
      expect(names.sort(), definition.name).toEqual(['_id_', ...definition.indexes.map((index) => index.name)].sort());
    }
    // One ledger document per subject, with the checksum the plan computed
    const ledger = await db.collection(LEDGER_COLLECTION).find().toArray();
    expect(ledger.map((entry) => entry.subject).sort()).toEqual([...ALL_SUBJECTS].sort());
    for (const { change } of report.engines[0]!.changed) {
      const entry = ledger.find((candidate) => candidate.subject === change.subject)!;
      expect(entry).toMatchObject({ action: 'create', definitionChecksum: (change as Change<MongoPayload>).payload.checksum });
      expect(entry.appliedAt).toBeInstanceOf(Date);
    }
    // And the lock is released
    expect(await db.collection(LOCK_COLLECTION).countDocuments()).toBe(0);
  });

  it.skipIf(!MONGODB_URL)('changes nothing on a second run (needs MONGODB_URL)', async () => {
    await bootstrap();
    const second = await bootstrap();
    expect(second.ok).toBe(true);
    expect(second.engines[0]!.changed).toEqual([]);
    expect(second.engines[0]!.plan!.inSync).toEqual(ALL_SUBJECTS);
  });

  it.skipIf(!MONGODB_URL)('changes nothing on a dry run (needs MONGODB_URL)', async () => {
    const report = await bootstrap({ mode: 'dry-run' });
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.plan!.changes).toHaveLength(ALL_SUBJECTS.length);
    expect(await db.listCollections().toArray()).toEqual([]);
  });

  it.skipIf(!MONGODB_URL)('repairs a drifted validator, validation level and TTL with collMod (needs MONGODB_URL)', async () => {
    // Given a bootstrapped database changed by hand
    await bootstrap();
    await db.command({ collMod: 'user_preferences', validator: { $jsonSchema: { bsonType: 'object' } } });
    await db.command({ collMod: 'audit_logs', validationLevel: 'moderate' });
    await db.command({ collMod: 'application_logs', index: { name: 'at_ttl', expireAfterSeconds: 60 } });
    // When the bootstrap runs again
    const report = await bootstrap();
    // Then exactly those are changed back, in place
    expect(report.ok).toBe(true);
    expect(changedSubjects(report)).toEqual(['update collection user_preferences', 'update collection audit_logs', 'update index application_logs.at_ttl']);
    expect(report.engines[0]!.changed[1]!.change.detail).toMatch(/^validationLevel differs \(server moderate, definition strict\).*changed on the server since/);
    const userPreferences = MONGODB_COLLECTIONS.find((definition) => definition.name === 'user_preferences')!;
    expect((await options('user_preferences')).validator).toEqual(userPreferences.validator);
    expect((await options('audit_logs')).validationLevel).toBe('strict');
    const ttl = (await db.collection('application_logs').listIndexes().toArray()).find((index) => index.name === 'at_ttl')!;
    const expected = MONGODB_COLLECTIONS.find((definition) => definition.name === 'application_logs')!.indexes.find((index) => index.name === 'at_ttl')!;
    expect(ttl.expireAfterSeconds).toBe(expected.expireAfterSeconds);
    expect((await bootstrap()).engines[0]!.changed).toEqual([]);
  });

  it.skipIf(!MONGODB_URL)('refuses an index whose definition differs, applying nothing, and replaces it when allowed (needs MONGODB_URL)', async () => {
    // Given article_version recreated by hand with another key, an index nobody defined, and a drifted level
    await bootstrap();
    await db.collection('content_drafts').dropIndex('article_version');
    await db.collection('content_drafts').createIndex({ articleId: 1, version: 1 }, { name: 'article_version' });
    await db.collection('content_drafts').createIndex({ title: 1 }, { name: 'by_hand' });
    await db.command({ collMod: 'audit_logs', validationLevel: 'moderate' });
    // When the bootstrap runs
    const refused = await bootstrap();
    // Then it refuses, names the index and what differs, and changes nothing at all
    expect(refused.ok).toBe(false);
    expect(refused.engines[0]!.error).toMatch(
      /^mongodb: refusing to apply anything:\n {2}index content_drafts\.by_hand .*\n {2}index content_drafts\.article_version: key differs \(server \{"articleId":1,"version":1\}, definition \{"articleId":1,"version":-1\}\)/,
    );
    expect(refused.engines[0]!.changed).toEqual([]);
    expect((await options('audit_logs')).validationLevel).toBe('moderate');
    // And with replaceIndexes, the index is dropped and recreated, the stray one dropped
    const replaced = await bootstrap({ flags: { replaceIndexes: true } });
    expect(replaced.ok).toBe(true);
    expect(changedSubjects(replaced)).toEqual(['delete index content_drafts.by_hand', 'replace index content_drafts.article_version', 'update collection audit_logs']);
    const indexes = await db.collection('content_drafts').listIndexes().toArray();
    expect(indexes.find((index) => index.name === 'article_version')!.key).toEqual({ articleId: 1, version: -1 });
    expect(indexes.some((index) => index.name === 'by_hand')).toBe(false);
  });

  it.skipIf(!MONGODB_URL)('waits for a live lock and names its holder, and takes over an expired one (needs MONGODB_URL)', async () => {
    // Given another bootstrap's live lease
    const locks = db.collection<{ _id: string; holder: string; acquiredAt: Date; expiresAt: Date }>(LOCK_COLLECTION);
    await locks.insertOne({ _id: 'bootstrap', holder: 'deploy-7/4242/other', acquiredAt: new Date(), expiresAt: new Date(Date.now() + 3_600_000) });
    // When the bootstrap runs with a short lock timeout, it gives up and names the holder
    const blocked = await bootstrap({ lockTimeoutMs: 1500 });
    expect(blocked.ok).toBe(false);
    expect(blocked.engines[0]!.error).toMatch(/^mongodb: another bootstrap still holds the lock after 1\.5 s \(held by deploy-7\/4242\/other since /);
    expect((await db.listCollections().toArray()).map((info) => info.name)).toEqual([LOCK_COLLECTION]);
    // Given that lease expired (its holder died), the next run takes it over, applies, and releases
    await locks.updateOne({ _id: 'bootstrap' }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    const report = await bootstrap({ lockTimeoutMs: 1500 });
    expect(report.ok).toBe(true);
    expect(report.engines[0]!.changed).toHaveLength(ALL_SUBJECTS.length);
    expect(await locks.countDocuments()).toBe(0);
  });

  it.skipIf(!MONGODB_URL)('lets one of two concurrent bootstraps apply; the other then finds nothing to do (needs MONGODB_URL)', async () => {
    const [first, second] = await Promise.all([bootstrap(), bootstrap()]);
    expect(first.ok && second.ok).toBe(true);
    const counts = [first, second].map((report) => report.engines[0]!.changed.length).sort((a, b) => a - b);
    expect(counts).toEqual([0, ALL_SUBJECTS.length]);
  });

  it.skipIf(!MONGODB_URL)('fails at once on wrong credentials instead of waiting (needs MONGODB_URL)', async () => {
    const wrong = url.replace(/^(mongodb(?:\+srv)?:\/\/)(?:[^@/]*@)?/, '$1allixios_no_such_user:wrong@');
    const started = Date.now();
    const report = await runBootstrap({ mode: 'dry-run', env: { MONGODB_URL: wrong }, registry: [mongodbEngine], ...TIMEOUTS });
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toMatch(/^mongodb: cannot connect to .*: .*Authentication failed/);
    expect(Date.now() - started).toBeLessThan(TIMEOUTS.readyTimeoutMs / 2);
  });
});
