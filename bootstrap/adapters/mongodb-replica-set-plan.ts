/**
 * The replica set's membership, planned: a pure function from the members the stack wants (every
 * StatefulSet member's stable address, `MONGODB_REPLICA_SET_MEMBERS`) and what the members report
 * (each one's `hello`, the set's configuration from `replSetGetConfig`) to the changes that bring
 * the set to them: initiate it, add a member, remove one (after stepping it down, were it the
 * primary), or nothing. No I/O: `mongodb-replica-set.ts` observes and applies, this file decides.
 *
 * What it relies on from MongoDB rather than on a lock of its own (there is nowhere to keep a lock
 * before the set has a primary), so that two bootstraps can never form two sets:
 *
 * - The set is initiated through one member only, the first (ordinal 0), with itself as the only
 *   member; a second `replSetInitiate` there fails with AlreadyInitialized, which counts as done.
 *   The other members are then added one by one like any later member.
 * - It is initiated only while every desired member answers and none reports a configuration: a
 *   member that does not answer may hold the set's configuration (a lost volume of member 0 beside
 *   two live members), and initiating beside it would start a second set of the same name.
 * - A reconfiguration changes one member (one vote at most, the rule MongoDB sets for a safe
 *   reconfiguration), from the configuration read just before, with the next version: the
 *   primary refuses a version that is not above its own, so of two bootstraps racing one wins and
 *   the other reads again and finds nothing left to do.
 * - Without a primary nothing is changed. A majority of the configured voters still alive means
 *   an election is under way: wait. Less than a majority is not something MongoDB resolves by
 *   itself, and the one way out (a forced reconfiguration) can roll back majority-committed
 *   writes: refused, with the procedure, never done here.
 */
import type { Change } from '../contract.ts';

/** Where the desired state is defined: the replicas of the stack, rendered into the Job's variable. */
export const REPLICA_SET_SOURCE = 'databases/mongodb/replica-set.ts';

/** The members the stack wants, in ordinal order. */
export interface ReplicaSetDesired {
  name: string;
  /** `host:port`, as the members know each other (the first is ordinal 0, the one that initiates). */
  members: string[];
}

/** The fields of `hello` the plan reads. */
export interface HelloReply {
  /** The set's name, once the member has a configuration (a removed member reports it too). */
  setName?: string;
  isWritablePrimary?: boolean;
  secondary?: boolean;
  /** True on a member started with `--replSet`; with no `setName`, it has no configuration yet. */
  isreplicaset?: boolean;
  /** Where the member believes the primary is. */
  primary?: string;
}

/** What one member said to `hello`, or why it said nothing. */
export type MemberAnswer = { host: string; reachable: true; hello: HelloReply } | { host: string; reachable: false; reason: string };

/** A member of the set's configuration, as `replSetGetConfig` reports it (fields beyond these kept as they are). */
export interface ConfigMember {
  _id: number;
  host: string;
  votes?: number;
  arbiterOnly?: boolean;
  [field: string]: unknown;
}

/** The set's configuration, as `replSetGetConfig` reports it. */
export interface ReplicaSetConfig {
  _id: string;
  version: number;
  members: ConfigMember[];
  [field: string]: unknown;
}

export interface ReplicaSetObserved {
  /** `hello` of every desired member, and of every configured member that is not desired. */
  answers: MemberAnswer[];
  /** The configuration: the primary's when there is one, else that of a member that has one; none when no member has one. */
  config?: ReplicaSetConfig;
}

/** What the adapter runs for a change. */
export type ReplicaSetPayload =
  | { kind: 'initiate'; via: string; config: { _id: string; members: Array<{ _id: number; host: string }> } }
  | { kind: 'add-member'; host: string }
  | { kind: 'remove-member'; host: string }
  | { kind: 'step-down'; host: string };

export type ReplicaSetChange = Change<ReplicaSetPayload>;

export interface ReplicaSetPlan {
  /** In the order they must be applied; each one is applied against the configuration it finds then. */
  changes: ReplicaSetChange[];
  inSync: string[];
  /** States the bootstrap will not resolve (a lost majority, another set): each says what to do. */
  refusals: string[];
  /** A state that passes by itself (an election, a member still starting): observe again, within the readiness timeout. */
  waitFor?: string;
  /** The set has no configuration yet: the URL (`replicaSet=rs0`) finds no primary before the changes are applied. */
  blocksConnection: boolean;
}

