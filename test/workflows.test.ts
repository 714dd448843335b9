/**
 * The GitHub Actions workflows in .github/workflows: valid against GitHub's own workflow schema,
 * and doing what the README says: checks, render and a policy-checked preview on pull requests,
 * staging on main, prod by hand behind an approval, one ephemeral stack per pull request, a state
 * backend chosen by one secret, and no credentials in the files.
 *
 * Job conditions are evaluated with GitHub's expression engine (@actions/expressions) against the
 * events that matter; the backend and cluster steps are run in bash with made-up secrets, and the
 * image steps (.github/scripts/push-images.sh, the pull request's builds) with a docker that only
 * logs what it is asked.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';
import { truthy } from '@actions/expressions/result';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ROOT } from './support/pulumi.ts';
import { POSTGRESQL_IMAGE } from './support/stacks.ts';

// @actions/workflow-parser imports its JSON schema without `with { type: 'json' }`, which Node's
// ESM loader refuses, and vitest hands node_modules to Node's loader. This hook (for this test
// process only) serves that package's JSON files as modules exporting the parsed JSON.
register(
  `data:text/javascript,${encodeURIComponent(`
    import { readFile } from 'node:fs/promises';
    export async function load(url, context, nextLoad) {
      if (url.startsWith('file:') && url.includes('/@actions/workflow-parser/') && url.endsWith('.json')) {
        return { format: 'module', source: 'export default ' + (await readFile(new URL(url), 'utf8')) + ';', shortCircuit: true };
      }
      return nextLoad(url, context);
    }`)}`,
);
const { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } = await import('@actions/workflow-parser');

type Scalar = string | number | boolean;
interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, Scalar>;
  env?: Record<string, Scalar>;
  'working-directory'?: string;
}
interface Concurrency {
  group: string;
  'cancel-in-progress'?: boolean;
}
interface Job {
  name?: string;
  if?: string;
  'runs-on': string;
  permissions?: Record<string, string>;
  environment?: string | { name: string };
  concurrency?: Concurrency;
  env?: Record<string, Scalar>;
  steps: Step[];
}
interface Workflow {
  name: string;
  on: Record<string, { branches?: string[]; types?: string[] } | null>;
  permissions?: Record<string, string>;
  concurrency?: Concurrency;
  env?: Record<string, Scalar>;
  jobs: Record<string, Job>;
}

const DIRECTORY = join(ROOT, '.github', 'workflows');
const FILES = readdirSync(DIRECTORY)
  .filter((file) => /\.ya?ml$/.test(file))
  .sort();
const text = (file: string) => readFileSync(join(DIRECTORY, file), 'utf8');
const workflows = new Map(FILES.map((file) => [file, YAML.parse(text(file)) as Workflow]));
const workflow = (file: string): Workflow => {
  const parsed = workflows.get(file);
  if (!parsed) throw new Error(`no workflow ${file} in .github/workflows (found: ${FILES.join(', ')})`);
  return parsed;
};
const allJobs = () => [...workflows].flatMap(([file, parsed]) => Object.entries(parsed.jobs).map(([id, job]) => ({ file, id, job })));

/** Schema and expression errors GitHub would report for a workflow file. */
async function schemaErrors(name: string, content: string): Promise<string[]> {
  const parsed = parseWorkflow({ name, content }, new NoOperationTraceWriter());
  const errors = parsed.context.errors.getErrors().map((error) => error.message);
  if (errors.length > 0 || !parsed.value) return errors;
  const template = await convertWorkflowTemplate(parsed.context, parsed.value);
  return (template.errors ?? []).map((error) => error.Message);
}

/** GitHub's verdict on a job's `if:` for an event (a missing `if` means the job runs). */
function runsFor(job: Job, github: Record<string, unknown>): boolean {
  if (job.if === undefined) return true;
  const expression = job.if.replace(/^\s*\$\{\{([\s\S]*)\}\}\s*$/, '$1');
  const tokens = new Lexer(expression).lex().tokens;
  const ast = new Parser(tokens, ['github', 'env', 'vars', 'inputs'], []).parse();
  const context = JSON.parse(JSON.stringify({ github, env: {}, vars: {}, inputs: {} }), data.reviver) as data.Dictionary;
  return truthy(new Evaluator(ast, context).evaluate());
}

const REPOSITORY = 'allixios/databases';
const pullRequestEvent = (action: string, fromFork = false) => ({
  event_name: 'pull_request',
  repository: REPOSITORY,
  ref: 'refs/pull/42/merge',
  event: { action, number: 42, pull_request: { number: 42, head: { sha: 'abc123', repo: { full_name: fromFork ? 'someone/databases' : REPOSITORY } } } },
});
const pushEvent = (ref = 'refs/heads/main') => ({ event_name: 'push', repository: REPOSITORY, ref, event: {} });
const dispatchEvent = (ref = 'refs/heads/main') => ({ event_name: 'workflow_dispatch', repository: REPOSITORY, ref, event: {} });

