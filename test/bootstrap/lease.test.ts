/**
 * The lease every lease-locked engine shares (bootstrap/lease.ts), against a store in memory
 * that behaves as an engine's record does: a holder and an expiry. Fake timers and clock: the
 * renewal schedule is exact whatever the machine's load. The engines' own stores run against
 * real engines in their runner tests.
 */
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { WaitProgress } from '../../bootstrap/adapters/backoff.ts';
import { BootstrapError, toError } from '../../bootstrap/errors.ts';
import { DEFAULT_LEASE_MS, Lease, type LeaseStore, type Renewal } from '../../bootstrap/lease.ts';

const never = new Promise<never>(() => undefined);
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A lease record in memory; what each call did is logged with its time since the store was made. */
class MemoryStore implements LeaseStore {
  holder?: string;
  expiresAt = 0;
  readonly log: string[] = [];
  /** The holders whose lease `release` was asked to end. */
  readonly released: string[] = [];
  /** What a renewal does instead of extending the lease, when set. */
  renewing?: () => Promise<Renewal>;
  private readonly started = Date.now();

  constructor(readonly where?: string) {}

  private at(event: string): void {
    this.log.push(`${event}@${Date.now() - this.started}`);
  }

  async tryAcquire(holder: string, leaseMs: number): Promise<boolean> {
    this.at('acquire');
    if (this.holder !== undefined && this.holder !== holder && this.expiresAt > Date.now()) return false;
    this.holder = holder;
    this.expiresAt = Date.now() + leaseMs;
    return true;
  }

  async renew(holder: string, leaseMs: number): Promise<Renewal> {
    this.at('renew');
    try {
      if (this.renewing) return await this.renewing();
      if (this.holder !== holder) return 'lost';
      this.expiresAt = Date.now() + leaseMs;
      return 'renewed';
    } finally {
      this.at('renewed');
    }
  }

  async release(holder: string): Promise<void> {
    this.at('release');
    this.released.push(holder);
    if (this.holder === holder) this.holder = undefined;
  }

  async describeHolder(): Promise<string | undefined> {
    return this.holder !== undefined && this.expiresAt > Date.now() ? this.holder : undefined;
  }

  /** The times of the events named `event`. */
  times(event: string): number[] {
    return this.log.filter((entry) => entry.startsWith(`${event}@`)).map((entry) => Number(entry.split('@')[1]));
  }
}

const OPTIONS = { lockTimeoutMs: 1000, lockLeaseMs: 900 };

