import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { REDACTED, renderStack, type RenderResult } from '../stacks/render/render.ts';
import { ROOT } from './support/pulumi.ts';

const run = promisify(execFile);

describe('offline render of the prod stack', () => {
  let result: RenderResult;
  beforeAll(async () => {
    result = await renderStack(ROOT, 'prod', mkdtempSync(join(tmpdir(), 'render-')));
  });

  it('writes one multi-document YAML file per engine, plus the namespace and the TLS issuer', () => {
    expect(result.target).toBe('kubernetes');
    expect(readdirSync(result.directory).sort()).toEqual([
      'bootstrap.yaml',
      'clickhouse.yaml',
      'elasticsearch.yaml',
      'mongodb.yaml',
      'namespace.yaml',
      'postgresql.yaml',
      'redis.yaml',
      'tls.yaml',
    ]);
    // The stack's own CA (TLS is on by default): its root, its Issuer, the CA bundle for clients.
    expect(parseAllDocuments(readFileSync(join(result.directory, 'tls.yaml'), 'utf8')).map((document) => document.get('kind'))).toEqual(['Secret', 'Issuer', 'ConfigMap']);
    // PostgreSQL's file holds its engine's objects, Patroni's (its Services, identity and access) and
    // PgBouncer's, in the render's order (stacks/render/group.ts: the kinds it ranks, each by name;
    // then the others, ServiceAccount, Role, RoleBinding, Deployment and CronJob, by name).
    const objects = parseAllDocuments(readFileSync(join(result.directory, 'postgresql.yaml'), 'utf8')).map((document) => [
      document.get('kind'),
      String(document.getIn(['metadata', 'name'])).replace(/-[0-9a-f]{10}$/, '-<hash>'),
    ]);
    expect(objects).toEqual([
      ['Secret', 'postgresql-credentials'],
      // The backup jobs' pgbackrest.conf, one for both (README "Backups").
      ['ConfigMap', 'postgresql-backup-config-<hash>'],
      ['ConfigMap', 'postgresql-config-<hash>'],
      ['ConfigMap', 'postgresql-pgbouncer-config-<hash>'],
      ['Certificate', 'postgresql-pgbouncer-tls'],
      ['Certificate', 'postgresql-tls'],
      ['Service', 'postgresql'],
      ['Service', 'postgresql-config'],
      ['Service', 'postgresql-failover'],
      ['Service', 'postgresql-headless'],
      ['Service', 'postgresql-pgbouncer'],
      ['Service', 'postgresql-replicas'],
      ['Service', 'postgresql-sync'],
      ['StatefulSet', 'postgresql'],
      ['PodDisruptionBudget', 'postgresql'],
      ['PodDisruptionBudget', 'postgresql-pgbouncer'],
      ['NetworkPolicy', 'postgresql-ingress'],
      ['NetworkPolicy', 'postgresql-pgbouncer-ingress'],
      ['ServiceAccount', 'postgresql'],
      ['CronJob', 'postgresql-backup-diff'],
      ['CronJob', 'postgresql-backup-full'],
      ['Role', 'postgresql-patroni'],
      ['RoleBinding', 'postgresql-patroni'],
      ['Deployment', 'postgresql-pgbouncer'],
      ['CronJob', 'postgresql-stats-partitions'],
    ]);
  });

  it('contains no secret value the mocks generated, only the redaction marker', () => {
    const text = readdirSync(result.directory)
      .map((file) => readFileSync(join(result.directory, file), 'utf8'))
      .join('\n');
    expect(result.generatedSecrets.length).toBeGreaterThanOrEqual(15);
    for (const secret of result.generatedSecrets) expect(text).not.toContain(secret);
    const secret = parseAllDocuments(readFileSync(join(result.directory, 'redis.yaml'), 'utf8'))[0]!.toJS();
    expect(secret.kind).toBe('Secret');
    expect(secret.stringData).toEqual({
      'admin-password': REDACTED,
      'app-password': REDACTED,
      'monitor-password': REDACTED,
      'config.users.acl': REDACTED,
      'config.monitor-password': REDACTED,
      // prod serves TLS: the reload on renewal runs CONFIG SET as allixios_admin, from this file
      'config.admin-password': REDACTED,
      // Under Sentinel: the passwords of replication, of Sentinel on Redis and of the Sentinels to
      // each other, the replicas' masterauth file and the Sentinels' ACL and outgoing passwords.
      'replication-password': REDACTED,
      'sentinel-password': REDACTED,
      'sentinel-peer-password': REDACTED,
      'config.replication.conf': REDACTED,
      'config.sentinel-users.acl': REDACTED,
      'config.sentinel-auth.conf': REDACTED,
      // The snapshot job's user (databases/redis/backup.ts), on Redis and on Sentinel.
      'backup-password': REDACTED,
    });
  });

  it('renders the same files and diagram from a separate `npm run render` process, so a PR diff shows only real changes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'render-'));
    await run(join(ROOT, 'node_modules/.bin/tsx'), ['stacks/render/cli.ts', '--stack', 'prod', '--out', out], { cwd: ROOT });
    const directory = join(out, 'prod', 'kubernetes');
    expect(readdirSync(directory).sort()).toEqual(result.files);
    for (const file of result.files) {
      expect(readFileSync(join(directory, file), 'utf8'), file).toBe(readFileSync(join(result.directory, file), 'utf8'));
    }
    expect(readFileSync(join(out, 'prod', 'diagram.md'), 'utf8')).toBe(readFileSync(result.diagram, 'utf8'));
  });
});
