/**
 * The run's environment as the bootstrap reads it. For each engine, beside its URL variable
 * (`DATABASE_URL`: the owner/admin connection):
 *
 * - `<URL variable>_PASSWORD`: the password, when the URL comes without one (how the Kubernetes
 *   Job gets it, from the engine's Secret by reference). The bootstrap puts it into the URL itself,
 *   percent-encoded, so a password with `@`, `:`, `/`, `#` or `%` works. (Kubernetes' `$(VAR)`
 *   expansion would paste it into the URL as it is, and such a password would break the URL or
 *   change its host.)
 * - `<URL variable>_PREVIOUS_PASSWORD`: while a password rotation keeps the previous password, the
 *   admin's previous one. The bootstrap logs in with it when the engine does not take the new one
 *   yet, and then brings the engine to the new passwords (`<URL variable>_PREVIOUS` once resolved).
 * - `<URL variable>_APP` (and `<URL variable>_APP_PASSWORD`): the application's URL, the one the
 *   stack exports. After applying, the bootstrap checks that the engine accepts it.
 */

/** Suffix of the admin URL built with the previous password of a rotation. */
export const PREVIOUS_SUFFIX = '_PREVIOUS';
/** Suffix of the application's URL, checked after a run. */
export const APP_SUFFIX = '_APP';

function parseUrl(variable: string, url: string, why: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new Error(`${variable} is not a URL (${why})`);
  }
}

/** `url` with `password`, percent-encoded, in place of whatever password it had. */
function withPassword(variable: string, url: string, password: string, why: string): string {
  const parsed = parseUrl(variable, url, why);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/** Puts `<variable>_PASSWORD` into `<variable>`'s URL; a URL with a password of its own and a separate one is refused. */
function fillPassword(result: Record<string, string | undefined>, env: Readonly<Record<string, string | undefined>>, variable: string): void {
  const password = env[`${variable}_PASSWORD`];
  const url = env[variable];
  if (password === undefined || !url) return;
  const why = `with ${variable}_PASSWORD set, it must be one without a password`;
  if (parseUrl(variable, url, why).password) throw new Error(`${variable} has a password and ${variable}_PASSWORD is set too: give it in one place`);
  result[variable] = withPassword(variable, url, password, why);
}

/**
 * The environment with every password in its URL, and `<URL variable>_PREVIOUS` (the admin URL
 * with the previous password of a rotation) where one is given.
 */
export function withPasswords(env: Readonly<Record<string, string | undefined>>, urlVariables: readonly string[]): Record<string, string | undefined> {
  const result: Record<string, string | undefined> = { ...env };
  for (const variable of urlVariables) {
    fillPassword(result, env, variable);
    fillPassword(result, env, `${variable}${APP_SUFFIX}`);
    const previous = env[`${variable}_PREVIOUS_PASSWORD`];
    const url = result[variable];
    if (previous !== undefined && url) {
      result[`${variable}${PREVIOUS_SUFFIX}`] = withPassword(variable, url, previous, 'it is the URL the previous password is tried with');
    }
  }
  return result;
}