/** The error `assertHeld` throws, or undefined when it does not. */
function refusal(lease: Lease, what = 'config maxmemory-policy'): Error | undefined {
  try {
    lease.assertHeld(what);
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('holding a lease', () => {
  it('takes the lease under a name of host, process and run, and renews it every third of its length', async () => {
    // Given a free lease of 900 ms
    const store = new MemoryStore();
    const lease = new Lease('redis', store, OPTIONS);
    // When it is taken and time passes
    await lease.acquire();
    await vi.advanceTimersByTimeAsync(2_800);
    // Then it is this run's, and was renewed at 300, 600, ... ms
    expect(lease.holder).toMatch(new RegExp(`^${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${process.pid}/[0-9a-f-]{36}$`));
    expect(store.holder).toBe(lease.holder);
    expect(store.times('renew')).toEqual([300, 600, 900, 1200, 1500, 1800, 2100, 2400, 2700]);
    expect(store.expiresAt - Date.now()).toBeGreaterThan(0);
    expect(refusal(lease)).toBeUndefined();
    await lease.release();
  });

  it('lasts 30 s unless lockLeaseMs says otherwise', async () => {
    // Given a lease without a length of its own
    const store = new MemoryStore();
    const lease = new Lease('mongodb', store, { lockTimeoutMs: 1000 });
    // When it is held for a minute / Then it lasts DEFAULT_LEASE_MS and was renewed every 10 s
    await lease.acquire();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(lease.leaseMs).toBe(DEFAULT_LEASE_MS);
    expect(DEFAULT_LEASE_MS).toBe(30_000);
    expect(store.times('renew')).toEqual([10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    await lease.release();
  });

  it('never runs two renewals at once: a slow renewal delays the next instead of stacking', async () => {
    // Given an engine that takes a second to renew a 900 ms lease
    const store = new MemoryStore();
    store.renewing = async () => {
      await pause(1_000);
      return 'renewed';
    };
    const lease = new Lease('clickhouse', store, OPTIONS);
    // When three seconds pass
    await lease.acquire();
    await vi.advanceTimersByTimeAsync(3_000);
    // Then each renewal started a third of a lease after the previous one ended
    expect(store.log).toEqual(['acquire@0', 'renew@300', 'renewed@1300', 'renew@1600', 'renewed@2600', 'renew@2900']);
    const releasing = lease.release();
    await vi.runAllTimersAsync();
    await releasing;
  });

  it('renews at once when asked (a login regained), after the renewal in flight, and plans the next from then', async () => {
    // Given a lease whose renewal at 300 ms takes 100 ms
    const store = new MemoryStore();
    store.renewing = async () => {
      await pause(100);
      return 'renewed';
    };
    const lease = new Lease('clickhouse', store, OPTIONS);
    await lease.acquire();
    await vi.advanceTimersByTimeAsync(350);
    // When it is asked to renew now, during that renewal
    const renewing = lease.renewNow();
    await vi.advanceTimersByTimeAsync(150);
    await renewing;
    // Then it renewed once the first had ended, and the next comes a third of a lease later
    expect(store.log).toEqual(['acquire@0', 'renew@300', 'renewed@400', 'renew@400', 'renewed@500']);
    await vi.advanceTimersByTimeAsync(450);
    expect(store.times('renew')).toEqual([300, 400, 800]);
    await lease.release();
  });
});

describe('losing a lease', () => {
  it("loses it when a renewal says it is another's: the next change is refused naming the loss and the new holder, and renewals stop", async () => {
    // Given a held lease that another bootstrap takes over
    const store = new MemoryStore();
    const lease = new Lease('redis', store, OPTIONS);
    await lease.acquire();
    store.holder = 'other-host/2/y';
    store.expiresAt = Date.now() + 60_000;
    // When the next renewal comes, and time passes
    await vi.advanceTimersByTimeAsync(2_000);
    // Then the change is refused, naming why and who holds it now
    const error = refusal(lease);
    expect(error).toBeInstanceOf(BootstrapError);
    expect(error?.message).toBe(
      'redis: lost the lock (the lease expired before it was renewed; it is now held by other-host/2/y): config maxmemory-policy and what follows were not applied',
    );
    // and it renewed no more, and on close asks the engine to end only its own lease
    expect(store.times('renew')).toEqual([300]);
    await lease.release();
    expect(store.released).toEqual([lease.holder]);
    expect(store.holder).toBe('other-host/2/y');
  });

  it("loses it when a renewal fails, naming the engine's error", async () => {
    // Given a held lease whose renewal fails
    const store = new MemoryStore();
    const lease = new Lease('mongodb', store, OPTIONS);
    await lease.acquire();
    store.renewing = async () => {
      throw new Error('connection reset\n');
    };
    // When it is renewed / Then the next change is refused with that error
    await vi.advanceTimersByTimeAsync(300);
    expect(refusal(lease, 'collection articles')?.message).toBe(
      'mongodb: lost the lock (its renewal failed: connection reset): collection articles and what follows were not applied',
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(store.times('renew')).toEqual([300]);
  });

  it('keeps it through a skipped renewal (a refusal the engine explains): renewals go on, changes are applied', async () => {
    // Given a held lease whose first renewal is skipped
    const store = new MemoryStore();
    const lease = new Lease('clickhouse', store, OPTIONS);
    await lease.acquire();
    store.renewing = async () => {
      store.renewing = undefined;
      return 'skipped';
    };
    // When renewals come
    await vi.advanceTimersByTimeAsync(1_000);
    // Then it renewed again after the skip, and still holds the lease
    expect(store.times('renew')).toEqual([300, 600, 900]);
    expect(refusal(lease)).toBeUndefined();
    await lease.release();
    expect(store.times('release')).toEqual([1000]);
  });

  it.each([
    ['hangs', () => never],
    ['is skipped every time', async (): Promise<Renewal> => 'skipped'],
  ])('counts it lost when no renewal succeeds for a whole lease (a renewal that %s)', async (_, renewing) => {
    // Given a held 900 ms lease whose renewals stop succeeding
    const store = new MemoryStore();
    const lease = new Lease('elasticsearch', store, OPTIONS);
    await lease.acquire();
    store.renewing = renewing;
    // When most of a lease passes, a change is still applied
    await vi.advanceTimersByTimeAsync(800);
    expect(refusal(lease)).toBeUndefined();
    // Then once a whole lease has passed since the last success, the next is refused
    await vi.advanceTimersByTimeAsync(400);
    expect(refusal(lease, 'index articles_v2')?.message).toBe(
      'elasticsearch: lost the lock (not renewed for 1.2 s: its lease of 0.9 s may have run out): index articles_v2 and what follows were not applied',
    );
  });
});

describe('releasing a lease', () => {
  it('ends a lease it holds, after the renewal in flight, and renews no more', async () => {
    // Given a held lease whose renewal at 300 ms takes 100 ms
    const store = new MemoryStore();
    store.renewing = async () => {
      await pause(100);
      return 'renewed';
    };
    const lease = new Lease('redis', store, OPTIONS);
    await lease.acquire();
    await vi.advanceTimersByTimeAsync(350);
    // When it is released during that renewal
    const releasing = lease.release();
    await vi.advanceTimersByTimeAsync(100);
    await releasing;
    // Then the release came after the renewal ended, and nothing follows it
    expect(store.log).toEqual(['acquire@0', 'renew@300', 'renewed@400', 'release@400']);
    expect(store.holder).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2_000);
    await lease.release();
    expect(store.log).toHaveLength(4);
  });

  it('releases nothing it never took, and checks nothing before it is taken (a run with nothing to apply)', async () => {
    const store = new MemoryStore();
    const lease = new Lease('redis', store, OPTIONS);
    expect(refusal(lease)).toBeUndefined();
    await lease.release();
    expect(store.log).toEqual([]);
  });

  it('never throws on close, whatever the engine says', async () => {
    // Given a held lease on an engine that fails to release it
    const store = new MemoryStore();
    store.release = async () => {
      throw new Error('connection closed');
    };
    const lease = new Lease('mongodb', store, OPTIONS);
    await lease.acquire();
    // When it is released / Then that resolves
    await expect(lease.release()).resolves.toBeUndefined();
  });
});

describe('waiting for another holder', () => {
  it("tries with the lock wait's backoff, then gives up naming the holder and where the lease is kept", async () => {
    // Given a lease another bootstrap holds for a minute
    const store = new MemoryStore('allixios.allixios_bootstrap_lock');
    store.holder = 'busy-host/2/y';
    store.expiresAt = Date.now() + 60_000;
    const lease = new Lease('mongodb', store, OPTIONS);
    // When the lock timeout (1 s) passes
    const outcome = lease.acquire().catch((error: Error) => error);
    await vi.runAllTimersAsync();
    const error = await outcome;
    // Then it tried at 0, 100, 300, 700 ms and at the deadline, and names the holder
    expect(store.times('acquire')).toEqual([0, 100, 300, 700, 1000]);
    expect(error).toBeInstanceOf(BootstrapError);
    expect(toError(error).message).toBe('mongodb: another bootstrap still holds the lock after 1.0 s (held by busy-host/2/y; allixios.allixios_bootstrap_lock)');
    // and it never renews nor releases a lease it did not take
    await lease.release();
    expect(store.times('renew')).toEqual([]);
    expect(store.times('release')).toEqual([]);
  });

  it('reports the wait now and then, naming the holder and --lock-timeout, until the lease is free', async () => {
    // Given a lease another bootstrap holds for 10 s more, and a lock timeout of 12 s
    const store = new MemoryStore('allixios.allixios_bootstrap_lock');
    store.holder = 'busy-host/2/y';
    store.expiresAt = Date.now() + 10_000;
    const lines: WaitProgress[] = [];
    const lease = new Lease('mongodb', store, { lockTimeoutMs: 12_000, lockLeaseMs: 900, onWait: (line) => lines.push(line) });
    // When it waits for it
    const acquiring = lease.acquire();
    await vi.advanceTimersByTimeAsync(10_600);
    await acquiring;
    // Then it reported after about 1, 2, 4 and 8 s (its attempts at 1.5, 2.5, 4.5, 8.5 s), each line naming the holder, then took it
    expect(lines.map((line) => line.elapsedMs)).toEqual([1500, 2500, 4500, 8500]);
    expect(lines[0]).toEqual({
      what: 'another bootstrap holds the lock (held by busy-host/2/y; allixios.allixios_bootstrap_lock)',
      elapsedMs: 1500,
      timeoutMs: 12_000,
      option: '--lock-timeout',
    });
    expect(store.holder).toBe(lease.holder);
    await lease.release();
  });

  it('says so when the holder is gone by the time it is named', async () => {
    // Given an engine that refuses every attempt, and finds no holder when asked who
    const store = new MemoryStore();
    store.tryAcquire = async () => false;
    const lease = new Lease('redis', store, { lockTimeoutMs: 200 });
    // When the lock timeout passes / Then the message says the lease has just ended
    const outcome = lease.acquire().catch((error: Error) => error);
    await vi.runAllTimersAsync();
    expect(((await outcome) as Error).message).toBe('redis: another bootstrap still holds the lock after 0.2 s (its lease ended just now)');
  });
});
