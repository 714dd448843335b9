/**
 * Elasticsearch's configuration files, file realm and the engine's max_map_count modes. No
 * Elasticsearch can run on this machine (ENGINES.md), so what it would refuse at start is checked
 * here from its documentation: every setting of elasticsearch.yml (and every setting passed as an
 * environment variable) must be in the allow-list below, which names the page documenting it, and
 * every privilege of roles.yml must be one the privileges reference lists. The users file is
 * rendered the way the stacks render it and its hashes are verified with bcrypt.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { memberStartScript, START_SETTINGS, TRANSPORT_ADDRESS_VARIABLE, ZONE_VARIABLE } from '../../databases/elasticsearch/cluster.ts';
import { elasticsearch, MAX_MAP_COUNT, MAX_MAP_COUNT_MODES, type MaxMapCountMode } from '../../databases/elasticsearch/index.ts';
import { engineSpec, ENVIRONMENTS, EngineSettingError, type EngineSpec, type Environment } from '../../databases/engine.ts';
import { renderSecretFile, templateSecretKeys } from '../../databases/secret-files.ts';
import { parseStackConfig } from '../../stacks/config/index.ts';
import { certificateDnsNames } from '../../stacks/kubernetes/tls.ts';
import { describeWithDefaults } from '../support/engines.ts';
import { withPostgresqlImage } from '../support/stacks.ts';

type ValueCheck = (value: unknown) => boolean;
const isBoolean: ValueCheck = (value) => typeof value === 'boolean' || value === 'true' || value === 'false';
const isNonEmptyString: ValueCheck = (value) => typeof value === 'string' && value !== '';
const isInteger: ValueCheck = (value) => Number.isInteger(value);
const oneOf =
  (...allowed: string[]): ValueCheck =>
  (value) =>
    typeof value === 'string' && allowed.includes(value);
/** An IP address or one of the special values of network.host (`_local_`, `_site_`, ...). */
const isNetworkAddress: ValueCheck = (value) => typeof value === 'string' && (isIP(value) !== 0 || /^_[a-z0-9:]+_$/.test(value));
/** A DNS name (lower-case labels joined by dots). */
const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const isHostName: ValueCheck = (value) => typeof value === 'string' && DNS_NAME.test(value);
/** A port number, as a settings variable gives it. */
const isPort: ValueCheck = (value) => (typeof value === 'string' || typeof value === 'number') && /^[0-9]+$/.test(String(value)) && Number(value) > 0 && Number(value) < 65536;
/** discovery.seed_hosts: a comma-separated list of `host` or `host:port`. */
const isHostList: ValueCheck = (value) =>
  typeof value === 'string' &&
  value.split(',').every((entry) => {
    const [host, port, ...rest] = entry.split(':');
    return rest.length === 0 && isHostName(host) && (port === undefined || isPort(port));
  });
/** cluster.initial_master_nodes: a comma-separated list of node names. */
const isNodeNameList: ValueCheck = (value) => typeof value === 'string' && value.split(',').every((name) => /^[a-z0-9][-a-z0-9]*$/.test(name));

const DOCS = 'https://www.elastic.co/docs';
const IMPORTANT_SETTINGS = `${DOCS}/deploy-manage/deploy/self-managed/important-settings-configuration`;
const NETWORKING = `${DOCS}/reference/elasticsearch/configuration-reference/networking-settings`;
const DISCOVERY = `${DOCS}/reference/elasticsearch/configuration-reference/discovery-cluster-formation-settings`;
const MEMORY_LOCK = `${DOCS}/deploy-manage/deploy/self-managed/setup-configuration-memory`;
const INDEX_MANAGEMENT = `${DOCS}/reference/elasticsearch/configuration-reference/index-management-settings`;
const SECURITY = `${DOCS}/reference/elasticsearch/configuration-reference/security-settings`;
const MACHINE_LEARNING = `${DOCS}/reference/elasticsearch/configuration-reference/machine-learning-settings`;
const GEOIP = `${DOCS}/reference/enrich-processor/geoip-processor`;
const STORE = `${DOCS}/reference/elasticsearch/index-settings/store`;
const SHARD_ALLOCATION = `${DOCS}/reference/elasticsearch/configuration-reference/cluster-level-shard-allocation-routing-settings`;
const ALLOCATION_AWARENESS = `${DOCS}/deploy-manage/distributed-architecture/shard-allocation-relocation-recovery/shard-allocation-awareness`;

/** "HTTP TLS/SSL settings" and "Transport TLS/SSL settings" of the security settings page. */
const HTTP_TLS = `${SECURITY}#http-tls-ssl-settings`;
const TRANSPORT_TLS = `${SECURITY}#transport-tls-ssl-settings`;
/** A PEM file under the config directory, the only place Elasticsearch may read SSL files from. */
const isConfigFile: ValueCheck = (value) => typeof value === 'string' && value.startsWith('/usr/share/elasticsearch/config/');
/** supported_protocols: a comma-separated list of the protocol names the page lists. */
const isProtocolList: ValueCheck = (value) => typeof value === 'string' && value.split(',').every((protocol) => ['TLSv1.3', 'TLSv1.2', 'TLSv1.1', 'TLSv1'].includes(protocol));

/**
 * The PEM-file settings of one TLS layer (`xpack.security.<layer>.ssl.*`), from the page's lists
 * "HTTP TLS/SSL settings" / "Transport TLS/SSL settings" and "PEM encoded files": enabled,
 * supported_protocols, client_authentication (required, optional, none), verification_mode (full,
 * certificate, none), key, certificate, certificate_authorities.
 */
