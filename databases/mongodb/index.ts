/**
 * MongoDB, the platform's document store: content drafts, user preferences, logs and events.
 *
 * Official image `mongo` (Ubuntu). Run as its `mongodb` user (999), its entrypoint skips the
 * chown/gosu step and goes straight to initialisation: on an empty data volume it starts a
 * temporary mongod without authorization, creates the root user from MONGO_INITDB_ROOT_*, runs
 * initdb/10-app-user.js, stops it, unsets every MONGO_INITDB_* variable and execs the real mongod
 * with mongod.conf (authorization on). On Kubernetes the members of the replica set rs0 run the
 * same mongod with the set's arguments and key (`replica-set.ts`); Docker runs the single server.
 */
import { z } from 'zod';
import {
  EngineSettingError,
  memoryBytes,
  moduleDirectory,
  TLS_FILES,
  type ConnectionTls,
  type EngineDescription,
  type EngineModule,
  type HealthCheck,
  type TlsSpec,
} from '../engine.ts';
import { BACKUP_PASSWORD_SECRET, mongodbBackup } from './backup.ts';
import { KEYFILE_SECRET, memberHealthCheck, replicaSetHighAvailability } from './replica-set.ts';

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
  { key: BACKUP_PASSWORD_SECRET, description: "allixios_backup, the backup jobs: MongoDB's built-in backup role (mongodump of every database, no write)" },
  KEYFILE_SECRET,
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

/** Where the server's certificate, key and CA are mounted when the stack serves TLS. */
export const TLS_DIRECTORY = '/etc/mongo/tls';

/** Where the engine's secret files are: a directory of their own, refreshed on a rotation. */
const SECRETS_PATH = '/etc/mongo/secrets';

/**
 * root's password, a secret file mounted only on a TLS stack, for the certificate reload alone
 * (rotateCertificates needs a user with cluster privileges; of the engine's users only root has
 * them). Whoever can exec into the container can already read every collection from the data
 * files, and its environment holds root's first-start password, so the file gives such a person
 * little more. Read at each reload: after a rotation the kubelet's refresh brings the new one.
 */
const ROOT_PASSWORD_PATH = `${SECRETS_PATH}/root-password`;

/**
 * mongod's TLS settings, as arguments after `--config` (the command line overrides the file):
 * TLS only, on the engine's one port. They exist only on a TLS stack, so mongod.conf stays one
 * file for every stack. The image's entrypoint, seeing `--tlsCertificateKeyFile`, runs its
 * temporary first-start mongod (the one that creates root and runs initdb/) on 127.0.0.1 with a
 * TLS mode that still lets its own plaintext mongosh in; the real mongod gets these.
 *
 * - `--tlsMode requireTLS` (`net.tls.mode`): no plaintext connection at all.
 * - `--tlsCertificateKeyFile` (`net.tls.certificateKeyFile`): MongoDB wants key and chain in one
 *   PEM file, cert-manager's `CombinedPEM` output (`TlsSpec.combinedPem`).
 * - `--tlsCAFile` (`net.tls.CAFile`): the trust for client certificates (none is asked for) and,
 *   once there are replica-set members, for each other's; recent mongod releases refuse
 *   requireTLS without it.
 * - `--tlsAllowConnectionsWithoutCertificates` (`net.tls.allowConnectionsWithoutCertificates`):
 *   clients prove a SCRAM password, not a client certificate.
 * - `--tlsDisabledProtocols TLS1_0,TLS1_1` (`net.tls.disabledProtocols`): TLS 1.2 and 1.3 only,
 *   stated because it is relied on (no spaces: mongod refuses to start on one).
 */
export function tlsArgs(directory = TLS_DIRECTORY): string[] {
  return [
    ['--tlsMode', 'requireTLS'],
    ['--tlsCertificateKeyFile', `${directory}/${TLS_FILES.combinedPem}`],
    ['--tlsCAFile', `${directory}/${TLS_FILES.ca}`],
    ['--tlsAllowConnectionsWithoutCertificates'],
    ['--tlsDisabledProtocols', 'TLS1_0,TLS1_1'],
  ].flat();
}

/**
 * The server in the same container. `directConnection`: a single server, whatever it reports
 * about a replica set. The short server selection timeout makes an unreachable server fail
 * within the check's timeout.
 */
const localUrl = (host: string) => `mongodb://${host}:27017/admin?directConnection=true&serverSelectionTimeoutMS=3000`;

