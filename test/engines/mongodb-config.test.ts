/**
 * MongoDB's configuration files and initdb script. No MongoDB server can run on this machine
 * (ENGINES.md), so what mongod would check is checked here from MongoDB's documentation: every
 * option path of mongod.conf must be one the configuration-file reference documents, with a value
 * of the documented type; mongod refuses unknown options, so a typo here would stop the server.
 * The same holds for the options on mongod's command line (the cache size, and the TLS settings
 * of a TLS stack), each mapped to the setting it stands for. The initdb script and the certificate
 * reload's script are run in a JavaScript sandbox against a stand-in for mongosh's `db`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script, createContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { mongodb, TLS_DIRECTORY, TLS_RELOAD_COMMAND, tlsArgs, wiredTigerCacheSizeGB } from '../../databases/mongodb/index.ts';
import { ENVIRONMENTS, TLS_FILES, readEngineFile as readModuleFile, type EngineSpec, type Environment } from '../../databases/engine.ts';
import { readinessWithReload } from '../../stacks/kubernetes/tls.ts';
import {
  KEYFILE_MOUNT_PATH,
  KEYFILE_PATH,
  KEYFILE_SECRET,
  KEYFILE_SOURCE,
  MEMBER_MARKER_PATH,
  MEMBER_READY_SCRIPT,
  MEMBER_START,
  REPLICA_SET_NAME,
} from '../../databases/mongodb/replica-set.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';
import { describeWithDefaults } from '../support/engines.ts';

type ValueCheck = (value: unknown) => boolean;
const isBoolean: ValueCheck = (value) => typeof value === 'boolean';
const isInteger: ValueCheck = (value) => Number.isInteger(value);
const isNumber: ValueCheck = (value) => typeof value === 'number' && Number.isFinite(value);
const isString: ValueCheck = (value) => typeof value === 'string' && value !== '';
const oneOf =
  (...allowed: string[]): ValueCheck =>
  (value) =>
    typeof value === 'string' && allowed.includes(value);
const between =
  (min: number, max: number): ValueCheck =>
  (value) =>
    isNumber(value) && (value as number) >= min && (value as number) <= max;

/**
 * net.tls.disabledProtocols: "a comma separated list of protocols, but do not use spaces after the
 * commas" (a space stops the server), of TLS1_0, TLS1_1, TLS1_2 and TLS1_3; or `none`.
 */
const isProtocolList: ValueCheck = (value) =>
  value === 'none' || (typeof value === 'string' && value.split(',').every((protocol) => ['TLS1_0', 'TLS1_1', 'TLS1_2', 'TLS1_3'].includes(protocol)));

/**
 * mongod configuration-file options with their documented types and values, from
 * https://www.mongodb.com/docs/manual/reference/configuration-options/ (MongoDB 8.0). Not the
 * whole page: the core options a single mongod can use, and the `net.tls` options a TLS stack
 * sets ("net.tls Options"). Add an option here, with its type from that page, before using it in
 * mongod.conf or on the command line.
 */
const MONGOD_OPTIONS: Record<string, ValueCheck> = {
  'systemLog.verbosity': between(0, 5),
  'systemLog.quiet': isBoolean,
  'systemLog.traceAllExceptions': isBoolean,
  'systemLog.syslogFacility': isString,
  'systemLog.path': isString,
  'systemLog.logAppend': isBoolean,
  'systemLog.logRotate': oneOf('rename', 'reopen'),
  'systemLog.destination': oneOf('file', 'syslog'),
  'systemLog.timeStampFormat': oneOf('iso8601-utc', 'iso8601-local'),
  'systemLog.component.accessControl.verbosity': between(0, 5),
  'systemLog.component.command.verbosity': between(0, 5),
  'systemLog.component.query.verbosity': between(0, 5),
  'systemLog.component.storage.verbosity': between(0, 5),
  'systemLog.component.write.verbosity': between(0, 5),
  'processManagement.fork': isBoolean,
  'processManagement.pidFilePath': isString,
  'processManagement.timeZoneInfo': isString,
  'net.port': between(1, 65535),
  'net.bindIp': isString,
  'net.bindIpAll': isBoolean,
  'net.maxIncomingConnections': isInteger,
  'net.wireObjectCheck': isBoolean,
  'net.ipv6': isBoolean,
  'net.unixDomainSocket.enabled': isBoolean,
  'net.unixDomainSocket.pathPrefix': isString,
  'net.unixDomainSocket.filePermissions': isInteger,
  'net.compression.compressors': isString,
  'net.tls.mode': oneOf('disabled', 'allowTLS', 'preferTLS', 'requireTLS'),
  'net.tls.certificateKeyFile': isString,
  'net.tls.CAFile': isString,
  'net.tls.allowConnectionsWithoutCertificates': isBoolean,
  'net.tls.disabledProtocols': isProtocolList,
  'security.keyFile': isString,
  'security.clusterAuthMode': oneOf('keyFile', 'sendKeyFile', 'sendX509', 'x509'),
  'security.authorization': oneOf('enabled', 'disabled'),
  'security.transitionToAuth': isBoolean,
  'security.javascriptEnabled': isBoolean,
  'storage.dbPath': isString,
  'storage.journal.commitIntervalMs': between(1, 500),
  'storage.directoryPerDB': isBoolean,
  'storage.syncPeriodSecs': isNumber,
  'storage.engine': isString,
  'storage.wiredTiger.engineConfig.cacheSizeGB': isNumber,
  'storage.wiredTiger.engineConfig.journalCompressor': oneOf('none', 'snappy', 'zlib', 'zstd'),
  'storage.wiredTiger.engineConfig.directoryForIndexes': isBoolean,
  'storage.wiredTiger.engineConfig.zstdCompressionLevel': between(1, 22),
  'storage.wiredTiger.collectionConfig.blockCompressor': oneOf('none', 'snappy', 'zlib', 'zstd'),
  'storage.wiredTiger.indexConfig.prefixCompression': isBoolean,
  'storage.oplogMinRetentionHours': isNumber,
  'operationProfiling.mode': oneOf('off', 'slowOp', 'all'),
  'operationProfiling.slowOpThresholdMs': isInteger,
  'operationProfiling.slowOpSampleRate': between(0, 1),
  'operationProfiling.filter': isString,
  'replication.oplogSizeMB': isInteger,
  'replication.replSetName': isString,
};

