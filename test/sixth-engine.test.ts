/**
 * The README's sentence, proved: a sixth engine is one folder and one entry in the list of
 * engines. Valkey (`test/fixtures/valkey/`, a Redis-compatible session cache) is added to the
 * platform's list here and nowhere else; the stack config accepts and validates it, both targets
 * render it, the stack exports its URL, the bootstrap runs it, and the conformance suite passes
 * on it against redis-server.
 */
import { describe, expect, it } from 'vitest';
import { loadEngine } from '../bootstrap/engines.ts';
import { ENGINE_MODULES } from '../databases/index.ts';
import { ConfigError, parseStackConfig } from '../stacks/config/index.ts';
import { redisCompatibleHarness } from './bootstrap/conformance/harnesses.ts';
import { describeConformance } from './bootstrap/conformance/suite.ts';
import { asRedis, valkey } from './fixtures/valkey/index.ts';
import { evaluate, unwrap } from './support/pulumi.ts';
import { withPostgresqlImage } from './support/stacks.ts';

/** The one line a sixth engine adds: its module in the list. */
const MODULES = [...ENGINE_MODULES, valkey];

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

describe('a sixth engine, added as one folder and one list entry', () => {
  it('is part of the stack config: its key is accepted, its settings validated and named', () => {
    // Given a stack that sizes the new engine
    const config = parseStackConfig(
      { environment: 'staging', namespace: 'allixios-staging', bootstrap: { enabled: false }, engines: withPostgresqlImage({ valkey: { storage: '3Gi' } }) },
      'allixios',
      'staging',
      MODULES,
    );
    // Then it is deployed after the others, with its own defaults and the stack's override
    expect(config.engines.map((engine) => engine.spec.name)).toEqual([...ENGINE_MODULES.map((module) => module.name), 'valkey']);
    const spec = config.engines.at(-1)!.spec;
    expect(spec).toMatchObject({ name: 'valkey', displayName: 'Valkey', component: 'session-cache', storage: '3Gi', replicas: 1, secrets: valkey.secrets });
    expect(spec.image).toEqual({ repository: 'valkey/valkey', tag: valkey.defaultVersion });
    // And its settings and passwords are checked and named like any engine's
    const invalid = () =>
      parseStackConfig(
        {
          environment: 'staging',
          namespace: 'allixios-staging',
          engines: withPostgresqlImage({ valkey: { replicas: 0 } }),
          passwords: { valkey: { 'root-password': 'x'.repeat(20) } },
        },
        'allixios',
        'staging',
        MODULES,
      );
    expect(invalid).toThrow(ConfigError);
    expect(invalid).toThrow('allixios:engines.valkey.replicas: expected a positive integer, got 0');
    expect(invalid).toThrow('allixios:passwords.valkey.root-password: unknown key; expected one of admin-password, app-password, monitor-password');
    // While the platform's own list does not know it
    expect(() => parseStackConfig({ environment: 'dev', engines: { valkey: {} } }, 'allixios', 'dev')).toThrow(
      `allixios:engines.valkey: unknown key; expected one of ${ENGINE_MODULES.map((module) => module.name).join(', ')}`,
    );
  });

  it('is rendered by the Kubernetes target like any engine, its URL exported and handed to the bootstrap Job', async () => {
    const staging = await evaluate(
      { environment: 'staging', namespace: 'allixios-staging', bootstrap: { image: 'ghcr.io/allixios/allixios-bootstrap:0.1.0' }, engines: withPostgresqlImage() },
      'staging',
      {},
      MODULES,
    );
    const ofKind = (kind: string) =>
      staging.resources.map((resource) => resource.inputs as Json).filter((inputs) => inputs.kind === kind && inputs.metadata?.labels?.['app.kubernetes.io/name'] === 'valkey');
    // A StatefulSet running the engine's image with its config and secret files, and the same
    // objects as every engine has
    expect(['Secret', 'ConfigMap', 'Service', 'StatefulSet', 'PodDisruptionBudget', 'NetworkPolicy'].map((kind) => ofKind(kind).length)).toEqual([1, 1, 2, 1, 1, 1]);
    const [statefulSet] = ofKind('StatefulSet');
    const container = statefulSet!.spec.template.spec.containers[0];
    expect(container.image).toBe(`valkey/valkey:${valkey.defaultVersion}`);
    expect(container.args).toEqual(['valkey-server', '/etc/valkey/valkey.conf', '--dir', '/data']);
    expect(statefulSet!.metadata.labels['app.kubernetes.io/component']).toBe('session-cache');
    expect(Object.keys(ofKind('ConfigMap')[0]!.data)).toEqual(['config.valkey.conf']);
    // Its URL is a stack output under its own variable, secret
    expect(Object.keys(staging.outputs.urls)).toContain('VALKEY_URL');
    expect(await unwrap(staging.outputs.urls.VALKEY_URL!)).toMatch(/^redis:\/\/allixios_app:[^@]+@valkey\.allixios-staging\.svc:6379\/0$/);
    // And the bootstrap Job gets its admin URL and its rendered ACL file, both from its Secret
    const job = staging.resources.map((resource) => resource.inputs as Json).find((inputs) => inputs.kind === 'Job')!;
    const env = job.spec.template.spec.containers[0].env as Array<{ name: string; value?: string; valueFrom?: Json }>;
    expect(env.find((variable) => variable.name === 'VALKEY_URL')?.value).toBe('redis://allixios_admin@valkey.allixios-staging.svc:6379/0');
    expect(env.find((variable) => variable.name === 'VALKEY_URL_PASSWORD')?.valueFrom?.secretKeyRef).toBeDefined();
    expect(env.find((variable) => variable.name === 'VALKEY_USERS_ACL')?.valueFrom?.secretKeyRef).toBeDefined();
  });

  it('is rendered by the Docker target like any engine, with its host URL', async () => {
    const dev = await evaluate({ environment: 'dev', bootstrap: { enabled: false }, engines: { valkey: { hostPort: 16379 } } }, 'dev', {}, MODULES);
    const containers = dev.resources.filter((resource) => resource.type === 'docker:index/container:Container').map((resource) => resource.inputs as Json);
    const container = containers.find((inputs) => String(inputs.name).endsWith('-valkey'))!;
    expect(container.image).toBeDefined();
    expect(container.ports).toEqual([expect.objectContaining({ internal: 6379, external: 16379, ip: '127.0.0.1' })]);
    expect(await unwrap(dev.outputs.hostUrls.VALKEY_URL!)).toMatch(/^redis:\/\/allixios_app:[^@]+@127\.0\.0\.1:16379\/0$/);
  });

  it('is bootstrapped from the list: the bootstrap side of each module, in order, the new one last', async () => {
    const engines = await Promise.all(MODULES.map(loadEngine));
    expect(engines.map((engine) => [engine.name, engine.urlVariable])).toEqual(MODULES.map((module) => [module.name, module.urlVariable]));
    expect(engines.at(-1)!.directory).toBe(valkey.directory);
  });
});

describeConformance(redisCompatibleHarness(asRedis));
