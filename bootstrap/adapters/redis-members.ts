/**
 * The bootstrap of Redis under Sentinel (databases/redis/sentinel.ts): the stack hands it
 * `REDIS_SENTINELS` and `REDIS_MASTER_NAME` beside the admin URL. Redis replicates keys, not its ACL
 * or its configuration (`ACL SETUSER` and `CONFIG SET` act on the server they are sent to), so every
 * member is brought to the files:
 *
 * - the Sentinels name the master and its replicas (`SENTINEL GET-MASTER-ADDR-BY-NAME`,
 *   `SENTINEL REPLICAS`), asked as the admin (the same user and password on Sentinel);
 * - the lease is taken on the master (the only member that takes writes);
 * - what the plan sees is every member at once ({@link mergeMembers}): a difference on any member
 *   is a difference, so drift on one replica is planned and repaired too;
 * - each change is applied to the master, then to each replica (every change sets a user or a
 *   directive to the file's, so applying it where it already holds changes nothing).
 *
 * A replica the Sentinels report down is skipped, and named in the target: when it starts again it
 * loads the mounted files, which are what the bootstrap would have applied.
 */
import { Redis } from 'ioredis';
import type { Adapter, AdapterOptions, Change, Login } from '../contract.ts';
import { BootstrapError, toError } from '../errors.ts';
import { readiness, retryWithBackoff, TRY_AGAIN } from './backoff.ts';
import { RedisAdapter, redisClientTarget } from './redis-adapter.ts';
import type { RedisDesired } from './redis-files.ts';
import { configSubject, planRedis, userSubject, type RedisObserved, type RedisPayload } from './redis-plan.ts';
import { MASTER_NAME_VARIABLE, parseSentinels, SENTINELS_VARIABLE } from './redis-sentinel.ts';

/** A member's address as Sentinel reports it. */
export interface MemberAddress {
  host: string;
  port: number;
}

/** What the Sentinels say of the master and its replicas. */
export interface SentinelTopology {
  master: MemberAddress;
  /** The replicas Sentinel sees up, and those it reports down (flags `s_down`, `o_down`, `disconnected`). */
  replicas: MemberAddress[];
  down: MemberAddress[];
}

/** The Sentinel settings of a run, when the stack gives them. */
export function sentinelSettings(env: Readonly<Record<string, string | undefined>> | undefined): { sentinels: string; masterName: string } | undefined {
  const sentinels = env?.[SENTINELS_VARIABLE];
  if (!sentinels) return undefined;
  return { sentinels, masterName: env?.[MASTER_NAME_VARIABLE] || 'allixios' };
}

function fieldsOf(reply: unknown): Record<string, string> {
  const entries = Array.isArray(reply) ? reply : [];
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < entries.length; i += 2) fields[String(entries[i])] = String(entries[i + 1]);
  return fields;
}

/** Asks the Sentinels, in order, for the master and its replicas; the first that answers decides. */
export async function sentinelTopology(url: string, sentinels: string, masterName: string, engine = 'redis', connectTimeoutMs = 5000): Promise<SentinelTopology> {
  const target = redisClientTarget(url, engine);
  const parsed = new URL(target.url);
  const failures: string[] = [];
  for (const sentinel of parseSentinels(sentinels, engine)) {
    const client = new Redis({
      host: sentinel.host,
      port: sentinel.port,
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(target.tls ? { tls: target.tls } : {}),
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: connectTimeoutMs,
    });
    let lastError: Error | undefined;
    client.on('error', (error: Error) => (lastError = error));
    try {
      await client.connect();
      const master = await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName);
      if (!Array.isArray(master) || master.length !== 2) throw new Error(`it knows no master named ${masterName}`);
      const replicas = ((await client.call('SENTINEL', 'REPLICAS', masterName)) as unknown[]).map(fieldsOf);
      const address = (fields: Record<string, string>) => ({ host: fields.ip!, port: Number(fields.port) });
      const isDown = (fields: Record<string, string>) => /(^|,)(s_down|o_down|disconnected)(,|$)/.test(fields.flags ?? '');
      return {
        master: { host: String(master[0]), port: Number(master[1]) },
        replicas: replicas.filter((fields) => !isDown(fields)).map(address),
        down: replicas.filter(isDown).map(address),
      };
    } catch (error) {
      failures.push(`${sentinel.host}:${sentinel.port}: ${(lastError ?? toError(error)).message}`);
    } finally {
      client.disconnect();
    }
  }
  throw new BootstrapError(engine, `no Sentinel named the master ${masterName} (${SENTINELS_VARIABLE}): ${failures.join('; ')}`);
}

/** `url` with another host and port. */
function at(url: string, member: MemberAddress): string {
  const parsed = new URL(url);
  parsed.hostname = member.host;
  parsed.port = String(member.port);
  return parsed.toString();
}

/** A replica's state, and the subjects its own plan finds in sync (`Plan.inSync`). */
export interface ReplicaObservation {
  observed: RedisObserved;
  inSync: ReadonlySet<string>;
}

