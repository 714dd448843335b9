/**
 * MongoDB's configuration files and initdb script. No MongoDB server can run on this machine
 * (ENGINES.md), so what mongod would check is checked here from MongoDB's documentation: every
 * option path of mongod.conf must be one the configuration-file reference documents, with a value
 * of the documented type; mongod refuses unknown options, so a typo here would stop the server.
 * The initdb script is run in a JavaScript sandbox against a stand-in for mongosh's `db`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script, createContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { mongodb, wiredTigerCacheSizeGB } from '../../databases/mongodb/index.ts';
import { ENVIRONMENTS, type EngineSpec, type Environment } from '../../databases/engine.ts';
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
 * mongod configuration-file options with their documented types and values, from
 * https://www.mongodb.com/docs/manual/reference/configuration-options/ (MongoDB 8.0). Not the
 * whole page: the core options a single mongod can use. Add an option here, with its type from
 * that page, before using it in mongod.conf.
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
  const passwords = { MONGO_INITDB_APP_PASSWORD: 'app-test-password', MONGO_INITDB_READONLY_PASSWORD: 'readonly-test-password' };

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
    // Then it read the two password variables, and the engine sets both from its secrets
    const { env } = describeFor('dev');
    expect([...read].sort()).toEqual(['MONGO_INITDB_APP_PASSWORD', 'MONGO_INITDB_READONLY_PASSWORD']);
    expect([...read].sort().map((name) => env[name])).toEqual([{ secret: 'app-password' }, { secret: 'readonly-password' }]);
  });

  it('creates allixios_app (readWrite) and allixios_readonly (read) in admin, with roles on allixios only', () => {
    // Given both passwords set; when the script runs on a fresh database
    const { calls } = runScript(passwords);
    // Then both users are created in admin, SCRAM-SHA-256 only
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
    ]);
  });

  it('fails naming the variable and touches no user when a password is missing', () => {
    let calls: unknown[] = [];
    expect(() => {
      calls = runScript({ MONGO_INITDB_APP_PASSWORD: 'app-test-password' }).calls;
    }).toThrow(/MONGO_INITDB_READONLY_PASSWORD \(the password of allixios_readonly\) is missing or empty/);
    expect(calls).toEqual([]);
  });

  it('run again, updates the existing users instead of failing (password rotation)', () => {
    const { calls } = runScript(passwords, ['allixios_app', 'allixios_readonly']);
    expect(calls.map((call) => [call.method, call.args[0] as string])).toEqual([
      ['updateUser', 'allixios_app'],
      ['updateUser', 'allixios_readonly'],
    ]);
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
      });
      expect(spec.secrets.map((secret) => secret.key).sort()).toEqual(['app-password', 'readonly-password', 'root-password']);
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
      appConnection: { scheme: 'mongodb', username: 'allixios_app', passwordSecret: 'app-password', path: '/allixios', query: 'authSource=admin' },
      adminConnection: { scheme: 'mongodb', username: 'root', passwordSecret: 'root-password', query: 'authSource=admin' },
    });
    expect(mongodb.urlVariable).toBe('MONGODB_URL');
    expect(spec.healthCheck.command.slice(0, 3)).toEqual(['mongosh', '--quiet', '--norc']);
    expect(spec.healthCheck.command.at(-1)).toMatch(/^quit\(db\.adminCommand\('ping'\)\.ok === 1 \? 0 : 1\)$/);
    expect(() => mongodb.optionsSchema.parse({ cacheSizeGB: 1 })).toThrow();
  });
});
