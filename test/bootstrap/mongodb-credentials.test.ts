/**
 * MongoDB password rotation: the pure comparison of the stack's passwords with the SCRAM
 * credentials `usersInfo` shows, the variable that carries the passwords, and the SCRAM-SHA-256
 * keys the comparison stands on (RFC 7677's test vector). The tests that need a server read
 * MONGODB_URL (an admin connection, `authSource=admin`) and are skipped without it; they work
 * with a throwaway user of their own, never the platform's users, so any server will do.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDatabase } from '../../bootstrap/adapters/mongodb-adapter.ts';
import { mongodbEngine } from '../../bootstrap/adapters/mongodb.ts';
import { observedUsers, parseUserPasswords, planMongoCredentials, type ObservedMongoUser } from '../../bootstrap/adapters/mongodb-credentials.ts';
import { runBootstrap } from '../../bootstrap/runner.ts';
import { scramSha256Keys } from '../../databases/secret-files.ts';

const MONGODB_URL = process.env.MONGODB_URL;
const TIMEOUTS = { readyTimeoutMs: 20_000, lockTimeoutMs: 20_000, lockLeaseMs: 3000 };

/** A user as usersInfo shows one whose SCRAM-SHA-256 credentials were made from `password`. */
function userWithPassword(user: string, password: string): ObservedMongoUser {
  const salt = randomBytes(28);
  const { storedKey, serverKey } = scramSha256Keys(password, salt, 15_000);
  return { user, scramSha256: { iterationCount: 15_000, salt: salt.toString('base64'), storedKey: storedKey.toString('base64'), serverKey: serverKey.toString('base64') } };
}

