/**
 * Type-checks a snippet of TypeScript with the project's own compiler options, as if it were a
 * file in test/, and returns its errors. Lets a test prove that a misspelled parameter is a type
 * error (and that the correct spelling is not) at run time, instead of relying on a
 * `@ts-expect-error` line that only `tsc -p .` ever looks at.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPOSITORY = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VIRTUAL_FILE = join(REPOSITORY, 'test', '__typecheck_snippet__.ts');

let compilerOptions: ts.CompilerOptions | undefined;
/** The previous program: unchanged files (lib, node_modules types) are reused, not re-parsed. */
let previous: ts.Program | undefined;

function options(): ts.CompilerOptions {
  if (compilerOptions) return compilerOptions;
  const parsed = ts.getParsedCommandLineOfConfigFile(
    join(REPOSITORY, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(`tsconfig.json: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`);
      },
    },
  );
  if (!parsed) throw new Error('tsconfig.json: could not be read');
  compilerOptions = parsed.options;
  return compilerOptions;
}

/** The type errors of `source`, one message each (with its line); empty when it compiles. */
export function typeErrors(source: string): string[] {
  const compilerOptionsForSnippet = options();
  const host = ts.createCompilerHost(compilerOptionsForSnippet);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) =>
    fileName === VIRTUAL_FILE ? ts.createSourceFile(fileName, source, languageVersion, true) : getSourceFile(fileName, languageVersion, onError, shouldCreate);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (fileName) => fileName === VIRTUAL_FILE || fileExists(fileName);
  const readFile = host.readFile.bind(host);
  host.readFile = (fileName) => (fileName === VIRTUAL_FILE ? source : readFile(fileName));

  const program = ts.createProgram([VIRTUAL_FILE], compilerOptionsForSnippet, host, previous);
  previous = program;
  const snippet = program.getSourceFile(VIRTUAL_FILE);
  return ts
    .getPreEmitDiagnostics(program, snippet)
    .filter((diagnostic) => diagnostic.file?.fileName === VIRTUAL_FILE)
    .map((diagnostic) => {
      const line = diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1 : 0;
      return `line ${line}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    });
}
