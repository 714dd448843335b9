/**
 * The two waits every adapter makes: for its engine to accept a connection (readiness), and for
 * another bootstrap's lock. One loop for both: an attempt either settles (returns a value) or
 * asks to be made again (TRY_AGAIN); the pause between attempts doubles up to a cap; once the
 * deadline has passed the wait gives up with the engine's own error. What is worth waiting for
 * (a refused connection, a server still starting) and what the error says stay with each
 * engine: an attempt that meets a permanent error (a wrong password) throws it at once.
 */
import type { EngineName } from '../../databases/engine.ts';
import { BootstrapError } from '../errors.ts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Returned by an attempt that should be made again after a pause. */
export const TRY_AGAIN: unique symbol = Symbol('try again');

export interface Backoff {
  /** Give up once this long has passed since the first attempt. */
  timeoutMs: number;
  /** The first pause; each next one doubles, up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
}

/** Waiting for an engine to come up: pauses up to 2 s, so a server that starts is noticed soon. */
export const readiness = (timeoutMs: number): Backoff => ({ timeoutMs, firstDelayMs: 100, maxDelayMs: 2000 });

/**
 * A migration stepping back from a table lock and trying again: pauses from half a second up to
 * 10 s, leaving the platform's queries time to get through between attempts.
 */
export const lockContention = (timeoutMs: number): Backoff => ({ timeoutMs, firstDelayMs: 500, maxDelayMs: 10_000 });

/** Waiting for another bootstrap's lock: pauses up to 1 s. */
export const lockWait = (timeoutMs: number, firstDelayMs = 100): Backoff => ({ timeoutMs, firstDelayMs, maxDelayMs: 1000 });

/**
 * Calls `attempt` (with the milliseconds left before the deadline) until it returns a value.
 * After an attempt that returns TRY_AGAIN past the deadline, throws what `giveUp` makes of the
 * elapsed time. The last attempt is made at the deadline, not one backoff step before it.
 */
export async function retryWithBackoff<T>(
  backoff: Backoff,
  attempt: (remainingMs: number) => Promise<T | typeof TRY_AGAIN>,
  giveUp: (elapsedMs: number) => Error | Promise<Error>,
): Promise<T> {
  const started = Date.now();
  let delay = backoff.firstDelayMs;
  for (;;) {
    const result = await attempt(Math.max(0, backoff.timeoutMs - (Date.now() - started)));
    if (result !== TRY_AGAIN) return result;
    const elapsed = Date.now() - started;
    if (elapsed >= backoff.timeoutMs) throw await giveUp(elapsed);
    await sleep(Math.min(delay, backoff.timeoutMs - elapsed));
    delay = Math.min(delay * 2, backoff.maxDelayMs);
  }
}

/** The readiness wait's error: the engine's address, how long was waited, and the last failure. */
export function notReachable(engine: EngineName, address: string, elapsedMs: number, reason: string, code?: string): BootstrapError {
  return new BootstrapError(engine, `not reachable at ${address} after ${(elapsedMs / 1000).toFixed(1)} s (${reason})`, { code });
}

/** The lock wait's error: how long was waited and, when known, who holds the lock. */
export function lockHeld(engine: EngineName, timeoutMs: number, holder?: string): BootstrapError {
  return new BootstrapError(engine, `another bootstrap still holds the lock after ${(timeoutMs / 1000).toFixed(1)} s${holder ? ` (${holder})` : ''}`);
}
