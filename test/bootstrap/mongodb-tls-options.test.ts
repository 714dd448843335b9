/**
 * MongoDB's TLS form without a server: the URLs the stack gives its clients, the options the
 * bootstrap hands the Node driver for them, and (with openssl) the driver itself against a small
 * TLS server with a certificate for `localhost` signed by a test CA: given the CA it completes the
 * handshake and sends its first command; trusting another CA, or expecting a name the certificate
 * does not carry, it sends nothing. No MongoDB server runs here (ENGINES.md), so the server never
 * answers that first command: what is proven is the TLS connection the driver makes, not a login.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoClientOptions, mongoTlsOptions } from '../../bootstrap/adapters/mongodb-adapter.ts';
import { CLIENT_CA_PATH, connectionUrl } from '../../databases/connection.ts';
import { mongodb } from '../../databases/mongodb/index.ts';
import { hasOpenssl, issueCertificates, type IssuedCertificates } from '../support/certificates.ts';
import { describeWithDefaults } from '../support/engines.ts';

describe("MongoDB's URLs on a TLS stack and a plain one", () => {
  const plain = describeWithDefaults(mongodb, 'prod');
  const tls = describeWithDefaults(mongodb, 'prod', { tls: true });

  it("ask for TLS and name the stack's CA bundle, which the driver reads itself", () => {
    expect(connectionUrl(tls.adminConnection, 'secret', 'mongodb.allixios.svc', 27017, {})).toBe(
      `mongodb://root:secret@mongodb.allixios.svc:27017/allixios?authSource=admin&w=majority&tls=true&tlsCAFile=${encodeURIComponent(CLIENT_CA_PATH)}`,
    );
    expect(connectionUrl(tls.appConnection, 'secret', 'mongodb', 27017, {})).toMatch(
      /^mongodb:\/\/allixios_app:secret@mongodb:27017\/allixios\?authSource=admin&w=majority&tls=true&tlsCAFile=/,
    );
    // The driver parses them into TLS with that CA file, and verification left on (no rejectUnauthorized: false, no checkServerIdentity that accepts anything)
    const options = new MongoClient(connectionUrl(tls.adminConnection, 'secret', 'mongodb', 27017, {})).options;
    expect([options.tls, options.tlsCAFile, options.rejectUnauthorized, options.checkServerIdentity]).toEqual([true, CLIENT_CA_PATH, undefined, undefined]);
  });

  it('stay as they were without TLS', () => {
    expect(connectionUrl(plain.adminConnection, 'secret', 'mongodb', 27017)).toBe('mongodb://root:secret@mongodb:27017/allixios?authSource=admin&w=majority');
    expect(connectionUrl(plain.appConnection, 'secret', 'mongodb', 27017)).toBe('mongodb://allixios_app:secret@mongodb:27017/allixios?authSource=admin&w=majority');
  });
});

describe("the bootstrap's driver options for a MongoDB URL", () => {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-mongodb-tls-options-'));
  const caFile = join(directory, 'ca.crt');
  const ca = '-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n';
  writeFileSync(caFile, ca);
  const tlsUrl = (file: string) => `mongodb://root:p%40ss@localhost:27017/allixios?authSource=admin&tls=true&tlsCAFile=${encodeURIComponent(file)}`;

  it('give the driver TLS and the CA bundle the URL names, read at once', () => {
    expect(mongoTlsOptions(tlsUrl(caFile))).toEqual({ tls: true, tlsCAFile: caFile, ca: Buffer.from(ca) });
    const options = mongoClientOptions(tlsUrl(caFile), 5_000, {});
    expect(options).toMatchObject({ tls: true, tlsCAFile: caFile, ca: Buffer.from(ca), serverSelectionTimeoutMS: 5_000 });
    // What the driver makes of URL and options together: TLS, our CA, nothing verified less
    const parsed = new MongoClient(tlsUrl(caFile), options).options;
    expect([parsed.tls, parsed.tlsCAFile, parsed.ca, parsed.rejectUnauthorized, parsed.checkServerIdentity]).toEqual([true, caFile, Buffer.from(ca), undefined, undefined]);
  });

  it('read option names case-insensitively, as the driver does', () => {
    expect(mongoTlsOptions(`mongodb://u:p@localhost/allixios?TLS=true&tlscafile=${encodeURIComponent(caFile)}`)).toMatchObject({ tls: true, tlsCAFile: caFile });
    expect(() => mongoTlsOptions(`mongodb://u:p@localhost/allixios?tlscafile=${encodeURIComponent(caFile)}`)).toThrow(/does not ask for TLS/);
  });

  it("stay plain for a plain URL; trust Node's built-in CAs for a TLS URL without one, and for mongodb+srv", () => {
    expect(mongoTlsOptions('mongodb://u:p@localhost:27017/allixios?authSource=admin')).toEqual({});
    expect(mongoClientOptions('mongodb://u:p@localhost:27017/allixios', 5_000, {})).not.toHaveProperty('tls');
    expect(mongoTlsOptions('mongodb://u:p@db.example.com/allixios?tls=true')).toEqual({ tls: true });
    expect(mongoTlsOptions('mongodb+srv://u:p@cluster0.example.net/allixios')).toEqual({ tls: true });
    expect(mongoTlsOptions('mongodb+srv://u:p@cluster0.example.net/allixios?tls=false')).toEqual({});
  });

  it('fail with the engine and the path when the CA bundle cannot be read, rather than connecting unverified', () => {
    expect(() => mongoTlsOptions(tlsUrl('/nowhere/ca.crt'))).toThrow(/^mongodb: the URL asks for TLS but the CA bundle \/nowhere\/ca\.crt cannot be read/);
    expect(() => mongoClientOptions(tlsUrl('/nowhere/ca.crt'), 5_000, {})).toThrow(/^mongodb: .*\/nowhere\/ca\.crt/);
  });

  it('refuse a CA file in a URL without TLS, and a URL that turns a verification off', () => {
    expect(() => mongoTlsOptions(`mongodb://u:p@localhost/allixios?tlsCAFile=${encodeURIComponent(caFile)}`)).toThrow(
      /^mongodb: the URL names a CA file \(tlsCAFile=.*\) but does not ask for TLS \(tls=true\): the driver would ignore it and connect in clear text$/,
    );
    expect(() => mongoTlsOptions(`${tlsUrl(caFile)}&tlsAllowInvalidHostnames=true&tlsInsecure=true`)).toThrow(
      /turns off the verification of the server's certificate \(tlsInsecure=true, tlsAllowInvalidHostnames=true\)/,
    );
  });
});

describe("a MongoDB URL that repeats a TLS option behind the stack's tls=true", () => {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-mongodb-tls-attack-'));
  const caFile = join(directory, 'ca.crt');
  writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nstack\n-----END CERTIFICATE-----\n');
  const stackUrl = `mongodb://root:secret@mongodb.allixios.svc:27017/allixios?authSource=admin&tls=true&tlsCAFile=${encodeURIComponent(caFile)}`;
  /** What the driver makes of the URL with the bootstrap's options: the URL's first tls is the one the bootstrap reads. */
  const driverOptions = (url: string) => new MongoClient(url, mongoClientOptions(url, 5_000, {})).options;

  it('cannot turn TLS or the verification off: the driver refuses the repetition or a value it does not know, or keeps TLS with the CA', () => {
    for (const extra of [
      '&tls=false',
      '&ssl=false',
      '&tlsCAFile=%2Fetc%2Fssl%2Fcerts%2Fca-certificates.crt',
      '&tlsInsecure=false&tlsInsecure=true',
      '&tlsInsecure=TRUE',
      '&tlsAllowInvalidCertificates=yes',
    ]) {
      expect(() => driverOptions(`${stackUrl}${extra}`), extra).toThrow();
    }
    // Another case of the name is another option to the driver's repetition check, and the bootstrap's tls=true wins
    const parsed = driverOptions(`${stackUrl}&TLS=false`);
    expect([parsed.tls, parsed.tlsCAFile, parsed.rejectUnauthorized, parsed.checkServerIdentity]).toEqual([true, caFile, undefined, undefined]);
    expect(() => driverOptions(`${stackUrl}&TLSINSECURE=true`)).toThrow(/turns off the verification/);
  });
});

