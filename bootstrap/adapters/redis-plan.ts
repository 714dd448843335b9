/**
 * The pure planner of Redis's bootstrap, for Redis and any engine that speaks its protocol and
 * keeps the same two files (a Redis-compatible cache, read by `redis-files.ts`).
 *
 * Redis has no schema history: what the platform defines is its ACL users (`config/users.acl`)
 * and its configuration (`config/redis.conf`), both mounted into the engine and loaded at start.
 * The bootstrap compares the running server with those files and repairs at run time what it
 * can: a config directive changed with CONFIG SET, a user's permissions changed with ACL SETUSER,
 * a user nobody defined. Everything here is plain data in, plain data out; the adapter
 * (`redis.ts`) reads the server and applies the changes.
 */
import type { Change, Flags, Plan } from '../contract.ts';
import type { PasswordState, RedisDesired } from './redis-files.ts';

/** A user's permissions as ACL GETUSER reports them. */
export interface AclPermissions {
  /** Flags other than on/off, nopass and sanitize-payload (a reset user's default), sorted. */
  flags: string[];
  commands: string;
  keys: string;
  channels: string;
  /** Each selector as `(<keys> <channels> <commands>)`. */
  selectors: string[];
}

export interface AclUserState extends AclPermissions {
  enabled: boolean;
  /** Whether it has a password. */
  password: PasswordState;
  /**
   * The SHA-256 digests of its passwords, sorted (ACL GETUSER's `passwords`); on an expected
   * state, only when the rendered ACL file is known. Compared, never shown in a message.
   */
  passwordHashes?: string[];
}

export interface RedisObserved {
  /** The user the bootstrap is connected as (ACL WHOAMI). */
  self: string;
  /** CONFIG GET per compared directive of the desired state; null when the server has no such directive. */
  config: Record<string, string | null>;
  /** Every user on the server. */
  users: Record<string, AclUserState>;
  /**
   * Per desired user, the permissions its rules give on this server (a scratch user set to the
   * rules and read back), and the rules that was computed from. Redis rewrites rules as it
   * stores them (`+@all -@admin -@dangerous` reads back as `+@all -@dangerous`), so only its own
   * normalisation compares reliably.
   */
  normalised: Record<string, { rules: string; permissions: AclPermissions }>;
}

export type RedisPayload =
  | { kind: 'config-set'; name: string; value: string }
  | {
      kind: 'acl-setuser';
      user: string;
      /** Everything ACL SETUSER gets after the user name; never a password. */
      rules: string[];
      /** What ACL GETUSER must report afterwards. */
      expected: AclUserState;
      /** The user goes from on to off: its open connections are closed too. */
      disconnect: boolean;
    }
  | { kind: 'acl-deluser'; user: string };

export type RedisChange = Change<RedisPayload>;

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

export const configSubject = (name: string) => `config ${name}`;
export const userSubject = (name: string) => `ACL user ${name}`;

/** A value for a message: quoted when empty or made of several words. */
function shown(value: string): string {
  return value === '' || /\s/.test(value) ? JSON.stringify(value) : value;
}

const PASSWORD_WORDS: Record<PasswordState, string> = { set: 'has a password', none: 'no password', nopass: 'nopass (any password is accepted)' };

