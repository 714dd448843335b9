/**
 * A Mermaid `flowchart` built node by node and edge by edge, written in a stable order (ids,
 * then edge kind and ends), with the table of connections that goes under it in `diagram.md`.
 */

/** One node of the flowchart. */
export interface DiagramNode {
  id: string;
  /** Lines of its label, plain text. */
  lines: string[];
  shape: 'box' | 'cylinder' | 'stadium' | 'subroutine' | 'external';
  /** Subgraph path, outermost first: [namespace, file]. */
  groups: Group[];
}

export interface Group {
  id: string;
  title: string;
}

export type EdgeKind = 'policy' | 'selects' | 'connects' | 'publishes';

export interface DiagramEdge {
  from: string;
  to: string;
  kind: EdgeKind;
  label?: string;
}

/** A row of the table under the picture. */
export interface Connection {
  from: string;
  to: string;
  ports: string;
  why: string;
}

const ARROWS: Readonly<Record<EdgeKind, string>> = { policy: '-->', connects: '-.->', selects: '---', publishes: '==>' };

/** Turns a name into a flowchart id: letters, digits and `_`, behind a prefix (so never a keyword such as `end`). */
export function idOf(prefix: string, ...parts: readonly string[]): string {
  return `${prefix}_${parts.join('_').replace(/[^A-Za-z0-9]+/g, '_')}`;
}

/** Label text Mermaid shows as it is: its quotes and angle brackets as entities. */
function escapeLabel(text: string): string {
  return text.replaceAll('&', '#amp;').replaceAll('"', '#quot;').replaceAll('<', '#lt;').replaceAll('>', '#gt;');
}

export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class Graph {
  readonly nodes = new Map<string, DiagramNode>();
  readonly edges: DiagramEdge[] = [];
  readonly connections: Connection[] = [];

  node(node: DiagramNode): string {
    if (!this.nodes.has(node.id)) this.nodes.set(node.id, node);
    return node.id;
  }

  edge(edge: DiagramEdge): void {
    const key = (candidate: DiagramEdge) => `${candidate.from}\0${candidate.to}\0${candidate.kind}\0${candidate.label ?? ''}`;
    if (!this.edges.some((existing) => key(existing) === key(edge))) this.edges.push(edge);
  }

  /** The flowchart: subgraphs nested by their path, nodes and edges in a stable order. */
  mermaid(): string[] {
    const lines = ['flowchart LR'];
    const shapes: Record<DiagramNode['shape'], [string, string]> = {
      box: ['[', ']'],
      cylinder: ['[(', ')]'],
      stadium: ['([', '])'],
      subroutine: ['[[', ']]'],
      external: ['[', ']'],
    };
    const declare = (node: DiagramNode, indent: string) => {
      const [open, close] = shapes[node.shape];
      lines.push(`${indent}${node.id}${open}"${node.lines.map(escapeLabel).join('<br/>')}"${close}`);
    };
    const nodes = [...this.nodes.values()].sort((a, b) => compare(a.id, b.id));
    const emit = (depth: number, prefix: readonly string[], indent: string) => {
      const here = nodes.filter((node) => node.groups.length === depth && prefix.every((group, index) => node.groups[index]!.id === group));
      for (const node of here) declare(node, indent);
      const children = new Map<string, Group>();
      for (const node of nodes) {
        if (node.groups.length > depth && prefix.every((group, index) => node.groups[index]!.id === group)) children.set(node.groups[depth]!.id, node.groups[depth]!);
      }
      for (const group of [...children.values()].sort((a, b) => compare(a.id, b.id))) {
        lines.push(`${indent}subgraph ${group.id}["${escapeLabel(group.title)}"]`);
        emit(depth + 1, [...prefix, group.id], `${indent}  `);
        lines.push(`${indent}end`);
      }
    };
    emit(0, [], '  ');
    const edges = [...this.edges].sort((a, b) => compare(a.kind, b.kind) || compare(a.from, b.from) || compare(a.to, b.to) || compare(a.label ?? '', b.label ?? ''));
    for (const edge of edges) {
      const label = edge.label ? `|"${escapeLabel(edge.label)}"|` : '';
      lines.push(`  ${edge.from} ${ARROWS[edge.kind]}${label} ${edge.to}`);
    }
    const external = nodes.filter((node) => node.shape === 'external').map((node) => node.id);
    if (external.length > 0) {
      lines.push('  classDef external stroke-dasharray: 4 4');
      lines.push(`  class ${external.join(',')} external`);
    }
    return lines;
  }
}
