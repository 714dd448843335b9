/**
 * One engine as a Docker container: pinned image, named data volume, config files uploaded into
 * the container, the engine's own health check, and a restart policy. Nothing engine-specific:
 * everything comes from the engine's {@link EngineSpec}.
 */
import * as docker from '@pulumi/docker';
import * as pulumi from '@pulumi/pulumi';
import { memoryBytes, TLS_FILES, type EngineSpec } from '../../databases/engine.ts';
import type { KeyPair } from '../tls/certificate-authority.ts';
import type { ResolvedEngine } from '../config/index.ts';
import { configFiles, resolvedEnv, type EngineCredentials } from '../credentials.ts';

/** Arguments of {@link DockerEngine}. */
export interface DockerEngineArgs {
  engine: ResolvedEngine;
  credentials: EngineCredentials;
  /** The private network; the engine joins it with its own name as alias. */
  networkName: pulumi.Input<string>;
  /** Prefix of container and volume names, e.g. `allixios-dev`. */
  namePrefix: string;
  /** Publish the client port on 127.0.0.1 at `engine.hostPort`. */
  exposeHostPort: boolean;
  /** `protect` and `retainOnDelete` on the data volume. */
  protectData: boolean;
  labels: Record<string, string>;
  /** The engine's certificate and key and the CA, when it serves TLS: uploaded into its TLS directory. */
  tls?: KeyPair & { caPem: pulumi.Output<string> };
}

/** "500m" -> "0.5", "2" -> "2": Docker's `--cpus`. */
export function dockerCpus(quantity: string): string {
  return quantity.endsWith('m') ? String(Number(quantity.slice(0, -1)) / 1000) : quantity;
}

/** Docker's memory limit is in MiB. */
export function dockerMemoryMb(quantity: string): number {
  return Math.floor(memoryBytes(quantity) / 2 ** 20);
}

function healthcheck(spec: EngineSpec): docker.types.input.ContainerHealthcheck {
  const check = spec.healthCheck;
  return {
    tests: ['CMD', ...check.command],
    interval: `${check.intervalSeconds}s`,
    timeout: `${check.timeoutSeconds}s`,
    retries: check.failureThreshold,
    startPeriod: `${check.startupSeconds}s`,
    // Checked often while starting, so `pulumi up` does not wait a whole interval for a ready engine.
    startInterval: '2s',
  };
}

/**
 * Key and certificate chain in one PEM file, in the order cert-manager's `CombinedPEM` output
 * writes them (the key, then the chain), so an engine reads the same file on both targets. Secret,
 * since it holds the key.
 */
export function combinedPem(tls: KeyPair): pulumi.Output<string> {
  const block = (pem: string) => (pem.endsWith('\n') ? pem : `${pem}\n`);
  return pulumi.secret(pulumi.all([tls.privateKeyPem, tls.certificatePem]).apply(([key, certificate]) => `${block(key)}${block(certificate)}`));
}

/**
 * The engine's TLS directory: certificate and CA readable, the key (a secret upload) readable by
 * the engine's user alone, which PostgreSQL requires of a key its own user owns; key and chain in
 * one file as well for an engine that wants them so (`TlsSpec.combinedPem`), as secret and as
 * private as the key. A renewed certificate (the provider renews it on a `pulumi up` in its last
 * month) changes the uploads and so replaces the container: a short restart of dev's engine.
 */
function tlsUploads(spec: EngineSpec, tls: DockerEngineArgs['tls']): Array<{ file: string; content: pulumi.Input<string>; permissions: string }> {
  if (!spec.tls) return [];
  if (!tls) throw new Error(`${spec.name}: the engine serves TLS but the stack gave it no certificate`);
  return [
    { file: `${spec.tls.directory}/${TLS_FILES.certificate}`, content: tls.certificatePem, permissions: '0444' },
    { file: `${spec.tls.directory}/${TLS_FILES.key}`, content: tls.privateKeyPem, permissions: '0400' },
    { file: `${spec.tls.directory}/${TLS_FILES.ca}`, content: tls.caPem, permissions: '0444' },
    ...(spec.tls.combinedPem ? [{ file: `${spec.tls.directory}/${TLS_FILES.combinedPem}`, content: combinedPem(tls), permissions: '0400' }] : []),
  ];
}

