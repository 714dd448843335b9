/**
 * Splits a SQL file into statements, so each runs on its own: a failure names the statement and
 * its line, and a `no-transaction` file can run statement by statement. Semicolons inside
 * strings, quoted identifiers, dollar-quoted bodies, comments and `BEGIN ATOMIC ... END` bodies do
 * not end a statement.
 */

export interface SqlDialect {
  /** `'it\'s'` is one string (ClickHouse; PostgreSQL only in E'...' strings). */
  backslashEscapes: boolean;
  /** `$tag$ ... $tag$` strings (PostgreSQL). */
  dollarQuotes: boolean;
  /** `` `identifier` `` quoting (ClickHouse). */
  backticks: boolean;
  /** Lines starting with a backslash are psql meta-commands, which only psql understands. */
  rejectMetaCommands: boolean;
}

export const POSTGRESQL: SqlDialect = { backslashEscapes: false, dollarQuotes: true, backticks: false, rejectMetaCommands: true };

/** ClickHouse: backslash escapes in strings, backtick identifiers, no dollar quoting. */
export const CLICKHOUSE: SqlDialect = { backslashEscapes: true, dollarQuotes: false, backticks: true, rejectMetaCommands: false };

export interface Statement {
  /** 1-based position of the statement in the file. */
  index: number;
  text: string;
  /** Offset of the statement's first character in the file. */
  offset: number;
  line: number;
  column: number;
}

export class SqlSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
    this.name = 'SqlSyntaxError';
  }
}

/** 1-based line and column of `offset` in `text`. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;
const DOLLAR_TAG = /\$([A-Za-z_][A-Za-z0-9_]*)?\$/y;

/** The statements of `sql`; segments holding only comments and white space are not statements. */
export function splitStatements(sql: string, dialect: SqlDialect = POSTGRESQL): Statement[] {
  const statements: Statement[] = [];
  /** Offset of the current statement's first token; -1 while only comments and blanks were seen. */
  let contentStart = -1;
  let atomicDepth = 0;
  let previousWord = '';
  let i = 0;

  const push = (end: number) => {
    if (contentStart !== -1) {
      const { line, column } = lineAndColumn(sql, contentStart);
      statements.push({ index: statements.length + 1, text: sql.slice(contentStart, end).trim(), offset: contentStart, line, column });
    }
    contentStart = -1;
    previousWord = '';
  };

  const fail = (message: string, at: number): never => {
    const { line, column } = lineAndColumn(sql, at);
    throw new SqlSyntaxError(message, line, column);
  };

  while (i < sql.length) {
    const char = sql[i]!;
    const next = sql[i + 1];

    if (char === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
      continue;
    }
    if (char === '/' && next === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < sql.length && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else {
          j++;
        }
      }
      if (depth > 0) fail('unterminated /* comment', i);
      i = j;
      continue;
    }
    if (/\s/.test(char)) {
      i++;
      continue;
    }
    if (dialect.rejectMetaCommands && char === '\\' && /^[ \t]*$/.test(sql.slice(sql.lastIndexOf('\n', i - 1) + 1, i))) {
      const lineEnd = sql.indexOf('\n', i);
      fail(`psql meta-command "${sql.slice(i, lineEnd === -1 ? sql.length : lineEnd).trim()}" is not SQL; the bootstrap sends plain SQL`, i);
    }
    if (char === ';' && atomicDepth === 0) {
      push(i);
      i++;
      continue;
    }
    if (contentStart === -1) contentStart = i;

    if (char === "'" || char === '"' || (dialect.backticks && char === '`')) {
      // E'...' strings take backslash escapes in PostgreSQL too.
      const escapeString = char === "'" && (dialect.backslashEscapes || (/[eE]/.test(sql[i - 1] ?? '') && !/[A-Za-z0-9_]/.test(sql[i - 2] ?? '')));
      let j = i + 1;
      for (;;) {
        if (j >= sql.length) fail(`unterminated ${char === "'" ? 'string' : 'quoted identifier'}`, i);
        if (escapeString && sql[j] === '\\') {
          j += 2;
          continue;
        }
        if (sql[j] === char) {
          if (sql[j + 1] === char) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      i = j + 1;
      previousWord = '';
      continue;
    }
    if (dialect.dollarQuotes && char === '$') {
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(sql);
      // `$1` is a parameter, not a quote; a tag directly after an identifier character is part of it.
      if (tag && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? '')) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        if (end === -1) fail(`unterminated dollar-quoted string ${tag[0]}`, i);
        i = end + tag[0].length;
        previousWord = '';
        continue;
      }
    }
    if (/[A-Za-z_]/.test(char) && !/[A-Za-z0-9_$]/.test(sql[i - 1] ?? '')) {
      WORD.lastIndex = i;
      const word = WORD.exec(sql)![0].toUpperCase();
      // SQL-standard function bodies contain semicolons: BEGIN ATOMIC ... END, with CASE ... END inside.
      if (word === 'ATOMIC' && previousWord === 'BEGIN') atomicDepth = 1;
      else if (atomicDepth > 0 && word === 'CASE') atomicDepth++;
      else if (atomicDepth > 0 && word === 'END') atomicDepth--;
      previousWord = word;
      i += word.length;
      continue;
    }
    previousWord = '';
    i++;
  }
  push(sql.length);
  return statements;
}
