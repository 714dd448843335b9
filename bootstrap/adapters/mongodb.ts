/**
 * MongoDB's bootstrap side: the definitions (`databases/mongodb/definitions.ts`), the pure
 * planner (`mongodb-plan.ts`) and the passwords the stack wants (`mongodb-credentials.ts`). The
 * adapter (`mongodb-adapter.ts`, with the mongodb driver) is loaded only when a run connects.
 */
import { MONGODB_COLLECTIONS } from '../../databases/mongodb/definitions.ts';
import { mongodb, USER_PASSWORDS_VARIABLE } from '../../databases/mongodb/index.ts';
import { engineIdentity, requireUrl, type BootstrapEngine } from '../contract.ts';
import { parseUserPasswords } from './mongodb-credentials.ts';
import { planMongo, type MongoDesired, type MongoObserved, type MongoPayload } from './mongodb-plan.ts';

/** MongoDB as a state engine: the definitions, the pure planner, and the adapter. */
export const mongodbEngine: BootstrapEngine<MongoDesired, MongoObserved, MongoPayload> = {
  ...engineIdentity(mongodb),
  // The definitions are TypeScript (`databases/mongodb/definitions.ts`), typed with the driver's own types.
  desired: (env) => {
    const users = parseUserPasswords(env[USER_PASSWORDS_VARIABLE]);
    return { collections: MONGODB_COLLECTIONS, ...(users ? { users } : {}) };
  },
  plan: planMongo,
  createAdapter: async (url, options, desired) => {
    const admin = requireUrl(mongodb, url);
    const { MongoAdapter } = await import('./mongodb-adapter.ts');
    return new MongoAdapter(admin, {
      ...options,
      collections: MONGODB_COLLECTIONS.map((definition) => definition.name),
      ...(desired.users ? { users: desired.users } : {}),
    });
  },
  embedded: {
    unavailable:
      'no MongoDB server can run here (no Debian package; npm packages download binaries at run time). npm test checks its definitions and plans; set MONGODB_URL to run the bootstrap tests against a server',
  },
};
