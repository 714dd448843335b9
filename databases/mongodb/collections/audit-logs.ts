/**
 * audit_logs: who did what to which object, when and from where. Append-only: the platform
 * inserts and never updates; documents expire after AUDIT_RETENTION_DAYS (TTL index on `at`).
 */
import type { CollectionDefinition } from '../collection-definition.ts';
import type { BsonSchema } from '../json-schema.ts';
import { objectId, timestamp } from './fields.ts';

/**
 * Thirteen months and a bit: a year-over-year review (an annual audit, "who changed this last
 * spring") still finds last year's entries for the same month.
 */
export const AUDIT_RETENTION_DAYS = 400;

export const ACTOR_TYPES = ['user', 'service', 'system'] as const;

export const auditLogsSchema: BsonSchema = {
  bsonType: 'object',
  title: 'audit log entry',
  required: ['_id', 'actor', 'action', 'at'],
  additionalProperties: false,
  properties: {
    _id: objectId,
    actor: {
      bsonType: 'object',
      required: ['type', 'id'],
      additionalProperties: false,
      properties: {
        type: { enum: [...ACTOR_TYPES], description: `one of ${ACTOR_TYPES.join(', ')}` },
        // A user's uuid, a service's name, or the job name for system.
        id: { bsonType: 'string', minLength: 1, maxLength: 128, description: 'user uuid, service or job name' },
        // The display name at the time of the action, so the entry reads well after a rename or
        // an account deletion.
        name: { bsonType: 'string', maxLength: 200 },
      },
    },
    action: {
      bsonType: 'string',
      // resource.verb, dotted and lower-case: article.publish, user.role.change.
      pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$',
      maxLength: 100,
      description: 'dotted resource.verb, e.g. article.publish',
    },
    target: {
      bsonType: 'object',
      required: ['type', 'id'],
      additionalProperties: false,
      properties: {
        type: { bsonType: 'string', pattern: '^[a-z][a-z0-9_]*$', maxLength: 50, description: 'kind of object: article, user, category, ...' },
        id: { bsonType: 'string', minLength: 1, maxLength: 128 },
      },
      description: 'the object acted on; absent for actions without one (sign-in)',
    },
    at: timestamp('when the action happened; drives the TTL'),
    // Textual IPv4 or IPv6 address (45 characters is the longest IPv6 form with an embedded IPv4).
    ip: { bsonType: 'string', pattern: '^[0-9A-Fa-f:.]+$', maxLength: 45, description: 'client address' },
    requestId: { bsonType: 'string', maxLength: 128, description: 'correlates with application_logs' },
    details: { bsonType: 'object', description: 'action-specific data (old and new values, reason)' },
  },
};

export const auditLogs: Omit<CollectionDefinition, 'indexes'> = {
  name: 'audit_logs',
  description: 'append-only audit trail of user and service actions',
  validator: { $jsonSchema: auditLogsSchema },
  // strict: every write is validated; the collection is append-only, so there are no older
  // documents whose updates would need tolerating.
  validationLevel: 'strict',
  // error: an audit entry without an actor, an action or a time is worthless as evidence, and
  // with warn it would be stored and only noticed in mongod's log. The writer gets the error and
  // can fail the audited operation, which is what an audit trail asks for.
  validationAction: 'error',
};
