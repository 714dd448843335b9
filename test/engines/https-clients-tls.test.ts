/**
 * The bootstrap's HTTPS clients over TLS: Elasticsearch's and ClickHouse's, which take the stack's
 * CA bundle as bytes (their URLs carry no CA). Neither engine's server runs here with a network
 * listener (ENGINES.md: no Elasticsearch; ClickHouse as chdb, in-process), so each client talks
 * to a small HTTPS server with a certificate for `localhost` signed by a test CA, answering as the
 * engine does: the client given the CA file connects with the URL's credentials; one asking for a
 * name the certificate does not cover, or trusting another CA, is refused before it sends a request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createClient } from '@clickhouse/client';
import { Client } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouseClientOptions } from '../../bootstrap/adapters/clickhouse-adapter.ts';
import { elasticsearchClientOptions } from '../../bootstrap/adapters/elasticsearch-adapter.ts';
import { hasOpenssl, issueCertificates, type IssuedCertificates } from '../support/certificates.ts';

interface HttpsClient {
  engine: string;
  /** The client's options for `url` with the CA bundle at `caFile` (throws as the factory does). */
  options(url: string, caFile: string): unknown;
  /** One authenticated request through the real client; resolves to what the server answered. */
  request(url: string, caFile: string): Promise<string>;
  /** How the engine answers the request (the headers its client checks). */
  answer(request: IncomingMessage, response: ServerResponse): void;
  /** The request line the server sees. */
  expectedRequest: RegExp;
  /** The credentials as the client sends them. */
  credentials(request: IncomingMessage): string | undefined;
}

const clients: HttpsClient[] = [
  {
    engine: 'elasticsearch',
    options: (url, caFile) => elasticsearchClientOptions(url, 1000, caFile),
    async request(url, caFile) {
      const client = new Client(elasticsearchClientOptions(url, 5000, caFile));
      try {
        return (await client.cluster.health()).status;
      } finally {
        await client.close();
      }
    },
    answer(_request, response) {
      response.writeHead(200, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      response.end(JSON.stringify({ cluster_name: 'allixios', status: 'green' }));
    },
    expectedRequest: /^GET \/_cluster\/health$/,
    credentials: (request) => request.headers.authorization,
  },
  {
    engine: 'clickhouse',
    options: (url, caFile) => clickhouseClientOptions(url, caFile),
    async request(url, caFile) {
      const client = createClient(clickhouseClientOptions(url, caFile));
      try {
        return (await (await client.query({ query: 'SELECT 1', format: 'TabSeparated' })).text()).trim();
      } finally {
        await client.close();
      }
    },
    answer(request, response) {
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'text/tab-separated-values; charset=UTF-8', 'x-clickhouse-format': 'TabSeparated' });
        response.end('1\n');
      });
    },
    expectedRequest: /^POST \/\?.*query_id=/,
    // ClickHouse's own headers (its client sends no Authorization).
    credentials: (request) => `Basic ${Buffer.from(`${String(request.headers['x-clickhouse-user'])}:${String(request.headers['x-clickhouse-key'])}`).toString('base64')}`,
  },
];

describe.each(clients)('$engine client options', (client) => {
  it('gives no TLS options for an http URL', () => {
    expect(client.options('http://allixios:pw@localhost:9200', '/nonexistent/ca.crt')).not.toHaveProperty('tls');
  });

  it('fails with the engine and the path when an https URL finds no CA bundle, rather than connecting unverified', () => {
    expect(() => client.options('https://allixios:pw@localhost:9200', '/nonexistent/ca.crt')).toThrow(new RegExp(`^${client.engine}: .*/nonexistent/ca\\.crt`));
  });

  it("keeps a URL's query away from the client: no parameter turns the verification off", () => {
    const caFile = '/dev/null';
    for (const url of [
      'https://allixios:pw@localhost:9200/?rejectUnauthorized=false&tls=false&ssl=false&verification_mode=none&insecure=1',
      'HTTPS://allixios:pw@localhost:9200?rejectUnauthorized=false',
    ]) {
      const options = client.options(url, caFile) as { tls?: Record<string, unknown> };
      // Then TLS with the CA bundle alone, and the query in no option
      expect(Object.keys(options.tls ?? {}), url).toHaveLength(1);
      expect(JSON.stringify(options), url).not.toMatch(/rejectUnauthorized|verification|insecure|ssl=|tls=/);
    }
  });
});

describe.skipIf(!hasOpenssl).each(clients)('the $engine client over TLS (needs openssl)', (client) => {
  let issued: IssuedCertificates;
  let other: IssuedCertificates;
  let server: Server;
  let port: number;
  const requests: { line: string; authorization: string }[] = [];

  beforeAll(async () => {
    issued = issueCertificates([client.engine, 'localhost']);
    other = issueCertificates(['localhost']);
    server = createServer({ cert: issued.certificate, key: issued.key }, (request, response) => {
      requests.push({ line: `${request.method} ${request.url}`, authorization: client.credentials(request) ?? '' });
      client.answer(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('connects to a server whose certificate the CA signed for the URL host, with the credentials of the URL', async () => {
    await expect(client.request(`https://allixios_admin:secret@localhost:${port}`, issued.caFile)).resolves.toMatch(/^(green|1)$/);
    expect(requests.at(-1)?.line).toMatch(client.expectedRequest);
    expect(requests.at(-1)?.authorization).toBe(`Basic ${Buffer.from('allixios_admin:secret').toString('base64')}`);
  });

  it('refuses a host name the certificate does not cover, sending nothing', async () => {
    const before = requests.length;
    await expect(client.request(`https://allixios_admin:secret@127.0.0.1:${port}`, issued.caFile)).rejects.toThrow(/altnames|Hostname|IP: 127\.0\.0\.1/i);
    expect(requests.length).toBe(before);
  });

  it('refuses a certificate another CA signed, sending nothing', async () => {
    const before = requests.length;
    await expect(client.request(`https://allixios_admin:secret@localhost:${port}`, other.caFile)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    expect(requests.length).toBe(before);
  });
});
