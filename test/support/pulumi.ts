/**
 * Runs the Pulumi program under mocks with a given config and returns what it registered, in the
 * style of pulumi/examples `testing-unit-ts`: mocks in their own module, a small `unwrap`.
 */
import * as pulumi from '@pulumi/pulumi';
import type { EngineModule } from '../../databases/engine.ts';
import { ENGINE_MODULES } from '../../databases/index.ts';
import { namespaceConfig, parseStackConfig, type StackConfig } from '../../stacks/config/index.ts';
import { deployDatabases, type DatabaseOutputs } from '../../stacks/program.ts';
import { createRecordingMocks, settled, type MockOptions, type RecordedResource } from '../../stacks/render/mocks.ts';
import { readStackFile } from '../../stacks/render/stack-file.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;

export interface Evaluation {
  config: StackConfig;
  resources: RecordedResource[];
  generatedSecrets: string[];
  outputs: DatabaseOutputs;
  /** Resource name -> the options it was registered with (protect, retainOnDelete, ...). */
  options: Map<string, pulumi.CustomResourceOptions>;
}

/** The value of an output, whether or not it is secret. */
export function unwrap<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

/**
 * Evaluates the program for `values` (namespace keys without the `allixios:` prefix), with the
 * platform's engines or another list (`modules`: a test's sixth engine).
 */
export async function evaluate(
  values: Record<string, unknown>,
  stack = 'test',
  mockOptions: MockOptions = {},
  modules: readonly EngineModule[] = ENGINE_MODULES,
): Promise<Evaluation> {
  const recorder = createRecordingMocks(mockOptions);
  pulumi.runtime.setMocks(recorder.mocks, 'allixios', stack, false);
  const config = parseStackConfig(values, 'allixios', stack, modules);
  const options = new Map<string, pulumi.CustomResourceOptions>();
  const outputs = deployDatabases(config, 'allixios', {
    transformations: [
      (args) => {
        options.set(args.name, args.opts);
        return undefined;
      },
    ],
  });
  await settled(recorder.resources);
  return { config, resources: recorder.resources, generatedSecrets: recorder.generatedSecrets, outputs, options };
}

/** A stack's config as a test edits it (nested objects of any shape). */
type EditableConfig = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the stack's config, edited by a test

/**
 * Evaluates one of the repository's stacks from its `Pulumi.<stack>.yaml`; `change` edits that
 * config first (a setting the file does not have yet).
 */
export function evaluateStack(stack: string, change: (config: EditableConfig) => void = () => {}): Promise<Evaluation> {
  const config = namespaceConfig(readStackFile(ROOT, stack).config);
  change(config);
  return evaluate(config, stack);
}

export function ofType(evaluation: Evaluation, type: string): RecordedResource[] {
  return evaluation.resources.filter((resource) => resource.type === type);
}