describe.skipIf(!hasOpenssl)('the bootstrap driver over TLS (needs openssl)', () => {
  let issued: IssuedCertificates;
  let other: IssuedCertificates;
  let server: Server;
  let port: number;
  /** Bytes each TLS connection received after its handshake: the driver's first command. */
  const received: number[] = [];

  beforeAll(async () => {
    issued = issueCertificates(['mongodb', 'localhost']);
    other = issueCertificates(['localhost']);
    server = createServer({ cert: issued.certificate, key: issued.key }, (socket) => {
      const index = received.push(0) - 1;
      socket.on('data', (chunk: Buffer) => {
        received[index]! += chunk.length;
        // Not a MongoDB server: it takes the first command, then hangs up.
        socket.destroy();
      });
      socket.on('error', () => undefined);
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** One connection attempt of the bootstrap's client; its error (the server never answers like a MongoDB). */
  const attempt = async (host: string, caFile: string): Promise<Error> => {
    const url = `mongodb://root:secret@${host}:${port}/allixios?authSource=admin&directConnection=true&tls=true&tlsCAFile=${encodeURIComponent(caFile)}`;
    const client = new MongoClient(url, mongoClientOptions(url, 1_500, {}));
    try {
      await client.connect();
      throw new Error('connected to a server that is not MongoDB');
    } catch (error) {
      return error as Error;
    } finally {
      await client.close().catch(() => undefined);
    }
  };

  it('completes the handshake with the CA the URL names, for the host name the certificate carries, and sends its first command over it', async () => {
    const before = received.length;
    await attempt('localhost', issued.caFile);
    const connections = received.slice(before);
    expect(connections.length).toBeGreaterThan(0);
    expect(connections.some((bytes) => bytes > 0)).toBe(true);
  });

  it('refuses a certificate another CA signed, sending nothing', async () => {
    const before = received.length;
    const error = await attempt('localhost', other.caFile);
    expect(error.message).toMatch(/self[- ]signed|unable to verify|certificate/i);
    expect(received.slice(before).filter((bytes) => bytes > 0)).toEqual([]);
  });

  it('refuses a host name the certificate does not carry, sending nothing', async () => {
    const before = received.length;
    const error = await attempt('127.0.0.1', issued.caFile);
    expect(error.message).toMatch(/altnames|Hostname|IP: 127\.0\.0\.1/i);
    expect(received.slice(before).filter((bytes) => bytes > 0)).toEqual([]);
  });
});
