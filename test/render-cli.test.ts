import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/pulumi.ts';

const run = promisify(execFile);
const render = (...args: string[]) =>
  run(join(ROOT, 'node_modules/.bin/tsx'), ['stacks/render/cli.ts', ...args], { cwd: ROOT }).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

describe('npm run render', () => {
  it('writes one container spec per engine for the dev stack, with secrets redacted', async () => {
    const out = mkdtempSync(join(tmpdir(), 'render-'));
    const { code, stdout } = await render('--stack', 'dev', '--out', out);
    expect(code).toBe(0);
    expect(stdout).toContain('(docker)');
    const directory = join(out, 'dev', 'docker');
    expect(readdirSync(directory).sort()).toEqual(['bootstrap.json', 'clickhouse.json', 'elasticsearch.json', 'mongodb.json', 'network.json', 'postgresql.json', 'redis.json']);
    const postgresql = JSON.parse(readFileSync(join(directory, 'postgresql.json'), 'utf8'));
    expect(Object.keys(postgresql)).toEqual(['container', 'remoteimage', 'volume']);
    // No password in the environment (the superuser's is a secret file): it shows as it is. Of
    // the uploads, the secret files (the superuser's password, the roles' verifiers) show where
    // they go but not what they hold; the config files show as they are.
    expect(postgresql.container.envs).toContain('POSTGRES_PASSWORD_FILE=/etc/postgresql/secrets/superuser-password');
    expect(postgresql.container.envs.some((entry: string) => entry.startsWith('POSTGRES_PASSWORD='))).toBe(false);
    const uploads = postgresql.container.uploads as Array<{ file: string; content: string }>;
    expect(uploads.filter((upload) => upload.content === '<redacted>').map((upload) => upload.file)).toEqual([
      '/etc/postgresql/secrets/role-verifiers',
      '/etc/postgresql/secrets/superuser-password',
    ]);
    expect(uploads.find((upload) => upload.file === '/etc/postgresql/pg_hba.conf')!.content).toContain('scram-sha-256');
    // An engine whose files hold no digest ships them as they are.
    const mongodb = JSON.parse(readFileSync(join(directory, 'mongodb.json'), 'utf8'));
    expect(mongodb.container.uploads.map((upload: { file: string }) => upload.file)).toContain('/etc/mongo/mongod.conf');
  });

  it('refuses an unknown stack and names the stacks it has', async () => {
    const { code, stderr } = await render('--stack', 'qa', '--out', tmpdir());
    expect(code).toBe(2);
    expect(stderr).toMatch(/render: no stack file .*Pulumi\.qa\.yaml; stacks with a file here: dev, prod, staging/);
  });

  it('fails with the config error, and writes nothing, for a stack with invalid config', async () => {
    const stackFile = join(ROOT, 'Pulumi.broken-render-test.yaml');
    writeFileSync(stackFile, 'config:\n  allixios:environment: prod\n  allixios:namespace: allixios-prod\n  allixios:engines:\n    postgresql:\n      storage: 10 gigs\n');
    const out = mkdtempSync(join(tmpdir(), 'render-'));
    try {
      const { code, stderr } = await render('--stack', 'broken-render-test', '--out', out);
      expect(code).toBe(1);
      expect(stderr).toContain('allixios:engines.postgresql.storage: expected a Kubernetes quantity such as 20Gi, got "10 gigs"');
      expect(readdirSync(out)).toEqual([]);
    } finally {
      rmSync(stackFile);
    }
  });

  it('prints usage without --stack', async () => {
    const { code, stderr } = await render('--out', tmpdir());
    expect(code).toBe(2);
    expect(stderr).toContain('usage: npm run render -- --stack <name> --out <dir>');
  });
});
