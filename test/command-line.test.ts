/**
 * One command-line convention for every command (bootstrap/command-line.ts), tried the way a
 * user runs them: each command as a real process, `--help`, `-h` and an unknown option; then
 * `npm run check`'s choice of engines and its honest failures, and the progress lines of a wait.
 * Processes run concurrently; nothing here starts more than one throwaway engine (ClickHouse in
 * process).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineCommand, EXIT, progressWanted, UsageError, waitLine } from '../bootstrap/command-line.ts';
import { REPOSITORY_ROOT } from '../bootstrap/paths.ts';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node --import tsx <file> ...args` in the repository, as `npm run` would, with `env` as the whole environment. */
function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '' }): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(REPOSITORY_ROOT, file), ...args], { cwd: REPOSITORY_ROOT, env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

const firstLine = (text: string): string => text.split('\n')[0]!;

/** Scripts that hand their arguments to a tool of its own (vitest, tsc, eslint, prettier). */
const TOOLS = new Set(['test', 'typecheck', 'lint', 'format']);

/**
 * Every command: each npm script of package.json that runs one of ours (`tsx <file> [args]` or
 * `node <file>`), so a command a later change adds is held to the convention without a new line.
 */
const COMMANDS = Object.entries(JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>)
  .filter(([name]) => !TOOLS.has(name))
  .map(([name, script]) => {
    const match = /^(?:tsx|node) (\S+\.m?[jt]s)((?: [\w-]+)*)$/.exec(script);
    if (!match) throw new Error(`package.json script ${name}: expected "tsx <file> [args]" or "node <file>", got ${JSON.stringify(script)}`);
    return { name, script: `npm run ${name}`, file: match[1]!, leading: match[2]!.trim().split(' ').filter(Boolean) };
  });

it('covers every command of package.json', () => {
  expect(COMMANDS.map((command) => command.name).sort()).toEqual([
    'bench',
    'bench:pooling',
    'bench:startup',
    'bootstrap',
    'build',
    'check',
    'drill:clickhouse-backup',
    'drill:patroni',
    'drill:pgbackrest',
    'drill:redis-backup',
    'drill:redis-sentinel',
    'render',
    'restore',
    'stack:down',
    'stack:up',
  ]);
});

describe.concurrent('every command follows one convention', () => {
  it.each(COMMANDS)('$name --help prints the usage and its exit codes to stdout and exits 0, doing nothing else', async ({ script, file, leading }) => {
    // When a user asks for help
    const { code, stdout, stderr } = await run(file, [...leading, '--help']);
    // Then the usage names the npm script, every exit code is explained, and nothing else ran
    expect(code).toBe(EXIT.ok);
    expect(stdout).toContain(`usage: ${script} -- `);
    expect(stdout).toContain('  -h, --help');
    expect(stdout).toMatch(/exit codes:\n {2}0 {2}\S.*\n {2}1 {2}\S.*\n {2}2 {2}a usage error/);
    // (bench logs its phases and check its results: neither started)
    expect(stderr).toBe('');
  });

  it.each(COMMANDS)('$name -h prints the same help as --help', async ({ file, leading }) => {
    const [short, long] = await Promise.all([run(file, [...leading, '-h']), run(file, [...leading, '--help'])]);
    expect(short.code).toBe(EXIT.ok);
    expect(short.stdout).toBe(long.stdout);
  });

  it.each(COMMANDS)('$name --bogus names the option in one line, then the usage, on stderr, and exits 2 without a stack trace', async ({ name, script, file, leading }) => {
    // When a user mistypes an option
    const { code, stdout, stderr } = await run(file, [...leading, '--bogus']);
    // Then one line names it, the usage follows, and nothing ran
    expect(code).toBe(EXIT.usage);
    const [first, second] = stderr.split('\n');
    expect(first).toBe(`${name}: unknown option --bogus`);
    expect(second).toMatch(new RegExp(`^usage: ${script.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} -- `));
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stdout).toBe('');
  });

  it.each([
    ['bootstrap', ['--ready-timeout', 'soon'], 'bootstrap: --ready-timeout expects a number of seconds above 0, got "soon"'],
    ['bootstrap', ['--lock-timeout'], 'bootstrap: --lock-timeout needs a value: --lock-timeout <seconds>'],
    ['check', ['--only', 'oracle'], 'check: --only expects one of postgresql, mongodb, redis, elasticsearch, clickhouse, got "oracle"'],
    ['check', ['--only', 'redis', '--skip', 'redis'], 'check: --only and --skip choose the same thing two ways; give one'],
    ['render', ['--stack', 'dev'], 'render: missing --out <dir>'],
    ['stack:up', ['up', 'pr-1', 'pr-2'], 'stack:up: expected one stack name, got 2: "pr-1" "pr-2"'],
    ['bench', ['--scale', 'huge'], 'bench: --scale expects one of small, medium, large, got "huge"'],
    ['bench', ['--runs', '0'], 'bench: --runs expects a whole number above 0, got "0"'],
    ['drill:redis-backup', ['--keys', 'many'], 'drill:redis-backup: --keys expects a whole number of at least 100, got "many"'],
  ] as const)('%s %j: a bad or missing value is a usage error naming it (exit 2)', async (name, args, message) => {
    const { code, stderr } = await run(COMMANDS.find((command) => command.name === name)!.file, args);
    expect(code).toBe(EXIT.usage);
    expect(firstLine(stderr)).toBe(message);
  });
});

