/** Connection URLs, built the same way for every engine and target. */
import type { ConnectionSpec } from './engine.ts';

/**
 * Where a client of a TLS stack finds the CA bundle that signs the engines' certificates: the
 * bootstrap (Kubernetes Job, Docker container) has it there, and the platform's pods mount the
 * stack's CA ConfigMap (`allixios-ca-bundle`, key `ca.crt`) there too. URLs name this path
 * (`sslrootcert=...`) where the engine's client reads the CA from the URL.
 */
export const CLIENT_CA_PATH = '/etc/allixios/tls/ca.crt';

/** The URL's TLS form: given when the engine serves TLS. */
export interface UrlTls {
  /** The CA bundle's path on the client (default {@link CLIENT_CA_PATH}). */
  caFile?: string;
}

/**
 * `scheme://user:password@host:port/path?query`, with user and password percent-encoded so a
 * configured password with `@` or `/` cannot break the URL. Without a password, `user@host`
 * (the bootstrap Job fills it in from a Secret). With `tls`, the connection's TLS form: its
 * scheme, its verification parameters and the CA bundle's path.
 */
export function connectionUrl(connection: ConnectionSpec, password: string | undefined, host: string, port: number, tls?: UrlTls): string {
  const user = encodeURIComponent(connection.username);
  const auth = password === undefined ? user : `${user}:${encodeURIComponent(password)}`;
  let scheme: string = connection.scheme;
  const parameters = connection.query ? [connection.query] : [];
  if (tls) {
    if (!connection.tls) throw new Error(`the ${connection.scheme} connection of ${connection.username} has no TLS form`);
    scheme = connection.tls.scheme ?? scheme;
    if (connection.tls.query) parameters.push(connection.tls.query);
    if (connection.tls.caFileParameter) parameters.push(`${connection.tls.caFileParameter}=${encodeURIComponent(tls.caFile ?? CLIENT_CA_PATH)}`);
  }
  const query = parameters.length ? `?${parameters.join('&')}` : '';
  return `${scheme}://${auth}@${host}:${port}${connection.path ?? ''}${query}`;
}

/**
 * The engines that serve TLS, comma-separated, in the bootstrap's environment (set by the stack's
 * Job and Docker run): every URL the bootstrap is given for one of them must be in a TLS form
 * ({@link isTlsUrl}), so an operator's plain URL cannot send a password in clear text to an engine
 * that would have refused the connection anyway.
 */
export const TLS_ENGINES_VARIABLE = 'ALLIXIOS_TLS_ENGINES';

/**
 * Whether a connection URL asks for TLS, in the forms the engines' connections use: `rediss:` or
 * `https:`, `sslmode=verify-full` (PostgreSQL), `tls=true` (MongoDB). The clients refuse, each
 * for its own driver, a TLS URL that would not verify the server (`bootstrap/adapters/`).
 */
export function isTlsUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol === 'rediss:' || parsed.protocol === 'https:') return true;
  const parameter = (name: string) => [...parsed.searchParams].find(([key]) => key.toLowerCase() === name)?.[1]?.toLowerCase();
  if (parsed.protocol === 'postgresql:' || parsed.protocol === 'postgres:') return parameter('sslmode') === 'verify-full';
  if (parsed.protocol === 'mongodb:' || parsed.protocol === 'mongodb+srv:') return (parameter('tls') ?? parameter('ssl')) === 'true';
  return false;
}
