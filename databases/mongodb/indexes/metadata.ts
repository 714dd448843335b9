/**
 * Indexes of metadata. Named explicitly: the bootstrap matches indexes by name.
 */
import type { NamedIndexDescription } from '../collection-definition.ts';

export const metadataIndexes: NamedIndexDescription[] = [
  {
    // One metadata document per entity: the application upserts by this pair.
    name: 'entity_unique',
    key: { entityType: 1, entityId: 1 },
    unique: true,
  },
  {
    // $near / $geoWithin on the optional location. 2dsphere indexes (version 2 and later) skip
    // documents without the field, so entities without a place cost nothing here.
    name: 'location_2dsphere',
    key: { location: '2dsphere' },
  },
];