const isPulumiAction = (step: Step) => step.uses?.startsWith('pulumi/actions@') === true;
/** A step that runs a Pulumi operation on a stack (installing the CLI alone is not one). */
const isPulumiOperation = (step: Step) => (isPulumiAction(step) && step.with?.command !== undefined) || /npm run stack:(up|down)\b/.test(step.run ?? '');
const stepIndex = (job: Job, predicate: (step: Step) => boolean) => job.steps.findIndex(predicate);
const runLines = (job: Job) => job.steps.flatMap((step) => (step.run ?? '').split('\n').map((line) => line.trim()));
const BACKEND_STEP = 'Choose the Pulumi state backend';
const CLUSTER_STEP = 'Cluster credentials';
/** The deploy jobs' step that builds and pushes the images a stack file pins, and its script. */
const IMAGES_STEP = 'Project images';
const PUSH_SCRIPT = '.github/scripts/push-images.sh';
const namedStep = (job: Job, name: string) => job.steps.find((step) => step.name === name);

function jobsWithPulumiOperation(command: string) {
  return allJobs().filter(({ job }) =>
    job.steps.some((step) => (isPulumiAction(step) && step.with?.command === command) || new RegExp(`npm run stack:${command}\\b`).test(step.run ?? '')),
  );
}

interface StepRun {
  status: number | null;
  stdout: string;
  exported: Record<string, string>;
  runnerTemp: string;
}

/**
 * Runs a `run:` step as the runner would: in bash, its env with `${{ secrets.X }}` filled in from
 * `secrets` (an absent secret is ''), then `env` on top; GITHUB_ENV and RUNNER_TEMP in a temp dir.
 */
function runStep(step: Step, secrets: Record<string, string>, options: { env?: Record<string, string>; cwd?: string } = {}): StepRun {
  const runnerTemp = mkdtempSync(join(tmpdir(), 'runner-'));
  const githubEnv = join(runnerTemp, 'github_env');
  writeFileSync(githubEnv, '');
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', GITHUB_ENV: githubEnv, RUNNER_TEMP: runnerTemp, GITHUB_ACTOR: 'octocat' };
  for (const [name, value] of Object.entries(step.env ?? {})) {
    env[name] = String(value).replace(/^\$\{\{\s*secrets\.(\w+)\s*\}\}$/, (_, secret: string) => secrets[secret] ?? '');
  }
  Object.assign(env, options.env);
  const result = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run ?? ''], { env, cwd: options.cwd ?? runnerTemp, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout + result.stderr, exported: parseGithubEnv(readFileSync(githubEnv, 'utf8')), runnerTemp };
}

/** `$GITHUB_ENV` as the runner reads it: `NAME=value` lines and `NAME<<DELIMITER` blocks. */
function parseGithubEnv(content: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = content.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const heredoc = /^([A-Za-z_]\w*)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, index + 1);
      result[heredoc[1]!] = lines.slice(index + 1, end).join('\n');
      index = end;
    } else if (line.includes('=')) {
      result[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return result;
}

function onlyJob(file: string, predicate: (job: Job) => boolean): { id: string; job: Job } {
  const matches = Object.entries(workflow(file).jobs).filter(([, job]) => predicate(job));
  expect(matches, `exactly one job of ${file} matches`).toHaveLength(1);
  const [id, job] = matches[0]!;
  return { id, job };
}

describe('workflow files', () => {
  it('are the pull-request, deploy and ephemeral-stack workflows', () => {
    expect(FILES).toEqual(['deploy.yml', 'ephemeral.yml', 'pull-request.yml']);
  });

  it.each(FILES)('%s is valid against GitHub’s workflow schema, expressions included', async (file) => {
    expect(await schemaErrors(file, text(file))).toEqual([]);
  });

  it('the schema check rejects what GitHub rejects (a misspelled key, an unknown permission level, a broken expression)', async () => {
    const broken = 'on: push\njobs:\n  a:\n    runz-on: ubuntu-24.04\n    permissions:\n      contents: maybe\n    steps:\n      - run: echo ${{ github.event.( }}\n';
    const errors = (await schemaErrors('broken.yml', broken)).join('\n');
    expect(errors).toContain("Unexpected value 'runz-on'");
    expect(errors).toContain("Unexpected value 'maybe'");
    expect(errors).toMatch(/Unexpected symbol|Unexpected end of expression/);
  });

  it('pin every action to a major version tag of its current release line', () => {
    const uses = new Set(allJobs().flatMap(({ job }) => job.steps.flatMap((step) => (step.uses ? [step.uses] : []))));
    for (const action of uses) expect(action).toMatch(/^[\w-]+\/[\w-]+@v\d+$/);
    expect([...uses].sort()).toEqual(['actions/checkout@v6', 'actions/setup-node@v6', 'actions/upload-artifact@v7', 'pulumi/actions@v7']);
  });

  it('install the Pulumi CLI release of the @pulumi/pulumi SDK the project locks', () => {
    const sdk = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies['@pulumi/pulumi'];
    const pulumiSteps = allJobs().flatMap(({ file, job }) => job.steps.filter(isPulumiAction).map((step) => ({ file, step })));
    expect(pulumiSteps.length).toBeGreaterThan(0);
    for (const { file, step } of pulumiSteps) {
      expect(step.with?.['pulumi-version']).toBe('${{ env.PULUMI_VERSION }}');
      expect(String(workflow(file).env?.PULUMI_VERSION)).toBe(sdk);
    }
  });

  it('install exactly the lock file with npm ci, never npm install, before any npm script runs', () => {
    for (const { file, id, job } of allJobs()) {
      expect(
        runLines(job).filter((line) => /\bnpm (install|i)\b/.test(line)),
        `${file} ${id}`,
      ).toEqual([]);
      const scripts = stepIndex(job, (step) => /\bnpm (test|run)\b/.test(step.run ?? ''));
      if (scripts === -1) continue;
      const install = stepIndex(job, (step) => step.run === 'npm ci --no-audit --no-fund' && step['working-directory'] === undefined);
      expect(install, `${file} ${id} installs first`).toBeGreaterThanOrEqual(0);
      expect(install).toBeLessThan(scripts);
    }
  });

  it('run only npm scripts that package.json defines, with the commands the README names', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const used = new Set(allJobs().flatMap(({ job }) => runLines(job).flatMap((line) => [...line.matchAll(/\bnpm run ([\w:-]+)/g)].map((match) => match[1]!))));
    expect([...used].sort()).toEqual([
      'drill:clickhouse-backup',
      'drill:patroni',
      'drill:pgbackrest',
      'drill:redis-backup',
      'drill:redis-sentinel',
      'lint',
      'render',
      'stack:down',
      'stack:up',
      'typecheck',
    ]);
    for (const script of used) expect(scripts, `package.json script ${script}`).toHaveProperty(script);
    expect(scripts['stack:up']).toBe('tsx stacks/ephemeral/cli.ts up');
    expect(scripts['stack:down']).toBe('tsx stacks/ephemeral/cli.ts down');
    expect(scripts['drill:patroni']).toBe('tsx bench/drills/patroni.ts');
    expect(scripts['drill:redis-sentinel']).toBe('tsx bench/drills/redis-sentinel.ts');
  });
});

