/**
 * Checksums of asset files. A checkout with CRLF line endings, a trailing space or a missing final
 * newline is the same migration; any other edit is a different one.
 */
import { createHash } from 'node:crypto';

/** The text a checksum is computed over: LF endings, no trailing blanks, no BOM. */
export function normalizeForChecksum(content: string): string {
  return content
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\r|\n/)
    .map((line) => line.trimEnd())
    .join('\n')
    .replace(/\n+$/, '');
}

/** `sha256:<hex>` of the normalized content. */
export function checksum(content: string): string {
  return `sha256:${createHash('sha256').update(normalizeForChecksum(content)).digest('hex')}`;
}
