/**
 * Logging in while a password rotates, the same for every engine (README "Rotating a
 * password"). The stack's current password is tried first; when the engine refuses it and the
 * rotation keeps the previous password, that one is tried, and the adapter then brings the
 * engine to the current passwords. After a run, the application's URL must be accepted: an
 * engine that reads its passwords from files may take a moment to reload them, which is waited
 * on within the readiness timeout.
 */
import type { EngineName } from '../../databases/engine.ts';
import { BootstrapError } from '../errors.ts';
import { readiness, retryWithBackoff, TRY_AGAIN } from './backoff.ts';
import type { AdapterOptions, Login } from '../contract.ts';

/**
 * Thrown by an adapter's connection attempt when the engine refuses the user or its password:
 * never waited on, unlike an engine that is not ready yet.
 */
export class LoginRefused extends BootstrapError {
  constructor(
    engine: EngineName,
    /** What the engine said, without any credential. */
    readonly reason: string,
    message: string,
    code?: string,
  ) {
    super(engine, message, code === undefined ? {} : { code });
    this.name = 'LoginRefused';
  }
}

/**
 * The user a URL logs in as, for messages. Read from the user-info part directly: a MongoDB URL
 * naming several hosts (`mongodb://u:p@h1:27017,h2:27017/db`) is no WHATWG URL.
 */
export function urlUser(url: string): string {
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^@/?#]*)@/i.exec(url)?.[1];
  const user = userinfo?.split(':')[0];
  return user ? decodeURIComponent(user) : '(no user)';
}

/**
 * Opens a connection with the current URL or, when the engine refuses that login and there is a
 * previous URL, with the previous one. `open` is the adapter's own bounded readiness wait for one
 * URL; it throws {@link LoginRefused} for a refused login.
 */
export async function openWithRotation<Client>(
  engine: EngineName,
  urls: { current: string; previous?: string | undefined },
  open: (url: string) => Promise<Client>,
): Promise<{ client: Client; login: Login }> {
  try {
    return { client: await open(urls.current), login: 'current' };
  } catch (error) {
    if (!(error instanceof LoginRefused) || !urls.previous) throw error;
    try {
      return { client: await open(urls.previous), login: 'previous' };
    } catch (previousError) {
      if (!(previousError instanceof LoginRefused)) throw previousError;
      throw new BootstrapError(
        engine,
        `${urlUser(urls.current)}: the engine refuses the stack's current password and the previous one the rotation keeps (current: ${error.reason}; previous: ${previousError.reason}). The engine has a password the stack no longer knows: give it as the rotation's previousPassword (README "Rotating a password")`,
      );
    }
  }
}

/** How an attempt to log in went: accepted, or why not (yet). */
export type LoginAttempt = { accepted: true } | { accepted: false; reason: string };

/**
 * Waits until `attempt` is accepted, within the readiness timeout; a refusal is waited on too (the engine
 * may still be reloading its password files). Throws naming what was refused and why.
 */
export async function waitUntilAccepted(
  engine: EngineName,
  what: string,
  options: Pick<AdapterOptions, 'readyTimeoutMs' | 'onWait'>,
  attempt: () => Promise<LoginAttempt>,
): Promise<void> {
  let last = 'no attempt made';
  await retryWithBackoff(
    readiness(options.readyTimeoutMs),
    async () => {
      const outcome = await attempt();
      if (outcome.accepted) return true;
      last = outcome.reason;
      return TRY_AGAIN;
    },
    (elapsed) =>
      new BootstrapError(
        engine,
        `${what} is still refused after ${(elapsed / 1000).toFixed(1)} s (${last}): the stack's outputs would not work. The engine may not have reloaded the password files of its Secret yet (raise --ready-timeout), or its passwords have drifted from the stack's`,
      ),
    { onWait: options.onWait, waiting: () => `${what} is still refused (${last})` },
  );
}