describe('on a pull request', () => {
  const file = 'pull-request.yml';

  it('runs for pull requests to main', () => {
    expect(Object.keys(workflow(file).on)).toEqual(['pull_request']);
    expect(workflow(file).on.pull_request?.branches).toEqual(['main']);
  });

  it('typechecks, lints, then runs npm test, with every Debian package .ci/run installs', () => {
    const { job } = onlyJob(file, (candidate) => candidate.steps.some((step) => step.run === 'npm test'));
    const test = stepIndex(job, (step) => step.run === 'npm test');
    for (const command of ['npm run typecheck', 'npm run lint']) {
      const index = stepIndex(job, (step) => step.run === command);
      expect(index, command).toBeGreaterThanOrEqual(0);
      expect(index, command).toBeLessThan(test);
    }
    // The engines the tests start, installed before the tests: the packages .ci/run installs.
    const ciPackages = [...readFileSync(join(ROOT, '.ci/run'), 'utf8').matchAll(/missing\+=\(([\w-]+)\)/g)].map((match) => match[1]!);
    expect(ciPackages).toEqual(['openssl', 'redis-server', 'postgresql-client', 'pgbouncer', 'patroni', 'etcd-server', 'postgresql', 'redis-sentinel', 'pgbackrest']);
    const engines = stepIndex(job, (step) => /apt-get install /.test(step.run ?? ''));
    expect(engines).toBeGreaterThanOrEqual(0);
    const install = job.steps[engines]!.run!.split('\n').find((line) => line.includes('apt-get install'))!;
    for (const name of ciPackages) expect(install.split(/\s+/)).toContain(name);
    expect(engines).toBeLessThan(test);
    expect(runsFor(job, pullRequestEvent('opened', true))).toBe(true);
  });

  it('renders every long-lived stack with a stack file into render/ and uploads render/ as an artifact', () => {
    // Stack files of ephemeral stacks (written by stack:up while such a stack exists) are not the project's.
    const stacks = readdirSync(ROOT)
      .flatMap((name) => /^Pulumi\.(.+)\.yaml$/.exec(name)?.[1] ?? [])
      .filter(
        (stack) => (YAML.parse(readFileSync(join(ROOT, `Pulumi.${stack}.yaml`), 'utf8')) as { config?: Record<string, unknown> }).config?.['allixios:environment'] !== 'ephemeral',
      )
      .sort();
    expect(stacks).toEqual(['dev', 'prod', 'staging']);
    const { job } = onlyJob(file, (candidate) => candidate.steps.some((step) => step.uses?.startsWith('actions/upload-artifact@')));
    const lines = runLines(job);
    for (const stack of stacks) expect(lines).toContain(`npm run render -- --stack ${stack} --out render/`);
    const render = stepIndex(job, (step) => /npm run render/.test(step.run ?? ''));
    const upload = stepIndex(job, (step) => step.uses?.startsWith('actions/upload-artifact@') === true);
    expect(render).toBeLessThan(upload);
    expect(job.steps[upload]!.with).toMatchObject({ path: 'render/', 'if-no-files-found': 'error' });
  });

  it('previews staging with the policy pack and posts the preview on the pull request', () => {
    const { job } = onlyJob(file, (candidate) => candidate.steps.some((step) => isPulumiAction(step) && step.with?.command === 'preview'));
    const preview = stepIndex(job, (step) => isPulumiAction(step) && step.with?.command === 'preview');
    expect(job.steps[preview]!.with).toMatchObject({ command: 'preview', 'stack-name': 'staging', policyPacks: 'policy', 'comment-on-pr': true });
    // The policy pack has its own package.json: its dependencies are installed in policy/ first.
    const policyInstall = stepIndex(job, (step) => step['working-directory'] === 'policy' && step.run === 'npm ci --no-audit --no-fund');
    expect(policyInstall).toBeGreaterThanOrEqual(0);
    expect(policyInstall).toBeLessThan(preview);
    expect(job.permissions).toEqual({ contents: 'read', 'pull-requests': 'write' });
  });

  it('previews only pull requests from this repository, since forks get no secrets', () => {
    const { job } = onlyJob(file, (candidate) => candidate.steps.some((step) => isPulumiAction(step) && step.with?.command === 'preview'));
    expect(runsFor(job, pullRequestEvent('synchronize'))).toBe(true);
    expect(runsFor(job, pullRequestEvent('synchronize', true))).toBe(false);
  });
});

