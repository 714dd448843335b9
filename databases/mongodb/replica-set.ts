/**
 * MongoDB as a replica set on Kubernetes (`EngineSpec.highAvailability`): every member runs the
 * same mongod as the single server (its config file, cache size and TLS arguments) with
 * `--replSet rs0` and the set's shared key for internal authentication. What elects a primary,
 * fails over and catches a member up is MongoDB's own; the members' configuration (who belongs to
 * the set) is kept by the bootstrap (`bootstrap/adapters/mongodb-replica-set-plan.ts`), which
 * initiates the set and adds or removes members to match the stack's replicas. Why each choice:
 * databases/mongodb/README.md, "Replica set".
 */
import { type HealthCheck, type HighAvailabilitySpec, type SecretDefinition } from '../engine.ts';
import { shellQuote } from '../shell.ts';

/** The set's name: `--replSet`, the connections' `replicaSet`, the bootstrap's configuration `_id`. */
export const REPLICA_SET_NAME = 'rs0';

/** The variable the bootstrap reads the desired members from (`HighAvailabilitySpec.bootstrapMembers`). */
export const REPLICA_SET_MEMBERS_VARIABLE = 'MONGODB_REPLICA_SET_MEMBERS';

/** The port members reach each other on: mongod's one port, the clients' too. */
export const MEMBER_PORT = 27017;

/**
 * The shared key the members authenticate each other with (`security.keyFile`). Generated like a
 * password: 32 letters and digits, characters of the base64 set mongod requires, within its 6 to
 * 1024.
 */
export const KEYFILE_SECRET: SecretDefinition = {
  key: 'replica-set-keyfile',
  description: "the replica set's shared key: members authenticate each other with it (internal authentication, security.keyFile)",
  // mongod reads the key file's base64 characters (whitespace aside) and refuses any other.
  format: { pattern: /^[A-Za-z0-9+/=]{6,1024}$/, expected: 'a key of 6 to 1024 characters of the base64 alphabet (A-Z, a-z, 0-9, +, /, =), as mongod requires of a key file' },
  notRotatable:
    'every member must hold the old and the new key while they restart one by one; MongoDB documents the rolling procedure, which the README spells out (databases/mongodb/README.md, "Rotating the shared key")',
};

/**
 * The rendered key, in the engine's Secret directory: mounted there by the kubelet, owned by root
 * and readable by mongod's group (fsGroup, mode 0440), which mongod refuses for a key file.
 */
export const KEYFILE_SOURCE = 'config/replica-set-keyfile';
export const KEYFILE_MOUNT_PATH = '/etc/mongo/secrets/replica-set-keyfile';

/**
 * Where each member's start copies the key, owned by mongod's user and mode 0400: the container's
 * /dev/shm, a tmpfs every container runtime gives a container (writable by any user, sticky), so
 * the key is in memory only, never on the node's disk, and gone with the pod.
 */
export const KEYFILE_PATH = '/dev/shm/allixios-mongodb/keyfile';

/**
 * The members' start: copy the mounted key to {@link KEYFILE_PATH} as the running user with mode
 * 0400 (a fresh directory each start: a restarted container finds its previous copy, which a 0400
 * file does not let it overwrite), then hand over to the image's entrypoint, which creates the
 * users on a first start and execs mongod with the arguments (`"$@"`). `sh -c` with the script as
 * one word and the arguments apart: nothing is interpolated into the script.
 */
export const MEMBER_START = [
  'set -eu',
  `key=${shellQuote(KEYFILE_PATH)}`,
  'rm -rf "${key%/*}"',
  'mkdir -m 0700 "${key%/*}"',
  `(umask 0277 && cat ${shellQuote(KEYFILE_MOUNT_PATH)} > "$key")`,
  'exec docker-entrypoint.sh "$@"',
].join('\n');

/**
 * mongod's arguments beyond the single server's: the set's name and the key. `security.keyFile`
 * also turns internal authentication on: `security.clusterAuthMode` is left at its documented
 * default, `keyFile` (the image's first-start mongod, which the entrypoint runs without the key and
 * the set, gets no cluster option it would have to accept without them). Members listen on every
 * interface already (`net.bindIpAll` in mongod.conf). On a TLS stack the members' own connections
 * are TLS too: `net.tls.mode requireTLS` covers every connection, and each member presents its
 * server certificate to the others (the certificate carries `client auth`).
 */
export function replicaSetArgs(): string[] {
  return ['--replSet', REPLICA_SET_NAME, '--keyFile', KEYFILE_PATH];
}

/**
 * Where a member's readiness check records that it has held a replica set configuration: on the
 * data volume, which a configuration lives and dies with. Read and written by the check only.
 */
export const MEMBER_MARKER_PATH = '/data/db/allixios-replica-set-member';

/**
 * Ready: the member serves the set, as its primary or a secondary (`hello`, which needs no login);
 * a member in initial sync (STARTUP2), recovering, rolling back or removed is alive but not ready.
 *
 * One exception keeps a new set from waiting on itself: a member that has never held a
 * configuration (a fresh volume: no marker) and reports none (`isreplicaset` without `setName`) is
 * ready to be made a member. The StatefulSet starts members one by one, each once the one before
 * is ready, and the bootstrap initiates the set only once they all run; a member still waiting for
 * the bootstrap would otherwise stop the StatefulSet, and the bootstrap, forever. The marker, written
 * the first time the member reports a configuration, is what tells such a member from one that
 * restarts: mongod answers `hello` before it has loaded its configuration, and then reports none,
 * but a member that has had one is not ready until it is a secondary again, so a rolling update
 * never takes the next member down while this one is still catching up.
 */
export const MEMBER_READY_SCRIPT = [
  'const hello = db.adminCommand({ hello: 1 });',
  `const marker = ${JSON.stringify(MEMBER_MARKER_PATH)};`,
  "if (hello.setName !== undefined && !fs.existsSync(marker)) fs.writeFileSync(marker, hello.setName + '\\n');",
  'const serving = hello.setName !== undefined && (hello.isWritablePrimary === true || hello.secondary === true);',
  'const awaiting = hello.isreplicaset === true && hello.setName === undefined && !fs.existsSync(marker);',
  'quit(serving || awaiting ? 0 : 1);',
].join(' ');

/**
 * The members' health check: ready as above, alive while the process answers a ping (a member in
 * initial sync or recovering is alive: restarting it would start its sync over).
 */
export function memberHealthCheck(engine: HealthCheck, mongosh: (script: string) => string[], ping: string[]): HealthCheck {
  return { ...engine, command: mongosh(MEMBER_READY_SCRIPT), liveCommand: ping };
}

/** The members' settings under {@link HighAvailabilitySpec}. */
export function replicaSetHighAvailability(engineArgs: readonly string[], healthCheck: HealthCheck): HighAvailabilitySpec {
  return {
    manager: 'MongoDB replica set',
    // The image's entrypoint, reached through the start that copies the key first.
    command: ['sh', '-c', MEMBER_START, 'mongodb-member'],
    args: [...engineArgs, ...replicaSetArgs()],
    env: {},
    // mongod finds itself in the set's configuration by its own address: nothing to tell it.
    memberEnv: {},
    configFiles: [],
    // Members replicate, vote and send heartbeats on 27017, the clients' port: no port of their own.
    ports: [],
    healthCheck,
    secretFiles: [{ source: KEYFILE_SOURCE, mountPath: KEYFILE_MOUNT_PATH }],
    connectionQuery: `replicaSet=${REPLICA_SET_NAME}`,
    bootstrapMembers: { variable: REPLICA_SET_MEMBERS_VARIABLE, port: MEMBER_PORT },
  };
}