describe('SCRAM-SHA-256 keys', () => {
  it("prove the password of RFC 7677's example exchange: its ClientProof and ServerSignature", () => {
    // Given the example's password, salt and messages
    const { clientKey, storedKey, serverKey } = scramSha256Keys('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
    const authMessage = [
      'n=user,r=rOprNGfwEbeRWgbNEkqO',
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    ].join(',');
    // When the client's proof and the server's signature are computed from the keys
    const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest();
    const clientProof = Buffer.from(clientKey.map((byte, index) => byte ^ clientSignature[index]!));
    const serverSignature = createHmac('sha256', serverKey).update(authMessage).digest();
    // Then they are the RFC's
    expect(clientProof.toString('base64')).toBe('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(serverSignature.toString('base64')).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });
});

describe('planning the platform users’ passwords', () => {
  it("plans nothing for a user whose stored credentials were made from the stack's password", () => {
    expect(planMongoCredentials({ allixios_app: 'current-pw' }, [userWithPassword('allixios_app', 'current-pw')])).toEqual([]);
  });

  it('sets the password of a user whose stored credentials were made from another one (a rotation)', () => {
    // Given allixios_app still with its previous password, root already with the stack's
    const observed = [userWithPassword('root', 'root-pw'), userWithPassword('allixios_app', 'previous-pw')];
    // When planned
    const changes = planMongoCredentials({ root: 'root-pw', allixios_app: 'current-pw' }, observed);
    // Then only allixios_app's is set, to the stack's
    expect(changes).toEqual([
      {
        subject: 'user allixios_app',
        action: 'update',
        detail: "its password is not the stack's (a rotation): set it",
        source: 'databases/mongodb/bootstrap/user-passwords.json',
        payload: { user: 'allixios_app', password: 'current-pw' },
      },
    ]);
  });

  it('sets the password of a user without SCRAM-SHA-256 credentials (SCRAM-SHA-1 only), with them', () => {
    // Given usersInfo's reply for a user made with SCRAM-SHA-1 only
    const reply = {
      users: [{ user: 'allixios_readonly', db: 'admin', credentials: { 'SCRAM-SHA-1': { iterationCount: 10_000, salt: 'c2FsdA==', storedKey: 'a2V5', serverKey: 'a2V5' } } }],
    };
    // When planned
    const changes = planMongoCredentials({ allixios_readonly: 'pw' }, observedUsers(reply));
    // Then it is set
    expect(changes.map((change) => [change.subject, change.detail])).toEqual([
      ['user allixios_readonly', "it has no SCRAM-SHA-256 credentials: set the stack's password with them"],
    ]);
  });

  it('reads the SCRAM-SHA-256 credentials out of a usersInfo reply, so a matching password plans nothing', () => {
    const stored = userWithPassword('allixios_app', 'pw').scramSha256!;
    const reply = { users: [{ _id: 'admin.allixios_app', user: 'allixios_app', db: 'admin', credentials: { 'SCRAM-SHA-256': stored }, roles: [] }] };
    expect(planMongoCredentials({ allixios_app: 'pw' }, observedUsers(reply))).toEqual([]);
  });

  it('refuses a user the server does not have, naming who creates it on a fresh volume', () => {
    const plan = () => planMongoCredentials({ root: 'a', allixios_app: 'b' }, []);
    expect(plan).toThrow(
      /^mongodb: databases\/mongodb\/bootstrap\/user-passwords\.json: the server has no user root \(created by the image \(MONGO_INITDB_ROOT_USERNAME\)\), allixios_app \(created by databases\/mongodb\/initdb\/10-app-user\.js\) in the admin database/,
    );
  });

  it('creates the backup login on a server that lacks it (a volume older than the login), with the backup role on admin alone', () => {
    // Given a server with the platform's users but no allixios_backup
    const observed = [userWithPassword('root', 'r'), userWithPassword('allixios_app', 'a')];
    // When planned
    const changes = planMongoCredentials({ root: 'r', allixios_app: 'a', allixios_backup: 'backup-pw' }, observed);
    // Then it is created with the stack's password and MongoDB's backup role, nothing else
    expect(changes).toEqual([
      {
        subject: 'user allixios_backup',
        action: 'create',
        detail: "missing (a data volume older than the user): created in admin with backup on admin and the stack's password",
        source: 'databases/mongodb/bootstrap/user-passwords.json',
        payload: { user: 'allixios_backup', password: 'backup-pw', roles: [{ role: 'backup', db: 'admin' }], create: true },
      },
    ]);
  });

  it('sets the backup login’s roles back when someone gave it more than the backup role, keeping its password', () => {
    // Given allixios_backup with the stack's password and an extra readWrite (usersInfo's reply)
    const stored = userWithPassword('allixios_backup', 'backup-pw').scramSha256!;
    const reply = {
      users: [
        {
          user: 'allixios_backup',
          db: 'admin',
          credentials: { 'SCRAM-SHA-256': stored },
          roles: [
            { role: 'backup', db: 'admin' },
            { role: 'readWrite', db: 'allixios' },
          ],
        },
      ],
    };
    // When planned
    const changes = planMongoCredentials({ allixios_backup: 'backup-pw' }, observedUsers(reply));
    // Then its roles are set to backup alone, with an update that names both
    expect(changes.map((change) => [change.action, change.detail, change.payload.roles])).toEqual([
      ['update', 'its roles are backup on admin, readWrite on allixios, not backup on admin: set them', [{ role: 'backup', db: 'admin' }]],
    ]);
    // And a backup login with exactly its role (listed in any order) plans nothing
    const exact = { users: [{ ...reply.users[0]!, roles: [{ role: 'backup', db: 'admin' }] }] };
    expect(planMongoCredentials({ allixios_backup: 'backup-pw' }, observedUsers(exact))).toEqual([]);
  });

  it('still refuses a missing platform user other than the backup login', () => {
    expect(() => planMongoCredentials({ allixios_readonly: 'o', allixios_backup: 'b' }, [])).toThrow(
      /the server has no user allixios_readonly \(created by databases\/mongodb\/initdb\/10-app-user\.js\)/,
    );
  });

  it('refuses a non-ASCII password, naming the user but not the password', () => {
    const plan = () => planMongoCredentials({ allixios_app: 'pässwörd' }, [userWithPassword('allixios_app', 'other')]);
    expect(plan).toThrow(
      /^mongodb: databases\/mongodb\/bootstrap\/user-passwords\.json: user allixios_app: the password of allixios_app in MONGODB_USER_PASSWORDS contains a non-ASCII character/,
    );
    expect(plan).not.toThrow(/pässwörd/);
  });
});

describe('the variable that carries the passwords', () => {
  it('gives the passwords to the engine’s desired state, and none when it is not set', () => {
    const desired = mongodbEngine.desired({ MONGODB_USER_PASSWORDS: '{"root":"r","allixios_app":"a","allixios_readonly":"o"}' });
    expect(desired.users).toEqual({ root: 'r', allixios_app: 'a', allixios_readonly: 'o' });
    expect(mongodbEngine.desired({}).users).toBeUndefined();
  });

  it('plans no credential change when the variable is not set, without asking the server', async () => {
    // Given an adapter that never connected (its server does not exist)
    const adapter = await mongodbEngine.createAdapter('mongodb://root:pw@127.0.0.1:1/?authSource=admin', TIMEOUTS, mongodbEngine.desired({}));
    // When planned / Then nothing, and no "not connected" error
    await expect(adapter.planCredentials!()).resolves.toEqual([]);
  });

  it('refuses malformed JSON, naming the variable and what it expects, without echoing the value', () => {
    const parse = () => parseUserPasswords('{"root": "s3cret-value"');
    expect(parse).toThrow(/^mongodb: MONGODB_USER_PASSWORDS is not valid JSON: expected a JSON object of user name to password \(a string\)/);
    expect(parse).not.toThrow(/s3cret/);
  });

  it('refuses a password that is not a string, naming the user and what it got', () => {
    const parse = () => parseUserPasswords('{"root": "ok", "allixios_app": 12345}');
    expect(parse).toThrow(/^mongodb: MONGODB_USER_PASSWORDS: expected a JSON object of user name to password \(a string\), .*; "allixios_app" is a number$/);
    expect(parse).not.toThrow(/12345/);
    expect(() => parseUserPasswords('["root"]')).toThrow(/; got an array$/);
  });
});

// ---------------------------------------------------------------------------------------------
// On a real server

/** The connection string with another user and password (the hosts and options kept). */
function withCredentials(url: string, user: string, password: string): string {
  return url.replace(/^(mongodb(?:\+srv)?:\/\/)(?:[^@/]*@)?/, `$1${encodeURIComponent(user)}:${encodeURIComponent(password)}@`);
}

describe('rotating passwords on a real server', () => {
  const user = `allixios_rotation_test_${randomBytes(4).toString('hex')}`;
  const database = `allixios_bootstrap_test_${randomBytes(4).toString('hex')}`;
  let client: MongoClient | undefined;

  beforeAll(async () => {
    if (!MONGODB_URL) return;
    client = new MongoClient(MONGODB_URL, { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
  });
  afterAll(async () => {
    if (!client) return;
    await client
      .db('admin')
      .command({ dropUser: user })
      .catch(() => undefined);
    await client.db(database).dropDatabase();
    await client.close();
  });

  it.skipIf(!MONGODB_URL)("sets a user's rotated password: the old one is refused afterwards and the new one accepted (needs MONGODB_URL)", async () => {
    // Given a user (standing in for allixios_app) with the previous password, and the stack with a new one
    await client!.db('admin').command({ createUser: user, pwd: 'previous-pw', roles: [], mechanisms: ['SCRAM-SHA-256'] });
    const url = withDatabase(MONGODB_URL!, database);
    const adapter = await mongodbEngine.createAdapter(url, TIMEOUTS, mongodbEngine.desired({ MONGODB_USER_PASSWORDS: JSON.stringify({ [user]: 'current-pw' }) }));
    try {
      await adapter.connect();
      // When the credentials are planned and applied
      const changes = await adapter.planCredentials!();
      expect(changes.map((change) => change.subject)).toEqual([`user ${user}`]);
      await adapter.applyCredential!(changes[0]!);
      // Then the new password logs in, the old one no longer does, and a second plan is empty
      await adapter.verifyLogin!(withCredentials(MONGODB_URL!, user, 'current-pw'));
      const old = await mongodbEngine.createAdapter(url, { ...TIMEOUTS, readyTimeoutMs: 1_000 }, mongodbEngine.desired({}));
      await expect(old.verifyLogin!(withCredentials(MONGODB_URL!, user, 'previous-pw'))).rejects.toThrow(new RegExp(`^mongodb: the login ${user} is still refused after`));
      expect(await adapter.planCredentials!()).toEqual([]);
    } finally {
      await adapter.close();
    }
  });

  it.skipIf(!MONGODB_URL)('logs in with the previous URL when the server refuses the current password (needs MONGODB_URL)', async () => {
    // Given a current URL whose password the server does not have, and the real one as the previous
    const real = withDatabase(MONGODB_URL!, database);
    const admin = decodeURIComponent(/^mongodb(?:\+srv)?:\/\/([^:@/]+)/.exec(MONGODB_URL!)![1]!);
    // When the bootstrap plans
    const report = await runBootstrap({
      mode: 'dry-run',
      env: { MONGODB_URL: withCredentials(real, admin, `not-${randomBytes(8).toString('hex')}`), MONGODB_URL_PREVIOUS: real },
      registry: [mongodbEngine],
      ...TIMEOUTS,
    });
    // Then it logged in with the previous password, and planned as usual
    expect(report.engines[0]!.error).toBeUndefined();
    expect(report.engines[0]!.login).toBe('previous');
    expect(report.engines[0]!.plan!.changes.length).toBeGreaterThan(0);
  });
});