/**
 * A database engine running in Docker. Type token `allixios:docker:<Engine>`, e.g.
 * `allixios:docker:PostgreSQL`.
 */
export class DockerEngine extends pulumi.ComponentResource {
  readonly image: docker.RemoteImage;
  readonly volume: docker.Volume;
  readonly container: docker.Container;
  /** Host name of the engine on the private network. */
  readonly host: string;
  /** Client port inside the network. */
  readonly port: number;

  constructor(name: string, args: DockerEngineArgs, opts?: pulumi.ComponentResourceOptions) {
    const { spec } = args.engine;
    super(`allixios:docker:${spec.displayName}`, name, {}, opts);
    const labels = Object.entries(args.labels).map(([label, value]) => ({ label, value }));
    this.host = spec.name;
    this.port = spec.ports[0]!.containerPort;

    this.image = new docker.RemoteImage(`${name}-image`, { name: `${spec.image.repository}:${spec.image.tag}`, keepLocally: true }, { parent: this });

    this.volume = new docker.Volume(
      `${name}-data`,
      { name: `${args.namePrefix}-${spec.name}-data`, labels },
      { parent: this, protect: args.protectData, retainOnDelete: args.protectData },
    );

    // Owned by the engine's user, as the Kubernetes target's volumes are (fsGroup, modes 0444 and
    // 0440): a file with password digests is readable by the engine alone, not world-readable.
    const owner = { owner: String(spec.runAs.user), group: String(spec.runAs.fsGroup ?? spec.runAs.group) };
    const uploads = [
      ...configFiles(args.engine).map((file) => ({ file: file.mountPath, content: file.content, ...owner, permissions: file.executable ? '0555' : '0444' })),
      ...args.credentials.mountedFiles.map((file) => ({ file: file.mountPath, content: file.content, ...owner, permissions: file.executable ? '0550' : '0440' })),
      ...tlsUploads(spec, args.tls).map((upload) => ({ ...upload, ...owner })),
    ];

    this.container = new docker.Container(
      `${name}-container`,
      {
        name: `${args.namePrefix}-${spec.name}`,
        // The image ID, not the tag: a tag that moves upstream does not restart the engine.
        image: this.image.imageId,
        hostname: spec.name,
        labels,
        ...(spec.command ? { entrypoints: spec.command } : {}),
        ...(spec.args ? { command: spec.args } : {}),
        envs: resolvedEnv(spec, args.credentials.passwords).map(({ name: variable, value }) => pulumi.interpolate`${variable}=${value}`),
        user: `${spec.runAs.user}:${spec.runAs.group}`,
        capabilities: { drops: ['ALL'] },
        securityOpts: ['no-new-privileges:true'],
        // Docker copies the config files into the container's own layer before it starts, which
        // a read-only root filesystem would refuse; the Kubernetes target mounts them instead.
        readOnly: false,
        networksAdvanced: [{ name: args.networkName, aliases: [spec.name] }],
        volumes: [{ volumeName: this.volume.name, containerPath: spec.dataPath }],
        uploads,
        ports: args.exposeHostPort ? [{ internal: this.port, external: args.engine.hostPort, ip: '127.0.0.1', protocol: 'tcp' }] : [],
        memory: dockerMemoryMb(spec.resources.limits.memory),
        ...(spec.sharedMemory ? { shmSize: dockerMemoryMb(spec.sharedMemory) } : {}),
        cpus: dockerCpus(spec.resources.limits.cpu),
        healthcheck: healthcheck(spec),
        wait: true,
        waitTimeout: spec.healthCheck.startupSeconds + 60,
        restart: 'unless-stopped',
        stopTimeout: spec.terminationGracePeriodSeconds,
        // When Pulumi replaces or removes the container, the same grace as a stop: without it the
        // provider kills the engine mid-checkpoint (SIGKILL after 0 s).
        destroyGraceSeconds: spec.terminationGracePeriodSeconds,
        logDriver: 'json-file',
        logOpts: { 'max-size': '10m', 'max-file': '3' },
      },
      // The Docker provider creates a replacement before it deletes the old container (by
      // design, pulumi-docker#1356): with a fixed name, a published port and a data volume no two
      // engines may open at once, the old one goes first.
      { parent: this, deleteBeforeReplace: true },
    );

    this.registerOutputs({ host: this.host, port: this.port, container: this.container.name });
  }
}
