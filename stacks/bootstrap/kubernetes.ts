/**
 * The bootstrap on the Kubernetes target: a Job from a pinned image, labelled so the engines'
 * NetworkPolicies admit it, started after every StatefulSet is ready. Pulumi waits for the Job;
 * `pulumi up` fails when it fails. Passwords reach it only by reference to the engines' Secrets:
 * each URL comes without its password, which the bootstrap puts in itself (bootstrap/env.ts).
 */
import { posix } from 'node:path';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { ConnectionSpec, EngineModule, EngineSpec } from '../../databases/engine.ts';
import { APP_SUFFIX } from '../../bootstrap/env.ts';
import { CLIENT_CA_PATH, connectionUrl } from '../../databases/connection.ts';
import type { StackConfig } from '../config/index.ts';
import { BOOTSTRAP_POD_LABELS } from '../labels.ts';
import { restrictedContainer, restrictedJobPod } from '../kubernetes/pod-security.ts';
import { clusterConnections, memberAddresses } from '../kubernetes/high-availability.ts';
import { fileKey, previousKey } from '../credentials.ts';
import { tlsEnginesEnv } from './tls.ts';
import { bootstrapContentHash, bootstrapTrigger } from './trigger.ts';

/** An engine as the bootstrap Job reaches it. */
export interface BootstrapTarget {
  module: EngineModule;
  spec: EngineSpec;
  /** The engine's Secret, holding its passwords. */
  secretName: pulumi.Input<string>;
  /** In-cluster host of its ClusterIP Service. */
  host: string;
  /** Secret keys whose previous password a rotation keeps (in the Secret as `previous-<key>`). */
  previousKeys: readonly string[];
  /** Settings of the engine's clients besides its URLs (`companionClientSettings`: where Redis's Sentinels are). */
  settings?: Record<string, string>;
}

/** Arguments of {@link KubernetesBootstrap}. */
export interface KubernetesBootstrapArgs {
  config: StackConfig;
  root: string;
  namespace: pulumi.Input<string>;
  instance: string;
  targets: readonly BootstrapTarget[];
  /** The engines' StatefulSets: the Job starts once all are ready. */
  engines: readonly pulumi.Resource[];
  /** Changes with every password rotation (`credentialsFingerprint`): a rotation runs the bootstrap again. */
  credentialsFingerprint: pulumi.Input<string>;
  /** The ConfigMap with the stack's CA bundle, when it serves TLS: mounted where the URLs' `CLIENT_CA_PATH` expects it. */
  caConfigMap?: pulumi.Input<string>;
}

/**
 * A connection's URL without its password: the bootstrap reads the password from
 * `<variable>_PASSWORD` and puts it in percent-encoded (bootstrap/env.ts). Not `$(VAR)`:
 * Kubernetes would paste the password in as it is, and one with `@:/#%` breaks the URL.
 */
export function urlWithoutPassword(target: BootstrapTarget, connection: ConnectionSpec = clusterConnections(target.spec).adminConnection): string {
  return connectionUrl(connection, undefined, target.host, target.spec.ports[0]!.containerPort, target.spec.tls ? {} : undefined);
}

/** Where the stack's members are, for the desired members of an engine whose membership the bootstrap keeps. */
export interface MemberDirectory {
  namespace: string;
  clusterDomain: string;
}

/**
 * The desired members of an engine whose membership the bootstrap keeps
 * (`HighAvailabilitySpec.bootstrapMembers`): its variable and every member's address; none for
 * another engine.
 */
export function bootstrapMembers(target: Pick<BootstrapTarget, 'spec'>, directory: MemberDirectory): { variable: string; members: string[] } | undefined {
  const wanted = target.spec.highAvailability?.bootstrapMembers;
  if (!wanted) return undefined;
  return { variable: wanted.variable, members: memberAddresses(target.spec, directory.namespace, directory.clusterDomain, wanted.port) };
}

/**
 * What the Job reads for one engine (bootstrap/env.ts), the passwords by reference to the
 * engine's Secret: the admin URL and password, the admin's previous password while a rotation
 * keeps it, the application's URL and password (checked after the run), and the secret files the
 * bootstrap compares (REDIS_USERS_ACL, ...).
 */
export function engineEnv(target: BootstrapTarget, directory: MemberDirectory): k8s.types.input.core.v1.EnvVar[] {
  const variable = target.module.urlVariable;
  const fromSecret = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: target.secretName, key } } });
  const { adminConnection, appConnection } = clusterConnections(target.spec);
  const members = bootstrapMembers(target, directory);
  return [
    { name: variable, value: urlWithoutPassword(target) },
    ...(members ? [{ name: members.variable, value: members.members.join(',') }] : []),
    fromSecret(`${variable}_PASSWORD`, adminConnection.passwordSecret),
    ...(target.previousKeys.includes(adminConnection.passwordSecret) ? [fromSecret(`${variable}_PREVIOUS_PASSWORD`, previousKey(adminConnection.passwordSecret))] : []),
    { name: `${variable}${APP_SUFFIX}`, value: urlWithoutPassword(target, appConnection) },
    fromSecret(`${variable}${APP_SUFFIX}_PASSWORD`, appConnection.passwordSecret),
    ...target.spec.secretFiles.flatMap((file) => (file.bootstrapVariable ? [fromSecret(file.bootstrapVariable, fileKey(file.source))] : [])),
    ...Object.entries(target.settings ?? {}).map(([name, value]) => ({ name, value })),
    // The engine's backup state the bootstrap applies (Elasticsearch's repository and policy); no secret.
    ...Object.entries(target.spec.backup?.bootstrapEnv ?? {}).map(([name, value]) => ({ name, value })),
  ];
}

