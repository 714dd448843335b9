/** The bootstrap as part of `pulumi up`: its Docker container and Kubernetes Job, under mocks. */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { describe, expect, it } from 'vitest';
import { BOOTSTRAP_INPUTS, bootstrapContentHash, bootstrapTrigger } from '../stacks/bootstrap/trigger.ts';
import { SECRET_SIGNATURE, SECRET_SIGNATURE_KEY, unwrapSecrets } from '../stacks/render/mocks.ts';
import { evaluate, evaluateStack, ofType, ROOT, unwrap } from './support/pulumi.ts';
import { namespaceConfig } from '../stacks/config/index.ts';
import { readStackFile } from '../stacks/render/stack-file.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- rendered objects
const isEnvelope = (value: unknown) => (value as Record<string, unknown> | null)?.[SECRET_SIGNATURE_KEY] === SECRET_SIGNATURE;
const ENGINE_VARIABLES = ['DATABASE_URL', 'MONGODB_URL', 'REDIS_URL', 'ELASTICSEARCH_URL', 'CLICKHOUSE_URL'];

describe('the bootstrap run on Docker (stack dev)', () => {
  it('runs once, on the databases network, after every engine container is healthy', async () => {
    const dev = await evaluateStack('dev');
    const [run] = ofType(dev, 'docker:index/container:Container').filter((resource) => resource.name.includes('-bootstrap-'));
    expect(run).toBeDefined();
    expect(run!.inputs).toMatchObject({ attach: true, logs: true, mustRun: false, restart: 'no', networksAdvanced: [{ name: 'allixios-dev' }] });
    expect(run!.inputs.user).toBe('1000:1000');
    const dependsOn = (dev.options.get(run!.name)!.dependsOn ?? []) as Array<{ __name?: string }>;
    expect(dependsOn.map((resource) => resource.__name).sort()).toEqual(
      ['clickhouse', 'elasticsearch', 'mongodb', 'postgresql', 'redis'].map((engine) => `allixios-${engine}-container`),
    );
  });

  it('builds its image from bootstrap/Dockerfile with the repository as context, without pushing it', async () => {
    const dev = await evaluateStack('dev');
    const [image] = ofType(dev, 'docker:index/image:Image');
    expect(image!.inputs).toMatchObject({ skipPush: true, build: { context: resolve(ROOT), dockerfile: join(ROOT, 'bootstrap', 'Dockerfile') } });
    expect(image!.inputs.imageName).toMatch(/^allixios-bootstrap:[0-9a-f]{12}$/);
  });

  it('gets every engine URL with the owner or admin credentials, as a secret', async () => {
    const dev = await evaluateStack('dev');
    const [run] = ofType(dev, 'docker:index/container:Container').filter((resource) => resource.name.includes('-bootstrap-'));
    expect(isEnvelope(run!.inputs.envs)).toBe(true);
    const envs = unwrapSecrets(run!.inputs.envs) as string[];
    expect(envs[0]).toBe('ALLIXIOS_ENVIRONMENT=dev');
    const names = envs.slice(1).map((entry) => entry.split('=')[0]);
    expect(names.filter((name) => ENGINE_VARIABLES.includes(name!))).toEqual(ENGINE_VARIABLES);
    const databaseUrl = new URL(envs.find((entry) => entry.startsWith('DATABASE_URL='))!.slice('DATABASE_URL='.length));
    expect([databaseUrl.username, databaseUrl.host]).toEqual(['allixios_owner', 'postgresql:5432']);
    expect(dev.generatedSecrets).toContain(decodeURIComponent(databaseUrl.password));
    // and the rendered Redis ACL file, digests only, to compare live passwords with
    const acl = envs.find((entry) => entry.startsWith('REDIS_USERS_ACL='))!;
    expect(acl).toMatch(/^REDIS_USERS_ACL=user default off/);
    expect(acl).toMatch(/user allixios_app on #[0-9a-f]{64} /);
    for (const secret of dev.generatedSecrets) expect(acl).not.toContain(secret);
  });

  it('fails the deployment with the bootstrap’s own output when it exits non-zero', async () => {
    // Pulumi fails a program on an unhandled rejection (its handler logs it on the resource).
    // Stand in for that handler while the failing run settles, then give vitest its own back.
    const listeners = process.listeners('unhandledRejection');
    const rejections: unknown[] = [];
    process.removeAllListeners('unhandledRejection');
    process.on('unhandledRejection', (reason) => rejections.push(reason));
    try {
      await evaluate({ environment: 'dev' }, 'dev', {
        containerExit: (name) => (name.includes('-bootstrap-') ? { code: 1, logs: 'error: postgresql: schemas/V0009__x.sql, statement 2: boom' } : { code: 0, logs: '' }),
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      process.removeAllListeners('unhandledRejection');
      for (const listener of listeners) process.on('unhandledRejection', listener);
    }
    expect(rejections.length).toBeGreaterThan(0);
    for (const reason of rejections) {
      expect(reason).toBeInstanceOf(pulumi.ResourceError);
      expect((reason as Error).message).toMatch(
        /^the bootstrap \(container allixios-dev-bootstrap-[0-9a-f]{10}-[0-9a-f]{8}\) exited with 1:\nerror: postgresql: schemas\/V0009__x\.sql, statement 2: boom$/,
      );
    }
    const passing = await evaluate({ environment: 'dev' }, 'dev');
    expect(await unwrap(passing.outputs.bootstrap!)).toMatch(/^container allixios-dev-bootstrap-[0-9a-f]{10}-[0-9a-f]{8} exited with 0$/);
  });

  it('is left out when the stack disables it', async () => {
    const without = await evaluate({ environment: 'dev', bootstrap: { enabled: false } });
    expect(ofType(without, 'docker:index/container:Container').filter((resource) => resource.name.includes('-bootstrap-'))).toEqual([]);
    expect(without.outputs.bootstrap).toBeUndefined();
  });
});

describe('the bootstrap run on Kubernetes (stack prod)', () => {
  it('is a Job from the pinned image, bounded in retries and time, removed a week after it finished', async () => {
    const prod = await evaluateStack('prod');
    const [job] = ofType(prod, 'kubernetes:batch/v1:Job');
    const spec = (job!.inputs as Json).spec;
    expect(spec).toMatchObject({ backoffLimit: 2, activeDeadlineSeconds: 900, ttlSecondsAfterFinished: 604800 });
    const container = spec.template.spec.containers[0];
    expect(container.image).toBe('ghcr.io/allixios/allixios-bootstrap:0.1.0');
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(spec.template.spec.restartPolicy).toBe('Never');
    // Pulumi waits past the Job's own deadline (its default wait is 10 minutes).
    expect(prod.options.get(job!.name)!.customTimeouts).toEqual({ create: '960s', update: '960s' });
  });

  it('carries the labels every engine NetworkPolicy admits, and starts after every StatefulSet is ready', async () => {
    const prod = await evaluateStack('prod');
    const [job] = ofType(prod, 'kubernetes:batch/v1:Job');
    const podLabels = (job!.inputs as Json).spec.template.metadata.labels;
    // Every policy but ClickHouse Keeper's, which admits ClickHouse's members and its own only (the bootstrap never talks to Keeper).
    for (const policy of ofType(prod, 'kubernetes:networking.k8s.io/v1:NetworkPolicy').filter(
      (candidate) => (candidate.inputs as Json).metadata.name !== 'clickhouse-keeper-ingress',
    )) {
      const admitted = ((policy.inputs as Json).spec.ingress[0].from as Json[]).some(
        (peer) => Object.entries(peer.podSelector?.matchLabels ?? { none: 'none' }).every(([key, value]) => podLabels[key] === value) && !peer.namespaceSelector,
      );
      expect(admitted, policy.name).toBe(true);
    }
    const dependsOn = (prod.options.get(job!.name)!.dependsOn ?? []) as Array<{ __name?: string }>;
    expect(dependsOn.map((resource) => resource.__name).sort()).toEqual(
      ['clickhouse', 'elasticsearch', 'mongodb', 'postgresql', 'redis'].map((engine) => `allixios-${engine}-statefulset`),
    );
  });

  it('gets passwords only by reference to the engines’ Secrets and builds the URLs in the pod', async () => {
    const prod = await evaluateStack('prod');
    const [job] = ofType(prod, 'kubernetes:batch/v1:Job');
    const env = (job!.inputs as Json).spec.template.spec.containers[0].env as Json[];
    expect(env.find((variable) => variable.name === 'DATABASE_URL_PASSWORD')!.valueFrom).toEqual({
      secretKeyRef: { name: 'postgresql-credentials', key: 'owner-password' },
    });
    // The URL comes without its password, which the bootstrap encodes into it (bootstrap/env.ts):
    // no $(VAR) pasting a password with @:/#% into the URL as it is
    // (in its TLS form: prod serves PostgreSQL over TLS, verified against the mounted CA bundle)
    expect(env.find((variable) => variable.name === 'DATABASE_URL')!.value).toBe(
      'postgresql://allixios_owner@postgresql.allixios-prod.svc:5432/allixios?sslmode=verify-full&sslrootcert=%2Fetc%2Fallixios%2Ftls%2Fca.crt',
    );
    expect(env.filter((variable) => ENGINE_VARIABLES.includes(variable.name)).map((variable) => variable.name)).toEqual(ENGINE_VARIABLES);
    for (const variable of env) expect(String(variable.value ?? ''), variable.name).not.toMatch(/\$\(/);
    for (const name of ENGINE_VARIABLES) expect(env.some((variable) => variable.name === `${name}_PASSWORD` && variable.valueFrom?.secretKeyRef)).toBe(true);
    // The rendered Redis ACL file (digests), to compare live passwords with, from the Secret too.
    expect(env.find((variable) => variable.name === 'REDIS_USERS_ACL')!.valueFrom).toEqual({
      secretKeyRef: { name: 'redis-credentials', key: 'config.users.acl' },
    });
    const text = JSON.stringify(job!.inputs);
    for (const secret of prod.generatedSecrets) expect(text).not.toContain(secret);
  });

  it('keeps the same Job on a second run with the same assets and config, so nothing runs again', async () => {
    const [first, second] = [await evaluateStack('prod'), await evaluateStack('prod')];
    const name = (evaluation: typeof first) => (ofType(evaluation, 'kubernetes:batch/v1:Job')[0]!.inputs as Json).metadata.name;
    expect(name(second)).toBe(name(first));
    expect(name(first)).toMatch(/^bootstrap-[0-9a-f]{10}-[0-9a-f]{8}$/);
  });

  it('runs a new Job when a password rotates, and again when the rotation retires the previous one', async () => {
    const jobName = async (rotations?: Json) => {
      const evaluation = await evaluate({ ...namespaceConfig(readStackFile(ROOT, 'prod').config), ...(rotations ? { rotations } : {}) }, 'prod');
      return (ofType(evaluation, 'kubernetes:batch/v1:Job')[0]!.inputs as Json).metadata.name as string;
    };
    const before = await jobName();
    const rotated = await jobName({ redis: { 'app-password': { generation: 1 } } });
    const retired = await jobName({ redis: { 'app-password': { generation: 1, previous: 'retire' } } });
    // The content trigger stays; the credentials' fingerprint moves with each step
    expect(new Set([before, rotated, retired]).size).toBe(3);
    expect(rotated.slice(0, 20)).toBe(before.slice(0, 20));
    expect(await jobName({ redis: { 'app-password': { generation: 1 } } })).toBe(rotated);
  });

  it("hands the Job the admin's previous password while a rotation keeps it, and the application's URL to check, all by reference", async () => {
    const config = { ...namespaceConfig(readStackFile(ROOT, 'prod').config), rotations: { redis: { 'admin-password': { generation: 1 } } } };
    const evaluation = await evaluate(config, 'prod');
    const job = ofType(evaluation, 'kubernetes:batch/v1:Job')[0]!.inputs as Json;
    const env = job.spec.template.spec.containers[0].env as Array<{ name: string; value?: string; valueFrom?: Json }>;
    const byName = Object.fromEntries(env.map((variable) => [variable.name, variable]));
    expect(byName.REDIS_URL_PREVIOUS_PASSWORD?.valueFrom).toEqual({ secretKeyRef: { name: 'redis-credentials', key: 'previous-admin-password' } });
    expect(byName.DATABASE_URL_PREVIOUS_PASSWORD).toBeUndefined();
    // prod serves TLS: the application's URL is the verifying one, naming the CA the Job mounts
    expect(byName.REDIS_URL_APP?.value).toBe('rediss://allixios_app@redis.allixios-prod.svc:6379/0?tlsCAFile=%2Fetc%2Fallixios%2Ftls%2Fca.crt');
    expect(byName.REDIS_URL_APP_PASSWORD?.valueFrom).toEqual({ secretKeyRef: { name: 'redis-credentials', key: 'app-password' } });
    expect(byName.POSTGRES_ROLE_VERIFIERS?.valueFrom).toEqual({ secretKeyRef: { name: 'postgresql-credentials', key: 'initdb.role-verifiers' } });
    expect(byName.MONGODB_USER_PASSWORDS?.valueFrom).toEqual({ secretKeyRef: { name: 'mongodb-credentials', key: 'bootstrap.user-passwords.json' } });
    // No value of any password in the Job: every one is a reference
    for (const secret of evaluation.generatedSecrets) expect(JSON.stringify(job)).not.toContain(secret);
  });
});

describe('the bootstrap trigger', () => {
  function copyInputs(): string {
    const directory = mkdtempSync(join(tmpdir(), 'allixios-trigger-'));
    for (const input of BOOTSTRAP_INPUTS) cpSync(join(ROOT, input), join(directory, input), { recursive: true });
    return directory;
  }

  it('changes when an asset changes', () => {
    const copy = copyInputs();
    const before = bootstrapContentHash(copy);
    const asset = join(copy, 'databases/postgresql/functions/R__updated_at.sql');
    writeFileSync(asset, `${readFileSync(asset, 'utf8')}\n-- a real edit\nSELECT 1;\n`);
    expect(bootstrapContentHash(copy)).not.toBe(before);
  });

  it('does not change for a CRLF checkout of the same files', () => {
    const copy = copyInputs();
    const before = bootstrapContentHash(copy);
    const asset = join(copy, 'databases/clickhouse/schemas/V0002__user_events.sql');
    writeFileSync(asset, readFileSync(asset, 'utf8').replaceAll('\n', '\r\n'));
    expect(bootstrapContentHash(copy)).toBe(before);
    expect(bootstrapContentHash(copy)).toBe(bootstrapContentHash(ROOT));
  });

  it('changes when an engine moves or the image changes, whatever the order of the endpoints', () => {
    const base = bootstrapTrigger('abc', 'image:1', ['postgresql:5432', 'redis:6379']);
    expect(bootstrapTrigger('abc', 'image:1', ['redis:6379', 'postgresql:5432'])).toBe(base);
    expect(bootstrapTrigger('abc', 'image:1', ['postgresql:5433', 'redis:6379'])).not.toBe(base);
    expect(bootstrapTrigger('abc', 'image:2', ['postgresql:5432', 'redis:6379'])).not.toBe(base);
    expect(bootstrapTrigger('abd', 'image:1', ['postgresql:5432', 'redis:6379'])).not.toBe(base);
  });
});
