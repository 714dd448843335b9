/**
 * The replica set's membership, observed and applied (the decisions are `mongodb-replica-set-plan.ts`'s).
 * Every member is reached on its own (`directConnection`), as root with the stack's password (the
 * previous one while a rotation keeps it), over TLS as the URL asks: `hello` says what each member
 * is, `replSetGetConfig` what the set holds, and `replSetInitiate`, `replSetReconfig` and
 * `replSetStepDown` change it. Loaded with the adapter, when a run connects.
 */
import { MongoClient, MongoServerError } from 'mongodb';
import { mongodb } from '../../databases/mongodb/index.ts';
import type { AdapterOptions, Change, MembershipPlan } from '../contract.ts';
import { BootstrapError, toError } from '../errors.ts';
import { readiness, retryWithBackoff, TRY_AGAIN } from './backoff.ts';
import { LoginRefused, urlUser } from './logins.ts';
import { isLoginRefused, isTransient, mongoClientOptions, serverCode } from './mongodb-adapter.ts';
import {
  normalizeHost,
  planReplicaSet,
  reconfigured,
  type HelloReply,
  type MemberAnswer,
  type ReplicaSetChange,
  type ReplicaSetConfig,
  type ReplicaSetDesired,
  type ReplicaSetObserved,
  type ReplicaSetPlan,
} from './mongodb-replica-set-plan.ts';

const ENGINE = mongodb.name;
/** How long one member may take to answer before it counts as not answering (never past the wait's deadline). */
const MAX_ATTEMPT_MS = 5000;
/** A replSetInitiate on a member that already has a configuration (a concurrent bootstrap's). */
const ALREADY_INITIALIZED = 23;
/** replSetStepDown on a member that is no longer the primary: what the step-down was for. */
const NOT_WRITABLE_PRIMARY = 10107;

/**
 * Server errors of a reconfiguration that another try resolves: the previous configuration not
 * committed yet, another reconfiguration (a concurrent bootstrap's) first, the primary changing,
 * too few members answering the new configuration's quorum check yet.
 */
const RECONFIGURATION_RETRIES = new Set([
  74, // NodeNotFound: the quorum check reached too few members
  103, // NewReplicaSetConfigurationIncompatible: another reconfiguration took this version
  109, // ConfigurationInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit: no secondary caught up to step down to yet
  308, // CurrentConfigNotCommittedYet
  10107, // NotWritablePrimary
  11602, // InterruptedDueToReplStateChange
]);

/**
 * The admin URL made to reach one member alone: the same user, password, database and options,
 * `host` for the host list, `directConnection=true` and without `replicaSet` (a member that is not
 * in the set yet is no member of it for the driver). Options are matched without regard to case,
 * as in a connection string.
 */
export function memberUrl(url: string, host: string): string {
  const scheme = /^mongodb:\/\//.exec(url);
  if (!scheme) throw new Error('expected a mongodb:// connection string (a mongodb+srv:// one names no members to reach one by one)');
  const rest = url.slice(scheme[0].length);
  const authority = rest.split(/[/?]/, 1)[0]!;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  const afterAuthority = rest.slice(authority.length);
  const queryAt = afterAuthority.indexOf('?');
  const path = queryAt >= 0 ? afterAuthority.slice(0, queryAt) : afterAuthority;
  const query = queryAt >= 0 ? afterAuthority.slice(queryAt + 1) : '';
  const kept = query.split('&').filter((parameter) => parameter !== '' && !/^(replicaset|directconnection)=/i.test(parameter));
  return `${scheme[0]}${userinfo}${host}${path || '/'}?${[...kept, 'directConnection=true'].join('&')}`;
}

/** The fields of a `hello` reply the plan reads. */
function helloReply(reply: Record<string, unknown>): HelloReply {
  const pick: HelloReply = {};
  if (typeof reply.setName === 'string') pick.setName = reply.setName;
  if (typeof reply.isWritablePrimary === 'boolean') pick.isWritablePrimary = reply.isWritablePrimary;
  if (typeof reply.secondary === 'boolean') pick.secondary = reply.secondary;
  if (typeof reply.isreplicaset === 'boolean') pick.isreplicaset = reply.isreplicaset;
  if (typeof reply.primary === 'string') pick.primary = reply.primary;
  return pick;
}

/** The replica set the stack wants, reached member by member. */
export class MongoReplicaSet {
  private readonly clients = new Map<string, MongoClient>();
  /** The URL a member accepted (the previous password's, while a rotation keeps it): tried first. */
  private acceptedUrl: string;
  /** How long the next connection may wait for its member: what is left of the current wait, 5 s at most. */
  private attemptMs = MAX_ATTEMPT_MS;

