/**
 * The runner's membership phase (`MembershipAdapter`, MongoDB's replica set): planned before the
 * engine is connected to through its cluster, applied in order in an apply run only, reported
 * like the engine's other changes; a dry run of a set that accepts no connection yet plans the
 * rest as for a fresh engine instead of waiting for a primary that cannot come; refusals fail the
 * run; status counts pending membership changes. With an engine of this test whose adapter
 * records what the runner asks of it, and the MongoDB adapter's wiring.
 */
import { describe, expect, it } from 'vitest';
import { mongodbEngine } from '../../bootstrap/adapters/mongodb.ts';
import { engineIdentity, type Adapter, type AnyBootstrapEngine, type Change, type MembershipPlan } from '../../bootstrap/contract.ts';
import { reportJson, reportText } from '../../bootstrap/format.ts';
import { runBootstrap, type Mode } from '../../bootstrap/runner.ts';
import { mongodb } from '../../databases/mongodb/index.ts';

const TIMEOUTS = { readyTimeoutMs: 1000, lockTimeoutMs: 1000 };

const change = (subject: string, action: Change['action'] = 'create'): Change => ({
  subject,
  action,
  detail: `${subject} detail`,
  source: 'databases/mongodb/replica-set.ts',
  payload: { subject },
});

const INITIATE: MembershipPlan = {
  changes: [change('replica set rs0'), change('member b:27017')],
  inSync: [],
  refusals: [],
  blocksConnection: true,
};

/** An engine with one collection to create, whose adapter records the runner's calls in order. */
function clusteredEngine(membership: MembershipPlan | undefined, calls: string[]): AnyBootstrapEngine {
  const adapter: Adapter = {
    engine: 'mongodb',
    target: 'a:27017/allixios',
    connect: async () => {
      calls.push('connect');
    },
    lock: async () => {
      calls.push('lock');
    },
    observe: async () => {
      calls.push('observe');
      return {};
    },
    apply: async (applied) => {
      calls.push(`apply ${applied.subject}`);
    },
    close: async () => {
      calls.push('close');
    },
    ...(membership
      ? {
          planMembership: async () => {
            calls.push('plan membership');
            return membership;
          },
          applyMembership: async (applied: Change) => {
            calls.push(`apply membership ${applied.subject}`);
          },
        }
      : {}),
  };
  return {
    ...engineIdentity(mongodb),
    desired: () => null,
    plan: (_desired: unknown, observed: unknown) => ({
      engine: 'mongodb',
      changes: [change(observed === null ? 'collection (fresh engine)' : 'collection content_drafts')],
      inSync: [],
      refusals: [],
    }),
    createAdapter: async () => adapter,
    embedded: { unavailable: 'an engine of this test only' },
  };
}

async function run(mode: Mode, membership: MembershipPlan | undefined) {
  const calls: string[] = [];
  const report = await runBootstrap({ mode, env: { MONGODB_URL: 'mongodb://root:pw@a:27017/allixios' }, registry: [clusteredEngine(membership, calls)], ...TIMEOUTS });
  return { report, calls, engine: report.engines[0]! };
}

