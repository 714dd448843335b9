/**
 * The replica set's membership planner on plain data, in the shapes the members report (`hello`,
 * `replSetGetConfig`): initiate, add, remove (stepping the primary down first), nothing; the waits
 * for states that pass by themselves and the refusals for those that do not; the configuration a
 * reconfiguration sends; and what the bootstrap reads from its environment. No server: MongoDB
 * cannot run on this machine (ENGINES.md).
 */
import { describe, expect, it } from 'vitest';
import { desiredReplicaSet } from '../../bootstrap/adapters/mongodb.ts';
import { memberUrl } from '../../bootstrap/adapters/mongodb-replica-set.ts';
import {
  normalizeHost,
  parseMembers,
  planReplicaSet,
  reconfigured,
  type HelloReply,
  type MemberAnswer,
  type ReplicaSetConfig,
  type ReplicaSetDesired,
  type ReplicaSetObserved,
} from '../../bootstrap/adapters/mongodb-replica-set-plan.ts';

const member = (ordinal: number) => `mongodb-${ordinal}.mongodb-headless.allixios-prod.svc.cluster.local:27017`;
const desired = (count: number): ReplicaSetDesired => ({ name: 'rs0', members: Array.from({ length: count }, (_, ordinal) => member(ordinal)) });

// What hello says, by state (see the server's HelloResponse: a member without a configuration,
// and a removed one, answer isreplicaset: true and "Does not have a valid replica set config").
const FRESH: HelloReply = { isreplicaset: true, isWritablePrimary: false, secondary: false };
const SINGLE_SERVER: HelloReply = { isWritablePrimary: true };
const primaryOf = (primary: string): HelloReply => ({ setName: 'rs0', isWritablePrimary: true, secondary: false, primary });
const secondaryOf = (primary: string): HelloReply => ({ setName: 'rs0', isWritablePrimary: false, secondary: true, primary });
const STARTUP2: HelloReply = { setName: 'rs0', isWritablePrimary: false, secondary: false };

const answering = (host: string, hello: HelloReply): MemberAnswer => ({ host, reachable: true, hello });
const silent = (host: string, reason = 'connect ECONNREFUSED'): MemberAnswer => ({ host, reachable: false, reason });

function config(hosts: string[], extra: Partial<ReplicaSetConfig> = {}): ReplicaSetConfig {
  return {
    _id: 'rs0',
    version: 7,
    term: 3,
    protocolVersion: 1,
    settings: { chainingAllowed: true, heartbeatTimeoutSecs: 10 },
    members: hosts.map((host, index) => ({ _id: index, host, arbiterOnly: false, buildIndexes: true, hidden: false, priority: 1, secondaryDelaySecs: 0, votes: 1 })),
    ...extra,
  };
}

/** A set of `hosts` whose first member is the primary and the others secondaries, all answering. */
function healthySet(hosts: string[]): ReplicaSetObserved {
  return { answers: hosts.map((host, index) => answering(host, index === 0 ? primaryOf(hosts[0]!) : secondaryOf(hosts[0]!))), config: config(hosts) };
}

const kinds = (observed: ReplicaSetObserved, wanted = desired(3)) => planReplicaSet(wanted, observed).changes.map((change) => [change.payload.kind, change.subject]);

