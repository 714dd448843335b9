import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderStack, renderText, type RenderResult } from '../stacks/render/render.ts';
import { mermaidBlock, parseFlowchart, type Flowchart, type FlowchartNode } from './support/mermaid.ts';
import { evaluate } from './support/pulumi.ts';
import { PROD_BACKUPS, withPostgresqlImage } from './support/stacks.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test access to rendered objects

function documents(result: RenderResult): Json[] {
  return result.files.flatMap((file) => parseAllDocuments(readFileSync(join(result.directory, file), 'utf8')).map((document) => document.toJS() as Json));
}

function nodeLabelled(chart: Flowchart, firstLine: string): FlowchartNode {
  const found = [...chart.nodes.values()].filter((node) => node.label.split('\n')[0] === firstLine);
  expect(
    found.map((node) => node.label),
    `one node whose label starts with "${firstLine}"`,
  ).toHaveLength(1);
  return found[0]!;
}

function portsOf(rule: Json): string {
  return (rule.ports as Json[]).map((port) => `${port.port}/${port.protocol}`).join(', ');
}

describe('the stack diagram', () => {
  let prod: RenderResult;
  let dev: RenderResult;
  let prodChart: Flowchart;
  beforeAll(async () => {
    const out = mkdtempSync(join(tmpdir(), 'render-'));
    prod = await renderStack(new URL('..', import.meta.url).pathname, 'prod', out);
    dev = await renderStack(new URL('..', import.meta.url).pathname, 'dev', out);
    prodChart = parseFlowchart(mermaidBlock(readFileSync(prod.diagram, 'utf8')));
  });

  it('is written beside the manifests of the stack', () => {
    expect(prod.diagram).toBe(join(dirname(prod.directory), 'diagram.md'));
    expect(readdirSync(dirname(prod.directory)).sort()).toEqual(['diagram.md', 'kubernetes']);
    expect(readdirSync(dirname(dev.directory)).sort()).toEqual(['diagram.md', 'docker']);
  });

  it("names every engine of prod, PostgreSQL's PgBouncer, their Services and the bootstrap Job, inside the namespace and its Pod Security level", () => {
    const rendered = documents(prod);
    const statefulSets = rendered.filter((object) => object.kind === 'StatefulSet');
    // Redis's Sentinels and ClickHouse Keeper too, StatefulSets of their own.
    expect(statefulSets.map((object) => object.metadata.name).sort()).toEqual([
      'clickhouse',
      'clickhouse-keeper',
      'elasticsearch',
      'mongodb',
      'postgresql',
      'redis',
      'redis-sentinel',
    ]);
    for (const statefulSet of statefulSets) {
      const node = nodeLabelled(prodChart, `StatefulSet ${statefulSet.metadata.name}`);
      expect(node.label).toContain(statefulSet.spec.template.spec.containers[0].image);
      // Redis's Sentinels in Redis's group, as their objects are in redis.yaml; ClickHouse Keeper in ClickHouse's.
      expect(node.groups).toEqual(['namespace allixios-prod · Pod Security restricted', statefulSet.metadata.name.replace(/-(sentinel|keeper)$/, '')]);
    }
    // PgBouncer, a Deployment in PostgreSQL's group.
    const deployments = rendered.filter((object) => object.kind === 'Deployment');
    expect(deployments.map((object) => object.metadata.name)).toEqual(['postgresql-pgbouncer']);
    const pgbouncer = nodeLabelled(prodChart, 'Deployment postgresql-pgbouncer');
    expect(pgbouncer.label).toContain(deployments[0]!.spec.template.spec.containers[0].image);
    expect(pgbouncer.groups).toEqual(['namespace allixios-prod · Pod Security restricted', 'postgresql']);
    const workloads = [...statefulSets, ...deployments];
    const services = rendered.filter((object) => object.kind === 'Service');
    for (const service of services) {
      const node = nodeLabelled(prodChart, `Service ${service.metadata.name} · ${service.spec.clusterIP === 'None' ? 'headless' : (service.spec.type ?? 'ClusterIP')}`);
      // PgBouncer's in PostgreSQL's group, the Sentinels' in Redis's, Keeper's in ClickHouse's.
      const group =
        ({ 'postgresql-pgbouncer': 'postgresql', 'redis-sentinel': 'redis', 'clickhouse-keeper': 'clickhouse' } as Record<string, string>)[
          service.metadata.labels['app.kubernetes.io/name']
        ] ?? service.metadata.labels['app.kubernetes.io/name'];
      expect(node.groups, service.metadata.name).toEqual(['namespace allixios-prod · Pod Security restricted', group]);
      // A line to the workload whose pods the Service selects by their template's labels.
      const selected = workloads.filter(
        (workload) => service.spec.selector && Object.entries(service.spec.selector).every(([key, value]) => workload.spec.template.metadata.labels[key] === value),
      );
      for (const workload of selected) {
        expect(prodChart.edges, service.metadata.name).toContainEqual({
          from: node.id,
          to: nodeLabelled(prodChart, `${workload.kind} ${workload.metadata.name}`).id,
          arrow: '---',
        });
      }
    }
    // Every Service selects a workload by its template but those Patroni routes at run time: the
    // primary's and its keys' have no selector (Patroni writes their Endpoints), the replicas'
    // selects the role label Patroni sets on a member.
    const unselected = services.filter(
      (service) =>
        !workloads.some(
          (workload) => service.spec.selector && Object.entries(service.spec.selector).every(([key, value]) => workload.spec.template.metadata.labels[key] === value),
        ),
    );
    expect(unselected.map((service) => [service.metadata.name, service.spec.selector]).sort()).toEqual([
      ['postgresql', undefined],
      ['postgresql-config', undefined],
      ['postgresql-failover', undefined],
      ['postgresql-replicas', { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'allixios-prod', 'allixios.io/role': 'replica' }],
      ['postgresql-sync', undefined],
    ]);
    const [job] = rendered.filter((object) => object.kind === 'Job');
    nodeLabelled(prodChart, `Job ${job!.metadata.name}`);
  });

  it('draws an edge from every source of every NetworkPolicy ingress rule to its engine, on the rule’s ports', () => {
    const rendered = documents(prod);
    const job = nodeLabelled(prodChart, `Job ${rendered.find((object) => object.kind === 'Job')!.metadata.name}`);
    const policies = rendered.filter((object) => object.kind === 'NetworkPolicy');
    // One per engine, PgBouncer's, the Sentinels' and Keeper's.
    expect(policies.map((policy) => policy.metadata.name).sort()).toEqual([
      'clickhouse-ingress',
      'clickhouse-keeper-ingress',
      'elasticsearch-ingress',
      'mongodb-ingress',
      'postgresql-ingress',
      'postgresql-pgbouncer-ingress',
      'redis-ingress',
      'redis-sentinel-ingress',
    ]);
    // The pods a selector names inside the render: PgBouncer's carry PostgreSQL's client label.
    const workloads = rendered.filter((object) => object.kind === 'StatefulSet' || object.kind === 'Deployment');
    const inRender = (selector: Record<string, string>) =>
      workloads.filter((workload) => Object.entries(selector).every(([key, value]) => workload.spec.template.metadata.labels[key] === value));
    let expected = 0;
    for (const policy of policies) {
      const [target] = inRender(policy.spec.podSelector.matchLabels);
      const engine = nodeLabelled(prodChart, `${target!.kind} ${target!.metadata.name}`);
      const incoming = prodChart.edges.filter((edge) => edge.to === engine.id && edge.arrow === '-->');
      for (const rule of policy.spec.ingress as Json[]) {
        for (const peer of rule.from as Json[]) {
          expected += 1;
          // Where the source is: the bootstrap Job, the engine itself (its peers), or client pods
          // outside the render, in this namespace or in the namespaces the selector names.
          const labels = Object.entries(peer.podSelector.matchLabels as Record<string, string>).map(([key, value]) => `${key}=${value}`);
          let source: FlowchartNode;
          const selected = peer.namespaceSelector ? [] : inRender(peer.podSelector.matchLabels);
          if (peer.podSelector.matchLabels['app.kubernetes.io/component'] === 'bootstrap') source = job;
          else if (peer.podSelector.matchLabels['app.kubernetes.io/name'] === policy.spec.podSelector.matchLabels['app.kubernetes.io/name']) source = engine;
          // Pods of this namespace the render has: PostgreSQL's clients here are PgBouncer's pods.
          else if (selected.length === 1) source = nodeLabelled(prodChart, `${selected[0]!.kind} ${selected[0]!.metadata.name}`);
          else {
            source = nodeLabelledIn(
              prodChart,
              `pods with ${labels.join(', ')}`,
              peer.namespaceSelector ? `namespace ${peer.namespaceSelector.matchExpressions[0].values.join(', ')}` : 'namespace allixios-prod · Pod Security restricted',
            );
          }
          expect(incoming, `${policy.metadata.name}: ${JSON.stringify(peer)}`).toContainEqual({ from: source.id, to: engine.id, arrow: '-->', label: portsOf(rule) });
        }
      }
    }
    expect(prodChart.edges.filter((edge) => edge.arrow === '-->')).toHaveLength(expected);
    // The platform's namespace from the stack's clientNamespaces is drawn as a namespace of its own.
    expect([...prodChart.nodes.values()].some((node) => node.groups[0] === 'namespace allixios-platform')).toBe(true);
  });

  it('shows which engine the bootstrap connects to, by the URL variables it reads', () => {
    const job = [...prodChart.nodes.values()].find((node) => node.label.startsWith('Job '))!;
    const connections = prodChart.edges.filter((edge) => edge.from === job.id && edge.arrow === '-.->');
    expect(connections.map((edge) => [prodChart.nodes.get(edge.to)!.label.split('\n')[0], edge.label]).sort()).toEqual([
      ['Service clickhouse · ClusterIP', 'CLICKHOUSE_URL, CLICKHOUSE_URL_APP'],
      ['Service elasticsearch · ClusterIP', 'ELASTICSEARCH_URL, ELASTICSEARCH_URL_APP'],
      ['Service mongodb · ClusterIP', 'MONGODB_URL, MONGODB_URL_APP'],
      ['Service postgresql · ClusterIP', 'DATABASE_URL, DATABASE_URL_APP'],
      ['Service redis · ClusterIP', 'REDIS_URL, REDIS_URL_APP'],
    ]);
  });

  it('lists every NetworkPolicy source in the table under the picture', () => {
    const text = readFileSync(prod.diagram, 'utf8');
    const rows = text.split('\n').filter((line) => line.endsWith('| NetworkPolicy postgresql-ingress |'));
    // In the order of the policy's sources: its clients of this namespace (PgBouncer's pods, the
    // render's only pods with the client label), the bootstrap, its peers, the platform's clients,
    // then its peers again on Patroni's port.
    expect(rows).toEqual([
      '| pods with allixios.io/client-postgresql=true (postgresql-pgbouncer) | StatefulSet postgresql | 5432/TCP | NetworkPolicy postgresql-ingress |',
      expect.stringMatching(
        /^\| pods with app\.kubernetes\.io\/component=bootstrap, app\.kubernetes\.io\/part-of=allixios \(bootstrap-[0-9a-f]+-[0-9a-f]+\) \| StatefulSet postgresql \| 5432\/TCP \|/,
      ),
      '| pods with app.kubernetes.io/instance=allixios-prod, app.kubernetes.io/name=postgresql (postgresql) | StatefulSet postgresql | 5432/TCP | NetworkPolicy postgresql-ingress |',
      '| pods with allixios.io/client-postgresql=true in namespace allixios-platform | StatefulSet postgresql | 5432/TCP | NetworkPolicy postgresql-ingress |',
      '| pods with app.kubernetes.io/instance=allixios-prod, app.kubernetes.io/name=postgresql (postgresql) | StatefulSet postgresql | 8008/TCP | NetworkPolicy postgresql-ingress |',
      // pgBackRest's agent: the backup CronJobs' pods only (stacks/kubernetes/backups.ts).
      '| pods with allixios.io/backup-job=postgresql in namespace allixios-prod | StatefulSet postgresql | 8432/TCP | NetworkPolicy postgresql-ingress |',
    ]);
    // PgBouncer's own: the same clients on its port.
    expect(text.split('\n').filter((line) => line.endsWith('| NetworkPolicy postgresql-pgbouncer-ingress |'))).toEqual([
      '| pods with allixios.io/client-postgresql=true (postgresql-pgbouncer) | Deployment postgresql-pgbouncer | 6432/TCP | NetworkPolicy postgresql-pgbouncer-ingress |',
      expect.stringMatching(/^\| pods with app\.kubernetes\.io\/component=bootstrap, .* \| Deployment postgresql-pgbouncer \| 6432\/TCP \|/),
      '| pods with allixios.io/client-postgresql=true in namespace allixios-platform | Deployment postgresql-pgbouncer | 6432/TCP | NetworkPolicy postgresql-pgbouncer-ingress |',
    ]);
  });

  it('draws dev as containers on their network, the ports published on 127.0.0.1, and the bootstrap reaching each engine', () => {
    const chart = parseFlowchart(mermaidBlock(readFileSync(dev.diagram, 'utf8')));
    const bootstrap = [...chart.nodes.values()].find((node) => node.label.includes('runs once'))!;
    expect(bootstrap.label).toMatch(/^container allixios-dev-bootstrap-/);
    for (const [engine, port] of [
      ['postgresql', 5432],
      ['mongodb', 27017],
      ['redis', 6379],
      ['elasticsearch', 9200],
      ['clickhouse', 8123],
    ] as const) {
      const node = nodeLabelled(chart, `container allixios-dev-${engine}`);
      expect(node.groups).toEqual(['network allixios-dev · bridge']);
      expect(node.label).toContain(`volume allixios-dev-${engine}-data`);
      expect(chart.edges).toContainEqual({ from: 'host_machine', to: node.id, arrow: '==>', label: `127.0.0.1:${port} → ${port}/tcp` });
      expect(chart.edges).toContainEqual({ from: bootstrap.id, to: node.id, arrow: '-.->', label: `${engine}:${port}` });
    }
  });

  it('draws the node-tuning DaemonSet in its privileged namespace when Elasticsearch asks for one', async () => {
    const tuned = await evaluate({
      environment: 'prod',
      namespace: 'allixios-prod',
      backups: PROD_BACKUPS,
      engines: withPostgresqlImage({ elasticsearch: { options: { maxMapCount: 'daemonSet' } } }),
      bootstrap: { image: 'ghcr.io/allixios/allixios-bootstrap:0.1.0' },
    });
    const { diagram, files } = renderText('prod', tuned.resources);
    const chart = parseFlowchart(mermaidBlock(diagram));
    expect(nodeLabelled(chart, 'DaemonSet node-tuning').groups).toEqual(['namespace allixios-prod-node-tuning · Pod Security privileged']);
    expect(files['namespace.yaml']).toContain('# Pod Security "privileged", here only');
  });
});

