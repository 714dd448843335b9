/**
 * The render is committed and uploaded from pull requests: no secret may reach it, in any form
 * the program derives from one (a URL, a digest, an encoding), while the names of variables and
 * Secret keys stay readable.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { namespaceConfig, parseStackConfig } from '../stacks/config/index.ts';
import { redactSecrets, SECRET_SIGNATURE, SECRET_SIGNATURE_KEY, unwrapSecrets } from '../stacks/render/mocks.ts';
import { REDACTED, renderStack, type RenderResult } from '../stacks/render/render.ts';
import { readStackFile } from '../stacks/render/stack-file.ts';
import { ROOT } from './support/pulumi.ts';

const STACKS = ['dev', 'staging', 'prod'] as const;

/** Every form of a password the program writes somewhere: as it is, in a URL, encoded, hashed. */
function forms(secret: string): Record<string, string> {
  return {
    plain: secret,
    'percent-encoded': encodeURIComponent(secret),
    base64: Buffer.from(secret).toString('base64'),
    'sha256 hex': createHash('sha256').update(secret).digest('hex'),
  };
}

/** Digests the secret files hold whose salt the test cannot know: found by their shape. */
const DIGEST_SHAPES: Record<string, RegExp> = {
  bcrypt: /\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}/,
  'SCRAM-SHA-256 verifier': /SCRAM-SHA-256\$\d+:/,
  'HTTP basic credentials': /Basic [A-Za-z0-9+/]{16,}={0,2}/,
};

function filesUnder(directory: string): string[] {
  return readdirSync(directory).flatMap((entry) => {
    const path = join(directory, entry);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('the render of every stack, attacked with the passwords the mocks generated', () => {
  const out = mkdtempSync(join(tmpdir(), 'render-'));
  const results = new Map<string, RenderResult>();
  beforeAll(async () => {
    // One process renders them all: the program module is evaluated once per stack.
    for (const stack of STACKS) results.set(stack, await renderStack(ROOT, stack, out));
  });

  it.each(STACKS)('%s: no file holds a generated password in any form, nor a password digest', (stack) => {
    const result = results.get(stack)!;
    const files = filesUnder(join(out, stack));
    expect(files.map((file) => file.slice(out.length + 1)).sort()).toEqual([...result.files.map((file) => join(stack, result.target, file)), join(stack, 'diagram.md')].sort());
    const text = files.map((file) => readFileSync(file, 'utf8')).join('\n');
    const unredacted = JSON.stringify(result.resources.map((resource) => unwrapSecrets(resource.serializedInputs)));

    expect(result.generatedSecrets.length).toBeGreaterThanOrEqual(15);
    const seen = new Set<string>();
    for (const secret of result.generatedSecrets) {
      for (const [form, value] of Object.entries(forms(secret))) {
        expect(text, `${stack}: ${form} of a generated password`).not.toContain(value);
        if (unredacted.includes(value)) seen.add(form);
      }
    }
    // Private keys (the stack's CA on a TLS stack): no PEM private key block of any kind.
    expect(text, `${stack}: a private key in the render`).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(unredacted)) seen.add('private key');
    for (const [shape, pattern] of Object.entries(DIGEST_SHAPES)) {
      expect(pattern.test(text), `${stack}: a ${shape} in the render`).toBe(false);
      if (pattern.test(unredacted)) seen.add(shape);
    }
    // The attack is real: the program's inputs hold these forms, the render does not.
    expect([...seen].sort()).toEqual(
      expect.arrayContaining(
        stack === 'dev'
          ? ['HTTP basic credentials', 'SCRAM-SHA-256 verifier', 'bcrypt', 'percent-encoded', 'plain', 'sha256 hex']
          : ['HTTP basic credentials', 'SCRAM-SHA-256 verifier', 'bcrypt', 'plain', 'private key', 'sha256 hex'],
      ),
    );
  });

  it('dev: shows every container variable by name, its value only when the engine description says it is not secret', () => {
    const directory = results.get('dev')!.directory;
    const config = parseStackConfig(namespaceConfig(readStackFile(ROOT, 'dev').config), 'allixios', 'dev');
    for (const { spec } of config.engines) {
      const envs = JSON.parse(readFileSync(join(directory, `${spec.name}.json`), 'utf8')).container.envs as string[];
      expect(envs).toEqual(Object.entries(spec.env).map(([name, value]) => `${name}=${typeof value === 'string' ? value : REDACTED}`));
    }
    // The bootstrap's URLs and files carry passwords; its environment name and progress switch do not.
    const bootstrap = JSON.parse(readFileSync(join(directory, 'bootstrap.json'), 'utf8')).container.envs as string[];
    expect(bootstrap.slice(0, 2)).toEqual(['ALLIXIOS_ENVIRONMENT=dev', 'ALLIXIOS_PROGRESS=1']);
    expect(bootstrap).toContain(`DATABASE_URL=${REDACTED}`);
    expect(bootstrap).toContain(`REDIS_USERS_ACL=${REDACTED}`);
    expect(bootstrap.slice(2).every((entry) => /^[A-Z_]+=<redacted>$/.test(entry))).toBe(true);
  });

  it('dev: shows where each secret file goes, not what it holds', () => {
    const uploads = JSON.parse(readFileSync(join(results.get('dev')!.directory, 'redis.json'), 'utf8')).container.uploads as Array<Record<string, string>>;
    expect(uploads.find((upload) => upload.file === '/etc/redis/secrets/users.acl')).toMatchObject({
      file: '/etc/redis/secrets/users.acl',
      content: REDACTED,
      permissions: '0440',
    });
  });

  it('prod: shows the keys of every Secret and the variables that refer to them, never a value', () => {
    const result = results.get('prod')!;
    for (const file of result.files) {
      for (const document of parseAllDocuments(readFileSync(join(result.directory, file), 'utf8'))) {
        const object = document.toJS();
        if (object.kind !== 'Secret') continue;
        expect(Object.keys(object.stringData).length, object.metadata.name).toBeGreaterThan(0);
        for (const value of Object.values(object.stringData)) expect(value).toBe(REDACTED);
      }
    }
    const job = parseAllDocuments(readFileSync(join(result.directory, 'bootstrap.yaml'), 'utf8'))[0]!.toJS();
    expect(job.spec.template.spec.containers[0].env).toContainEqual({
      name: 'DATABASE_URL_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'postgresql-credentials', key: 'owner-password' } },
    });
  });
});

describe('redaction of an environment list', () => {
  const secret = (value: unknown) => ({ [SECRET_SIGNATURE_KEY]: SECRET_SIGNATURE, value });

  it('redacts only the secret entries when each entry says whether it is secret', () => {
    expect(redactSecrets({ envs: ['MODE=dev', secret('PASSWORD=hunter2')] }, REDACTED)).toEqual({ envs: ['MODE=dev', `PASSWORD=${REDACTED}`] });
  });

  it('keeps every name and redacts every value when the whole list is secret', () => {
    expect(redactSecrets({ envs: secret(['MODE=dev', 'PASSWORD=hunter2']) }, REDACTED)).toEqual({ envs: [`MODE=${REDACTED}`, `PASSWORD=${REDACTED}`] });
  });

  it('redacts a secret string outside an environment list whole, even one that looks like NAME=value', () => {
    expect(redactSecrets({ content: secret('user=admin password=hunter2') }, REDACTED)).toEqual({ content: REDACTED });
    expect(redactSecrets({ envs: [secret('no variable here')] }, REDACTED)).toEqual({ envs: [REDACTED] });
  });
});