describe('a set not initiated yet', () => {
  it('is initiated through its first member alone, and the others are added one by one', () => {
    // Given three fresh members, all answering, none with a configuration
    const plan = planReplicaSet(desired(3), { answers: [0, 1, 2].map((ordinal) => answering(member(ordinal), FRESH)) });
    // Then the set is initiated through member 0 with itself as the only member, then 1 and 2 join
    expect(plan.changes.map((change) => change.payload)).toEqual([
      { kind: 'initiate', via: member(0), config: { _id: 'rs0', members: [{ _id: 0, host: member(0) }] } },
      { kind: 'add-member', host: member(1) },
      { kind: 'add-member', host: member(2) },
    ]);
    expect(plan.changes.map((change) => [change.action, change.subject])).toEqual([
      ['create', 'replica set rs0'],
      ['create', `member ${member(1)}`],
      ['create', `member ${member(2)}`],
    ]);
    // And the URL (replicaSet=rs0) finds no primary before the plan is applied
    expect(plan.blocksConnection).toBe(true);
    expect(plan.refusals).toEqual([]);
    expect(plan.waitFor).toBeUndefined();
  });

  it('of one member (ephemeral) is initiated and nothing else', () => {
    const plan = planReplicaSet(desired(1), { answers: [answering(member(0), FRESH)] });
    expect(plan.changes.map((change) => change.payload.kind)).toEqual(['initiate']);
  });

  it('is planned identically by two bootstraps, whatever order the members answered in, so the second initiate is the same command', () => {
    const answers = [0, 1, 2].map((ordinal) => answering(member(ordinal), FRESH));
    const first = planReplicaSet(desired(3), { answers });
    const second = planReplicaSet(desired(3), { answers: [...answers].reverse() });
    expect(second.changes).toEqual(first.changes);
  });

  it('waits while a member does not answer: it may hold the set, and initiating beside it would start a second set of the same name', () => {
    const plan = planReplicaSet(desired(3), { answers: [answering(member(0), FRESH), silent(member(1), 'getaddrinfo ENOTFOUND'), answering(member(2), FRESH)] });
    expect(plan.changes).toEqual([]);
    expect(plan.waitFor).toContain(`${member(1)} (getaddrinfo ENOTFOUND)`);
    expect(plan.blocksConnection).toBe(true);
  });

  it('waits while a member still answers as a single server (not restarted with --replSet yet)', () => {
    const plan = planReplicaSet(desired(3), { answers: [answering(member(0), SINGLE_SERVER), answering(member(1), FRESH), answering(member(2), FRESH)] });
    expect(plan.changes).toEqual([]);
    expect(plan.waitFor).toBe(`${member(0)} to run as a replica set member (it answers as a single server: not restarted with --replSet rs0 yet)`);
  });

  it('waits when a member reports the set but its configuration could not be read yet, rather than initiate again', () => {
    const plan = planReplicaSet(desired(3), { answers: [answering(member(0), primaryOf(member(0))), answering(member(1), FRESH), answering(member(2), FRESH)] });
    expect(plan.changes).toEqual([]);
    expect(plan.waitFor).toContain(member(0));
  });
});