describe("the runner's membership phase", () => {
  it('applies the membership in order before it connects through the cluster, then everything else', async () => {
    const { report, calls, engine } = await run('apply', INITIATE);
    expect(calls).toEqual([
      'plan membership',
      'apply membership replica set rs0',
      'apply membership member b:27017',
      'connect',
      'observe',
      'lock',
      'observe',
      'apply collection content_drafts',
      'close',
    ]);
    expect(report.ok).toBe(true);
    expect(engine.membership?.changed.map(({ change: applied }) => applied.subject)).toEqual(['replica set rs0', 'member b:27017']);
    expect(reportText(report).out).toContain('  create   replica set rs0: replica set rs0 detail');
    expect(reportJson(report)).toMatchObject({
      engines: [
        {
          membership: {
            changed: [
              { subject: 'replica set rs0', action: 'create' },
              { subject: 'member b:27017', action: 'create' },
            ],
          },
        },
      ],
    });
  });

  it('in a dry run changes nothing, and plans the rest as for a fresh engine while the set accepts no connection yet', async () => {
    const { report, calls, engine } = await run('dry-run', INITIATE);
    // No membership change applied, no connection attempted (it would wait for a primary that cannot come)
    expect(calls).toEqual(['plan membership', 'close']);
    expect(report.ok).toBe(true);
    expect(engine.membership?.plan.changes.map((planned) => planned.subject)).toEqual(['replica set rs0', 'member b:27017']);
    expect(engine.plan?.changes.map((planned) => planned.subject)).toEqual(['collection (fresh engine)']);
    const text = reportText(report).out;
    expect(text).toContain('  create   member b:27017: member b:27017 detail  (databases/mongodb/replica-set.ts)');
    expect(text).toContain('the set accepts no connection before these changes');
  });

  it('in a dry run of a formed set connects and plans against what the engine has', async () => {
    const { calls, engine } = await run('dry-run', { ...INITIATE, changes: [change('member c:27017')], blocksConnection: false });
    expect(calls).toEqual(['plan membership', 'connect', 'observe', 'close']);
    expect(engine.plan?.changes.map((planned) => planned.subject)).toEqual(['collection content_drafts']);
  });

  it('reports pending membership changes as not done in status, and a set in sync as done', async () => {
    expect((await run('status', { ...INITIATE, blocksConnection: false })).report.ok).toBe(false);
    const inSync = await run('status', { changes: [], inSync: ['member a:27017'], refusals: [], blocksConnection: false });
    // The collection still to create keeps status from ok; the membership lists its members in sync
    expect(reportText(inSync.report).out).toContain('  in sync  member a:27017');
    expect(inSync.engine.membership?.plan.changes).toEqual([]);
  });

  it('fails on a membership refusal before it connects or applies anything', async () => {
    const refusal = 'replica set rs0 has no primary and cannot elect one';
    const { report, calls, engine } = await run('apply', { ...INITIATE, refusals: [refusal] });
    expect(report.ok).toBe(false);
    expect(engine.error).toContain(refusal);
    expect(calls).toEqual(['plan membership', 'close']);
  });

  it('is skipped for an engine without one', async () => {
    const { calls, engine } = await run('apply', undefined);
    expect(calls[0]).toBe('connect');
    expect(engine.membership).toBeUndefined();
  });
});

describe("the MongoDB adapter's membership", () => {
  it('is the replica set of MONGODB_REPLICA_SET_MEMBERS, and there is none without the variable', async () => {
    const url = 'mongodb://root:pw@127.0.0.1:1/allixios?authSource=admin&replicaSet=rs0';
    const withSet = await mongodbEngine.createAdapter(
      url,
      TIMEOUTS,
      mongodbEngine.desired({ MONGODB_REPLICA_SET_MEMBERS: 'mongodb-0.mongodb-headless.ns.svc.cluster.local:27017' }),
    );
    const single = await mongodbEngine.createAdapter(url, TIMEOUTS, mongodbEngine.desired({}));
    try {
      expect(typeof withSet.planMembership).toBe('function');
      expect(typeof withSet.applyMembership).toBe('function');
      expect(single.planMembership).toBeUndefined();
      expect(single.applyMembership).toBeUndefined();
    } finally {
      await withSet.close();
      await single.close();
    }
  });

  it('waits for an unreachable member within the readiness timeout, then fails naming what it waited for', async () => {
    // Given a member nothing listens on (a refused connection: transient, waited on)
    const url = 'mongodb://root:pw@127.0.0.1:1/allixios?authSource=admin&replicaSet=rs0';
    const adapter = await mongodbEngine.createAdapter(url, { readyTimeoutMs: 1500, lockTimeoutMs: 1000 }, mongodbEngine.desired({ MONGODB_REPLICA_SET_MEMBERS: '127.0.0.1:1' }));
    try {
      await expect(adapter.planMembership!()).rejects.toThrow(
        /^mongodb: replica set rs0: waited \d+\.\d s for every member to answer before the set is initiated .*waiting for 127\.0\.0\.1:1 \(/,
      );
    } finally {
      await adapter.close();
    }
  }, 20_000);
});
