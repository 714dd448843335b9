/**
 * Ephemeral stacks from the terminal and from CI: `stack:up <name>` creates (or selects) a stack
 * with the ephemeral profile, deploys it and prints what is safe to print; `stack:down <name>`
 * destroys it and removes it, so nothing stays in the cluster or the state.
 *
 * The orchestration talks to Pulumi only through {@link StackOperations}, which `automation.ts`
 * implements with the Automation API and tests fake.
 */
import type { automation } from '@pulumi/pulumi';
import YAML from 'yaml';
import { CONFIG_NAMESPACE, ConfigError, namespaceConfig, parseStackConfig } from '../config/index.ts';
import { defineCommand, UsageError, type CommandLine as ParsedArguments } from '../../bootstrap/command-line.ts';
import { toError } from '../../bootstrap/errors.ts';

/** Stacks with their own committed stack file and data; never created or torn down from here. */
export const RESERVED_STACKS = ['dev', 'staging', 'prod'] as const;

export const COMMANDS = ['up', 'down'] as const;
export type Command = (typeof COMMANDS)[number];

const OPTIONS = {
  'bootstrap-image': {
    type: 'string',
    value: '<image>',
    description: "stack:up only: the bootstrap Job's image (e.g. ghcr.io/allixios/allixios-bootstrap:0.1.0); without it the stack runs no bootstrap",
  },
} as const;

const UP = 'npm run stack:up -- <name> [--bootstrap-image <image>]';
const DOWN = 'npm run stack:down -- <name>';

/** `stack:up` and `stack:down` as commands: their usage, help and usage errors (`bootstrap/command-line.ts`). */
export function stackCommand(label: `stack:${Command}`) {
  return defineCommand({
    name: label,
    // This command's own line first: a usage error shows it.
    synopsis: label === 'stack:up' ? [UP, DOWN] : [DOWN, UP],
    summary:
      'stack:up creates (or selects) an ephemeral stack on the cluster of the current kubeconfig context, with the ephemeral profile, deploys it and prints its outputs, secrets masked; stack:down destroys it and removes the stack.',
    arguments: [{ name: '<name>', description: 'the stack, and its Kubernetes namespace: a DNS label such as pr-42; never dev, staging or prod' }],
    options: OPTIONS,
    notes: 'Needs the Pulumi CLI on PATH and a Pulumi backend it is logged in to.',
    exitCodes: { ok: 'deployed (up), or destroyed and removed (down); also when down finds no such stack', failed: 'Pulumi failed, or the Pulumi CLI is missing' },
  });
}

/** Where Pulumi's own progress text and the script's messages go. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/** One stack, as much of the Automation API's `Stack` as the scripts use. */
export interface EphemeralStack {
  setAllConfig(config: automation.ConfigMap): Promise<void>;
  /** `pulumi up`, streaming its progress to `io`. */
  up(io: Io): Promise<void>;
  /**
   * The outputs as `pulumi stack output --json` shows them: every secret, at any depth, reads
   * `"[secret]"`. (The Automation API's `OutputMap` flags only top-level secrets and carries the
   * plaintext of secrets nested in an object, such as `bootstrapUrls.DATABASE_URL`.)
   */
  maskedOutputs(): Promise<Record<string, unknown>>;
  /** `pulumi destroy`, streaming its progress to `io`. */
  destroy(io: Io): Promise<void>;
  /** `pulumi stack rm`: the stack's state and its `Pulumi.<name>.yaml`. */
  remove(): Promise<void>;
}

/** What the scripts need from Pulumi; `automation.ts` has the real one. */
export interface StackOperations {
  /** The Pulumi CLI's version, or undefined when there is no `pulumi` on PATH. */
  pulumiVersion(): Promise<string | undefined>;
  createOrSelectStack(name: string): Promise<EphemeralStack>;
  /** The stack, or undefined when the backend has no stack of that name. */
  selectStack(name: string): Promise<EphemeralStack | undefined>;
}

/** A refusal or failure with the exit code the CLI ends with: 2 for bad arguments, 1 otherwise. */
export class EphemeralStackError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
    options?: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'EphemeralStackError';
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_LABEL_PHRASE =
  'a DNS label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters) such as pr-42, since it is also the Kubernetes namespace';

export const PULUMI_CLI_MISSING =
  'the Pulumi CLI ("pulumi") is not on PATH; stack:up and stack:down drive it through the Automation API. Install it (https://www.pulumi.com/docs/install/) and run again.';

/** Whether the stack config would read this value as something other than text (see namespaceConfig). */
function readsAsJson(value: string): boolean {
  try {
    return typeof JSON.parse(value) !== 'string';
  } catch {
    return false;
  }
}

/**
 * Checks a stack name for an ephemeral stack: it becomes `allixios:namespace`, so it must be a DNS
 * label, and it must not be one of the long-lived stacks or a namespace Kubernetes keeps for itself.
 */
