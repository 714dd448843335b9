/**
 * The replicated form of a ClickHouse statement: what the bootstrap sends instead of an asset's
 * statement when the server is a member of a replicated stack (databases/clickhouse/README.md,
 * "Replicas"). The assets are written, checked and recorded in their single-server form, which
 * Docker and chdb run as they are; the ledger records the asset's own text and checksum, so a
 * stack's history does not depend on the form it ran in.
 *
 * Two rewrites, nothing else:
 * - `CREATE DATABASE` (engine Atomic or none) becomes a `Replicated` database created on every
 *   member at once (`ON CLUSTER`): its DDL log then carries every later statement on the database
 *   to every member, once, whichever member the bootstrap reached.
 * - A MergeTree-family table engine becomes its `Replicated` counterpart without ZooKeeper path or
 *   replica name (the server's `default_replica_path` and `default_replica_name`): the data is
 *   replicated, not only the table's definition. Engine arguments (SummingMergeTree's columns) stay.
 *
 * Views, materialized views with `TO`, `ALTER`, `INSERT ... SELECT` need no rewrite: the
 * Replicated database replicates the first three's DDL, and an insert into a replicated table is
 * replicated by the table. What cannot be replicated this way is refused with the reason, before
 * anything runs (`npm run check` rewrites every asset statement too).
 */

/** Table engines of the MergeTree family that have a `Replicated` counterpart taking the same arguments after the path and replica name. */
export const MERGE_TREE_ENGINES = [
  'MergeTree',
  'ReplacingMergeTree',
  'SummingMergeTree',
  'AggregatingMergeTree',
  'CollapsingMergeTree',
  'VersionedCollapsingMergeTree',
  'CoalescingMergeTree',
] as const;

/** A statement the replicated form cannot be derived for: the message says why. */
export class ReplicatedFormError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplicatedFormError';
  }
}

type TokenKind = 'word' | 'quoted' | 'string' | 'number' | 'punct';

interface Token {
  kind: TokenKind;
  /** The token as written. */
  text: string;
  start: number;
  end: number;
  /** Parenthesis depth the token is at (0: the statement's own clauses). */
  depth: number;
}

const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /[0-9][0-9A-Za-z_.]*/y;

/** ClickHouse's lexical rules: `'...'` strings with backslash escapes, `` `...` `` and `"..."` identifiers, `--`, `#` and block comments. */
function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let i = 0;
  const quoted = (close: string, kind: TokenKind) => {
    const start = i;
    i++;
    while (i < sql.length && sql[i] !== close) i += sql[i] === '\\' ? 2 : 1;
    if (i >= sql.length) throw new ReplicatedFormError(`unterminated ${kind === 'string' ? 'string' : 'quoted identifier'} at offset ${start}`);
    i++;
    tokens.push({ kind, text: sql.slice(start, i), start, end: i, depth });
  };
  while (i < sql.length) {
    const char = sql[i]!;
    if (/\s/.test(char)) {
      i++;
    } else if ((char === '-' && sql[i + 1] === '-') || char === '#') {
      while (i < sql.length && sql[i] !== '\n') i++;
    } else if (char === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      i = close === -1 ? sql.length : close + 2;
    } else if (char === "'") {
      quoted("'", 'string');
    } else if (char === '`' || char === '"') {
      quoted(char, 'quoted');
    } else if (/[A-Za-z_]/.test(char)) {
      WORD.lastIndex = i;
      const word = WORD.exec(sql)![0];
      tokens.push({ kind: 'word', text: word, start: i, end: i + word.length, depth });
      i += word.length;
    } else if (/[0-9]/.test(char)) {
      NUMBER.lastIndex = i;
      const number = NUMBER.exec(sql)![0];
      tokens.push({ kind: 'number', text: number, start: i, end: i + number.length, depth });
      i += number.length;
    } else {
      if (char === ')') depth--;
      tokens.push({ kind: 'punct', text: char, start: i, end: i + 1, depth });
      if (char === '(') depth++;
      i++;
    }
  }
  return tokens;
}

const isWord = (token: Token | undefined, ...words: string[]) => token?.kind === 'word' && words.includes(token.text.toUpperCase());

