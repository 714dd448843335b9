/**
 * The Kubernetes target's renewal mechanism: the readiness check reloads the engine when the
 * mounted certificate changed. Run here with `sh` as the kubelet would run the probe's command.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readinessWithReload, readinessWithReloadOf } from '../stacks/kubernetes/tls.ts';

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

describe('the readiness check of a pooler, which re-reads its auth file and its certificate', () => {
  const directory = mkdtempSync(join(tmpdir(), 'allixios-pooler-reload-'));
  const reloads = join(directory, 'reloads');
  const [authFile, certificate] = [join(directory, 'userlist.txt'), join(directory, 'tls.crt')];
  writeFileSync(authFile, '"allixios_app" "SCRAM-SHA-256$first"');
  writeFileSync(certificate, 'first certificate');
  const probe = () => {
    const [program, ...args] = readinessWithReloadOf(['true'], [authFile, certificate], { command: ['sh', '-c', `echo reload >> '${reloads}'`] }, directory);
    return spawnSync(program!, args);
  };
  const reloadCount = () => readFileSync(reloads, 'utf8').trim().split('\n').length;

  it('reloads when a rotated password reaches the auth file, and again when the certificate is renewed', () => {
    probe();
    probe();
    expect(reloadCount()).toBe(1);
    // A password rotation: the kubelet refreshes the Secret's auth file with the new verifier
    writeFileSync(authFile, '"allixios_app" "SCRAM-SHA-256$rotated"');
    probe();
    probe();
    expect(reloadCount()).toBe(2);
    writeFileSync(certificate, 'renewed certificate');
    probe();
    expect(reloadCount()).toBe(3);
  });

  it('refuses to watch nothing', () => {
    expect(() => readinessWithReloadOf(['true'], [], { command: ['true'] })).toThrow(/at least one file/);
  });
});
