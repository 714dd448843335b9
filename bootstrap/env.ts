/**
 * The run's environment as the bootstrap reads it. A URL variable may come without its password,
 * with the password in `<URL variable>_PASSWORD` beside it (how the Kubernetes Job gets it, from
 * the engine's Secret by reference): the bootstrap puts it into the URL itself, percent-encoded,
 * so a password with `@`, `:`, `/`, `#` or `%` works. (Kubernetes' `$(VAR)` expansion would paste
 * it into the URL as it is, and such a password would break the URL or change its host.)
 */
export function withPasswords(env: Readonly<Record<string, string | undefined>>, urlVariables: readonly string[]): Record<string, string | undefined> {
  const result: Record<string, string | undefined> = { ...env };
  for (const variable of urlVariables) {
    const password = env[`${variable}_PASSWORD`];
    const url = env[variable];
    if (password === undefined || !url) continue;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`${variable} is not a URL (with ${variable}_PASSWORD set, it must be one without a password)`);
    }
    if (parsed.password) throw new Error(`${variable} has a password and ${variable}_PASSWORD is set too: give it in one place`);
    parsed.password = encodeURIComponent(password);
    result[variable] = parsed.toString();
  }
  return result;
}