describe('a set that exists', () => {
  it('changes nothing when its members are the desired ones, and names them in sync', () => {
    const plan = planReplicaSet(desired(3), healthySet([0, 1, 2].map(member)));
    expect(plan).toEqual({ changes: [], inSync: [0, 1, 2].map((ordinal) => `member ${member(ordinal)}`), refusals: [], blocksConnection: false });
  });

  it('after a concurrent bootstrap initiated it, only adds the members still missing: never initiates again', () => {
    // Given member 0 initiated (by the other bootstrap) and primary, 1 and 2 still fresh
    const observed: ReplicaSetObserved = {
      answers: [answering(member(0), primaryOf(member(0))), answering(member(1), FRESH), answering(member(2), FRESH)],
      config: config([member(0)]),
    };
    expect(kinds(observed)).toEqual([
      ['add-member', `member ${member(1)}`],
      ['add-member', `member ${member(2)}`],
    ]);
  });

  it('adds the members of a scale-up in ordinal order, each by a reconfiguration of its own', () => {
    const observed = healthySet([0, 1, 2].map(member));
    observed.answers.push(answering(member(3), FRESH), silent(member(4)));
    expect(kinds(observed, desired(5))).toEqual([
      ['add-member', `member ${member(3)}`],
      // A member that does not answer yet is added all the same: it votes only once it is a secondary
      ['add-member', `member ${member(4)}`],
    ]);
  });

  it('removes the members of a scale-down, which no longer answer, one by one', () => {
    const hosts = [0, 1, 2, 3, 4].map(member);
    const observed = healthySet(hosts);
    observed.answers = [...observed.answers.slice(0, 3), silent(member(3)), silent(member(4))];
    const plan = planReplicaSet(desired(3), observed);
    expect(plan.changes.map((change) => [change.payload.kind, change.action, change.subject])).toEqual([
      ['remove-member', 'delete', `member ${member(3)}`],
      ['remove-member', 'delete', `member ${member(4)}`],
    ]);
    expect(plan.changes[0]!.detail).toContain('it does not answer');
  });

  it('steps the primary down before removing it, when the primary is a member the stack no longer wants', () => {
    const hosts = [0, 1, 2, 3, 4].map(member);
    const observed: ReplicaSetObserved = {
      answers: hosts.map((host) => answering(host, host === member(4) ? primaryOf(member(4)) : secondaryOf(member(4)))),
      config: config(hosts),
    };
    expect(kinds(observed)).toEqual([
      ['remove-member', `member ${member(3)}`],
      ['step-down', `member ${member(4)}`],
      ['remove-member', `member ${member(4)}`],
    ]);
  });

  it('adds before it removes: a set whose members all moved (another namespace) never drops below what it needs', () => {
    const old = [0, 1, 2].map((ordinal) => `mongodb-${ordinal}.mongodb-headless.old.svc.cluster.local:27017`);
    const observed = healthySet(old);
    observed.answers.push(...[0, 1, 2].map((ordinal) => answering(member(ordinal), FRESH)));
    expect(kinds(observed).map(([kind]) => kind)).toEqual(['add-member', 'add-member', 'add-member', 'step-down', 'remove-member', 'remove-member', 'remove-member']);
  });

  it('compares hosts as MongoDB does: case-insensitive, 27017 when no port is given', () => {
    const observed = healthySet(['MONGODB-0.mongodb-headless.allixios-prod.svc.cluster.local', member(1), member(2)]);
    expect(planReplicaSet(desired(3), observed).changes).toEqual([]);
    expect(normalizeHost('Mongo.Example')).toBe('mongo.example:27017');
  });

  it('waits for the election before it changes anything while the set has no primary but a majority of its voters answer', () => {
    const hosts = [0, 1, 2].map(member);
    const observed: ReplicaSetObserved = { answers: [answering(member(0), secondaryOf('')), answering(member(1), secondaryOf('')), silent(member(2))], config: config(hosts) };
    const plan = planReplicaSet(desired(2 + 3), { ...observed, answers: [...observed.answers, answering(member(3), FRESH), answering(member(4), FRESH)] });
    expect(plan.waitFor).toBe('a primary: 2 of the 3 voting members answer, a majority, and elect one by themselves');
    expect(plan.refusals).toEqual([]);
  });

  it('refuses, naming the way out, when a majority of its voters is gone (a scale-down of more than a minority at once): it never forces a reconfiguration', () => {
    // Given a set of three whose members 1 and 2 were deleted together: member 0 alone, a secondary
    const observed: ReplicaSetObserved = { answers: [answering(member(0), secondaryOf('')), silent(member(1)), silent(member(2))], config: config([0, 1, 2].map(member)) };
    const plan = planReplicaSet(desired(1), observed);
    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toHaveLength(1);
    expect(plan.refusals[0]).toContain('replica set rs0 has no primary and cannot elect one: 1 of its 3 voting members answer as members');
    expect(plan.refusals[0]).toContain(`gone: ${member(1)}, ${member(2)}`);
    expect(plan.refusals[0]).toContain('rs.reconfig(config, { force: true })');
  });

  it('counts only voting members towards the majority', () => {
    const hosts = [0, 1, 2].map(member);
    const set = config(hosts);
    set.members[2]!.votes = 0;
    // Member 1 gone, member 2 a non-voter: 1 of 2 voters answers, no majority
    const observed: ReplicaSetObserved = { answers: [answering(member(0), secondaryOf('')), silent(member(1)), answering(member(2), secondaryOf(''))], config: set };
    expect(planReplicaSet(desired(1), observed).refusals[0]).toContain('1 of its 2 voting members');
  });

  it('counts a member in initial sync as an answering member of the set (STARTUP2 reports the set)', () => {
    const hosts = [0, 1, 2].map(member);
    const observed: ReplicaSetObserved = { answers: [answering(member(0), secondaryOf('')), answering(member(1), STARTUP2), silent(member(2))], config: config(hosts) };
    expect(planReplicaSet(desired(2), observed).waitFor).toContain('2 of the 3 voting members answer');
  });
});

describe('what the bootstrap refuses to touch', () => {
  it('a member of another replica set', () => {
    const plan = planReplicaSet(desired(3), {
      answers: [answering(member(0), { ...primaryOf(member(0)), setName: 'legacy' }), answering(member(1), FRESH), answering(member(2), FRESH)],
    });
    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([`member ${member(0)} belongs to the replica set legacy, not rs0: start it with --replSet rs0 and an empty data volume, or remove it`]);
  });

  it('a configuration of another set name', () => {
    const observed = healthySet([0, 1, 2].map(member));
    observed.config = { ...observed.config!, _id: 'legacy' };
    expect(planReplicaSet(desired(3), observed).refusals).toEqual(['replica set rs0: the members hold the configuration of the replica set legacy; start them with --replSet rs0']);
  });

  it('no desired member at all', () => {
    expect(planReplicaSet({ name: 'rs0', members: [] }, { answers: [] }).refusals).toEqual(['replica set rs0: no desired member']);
  });
});

