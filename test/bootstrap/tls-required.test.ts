/**
 * On a stack that serves an engine over TLS, the bootstrap takes only TLS URLs for it: the Job and
 * the Docker run name such engines in ALLIXIOS_TLS_ENGINES, and a plain URL (an operator's, say) is
 * refused before anything is sent, instead of sending a password in clear text to an engine that
 * would refuse the connection after.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBootstrap } from '../../bootstrap/runner.ts';
import { isTlsUrl, TLS_ENGINES_VARIABLE } from '../../databases/connection.ts';
import { unwrapSecrets } from '../../stacks/render/mocks.ts';
import { evaluate, evaluateStack } from '../support/pulumi.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

describe('isTlsUrl', () => {
  it.each([
    'postgresql://u:p@postgresql:5432/allixios?sslmode=verify-full&sslrootcert=%2Fca.crt',
    'mongodb://u:p@mongodb:27017/allixios?authSource=admin&tls=true&tlsCAFile=%2Fca.crt',
    'mongodb://u:p@mongodb:27017/allixios?SSL=TRUE',
    'rediss://u:p@redis:6379/0?tlsCAFile=%2Fca.crt',
    'https://u:p@elasticsearch:9200',
    'https://u:p@clickhouse:8443/allixios',
  ])('takes %s as a TLS URL', (url) => expect(isTlsUrl(url)).toBe(true));

  it.each([
    'postgresql://u:p@postgresql:5432/allixios',
    'postgresql://u:p@postgresql:5432/allixios?sslmode=require',
    'postgresql://u:p@postgresql:5432/allixios?sslmode=prefer',
    'mongodb://u:p@mongodb:27017/allixios?tls=false',
    'mongodb://u:p@mongodb:27017/allixios?tlsCAFile=%2Fca.crt',
    'redis://u:p@redis:6379/0?tlsCAFile=%2Fca.crt',
    'http://u:p@elasticsearch:9200',
    'http://u:p@clickhouse:8443/allixios',
    'not a url',
  ])('does not take %s as one', (url) => expect(isTlsUrl(url)).toBe(false));
});

describe('the bootstrap on a stack that serves TLS', () => {
  let server: Server;
  let port: number;
  let connections = 0;
  beforeAll(async () => {
    // A listener where the engine would be: a plain URL must not even open a connection to it.
    server = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const run = (env: Record<string, string>) => runBootstrap({ mode: 'apply', only: ['redis'], env, readyTimeoutMs: 1000, lockTimeoutMs: 1000 });

  it('refuses a plain URL of an engine the stack serves over TLS, naming the variable, and sends nothing', async () => {
    const report = await run({ [TLS_ENGINES_VARIABLE]: 'postgresql,redis', REDIS_URL: `redis://allixios_admin:secret@127.0.0.1:${port}/0` });
    expect(report.ok).toBe(false);
    expect(report.engines[0]!.error).toBe(
      'redis: the stack serves redis over TLS (ALLIXIOS_TLS_ENGINES), but REDIS_URL is not a TLS URL (expected rediss:// or https://, sslmode=verify-full, or tls=true): nothing was sent',
    );
    expect(connections).toBe(0);
  });

  it("refuses the application's and the previous password's URLs too", async () => {
    const report = await run({
      [TLS_ENGINES_VARIABLE]: 'redis',
      REDIS_URL: `rediss://allixios_admin:secret@localhost:${port}/0?tlsCAFile=%2Fnonexistent%2Fca.crt`,
      REDIS_URL_APP: `redis://allixios_app:secret@127.0.0.1:${port}/0`,
      REDIS_URL_PREVIOUS: `redis://allixios_admin:old@127.0.0.1:${port}/0`,
    });
    expect(report.engines[0]!.error).toMatch(/but REDIS_URL_PREVIOUS, REDIS_URL_APP are not TLS URLs/);
    expect(connections).toBe(0);
  });

  it('leaves the URLs of an engine the stack does not serve over TLS to the engine', async () => {
    // Not named: the check stays out of the way, and the run goes on to connect (and fails there).
    const report = await run({ [TLS_ENGINES_VARIABLE]: 'postgresql', REDIS_URL: `redis://allixios_admin:secret@127.0.0.1:${port}/0` });
    expect(report.engines[0]!.error).not.toMatch(/ALLIXIOS_TLS_ENGINES/);
    expect(connections).toBeGreaterThan(0);
  });
});

describe('the stacks name the engines they serve over TLS to the bootstrap', () => {
  const envOf = (variables: Json[]) => variables.find((entry) => entry.name === TLS_ENGINES_VARIABLE)?.value;

  it('every engine, in the Kubernetes Job of a TLS stack', async () => {
    const prod = await evaluateStack('prod');
    const job = prod.resources.find((resource) => resource.type === 'kubernetes:batch/v1:Job')!.inputs as Json;
    expect(envOf(job.spec.template.spec.containers[0].env)).toBe('postgresql,mongodb,redis,elasticsearch,clickhouse');
  });

  it('every engine in the Docker run of dev with TLS, none without', async () => {
    const containerEnv = async (values: Record<string, unknown>) => {
      const dev = await evaluate(values, 'dev');
      const run = dev.resources.find((resource) => resource.type === 'docker:index/container:Container' && resource.name.includes('bootstrap'))!;
      return (unwrapSecrets(run.inputs.envs) as string[]).filter((entry) => typeof entry === 'string' && entry.startsWith(`${TLS_ENGINES_VARIABLE}=`));
    };
    expect(await containerEnv({ environment: 'dev', tls: true })).toEqual([`${TLS_ENGINES_VARIABLE}=postgresql,mongodb,redis,elasticsearch,clickhouse`]);
    expect(await containerEnv({ environment: 'dev' })).toEqual([]);
  });
});
