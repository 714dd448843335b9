/**
 * The sentences of config errors: each names the key (`allixios:engines.postgresql.replicas`),
 * what was expected and what was given. Password values are never echoed.
 */
import { z } from 'zod';

export const CONFIG_NAMESPACE = 'allixios';

/** Thrown for an invalid stack configuration; `problems` holds one sentence per problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid stack configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export const oneOf = (values: readonly string[]) => `one of ${values.join(', ')}`;

/** `allixios:engines.postgresql.replicas` from a path inside the config namespace. */
export function keyName(path: readonly PropertyKey[]): string {
  return `${CONFIG_NAMESPACE}:${path.map(String).join('.')}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const segment of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/** Whether a config path holds a password, whose value is never shown. */
function isPasswordPath(path: readonly PropertyKey[]): boolean {
  return path[0] === 'passwords' || (path[0] === 'rotations' && path[3] === 'previousPassword');
}

function describeValue(value: unknown, path: readonly PropertyKey[]): string {
  if (isPasswordPath(path)) {
    return typeof value === 'string' ? `a value of ${value.length} characters (not shown)` : `a ${typeof value} (not shown)`;
  }
  if (value === undefined) return 'nothing';
  return JSON.stringify(value);
}

/** The keys an object schema accepts at `path`, for "unknown key" messages. */
function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  for (const segment of [...path, null]) {
    while (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodPipe) {
      // A pipe (z.preprocess) validates with its output schema.
      current = (current instanceof z.ZodPipe ? current.def.out : current.def.innerType) as z.ZodType;
    }
    if (!(current instanceof z.ZodObject)) return [];
    if (segment === null) return Object.keys(current.shape);
    current = current.shape[String(segment)] as z.ZodType | undefined;
  }
  return [];
}

/**
 * What an issue expected. Schemas here carry their expectation as the message; for zod's own
 * default messages (engine option schemas may rely on them) it is derived from the issue.
 */
function expectation(issue: z.core.$ZodIssue): string {
  if (!/^(Invalid|Too (small|big))/.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_value':
      return oneOf(issue.values.map((value) => String(value)));
    case 'invalid_type':
      return `a value of type ${issue.expected}`;
    case 'too_small':
      return `${issue.origin === 'string' ? 'a length' : 'a value'} of at least ${String(issue.minimum)}`;
    case 'too_big':
      return `${issue.origin === 'string' ? 'a length' : 'a value'} of at most ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

/** Turns schema issues into sentences, relative to `prefix` (a path inside the namespace). */
export function describeIssues(error: z.ZodError, input: unknown, schema: z.ZodType, prefix: readonly PropertyKey[] = []): string[] {
  return error.issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, issue.path);
      return issue.keys.map((key) => `${keyName([...path, key])}: unknown key; expected ${known.length ? oneOf(known) : 'no keys here'}`);
    }
    const given = valueAt(input, issue.path);
    return [`${keyName(path)}: expected ${expectation(issue)}, got ${describeValue(given, path)}`];
  });
}
