import { createHash } from 'node:crypto';
/**
 * Redis's desired state (read from the project's redis.conf and users.acl) and the pure planner,
 * on plain data: no server involved.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRedisConf, parseUsersAcl, readRedisDesired, type RedisDesired } from '../../bootstrap/adapters/redis-files.ts';
import { planRedis, type AclPermissions, type RedisObserved } from '../../bootstrap/adapters/redis-plan.ts';
import { redis } from '../../databases/redis/index.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';

const CONF = 'databases/redis/config/redis.conf';
const ACL = 'databases/redis/config/users.acl';
const confText = readFileSync(join(redis.directory, 'config/redis.conf'), 'utf8');
const aclTemplate = readFileSync(join(redis.directory, 'config/users.acl'), 'utf8');

/** 1-based line of the first line of `text` starting with `prefix`. */
const lineOf = (text: string, prefix: string) => text.split('\n').findIndex((line) => line.startsWith(prefix)) + 1;

describe('the desired state read from the project files', () => {
  it('compares the runtime directives of redis.conf, in the form CONFIG GET returns them', () => {
    // Given the project's redis.conf, when it is read
    const config = readRedisDesired().config;
    const value = (name: string) => config.find((entry) => entry.name === name)?.value;

    // Then the runtime-settable directives are there with their values
    expect(value('maxmemory-policy')).toBe('volatile-ttl');
    expect(value('maxmemory-samples')).toBe('10');
    expect(value('appendonly')).toBe('yes');
    expect(value('appendfsync')).toBe('everysec');
    expect(value('lazyfree-lazy-user-del')).toBe('yes');
    expect(value('slowlog-log-slower-than')).toBe('10000');
    expect(value('acl-pubsub-default')).toBe('resetchannels');
    // And the three save lines are one value, as CONFIG GET returns it
    expect(value('save')).toBe('3600 1 300 100 60 10000');
    expect(config.find((entry) => entry.name === 'maxmemory-policy')?.line).toBe(lineOf(confText, 'maxmemory-policy '));
    // And what cannot (or must not) be set at run time is not compared
    const names = config.map((entry) => entry.name);
    for (const skipped of ['bind', 'port', 'aclfile', 'dir', 'dbfilename', 'appendfilename', 'logfile', 'daemonize', 'supervised', 'enable-debug-command']) {
      expect(names).not.toContain(skipped);
    }
    // And every directive of the file is accounted for: compared ones each once
    expect(new Set(names).size).toBe(names.length);
  });

  it('reads the users of the users.acl template without any password token, their digests unknown', () => {
    // Given the users.acl template, when it is read
    const { users, sources, channelsBase, passwordsKnown } = readRedisDesired();

    // Then each user has its rules, whether it is on, and whether the file gives it a password
    expect(users).toEqual([
      { name: 'default', line: 1, enabled: false, password: 'none', passwordHashes: [], rules: ['resetkeys', 'resetchannels', '-@all'] },
      { name: 'allixios_admin', line: 2, enabled: true, password: 'set', rules: ['~*', '&*', '+@all'] },
      {
        name: 'allixios_app',
        line: 3,
        enabled: true,
        password: 'set',
        rules: ['~session:*', '~auth:*', '~cache:*', '~ratelimit:*', '~metrics:*', 'resetchannels', '&events:*', '+@all', '-@admin', '-@dangerous', '-function'],
      },
      {
        name: 'allixios_monitor',
        line: 4,
        enabled: true,
        password: 'set',
        rules: ['resetkeys', 'resetchannels', '-@all', '+ping', '+info', '+slowlog|get', '+slowlog|len', '+latency|latest'],
      },
      // Under Sentinel: a replica to its master, and Sentinel on the members (Redis's documented minimal rules).
      { name: 'allixios_replication', line: 5, enabled: true, password: 'set', rules: ['resetkeys', 'resetchannels', '-@all', '+psync', '+replconf', '+ping'] },
      {
        name: 'allixios_sentinel',
        line: 6,
        enabled: true,
        password: 'set',
        rules: [
          'resetkeys',
          'allchannels',
          '-@all',
          '+multi',
          '+slaveof',
          '+ping',
          '+exec',
          '+subscribe',
          '+config|rewrite',
          '+role',
          '+publish',
          '+info',
          '+client|setname',
          '+client|kill',
          '+script|kill',
        ],
      },
      // The snapshot job: redis-cli --rdb sends REPLCONF and SYNC, nothing else (databases/redis/backup.ts).
      { name: 'allixios_backup', line: 7, enabled: true, password: 'set', rules: ['resetkeys', 'resetchannels', '-@all', '+replconf', '+sync'] },
    ]);
    expect(sources).toEqual({ acl: ACL, config: CONF });
    expect(channelsBase).toBe('resetchannels');
    expect(passwordsKnown).toBe(false);
  });

  it("reads the rendered ACL file (REDIS_USERS_ACL) as the template, with each password's digest", () => {
    const secrets = {
      'admin-password': 'a-secret',
      'app-password': 'b-secret',
      'monitor-password': 'c-secret',
      'replication-password': 'd-secret',
      'sentinel-password': 'e-secret',
      'sentinel-peer-password': 'f-secret',
      'backup-password': 'g-secret',
    };
    const rendered = renderSecretFile(aclTemplate, secrets);
    const desired = readRedisDesired(rendered);
    const digest = (value: string) => createHash('sha256').update(value).digest('hex');
    expect(desired.passwordsKnown).toBe(true);
    expect(desired.users.map((user) => [user.name, user.passwordHashes])).toEqual([
      ['default', []],
      ['allixios_admin', [digest('a-secret')]],
      ['allixios_app', [digest('b-secret')]],
      ['allixios_monitor', [digest('c-secret')]],
      ['allixios_replication', [digest('d-secret')]],
      ['allixios_sentinel', [digest('e-secret')]],
      ['allixios_backup', [digest('g-secret')]],
    ]);
    // Everything but the digests is the template's
    const withoutDigests = (users: typeof desired.users) => users.map(({ passwordHashes: _hashes, ...user }) => user);
    expect(withoutDigests(desired.users)).toEqual(withoutDigests(readRedisDesired().users));
  });

  it('refuses a REDIS_USERS_ACL that does not render this template, naming the user that differs', () => {
    const rendered = renderSecretFile(aclTemplate, {
      'admin-password': 'a',
      'app-password': 'b',
      'monitor-password': 'c',
      'replication-password': 'd',
      'sentinel-password': 'e',
      'sentinel-peer-password': 'f',
      'backup-password': 'g',
    }).replace('+latency|latest', '+@all');
    expect(() => readRedisDesired(rendered)).toThrow(
      /^redis: REDIS_USERS_ACL is not a rendering of databases\/redis\/config\/users\.acl: its user 4 is "allixios_monitor on set .*\+@all", the template's is "allixios_monitor on set .*\+latency\|latest"/,
    );
    expect(() => readRedisDesired(aclTemplate)).toThrow('redis: REDIS_USERS_ACL: user allixios_admin has a password that is not a SHA-256 digest (#<64 hex digits>)');
  });

  it('strips every password token, and `reset` undoes what came before it', () => {
    const [user] = parseUsersAcl('user u on >one #abc nopass ~a +get resetpass >two reset ~b +set on', ACL);
    expect(user).toEqual({ name: 'u', line: 1, enabled: true, password: 'none', passwordHashes: [], rules: ['~b', '+set'] });
    const [other] = parseUsersAcl('user v off nopass ~a (~b +get) +set', ACL);
    expect(other).toEqual({ name: 'v', line: 1, enabled: false, password: 'nopass', passwordHashes: [], rules: ['~a', '(~b +get)', '+set'] });
  });

  it('refuses a default user that is on, a comment and a user defined twice, naming the line', () => {
    expect(() => parseUsersAcl('user default on nopass +@all', ACL)).toThrow(`redis: ${ACL}, line 1: user default must be off and have no password`);
    expect(() => parseUsersAcl('user a on ~*\n# a comment', ACL)).toThrow(`redis: ${ACL}, line 2: expected "user <name> <rules>", got a line starting with "#"`);
    expect(() => parseUsersAcl('user a on ~*\nuser a off', ACL)).toThrow(`redis: ${ACL}, line 2: user a is defined twice`);
  });

  it('normalises sizes to bytes, booleans and enums to lower case, and keeps the last of a repeated directive', () => {
    const values = parseRedisConf('auto-aof-rewrite-min-size 64mb\nappendonly YES\nMaxmemory-Policy Allkeys-LRU\ntimeout 10\ntimeout 0\nsave ""\nsave 900 1\nsave 60 100', CONF);
    expect(values.map(({ name, value }) => [name, value])).toEqual([
      ['auto-aof-rewrite-min-size', String(64 * 1024 * 1024)],
      ['appendonly', 'yes'],
      ['maxmemory-policy', 'allkeys-lru'],
      ['timeout', '0'],
      ['save', '900 1 60 100'],
    ]);
  });

  it('refuses a directive it has not classified, and a malformed value, naming the line', () => {
    expect(() => parseRedisConf('port 6379\nhash-max-listpack-entries 128', CONF)).toThrow(
      `redis: ${CONF}, line 2: the bootstrap does not know whether hash-max-listpack-entries can be compared and set at run time: add it to COMPARED or NOT_COMPARED in bootstrap/adapters/redis-files.ts`,
    );
    expect(() => parseRedisConf('appendonly maybe', CONF)).toThrow(`redis: ${CONF}, line 1: appendonly expects yes or no, got "maybe"`);
    expect(() => parseRedisConf('save 3600', CONF)).toThrow(`redis: ${CONF}, line 1: save expects pairs of <seconds> <changes>, got "3600"`);
  });
});

