import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAssets } from '../../bootstrap/assets.ts';
import { assetFolder } from '../support/assets.ts';

const load = (directory: string) => loadAssets({ engine: 'postgresql', directory, root: directory, folders: ['schemas', 'indexes', 'functions'], extension: '.sql' });

describe('assets on disk', () => {
  it('orders versioned assets by number across folders, then repeatable ones by name', () => {
    const directory = assetFolder({
      'indexes/V0010__listing.sql': 'SELECT 1;',
      'schemas/V0002__articles.sql': 'SELECT 1;',
      'schemas/V1__users.sql': 'SELECT 1;',
      'functions/R__b.sql': 'SELECT 1;',
      'functions/R__a.sql': 'SELECT 1;',
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
    expect(() => load(directory)).toThrow('postgresql: schemas/001_users.sql: expected an asset name like V0001__description.sql or R__description.sql, got "001_users.sql"');
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

  it.each([
    ['an upper-case extension', 'schemas/V0002__b.SQL', 'got "V0002__b.SQL" (the extension is case-sensitive: rename it to V0002__b.sql)'],
    ['another kind of file', 'schemas/README.md', 'expected only assets named like V0001__description.sql or R__description.sql in schemas/, got "README.md"'],
    ['a file in a sub-folder', 'schemas/2026/V0003__c.sql', 'schemas/2026 is a folder: assets sit directly in their folder'],
  ])('refuses %s instead of skipping it', (_case, path, message) => {
    // Given an asset folder with a valid asset and the odd file / When it is loaded
    const directory = assetFolder({ 'schemas/V0001__a.sql': 'SELECT 1;', [path]: 'SELECT 1;' });
    // Then the load fails, naming the file
    expect(() => load(directory)).toThrow(message);
  });

  it("follows links, as a mounted ConfigMap presents its files, and passes over the mount's own entries", () => {
    // Given a folder laid out as Kubernetes mounts a ConfigMap: files are links into ..data,
    // itself a link to a timestamped folder
    const directory = mkdtempSync(join(tmpdir(), 'allixios-configmap-'));
    const timestamped = join(directory, 'schemas', '..2026_12_02_18_00_00.000000001');
    mkdirSync(timestamped, { recursive: true });
    const real = assetFolder({ 'V0001__a.sql': 'SELECT 1;', 'V0002__b.sql': 'SELECT 2;' });
    for (const name of ['V0001__a.sql', 'V0002__b.sql']) symlinkSync(join(real, name), join(timestamped, name));
    symlinkSync('..2026_12_02_18_00_00.000000001', join(directory, 'schemas', '..data'));
    for (const name of ['V0001__a.sql', 'V0002__b.sql']) symlinkSync(join('..data', name), join(directory, 'schemas', name));
    // When it is loaded / Then both migrations are there, once each
    expect(load(directory).map((asset) => [asset.path, asset.content])).toEqual([
      ['schemas/V0001__a.sql', 'SELECT 1;'],
      ['schemas/V0002__b.sql', 'SELECT 2;'],
    ]);
  });

  it('refuses a link that points at nothing, and an asset folder that is not a folder', () => {
    const broken = assetFolder({ 'schemas/V0001__a.sql': 'SELECT 1;' });
    symlinkSync(join(broken, 'nowhere.sql'), join(broken, 'schemas', 'V0002__b.sql'));
    expect(() => load(broken)).toThrow('postgresql: schemas/V0002__b.sql: the link schemas/V0002__b.sql points at nothing readable (ENOENT)');
    const notAFolder = assetFolder({ schemas: 'not a folder' });
    expect(() => load(notAFolder)).toThrow(/postgresql: schemas: cannot read the asset folder schemas: ENOTDIR/);
  });
});
