/**
 * Every relative link in the repository's Markdown resolves on GitHub: `[text](path)` to a file
 * or folder that exists, `[text](path#anchor)` and `[text](#anchor)` to a heading of that file
 * (GitHub's anchors: lower case, punctuation dropped but `-` and `_`, spaces as `-`). And every
 * section named in prose or a comment (`README "Rotating a password"`, the stack files'
 * `docs/ci.md, "The bootstrap image"`) is a heading of the file it names. bench/results/ holds
 * generated reports and is not checked.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorsOf, brokenLink, brokenSectionReference, githubSlug, relativeLinks, sectionReferences } from './support/markdown.ts';

const ROOT = join(import.meta.dirname, '..');
const EXCLUDED = /^(node_modules|bench\/results)\/|(^|\/)node_modules\//;
/** Files whose fixtures name sections and links that do not exist on purpose. */
const CHECKER = ['test/markdown-links.test.ts', 'test/support/markdown.ts'];
/** Text files that may name a section: sources, SQL, scripts, configs, docs. */
const TEXT = /\.(md|ts|js|mjs|cjs|sql|sh|ya?ml|conf|xml)$|^\.ci\/run$/;

/** The repository's files, committed or new, without the ignored ones; a walk where git is missing. */
function repositoryFiles(): string[] {
  try {
    const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return [...new Set(listed.split('\0').filter(Boolean))].filter((file) => statSync(join(ROOT, file), { throwIfNoEntry: false })?.isFile());
  } catch {
    const walk = (directory: string): string[] =>
      readdirSync(join(ROOT, directory), { withFileTypes: true }).flatMap((entry) => {
        const path = directory ? `${directory}/${entry.name}` : entry.name;
        if (entry.isDirectory()) return ['.git', 'node_modules', 'out', 'render'].includes(entry.name) ? [] : walk(path);
        return [path];
      });
    return walk('');
  }
}

const files = repositoryFiles().filter((file) => !EXCLUDED.test(file));
const markdownFiles = files.filter((file) => file.endsWith('.md')).sort();

describe('links in the Markdown files', () => {
  it('finds the Markdown files: the README, the docs and every engine README', () => {
    expect(markdownFiles).toEqual(expect.arrayContaining(['README.md', 'docs/ci.md', 'docs/benchmark.md', 'bootstrap/README.md', 'databases/postgresql/README.md']));
    expect(markdownFiles.filter((file) => file.startsWith('bench/results/'))).toEqual([]);
  });

  it.each(markdownFiles)('%s: every relative link names a file that exists, and every anchor a heading of it', (file) => {
    const broken = relativeLinks(readFileSync(join(ROOT, file), 'utf8')).flatMap(({ line, target }) => {
      const why = brokenLink(ROOT, file, target);
      return why ? [`${file}:${line}: ${why}`] : [];
    });
    expect(broken).toEqual([]);
  });

  it('every section a file names in prose or a comment (README "...", <file>.md, "...") is a heading of that file', () => {
    const named = files.filter((file) => TEXT.test(file) && !CHECKER.includes(file));
    const broken = named.flatMap((file) =>
      sectionReferences(readFileSync(join(ROOT, file), 'utf8')).flatMap((reference) => {
        const why = brokenSectionReference(ROOT, file, reference);
        return why ? [`${file}:${reference.line}: ${why}`] : [];
      }),
    );
    expect(broken).toEqual([]);
  });

  it("the stack files' comments point at sections that exist", () => {
    const stackFiles = files.filter((file) => /^Pulumi\.[\w-]+\.yaml$/.test(file));
    expect(stackFiles.length).toBeGreaterThan(0);
    const references = stackFiles.flatMap((file) => sectionReferences(readFileSync(join(ROOT, file), 'utf8')).map((reference) => ({ file, reference })));
    // Kubernetes stacks say where their bootstrap image comes from.
    expect(references.length).toBeGreaterThan(0);
    for (const { file, reference } of references) expect(brokenSectionReference(ROOT, file, reference), `${file}:${reference.line}`).toBeUndefined();
  });
});