// The planner on plain data -------------------------------------------------------------------

const APP_RULES = ['~session:*', 'resetchannels', '&events:*', '+@all', '-@admin', '-@dangerous', '-function'];

const DESIRED: RedisDesired = {
  engine: 'redis',
  urlVariable: 'REDIS_URL',
  usersAclVariable: 'REDIS_USERS_ACL',
  users: [
    { name: 'default', line: 1, enabled: false, password: 'none', rules: ['resetkeys', 'resetchannels', '-@all'] },
    { name: 'allixios_admin', line: 2, enabled: true, password: 'set', rules: ['~*', '&*', '+@all'] },
    { name: 'allixios_app', line: 3, enabled: true, password: 'set', rules: APP_RULES },
  ],
  config: [
    { name: 'maxmemory-policy', value: 'volatile-ttl', line: 60 },
    { name: 'save', value: '3600 1 300 100 60 10000', line: 80 },
  ],
  channelsBase: 'resetchannels',
  sources: { acl: ACL, config: CONF },
  files: { acl: 'config/users.acl', config: 'config/redis.conf' },
  passwordsKnown: false,
};

/** What Redis 7.0 makes of each user's rules. */
const PERMISSIONS: Record<string, AclPermissions> = {
  default: { flags: [], commands: '-@all', keys: '', channels: '', selectors: [] },
  allixios_admin: { flags: [], commands: '+@all', keys: '~*', channels: '&*', selectors: [] },
  allixios_app: { flags: [], commands: '+@all -@dangerous -function', keys: '~session:*', channels: '&events:*', selectors: [] },
};

