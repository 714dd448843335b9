/**
 * MongoDB's bootstrap side: the definitions (`databases/mongodb/definitions.ts`), the pure
 * planner (`mongodb-plan.ts`) and the passwords the stack wants (`mongodb-credentials.ts`). The
 * adapter (`mongodb-adapter.ts`, with the mongodb driver) is loaded only when a run connects.
 */
import { MONGODB_COLLECTIONS } from '../../databases/mongodb/definitions.ts';
import { mongodb, USER_PASSWORDS_VARIABLE } from '../../databases/mongodb/index.ts';
import { REPLICA_SET_MEMBERS_VARIABLE, REPLICA_SET_NAME } from '../../databases/mongodb/replica-set.ts';
import { engineIdentity, requireUrl, type BootstrapEngine } from '../contract.ts';
import { BootstrapError } from '../errors.ts';
import { parseUserPasswords } from './mongodb-credentials.ts';
import { planMongo, type MongoDesired, type MongoObserved, type MongoPayload } from './mongodb-plan.ts';
import { parseMembers, type ReplicaSetDesired } from './mongodb-replica-set-plan.ts';

/**
 * The replica set the stack wants: its members from `MONGODB_REPLICA_SET_MEMBERS` (the Kubernetes
 * Job's), its name `rs0`; none when the variable is unset (a single server). A URL that names
 * another set (`replicaSet=`) contradicts the members and is refused.
 */
export function desiredReplicaSet(env: Readonly<Record<string, string | undefined>>): ReplicaSetDesired | undefined {
  const value = env[REPLICA_SET_MEMBERS_VARIABLE];
  if (value === undefined) return undefined;
  let members: string[];
  try {
    members = parseMembers(value, REPLICA_SET_MEMBERS_VARIABLE);
  } catch (error) {
    throw new BootstrapError(mongodb.name, (error as Error).message);
  }
  const url = env[mongodb.urlVariable] ?? '';
  const named = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '').entries();
  const other = [...named].find(([key, name]) => key.toLowerCase() === 'replicaset' && name !== REPLICA_SET_NAME);
  if (other) {
    throw new BootstrapError(
      mongodb.name,
      `${mongodb.urlVariable} names the replica set ${other[1]}, but ${REPLICA_SET_MEMBERS_VARIABLE} gives the members of ${REPLICA_SET_NAME}`,
    );
  }
  return { name: REPLICA_SET_NAME, members };
}

/** MongoDB as a state engine: the definitions, the pure planner, and the adapter. */
export const mongodbEngine: BootstrapEngine<MongoDesired, MongoObserved, MongoPayload> = {
  ...engineIdentity(mongodb),
  // The definitions are TypeScript (`databases/mongodb/definitions.ts`), typed with the driver's own types.
  desired: (env) => {
    const users = parseUserPasswords(env[USER_PASSWORDS_VARIABLE]);
    const replicaSet = desiredReplicaSet(env);
    return { collections: MONGODB_COLLECTIONS, ...(users ? { users } : {}), ...(replicaSet ? { replicaSet } : {}) };
  },
  plan: planMongo,
  createAdapter: async (url, options, desired) => {
    const admin = requireUrl(mongodb, url);
    const { MongoAdapter } = await import('./mongodb-adapter.ts');
    const replicaSet = desired.replicaSet ? new (await import('./mongodb-replica-set.ts')).MongoReplicaSet(admin, desired.replicaSet, options) : undefined;
    return new MongoAdapter(admin, {
      ...options,
      collections: MONGODB_COLLECTIONS.map((definition) => definition.name),
      ...(desired.users ? { users: desired.users } : {}),
      ...(replicaSet ? { replicaSet } : {}),
    });
  },
  embedded: {
    unavailable:
      'no MongoDB server can run here (no Debian package; npm packages download binaries at run time). npm test checks its definitions and plans; set MONGODB_URL to run the bootstrap tests against a server',
  },
};