/**
 * The mongod command-line options the engine passes, each with the configuration-file setting it
 * stands for (https://www.mongodb.com/docs/manual/reference/program/mongod/ and the mapping page,
 * https://www.mongodb.com/docs/manual/reference/configuration-file-settings-command-line-options-mapping/);
 * a `flag` takes no value and sets a boolean setting to true. `--config` names the file itself.
 */
const MONGOD_ARGUMENTS: Record<string, { setting: string; value: 'string' | 'number' | 'flag' }> = {
  '--wiredTigerCacheSizeGB': { setting: 'storage.wiredTiger.engineConfig.cacheSizeGB', value: 'number' },
  '--tlsMode': { setting: 'net.tls.mode', value: 'string' },
  '--tlsCertificateKeyFile': { setting: 'net.tls.certificateKeyFile', value: 'string' },
  '--tlsCAFile': { setting: 'net.tls.CAFile', value: 'string' },
  '--tlsAllowConnectionsWithoutCertificates': { setting: 'net.tls.allowConnectionsWithoutCertificates', value: 'flag' },
  '--tlsDisabledProtocols': { setting: 'net.tls.disabledProtocols', value: 'string' },
  // A replica set member's (databases/mongodb/replica-set.ts)
  '--replSet': { setting: 'replication.replSetName', value: 'string' },
  '--keyFile': { setting: 'security.keyFile', value: 'string' },
};

/**
 * The settings a mongod command line gives (after `mongod` and `--config <file>`), by their
 * configuration-file paths, and every argument this test does not know as a documented option.
 */
function argumentSettings(args: readonly string[]): { settings: Record<string, unknown>; unknown: string[] } {
  const settings: Record<string, unknown> = {};
  const unknown: string[] = [];
  const rest = [...args];
  if (rest.shift() !== 'mongod') unknown.push('(the command is not mongod)');
  while (rest.length > 0) {
    const argument = rest.shift()!;
    if (argument === '--config') {
      rest.shift();
      continue;
    }
    const option = MONGOD_ARGUMENTS[argument];
    if (!option) {
      unknown.push(argument);
      continue;
    }
    if (option.value === 'flag') settings[option.setting] = true;
    else {
      const value = rest.shift();
      settings[option.setting] = option.value === 'number' ? Number(value) : value;
    }
  }
  return { settings, unknown };
}

/** Every problem mongod would have with a command line; an empty list means it accepts it. */
function mongodArgumentErrors(args: readonly string[]): string[] {
  const { settings, unknown } = argumentSettings(args);
  return [
    ...unknown.map((argument) => `${argument}: not a mongod command-line option this test knows (add it from the mongod reference)`),
    ...mongodOptionErrors(nested(settings)),
  ];
}

/** `{ 'net.tls.mode': x }` as `{ net: { tls: { mode: x } } }`, the shape of mongod.conf. */
function nested(settings: Record<string, unknown>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [path, value] of Object.entries(settings)) {
    const keys = path.split('.');
    let node = root;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[keys.at(-1)!] = value;
  }
  return root;
}

/**
 * Server parameters allowed under setParameter, from
 * https://www.mongodb.com/docs/manual/reference/parameters/ (the configuration-file page shows
 * enableLocalhostAuthBypass as its setParameter example).
 */
const MONGOD_PARAMETERS: Record<string, ValueCheck> = {
  enableLocalhostAuthBypass: isBoolean,
};

/**
 * mongosh settings allowed in the global configuration file, from
 * https://www.mongodb.com/docs/mongodb-shell/reference/configure-shell-settings-global/
 */
const MONGOSH_SETTINGS: Record<string, ValueCheck> = {
  browser: (value) => isBoolean(value) || isString(value),
  disableLogging: isBoolean,
  disableSchemaSampling: isBoolean,
  displayBatchSize: isInteger,
  enableTelemetry: isBoolean,
  editor: isString,
  forceDisableTelemetry: isBoolean,
  historyLength: isInteger,
  inspectCompact: (value) => isInteger(value) || isBoolean(value),
  inspectDepth: isInteger,
  logCompressionEnabled: isBoolean,
  logMaxFileCount: isInteger,
  logRetentionDays: isInteger,
  redactHistory: oneOf('keep', 'remove', 'remove-redact'),
};

/** Dotted paths of the leaves of a YAML mapping (`setParameter` entries stay one level deep). */
function leaves(value: unknown, prefix = ''): [string, unknown][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => leaves(child, prefix ? `${prefix}.${key}` : key));
}

