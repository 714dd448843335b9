/**
 * `npm run stack:up -- <name> [--bootstrap-image <image>]` and `npm run stack:down -- <name>`
 * (`tsx stacks/ephemeral/cli.ts up|down ...`): ephemeral stacks on the cluster of the current
 * kubeconfig context; see `ephemeral.ts`. Exit code 2 for bad arguments, 1 for a failed operation.
 */
import { fileURLToPath } from 'node:url';
import { automationStackOperations } from './automation.ts';
import { EphemeralStackError, parseCommandLine, stackDown, stackUp, type Io } from './ephemeral.ts';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
const io: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

const label = `stack:${process.argv[2] === 'down' ? 'down' : 'up'}`;
try {
  const { command, name, bootstrapImage } = parseCommandLine(process.argv.slice(2));
  const operations = automationStackOperations(REPOSITORY);
  if (command === 'up') await stackUp(name, operations, io, bootstrapImage === undefined ? {} : { bootstrapImage });
  else await stackDown(name, operations, io);
} catch (error) {
  io.err(`${label}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = error instanceof EphemeralStackError ? error.exitCode : 1;
}
