/**
 * `npm run stack:up` / `stack:down`: the orchestration with a fake StackOperations (what is set,
 * called and printed, in which order), and the CLI end to end on the real Automation API with a
 * stand-in `pulumi` on PATH that records its arguments (the Pulumi CLI itself cannot run here).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { automation } from '@pulumi/pulumi';
import { describe, expect, it } from 'vitest';
import { namespaceConfig, parseStackConfig } from '../stacks/config/index.ts';
import {
  EphemeralStackError,
  PULUMI_CLI_MISSING,
  ephemeralStackConfig,
  parseCommandLine,
  stackDown,
  stackUp,
  type EphemeralStack,
  type Io,
  type StackOperations,
} from '../stacks/ephemeral/ephemeral.ts';
import { ROOT } from './support/pulumi.ts';

const DNS_EXPECTATION =
  'expected a DNS label (lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters) such as pr-42, since it is also the Kubernetes namespace';

/** Outputs as `pulumi stack output --json` prints them: secrets masked at any depth. */
const MASKED_OUTPUTS = {
  DATABASE_URL: '[secret]',
  bootstrapUrls: { DATABASE_URL: '[secret]', REDIS_URL: '[secret]' },
  endpoints: { postgresql: { host: 'postgresql.pr-42.svc', port: 5432 } },
  bootstrap: 'job allixios-bootstrap-1a2b3c succeeded',
};

interface Fake {
  operations: StackOperations;
  calls: string[];
  configs: automation.ConfigMap[];
  output: { out: string; err: string };
  io: Io;
}

/** A StackOperations that records every call; `fail` makes one step throw like Pulumi would. */
function fake(options: { cli?: boolean; exists?: boolean; fail?: 'up' | 'destroy' | 'remove' } = {}): Fake {
  const calls: string[] = [];
  const configs: automation.ConfigMap[] = [];
  const output = { out: '', err: '' };
  const io: Io = { out: (text) => void (output.out += text), err: (text) => void (output.err += text) };
  const failIf = (step: 'up' | 'destroy' | 'remove') => {
    if (options.fail === step) throw new Error(`code: 255\n stdout: \n stderr: error: ${step} went wrong\n err?: Error: exit 255\n`);
  };
  const stack = (name: string): EphemeralStack => ({
    setAllConfig: async (config) => {
      calls.push(`setAllConfig ${name}`);
      configs.push(config);
    },
    up: async (stream) => {
      calls.push(`up ${name}`);
      stream.out('Updating (pr-42)\n');
      failIf('up');
    },
    maskedOutputs: async () => {
      calls.push(`maskedOutputs ${name}`);
      return MASKED_OUTPUTS;
    },
    destroy: async (stream) => {
      calls.push(`destroy ${name}`);
      stream.out('Destroying (pr-42)\n');
      failIf('destroy');
    },
    remove: async () => {
      calls.push(`remove ${name}`);
      failIf('remove');
    },
  });
  const operations: StackOperations = {
    pulumiVersion: async () => {
      calls.push('pulumiVersion');
      return options.cli === false ? undefined : 'v3.248.0';
    },
    createOrSelectStack: async (name) => {
      calls.push(`createOrSelectStack ${name}`);
      return stack(name);
    },
    selectStack: async (name) => {
      calls.push(`selectStack ${name}`);
      return options.exists === false ? undefined : stack(name);
    },
  };
  return { operations, calls, configs, output, io };
}