describe('the link checker', () => {
  // A repository with a README and docs/guide.md
  const scratch = mkdtempSync(join(tmpdir(), 'markdown-links-'));
  beforeAll(() => {
    mkdirSync(join(scratch, 'docs'), { recursive: true });
    writeFileSync(join(scratch, 'README.md'), '# Project\n\n## Set-up\n\n## Rotating a password\n');
    writeFileSync(join(scratch, 'docs', 'guide.md'), '# Guide\n');
    writeFileSync(join(scratch, 'docs', 'run.ts'), '');
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("computes GitHub's anchors", () => {
    expect(githubSlug('What pulumi up does, end to end')).toBe('what-pulumi-up-does-end-to-end');
    expect(githubSlug("Labels the platform's pods need")).toBe('labels-the-platforms-pods-need');
    expect(githubSlug('Testing without Docker, Kubernetes or the Pulumi CLI')).toBe('testing-without-docker-kubernetes-or-the-pulumi-cli');
    expect(githubSlug('vm.max_map_count')).toBe('vmmax_map_count');
    expect(githubSlug('Articles (articles → articles_v1)')).toBe('articles-articles--articles_v1');
  });

  it('reads headings as rendered: code spans, links and emphasis, numbered repeats, not lines in code blocks', () => {
    const anchors = anchorsOf(
      ['# Title', '## What `pulumi up` does', '## **Bold** [link](x.md)', '## Tests', '### Tests', '```sh', '# a comment, not a heading', '```', 'Setext', '------'].join('\n'),
    );
    expect([...anchors].sort()).toEqual(['bold-link', 'setext', 'tests', 'tests-1', 'title', 'what-pulumi-up-does']);
  });

  it('finds links and images but not absolute URLs, code spans, code blocks or comments', () => {
    const markdown = [
      '[a](docs/a.md) and ![b](img/b.png "title") and [c](https://example.com) [d](#local)',
      '`[e](not/a/link.md)` <!-- [f](hidden.md) -->',
      '```',
      '[g](in/code.md)',
      '```',
      '[ref]: docs/ref.md',
    ].join('\n');
    expect(relativeLinks(markdown)).toEqual([
      { line: 1, target: 'docs/a.md' },
      { line: 1, target: 'img/b.png' },
      { line: 1, target: '#local' },
      { line: 6, target: 'docs/ref.md' },
    ]);
  });

  it('reports a missing file, a missing anchor and a link out of the repository, and accepts what exists', () => {
    expect(brokenLink(scratch, 'docs/guide.md', '../README.md#set-up')).toBeUndefined();
    expect(brokenLink(scratch, 'docs/guide.md', '/README.md#project')).toBeUndefined();
    expect(brokenLink(scratch, 'docs/guide.md', 'run.ts#L3')).toBeUndefined();
    expect(brokenLink(scratch, 'docs/guide.md', '#guide')).toBeUndefined();
    expect(brokenLink(scratch, 'docs/guide.md', '../docs')).toBeUndefined();
    expect(brokenLink(scratch, 'docs/guide.md', 'missing.md')).toBe('missing.md: no file docs/missing.md');
    expect(brokenLink(scratch, 'docs/guide.md', '../README.md#setup')).toBe('../README.md#setup: README.md has no heading whose anchor is #setup');
    expect(brokenLink(scratch, 'docs/guide.md', '../../outside.md')).toBe('../../outside.md: outside the repository');
    expect(brokenLink(scratch, 'README.md', '#guide')).toBe('#guide: README.md has no heading whose anchor is #guide');
  });

  it('reads section references, also wrapped over comment lines, and reports one without its heading', () => {
    // Given a stack file's comment, a source comment wrapped over two lines, and a SQL comment
    const text = ['# pinned (README: "Set-up"); see docs/guide.md, "Guide"', ' * in a comment (README "Rotating a', ' * password") and', '-- ../README.md ("Nowhere")'].join('\n');
    // When they are read
    const references = sectionReferences(text);
    // Then each names its file and section, and only the missing heading is reported
    expect(references.map(({ line, file, section }) => `${line} ${file} ${section}`)).toEqual([
      '1 README Set-up',
      '1 docs/guide.md Guide',
      '2 README Rotating a password',
      '4 ../README.md Nowhere',
    ]);
    expect(references.slice(0, 3).map((reference) => brokenSectionReference(scratch, 'Pulumi.dev.yaml', reference))).toEqual([undefined, undefined, undefined]);
    expect(brokenSectionReference(scratch, 'docs/x.sql', references[3]!)).toBe('../README.md "Nowhere": README.md has no such heading');
    expect(brokenSectionReference(scratch, 'x.ts', { line: 1, file: 'README', section: 'The deploy workflow' })).toBe(
      'README "The deploy workflow": README.md has no such heading',
    );
    expect(brokenSectionReference(scratch, 'x.ts', { line: 1, file: 'docs/none.md', section: 'Guide' })).toBe('docs/none.md "Guide": no file docs/none.md or docs/none.md');
  });
});