/** The differences of a user, field by field, for a change's detail; none when they match. */
export function userDifferences(actual: AclUserState, expected: AclUserState, aclFile: string): string[] {
  const differences: string[] = [];
  const field = (label: string, server: string, file: string) => {
    if (server !== file) differences.push(`${label}: ${shown(server)} on the server, ${shown(file)} in ${aclFile}`);
  };
  field('status', actual.enabled ? 'on' : 'off', expected.enabled ? 'on' : 'off');
  if (actual.password !== expected.password) differences.push(`password: ${PASSWORD_WORDS[actual.password]} on the server, ${PASSWORD_WORDS[expected.password]} in ${aclFile}`);
  else if (expected.passwordHashes && actual.passwordHashes) {
    // Digests are compared, never shown: only how many differ.
    const extra = actual.passwordHashes.filter((hash) => !expected.passwordHashes!.includes(hash)).length;
    const missing = expected.passwordHashes.filter((hash) => !actual.passwordHashes!.includes(hash)).length;
    if (extra > 0 || missing > 0) {
      const parts = [extra > 0 ? `${extra} on the server that ${aclFile} does not give` : '', missing > 0 ? `${missing} of ${aclFile} missing on the server` : ''];
      differences.push(`passwords: ${parts.filter(Boolean).join(', ')}`);
    }
  }
  field('flags', actual.flags.join(' '), expected.flags.join(' '));
  field('commands', actual.commands, expected.commands);
  field('keys', actual.keys, expected.keys);
  field('channels', actual.channels, expected.channels);
  field('selectors', actual.selectors.join(' '), expected.selectors.join(' '));
  return differences;
}

function describeUser(state: AclUserState): string {
  return [
    state.enabled ? 'on' : 'off',
    PASSWORD_WORDS[state.password],
    `commands ${shown(state.commands)}`,
    `keys ${shown(state.keys)}`,
    `channels ${shown(state.channels)}`,
    ...(state.selectors.length > 0 ? [`selectors ${state.selectors.join(' ')}`] : []),
  ].join(', ');
}

/** Whether the server has a password for the user that the file no longer gives it. */
function passwordRemoved(actual: AclUserState, expected: AclUserState): boolean {
  if (actual.password === 'nopass' && expected.password !== 'nopass') return true;
  if (!expected.passwordHashes || !actual.passwordHashes) return false;
  return actual.passwordHashes.some((hash) => !expected.passwordHashes!.includes(hash));
}

/**
 * Pure: the changes that bring the observed server to the desired state. Order: users nobody
 * defined are deleted first (they are access nobody granted), then users are brought to their
 * rules, then config directives, each in file order.
 *
 * `observed` null (an offline dry run) stands for an engine just started from the mounted files,
 * which already is the desired state: nothing to change, every subject listed as in sync.
 */
