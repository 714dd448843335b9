/**
 * The MongoDB adapter (the engine is `mongodb.ts`; this module and its driver are loaded only
 * when a run connects). The desired state is `databases/mongodb/definitions.ts`; this file
 * observes the server (listCollections, listIndexes, the ledger), applies the changes
 * `mongodb-plan.ts` decides, and serialises bootstraps.
 *
 * Everything the bootstrap keeps lives in the platform's database itself: the ledger
 * (`allixios_bootstrap`, one document per subject changed) and the lock (`allixios_bootstrap_lock`,
 * one document with a unique `_id` and an expiry). MongoDB has no session-scoped lock, so the
 * lock is a lease (`bootstrap/lease.ts`): its holder renews it while it works, and a lease not
 * renewed expires, so a killed bootstrap blocks others for one lease period at most. Expiry is judged by the server's
 * clock (`$$NOW`), never by the hosts'.
 *
 * Passwords rotate (README "Rotating a password"): the adapter logs in with the stack's current
 * root password or, when the server refuses it and the rotation keeps it, the previous one; it
 * then sets every platform user's password that differs from the stack's
 * (`mongodb-credentials.ts` decides which).
 */
import { hostname } from 'node:os';
import { MongoClient, MongoNetworkError, MongoServerError, MongoServerSelectionError, type Db, type MongoClientOptions } from 'mongodb';
import { mongodb } from '../../databases/mongodb/index.ts';
import { MONGODB_DATABASE } from '../../databases/mongodb/definitions.ts';
import { BootstrapError, toError } from '../errors.ts';
import { Lease, type LeaseStore } from '../lease.ts';
import type { Adapter, Change, MembershipPlan } from '../contract.ts';
import { observedUsers, planMongoCredentials, USERS_DATABASE, type MongoCredentialChange, type MongoUserPasswords } from './mongodb-credentials.ts';
import { LEDGER_COLLECTION, LOCK_COLLECTION, type MongoLedgerEntry, type MongoObserved, type MongoPayload, type ObservedCollection } from './mongodb-plan.ts';
import { notReachable, readiness, retryWithBackoff, stillNotReachable, TRY_AGAIN } from './backoff.ts';
import { readClientCa } from './client-ca.ts';
import { LoginRefused, openWithRotation, urlUser, waitUntilAccepted, type LoginAttempt } from './logins.ts';
import { DEFAULT_STATEMENT_TIMEOUT_MS, type AdapterOptions, type Login } from '../contract.ts';

const LOCK_ID = 'bootstrap';
/** MongoDB's duplicate key error: the lock document exists. */
const DUPLICATE_KEY = 11000;
/** A wrong user or password (MongoDB does not say which): waiting does not fix it. */
const AUTHENTICATION_FAILED = 18;
/** How long one attempt to log in may wait for a server, so a server that comes up is noticed soon. */
const MAX_ATTEMPT_MS = 5000;

/**
 * Server errors that mean "not ready yet" (a replica set electing, a server starting or
 * stopping): retried until the readiness timeout. Anything else the server says (a wrong
 * password: AuthenticationFailed) fails at once, since waiting does not fix it.
 */
