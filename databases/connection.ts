/** Connection URLs, built the same way for every engine and target. */
import type { ConnectionSpec } from './engine.ts';

/**
 * `scheme://user:password@host:port/path?query`, with user and password percent-encoded so a
 * configured password with `@` or `/` cannot break the URL.
 */
export function connectionUrl(connection: ConnectionSpec, password: string, host: string, port: number): string {
  const auth = `${encodeURIComponent(connection.username)}:${encodeURIComponent(password)}`;
  const query = connection.query ? `?${connection.query}` : '';
  return `${connection.scheme}://${auth}@${host}:${port}${connection.path ?? ''}${query}`;
}
