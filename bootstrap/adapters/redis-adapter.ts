/**
 * The Redis adapter (the engine is `redis.ts`; this module and its driver, ioredis, are loaded
 * only when a run connects): observes the ACL users and the compared config directives of a running
 * server, and applies the planner's changes with CONFIG SET, ACL SETUSER and ACL DELUSER. Redis
 * keeps no ledger: its "schema" is the mounted redis.conf and users.acl, compared on every run.
 *
 * Bootstraps are serialised by a lease (`bootstrap/lease.ts`), a key set with NX and an expiry:
 * the holder renews it while it works and deletes it (only if still its own) when done, so a
 * killed bootstrap blocks others for at most one lease period. Redis judges the expiry itself.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { CONNECTION_TLS } from '../../databases/redis/index.ts';
import type { Adapter, AdapterOptions, Change, Login } from '../contract.ts';
import { BootstrapError, toError } from '../errors.ts';
import { Lease, type LeaseStore } from '../lease.ts';
import { userDifferences, type AclPermissions, type AclUserState, type RedisObserved, type RedisPayload } from './redis-plan.ts';
import type { RedisDesired } from './redis-files.ts';
import { notReachable, readiness, retryWithBackoff, stillNotReachable, TRY_AGAIN } from './backoff.ts';
import { LoginRefused, openWithRotation, urlUser, waitUntilAccepted, type LoginAttempt } from './logins.ts';

export const LOCK_KEY = 'allixios:bootstrap:lock';
const DEFAULT_PORT = 6379;

/** Extends the lease only while it is still this holder's (another may have taken an expired one). */
const RENEW_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes the lease only if it is still this holder's. */
const RELEASE_SCRIPT = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * How ioredis connects to `url`: a `rediss:` URL over TLS, verifying the server's chain against
 * the CA bundle its `tlsCAFile` names (the stack's URLs always name one, `CLIENT_CA_PATH`) and
 * its host name against the URL's host (Node's default check, which ioredis keeps). ioredis reads
 * no CA from a URL and would pass the parameter on as an unknown option, so it is taken out of
 * the URL here. A `rediss:` URL without it trusts Node's built-in CAs (a managed Redis with a
 * public certificate); a `redis:` URL is plain, and naming a CA file in it is refused rather than
 * ignored, since the caller evidently expected TLS. A `tls` parameter, which ioredis would take
 * over the adapter's TLS options, is refused.
 */
export function redisClientTarget(url: string, engine = 'redis'): { url: string; tls?: RedisOptions['tls'] } {
  const parsed = new URL(url);
  const parameter = CONNECTION_TLS.caFileParameter!;
  const caFile = parsed.searchParams.get(parameter);
  parsed.searchParams.delete(parameter);
  // ioredis reads every query parameter as an option of its own, and the URL's win over the ones
  // given beside it: `tls=false` would replace the CA bundle with Node's built-in CAs, a profile
  // name (`tls=RedisCloudFixed`) with another CA. The scheme says whether to use TLS.
  const tlsOption = parsed.searchParams.getAll('tls');
  if (tlsOption.length > 0)
    throw new BootstrapError(
      engine,
      `the URL sets ioredis's tls option (${tlsOption.map((value) => `tls=${value}`).join(', ')}), which would replace the TLS options the bootstrap verifies the server with: use a rediss: URL and ${parameter}`,
    );
  if (parsed.protocol !== 'rediss:') {
    if (caFile !== null)
      throw new BootstrapError(
        engine,
        `the URL names a CA file (${parameter}) but its scheme is ${parsed.protocol.slice(0, -1)}, not rediss: a plaintext connection would ignore it`,
      );
    return { url };
  }
  if (caFile === null) return { url: parsed.toString(), tls: {} };
  let ca: Buffer;
  try {
    ca = readFileSync(caFile);
  } catch (error) {
    throw new BootstrapError(engine, `cannot read the CA bundle ${caFile} that the URL's ${parameter} names: ${toError(error).message}`, { cause: error });
  }
  return { url: parsed.toString(), tls: { ca } };
}

