import { describe, expect, it } from 'vitest';
import { splitStatements } from '../../bootstrap/sql.ts';

const texts = (sql: string) => splitStatements(sql).map((statement) => statement.text);

describe('splitting SQL into statements', () => {
  it('splits on semicolons and keeps where each statement starts', () => {
    const statements = splitStatements('CREATE TABLE a (id int);\n\n  INSERT INTO a VALUES (1);\n');
    expect(statements.map(({ index, text, line, column }) => ({ index, text, line, column }))).toEqual([
      { index: 1, text: 'CREATE TABLE a (id int)', line: 1, column: 1 },
      { index: 2, text: 'INSERT INTO a VALUES (1)', line: 3, column: 3 },
    ]);
  });

  it('does not split inside strings, quoted identifiers, comments or dollar-quoted bodies', () => {
    const sql = [
      "INSERT INTO t VALUES ('a;b', 'it''s; fine', E'esc\\';aped')",
      'SELECT 1 AS "odd;name" -- trailing; comment\n',
      '/* block; /* nested; */ comment */ SELECT 2',
      'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END; $body$',
      "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $$ SELECT $1::text || ';' $$",
    ].join(';\n');
    expect(texts(sql)).toHaveLength(5);
    expect(texts(sql)[3]).toContain('RETURN 1; END; $body$');
  });

  it('keeps a SQL-standard function body (BEGIN ATOMIC ... END, CASE inside) in one statement', () => {
    const sql = `CREATE FUNCTION h(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC
      SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;
      SELECT 2;
    END;
    SELECT 3;`;
    expect(texts(sql)).toEqual([sql.slice(0, sql.lastIndexOf('END;') + 3), 'SELECT 3']);
  });

  it('drops segments that hold only comments and white space', () => {
    expect(texts('-- header only\n;\n/* nothing */ ;\nSELECT 1;\n-- the end\n')).toEqual(['SELECT 1']);
  });

  it('places a statement at its first token, after the comments that introduce it', () => {
    const [statement] = splitStatements('-- Users of the platform.\n-- (see README)\n  CREATE TABLE users (id int);');
    expect([statement!.line, statement!.column, statement!.text]).toEqual([3, 3, 'CREATE TABLE users (id int)']);
  });

  it('refuses psql meta-commands, naming the line', () => {
    expect(() => splitStatements('SELECT 1;\n\\set x 1\nSELECT 2;')).toThrow('psql meta-command "\\set x 1" is not SQL; the bootstrap sends plain SQL');
  });

  it('refuses an unterminated string or dollar quote', () => {
    expect(() => splitStatements("SELECT 'open;")).toThrow('unterminated string');
    expect(() => splitStatements('DO $$ BEGIN')).toThrow('unterminated dollar-quoted string $$');
  });
});
