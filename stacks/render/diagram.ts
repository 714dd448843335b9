/**
 * A picture of what a stack deploys, drawn from the rendered resources themselves: a Mermaid
 * `flowchart` (GitHub shows it in a .md file) and the same connections as a table, so a pull
 * request shows what changes in who may reach what. What is drawn for each target:
 * `diagram-kubernetes.ts`, `diagram-docker.ts`.
 */
import { dockerGraph } from './diagram-docker.ts';
import { kubernetesGraph } from './diagram-kubernetes.ts';
import { compare } from './flowchart.ts';
import type { RenderedFiles } from './group.ts';

function tableCell(text: string): string {
  return text.replaceAll('|', '\\|');
}

/** `diagram.md`: a title, the flowchart, a legend and the table of who may reach what. */
export function renderDiagram(stack: string, rendered: RenderedFiles): string {
  const graph = rendered.target === 'kubernetes' ? kubernetesGraph(rendered.files) : dockerGraph(rendered.files);
  const legend =
    rendered.target === 'kubernetes'
      ? 'Solid arrows: a NetworkPolicy admits the source on these ports. Dotted arrows: a container connects to a Service (its URL variables). Plain lines: a Service selects the pods. Dashed boxes: pods or sources outside this render.'
      : 'Thick arrows: a port published on the host. Dotted arrows: a container that runs once reaches an engine on their network. Dashed box: outside Docker.';
  // By target, then in the order of the rule's sources (a stable sort).
  const rows = [...graph.connections].sort((a, b) => compare(a.to, b.to) || compare(a.why, b.why));
  return [
    `# What the ${stack} stack deploys (${rendered.target})`,
    '',
    'Drawn by `npm run render` from the rendered resources beside this file; do not edit.',
    '',
    '```mermaid',
    ...graph.mermaid(),
    '```',
    '',
    legend,
    '',
    '| source | reaches | ports | why |',
    '|---|---|---|---|',
    ...rows.map((row) => `| ${tableCell(row.from)} | ${tableCell(row.to)} | ${tableCell(row.ports)} | ${tableCell(row.why)} |`),
    '',
  ].join('\n');
}