function tlsLayerSettings(layer: 'http' | 'transport', documentedAt: string): Record<string, { documentedAt: string; check: ValueCheck }> {
  const checks: Record<string, ValueCheck> = {
    enabled: isBoolean,
    supported_protocols: isProtocolList,
    client_authentication: oneOf('required', 'optional', 'none'),
    verification_mode: oneOf('full', 'certificate', 'none'),
    key: isConfigFile,
    certificate: isConfigFile,
    certificate_authorities: isConfigFile,
  };
  return Object.fromEntries(Object.entries(checks).map(([setting, check]) => [`xpack.security.${layer}.ssl.${setting}`, { documentedAt, check }]));
}

/**
 * The Elasticsearch settings this project uses, each with the page that documents it and a check
 * of its value. Not every setting Elasticsearch has: add one here, from its page, before using it.
 */
const ELASTICSEARCH_SETTINGS: Record<string, { documentedAt: string; check: ValueCheck }> = {
  'cluster.name': { documentedAt: IMPORTANT_SETTINGS, check: isNonEmptyString },
  'node.name': { documentedAt: IMPORTANT_SETTINGS, check: isNonEmptyString },
  'path.data': { documentedAt: IMPORTANT_SETTINGS, check: isNonEmptyString },
  'network.host': { documentedAt: NETWORKING, check: isNetworkAddress },
  'transport.host': { documentedAt: NETWORKING, check: isNetworkAddress },
  'transport.port': { documentedAt: NETWORKING, check: isPort },
  'network.publish_host': { documentedAt: NETWORKING, check: isHostName },
  'discovery.type': { documentedAt: DISCOVERY, check: oneOf('single-node', 'multi-node') },
  'discovery.seed_hosts': { documentedAt: DISCOVERY, check: isHostList },
  'cluster.initial_master_nodes': { documentedAt: DISCOVERY, check: isNodeNameList },
  // A custom node attribute, `node.attr.<name>`, and the attributes allocation awareness uses.
  'node.attr.zone': { documentedAt: ALLOCATION_AWARENESS, check: isNonEmptyString },
  'cluster.routing.allocation.awareness.attributes': { documentedAt: SHARD_ALLOCATION, check: oneOf('zone') },
  'bootstrap.memory_lock': { documentedAt: MEMORY_LOCK, check: isBoolean },
  'action.destructive_requires_name': { documentedAt: INDEX_MANAGEMENT, check: isBoolean },
  'xpack.security.enabled': { documentedAt: SECURITY, check: isBoolean },
  'xpack.security.autoconfiguration.enabled': { documentedAt: SECURITY, check: isBoolean },
  ...tlsLayerSettings('http', HTTP_TLS),
  ...tlsLayerSettings('transport', TRANSPORT_TLS),
  'xpack.ml.enabled': { documentedAt: MACHINE_LEARNING, check: isBoolean },
  'ingest.geoip.downloader.enabled': { documentedAt: GEOIP, check: isBoolean },
  'node.store.allow_mmap': { documentedAt: STORE, check: isBoolean },
};

/** `xpack.security.authc.realms.<type>.<name>.<setting>` (security settings, "Realm settings"). */
const REALM_SETTING = /^xpack\.security\.authc\.realms\.(file|native)\.[a-z0-9_-]+\.(order|enabled)$/;

function settingErrors(settings: Record<string, unknown>): string[] {
  return Object.entries(settings).flatMap(([name, value]) => {
    const realm = REALM_SETTING.exec(name);
    if (realm) return (realm[2] === 'order' ? isInteger(value) : isBoolean(value)) ? [] : [`${name}: unexpected value ${JSON.stringify(value)}`];
    const known = ELASTICSEARCH_SETTINGS[name];
    if (!known) return [`${name}: not a setting this test knows (add it with the page that documents it)`];
    return known.check(value) ? [] : [`${name}: unexpected value ${JSON.stringify(value)} (see ${known.documentedAt})`];
  });
}

/**
 * Privileges from https://www.elastic.co/docs/reference/elasticsearch/security-privileges (stack,
 * 9.x). The cross-cluster privileges the page says must not be granted directly are left out.
 */
const CLUSTER_PRIVILEGES = new Set([
  'all',
  'cancel_task',
  'create_snapshot',
  'delegate_pki',
  'grant_api_key',
  'clone_api_key',
  'manage',
  'manage_api_key',
  'manage_autoscaling',
  'manage_behavioral_analytics',
  'manage_connector',
  'manage_ccr',
  'manage_data_frame_transforms',
  'manage_data_stream_global_retention',
  'manage_enrich',
  'manage_ilm',
  'manage_index_templates',
  'manage_inference',
  'manage_ingest_pipelines',
  'manage_logstash_pipelines',
  'manage_ml',
  'manage_oidc',
  'manage_own_api_key',
  'manage_pipeline',
  'manage_reindex',
  'manage_rollup',
  'manage_saml',
  'manage_search_application',
  'manage_search_query_rules',
  'manage_search_synonyms',
  'manage_security',
  'manage_service_account',
  'manage_slm',
  'manage_token',
  'manage_transform',
  'manage_user_profile',
  'manage_watcher',
  'monitor',
  'monitor_connector',
  'monitor_enrich',
  'monitor_esql',
  'monitor_inference',
  'monitor_ml',
  'monitor_rollup',
  'monitor_reindex',
  'monitor_snapshot',
  'monitor_stats',
  'monitor_text_structure',
  'monitor_transform',
  'monitor_watcher',
  'post_behavioral_analytics_event',
  'read_ccr',
  'read_fleet_secrets',
  'read_ilm',
  'read_pipeline',
  'read_security',
  'read_slm',
  'transport_client',
  'write_connector_secrets',
  'write_fleet_secrets',
]);
const INDEX_PRIVILEGES = new Set([
  'all',
  'auto_configure',
  'create',
  'create_doc',
  'create_index',
  'create_view',
  'delete',
  'delete_index',
  'delete_view',
  'index',
  'maintenance',
  'manage',
  'manage_data_stream_lifecycle',
  'manage_failure_store',
  'manage_follow_index',
  'manage_ilm',
  'manage_leader_index',
  'manage_view',
  'monitor',
  'read',
  'read_cross_cluster',
  'read_failure_store',
  'read_view_metadata',
  'view_index_metadata',
  'write',
]);
/** Fields of a role and of an indices entry in roles.yml ("Defining roles"). */
const ROLE_FIELDS = new Set(['cluster', 'indices', 'applications', 'run_as', 'metadata', 'global', 'remote_indices', 'remote_cluster', 'description']);
const INDICES_FIELDS = new Set(['names', 'privileges', 'field_security', 'query', 'allow_restricted_indices']);

