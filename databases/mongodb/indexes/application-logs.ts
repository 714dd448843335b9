/**
 * Indexes of application_logs. Named explicitly: the bootstrap matches indexes by name.
 */
import { days, type NamedIndexDescription } from '../collection-definition.ts';
import { APPLICATION_LOG_RETENTION_DAYS } from '../collections/application-logs.ts';

export const applicationLogsIndexes: NamedIndexDescription[] = [
  {
    // Expiry, and "everything between 10:02 and 10:05".
    name: 'at_ttl',
    key: { at: 1 },
    expireAfterSeconds: days(APPLICATION_LOG_RETENTION_DAYS),
  },
  {
    // "Errors of the search service in the last hour": equality on service and level, then the
    // time sort.
    name: 'service_level_at',
    key: { service: 1, level: 1, at: -1 },
  },
  {
    // "Every fatal event today", across services.
    name: 'level_at',
    key: { level: 1, at: -1 },
  },
  {
    // All events of one request across services. Sparse: most events carry no trace id, and
    // lookups are always by a given id, which a sparse index answers completely.
    name: 'trace',
    key: { traceId: 1 },
    sparse: true,
  },
];
