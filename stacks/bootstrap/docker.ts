/**
 * The bootstrap on the Docker target: the image built from `bootstrap/Dockerfile` by the local
 * engine (or a pinned reference), run once as a container on the databases' network after every
 * engine is healthy. `pulumi up` waits for it to exit and fails with its output when it fails.
 */
import { join } from 'node:path';
import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { CLIENT_CA_PATH } from '../../databases/connection.ts';
import type { StackConfig } from '../config/index.ts';
import { tlsEnginesEnv } from './tls.ts';
import { bootstrapContentHash, bootstrapTrigger } from './trigger.ts';

/** Arguments of {@link DockerBootstrap}. */
export interface DockerBootstrapArgs {
  config: StackConfig;
  /** Repository root: the build context and the content the trigger hashes. */
  root: string;
  networkName: pulumi.Input<string>;
  /** Prefix of the container name, e.g. `allixios-dev`. */
  namePrefix: string;
  /**
   * What the bootstrap reads (secret): each URL variable -> the engine's owner/admin URL, and the
   * engines' secret files it compares (REDIS_USERS_ACL).
   */
  env: Readonly<Record<string, pulumi.Output<string>>>;
  /** `host:port` of every engine: moving an engine runs the bootstrap again. */
  endpoints: readonly string[];
  /** Changes with every password rotation (`credentialsFingerprint`): a rotation runs the bootstrap again. */
  credentialsFingerprint: pulumi.Input<string>;
  /** The engines' containers: the run starts once all are healthy. */
  engines: readonly pulumi.Resource[];
  /** The stack's CA certificate, when it serves TLS: uploaded where the URLs' `CLIENT_CA_PATH` expects it. */
  caBundle?: pulumi.Output<string>;
}

/** One bootstrap run on Docker. Type token `allixios:docker:Bootstrap`. */
export class DockerBootstrap extends pulumi.ComponentResource {
  readonly container: docker.Container;
  /** The run's exit code once it finished; when it is not 0 the deployment fails (see below). */
  readonly exitCode: pulumi.Output<number>;
  /** Changes with the assets, the bootstrap code, the image or an engine's endpoint. */
  readonly trigger: string;

  constructor(name: string, args: DockerBootstrapArgs, opts?: pulumi.ComponentResourceOptions) {
    super('allixios:docker:Bootstrap', name, {}, opts);
    const contentHash = bootstrapContentHash(args.root);
    const { image: pinned, timeoutSeconds } = args.config.bootstrap;

    const imageId = pinned
      ? new docker.RemoteImage(`${name}-image`, { name: pinned, keepLocally: true }, { parent: this }).imageId
      : new docker.Image(
          `${name}-image`,
          {
            // Tagged with the content hash: the image is rebuilt exactly when its inputs change.
            imageName: `allixios-bootstrap:${contentHash.slice(0, 12)}`,
            build: { context: args.root, dockerfile: join(args.root, 'bootstrap', 'Dockerfile') },
            skipPush: true,
          },
          { parent: this },
        ).imageName;
    this.trigger = bootstrapTrigger(contentHash, pinned ?? `built:${contentHash}`, args.endpoints);

    const tlsEngines = tlsEnginesEnv(args.config);
    const envs = [
      pulumi.output(`ALLIXIOS_ENVIRONMENT=${args.config.environment}`),
      // A container's log is not a terminal: ask for the waits' progress lines anyway.
      pulumi.output('ALLIXIOS_PROGRESS=1'),
      // The engines served over TLS: the bootstrap refuses a URL of theirs that is not in a TLS form.
      ...(tlsEngines ? [pulumi.output(`${tlsEngines.name}=${tlsEngines.value}`)] : []),
      ...Object.entries(args.env).map(([variable, value]) => pulumi.interpolate`${variable}=${value}`),
    ];

    // The trigger is in the resource's name: a new trigger is a new container (and the old one
    // goes), the same trigger is no change at all, so an unchanged `pulumi up` runs nothing. A
    // password rotation changes the container's environment, which replaces it: its name carries
    // the credentials' fingerprint, so the replacement (created first, pulumi-docker#1356) gets a
    // name of its own.
    this.container = new docker.Container(
      `${name}-run-${this.trigger}`,
      {
        name: pulumi.interpolate`${args.namePrefix}-bootstrap-${this.trigger}-${args.credentialsFingerprint}`,
        image: imageId,
        command: ['--ready-timeout', '120', '--lock-timeout', String(timeoutSeconds)],
        envs,
        networksAdvanced: [{ name: args.networkName }],
        ...(args.caBundle ? { uploads: [{ file: CLIENT_CA_PATH, content: args.caBundle, permissions: '0444' }] } : {}),
        // Run to completion: Pulumi waits for the exit and keeps the logs for the error message.
        attach: true,
        logs: true,
        mustRun: false,
        restart: 'no',
        user: '1000:1000',
        capabilities: { drops: ['ALL'] },
        securityOpts: ['no-new-privileges:true'],
        labels: [
          { label: 'app.kubernetes.io/component', value: 'bootstrap' },
          { label: 'app.kubernetes.io/part-of', value: 'allixios' },
          { label: 'app.kubernetes.io/instance', value: args.namePrefix },
        ],
      },
      { parent: this, dependsOn: [...args.engines] },
    );

    // The provider records the exit code but does not fail on it: the program does. A
    // ResourceError (stack hidden) reaches Pulumi's handler, which reports it on this container
    // with the bootstrap's own output and fails `pulumi up`.
    const container = this.container;
    this.exitCode = pulumi.all([container.exitCode, container.containerLogs, container.name]).apply(([code, logs, containerName]) => {
      if (code !== 0) {
        throw new pulumi.ResourceError(`the bootstrap (container ${containerName}) exited with ${code}:\n${logs || '(no output)'}`, container, true);
      }
      return code;
    });
    this.registerOutputs({ trigger: this.trigger });
  }
}