describe('reading a command line', () => {
  const command = defineCommand({
    name: 'demo',
    synopsis: ['demo [options]'],
    summary: 'A command for the tests.',
    options: {
      only: { type: 'string', value: '<engine>[,<engine>]', list: true, choices: ['a', 'b', 'c'], description: 'these' },
      size: { type: 'string', value: '<n>', default: '3', description: 'how many' },
      json: { type: 'boolean', short: 'j', description: 'as JSON' },
    },
    exitCodes: { ok: 'done', failed: 'not done' },
  });
  const refusal = (argv: string[]): string => {
    try {
      command.read(argv);
    } catch (error) {
      if (error instanceof UsageError) return error.message;
      throw error;
    }
    throw new Error(`${argv.join(' ')} was accepted`);
  };

  it('reads lists given with commas or repeated, defaults, and flags long or short', () => {
    expect(command.read(['--only', 'a,b', '--only=c', '-j'])).toEqual({ values: { only: ['a', 'b', 'c'], size: '3', json: true }, positionals: [] });
    expect(command.read([])).toEqual({ values: { only: undefined, size: '3', json: false }, positionals: [] });
  });

  it('takes --help or -h anywhere, before any other error', () => {
    expect(command.read(['--bogus', '-h'])).toBe('help');
    expect(command.read(['--size', '2', '--help'])).toBe('help');
  });

  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['-x'], 'unknown option -x'],
    [['--size'], '--size needs a value: --size <n>'],
    [['--size', '--json'], '--size needs a value, got the option --json (write --size=--json for a value that starts with "-")'],
    [['--json=yes'], '--json takes no value, got "yes"'],
    [['--only', 'a,d'], '--only expects one of a, b, c, got "d"'],
    [['--only', 'a,,b'], '--only expects <engine>[,<engine>], got "a,,b"'],
    [['extra'], 'unexpected argument "extra"'],
  ])('refuses %j in one line naming it', (argv, message) => {
    expect(refusal(argv)).toBe(message);
  });

  it("writes a wait's line with the time waited and the option that bounds it", () => {
    const wait = { what: 'not reachable at db:5432 yet (connect ECONNREFUSED)', elapsedMs: 12_300, timeoutMs: 60_000, option: '--ready-timeout' };
    expect(waitLine('postgresql', wait)).toBe('postgresql: not reachable at db:5432 yet (connect ECONNREFUSED), 12 s of --ready-timeout 60 s');
    expect(waitLine('postgresql', { ...wait, elapsedMs: 1500 }, { option: false })).toBe('postgresql: not reachable at db:5432 yet (connect ECONNREFUSED), 1.5 s of 60 s');
  });

  it('prints progress on a terminal unless --json, and anywhere when asked', () => {
    expect(progressWanted({}, {}, { isTTY: true })).toBe(true);
    expect(progressWanted({ json: true }, {}, { isTTY: true })).toBe(false);
    expect(progressWanted({}, {}, { isTTY: false })).toBe(false);
    expect(progressWanted({ progress: true }, {}, { isTTY: false })).toBe(true);
    expect(progressWanted({}, { ALLIXIOS_PROGRESS: '1' }, { isTTY: false })).toBe(true);
  });
});

/** A PATH with node and nothing else: no psql, no redis-server. */
function pathWithoutEngines(): string {
  const bin = mkdtempSync(join(tmpdir(), 'node-only-'));
  symlinkSync(process.execPath, join(bin, 'node'));
  return bin;
}