describe('deploys', () => {
  const file = 'deploy.yml';
  const upJob = (stack: string) => onlyJob(file, (job) => job.steps.some((step) => isPulumiAction(step) && step.with?.command === 'up' && step.with?.['stack-name'] === stack)).job;

  it('run on a push to main and by manual dispatch', () => {
    expect(workflow(file).on).toEqual({ push: { branches: ['main'] }, workflow_dispatch: null });
  });

  it('bring staging up on a push to main, and only then', () => {
    const staging = upJob('staging');
    expect(runsFor(staging, pushEvent())).toBe(true);
    expect(runsFor(staging, dispatchEvent())).toBe(false);
  });

  it('bring prod up only by a dispatch from main, in the production environment that holds the approval', () => {
    const prod = upJob('prod');
    expect(prod.environment).toBe('production');
    expect(runsFor(prod, dispatchEvent())).toBe(true);
    expect(runsFor(prod, dispatchEvent('refs/heads/some-branch'))).toBe(false);
    expect(runsFor(prod, pushEvent())).toBe(false);
    expect(upJob('staging').environment).toBeUndefined();
  });

  it('run the policy pack on every update', () => {
    for (const stack of ['staging', 'prod']) {
      const job = upJob(stack);
      const up = stepIndex(job, (step) => isPulumiAction(step) && step.with?.command === 'up');
      expect(job.steps[up]!.with?.policyPacks).toBe('policy');
      const policyInstall = stepIndex(job, (step) => step['working-directory'] === 'policy');
      expect(policyInstall).toBeGreaterThanOrEqual(0);
      expect(policyInstall).toBeLessThan(up);
    }
  });
});

