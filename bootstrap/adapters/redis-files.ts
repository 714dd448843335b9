/**
 * Redis's desired state, read from the two files the engine loads at start: `config/redis.conf`
 * (the compared directives, in the form CONFIG GET returns them) and `config/users.acl` (the ACL
 * users, from the template or from the rendering the stack deployed), and what makes an engine
 * Redis-compatible: its module and where those files are ({@link RedisCompatible}). Apart from
 * the planner (`redis-plan.ts`): this is parsing, with file reads and errors naming file and
 * line; the planner only compares plain data.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { EngineModule, EngineName } from '../../databases/engine.ts';
import { redis, USERS_ACL_VARIABLE } from '../../databases/redis/index.ts';
import { BootstrapError, toError } from '../errors.ts';
import { displayRoot } from '../paths.ts';

/** Redis's configuration, in its folder: what the engine loads at start. */
export const CONFIG_SOURCE = 'config/redis.conf';
/** Redis's ACL users, in its folder: a template whose password digests the stack fills in. */
export const ACL_SOURCE = 'config/users.acl';

/**
 * An engine bootstrapped as Redis is: its module (name, folder, URL variable, secrets), its two
 * files in that folder, and the variable its rendered users.acl reaches the bootstrap in.
 */
export interface RedisCompatible {
  module: Pick<EngineModule, 'name' | 'directory' | 'urlVariable' | 'secrets'>;
  /** Relative to the engine's folder. */
  files: { config: string; acl: string };
  usersAclVariable: string;
}

/** Redis itself. */
export const REDIS: RedisCompatible = { module: redis, files: { config: CONFIG_SOURCE, acl: ACL_SOURCE }, usersAclVariable: USERS_ACL_VARIABLE };

/**
 * How a directive's value is written and how CONFIG GET returns it. The file's value is brought
 * to CONFIG GET's form before comparing: booleans as yes/no, enums in lower case, sizes in bytes
 * (`64mb` -> 67108864), `save` as all its lines' pairs on one line.
 */
type ValueKind = 'bool' | 'enum' | 'int' | 'bytes' | 'save';

/**
 * Directives compared with CONFIG GET and repaired with CONFIG SET. A directive of redis.conf
 * must be here or in {@link NOT_COMPARED}; an unclassified one stops the bootstrap, so a new line
 * in redis.conf is a decision, not a silent gap.
 */
const COMPARED: Readonly<Record<string, ValueKind>> = {
  'protected-mode': 'bool',
  timeout: 'int',
  'tcp-keepalive': 'int',
  maxclients: 'int',
  'acllog-max-len': 'int',
  'acl-pubsub-default': 'enum',
  'maxmemory-policy': 'enum',
  'maxmemory-samples': 'int',
  'maxmemory-eviction-tenacity': 'int',
  'lazyfree-lazy-eviction': 'bool',
  'lazyfree-lazy-expire': 'bool',
  'lazyfree-lazy-server-del': 'bool',
  'lazyfree-lazy-user-del': 'bool',
  'lazyfree-lazy-user-flush': 'bool',
  'active-expire-effort': 'int',
  hz: 'int',
  'dynamic-hz': 'bool',
  appendonly: 'bool',
  appendfsync: 'enum',
  'aof-use-rdb-preamble': 'bool',
  'no-appendfsync-on-rewrite': 'bool',
  'auto-aof-rewrite-percentage': 'int',
  'auto-aof-rewrite-min-size': 'bytes',
  save: 'save',
  'stop-writes-on-bgsave-error': 'bool',
  rdbcompression: 'bool',
  rdbchecksum: 'bool',
  loglevel: 'enum',
  'slowlog-log-slower-than': 'int',
  'slowlog-max-len': 'int',
  'latency-monitor-threshold': 'int',
  'client-query-buffer-limit': 'bytes',
  'proto-max-bulk-len': 'bytes',
};

