/** Human and JSON renderings of a bootstrap report. */
import { assetLabel, type Asset } from './assets.ts';
import type { BootstrapReport, EngineReport } from './runner.ts';

function assetJson(asset: Asset) {
  return {
    kind: asset.kind,
    ...(asset.version !== undefined ? { version: asset.version } : {}),
    name: asset.name,
    path: asset.path,
    checksum: asset.checksum,
    transactional: asset.transactional,
  };
}

/** The report without file contents, for `--json`. */
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
      ...(engine.credentials
        ? {
            credentials: {
              changes: engine.credentials.changes.map(({ subject, action, detail, source }) => ({ subject, action, detail, source })),
              changed: engine.credentials.changed.map(({ change, durationMs }) => ({ subject: change.subject, action: change.action, durationMs })),
            },
          }
        : {}),
      ...(engine.verifiedLogin ? { verifiedLogin: engine.verifiedLogin } : {}),
      ...(engine.plan
        ? {
            plan: engine.plan.steps.map((step) => ({ ...assetJson(step.asset), reason: step.reason })),
            status: engine.plan.statuses.map((status) => ({
              ...assetJson(status.asset),
              state: status.state,
              ...(status.entry?.appliedAt ? { appliedAt: status.entry.appliedAt.toISOString(), appliedBy: status.entry.appliedBy } : {}),
            })),
            problems: engine.plan.problems,
          }
        : {}),
      applied: engine.applied.map((applied) => ({ ...assetJson(applied.asset), durationMs: applied.durationMs })),
      ...(engine.statePlan
        ? {
            changes: engine.statePlan.changes.map(({ subject, action, detail, source }) => ({ subject, action, detail, source })),
            inSync: engine.statePlan.inSync,
            refusals: engine.statePlan.refusals,
            changed: engine.changed.map(({ change, durationMs }) => ({ subject: change.subject, action: change.action, durationMs })),
          }
        : {}),
    })),
  };
}

const pad = (text: string, width: number) => text.padEnd(width);

function header(engine: EngineReport, report: BootstrapReport): string {
  const where = engine.target ?? (report.offline ? 'offline' : '');
  const suffix = report.mode === 'dry-run' ? (report.offline ? '  (dry run: the plan for an empty engine, nothing contacted)' : '  (dry run: nothing changed)') : '';
  return `${engine.engine}  ${where}${suffix}`;
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
  const lines = [header(engine, report), ...credentialLines(engine, report)];
  const plan = engine.plan;
  const width = Math.max(5, ...(plan?.statuses ?? []).map((status) => assetLabel(status.asset).length));
  const label = (asset: Asset) => pad(assetLabel(asset), width);
  if (plan) {
    if (report.mode === 'dry-run') {
      plan.steps.forEach((step, index) =>
        lines.push(`  ${String(index + 1).padStart(3)}. ${pad(step.reason === 'changed' ? 're-apply' : 'apply', 8)} ${label(step.asset)} ${step.asset.path}${step.asset.transactional ? '' : '  (no transaction)'}`),
      );
      const applied = plan.statuses.filter((status) => status.state === 'applied').length;
      lines.push(`  ${plan.steps.length} to apply, ${applied} already applied`);
    } else if (report.mode === 'status') {
      for (const status of plan.statuses) {
        const when = status.entry?.appliedAt ? `  ${status.entry.appliedAt.toISOString()} by ${status.entry.appliedBy}` : '';
        lines.push(`  ${pad(status.state, 8)} ${label(status.asset)} ${status.asset.path}${status.state === 'applied' ? when : ''}`);
      }
      const count = (state: string) => plan.statuses.filter((status) => status.state === state).length;
      lines.push(`  ${count('applied')} applied, ${count('pending')} pending, ${count('changed')} changed${count('edited') ? `, ${count('edited')} edited after it was applied` : ''}`);
    } else {
      for (const applied of engine.applied) {
        lines.push(`  applied  ${label(applied.asset)} ${applied.asset.path}  ${applied.durationMs} ms`);
      }
      const already = plan.statuses.filter((status) => status.state === 'applied').length;
      lines.push(`  ${engine.applied.length} applied now, ${already} already applied, ${(engine.durationMs / 1000).toFixed(2)} s`);
    }
    for (const problem of plan.problems) lines.push(`  problem: ${problem}`);
  }
  if (engine.statePlan) lines.push(...stateLines(engine, report));
  return lines;
}

function stateLines(engine: EngineReport, report: BootstrapReport): string[] {
  const plan = engine.statePlan!;
  const lines: string[] = [];
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

/** Every error of a report, the run's own first. */
export function reportErrors(report: BootstrapReport): string[] {
  return [report.error, ...report.engines.map((engine) => engine.error)].filter((message): message is string => Boolean(message));
}

/** The report for a terminal; errors are returned apart, for stderr. */
export function reportText(report: BootstrapReport): { out: string; err: string } {
  const out = report.engines.flatMap((engine) => engineLines(engine, report)).join('\n');
  return { out: out ? `${out}\n` : '', err: reportErrors(report).map((message) => `error: ${message}\n`).join('') };
}
