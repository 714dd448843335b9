/**
 * Indexes of user_preferences. Named explicitly: the bootstrap matches indexes by name.
 */
import type { NamedIndexDescription } from '../collection-definition.ts';

export const userPreferencesIndexes: NamedIndexDescription[] = [
  {
    // One preferences document per user: upserts by userId rely on it, and without it two
    // concurrent first saves would create two documents.
    name: 'user_unique',
    key: { userId: 1 },
    unique: true,
  },
];