/** One bootstrap run on Kubernetes. Type token `allixios:kubernetes:Bootstrap`. */
export class KubernetesBootstrap extends pulumi.ComponentResource {
  readonly job: k8s.batch.v1.Job;
  readonly trigger: string;

  constructor(name: string, args: KubernetesBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
    super('allixios:kubernetes:Bootstrap', name, {}, opts);
    const { image, timeoutSeconds } = args.config.bootstrap;
    if (!image) throw new Error('the Kubernetes bootstrap needs allixios:bootstrap.image (the config validation requires it)');
    const directory: MemberDirectory = { namespace: args.config.namespace, clusterDomain: args.config.clusterDomain };
    // The desired members are where an engine is too: a change of the replicas runs the bootstrap
    // again, which brings the set's membership to them.
    this.trigger = bootstrapTrigger(
      bootstrapContentHash(args.root),
      image,
      // A change of the backup state the bootstrap applies (a schedule, the retention) runs it again.
      args.targets.flatMap((target) => [
        `${target.host}:${target.spec.ports[0]!.containerPort}`,
        ...(bootstrapMembers(target, directory)?.members ?? []),
        ...Object.entries(target.spec.backup?.bootstrapEnv ?? {}).map(([name, value]) => `${name}=${value}`),
      ]),
    );
    const labels = {
      'app.kubernetes.io/name': 'allixios-bootstrap',
      ...BOOTSTRAP_POD_LABELS,
      'app.kubernetes.io/instance': args.instance,
      'app.kubernetes.io/managed-by': 'pulumi',
    };

    // A Job's log is not a terminal: ask for the waits' progress lines anyway (a stuck deploy is
    // debugged from them).
    const tlsEngines = tlsEnginesEnv(args.config);
    const env: k8s.types.input.core.v1.EnvVar[] = [
      { name: 'ALLIXIOS_ENVIRONMENT', value: args.config.environment },
      { name: 'ALLIXIOS_PROGRESS', value: '1' },
      // The engines served over TLS: the bootstrap refuses a URL of theirs that is not in a TLS form.
      ...(tlsEngines ? [tlsEngines] : []),
      ...args.targets.flatMap((target) => engineEnv(target, directory)),
    ];

    // The trigger in the name: Jobs are immutable, and a new name is a new run. The same trigger
    // is no change, so an unchanged `pulumi up` runs nothing. The credentials' fingerprint is in
    // the Job's name too: a password rotation (which changes the Secret, not the Job) runs the
    // bootstrap again, to bring the engines to the new passwords.
    this.job = new k8s.batch.v1.Job(
      `${name}-job-${this.trigger}`,
      {
        metadata: { name: pulumi.interpolate`bootstrap-${this.trigger}-${args.credentialsFingerprint}`, namespace: args.namespace, labels },
        spec: {
          // Transient failures (an engine restarting) get two more tries; the ledger makes them safe.
          backoffLimit: 2,
          activeDeadlineSeconds: timeoutSeconds,
          // Kept a week for its logs, then removed by the cluster; Pulumi recreates nothing.
          ttlSecondsAfterFinished: 7 * 24 * 3600,
          template: {
            metadata: { labels },
            spec: {
              ...restrictedJobPod({ user: 1000, group: 1000 }),
              containers: [
                {
                  name: 'bootstrap',
                  image,
                  imagePullPolicy: 'IfNotPresent',
                  args: ['--ready-timeout', '300', '--lock-timeout', String(timeoutSeconds)],
                  env,
                  resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
                  securityContext: restrictedContainer(),
                  // tsx caches compiled TypeScript under the temp directory.
                  volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...(args.caConfigMap ? [{ name: 'tls-ca', mountPath: posix.dirname(CLIENT_CA_PATH), readOnly: true }] : [])],
                },
              ],
              volumes: [{ name: 'tmp', emptyDir: {} }, ...(args.caConfigMap ? [{ name: 'tls-ca', configMap: { name: args.caConfigMap } }] : [])],
            },
          },
        },
      },
      {
        parent: this,
        dependsOn: [...args.engines],
        // Pulumi waits for a Job's completion for 10 minutes by default; wait a minute longer
        // than the Job's own deadline, so the Job's verdict, not Pulumi's clock, ends the wait.
        customTimeouts: { create: `${timeoutSeconds + 60}s`, update: `${timeoutSeconds + 60}s` },
      },
    );
    this.registerOutputs({ trigger: this.trigger, job: this.job.metadata.name });
  }
}
