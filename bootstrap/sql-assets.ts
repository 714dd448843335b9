/**
 * The statements of a SQL asset, as both SQL engines' adapters run them, and the checks every
 * SQL asset passes before anything is applied (the runner calls them when it loads the assets,
 * so a dry run, a status and an offline plan refuse the same files an apply would):
 *   - it parses (a syntax error names its line);
 *   - it has a statement (an empty or comment-only migration would be recorded as applied
 *     without doing anything, and its version would be spent);
 *   - it does not control transactions (BEGIN, COMMIT, ...): the runner owns them. A COMMIT
 *     inside a migration the runner wraps in a transaction ends it early, so a later failure
 *     leaves the first part committed while the migration is not recorded, and the re-run fails
 *     for good on "already exists".
 */
import type { EngineName } from '../databases/engine.ts';
import type { Asset } from './assets.ts';
import { BootstrapError } from './errors.ts';
import { splitStatements, SqlSyntaxError, type SqlDialect, type Statement } from './sql.ts';

/** Statements that begin or end a transaction. SAVEPOINT / ROLLBACK TO stay inside one and are allowed. */
const TRANSACTION_CONTROL = /^(BEGIN|START\s+TRANSACTION|COMMIT|END|ABORT|ROLLBACK(?!\s+TO\b)|PREPARE\s+TRANSACTION)\b/i;

export function assetStatements(engine: EngineName, asset: Pick<Asset, 'path' | 'content'>, dialect: SqlDialect): Statement[] {
  try {
    return splitStatements(asset.content, dialect);
  } catch (error) {
    if (!(error instanceof SqlSyntaxError)) throw error;
    throw new BootstrapError(engine, error.message, { location: { file: asset.path, line: error.line, column: error.column } });
  }
}

/** Throws, naming the file and the statement, when a SQL asset may not be applied at all. */
export function checkSqlAsset(engine: EngineName, asset: Pick<Asset, 'path' | 'content'>, dialect: SqlDialect): void {
  const statements = assetStatements(engine, asset, dialect);
  if (statements.length === 0) {
    throw new BootstrapError(
      engine,
      'has no statement, only comments or blanks: an empty migration would be recorded as applied and do nothing; add its statements or delete the file',
      { location: { file: asset.path } },
    );
  }
  for (const statement of statements) {
    const control = TRANSACTION_CONTROL.exec(statement.text);
    if (control) {
      throw new BootstrapError(
        engine,
        `"${control[0].replace(/\s+/g, ' ').toUpperCase()}" controls the transaction, which is the runner's: it runs each migration in a transaction of its own (or, marked -- allixios:no-transaction, statement by statement); remove it`,
        { location: { file: asset.path, statement: statement.index, line: statement.line, column: statement.column } },
      );
    }
  }
}