describe.concurrent('npm run check', () => {
  it('fails when a program an engine needs is missing, naming the command that installs it', async () => {
    // Given a machine without psql and redis-server
    const { code, stdout } = await run('bootstrap/check.ts', ['--only', 'postgresql,redis'], { PATH: pathWithoutEngines() });
    // Then both fail with their install command, and the summary gathers them
    expect(code).toBe(EXIT.failed);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^FAILED +postgresql: cannot be started here: psql is not on PATH .*\(apt-get install -y postgresql-client\), [\d.]+ s$/);
    expect(lines[1]).toMatch(/^FAILED +redis: cannot be started here: redis-server is not on PATH .*\(apt-get install -y redis-server\), [\d.]+ s$/);
    expect(lines[2]).toMatch(
      /^check: 2 engines checked: 0 passed, 2 failed \(postgresql, redis could not be started here; install: apt-get install -y postgresql-client redis-server\); 3 left out by --only \(mongodb, elasticsearch, clickhouse\); [\d.]+ s$/,
    );
    expect(lines).toHaveLength(3);
  });

  it('--skip leaves engines out; an engine no machine like this can run is said so and does not fail it; progress is quiet off a terminal', async () => {
    // Given a machine without redis-server, and PostgreSQL and ClickHouse left out
    const { code, stdout, stderr } = await run('bootstrap/check.ts', ['--skip', 'postgresql,clickhouse'], { PATH: pathWithoutEngines() });
    // Then Redis fails (a program missing), MongoDB and Elasticsearch are not checkable here, the others are not mentioned but in the summary
    expect(code).toBe(EXIT.failed);
    expect(stdout).toMatch(/^not here +mongodb: no MongoDB server can run here .*MONGODB_URL/m);
    expect(stdout).toMatch(/^FAILED +redis: cannot be started here/m);
    expect(stdout).toMatch(/^not here +elasticsearch: no Elasticsearch server can run here .*ELASTICSEARCH_URL/m);
    expect(stdout).not.toMatch(/^\S+ +(postgresql|clickhouse):/m);
    expect(stdout).toContain('2 not checkable here (mongodb, elasticsearch: no server can run on this machine); 2 left out by --skip (postgresql, clickhouse)');
    // And stderr is not a terminal here: no progress lines
    expect(stderr).toBe('');
  });

  it('fails for an engine that cannot run here when --only names it', async () => {
    const { code, stdout } = await run('bootstrap/check.ts', ['--only', 'mongodb']);
    expect(code).toBe(EXIT.failed);
    expect(firstLine(stdout)).toMatch(/^FAILED +mongodb: not checkable here, and --only names it: no MongoDB server can run here/);
  });

  it('passes with what it checked, says what it starts with --progress, and times each engine', async () => {
    // Given only ClickHouse (in-process) and the two engines no machine like this can run
    const { code, stdout, stderr } = await run('bootstrap/check.ts', ['--skip', 'postgresql,redis', '--progress']);
    // Then ClickHouse passes, the others are said to be not checkable, and the check passes
    expect(code, stdout + stderr).toBe(EXIT.ok);
    expect(stdout).toMatch(/^ok +clickhouse: \d+ changes applied to ClickHouse .* second run changed nothing.*, [\d.]+ s$/m);
    expect(stdout.trimEnd().split('\n').at(-1)).toMatch(
      /^check: 1 engine checked: 1 passed, 0 failed; 2 not checkable here \(mongodb, elasticsearch: no server can run on this machine\); 2 left out by --skip \(postgresql, redis\); [\d.]+ s$/,
    );
    // And stderr said what started, and when it was up
    expect(stderr).toMatch(/^clickhouse: starting a throwaway ClickHouse…\nclickhouse: ClickHouse .* started in [\d.]+ s; applying everything, then again\n/);
  });
});

/** A TCP port on 127.0.0.1 that nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe.concurrent('a bootstrap waiting for an engine', () => {
  it('says where it connects and the --ready-timeout that bounds it, then a line per retry with the time waited (forced by ALLIXIOS_PROGRESS=1)', async () => {
    // Given nothing listening where the URL points
    const port = await closedPort();
    const env = { PATH: process.env.PATH ?? '', DATABASE_URL: `postgresql://allixios_owner:x@127.0.0.1:${port}/allixios`, ALLIXIOS_PROGRESS: '1' };
    // When the bootstrap waits 2.5 s for it
    const { code, stderr } = await run('bootstrap/cli.ts', ['--ready-timeout', '2.5'], env);
    // Then the first line names the bound, each retry line the time waited, and the wait ends in the error
    expect(code).toBe(EXIT.failed);
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`postgresql: connecting to 127.0.0.1:${port}/allixios (up to --ready-timeout 2.5 s)`);
    const waits = lines.slice(1, -1);
    expect(waits.length).toBeGreaterThanOrEqual(1);
    for (const line of waits) {
      expect(line).toMatch(new RegExp(`^postgresql: not reachable at 127\\.0\\.0\\.1:${port} yet \\(.*ECONNREFUSED.*\\), [\\d.]+ s of --ready-timeout 2\\.5 s$`));
    }
    expect(lines.at(-1)).toMatch(new RegExp(`^error: postgresql: not reachable at 127\\.0\\.0\\.1:${port} after [\\d.]+ s`));
  });

  it('prints no retry lines when stderr is not a terminal and nothing asks for them', async () => {
    const port = await closedPort();
    const env = { PATH: process.env.PATH ?? '', DATABASE_URL: `postgresql://allixios_owner:x@127.0.0.1:${port}/allixios` };
    const { code, stderr } = await run('bootstrap/cli.ts', ['--ready-timeout', '2.5'], env);
    expect(code).toBe(EXIT.failed);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('(up to --ready-timeout 2.5 s)');
    expect(lines[1]).toMatch(/^error: postgresql: not reachable/);
  });
});
