/**
 * Comments in the rendered YAML where a setting would surprise a reviewer: one table, keyed by
 * kind and path, so the explanations live in one place and not in the code that renders.
 */
import { Document, isMap, isScalar, isSeq, type Node } from 'yaml';

/** One explanation: where it goes and what it says for the value found there. */
export interface RenderComment {
  kind: string;
  /** Keys from the document's root; `*` stands for any item of a list. */
  path: readonly string[];
  /** The comment's lines for the value at `path`; none when the value needs no explanation. */
  text: (value: unknown) => readonly string[] | undefined;
}

export const COMMENTS: readonly RenderComment[] = [
  {
    kind: 'Namespace',
    path: ['metadata', 'labels', 'pod-security.kubernetes.io/enforce'],
    text: (level) =>
      level === 'restricted'
        ? [
            'Pod Security "restricted", enforced: no pod here is privileged, runs as root or keeps a capability.',
            "What an engine needs from its node (Elasticsearch's vm.max_map_count) is met outside this namespace:",
            'by the node pool (maxMapCount: nodePrerequisite, the default in staging and prod), or by a',
            'privileged node-tuning DaemonSet in a namespace of its own (maxMapCount: daemonSet).',
          ]
        : level === 'privileged'
          ? [
              'Pod Security "privileged", here only: the DaemonSet in this namespace sets node sysctls the',
              "engines need; it runs nothing else, and the engines' namespace stays restricted.",
            ]
          : undefined,
  },
  {
    kind: 'Service',
    path: ['spec', 'publishNotReadyAddresses'],
    text: (publish) =>
      publish === true
        ? [
            'The headless Service lists pods before they are ready, so pods of the StatefulSet find each other',
            'by DNS while they start (replication, cluster membership). Clients use the other Service, which',
            'lists ready pods only.',
          ]
        : undefined,
  },
  {
    kind: 'StatefulSet',
    path: ['spec', 'persistentVolumeClaimRetentionPolicy'],
    text: (policy) => {
      const { whenDeleted, whenScaled } = (policy ?? {}) as { whenDeleted?: string; whenScaled?: string };
      if (whenDeleted === 'Retain' && whenScaled === 'Retain') {
        return ['Deleting the StatefulSet or scaling it down keeps the data volumes (PVCs): delete them by hand to free the storage.'];
      }
      if (whenDeleted === 'Delete' && whenScaled === 'Delete') {
        return ["Deleting the StatefulSet or scaling it down deletes the data volumes: this environment's data is disposable."];
      }
      return undefined;
    },
  },
  {
    kind: 'StatefulSet',
    path: ['spec', 'template', 'spec', 'securityContext', 'fsGroupChangePolicy'],
    text: (policy) =>
      policy === 'OnRootMismatch'
        ? [
            "The kubelet gives the volume's files to fsGroup only when the volume's root is not already its own (a",
            'new volume), not at every start: a recursive chown of a large data volume would delay each restart.',
          ]
        : undefined,
  },
  {
    kind: 'Job',
    path: ['metadata', 'name'],
    text: () => [
      "bootstrap-<trigger>-<fingerprint>: the trigger hashes the bootstrap's code and assets, its image and the",
      "engines' endpoints, the fingerprint the passwords. A new name is a new run; the same name runs nothing.",
    ],
  },
];

function matches(pattern: readonly string[], path: readonly string[]): boolean {
  return pattern.length === path.length && pattern.every((key, index) => (key === '*' ? /^\d+$/.test(path[index]!) : key === path[index]));
}

/**
 * Puts each comment of `comments` above the key it explains, in `document` (a Kubernetes
 * object). A comment whose path is not in the document is not added.
 */
export function addComments(document: Document, comments: readonly RenderComment[] = COMMENTS): void {
  const kind = document.get('kind');
  const applicable = comments.filter((comment) => comment.kind === kind);
  if (applicable.length === 0) return;
  const walk = (node: unknown, path: readonly string[]): void => {
    if (isSeq(node)) node.items.forEach((item, index) => walk(item, [...path, String(index)]));
    if (!isMap(node)) return;
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const keyPath = [...path, String(pair.key.value)];
      for (const comment of applicable) {
        if (!matches(comment.path, keyPath)) continue;
        const lines = comment.text((pair.value as Node | null)?.toJSON());
        if (lines) pair.key.commentBefore = lines.map((line) => ` ${line}`).join('\n');
      }
      walk(pair.value, keyPath);
    }
  };
  walk(document.contents, []);
}