function roleErrors(roles: Record<string, Record<string, unknown>>): string[] {
  return Object.entries(roles).flatMap(([role, definition]) => {
    const errors = Object.keys(definition)
      .filter((field) => !ROLE_FIELDS.has(field))
      .map((field) => `${role}.${field}: not a role field`);
    for (const privilege of (definition.cluster as string[] | undefined) ?? []) {
      if (!CLUSTER_PRIVILEGES.has(privilege)) errors.push(`${role}.cluster: "${privilege}" is not a cluster privilege`);
    }
    for (const [index, entry] of ((definition.indices as Record<string, unknown>[] | undefined) ?? []).entries()) {
      for (const field of Object.keys(entry)) if (!INDICES_FIELDS.has(field)) errors.push(`${role}.indices[${index}].${field}: not an indices field`);
      if (!Array.isArray(entry.names) || entry.names.length === 0) errors.push(`${role}.indices[${index}]: no names`);
      for (const privilege of (entry.privileges as string[] | undefined) ?? []) {
        if (!INDEX_PRIVILEGES.has(privilege)) errors.push(`${role}.indices[${index}]: "${privilege}" is not an index privilege`);
      }
    }
    return errors;
  });
}

function readEngineFile(source: string): string {
  return readFileSync(join(elasticsearch.directory, source), 'utf8');
}

/** YAML as Elasticsearch reads it: a syntax error or a duplicate key throws. */
function parseYaml(text: string, source: string): Record<string, unknown> {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) throw new Error(`${source}: ${document.errors.map((error) => error.message).join('; ')}`);
  return document.toJS() as Record<string, unknown>;
}

/** Nested and dotted keys are the same setting to Elasticsearch: flatten to dotted names. */
function flatten(value: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value).flatMap(([key, child]) => {
      const name = prefix ? `${prefix}.${key}` : key;
      return child !== null && typeof child === 'object' && !Array.isArray(child) ? Object.entries(flatten(child as Record<string, unknown>, name)) : [[name, child]];
    }),
  );
}

/** `name:value` lines (users: name:hash, users_roles: role:user1,user2). */
function colonLines(text: string): [string, string][] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const at = line.indexOf(':');
      if (at <= 0) throw new Error(`expected "name:value", got "${line}"`);
      return [line.slice(0, at), line.slice(at + 1)];
    });
}

/** Settings the Docker distribution reads from lower-case dotted variables (EnvironmentBuilder). */
const DOCKER_SETTING_VARIABLE = /^[-a-z0-9_]+(\.[-a-z0-9_]+)+$/;

function describeFor(environment: Environment, maxMapCount?: MaxMapCountMode): EngineSpec {
  // One node, as Docker runs it (several need the stack's transport TLS).
  return describeWithDefaults(elasticsearch, environment, { options: maxMapCount ? { maxMapCount } : {}, replicas: 1 });
}

const TEST_PASSWORDS = { 'elastic-password': 'elastic-test-password', 'app-password': 'app-test-password', 'monitor-password': 'monitor-test-password' };

describe('the checkers themselves', () => {
  it('refuse an unknown setting, a misspelled realm setting and a wrong value', () => {
    const errors = settingErrors(flatten(parse('cluster.nmae: x\nxpack.security.authc.realms.file.file1.ordre: 0\ndiscovery.type: single\nxpack:\n  ml:\n    enabled: maybe\n')));
    expect(errors).toEqual([
      'cluster.nmae: not a setting this test knows (add it with the page that documents it)',
      'xpack.security.authc.realms.file.file1.ordre: not a setting this test knows (add it with the page that documents it)',
      `discovery.type: unexpected value "single" (see ${DISCOVERY})`,
      `xpack.ml.enabled: unexpected value "maybe" (see ${MACHINE_LEARNING})`,
    ]);
  });

  it('refuse a misspelled privilege and an unknown role field', () => {
    const errors = roleErrors(parse("r:\n  cluster: ['monitr']\n  indicies: []\n  indices:\n    - names: ['a*']\n      privileges: ['reed']\n"));
    expect(errors).toEqual(['r.indicies: not a role field', 'r.cluster: "monitr" is not a cluster privilege', 'r.indices[0]: "reed" is not an index privilege']);
  });

  it('refuse malformed YAML and duplicate keys', () => {
    expect(() => parseYaml('a: [1, 2\n', 'bad.yml')).toThrow(/bad\.yml/);
    expect(() => parseYaml('a: 1\na: 2\n', 'dup.yml')).toThrow(/dup\.yml/);
  });
});