/** Directives the bootstrap leaves alone, and why. */
const NOT_COMPARED: Readonly<Record<string, string>> = {
  // Where the server listens belongs to the deployment: the targets and the tests pass their own,
  // and changing it at run time could cut off the bootstrap's own connection.
  bind: 'the deployment decides where the server listens (targets and tests override it)',
  port: 'the deployment decides where the server listens (targets and tests override it)',
  // Paths of the mounted files and data: immutable at run time, and differ outside a container.
  aclfile: 'the path of the mounted ACL file (immutable); the users it defines are compared instead',
  dir: 'the data directory, passed by index.ts (protected config)',
  dbfilename: 'a file name inside dir; a protected config that enable-protected-configs no keeps from being set at run time',
  appendfilename: 'a file name inside dir; immutable at run time',
  appenddirname: 'a folder name inside dir; immutable at run time',
  logfile: 'where the log goes (stdout in a container); immutable at run time',
  // Process supervision, by the container runtime: immutable at run time.
  daemonize: 'process supervision by the container runtime; immutable at run time',
  supervised: 'process supervision by the container runtime; immutable at run time',
  // Immutable: CONFIG SET refuses them, so a difference could only be reported, and a refusal
  // would block repairs the bootstrap can make (an intruding ACL user). They can only differ when
  // the engine was started with another file, which a redeploy fixes; test/engines/redis-config.test.ts
  // checks them on a server started from this file.
  'enable-debug-command': 'immutable at run time; checked by test/engines/redis-config.test.ts',
  'enable-module-command': 'immutable at run time; checked by test/engines/redis-config.test.ts',
  'enable-protected-configs': 'immutable at run time; checked by test/engines/redis-config.test.ts',
  // Not a redis.conf line today (index.ts passes --maxmemory from the container's memory limit,
  // which the bootstrap does not know); listed so that moving it into the file is a decision.
  maxmemory: 'set by index.ts from the container memory limit, which the bootstrap does not know',
  // TLS: not redis.conf lines either (index.ts passes them as arguments on a TLS stack only, see
  // its tlsArgs), listed so that moving one into a file is a decision. Whether the engine serves
  // TLS is the stack's choice (allixios:tls), which the bootstrap does not know; the paths are the
  // mounted certificate's; and CONFIG SET of a file reloads the certificate, which is the renewal
  // command's job (databases/redis/index.ts, TLS_RELOAD_COMMAND), not a repair's.
  'tls-port': "the stack's choice (allixios:tls), passed by index.ts; changing it could cut off the bootstrap",
  'tls-cert-file': 'the path of the mounted certificate; setting it reloads the certificate (the renewal command does)',
  'tls-key-file': 'the path of the mounted key; setting it reloads the certificate (the renewal command does)',
  'tls-ca-cert-file': 'the path of the mounted CA; setting it reloads the certificate (the renewal command does)',
  'tls-auth-clients': "the stack's TLS settings, passed by index.ts (passwords authenticate clients)",
  'tls-replication': "the stack's TLS settings, passed by index.ts",
  'tls-protocols': "the stack's TLS settings, passed by index.ts",
};

export type PasswordState = 'set' | 'none' | 'nopass';

export interface DesiredAclUser {
  name: string;
  /** Line of its `user` entry in users.acl (1-based). */
  line: number;
  enabled: boolean;
  /** `set`: the file gives it a password (provisioning's, never the bootstrap's). */
  password: PasswordState;
  /**
   * The SHA-256 digests of its passwords, sorted, when the file read is the rendered one
   * (REDIS_USERS_ACL); undefined when only the template is known, whose placeholders hide them.
   */
  passwordHashes?: string[];
  /** Its permission rules in file order, without on/off and password tokens. */
  rules: string[];
}

export interface DesiredConfigValue {
  name: string;
  /** As CONFIG GET returns it. */
  value: string;
  /** Line of the directive in redis.conf (the first line, for `save`). */
  line: number;
}