/** A server exactly as the files define it. */
function observedInSync(): RedisObserved {
  return {
    self: 'allixios_admin',
    config: { 'maxmemory-policy': 'volatile-ttl', save: '3600 1 300 100 60 10000' },
    users: {
      default: { ...PERMISSIONS.default!, enabled: false, password: 'none' },
      allixios_admin: { ...PERMISSIONS.allixios_admin!, enabled: true, password: 'set' },
      allixios_app: { ...PERMISSIONS.allixios_app!, enabled: true, password: 'set' },
    },
    normalised: Object.fromEntries(DESIRED.users.map((user) => [user.name, { rules: user.rules.join(' '), permissions: PERMISSIONS[user.name]! }])),
  };
}

const ALL_SUBJECTS = ['ACL user default', 'ACL user allixios_admin', 'ACL user allixios_app', 'config maxmemory-policy', 'config save'];

describe('the Redis plan', () => {
  it('changes nothing on a server that matches the files', () => {
    const plan = planRedis(DESIRED, observedInSync());
    expect(plan).toEqual({ engine: 'redis', changes: [], inSync: ALL_SUBJECTS, refusals: [] });
  });

  it('offline, stands for an engine just started from the files: nothing to change', () => {
    const plan = planRedis(DESIRED, null);
    expect(plan).toEqual({ engine: 'redis', changes: [], inSync: ALL_SUBJECTS, refusals: [] });
  });

  it('updates a config directive that differs, saying both values', () => {
    const observed = observedInSync();
    observed.config['maxmemory-policy'] = 'volatile-lru';
    observed.config.save = '';
    const plan = planRedis(DESIRED, observed);
    expect(plan.changes).toEqual([
      {
        subject: 'config maxmemory-policy',
        action: 'update',
        detail: 'volatile-lru on the server, volatile-ttl in config/redis.conf',
        source: CONF,
        payload: { kind: 'config-set', name: 'maxmemory-policy', value: 'volatile-ttl' },
      },
      {
        subject: 'config save',
        action: 'update',
        detail: '"" on the server, "3600 1 300 100 60 10000" in config/redis.conf',
        source: CONF,
        payload: { kind: 'config-set', name: 'save', value: '3600 1 300 100 60 10000' },
      },
    ]);
    expect(plan.inSync).toEqual(['ACL user default', 'ACL user allixios_admin', 'ACL user allixios_app']);
  });

  it('updates a user whose permissions differ, rebuilding them from the file without touching its password', () => {
    // Given allixios_app allowed FLUSHALL on the server
    const observed = observedInSync();
    observed.users.allixios_app!.commands = '+@all -@dangerous -function +flushall';
    // When planned
    const plan = planRedis(DESIRED, observed);
    // Then one update says what differs and rebuilds every permission from the file
    expect(plan.changes).toEqual([
      {
        subject: 'ACL user allixios_app',
        action: 'update',
        detail: 'commands: "+@all -@dangerous -function +flushall" on the server, "+@all -@dangerous -function" in config/users.acl',
        source: ACL,
        payload: {
          kind: 'acl-setuser',
          user: 'allixios_app',
          rules: ['resetkeys', 'resetchannels', 'clearselectors', '-@all', ...APP_RULES, 'on'],
          expected: { ...PERMISSIONS.allixios_app, enabled: true, password: 'set' },
          disconnect: false,
        },
      },
    ]);
    // And the rules neither reset the user (which drops its password) nor set a password
    const rules = (plan.changes[0]!.payload as { rules: string[] }).rules;
    expect(rules.filter((rule) => rule === 'reset' || rule === 'resetpass' || rule === 'nopass' || /^[#>]/.test(rule))).toEqual([]);
  });

  it('refuses a missing user, whose password only provisioning knows', () => {
    const observed = observedInSync();
    delete observed.users.allixios_app;
    const plan = planRedis(DESIRED, observed);
    expect(plan.refusals).toEqual([
      'ACL user allixios_app is missing; its password comes from provisioning (config/users.acl); redeploy the engine, or give the bootstrap REDIS_USERS_ACL',
    ]);
    expect(plan.changes).toEqual([]);
  });
});

describe('the Redis plan with the rendered ACL file: passwords compared', () => {
  const [ADMIN, APP, OTHER] = ['a', 'b', 'c'].map((seed) => createHash('sha256').update(seed).digest('hex')) as [string, string, string];
  const KNOWN: RedisDesired = {
    ...DESIRED,
    passwordsKnown: true,
    users: DESIRED.users.map((user) => ({ ...user, passwordHashes: user.name === 'allixios_admin' ? [ADMIN] : user.name === 'allixios_app' ? [APP] : [] })),
  };
  const observedKnown = () => {
    const observed = observedInSync();
    observed.users.default!.passwordHashes = [];
    observed.users.allixios_admin!.passwordHashes = [ADMIN];
    observed.users.allixios_app!.passwordHashes = [APP];
    return observed;
  };

  it("finds users with the file's passwords in sync", () => {
    expect(planRedis(KNOWN, observedKnown())).toEqual({ engine: 'redis', changes: [], inSync: ALL_SUBJECTS, refusals: [] });
  });

  it.each([
    ["another password than the file's", [OTHER], 'passwords: 1 on the server that config/users.acl does not give, 1 of config/users.acl missing on the server'],
    ["an extra password besides the file's (a backdoor)", [APP, OTHER].sort(), 'passwords: 1 on the server that config/users.acl does not give'],
  ])("sets exactly the file's password on a user with %s, and ends its sessions", (_case, hashes, detail) => {
    const observed = observedKnown();
    observed.users.allixios_app!.passwordHashes = hashes;
    const [change, ...others] = planRedis(KNOWN, observed).changes;
    expect(others).toEqual([]);
    expect(change).toMatchObject({ subject: 'ACL user allixios_app', action: 'update', detail, payload: { kind: 'acl-setuser', disconnect: true } });
    const rules = (change!.payload as { rules: string[] }).rules;
    expect(rules.slice(-2)).toEqual(['resetpass', `#${APP}`]);
    // No digest in what is shown
    expect(change!.detail).not.toContain(APP);
    expect(change!.detail).not.toContain(OTHER);
  });

  it('repairs a user that accepts any password (nopass) or lost its password, instead of refusing', () => {
    const observed = observedKnown();
    observed.users.allixios_app! = { ...observed.users.allixios_app!, password: 'nopass', passwordHashes: [] };
    observed.users.allixios_admin! = { ...observed.users.allixios_admin!, password: 'none', passwordHashes: [] };
    const plan = planRedis(KNOWN, observed);
    expect(plan.refusals).toEqual([]);
    expect(plan.changes.map(({ action, subject, payload }) => [action, subject, (payload as { disconnect: boolean }).disconnect])).toEqual([
      ['update', 'ACL user allixios_admin', false],
      ['update', 'ACL user allixios_app', true],
    ]);
  });

  it("creates a missing user with its rules and the file's password", () => {
    const observed = observedKnown();
    delete observed.users.allixios_app;
    const plan = planRedis(KNOWN, observed);
    expect(plan.refusals).toEqual([]);
    expect(plan.changes).toEqual([
      expect.objectContaining({
        subject: 'ACL user allixios_app',
        action: 'create',
        payload: expect.objectContaining({ rules: ['reset', 'resetchannels', ...APP_RULES, 'resetpass', `#${APP}`, 'on'] }),
      }),
    ]);
  });
});

describe('the Redis plan without the rendered ACL file', () => {
  it('refuses a user that lost its password or accepts any', () => {
    const observed = observedInSync();
    observed.users.allixios_app!.password = 'none';
    observed.users.allixios_admin!.password = 'nopass';
    expect(planRedis(DESIRED, observed).refusals).toEqual([
      'ACL user allixios_admin accepts any password (nopass) on the server; its password comes from provisioning (config/users.acl); redeploy the engine',
      'ACL user allixios_app has no password on the server, so nobody can log in as it; its password comes from provisioning (config/users.acl); redeploy the engine',
    ]);
  });
});

describe('the Redis plan: users nobody defined, the default user, unknown directives', () => {
  it('deletes a user the file does not define, first, describing what it may do', () => {
    const observed = observedInSync();
    observed.config['maxmemory-policy'] = 'allkeys-lru';
    observed.users.allixios_app!.keys = '~*';
    observed.users.intruder = { flags: [], commands: '+@all', keys: '~*', channels: '', selectors: [], enabled: true, password: 'set' };
    const plan = planRedis(DESIRED, observed);
    expect(plan.changes.map(({ action, subject }) => `${action} ${subject}`)).toEqual([
      'delete ACL user intruder',
      'update ACL user allixios_app',
      'update config maxmemory-policy',
    ]);
    expect(plan.changes[0]).toEqual({
      subject: 'ACL user intruder',
      action: 'delete',
      detail: 'not in config/users.acl; on the server: on, has a password, commands +@all, keys ~*, channels ""',
      source: ACL,
      payload: { kind: 'acl-deluser', user: 'intruder' },
    });
  });

  it('refuses to delete the user the bootstrap is connected as', () => {
    const observed = observedInSync();
    observed.self = 'ops';
    observed.users.ops = { flags: [], commands: '+@all', keys: '~*', channels: '&*', selectors: [], enabled: true, password: 'set' };
    const plan = planRedis(DESIRED, observed);
    expect(plan.changes).toEqual([]);
    expect(plan.refusals).toEqual([
      'the bootstrap is connected as ops, which config/users.acl does not define; deleting it would cut the bootstrap off: connect as the admin user of config/users.acl (REDIS_URL)',
    ]);
  });

  it('turns the default user off again, removes its password and closes its connections', () => {
    const observed = observedInSync();
    observed.users.default = { ...observed.users.default!, enabled: true, password: 'nopass', commands: '+@all', keys: '~*' };
    const [change, ...others] = planRedis(DESIRED, observed).changes;
    expect(others).toEqual([]);
    expect(change!.subject).toBe('ACL user default');
    expect(change!.detail).toBe(
      'status: on on the server, off in config/users.acl; password: nopass (any password is accepted) on the server, no password in config/users.acl; commands: +@all on the server, -@all in config/users.acl; keys: ~* on the server, "" in config/users.acl',
    );
    expect(change!.payload).toMatchObject({ kind: 'acl-setuser', user: 'default', disconnect: true });
    expect((change!.payload as { rules: string[] }).rules.slice(-2)).toEqual(['off', 'resetpass']);
  });

  it('turns the default user off even when the file does not mention it', () => {
    const desired: RedisDesired = { ...DESIRED, users: DESIRED.users.filter((user) => user.name !== 'default') };
    const observed = observedInSync();
    delete observed.normalised.default;
    observed.users.default!.enabled = true;
    const plan = planRedis(desired, observed);
    expect(plan.changes.map(({ subject, payload }) => [subject, payload])).toEqual([
      ['ACL user default', { kind: 'acl-setuser', user: 'default', rules: ['off'], expected: { ...observed.users.default, enabled: false }, disconnect: true }],
    ]);
    observed.users.default!.enabled = false;
    expect(planRedis(desired, observed).inSync).toContain('ACL user default');
  });

  it('refuses a directive the server does not know', () => {
    const observed = observedInSync();
    observed.config.save = null;
    expect(planRedis(DESIRED, observed).refusals).toEqual([
      `config save: the server does not know this directive (config/redis.conf, line 80); is it the Redis version the engine pins?`,
    ]);
  });

  it('fails loudly when the observed state was computed for other rules', () => {
    const observed = observedInSync();
    observed.normalised.allixios_app!.rules = '+@all';
    expect(() => planRedis(DESIRED, observed)).toThrow(/no normalised rules for ACL user allixios_app/);
  });
});
