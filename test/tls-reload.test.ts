/**
 * The Kubernetes target's renewal mechanism: the readiness check reloads the engine when the
 * mounted certificate changed. Run here with `sh` as the kubelet would run the probe's command.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readinessWithReload } from '../stacks/kubernetes/tls.ts';

describe('the readiness check of an engine serving TLS', () => {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-tls-reload-'));
  const reloads = join(directory, 'reloads');
  writeFileSync(join(directory, 'tls.crt'), 'first certificate');
  const probe = (check: string[]) => {
    const [program, ...args] = readinessWithReload(check, { directory, reload: { command: ['sh', '-c', `echo reload >> '${reloads}'`] } }, directory);
    return spawnSync(program!, args);
  };
  const reloadCount = () => readFileSync(reloads, 'utf8').trim().split('\n').length;

  it('reloads once after a start, not again while the certificate stays, and again when it is renewed', () => {
    // Given a fresh pod: the first check reloads (nothing recorded yet)
    expect(probe(['true']).status).toBe(0);
    expect(reloadCount()).toBe(1);
    // When the certificate is unchanged, later checks do not reload
    probe(['true']);
    probe(['true']);
    expect(reloadCount()).toBe(1);
    // When the kubelet refreshes the mounted Secret with a renewed certificate, the next check reloads once
    writeFileSync(join(directory, 'tls.crt'), 'renewed certificate');
    probe(['true']);
    probe(['true']);
    expect(reloadCount()).toBe(2);
  });

  it("answers with the engine's own check, whatever the reload did", () => {
    expect(probe(['false']).status).toBe(1);
    expect(probe(['sh', '-c', 'exit 3']).status).toBe(3);
  });
});