const DEFAULT_PORT = 27017;

/** A member's address as MongoDB compares them: host names are case-insensitive, the port defaults to 27017. */
export function normalizeHost(host: string): string {
  const lower = host.trim().toLowerCase();
  return /:\d+$/.test(lower) ? lower : `${lower}:${DEFAULT_PORT}`;
}

/** Parses `MONGODB_REPLICA_SET_MEMBERS`: `host:port` entries, comma-separated; an error names what is wrong. */
export function parseMembers(value: string, variable: string): string[] {
  const members = value
    .split(',')
    .map((member) => member.trim())
    .filter((member) => member !== '');
  if (members.length === 0) throw new Error(`${variable}: expected at least one member (host:port, comma-separated), got ${JSON.stringify(value)}`);
  const malformed = members.filter((member) => !/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(member));
  if (malformed.length > 0) throw new Error(`${variable}: expected host:port entries, got ${malformed.map((member) => JSON.stringify(member)).join(', ')}`);
  const normalized = members.map(normalizeHost);
  const twice = normalized.filter((member, index) => normalized.indexOf(member) !== index);
  if (twice.length > 0) throw new Error(`${variable}: expected each member once, got ${[...new Set(twice)].join(', ')} more than once`);
  return normalized;
}

const isVoter = (member: ConfigMember) => (member.votes ?? 1) > 0;

function addChange(host: string, detail: string): ReplicaSetChange {
  return { subject: `member ${host}`, action: 'create', detail, source: REPLICA_SET_SOURCE, payload: { kind: 'add-member', host } };
}

const ADD_DETAIL = 'not in the set: added by a reconfiguration of its own (it votes once its initial sync has made it a secondary)';

