/**
 * The bootstrap's Elasticsearch client over TLS. No Elasticsearch runs here (ENGINES.md), so the
 * client talks to a small HTTPS server with a certificate for `localhost` signed by a test CA,
 * answering as a node does (the product header the client checks): the client given the CA file
 * connects; one asking for a name the certificate does not cover, or trusting another CA, is refused.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Client } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { elasticsearchClientOptions } from '../../bootstrap/adapters/elasticsearch-adapter.ts';
import { hasOpenssl, issueCertificates, type IssuedCertificates } from '../support/certificates.ts';

describe('elasticsearchClientOptions', () => {
  it('gives no TLS options for an http URL', () => {
    expect(elasticsearchClientOptions('http://elastic:pw@localhost:9200', 1000, '/nonexistent/ca.crt')).not.toHaveProperty('tls');
  });

  it('fails with the engine and the path when an https URL finds no CA bundle, rather than connecting unverified', () => {
    expect(() => elasticsearchClientOptions('https://elastic:pw@localhost:9200', 1000, '/nonexistent/ca.crt')).toThrow(/^elasticsearch: .*\/nonexistent\/ca\.crt/);
  });
});

describe.skipIf(!hasOpenssl)('the Elasticsearch client over TLS (needs openssl)', () => {
  let issued: IssuedCertificates;
  let other: IssuedCertificates;
  let server: Server;
  let port: number;
  const requests: string[] = [];

  beforeAll(async () => {
    issued = issueCertificates(['elasticsearch', 'localhost']);
    other = issueCertificates(['localhost']);
    server = createServer({ cert: issued.certificate, key: issued.key }, (request, response) => {
      requests.push(`${request.method} ${request.url} ${request.headers.authorization ?? ''}`);
      response.writeHead(200, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch' });
      response.end(JSON.stringify({ cluster_name: 'allixios', status: 'green' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const health = async (url: string, caFile: string) => {
    const client = new Client(elasticsearchClientOptions(url, 5000, caFile));
    try {
      return await client.cluster.health();
    } finally {
      await client.close();
    }
  };

  it('connects to a node whose certificate the CA signed for the URL host, with the credentials of the URL', async () => {
    const answer = await health(`https://elastic:secret@localhost:${port}`, issued.caFile);
    expect(answer.status).toBe('green');
    expect(requests.at(-1)).toBe(`GET /_cluster/health Basic ${Buffer.from('elastic:secret').toString('base64')}`);
  });

  it('refuses a host name the certificate does not cover', async () => {
    const before = requests.length;
    await expect(health(`https://elastic:secret@127.0.0.1:${port}`, issued.caFile)).rejects.toThrow(/altnames|Hostname|IP: 127\.0\.0\.1/i);
    expect(requests.length).toBe(before);
  });

  it('refuses a certificate another CA signed', async () => {
    const before = requests.length;
    await expect(health(`https://elastic:secret@localhost:${port}`, other.caFile)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    expect(requests.length).toBe(before);
  });
});
