/**
 * content_drafts: work-in-progress article content, before it is published to PostgreSQL.
 *
 * One document per saved version of a draft: an explicit save inserts version n + 1 of the same
 * `draftId`, so the history of a draft is its documents, and the unique index on
 * (draftId, version) turns two editors saving version n + 1 at once into a duplicate-key error
 * for the second instead of a lost update. Between saves, the editor's autosaves go into the
 * `autosaves` array of the latest version, bounded (see AUTOSAVE_LIMIT).
 */
import type { CollectionDefinition } from '../collection-definition.ts';
import type { BsonSchema } from '../json-schema.ts';
import { objectId, timestamp, uuidString } from './fields.ts';

/**
 * Autosaves kept per version. The application appends with
 * `{ $push: { autosaves: { $each: [snapshot], $slice: -AUTOSAVE_LIMIT } } }`, so the array never
 * grows past it; the validator's maxItems catches a writer that forgets the $slice. With bodies
 * of at most BODY_MAX_LENGTH characters, a version and its autosaves stay well below MongoDB's
 * 16 MiB document limit even at 4 bytes per character.
 */
export const AUTOSAVE_LIMIT = 10;
export const BODY_MAX_LENGTH = 100_000;
/** The same bound as PostgreSQL's articles.title (articles_title_length). */
export const TITLE_MAX_LENGTH = 300;
const BLOCKS_MAX_ITEMS = 1_000;

export const DRAFT_STATUSES = ['editing', 'submitted', 'published', 'discarded'] as const;

/** A block of the block editor: its kind and its kind-specific data, which stays free-form. */
const block: BsonSchema = {
  bsonType: 'object',
  required: ['id', 'type', 'data'],
  additionalProperties: false,
  properties: {
    id: { bsonType: 'string', minLength: 1, maxLength: 64, description: 'block id, stable across edits' },
    type: { bsonType: 'string', pattern: '^[a-z][a-z0-9_-]*$', maxLength: 40, description: 'block kind (paragraph, heading, image, ...)' },
    data: { bsonType: 'object', description: 'kind-specific content, validated by the editor' },
  },
};

const title: BsonSchema = { bsonType: 'string', maxLength: TITLE_MAX_LENGTH, description: `title, at most ${TITLE_MAX_LENGTH} characters (may be empty)` };
const body: BsonSchema = { bsonType: 'string', maxLength: BODY_MAX_LENGTH, description: `body text, at most ${BODY_MAX_LENGTH} characters` };
const blocks: BsonSchema = { bsonType: 'array', maxItems: BLOCKS_MAX_ITEMS, items: block, description: 'structured content of the block editor' };

const autosave: BsonSchema = {
  bsonType: 'object',
  required: ['at', 'title', 'body'],
  additionalProperties: false,
  properties: {
    at: timestamp('when the editor autosaved'),
    title,
    body,
    blocks,
  },
};

export const contentDraftsSchema: BsonSchema = {
  bsonType: 'object',
  title: 'content draft version',
  required: ['_id', 'draftId', 'authorId', 'version', 'title', 'body', 'blocks', 'autosaves', 'status', 'createdAt', 'updatedAt'],
  // Unknown top-level fields are refused: free-form content belongs in blocks[].data, and a
  // misspelled field would otherwise be stored silently and never read.
  additionalProperties: false,
  properties: {
    _id: objectId,
    draftId: uuidString('the draft this version belongs to; generated when the draft is started'),
    articleId: uuidString('the PostgreSQL article this draft edits; absent for a draft of a new article'),
    authorId: uuidString('the PostgreSQL user who owns the draft'),
    version: { bsonType: ['int', 'long'], minimum: 1, description: 'version number within the draft, from 1, one per explicit save' },
    title,
    body,
    blocks,
    autosaves: { bsonType: 'array', maxItems: AUTOSAVE_LIMIT, items: autosave, description: `the latest ${AUTOSAVE_LIMIT} autosaves since this version was saved, oldest first` },
    status: { enum: [...DRAFT_STATUSES], description: `one of ${DRAFT_STATUSES.join(', ')}` },
    createdAt: timestamp('when this version was saved'),
    updatedAt: timestamp('last change to this version (autosave or status)'),
  },
};

export const contentDrafts: Omit<CollectionDefinition, 'indexes'> = {
  name: 'content_drafts',
  description: 'versioned article drafts with their autosave history',
  validator: { $jsonSchema: contentDraftsSchema },
  // moderate: inserts and updates of documents that match the schema are validated; documents
  // written under an older schema stay editable until a migration rewrites them. Drafts live for
  // weeks, so a tightened schema would otherwise lock authors out of their own unfinished work
  // the moment it is deployed.
  validationLevel: 'moderate',
  // error: a draft is an author's work; a write that does not fit must fail where the editor can
  // show it and retry, not be stored in a shape the publishing path cannot read.
  validationAction: 'error',
};
