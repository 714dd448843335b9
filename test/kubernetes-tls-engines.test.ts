/**
 * TLS of MongoDB, Elasticsearch and ClickHouse as the targets render them under mocks (the prod
 * stack, TLS on by default; the dev stack with `allixios:tls: true`): the Certificate (with
 * cert-manager's combined PEM output for an engine that wants one), the mounted Secret, the
 * readiness check (wrapped only for an engine with a reload command), the Services' ports and the
 * URLs in their TLS form, Docker's uploads, and no private key anywhere in the render.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_CA_PATH } from '../databases/connection.ts';
import { hostCaFile } from '../stacks/docker/index.ts';
import * as pulumi from '@pulumi/pulumi';
import { combinedPem } from '../stacks/docker/engine.ts';
import { redactSecrets, unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluate, evaluateStack, ofType, unwrap, type Evaluation } from './support/pulumi.ts';
import { withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const kubernetesObjects = (evaluation: Evaluation, kind: string) =>
  evaluation.resources.filter((resource) => resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind).map((resource) => resource.inputs as Json);
const forEngine = (evaluation: Evaluation, kind: string, engine: string) =>
  kubernetesObjects(evaluation, kind).filter((object) => object.metadata.labels?.['app.kubernetes.io/name'] === engine);
const certificateOf = (evaluation: Evaluation, engine: string) =>
  ofType(evaluation, 'kubernetes:cert-manager.io/v1:Certificate')
    .map((resource) => resource.inputs as Json)
    .find((certificate) => certificate.metadata.name === `${engine}-tls`)!;
const podSpecOf = (evaluation: Evaluation, engine: string) => forEngine(evaluation, 'StatefulSet', engine)[0]!.spec.template.spec as Json;

let prod: Evaluation;
let dev: Evaluation;
beforeAll(async () => {
  prod = await evaluateStack('prod');
  dev = await evaluate({ environment: 'dev', tls: true }, 'dev');
});

describe('Elasticsearch on a TLS stack', () => {
  it('gets a Certificate covering its Services, mounted whole under its config directory', () => {
    const certificate = certificateOf(prod, 'elasticsearch');
    expect(certificate.spec.dnsNames).toEqual(expect.arrayContaining(['elasticsearch.allixios-prod.svc', 'elasticsearch-headless.allixios-prod.svc', 'localhost']));
    const podSpec = podSpecOf(prod, 'elasticsearch');
    const volume = (podSpec.volumes as Json[]).find((candidate) => candidate.secret?.secretName === 'elasticsearch-tls')!;
    expect((podSpec.containers[0].volumeMounts as Json[]).find((mount) => mount.name === volume.name)).toEqual({
      name: volume.name,
      mountPath: '/usr/share/elasticsearch/config/tls',
      readOnly: true,
    });
  });

  it('keeps its own readiness check and no reload state: it reloads the files it watches itself', () => {
    const podSpec = podSpecOf(prod, 'elasticsearch');
    const readiness = podSpec.containers[0].readinessProbe.exec.command as string[];
    expect(readiness[0]).toBe('sh');
    expect(readiness.join(' ')).toContain('--cacert /usr/share/elasticsearch/config/tls/ca.crt');
    expect(readiness.join(' ')).not.toContain('cksum');
    expect((podSpec.volumes as Json[]).map((volume) => volume.name)).not.toContain('tls-reload');
    // PostgreSQL, which has a reload command, keeps its wrapper (the contrast that makes this test fail without the change)
    expect((podSpecOf(prod, 'postgresql').containers[0].readinessProbe.exec.command as string[]).join(' ')).toContain('cksum');
  });

  it('turns HTTP and transport TLS on in the container and serves https URLs', async () => {
    const env = Object.fromEntries((podSpecOf(prod, 'elasticsearch').containers[0].env as Json[]).map((entry) => [entry.name, entry.value]));
    expect([env['xpack.security.http.ssl.enabled'], env['xpack.security.transport.ssl.enabled']]).toEqual(['true', 'true']);
    expect(new URL(await unwrap(prod.outputs.urls.ELASTICSEARCH_URL!)).protocol).toBe('https:');
    const job = kubernetesObjects(prod, 'Job')[0]!;
    const jobEnv = job.spec.template.spec.containers[0].env as Json[];
    expect(new URL(jobEnv.find((entry) => entry.name === 'ELASTICSEARCH_URL')!.value).protocol).toBe('https:');
  });

  it('on Docker gets certificate, key and CA uploaded into its TLS directory, the key secret', () => {
    const container = ofType(dev, 'docker:index/container:Container').find((resource) => resource.name === 'allixios-elasticsearch-container')!;
    const uploads = unwrapSecrets(container.inputs.uploads) as Array<Record<string, string>>;
    expect(uploads.filter((upload) => upload.file!.startsWith('/usr/share/elasticsearch/config/tls/')).map((upload) => [upload.file, upload.permissions])).toEqual([
      ['/usr/share/elasticsearch/config/tls/tls.crt', '0444'],
      ['/usr/share/elasticsearch/config/tls/tls.key', '0400'],
      ['/usr/share/elasticsearch/config/tls/ca.crt', '0444'],
    ]);
  });
});

describe('ClickHouse on a TLS stack', () => {
  it('gets a Certificate covering its Services, mounted whole at the directory config.d/tls.xml names', () => {
    const certificate = certificateOf(prod, 'clickhouse');
    expect(certificate.spec.dnsNames).toEqual(expect.arrayContaining(['clickhouse.allixios-prod.svc', 'clickhouse-headless.allixios-prod.svc', 'localhost']));
    const podSpec = podSpecOf(prod, 'clickhouse');
    const volume = (podSpec.volumes as Json[]).find((candidate) => candidate.secret?.secretName === 'clickhouse-tls')!;
    expect((podSpec.containers[0].volumeMounts as Json[]).find((mount) => mount.name === volume.name)).toMatchObject({ mountPath: '/etc/clickhouse-server/tls', readOnly: true });
  });

  it('checks readiness over HTTPS with the CA and wraps no reload: it watches its certificate files itself', () => {
    const podSpec = podSpecOf(prod, 'clickhouse');
    const readiness = (podSpec.containers[0].readinessProbe.exec.command as string[]).join(' ');
    expect(readiness).toContain('--ca-certificate=/etc/clickhouse-server/tls/ca.crt https://localhost:8443/ping');
    expect(readiness).not.toContain('cksum');
  });

  it('exposes only the HTTPS, secure native, metrics and (between replicas) interserver HTTPS ports, and serves https URLs on 8443', async () => {
    // Two members in prod: the interserver HTTPS port between them (headless Service, members only: test/kubernetes-clickhouse-cluster.test.ts).
    const ports = forEngine(prod, 'Service', 'clickhouse').flatMap((service) => (service.spec.ports as Json[]).map((port) => port.port as number));
    expect(new Set(ports)).toEqual(new Set([8443, 9440, 9363, 9010]));
    const containerPorts = (podSpecOf(prod, 'clickhouse').containers[0].ports as Json[]).map((port) => port.containerPort as number);
    expect(containerPorts).toEqual([8443, 9440, 9363, 9010]);
    const url = new URL(await unwrap(prod.outputs.urls.CLICKHOUSE_URL!));
    expect([url.protocol, url.port]).toEqual(['https:', '8443']);
    const jobEnv = kubernetesObjects(prod, 'Job')[0]!.spec.template.spec.containers[0].env as Json[];
    expect(new URL(jobEnv.find((entry) => entry.name === 'CLICKHOUSE_URL')!.value).protocol).toBe('https:');
  });

  it('on Docker gets certificate, key and CA uploaded into its TLS directory, the key secret, and publishes HTTPS', () => {
    const container = ofType(dev, 'docker:index/container:Container').find((resource) => resource.name === 'allixios-clickhouse-container')!;
    const uploads = unwrapSecrets(container.inputs.uploads) as Array<Record<string, string>>;
    expect(uploads.filter((upload) => upload.file!.startsWith('/etc/clickhouse-server/tls/')).map((upload) => [upload.file, upload.permissions])).toEqual([
      ['/etc/clickhouse-server/tls/tls.crt', '0444'],
      ['/etc/clickhouse-server/tls/tls.key', '0400'],
      ['/etc/clickhouse-server/tls/ca.crt', '0444'],
    ]);
    expect(uploads.map((upload) => upload.file)).toContain('/etc/clickhouse-server/config.d/tls.xml');
  });
});

describe('the host URLs of a Docker stack with TLS', () => {
  it("name the CA bundle where the developer's machine keeps it, not the containers' path, and verify the server", async () => {
    const caFile = hostCaFile('allixios-dev');
    expect(caFile).toBe(join(process.cwd(), '.allixios', 'allixios-dev-ca.crt'));
    const database = new URL(await unwrap(dev.outputs.hostUrls.DATABASE_URL!));
    expect([database.host, database.searchParams.get('sslmode'), database.searchParams.get('sslrootcert')]).toEqual(['127.0.0.1:5432', 'verify-full', caFile]);
    expect(new URL(await unwrap(dev.outputs.hostUrls.REDIS_URL!)).searchParams.get('tlsCAFile')).toBe(caFile);
    expect(new URL(await unwrap(dev.outputs.hostUrls.CLICKHOUSE_URL!)).protocol).toBe('https:');
    // The containers' own URLs keep the containers' path.
    expect(new URL(await unwrap(dev.outputs.urls.DATABASE_URL!)).searchParams.get('sslrootcert')).toBe(CLIENT_CA_PATH);
  });
});

describe("a cluster whose DNS domain is not Kubernetes' default", () => {
  it('gets certificates naming the Services in its own domain', async () => {
    const values = {
      environment: 'staging',
      namespace: 'allixios-staging',
      clusterDomain: 'staging.example.internal',
      bootstrap: { enabled: false },
      engines: withPostgresqlImage(),
    };
    const staging = await evaluate(values, 'staging');
    for (const { spec } of staging.config.engines) {
      const names = certificateOf(staging, spec.name).spec.dnsNames as string[];
      expect(names).toContain(`${spec.name}.allixios-staging.svc.staging.example.internal`);
      expect(names).toContain(`*.${spec.name}-headless.allixios-staging.svc.staging.example.internal`);
      expect(names.filter((name) => name.endsWith('cluster.local'))).toEqual([]);
    }
    // PostgreSQL under Patroni: the replicas' Service too, and PgBouncer's certificate its own Service, in the same domain.
    expect(certificateOf(staging, 'postgresql').spec.dnsNames).toContain('postgresql-replicas.allixios-staging.svc.staging.example.internal');
    const pooler = certificateOf(staging, 'postgresql-pgbouncer').spec.dnsNames as string[];
    expect(pooler).toContain('postgresql-pgbouncer.allixios-staging.svc.staging.example.internal');
    expect(pooler.filter((name) => name.endsWith('cluster.local'))).toEqual([]);
  });
});

describe('the prod Services', () => {
  /**
   * Every port a prod Service exposes, and why it carries no plaintext: the engine serves TLS only
   * on it (the test that proves it), or it carries no data and no credentials. A new port fails
   * here until it is classified.
   */
  const TLS_ONLY: Record<string, Record<number, string>> = {
    postgresql: {
      5432: 'hostssl only: test/engines/postgresql-tls.test.ts refuses a plaintext client',
      8008: "Patroni's REST API (headless Service, members only), HTTPS with restapi.certfile: test/engines/patroni-config.test.ts",
    },
    // PostgreSQL's pooler, a Service of its own.
    'postgresql-pgbouncer': { 6432: 'client_tls_sslmode = require: test/engines/pgbouncer-config.test.ts' },
    mongodb: { 27017: 'requireTLS: test/engines/mongodb-config.test.ts' },
    redis: { 6379: 'port 0, tls-port 6379: test/engines/redis-tls.test.ts refuses a plaintext client' },
    // Redis's Sentinels, a companion with Services of its own.
    'redis-sentinel': { 26379: 'port 0, tls-port 26379: test/engines/redis-sentinel.test.ts refuses a plaintext client' },
    elasticsearch: {
      9200: 'xpack.security.http.ssl.enabled: test/engines/elasticsearch-config.test.ts',
      9300: 'transport (headless Service, members only), xpack.security.transport.ssl.enabled with client certificates: test/engines/elasticsearch-config.test.ts',
    },
    clickhouse: {
      8443: 'https_port, http_port removed: test/engines/clickhouse-config.test.ts',
      9440: 'tcp_port_secure, tcp_port removed: test/engines/clickhouse-config.test.ts',
      9363: 'Prometheus metrics: counters and gauges, no data, no credentials',
      9010: 'interserver_https_port, interserver_http_port removed (headless Service, members only): test/engines/clickhouse-replication-config.test.ts',
    },
    // ClickHouse Keeper, a companion with Services of its own.
    'clickhouse-keeper': {
      9281: 'tcp_port_secure only, a client certificate of the stack CA required: test/kubernetes-clickhouse-cluster.test.ts',
      9234: 'Raft with <secure>, the same mutual TLS (headless Service, Keeper members only): test/kubernetes-clickhouse-cluster.test.ts',
    },
  };

  it('expose no plaintext port: each port is one its engine serves TLS only on, or carries no data', () => {
    // Every Service of the stack but the CA's, by the engine (or pooler) it belongs to; Patroni's Services without ports expose nothing.
    const owners = [...new Set(kubernetesObjects(prod, 'Service').map((service) => service.metadata.labels['app.kubernetes.io/name'] as string))];
    const exposed = Object.fromEntries(
      owners.map((owner) => [
        owner,
        [...new Set(forEngine(prod, 'Service', owner).flatMap((service) => ((service.spec.ports ?? []) as Json[]).map((port) => port.port as number)))].sort((a, b) => a - b),
      ]),
    );
    expect(exposed).toEqual(
      Object.fromEntries(
        Object.entries(TLS_ONLY).map(([engine, ports]) => [
          engine,
          Object.keys(ports)
            .map(Number)
            .sort((a, b) => a - b),
        ]),
      ),
    );
    // And every engine of prod is one that serves TLS.
    expect(prod.config.engines.filter(({ spec }) => !spec.tls).map(({ spec }) => spec.name)).toEqual([]);
  });
});