describe('config/elasticsearch.yml', () => {
  const settings = flatten(parseYaml(readEngineFile('config/elasticsearch.yml'), 'config/elasticsearch.yml'));

  it('uses only documented settings, each with an accepted value', () => {
    expect(settingErrors(settings)).toEqual([]);
  });

  it('secures one node or a cluster alike: HTTP on the network, the topology and TLS left to the description', () => {
    expect(Object.keys(settings).filter((name) => name.includes('.ssl.'))).toEqual([]);
    // The topology (a single node or a cluster's member) comes from the description's variables.
    for (const topology of ['discovery.', 'transport.', 'cluster.initial_master_nodes', 'network.publish_host', 'node.attr.']) {
      expect(Object.keys(settings).filter((name) => name.startsWith(topology))).toEqual([]);
    }
    expect(settings).toMatchObject({
      'cluster.name': 'allixios',
      'node.name': '${HOSTNAME}',
      'path.data': describeFor('prod').dataPath,
      'network.host': '0.0.0.0',
      'bootstrap.memory_lock': false,
      'action.destructive_requires_name': true,
      'xpack.security.enabled': true,
      'xpack.security.autoconfiguration.enabled': false,
    });
  });

  it('puts the file realm before the native realm', () => {
    expect(settings['xpack.security.authc.realms.file.file1.order']).toBe(0);
    expect(settings['xpack.security.authc.realms.native.native1.order']).toBe(1);
  });
});

describe('file realm: users, users_roles and roles.yml', () => {
  const template = readEngineFile('config/users');
  const roles = parseYaml(readEngineFile('config/roles.yml'), 'config/roles.yml') as Record<string, Record<string, unknown>>;
  const usersRoles = colonLines(readEngineFile('config/users_roles'));

  it('roles.yml grants only documented privileges', () => {
    expect(roleErrors(roles)).toEqual([]);
  });

  it('the users template names only secrets of the engine', () => {
    expect(templateSecretKeys(template).sort()).toEqual(['app-password', 'monitor-password']);
    const secretKeys = elasticsearch.secrets.map((secret) => secret.key);
    for (const key of templateSecretKeys(template)) expect(secretKeys).toContain(key);
  });

  it('renders to name:$2a$ lines whose hashes verify against the passwords', () => {
    // Given test passwords for the engine's secrets; when the template is rendered
    const rendered = renderSecretFile(template, TEST_PASSWORDS, 'databases/elasticsearch/config/users');
    const lines = colonLines(rendered);
    // Then each user has a bcrypt hash that matches its own password and not another's
    expect(lines.map(([user]) => user)).toEqual(['allixios_app', 'allixios_monitor']);
    for (const [, hash] of lines) expect(hash).toMatch(/^\$2a\$10\$[./A-Za-z0-9]{53}$/);
    const hashOf = Object.fromEntries(lines);
    expect(bcrypt.compareSync(TEST_PASSWORDS['app-password'], hashOf.allixios_app!)).toBe(true);
    expect(bcrypt.compareSync(TEST_PASSWORDS['monitor-password'], hashOf.allixios_monitor!)).toBe(true);
    expect(bcrypt.compareSync(TEST_PASSWORDS['monitor-password'], hashOf.allixios_app!)).toBe(false);
    // And the file holds no password in clear
    for (const password of Object.values(TEST_PASSWORDS)) expect(rendered).not.toContain(password);
  });

  it('every user in users_roles exists in users, every role in roles.yml, and every user has a role', () => {
    const users = colonLines(template).map(([user]) => user);
    const assigned = usersRoles.flatMap(([, members]) => members.split(','));
    for (const [role, members] of usersRoles) {
      expect(Object.keys(roles), `role ${role} of users_roles`).toContain(role);
      for (const member of members.split(',')) expect(users, `user ${member} of role ${role}`).toContain(member);
    }
    expect([...new Set(assigned)].sort()).toEqual([...users].sort());
  });

  it('the platform reads and writes documents only, the monitor only monitors', () => {
    expect(roles.allixios_app?.cluster).toEqual([]);
    const privileges = (roles.allixios_app?.indices as { privileges: string[] }[]).flatMap((entry) => entry.privileges);
    for (const forbidden of ['all', 'manage', 'create_index', 'delete_index']) expect(privileges).not.toContain(forbidden);
    expect(roles.allixios_monitor).toEqual({ cluster: ['monitor'] });
  });
});