export interface RedisDesired {
  /** The engine, and the variables its messages name. */
  engine: EngineName;
  urlVariable: string;
  usersAclVariable: string;
  users: DesiredAclUser[];
  config: DesiredConfigValue[];
  /**
   * How a user's channels start out when the engine loads users.acl: redis.conf's
   * `acl-pubsub-default` (Redis 7 defaults to resetchannels). Rules are normalised and applied on
   * top of it, so a user without a channel rule gets what it would get at the next restart.
   */
  channelsBase: 'resetchannels' | 'allchannels';
  /** The files, relative to the repository. */
  sources: { acl: string; config: string };
  /** The files, relative to the engine's folder, as details name them. */
  files: { acl: string; config: string };
  /** Whether the users come from the rendered ACL file (REDIS_USERS_ACL), passwords included. */
  passwordsKnown: boolean;
}

// ---------------------------------------------------------------------------------------------
// Reading the files
// ---------------------------------------------------------------------------------------------

/** A problem in one of the engine's files; the exported readers name the engine it belongs to. */
class FileProblem extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

function fail(source: string, line: number, message: string): never {
  throw new FileProblem(source, line, message);
}

/** Runs a reader of `engine`'s files, its problems as the engine's errors naming file and line. */
function reading<T>(engine: EngineName, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof FileProblem) throw new BootstrapError(engine, error.message, { location: { file: error.source, line: error.line } });
    throw error;
  }
}

/**
 * Splits a redis.conf line as Redis does (`sdssplitargs`): blanks separate arguments, double
 * quotes allow escapes (`\n`, `\"`, `\xHH`), single quotes allow `\'`.
 */
export function splitConfigLine(text: string, source: string, line: number): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    let current = '';
    const quote = text[i] === '"' || text[i] === "'" ? text[i] : undefined;
    if (quote) {
      i++;
      for (;;) {
        if (i >= text.length) fail(source, line, `unbalanced quotes: ${text}`);
        const char = text[i]!;
        if (char === '\\' && quote === '"' && i + 1 < text.length) {
          const next = text[i + 1]!;
          const hex = /^x([0-9a-fA-F]{2})/.exec(text.slice(i + 1));
          if (hex) {
            current += String.fromCharCode(parseInt(hex[1]!, 16));
            i += 4;
            continue;
          }
          current += ({ n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' } as Record<string, string>)[next] ?? next;
          i += 2;
        } else if (char === '\\' && quote === "'" && text[i + 1] === "'") {
          current += "'";
          i += 2;
        } else if (char === quote) {
          i++;
          if (i < text.length && !/\s/.test(text[i]!)) fail(source, line, `a closing quote must be followed by a blank: ${text}`);
          break;
        } else {
          current += char;
          i++;
        }
      }
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) current += text[i++];
    }
    args.push(current);
  }
  return args;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1e3, kb: 1024, m: 1e6, mb: 1024 ** 2, g: 1e9, gb: 1024 ** 3 };

function normaliseValue(kind: ValueKind, name: string, args: string[], source: string, line: number): string {
  if (kind === 'save') {
    if (args.length === 1 && args[0] === '') return '';
    if (args.length === 0 || args.length % 2 !== 0 || !args.every((arg) => /^\d+$/.test(arg))) {
      fail(source, line, `save expects pairs of <seconds> <changes>, got "${args.join(' ')}"`);
    }
    return args.map(Number).join(' ');
  }
  if (args.length !== 1) fail(source, line, `${name} expects one value, got ${args.length}: "${args.join(' ')}"`);
  const value = args[0]!;
  switch (kind) {
    case 'bool': {
      const lower = value.toLowerCase();
      if (lower !== 'yes' && lower !== 'no') fail(source, line, `${name} expects yes or no, got "${value}"`);
      return lower;
    }
    case 'enum':
      return value.toLowerCase();
    case 'int':
      if (!/^-?\d+$/.test(value)) fail(source, line, `${name} expects an integer, got "${value}"`);
      return String(Number(value));
    case 'bytes': {
      const match = /^(\d+)([a-z]*)$/i.exec(value);
      const unit = SIZE_UNITS[match?.[2]?.toLowerCase() ?? 'x'];
      if (!match || unit === undefined) fail(source, line, `${name} expects a size such as 1048576, 64mb or 1gb, got "${value}"`);
      return String(Number(match[1]) * unit);
    }
  }
}

