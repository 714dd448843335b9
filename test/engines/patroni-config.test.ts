/**
 * Patroni's configuration (databases/postgresql/patroni.ts), rendered for every environment, both
 * DCS and with TLS on and off. No Patroni runs here (`npm run drill:patroni` runs one): what it
 * would ignore or misread is checked against its documentation. Every key rendered must be one
 * the Patroni 3 documentation lists (the tree below, transcribed from its "YAML Configuration
 * Settings" and "Dynamic Configuration Settings" pages); a key Patroni does not know is ignored
 * without a word, so a misspelt setting would silently not apply. Where Patroni is installed, its
 * own source is compared too.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENVIRONMENTS, type Environment } from '../../databases/engine.ts';
import { tlsArgs } from '../../databases/postgresql/index.ts';
import {
  kubernetesMemberEnvironment,
  kubernetesPatroniConfig,
  PATRONI_COMMAND_LINE_PARAMETERS,
  PATRONI_CREDENTIALS,
  patroniEnvironment,
  patroniYaml,
  readHbaRules,
  readServerSettings,
  renderPatroniConfig,
  type PatroniConfig,
  type PatroniDcs,
  type PatroniInput,
} from '../../databases/postgresql/patroni.ts';
import { ROOT } from '../support/pulumi.ts';

/** Any key: a map whose keys are the user's (PostgreSQL parameters, labels). */
type KeyTree = { [key: string]: KeyTree | true } | '*';

const AUTHENTICATION_USER: KeyTree = Object.fromEntries(
  ['username', 'password', 'sslmode', 'sslkey', 'sslpassword', 'sslcert', 'sslrootcert', 'sslcrl', 'sslcrldir', 'gssencmode', 'channel_binding'].map((key) => [key, true]),
);
const flags = (...keys: string[]): { [key: string]: true } => Object.fromEntries(keys.map((key) => [key, true]));

/** https://patroni.readthedocs.io/en/v3.0.2/dynamic_configuration.html: what bootstrap.dcs may hold. */
const DYNAMIC: KeyTree = {
  ...flags(
    'loop_wait',
    'ttl',
    'retry_timeout',
    'maximum_lag_on_failover',
    'maximum_lag_on_syncnode',
    'max_timelines_history',
    'primary_start_timeout',
    'primary_stop_timeout',
    'synchronous_mode',
    'synchronous_mode_strict',
    'synchronous_node_count',
    'failsafe_mode',
    'check_timeline',
    'standby_cluster',
    'slots',
    'ignore_slots',
  ),
  postgresql: { ...flags('use_pg_rewind', 'use_slots', 'recovery_conf', 'pg_hba', 'pg_ident'), parameters: '*' },
};

/** https://patroni.readthedocs.io/en/v3.0.2/yaml_configuration.html: the local configuration's sections and their keys. */
const DOCUMENTED: KeyTree = {
  ...flags('name', 'namespace', 'scope'),
  log: flags('level', 'traceback_level', 'format', 'dateformat', 'max_queue_size', 'dir', 'file_num', 'file_size', 'loggers'),
  bootstrap: { dcs: DYNAMIC, ...flags('method', 'initdb', 'post_bootstrap', 'post_init') },
  kubernetes: {
    ...flags('bypass_api_service', 'namespace', 'scope_label', 'role_label', 'use_endpoints', 'pod_ip', 'ports', 'cacert', 'retriable_http_codes'),
    labels: '*',
  },
  etcd3: flags('host', 'hosts', 'use_proxies', 'url', 'proxy', 'srv', 'srv_suffix', 'protocol', 'username', 'password', 'cacert', 'cert', 'key'),
  postgresql: {
    authentication: { superuser: AUTHENTICATION_USER, replication: AUTHENTICATION_USER, rewind: AUTHENTICATION_USER },
    ...flags(
      'callbacks',
      'connect_address',
      'proxy_address',
      'create_replica_methods',
      'data_dir',
      'config_dir',
      'bin_dir',
      'bin_name',
      'listen',
      'use_unix_socket',
      'use_unix_socket_repl',
      'pgpass',
      'recovery_conf',
      'custom_conf',
      'pg_hba',
      'pg_ident',
      'pg_ctl_timeout',
      'use_pg_rewind',
      'rewind',
      'remove_data_directory_on_rewind_failure',
      'remove_data_directory_on_diverged_timelines',
      'replica_method',
      'basebackup',
    ),
    parameters: '*',
    // https://patroni.readthedocs.io/en/v3.0.2/replica_bootstrap.html#building-replicas: each method
    // of create_replica_methods has its section under postgresql, named after it (backups: pgbackrest).
    pgbackrest: flags('command', 'keep_data', 'no_params', 'no_leader', 'no_master'),
  },
  restapi: {
    ...flags(
      'connect_address',
      'listen',
      'certfile',
      'keyfile',
      'keyfile_password',
      'cafile',
      'ciphers',
      'verify_client',
      'allowlist',
      'allowlist_include_members',
      'http_extra_headers',
      'https_extra_headers',
      'request_queue_size',
    ),
    authentication: flags('username', 'password'),
  },
  ctl: flags('insecure', 'cacert', 'certfile', 'keyfile', 'keyfile_password'),
  watchdog: flags('mode', 'device', 'safety_margin'),
  tags: flags('nofailover', 'clonefrom', 'noloadbalance', 'replicatefrom', 'nosync'),
};