function nodeLabelledIn(chart: Flowchart, firstLine: string, group: string): FlowchartNode {
  const found = [...chart.nodes.values()].filter((node) => node.label.split('\n')[0] === firstLine && node.groups[0] === group);
  expect(found, `a node "${firstLine}" in "${group}"`).toHaveLength(1);
  return found[0]!;
}

describe('the flowchart reader the diagram test relies on', () => {
  const valid = ['flowchart LR', '  subgraph ns_a["namespace a"]', '    a_1[("StatefulSet a")]', '    b_1(["Service b"])', '  end', '  b_1 --- a_1'].join('\n');

  it('reads a well-formed chart', () => {
    const chart = parseFlowchart(valid);
    expect([...chart.nodes.keys()]).toEqual(['a_1', 'b_1']);
    expect(chart.nodes.get('a_1')!.groups).toEqual(['namespace a']);
  });

  it.each([
    ['an unclosed subgraph', 'flowchart LR\n  subgraph g["g"]\n  a["a"]'],
    ['an end without subgraph', 'flowchart LR\n  a["a"]\n  end'],
    ['an edge to an undeclared node', 'flowchart LR\n  a["a"]\n  a --> b'],
    ['a keyword as id', 'flowchart LR\n  end["a"]'],
    ['an id with a dash', 'flowchart LR\n  a-b["a"]'],
    ['a quote inside a label', 'flowchart LR\n  a["say "hi""]'],
    ['a node declared twice', 'flowchart LR\n  a["a"]\n  a["b"]'],
    ['no flowchart header', 'graph LR\n  a["a"]'],
  ])('refuses %s', (_name, source) => {
    expect(() => parseFlowchart(source)).toThrow();
  });
});