/** The compared directives of a redis.conf, as CONFIG GET would return them, in file order. */
export function parseRedisConf(text: string, source: string, engine: EngineName = REDIS.module.name): DesiredConfigValue[] {
  return reading(engine, () => readRedisConf(text, source));
}

function readRedisConf(text: string, source: string): DesiredConfigValue[] {
  const values = new Map<string, DesiredConfigValue>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const [rawName, ...args] = splitConfigLine(trimmed, source, line);
    const name = rawName!.toLowerCase();
    if (name in NOT_COMPARED) return;
    const kind = COMPARED[name];
    if (!kind) {
      fail(
        source,
        line,
        `the bootstrap does not know whether ${name} can be compared and set at run time: add it to COMPARED or NOT_COMPARED in bootstrap/adapters/redis-files.ts`,
      );
    }
    const value = normaliseValue(kind, name, args, source, line);
    const previous = values.get(name);
    if (kind === 'save' && previous && previous.value !== '' && value !== '') {
      // Every save line of the file adds its pairs (the first one replaces Redis's defaults).
      values.set(name, { ...previous, value: `${previous.value} ${value}` });
    } else {
      // Any other directive given twice: the last line wins, as in Redis.
      values.delete(name);
      values.set(name, { name, value, line: previous && kind === 'save' ? previous.line : line });
    }
  });
  return [...values.values()];
}

/** Splits an ACL line on blanks, keeping a selector `( ... )` in one piece. */
function aclTokens(text: string, source: string, line: number): string[] {
  const tokens: string[] = [];
  let selector: string[] | undefined;
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (selector) {
      selector.push(word);
      if (word.endsWith(')')) {
        tokens.push(selector.join(' '));
        selector = undefined;
      }
    } else if (word.startsWith('(') && !word.endsWith(')')) {
      selector = [word];
    } else {
      tokens.push(word);
    }
  }
  if (selector) fail(source, line, `unbalanced selector: ${selector.join(' ')}`);
  return tokens;
}

/**
 * The users of an ACL file (or its template): each `user <name> <rules>` line, its rules without
 * on/off and password tokens (`#<hash>`, `>password`, `nopass`, `resetpass`), whether it is on,
 * and whether the file gives it a password. Removing one password (`<password`, `!<hash>`) is
 * refused: an ACL file has no earlier state to remove it from.
 */
export function parseUsersAcl(text: string, source: string, engine: EngineName = REDIS.module.name): DesiredAclUser[] {
  return reading(engine, () => readUsersAcl(text, source));
}