describe('MongoDB on a TLS stack', () => {
  it('gets a Certificate with the combined PEM output, mounted whole at its TLS directory', () => {
    const certificate = certificateOf(prod, 'mongodb');
    expect(certificate.spec.additionalOutputFormats).toEqual([{ type: 'CombinedPEM' }]);
    expect(certificate.spec.dnsNames).toEqual(expect.arrayContaining(['mongodb.allixios-prod.svc', 'mongodb-headless.allixios-prod.svc', 'localhost']));
    // Only the engine that asks for it: PostgreSQL's Certificate has no extra output
    expect(certificateOf(prod, 'postgresql').spec).not.toHaveProperty('additionalOutputFormats');
    const podSpec = podSpecOf(prod, 'mongodb');
    const volume = (podSpec.volumes as Json[]).find((candidate) => candidate.secret?.secretName === 'mongodb-tls')!;
    expect(volume.secret.defaultMode).toBe(0o440);
    expect((podSpec.containers[0].volumeMounts as Json[]).find((mount) => mount.name === volume.name)).toEqual({ name: volume.name, mountPath: '/etc/mongo/tls', readOnly: true });
  });

  it('starts mongod with TLS required from the combined PEM, and checks readiness over TLS, reloading a renewed certificate first', () => {
    const container = podSpecOf(prod, 'mongodb').containers[0] as Json;
    expect((container.args as string[]).join(' ')).toContain('--tlsMode requireTLS --tlsCertificateKeyFile /etc/mongo/tls/tls-combined.pem --tlsCAFile /etc/mongo/tls/ca.crt');
    const readiness = (container.readinessProbe.exec.command as string[]).join(' ');
    expect(readiness).toContain('cksum');
    expect(readiness).toContain('rotateCertificates');
    expect(readiness).toContain('--tls --tlsCAFile /etc/mongo/tls/ca.crt');
    expect((container.livenessProbe.exec.command as string[]).slice(0, 6)).toEqual(['mongosh', '--quiet', '--norc', '--tls', '--tlsCAFile', '/etc/mongo/tls/ca.crt']);
    // The reload's password: root's, from a file of the engine's Secret, named by a variable that holds only its path
    const env = Object.fromEntries((container.env as Json[]).map((entry) => [entry.name, entry]));
    expect(env.MONGODB_ROOT_PASSWORD_FILE).toEqual({ name: 'MONGODB_ROOT_PASSWORD_FILE', value: '/etc/mongo/secrets/root-password' });
    const secretFiles = (podSpecOf(prod, 'mongodb').volumes as Json[]).find((candidate) => candidate.secret?.secretName === 'mongodb-credentials')!;
    // Beside it, the replica set's key file, which each member's start copies to memory with mode 0400 (test/kubernetes-mongodb-cluster.test.ts)
    expect(secretFiles.secret.items).toEqual([
      { key: 'config.root-password', path: 'root-password', mode: 0o440 },
      { key: 'config.replica-set-keyfile', path: 'replica-set-keyfile', mode: 0o440 },
    ]);
    expect((container.volumeMounts as Json[]).find((mount) => mount.name === secretFiles.name)?.mountPath).toBe('/etc/mongo/secrets');
  });

  it('gives the platform and the bootstrap Job URLs that ask for TLS and name the CA bundle', async () => {
    const url = await unwrap(prod.outputs.urls.MONGODB_URL!);
    expect(url).toMatch(
      /^mongodb:\/\/allixios_app:.*@mongodb\.allixios-prod\.svc:27017\/allixios\?authSource=admin&w=majority&replicaSet=rs0&tls=true&tlsCAFile=%2Fetc%2Fallixios%2Ftls%2Fca\.crt$/,
    );
    const job = kubernetesObjects(prod, 'Job')[0]!;
    const jobEnv = job.spec.template.spec.containers[0].env as Json[];
    expect(jobEnv.find((entry) => entry.name === 'MONGODB_URL')!.value).toMatch(/[?&]tls=true&tlsCAFile=%2Fetc%2Fallixios%2Ftls%2Fca\.crt$/);
  });

  it('on Docker gets certificate, key, CA and the combined PEM uploaded into its TLS directory, key and combined PEM secret and private', () => {
    const container = ofType(dev, 'docker:index/container:Container').find((resource) => resource.name === 'allixios-mongodb-container')!;
    const uploads = unwrapSecrets(container.inputs.uploads) as Array<Record<string, string>>;
    const tlsUploads = uploads.filter((upload) => upload.file!.startsWith('/etc/mongo/tls/'));
    expect(tlsUploads.map((upload) => [upload.file, upload.permissions, upload.owner])).toEqual([
      ['/etc/mongo/tls/tls.crt', '0444', '999'],
      ['/etc/mongo/tls/tls.key', '0400', '999'],
      ['/etc/mongo/tls/ca.crt', '0444', '999'],
      ['/etc/mongo/tls/tls-combined.pem', '0400', '999'],
    ]);
    // The combined PEM is the key, then the certificate, as cert-manager writes it
    const [certificate, key, , combined] = tlsUploads.map((upload) => upload.content!);
    expect(combined).toBe(`${key!.endsWith('\n') ? key : `${key}\n`}${certificate!.endsWith('\n') ? certificate : `${certificate}\n`}`);
    expect(combined).toMatch(/^-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*-----BEGIN CERTIFICATE-----/);
  });

  it('marks the combined PEM secret by itself, not only through the key beside it', async () => {
    // Given a key and a certificate that are not secret; when they are combined
    const combined = combinedPem({ privateKeyPem: pulumi.output('-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----'), certificatePem: pulumi.output('CERT\n') });
    // Then the result is secret, the key first and each block on its own lines
    expect(await pulumi.isSecret(combined)).toBe(true);
    expect(await unwrap(combined)).toBe('-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\nCERT\n');
  });
});

describe('the render of TLS stacks', () => {
  it('holds no private key once secrets are redacted', () => {
    for (const evaluation of [prod, dev]) {
      for (const resource of evaluation.resources) {
        expect(JSON.stringify(redactSecrets(resource.inputs, '<redacted>')), resource.name).not.toContain('PRIVATE KEY');
      }
    }
  });
});
