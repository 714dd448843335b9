/**
 * The replica set adapter (`bootstrap/adapters/mongodb-replica-set.ts`) with the real mongodb
 * driver against a stand-in of the members on loopback ports (test/support/fake-replica-set.ts:
 * MongoDB's wire protocol and the replies and codes MongoDB documents for hello, replSetGetConfig,
 * replSetInitiate, replSetReconfig and replSetStepDown). What it shows: the adapter observes every
 * member, applies the planner's changes through the right member, converges, is idempotent, and
 * two bootstraps at once form one set. What it cannot show: that a real mongod answers as the
 * stand-in does (MongoDB cannot run on this machine; the tests against a real server read
 * MONGODB_URL and are skipped without it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AdapterOptions } from '../../bootstrap/contract.ts';
import { MongoReplicaSet } from '../../bootstrap/adapters/mongodb-replica-set.ts';
import { FakeReplicaSet } from '../support/fake-replica-set.ts';

const OPTIONS: AdapterOptions = { readyTimeoutMs: 4000, lockTimeoutMs: 1000 };
/** The admin URL without credentials (the stand-in has no authentication) and without TLS. */
const URL = 'mongodb://placeholder:27017/allixios?w=majority&replicaSet=rs0';

let sets: FakeReplicaSet[] = [];
let adapters: MongoReplicaSet[] = [];
afterEach(async () => {
  for (const adapter of adapters) await adapter.close();
  for (const set of sets) await set.close();
  sets = [];
  adapters = [];
});

async function fakeSet(count: number): Promise<FakeReplicaSet> {
  const set = await FakeReplicaSet.start(count);
  sets.push(set);
  return set;
}

function adapterFor(members: string[], options: AdapterOptions = OPTIONS): MongoReplicaSet {
  const adapter = new MongoReplicaSet(URL, { name: 'rs0', members }, options);
  adapters.push(adapter);
  return adapter;
}

/** Plans and applies every change, as the runner does in an apply run. */
async function converge(adapter: MongoReplicaSet) {
  const plan = await adapter.plan();
  for (const change of plan.changes) await adapter.apply(change);
  return plan;
}

const commands = (set: FakeReplicaSet, name: string) => set.log.filter((entry) => entry.endsWith(` ${name}`));

