/**
 * The MongoDB users' passwords (a rotation, README "Rotating a password"): a pure function from
 * the passwords the stack wants (`MONGODB_USER_PASSWORDS`, rendered from
 * `databases/mongodb/bootstrap/user-passwords.json`) and the users as `usersInfo` reports them
 * (with `showCredentials`) to the users whose password must be set. No I/O: the adapter reads
 * the users and runs `updateUser` (or `createUser`).
 *
 * MongoDB keeps no password, only its SCRAM keys: a password is checked by deriving the
 * SCRAM-SHA-256 StoredKey from it with the stored salt and iteration count. MongoDB hashes a
 * password itself when it is set, which is why the bootstrap needs the plain passwords.
 */
import { z } from 'zod';
import { BACKUP_ROLES, BACKUP_USER } from '../../databases/mongodb/backup.ts';
import { USER_PASSWORDS_VARIABLE } from '../../databases/mongodb/index.ts';
import { scramSha256Matches } from '../../databases/secret-files.ts';
import { BootstrapError, toError } from '../errors.ts';
import type { Change } from '../contract.ts';

/** Where the passwords the stack wants are defined (a path relative to the repository). */
export const USER_PASSWORDS_SOURCE = 'databases/mongodb/bootstrap/user-passwords.json';
/** Where the platform's users are created on a fresh data volume. */
const USERS_SCRIPT = 'databases/mongodb/initdb/10-app-user.js';
/** The superuser the image creates on first start (MONGO_INITDB_ROOT_USERNAME). */
const ROOT_USER = 'root';
/** The platform's users, root included, live in the admin database (clients use authSource=admin). */
export const USERS_DATABASE = 'admin';

/** User name to password, as the stack wants them. */
export type MongoUserPasswords = Readonly<Record<string, string>>;

/** SCRAM-SHA-256 credentials as `usersInfo` shows them: base64 salt and keys. */
export interface ScramSha256Credentials {
  iterationCount: number;
  salt: string;
  storedKey: string;
  serverKey: string;
}

/** A role a user holds: `{ role: 'backup', db: 'admin' }`. */
export interface MongoRole {
  role: string;
  db: string;
}

/** One user as the planner needs it from `usersInfo`. */
export interface ObservedMongoUser {
  user: string;
  /** Absent when the user has no SCRAM-SHA-256 credentials (SCRAM-SHA-1 only, or unreadable). */
  scramSha256?: ScramSha256Credentials;
  /** Its roles as `usersInfo` lists them; absent when the reply had none to read. */
  roles?: MongoRole[];
}

/** What `applyCredential` needs: never printed. */
export interface MongoCredentialPayload {
  user: string;
  password: string;
  /** The roles to set (`createUser`/`updateUser`): only for a user whose roles are the bootstrap's ({@link BOOTSTRAP_USERS}). */
  roles?: readonly MongoRole[];
  /** The user does not exist: `createUser`, not `updateUser`. */
  create?: boolean;
}

/**
 * Users whose roles the bootstrap keeps, because they came after data volumes that the first start
 * (`initdb/10-app-user.js`) will never run on again: the bootstrap creates such a user when the
 * server lacks it, and sets its roles back when someone changed them. The other platform users are
 * created by the first start only, and a missing one is an error.
 */
export const BOOTSTRAP_USERS: Readonly<Record<string, readonly MongoRole[]>> = { [BACKUP_USER]: BACKUP_ROLES };

export type MongoCredentialChange = Change<MongoCredentialPayload>;

const userPasswordsSchema = z.record(z.string(), z.string());

/** What a JSON value is, for a message that must not show the value itself. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * The passwords the stack wants, from the value of `MONGODB_USER_PASSWORDS`; undefined when the
 * variable is not set (no credential plan). Messages name the variable and the key, never a value:
 * the values are passwords.
 */
export function parseUserPasswords(value: string | undefined): MongoUserPasswords | undefined {
  if (value === undefined) return undefined;
  const expected = `expected a JSON object of user name to password (a string), as ${USER_PASSWORDS_SOURCE} renders it`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    // JSON.parse's message quotes the text around the error: part of a password.
    throw new BootstrapError('mongodb', `${USER_PASSWORDS_VARIABLE} is not valid JSON: ${expected}`);
  }
  const result = userPasswordsSchema.safeParse(parsed);
  if (result.success) return result.data;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BootstrapError('mongodb', `${USER_PASSWORDS_VARIABLE}: ${expected}; got ${kindOf(parsed)}`);
  }
  const wrong = Object.entries(parsed).filter(([, password]) => typeof password !== 'string');
  const keys = wrong.map(([user, password]) => `"${user}" is ${kindOf(password)}`).join(', ');
  throw new BootstrapError('mongodb', `${USER_PASSWORDS_VARIABLE}: ${expected}; ${keys}`);
}

const rolesSchema = z.array(z.object({ role: z.string(), db: z.string() }).transform(({ role, db }) => ({ role, db })));