/** Network errors that mean "not ready yet": retried until the readiness timeout. */
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
/** A refused login: a wrong user or password (or a user that is off). */
const LOGIN_REFUSED = /^WRONGPASS/;

/** Server replies that mean "not ready yet": loading the AOF, a busy script, too many clients. */
const TRANSIENT_REPLIES = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|ERR max number of clients)/;

function isTransient(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  // "Connection is closed" with no error before it: something accepted the connection and dropped
  // it (a proxy before its backend is up). A refused login always comes with its own error first.
  return (typeof code === 'string' && TRANSIENT_CODES.has(code)) || TRANSIENT_REPLIES.test(error.message) || /connect ETIMEDOUT|^Connection is closed/.test(error.message);
}

/** A reply of field/value pairs (RESP2 flat array, RESP3 map) as a Map. */
function fields(reply: unknown, what: string): Map<string, unknown> {
  if (reply instanceof Map) return new Map([...reply].map(([key, value]) => [String(key), value]));
  if (Array.isArray(reply)) {
    const result = new Map<string, unknown>();
    for (let i = 0; i + 1 < reply.length; i += 2) result.set(String(reply[i]), reply[i + 1]);
    return result;
  }
  if (reply !== null && typeof reply === 'object') return new Map(Object.entries(reply));
  throw new Error(`unexpected reply to ${what}: ${JSON.stringify(reply)}`);
}

/** A string field; Redis 6 returned key patterns as a list, 7 as one string. */
function text(value: unknown): string {
  if (Array.isArray(value)) return value.map(text).join(' ');
  if (Buffer.isBuffer(value)) return value.toString();
  return value === null || value === undefined ? '' : String(value);
}

function list(value: unknown): string[] {
  return Array.isArray(value) ? value.map(text) : [];
}

function permissionsOf(reply: Map<string, unknown>): AclPermissions {
  return {
    flags: list(reply.get('flags'))
      .filter((flag) => !['on', 'off', 'nopass', 'sanitize-payload'].includes(flag))
      .sort(),
    commands: text(reply.get('commands')),
    keys: text(reply.get('keys')),
    channels: text(reply.get('channels')),
    selectors: (Array.isArray(reply.get('selectors')) ? (reply.get('selectors') as unknown[]) : []).map((selector) => {
      const parts = fields(selector, 'ACL GETUSER (selector)');
      return `(${[text(parts.get('keys')), text(parts.get('channels')), text(parts.get('commands'))].filter(Boolean).join(' ')})`;
    }),
  };
}

/** A user as ACL GETUSER reports it: its permissions, and the digests of its passwords. */
export function aclUserState(reply: unknown): AclUserState {
  const parsed = fields(reply, 'ACL GETUSER');
  const flags = list(parsed.get('flags'));
  const passwords = list(parsed.get('passwords'));
  return {
    ...permissionsOf(parsed),
    enabled: flags.includes('on'),
    password: flags.includes('nopass') ? 'nopass' : passwords.length > 0 ? 'set' : 'none',
    passwordHashes: passwords.map((hash) => hash.toLowerCase()).sort(),
  };
}

export class RedisAdapter implements Adapter<RedisObserved, RedisPayload> {
  readonly engine: string;
  readonly target: string;
  login?: Login;
  private readonly url: URL;
  private readonly host: string;
  private readonly port: string;
  /** The lease the lock is (`bootstrap/lease.ts`). */
  readonly lease: Lease;
  private client?: Redis;

  constructor(
    url: string,
    private readonly options: AdapterOptions,
    private readonly desired: RedisDesired,
  ) {
    this.engine = desired.engine;
    this.url = new URL(url);
    this.host = this.url.hostname;
    this.port = this.url.port || String(DEFAULT_PORT);
    this.target = `${this.host}:${this.port}${this.url.pathname && this.url.pathname !== '/' ? this.url.pathname : '/0'}`;
    this.lease = new Lease(this.engine, this.leaseStore(), options);
  }

  private get db(): Redis {
    if (!this.client) throw new BootstrapError(this.engine, 'not connected');
    return this.client;
  }

