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

export class BootstrapError extends Error {
  constructor(
    readonly engine: EngineName,
    message: string,
    readonly location?: ErrorLocation,
    /** The engine's own error code (SQLSTATE, ...), when there is one. */
    readonly code?: string,
  ) {
    super(`${engine}: ${location ? `${describeLocation(location)}: ` : ''}${message}${code ? ` [${code}]` : ''}`);
    this.name = 'BootstrapError';
  }
}

export function describeLocation(location: ErrorLocation): string {
  const parts = [location.file];
  if (location.statement !== undefined) parts.push(`statement ${location.statement}`);
  if (location.line !== undefined) parts.push(`line ${location.line}${location.column !== undefined ? `, column ${location.column}` : ''}`);
  return parts.join(', ');
}
