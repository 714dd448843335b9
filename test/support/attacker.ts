/**
 * What an attacker's suite against the PostgreSQL security contract needs (the attack and
 * side-channel suites): run a statement under a claim, and look for hidden values in everything
 * it gave back.
 */
import pg from 'pg';
import { expect } from 'vitest';
import type { EmbeddedPostgresServer } from '../../bootstrap/embedded/postgresql.ts';
import { as, type Actor } from './platform-world.ts';

/** What a statement gave back: rows, a row count, an error. */
export interface Outcome {
  rows?: unknown;
  rowCount?: number | null;
  error?: pg.DatabaseError;
}

/** Hidden values, each with the user whose own it is. */
export type HiddenValues = ReadonlyArray<[value: string, ownerOf: string]>;

/** Everything a statement gave back, as one string to look for hidden values in. */
export function everything(outcome: Outcome): string {
  const error = outcome.error;
  return JSON.stringify({
    rows: outcome.rows,
    rowCount: outcome.rowCount,
    error: error && { message: error.message, detail: error.detail, hint: error.hint, where: error.where, code: error.code },
  });
}

/** How a refusal looks, ids blanked: two refusals that must not be told apart compare equal. */
export function shape(outcome: Pick<Outcome, 'error' | 'rowCount'>): unknown {
  if (!outcome.error) return { rowCount: outcome.rowCount };
  return { code: outcome.error.code, message: outcome.error.message.replace(/[0-9a-f-]{36}/g, '<id>') };
}

/** A client of the application's role outside any claim: a connection of its own. */
export async function appClient(server: EmbeddedPostgresServer): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: server.url('allixios_app') });
  await client.connect();
  return client;
}

/** An attacker against a world whose hidden values are `hidden`. */
export function attacker(hidden: HiddenValues) {
  /** The hidden values `actor` may not see (staff see everything; these attacks are not theirs). */
  const hiddenFrom = (actor: Actor): string[] => hidden.filter(([, ownerOf]) => ownerOf !== actor.userId).map(([value]) => value);
  const expectNothingHidden = (actor: Actor, text: string): void => {
    for (const value of hiddenFrom(actor)) expect(text, `a hidden value came back: ${value}`).not.toContain(value);
  };
  /** The statement under `actor`, rolled back: what it gave back, checked for hidden values. */
  const attack = async (actor: Actor, sql: string, params: unknown[] = []): Promise<Outcome> => {
    const outcome = await as(actor, (tx) => tx.outcome(sql, params));
    if (!['editor', 'admin'].includes(actor.role ?? '')) expectNothingHidden(actor, everything(outcome));
    return outcome;
  };
  return { hiddenFrom, expectNothingHidden, attack };
}
