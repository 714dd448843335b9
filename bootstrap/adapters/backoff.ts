/**
 * The two waits every adapter makes: for its engine to accept a connection (readiness), and for
 * another bootstrap's lock. One loop for both: an attempt either settles (returns a value) or
 * asks to be made again (TRY_AGAIN); the pause between attempts doubles up to a cap; once the
 * deadline has passed the wait gives up with the engine's own error. What is worth waiting for
 * (a refused connection, a server still starting) and what the error says stay with each
 * engine: an attempt that meets a permanent error (a wrong password) throws it at once.
 *
 * A wait says what it waits for while it does (`WaitReporting`): a line now and then with the
 * time waited and the option that bounds it, so a stuck run is not a silent one.
 */
import type { EngineName } from '../../databases/engine.ts';
import { BootstrapError, toError } from '../errors.ts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Returned by an attempt that should be made again after a pause. */
export const TRY_AGAIN: unique symbol = Symbol('try again');

export interface Backoff {
  /** Give up once this long has passed since the first attempt. */
  timeoutMs: number;
  /** The first pause; each next one doubles, up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** The command-line option that sets `timeoutMs`, as the progress lines name it (`--ready-timeout`). */
  option?: string;
}

/** Waiting for an engine to come up: pauses up to 2 s, so a server that starts is noticed soon. */
export const readiness = (timeoutMs: number): Backoff => ({ timeoutMs, firstDelayMs: 100, maxDelayMs: 2000, option: '--ready-timeout' });

/**
 * A migration stepping back from a table lock and trying again: pauses from half a second up to
 * 10 s, leaving the platform's queries time to get through between attempts.
 */
export const lockContention = (timeoutMs: number): Backoff => ({ timeoutMs, firstDelayMs: 500, maxDelayMs: 10_000, option: '--lock-timeout' });

/** Waiting for another bootstrap's lock: pauses up to 1 s. */
export const lockWait = (timeoutMs: number, firstDelayMs = 100): Backoff => ({ timeoutMs, firstDelayMs, maxDelayMs: 1000, option: '--lock-timeout' });

/** One progress line of a wait: what it waits for, how long it has, and how long it may. */
export interface WaitProgress {
  /** What is awaited, in the words of a line: `not reachable at db:5432 yet (ECONNREFUSED)`. */
  what: string;
  elapsedMs: number;
  timeoutMs: number;
  /** The option that bounds the wait (`--ready-timeout`), when a command-line option does. */
  option?: string;
}

/** How a wait reports its progress. */
export interface WaitReporting {
  /** Where the lines go (`AdapterOptions.onWait`); none: the wait is silent. */
  onWait?: ((progress: WaitProgress) => void) | undefined;
  /**
   * What is awaited now, as the engine knows it (the last attempt's failure, the lock's holder);
   * asked only when a line is printed.
   */
  waiting: () => string | Promise<string>;
}

const FIRST_REPORTS_MS = [1000, 2000, 4000, 8000] as const;

/**
 * When a wait reports, in milliseconds since it began: not for the first second (most waits
 * end sooner), then after 1, 2, 4 and 8 s, then every 10 s. However short the pauses, a wait of
 * five minutes prints about thirty lines.
 */
export function nextReportAt(lastReportMs: number | undefined): number {
  if (lastReportMs === undefined) return FIRST_REPORTS_MS[0];
  return FIRST_REPORTS_MS.find((at) => at > lastReportMs) ?? lastReportMs + 10_000;
}

/**
 * Calls `attempt` (with the milliseconds left before the deadline) until it returns a value.
 * After an attempt that returns TRY_AGAIN past the deadline, throws what `giveUp` makes of the
 * elapsed time. The last attempt is made at the deadline, not one backoff step before it.
 * Between attempts, reports to `reporting` now and then (`nextReportAt`).
 */
export async function retryWithBackoff<T>(
  backoff: Backoff,
  attempt: (remainingMs: number) => Promise<T | typeof TRY_AGAIN>,
  giveUp: (elapsedMs: number) => Error | Promise<Error>,
  reporting?: WaitReporting,
): Promise<T> {
  const started = Date.now();
  let delay = backoff.firstDelayMs;
  let reportAt = nextReportAt(undefined);
  for (;;) {
    const result = await attempt(Math.max(0, backoff.timeoutMs - (Date.now() - started)));
    if (result !== TRY_AGAIN) return result;
    const elapsed = Date.now() - started;
    if (elapsed >= backoff.timeoutMs) throw await giveUp(elapsed);
    if (reporting?.onWait && elapsed >= reportAt) {
      const what = await Promise.resolve()
        .then(reporting.waiting)
        .catch((error: unknown) => `still waiting (${toError(error).message})`);
      reporting.onWait({ what, elapsedMs: elapsed, timeoutMs: backoff.timeoutMs, ...(backoff.option ? { option: backoff.option } : {}) });
      reportAt = nextReportAt(elapsed);
    }
    await sleep(Math.min(delay, backoff.timeoutMs - elapsed));
    delay = Math.min(delay * 2, backoff.maxDelayMs);
  }
}

/** The readiness wait's error: the engine's address, how long was waited, and the last failure. */
export function notReachable(engine: EngineName, address: string, elapsedMs: number, reason: string, code?: string): BootstrapError {
  return new BootstrapError(engine, `not reachable at ${address} after ${(elapsedMs / 1000).toFixed(1)} s (${reason})`, { code });
}

/** The readiness wait's progress: the engine's address and the last attempt's failure, as the error will say them. */
export function stillNotReachable(onWait: WaitReporting['onWait'], address: string, reason: () => string): WaitReporting {
  return { onWait, waiting: () => `not reachable at ${address} yet (${reason()})` };
}

/** The lock wait's error: how long was waited and, when known, who holds the lock. */
export function lockHeld(engine: EngineName, timeoutMs: number, holder?: string): BootstrapError {
  return new BootstrapError(engine, `another bootstrap still holds the lock after ${(timeoutMs / 1000).toFixed(1)} s${holder ? ` (${holder})` : ''}`);
}