describe('the configuration a reconfiguration sends', () => {
  it('adds a member with the next _id and version, keeps every other field, and leaves the term to the primary', () => {
    const current = config([0, 1, 2].map(member));
    const next = reconfigured(current, { kind: 'add-member', host: member(3) })!;
    expect(next.version).toBe(8);
    expect(next.members.at(-1)).toEqual({ _id: 3, host: member(3) });
    expect(next.members.slice(0, 3)).toEqual(current.members);
    expect(next.settings).toEqual(current.settings);
    expect(next.protocolVersion).toBe(1);
    expect('term' in next).toBe(false);
  });

  it('takes an _id above every other, whatever the gaps', () => {
    const current = config([member(0), member(1)]);
    current.members[1]!._id = 7;
    expect(reconfigured(current, { kind: 'add-member', host: member(2) })!.members.at(-1)!._id).toBe(8);
  });

  it('removes a member and nothing else', () => {
    const current = config([0, 1, 2].map(member));
    const next = reconfigured(current, { kind: 'remove-member', host: member(1).toUpperCase() })!;
    expect(next.members.map((entry) => entry.host)).toEqual([member(0), member(2)]);
    expect(next.version).toBe(8);
  });

  it('is nothing when a concurrent bootstrap already made the change', () => {
    const current = config([0, 1, 2].map(member));
    expect(reconfigured(current, { kind: 'add-member', host: member(2) })).toBeUndefined();
    expect(reconfigured(current, { kind: 'remove-member', host: member(5) })).toBeUndefined();
  });
});

describe("the bootstrap's environment", () => {
  const variable = 'MONGODB_REPLICA_SET_MEMBERS';

  it('reads the desired members, in order, from MONGODB_REPLICA_SET_MEMBERS, and names the set rs0', () => {
    const env = { [variable]: `${member(0)},${member(1)}, ${member(2)}`, MONGODB_URL: 'mongodb://root@mongodb.allixios-prod.svc:27017/allixios?replicaSet=rs0' };
    expect(desiredReplicaSet(env)).toEqual(desired(3));
  });

  it('keeps no set without the variable (Docker, a URL of its own)', () => {
    expect(desiredReplicaSet({ MONGODB_URL: 'mongodb://root@mongodb:27017/allixios' })).toBeUndefined();
  });

  it('refuses an empty, malformed or repeated member list, naming the variable', () => {
    expect(() => parseMembers(' , ', variable)).toThrow(`${variable}: expected at least one member (host:port, comma-separated), got " , "`);
    expect(() => parseMembers('mongodb-0:27017,http://x', variable)).toThrow(`${variable}: expected host:port entries, got "http://x"`);
    expect(() => parseMembers('a:27017,A', variable)).toThrow(`${variable}: expected each member once, got a:27017 more than once`);
    expect(() => desiredReplicaSet({ [variable]: '' })).toThrow(/^mongodb: MONGODB_REPLICA_SET_MEMBERS: expected at least one member/);
  });

  it('refuses a URL that names another replica set than the members belong to', () => {
    expect(() => desiredReplicaSet({ [variable]: member(0), MONGODB_URL: 'mongodb://root@h:27017/allixios?replicaSet=legacy' })).toThrow(
      'mongodb: MONGODB_URL names the replica set legacy, but MONGODB_REPLICA_SET_MEMBERS gives the members of rs0',
    );
  });
});

describe('the URL a member is reached with', () => {
  it('is the admin URL with the member for its host, directConnection and without replicaSet (a member not in the set yet is no member of it to the driver)', () => {
    const admin = 'mongodb://root:p%40ss@mongodb.allixios-prod.svc:27017/allixios?authSource=admin&w=majority&replicaSet=rs0&tls=true&tlsCAFile=%2Fetc%2Fallixios%2Ftls%2Fca.crt';
    expect(memberUrl(admin, member(1))).toBe(
      `mongodb://root:p%40ss@${member(1)}/allixios?authSource=admin&w=majority&tls=true&tlsCAFile=%2Fetc%2Fallixios%2Ftls%2Fca.crt&directConnection=true`,
    );
  });

  it('works for a URL without path, query or password, and replaces a directConnection of its own', () => {
    expect(memberUrl('mongodb://root@a:27017,b:27017', member(0))).toBe(`mongodb://root@${member(0)}/?directConnection=true`);
    expect(memberUrl('mongodb://h/?DirectConnection=false&ReplicaSet=rs0', member(0))).toBe(`mongodb://${member(0)}/?directConnection=true`);
  });

  it('refuses a mongodb+srv URL, which names no members to reach one by one', () => {
    expect(() => memberUrl('mongodb+srv://root@cluster.example/allixios', member(0))).toThrow(/mongodb\+srv/);
  });
});
