/**
 * PgBouncer's configuration as the project renders it (databases/postgresql/pgbouncer.ts), checked
 * without a process: every key is one the PgBouncer 1.18 manual documents, no rendered file holds
 * a password, and the pool arithmetic holds for every environment. The real PgBouncer runs the
 * rendered files in test/engines/pgbouncer-pooling.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENVIRONMENTS } from '../../databases/engine.ts';
import { APP_SESSION_OPTIONS, postgresql } from '../../databases/postgresql/index.ts';
import {
  connectionBudget,
  PGBOUNCER_PATHS,
  PGBOUNCER_REPLICAS,
  PGBOUNCER_SECRETS,
  pinnedSettings,
  poolSizes,
  renderPgBouncerIni,
  renderPgBouncerUserlist,
  STATS_USER,
} from '../../databases/postgresql/pgbouncer.ts';
import { renderSecretFile, scramSha256Verifier, templateSecretKeys } from '../../databases/secret-files.ts';

/**
 * The settings of PgBouncer 1.18's manual (pgbouncer.5, Debian's pgbouncer 1.18.0), section by
 * section, transcribed. `max_prepared_statements` (1.21) and `track_extra_parameters` (1.20) are
 * not in it.
 */
const DOCUMENTED_1_18 = {
  pgbouncer: [
    // Generic settings
    'logfile', 'pidfile', 'listen_addr', 'listen_port', 'unix_socket_dir', 'unix_socket_mode', 'unix_socket_group', 'user', 'pool_mode', 'max_client_conn',
    'default_pool_size', 'min_pool_size', 'reserve_pool_size', 'reserve_pool_timeout', 'max_db_connections', 'max_user_connections', 'server_round_robin',
    'ignore_startup_parameters', 'disable_pqexec', 'application_name_add_host', 'conffile', 'service_name', 'job_name', 'stats_period',
    // Authentication settings
    'auth_type', 'auth_hba_file', 'auth_file', 'auth_user', 'auth_query',
    // Log settings
    'syslog', 'syslog_ident', 'syslog_facility', 'log_connections', 'log_disconnections', 'log_pooler_errors', 'log_stats', 'verbose',
    // Console access control
    'admin_users', 'stats_users',
    // Connection sanity checks, timeouts
    'server_reset_query', 'server_reset_query_always', 'server_check_delay', 'server_check_query', 'server_fast_close', 'server_lifetime', 'server_idle_timeout',
    'server_connect_timeout', 'server_login_retry', 'client_login_timeout', 'autodb_idle_timeout', 'dns_max_ttl', 'dns_nxdomain_ttl', 'dns_zone_check_period', 'resolv_conf',
    // TLS settings
    'client_tls_sslmode', 'client_tls_key_file', 'client_tls_cert_file', 'client_tls_ca_file', 'client_tls_protocols', 'client_tls_ciphers', 'client_tls_ecdhcurve',
    'client_tls_dheparams', 'server_tls_sslmode', 'server_tls_ca_file', 'server_tls_key_file', 'server_tls_cert_file', 'server_tls_protocols', 'server_tls_ciphers',
    // Dangerous timeouts
    'query_timeout', 'query_wait_timeout', 'client_idle_timeout', 'idle_transaction_timeout', 'suspend_timeout',
    // Low-level network settings
    'pkt_buf', 'max_packet_size', 'listen_backlog', 'sbuf_loopcnt', 'so_reuseport', 'tcp_defer_accept', 'tcp_socket_buffer', 'tcp_keepalive', 'tcp_keepcnt',
    'tcp_keepidle', 'tcp_keepintvl', 'tcp_user_timeout',
  ],
  databases: ['dbname', 'host', 'port', 'user', 'password', 'auth_user', 'pool_size', 'min_pool_size', 'reserve_pool', 'connect_query', 'pool_mode', 'max_db_connections', 'client_encoding', 'datestyle', 'timezone'],
  users: ['pool_mode', 'max_user_connections'],
} as const; // prettier-ignore

const PASSWORDS: Record<string, string> = {
  'superuser-password': 'superuser-test-password-1',
  'owner-password': 'owner-test-password-1',
  'app-password': 'app-test-password-1',
  'readonly-password': 'readonly-test-password-1',
  'pgbouncer-stats-password': 'stats-test-password-1',
};