describe('the engine description', () => {
  it.each([
    ['daemonSet', [{ name: 'vm.max_map_count', value: MAX_MAP_COUNT }], undefined],
    ['nodePrerequisite', [], undefined],
    ['disableMmap', [], 'false'],
  ] as const)('maxMapCount %s gives the expected node sysctls and mmap setting', (mode, sysctls, allowMmap) => {
    for (const environment of ENVIRONMENTS) {
      const spec = describeFor(environment, mode);
      expect(spec.nodeSysctls).toEqual(sysctls);
      expect(spec.env['node.store.allow_mmap']).toBe(allowMmap);
    }
  });

  it('defaults to the node prerequisite in staging and prod, to no memory mapping in dev and ephemeral stacks: nothing privileged by default', () => {
    for (const environment of ['staging', 'prod'] as const) {
      expect(describeFor(environment).nodeSysctls).toEqual([]);
      expect(describeFor(environment).env).not.toHaveProperty(['node.store.allow_mmap']);
    }
    for (const environment of ['dev', 'ephemeral'] as const) {
      expect(describeFor(environment).nodeSysctls).toEqual([]);
      expect(describeFor(environment).env['node.store.allow_mmap']).toBe('false');
    }
    expect(MAX_MAP_COUNT_MODES).toEqual(['nodePrerequisite', 'daemonSet', 'disableMmap']);
    expect(() => elasticsearch.optionsSchema.parse({ maxMapCount: 'initContainer' })).toThrow();
  });

  it('every setting passed as an environment variable is a documented setting', () => {
    for (const mode of MAX_MAP_COUNT_MODES) {
      const settingsFromEnv = Object.fromEntries(Object.entries(describeFor('prod', mode).env).filter(([name]) => DOCKER_SETTING_VARIABLE.test(name)));
      expect(settingErrors(settingsFromEnv)).toEqual([]);
    }
  });

  it('takes every password from a secret and checks health as the monitor user, reading its header from a secret file at every check', () => {
    const spec = describeFor('staging');
    expect(spec.env).toMatchObject({ ELASTIC_PASSWORD: { secret: 'elastic-password' }, ES_MONITOR_AUTH_FILE: '/usr/share/elasticsearch/config/secrets/monitor-auth' });
    // Only elastic's first-start password is an environment variable; the health check's is a file (a rotation reaches it)
    expect(
      Object.entries(spec.env)
        .filter(([, value]) => typeof value !== 'string')
        .map(([name]) => name),
    ).toEqual(['ELASTIC_PASSWORD']);
    expect(spec.env).not.toHaveProperty('ES_JAVA_OPTS');
    expect(spec.secrets.map((secret) => secret.key).sort()).toEqual(['app-password', 'elastic-password', 'monitor-password']);
    const check = spec.healthCheck.command.join(' ');
    expect(check).toContain('-H @"$ES_MONITOR_AUTH_FILE"');
    const header = renderSecretFile(readEngineFile('config/monitor-auth'), TEST_PASSWORDS, 'config/monitor-auth').trim();
    expect(header).toBe(`Authorization: Basic ${Buffer.from(`allixios_monitor:${TEST_PASSWORDS['monitor-password']}`).toString('base64')}`);
    // The node's own answer, never the cluster's status: one red index must not take it out of
    // its Service or get it restarted
    expect(check).toContain('http://127.0.0.1:9200/_cluster/health?local=true&timeout=5s');
    expect(check).not.toContain('wait_for_status');
    expect(check).toContain('curl -fsS');
    // Alive is any HTTP answer, without credentials (a 401 or 503 while security recovers counts)
    expect(spec.healthCheck.liveCommand!.join(' ')).toBe('sh -c curl -sS --max-time 8 -o /dev/null http://127.0.0.1:9200/');
    expect(spec.healthCheck.startupSeconds).toBeGreaterThanOrEqual(180);
  });

  it('mounts the realm files in the config directory, the users file as a secret in a directory of its own that the realm reads through a link', () => {
    const spec = describeFor('prod');
    const mounts = Object.fromEntries([...spec.configFiles, ...spec.secretFiles].map((file) => [file.source, file.mountPath]));
    expect(mounts).toEqual({
      'config/elasticsearch.yml': '/usr/share/elasticsearch/config/elasticsearch.yml',
      'config/roles.yml': '/usr/share/elasticsearch/config/roles.yml',
      'config/users_roles': '/usr/share/elasticsearch/config/users_roles',
      'config/users': '/usr/share/elasticsearch/config/secrets/users',
      'config/monitor-auth': '/usr/share/elasticsearch/config/secrets/monitor-auth',
    });
    expect(spec.secretFiles.map((file) => file.source)).toEqual(['config/users', 'config/monitor-auth']);
    for (const source of Object.keys(mounts)) readEngineFile(source);
    // The file realm reads config/users only: the container links it to the secret file, then
    // starts the image's entrypoint as the image would
    expect(spec.command).toBeUndefined();
    expect(spec.args).toEqual(['sh', '-c', 'ln -sfn secrets/users /usr/share/elasticsearch/config/users && exec /usr/local/bin/docker-entrypoint.sh eswrapper']);
  });

  it('runs as uid 1000 in group 0 with a writable root filesystem and connects over HTTP', () => {
    const spec = describeFor('dev');
    expect(spec).toMatchObject({
      runAs: { user: 1000, group: 0 },
      readOnlyRootFilesystem: false,
      dataPath: '/usr/share/elasticsearch/data',
      component: 'search',
      ports: [{ name: 'http', containerPort: 9200 }],
      appConnection: { scheme: 'http', username: 'allixios_app', passwordSecret: 'app-password' },
      adminConnection: { scheme: 'http', username: 'elastic', passwordSecret: 'elastic-password' },
    });
    expect(elasticsearch.urlVariable).toBe('ELASTICSEARCH_URL');
  });
});

