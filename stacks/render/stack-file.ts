/**
 * Reads `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the Pulumi CLI hands config to a program:
 * one string per key, objects as JSON text. Encrypted (`secure:`) values cannot be decrypted
 * without the CLI; they are replaced by a fixed stand-in and marked secret.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const SECURE_STAND_IN = 'encrypted-value-not-decrypted-offline';

export interface StackFile {
  project: string;
  stack: string;
  /** `project:key` -> value, as `pulumi.runtime.allConfig()` returns it. */
  config: Record<string, string>;
  /** Keys whose value is secret. */
  secretKeys: string[];
}

/** Stacks that have a `Pulumi.<stack>.yaml` in `root`. */
export function stackNames(root: string): string[] {
  return readdirSync(root)
    .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
    .filter((name): name is string => name !== undefined)
    .sort();
}

function replaceSecure(value: unknown, onSecure: () => void): unknown {
  if (Array.isArray(value)) return value.map((item) => replaceSecure(item, onSecure));
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (Object.keys(record).length === 1 && typeof record.secure === 'string') {
      onSecure();
      return SECURE_STAND_IN;
    }
    return Object.fromEntries(Object.entries(record).map(([key, inner]) => [key, replaceSecure(inner, onSecure)]));
  }
  return value;
}

export function readStackFile(root: string, stack: string): StackFile {
  const projectFile = join(root, 'Pulumi.yaml');
  const project = (parse(readFileSync(projectFile, 'utf8')) as { name?: unknown }).name;
  if (typeof project !== 'string') throw new Error(`${projectFile}: expected a project name under "name"`);

  const stackFile = join(root, `Pulumi.${stack}.yaml`);
  if (!existsSync(stackFile)) {
    throw new Error(`no stack file ${stackFile}; stacks with a file here: ${stackNames(root).join(', ')}`);
  }
  const document = (parse(readFileSync(stackFile, 'utf8')) ?? {}) as { config?: Record<string, unknown> };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [key, raw] of Object.entries(document.config ?? {})) {
    let secret = false;
    const value = replaceSecure(raw, () => (secret = true));
    config[key] = typeof value === 'string' ? value : JSON.stringify(value);
    if (secret) secretKeys.push(key);
  }
  return { project, stack, config, secretKeys };
}
