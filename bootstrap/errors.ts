/** Errors of the bootstrap: always with the engine, and where it applies the file and statement. */
import type { EngineName } from '../databases/engine.ts';

export interface ErrorLocation {
  /** Asset path relative to the repository root. */
  file: string;
  /** 1-based index of the statement in the file. */
  statement?: number;
  line?: number;
  column?: number;
}

/** Where an error happened and what caused it. */
export interface BootstrapErrorDetails {
  location?: ErrorLocation;
  /** The engine's own error code (SQLSTATE, ...), when there is one. */
  code?: string;
  /** The error it wraps (a driver's), kept for a debugger and for `error.cause` in logs. */
  cause?: unknown;
}

export class BootstrapError extends Error {
  readonly location?: ErrorLocation;
  readonly code?: string;

  constructor(
    readonly engine: EngineName,
    message: string,
    details: BootstrapErrorDetails = {},
  ) {
    const { location, code, cause } = details;
    super(`${engine}: ${location ? `${describeLocation(location)}: ` : ''}${message}${code ? ` [${code}]` : ''}`, cause === undefined ? undefined : { cause });
    this.name = 'BootstrapError';
    if (location) this.location = location;
    if (code !== undefined) this.code = code;
  }
}

export function describeLocation(location: ErrorLocation): string {
  const parts = [location.file];
  if (location.statement !== undefined) parts.push(`statement ${location.statement}`);
  if (location.line !== undefined) parts.push(`line ${location.line}${location.column !== undefined ? `, column ${location.column}` : ''}`);
  return parts.join(', ');
}

/** Whatever was thrown, as an Error (a driver may throw a string or a plain object). */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  let text: string;
  try {
    text = JSON.stringify(thrown) ?? String(thrown);
  } catch {
    text = String(thrown);
  }
  return new Error(text, { cause: thrown });
}