/** Pure: the changes that bring the set `observed` describes to the members `desired` names, in order. */
export function planReplicaSet(desired: ReplicaSetDesired, observed: ReplicaSetObserved): ReplicaSetPlan {
  const plan: ReplicaSetPlan = { changes: [], inSync: [], refusals: [], blocksConnection: false };
  const members = desired.members.map(normalizeHost);
  const subject = `replica set ${desired.name}`;
  if (members.length === 0) {
    plan.refusals.push(`${subject}: no desired member`);
    return plan;
  }
  const answers = new Map(observed.answers.map((answer) => [normalizeHost(answer.host), answer]));
  const reply = (host: string) => {
    const answer = answers.get(host);
    return answer?.reachable ? answer.hello : undefined;
  };

  // Members of another set: nothing the bootstrap may change (joining them would take their data).
  for (const [host, answer] of answers) {
    if (answer.reachable && answer.hello.setName !== undefined && answer.hello.setName !== desired.name) {
      plan.refusals.push(
        `member ${host} belongs to the replica set ${answer.hello.setName}, not ${desired.name}: start it with --replSet ${desired.name} and an empty data volume, or remove it`,
      );
    }
  }
  if (plan.refusals.length > 0) return plan;

  const config = observed.config;
  if (!config) {
    plan.blocksConnection = true;
    const silent = members.filter((host) => !reply(host));
    if (silent.length > 0) {
      const reasons = silent.map((host) => {
        const answer = answers.get(host);
        return `${host} (${answer && !answer.reachable ? answer.reason : 'not asked'})`;
      });
      plan.waitFor = `every member to answer before the set is initiated (an unanswered one may hold its configuration): waiting for ${reasons.join(', ')}`;
      return plan;
    }
    const configured = members.filter((host) => reply(host)!.setName !== undefined);
    if (configured.length > 0) {
      // A member reports the set but its configuration could not be read (yet): observe again.
      plan.waitFor = `the configuration of the set that ${configured.join(', ')} report${configured.length > 1 ? '' : 's'}`;
      return plan;
    }
    const single = members.filter((host) => reply(host)!.isreplicaset !== true);
    if (single.length > 0) {
      plan.waitFor = `${single.join(', ')} to run as a replica set member (${single.length > 1 ? 'they answer' : 'it answers'} as a single server: not restarted with --replSet ${desired.name} yet)`;
      return plan;
    }
    const [first, ...others] = members as [string, ...string[]];
    plan.changes.push({
      subject,
      action: 'create',
      detail: `not initiated: initiated through ${first}, its first member (the others join by reconfiguration)`,
      source: REPLICA_SET_SOURCE,
      payload: { kind: 'initiate', via: first, config: { _id: desired.name, members: [{ _id: 0, host: first }] } },
    });
    for (const host of others) plan.changes.push(addChange(host, ADD_DETAIL));
    return plan;
  }

  if (config._id !== desired.name) {
    plan.refusals.push(`${subject}: the members hold the configuration of the replica set ${config._id}; start them with --replSet ${desired.name}`);
    return plan;
  }
  const configured = config.members.map((member) => ({ ...member, host: normalizeHost(member.host) }));
  const current = new Set(configured.map((member) => member.host));
  const wanted = new Set(members);
  const missing = members.filter((host) => !current.has(host));
  const extra = configured.filter((member) => !wanted.has(member.host));
  for (const host of members) if (current.has(host)) plan.inSync.push(`member ${host}`);
  if (missing.length === 0 && extra.length === 0) return plan;

  const primary = configured.find((member) => reply(member.host)?.isWritablePrimary === true && reply(member.host)?.setName === desired.name);
  if (!primary) {
    const voters = configured.filter(isVoter);
    const alive = voters.filter((member) => reply(member.host)?.setName === desired.name);
    if (alive.length * 2 <= voters.length) {
      const gone = voters.filter((member) => !alive.includes(member)).map((member) => member.host);
      plan.refusals.push(
        `${subject} has no primary and cannot elect one: ${alive.length} of its ${voters.length} voting members answer as members (gone: ${gone.join(', ')}), not a majority. ` +
          'Bring members back (scale the StatefulSet back up), or reconfigure by hand on a member you keep with rs.reconfig(config, { force: true }); ' +
          'the bootstrap never forces a reconfiguration, which can roll back majority-committed writes',
      );
      return plan;
    }
    plan.waitFor = `a primary: ${alive.length} of the ${voters.length} voting members answer, a majority, and elect one by themselves`;
  }

  // Adds first: the set never has fewer members than it needs while it changes.
  for (const host of missing) plan.changes.push(addChange(host, ADD_DETAIL));
  for (const member of extra) {
    if (member.host === primary?.host) {
      plan.changes.push({
        subject: `member ${member.host}`,
        action: 'update',
        detail: 'the primary, and not a desired member: steps down first (replSetStepDown), and the others elect a primary',
        source: REPLICA_SET_SOURCE,
        payload: { kind: 'step-down', host: member.host },
      });
    }
    const state = reply(member.host) ? 'answers' : 'does not answer';
    plan.changes.push({
      subject: `member ${member.host}`,
      action: 'delete',
      detail: `in the set but not a desired member (it ${state}): removed by a reconfiguration of its own`,
      source: REPLICA_SET_SOURCE,
      payload: { kind: 'remove-member', host: member.host },
    });
  }
  return plan;
}

/**
 * The configuration that adds `host` to `config` (a new `_id` above every other, MongoDB's default
 * votes and priority; MongoDB 4.4 and later mark it `newlyAdded` and count its vote only once it
 * is a secondary), or removes it, with the next version; undefined when there is nothing to do
 * (a concurrent bootstrap did it). The `term` is the primary's to set.
 */
export function reconfigured(config: ReplicaSetConfig, change: { kind: 'add-member' | 'remove-member'; host: string }): ReplicaSetConfig | undefined {
  const host = normalizeHost(change.host);
  const present = config.members.some((member) => normalizeHost(member.host) === host);
  const { term: _term, ...rest } = config;
  if (change.kind === 'add-member') {
    if (present) return undefined;
    const nextId = Math.max(-1, ...config.members.map((member) => member._id)) + 1;
    return { ...rest, version: config.version + 1, members: [...config.members, { _id: nextId, host }] };
  }
  if (!present) return undefined;
  return { ...rest, version: config.version + 1, members: config.members.filter((member) => normalizeHost(member.host) !== host) };
}
