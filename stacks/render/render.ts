/**
 * Renders a stack offline: evaluates the Pulumi program under Pulumi's mocks (no CLI, Docker
 * engine or cluster) and writes what it would deploy, like `helm template`, with every secret
 * value replaced by {@link REDACTED}:
 *   <out>/<stack>/kubernetes/<engine>.yaml   one multi-document file per engine (+ namespace.yaml, bootstrap.yaml)
 *   <out>/<stack>/docker/<engine>.json       container, image and volume per engine (+ network.json, bootstrap.json)
 *   <out>/<stack>/diagram.md                 a Mermaid picture of the above (see `diagram.ts`)
 * Documents are written for review: what an object is before what it holds (`order.ts`), a
 * comment where a setting would surprise (`comments.ts`), and the same bytes on every run.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as pulumi from '@pulumi/pulumi';
import { Document } from 'yaml';
import { addComments } from './comments.ts';
import { renderDiagram } from './diagram.ts';
import { groupRendered, REDACTED } from './group.ts';
import { createRecordingMocks, settled, type RecordedResource } from './mocks.ts';
import { readStackFile } from './stack-file.ts';

export { REDACTED };

/** The diagram's file, in `<out>/<stack>/`. */
export const DIAGRAM_FILE = 'diagram.md';

export interface RenderResult {
  target: 'docker' | 'kubernetes';
  /** The folder the manifests were written to. */
  directory: string;
  /** The manifests' file names in {@link directory}. */
  files: string[];
  /** Path of the diagram, beside {@link directory}. */
  diagram: string;
  resources: RecordedResource[];
  /** Passwords the mocks generated; none of them may appear in the files. */
  generatedSecrets: string[];
}

/** What a render writes, as text: manifest file name -> content, and the diagram. */
export interface RenderedText {
  target: 'docker' | 'kubernetes';
  files: Record<string, string>;
  diagram: string;
}

/** Turns recorded resources into the render's files; pure, so a test can render an evaluation of its own. */
export function renderText(stack: string, resources: readonly RecordedResource[]): RenderedText {
  const rendered = groupRendered(resources);
  const files: Record<string, string> = {};
  for (const [file, documents] of Object.entries(rendered.files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    files[file] =
      rendered.target === 'kubernetes'
        ? documents
            .map((object) => {
              const document = new Document(object);
              addComments(document);
              return document.toString({ lineWidth: 0 });
            })
            .join('---\n')
        : `${JSON.stringify(documents.length === 1 ? documents[0] : documents, null, 2)}\n`;
  }
  return { target: rendered.target, files, diagram: renderDiagram(stack, rendered) };
}

/** Renders so far in this process: each evaluates the program anew. */
let renders = 0;

export async function renderStack(root: string, stack: string, out: string): Promise<RenderResult> {
  const stackFile = readStackFile(root, stack);
  const recorder = createRecordingMocks();
  await pulumi.runtime.setMocks(recorder.mocks, stackFile.project, stackFile.stack, false);
  recorder.recordSerializedInputs(pulumi.runtime.getMonitor());
  pulumi.runtime.setAllConfig(stackFile.config, stackFile.secretKeys);
  // The program registers its resources when its module is evaluated: a query of its own per
  // render evaluates it again, so one process (a test) can render several times.
  await import(`${pathToFileURL(join(root, 'index.ts')).href}?render=${++renders}`);
  await settled(recorder.resources);
  if (recorder.resources.length === 0) throw new Error(`the program registered no resources for stack ${stackFile.stack}`);

  const { target, files, diagram } = renderText(stackFile.stack, recorder.resources);
  const stackDirectory = join(resolve(out), stackFile.stack);
  const directory = join(stackDirectory, target);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(directory, file), text);
  const diagramPath = join(stackDirectory, DIAGRAM_FILE);
  writeFileSync(diagramPath, diagram);
  return { target, directory, files: Object.keys(files), diagram: diagramPath, resources: recorder.resources, generatedSecrets: recorder.generatedSecrets };
}