async function refusal(run: () => Promise<unknown> | unknown): Promise<EphemeralStackError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof EphemeralStackError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('stack names', () => {
  it.each(['pr-42', 'alice-try', '7a', 'a'.repeat(63)])('accepts %s', async (name) => {
    const { operations, io, calls } = fake();
    await stackUp(name, operations, io);
    expect(calls).toContain(`createOrSelectStack ${name}`);
  });

  it.each([
    ['PR-42', '"PR-42"'],
    ['pr_42', '"pr_42"'],
    ['-pr', '"-pr"'],
    ['pr-', '"pr-"'],
    ['pr.42', '"pr.42"'],
    ['a'.repeat(64), JSON.stringify('a'.repeat(64))],
  ])('refuses %s as not a DNS label, naming the argument, the expectation and the value', async (name, shown) => {
    const { operations, io, calls } = fake();
    const error = await refusal(() => stackUp(name, operations, io));
    expect(error.message).toBe(`<name>: ${DNS_EXPECTATION}, got ${shown}`);
    expect(error.exitCode).toBe(2);
    expect(calls).toEqual([]);
  });

  it.each(['dev', 'staging', 'prod'])('refuses the long-lived stack %s, for up and for down, before touching Pulumi', async (name) => {
    const expected =
      `<name>: expected the name of an ephemeral stack, got "${name}", a long-lived stack (dev, staging, prod) ` +
      'that stack:up and stack:down never touch; use pulumi up / pulumi destroy on it deliberately';
    for (const run of [stackUp, stackDown]) {
      const { operations, io, calls } = fake();
      const error = await refusal(() => run(name, operations, io));
      expect(error.message).toBe(expected);
      expect(error.exitCode).toBe(2);
      expect(calls).toEqual([]);
    }
  });

  it.each(['7', '1e5', 'true', 'null'])('refuses %s, which the stack config would read as a number, a boolean or null', async (name) => {
    const { operations, io, calls } = fake();
    const error = await refusal(() => stackUp(name, operations, io));
    expect(error.message).toBe(
      `<name>: expected a name that does not read as a number, true, false or null (the stack config parses such values, and the namespace must be text), got "${name}"`,
    );
    expect(calls).toEqual([]);
  });

  it.each(['default', 'kube-system', 'kube-public'])('refuses %s, a namespace Kubernetes keeps for itself', async (name) => {
    const { operations, io } = fake();
    const error = await refusal(() => stackDown(name, operations, io));
    expect(error.message).toBe(`<name>: expected a name that is not a namespace Kubernetes keeps for itself (default, kube-*), got "${name}"`);
  });
});

