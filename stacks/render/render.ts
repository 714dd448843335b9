/**
 * Renders a stack offline: evaluates the Pulumi program under Pulumi's mocks (no CLI, Docker
 * engine or cluster) and writes what it would deploy, like `helm template`, with every secret
 * value replaced by {@link REDACTED}:
 *   <out>/<stack>/kubernetes/<engine>.yaml   one multi-document file per engine (+ namespace.yaml)
 *   <out>/<stack>/docker/<engine>.json       image, volume and container spec per engine (+ network.json)
 * The program is imported, so one process renders one stack.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { stringify } from 'yaml';
import { groupRendered, REDACTED } from './group.ts';
import { createRecordingMocks, settled, type RecordedResource } from './mocks.ts';
import { readStackFile } from './stack-file.ts';

export { REDACTED };

export interface RenderResult {
  target: 'docker' | 'kubernetes';
  /** The folder the files were written to. */
  directory: string;
  files: string[];
  resources: RecordedResource[];
  /** Passwords the mocks generated; none of them may appear in the files. */
  generatedSecrets: string[];
}

export async function renderStack(root: string, stack: string, out: string): Promise<RenderResult> {
  const stackFile = readStackFile(root, stack);
  const recorder = createRecordingMocks();
  pulumi.runtime.setMocks(recorder.mocks, stackFile.project, stackFile.stack, false);
  pulumi.runtime.setAllConfig(stackFile.config, stackFile.secretKeys);
  await import(join(root, 'index.ts'));
  await settled(recorder.resources);

  const { target, files } = groupRendered(recorder.resources);
  const directory = join(resolve(out), stackFile.stack, target);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  for (const [file, documents] of Object.entries(files)) {
    const text =
      target === 'kubernetes'
        ? documents.map((document) => stringify(document, { lineWidth: 0 })).join('---\n')
        : `${JSON.stringify(documents.length === 1 ? documents[0] : documents, null, 2)}\n`;
    writeFileSync(join(directory, file), text);
  }
  return { target, directory, files: Object.keys(files).sort(), resources: recorder.resources, generatedSecrets: recorder.generatedSecrets };
}
