/**
 * {@link StackOperations} on Pulumi's Automation API: stacks of the project in `workDir` (the
 * repository root, where `Pulumi.yaml` is), on whatever backend the CLI is logged in to or
 * `PULUMI_BACKEND_URL` names.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { automation } from '@pulumi/pulumi';
import type { EphemeralStack, Io, StackOperations } from './ephemeral.ts';

const run = promisify(execFile);
// No "a newer version is available" notes in the middle of a deploy's output.
const QUIET = { PULUMI_SKIP_UPDATE_CHECK: 'true' };
const cliEnv = () => ({ ...process.env, ...QUIET });

function wrap(stack: automation.Stack, workDir: string): EphemeralStack {
  return {
    setAllConfig: (config) => stack.setAllConfig(config),
    up: async (io: Io) => {
      await stack.up({ onOutput: io.out, onError: io.err });
    },
    // The Automation API's outputs() merges the masked and the plaintext view and keeps the
    // plaintext; the masked view alone is what may be printed.
    maskedOutputs: async () => {
      const { stdout } = await run('pulumi', ['stack', 'output', '--json', '--stack', stack.name], { cwd: workDir, env: cliEnv() });
      return JSON.parse(stdout) as Record<string, unknown>;
    },
    destroy: async (io: Io) => {
      await stack.destroy({ onOutput: io.out, onError: io.err });
    },
    // Without --force: `pulumi stack rm` refuses a stack that still has resources.
    remove: () => stack.workspace.removeStack(stack.name),
  };
}

/** The real operations, for the project whose `Pulumi.yaml` is in `workDir`. */
export function automationStackOperations(workDir: string): StackOperations {
  return {
    pulumiVersion: async () => {
      try {
        const { stdout } = await run('pulumi', ['version'], { env: cliEnv() });
        return stdout.trim();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    },
    createOrSelectStack: async (name) => wrap(await automation.LocalWorkspace.createOrSelectStack({ stackName: name, workDir }, { envVars: QUIET }), workDir),
    selectStack: async (name) => {
      try {
        return wrap(await automation.LocalWorkspace.selectStack({ stackName: name, workDir }, { envVars: QUIET }), workDir);
      } catch (error) {
        if (error instanceof automation.StackNotFoundError) return undefined;
        throw error;
      }
    },
  };
}