export function checkStackName(name: string | undefined): string {
  if (name === undefined || name === '') {
    throw new EphemeralStackError(`<name>: expected ${DNS_LABEL_PHRASE}, got nothing`, 2);
  }
  if (!DNS_LABEL.test(name)) {
    throw new EphemeralStackError(`<name>: expected ${DNS_LABEL_PHRASE}, got ${JSON.stringify(name)}`, 2);
  }
  if (readsAsJson(name)) {
    throw new EphemeralStackError(
      `<name>: expected a name that does not read as a number, true, false or null (the stack config parses such values, and the namespace must be text), got ${JSON.stringify(name)}`,
      2,
    );
  }
  if ((RESERVED_STACKS as readonly string[]).includes(name)) {
    throw new EphemeralStackError(
      `<name>: expected the name of an ephemeral stack, got ${JSON.stringify(name)}, a long-lived stack (${RESERVED_STACKS.join(', ')}) ` +
        'that stack:up and stack:down never touch; use pulumi up / pulumi destroy on it deliberately',
      2,
    );
  }
  if (name === 'default' || name.startsWith('kube-')) {
    throw new EphemeralStackError(`<name>: expected a name that is not a namespace Kubernetes keeps for itself (default, kube-*), got ${JSON.stringify(name)}`, 2);
  }
  return name;
}

/** What `stack:up` / `stack:down` were asked to do. */
export interface CommandLine {
  command: Command;
  name: string;
  /** `--bootstrap-image`: the image of the bootstrap Job; without it the stack runs no bootstrap. */
  bootstrapImage?: string;
}

/**
 * What `up|down <name> [--bootstrap-image <image>]` asks for, from the arguments as
 * `stackCommand` read them; a usage error (exit code 2) names what is wrong, in one line.
 */
export function checkCommandLine({ positionals, values }: ParsedArguments<typeof OPTIONS>): CommandLine {
  const [command, name, ...rest] = positionals;
  if (!(COMMANDS as readonly (string | undefined)[]).includes(command)) {
    throw new EphemeralStackError(`<command>: expected ${COMMANDS.join(' or ')}, got ${command === undefined ? 'nothing' : JSON.stringify(command)}`, 2);
  }
  if (rest.length > 0) {
    throw new EphemeralStackError(`expected one stack name, got ${rest.length + 1}: ${[name, ...rest].map((arg) => JSON.stringify(arg)).join(' ')}`, 2);
  }
  const bootstrapImage = values['bootstrap-image'];
  if (bootstrapImage !== undefined && command === 'down') {
    throw new EphemeralStackError('--bootstrap-image: expected only with up, got it with down', 2);
  }
  return { command: command as Command, name: checkStackName(name), ...(bootstrapImage !== undefined ? { bootstrapImage } : {}) };
}

/** `up|down <name> [--bootstrap-image <image>]` from the command line (after `tsx stacks/ephemeral/cli.ts`); `--help` is the CLI's. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  let parsed;
  try {
    parsed = stackCommand(argv[0] === 'down' ? 'stack:down' : 'stack:up').read(argv);
  } catch (error) {
    if (error instanceof UsageError) throw new EphemeralStackError(error.message, 2);
    throw error;
  }
  if (parsed === 'help') throw new EphemeralStackError('--help: the CLI prints the help', 2);
  return checkCommandLine(parsed);
}

/**
 * The config of an ephemeral stack: the ephemeral profile on Kubernetes, in a namespace named after
 * the stack, nothing protected (the config schema refuses protectData for ephemeral anyway; set
 * here so the stack file says it), and the bootstrap Job from `bootstrapImage`, or none.
 */
export function ephemeralStackConfig(name: string, bootstrapImage?: string): automation.ConfigMap {
  return {
    [`${CONFIG_NAMESPACE}:environment`]: { value: 'ephemeral' },
    [`${CONFIG_NAMESPACE}:target`]: { value: 'kubernetes' },
    [`${CONFIG_NAMESPACE}:namespace`]: { value: name },
    [`${CONFIG_NAMESPACE}:protectData`]: { value: 'false' },
    // An object-valued key is JSON text, as Pulumi keeps it and as namespaceConfig reads it.
    [`${CONFIG_NAMESPACE}:bootstrap`]: { value: JSON.stringify(bootstrapImage === undefined ? { enabled: false } : { image: bootstrapImage }) },
  };
}

/**
 * Runs the project's own config validation on what stack:up is about to set, so a bad value (an
 * image tagged latest, say) stops here, before a stack exists, with the schema's own sentence.
 */
function validateConfig(name: string, config: automation.ConfigMap): void {
  const values = namespaceConfig(Object.fromEntries(Object.entries(config).map(([key, { value }]) => [key, value])));
  try {
    // The project name only gives the default namespace, which this config sets.
    parseStackConfig(values, 'allixios', name);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new EphemeralStackError(`the config for stack ${name} is invalid:\n${error.problems.map((problem) => `  - ${problem}`).join('\n')}`, 2, { cause: error });
  }
}

