/**
 * Throwaway CAs and server certificates (openssl), as cert-manager would issue them, for tests
 * that prove a server serves them and a client verifies the chain and the host name against the
 * stack's CA. Files are named as in an engine's TLS directory (`TLS_FILES`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLS_FILES } from '../../databases/engine.ts';

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(directory: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: directory, stdio: 'pipe' });
}

/** A self-signed CA in `directory`: its certificate `file` (default `ca.crt`) and its key `<file>.key`. Returns the certificate's path. */
export function issueCa(directory: string, name = 'Allixios test CA', file: string = TLS_FILES.ca): string {
  openssl(
    directory,
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    `${file}.key`,
    '-out',
    file,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  return join(directory, file);
}

/**
 * A server certificate for `names` (DNS names), signed by the CA `issueCa` put in `directory`,
 * written there as `tls.crt` and `tls.key` (in place: a renewal when they exist); the key 0600,
 * as PostgreSQL requires of a key its user owns. `commonName` (default the first name) and
 * `clientAuth` (the certificate also proves a client, as cert-manager's engine certificates do:
 * pgBackRest's agent admits the backup jobs by it) as the Kubernetes target issues them.
 */
export function issueServerCertificate(directory: string, names: string[], options: { commonName?: string; clientAuth?: boolean } = {}): void {
  writeFileSync(
    join(directory, 'server.ext'),
    `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}\nextendedKeyUsage=serverAuth${options.clientAuth ? ',clientAuth' : ''}\n`,
  );
  openssl(directory, 'req', ...EC_KEY, '-keyout', TLS_FILES.key, '-out', 'server.csr', '-subj', `/CN=${options.commonName ?? names[0]}`);
  openssl(
    directory,
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    TLS_FILES.ca,
    '-CAkey',
    `${TLS_FILES.ca}.key`,
    '-CAcreateserial',
    '-out',
    TLS_FILES.certificate,
    '-days',
    '1',
    '-extfile',
    'server.ext',
  );
  chmodSync(join(directory, TLS_FILES.key), 0o600);
}

export interface IssuedCertificates {
  directory: string;
  /** Path of the CA certificate (`ca.crt`). */
  caFile: string;
  certificate: string;
  key: string;
  ca: string;
}

/** A CA and a server certificate for `names` (DNS names), in a new temporary directory. */
export function issueCertificates(names: string[]): IssuedCertificates {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-certificates-'));
  issueCa(directory);
  issueServerCertificate(directory, names);
  const read = (file: string) => readFileSync(join(directory, file), 'utf8');
  return { directory, caFile: join(directory, TLS_FILES.ca), certificate: read(TLS_FILES.certificate), key: read(TLS_FILES.key), ca: read(TLS_FILES.ca) };
}