const TRANSIENT_SERVER_CODES = new Set([
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

interface LockDocument {
  _id: string;
  holder: string;
  acquiredAt: Date;
  expiresAt: Date;
}

interface LedgerDocument extends MongoLedgerEntry {
  _id: string;
}

/** The parts of a connection string the messages need, read without the driver: hosts and database. */
export interface ConnectionTarget {
  hosts: string[];
  database?: string;
  username?: string;
}

/**
 * `mongodb://user:password@host1:27017,host2/database?options`: the host list, the database
 * (the path) and the user. Reserved characters in the user and password must be
 * percent-encoded (the connection string specification says so), so `@` and `/` delimit.
 */
export function parseConnectionString(url: string): ConnectionTarget {
  const scheme = /^mongodb(\+srv)?:\/\//.exec(url);
  if (!scheme) throw new Error('expected a connection string starting with mongodb:// or mongodb+srv://');
  const rest = url.slice(scheme[0].length);
  const authority = rest.split(/[/?]/, 1)[0]!;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostList = authority.slice(at + 1);
  const defaultPort = scheme[1] ? '' : ':27017';
  const hosts = hostList.split(',').map((host) => (/:\d+$/.test(host) || host.startsWith('[') ? host : `${host}${defaultPort}`));
  const afterAuthority = rest.slice(authority.length);
  const path = afterAuthority.startsWith('/') ? afterAuthority.slice(1).split('?', 1)[0]! : '';
  const username = userinfo ? decodeURIComponent(userinfo.split(':', 1)[0]!) : undefined;
  return { hosts, ...(path ? { database: decodeURIComponent(path) } : {}), ...(username ? { username } : {}) };
}

/** The same connection string naming another database (tests use throwaway ones). */
export function withDatabase(url: string, database: string): string {
  const scheme = /^mongodb(\+srv)?:\/\//.exec(url);
  if (!scheme) throw new Error('expected a connection string starting with mongodb:// or mongodb+srv://');
  const rest = url.slice(scheme[0].length);
  const authority = rest.split(/[/?]/, 1)[0]!;
  const query = rest.indexOf('?') >= 0 ? rest.slice(rest.indexOf('?')) : '';
  return `${scheme[0]}${authority}/${encodeURIComponent(database)}${query}`;
}

export function isLoginRefused(error: unknown): boolean {
  return error instanceof MongoServerError && error.code === AUTHENTICATION_FAILED;
}

export function isTransient(error: unknown): boolean {
  if (error instanceof MongoServerSelectionError || error instanceof MongoNetworkError) return true;
  return error instanceof MongoServerError && typeof error.code === 'number' && TRANSIENT_SERVER_CODES.has(error.code);
}

/** The server's own name for an error (`IndexOptionsConflict`), or its number. */
export function serverCode(error: unknown): string | undefined {
  if (!(error instanceof MongoServerError)) return undefined;
  return error.codeName ?? (error.code !== undefined ? String(error.code) : undefined);
}

export interface MongoAdapterOptions extends AdapterOptions {
  /** The collections of the definitions: the ones whose indexes are observed. */
  collections: readonly string[];
  /** The passwords the stack wants for the platform's users; without them no password is checked. */
  users?: MongoUserPasswords;
  /** The replica set's membership, kept before anything connects through the set (`mongodb-replica-set.ts`); none for a single server. */
  replicaSet?: ReplicaSetMembership;
}

/** What the adapter hands its membership to (`MongoReplicaSet`). */
export interface ReplicaSetMembership {
  plan(): Promise<MembershipPlan>;
  apply(change: Change): Promise<void>;
  close(): Promise<void>;
}

/** The TLS options the bootstrap gives the driver for a connection string. */
export type MongoTlsOptions = Pick<MongoClientOptions, 'tls' | 'tlsCAFile' | 'ca'>;

/** URL options that would let the driver accept a server it cannot verify. */
const UNVERIFIED_TLS_OPTIONS = ['tlsInsecure', 'tlsAllowInvalidCertificates', 'tlsAllowInvalidHostnames'];

/**
 * How the driver connects for `url`: with `tls=true` (the stack's TLS URLs) over TLS, verifying
 * the server's chain against the CA bundle the URL's `tlsCAFile` names and its host name against
 * the URL's host (the driver's defaults, left on). The driver reads `tlsCAFile` itself, but only
 * when it connects, and only with TLS on; the bundle is read here instead, so a missing file fails
 * the run at once with the engine and the path, and the driver gets it as `ca` (with `tls: true`
 * and the path). A URL that names a CA file without asking for TLS (the driver would connect in
 * clear text and ignore the file), or that turns a verification off, is refused rather than
 * followed: the bootstrap sends root's password over this connection. Without `tlsCAFile` a TLS
 * URL trusts Node's built-in CAs (a managed MongoDB with a public certificate); a `mongodb+srv:`
 * URL asks for TLS unless it says `tls=false`, as the driver does. Option names are
 * case-insensitive in a connection string, so they are here.
 */
export function mongoTlsOptions(url: string, engine = 'mongodb'): MongoTlsOptions {
  const queryAt = url.indexOf('?');
  const query = new URLSearchParams(queryAt >= 0 ? url.slice(queryAt + 1) : '');
  const option = (name: string): string | undefined => [...query].find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
  const tlsValue = option('tls') ?? option('ssl');
  const tls = tlsValue === undefined ? url.startsWith('mongodb+srv://') : tlsValue === 'true';
  const caFile = option('tlsCAFile');
  if (!tls) {
    if (caFile !== undefined) {
      throw new BootstrapError(engine, `the URL names a CA file (tlsCAFile=${caFile}) but does not ask for TLS (tls=true): the driver would ignore it and connect in clear text`);
    }
    return {};
  }
  const unverified = UNVERIFIED_TLS_OPTIONS.filter((name) => option(name) === 'true');
  if (unverified.length > 0) {
    throw new BootstrapError(
      engine,
      `the URL turns off the verification of the server's certificate (${unverified.map((name) => `${name}=true`).join(', ')}); the bootstrap connects only to a server it can verify`,
    );
  }
  if (caFile === undefined) return { tls: true };
  return { tls: true, tlsCAFile: caFile, ca: readClientCa(engine, caFile) };
}

/**
 * The driver's options for one connection attempt with `url`. A socket that goes silent (a
 * stalled network path) fails after the statement timeout instead of holding the run forever; the
 * driver keeps TCP keepalive on by itself. TLS as the URL asks for it ({@link mongoTlsOptions}).
 */
export function mongoClientOptions(url: string, attemptMs: number, options: Pick<AdapterOptions, 'statementTimeoutMs'>): MongoClientOptions {
  return {
    appName: 'allixios-bootstrap',
    serverSelectionTimeoutMS: attemptMs,
    connectTimeoutMS: attemptMs,
    socketTimeoutMS: options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    ...mongoTlsOptions(url),
  };
}

export class MongoAdapter implements Adapter<MongoObserved, MongoPayload> {
  readonly engine = 'mongodb' as const;
  readonly target: string;
  private readonly hosts: string;
  private readonly databaseName: string;
  private readonly appliedBy: string;
  /** The lease the lock is (`bootstrap/lease.ts`). */
  readonly lease: Lease;
  /** The user the admin URL logs in as (root). */
  private readonly loginUser?: string;
  private client?: MongoClient;
  /**
   * Clients given up for one with the current password. Closed only by `close()`: a lease
   * renewal may still be running on one, and closing it under the renewal would lose the lock.
   */
  private readonly retired: MongoClient[] = [];
  private loggedIn?: Login;
  /** The replica set's membership, when the stack keeps one (see `MembershipAdapter`). */
  readonly planMembership?: () => Promise<MembershipPlan>;
  readonly applyMembership?: (change: Change) => Promise<void>;

  constructor(
    private readonly url: string,
    private readonly options: MongoAdapterOptions,
  ) {
    const replicaSet = options.replicaSet;
    if (replicaSet) {
      this.planMembership = () => replicaSet.plan();
      this.applyMembership = (change) => replicaSet.apply(change);
    }
    let parsed: ConnectionTarget;
    try {
      parsed = parseConnectionString(url);
    } catch (error) {
      throw new BootstrapError(this.engine, `${mongodb.urlVariable} is not a MongoDB connection string: ${toError(error).message}`, { cause: error });
    }
    this.hosts = parsed.hosts.join(',');
    // The URL is the admin's (authSource=admin); its path names the platform's database.
    this.databaseName = parsed.database ?? MONGODB_DATABASE;
    this.target = `${this.hosts}/${this.databaseName}`;
    this.appliedBy = `${parsed.username ?? 'unknown'} from ${hostname()}`;
    if (parsed.username) this.loginUser = parsed.username;
    this.lease = new Lease(this.engine, this.leaseStore(), options);
  }

  private get db(): Db {
    if (!this.client) throw new BootstrapError(this.engine, 'not connected');
    return this.client.db(this.databaseName);
  }

  /** The database the platform's users live in. */
  private get admin(): Db {
    if (!this.client) throw new BootstrapError(this.engine, 'not connected');
    return this.client.db(USERS_DATABASE);
  }

  /** Which password `connect()` logged in with; `current` again once a rotation has set it. */
  get login(): Login | undefined {
    return this.loggedIn;
  }

  async connect(): Promise<void> {
    const urls = { current: this.url, previous: this.options.logins?.previousUrl };
    const { client, login } = await openWithRotation(this.engine, urls, (url) => this.open(url));
    this.client = client;
    this.loggedIn = login;
  }

  /** Waits (bounded, with backoff) until the server accepts a connection with `url`; a refused login is not waited on. */
  private async open(url: string): Promise<MongoClient> {
    let last = 'no attempt made';
    const attempt = async (remaining: number): Promise<MongoClient | typeof TRY_AGAIN> => {
      // Each attempt waits for a server at most until the readiness deadline (and 5 s at most, so
      // a server that comes up is noticed soon); then backoff, and try again.
      const attemptMs = Math.max(500, Math.min(MAX_ATTEMPT_MS, remaining));
      const client = new MongoClient(url, mongoClientOptions(url, attemptMs, this.options));
      try {
        await client.connect();
        await client.db(this.databaseName).command({ ping: 1 });
        return client;
      } catch (error) {
        await client.close().catch(() => undefined);
        const reason = toError(error).message;
        if (isLoginRefused(error)) throw new LoginRefused(this.engine, reason, `cannot connect to ${this.target} as ${urlUser(url)}: ${reason}`, serverCode(error));
        if (!isTransient(error)) throw new BootstrapError(this.engine, `cannot connect to ${this.target}: ${reason}`, { code: serverCode(error), cause: error });
        last = toError(error).message;
        return TRY_AGAIN;
      }
    };
    return retryWithBackoff(
      readiness(this.options.readyTimeoutMs),
      attempt,
      (elapsed) => notReachable(this.engine, this.hosts, elapsed, last),
      stillNotReachable(this.options.onWait, this.hosts, () => last),
    );
  }

  /** Logs in anew with the current password, once the server has it, and works with that client from now on. */
  private async switchToCurrent(): Promise<void> {
    const client = await this.open(this.url);
    if (this.client) this.retired.push(this.client);
    this.client = client;
    this.loggedIn = 'current';
  }

  /**
   * The platform users whose password differs from the stack's, read with `usersInfo` (root may
   * read the credentials). Logged in with the previous password while root already has the
   * current one (a concurrent bootstrap set it), the adapter logs in anew with the current one.
   */
  async planCredentials(): Promise<MongoCredentialChange[]> {
    const users = this.options.users;
    if (!users) return [];
    const reply = await this.admin.command({
      usersInfo: Object.keys(users).map((user) => ({ user, db: USERS_DATABASE })),
      showCredentials: true,
    });
    const changes = planMongoCredentials(users, observedUsers(reply));
    const login = this.loginUser;
    if (this.loggedIn === 'previous' && login !== undefined && Object.hasOwn(users, login) && !changes.some((change) => change.payload.user === login)) {
      await this.switchToCurrent();
    }
    return changes;
  }

  /**
   * Sets one user's password. Root may set its own while logged in with it: the session stays
   * authenticated; but the driver authenticates every new pooled connection with the password
   * it was given, so after setting its own the adapter logs in with the current one.
   */
  async applyCredential(change: MongoCredentialChange): Promise<void> {
    this.lease.assertHeld(change.subject);
    const { user, password, roles, create } = change.payload;
    try {
      // A user the bootstrap keeps is created, or gets its roles back, in the same command as its password.
      const command = create
        ? { createUser: user, pwd: password, roles: [...(roles ?? [])], mechanisms: ['SCRAM-SHA-256'] }
        : { updateUser: user, pwd: password, ...(roles ? { roles: [...roles] } : {}), mechanisms: ['SCRAM-SHA-256'] };
      await this.admin.command(command);
    } catch (error) {
      throw this.failure(change, error);
    }
    if (user === this.loginUser && this.loggedIn === 'previous') await this.switchToCurrent();
  }

  /** Waits until the server accepts `url` (the application's), each attempt with a client of its own. */
  async verifyLogin(url: string): Promise<void> {
    const user = parseConnectionString(url).username ?? '(no user)';
    await waitUntilAccepted(this.engine, `the login ${user}`, this.options, () => this.tryLogin(url, user));
  }

  /** One login with `url`: a ping runs on a connection the driver has authenticated. */
  private async tryLogin(url: string, user: string): Promise<LoginAttempt> {
    const client = new MongoClient(url, mongoClientOptions(url, Math.min(MAX_ATTEMPT_MS, this.options.readyTimeoutMs), this.options));
    try {
      await client.connect();
      await client.db().command({ ping: 1 });
      return { accepted: true };
    } catch (error) {
      const reason = toError(error).message;
      if (isLoginRefused(error)) return { accepted: false, reason: `refused: ${reason}` };
      if (isTransient(error)) return { accepted: false, reason };
      throw new BootstrapError(this.engine, `the login ${user}: ${reason}`, { code: serverCode(error) });
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  private get locks() {
    return this.db.collection<LockDocument>(LOCK_COLLECTION);
  }

  /** Extends `holder`'s lease by the server's clock; false when the lease is no longer theirs. */
  private async extendLease(holder: string, leaseMs: number): Promise<boolean> {
    const result = await this.locks.updateOne({ _id: LOCK_ID, holder }, [{ $set: { expiresAt: { $add: ['$$NOW', leaseMs] } } }]);
    return result.matchedCount === 1;
  }

  /** Takes the lock: insert it, or take over a lease that expired; true when `holder` holds it. */
  private async takeLease(holder: string, leaseMs: number): Promise<boolean> {
    try {
      // The host's clock only dates the first write; `extendLease` sets the expiry by the server's.
      const now = new Date();
      await this.locks.insertOne({ _id: LOCK_ID, holder, acquiredAt: now, expiresAt: new Date(now.getTime() + leaseMs) });
    } catch (error) {
      if (!(error instanceof MongoServerError && error.code === DUPLICATE_KEY)) throw error;
      const taken = await this.locks.findOneAndUpdate(
        { _id: LOCK_ID, $expr: { $lt: ['$expiresAt', '$$NOW'] } },
        [{ $set: { holder: { $literal: holder }, acquiredAt: '$$NOW', expiresAt: { $add: ['$$NOW', leaseMs] } } }],
        { returnDocument: 'after' },
      );
      if (!taken) return false;
    }
    return this.extendLease(holder, leaseMs);
  }

  /** The lease as one document, every write conditional on its holder or on its expiry by `$$NOW`. */
  private leaseStore(): LeaseStore {
    return {
      tryAcquire: (holder, leaseMs) => this.takeLease(holder, leaseMs),
      renew: async (holder, leaseMs) => ((await this.extendLease(holder, leaseMs)) ? 'renewed' : 'lost'),
      release: async (holder) => {
        await this.locks.deleteOne({ _id: LOCK_ID, holder });
      },
      describeHolder: async () => {
        const current = await this.locks.findOne({ _id: LOCK_ID });
        return current ? `${current.holder} since ${current.acquiredAt.toISOString()}, lease until ${current.expiresAt.toISOString()}` : undefined;
      },
      where: `${this.databaseName}.${LOCK_COLLECTION}`,
    };
  }

  async lock(): Promise<void> {
    await this.lease.acquire();
    // The TTL index only tidies up a lease nobody took over (its monitor runs once a minute);
    // whether a lease is live is always decided by comparing expiresAt with the server's
    // clock. Created by the holder, so concurrent bootstraps never race to build it; a no-op
    // once it exists.
    await this.locks.createIndex({ expiresAt: 1 }, { name: 'expires_ttl', expireAfterSeconds: 0 });
  }

  async observe(): Promise<MongoObserved> {
    const wanted = new Set(this.options.collections);
    const infos = await this.db.listCollections({}, { nameOnly: false }).toArray();
    const collections: ObservedCollection[] = [];
    for (const info of infos) {
      if (!wanted.has(info.name)) continue;
      const type = info.type ?? 'collection';
      const indexes = type === 'view' ? [] : await this.db.collection(info.name).listIndexes().toArray();
      collections.push({ name: info.name, type, options: info.options ?? {}, indexes });
    }
    const hasLedger = infos.some((info) => info.name === LEDGER_COLLECTION);
    const ledger = hasLedger ? await this.db.collection<LedgerDocument>(LEDGER_COLLECTION).find().sort({ appliedAt: 1 }).toArray() : [];
    return {
      collections,
      ledger: ledger.map(({ subject, action, definitionChecksum, appliedAt, appliedBy }) => ({ subject, action, definitionChecksum, appliedAt, appliedBy })),
    };
  }

  private failure(change: Change, error: unknown, note = ''): BootstrapError {
    return new BootstrapError(this.engine, `${change.subject}: ${change.action} failed: ${toError(error).message}${note}`, {
      location: { file: change.source },
      code: serverCode(error),
      cause: error,
    });
  }

  async apply(change: Change<MongoPayload>): Promise<void> {
    this.lease.assertHeld(change.subject);
    const { payload } = change;
    const collection = this.db.collection(payload.collection);
    try {
      switch (payload.kind) {
        case 'create-collection':
          await this.db.createCollection(payload.collection, payload.options);
          break;
        case 'modify-collection':
          await this.db.command({
            collMod: payload.collection,
            validator: payload.validator,
            validationLevel: payload.validationLevel,
            validationAction: payload.validationAction,
          });
          break;
        case 'create-index':
          await collection.createIndexes([payload.index]);
          break;
        case 'replace-index':
          // Not atomic: MongoDB has no "alter index". Between the two the collection goes without it.
          await collection.dropIndex(payload.index.name);
          try {
            await collection.createIndexes([payload.index]);
          } catch (error) {
            throw this.failure(
              change,
              error,
              `; the old index was dropped and the new one could not be built, so ${payload.collection} has no index ${payload.index.name} until a run succeeds`,
            );
          }
          break;
        case 'modify-index':
          // One property per collMod: each is its own documented form of the command.
          if (payload.expireAfterSeconds !== undefined) {
            await this.db.command({ collMod: payload.collection, index: { name: payload.name, expireAfterSeconds: payload.expireAfterSeconds } });
          }
          if (payload.hidden !== undefined) {
            await this.db.command({ collMod: payload.collection, index: { name: payload.name, hidden: payload.hidden } });
          }
          break;
        case 'drop-index':
          await collection.dropIndex(payload.name);
          break;
      }
    } catch (error) {
      throw error instanceof BootstrapError ? error : this.failure(change, error);
    }
    await this.record(change);
  }

  /** The ledger entry of a change, written once it is applied; one document per subject. */
  private async record(change: Change<MongoPayload>): Promise<void> {
    const entry: LedgerDocument = {
      _id: change.subject,
      subject: change.subject,
      action: change.action,
      definitionChecksum: change.payload.checksum,
      appliedAt: new Date(),
      appliedBy: this.appliedBy,
    };
    await this.db.collection<LedgerDocument>(LEDGER_COLLECTION).replaceOne({ _id: change.subject }, entry, { upsert: true });
  }

  async close(): Promise<void> {
    await this.options.replicaSet?.close();
    await this.lease.release();
    for (const client of [...this.retired, this.client]) await client?.close().catch(() => undefined);
    this.retired.length = 0;
    this.client = undefined;
  }
}