async function requireCli(operations: StackOperations, io: Io): Promise<void> {
  const version = await operations.pulumiVersion();
  if (version === undefined) throw new EphemeralStackError(PULUMI_CLI_MISSING, 1);
  io.out(`Pulumi CLI ${version}\n`);
}

/**
 * What Pulumi said: the Automation API's `CommandError` message is the whole command result
 * (`code: ...\n stdout: ...\n stderr: ...\n err?: ...`); its stderr part is the useful one.
 */
function pulumiMessage(error: unknown): string {
  const message = toError(error).message;
  const stderr = /\n stderr: ([\s\S]*?)\n err\?: /.exec(message)?.[1]?.trim();
  return stderr || message;
}

/**
 * Runs one Pulumi step; a failure names the step and the stack. Steps that stream Pulumi's output
 * (up, destroy) have already shown why they failed; the others carry Pulumi's message.
 */
async function step<T>(what: string, name: string, run: () => Promise<T>, options: { streamed?: boolean; hint?: string } = {}): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof EphemeralStackError) throw error;
    const detail = options.streamed ? " (Pulumi's output above says why)" : `: ${pulumiMessage(error)}`;
    throw new EphemeralStackError(`${what} failed for stack ${name}${detail}${options.hint ? `\n${options.hint}` : ''}`, 1, { cause: error });
  }
}

const SECRET = '[secret]';

function containsSecret(value: unknown): boolean {
  if (value === SECRET) return true;
  if (value !== null && typeof value === 'object') return Object.values(value).some(containsSecret);
  return false;
}

/** The outputs worth printing: non-secret values in full, secret ones by name and how to see them. */
export function describeOutputs(name: string, outputs: Readonly<Record<string, unknown>>): string {
  const names = Object.keys(outputs).sort();
  const secret = names.filter((key) => containsSecret(outputs[key]));
  const visible = Object.fromEntries(names.filter((key) => !secret.includes(key)).map((key) => [key, outputs[key]]));
  const lines = [`Outputs of stack ${name}:`];
  if (Object.keys(visible).length > 0) {
    lines.push(
      ...YAML.stringify(visible)
        .trimEnd()
        .split('\n')
        .map((line) => `  ${line}`),
    );
  } else {
    lines.push('  (no outputs without secrets)');
  }
  if (secret.length > 0) {
    lines.push(
      `Secret, not shown: ${secret.join(', ')}`,
      `  one of them:  pulumi stack output --stack ${name} --show-secrets ${secret[0]}`,
      `  all, as JSON: pulumi stack output --stack ${name} --show-secrets --json`,
      `The URLs name hosts inside the cluster (namespace ${name}); from your machine, forward a port first`,
      `  (kubectl -n ${name} port-forward svc/<service> <port>, the service named in endpoints) and use 127.0.0.1 as the host.`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `stack:up <name>`: create or select the stack, set the ephemeral config, deploy, print outputs. */
export async function stackUp(name: string, operations: StackOperations, io: Io, options: { bootstrapImage?: string } = {}): Promise<void> {
  checkStackName(name);
  const config = ephemeralStackConfig(name, options.bootstrapImage);
  validateConfig(name, config);
  await requireCli(operations, io);
  const stack = await step('creating or selecting the stack', name, () => operations.createOrSelectStack(name));
  await step('setting the config', name, () => stack.setAllConfig(config));
  io.out(
    `Stack ${name}: ${Object.entries(config)
      .map(([key, { value }]) => `${key}=${value}`)
      .join(', ')}\n`,
  );
  if (options.bootstrapImage === undefined) io.out('No --bootstrap-image: the stack runs no bootstrap, so its engines stay without the schema.\n');
  await step('pulumi up', name, () => stack.up(io), {
    streamed: true,
    hint: `What it created stays until: npm run stack:down -- ${name}`,
  });
  const outputs = await step('reading the outputs', name, () => stack.maskedOutputs());
  io.out(describeOutputs(name, outputs));
  io.out(`Tear it down with: npm run stack:down -- ${name}\n`);
}

/** `stack:down <name>`: destroy everything the stack deployed, then remove the stack itself. */
export async function stackDown(name: string, operations: StackOperations, io: Io): Promise<void> {
  checkStackName(name);
  await requireCli(operations, io);
  const stack = await step('selecting the stack', name, () => operations.selectStack(name));
  if (stack === undefined) {
    io.out(`Stack ${name} does not exist: nothing to destroy or remove.\n`);
    return;
  }
  // The stack is removed only once destroy succeeded: removing it earlier would forget resources
  // that are still in the cluster.
  await step('pulumi destroy', name, () => stack.destroy(io), {
    streamed: true,
    hint: `The stack is kept so that nothing is forgotten; fix the cause and run npm run stack:down -- ${name} again.`,
  });
  await step('removing the stack', name, () => stack.remove());
  io.out(`Stack ${name} destroyed and removed: nothing of it is left in the cluster or the state.\n`);
}
