/** Redis clients for tests that want the server's own refusals, not the client's retries. */
import { Redis, type RedisOptions } from 'ioredis';

/**
 * Connects without ready check or retries, so a refused login (WRONGPASS, NOAUTH) or a closed
 * connection rejects with the server's reply. The client is added to `clients` for cleanup.
 */
export async function connectOnce(target: string | RedisOptions, clients: Redis[]): Promise<Redis> {
  const options: RedisOptions = { lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null };
  const client = typeof target === 'string' ? new Redis(target, options) : new Redis({ ...target, ...options });
  const errors: Error[] = [];
  client.on('error', (error: Error) => errors.push(error));
  clients.push(client);
  try {
    await client.connect();
  } catch (error) {
    throw errors.at(-1) ?? error;
  }
  return client;
}
