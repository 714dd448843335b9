/** Asset folders written for a test, to exercise the runner on files it controls. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Writes `files` (path relative to the engine folder -> content) into a fresh folder. */
export function assetFolder(files: Record<string, string>): string {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-assets-'));
  writeAssets(directory, files);
  return directory;
}

export function writeAssets(directory: string, files: Record<string, string>): void {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(directory, path)), { recursive: true });
    writeFileSync(join(directory, path), content);
  }
}