/**
 * What the planner sees of several members: the master's state, except for what a replica's own
 * plan finds out of sync, where the replica's (its user with the rules as that server normalises
 * them, or the user missing; its directive), so a difference on any member is planned. Each
 * server is compared with its own normalisation: two servers may spell the same rules in another
 * order.
 */
export function mergeMembers(master: RedisObserved, replicas: readonly ReplicaObservation[]): RedisObserved {
  const config = { ...master.config };
  const users = { ...master.users };
  const normalised = { ...master.normalised };
  for (const { observed, inSync } of replicas) {
    for (const name of new Set([...Object.keys(master.users), ...Object.keys(observed.users)])) {
      if (inSync.has(userSubject(name))) continue;
      if (name in observed.users) users[name] = observed.users[name]!;
      else delete users[name];
      if (observed.normalised[name]) normalised[name] = observed.normalised[name];
    }
    for (const [name, value] of Object.entries(observed.config)) if (!inSync.has(configSubject(name))) config[name] = value;
  }
  return { ...master, config, users, normalised };
}

/** Redis's adapter for the master and every replica the Sentinels name. Type of `createAdapter` when `REDIS_SENTINELS` is set. */
export class RedisMembersAdapter implements Adapter<RedisObserved, RedisPayload> {
  readonly engine: string;
  private master?: RedisAdapter;
  private replicas: RedisAdapter[] = [];
  private skipped: MemberAddress[] = [];
  private resolved: string;

  constructor(
    private readonly url: string,
    private readonly options: AdapterOptions,
    private readonly desired: RedisDesired,
    private readonly settings: { sentinels: string; masterName: string },
  ) {
    this.engine = desired.engine;
    this.resolved = `the master ${settings.masterName} through Sentinel ${settings.sentinels}`;
  }

  get target(): string {
    return this.resolved;
  }

  get login(): Login | undefined {
    return this.master?.login;
  }

  get lease() {
    return this.master?.lease;
  }

  private get primary(): RedisAdapter {
    if (!this.master) throw new BootstrapError(this.engine, 'not connected');
    return this.master;
  }

  /** The Sentinels, with backoff until the readiness timeout (they may still be starting), then the master and the replicas. */
  async connect(): Promise<void> {
    let last = 'no attempt made';
    const topology = await retryWithBackoff(
      readiness(this.options.readyTimeoutMs),
      async () => {
        try {
          return await sentinelTopology(this.url, this.settings.sentinels, this.settings.masterName, this.engine);
        } catch (error) {
          last = toError(error).message;
          // A refused login is not a Sentinel still starting.
          if (/WRONGPASS|NOAUTH|NOPERM/.test(last)) throw error;
          return TRY_AGAIN;
        }
      },
      () => new BootstrapError(this.engine, last),
    );
    const previousUrl = this.options.logins?.previousUrl;
    this.master = new RedisAdapter(
      at(this.url, topology.master),
      { ...this.options, logins: { ...this.options.logins, ...(previousUrl ? { previousUrl: at(previousUrl, topology.master) } : {}) } },
      this.desired,
    );
    await this.master.connect();
    // The replicas with the password the master took (current, or the previous one of a rotation).
    const login = this.master.login === 'previous' && previousUrl ? previousUrl : this.url;
    this.skipped = topology.down;
    for (const replica of topology.replicas) {
      const adapter = new RedisAdapter(at(login, replica), { ...this.options, logins: {} }, this.desired);
      await adapter.connect();
      this.replicas.push(adapter);
    }
    const name = (member: MemberAddress) => `${member.host}:${member.port}`;
    this.resolved = [
      `${this.master.target} (master of ${this.settings.masterName} under Sentinel)`,
      ...(topology.replicas.length ? [`replicas ${topology.replicas.map(name).join(', ')}`] : []),
      ...(this.skipped.length ? [`skipped, down: ${this.skipped.map(name).join(', ')} (it loads the files when it starts)`] : []),
    ].join('; ');
  }

  async lock(): Promise<void> {
    await this.primary.lock();
  }

  async observe(): Promise<RedisObserved> {
    const master = await this.primary.observe();
    const replicas = await Promise.all(
      this.replicas.map(async (replica): Promise<ReplicaObservation> => {
        const observed = await replica.observe();
        return { observed, inSync: new Set(planRedis(this.desired, observed).inSync) };
      }),
    );
    return mergeMembers(master, replicas);
  }

  async apply(change: Change<RedisPayload>): Promise<void> {
    await this.primary.apply(change);
    for (const replica of this.replicas) {
      try {
        await replica.applyUnlocked(change);
      } catch (error) {
        throw new BootstrapError(this.engine, `${change.subject}: applied on the master, but not on the replica ${replica.target}: ${toError(error).message}`, { cause: error });
      }
    }
  }

  async verifyLogin(url: string): Promise<void> {
    await this.primary.verifyLogin(url);
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.close()));
    this.replicas = [];
    await this.master?.close();
  }
}