describe("the project's images", () => {
  const imageStep = (stack: string) => {
    const job = workflow('deploy.yml').jobs[stack]!;
    const step = namedStep(job, IMAGES_STEP);
    expect(step, `deploy.yml ${stack}: ${IMAGES_STEP}`).toBeDefined();
    return { job, step: step! };
  };
  const stackConfig = (stack: string) =>
    (YAML.parse(readFileSync(join(ROOT, `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, { image?: string; postgresql?: { image?: string } }> }).config;

  type Manifest = 'present' | 'absent' | 'unreachable';
  /**
   * A `docker` that logs its arguments; `manifest inspect <image>` answers as FAKE_MANIFESTS says
   * for that image (lines `<image> <state>`), else as FAKE_MANIFEST says.
   */
  const DOCKER = `#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$DOCKER_LOG"
if [ "$1" = login ]; then cat > /dev/null; echo "Login Succeeded"; exit 0; fi
if [ "$1 $2" = "manifest inspect" ]; then
  state=$(awk -v image="$3" '$1 == image { print $2 }' "$FAKE_MANIFESTS")
  case "\${state:-$FAKE_MANIFEST}" in
    present) echo '{"schemaVersion": 2}' ;;
    absent) echo "no such manifest: $3" >&2; exit 1 ;;
    *) echo "Get https://ghcr.io/v2/: net/http: TLS handshake timeout" >&2; exit 1 ;;
  esac
fi
`;

  /** Runs a deploy job's image step on its stack file, or on `stackFile`, with the fake docker. */
  function runImageStep(stack: string, manifest: Manifest | { default: Manifest; [image: string]: Manifest }, stackFile?: string) {
    const directory = mkdtempSync(join(tmpdir(), 'docker-'));
    writeFileSync(join(directory, 'docker'), DOCKER, { mode: 0o755 });
    const log = join(directory, 'docker.log');
    writeFileSync(log, '');
    const { default: fallback, ...perImage } = typeof manifest === 'string' ? { default: manifest } : manifest;
    const manifests = join(directory, 'manifests');
    writeFileSync(
      manifests,
      Object.entries(perImage)
        .map(([image, state]) => `${image} ${state}\n`)
        .join(''),
    );
    const env: Record<string, string> = { PATH: `${directory}:${process.env.PATH ?? ''}`, DOCKER_LOG: log, FAKE_MANIFEST: fallback, FAKE_MANIFESTS: manifests };
    if (stackFile !== undefined) {
      env.STACK_FILE = join(directory, 'Pulumi.test.yaml');
      writeFileSync(env.STACK_FILE, stackFile);
    }
    // In the repository, as the runner's checkout: the script reads the stack file with the
    // project's yaml package and builds with the repository as the context.
    const run = runStep(imageStep(stack).step, { GITHUB_TOKEN: 'ghs_test' }, { env, cwd: ROOT });
    return { ...run, docker: readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) };
  }
  const commands = (docker: string[]) => docker.map((line) => line.split(' ')[0]);

  const BOOTSTRAP = 'ghcr.io/allixios/allixios-bootstrap:0.1.0';
  // The tag the stack files pin, which the tests' inline staging and prod stacks pin too.
  const POSTGRESQL = POSTGRESQL_IMAGE;
  /** A stack file with the bootstrap disabled and engine settings `engines` (YAML under allixios:engines). */
  const withEngines = (engines: string) => `config:\n  allixios:environment: staging\n  allixios:bootstrap:\n    enabled: false\n  allixios:engines:\n${engines}`;

  it.each(['staging', 'prod'])('%s: the bootstrap and PostgreSQL images its stack file pins are built and pushed, before pulumi up', (stack) => {
    const { job, step } = imageStep(stack);
    expect(step.env?.STACK_FILE).toBe(`Pulumi.${stack}.yaml`);
    expect(step.run).toBe(`bash ${PUSH_SCRIPT} "$STACK_FILE"`);
    const install = stepIndex(job, (candidate) => candidate.run === 'npm ci --no-audit --no-fund' && candidate['working-directory'] === undefined);
    const image = stepIndex(job, (candidate) => candidate.name === IMAGES_STEP);
    expect(install).toBeLessThan(image);
    expect(image).toBeLessThan(stepIndex(job, isPulumiOperation));

    const bootstrap = stackConfig(stack)['allixios:bootstrap']?.image;
    const postgresql = stackConfig(stack)['allixios:engines']?.postgresql?.image;
    expect(bootstrap).toBeDefined();
    expect(postgresql).toBeDefined();
    const run = runImageStep(stack, 'absent');
    expect(run.status).toBe(0);
    // Both on ghcr.io: one login.
    expect(run.docker).toEqual([
      `login ${bootstrap!.split('/')[0]} --username octocat --password-stdin`,
      `manifest inspect ${bootstrap}`,
      `build --file bootstrap/Dockerfile --tag ${bootstrap} .`,
      `push ${bootstrap}`,
      `manifest inspect ${postgresql}`,
      `build --file databases/postgresql/image/Dockerfile --tag ${postgresql} .`,
      `push ${postgresql}`,
    ]);
  });

  it('both deploy jobs run the same script, each on its own stack file', () => {
    const staging = imageStep('staging').step;
    const prod = imageStep('prod').step;
    expect({ ...prod, env: { ...prod.env, STACK_FILE: 'Pulumi.staging.yaml' } }).toEqual(staging);
    expect(readFileSync(join(ROOT, PUSH_SCRIPT), 'utf8')).toContain('docker push');
  });

  it('the staging and prod stack files pin PostgreSQL’s image by a tag, never latest', () => {
    for (const stack of ['staging', 'prod']) {
      const image = stackConfig(stack)['allixios:engines']?.postgresql?.image;
      expect(image, stack).toBe(POSTGRESQL);
    }
    // prod keeps its own PostgreSQL settings beside the image.
    expect(stackConfig('prod')['allixios:engines']?.postgresql).toMatchObject({ storage: '200Gi', storageClass: 'premium-rwo' });
  });

  it('a tag the registry has is not rebuilt or pushed again', () => {
    const run = runImageStep('staging', 'present');
    expect(run.status).toBe(0);
    expect(commands(run.docker)).toEqual(['login', 'manifest', 'manifest']);
    expect(run.stdout).toContain(`${BOOTSTRAP} is in the registry already: not rebuilt`);
    expect(run.stdout).toContain(`${POSTGRESQL} is in the registry already: not rebuilt`);
  });

  it('a registry that cannot say whether the tag exists stops the deploy rather than risk overwriting it', () => {
    const run = runImageStep('staging', 'unreachable');
    expect(run.status).toBe(1);
    expect(commands(run.docker)).toEqual(['login', 'manifest']);
    expect(run.stdout).toContain('::error title=Bootstrap image::cannot tell whether ghcr.io/');
  });

  it('a stack file that pins no image (bootstrap disabled, no engine image) builds nothing', () => {
    const run = runImageStep('staging', 'absent', 'config:\n  allixios:environment: staging\n  allixios:bootstrap:\n    enabled: false\n');
    expect(run.status).toBe(0);
    expect(run.docker).toEqual([]);
    expect(run.stdout).toContain('pins no bootstrap image: nothing to build');
    expect(run.stdout).toContain('pins no engine image: nothing to build');
  });

  it('an engine image the registry lacks is built from databases/<engine>/image/Dockerfile, from the repository root, and pushed', () => {
    const run = runImageStep('staging', 'absent', withEngines(`    postgresql:\n      image: ${POSTGRESQL}\n`));
    expect(run.status).toBe(0);
    expect(run.docker).toEqual([
      'login ghcr.io --username octocat --password-stdin',
      `manifest inspect ${POSTGRESQL}`,
      `build --file databases/postgresql/image/Dockerfile --tag ${POSTGRESQL} .`,
      `push ${POSTGRESQL}`,
    ]);
    expect(run.stdout).toContain('pins no bootstrap image: nothing to build');
  });

  it('an engine image the registry has is not rebuilt, while a bootstrap image it lacks still is', () => {
    const run = runImageStep('staging', { default: 'absent', [POSTGRESQL]: 'present' });
    expect(run.status).toBe(0);
    expect(run.docker).toEqual([
      'login ghcr.io --username octocat --password-stdin',
      `manifest inspect ${BOOTSTRAP}`,
      `build --file bootstrap/Dockerfile --tag ${BOOTSTRAP} .`,
      `push ${BOOTSTRAP}`,
      `manifest inspect ${POSTGRESQL}`,
    ]);
    expect(run.stdout).toContain(`${POSTGRESQL} is in the registry already: not rebuilt`);
  });

  it('an engine image whose registry cannot be asked stops the deploy, naming the engine', () => {
    const run = runImageStep('staging', { default: 'present', [POSTGRESQL]: 'unreachable' });
    expect(run.status).toBe(1);
    expect(commands(run.docker)).toEqual(['login', 'manifest', 'manifest']);
    expect(run.stdout).toContain(`::error title=postgresql image::cannot tell whether ${POSTGRESQL} exists`);
  });

  it('an engine image without a Dockerfile stops the deploy before anything is pushed, naming the key and the missing file', () => {
    expect(existsSync(join(ROOT, 'databases/mongodb/image/Dockerfile'))).toBe(false);
    const stackFile = `config:\n  allixios:environment: staging\n  allixios:bootstrap:\n    image: ${BOOTSTRAP}\n  allixios:engines:\n    mongodb:\n      image: ghcr.io/allixios/allixios-mongodb:8.0-1\n`;
    const run = runImageStep('staging', 'absent', stackFile);
    expect(run.status).toBe(1);
    expect(run.docker).toEqual([]);
    expect(run.stdout).toContain('::error title=mongodb image::');
    expect(run.stdout).toContain('allixios:engines.mongodb.image');
    expect(run.stdout).toContain('databases/mongodb/image/Dockerfile');
  });

  it('logs in once to each registry host the images are on', () => {
    const stackFile = `config:\n  allixios:environment: staging\n  allixios:bootstrap:\n    image: registry.example.com:5000/allixios/allixios-bootstrap:0.1.0\n  allixios:engines:\n    postgresql:\n      image: ${POSTGRESQL}\n`;
    const run = runImageStep('staging', 'present', stackFile);
    expect(run.status).toBe(0);
    expect(run.docker.filter((line) => line.startsWith('login '))).toEqual([
      'login registry.example.com:5000 --username octocat --password-stdin',
      'login ghcr.io --username octocat --password-stdin',
    ]);
  });

  it('are all built, none pushed, on every pull request: the bootstrap image and every databases/<engine>/image/Dockerfile', () => {
    const { id, job } = onlyJob('pull-request.yml', (candidate) => runLines(candidate).some((line) => line.includes('docker build')));
    expect(id).toBe('images');
    expect(runsFor(job, pullRequestEvent('opened', true))).toBe(true);
    const engineDockerfiles = readdirSync(join(ROOT, 'databases'))
      .filter((engine) => existsSync(join(ROOT, 'databases', engine, 'image', 'Dockerfile')))
      .sort();
    expect(engineDockerfiles).toContain('postgresql');

    // Every run step of the job, in order, from the checkout, with the fake docker.
    const directory = mkdtempSync(join(tmpdir(), 'docker-'));
    writeFileSync(join(directory, 'docker'), DOCKER, { mode: 0o755 });
    const log = join(directory, 'docker.log');
    writeFileSync(log, '');
    for (const step of job.steps.filter((candidate) => candidate.run !== undefined)) {
      const run = runStep(step, {}, { env: { PATH: `${directory}:${process.env.PATH ?? ''}`, DOCKER_LOG: log }, cwd: ROOT });
      expect(run.status, `${step.name}: ${run.stdout}`).toBe(0);
    }
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'build --file bootstrap/Dockerfile --tag allixios-bootstrap:pull-request .',
      ...engineDockerfiles.map((engine) => `build --file databases/${engine}/image/Dockerfile --tag allixios-${engine}:pull-request .`),
    ]);
    expect(runLines(job).filter((line) => /\bdocker (push|login)\b/.test(line) || line.includes(PUSH_SCRIPT))).toEqual([]);
  });
});

describe('ephemeral stacks', () => {
  const file = 'ephemeral.yml';
  const upJob = () => onlyJob(file, (job) => job.steps.some((step) => /npm run stack:up\b/.test(step.run ?? ''))).job;
  const downJob = () => onlyJob(file, (job) => job.steps.some((step) => /npm run stack:down\b/.test(step.run ?? ''))).job;

  it('follow a pull request from opened to closed', () => {
    expect(workflow(file).on).toEqual({ pull_request: { branches: ['main'], types: ['opened', 'synchronize', 'reopened', 'closed'] } });
  });

  it('are named pr-<number>: stack:up and stack:down get that name', () => {
    expect(workflow(file).env?.STACK).toBe('pr-${{ github.event.pull_request.number }}');
    expect(runLines(upJob())).toContain('npm run stack:up -- "$STACK"');
    expect(runLines(downJob())).toContain('npm run stack:down -- "$STACK"');
  });

  it.each(['opened', 'synchronize', 'reopened'])('come up, and are not torn down, when a pull request is %s', (action) => {
    expect(runsFor(upJob(), pullRequestEvent(action))).toBe(true);
    expect(runsFor(downJob(), pullRequestEvent(action))).toBe(false);
  });

  it('are destroyed and removed, not brought up, when the pull request is closed', () => {
    expect(runsFor(downJob(), pullRequestEvent('closed'))).toBe(true);
    expect(runsFor(upJob(), pullRequestEvent('closed'))).toBe(false);
  });

  it('are not made for pull requests from forks, which get no secrets', () => {
    expect(runsFor(upJob(), pullRequestEvent('opened', true))).toBe(false);
    expect(runsFor(downJob(), pullRequestEvent('closed', true))).toBe(false);
  });

  it('tear down from the pull request’s own commit, whose merge ref may be gone once it is closed', () => {
    const checkout = downJob().steps.find((step) => step.uses?.startsWith('actions/checkout@'));
    expect(checkout?.with?.ref).toBe('${{ github.event.pull_request.head.sha }}');
  });

  it('install the Pulumi CLI the scripts drive, before running them', () => {
    for (const job of [upJob(), downJob()]) {
      const install = stepIndex(job, (step) => isPulumiAction(step) && step.with?.command === undefined);
      expect(install).toBeGreaterThanOrEqual(0);
      expect(install).toBeLessThan(stepIndex(job, isPulumiOperation));
    }
  });
});

describe('no two operations on one stack overlap', () => {
  const effectiveConcurrency = (file: string, job: Job) => job.concurrency ?? workflow(file).concurrency;
  const changing = () => [...jobsWithPulumiOperation('up'), ...jobsWithPulumiOperation('down')];

  it('every job that changes a stack is in a concurrency group named after that stack, and is never cancelled half way', () => {
    const groups = changing().map(({ file, id, job }) => {
      const concurrency = effectiveConcurrency(file, job);
      expect(concurrency, `${file} ${id}`).toBeDefined();
      expect(concurrency!['cancel-in-progress'], `${file} ${id}`).toBe(false);
      return { id: `${file} ${id}`, group: concurrency!.group };
    });
    expect(groups).toEqual([
      { id: 'deploy.yml staging', group: 'pulumi-staging' },
      { id: 'deploy.yml prod', group: 'pulumi-prod' },
      { id: 'ephemeral.yml up', group: 'ephemeral-pr-${{ github.event.pull_request.number }}' },
      { id: 'ephemeral.yml down', group: 'ephemeral-pr-${{ github.event.pull_request.number }}' },
    ]);
  });
});

describe('state backend and cluster credentials', () => {
  const reference = onlyJob('pull-request.yml', (job) => namedStep(job, BACKEND_STEP) !== undefined).job;
  const backendStep = namedStep(reference, BACKEND_STEP)!;
  const clusterStep = namedStep(reference, CLUSTER_STEP)!;

  it('every job that runs Pulumi chooses the backend and writes the kubeconfig first, with the same steps', () => {
    const operating = allJobs().filter(({ job }) => job.steps.some(isPulumiOperation));
    expect(operating.map(({ file, id }) => `${file} ${id}`).sort()).toEqual([
      'deploy.yml prod',
      'deploy.yml staging',
      'ephemeral.yml down',
      'ephemeral.yml up',
      'pull-request.yml preview',
    ]);
    for (const { file, id, job } of operating) {
      const first = stepIndex(job, isPulumiOperation);
      for (const expected of [backendStep, clusterStep]) {
        const index = stepIndex(job, (step) => step.name === expected.name);
        expect(index, `${file} ${id}: ${expected.name}`).toBeGreaterThanOrEqual(0);
        expect(index).toBeLessThan(first);
        expect(job.steps[index], `${file} ${id}: ${expected.name} is the same step everywhere`).toEqual(expected);
      }
    }
  });

  it('PULUMI_ACCESS_TOKEN set: Pulumi Cloud, and nothing of a self-managed backend is exported', () => {
    const run = runStep(backendStep, { PULUMI_ACCESS_TOKEN: 'pul-test-token', PULUMI_BACKEND_URL: 's3://ignored', PULUMI_CONFIG_PASSPHRASE: 'ignored' });
    expect(run.status).toBe(0);
    expect(run.exported).toEqual({ PULUMI_BACKEND_URL: 'https://api.pulumi.com', PULUMI_ACCESS_TOKEN: 'pul-test-token' });
    expect(run.stdout).toContain('State backend: Pulumi Cloud');
  });

  it('no token, PULUMI_BACKEND_URL set: that backend, its passphrase and the storage credentials that are set', () => {
    const run = runStep(backendStep, {
      PULUMI_BACKEND_URL: 's3://allixios-state?region=eu-west-1',
      PULUMI_CONFIG_PASSPHRASE: 'a passphrase',
      AWS_ACCESS_KEY_ID: 'test-key-id',
      AWS_SECRET_ACCESS_KEY: 'test-secret\nwith a newline',
    });
    expect(run.status).toBe(0);
    expect(run.exported).toEqual({
      PULUMI_BACKEND_URL: 's3://allixios-state?region=eu-west-1',
      PULUMI_CONFIG_PASSPHRASE: 'a passphrase',
      AWS_ACCESS_KEY_ID: 'test-key-id',
      AWS_SECRET_ACCESS_KEY: 'test-secret\nwith a newline',
    });
    // The log names the kind of backend, not the bucket.
    expect(run.stdout).toContain('State backend: self-managed (s3)');
    expect(run.stdout).not.toContain('allixios-state');
  });

  it('a self-managed backend without PULUMI_CONFIG_PASSPHRASE stops the job and says why', () => {
    const run = runStep(backendStep, { PULUMI_BACKEND_URL: 'azblob://state' });
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('PULUMI_BACKEND_URL is set but PULUMI_CONFIG_PASSPHRASE is not');
    expect(run.exported).toEqual({});
  });

  it('neither secret: the job stops, naming both', () => {
    const run = runStep(backendStep, {});
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('::error title=Pulumi state backend::Set the secret PULUMI_ACCESS_TOKEN (Pulumi Cloud) or PULUMI_BACKEND_URL');
    expect(run.exported).toEqual({});
  });

  it('the KUBECONFIG secret becomes a file readable by the runner’s user only, named by KUBECONFIG', () => {
    const kubeconfig = 'apiVersion: v1\nkind: Config\ncurrent-context: test\n';
    const run = runStep(clusterStep, { KUBECONFIG: kubeconfig });
    expect(run.status).toBe(0);
    const path = join(run.runnerTemp, 'kubeconfig');
    expect(run.exported).toEqual({ KUBECONFIG: path });
    expect(readFileSync(path, 'utf8')).toBe(`${kubeconfig}\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('no KUBECONFIG secret: the job stops and says which secret to set', () => {
    const run = runStep(clusterStep, {});
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('Set the secret KUBECONFIG');
  });
});

describe('credentials and permissions', () => {
  const CREDENTIAL_PATTERNS: [string, RegExp][] = [
    ['an AWS access key id', /\b(AKIA|ASIA)[0-9A-Z]{16}\b/],
    ['a Pulumi access token', /\bpul-[0-9a-f]{40}\b/],
    ['a GitHub token', /\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{20,})/],
    ['a private key', /-----BEGIN [A-Z ]*PRIVATE KEY-----/],
    ['kubeconfig credentials', /\b(client-key-data|client-certificate-data|certificate-authority-data)\s*:/],
    ['a URL with a password', /\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:[^\s@/]+@/i],
  ];
  const CREDENTIAL_KEY = /token|secret|password|passphrase|credential|kubeconfig|_key$|^key$|access_key/i;
  const SECRET_REFERENCE = /^\$\{\{\s*(secrets\.\w+|github\.token)\s*\}\}$/;

  /** What in a workflow looks like a credential written into it. */
  function hardCodedCredentials(content: string): string[] {
    const found = CREDENTIAL_PATTERNS.filter(([, pattern]) => pattern.test(content)).map(([what]) => what);
    const visit = (node: unknown, path: string) => {
      if (node === null || typeof node !== 'object') return;
      for (const [key, value] of Object.entries(node)) {
        if (CREDENTIAL_KEY.test(key) && (typeof value === 'string' || typeof value === 'number') && !SECRET_REFERENCE.test(String(value))) {
          found.push(`${path}${key}: a literal value where a \${{ secrets.* }} reference belongs`);
        }
        visit(value, `${path}${key}.`);
      }
    };
    visit(YAML.parse(content), '');
    return found;
  }

  it.each(FILES)('%s holds no credentials: every credential-like key takes a ${{ secrets.* }} reference', (file) => {
    expect(hardCodedCredentials(text(file))).toEqual([]);
  });

  it('the credential scan finds the credentials it looks for', () => {
    const leaky = [
      'on: push',
      'jobs:',
      '  a:',
      '    runs-on: ubuntu-24.04',
      '    env:',
      '      PULUMI_ACCESS_TOKEN: pul-0123456789abcdef0123456789abcdef01234567',
      '      PULUMI_CONFIG_PASSPHRASE: hunter2',
      '    steps:',
      '      - run: aws s3 ls --access-key AKIAABCDEFGHIJKLMNOP postgres://app:hunter2@db/app',
    ].join('\n');
    expect(hardCodedCredentials(leaky)).toEqual([
      'an AWS access key id',
      'a Pulumi access token',
      'a URL with a password',
      'jobs.a.env.PULUMI_ACCESS_TOKEN: a literal value where a ${{ secrets.* }} reference belongs',
      'jobs.a.env.PULUMI_CONFIG_PASSPHRASE: a literal value where a ${{ secrets.* }} reference belongs',
    ]);
  });

  it('grant read access to the code, and write access only where a comment is posted or an image is pushed', () => {
    for (const [file, parsed] of workflows) expect(parsed.permissions, file).toEqual({ contents: 'read' });
    const writers = allJobs()
      .filter(({ job }) => Object.values(job.permissions ?? {}).some((level) => level !== 'read' && level !== 'none'))
      .map(({ file, id, job }) => ({ job: `${file} ${id}`, permissions: job.permissions }));
    expect(writers).toEqual([
      { job: 'deploy.yml staging', permissions: { contents: 'read', packages: 'write' } },
      { job: 'deploy.yml prod', permissions: { contents: 'read', packages: 'write' } },
      { job: 'pull-request.yml preview', permissions: { contents: 'read', 'pull-requests': 'write' } },
    ]);
    const commenting = allJobs().filter(({ job }) => job.steps.some((step) => step.with?.['comment-on-pr'] === true));
    expect(commenting.map(({ file, id }) => `${file} ${id}`)).toEqual(['pull-request.yml preview']);
    // Images are pushed by the deploy jobs' script only.
    const pushing = allJobs().filter(({ job }) => runLines(job).some((line) => /\bdocker push\b/.test(line) || line.includes(PUSH_SCRIPT)));
    expect(pushing.map(({ file, id }) => `${file} ${id}`)).toEqual(['deploy.yml staging', 'deploy.yml prod']);
  });
});