/** Every key path of `value` that the tree does not document. */
function undocumented(value: unknown, tree: KeyTree, path = ''): string[] {
  if (tree === '*' || typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const known = tree[key];
    if (known === undefined) return [`${path}${key}`];
    return known === true ? [] : undocumented(child, known, `${path}${key}.`);
  });
}

const etcd: PatroniDcs = { etcd3: { hosts: ['127.0.0.1:2379'] } };
const kubernetes: PatroniDcs = {
  kubernetes: {
    namespace: 'allixios',
    labels: { 'app.kubernetes.io/name': 'postgresql' },
    scopeLabel: 'cluster-name',
    podIp: '10.0.0.7',
    ports: [{ name: 'postgresql', port: 5432 }],
  },
};

function input(environment: Environment, overrides: Partial<PatroniInput> = {}): PatroniInput {
  return {
    environment,
    scope: 'postgresql',
    members: 3,
    dcs: kubernetes,
    member: {
      name: 'postgresql-0',
      postgresql: { listen: '0.0.0.0:5432', connectAddress: 'postgresql-0.postgresql-headless.allixios.svc.cluster.local:5432' },
      restApi: { listen: '0.0.0.0:8008', connectAddress: 'postgresql-0.postgresql-headless.allixios.svc.cluster.local:8008' },
    },
    directories: {
      data: '/var/lib/postgresql/18/patroni',
      bin: '/usr/lib/postgresql/18/bin',
      socket: '/var/run/postgresql',
      pgpass: '/tmp/pgpass',
      customConf: '/etc/postgresql/postgresql.conf',
    },
    memory: { limit: '8Gi' },
    ...overrides,
  };
}

const projectFile = (name: string) => readFileSync(join(ROOT, 'databases/postgresql/config', name), 'utf8');