function readUsersAcl(text: string, source: string): DesiredAclUser[] {
  const users: DesiredAclUser[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    // A template's `{{ each-sha256 "<key>" "#" }}` stands for one password word or more (`#<digest>`) once rendered.
    const trimmed = raw.replace(/#?\{\{[^}]*\}\}/g, '#placeholder').trim();
    if (trimmed === '') return;
    const [keyword, name, ...tokens] = aclTokens(trimmed, source, line);
    // Redis 7 refuses anything else in an ACL file, comments included (README.md).
    if (keyword !== 'user' || !name) fail(source, line, `expected "user <name> <rules>", got a line starting with "${keyword}"`);
    if (users.some((user) => user.name === name)) fail(source, line, `user ${name} is defined twice`);
    let enabled = false;
    let password: PasswordState = 'none';
    let hashes: string[] | undefined = [];
    let rules: string[] = [];
    for (const token of tokens) {
      if (token === 'on' || token === 'off') enabled = token === 'on';
      else if (token.startsWith('#') || token.startsWith('>')) {
        password = 'set';
        if (token.startsWith('>')) hashes?.push(createHash('sha256').update(token.slice(1)).digest('hex'));
        else if (/^#[0-9a-f]{64}$/i.test(token)) hashes?.push(token.slice(1).toLowerCase());
        // A template's placeholder: the digest is not known here.
        else hashes = undefined;
      } else if (token.startsWith('<') || token.startsWith('!')) {
        // Removes one password: whether one is left depends on the others; the file never does this.
        fail(source, line, `user ${name}: removing a password (${token[0]}...) has no place in an ACL file`);
      } else if (token === 'nopass') {
        password = 'nopass';
        hashes = [];
      } else if (token === 'resetpass') {
        password = 'none';
        hashes = [];
      } else if (token === 'reset') {
        // Everything before it is undone, passwords included.
        enabled = false;
        password = 'none';
        hashes = [];
        rules = [];
      } else rules.push(token);
    }
    if (name === 'default' && (enabled || password === 'nopass')) {
      fail(source, line, 'user default must be off and have no password: nobody connects as the default user');
    }
    users.push({ name, line, enabled, password, rules, ...(hashes ? { passwordHashes: [...new Set(hashes)].sort() } : {}) });
  });
  return users;
}

/**
 * The desired state from the engine's folder (or `directory`, a folder a test gives). With
 * `renderedAcl` (REDIS_USERS_ACL: the users.acl the engine loaded, rendered from the template
 * with the stack's passwords) the users come from it, password digests included, after checking
 * that it renders this very template: same users, same rules, in the same order.
 */
export function readRedisDesired(renderedAcl?: string, engine: RedisCompatible = REDIS, directory: string = engine.module.directory): RedisDesired {
  const name = engine.module.name;
  const variable = engine.usersAclVariable;
  const root = displayRoot(directory);
  const read = (source: string) => {
    const path = join(directory, source);
    const shown = root === directory ? path : relative(root, path);
    try {
      return { text: readFileSync(path, 'utf8'), shown };
    } catch (error) {
      throw new BootstrapError(name, `cannot read ${shown}: ${toError(error).message}`, { cause: error });
    }
  };
  const config = read(engine.files.config);
  const acl = read(engine.files.acl);
  const values = parseRedisConf(config.text, config.shown, name);
  const pubsub = values.find((value) => value.name === 'acl-pubsub-default')?.value;
  const template = parseUsersAcl(acl.text, acl.shown, name);
  let users = template;
  if (renderedAcl !== undefined) {
    users = parseUsersAcl(renderedAcl, variable, name);
    const shape = (list: DesiredAclUser[]) => list.map((user) => `${user.name} ${user.enabled ? 'on' : 'off'} ${user.password} ${user.rules.join(' ')}`);
    const [expected, got] = [shape(template), shape(users)];
    const differing = expected.findIndex((line, index) => line !== got[index]);
    if (differing !== -1 || expected.length !== got.length) {
      const index = differing === -1 ? Math.min(expected.length, got.length) : differing;
      throw new BootstrapError(
        name,
        `${variable} is not a rendering of ${acl.shown}: its user ${index + 1} is "${got[index] ?? '(none)'}", the template's is "${expected[index] ?? '(none)'}" (passwords aside); deploy the stack that rendered it, or unset ${variable} to compare without passwords`,
      );
    }
    const unknown = users.find((user) => user.password === 'set' && user.passwordHashes === undefined);
    if (unknown) throw new BootstrapError(name, `${variable}: user ${unknown.name} has a password that is not a SHA-256 digest (#<64 hex digits>)`);
  }
  return {
    engine: name,
    urlVariable: engine.module.urlVariable,
    usersAclVariable: variable,
    users,
    config: values,
    channelsBase: pubsub === 'allchannels' ? 'allchannels' : 'resetchannels',
    sources: { acl: acl.shown, config: config.shown },
    files: { acl: engine.files.acl, config: engine.files.config },
    passwordsKnown: renderedAcl !== undefined,
  };
}