describe('the replica set adapter against stand-in members', () => {
  it('forms a fresh set of three: initiated through the first member alone, the others added one reconfiguration each', async () => {
    const set = await fakeSet(3);
    const adapter = adapterFor(set.hosts);
    const plan = await converge(adapter);
    expect(plan.blocksConnection).toBe(true);
    expect(plan.changes.map((change) => change.payload)).toEqual([
      { kind: 'initiate', via: set.hosts[0], config: { _id: 'rs0', members: [{ _id: 0, host: set.hosts[0] }] } },
      { kind: 'add-member', host: set.hosts[1] },
      { kind: 'add-member', host: set.hosts[2] },
    ]);
    expect(set.config?.members.map((member) => [member._id, member.host])).toEqual(set.hosts.map((host, index) => [index, host]));
    // Version 1 from the initiation, one more per added member
    expect(set.config?.version).toBe(3);
    expect(commands(set, 'replSetInitiate')).toEqual([`${set.hosts[0]} replSetInitiate`]);
    expect(commands(set, 'replSetReconfig')).toEqual([`${set.hosts[0]} replSetReconfig`, `${set.hosts[0]} replSetReconfig`]);
    // A second run finds nothing to do
    const again = await adapter.plan();
    expect(again.changes).toEqual([]);
    expect(again.inSync).toEqual(set.hosts.map((host) => `member ${host}`));
  });

  it('forms one set when two bootstraps run at once: the second initiation is AlreadyInitialized, the second additions find the members there', async () => {
    const set = await fakeSet(3);
    const [first, second] = [adapterFor(set.hosts), adapterFor(set.hosts)];
    // Both plan before either applies: both plan the same initiation
    const [firstPlan, secondPlan] = await Promise.all([first.plan(), second.plan()]);
    expect(secondPlan.changes).toEqual(firstPlan.changes);
    await Promise.all([
      (async () => {
        for (const change of firstPlan.changes) await first.apply(change);
      })(),
      (async () => {
        for (const change of secondPlan.changes) await second.apply(change);
      })(),
    ]);
    expect(set.config?.members.map((member) => member.host)).toEqual(set.hosts);
    expect(commands(set, 'replSetInitiate')).toHaveLength(2);
    expect((await first.plan()).changes).toEqual([]);
  });

  it('adds the members of a scale-up and leaves the others as they are', async () => {
    const set = await fakeSet(3);
    await converge(adapterFor(set.hosts));
    const added = [await set.addMember(), await set.addMember()];
    const plan = await converge(adapterFor(set.hosts));
    expect(plan.changes.map((change) => change.payload)).toEqual(added.map((host) => ({ kind: 'add-member', host })));
    expect(set.config?.members.map((member) => member._id)).toEqual([0, 1, 2, 3, 4]);
    expect(set.config?.version).toBe(5);
  });

  it('removes the members of a scale-down, one reconfiguration each, when the StatefulSet has deleted them', async () => {
    const set = await fakeSet(5);
    await converge(adapterFor(set.hosts));
    const [kept, gone] = [set.hosts.slice(0, 3), set.hosts.slice(3)];
    for (const host of gone) await set.stop(host);
    const plan = await converge(adapterFor(kept));
    expect(plan.changes.map((change) => change.payload)).toEqual(gone.map((host) => ({ kind: 'remove-member', host })));
    expect(set.config?.members.map((member) => member.host)).toEqual(kept);
  }, 20_000);

  it('steps the primary down first when it is a member the stack no longer wants, then removes it', async () => {
    const set = await fakeSet(4);
    await converge(adapterFor(set.hosts));
    set.primary = set.hosts[3];
    const plan = await converge(adapterFor(set.hosts.slice(0, 3)));
    expect(plan.changes.map((change) => (change.payload as { kind: string }).kind)).toEqual(['step-down', 'remove-member']);
    expect(set.primary).not.toBe(set.hosts[3]);
    expect(set.config?.members.map((member) => member.host)).toEqual(set.hosts.slice(0, 3));
  });

  it('tries a reconfiguration again while the set is busy with the previous one (ConfigurationInProgress, CurrentConfigNotCommittedYet)', async () => {
    const set = await fakeSet(2);
    set.injected.push(
      { command: 'replSetReconfig', code: 109, codeName: 'ConfigurationInProgress' },
      { command: 'replSetReconfig', code: 308, codeName: 'CurrentConfigNotCommittedYet' },
    );
    await converge(adapterFor(set.hosts));
    expect(set.config?.members).toHaveLength(2);
    expect(commands(set, 'replSetReconfig')).toHaveLength(3);
  });

  it('fails a reconfiguration the primary refuses for good, naming the member and the code', async () => {
    const set = await fakeSet(2);
    set.injected.push({ command: 'replSetReconfig', code: 93, codeName: 'InvalidReplicaSetConfig' });
    const adapter = adapterFor(set.hosts);
    const plan = await adapter.plan();
    await adapter.apply(plan.changes[0]!);
    await expect(adapter.apply(plan.changes[1]!)).rejects.toThrow(
      `mongodb: member ${set.hosts[1]}: replSetReconfig on ${set.hosts[0]} failed: injected InvalidReplicaSetConfig [InvalidReplicaSetConfig]`,
    );
  });

  it('refuses, and changes nothing, when a majority of the voters is gone', async () => {
    const set = await fakeSet(3);
    await converge(adapterFor(set.hosts));
    await set.stop(set.hosts[1]!);
    await set.stop(set.hosts[2]!);
    set.elect();
    expect(set.primary).toBeUndefined();
    const plan = await adapterFor(set.hosts.slice(0, 1)).plan();
    expect(plan.changes).toEqual([]);
    expect(plan.refusals[0]).toContain('has no primary and cannot elect one: 1 of its 3 voting members answer as members');
    expect(set.config?.version).toBe(3);
  }, 20_000);

  it('waits for a member that does not answer before it initiates anything, within the readiness timeout', async () => {
    const set = await fakeSet(3);
    await set.stop(set.hosts[2]!);
    const adapter = adapterFor(set.hosts, { readyTimeoutMs: 1500, lockTimeoutMs: 1000 });
    await expect(adapter.plan()).rejects.toThrow(new RegExp(`waiting for ${set.hosts[2]!.replaceAll('.', '\\.')} \\(`));
    expect(set.config).toBeUndefined();
    expect(commands(set, 'replSetInitiate')).toEqual([]);
  }, 20_000);
});

/**
 * Against real servers, when a variable names them: three (or more) fresh mongod started with
 * `--replSet rs0` (no data, no authentication, no TLS), e.g.
 * `MONGODB_REPLICA_SET_TEST_MEMBERS=127.0.0.1:27101,127.0.0.1:27102,127.0.0.1:27103`. The set is
 * initiated for good: throwaway servers only. Skipped here, where no mongod can run (ENGINES.md).
 */
const REAL_MEMBERS = process.env.MONGODB_REPLICA_SET_TEST_MEMBERS;

describe.skipIf(!REAL_MEMBERS)('the replica set adapter against real mongod (needs MONGODB_REPLICA_SET_TEST_MEMBERS)', () => {
  it('forms the set, every member ends a member, and a second run changes nothing', async () => {
    const members = REAL_MEMBERS!.split(',');
    const adapter = adapterFor(members, { readyTimeoutMs: 120_000, lockTimeoutMs: 1000 });
    await converge(adapter);
    const again = await adapter.plan();
    expect(again.changes).toEqual([]);
    expect(again.inSync).toHaveLength(members.length);
  }, 300_000);
});
