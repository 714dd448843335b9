/**
 * The desired state of the platform's MongoDB database: every collection with its validator,
 * validation level and action, and indexes. The bootstrap's MongoDB adapter compares this list
 * with the server and applies the difference; nothing here talks to a server.
 *
 * Validators live in `collections/`, indexes in `indexes/`, one file per collection each.
 */
import type { CollectionDefinition } from './collection-definition.ts';
import { applicationLogs } from './collections/application-logs.ts';
import { auditLogs } from './collections/audit-logs.ts';
import { contentDrafts } from './collections/content-drafts.ts';
import { metadata } from './collections/metadata.ts';
import { userPreferences } from './collections/user-preferences.ts';
import { applicationLogsIndexes } from './indexes/application-logs.ts';
import { auditLogsIndexes } from './indexes/audit-logs.ts';
import { contentDraftsIndexes } from './indexes/content-drafts.ts';
import { metadataIndexes } from './indexes/metadata.ts';
import { userPreferencesIndexes } from './indexes/user-preferences.ts';

export type { CollectionDefinition, CreationOptions, NamedIndexDescription, ValidationAction, ValidationLevel } from './collection-definition.ts';
export { bsonSchemaProblems, type BsonSchema } from './json-schema.ts';

/** The database the platform uses (the app connection's path, `/allixios`). */
export const MONGODB_DATABASE = 'allixios';

export const MONGODB_COLLECTIONS: readonly CollectionDefinition[] = [
  { ...contentDrafts, indexes: contentDraftsIndexes },
  { ...userPreferences, indexes: userPreferencesIndexes },
  { ...auditLogs, indexes: auditLogsIndexes },
  { ...applicationLogs, indexes: applicationLogsIndexes },
  { ...metadata, indexes: metadataIndexes },
];