/**
 * mongosh over TLS to the server in the same container, verifying its certificate (chain and host
 * name) with the mounted CA. `localhost`: the certificates of both targets name it, not always
 * 127.0.0.1.
 */
const MONGOSH_TLS = ['mongosh', '--quiet', '--norc', '--tls', '--tlsCAFile', `${TLS_DIRECTORY}/${TLS_FILES.ca}`, localUrl('localhost')];

/**
 * ping needs no authentication. mongosh exits 1 when it cannot connect or the command throws;
 * quit() turns a reply without ok: 1 into a failure too.
 */
const PING = "quit(db.adminCommand('ping').ok === 1 ? 0 : 1)";

/** mongosh running `script` against the server in the container, over TLS on a TLS stack. */
function mongoshEval(tls: boolean, script: string): string[] {
  return tls ? [...MONGOSH_TLS, '--eval', script] : ['mongosh', '--quiet', '--norc', localUrl('127.0.0.1'), '--eval', script];
}

function healthCheckCommand(tls: boolean): HealthCheck['command'] {
  return mongoshEval(tls, PING);
}

/**
 * MongoDB (5.0 and later) re-reads its certificate key file and CA file on `rotateCertificates`;
 * open connections keep the old certificate, new ones get the renewed one. Run by mongosh over
 * TLS as root, whose password mongosh reads itself from the mounted file at each run
 * (MONGODB_ROOT_PASSWORD_FILE names it): it is on no command line and in no environment variable,
 * so neither the process list nor /proc/<pid>/environ shows it. The file ends in a newline, which
 * is not part of the password. A failed login or rotation throws, and mongosh exits 1: the
 * Kubernetes target records a reload as done only if it succeeded, and tries again at the next check.
 */
export const TLS_RELOAD_COMMAND = [
  ...MONGOSH_TLS,
  '--eval',
  [
    "const password = fs.readFileSync(process.env.MONGODB_ROOT_PASSWORD_FILE, 'utf8').replace(/\\n+$/, '');",
    "db.getSiblingDB('admin').auth('root', password);",
    "quit(db.adminCommand({ rotateCertificates: 1, message: 'allixios: the mounted certificate changed' }).ok === 1 ? 0 : 1);",
  ].join(' '),
];

const TLS: TlsSpec = { directory: TLS_DIRECTORY, reload: { command: TLS_RELOAD_COMMAND }, combinedPem: true };

/**
 * The TLS form of the platform's and the bootstrap's URLs: `tls=true`, and the CA bundle's path in
 * `tlsCAFile`, which the Node driver (and every MongoDB driver) reads itself; chain and host name
 * are verified, since the URL turns neither check off.
 */
export const CONNECTION_TLS: ConnectionTls = { query: 'tls=true', caFileParameter: 'tlsCAFile' };

