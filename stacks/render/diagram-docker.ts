/**
 * The diagram of a Docker stack: each network with its containers, the ports published on the
 * host, and the one-shot containers (the bootstrap run) reaching the others on their network.
 */
import { compare, Graph, idOf, type Group } from './flowchart.ts';

interface DockerContainer {
  name?: string;
  image?: string;
  hostname?: string;
  restart?: string;
  networksAdvanced?: Array<{ name?: string; aliases?: string[] }>;
  ports?: Array<{ internal?: number; external?: number; ip?: string; protocol?: string }>;
  volumes?: Array<{ volumeName?: string; containerPath?: string }>;
}

export function dockerGraph(files: Record<string, unknown[]>): Graph {
  const graph = new Graph();
  const networks = new Map<string, string>();
  const containers: Array<{ container: DockerContainer; image?: string }> = [];
  for (const [, documents] of Object.entries(files).sort(([a], [b]) => compare(a, b))) {
    for (const document of documents) {
      const bundle = document as { container?: DockerContainer; remoteimage?: { name?: string }; image?: { imageName?: string }; driver?: string; name?: string };
      if (bundle.container) containers.push({ container: bundle.container, image: bundle.remoteimage?.name ?? bundle.image?.imageName });
      else if (bundle.driver !== undefined && bundle.name) networks.set(bundle.name, bundle.driver);
    }
  }

  const networkGroup = (name: string): Group => ({ id: idOf('net', name), title: `network ${name}${networks.has(name) ? ` · ${networks.get(name)}` : ''}` });
  const placed = containers.map(({ container, image }) => {
    const network = container.networksAdvanced?.[0]?.name;
    const volumes = (container.volumes ?? []).map((volume) => `volume ${volume.volumeName} → ${volume.containerPath}`);
    const oneShot = container.restart === 'no';
    const id = graph.node({
      id: idOf('ctr', container.name ?? ''),
      lines: [
        `container ${container.name}`,
        image ?? container.image ?? '',
        ...(container.hostname ? [`host name ${container.hostname}`] : []),
        ...volumes,
        ...(oneShot ? ['runs once'] : []),
      ],
      shape: volumes.length > 0 ? 'cylinder' : oneShot ? 'subroutine' : 'box',
      groups: network ? [networkGroup(network)] : [],
    });
    return { container, id, oneShot, networks: (container.networksAdvanced ?? []).map((entry) => entry.name) };
  });

  for (const { container, id } of placed) {
    for (const port of container.ports ?? []) {
      if (port.external === undefined) continue;
      const host = graph.node({ id: 'host_machine', lines: ['this machine'], shape: 'external', groups: [] });
      const label = `${port.ip ?? '0.0.0.0'}:${port.external} → ${port.internal}/${port.protocol ?? 'tcp'}`;
      graph.edge({ from: host, to: id, kind: 'publishes', label });
      graph.connections.push({ from: 'this machine', to: container.name ?? '', ports: label, why: 'published port' });
    }
  }
  // On a Docker network every container reaches every other; the picture shows what runs once
  // (the bootstrap) reaching the engines, by their alias and port on the network.
  for (const source of placed.filter((entry) => entry.oneShot)) {
    for (const target of placed.filter((entry) => !entry.oneShot)) {
      const shared = source.networks.find((network) => network !== undefined && target.networks.includes(network));
      if (!shared) continue;
      const alias = target.container.networksAdvanced?.find((entry) => entry.name === shared)?.aliases?.[0] ?? target.container.hostname ?? target.container.name ?? '';
      const port = target.container.ports?.[0]?.internal;
      const label = port === undefined ? alias : `${alias}:${port}`;
      graph.edge({ from: source.id, to: target.id, kind: 'connects', label });
      graph.connections.push({ from: source.container.name ?? '', to: target.container.name ?? '', ports: label, why: `network ${shared}` });
    }
  }
  return graph;
}