export function planRedis(desired: RedisDesired, observed: RedisObserved | null, _flags: Flags = {}): Plan<RedisPayload> {
  const { acl: aclFile, config: configFile } = desired.files;
  const plan: Plan<RedisPayload> = { engine: desired.engine, changes: [], inSync: [], refusals: [] };
  const defaultDefined = desired.users.some((user) => user.name === 'default');
  if (!observed) {
    plan.inSync.push(...desired.users.map((user) => userSubject(user.name)), ...(defaultDefined ? [] : [userSubject('default')]));
    plan.inSync.push(...desired.config.map((value) => configSubject(value.name)));
    return plan;
  }
  const deletions: RedisChange[] = [];
  const updates: RedisChange[] = [];
  const settings: RedisChange[] = [];
  const wanted = new Set(desired.users.map((user) => user.name));

  // Users on the server that users.acl does not define: access nobody granted.
  for (const [name, state] of Object.entries(observed.users).sort(([a], [b]) => a.localeCompare(b))) {
    if (wanted.has(name) || name === 'default') continue;
    if (name === observed.self) {
      plan.refusals.push(
        `the bootstrap is connected as ${name}, which ${aclFile} does not define; deleting it would cut the bootstrap off: connect as the admin user of ${aclFile} (${desired.urlVariable})`,
      );
      continue;
    }
    deletions.push({
      subject: userSubject(name),
      action: 'delete',
      detail: `not in ${aclFile}; on the server: ${describeUser(state)}`,
      source: desired.sources.acl,
      payload: { kind: 'acl-deluser', user: name },
    });
  }

  for (const user of desired.users) {
    const subject = userSubject(user.name);
    const actual = observed.users[user.name];
    const normalised = observed.normalised[user.name];
    if (!normalised || normalised.rules !== user.rules.join(' ')) {
      throw new Error(`${desired.engine}: the observed state has no normalised rules for ${subject} as ${aclFile} defines them (observe and desired state disagree)`);
    }
    const expected: AclUserState = {
      ...normalised.permissions,
      enabled: user.enabled,
      password: user.password,
      ...(user.passwordHashes ? { passwordHashes: user.passwordHashes } : {}),
    };
    // With the rendered file, the passwords are the file's digests: set exactly those. Without it,
    // only provisioning knows them, and their absence is beyond what the bootstrap can repair.
    const passwordRules = user.passwordHashes ? ['resetpass', ...user.passwordHashes.map((hash) => `#${hash}`)] : [];
    if (!actual) {
      if (!user.passwordHashes) {
        plan.refusals.push(`${subject} is missing; its password comes from provisioning (${aclFile}); redeploy the engine, or give the bootstrap ${desired.usersAclVariable}`);
        continue;
      }
      updates.push({
        subject,
        action: 'create',
        detail: `missing on the server; as ${aclFile} defines it`,
        source: desired.sources.acl,
        payload: {
          kind: 'acl-setuser',
          user: user.name,
          rules: ['reset', desired.channelsBase, ...user.rules, ...passwordRules, ...(user.password === 'nopass' ? ['nopass'] : []), user.enabled ? 'on' : 'off'],
          expected,
          disconnect: false,
        },
      });
      continue;
    }
    if (user.password === 'set' && actual.password !== 'set' && !user.passwordHashes) {
      plan.refusals.push(
        actual.password === 'nopass'
          ? `${subject} accepts any password (nopass) on the server; its password comes from provisioning (${aclFile}); redeploy the engine`
          : `${subject} has no password on the server, so nobody can log in as it; its password comes from provisioning (${aclFile}); redeploy the engine`,
      );
      continue;
    }
    const differences = userDifferences(actual, expected, aclFile);
    if (differences.length === 0) {
      plan.inSync.push(subject);
      continue;
    }
    const rules = [
      // ACL SETUSER without `reset`, which would drop the password: every permission is cleared
      // and rebuilt from the file's rules, starting from what a freshly loaded user has.
      'resetkeys',
      desired.channelsBase,
      'clearselectors',
      '-@all',
      ...(actual.flags.includes('skip-sanitize-payload') ? ['sanitize-payload'] : []),
      ...user.rules,
      user.enabled ? 'on' : 'off',
      ...(user.password === 'none' ? ['resetpass'] : user.password === 'nopass' ? ['nopass'] : passwordRules),
    ];
    updates.push({
      subject,
      action: 'update',
      detail: differences.join('; '),
      source: desired.sources.acl,
      // A password that was taken away (a rotation, a backdoor removed) ends its sessions too.
      payload: { kind: 'acl-setuser', user: user.name, rules, expected, disconnect: (actual.enabled && !user.enabled) || passwordRemoved(actual, expected) },
    });
  }

  // The default user must be off even when the file does not mention it.
  const defaultUser = observed.users.default;
  if (!defaultDefined) {
    if (defaultUser?.enabled) {
      updates.push({
        subject: userSubject('default'),
        action: 'update',
        detail: `status: on on the server; nobody connects as the default user, so it must be off (${desired.engine}'s README)`,
        source: desired.sources.acl,
        payload: { kind: 'acl-setuser', user: 'default', rules: ['off'], expected: { ...defaultUser, enabled: false }, disconnect: true },
      });
    } else {
      plan.inSync.push(userSubject('default'));
    }
  }

  for (const value of desired.config) {
    const subject = configSubject(value.name);
    const actual = observed.config[value.name];
    if (actual === null || actual === undefined) {
      plan.refusals.push(`${subject}: the server does not know this directive (${configFile}, line ${value.line}); is it the Redis version the engine pins?`);
      continue;
    }
    if (actual === value.value) {
      plan.inSync.push(subject);
      continue;
    }
    settings.push({
      subject,
      action: 'update',
      detail: `${shown(actual)} on the server, ${shown(value.value)} in ${configFile}`,
      source: desired.sources.config,
      payload: { kind: 'config-set', name: value.name, value: value.value },
    });
  }

  plan.changes.push(...deletions, ...updates, ...settings);
  return plan;
}
