/**
 * Redis's bootstrap side: the mounted redis.conf and users.acl it compares (`redis-files.ts`) and
 * the pure planner (`redis-plan.ts`). The adapter (`redis-adapter.ts`, with the ioredis driver)
 * is loaded only when a run connects.
 */
import { requireUrl, type BootstrapEngine } from '../contract.ts';
import { readRedisDesired, REDIS, type RedisCompatible, type RedisDesired } from './redis-files.ts';
import { planRedis, type RedisObserved, type RedisPayload } from './redis-plan.ts';

/**
 * The bootstrap side of a Redis-compatible engine: Redis's planner and adapter, with the engine's
 * own name, folder and variables (`RedisCompatible`).
 */
export function redisCompatibleEngine(engine: RedisCompatible): BootstrapEngine<RedisDesired, RedisObserved, RedisPayload> {
  const { module } = engine;
  return {
    name: module.name,
    urlVariable: module.urlVariable,
    directory: module.directory,
    desired: (env, directory) => readRedisDesired(env[engine.usersAclVariable], engine, directory),
    plan: planRedis,
    // Its repairs are independent of each other: what it may not repair is refused, the rest done.
    applyDespiteRefusals: true,
    createAdapter: async (url, options, desired) => {
      const admin = requireUrl(module, url);
      // Under Sentinel (the stack gives REDIS_SENTINELS): the master the Sentinels name, and every replica.
      const { RedisMembersAdapter, sentinelSettings } = await import('./redis-members.ts');
      const sentinels = sentinelSettings(options.env);
      if (sentinels) return new RedisMembersAdapter(admin, options, desired, sentinels);
      const { RedisAdapter } = await import('./redis-adapter.ts');
      return new RedisAdapter(admin, options, desired);
    },
    embedded: {
      async start() {
        const { startEmbeddedRedis } = await import('../embedded/redis.ts');
        const server = await startEmbeddedRedis(engine);
        return {
          description: `redis-server ${server.version} (embedded)`,
          env: {
            [module.urlVariable]: server.url('allixios_admin'),
            [`${module.urlVariable}_APP`]: server.url('allixios_app'),
            [engine.usersAclVariable]: server.usersAcl,
          },
          stop: () => server.stop(),
        };
      },
    },
  };
}

export const redisEngine = redisCompatibleEngine(REDIS);