/** Every problem mongod would have with these options; an empty list means it accepts them all. */
function mongodOptionErrors(config: unknown): string[] {
  return leaves(config).flatMap(([path, value]) => {
    if (path.startsWith('setParameter.')) {
      const parameter = path.slice('setParameter.'.length);
      const check = MONGOD_PARAMETERS[parameter];
      if (!check) return [`${path}: not a server parameter this test knows (add it from the parameters reference)`];
      return check(value) ? [] : [`${path}: unexpected value ${JSON.stringify(value)}`];
    }
    const check = MONGOD_OPTIONS[path];
    if (!check) return [`${path}: not a documented mongod configuration-file option`];
    return check(value) ? [] : [`${path}: unexpected value ${JSON.stringify(value)}`];
  });
}

function readEngineFile(source: string): string {
  return readFileSync(join(mongodb.directory, source), 'utf8');
}

/** YAML as mongod reads it: a syntax error or a duplicate key throws. */
function parseYaml(text: string, source: string): unknown {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) throw new Error(`${source}: ${document.errors.map((error) => error.message).join('; ')}`);
  return document.toJS();
}

function describeFor(environment: Environment, memoryLimit?: string): EngineSpec {
  return describeWithDefaults(mongodb, environment, memoryLimit ? { memoryLimit } : {});
}

describe('the option checker itself', () => {
  it('refuses a misspelled option, an undocumented parameter and a value of the wrong type', () => {
    const errors = mongodOptionErrors(parse('net:\n  bindIPAll: true\nsetParameter:\n  enableLocalhostBypass: false\nsecurity:\n  authorization: on\n'));
    expect(errors).toEqual([
      'net.bindIPAll: not a documented mongod configuration-file option',
      'setParameter.enableLocalhostBypass: not a server parameter this test knows (add it from the parameters reference)',
      'security.authorization: unexpected value "on"',
    ]);
  });

  it('refuses an undocumented command-line option, a TLS mode of the old ssl names and a protocol list with a space', () => {
    const errors = mongodArgumentErrors([
      'mongod',
      '--config',
      '/etc/mongo/mongod.conf',
      '--tlsMode',
      'requireSSL',
      '--tlsAllowConnectionWithoutCertificates',
      '--tlsDisabledProtocols',
      'TLS1_0, TLS1_1',
    ]);
    expect(errors).toEqual([
      '--tlsAllowConnectionWithoutCertificates: not a mongod command-line option this test knows (add it from the mongod reference)',
      'net.tls.mode: unexpected value "requireSSL"',
      'net.tls.disabledProtocols: unexpected value "TLS1_0, TLS1_1"',
    ]);
  });

  it('refuses malformed YAML and duplicate keys', () => {
    expect(() => parseYaml('net:\n  port: 27017\n   bindIpAll: true\n', 'bad.conf')).toThrow(/bad\.conf/);
    expect(() => parseYaml('net:\n  port: 1\n  port: 2\n', 'dup.conf')).toThrow(/dup\.conf/);
  });
});

describe('config/mongod.conf', () => {
  const config = parseYaml(readEngineFile('config/mongod.conf'), 'config/mongod.conf') as Record<string, Record<string, unknown>>;

  it('uses only documented mongod options, each with a documented value', () => {
    expect(mongodOptionErrors(config)).toEqual([]);
  });

  it('turns authorization on, listens on every interface and keeps the data in the volume', () => {
    expect(config.security).toMatchObject({ authorization: 'enabled', javascriptEnabled: false });
    expect(config.net).toEqual({ port: 27017, bindIpAll: true });
    expect(config.storage).toEqual({ dbPath: describeFor('dev').dataPath });
    expect(config.operationProfiling).toEqual({ mode: 'off', slowOpThresholdMs: 100 });
    expect(config.setParameter).toEqual({ enableLocalhostAuthBypass: false });
  });

  it('logs to standard output and leaves the cache size to the command line', () => {
    const paths = leaves(config).map(([path]) => path);
    expect(paths).not.toContain('systemLog.destination');
    expect(paths).not.toContain('systemLog.path');
    expect(paths.filter((path) => path.startsWith('storage.wiredTiger'))).toEqual([]);
  });
});

describe('config/mongosh.conf', () => {
  it('sets only documented mongosh options, under the mongosh namespace', () => {
    const config = parseYaml(readEngineFile('config/mongosh.conf'), 'config/mongosh.conf') as Record<string, Record<string, unknown>>;
    expect(Object.keys(config)).toEqual(['mongosh']);
    const errors = Object.entries(config.mongosh!).flatMap(([name, value]) =>
      MONGOSH_SETTINGS[name]?.(value) ? [] : [`mongosh.${name}: undocumented setting or unexpected value ${JSON.stringify(value)}`],
    );
    expect(errors).toEqual([]);
    expect(config.mongosh).toEqual({ disableLogging: true, forceDisableTelemetry: true });
  });
});

