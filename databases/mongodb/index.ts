/**
 * MongoDB, the platform's document store: content drafts, user preferences, logs and events.
 *
 * Official image `mongo` (Ubuntu). Run as its `mongodb` user (999), its entrypoint skips the
 * chown/gosu step and goes straight to initialisation: on an empty data volume it starts a
 * temporary mongod without authorization, creates the root user from MONGO_INITDB_ROOT_*, runs
 * initdb/10-app-user.js, stops it, unsets every MONGO_INITDB_* variable and execs the real mongod
 * with mongod.conf (authorization on).
 */
import { z } from 'zod';
import { EngineSettingError, memoryBytes, moduleDirectory, type EngineModule, type EngineDescription } from '../engine.ts';

/**
 * The variable that hands the bootstrap the platform users' passwords (a JSON object of user to
 * password, rendered from `bootstrap/user-passwords.json`): MongoDB hashes a password itself, so
 * setting one (a rotation) needs its plain value. Only the bootstrap gets the file; the engine
 * does not.
 */
export const USER_PASSWORDS_VARIABLE = 'MONGODB_USER_PASSWORDS';

const secrets = [
  { key: 'root-password', description: 'root, the superuser the image creates on first start, used by the bootstrap' },
  { key: 'app-password', description: 'allixios_app, the platform: readWrite on the allixios database' },
  { key: 'readonly-password', description: 'allixios_readonly, reporting: read on the allixios database' },
];

/** No engine-specific options yet; strict so a misspelled key in the stack config is an error. */
const optionsSchema = z.strictObject({});

/** Below this the WiredTiger cache (at least 256 MB) and mongod itself do not fit. */
const MINIMUM_MEMORY_LIMIT = '512Mi';

/**
 * The WiredTiger cache, sized the way mongod sizes it from the machine's RAM: the larger of
 * 50% of (RAM - 1 GB) and 0.25 GB. Computed from the container's memory limit and passed on the
 * command line: MongoDB's documentation asks for an explicit size when mongod runs in a container
 * that cannot use all of the machine's RAM, since a cache sized for the node gets the container
 * OOM-killed. On the command line rather than in mongod.conf, so resizing needs no file edit.
 */
export function wiredTigerCacheSizeGB(memoryLimit: string): string {
  const limitGB = memoryBytes(memoryLimit) / 2 ** 30;
  const cacheGB = Math.max(0.25, (limitGB - 1) * 0.5);
  return String(Math.floor(cacheGB * 100) / 100);
}

export const mongodb: EngineModule<typeof optionsSchema> = {
  name: 'mongodb',
  displayName: 'MongoDB',
  component: 'document-store',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '8.0.20',
  urlVariable: 'MONGODB_URL',
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/mongodb.ts')).mongodbEngine,
  sizing: {
    // 512Mi: a 0.25 GB cache plus mongod's own memory; the least MongoDB runs well in.
    dev: { storage: '5Gi', resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '512Mi' } } },
    ephemeral: { storage: '2Gi', resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } } },
    staging: { storage: '20Gi', resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } } },
    prod: { storage: '100Gi', resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } } },
  },
  describe(settings): EngineDescription {
    const memoryLimit = settings.resources.limits.memory;
    if (memoryBytes(memoryLimit) < memoryBytes(MINIMUM_MEMORY_LIMIT)) {
      throw new EngineSettingError(['resources', 'limits', 'memory'], `at least ${MINIMUM_MEMORY_LIMIT} (the WiredTiger cache alone takes 256 MB)`, memoryLimit);
    }
    return {
      image: { repository: 'mongo', tag: settings.version },
      ports: [{ name: 'mongodb', containerPort: 27017 }],
      dataPath: '/data/db',
      runAs: { user: 999, group: 999 },
      readOnlyRootFilesystem: true,
      // /tmp: the entrypoint converts mongod.conf to JSON there and keeps the temporary mongod's
      // pid file there, and mongod puts its Unix socket there. /data/configdb: declared as a
      // volume by the image (used only by config servers); an empty scratch directory in its
      // place keeps Docker from creating an anonymous volume for it.
      scratchPaths: ['/tmp', '/data/configdb'],
      args: ['mongod', '--config', '/etc/mongo/mongod.conf', '--wiredTigerCacheSizeGB', wiredTigerCacheSizeGB(memoryLimit)],
      env: {
        MONGO_INITDB_ROOT_USERNAME: 'root',
        MONGO_INITDB_ROOT_PASSWORD: { secret: 'root-password' },
        // Read by initdb/10-app-user.js. The MONGO_INITDB_ prefix matters: the entrypoint unsets
        // all such variables before it execs mongod, so the server process never holds them.
        MONGO_INITDB_APP_PASSWORD: { secret: 'app-password' },
        MONGO_INITDB_READONLY_PASSWORD: { secret: 'readonly-password' },
      },
      configFiles: [
        { source: 'config/mongod.conf', mountPath: '/etc/mongo/mongod.conf' },
        { source: 'config/mongosh.conf', mountPath: '/etc/mongosh.conf' },
        // Run by mongosh, so it needs no executable bit.
        { source: 'initdb/10-app-user.js', mountPath: '/docker-entrypoint-initdb.d/10-app-user.js' },
      ],
      secretFiles: [{ source: 'bootstrap/user-passwords.json', bootstrapVariable: USER_PASSWORDS_VARIABLE }],
      healthCheck: {
        // ping needs no authentication. mongosh exits 1 when it cannot connect or the command
        // throws; quit() turns a reply without ok: 1 into a failure too. The short server
        // selection timeout makes an unreachable server fail within the check's timeout.
        command: [
          'mongosh',
          '--quiet',
          '--norc',
          'mongodb://127.0.0.1:27017/admin?directConnection=true&serverSelectionTimeoutMS=3000',
          '--eval',
          "quit(db.adminCommand('ping').ok === 1 ? 0 : 1)",
        ],
        // mongosh is a Node.js program: a few seconds to start on a throttled CPU.
        intervalSeconds: 15,
        timeoutSeconds: 10,
        failureThreshold: 5,
        // The first start runs a temporary mongod and the initdb script before the real one.
        startupSeconds: 120,
      },
      // mongod checkpoints and closes WiredTiger cleanly on SIGTERM.
      terminationGracePeriodSeconds: 60,
      appConnection: { scheme: 'mongodb', username: 'allixios_app', passwordSecret: 'app-password', path: '/allixios', query: 'authSource=admin' },
      adminConnection: { scheme: 'mongodb', username: 'root', passwordSecret: 'root-password', path: '/allixios', query: 'authSource=admin' },
      nodeSysctls: [],
    };
  },
};
