import { describe, expect, it } from 'vitest';
import { loadAssets } from '../../bootstrap/assets.ts';
import { assetFolder } from '../support/assets.ts';

const load = (directory: string) =>
  loadAssets({ engine: 'postgresql', directory, root: directory, folders: ['schemas', 'indexes', 'functions'], extension: '.sql' });

describe('assets on disk', () => {
  it('orders versioned assets by number across folders, then repeatable ones by name, and skips other files', () => {
    const directory = assetFolder({
      'indexes/V0010__listing.sql': 'SELECT 1;',
      'schemas/V0002__articles.sql': 'SELECT 1;',
      'schemas/V1__users.sql': 'SELECT 1;',
      'functions/R__b.sql': 'SELECT 1;',
      'functions/R__a.sql': 'SELECT 1;',
      'schemas/README.md': '# not an asset',
    });
    expect(load(directory).map((asset) => asset.path)).toEqual([
      'schemas/V1__users.sql',
      'schemas/V0002__articles.sql',
      'indexes/V0010__listing.sql',
      'functions/R__a.sql',
      'functions/R__b.sql',
    ]);
  });

  it('refuses a SQL file that is not named as an asset', () => {
    const directory = assetFolder({ 'schemas/001_users.sql': 'SELECT 1;' });
    expect(() => load(directory)).toThrow(
      'postgresql: schemas/001_users.sql: expected an asset name like V0001__description.sql or R__description.sql, got "001_users.sql"',
    );
  });

  it('refuses the same version in two files', () => {
    const directory = assetFolder({ 'schemas/V0003__a.sql': 'SELECT 1;', 'indexes/V3__b.sql': 'SELECT 1;' });
    expect(() => load(directory)).toThrow('postgresql: indexes/V3__b.sql: version 3 is defined twice: schemas/V0003__a.sql and indexes/V3__b.sql');
  });

  it('reads the no-transaction marker from the first line only', () => {
    const directory = assetFolder({
      'indexes/V0001__concurrently.sql': '-- allixios:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c);',
      'indexes/V0002__mentioned.sql': 'SELECT 1;\n-- allixios:no-transaction is only a marker on the first line\n',
    });
    expect(load(directory).map((asset) => asset.transactional)).toEqual([false, true]);
  });
});
