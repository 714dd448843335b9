/**
 * A strict reader of the Mermaid `flowchart` subset the render writes (no Mermaid parser for
 * flowcharts is published apart from the whole `mermaid` package, which needs a browser DOM):
 * node declarations `id["label"]` in the shapes below, `subgraph id["title"]` ... `end`, edges
 * `a -->|"label"| b` (`-->`, `-.->`, `==>`, `---`), `classDef` and `class`. Anything else is an
 * error, as are an unbalanced `subgraph`, an id that is not a plain identifier or is a keyword,
 * a node declared twice, an edge to an undeclared node, and a raw quote in a label.
 */

export interface FlowchartNode {
  id: string;
  label: string;
  /** Subgraph titles around the node, outermost first. */
  groups: string[];
}

export interface FlowchartEdge {
  from: string;
  to: string;
  arrow: string;
  label?: string;
}

export interface Flowchart {
  direction: string;
  nodes: Map<string, FlowchartNode>;
  edges: FlowchartEdge[];
}

const ID = '[A-Za-z][A-Za-z0-9_]*';
const LABEL = '"([^"]*)"';
const KEYWORDS = new Set(['end', 'subgraph', 'graph', 'flowchart', 'style', 'class', 'classDef', 'click', 'linkStyle', 'default', 'direction']);
const SHAPES: ReadonlyArray<[string, string]> = [
  ['[(', ')]'],
  ['([', '])'],
  ['[[', ']]'],
  ['[', ']'],
];
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const NODE = new RegExp(`^(${ID})(?:${SHAPES.map(([open, close]) => `${escapeRegExp(open)}${LABEL}${escapeRegExp(close)}`).join('|')})$`);
const SUBGRAPH = new RegExp(`^subgraph (${ID})\\[${LABEL}\\]$`);
const EDGE = new RegExp(`^(${ID}) (-->|-\\.->|==>|---)(?:\\|${LABEL}\\|)? (${ID})$`);
const CLASS_DEF = new RegExp(`^classDef ${ID} [^;]+$`);
const CLASS = new RegExp(`^class (${ID}(?:,${ID})*) ${ID}$`);

/** Decodes the entities the render writes (`#quot;`, `#lt;`, `#gt;`, `#amp;`) and `<br/>`. */
function decode(label: string): string {
  return label.replaceAll('<br/>', '\n').replaceAll('#quot;', '"').replaceAll('#lt;', '<').replaceAll('#gt;', '>').replaceAll('#amp;', '&');
}

function checkId(id: string, line: number): void {
  if (KEYWORDS.has(id)) throw new Error(`line ${line}: ${id} is a Mermaid keyword, not an id`);
}

function checkLabel(label: string, line: number): void {
  if (/<(?!br\/>)/.test(label)) throw new Error(`line ${line}: a raw "<" in label ${label}`);
}

/** Parses `source` (the text inside a ```mermaid block); throws on the first problem, naming its line. */
export function parseFlowchart(source: string): Flowchart {
  const lines = source.split('\n');
  const header = /^flowchart (LR|RL|TB|TD|BT)$/.exec(lines[0]?.trim() ?? '');
  if (!header) throw new Error(`line 1: expected "flowchart <direction>", got ${JSON.stringify(lines[0])}`);
  const nodes = new Map<string, FlowchartNode>();
  const edges: FlowchartEdge[] = [];
  const groups: Array<{ id: string; title: string }> = [];
  const groupIds = new Set<string>();
  const classed: string[] = [];
  lines.slice(1).forEach((raw, index) => {
    const line = index + 2;
    const text = raw.trim();
    if (text === '' || text.startsWith('%%')) return;
    let match: RegExpExecArray | null;
    if (text === 'end') {
      if (!groups.pop()) throw new Error(`line ${line}: "end" without a subgraph`);
    } else if ((match = SUBGRAPH.exec(text))) {
      checkId(match[1]!, line);
      if (groupIds.has(match[1]!) || nodes.has(match[1]!)) throw new Error(`line ${line}: subgraph ${match[1]} declared twice`);
      checkLabel(match[2]!, line);
      groupIds.add(match[1]!);
      groups.push({ id: match[1]!, title: decode(match[2]!) });
    } else if ((match = EDGE.exec(text))) {
      const [, from, arrow, label, to] = match;
      for (const id of [from!, to!]) {
        checkId(id, line);
        if (!nodes.has(id)) throw new Error(`line ${line}: edge names ${id}, which is not declared before it`);
      }
      if (label !== undefined) checkLabel(label, line);
      edges.push({ from: from!, to: to!, arrow: arrow!, ...(label !== undefined ? { label: decode(label) } : {}) });
    } else if ((match = NODE.exec(text))) {
      const id = match[1]!;
      const label = match.slice(2).find((part) => part !== undefined)!;
      checkId(id, line);
      if (nodes.has(id) || groupIds.has(id)) throw new Error(`line ${line}: ${id} declared twice`);
      checkLabel(label, line);
      nodes.set(id, { id, label: decode(label), groups: groups.map((group) => group.title) });
    } else if (CLASS_DEF.test(text)) {
      // a style
    } else if ((match = CLASS.exec(text))) {
      classed.push(...match[1]!.split(','));
    } else {
      throw new Error(`line ${line}: not a statement of the flowchart subset: ${JSON.stringify(text)}`);
    }
  });
  if (groups.length > 0) throw new Error(`subgraph ${groups.at(-1)!.id} is never closed with "end"`);
  for (const id of classed) if (!nodes.has(id)) throw new Error(`class names ${id}, which is not a node`);
  return { direction: header[1]!, nodes, edges };
}

/** The flowchart in a Markdown file's first ```mermaid block. */
export function mermaidBlock(markdown: string): string {
  const block = /```mermaid\n([\s\S]*?)\n```/.exec(markdown);
  if (!block) throw new Error('no ```mermaid block');
  return block[1]!;
}