export const mongodb: EngineModule<typeof optionsSchema> = {
  name: 'mongodb',
  displayName: 'MongoDB',
  component: 'document-store',
  directory: moduleDirectory(import.meta.url),
  defaultVersion: '8.0.20',
  urlVariable: 'MONGODB_URL',
  // mongodump --oplog against a secondary, nightly (backup.ts).
  backupSchedules: { dump: '30 1 * * *' },
  secrets,
  optionsSchema,
  bootstrap: async () => (await import('../../bootstrap/adapters/mongodb.ts')).mongodbEngine,
  // mongorestore from one nightly dump into a new database (restore.ts), for `npm run restore`.
  restore: async () => (await import('./restore.ts')).mongodbEngineRestore(),
  sizing: {
    // 512Mi: a 0.25 GB cache plus mongod's own memory; the least MongoDB runs well in.
    dev: { storage: '5Gi', resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '512Mi' } } },
    ephemeral: { storage: '2Gi', resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } } },
    // Replica set members: three in prod (a member's loss leaves two, a majority, which elect a
    // primary by themselves), and three in staging too, so a rolling update, a drain and a failover
    // are rehearsed there as they happen in prod; one in ephemeral (a set of one member).
    staging: { storage: '20Gi', replicas: 3, resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } } },
    prod: { storage: '100Gi', replicas: 3, resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } } },
  },
  describe(settings): EngineDescription {
    const memoryLimit = settings.resources.limits.memory;
    if (memoryBytes(memoryLimit) < memoryBytes(MINIMUM_MEMORY_LIMIT)) {
      throw new EngineSettingError(['resources', 'limits', 'memory'], `at least ${MINIMUM_MEMORY_LIMIT} (the WiredTiger cache alone takes 256 MB)`, memoryLimit);
    }
    if (settings.replicas % 2 === 0) {
      throw new EngineSettingError(
        ['replicas'],
        'an odd number of members (a majority of an even number survives no more losses than one member fewer, and two members survive none)',
        settings.replicas,
      );
    }
    const args = ['mongod', '--config', '/etc/mongo/mongod.conf', '--wiredTigerCacheSizeGB', wiredTigerCacheSizeGB(memoryLimit), ...(settings.tls ? tlsArgs() : [])];
    const healthCheck: HealthCheck = {
      // A ping to the server in the container; over TLS, verified with the mounted CA.
      command: healthCheckCommand(settings.tls),
      // mongosh is a Node.js program: a few seconds to start on a throttled CPU.
      intervalSeconds: 15,
      timeoutSeconds: 10,
      failureThreshold: 5,
      // The first start runs a temporary mongod and the initdb script before the real one.
      startupSeconds: 120,
    };
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
      args,
      env: {
        MONGO_INITDB_ROOT_USERNAME: 'root',
        MONGO_INITDB_ROOT_PASSWORD: { secret: 'root-password' },
        // Read by initdb/10-app-user.js. The MONGO_INITDB_ prefix matters: the entrypoint unsets
        // all such variables before it execs mongod, so the server process never holds them.
        MONGO_INITDB_APP_PASSWORD: { secret: 'app-password' },
        MONGO_INITDB_READONLY_PASSWORD: { secret: 'readonly-password' },
        MONGO_INITDB_BACKUP_PASSWORD: { secret: BACKUP_PASSWORD_SECRET },
        // Only the certificate reload reads it (see TLS_RELOAD_COMMAND). Not MONGO_INITDB_ROOT_PASSWORD_FILE,
        // which the entrypoint would read in place of the variable above.
        ...(settings.tls ? { MONGODB_ROOT_PASSWORD_FILE: ROOT_PASSWORD_PATH } : {}),
      },
      configFiles: [
        { source: 'config/mongod.conf', mountPath: '/etc/mongo/mongod.conf' },
        { source: 'config/mongosh.conf', mountPath: '/etc/mongosh.conf' },
        // Run by mongosh, so it needs no executable bit.
        { source: 'initdb/10-app-user.js', mountPath: '/docker-entrypoint-initdb.d/10-app-user.js' },
      ],
      secretFiles: [
        { source: 'bootstrap/user-passwords.json', bootstrapVariable: USER_PASSWORDS_VARIABLE },
        // Only for the certificate reload (TLS_RELOAD_COMMAND).
        ...(settings.tls ? [{ source: 'config/root-password', mountPath: ROOT_PASSWORD_PATH }] : []),
      ],
      healthCheck,
      // mongod checkpoints and closes WiredTiger cleanly on SIGTERM.
      terminationGracePeriodSeconds: 60,
      // w=majority: the platform's write concern, stated where every client reads it. A write is
      // acknowledged once a majority of the set has it, so a failover never rolls it back; on a
      // single server (Docker) the majority is that server. replicaSet=rs0 is added where the
      // members run (HighAvailabilitySpec.connectionQuery): Docker's single mongod is no set.
      appConnection: { scheme: 'mongodb', username: 'allixios_app', passwordSecret: 'app-password', path: '/allixios', query: 'authSource=admin&w=majority', tls: CONNECTION_TLS },
      adminConnection: { scheme: 'mongodb', username: 'root', passwordSecret: 'root-password', path: '/allixios', query: 'authSource=admin&w=majority', tls: CONNECTION_TLS },
      nodeSysctls: [],
      ...(settings.tls ? { tls: TLS } : {}),
      // A nightly mongodump --oplog from a secondary, when the stack backs up (backup.ts).
      ...(settings.backup ? { backup: mongodbBackup(settings.backup, settings.tls, CONNECTION_TLS) } : {}),
      // On Kubernetes every stack runs a replica set, of one member too (ephemeral): the same
      // procedures everywhere, and transactions and change streams work on every cluster stack.
      // Docker runs the single mongod of before and ignores this.
      highAvailability: replicaSetHighAvailability(
        args,
        memberHealthCheck(healthCheck, (script) => mongoshEval(settings.tls, script), healthCheckCommand(settings.tls)),
      ),
    };
  },
};
