/**
 * The readiness and lock waits every adapter shares (bootstrap/adapters/backoff.ts): attempts
 * until one settles, pauses that double up to a cap, a last attempt at the deadline, and the
 * engine's own error when the wait gives up. No engine; fake timers where the schedule is asserted.
 */
import { describe, expect, it, vi } from 'vitest';
import { lockHeld, notReachable, readiness, retryWithBackoff, TRY_AGAIN, type WaitProgress } from '../../bootstrap/adapters/backoff.ts';
import { toError } from '../../bootstrap/errors.ts';

describe('retryWithBackoff', () => {
  it('returns the first value an attempt settles on, after retrying the ones that asked to', async () => {
    // Given an engine that answers on the third attempt
    let attempts = 0;
    const attempt = async () => (++attempts < 3 ? TRY_AGAIN : 'connected');
    // When the wait runs with room to spare
    const result = await retryWithBackoff({ timeoutMs: 5_000, firstDelayMs: 5, maxDelayMs: 20 }, attempt, () => new Error('gave up'));
    // Then it returns that answer after exactly three attempts
    expect(result).toBe('connected');
    expect(attempts).toBe(3);
  });

  it("doubles the pause up to the cap, makes its last attempt at the deadline, then throws the engine's error", async () => {
    // Given an engine that never answers, and a wait of 400 ms with pauses from 20 ms up to 80 ms
    // (fake timers: the schedule is exact whatever the machine's load)
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    try {
      const started = Date.now();
      const times: number[] = [];
      const remaining: number[] = [];
      const attempt = async (left: number) => {
        times.push(Date.now() - started);
        remaining.push(left);
        return TRY_AGAIN;
      };
      // When it runs out
      const outcome = retryWithBackoff({ timeoutMs: 400, firstDelayMs: 20, maxDelayMs: 80 }, attempt, (elapsed) => new Error(`gave up after ${elapsed} ms`)).catch(
        (caught: Error) => caught,
      );
      await vi.runAllTimersAsync();
      const error = await outcome;
      // Then the pauses grew 20, 40, 80 and stayed at 80, and the last attempt was at the deadline
      expect(times).toEqual([0, 20, 60, 140, 220, 300, 380, 400]);
      expect(remaining).toEqual([400, 380, 340, 260, 180, 100, 20, 0]);
      // And the error is the one the engine made of the elapsed time
      expect(error).toBeInstanceOf(Error);
      expect(toError(error).message).toBe('gave up after 400 ms');
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not wait on an error the attempt throws: a wrong password ends the wait at once', async () => {
    // Given an attempt that meets a permanent error
    let attempts = 0;
    const attempt = async () => {
      attempts += 1;
      throw new Error('password authentication failed');
    };
    // When the wait runs, with timers that never fire unless advanced (a pause would hang it)
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    let error: Error;
    try {
      error = await retryWithBackoff({ timeoutMs: 5_000, firstDelayMs: 100, maxDelayMs: 1000 }, attempt, () => new Error('gave up')).catch((caught: Error) => caught);
    } finally {
      vi.useRealTimers();
    }
    // Then that error comes back after one attempt, without a pause
    expect(error.message).toBe('password authentication failed');
    expect(attempts).toBe(1);
  });
});

describe("a wait's progress", () => {
  it('reports after 1, 2, 4 and 8 s, then every 10 s, with what it waits for now and the option that bounds it', async () => {
    // Given an engine that never answers, tried every half second for 30 s, whose reason changes
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    try {
      let attempts = 0;
      const lines: WaitProgress[] = [];
      const outcome = retryWithBackoff(
        { timeoutMs: 30_000, firstDelayMs: 500, maxDelayMs: 500, option: '--ready-timeout' },
        async () => {
          attempts += 1;
          return TRY_AGAIN;
        },
        () => new Error('gave up'),
        { onWait: (progress) => lines.push(progress), waiting: () => `not reachable yet (attempt ${attempts})` },
      ).catch((caught: Error) => caught);
      // When the wait runs out
      await vi.runAllTimersAsync();
      await outcome;
      // Then six lines for 60 attempts, each with the time waited, the bound, and the latest reason
      expect(lines.map((line) => line.elapsedMs)).toEqual([1000, 2000, 4000, 8000, 18_000, 28_000]);
      expect(lines[0]).toEqual({ what: 'not reachable yet (attempt 3)', elapsedMs: 1000, timeoutMs: 30_000, option: '--ready-timeout' });
      expect(lines.at(-1)!.what).toBe('not reachable yet (attempt 57)');
    } finally {
      vi.useRealTimers();
    }
  });

  it('is silent for a wait that settles within a second, and names --ready-timeout for a readiness wait', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    try {
      let attempts = 0;
      const lines: WaitProgress[] = [];
      const waiting = () => 'starting';
      // Given a server that answers after about 0.7 s / Then nothing is reported
      const quick = retryWithBackoff(
        readiness(60_000),
        async () => (++attempts < 4 ? TRY_AGAIN : 'up'),
        () => new Error('gave up'),
        { onWait: (line) => lines.push(line), waiting },
      );
      await vi.runAllTimersAsync();
      expect(await quick).toBe('up');
      expect(lines).toEqual([]);
      // Given one that takes a few seconds / Then its lines name the option that bounds the wait
      attempts = 0;
      const slow = retryWithBackoff(
        readiness(60_000),
        async () => (++attempts < 8 ? TRY_AGAIN : 'up'),
        () => new Error('gave up'),
        { onWait: (line) => lines.push(line), waiting },
      );
      await vi.runAllTimersAsync();
      expect(await slow).toBe('up');
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.every((line) => line.option === '--ready-timeout' && line.timeoutMs === 60_000)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("the waits' errors", () => {
  it('name the engine, the address or the holder, and how long was waited', () => {
    // Given a readiness and a lock wait that gave up / Then their messages say what, where and how long
    expect(notReachable('postgresql', 'db:5432', 1234, 'connect ECONNREFUSED', 'ECONNREFUSED').message).toBe(
      'postgresql: not reachable at db:5432 after 1.2 s (connect ECONNREFUSED) [ECONNREFUSED]',
    );
    expect(lockHeld('redis', 800, 'held by host/1/abc').message).toBe('redis: another bootstrap still holds the lock after 0.8 s (held by host/1/abc)');
    expect(lockHeld('postgresql', 1000).message).toBe('postgresql: another bootstrap still holds the lock after 1.0 s');
  });
});