/** An identifier's name without its quotes. */
function identifierName(token: Token): string {
  return token.kind === 'quoted' ? token.text.slice(1, -1) : token.text;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

function applyEdits(sql: string, edits: Edit[]): string {
  let result = sql;
  for (const edit of [...edits].sort((a, b) => b.start - a.start)) result = result.slice(0, edit.start) + edit.text + result.slice(edit.end);
  return result;
}

/** The name token of `CREATE DATABASE [IF NOT EXISTS] name`. */
function databaseNameToken(tokens: Token[]): Token {
  let at = 2; // after CREATE DATABASE
  if (isWord(tokens[at], 'IF') && isWord(tokens[at + 1], 'NOT') && isWord(tokens[at + 2], 'EXISTS')) at += 3;
  const nameToken = tokens[at];
  if (!nameToken || (nameToken.kind !== 'word' && nameToken.kind !== 'quoted')) throw new ReplicatedFormError('CREATE DATABASE without a database name');
  return nameToken;
}

/** The database a `CREATE DATABASE` statement creates; undefined for any other statement. */
export function createdDatabase(sql: string): string | undefined {
  const tokens = tokenize(sql);
  return isWord(tokens[0], 'CREATE') && isWord(tokens[1], 'DATABASE') ? identifierName(databaseNameToken(tokens)) : undefined;
}

/**
 * `CREATE DATABASE [IF NOT EXISTS] name [ENGINE = Atomic] ...` as a Replicated database created on
 * every member of `cluster`, with the member's `{shard}` and `{replica}` macros.
 */
function replicatedDatabase(sql: string, tokens: Token[], cluster: string, databasePath: (database: string) => string): string {
  const nameToken = databaseNameToken(tokens);
  const name = identifierName(nameToken);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    throw new ReplicatedFormError(`database name ${nameToken.text}: expected letters, digits and underscores (it names the database's path in Keeper)`);
  if (tokens.some((token) => isWord(token, 'CLUSTER'))) throw new ReplicatedFormError('an asset never says ON CLUSTER: the replicated form adds it');
  const engine = tokens.findIndex((token) => token.depth === 0 && isWord(token, 'ENGINE'));
  const replicated = `ENGINE = Replicated('${databasePath(name)}', '{shard}', '{replica}')`;
  const onCluster = ` ON CLUSTER ${cluster}`;
  const edits: Edit[] = [];
  if (engine === -1) {
    edits.push({ start: nameToken.end, end: nameToken.end, text: `${onCluster} ${replicated}` });
  } else {
    edits.push({ start: nameToken.end, end: nameToken.end, text: onCluster });
    let nameAt = engine + 1;
    if (tokens[nameAt]?.text === '=') nameAt++;
    const engineName = tokens[nameAt];
    if (!isWord(engineName, 'ATOMIC')) {
      throw new ReplicatedFormError(
        `database ${name} has the engine ${engineName?.text ?? '(none)'}: only an Atomic database has a Replicated form (the Replicated engine is Atomic's, with a DDL log)`,
      );
    }
    let end = engineName!.end;
    if (tokens[nameAt + 1]?.text === '(') {
      const close = tokens.findIndex((token, index) => index > nameAt + 1 && token.text === ')' && token.depth === 0);
      end = tokens[close]!.end;
    }
    edits.push({ start: tokens[engine]!.start, end, text: replicated });
  }
  return applyEdits(sql, edits);
}

/** Every `ENGINE = <MergeTree family>` clause of a CREATE statement, as its Replicated counterpart. */
function replicatedTableEngines(sql: string, tokens: Token[]): string {
  const edits: Edit[] = [];
  tokens.forEach((token, index) => {
    if (token.depth !== 0 || !isWord(token, 'ENGINE')) return;
    let nameAt = index + 1;
    if (tokens[nameAt]?.text === '=') nameAt++;
    const engine = tokens[nameAt];
    if (engine?.kind !== 'word') return;
    if (engine.text === 'GraphiteMergeTree') {
      throw new ReplicatedFormError(
        "GraphiteMergeTree: its first argument (the rollup section) would be taken for the replica's path; write the Replicated form's arguments in a migration of their own",
      );
    }
    if (!(MERGE_TREE_ENGINES as readonly string[]).includes(engine.text)) return;
    const first = tokens[nameAt + 1]?.text === '(' ? tokens[nameAt + 2] : undefined;
    if (first?.kind === 'string') {
      throw new ReplicatedFormError(`${engine.text} with a string as its first argument (${first.text}): the Replicated form would read it as the table's path in Keeper`);
    }
    edits.push({ start: engine.start, end: engine.end, text: `Replicated${engine.text}` });
  });
  return applyEdits(sql, edits);
}

export interface ReplicatedFormOptions {
  /** The cluster of every member (`remote_servers`), which `CREATE DATABASE` runs ON. */
  cluster: string;
  /** Where a Replicated database keeps its log in Keeper. */
  databasePath: (database: string) => string;
}

/**
 * The statement the bootstrap sends to a replicated server for `sql` (one statement, as the runner
 * splits an asset): a database as a Replicated one on every member, MergeTree-family engines as
 * their Replicated counterparts, anything else as written.
 */
export function replicatedStatement(sql: string, options: ReplicatedFormOptions): string {
  const tokens = tokenize(sql);
  if (!isWord(tokens[0], 'CREATE', 'ATTACH')) return sql;
  if (isWord(tokens[1], 'DATABASE')) return replicatedDatabase(sql, tokens, options.cluster, options.databasePath);
  return replicatedTableEngines(sql, tokens);
}
