/**
 * application_logs: structured log events of the platform's services (the level names are
 * pino's). Kept for APPLICATION_LOG_RETENTION_DAYS by a TTL index on `at`.
 *
 * A regular collection with a TTL index, not a time series collection: MongoDB does not allow a
 * validator on a time series collection, and this one is meant to have a schema.
 */
import type { CollectionDefinition } from '../collection-definition.ts';
import type { BsonSchema } from '../json-schema.ts';
import { objectId, timestamp } from './fields.ts';

/** Long enough to compare this week with the previous ones; older history lives in ClickHouse. */
export const APPLICATION_LOG_RETENTION_DAYS = 30;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/** Writers truncate longer messages; anything bigger belongs in `context`. */
export const MESSAGE_MAX_LENGTH = 10_000;

export const applicationLogsSchema: BsonSchema = {
  bsonType: 'object',
  title: 'application log event',
  required: ['_id', 'level', 'service', 'message', 'at'],
  additionalProperties: false,
  properties: {
    _id: objectId,
    level: { enum: [...LOG_LEVELS], description: `one of ${LOG_LEVELS.join(', ')}` },
    service: { bsonType: 'string', pattern: '^[a-z][a-z0-9-]*$', maxLength: 64, description: 'emitting service, kebab-case' },
    message: { bsonType: 'string', maxLength: MESSAGE_MAX_LENGTH, description: `at most ${MESSAGE_MAX_LENGTH} characters` },
    at: timestamp('when the event happened; drives the TTL'),
    host: { bsonType: 'string', maxLength: 255, description: 'pod or host name' },
    // W3C trace context trace-id: 32 lower-case hex digits.
    traceId: { bsonType: 'string', pattern: '^[0-9a-f]{32}$', description: 'W3C trace id' },
    requestId: { bsonType: 'string', maxLength: 128 },
    context: { bsonType: 'object', description: 'event-specific structured data' },
  },
};

export const applicationLogs: Omit<CollectionDefinition, 'indexes'> = {
  name: 'application_logs',
  description: 'structured application log events',
  validator: { $jsonSchema: applicationLogsSchema },
  // strict: every insert is checked (and, with warn below, reported).
  validationLevel: 'strict',
  // warn, unlike every other collection: logging must never fail the request that logs, and a
  // log line dropped because of its shape is lost exactly when something unexpected happens.
  // mongod still writes each violation to its own log, so schema drift is visible without
  // losing the event.
  validationAction: 'warn',
};
