/** Human and JSON renderings of a bootstrap report. */
import type { Change } from './contract.ts';
import type { BootstrapReport, EngineReport } from './runner.ts';

/** A change without its payload, which is never printed. */
const changeJson = ({ subject, action, detail, source }: Change) => ({ subject, action, detail, source });

/** The report without payloads, for `--json`. */
export function reportJson(report: BootstrapReport): unknown {
  return {
    mode: report.mode,
    offline: report.offline,
    ok: report.ok,
    ...(report.error ? { error: report.error } : {}),
    engines: report.engines.map((engine) => ({
      engine: engine.engine,
      ...(engine.target ? { target: engine.target } : {}),
      durationMs: engine.durationMs,
      ...(engine.error ? { error: engine.error } : {}),
      ...(engine.login ? { login: engine.login } : {}),
      ...(engine.membership
        ? {
            membership: {
              changes: engine.membership.plan.changes.map(changeJson),
              inSync: engine.membership.plan.inSync,
              refusals: engine.membership.plan.refusals,
              changed: engine.membership.changed.map(({ change, durationMs }) => ({ subject: change.subject, action: change.action, durationMs })),
            },
          }
        : {}),
      ...(engine.credentials
        ? {
            credentials: {
              changes: engine.credentials.changes.map(changeJson),
              changed: engine.credentials.changed.map(({ change, durationMs }) => ({ subject: change.subject, action: change.action, durationMs })),
            },
          }
        : {}),
      ...(engine.verifiedLogin ? { verifiedLogin: engine.verifiedLogin } : {}),
      ...(engine.plan ? { changes: engine.plan.changes.map(changeJson), inSync: engine.plan.inSync, refusals: engine.plan.refusals } : {}),
      changed: engine.changed.map(({ change, durationMs }) => ({ subject: change.subject, action: change.action, durationMs })),
    })),
  };
}

const pad = (text: string, width: number) => text.padEnd(width);

function header(engine: EngineReport, report: BootstrapReport): string {
  const where = engine.target ?? (report.offline ? 'offline' : '');
  const suffix = report.mode === 'dry-run' ? (report.offline ? '  (dry run: the plan for a freshly deployed engine, nothing contacted)' : '  (dry run: nothing changed)') : '';
  return `${engine.engine}  ${where}${suffix}`;
}

/** What the run did, or would do, to the engine's cluster members (a replica set's). */
function membershipLines(engine: EngineReport, report: BootstrapReport): string[] {
  const membership = engine.membership;
  if (!membership) return [];
  const lines: string[] = [];
  if (report.mode === 'apply') {
    for (const { change, durationMs } of membership.changed) lines.push(`  ${pad(change.action, 8)} ${change.subject}: ${change.detail}  ${durationMs} ms`);
  } else {
    for (const change of membership.plan.changes) lines.push(`  ${pad(change.action, 8)} ${change.subject}: ${change.detail}  (${change.source})`);
    if (report.mode === 'status') for (const subject of membership.plan.inSync) lines.push(`  in sync  ${subject}`);
    if (membership.plan.blocksConnection) lines.push('  the set accepts no connection before these changes: what follows is the plan for a freshly deployed engine');
  }
  for (const refusal of membership.plan.refusals) lines.push(`  refused: ${refusal}`);
  return lines;
}

/** How the run logged in and what it did to the engine's logins (a password rotation). */
function credentialLines(engine: EngineReport, report: BootstrapReport): string[] {
  const lines: string[] = [];
  if (engine.login === 'previous') lines.push('  logged in with the previous password the rotation keeps: the engine did not have the current one yet');
  const credentials = engine.credentials;
  if (credentials) {
    if (report.mode === 'apply') {
      for (const { change, durationMs } of credentials.changed) lines.push(`  ${pad(change.action, 8)} ${change.subject}: ${change.detail}  ${durationMs} ms`);
    } else {
      for (const change of credentials.changes) lines.push(`  ${pad(change.action, 8)} ${change.subject}: ${change.detail}  (${change.source})`);
    }
  }
  if (engine.verifiedLogin) lines.push(`  the application's login ${engine.verifiedLogin} is accepted`);
  return lines;
}

function engineLines(engine: EngineReport, report: BootstrapReport): string[] {
  const lines = [header(engine, report), ...membershipLines(engine, report), ...credentialLines(engine, report)];
  const plan = engine.plan;
  if (!plan) return lines;
  if (report.mode === 'apply') {
    for (const { change, durationMs } of engine.changed) lines.push(`  ${pad(change.action, 8)} ${change.subject}: ${change.detail}  ${durationMs} ms`);
    lines.push(`  ${engine.changed.length} changed now, ${plan.inSync.length} already as defined, ${(engine.durationMs / 1000).toFixed(2)} s`);
  } else {
    plan.changes.forEach((change, index) =>
      lines.push(`  ${report.mode === 'dry-run' ? `${String(index + 1).padStart(3)}. ` : ''}${pad(change.action, 8)} ${change.subject}: ${change.detail}  (${change.source})`),
    );
    if (report.mode === 'status') for (const subject of plan.inSync) lines.push(`  in sync  ${subject}`);
    lines.push(`  ${plan.changes.length} to change, ${plan.inSync.length} already as defined`);
  }
  for (const refusal of plan.refusals) lines.push(`  refused: ${refusal}`);
  return lines;
}

/** The CLI's exit code for a report: 0 only when everything asked for is done (for status: nothing left to do). */
export function exitCode(report: BootstrapReport): 0 | 1 {
  return report.ok ? 0 : 1;
}

/** Every error of a report, the run's own first. */
export function reportErrors(report: BootstrapReport): string[] {
  return [report.error, ...report.engines.map((engine) => engine.error)].filter((message): message is string => Boolean(message));
}

/** The report for a terminal; errors are returned apart, for stderr. */
export function reportText(report: BootstrapReport): { out: string; err: string } {
  const out = report.engines.flatMap((engine) => engineLines(engine, report)).join('\n');
  return {
    out: out ? `${out}\n` : '',
    err: reportErrors(report)
      .map((message) => `error: ${message}\n`)
      .join(''),
  };
}