describe('TLS (allixios:tls)', () => {
  const tlsSpec = describeWithDefaults(elasticsearch, 'prod', { tls: true });
  const plainSpec = describeWithDefaults(elasticsearch, 'prod', { tls: false, replicas: 1 });
  const settingsOf = (spec: EngineSpec) => Object.fromEntries(Object.entries(spec.env).filter(([name]) => DOCKER_SETTING_VARIABLE.test(name)));

  it('passes only documented TLS settings, with accepted values, on and off', () => {
    expect(settingErrors(settingsOf(tlsSpec))).toEqual([]);
    expect(settingErrors(settingsOf(plainSpec))).toEqual([]);
    // And the checker refuses a misspelled TLS setting and a path outside the config directory
    expect(settingErrors({ 'xpack.security.http.ssl.certficate': '/usr/share/elasticsearch/config/tls/tls.crt', 'xpack.security.http.ssl.key': '/etc/tls.key' })).toEqual([
      'xpack.security.http.ssl.certficate: not a setting this test knows (add it with the page that documents it)',
      `xpack.security.http.ssl.key: unexpected value "/etc/tls.key" (see ${HTTP_TLS})`,
    ]);
  });

  it('serves HTTP and transport over TLS from the mounted PEM files, transport verifying its peers fully', () => {
    expect(settingsOf(tlsSpec)).toMatchObject({
      'xpack.security.http.ssl.enabled': 'true',
      'xpack.security.http.ssl.certificate': '/usr/share/elasticsearch/config/tls/tls.crt',
      'xpack.security.http.ssl.key': '/usr/share/elasticsearch/config/tls/tls.key',
      'xpack.security.http.ssl.certificate_authorities': '/usr/share/elasticsearch/config/tls/ca.crt',
      'xpack.security.http.ssl.client_authentication': 'none',
      'xpack.security.http.ssl.supported_protocols': 'TLSv1.3,TLSv1.2',
      'xpack.security.transport.ssl.enabled': 'true',
      'xpack.security.transport.ssl.certificate': '/usr/share/elasticsearch/config/tls/tls.crt',
      'xpack.security.transport.ssl.key': '/usr/share/elasticsearch/config/tls/tls.key',
      'xpack.security.transport.ssl.certificate_authorities': '/usr/share/elasticsearch/config/tls/ca.crt',
      'xpack.security.transport.ssl.verification_mode': 'full',
    });
    expect(tlsSpec.tls).toEqual({ directory: '/usr/share/elasticsearch/config/tls' });
    // Elasticsearch reloads the files itself: no reload command for the targets to run
    expect(tlsSpec.tls?.reload).toBeUndefined();
  });

  it('without TLS turns both layers off explicitly and keeps HTTP health checks', () => {
    expect(settingsOf(plainSpec)).toMatchObject({ 'xpack.security.http.ssl.enabled': 'false', 'xpack.security.transport.ssl.enabled': 'false' });
    expect(Object.keys(settingsOf(plainSpec)).filter((name) => name.includes('.ssl.'))).toHaveLength(2);
    expect(plainSpec.tls).toBeUndefined();
    expect(plainSpec.healthCheck.command.join(' ')).toContain('"http://127.0.0.1:9200/_cluster/health');
  });

  it('checks health over HTTPS, verifying the certificate with ca.crt for localhost', () => {
    for (const command of [tlsSpec.healthCheck.command, tlsSpec.healthCheck.liveCommand!]) {
      const line = command.join(' ');
      expect(line).toContain('curl --cacert /usr/share/elasticsearch/config/tls/ca.crt --resolve localhost:9200:127.0.0.1 ');
      expect(line).toContain('https://localhost:9200/');
      expect(line).not.toMatch(/ -k | --insecure|http:\/\//);
    }
    expect(tlsSpec.healthCheck.command.join(' ')).toContain('-H @"$ES_MONITOR_AUTH_FILE" "https://localhost:9200/_cluster/health?local=true&timeout=5s"');
  });

  it('connects over https, with no CA in the URL (the client is given it)', () => {
    expect(tlsSpec.appConnection.tls).toEqual({ scheme: 'https' });
    expect(tlsSpec.adminConnection.tls).toEqual({ scheme: 'https' });
  });
});

describe('a single node (Docker, a stack of one member)', () => {
  it('elects itself and keeps its transport layer on loopback, with no cluster to describe', () => {
    for (const environment of ENVIRONMENTS) {
      for (const tls of [false, true]) {
        const spec = describeWithDefaults(elasticsearch, environment, { tls, replicas: 1 });
        expect(spec.env).toMatchObject({ 'discovery.type': 'single-node', 'transport.host': '127.0.0.1' });
        expect(spec.highAvailability).toBeUndefined();
        expect(spec.ports).toEqual([{ name: 'http', containerPort: 9200 }]);
      }
    }
  });

  it('runs one node where nothing is at stake, three in staging and prod', () => {
    expect(Object.fromEntries(ENVIRONMENTS.map((environment) => [environment, elasticsearch.sizing[environment].replicas ?? 1]))).toEqual({
      dev: 1,
      staging: 3,
      prod: 3,
      ephemeral: 1,
    });
  });
});

/** The engine for a stack of `replicas` members, TLS on (Kubernetes' default), as a stack would describe it. */
function describeCluster(options: { replicas?: number; tls?: boolean; formCluster?: boolean; environment?: Environment } = {}): EngineSpec {
  const environment = options.environment ?? 'prod';
  const sizing = elasticsearch.sizing[environment];
  return engineSpec(elasticsearch, {
    environment,
    version: elasticsearch.defaultVersion,
    replicas: options.replicas ?? 3,
    storage: sizing.storage,
    resources: sizing.resources,
    options: elasticsearch.optionsSchema.parse(options.formCluster === undefined ? {} : { formCluster: options.formCluster }),
    tls: options.tls ?? true,
  });
}

/** A member's settings variables as the target gives them: the engine's, then the cluster's over them. */
function memberSettings(spec: EngineSpec): Record<string, string> {
  const env = { ...spec.env, ...spec.highAvailability!.env };
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => DOCKER_SETTING_VARIABLE.test(entry[0]) && typeof entry[1] === 'string'));
}

const MEMBER_ADDRESS = 'elasticsearch-1.elasticsearch-headless.allixios-prod.svc.cluster.local:9300';

/**
 * Runs the member's start script as the container would, with a stand-in for the image's
 * entrypoint that records the settings variables it is started with and its arguments. The image's
 * `sh` is bash (UBI), which hands variables with dots in their names on to the programs it starts,
 * as the entrypoint (bash too) does; dash would drop them.
 */