/** `section -> [key, value][]` of an ini file; values of `[databases]`/`[users]` entries stay whole. */
function sections(ini: string): Map<string, Array<[string, string]>> {
  const result = new Map<string, Array<[string, string]>>();
  let current = '';
  for (const line of ini.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith(';') || trimmed.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(trimmed);
    if (header) {
      current = header[1]!;
      result.set(current, []);
      continue;
    }
    const at = trimmed.indexOf('=');
    result.get(current)!.push([trimmed.slice(0, at).trim(), trimmed.slice(at + 1).trim()]);
  }
  return result;
}

/** The keys of a `[databases]` or `[users]` entry's value (`key=value key='quoted value' ...`). */
function entryKeys(value: string): string[] {
  return [...value.matchAll(/(\w+)=('(?:[^']|'')*'|\S+)/g)].map((match) => match[1]!);
}

const variants = ENVIRONMENTS.flatMap((environment) => [false, true].map((tls) => ({ environment, tls })));
const render = (environment: (typeof ENVIRONMENTS)[number], tls: boolean) =>
  renderPgBouncerIni({ primaryHost: 'postgresql.allixios.svc.cluster.local', replicas: PGBOUNCER_REPLICAS[environment], tls });

describe("PgBouncer's rendered configuration", () => {
  it.each(variants)('$environment, TLS $tls: every key is one PgBouncer 1.18 documents, each set once', ({ environment, tls }) => {
    const ini = sections(render(environment, tls));
    expect([...ini.keys()]).toEqual(['databases', 'users', 'pgbouncer']);
    const keys = ini.get('pgbouncer')!.map(([key]) => key);
    expect(keys.filter((key) => !(DOCUMENTED_1_18.pgbouncer as readonly string[]).includes(key))).toEqual([]);
    expect(new Set(keys).size).toBe(keys.length);
    for (const [, value] of ini.get('databases')!) expect(entryKeys(value).filter((key) => !(DOCUMENTED_1_18.databases as readonly string[]).includes(key))).toEqual([]);
    for (const [, value] of ini.get('users')!) expect(entryKeys(value).filter((key) => !(DOCUMENTED_1_18.users as readonly string[]).includes(key))).toEqual([]);
  });

  it.each(variants)('$environment, TLS $tls: transaction pooling with SCRAM, the reset always, and TLS both ways exactly when the stack serves it', ({ environment, tls }) => {
    const settings = new Map(sections(render(environment, tls)).get('pgbouncer')!);
    expect(settings.get('pool_mode')).toBe('transaction');
    expect(settings.get('auth_type')).toBe('scram-sha-256');
    expect(settings.get('auth_file')).toBe(PGBOUNCER_PATHS.authFile);
    expect(settings.get('server_reset_query_always')).toBe('1');
    expect(settings.get('admin_users')).toBe('');
    expect(settings.get('stats_users')).toBe(STATS_USER);
    expect(settings.get('ignore_startup_parameters')).toBe('options,extra_float_digits');
    const tlsSettings = [...settings.keys()].filter((key) => key.includes('_tls_'));
    if (!tls) {
      expect(tlsSettings).toEqual([]);
      return;
    }
    expect(Object.fromEntries(tlsSettings.map((key) => [key, settings.get(key)]))).toEqual({
      client_tls_sslmode: 'require',
      client_tls_cert_file: `${PGBOUNCER_PATHS.tlsDirectory}/tls.crt`,
      client_tls_key_file: `${PGBOUNCER_PATHS.tlsDirectory}/tls.key`,
      client_tls_protocols: 'tlsv1.2,tlsv1.3',
      server_tls_sslmode: 'verify-full',
      server_tls_ca_file: `${PGBOUNCER_PATHS.tlsDirectory}/ca.crt`,
      server_tls_protocols: 'tlsv1.2,tlsv1.3',
    });
  });

  it("applies every setting the application's URL pins, on connect and after every transaction", () => {
    const pinned = [...APP_SESSION_OPTIONS.matchAll(/-c ([a-z_]+)=(\S+)/g)].map(([, name, value]) => `SET ${name} = '${value}'`);
    expect(pinned.length).toBeGreaterThan(5);
    expect(pinnedSettings()).toBe(pinned.join('; '));
    const ini = sections(render('prod', true));
    const [[database, entry]] = ini.get('databases')! as [[string, string]];
    expect(database).toBe('allixios');
    expect(entry).toContain(`connect_query='${pinnedSettings().replaceAll("'", "''")}'`);
    // No user or password in the database entry: each client's own SCRAM login reaches the server.
    expect(entryKeys(entry).sort()).toEqual(['connect_query', 'dbname', 'host', 'port']);
    expect(new Map(ini.get('pgbouncer')!).get('server_reset_query')!.endsWith(pinnedSettings())).toBe(true);
  });
});

describe("PgBouncer's auth file", () => {
  const userlist = renderPgBouncerUserlist(PASSWORDS);

  it('holds a SCRAM-SHA-256 verifier for each user and no comment (PgBouncer 1.18 reads none there)', () => {
    const lines = userlist.trimEnd().split('\n');
    expect(lines.map((line) => /^"(\w+)" "SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+"$/.exec(line)?.[1])).toEqual(['allixios_app', STATS_USER]);
  });

  it("gives allixios_app the very verifier the server stores, so PgBouncer can log in with the client's keys", () => {
    const serverVerifiers = renderSecretFile(readFileSync(join(postgresql.directory, 'initdb', 'role-verifiers'), 'utf8'), PASSWORDS);
    const onServer = /^allixios_app (\S+)$/m.exec(serverVerifiers)![1];
    expect(userlist).toContain(`"allixios_app" "${onServer}"`);
    expect(onServer).toBe(scramSha256Verifier(PASSWORDS['app-password']!, 'app-password'));
  });

  it('names only the engine secrets and the ones PgBouncer adds', () => {
    const template = readFileSync(join(postgresql.directory, 'pgbouncer', 'userlist.txt'), 'utf8');
    const known = [...postgresql.secrets.map((secret) => secret.key), ...PGBOUNCER_SECRETS.map((secret) => secret.key)];
    expect(templateSecretKeys(template).sort()).toEqual(['app-password', 'pgbouncer-stats-password']);
    for (const key of templateSecretKeys(template)) expect(known).toContain(key);
  });

  it.each(variants)('$environment, TLS $tls: no rendered file holds a password', ({ environment, tls }) => {
    for (const text of [render(environment, tls), userlist]) {
      for (const password of Object.values(PASSWORDS)) expect(text).not.toContain(password);
      expect(text).not.toMatch(/password\s*=/);
    }
  });
});

describe("PgBouncer's pool sizes", () => {
  const budget = connectionBudget();

  it("share out max_connections as the project's files set it", () => {
    const conf = readFileSync(join(postgresql.directory, 'config', 'postgresql.conf'), 'utf8');
    expect(budget.maxConnections).toBe(Number(/^max_connections = (\d+)/m.exec(conf)![1]));
    expect(budget.app).toBe(Math.min(budget.appRoleLimit, budget.maxConnections - budget.reserved - budget.owner - budget.readonly - budget.monitoring));
    expect(budget.app).toBeGreaterThan(0);
  });

  it.each(ENVIRONMENTS)("%s: every replica, and one more during a rollout, fit into the application's share of the server", (environment) => {
    const replicas = PGBOUNCER_REPLICAS[environment];
    const sizes = poolSizes(replicas);
    expect((replicas + 1) * sizes.maxDbConnections).toBeLessThanOrEqual(budget.app);
    expect(budget.app).toBeLessThanOrEqual(budget.maxConnections - budget.reserved - budget.owner - budget.readonly - budget.monitoring);
    expect(budget.app).toBeLessThanOrEqual(budget.appRoleLimit);
    expect(sizes.defaultPoolSize + sizes.reservePoolSize).toBe(sizes.maxDbConnections);
    expect(sizes.defaultPoolSize).toBeGreaterThan(0);
    const settings = new Map(sections(render(environment, false)).get('pgbouncer')!);
    expect(Number(settings.get('max_db_connections'))).toBe(sizes.maxDbConnections);
    expect(Number(settings.get('default_pool_size'))).toBe(sizes.defaultPoolSize);
    expect(Number(settings.get('reserve_pool_size'))).toBe(sizes.reservePoolSize);
  });

  it('follow max_connections: a smaller server gives smaller pools, and one too small for the replicas is refused', () => {
    const conf = readFileSync(join(postgresql.directory, 'config', 'postgresql.conf'), 'utf8');
    const small = connectionBudget({ postgresqlConf: conf.replace(/^max_connections = \d+/m, 'max_connections = 60') });
    expect(small.app).toBe(60 - 3 - 10 - 10 - 5);
    expect(poolSizes(2, 1, small).maxDbConnections).toBe(Math.floor(32 / 3));
    const tiny = connectionBudget({ postgresqlConf: conf.replace(/^max_connections = \d+/m, 'max_connections = 30') });
    expect(() => poolSizes(2, 1, tiny)).toThrow(/leave each fewer than 2 of the application's 2 server connections/);
  });
});
