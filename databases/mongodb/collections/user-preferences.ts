/**
 * user_preferences: one document per PostgreSQL user with the settings the interface remembers
 * for them. Settings the platform knows are typed; new ones can be added by the application
 * without a schema change (`settings` allows further keys), up to a bound.
 */
import type { CollectionDefinition } from '../collection-definition.ts';
import type { BsonSchema } from '../json-schema.ts';
import { objectId, timestamp, uuidString } from './fields.ts';

export const THEMES = ['system', 'light', 'dark'] as const;
export const DIGEST_FREQUENCIES = ['off', 'daily', 'weekly'] as const;

const settings: BsonSchema = {
  bsonType: 'object',
  // Bounded so a client bug that writes keys in a loop fails instead of growing the document.
  maxProperties: 100,
  // true on purpose (the JSON Schema default, written out): settings are where new preferences
  // appear first; the known ones below are still type-checked.
  additionalProperties: true,
  properties: {
    theme: { enum: [...THEMES], description: `one of ${THEMES.join(', ')}` },
    // BCP 47 language tag as the browser reports it: en, en-GB, pt-BR, zh-Hant-TW.
    locale: { bsonType: 'string', pattern: '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$', maxLength: 35, description: 'BCP 47 language tag' },
    // IANA zone name (Europe/Berlin); checked against the zone database by the application.
    timezone: { bsonType: 'string', minLength: 1, maxLength: 64, description: 'IANA time zone name' },
    notifications: {
      bsonType: 'object',
      additionalProperties: false,
      properties: {
        email: { bsonType: 'bool' },
        push: { bsonType: 'bool' },
        digest: { enum: [...DIGEST_FREQUENCIES], description: `one of ${DIGEST_FREQUENCIES.join(', ')}` },
      },
    },
  },
};

export const userPreferencesSchema: BsonSchema = {
  bsonType: 'object',
  title: 'user preferences',
  required: ['_id', 'userId', 'settings', 'createdAt', 'updatedAt'],
  additionalProperties: false,
  properties: {
    _id: objectId,
    userId: uuidString('the PostgreSQL user these preferences belong to (unique)'),
    settings,
    createdAt: timestamp('first time preferences were saved'),
    updatedAt: timestamp('last change'),
  },
};

export const userPreferences: Omit<CollectionDefinition, 'indexes'> = {
  name: 'user_preferences',
  description: "users' interface settings, one document per user",
  validator: { $jsonSchema: userPreferencesSchema },
  // strict: every insert and update is validated. The documents are small and written only by
  // the platform, so there is no legacy shape to tolerate.
  validationLevel: 'strict',
  // error: a preference the interface cannot read back breaks the user's next page load; better
  // to refuse the write.
  validationAction: 'error',
};
