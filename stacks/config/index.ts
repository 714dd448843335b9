/**
 * The stack configuration: one schema, validated before any resource is created. Every error
 * names the key, what was expected and what was given, and all errors are reported at once.
 *
 *   schema.ts    what each key accepts, built from the list of engines
 *   messages.ts  schema issues as sentences
 *   resolve.ts   defaults applied, cross-key checks, the engines described for the stack
 */
import { ENGINE_MODULES } from '../../databases/index.ts';
import { ENVIRONMENTS, type EngineModule } from '../../databases/engine.ts';
import { CONFIG_NAMESPACE, ConfigError, describeIssues, keyName, oneOf } from './messages.ts';
import { resolveStackConfig, type StackConfig } from './resolve.ts';
import { stackSchema } from './schema.ts';

export { CONFIG_NAMESPACE, ConfigError } from './messages.ts';
export { ISSUER_KINDS, PREVIOUS_PASSWORD_STATES, SERVICE_TYPES, TARGETS, type IssuerKind, type ServiceType } from './schema.ts';
export type { BootstrapSettings, IssuerSettings, PasswordSettings, PasswordSource, ResolvedEngine, StackConfig, TlsSettings } from './resolve.ts';

/**
 * Reads the namespace's keys from Pulumi's config map (`allixios:engines` -> JSON text). Values
 * that are not JSON stay strings, so `namespace: prod-db` needs no quoting.
 */
export function namespaceConfig(allConfig: Readonly<Record<string, string>>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [fullKey, text] of Object.entries(allConfig)) {
    const separator = fullKey.indexOf(':');
    if (fullKey.slice(0, separator) !== CONFIG_NAMESPACE) continue;
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // A plain string value.
    }
    result[fullKey.slice(separator + 1)] = value;
  }
  return result;
}

/**
 * Validates the stack's config and applies the defaults of its environment and engines.
 * Throws a {@link ConfigError} listing every problem; returns only a fully valid config.
 * `modules`: the engines the config may name (the platform's; a test adds a fixture engine).
 */
export function parseStackConfig(values: Readonly<Record<string, unknown>>, project: string, stack: string, modules: readonly EngineModule[] = ENGINE_MODULES): StackConfig {
  const schema = stackSchema(modules);
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error, values, schema);
    // A missing environment is the first thing a new stack gets wrong: say what to run.
    if (values.environment === undefined) {
      const index = problems.findIndex((problem) => problem.startsWith(`${keyName(['environment'])}:`));
      problems[index] = `${keyName(['environment'])}: required; expected ${oneOf(ENVIRONMENTS)} (pulumi config set ${keyName(['environment'])} <name>)`;
    }
    throw new ConfigError(problems);
  }
  return resolveStackConfig(parsed.data, values, project, stack, modules);
}
