/**
 * The README's pictures and tables say what the code deploys: its Mermaid blocks are flowcharts
 * GitHub renders, the Engines table names each engine's pinned image, URL variable and ports,
 * and the network picture ("Who may reach an engine") names the ports and labels the
 * NetworkPolicies of the prod stack admit, and the `pulumi up` flow the outputs it prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EngineName } from '../databases/engine.ts';
import { ENGINE_MODULES } from '../databases/index.ts';
import { BOOTSTRAP_POD_LABELS, clientLabel } from '../stacks/labels.ts';
import { describeWithDefaults } from './support/engines.ts';
import { githubSlug, withoutCodeBlocks } from './support/markdown.ts';
import { parseFlowchart, type Flowchart } from './support/mermaid.ts';
import { evaluateStack, ROOT, type Evaluation } from './support/pulumi.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The text of a `## heading` section, up to the next `## `. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start === -1) throw new Error(`README.md has no section "## ${heading}"`);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

/** Every ```mermaid block of a Markdown text. */
function mermaidBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```mermaid\n([\s\S]*?)\n```$/gm)].map((match) => match[1]!);
}

/** The body rows of the first table in `text`, as cells without their surrounding spaces. */
function tableRows(text: string): string[][] {
  const lines = withoutCodeBlocks(text).filter((line) => line.startsWith('|'));
  return lines.slice(2).map((line) =>
    line
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim()),
  );
}

const labels = (chart: Flowchart) => [...chart.nodes.values()].map((node) => node.label).join('\n');
const objects = (evaluation: Evaluation, kind: string) =>
  evaluation.resources.filter((resource) => resource.type.startsWith('kubernetes:') && resource.inputs.kind === kind).map((resource) => resource.inputs as Json);

describe('the README', () => {
  it('draws its pictures as Mermaid flowcharts that parse: architecture, the pulumi up flow, the network', () => {
    const blocks = mermaidBlocks(README);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    for (const block of blocks) expect(() => parseFlowchart(block), block.split('\n')[1]).not.toThrow();
  });

  it('lists every ## and ### heading in its Contents, in order, each linking to its anchor', () => {
    const headings = withoutCodeBlocks(README)
      .map((line) => /^(##|###) (.+)$/.exec(line))
      .filter((match): match is RegExpExecArray => match !== null && match[2] !== 'Contents')
      .map(([, level, text]) => `${level === '###' ? '  ' : ''}- [${text}](#${githubSlug(text!.replace(/`/g, ''))})`);
    const contents = section(README, 'Contents')
      .split('\n')
      .filter((line) => /^\s*- \[/.test(line));
    expect(contents).toEqual(headings);
  });

  it("names each engine's pinned image, URL variable, ports and README in the Engines table", () => {
    const rows = tableRows(section(README, 'Engines'));
    expect(rows.map((row) => row[0])).toEqual(ENGINE_MODULES.map((module) => module.displayName));
    for (const module of ENGINE_MODULES) {
      // Without TLS as dev runs it (Docker: one member), with TLS as prod does.
      const spec = describeWithDefaults(module, 'dev');
      const [, , image, url, ports, operations] = rows.find((row) => row[0] === module.displayName)!;
      expect(image).toBe(`\`${spec.image.repository}:${spec.image.tag}\``);
      expect(url).toBe(`\`${module.urlVariable}\``);
      // The ports without TLS, then (where TLS changes them) the ports a TLS stack opens instead.
      const [plain, withTls] = ports!.split('; with TLS');
      const numbers = (text: string | undefined) => [...(text ?? '').matchAll(/\d+/g)].map(Number);
      expect(numbers(plain)).toEqual(spec.ports.map((port) => port.containerPort));
      const tlsPorts = describeWithDefaults(module, 'prod', { tls: true }).ports.map((port) => port.containerPort);
      expect(numbers(withTls)).toEqual(tlsPorts.filter((port) => !numbers(plain).includes(port)));
      expect(operations).toContain(`(databases/${module.name}/README.md)`);
    }
  });

  it("shows every URL variable among the pulumi up flow's outputs", () => {
    const flow = parseFlowchart(mermaidBlocks(section(README, 'What `pulumi up` does, end to end'))[0]!);
    for (const module of ENGINE_MODULES) expect(labels(flow)).toContain(module.urlVariable);
  });

  describe('network picture, against the prod stack', () => {
    let prod: Evaluation;
    beforeAll(async () => {
      prod = await evaluateStack('prod');
    });
    const network = () => section(README, 'Who may reach an engine (Kubernetes)');

    it('names the ports each NetworkPolicy opens and the label it admits clients by', () => {
      const rows = tableRows(network());
      expect(rows.map((row) => row[0])).toEqual(ENGINE_MODULES.map((module) => module.displayName));
      for (const module of ENGINE_MODULES) {
        const [policy] = objects(prod, 'NetworkPolicy').filter((object) => object.metadata.labels['app.kubernetes.io/name'] === module.name);
        const [rule] = policy!.spec.ingress;
        const [, ports, label] = rows.find((row) => row[0] === module.displayName)!;
        expect(ports).toBe(rule.ports.map((port: Json) => port.port).join(', '));
        // The first peer is the client pods, by the engine's client label.
        expect(rule.from[0].podSelector.matchLabels).toEqual({ [clientLabel(module.name)]: 'true' });
        expect(label).toBe(`\`${clientLabel(module.name)}: "true"\``);
      }
    });

    it("draws the bootstrap's labels, the client label and the clientNamespaces the policies admit", () => {
      const chart = parseFlowchart(mermaidBlocks(network())[0]!);
      const text = labels(chart);
      for (const [key, value] of Object.entries(BOOTSTRAP_POD_LABELS)) expect(text).toContain(`${key}: ${value}`);
      expect(text).toContain(`${clientLabel('<engine>' as EngineName)}: true`);
      // ClickHouse Keeper's admits ClickHouse's members and its own only, no client (test/kubernetes-clickhouse-cluster.test.ts).
      for (const policy of objects(prod, 'NetworkPolicy').filter((candidate) => candidate.metadata.name !== 'clickhouse-keeper-ingress')) {
        const peers = policy.spec.ingress[0].from as Json[];
        expect(peers.some((peer) => peer.podSelector?.matchLabels?.['app.kubernetes.io/component'] === BOOTSTRAP_POD_LABELS['app.kubernetes.io/component'])).toBe(true);
        expect(peers.find((peer) => peer.namespaceSelector)?.namespaceSelector.matchExpressions[0].values).toEqual(prod.config.clientNamespaces);
      }
      expect([...chart.nodes.values()].some((node) => node.groups.some((group) => group.includes('allixios:clientNamespaces')))).toBe(true);
    });

    it('is right that the probes are commands, not connections, and the Services are ClusterIP', () => {
      for (const statefulSet of objects(prod, 'StatefulSet')) {
        for (const container of statefulSet.spec.template.spec.containers as Json[]) {
          for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) expect(Object.keys(container[probe]), `${container.name} ${probe}`).toContain('exec');
        }
      }
      for (const service of objects(prod, 'Service')) expect(['ClusterIP', undefined]).toContain(service.spec.type);
    });
  });
});
