/**
 * `npm run stack:up -- <name> [--bootstrap-image <image>]` and `npm run stack:down -- <name>`
 * (`tsx stacks/ephemeral/cli.ts up|down ...`): ephemeral stacks on the cluster of the current
 * kubeconfig context; see `ephemeral.ts`. Exit codes: `bootstrap/command-line.ts` (0 done,
 * 1 a failed operation, 2 a usage error).
 */
import { fileURLToPath } from 'node:url';
import { toError } from '../../bootstrap/errors.ts';
import { checkCommandLine, EphemeralStackError, stackCommand, stackDown, stackUp, type CommandLine, type Io } from './ephemeral.ts';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
const io: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

const argv = process.argv.slice(2);
const label = argv[0] === 'down' ? 'stack:down' : 'stack:up';
const command = stackCommand(label);
let line: CommandLine;
try {
  line = checkCommandLine(command.parse(argv));
} catch (error) {
  if (!(error instanceof EphemeralStackError)) throw error;
  line = command.fail(error.message);
}

try {
  // Loaded once the arguments are read: the Automation API takes a while, --help does not.
  const { automationStackOperations } = await import('./automation.ts');
  const operations = automationStackOperations(REPOSITORY);
  if (line.command === 'up') await stackUp(line.name, operations, io, line.bootstrapImage === undefined ? {} : { bootstrapImage: line.bootstrapImage });
  else await stackDown(line.name, operations, io);
} catch (error) {
  io.err(`${label}: ${toError(error).message}\n`);
  process.exitCode = error instanceof EphemeralStackError ? error.exitCode : 1;
}
