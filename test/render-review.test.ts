/** The render is read in pull requests: each document says what it is before what it holds. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMMENTS } from '../stacks/render/comments.ts';
import { orderKeys } from '../stacks/render/order.ts';
import { renderStack, type RenderResult } from '../stacks/render/render.ts';
import { ROOT } from './support/pulumi.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

describe('rendered documents, for a reviewer', () => {
  let prod: RenderResult;
  let dev: RenderResult;
  const text = (result: RenderResult, file: string) => readFileSync(join(result.directory, file), 'utf8');
  const objects = (result: RenderResult) => result.files.flatMap((file) => parseAllDocuments(text(result, file)).map((document) => document.toJS() as Json));

  beforeAll(async () => {
    const out = mkdtempSync(join(tmpdir(), 'render-'));
    prod = await renderStack(ROOT, 'prod', out);
    dev = await renderStack(ROOT, 'dev', out);
  });

  it('starts every Kubernetes document with apiVersion, kind and metadata, and metadata with name and namespace', () => {
    const all = objects(prod);
    expect(all.length).toBeGreaterThan(30);
    for (const object of all) {
      expect(Object.keys(object).slice(0, 3), object.kind).toEqual(['apiVersion', 'kind', 'metadata']);
      expect(Object.keys(object.metadata).slice(0, object.kind === 'Namespace' ? 1 : 2)).toEqual(['name', 'namespace'].slice(0, object.kind === 'Namespace' ? 1 : 2));
    }
  });

  it('puts a ConfigMap’s data after its kind and name, and a Secret’s type before its keys', () => {
    const configMap = text(prod, 'postgresql.yaml').split('---\n')[1]!;
    expect(configMap.indexOf('kind: ConfigMap')).toBeLessThan(configMap.indexOf('\ndata:'));
    expect(configMap.indexOf('  name: postgresql-config-')).toBeLessThan(configMap.indexOf('\ndata:'));
    const secret = objects(prod).find((object) => object.kind === 'Secret')!;
    expect(Object.keys(secret)).toEqual(['apiVersion', 'kind', 'metadata', 'type', 'stringData']);
  });

  it('names each container, its image and command before its environment, probes and mounts; each variable by its name first', () => {
    for (const object of objects(prod).filter((candidate) => candidate.spec?.template)) {
      const pod = object.spec.template.spec;
      expect(Object.keys(object.spec).slice(-2), object.kind).toEqual(
        object.kind === 'StatefulSet' ? ['template', 'volumeClaimTemplates'] : [Object.keys(object.spec).at(-2), 'template'],
      );
      expect(Object.keys(pod).slice(-2)).toEqual(['containers', 'volumes']);
      for (const container of pod.containers) {
        expect(Object.keys(container).slice(0, 2)).toEqual(['name', 'image']);
        expect(Object.keys(container).at(-1)).toBe('volumeMounts');
        for (const variable of container.env ?? []) expect(Object.keys(variable)[0]).toBe('name');
      }
    }
  });

  it('puts each Docker container first in its engine’s file, its name and image first', () => {
    for (const file of dev.files.filter((name) => name !== 'network.json')) {
      const bundle = JSON.parse(text(dev, file));
      expect(Object.keys(bundle)[0], file).toBe('container');
      expect(Object.keys(bundle.container).slice(0, 2)).toEqual(['name', 'image']);
    }
    expect(Object.keys(JSON.parse(text(dev, 'network.json')))[0]).toBe('name');
  });

  it('explains the namespace’s Pod Security level above the label that sets it', () => {
    const namespace = text(prod, 'namespace.yaml');
    expect(namespace).toMatch(
      / {4}# Pod Security "restricted", enforced: [^\n]*\n(?: {4}#[^\n]*\n)*? {4}# [^\n]*vm\.max_map_count[^\n]*\n(?: {4}#[^\n]*\n)* {4}pod-security\.kubernetes\.io\/enforce: restricted\n/,
    );
  });

  it('writes every comment of the table above its setting in the prod render, and no other comment', () => {
    const found = new Map<string, string>();
    const walk = (node: unknown, path: readonly string[], kind: unknown): void => {
      if (isSeq(node)) node.items.forEach((item) => walk(item, [...path, '*'], kind));
      if (!isMap(node)) return;
      node.items.forEach((pair, index) => {
        if (!isScalar(pair.key)) return;
        const keyPath = [...path, String(pair.key.value)];
        // Read back, a comment above a map's first key belongs to the map.
        const comment = pair.key.commentBefore ?? (index === 0 ? node.commentBefore : undefined);
        if (comment) found.set(`${String(kind)} ${keyPath.join('.')}`, comment);
        walk(pair.value, keyPath, kind);
      });
    };
    for (const file of prod.files) {
      for (const document of parseAllDocuments(text(prod, file))) walk(document.contents, [], document.get('kind'));
    }
    expect([...found.keys()].sort()).toEqual([...new Set(COMMENTS.map((comment) => `${comment.kind} ${comment.path.join('.')}`))].sort());
  });

  it('writes the same bytes when the same commit is rendered again', async () => {
    const again = await renderStack(ROOT, 'dev', mkdtempSync(join(tmpdir(), 'render-')));
    expect(again.files).toEqual(dev.files);
    for (const file of dev.files) expect(text(again, file), file).toBe(text(dev, file));
    expect(readFileSync(again.diagram, 'utf8')).toBe(readFileSync(dev.diagram, 'utf8'));
  });

  it('orders the keys no rule names alphabetically, so the order never depends on the program', () => {
    expect(Object.keys(orderKeys({ zeta: 1, alpha: 2, name: 'x' }, 'somewhere') as Json)).toEqual(['name', 'alpha', 'zeta']);
    expect(orderKeys({ b: [{ z: 1, a: 2 }], a: 1 }, 'somewhere')).toStrictEqual({ a: 1, b: [{ a: 2, z: 1 }] });
  });
});