function runStartScript(variables: Record<string, string>): { settings: Record<string, string>; args: string[]; usersLink: string } {
  const directory = mkdtempSync(join(tmpdir(), 'es-start-'));
  const configPath = join(directory, 'config');
  mkdirSync(configPath);
  const entrypoint = join(directory, 'docker-entrypoint.sh');
  const recorded = join(directory, 'recorded');
  writeFileSync(entrypoint, `#!/bin/bash\nenv > ${recorded}.env\nprintf '%s\\n' "$@" > ${recorded}.args\n`);
  chmodSync(entrypoint, 0o755);
  const run = spawnSync('bash', ['-c', memberStartScript({ configPath, entrypoint })], { env: { PATH: process.env.PATH, ...variables }, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  const settings = Object.fromEntries(
    readFileSync(`${recorded}.env`, 'utf8')
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
      .filter(([name]) => DOCKER_SETTING_VARIABLE.test(name!)),
  ) as Record<string, string>;
  return { settings, args: readFileSync(`${recorded}.args`, 'utf8').trim().split('\n'), usersLink: readlinkSync(join(configPath, 'users')) };
}

/** Whether a certificate name covers `host` (RFC 6125: a wildcard stands for exactly one left-most label). */
function certificateCovers(names: readonly string[], host: string): boolean {
  return names.some((name) => (name.startsWith('*.') ? host.slice(host.indexOf('.') + 1) === name.slice(2) && !host.slice(0, host.indexOf('.')).includes('.') : name === host));
}

describe('a cluster of nodes (a stack of several members, TLS on)', () => {
  it('uses only documented settings with accepted values: literals, the pod-filled node name, and what the start script adds', () => {
    // Given a member with a known zone and the settings of every source
    const spec = describeCluster({ formCluster: true });
    const started = runStartScript({ [TRANSPORT_ADDRESS_VARIABLE]: MEMBER_ADDRESS, [ZONE_VARIABLE]: 'europe-west1-b' });
    const fromPod = Object.fromEntries(
      Object.keys(spec.highAvailability!.memberEnv)
        .filter((name) => DOCKER_SETTING_VARIABLE.test(name))
        .map((name) => [name, 'elasticsearch-1']),
    );
    // Then each is a setting the documentation lists, with a value it accepts
    expect(settingErrors(memberSettings(spec))).toEqual([]);
    expect(fromPod).toEqual({ 'node.name': 'elasticsearch-1' });
    expect(settingErrors(fromPod)).toEqual([]);
    expect(settingErrors(started.settings)).toEqual([]);
    expect(Object.keys(started.settings).sort()).toEqual([...START_SETTINGS].sort());
    // And the checkers refuse what Elasticsearch would: a seed host with a bad port, an unknown attribute
    expect(settingErrors({ 'discovery.seed_hosts': 'elasticsearch-headless:93000', 'node.attr.rack': 'a' })).toEqual([
      `discovery.seed_hosts: unexpected value "elasticsearch-headless:93000" (see ${DISCOVERY})`,
      'node.attr.rack: not a setting this test knows (add it with the page that documents it)',
    ]);
  });

  it('runs master-eligible data nodes (the default roles) that discover each other through the headless Service, over transport TLS on 9300', () => {
    const spec = describeCluster();
    const ha = spec.highAvailability!;
    expect(memberSettings(spec)).toMatchObject({
      'discovery.type': 'multi-node',
      'transport.host': '0.0.0.0',
      'transport.port': '9300',
      'xpack.security.transport.ssl.enabled': 'true',
      'xpack.security.transport.ssl.verification_mode': 'full',
      'xpack.security.transport.ssl.client_authentication': 'required',
    });
    // Every node master-eligible and holding data: no node.roles narrows Elasticsearch's defaults.
    expect(Object.keys(memberSettings(spec)).filter((name) => name.startsWith('node.roles'))).toEqual([]);
    expect(ha.ports).toEqual([{ name: 'transport', containerPort: 9300 }]);
    expect(ha.memberEnv).toEqual({
      'node.name': { field: 'metadata.name' },
      ALLIXIOS_TRANSPORT_ADDRESS: { address: 9300 },
      ALLIXIOS_ZONE: { field: "metadata.labels['topology.kubernetes.io/zone']" },
    });
    // Elasticsearch clusters by itself: its own image and entrypoint, no role label, no API access
    expect(ha).toMatchObject({ manager: 'Elasticsearch cluster', startInParallel: true });
    for (const key of ['image', 'command', 'roleLabel', 'managedServices', 'kubernetesAccess', 'tlsReload'] as const) expect(ha[key]).toBeUndefined();
    expect(ha.args).toEqual(['sh', '-c', memberStartScript({ configPath: '/usr/share/elasticsearch/config', entrypoint: '/usr/local/bin/docker-entrypoint.sh' })]);
  });

  it('lists every member in cluster.initial_master_nodes while the stack forms the cluster, and never otherwise', () => {
    expect(memberSettings(describeCluster({ formCluster: true }))['cluster.initial_master_nodes']).toBe('elasticsearch-0,elasticsearch-1,elasticsearch-2');
    expect(memberSettings(describeCluster({ formCluster: true, replicas: 5 }))['cluster.initial_master_nodes']).toBe(
      'elasticsearch-0,elasticsearch-1,elasticsearch-2,elasticsearch-3,elasticsearch-4',
    );
    for (const formCluster of [undefined, false]) {
      const spec = describeCluster({ formCluster });
      expect({ ...spec.env, ...spec.highAvailability!.env }).not.toHaveProperty(['cluster.initial_master_nodes']);
      expect(spec.highAvailability!.args!.join(' ')).not.toContain('initial_master_nodes');
    }
  });

  it('starts each member with its DNS name published and the headless Service as seed host, names its certificate carries', () => {
    // Given the pod's variables, settings among them (node.name from the pod, the cluster's literals)
    const { settings, args, usersLink } = runStartScript({
      [TRANSPORT_ADDRESS_VARIABLE]: MEMBER_ADDRESS,
      [ZONE_VARIABLE]: '',
      'node.name': 'elasticsearch-1',
      'discovery.type': 'multi-node',
    });
    expect(settings).toEqual({
      'node.name': 'elasticsearch-1',
      'discovery.type': 'multi-node',
      'network.publish_host': 'elasticsearch-1.elasticsearch-headless.allixios-prod.svc.cluster.local',
      'discovery.seed_hosts': 'elasticsearch-headless.allixios-prod.svc.cluster.local:9300',
    });
    // Then the image's entrypoint starts Elasticsearch, with the file realm's link in place
    expect(args).toEqual(['eswrapper']);
    expect(usersLink).toBe('secrets/users');
    // Full verification: a peer dials the seed host and each member by these names, which the
    // stack's certificate for the engine carries (a wildcard for the members).
    const names = certificateDnsNames('elasticsearch', 'elasticsearch-headless', 'allixios-prod');
    expect(certificateCovers(names, settings['network.publish_host']!)).toBe(true);
    expect(certificateCovers(names, settings['discovery.seed_hosts']!.split(':')[0]!)).toBe(true);
    expect(certificateCovers(names, 'elasticsearch-1.elasticsearch-headless.other.svc.cluster.local')).toBe(false);
    expect(certificateCovers(names, '10.0.3.7')).toBe(false);
  });

  it("turns on zone awareness only on a member that knows its node's zone", () => {
    const zoned = runStartScript({ [TRANSPORT_ADDRESS_VARIABLE]: MEMBER_ADDRESS, [ZONE_VARIABLE]: 'europe-west1-b' }).settings;
    expect(zoned).toMatchObject({ 'node.attr.zone': 'europe-west1-b', 'cluster.routing.allocation.awareness.attributes': 'zone' });
    // No zone label on the pod (a cluster without PodTopologyLabels, or nodes without zones): no
    // attribute, and no awareness, which would keep shards off a node without the attribute
    for (const unknown of [{ [ZONE_VARIABLE]: '' }, {}] as Record<string, string>[]) {
      const settings = runStartScript({ [TRANSPORT_ADDRESS_VARIABLE]: MEMBER_ADDRESS, ...unknown }).settings;
      expect(Object.keys(settings).filter((name) => name.startsWith('node.attr.') || name.startsWith('cluster.routing.'))).toEqual([]);
    }
  });

  it('is ready once the node has joined a cluster with an elected master, alive while it answers HTTP at all', () => {
    const spec = describeCluster();
    const check = spec.highAvailability!.healthCheck!;
    // The stand-in curl answers as the node would; the check runs as the probe runs it
    const directory = mkdtempSync(join(tmpdir(), 'es-ready-'));
    writeFileSync(join(directory, 'curl'), '#!/bin/sh\necho "$*" > "$0.args"\nprintf \'%s\' "$BODY"\nexit "${CURL_EXIT:-0}"\n');
    chmodSync(join(directory, 'curl'), 0o755);
    const ready = (body: string, curlExit = 0) =>
      spawnSync(check.command[0]!, check.command.slice(1), {
        env: { PATH: `${directory}:${process.env.PATH}`, BODY: body, CURL_EXIT: String(curlExit), ES_MONITOR_AUTH_FILE: '/usr/share/elasticsearch/config/secrets/monitor-auth' },
        encoding: 'utf8',
      }).status;
    expect(ready('{"cluster_name":"allixios","cluster_uuid":"Xq2","master_node":"b5N0LQ"}')).toBe(0);
    expect(ready('{"cluster_name":"allixios","cluster_uuid":"_na_","master_node":null}')).toBe(1);
    expect(ready('', 22)).toBe(1);
    const asked = readFileSync(join(directory, 'curl.args'), 'utf8');
    expect(asked).toContain('--cacert /usr/share/elasticsearch/config/tls/ca.crt --resolve localhost:9200:127.0.0.1 -fsS');
    expect(asked).toContain('https://localhost:9200/_cluster/state/master_node?local=true');
    expect(asked).toContain('-H @/usr/share/elasticsearch/config/secrets/monitor-auth');
    // Alive, starting and recovering alike: the single node's check, any HTTP answer
    expect(check.liveCommand).toEqual(describeWithDefaults(elasticsearch, 'prod', { tls: true }).healthCheck.liveCommand);
    expect(check.liveCommand!.join(' ')).not.toContain(' -f');
    expect(check.startupSeconds).toBe(300);
  });

  it('refuses two nodes, several nodes without TLS, and forming a cluster of one node, naming the key', () => {
    const refusal = (options: Parameters<typeof describeCluster>[0]) => {
      try {
        describeCluster(options);
      } catch (error) {
        if (error instanceof EngineSettingError) return { path: error.path, received: error.received };
        throw error;
      }
      return undefined;
    };
    expect(refusal({ replicas: 2 })).toEqual({ path: ['replicas'], received: 2 });
    expect(refusal({ replicas: 3, tls: false })).toEqual({ path: ['replicas'], received: 3 });
    expect(refusal({ replicas: 1, formCluster: true })).toEqual({ path: ['options', 'formCluster'], received: true });
    expect(refusal({ replicas: 1, formCluster: false })).toBeUndefined();
    expect(refusal({ replicas: 4 })).toBeUndefined();
    // As the stack config reports them
    const staging = (elasticsearchConfig: Record<string, unknown>, tls = true) =>
      parseStackConfig(
        { environment: 'staging', namespace: 'allixios-staging', tls, bootstrap: { enabled: false }, engines: withPostgresqlImage({ elasticsearch: elasticsearchConfig }) },
        'allixios',
        'staging',
      );
    expect(() => staging({ replicas: 2 })).toThrow(
      'allixios:engines.elasticsearch.replicas: expected 1 (a single node) or at least 3: of two master-eligible nodes only one votes, and losing it stops the cluster',
    );
    expect(() => staging({}, false)).toThrow('allixios:engines.elasticsearch.replicas: expected 1 on a stack without TLS (allixios:tls false)');
    expect(() => staging({ replicas: 1, options: { formCluster: true } })).toThrow(
      'allixios:engines.elasticsearch.options.formCluster: expected false or unset on a stack of one node',
    );
    expect(() => staging({ options: { formCluster: 'yes' } })).toThrow('allixios:engines.elasticsearch.options.formCluster');
    expect(staging({ options: { formCluster: true } }).engines.find((engine) => engine.spec.name === 'elasticsearch')!.spec.replicas).toBe(3);
  });
});