describe('initdb/10-app-user.js', () => {
  const source = readEngineFile('initdb/10-app-user.js');
  const passwords = {
    MONGO_INITDB_APP_PASSWORD: 'app-test-password',
    MONGO_INITDB_READONLY_PASSWORD: 'readonly-test-password',
    MONGO_INITDB_BACKUP_PASSWORD: 'backup-test-password',
  };

  /** A stand-in for the `db` mongosh gives the script, recording what it is asked to do. */
  function runScript(env: Record<string, string>, existingUsers: string[] = []) {
    const calls: { method: string; database: string; args: unknown[] }[] = [];
    const database = (name: string) => ({
      getSiblingDB: (other: string) => database(other),
      getUser: (user: string) => (name === 'admin' && existingUsers.includes(user) ? { user } : null),
      createUser: (...args: unknown[]) => calls.push({ method: 'createUser', database: name, args }),
      updateUser: (...args: unknown[]) => calls.push({ method: 'updateUser', database: name, args }),
    });
    const printed: string[] = [];
    // The entrypoint passes MONGO_INITDB_DATABASE (default "test") as the shell's database.
    const context = createContext({ db: database('test'), process: { env }, print: (line: string) => printed.push(line) });
    new Script(source, { filename: '10-app-user.js' }).runInContext(context);
    return { calls, printed };
  }

  it('is valid JavaScript', () => {
    expect(() => new Script(source, { filename: '10-app-user.js' })).not.toThrow();
  });

  it('reads only password variables the engine sets from its secrets', () => {
    // Given an environment that records every variable the script reads
    const read = new Set<string>();
    const recordingEnv = new Proxy(passwords as Record<string, string>, {
      get: (target, name) => {
        if (typeof name === 'string') read.add(name);
        return target[name as string];
      },
    });
    // When the script runs
    runScript(recordingEnv);
    // Then it read the three password variables, and the engine sets them from its secrets
    const { env } = describeFor('dev');
    expect([...read].sort()).toEqual(['MONGO_INITDB_APP_PASSWORD', 'MONGO_INITDB_BACKUP_PASSWORD', 'MONGO_INITDB_READONLY_PASSWORD']);
    expect([...read].sort().map((name) => env[name])).toEqual([{ secret: 'app-password' }, { secret: 'backup-password' }, { secret: 'readonly-password' }]);
  });

  it('creates allixios_app (readWrite) and allixios_readonly (read) with roles on allixios only, and allixios_backup with the backup role alone', () => {
    // Given every password set; when the script runs on a fresh database
    const { calls } = runScript(passwords);
    // Then the users are created in admin, SCRAM-SHA-256 only
    expect(calls).toEqual([
      {
        method: 'createUser',
        database: 'admin',
        args: [{ user: 'allixios_app', pwd: 'app-test-password', roles: [{ role: 'readWrite', db: 'allixios' }], mechanisms: ['SCRAM-SHA-256'] }],
      },
      {
        method: 'createUser',
        database: 'admin',
        args: [{ user: 'allixios_readonly', pwd: 'readonly-test-password', roles: [{ role: 'read', db: 'allixios' }], mechanisms: ['SCRAM-SHA-256'] }],
      },
      {
        method: 'createUser',
        database: 'admin',
        args: [{ user: 'allixios_backup', pwd: 'backup-test-password', roles: [{ role: 'backup', db: 'admin' }], mechanisms: ['SCRAM-SHA-256'] }],
      },
    ]);
  });

  it('fails naming the variable and touches no user when a password is missing', () => {
    let calls: unknown[] = [];
    expect(() => {
      calls = runScript({ MONGO_INITDB_APP_PASSWORD: 'app-test-password', MONGO_INITDB_BACKUP_PASSWORD: 'backup-test-password' }).calls;
    }).toThrow(/MONGO_INITDB_READONLY_PASSWORD \(the password of allixios_readonly\) is missing or empty/);
    expect(calls).toEqual([]);
  });

  it('run again, updates the existing users instead of failing (password rotation)', () => {
    const { calls } = runScript(passwords, ['allixios_app', 'allixios_readonly', 'allixios_backup']);
    expect(calls.map((call) => [call.method, call.args[0] as string])).toEqual([
      ['updateUser', 'allixios_app'],
      ['updateUser', 'allixios_readonly'],
      ['updateUser', 'allixios_backup'],
    ]);
  });
});

describe("mongod's command line", () => {
  it('uses only documented options, each with a documented value, with TLS and without', () => {
    for (const environment of ENVIRONMENTS) {
      for (const tls of [false, true]) {
        expect(mongodArgumentErrors(describeWithDefaults(mongodb, environment, { tls }).args ?? []), `${environment}, TLS ${tls}`).toEqual([]);
      }
    }
  });

  it('serves TLS only on a TLS stack: required, TLS 1.2 and later, clients without certificates, the combined PEM and the CA from the TLS directory', () => {
    const { settings } = argumentSettings(describeWithDefaults(mongodb, 'prod', { tls: true }).args ?? []);
    expect(Object.fromEntries(Object.entries(settings).filter(([path]) => path.startsWith('net.tls.')))).toEqual({
      'net.tls.mode': 'requireTLS',
      'net.tls.certificateKeyFile': `${TLS_DIRECTORY}/tls-combined.pem`,
      'net.tls.CAFile': `${TLS_DIRECTORY}/ca.crt`,
      'net.tls.allowConnectionsWithoutCertificates': true,
      'net.tls.disabledProtocols': 'TLS1_0,TLS1_1',
    });
    // The file the engine reads is the one both targets write: cert-manager's CombinedPEM key, Docker's upload
    expect(TLS_FILES.combinedPem).toBe('tls-combined.pem');
    expect(describeWithDefaults(mongodb, 'prod', { tls: true }).tls).toEqual({ directory: TLS_DIRECTORY, reload: { command: TLS_RELOAD_COMMAND }, combinedPem: true });
  });

  it('stays exactly as it was without TLS: no TLS option, no TLS settings, no reload password', () => {
    const plain = describeWithDefaults(mongodb, 'prod');
    expect(plain.args).toEqual(['mongod', '--config', '/etc/mongo/mongod.conf', '--wiredTigerCacheSizeGB', '3.5']);
    expect(plain.tls).toBeUndefined();
    expect(plain.secretFiles.map((file) => file.source)).toEqual(['bootstrap/user-passwords.json']);
    expect(Object.keys(plain.env)).not.toContain('MONGODB_ROOT_PASSWORD_FILE');
    expect(plain.healthCheck.command).toEqual([
      'mongosh',
      '--quiet',
      '--norc',
      'mongodb://127.0.0.1:27017/admin?directConnection=true&serverSelectionTimeoutMS=3000',
      '--eval',
      "quit(db.adminCommand('ping').ok === 1 ? 0 : 1)",
    ]);
    // With TLS the TLS options come last, after everything the plain command line has
    const tls = describeWithDefaults(mongodb, 'prod', { tls: true });
    expect(tls.args).toEqual([...plain.args!, ...tlsArgs()]);
  });
});

