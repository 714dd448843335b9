/**
 * One command-line convention for every command of the repository (`bootstrap`, `check`,
 * `render`, `stack:up`/`stack:down`, `bench`), from one definition of each command's options:
 *
 * - `--help` and `-h` print the usage to stdout and exit 0;
 * - an unknown option, a bad value or a missing one prints one line naming it
 *   (`check: unknown option --bogus`) and the usage to stderr, and exits 2: never a stack trace;
 * - the exit codes are {@link EXIT}'s, and every command's help lists what they mean for it.
 *
 * Node's own `util.parseArgs` splits the arguments (its tokens); the checks and the messages are
 * ours, so they read the same everywhere. It lives under `bootstrap/` because the bootstrap image
 * copies only `databases/` and `bootstrap/`, and the other commands import it from here. It
 * imports nothing but Node: a command parses its arguments before it loads anything heavy, so
 * `--help` is quick.
 */
import { parseArgs } from 'node:util';
import type { WaitProgress } from './adapters/backoff.ts';

/** The exit codes of every command (README "Commands and exit codes"). */
export const EXIT = {
  /** Done: everything asked for. */
  ok: 0,
  /** Ran and failed: what was asked for is not done (the message says why). */
  failed: 1,
  /** A usage error: nothing was done. */
  usage: 2,
} as const;

const USAGE_CODE_MEANING = 'a usage error (unknown option, bad or missing value): nothing was done';

interface OptionBase {
  /** What it does, one line of the help. */
  description: string;
  /** A one-letter alias (`-j`). `-h` is always `--help`. */
  short?: string;
}

/** An option without a value: false unless given. */
export interface FlagOption extends OptionBase {
  type: 'boolean';
}

/** An option with a value. */
export interface ValueOption extends OptionBase {
  type: 'string';
  /** The value as the usage names it: `<seconds>`. */
  value: string;
  /** The values it accepts; a list accepts each of its items from them. */
  choices?: readonly string[];
  /** Given as `a,b` or repeated (`--only a --only b`): read as a list of its items. */
  list?: boolean;
  /** Its value when not given (shown in the help). */
  default?: string;
  /** A usage error when not given. */
  required?: boolean;
}

export type OptionSpec = FlagOption | ValueOption;
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The values a command's options are read as. */
export type OptionValues<O extends OptionSpecs> = {
  -readonly [K in keyof O]: O[K] extends FlagOption
    ? boolean
    : O[K] extends { list: true }
      ? string[] | undefined
      : O[K] extends { default: string } | { required: true }
        ? string
        : string | undefined;
};

export interface CommandSpec<O extends OptionSpecs> {
  /** How messages begin: `check`, `stack:up`. */
  name: string;
  /** How it is run, one line each: `npm run check -- [options]`. */
  synopsis: readonly string[];
  /** What it does, in a sentence or two. */
  summary: string;
  /** Its positional arguments, for the help; without them a positional argument is a usage error. */
  arguments?: ReadonlyArray<{ name: string; description: string }>;
  options: O;
  /** Paragraphs after the options (the engines, an environment variable). */
  notes?: string;
  /** What exit codes 0 and 1 mean for this command (2 is always a usage error). */
  exitCodes: { ok: string; failed: string };
}

/** An argument the command cannot take; its message is the one line the user sees. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface CommandLine<O extends OptionSpecs> {
  values: OptionValues<O>;
  positionals: string[];
}

export interface Command<O extends OptionSpecs> {
  readonly spec: CommandSpec<O>;
  /** The full help: what it does, how to run it, its options and exit codes. */
  help(): string;
  /** What a usage error prints after its line: the synopsis and the options. */
  usage(): string;
  /** Pure: the values, `'help'` when help was asked for; throws {@link UsageError}. */
  read(argv: readonly string[]): CommandLine<O> | 'help';
  /** For a process: prints the help and exits 0 when asked; a usage error exits 2. */
  parse(argv?: readonly string[]): CommandLine<O>;
  /** A usage error found after parsing (a value out of range): one line and the usage, exit 2. */
  fail(message: string): never;
}

/** The option as the usage spells it: `-j, --json`, `--ready-timeout <seconds>`. */
function optionSyntax(name: string, option: OptionSpec): string {
  const long = option.type === 'string' ? `--${name} ${option.value}` : `--${name}`;
  return option.short ? `-${option.short}, ${long}` : `    ${long}`;
}

function optionDescription(option: OptionSpec): string {
  if (option.type === 'boolean') return option.description;
  const extras = [option.required ? 'required' : undefined, option.default !== undefined ? `default ${option.default}` : undefined].filter(Boolean);
  return extras.length > 0 ? `${option.description} (${extras.join('; ')})` : option.description;
}

function table(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join('\n');
}

const HELP_OPTION: FlagOption = { type: 'boolean', short: 'h', description: 'print this help and exit' };

/** `"x"`, for messages. */
const quoted = (value: string): string => JSON.stringify(value);

