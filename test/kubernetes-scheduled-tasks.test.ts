/**
 * An engine's scheduled tasks as the Kubernetes target renders them (under mocks): a CronJob in the
 * engine's image, admitted by the engine's NetworkPolicy, with the connection's URL (TLS form on a
 * TLS stack, the CA mounted where it names it) and the password from the engine's Secret by
 * reference, valid against the Kubernetes schema; the policy pack accepts it.
 */
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { describe, expect, it } from 'vitest';
import { ENGINE_MODULES } from '../databases/index.ts';
import { postgresql } from '../databases/postgresql/index.ts';
import type { EngineModule, ScheduledTask } from '../databases/engine.ts';
import { evaluate, ofType } from './support/pulumi.ts';
import { POSTGRESQL_IMAGE, withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const TASK: ScheduledTask = {
  name: 'maintenance',
  description: 'test task',
  schedule: '15 3 * * *',
  command: ['sh', '-c', 'psql "$TASK_URL" --command "SELECT 1"'],
  connection: 'admin',
  urlVariable: 'TASK_URL',
  passwordVariable: 'PGPASSWORD',
};

/** PostgreSQL as the platform describes it, with one scheduled task more. */
const withTask: EngineModule = { ...postgresql, describe: (settings) => ({ ...postgresql.describe(settings as never), scheduledTasks: [TASK] }) } as EngineModule;
const modules = ENGINE_MODULES.map((module) => (module.name === 'postgresql' ? withTask : module));

describe('a scheduled task on Kubernetes', () => {
  it('is a CronJob in the engine image, admitted as a client, with the URL and the password by reference', async () => {
    const staging = await evaluate(
      { environment: 'staging', namespace: 'allixios-staging', bootstrap: { enabled: false }, engines: withPostgresqlImage() },
      'staging',
      {},
      modules,
    );
    const cronJobs = ofType(staging, 'kubernetes:batch/v1:CronJob').map((resource) => resource.inputs as Json);
    expect(cronJobs.map((cronJob) => cronJob.metadata.name)).toEqual(['postgresql-maintenance']);
    const [cronJob] = cronJobs;
    new CronJob(cronJob as never).validate();
    expect(cronJob!.spec).toMatchObject({ schedule: '15 3 * * *', concurrencyPolicy: 'Forbid' });
    const pod = cronJob!.spec.jobTemplate.spec.template as Json;
    expect(pod.metadata.labels['allixios.io/client-postgresql']).toBe('true');
    const container = pod.spec.containers[0] as Json;
    // The image the engine's members run: on a staging stack the project's image, which Patroni runs PostgreSQL from.
    const members = ofType(staging, 'kubernetes:apps/v1:StatefulSet').find((resource) => resource.name === 'allixios-postgresql-statefulset')!.inputs as Json;
    expect(container.image).toBe(members.spec.template.spec.containers[0].image);
    expect(container.image).toBe(POSTGRESQL_IMAGE);
    const env = Object.fromEntries((container.env as Json[]).map((entry) => [entry.name, entry]));
    // The URL names no password and verifies the server; the CA is mounted where it says.
    const url = new URL(env.TASK_URL.value);
    expect([url.username, url.password, url.host, url.searchParams.get('sslmode'), url.searchParams.get('sslrootcert')]).toEqual([
      'allixios_owner',
      '',
      'postgresql.allixios-staging.svc:5432',
      'verify-full',
      '/etc/allixios/tls/ca.crt',
    ]);
    expect(env.PGPASSWORD.valueFrom).toEqual({ secretKeyRef: { name: 'postgresql-credentials', key: 'owner-password' } });
    expect((container.volumeMounts as Json[]).map((mount) => mount.mountPath)).toEqual(['/tmp', '/etc/allixios/tls']);
    expect(pod.spec.volumes.find((volume: Json) => volume.name === 'tls-ca').configMap.name).toBe('allixios-ca-bundle');
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
  });

  it('is not rendered on Docker, which has no scheduler', async () => {
    const dev = await evaluate({ environment: 'dev' }, 'dev', {}, modules);
    expect(ofType(dev, 'kubernetes:batch/v1:CronJob')).toEqual([]);
  });
});
