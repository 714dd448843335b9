/** POSIX shell words, for the `sh -c` commands engines and targets run inside containers. */

/** `word` as one shell word, whatever it contains. */
export const shellQuote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

/** An exec-form command as the words of a shell command line. */
export const shellWords = (command: readonly string[]): string => command.map(shellQuote).join(' ');
