/**
 * A program a throwaway engine needs is not installed here (`redis-server`, `psql`): something the
 * user can fix with one command, unlike an engine that has no embedded server at all
 * (`BootstrapEngine.embedded.unavailable`). `npm run check` fails on it and prints the command.
 */
export class MissingProgram extends Error {
  override readonly name = 'MissingProgram';
  /** The command that installs it on Debian and Ubuntu: `apt-get install -y redis-server`. */
  readonly install: string;

  constructor(
    /** The program as it is looked up on PATH. */
    readonly program: string,
    /** The Debian package that has it. */
    readonly debianPackage: string,
    /** What is wrong: `is not on PATH (spawnSync psql ENOENT)`, `is 14.2, and 15 or newer is needed`. */
    problem: string,
  ) {
    const install = `apt-get install -y ${debianPackage}`;
    super(`${program} ${problem}: install ${debianPackage} (${install})`);
    this.install = install;
  }
}
