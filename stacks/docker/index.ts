/**
 * The Docker target (stack `dev`): one private network, and each enabled engine as a container
 * with a named volume, published on 127.0.0.1 only when the stack says so.
 */
import { resolve } from 'node:path';
import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import type { StackConfig } from '../config/index.ts';
import { EngineCredentials } from '../credentials.ts';
import type { Endpoints } from '../endpoints.ts';
import { engineLabels } from '../labels.ts';
import { CertificateAuthority } from '../tls/certificate-authority.ts';
import { DockerEngine } from './engine.ts';

export interface DockerDatabasesArgs {
  config: StackConfig;
}

/**
 * Where the host URLs of a TLS stack expect the CA bundle on the developer's machine, which has
 * no `/etc/allixios/tls` (the containers' path): `.allixios/<namespace>-ca.crt` in the project
 * directory (ignored by git), written there from the stack output (README, "Main job with Docker").
 */
export function hostCaFile(namespace: string): string {
  return resolve('.allixios', `${namespace}-ca.crt`);
}

/** All engines of a stack on Docker. Type token `allixios:docker:Databases`. */
export class DockerDatabases extends pulumi.ComponentResource {
  readonly network: docker.Network;
  readonly engines: readonly DockerEngine[];
  readonly endpoints: Endpoints;
  /** Each engine's passwords, in the order of `engines`. */
  readonly credentials: readonly EngineCredentials[];
  /** The stack's CA, when it serves TLS: it signs every engine's certificate. */
  readonly certificateAuthority?: CertificateAuthority;

  constructor(name: string, args: DockerDatabasesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('allixios:docker:Databases', name, {}, opts);
    const { config } = args;
    const instance = config.namespace;

    this.network = new docker.Network(
      `${name}-network`,
      {
        name: config.namespace,
        driver: 'bridge',
        labels: [
          { label: 'app.kubernetes.io/part-of', value: 'allixios' },
          { label: 'app.kubernetes.io/instance', value: instance },
        ],
      },
      { parent: this },
    );

    if (config.tls.enabled) {
      this.certificateAuthority = new CertificateAuthority(`${name}-tls-ca`, { commonName: `Allixios ${instance} CA` }, { parent: this });
    }
    const authority = this.certificateAuthority;

    const endpoints: Endpoints = {};
    const allCredentials: EngineCredentials[] = [];
    this.engines = config.engines.map((engine) => {
      const { spec } = engine;
      const credentials = new EngineCredentials(`${name}-${spec.name}-credentials`, { engine }, { parent: this });
      allCredentials.push(credentials);
      const dockerEngine = new DockerEngine(
        `${name}-${spec.name}`,
        {
          engine,
          credentials,
          networkName: this.network.name,
          namePrefix: config.namespace,
          exposeHostPort: config.exposeHostPorts,
          protectData: config.protectData,
          labels: engineLabels(spec, instance),
          // The names clients use: the engine's host on the network, and 127.0.0.1 / localhost
          // through the published port.
          ...(spec.tls && authority
            ? {
                tls: {
                  ...authority.serverCertificate(
                    `${name}-${spec.name}-tls`,
                    { commonName: spec.name, dnsNames: [spec.name, 'localhost'], ipAddresses: ['127.0.0.1'] },
                    { parent: this },
                  ),
                  caPem: authority.certificatePem,
                },
              }
            : {}),
        },
        { parent: this },
      );
      // The URL is usable once the container is healthy: `wait` holds the container until then.
      const host = dockerEngine.container.hostname.apply(() => dockerEngine.host);
      endpoints[spec.name] = {
        host,
        port: dockerEngine.port,
        urlVariable: engine.module.urlVariable,
        url: credentials.url(spec.appConnection, host, dockerEngine.port),
        adminUrl: credentials.url(spec.adminConnection, host, dockerEngine.port),
        bootstrapEnv: credentials.bootstrapEnv(spec, engine.module.urlVariable, host, dockerEngine.port),
        // One member on Docker: reads go to it.
        ...(engine.module.readUrlVariable ? { readUrl: { variable: engine.module.readUrlVariable, url: credentials.url(spec.appConnection, host, dockerEngine.port) } } : {}),
        ...(config.exposeHostPorts
          ? {
              hostUrl: credentials.url(
                spec.appConnection,
                dockerEngine.container.id.apply(() => '127.0.0.1'),
                engine.hostPort,
                hostCaFile(config.namespace),
              ),
            }
          : {}),
      };
      return dockerEngine;
    });
    this.endpoints = endpoints;
    this.credentials = allCredentials;
    this.registerOutputs({});
  }
}