  /** A client for `url` that neither reconnects nor waits on its own: the callers' backoff does. */
  private newClient(url: string): Redis {
    const target = redisClientTarget(url, this.engine);
    return new Redis(target.url, {
      ...(target.tls ? { tls: target.tls } : {}),
      lazyConnect: true,
      connectionName: 'allixios-bootstrap',
      connectTimeout: Math.max(1000, Math.min(5000, this.options.readyTimeoutMs)),
      commandTimeout: 60_000,
      // The backoff retries and bounds the wait; ioredis must neither reconnect on its own nor
      // run its ready check, which waits for a loading server without a bound.
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
    });
  }

  /**
   * Connection attempts with backoff until the readiness timeout; a refused login ends at once,
   * or, while a rotation keeps the admin's previous password, is tried again with that one.
   */
  async connect(): Promise<void> {
    let last = 'no attempt made';
    const attempt = async (url: string): Promise<Redis | typeof TRY_AGAIN> => {
      let lastError: Error | undefined;
      const client = this.newClient(url);
      client.on('error', (error: Error) => (lastError = error));
      try {
        await client.connect();
        // PING answers -LOADING while the AOF loads: not ready yet.
        await client.ping();
        return client;
      } catch (caught) {
        client.disconnect();
        const error = lastError ?? toError(caught);
        if (LOGIN_REFUSED.test(error.message)) throw new LoginRefused(this.engine, error.message, `cannot connect to ${this.target} as ${urlUser(url)}: ${error.message}`);
        if (!isTransient(error)) throw new BootstrapError(this.engine, `cannot connect to ${this.target}: ${error.message}`, { cause: error });
        last = error.message;
        return TRY_AGAIN;
      }
    };
    const open = (url: string) =>
      retryWithBackoff(
        readiness(this.options.readyTimeoutMs),
        () => attempt(url),
        (elapsed) => notReachable(this.engine, `${this.host}:${this.port}`, elapsed, last),
        stillNotReachable(this.options.onWait, `${this.host}:${this.port}`, () => last),
      );
    const opened = await openWithRotation(this.engine, { current: this.url.toString(), previous: this.options.logins?.previousUrl }, open);
    this.client = opened.client;
    this.login = opened.login;
  }

  /** Waits until the server accepts a new connection with `url` (the application's URL). */
  async verifyLogin(url: string): Promise<void> {
    await waitUntilAccepted(this.engine, `the login ${urlUser(url)}`, this.options, async (): Promise<LoginAttempt> => {
      const client = this.newClient(url);
      let lastError: Error | undefined;
      client.on('error', (error: Error) => (lastError = error));
      try {
        await client.connect();
        await client.ping();
        return { accepted: true };
      } catch (caught) {
        return { accepted: false, reason: (lastError ?? toError(caught)).message };
      } finally {
        client.disconnect();
      }
    });
  }

  /** The lease as one key: Redis expires it, and the scripts compare the holder before they touch it. */
  private leaseStore(): LeaseStore {
    return {
      tryAcquire: async (holder, leaseMs) => (await this.db.set(LOCK_KEY, holder, 'PX', leaseMs, 'NX')) === 'OK',
      renew: async (holder, leaseMs) => (Number(await this.db.eval(RENEW_SCRIPT, 1, LOCK_KEY, holder, String(leaseMs))) === 1 ? 'renewed' : 'lost'),
      release: async (holder) => {
        await this.db.eval(RELEASE_SCRIPT, 1, LOCK_KEY, holder);
      },
      describeHolder: async () => (await this.db.get(LOCK_KEY)) ?? undefined,
    };
  }

  async lock(): Promise<void> {
    await this.lease.acquire();
  }

  private async configValue(name: string): Promise<string | null> {
    const reply = fields(await this.db.call('CONFIG', 'GET', name), `CONFIG GET ${name}`);
    return reply.has(name) ? text(reply.get(name)) : null;
  }

  private async userState(name: string): Promise<AclUserState | null> {
    const reply = await this.db.call('ACL', 'GETUSER', name);
    return reply === null ? null : aclUserState(reply);
  }

