/**
 * A throwaway CA and a server certificate it signs (openssl), as cert-manager would issue one,
 * for tests that prove a client verifies the chain and the host name against the stack's CA.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLS_FILES } from '../../databases/engine.ts';

export const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

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
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: directory, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    TLS_FILES.ca,
    '-days',
    '2',
    '-subj',
    '/CN=Allixios test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  writeFileSync(join(directory, 'server.ext'), `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}\nextendedKeyUsage=serverAuth\n`);
  openssl('req', ...ec, '-keyout', TLS_FILES.key, '-out', 'server.csr', '-subj', `/CN=${names[0]}`);
  openssl('x509', '-req', '-in', 'server.csr', '-CA', TLS_FILES.ca, '-CAkey', 'ca.key', '-CAcreateserial', '-out', TLS_FILES.certificate, '-days', '1', '-extfile', 'server.ext');
  const read = (file: string) => readFileSync(join(directory, file), 'utf8');
  return { directory, caFile: join(directory, TLS_FILES.ca), certificate: read(TLS_FILES.certificate), key: read(TLS_FILES.key), ca: read(TLS_FILES.ca) };
}