  constructor(
    private readonly url: string,
    private readonly desired: ReplicaSetDesired,
    private readonly options: AdapterOptions,
  ) {
    this.acceptedUrl = url;
  }

  /** A client connected to `host` alone and logged in; the previous password is tried when the current one is refused. */
  private async member(host: string): Promise<MongoClient> {
    const open = this.clients.get(host);
    if (open) return open;
    const urls = [...new Set([this.acceptedUrl, this.url, ...(this.options.logins?.previousUrl ? [this.options.logins.previousUrl] : [])])];
    let refused: unknown;
    for (const url of urls) {
      const address = memberUrl(url, host);
      const client = new MongoClient(address, mongoClientOptions(address, this.attemptMs, this.options));
      try {
        await client.connect();
        this.clients.set(host, client);
        this.acceptedUrl = url;
        return client;
      } catch (error) {
        await client.close().catch(() => undefined);
        if (!isLoginRefused(error)) throw error;
        refused = error;
      }
    }
    const reason = toError(refused).message;
    throw new LoginRefused(ENGINE, reason, `member ${host} refuses ${urlUser(this.url)} with the stack's password${urls.length > 1 ? 's' : ''}: ${reason}`, serverCode(refused));
  }

  /** Bounds the next connections by what is left of the current wait (half a second at least). */
  private within(remainingMs: number): void {
    this.attemptMs = Math.max(500, Math.min(MAX_ATTEMPT_MS, remainingMs));
  }

  /** Forgets a member's client after a failure, so the next attempt connects anew. */
  private async drop(host: string): Promise<void> {
    const client = this.clients.get(host);
    this.clients.delete(host);
    await client?.close().catch(() => undefined);
  }

  private async hello(host: string): Promise<MemberAnswer> {
    try {
      const client = await this.member(host);
      return { host, reachable: true, hello: helloReply(await client.db('admin').command({ hello: 1 })) };
    } catch (error) {
      await this.drop(host);
      if (error instanceof LoginRefused) throw error;
      if (isTransient(error)) return { host, reachable: false, reason: toError(error).message };
      throw new BootstrapError(ENGINE, `member ${host}: hello failed: ${toError(error).message}`, { code: serverCode(error), cause: error });
    }
  }

  private async readConfig(host: string): Promise<ReplicaSetConfig | undefined> {
    try {
      const reply = await (await this.member(host)).db('admin').command({ replSetGetConfig: 1 });
      return reply.config as ReplicaSetConfig;
    } catch (error) {
      await this.drop(host);
      if (isTransient(error) || (error instanceof MongoServerError && RECONFIGURATION_RETRIES.has(Number(error.code)))) return undefined;
      throw new BootstrapError(ENGINE, `member ${host}: replSetGetConfig failed: ${toError(error).message}`, { code: serverCode(error), cause: error });
    }
  }

  /** What every desired member (and every configured one that is not) says, and the set's configuration. */
  async observe(): Promise<ReplicaSetObserved> {
    const answers = await Promise.all(this.desired.members.map((host) => this.hello(normalizeHost(host))));
    const configured = () => answers.filter((answer): answer is Extract<MemberAnswer, { reachable: true }> => answer.reachable && answer.hello.setName !== undefined);
    if (configured().length === 0) return { answers };
    const source = configured().find((answer) => answer.hello.isWritablePrimary) ?? configured()[0]!;
    let config = await this.readConfig(source.host);
    if (config) {
      const asked = new Set(answers.map((answer) => answer.host));
      const others = config.members.map((member) => normalizeHost(member.host)).filter((host) => !asked.has(host));
      answers.push(...(await Promise.all(others.map((host) => this.hello(host)))));
      // The primary's configuration is the set's; a secondary's may lag one version behind.
      const primary = configured().find((answer) => answer.hello.isWritablePrimary);
      if (primary && primary.host !== source.host) config = (await this.readConfig(primary.host)) ?? config;
    }
    return { answers, ...(config ? { config } : {}) };
  }

  /**
   * The plan, observed anew while it waits for a state that passes by itself (an election, a
   * member still starting), within the readiness timeout.
   */
  async plan(): Promise<MembershipPlan> {
    let last: ReplicaSetPlan | undefined;
    const plan = await retryWithBackoff(
      readiness(this.options.readyTimeoutMs),
      async (remaining) => {
        this.within(remaining);
        last = planReplicaSet(this.desired, await this.observe());
        return last.waitFor && last.refusals.length === 0 ? TRY_AGAIN : last;
      },
      (elapsed) => new BootstrapError(ENGINE, `replica set ${this.desired.name}: waited ${(elapsed / 1000).toFixed(1)} s for ${last?.waitFor ?? 'its members'}`),
      { onWait: this.options.onWait, waiting: () => `replica set ${this.desired.name}: waiting for ${last?.waitFor ?? 'its members'}` },
    );
    return { changes: plan.changes, inSync: plan.inSync, refusals: plan.refusals, blocksConnection: plan.blocksConnection };
  }

