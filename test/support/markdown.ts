/**
 * Reading Markdown as GitHub renders it, for the link test: which relative links a file has,
 * which anchors its headings get, and which sections other files name in prose (`README
 * "Rotating a password"`). Small on purpose: ATX and setext headings, fenced code and inline
 * code spans (whose contents are not links), inline links, images and reference definitions.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * GitHub's anchor for a heading's text (github-slugger): lower case, every character that is not
 * a letter, mark, digit, connector punctuation (`_`), `-` or a space dropped, each space a `-`.
 */
export function githubSlug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** A heading's text as rendered: code spans, links, images, emphasis and tags reduced to their text. */
function headingText(markdown: string): string {
  return markdown
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`+([^`]*?)`+/g, '$1')
    .replace(/\*+/g, '')
    .replace(/(^|[^\p{L}\p{N}])_+(\S(?:.*?\S)?)_+(?=[^\p{L}\p{N}]|$)/gu, '$1$2')
    .trim();
}

/** The lines of `markdown` with fenced code blocks blanked (so line numbers still count). */
export function withoutCodeBlocks(markdown: string): string[] {
  const lines = markdown.split('\n');
  let fence: { char: string; length: number } | undefined;
  return lines.map((line) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (marker && marker[1]![0] === fence.char && marker[1]!.length >= fence.length && /^ {0,3}[`~]+\s*$/.test(line)) fence = undefined;
      return '';
    }
    if (marker) {
      fence = { char: marker[1]![0]!, length: marker[1]!.length };
      return '';
    }
    return line;
  });
}

/** Every anchor a Markdown file offers: its headings' slugs (repeats numbered `-1`, `-2`) and HTML ids. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const add = (text: string) => {
    const slug = githubSlug(headingText(text));
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  };
  const lines = withoutCodeBlocks(markdown);
  lines.forEach((line, index) => {
    const atx = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (atx) return add(atx[1] ?? '');
    const previous = lines[index - 1];
    // A setext heading: a paragraph line underlined with = or - (not a table, list or rule).
    if (/^ {0,3}(=+|-+)[ \t]*$/.test(line) && previous && previous.trim() !== '' && !/^ {0,3}([|>#*+-]|\d+[.)])/.test(previous)) {
      add(previous);
    }
  });
  for (const match of markdown.matchAll(/<a\s[^>]*(?:id|name)="([^"]+)"/g)) anchors.add(match[1]!);
  return anchors;
}

export interface Link {
  line: number;
  target: string;
}

/** The links of a Markdown file that are not absolute URLs: `[text](target)`, images, `[id]: target`, `<a href>`. */
export function relativeLinks(markdown: string): Link[] {
  const links: Link[] = [];
  withoutCodeBlocks(markdown.replace(/<!--[\s\S]*?-->/g, (comment) => comment.replace(/[^\n]/g, ' '))).forEach((raw, index) => {
    const line = raw.replace(/(`+)(?:(?!\1)[\s\S])*?\1/g, (span) => ' '.repeat(span.length));
    const targets = [
      ...[...line.matchAll(/!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)].map((match) => match[1]!.replace(/^<|>$/g, '')),
      ...[...line.matchAll(/^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/g)].map((match) => match[1]!.replace(/^<|>$/g, '')),
      ...[...line.matchAll(/<(?:a|img)\s[^>]*(?:href|src)="([^"]*)"/g)].map((match) => match[1]!),
    ];
    for (const target of targets) {
      if (/^[a-z][a-z\d+.-]*:/i.test(target) || target.startsWith('//')) continue;
      links.push({ line: index + 1, target });
    }
  });
  return links;
}

const anchorCache = new Map<string, Set<string>>();
function anchorsOfFile(path: string): Set<string> {
  let anchors = anchorCache.get(path);
  if (!anchors) anchorCache.set(path, (anchors = anchorsOf(readFileSync(path, 'utf8'))));
  return anchors;
}

/** Why `target`, linked from `file` (a path in `root`), does not resolve on GitHub; undefined when it does. */
export function brokenLink(root: string, file: string, target: string): string | undefined {
  const hash = target.indexOf('#');
  const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const resolved = path === '' ? join(root, file) : path.startsWith('/') ? join(root, path) : resolve(root, dirname(file), path);
  const inRepository = relative(root, resolved);
  if (inRepository.startsWith('..') || inRepository.split(sep)[0] === '..') return `${target}: outside the repository`;
  if (!existsSync(resolved)) return `${target}: no file ${inRepository}`;
  if (anchor === undefined || anchor === '') return undefined;
  if (statSync(resolved).isDirectory()) return `${target}: an anchor on a directory`;
  if (!resolved.endsWith('.md')) return /^L\d+(-L\d+)?$/.test(anchor) ? undefined : `${target}: an anchor other than a line (#L12) in a file that is not Markdown`;
  if (!anchorsOfFile(resolved).has(anchor)) return `${target}: ${inRepository} has no heading whose anchor is #${anchor}`;
  return undefined;
}

export interface SectionReference {
  line: number;
  file: string;
  section: string;
}

/**
 * Sections named in prose or comments: `README "Rotating a password"`, `README: "..."`,
 * `databases/postgresql/README.md, "Threat model"`, `../README.md ("Threat model")`. A quote
 * wrapped over lines of a comment (`*`, `//`, `#`, `--`) is read as one line.
 */
export function sectionReferences(text: string): SectionReference[] {
  const references: SectionReference[] = [];
  const pattern = /(?<![\w/.-])((?:\.{1,2}\/|[\w.-]+\/)*[\w.-]+\.md|README)[,:]?[ \t]+\(?"([^"\n]*(?:\n[ \t]*(?:\*(?!\/)|\/\/|#|--)?[ \t]*[^"\n]*)?)"/g;
  for (const match of text.matchAll(pattern)) {
    references.push({
      line: text.slice(0, match.index).split('\n').length,
      file: match[1]!,
      section: match[2]!.replace(/\s*\n[ \t]*(?:\*(?!\/)|\/\/|#|--)?[ \t]*/g, ' '),
    });
  }
  return references;
}

/** Why a section reference from `file` names no heading; undefined when it does. `README` alone is the root's. */
export function brokenSectionReference(root: string, file: string, reference: SectionReference): string | undefined {
  const candidates = reference.file === 'README' ? ['README.md'] : [relative(root, resolve(root, dirname(file), reference.file)), relative(root, resolve(root, reference.file))];
  const target = candidates.find((candidate) => !candidate.startsWith('..') && existsSync(join(root, candidate)) && statSync(join(root, candidate)).isFile());
  const named = `${reference.file} "${reference.section}"`;
  if (!target) return `${named}: no file ${candidates.join(' or ')}`;
  if (!anchorsOfFile(join(root, target)).has(githubSlug(reference.section))) return `${named}: ${target} has no such heading`;
  return undefined;
}