describe('the health check and the certificate reload on a TLS stack', () => {
  const spec = describeWithDefaults(mongodb, 'prod', { tls: true });
  const caFile = `${TLS_DIRECTORY}/ca.crt`;

  it('pings over TLS, verifying the server with the mounted CA under the name the certificates carry', () => {
    const command = spec.healthCheck.command;
    expect(command.slice(0, 6)).toEqual(['mongosh', '--quiet', '--norc', '--tls', '--tlsCAFile', caFile]);
    expect(new URL(command[6]!).hostname).toBe('localhost');
    expect(command.slice(-2)).toEqual(['--eval', "quit(db.adminCommand('ping').ok === 1 ? 0 : 1)"]);
    // Nothing turns the verification off
    expect(command.join(' ')).not.toMatch(/tlsAllowInvalid|tlsInsecure/);
  });

  it('rotates the certificates over TLS as root, with no password on the command line or in the environment', () => {
    const command = spec.tls?.reload?.command ?? [];
    expect(command.slice(0, 6)).toEqual(['mongosh', '--quiet', '--norc', '--tls', '--tlsCAFile', caFile]);
    expect(command.join(' ')).toContain('rotateCertificates: 1');
    expect(command.join(' ')).not.toMatch(/--password|-p |--username|-u |root-password|tlsAllowInvalid|tlsInsecure/);
    expect(command.every((word) => !word.startsWith('mongodb://') || !word.includes('@'))).toBe(true);
    // The password file is a secret file mounted on TLS stacks only, named by a variable that holds its path, not the password
    const file = spec.secretFiles.find((candidate) => candidate.source === 'config/root-password');
    expect(file?.mountPath).toBe(spec.env.MONGODB_ROOT_PASSWORD_FILE);
    expect(typeof spec.env.MONGODB_ROOT_PASSWORD_FILE).toBe('string');
    expect(readModuleFile(mongodb, 'config/root-password')).toBe('{{ value "root-password" }}\n');
  });

  const reload = spec.tls?.reload?.command ?? [];
  const passwordFile = spec.secretFiles.find((candidate) => candidate.source === 'config/root-password')!;

  /** The reload's script in a sandbox, against stand-ins for mongosh's `fs`, `process` and `db`. */
  function runReload(options: { contents: string; ok?: number; refuseLogin?: boolean }) {
    const calls: unknown[][] = [];
    const exits: number[] = [];
    const database = {
      getSiblingDB: (name: string) => ({
        auth: (user: string, password: string) => {
          calls.push(['auth', name, user, password]);
          if (options.refuseLogin) throw new Error('MongoServerError: Authentication failed.');
          return { ok: 1 };
        },
      }),
      adminCommand: (command: unknown) => {
        calls.push(['adminCommand', command]);
        return { ok: options.ok ?? 1 };
      },
    };
    const files: Record<string, string> = { [passwordFile.mountPath!]: options.contents };
    const context = createContext({
      db: database,
      process: { env: { MONGODB_ROOT_PASSWORD_FILE: spec.env.MONGODB_ROOT_PASSWORD_FILE } },
      fs: {
        readFileSync: (path: string, encoding: string) => {
          calls.push(['readFileSync', path, encoding]);
          if (!(path in files)) throw new Error(`ENOENT: ${path}`);
          return files[path];
        },
      },
      quit: (code: number) => exits.push(code),
    });
    new Script(reload.at(-1)!, { filename: 'reload.js' }).runInContext(context);
    return { calls, exits };
  }

  it("reads root's password from the mounted file (its newline is not part of it), logs in as root and rotates", () => {
    const { calls, exits } = runReload({ contents: 'pa55-word\n' });
    expect(calls).toEqual([
      ['readFileSync', '/etc/mongo/secrets/root-password', 'utf8'],
      ['auth', 'admin', 'root', 'pa55-word'],
      ['adminCommand', { rotateCertificates: 1, message: 'allixios: the mounted certificate changed' }],
    ]);
    expect(exits).toEqual([0]);
  });

  it('fails when the rotation fails or the login is refused, so the readiness check tries again', () => {
    expect(runReload({ contents: 'pa55-word\n', ok: 0 }).exits).toEqual([1]);
    expect(() => runReload({ contents: 'wrong\n', refuseLogin: true })).toThrow(/Authentication failed/);
  });

  it('reaches mongosh through the readiness wrapper word for word, and the password never shows in its arguments or environment', () => {
    // Given a pod's files: a certificate, root's password file, and a mongosh that records how it was started
    const directory = mkdtempSync(join(tmpdir(), 'allixios-mongodb-reload-'));
    const password = 'Pa55-w0rd-that-must-not-leak';
    const passwordPath = join(directory, 'root-password');
    writeFileSync(passwordPath, `${password}\n`);
    writeFileSync(join(directory, 'tls.crt'), 'renewed certificate');
    const bin = join(directory, 'bin');
    fs.mkdirSync(bin);
    writeFileSync(join(bin, 'mongosh'), `#!/bin/sh\nprintf '%s\\0' "$@" > "${directory}/argv-$$"\nenv > "${directory}/env-$$"\n`);
    chmodSync(join(bin, 'mongosh'), 0o755);
    // When the kubelet runs the readiness probe (with the pod's environment, the file path in it)
    const [program, ...args] = readinessWithReload(spec.healthCheck.command, { directory, reload: { command: reload } }, directory);
    const run = spawnSync(program!, args, { env: { PATH: `${bin}:${process.env.PATH}`, MONGODB_ROOT_PASSWORD_FILE: passwordPath } });
    expect(run.status).toBe(0);
    // Then mongosh ran twice, the reload with exactly its words, then the health check
    const started = readdirSync(directory)
      .filter((name) => name.startsWith('argv-'))
      .map((name) => ({ argv: readFileSync(join(directory, name), 'utf8').split('\0').slice(0, -1), env: readFileSync(join(directory, name.replace('argv', 'env')), 'utf8') }));
    const byScript = (a: string[], b: string[]) => a.at(-1)!.localeCompare(b.at(-1)!);
    expect(started.map(({ argv }) => argv).sort(byScript)).toEqual([reload.slice(1), spec.healthCheck.command.slice(1)].sort(byScript));
    for (const { argv, env } of started) {
      expect(argv.join(' ')).not.toContain(password);
      expect(env).not.toContain(password);
    }
    // And the script mongosh got, run with that environment, logs in with the file's password
    const logins: string[] = [];
    const reloadRun = started.find(({ argv }) => argv.join(' ').includes('rotateCertificates'))!;
    const env = Object.fromEntries(
      reloadRun.env
        .split('\n')
        .filter(Boolean)
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const context = createContext({
      fs,
      process: { env },
      db: { getSiblingDB: () => ({ auth: (_user: string, given: string) => logins.push(given) }), adminCommand: () => ({ ok: 1 }) },
      quit: () => undefined,
    });
    new Script(reloadRun.argv.at(-1)!).runInContext(context);
    expect(logins).toEqual([password]);
  });
});

describe('the engine description', () => {
  it('starts mongod with the mounted config file and a cache sized from the memory limit', () => {
    const spec = describeFor('dev');
    const conf = spec.configFiles.find((file) => file.source === 'config/mongod.conf');
    expect(spec.args).toEqual(['mongod', '--config', conf?.mountPath, '--wiredTigerCacheSizeGB', '0.25']);
    expect(describeFor('staging').args?.at(-1)).toBe('0.5');
    expect(describeFor('prod').args?.at(-1)).toBe('3.5');
  });

  it("sizes the WiredTiger cache by MongoDB's rule: 50% of (RAM - 1 GB), at least 0.25 GB", () => {
    expect(wiredTigerCacheSizeGB('512Mi')).toBe('0.25');
    expect(wiredTigerCacheSizeGB('1Gi')).toBe('0.25');
    expect(wiredTigerCacheSizeGB('1536Mi')).toBe('0.25');
    expect(wiredTigerCacheSizeGB('3Gi')).toBe('1');
    expect(wiredTigerCacheSizeGB('10Gi')).toBe('4.5');
    expect(wiredTigerCacheSizeGB('5000M')).toBe('1.82');
  });

  it('refuses a memory limit below what MongoDB needs', () => {
    expect(() => describeFor('dev', '256Mi')).toThrow('resources.limits.memory: expected at least 512Mi (the WiredTiger cache alone takes 256 MB), got "256Mi"');
  });

  it('creates root from a secret and mounts the init script where the entrypoint runs it', () => {
    for (const environment of ENVIRONMENTS) {
      const spec = describeFor(environment);
      expect(spec.env).toEqual({
        MONGO_INITDB_ROOT_USERNAME: 'root',
        MONGO_INITDB_ROOT_PASSWORD: { secret: 'root-password' },
        MONGO_INITDB_APP_PASSWORD: { secret: 'app-password' },
        MONGO_INITDB_READONLY_PASSWORD: { secret: 'readonly-password' },
        MONGO_INITDB_BACKUP_PASSWORD: { secret: 'backup-password' },
      });
      expect(spec.secrets.map((secret) => secret.key).sort()).toEqual(['app-password', 'backup-password', 'readonly-password', 'replica-set-keyfile', 'root-password']);
    }
    const spec = describeFor('dev');
    expect(spec.configFiles.map((file) => file.mountPath)).toEqual(['/etc/mongo/mongod.conf', '/etc/mongosh.conf', '/docker-entrypoint-initdb.d/10-app-user.js']);
    for (const file of spec.configFiles) readEngineFile(file.source);
  });

  it('runs as mongodb on a read-only root filesystem and connects through the admin database', () => {
    const spec = describeFor('prod');
    expect(spec).toMatchObject({
      runAs: { user: 999, group: 999 },
      readOnlyRootFilesystem: true,
      scratchPaths: ['/tmp', '/data/configdb'],
      component: 'document-store',
      appConnection: { scheme: 'mongodb', username: 'allixios_app', passwordSecret: 'app-password', path: '/allixios', query: 'authSource=admin&w=majority' },
      adminConnection: { scheme: 'mongodb', username: 'root', passwordSecret: 'root-password', query: 'authSource=admin&w=majority' },
    });
    expect(mongodb.urlVariable).toBe('MONGODB_URL');
    expect(spec.healthCheck.command.slice(0, 3)).toEqual(['mongosh', '--quiet', '--norc']);
    expect(spec.healthCheck.command.at(-1)).toMatch(/^quit\(db\.adminCommand\('ping'\)\.ok === 1 \? 0 : 1\)$/);
    expect(() => mongodb.optionsSchema.parse({ cacheSizeGB: 1 })).toThrow();
  });
});

describe('a replica set member (Kubernetes)', () => {
  it("runs mongod with the single server's arguments and the set's, each a documented option, with TLS and without", () => {
    for (const environment of ENVIRONMENTS) {
      for (const tls of [false, true]) {
        const spec = describeWithDefaults(mongodb, environment, { tls });
        const ha = spec.highAvailability!;
        expect(mongodArgumentErrors(ha.args ?? []), `${environment}, TLS ${tls}`).toEqual([]);
        expect(ha.args, `${environment}, TLS ${tls}`).toEqual([...spec.args!, '--replSet', REPLICA_SET_NAME, '--keyFile', KEYFILE_PATH]);
      }
    }
    const { settings } = argumentSettings(describeWithDefaults(mongodb, 'prod', { tls: true }).highAvailability!.args!);
    expect(settings['replication.replSetName']).toBe('rs0');
    expect(settings['security.keyFile']).toBe(KEYFILE_PATH);
    // Internal authentication is the key file's: clusterAuthMode is left at its documented default (keyFile), not x509
    expect(settings['security.clusterAuthMode']).toBeUndefined();
    // Members listen on every interface already, from the config file
    const config = parseYaml(readEngineFile('config/mongod.conf'), 'config/mongod.conf') as Record<string, Record<string, unknown>>;
    expect(config.net!.bindIpAll).toBe(true);
    expect(config.replication).toBeUndefined();
  });

  it('keeps the replica set out of the single server: Docker runs the plain mongod, with its own health check', () => {
    const spec = describeWithDefaults(mongodb, 'dev');
    expect(spec.args).not.toContain('--replSet');
    expect(spec.command).toBeUndefined();
    expect(spec.secretFiles.map((file) => file.source)).not.toContain(KEYFILE_SOURCE);
    expect(spec.healthCheck.liveCommand).toBeUndefined();
  });

  it('renders the key file from the generated secret, and mongod reads only base64 characters from it', () => {
    expect(readModuleFile(mongodb, KEYFILE_SOURCE)).toBe('{{ value "replica-set-keyfile" }}\n');
    const rendered = renderSecretFile(readModuleFile(mongodb, KEYFILE_SOURCE), { 'replica-set-keyfile': 'Abc123xyz456' });
    expect(rendered).toBe('Abc123xyz456\n');
    // Generated like every password: 32 letters and digits, within the alphabet and length a key file allows
    expect(KEYFILE_SECRET.format!.pattern.test('a'.repeat(32))).toBe(true);
    expect(KEYFILE_SECRET.format!.pattern.test('short')).toBe(false);
    expect(KEYFILE_SECRET.format!.pattern.test('has-a-dash-in-it')).toBe(false);
    expect(KEYFILE_SECRET.format!.pattern.test('x'.repeat(1025))).toBe(false);
    const spec = describeWithDefaults(mongodb, 'prod');
    expect(spec.highAvailability!.secretFiles).toEqual([{ source: KEYFILE_SOURCE, mountPath: KEYFILE_MOUNT_PATH }]);
  });

  describe("the member's start (a real sh)", () => {
    /** Runs the start with its paths moved into a directory of the test's, and a docker-entrypoint.sh that reports what it got. */
    function start(directory: string, args: string[]) {
      const mounted = join(directory, 'secrets', 'replica-set-keyfile');
      const copy = join(directory, 'shm', 'allixios-mongodb', 'keyfile');
      const script = MEMBER_START.replace(`'${KEYFILE_MOUNT_PATH}'`, `'${mounted}'`).replace(`'${KEYFILE_PATH}'`, `'${copy}'`);
      expect(script).not.toBe(MEMBER_START);
      const entrypoint = join(directory, 'bin', 'docker-entrypoint.sh');
      writeFileSync(entrypoint, `#!/bin/sh\nprintf '%s\\n' "$@"\nstat -c '%a %u' '${copy}'\ncat '${copy}'\n`);
      chmodSync(entrypoint, 0o755);
      return spawnSync('sh', ['-c', script, 'mongodb-member', ...args], { encoding: 'utf8', env: { PATH: `${join(directory, 'bin')}:${process.env.PATH}` } });
    }

    function workspace(): string {
      const directory = mkdtempSync(join(tmpdir(), 'mongodb-member-'));
      for (const sub of ['secrets', 'shm', 'bin']) fs.mkdirSync(join(directory, sub));
      // As the kubelet mounts it: readable by the group (fsGroup), 0440, which mongod refuses for a key file
      writeFileSync(join(directory, 'secrets', 'replica-set-keyfile'), 'Abc123xyz456\n', { mode: 0o440 });
      return directory;
    }

    it('copies the key to mode 0400, owned by the user it runs as, and hands the arguments to the entrypoint intact', () => {
      const directory = workspace();
      const result = start(directory, ['mongod', '--config', '/etc/mongo/mongod.conf', '--replSet', 'rs0', 'an argument with spaces']);
      expect(result.status, result.stderr).toBe(0);
      const lines = result.stdout.trimEnd().split('\n');
      expect(lines.slice(0, 6)).toEqual(['mongod', '--config', '/etc/mongo/mongod.conf', '--replSet', 'rs0', 'an argument with spaces']);
      expect(lines[6]).toBe(`400 ${process.getuid!()}`);
      expect(lines[7]).toBe('Abc123xyz456');
      // The directory is the user's alone
      expect((fs.statSync(join(directory, 'shm', 'allixios-mongodb')).mode & 0o777).toString(8)).toBe('700');
    });

    it('starts again after a container restart, over the 0400 copy the previous start left in /dev/shm', () => {
      const directory = workspace();
      expect(start(directory, ['mongod']).status).toBe(0);
      writeFileSync(join(directory, 'secrets', 'replica-set-keyfile'), 'NewKey789\n', { mode: 0o440 });
      const again = start(directory, ['mongod']);
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout.trimEnd().split('\n').at(-1)).toBe('NewKey789');
    });

    it('fails, and starts nothing, without the mounted key', () => {
      const directory = workspace();
      fs.rmSync(join(directory, 'secrets', 'replica-set-keyfile'));
      const result = start(directory, ['mongod']);
      expect(result.status).not.toBe(0);
      expect(result.stdout).not.toContain('mongod');
    });
  });

  describe("the member's readiness check (its script in a sandbox, against what hello says)", () => {
    const PRIMARY = { setName: 'rs0', isWritablePrimary: true, secondary: false, ok: 1 };
    const SECONDARY = { setName: 'rs0', isWritablePrimary: false, secondary: true, ok: 1 };
    const INITIAL_SYNC = { setName: 'rs0', isWritablePrimary: false, secondary: false, ok: 1 };
    const NO_CONFIG = { isWritablePrimary: false, secondary: false, info: 'Does not have a valid replica set config', isreplicaset: true, ok: 1 };
    const REMOVED = { ...NO_CONFIG, setName: 'rs0' };
    // The image's first-start mongod: no --replSet
    const SINGLE_SERVER = { isWritablePrimary: true, ok: 1 };

    function check(hello: Record<string, unknown>, files: Record<string, string> = {}) {
      const exits: number[] = [];
      const context = createContext({
        db: { adminCommand: (command: Record<string, unknown>) => (command.hello === 1 ? hello : { ok: 0 }) },
        fs: {
          existsSync: (path: string) => path in files,
          writeFileSync: (path: string, content: string) => {
            files[path] = content;
          },
        },
        quit: (code: number) => exits.push(code),
      });
      new Script(MEMBER_READY_SCRIPT, { filename: 'ready.js' }).runInContext(context);
      return { exit: exits[0], files };
    }

    it('is ready as primary or secondary, and marks the volume as a member', () => {
      for (const hello of [PRIMARY, SECONDARY]) {
        const { exit, files } = check(hello);
        expect(exit).toBe(0);
        expect(files).toEqual({ [MEMBER_MARKER_PATH]: 'rs0\n' });
      }
    });

    it('is not ready in initial sync, recovering or removed: alive (the ping), not serving', () => {
      expect(check(INITIAL_SYNC).exit).toBe(1);
      expect(check(REMOVED, { [MEMBER_MARKER_PATH]: 'rs0\n' }).exit).toBe(1);
    });

    it('is ready while it waits to be made a member (a fresh volume, no configuration): the StatefulSet starts the next member, and the bootstrap initiates the set once all run', () => {
      const { exit, files } = check(NO_CONFIG);
      expect(exit).toBe(0);
      expect(files).toEqual({});
    });

    it('is not ready when a member that has had a configuration restarts and has not loaded it yet (no configuration reported, but the marker)', () => {
      expect(check(NO_CONFIG, { [MEMBER_MARKER_PATH]: 'rs0\n' }).exit).toBe(1);
    });

    it("is not ready while the image's first-start mongod (no --replSet) runs", () => {
      expect(check(SINGLE_SERVER).exit).toBe(1);
    });

    it('fails when mongosh cannot ask (the command throws): not ready', () => {
      const context = createContext({
        db: {
          adminCommand: () => {
            throw new Error('MongoNetworkError: connect ECONNREFUSED');
          },
        },
        fs: { existsSync: () => false, writeFileSync: () => undefined },
        quit: () => undefined,
      });
      expect(() => new Script(MEMBER_READY_SCRIPT).runInContext(context)).toThrow(/ECONNREFUSED/);
    });

    it('keeps its marker on the data volume, which the configuration lives and dies with', () => {
      expect(MEMBER_MARKER_PATH.startsWith(`${describeWithDefaults(mongodb, 'prod').dataPath}/`)).toBe(true);
    });
  });
});
