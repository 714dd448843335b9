/**
 * The CA bundle a bootstrap client verifies a TLS engine with, for drivers that do not read it
 * from the URL (Elasticsearch's and ClickHouse's clients take it as bytes). The file is the one
 * the targets put at `CLIENT_CA_PATH`: the CA ConfigMap in the Kubernetes Job, an upload in the
 * Docker run.
 */
import { readFileSync } from 'node:fs';
import { CLIENT_CA_PATH } from '../../databases/connection.ts';
import { BootstrapError, toError } from '../errors.ts';

/** Reads the CA bundle; a missing file is an error naming the engine and the path, not a silent unverified connection. */
export function readClientCa(engine: string, caFile: string = CLIENT_CA_PATH): Buffer {
  try {
    return readFileSync(caFile);
  } catch (error) {
    throw new BootstrapError(engine, `the URL asks for TLS but the CA bundle ${caFile} cannot be read: ${toError(error).message}`, { cause: error });
  }
}
