/**
 * metadata: flexible, schema-less data attached to a PostgreSQL row (an article's SEO overrides,
 * a media item's EXIF data, a category's display hints), one document per (entityType, entityId),
 * with an optional GeoJSON location for place-based queries ($near, $geoWithin).
 */
import type { CollectionDefinition } from '../collection-definition.ts';
import type { BsonSchema } from '../json-schema.ts';
import { objectId, timestamp, uuidString } from './fields.ts';

/** The PostgreSQL tables whose rows can carry metadata. */
export const ENTITY_TYPES = ['article', 'category', 'tag', 'user', 'media', 'comment'] as const;

/**
 * A GeoJSON Point, the only shape the platform stores. Coordinates are [longitude, latitude] in
 * that order (GeoJSON's, and what the 2dsphere index expects); the bounds catch the common
 * mistake of writing [latitude, longitude], at least whenever the latitude is out of range.
 */
const point: BsonSchema = {
  bsonType: 'object',
  required: ['type', 'coordinates'],
  additionalProperties: false,
  properties: {
    type: { enum: ['Point'], description: 'GeoJSON geometry type; only Point is stored' },
    coordinates: {
      bsonType: 'array',
      minItems: 2,
      maxItems: 2,
      items: [
        { bsonType: 'number', minimum: -180, maximum: 180, description: 'longitude' },
        { bsonType: 'number', minimum: -90, maximum: 90, description: 'latitude' },
      ],
      additionalItems: false,
      description: '[longitude, latitude]',
    },
  },
};

export const metadataSchema: BsonSchema = {
  bsonType: 'object',
  title: 'entity metadata',
  required: ['_id', 'entityType', 'entityId', 'data', 'createdAt', 'updatedAt'],
  additionalProperties: false,
  properties: {
    _id: objectId,
    entityType: { enum: [...ENTITY_TYPES], description: `one of ${ENTITY_TYPES.join(', ')}` },
    entityId: uuidString('id of the PostgreSQL row'),
    // The flexible part: any keys, validated by whoever owns the entity type.
    data: { bsonType: 'object', description: 'free-form metadata' },
    location: point,
    createdAt: timestamp('first write'),
    updatedAt: timestamp('last change'),
  },
};

export const metadata: Omit<CollectionDefinition, 'indexes'> = {
  name: 'metadata',
  description: 'free-form metadata of PostgreSQL entities, with optional geolocation',
  validator: { $jsonSchema: metadataSchema },
  // strict: the envelope (entity, timestamps, location) is small and fixed; only `data` is free,
  // and it is free inside the schema, so every write can be checked.
  validationLevel: 'strict',
  // error: a wrong entityType or a malformed location would make the document unreachable by
  // the lookups and geo queries that are the reason it exists.
  validationAction: 'error',
};