const scramSha256Schema = z.object({ iterationCount: z.number().int().positive(), salt: z.string(), storedKey: z.string(), serverKey: z.string() });

/** The users of a `usersInfo` reply (`{ users: [...] }`), with their SCRAM-SHA-256 credentials when readable. */
export function observedUsers(reply: { users?: unknown }): ObservedMongoUser[] {
  const users = Array.isArray(reply.users) ? (reply.users as Array<{ user?: unknown; credentials?: Record<string, unknown> }>) : [];
  return users.flatMap((entry) => {
    if (typeof entry.user !== 'string') return [];
    const scram = scramSha256Schema.safeParse(entry.credentials?.['SCRAM-SHA-256']);
    const roles = rolesSchema.safeParse((entry as { roles?: unknown }).roles);
    return [{ user: entry.user, ...(scram.success ? { scramSha256: scram.data } : {}), ...(roles.success ? { roles: roles.data } : {}) }];
  });
}

/** Who creates a missing user, for the error that asks for it. */
function creatorOf(user: string): string {
  return user === ROOT_USER ? 'the image (MONGO_INITDB_ROOT_USERNAME)' : USERS_SCRIPT;
}

function missingUsers(names: readonly string[]): BootstrapError {
  const list = names.map((name) => `${name} (created by ${creatorOf(name)})`).join(', ');
  return new BootstrapError(
    'mongodb',
    `the server has no user ${list} in the ${USERS_DATABASE} database: the platform's users are created on the first start of an empty data volume, not by the bootstrap. On an existing volume, run ${USERS_SCRIPT} by hand as root (its header says how), then run the bootstrap again`,
    { location: { file: USER_PASSWORDS_SOURCE } },
  );
}

/** Whether the user's stored SCRAM-SHA-256 keys were made from `password`. */
function hasPassword(user: ObservedMongoUser, password: string): boolean {
  const stored = user.scramSha256;
  if (!stored) return false;
  try {
    return scramSha256Matches(password, { salt: stored.salt, iterations: stored.iterationCount, storedKey: stored.storedKey }, `${user.user} in ${USER_PASSWORDS_VARIABLE}`);
  } catch (error) {
    throw new BootstrapError('mongodb', `user ${user.user}: ${toError(error).message}`, { location: { file: USER_PASSWORDS_SOURCE }, cause: error });
  }
}

const roleKey = ({ role, db }: MongoRole) => `${role}@${db}`;
const rolesText = (roles: readonly MongoRole[]) => (roles.length === 0 ? 'none' : roles.map(({ role, db }) => `${role} on ${db}`).join(', '));

/** Whether two role lists grant the same roles, in any order. */
function sameRoles(a: readonly MongoRole[], b: readonly MongoRole[]): boolean {
  const left = new Set(a.map(roleKey));
  const right = new Set(b.map(roleKey));
  return left.size === right.size && [...left].every((key) => right.has(key));
}

/**
 * Pure: the users whose password differs from the stack's, in the order of `desired`. A user
 * without SCRAM-SHA-256 credentials gets them (the platform's users use SCRAM-SHA-256 only). A
 * user the server does not have is an error, its roles not the bootstrap's to decide, unless it is
 * one of {@link BOOTSTRAP_USERS}: that one is created with its roles, and its roles are set back
 * when they differ (a backup login with more than `backup` is a leak waiting to happen).
 */
export function planMongoCredentials(desired: MongoUserPasswords, observed: readonly ObservedMongoUser[]): MongoCredentialChange[] {
  const byName = new Map(observed.map((user) => [user.user, user]));
  const missing = Object.keys(desired).filter((name) => !byName.has(name) && BOOTSTRAP_USERS[name] === undefined);
  if (missing.length > 0) throw missingUsers(missing);
  return Object.entries(desired).flatMap(([name, password]): MongoCredentialChange[] => {
    const subject = `user ${name}`;
    const roles = BOOTSTRAP_USERS[name];
    const user = byName.get(name);
    if (!user) {
      const detail = `missing (a data volume older than the user): created in ${USERS_DATABASE} with ${rolesText(roles!)} and the stack's password`;
      return [{ subject, action: 'create', detail, source: USER_PASSWORDS_SOURCE, payload: { user: name, password, roles: roles!, create: true } }];
    }
    const reasons: string[] = [];
    if (!hasPassword(user, password)) {
      reasons.push(user.scramSha256 ? "its password is not the stack's (a rotation): set it" : "it has no SCRAM-SHA-256 credentials: set the stack's password with them");
    }
    const wrongRoles = roles !== undefined && !sameRoles(user.roles ?? [], roles);
    if (wrongRoles) reasons.push(`its roles are ${rolesText(user.roles ?? [])}, not ${rolesText(roles)}: set them`);
    if (reasons.length === 0) return [];
    return [{ subject, action: 'update', detail: reasons.join('; '), source: USER_PASSWORDS_SOURCE, payload: { user: name, password, ...(wrongRoles ? { roles } : {}) } }];
  });
}
