/**
 * Indexes of content_drafts. Named explicitly: the bootstrap matches indexes by name.
 */
import type { NamedIndexDescription } from '../collection-definition.ts';

export const contentDraftsIndexes: NamedIndexDescription[] = [
  {
    // Identity of a version, and the guard against two concurrent saves both creating version
    // n + 1 (the second insert fails with a duplicate key). Descending version: "latest version
    // of draft X" is the first entry.
    name: 'draft_version_unique',
    key: { draftId: 1, version: -1 },
    unique: true,
  },
  {
    // The drafts of an existing article, newest version first (the editor's "continue editing").
    // Not unique: two authors may each have a draft of the same article.
    name: 'article_version',
    key: { articleId: 1, version: -1 },
  },
  {
    // "My drafts", most recently touched first.
    name: 'author_updated',
    key: { authorId: 1, updatedAt: -1 },
  },
  {
    // The review queue: submitted drafts by age (equality on status, then the sort).
    name: 'status_updated',
    key: { status: 1, updatedAt: -1 },
  },
  {
    // Full-text search in an author's drafts. A collection has at most one text index, so title
    // and body share it; a title match weighs five times a body match.
    name: 'title_body_text',
    key: { title: 'text', body: 'text' },
    weights: { title: 5, body: 1 },
    default_language: 'english',
    // The field that could override the language per document. No draft has such a field (the
    // schema refuses unknown fields), so every draft is stemmed as English; named explicitly so
    // the definition matches what listIndexes reports.
    language_override: 'language',
  },
];
