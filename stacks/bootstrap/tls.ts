/** What the bootstrap run (Job or Docker container) is told about TLS, on both targets. */
import { TLS_ENGINES_VARIABLE } from '../../databases/connection.ts';
import type { StackConfig } from '../config/index.ts';

/**
 * `ALLIXIOS_TLS_ENGINES`: the stack's engines served over TLS, comma-separated, whose URLs the
 * bootstrap then refuses in any but a TLS form (`bootstrap/runner.ts`); undefined when none.
 */
export function tlsEnginesEnv(config: Pick<StackConfig, 'engines'>): { name: string; value: string } | undefined {
  const engines = config.engines.filter((engine) => engine.spec.tls).map((engine) => engine.spec.name);
  return engines.length > 0 ? { name: TLS_ENGINES_VARIABLE, value: engines.join(',') } : undefined;
}
