/**
 * An engine's scheduled tasks (`EngineSpec.scheduledTasks`) as CronJobs: the engine's own image, as
 * a client of the engine (the label its NetworkPolicy admits), with the connection's URL and its
 * password from the engine's Secret, and on a TLS stack the CA bundle where the URL names it.
 * Nothing engine-specific: the task says what to run.
 */
import { posix } from 'node:path';
import type * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { CLIENT_CA_PATH, connectionUrl } from '../../databases/connection.ts';
import type { EngineSpec, ScheduledTask } from '../../databases/engine.ts';
import { clientLabel, partLabels } from '../labels.ts';
import { restrictedContainer, restrictedJobPod } from './pod-security.ts';
import { CA_CONFIG_MAP } from './tls.ts';

export interface ScheduledTaskArgs {
  spec: EngineSpec;
  task: ScheduledTask;
  namespace: pulumi.Input<string>;
  instance: string;
  /** The engine's Service host (`<engine>.<namespace>.svc`) and the Secret holding its passwords. */
  host: pulumi.Input<string>;
  secretName: pulumi.Input<string>;
}

/** The CronJob's name: `<engine>-<task>`. */
export function scheduledTaskName(spec: Pick<EngineSpec, 'name'>, task: Pick<ScheduledTask, 'name'>): string {
  return `${spec.name}-${task.name}`;
}

/** The CronJob of one task (batch/v1). */
export function scheduledTaskCronJob(args: ScheduledTaskArgs): k8s.batch.v1.CronJobArgs {
  const { spec, task } = args;
  const name = scheduledTaskName(spec, task);
  const labels = { ...partLabels(name, args.instance, 'scheduled-task'), [clientLabel(spec.name)]: 'true' };
  const connection = task.connection === 'admin' ? spec.adminConnection : spec.appConnection;
  const url = pulumi.output(args.host).apply((host) => connectionUrl(connection, undefined, host, spec.ports[0]!.containerPort, spec.tls ? {} : undefined));
  const caVolume = spec.tls ? [{ name: 'tls-ca', configMap: { name: CA_CONFIG_MAP } }] : [];
  return {
    metadata: { name, namespace: args.namespace, labels, annotations: { 'allixios.io/description': task.description } },
    spec: {
      schedule: task.schedule,
      timeZone: 'Etc/UTC',
      // One run at a time; a run missed by more than an hour (the cluster was down) is skipped,
      // the next one catches up.
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 1,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels },
        spec: {
          backoffLimit: task.retries ?? 2,
          activeDeadlineSeconds: task.deadlineSeconds ?? 1800,
          template: {
            metadata: { labels },
            spec: {
              ...restrictedJobPod(spec.runAs),
              containers: [
                {
                  name: task.name,
                  image: `${spec.image.repository}:${spec.image.tag}`,
                  imagePullPolicy: 'IfNotPresent',
                  command: task.command,
                  env: [
                    ...Object.entries(task.env ?? {}).map(([variable, value]) => ({ name: variable, value })),
                    { name: task.urlVariable, value: url },
                    { name: task.passwordVariable, valueFrom: { secretKeyRef: { name: args.secretName, key: connection.passwordSecret } } },
                  ],
                  resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
                  securityContext: restrictedContainer(),
                  volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...(spec.tls ? [{ name: 'tls-ca', mountPath: posix.dirname(CLIENT_CA_PATH), readOnly: true }] : [])],
                },
              ],
              volumes: [{ name: 'tmp', emptyDir: {} }, ...caVolume],
            },
          },
        },
      },
    },
  };
}