describe("Patroni's configuration", () => {
  describe.each(ENVIRONMENTS)('in %s', (environment) => {
    for (const [label, dcs] of [
      ['kubernetes', kubernetes],
      ['etcd3', etcd],
    ] as const) {
      for (const tls of [false, true]) {
        for (const backup of [false, true]) {
          it(`uses only keys Patroni 3 documents (${label}, TLS ${tls ? 'on' : 'off'}${backup ? ', backups on' : ''})`, () => {
            const config = renderPatroniConfig(input(environment, { dcs, ...(tls ? { tls: {} } : {}), ...(backup ? { backup: true } : {}) }));
            expect(undocumented(config, DOCUMENTED)).toEqual([]);
            // And what patroni.yml holds is the same object, read as Patroni's YAML 1.1 reader does.
            expect(parse(patroniYaml(config), { version: '1.1' })).toEqual(JSON.parse(JSON.stringify(config)));
          });
        }
      }
    }

    it('keeps loop_wait + 2 × retry_timeout within ttl, the rule Patroni documents', () => {
      const { ttl, loop_wait, retry_timeout } = renderPatroniConfig(input(environment)).bootstrap.dcs;
      expect(loop_wait + 2 * retry_timeout).toBeLessThanOrEqual(ttl);
    });
  });

  it('replicates synchronously in prod only, never strictly, with one synchronous standby', () => {
    const dcs = (environment: Environment) => renderPatroniConfig(input(environment)).bootstrap.dcs;
    expect(dcs('prod')).toMatchObject({ synchronous_mode: true, synchronous_mode_strict: false, synchronous_node_count: 1, primary_start_timeout: 30 });
    for (const environment of ['dev', 'staging', 'ephemeral'] as const) expect(dcs(environment)).toMatchObject({ synchronous_mode: false, primary_start_timeout: 300 });
    expect(dcs('prod').failsafe_mode).toBe(true);
    expect(dcs('staging').failsafe_mode).toBe(true);
    expect(dcs('dev').failsafe_mode).toBe(false);
  });

  it('rewinds a former primary and keeps a slot per member everywhere; re-clones on a failed rewind in prod only', () => {
    for (const environment of ENVIRONMENTS) {
      const config = renderPatroniConfig(input(environment));
      expect(config.bootstrap.dcs.postgresql).toMatchObject({ use_pg_rewind: true, use_slots: true });
      expect(config.bootstrap.dcs.maximum_lag_on_failover).toBe(1048576);
      expect(config.postgresql.remove_data_directory_on_rewind_failure).toBe(environment === 'prod');
      expect(config.bootstrap.dcs.postgresql.parameters.wal_log_hints).toBe('on');
    }
  });

  it('refuses prod without a standby to replicate to, and input it cannot render', () => {
    expect(() => renderPatroniConfig(input('prod', { members: 1 }))).toThrow(/prod replicates synchronously and needs at least 2 members/);
    expect(() => renderPatroniConfig(input('dev', { members: 1 }))).not.toThrow();
    expect(() => renderPatroniConfig(input('dev', { members: 0 }))).toThrow(/members must be a whole number of at least 1, got 0/);
    expect(() => renderPatroniConfig(input('dev', { scope: 'Postgres_1' }))).toThrow(/scope must be a DNS label/);
    const member = input('dev').member;
    expect(() => renderPatroniConfig(input('dev', { member: { ...member, restApi: { ...member.restApi, connectAddress: 'postgresql-0' } } }))).toThrow(
      /member.restApi.connectAddress must be host:port, got "postgresql-0"/,
    );
    expect(() => renderPatroniConfig(input('dev', { directories: { ...input('dev').directories, data: 'data' } }))).toThrow(/directories.data must be an absolute path/);
  });

  describe('one source of server settings', () => {
    it("points the server at the project's postgresql.conf and carries its command-line parameters into the DCS", () => {
      const config = renderPatroniConfig(input('prod'));
      const file = readServerSettings(projectFile('postgresql.conf'));
      expect(config.postgresql.custom_conf).toBe('/etc/postgresql/postgresql.conf');
      const parameters = config.bootstrap.dcs.postgresql.parameters;
      // Patroni would otherwise start the server with max_connections=100 on its command line.
      expect(parameters.max_connections).toBe(Number(file.get('max_connections')));
      expect(parameters.max_connections).toBe(200);
      expect(parameters.max_prepared_transactions).toBe(Number(file.get('max_prepared_transactions')));
      expect(parameters.wal_level).toBe(file.get('wal_level'));
      // A changed file changes the DCS's values, not a copy here.
      const edited = projectFile('postgresql.conf').replace(/^max_connections = \d+/m, 'max_connections = 321');
      expect(renderPatroniConfig(input('prod', { postgresqlConf: edited })).bootstrap.dcs.postgresql.parameters.max_connections).toBe(321);
    });

    it('sets no server parameter locally that postgresql.conf sets, besides the socket directory the file names too', () => {
      const file = readServerSettings(projectFile('postgresql.conf'));
      const local = renderPatroniConfig(input('prod', { tls: {} })).postgresql.parameters;
      const overlap = Object.keys(local).filter((name) => file.has(name));
      // ssl is off in the file and on with TLS, as index.ts's tlsArgs turn it on for the single server.
      expect(overlap.sort()).toEqual(['ssl', 'unix_socket_directories']);
      expect(local.unix_socket_directories).toBe(file.get('unix_socket_directories'));
    });

    it("writes pg_hba.conf from the project's file: hostssl lines only on a TLS stack", () => {
      const plain = renderPatroniConfig(input('prod')).postgresql.pg_hba;
      const tls = renderPatroniConfig(input('prod', { tls: {} })).postgresql.pg_hba;
      expect(plain).toEqual(readHbaRules(projectFile('pg_hba.conf')));
      expect(tls).toEqual(readHbaRules(projectFile('pg_hba-tls.conf')));
      expect(plain).toContain('host replication all 0.0.0.0/0 scram-sha-256');
      expect(tls).toContain('hostssl replication all 0.0.0.0/0 scram-sha-256');
      expect(tls.filter((line) => /^host\s/.test(line))).toEqual([]);
    });

    it('reads postgresql.conf as PostgreSQL does: quotes, comments, and = optional', () => {
      const settings = readServerSettings("a = 1  # one\nb 'two # not a comment'\n# c = 3\n  d='it''s'\n");
      expect([...settings]).toEqual([
        ['a', '1'],
        ['b', 'two # not a comment'],
        ['d', "it's"],
      ]);
    });
  });

  describe('TLS', () => {
    it("serves TLS with index.ts's settings and verifies the primary's certificate for replication and pg_rewind", () => {
      const config = renderPatroniConfig(input('prod', { tls: {} }));
      const expected = Object.fromEntries(
        tlsArgs()
          .filter((_, index) => index % 2 === 1)
          .map((pair) => pair.split('=') as [string, string]),
      );
      expect(config.postgresql.parameters).toMatchObject(expected);
      for (const user of ['replication', 'rewind'] as const) {
        expect(config.postgresql.authentication[user]).toMatchObject({ sslmode: 'verify-full', sslrootcert: '/etc/postgresql/tls/ca.crt' });
      }
      expect(config.restapi).toMatchObject({ certfile: '/etc/postgresql/tls/tls.crt', keyfile: '/etc/postgresql/tls/tls.key', cafile: '/etc/postgresql/tls/ca.crt' });
    });

    it('has no TLS setting at all on a stack without TLS', () => {
      const text = patroniYaml(renderPatroniConfig(input('prod')));
      expect(text).not.toMatch(/ssl|certfile|keyfile|cafile/);
    });
  });

  describe('the DCS', () => {
    it('keeps its state in Kubernetes Endpoints by default, with the labels and pod IP given', () => {
      const config = renderPatroniConfig(input('prod'));
      expect(config.kubernetes).toEqual({
        namespace: 'allixios',
        labels: { 'app.kubernetes.io/name': 'postgresql' },
        scope_label: 'cluster-name',
        use_endpoints: true,
        pod_ip: '10.0.0.7',
        ports: [{ name: 'postgresql', port: 5432 }],
      });
      expect(config.etcd3).toBeUndefined();
      const configMaps = renderPatroniConfig(input('prod', { dcs: { kubernetes: { namespace: 'x', labels: {}, useEndpoints: false } } }));
      expect(configMaps.kubernetes?.use_endpoints).toBe(false);
    });

    it('or in etcd, for the drill', () => {
      const config = renderPatroniConfig(input('prod', { dcs: etcd }));
      expect(config.etcd3).toEqual({ hosts: ['127.0.0.1:2379'] });
      expect(config.kubernetes).toBeUndefined();
      expect(() => renderPatroniConfig(input('prod', { dcs: { etcd3: { hosts: [] } } }))).toThrow(/etcd3.hosts must be host:port entries/);
    });
  });

  describe('credentials', () => {
    it('renders no password: every one comes from a secret through the environment', () => {
      const keys = (value: unknown): string[] => (typeof value === 'object' && value !== null ? Object.entries(value).flatMap(([key, child]) => [key, ...keys(child)]) : []);
      // Given: the passwords in this process's environment, where a careless renderer might look.
      const sentinel = 'sentinel-password-7f3a';
      for (const { variable } of PATRONI_CREDENTIALS) process.env[variable] = sentinel;
      try {
        for (const environment of ENVIRONMENTS) {
          for (const tls of [false, true]) {
            const config: PatroniConfig = renderPatroniConfig(input(environment, tls ? { tls: {} } : {}));
            expect(keys(config).filter((key) => /password/i.test(key))).toEqual([]);
            expect(patroniYaml(config)).not.toContain(sentinel);
          }
        }
      } finally {
        for (const { variable } of PATRONI_CREDENTIALS) delete process.env[variable];
      }
      const env = patroniEnvironment();
      for (const variable of ['PATRONI_SUPERUSER_PASSWORD', 'PATRONI_REPLICATION_PASSWORD', 'PATRONI_REWIND_PASSWORD', 'PATRONI_RESTAPI_PASSWORD']) {
        expect(env[variable], variable).toEqual({ secret: expect.any(String) });
      }
      expect(env.PATRONI_SUPERUSER_PASSWORD).toEqual({ secret: 'superuser-password' });
      expect(new Set(PATRONI_CREDENTIALS.map(({ secret }) => secret)).size).toBe(PATRONI_CREDENTIALS.length);
    });
  });

  describe('against the Patroni installed here (its source, where the package is installed)', () => {
    const source = '/usr/lib/python3/dist-packages/patroni';
    const installed = existsSync(join(source, 'postgresql/config.py'));

    it.skipIf(!installed)("carries every parameter Patroni puts on postgres's command line, but those it sets from its own settings", () => {
      const config = readFileSync(join(source, 'postgresql/config.py'), 'utf8');
      const block = /CMDLINE_OPTIONS = CaseInsensitiveDict\(\{([\s\S]*?)\}\)/.exec(config)![1]!;
      const names = [...block.matchAll(/^\s*'(\w+)':/gm)].map((match) => match[1]!);
      // listen_addresses and port come from postgresql.listen, cluster_name from the scope;
      // wal_keep_segments is wal_keep_size's name before PostgreSQL 13.
      const fromPatroni = ['listen_addresses', 'port', 'cluster_name', 'wal_keep_segments'];
      expect(names.filter((name) => !fromPatroni.includes(name)).sort()).toEqual([...PATRONI_COMMAND_LINE_PARAMETERS].sort());
    });

    it.skipIf(!installed)("passes Patroni's own validation as the Kubernetes members run it: one file, each pod's variables saying who it is", () => {
      const settings = { scope: 'postgresql', members: 3, storage: '200Gi', memory: { limit: '8Gi', sharedBuffersRatio: 0.25 }, port: { name: 'postgresql', containerPort: 5432 } };
      const directory = mkdtempSync(join(tmpdir(), 'allixios-patroni-validate-'));
      const member = 'postgresql-0.postgresql-headless.allixios-prod.svc.cluster.local';
      // What the Kubernetes target fills from the pod (kubernetesMemberEnvironment), and the credentials from the Secret.
      expect(Object.keys(kubernetesMemberEnvironment(5432)).sort()).toEqual(
        [
          'PATRONI_KUBERNETES_LABELS',
          'PATRONI_KUBERNETES_NAMESPACE',
          'PATRONI_KUBERNETES_POD_IP',
          'PATRONI_NAME',
          'PATRONI_POSTGRESQL_CONNECT_ADDRESS',
          'PATRONI_RESTAPI_CONNECT_ADDRESS',
        ].sort(),
      );
      const env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        PATRONI_NAME: 'postgresql-0',
        PATRONI_KUBERNETES_NAMESPACE: 'allixios-prod',
        PATRONI_KUBERNETES_POD_IP: '10.0.0.5',
        PATRONI_KUBERNETES_LABELS: JSON.stringify({ 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'allixios-prod' }),
        PATRONI_POSTGRESQL_CONNECT_ADDRESS: `${member}:5432`,
        PATRONI_RESTAPI_CONNECT_ADDRESS: `${member}:8008`,
        PATRONI_RESTAPI_USERNAME: 'patroni',
        ...Object.fromEntries(PATRONI_CREDENTIALS.map(({ variable }) => [variable, 'validation-only-password'])),
      };
      for (const environment of ['staging', 'prod'] as const) {
        for (const [tls, backup] of [
          [false, false],
          [true, false],
          [true, true],
        ] as const) {
          const config = kubernetesPatroniConfig({ ...settings, environment, tls, backup });
          expect(undocumented(config, DOCUMENTED)).toEqual([]);
          expect(config).not.toHaveProperty('name');
          const file = join(directory, `${environment}-${tls}-${backup}.yml`);
          writeFileSync(file, patroniYaml(config));
          const result = spawnSync('patroni', ['--validate-config', file], { env, encoding: 'utf8' });
          // Only what this machine cannot have: PostgreSQL 18's programs (the image has them), and
          // Patroni 3.0's validator asking for a bootstrap.pg_hba (a key of initdb clusters before
          // postgresql.pg_hba; Patroni writes pg_hba.conf from postgresql.pg_hba, which is rendered).
          const problems = `${result.stdout}${result.stderr}`
            .split('\n')
            .map((line) => line.trim())
            .filter(
              (line) =>
                line && !/^postgresql\.bin_dir\s+Directory '\/usr\/lib\/postgresql\/18\/bin' does not exist\.$/.test(line) && !/^bootstrap\.pg_hba\s+is not defined\.$/.test(line),
            );
          expect(problems, `${environment}, TLS ${tls}, backups ${backup}`).toEqual([]);
        }
      }
    });

    it.skipIf(!installed)("renders only dynamic settings Patroni's own defaults name", () => {
      const config = readFileSync(join(source, 'config.py'), 'utf8');
      const defaults = /__DEFAULT_CONFIG = \{([\s\S]*?)\n {4}\}/.exec(config)![1]!;
      for (const key of Object.keys(renderPatroniConfig(input('prod')).bootstrap.dcs)) expect(defaults, key).toContain(`'${key}'`);
    });
  });
});