  /**
   * The permissions each desired user's rules give on this server: a scratch user is set to the
   * rules, read back and deleted in one MULTI/EXEC, so no other client ever sees it and a killed
   * bootstrap cannot leave it behind. It is off and has no password while it exists.
   */
  private async normalise(): Promise<RedisObserved['normalised']> {
    const probe = `allixios_bootstrap_probe_${randomBytes(6).toString('hex')}`;
    const normalised: RedisObserved['normalised'] = {};
    for (const user of this.desired.users) {
      const results = await this.db
        .multi()
        .call('ACL', 'SETUSER', probe, 'reset', this.desired.channelsBase, ...user.rules)
        .call('ACL', 'GETUSER', probe)
        .call('ACL', 'DELUSER', probe)
        .exec();
      const [set, get] = results ?? [];
      if (!set || set[0]) {
        throw new BootstrapError(this.engine, `user ${user.name}: Redis refuses its rules: ${(set?.[0] as Error | undefined)?.message ?? 'the transaction was aborted'}`, {
          location: {
            file: this.desired.sources.acl,
            line: user.line,
          },
        });
      }
      if (!get || get[0] || get[1] === null)
        throw new BootstrapError(this.engine, `user ${user.name}: the scratch user could not be read back (${(get?.[0] as Error | undefined)?.message ?? 'no reply'})`);
      const { enabled: _enabled, password: _password, passwordHashes: _hashes, ...permissions } = aclUserState(get[1]);
      normalised[user.name] = { rules: user.rules.join(' '), permissions };
    }
    return normalised;
  }

  async observe(): Promise<RedisObserved> {
    try {
      const self = text(await this.db.call('ACL', 'WHOAMI'));
      const config: RedisObserved['config'] = {};
      for (const value of this.desired.config) config[value.name] = await this.configValue(value.name);
      const users: RedisObserved['users'] = {};
      for (const name of list(await this.db.call('ACL', 'USERS'))) {
        const state = await this.userState(name);
        if (state) users[name] = state;
      }
      return { self, config, users, normalised: await this.normalise() };
    } catch (error) {
      if (error instanceof BootstrapError) throw error;
      throw new BootstrapError(this.engine, `cannot read the server's ACL users and config at ${this.target}: ${toError(error).message}`, { cause: error });
    }
  }

  async apply(change: Change<RedisPayload>): Promise<void> {
    this.lease.assertHeld(change.subject);
    await this.applyUnlocked(change);
  }

  /**
   * Applies a change without this adapter's lease: for a replica under Sentinel, whose changes
   * the master's lease covers (`redis-members.ts`).
   */
  async applyUnlocked(change: Change<RedisPayload>): Promise<void> {
    const payload = change.payload;
    switch (payload.kind) {
      case 'config-set': {
        await this.db.call('CONFIG', 'SET', payload.name, payload.value);
        const now = await this.configValue(payload.name);
        if (now !== payload.value) {
          throw new BootstrapError(this.engine, `${change.subject}: CONFIG SET accepted ${JSON.stringify(payload.value)} but the server reads ${JSON.stringify(now)}`, {
            location: { file: change.source },
          });
        }
        return;
      }
      case 'acl-setuser': {
        await this.db.call('ACL', 'SETUSER', payload.user, ...payload.rules);
        const now = await this.userState(payload.user);
        const left = now ? userDifferences(now, payload.expected, change.source) : ['the user is gone'];
        if (left.length > 0) throw new BootstrapError(this.engine, `${change.subject}: still differs after ACL SETUSER: ${left.join('; ')}`, { location: { file: change.source } });
        // A user turned off keeps its open connections: close them (never this one, SKIPME is the default).
        if (payload.disconnect) await this.db.call('CLIENT', 'KILL', 'USER', payload.user);
        return;
      }
      case 'acl-deluser':
        // Redis closes the deleted user's connections itself.
        await this.db.call('ACL', 'DELUSER', payload.user);
        return;
    }
  }

  async close(): Promise<void> {
    await this.lease.release();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await client.quit().catch(() => client.disconnect());
  }
}
