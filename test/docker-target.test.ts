import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { redactSecrets, SECRET_SIGNATURE, SECRET_SIGNATURE_KEY, unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluate, evaluateStack, ofType, unwrap, type Evaluation } from './support/pulumi.ts';

const CONTAINER = 'docker:index/container:Container';
const isEnvelope = (value: unknown) => (value as Record<string, unknown> | null)?.[SECRET_SIGNATURE_KEY] === SECRET_SIGNATURE;

describe('docker target (stack dev)', () => {
  let dev: Evaluation;
  beforeAll(async () => {
    dev = await evaluateStack('dev');
  });

  const containerOf = (evaluation: Evaluation, engine: string) => ofType(evaluation, CONTAINER).find((resource) => resource.name === `allixios-${engine}-container`)!.inputs;

  it('puts every engine on one private network, with a pinned image and a named volume of its own', () => {
    const networks = ofType(dev, 'docker:index/network:Network');
    expect(networks).toHaveLength(1);
    expect(networks[0]!.inputs.name).toBe('allixios-dev');
    for (const { spec } of dev.config.engines) {
      const image = ofType(dev, 'docker:index/remoteImage:RemoteImage').find((resource) => resource.name === `allixios-${spec.name}-image`)!;
      expect(image.inputs.name).toBe(`${spec.image.repository}:${spec.image.tag}`);
      expect(spec.image.tag).toMatch(/^\d+\.\d+(\.\d+)*$/);
      const volume = ofType(dev, 'docker:index/volume:Volume').find((resource) => resource.name === `allixios-${spec.name}-data`)!;
      expect(volume.inputs.name).toBe(`allixios-dev-${spec.name}-data`);
      const container = containerOf(dev, spec.name);
      expect(container.networksAdvanced).toEqual([{ name: 'allixios-dev', aliases: [spec.name] }]);
      expect(container.volumes).toEqual([{ volumeName: `allixios-dev-${spec.name}-data`, containerPath: spec.dataPath }]);
    }
    // Five engines, and the one-shot bootstrap run.
    expect(
      ofType(dev, CONTAINER)
        .map((resource) => resource.name)
        .filter((name) => !name.includes('-bootstrap-')),
    ).toHaveLength(5);
  });

  it("checks each engine's health with its own command, restarts it, and makes Pulumi wait for healthy", () => {
    for (const { spec } of dev.config.engines) {
      const container = containerOf(dev, spec.name);
      expect((container.healthcheck as { tests: string[] }).tests).toEqual(['CMD', ...spec.healthCheck.command]);
      expect(container.wait).toBe(true);
      expect(container.restart).toBe('unless-stopped');
    }
    const commands = dev.config.engines.map(({ spec }) => spec.healthCheck.command.join(' '));
    expect(commands.find((command) => command.includes('pg_isready'))).toBeDefined();
    expect(commands.find((command) => command.includes('redis-cli'))).toBeDefined();
    expect(commands.find((command) => command.includes('mongosh'))).toBeDefined();
    expect(commands.find((command) => command.includes('_cluster/health'))).toBeDefined();
    expect(commands.find((command) => command.includes('/ping'))).toBeDefined();
  });

  it('publishes client ports on 127.0.0.1 only', () => {
    for (const { spec } of dev.config.engines) {
      expect(containerOf(dev, spec.name).ports).toEqual([{ internal: spec.ports[0]!.containerPort, external: spec.ports[0]!.containerPort, ip: '127.0.0.1', protocol: 'tcp' }]);
    }
  });

  it('publishes no port when the stack turns host ports off', async () => {
    const closed = await evaluate({ environment: 'dev', exposeHostPorts: false });
    for (const container of ofType(closed, CONTAINER).filter((resource) => !resource.name.includes('-bootstrap-'))) {
      expect(container.inputs.ports).toEqual([]);
    }
    expect(closed.outputs.hostUrls).toEqual({});
  });

  it('runs engines as their non-root user without capabilities', () => {
    for (const { spec } of dev.config.engines) {
      const container = containerOf(dev, spec.name);
      expect(container.user).toBe(`${spec.runAs.user}:${spec.runAs.group}`);
      expect(container.user).not.toMatch(/^0:/);
      expect(container.capabilities).toEqual({ drops: ['ALL'] });
      expect(container.securityOpts).toEqual(['no-new-privileges:true']);
    }
  });

  it('hands passwords to containers only inside secret inputs', () => {
    for (const { spec } of dev.config.engines) {
      const envs = containerOf(dev, spec.name).envs;
      // Pulumi marks the whole list secret once one entry is (ClickHouse has none: its users
      // file holds digests, and its environment no password).
      const holdsSecret = Object.values(spec.env).some((value) => typeof value !== 'string');
      expect(isEnvelope(envs), spec.name).toBe(holdsSecret);
      const plain = (holdsSecret ? unwrapSecrets(envs) : envs) as string[];
      for (const [name, value] of Object.entries(spec.env)) {
        const entry = plain.find((variable) => variable.startsWith(`${name}=`))!;
        const assigned = entry.slice(name.length + 1);
        if (typeof value === 'string') expect(assigned).toBe(value);
        else expect(dev.generatedSecrets).toContain(assigned);
      }
    }
    const visible = JSON.stringify(dev.resources.map((resource) => redactSecrets(resource.inputs, '<redacted>')));
    expect(dev.generatedSecrets.length).toBeGreaterThan(10);
    for (const secret of dev.generatedSecrets) expect(visible).not.toContain(secret);
  });

  it('ships files with password digests (Redis ACL, Elasticsearch users, PostgreSQL role verifiers) as secret uploads, plain config files as they are', () => {
    const uploads = (engine: string) => containerOf(dev, engine).uploads;
    expect(isEnvelope(uploads('redis'))).toBe(true);
    const acl = (unwrapSecrets(uploads('redis')) as Array<{ file: string; content: string }>).find((upload) => upload.file === '/etc/redis/secrets/users.acl')!;
    expect(acl.content).toMatch(/^user allixios_app on #[0-9a-f]{64} /m);
    for (const secret of dev.generatedSecrets) expect(acl.content).not.toContain(secret);
    expect(isEnvelope(uploads('elasticsearch'))).toBe(true);
    expect(isEnvelope(uploads('postgresql'))).toBe(true);
    const postgresql = unwrapSecrets(uploads('postgresql')) as Array<{ file: string; content: string }>;
    const verifiers = postgresql.find((upload) => upload.file === '/etc/postgresql/secrets/role-verifiers')!;
    expect(verifiers.content).toMatch(/^allixios_app SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/m);
    for (const secret of dev.generatedSecrets) expect(verifiers.content).not.toContain(secret);
    const conf = postgresql.find((upload) => upload.file === '/etc/postgresql/postgresql.conf')!;
    expect(conf.content).toContain("password_encryption = 'scram-sha-256'");
    // MongoDB's user passwords go to the bootstrap only, never into the engine's container
    expect(isEnvelope(uploads('mongodb'))).toBe(false);
    expect((uploads('mongodb') as Array<{ file: string }>).map((upload) => upload.file)).not.toContain(undefined);
    // Owned by the engine's user, digests readable by it alone, config read-only
    const aclUpload = (unwrapSecrets(uploads('redis')) as Array<Record<string, string>>).find((upload) => upload.file === '/etc/redis/secrets/users.acl')!;
    expect(aclUpload).toMatchObject({ owner: '999', group: '999', permissions: '0440' });
    const mongod = (uploads('mongodb') as Array<Record<string, string>>).find((upload) => upload.file === '/etc/mongo/mongod.conf')!;
    expect(mongod).toMatchObject({ permissions: '0444' });
    expect(verifiers).toMatchObject({ owner: '999', group: '999', permissions: '0440' });
  });

  it("removes an engine container before it creates its replacement: the name, the host port and the data volume are the old one's", () => {
    for (const engine of ['postgresql', 'mongodb', 'redis', 'elasticsearch', 'clickhouse']) {
      expect(dev.options.get(`allixios-${engine}-container`)?.deleteBeforeReplace, engine).toBe(true);
    }
  });

  it('gives every engine its stop grace when Pulumi replaces or removes its container, not a SIGKILL', () => {
    for (const engine of ['postgresql', 'mongodb', 'redis', 'elasticsearch', 'clickhouse']) {
      const container = containerOf(dev, engine);
      expect(container.destroyGraceSeconds, engine).toBe(container.stopTimeout);
      expect(container.stopTimeout, engine).toBeGreaterThanOrEqual(30);
    }
  });

  it("gives PostgreSQL a /dev/shm larger than Docker's 64 MB default", () => {
    expect(containerOf(dev, 'postgresql').shmSize).toBe(64);
  });

  it("exports each engine's URL as a secret named after the platform's variable", async () => {
    expect(Object.keys(dev.outputs.urls)).toEqual(['DATABASE_URL', 'DATABASE_READ_URL', 'MONGODB_URL', 'REDIS_URL', 'ELASTICSEARCH_URL', 'CLICKHOUSE_URL']);
    for (const url of [...Object.values(dev.outputs.urls), ...Object.values(dev.outputs.bootstrapUrls), ...Object.values(dev.outputs.hostUrls)]) {
      expect(await pulumi.isSecret(url)).toBe(true);
    }
    const databaseUrl = new URL(await unwrap(dev.outputs.urls.DATABASE_URL!));
    expect([databaseUrl.protocol, databaseUrl.username, databaseUrl.hostname, databaseUrl.port, databaseUrl.pathname]).toEqual([
      'postgresql:',
      'allixios_app',
      'postgresql',
      '5432',
      '/allixios',
    ]);
    expect(dev.generatedSecrets).toContain(decodeURIComponent(databaseUrl.password));
    expect(new URL(await unwrap(dev.outputs.hostUrls.REDIS_URL!)).host).toBe('127.0.0.1:6379');
    expect(await unwrap(dev.outputs.endpoints.clickhouse!.host)).toBe('clickhouse');
  });

  it('leaves dev volumes unprotected and protects and retains them when the stack asks', async () => {
    expect(dev.options.get('allixios-postgresql-data')?.protect).toBeFalsy();
    const protectedDev = await evaluate({ environment: 'dev', protectData: true });
    for (const { spec } of protectedDev.config.engines) {
      const options = protectedDev.options.get(`allixios-${spec.name}-data`)!;
      expect([options.protect, options.retainOnDelete]).toEqual([true, true]);
    }
  });

  it('gives the same container inputs on a second run with the same config, so nothing is replaced', async () => {
    const again = await evaluateStack('dev');
    const visible = (evaluation: Evaluation) => JSON.stringify(ofType(evaluation, CONTAINER).map((resource) => redactSecrets(resource.inputs, '<secret>')));
    expect(visible(again)).toBe(visible(dev));
  });
});

describe('docker target with allixios:tls true', () => {
  let dev: Evaluation;
  beforeAll(async () => {
    dev = await evaluate({ environment: 'dev', tls: true }, 'dev');
  });
  const container = (name: string) => ofType(dev, CONTAINER).find((resource) => resource.name === name)!;

  it("signs PostgreSQL's certificate with the stack's own CA, for its network name, localhost and 127.0.0.1", () => {
    const requests = ofType(dev, 'tls:index/certRequest:CertRequest');
    // One per engine serving TLS.
    expect(requests.map((candidate) => candidate.name)).toEqual(dev.config.engines.filter((engine) => engine.spec.tls).map((engine) => `allixios-${engine.spec.name}-tls-request`));
    const request = requests.find((candidate) => candidate.name === 'allixios-postgresql-tls-request');
    expect(request!.name).toBe('allixios-postgresql-tls-request');
    expect([request!.inputs.dnsNames, request!.inputs.ipAddresses]).toEqual([['postgresql', 'localhost'], ['127.0.0.1']]);
    expect(ofType(dev, 'tls:index/selfSignedCert:SelfSignedCert').map((resource) => resource.inputs.isCaCertificate)).toEqual([true]);
  });

  it('uploads certificate, CA and key into the TLS directory, the key as a secret only its user may read', () => {
    const inputs = container('allixios-postgresql-container').inputs;
    const uploads = unwrapSecrets(inputs.uploads) as Array<Record<string, string>>;
    const tls = uploads.filter((upload) => upload.file!.startsWith('/etc/postgresql/tls/'));
    expect(tls.map((upload) => [upload.file, upload.permissions, upload.owner])).toEqual([
      ['/etc/postgresql/tls/tls.crt', '0444', '999'],
      ['/etc/postgresql/tls/tls.key', '0400', '999'],
      ['/etc/postgresql/tls/ca.crt', '0444', '999'],
    ]);
    expect(tls[1]!.content).toMatch(/-----BEGIN PRIVATE KEY-----/);
    // The key is secret, so the render redacts it (Pulumi lifts a secret list item to the list).
    expect(isEnvelope(inputs.uploads)).toBe(true);
    expect(JSON.stringify(redactSecrets(inputs.uploads, '<redacted>'))).not.toContain('PRIVATE KEY');
  });

  it('gives the bootstrap the CA at the path its verify-full URLs name', async () => {
    const bootstrap = ofType(dev, CONTAINER).find((resource) => resource.name.startsWith('allixios-bootstrap-run-'))!;
    const uploads = unwrapSecrets(bootstrap.inputs.uploads) as Array<Record<string, string>>;
    expect(uploads.map((upload) => [upload.file, upload.content])).toEqual([['/etc/allixios/tls/ca.crt', await unwrap(dev.outputs.tlsCaBundle!)]]);
    const url = new URL(await unwrap(dev.outputs.bootstrapUrls.DATABASE_URL!));
    expect([url.hostname, url.searchParams.get('sslmode'), url.searchParams.get('sslrootcert')]).toEqual(['postgresql', 'verify-full', '/etc/allixios/tls/ca.crt']);
  });
});