describe('the command line', () => {
  it('reads up or down, the name and an optional bootstrap image', () => {
    expect(parseCommandLine(['up', 'pr-42'])).toEqual({ command: 'up', name: 'pr-42' });
    expect(parseCommandLine(['down', 'pr-42'])).toEqual({ command: 'down', name: 'pr-42' });
    expect(parseCommandLine(['up', 'pr-42', '--bootstrap-image', 'ghcr.io/allixios/allixios-bootstrap:0.1.0'])).toEqual({
      command: 'up',
      name: 'pr-42',
      bootstrapImage: 'ghcr.io/allixios/allixios-bootstrap:0.1.0',
    });
  });

  it.each([
    [[], '<command>: expected up or down, got nothing'],
    [['sideways', 'pr-1'], '<command>: expected up or down, got "sideways"'],
    [['up'], `<name>: ${DNS_EXPECTATION}, got nothing`],
    [['up', 'pr-1', 'pr-2'], 'expected one stack name, got 2: "pr-1" "pr-2"'],
    [['down', 'pr-1', '--bootstrap-image', 'x:1'], '--bootstrap-image: expected only with up, got it with down'],
    [['up', 'pr-1', '--force'], 'unknown option --force'],
  ])('refuses %j with a usage error (exit code 2)', (argv, message) => {
    let error: unknown;
    try {
      parseCommandLine(argv);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(EphemeralStackError);
    expect((error as EphemeralStackError).message).toBe(message);
    expect((error as EphemeralStackError).exitCode).toBe(2);
  });
});

describe('stack:up', () => {
  it('checks the CLI, creates or selects the stack, sets exactly the ephemeral config, deploys, then reads the outputs', async () => {
    const { operations, io, calls, configs } = fake();
    await stackUp('pr-42', operations, io);
    expect(calls).toEqual(['pulumiVersion', 'createOrSelectStack pr-42', 'setAllConfig pr-42', 'up pr-42', 'maskedOutputs pr-42']);
    expect(configs).toEqual([
      {
        'allixios:environment': { value: 'ephemeral' },
        'allixios:target': { value: 'kubernetes' },
        'allixios:namespace': { value: 'pr-42' },
        'allixios:protectData': { value: 'false' },
        'allixios:bootstrap': { value: '{"enabled":false}' },
      },
    ]);
  });

  it('with --bootstrap-image, runs the bootstrap Job from that image', async () => {
    const { operations, io, configs, output } = fake();
    await stackUp('pr-42', operations, io, { bootstrapImage: 'ghcr.io/allixios/allixios-bootstrap:0.1.0' });
    expect(configs[0]!['allixios:bootstrap']).toEqual({ value: '{"image":"ghcr.io/allixios/allixios-bootstrap:0.1.0"}' });
    expect(output.out).not.toContain('runs no bootstrap');
  });

  it('sets a config the stack config schema accepts as ephemeral: nothing protected, volume claims deleted with the StatefulSet', () => {
    for (const image of [undefined, 'ghcr.io/allixios/allixios-bootstrap:0.1.0']) {
      const values = Object.fromEntries(Object.entries(ephemeralStackConfig('pr-42', image)).map(([key, { value }]) => [key, value]));
      const config = parseStackConfig(namespaceConfig(values), 'allixios', 'pr-42');
      expect(config).toMatchObject({ environment: 'ephemeral', target: 'kubernetes', namespace: 'pr-42', protectData: false });
      expect(config.pvcRetention).toEqual({ whenDeleted: 'Delete', whenScaled: 'Delete' });
      expect(config.bootstrap.enabled).toBe(image !== undefined);
    }
  });

  it('refuses a bootstrap image the config schema refuses, with the schema’s sentence, before touching Pulumi', async () => {
    const { operations, io, calls } = fake();
    const error = await refusal(() => stackUp('pr-42', operations, io, { bootstrapImage: 'allixios-bootstrap:latest' }));
    expect(error.message).toBe(
      'the config for stack pr-42 is invalid:\n  - allixios:bootstrap.image: expected a pinned image reference such as ghcr.io/acme/allixios-bootstrap:1.4.0 or …@sha256:<digest>, got "allixios-bootstrap:latest"',
    );
    expect(error.exitCode).toBe(2);
    expect(calls).toEqual([]);
  });

  it('prints the outputs without secrets in full, and the secret ones by name with the command that shows them', async () => {
    const { operations, io, output } = fake();
    await stackUp('pr-42', operations, io);
    const summary = output.out.slice(output.out.indexOf('Outputs of stack pr-42:'));
    expect(summary).toBe(
      [
        'Outputs of stack pr-42:',
        '  bootstrap: job allixios-bootstrap-1a2b3c succeeded',
        '  endpoints:',
        '    postgresql:',
        '      host: postgresql.pr-42.svc',
        '      port: 5432',
        'Secret, not shown: DATABASE_URL, bootstrapUrls',
        '  one of them:  pulumi stack output --stack pr-42 --show-secrets DATABASE_URL',
        '  all, as JSON: pulumi stack output --stack pr-42 --show-secrets --json',
        'The URLs name hosts inside the cluster (namespace pr-42); from your machine, forward a port first',
        '  (kubectl -n pr-42 port-forward svc/<service> <port>, the service named in endpoints) and use 127.0.0.1 as the host.',
        'Tear it down with: npm run stack:down -- pr-42',
        '',
      ].join('\n'),
    );
    expect(output.out).not.toContain('[secret]');
    // Pulumi's own progress is passed through.
    expect(output.out).toContain('Updating (pr-42)\n');
  });

  it('a failed up says so, names the stack and how to tear down what it made, and reads no outputs', async () => {
    const { operations, io, calls } = fake({ fail: 'up' });
    const error = await refusal(() => stackUp('pr-42', operations, io));
    expect(error.message).toBe("pulumi up failed for stack pr-42 (Pulumi's output above says why)\nWhat it created stays until: npm run stack:down -- pr-42");
    expect(error.exitCode).toBe(1);
    expect(calls).not.toContain('maskedOutputs pr-42');
  });

  it('without the Pulumi CLI, fails naming it, before any stack operation', async () => {
    const { operations, io, calls } = fake({ cli: false });
    const error = await refusal(() => stackUp('pr-42', operations, io));
    expect(error.message).toBe(PULUMI_CLI_MISSING);
    expect(error.message).toBe(
      'the Pulumi CLI ("pulumi") is not on PATH; stack:up and stack:down drive it through the Automation API. Install it (https://www.pulumi.com/docs/install/) and run again.',
    );
    expect(error.exitCode).toBe(1);
    expect(calls).toEqual(['pulumiVersion']);
  });
});

describe('stack:down', () => {
  it('destroys the stack’s resources, then removes the stack', async () => {
    const { operations, io, calls, output } = fake();
    await stackDown('pr-42', operations, io);
    expect(calls).toEqual(['pulumiVersion', 'selectStack pr-42', 'destroy pr-42', 'remove pr-42']);
    expect(output.out).toContain('Stack pr-42 destroyed and removed: nothing of it is left in the cluster or the state.\n');
  });

  it('keeps the stack when destroy fails, so that a second stack:down can finish the job', async () => {
    const { operations, io, calls } = fake({ fail: 'destroy' });
    const error = await refusal(() => stackDown('pr-42', operations, io));
    expect(calls).toEqual(['pulumiVersion', 'selectStack pr-42', 'destroy pr-42']);
    expect(error.message).toBe(
      "pulumi destroy failed for stack pr-42 (Pulumi's output above says why)\nThe stack is kept so that nothing is forgotten; fix the cause and run npm run stack:down -- pr-42 again.",
    );
  });

  it('a failed removal carries what Pulumi said', async () => {
    const { operations, io } = fake({ fail: 'remove' });
    const error = await refusal(() => stackDown('pr-42', operations, io));
    expect(error.message).toBe('removing the stack failed for stack pr-42: error: remove went wrong');
  });

  it('a stack that does not exist: nothing to do, and no error (a second stack:down, a closed pull request that never got one)', async () => {
    const { operations, io, calls, output } = fake({ exists: false });
    await stackDown('pr-42', operations, io);
    expect(calls).toEqual(['pulumiVersion', 'selectStack pr-42']);
    expect(output.out).toContain('Stack pr-42 does not exist: nothing to destroy or remove.\n');
  });

  it('without the Pulumi CLI, fails naming it, before any stack operation', async () => {
    const { operations, io, calls } = fake({ cli: false });
    const error = await refusal(() => stackDown('pr-42', operations, io));
    expect(error.message).toBe(PULUMI_CLI_MISSING);
    expect(calls).toEqual(['pulumiVersion']);
  });
});

describe('the CLI on the Automation API, with a stand-in pulumi on PATH', () => {
  const run = promisify(execFile);
  const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  const PLAINTEXT = 'hunter2-plaintext-password';

  /**
   * A `pulumi` that logs its arguments, keeps stacks as files, and answers `stack output` as the
   * real one does: masked without --show-secrets (nested secrets too), plaintext with it.
   */
  const STAND_IN = `#!/usr/bin/env bash
state="$FAKE_PULUMI_STATE"
printf '%s\\n' "$*" >> "$state/calls.log"
stack=""
args=("$@")
for ((i = 0; i < \${#args[@]}; i++)); do
  if [ "\${args[i]}" = "--stack" ]; then stack="\${args[i+1]}"; fi
done
case "$1 $2" in
  "version "*) echo "v3.248.0" ;;
  "stack select") [ -f "$state/stack-$stack" ] || { echo "error: no stack named '$stack' found" >&2; exit 255; } ;;
  "stack init") touch "$state/stack-$3" ;;
  "config set-all") ;;
  "up "*) echo "Updating ($stack)" ;;
  "destroy "*) echo "Destroying ($stack)" ;;
  "stack history") echo '[]' ;;
  "stack rm") rm "$state/stack-$4" ;;
  "stack output")
    if [[ " $* " == *" --show-secrets "* ]]; then
      echo '{"DATABASE_URL":"postgresql://app:${PLAINTEXT}@pg/allixios","bootstrapUrls":{"DATABASE_URL":"postgresql://owner:${PLAINTEXT}@pg/allixios"},"endpoints":{"postgresql":{"host":"postgresql.pr-42.svc","port":5432}}}'
    else
      echo '{"DATABASE_URL":"[secret]","bootstrapUrls":{"DATABASE_URL":"[secret]"},"endpoints":{"postgresql":{"host":"postgresql.pr-42.svc","port":5432}}}'
    fi ;;
  *) echo "stand-in pulumi: unexpected: $*" >&2; exit 3 ;;
esac
`;

  function sandbox() {
    const directory = mkdtempSync(join(tmpdir(), 'pulumi-stand-in-'));
    const bin = join(directory, 'bin');
    const state = join(directory, 'state');
    mkdirSync(bin);
    mkdirSync(state);
    writeFileSync(join(bin, 'pulumi'), STAND_IN);
    chmodSync(join(bin, 'pulumi'), 0o755);
    writeFileSync(join(state, 'calls.log'), '');
    const cli = (...args: string[]) =>
      run(process.execPath, [TSX, 'stacks/ephemeral/cli.ts', ...args], {
        cwd: ROOT,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, FAKE_PULUMI_STATE: state },
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
      );
    const calls = () =>
      readFileSync(join(state, 'calls.log'), 'utf8')
        .split('\n')
        .filter((line) => line !== '' && line !== 'version')
        .map((line) => line.replace(/ --non-interactive$/, ''));
    return { cli, calls };
  }

  it('stack:up creates the stack, sets its config, runs pulumi up, and prints no secret, not even a nested one', async () => {
    const { cli, calls } = sandbox();
    const { code, stdout, stderr } = await cli('up', 'pr-42');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(calls()).toEqual([
      'stack select --stack pr-42',
      'stack init pr-42',
      'config set-all --stack pr-42 --plaintext allixios:environment=ephemeral --plaintext allixios:target=kubernetes --plaintext allixios:namespace=pr-42 --plaintext allixios:protectData=false --plaintext allixios:bootstrap={"enabled":false}',
      'up --yes --skip-preview --exec-kind auto.local --stack pr-42',
      // The Automation API's own outputs() (masked and plaintext), its summary, then the masked view the script prints.
      'stack output --json --stack pr-42',
      'stack output --json --show-secrets --stack pr-42',
      'stack history --json --show-secrets --page-size 1 --page 1 --stack pr-42',
      'stack output --json --stack pr-42',
    ]);
    expect(stdout).toContain('      host: postgresql.pr-42.svc\n');
    expect(stdout).toContain('Secret, not shown: DATABASE_URL, bootstrapUrls\n');
    expect(stdout).not.toContain(PLAINTEXT);
  });

  it('stack:down destroys, then removes the stack; a second stack:down finds nothing to do', async () => {
    const { cli, calls } = sandbox();
    await cli('up', 'pr-42');
    const before = calls().length;
    const first = await cli('down', 'pr-42');
    expect(first.code).toBe(0);
    expect(calls().slice(before)).toEqual([
      'stack select --stack pr-42',
      'destroy --yes --skip-preview --exec-kind auto.local --stack pr-42',
      'stack history --json --show-secrets --page-size 1 --page 1 --stack pr-42',
      'stack rm --yes pr-42',
    ]);
    const second = await cli('down', 'pr-42');
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('Stack pr-42 does not exist: nothing to destroy or remove.');
  });

  it('without pulumi on PATH: exit code 1 and a message naming the Pulumi CLI', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-pulumi-'));
    const result = await run(process.execPath, [TSX, 'stacks/ephemeral/cli.ts', 'up', 'pr-42'], { cwd: ROOT, env: { ...process.env, PATH: empty } }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`stack:up: ${PULUMI_CLI_MISSING}\n`);
  });

  it('a bad name: exit code 2, one line naming it and the usage, and pulumi is never called', async () => {
    const { cli, calls } = sandbox();
    const { code, stderr } = await cli('down', 'Staging');
    expect(code).toBe(2);
    const [first, second] = stderr.split('\n');
    expect(first).toBe(`stack:down: <name>: ${DNS_EXPECTATION}, got "Staging"`);
    expect(second).toBe('usage: npm run stack:down -- <name>');
    expect(calls()).toEqual([]);
  });
});
