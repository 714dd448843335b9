/**
 * Indexes of audit_logs. Named explicitly: the bootstrap matches indexes by name.
 */
import { days, type NamedIndexDescription } from '../collection-definition.ts';
import { AUDIT_RETENTION_DAYS } from '../collections/audit-logs.ts';

export const auditLogsIndexes: NamedIndexDescription[] = [
  {
    // Expiry, and time-range queries over all actors. A TTL index must be single-field; changing
    // expireAfterSeconds later is a collMod, not a drop and rebuild.
    name: 'at_ttl',
    key: { at: 1 },
    expireAfterSeconds: days(AUDIT_RETENTION_DAYS),
  },
  {
    // "What did this user do", newest first.
    name: 'actor_at',
    key: { 'actor.id': 1, at: -1 },
  },
  {
    // "Who touched this article", newest first.
    name: 'target_at',
    key: { 'target.type': 1, 'target.id': 1, at: -1 },
  },
  {
    // "Every role change last month".
    name: 'action_at',
    key: { action: 1, at: -1 },
  },
];