  /** Applies one change against what the set holds now; nothing when a concurrent bootstrap made it. */
  async apply(change: Change): Promise<void> {
    const { payload } = change as ReplicaSetChange;
    switch (payload.kind) {
      case 'initiate':
        return this.initiate(payload.via, payload.config);
      case 'add-member':
      case 'remove-member':
        return this.reconfigure({ kind: payload.kind, host: payload.host });
      case 'step-down':
        return this.stepDown(payload.host);
    }
  }

  private async initiate(via: string, config: { _id: string; members: Array<{ _id: number; host: string }> }): Promise<void> {
    try {
      await (await this.member(via)).db('admin').command({ replSetInitiate: config });
    } catch (error) {
      await this.drop(via);
      // Another bootstrap initiated the set first, through the same member: done.
      if (error instanceof MongoServerError && error.code === ALREADY_INITIALIZED) return;
      throw new BootstrapError(ENGINE, `replica set ${config._id}: replSetInitiate through ${via} failed: ${toError(error).message}`, { code: serverCode(error), cause: error });
    }
  }

  /** The member the others agree is the primary, asked anew. */
  private async primary(): Promise<string | undefined> {
    const observed = await this.observe();
    return observed.answers.find((answer) => answer.reachable && answer.hello.isWritablePrimary && answer.hello.setName === this.desired.name)?.host;
  }

  /**
   * Adds or removes one member: on the primary, from the configuration it holds now, with the next
   * version; tried again (within the readiness timeout) while the set elects, commits the
   * previous configuration, or a concurrent bootstrap's reconfiguration came first.
   */
  private async reconfigure(change: { kind: 'add-member' | 'remove-member'; host: string }): Promise<void> {
    let last = 'no attempt made';
    await retryWithBackoff(
      readiness(this.options.readyTimeoutMs),
      async (remaining) => {
        this.within(remaining);
        const primary = await this.primary();
        if (!primary) {
          last = 'no primary';
          return TRY_AGAIN;
        }
        try {
          const admin = (await this.member(primary)).db('admin');
          const config = (await admin.command({ replSetGetConfig: 1 })).config as ReplicaSetConfig;
          const next = reconfigured(config, change);
          if (!next) return true;
          // Bounded: without maxTimeMS the command waits for a majority as long as it takes.
          await admin.command({ replSetReconfig: next, maxTimeMS: Math.max(1000, remaining) });
          return true;
        } catch (error) {
          await this.drop(primary);
          if (isTransient(error) || (error instanceof MongoServerError && RECONFIGURATION_RETRIES.has(Number(error.code)))) {
            last = `${toError(error).message}${serverCode(error) ? ` [${serverCode(error)}]` : ''}`;
            return TRY_AGAIN;
          }
          throw new BootstrapError(ENGINE, `member ${change.host}: replSetReconfig on ${primary} failed: ${toError(error).message}`, { code: serverCode(error), cause: error });
        }
      },
      (elapsed) => new BootstrapError(ENGINE, `member ${change.host}: the reconfiguration did not go through within ${(elapsed / 1000).toFixed(1)} s (${last})`),
      { onWait: this.options.onWait, waiting: () => `member ${change.host}: reconfiguration waiting (${last})` },
    );
  }

  /** Asks `host` to step down; done once it is no longer the primary. */
  private async stepDown(host: string): Promise<void> {
    let last = 'no attempt made';
    await retryWithBackoff(
      readiness(this.options.readyTimeoutMs),
      async (remaining) => {
        this.within(remaining);
        try {
          await (await this.member(host)).db('admin').command({ replSetStepDown: 60, secondaryCatchUpPeriodSecs: 10 });
          return true;
        } catch (error) {
          await this.drop(host);
          if (error instanceof MongoServerError && error.code === NOT_WRITABLE_PRIMARY) return true;
          if (isTransient(error) || (error instanceof MongoServerError && RECONFIGURATION_RETRIES.has(Number(error.code)))) {
            last = toError(error).message;
            return (await this.primary()) === host ? TRY_AGAIN : true;
          }
          throw new BootstrapError(ENGINE, `member ${host}: replSetStepDown failed: ${toError(error).message}`, { code: serverCode(error), cause: error });
        }
      },
      (elapsed) => new BootstrapError(ENGINE, `member ${host}: still the primary after ${(elapsed / 1000).toFixed(1)} s (${last})`),
      { onWait: this.options.onWait, waiting: () => `member ${host}: stepping down (${last})` },
    );
  }

  async close(): Promise<void> {
    for (const host of [...this.clients.keys()]) await this.drop(host);
  }
}
