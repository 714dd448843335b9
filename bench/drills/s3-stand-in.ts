/**
 * A stand-in for the stack's object store, for ClickHouse's `BACKUP ... TO S3` on chdb (the drill
 * `bench/drills/clickhouse-backup.ts` and `test/engines/clickhouse-backup.test.ts`): an
 * in-memory S3 of one process on 127.0.0.1, with the calls ClickHouse's backups make (objects:
 * PUT, GET with a range, HEAD, DELETE; ListObjectsV2; DeleteObjects; multipart uploads; server-side
 * copy). Path-style URLs only (`http://127.0.0.1:<port>/<bucket>/<key>`).
 *
 * It checks no signature, but records who signed each request (the access key id of its SigV4
 * `Authorization` header), so a test can tell which credentials ClickHouse used, and refuses an
 * unsigned request or one signed with another key with S3's own `403 AccessDenied`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';

export interface FakeS3 {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Objects by `<bucket>/<key>`. */
  objects: Map<string, Buffer>;
  /** The access key id of every request, in order ('' for an unsigned one). */
  signers: string[];
  /** Every request as `METHOD /path?query`. */
  requests: string[];
  close(): Promise<void>;
}

const xmlEscape = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

function body(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, content: string | Buffer = '', headers: Record<string, string> = {}): void {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  response.writeHead(status, { 'content-length': String(data.length), ...(typeof content === 'string' && content ? { 'content-type': 'application/xml' } : {}), ...headers });
  response.end(data);
}

const error = (code: string, message: string) => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;

/** Starts the store; `accessKeyId` is the only signer it accepts (absent: any signed request). */
export async function startFakeS3(options: { accessKeyId?: string } = {}): Promise<FakeS3> {
  const objects = new Map<string, Buffer>();
  const uploads = new Map<string, Map<number, Buffer>>();
  const signers: string[] = [];
  const requests: string[] = [];

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const method = request.method ?? 'GET';
    requests.push(`${method} ${url.pathname}${url.search}`);
    const signer = /Credential=([^/]+)\//.exec(request.headers.authorization ?? '')?.[1] ?? '';
    signers.push(signer);
    const data = await body(request);
    if (!signer || (options.accessKeyId !== undefined && signer !== options.accessKeyId)) {
      return send(response, 403, error('AccessDenied', `not signed by the expected key (got ${JSON.stringify(signer)})`));
    }
    const [, bucket = '', ...rest] = decodeURIComponent(url.pathname).split('/');
    const key = rest.join('/');
    const id = `${bucket}/${key}`;
    const query = url.searchParams;

    if (!key) {
      if (method === 'GET') {
        // ListObjectsV2: every key under the prefix, in order, in one page.
        const prefix = query.get('prefix') ?? '';
        const keys = [...objects.keys()]
          .filter((name) => name.startsWith(`${bucket}/${prefix}`))
          .map((name) => name.slice(bucket.length + 1))
          .sort();
        const contents = keys
          .map(
            (name) =>
              `<Contents><Key>${xmlEscape(name)}</Key><Size>${objects.get(`${bucket}/${name}`)!.length}</Size><LastModified>${new Date().toISOString()}</LastModified><ETag>"x"</ETag><StorageClass>STANDARD</StorageClass></Contents>`,
          )
          .join('');
        return send(
          response,
          200,
          `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`,
        );
      }
      if (method === 'POST' && query.has('delete')) {
        const deleted = [...data.toString().matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => match[1]!);
        for (const name of deleted) objects.delete(`${bucket}/${name}`);
        return send(
          response,
          200,
          `<?xml version="1.0" encoding="UTF-8"?><DeleteResult>${deleted.map((name) => `<Deleted><Key>${xmlEscape(name)}</Key></Deleted>`).join('')}</DeleteResult>`,
        );
      }
      if (method === 'HEAD') return send(response, 200);
      return send(response, 400, error('InvalidRequest', `${method} on a bucket`));
    }

    switch (method) {
      case 'PUT': {
        if (query.has('uploadId')) {
          uploads.get(query.get('uploadId')!)?.set(Number(query.get('partNumber')), data);
          return send(response, 200, '', { etag: `"part-${query.get('partNumber')}"` });
        }
        const source = request.headers['x-amz-copy-source'];
        if (typeof source === 'string') {
          const copied = objects.get(decodeURIComponent(source).replace(/^\//, ''));
          if (!copied) return send(response, 404, error('NoSuchKey', source));
          objects.set(id, copied);
          return send(
            response,
            200,
            `<?xml version="1.0" encoding="UTF-8"?><CopyObjectResult><ETag>"x"</ETag><LastModified>${new Date().toISOString()}</LastModified></CopyObjectResult>`,
          );
        }
        objects.set(id, data);
        return send(response, 200, '', { etag: '"x"' });
      }
      case 'POST': {
        if (query.has('uploads')) {
          const uploadId = randomUUID();
          uploads.set(uploadId, new Map());
          return send(
            response,
            200,
            `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
          );
        }
        if (query.has('uploadId')) {
          const parts = uploads.get(query.get('uploadId')!);
          if (!parts) return send(response, 404, error('NoSuchUpload', query.get('uploadId')!));
          objects.set(id, Buffer.concat([...parts.entries()].sort(([a], [b]) => a - b).map(([, part]) => part)));
          uploads.delete(query.get('uploadId')!);
          return send(
            response,
            200,
            `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${xmlEscape(key)}</Key><ETag>"x"</ETag></CompleteMultipartUploadResult>`,
          );
        }
        return send(response, 400, error('InvalidRequest', 'POST'));
      }
      case 'DELETE': {
        if (query.has('uploadId')) uploads.delete(query.get('uploadId')!);
        else objects.delete(id);
        return send(response, 204);
      }
      case 'HEAD':
      case 'GET': {
        const object = objects.get(id);
        if (!object) return method === 'HEAD' ? send(response, 404) : send(response, 404, error('NoSuchKey', key));
        const range = /^bytes=(\d+)-(\d*)$/.exec(String(request.headers.range ?? ''));
        const headers = { 'last-modified': new Date().toUTCString(), etag: '"x"', 'accept-ranges': 'bytes' };
        if (method === 'HEAD') {
          response.writeHead(200, { ...headers, 'content-length': String(object.length) });
          return response.end();
        }
        if (range) {
          const start = Number(range[1]);
          const end = range[2] ? Math.min(Number(range[2]), object.length - 1) : object.length - 1;
          return send(response, 206, object.subarray(start, end + 1), { ...headers, 'content-range': `bytes ${start}-${end}/${object.length}` });
        }
        return send(response, 200, object, headers);
      }
      default:
        return send(response, 405, error('MethodNotAllowed', method));
    }
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((failure: Error) => send(response, 500, error('InternalError', failure.message)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('fake S3: no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    objects,
    signers,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
