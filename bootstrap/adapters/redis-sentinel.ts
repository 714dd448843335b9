/**
 * A client of Redis under Sentinel (databases/redis/sentinel.ts), from the stack's outputs:
 * `REDIS_URL` (user, password, database, TLS and CA), `REDIS_SENTINELS` (`host:port,...`) and
 * `REDIS_MASTER_NAME`. ioredis reads no Sentinel URL, so the options are built here, the same for
 * the platform, the bootstrap and the drill:
 *
 * - the Sentinels are asked for the master by the URL's user and password: the stack gives
 *   `allixios_app` and `allixios_admin` the same password on Sentinel (`config/sentinel-users.acl`,
 *   where the application may only ask where the master is);
 * - over TLS when the URL is `rediss:`, to the Sentinels too, each verified against the URL's CA
 *   and by the name Sentinel announces (a name the certificates carry);
 * - a write that reaches a replica (`READONLY`, a master just demoted) makes the client reconnect
 *   and ask the Sentinels again, and resends the command.
 */
import type { RedisOptions } from 'ioredis';
import { BootstrapError } from '../errors.ts';
import { redisClientTarget } from './redis-adapter.ts';

/** The stack's variables for a Sentinel client. */
export const SENTINELS_VARIABLE = 'REDIS_SENTINELS';
export const MASTER_NAME_VARIABLE = 'REDIS_MASTER_NAME';

/** `host:port,host:port` as ioredis's `sentinels`; an entry without a valid port is refused, naming it. */
export function parseSentinels(value: string, engine = 'redis'): Array<{ host: string; port: number }> {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new BootstrapError(engine, `${SENTINELS_VARIABLE}: expected host:port[,host:port...], got ${JSON.stringify(value)}`);
  return entries.map((entry) => {
    const match = /^(.+):(\d{1,5})$/.exec(entry);
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535) throw new BootstrapError(engine, `${SENTINELS_VARIABLE}: expected host:port, got ${JSON.stringify(entry)} in ${JSON.stringify(value)}`);
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
  });
}

/**
 * ioredis options for the master `masterName` behind `sentinels`, with the URL's credentials,
 * database and TLS. Options the caller adds (timeouts, retries) go beside them.
 */
export function sentinelClientOptions(url: string, sentinels: string, masterName: string, engine = 'redis'): RedisOptions {
  const target = redisClientTarget(url, engine);
  const parsed = new URL(target.url);
  if (masterName.trim() === '') throw new BootstrapError(engine, `${MASTER_NAME_VARIABLE}: expected the master's name under Sentinel, got an empty value`);
  const username = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  const database = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  if (!Number.isInteger(database) || database < 0) throw new BootstrapError(engine, `the URL's database: expected a number, got ${JSON.stringify(parsed.pathname.slice(1))}`);
  return {
    sentinels: parseSentinels(sentinels, engine),
    name: masterName,
    role: 'master',
    db: database,
    ...(username ? { username, sentinelUsername: username } : {}),
    ...(password ? { password, sentinelPassword: password } : {}),
    ...(target.tls ? { tls: target.tls, sentinelTLS: target.tls, enableTLSForSentinelMode: true } : {}),
    // The application's user may not run INFO, which the ready check would.
    enableReadyCheck: false,
    // A demoted master answers writes with READONLY: find the master again, resend the command.
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 2 : false),
    // Told of a failover by the Sentinels (+switch-master) rather than only by a broken connection.
    failoverDetector: true,
  };
}