/** A command's parser, help and usage errors, from its definition. */
export function defineCommand<const O extends OptionSpecs>(spec: CommandSpec<O>): Command<O> {
  const options: ReadonlyArray<[string, OptionSpec]> = [...Object.entries(spec.options), ['help', HELP_OPTION]];

  const usage = (): string => {
    const [first, ...rest] = spec.synopsis;
    const lines = [`usage: ${first}`, ...rest.map((line) => `       ${line}`)];
    if (spec.arguments?.length) lines.push('', 'arguments:', table(spec.arguments.map(({ name, description }) => [name, description] as const)));
    lines.push('', 'options:', table(options.map(([name, option]) => [optionSyntax(name, option), optionDescription(option)] as const)));
    return lines.join('\n');
  };

  const help = (): string =>
    [
      spec.summary,
      '',
      usage(),
      ...(spec.notes ? ['', spec.notes] : []),
      '',
      'exit codes:',
      table([
        [String(EXIT.ok), spec.exitCodes.ok],
        [String(EXIT.failed), spec.exitCodes.failed],
        [String(EXIT.usage), USAGE_CODE_MEANING],
      ]),
    ].join('\n');

  const read = (argv: readonly string[]): CommandLine<O> | 'help' => {
    const config = Object.fromEntries(options.map(([name, option]) => [name, { type: option.type, ...(option.short ? { short: option.short } : {}) }]));
    const { tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
    if (tokens.some((token) => token.kind === 'option' && token.name === 'help' && (token.rawName === '--help' || token.rawName === '-h'))) return 'help';

    const values: Record<string, unknown> = {};
    const positionals: string[] = [];
    for (const token of tokens) {
      if (token.kind === 'option-terminator') continue;
      if (token.kind === 'positional') {
        if (!spec.arguments?.length) throw new UsageError(`unexpected argument ${quoted(token.value)}`);
        positionals.push(token.value);
        continue;
      }
      const option = Object.hasOwn(spec.options, token.name) ? spec.options[token.name] : undefined;
      const named = option && (token.rawName === `--${token.name}` || (option.short !== undefined && token.rawName === `-${option.short}`));
      if (!option || !named) throw new UsageError(`unknown option ${token.rawName}`);
      if (option.type === 'boolean') {
        if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value, got ${quoted(token.value)}`);
        values[token.name] = true;
        continue;
      }
      const value = token.value;
      if (value === undefined) throw new UsageError(`${token.rawName} needs a value: ${token.rawName} ${option.value}`);
      // parseArgs takes the next argument as the value even when it is an option (`--stack --out x`).
      if (!token.inlineValue && value.startsWith('-')) {
        throw new UsageError(`${token.rawName} needs a value, got the option ${value} (write ${token.rawName}=${value} for a value that starts with "-")`);
      }
      if (option.list) {
        const items = value.split(',').map((item) => item.trim());
        if (items.some((item) => item === '')) throw new UsageError(`${token.rawName} expects ${option.value}, got ${quoted(value)}`);
        values[token.name] = [...((values[token.name] as string[] | undefined) ?? []), ...items];
      } else {
        values[token.name] = value;
      }
    }

    for (const [name, option] of Object.entries(spec.options)) {
      if (option.type === 'boolean') {
        values[name] ??= false;
        continue;
      }
      if (values[name] === undefined) {
        if (option.required) throw new UsageError(`missing --${name} ${option.value}`);
        if (option.default !== undefined) values[name] = option.list ? option.default.split(',') : option.default;
      }
      const given = values[name];
      if (option.choices && given !== undefined) {
        for (const item of Array.isArray(given) ? (given as string[]) : [given as string]) {
          if (!option.choices.includes(item)) throw new UsageError(`--${name} expects one of ${option.choices.join(', ')}, got ${quoted(item)}`);
        }
      }
    }
    return { values: values as OptionValues<O>, positionals };
  };

  const fail = (message: string): never => {
    process.stderr.write(`${spec.name}: ${message}\n${usage()}\n`);
    process.exit(EXIT.usage);
  };

  const parse = (argv: readonly string[] = process.argv.slice(2)): CommandLine<O> => {
    let result: CommandLine<O> | 'help';
    try {
      result = read(argv);
    } catch (error) {
      if (error instanceof UsageError) fail(error.message);
      throw error;
    }
    if (result === 'help') {
      process.stdout.write(`${help()}\n`);
      process.exit(EXIT.ok);
    }
    return result;
  };

  return { spec, help, usage, read, parse, fail };
}

/** `text` as a number above 0 (`--ready-timeout 1.5`), or a usage error naming the option. */
export function positiveNumber(text: string, option: string, what = 'a number above 0'): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0) throw new UsageError(`${option} expects ${what}, got ${quoted(text)}`);
  return value;
}

/** `text` as a whole number above 0 (`--runs 200`), or a usage error naming the option. */
export function positiveInteger(text: string, option: string): number {
  const value = positiveNumber(text, option, 'a whole number above 0');
  if (!Number.isInteger(value)) throw new UsageError(`${option} expects a whole number above 0, got ${quoted(text)}`);
  return value;
}

/** The variable that asks for progress lines where they are quiet by default (a Kubernetes Job's log). */
export const PROGRESS_VARIABLE = 'ALLIXIOS_PROGRESS';

/**
 * Whether a command prints progress lines (to stderr): on a terminal, unless `--json`; always
 * with `--progress` or ALLIXIOS_PROGRESS=1, for logs read later (a Kubernetes Job's).
 */
export function progressWanted(
  flags: { json?: boolean; progress?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
  stderr: { isTTY?: boolean } = process.stderr,
): boolean {
  if (flags.progress || env[PROGRESS_VARIABLE] === '1') return true;
  return !flags.json && stderr.isTTY === true;
}

/** Seconds for progress lines: `12 s`, `0.4 s`, `5 s`. */
export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${seconds < 10 && !Number.isInteger(seconds) ? seconds.toFixed(1) : Math.round(seconds)} s`;
}

/**
 * A wait's progress line: `postgresql: not reachable at db:5432 yet (ECONNREFUSED), 12 s of
 * --ready-timeout 60 s`. Without `option` (a command whose bounds are not options, `check`),
 * only the seconds.
 */
export function waitLine(engine: string, wait: WaitProgress, { option = true } = {}): string {
  const bound = `${option && wait.option ? `${wait.option} ` : ''}${formatSeconds(wait.timeoutMs)}`;
  return `${engine}: ${wait.what}, ${formatSeconds(wait.elapsedMs)} of ${bound}`;
}
