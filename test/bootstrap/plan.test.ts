import { describe, expect, it } from 'vitest';
import type { Asset } from '../../bootstrap/assets.ts';
import { checksum } from '../../bootstrap/checksum.ts';
import { planMigrations, type LedgerEntry } from '../../bootstrap/plan.ts';

function asset(name: string, content = `-- ${name}\nSELECT 1;\n`): Asset {
  const versioned = /^V(\d+)__/.exec(name);
  return {
    engine: 'postgresql',
    kind: versioned ? 'versioned' : 'repeatable',
    ...(versioned ? { version: Number(versioned[1]) } : {}),
    name,
    description: name,
    path: `databases/postgresql/schemas/${name}`,
    content,
    checksum: checksum(content),
    transactional: true,
  };
}

const applied = (a: Asset): LedgerEntry => ({ kind: a.kind, ...(a.version !== undefined ? { version: a.version } : {}), name: a.name, checksum: a.checksum, path: a.path });

const V1 = asset('V0001__users.sql');
const V2 = asset('V0002__articles.sql');
const R1 = asset('R__functions.sql');

describe('the plan', () => {
  it('applies everything, versioned then repeatable, on an empty engine', () => {
    const plan = planMigrations('postgresql', [V1, V2, R1], []);
    expect(plan.steps.map((step) => [step.asset.name, step.reason])).toEqual([
      ['V0001__users.sql', 'pending'],
      ['V0002__articles.sql', 'pending'],
      ['R__functions.sql', 'pending'],
    ]);
    expect(plan.problems).toEqual([]);
  });

  it('applies nothing when the ledger has every asset with its checksum', () => {
    const plan = planMigrations('postgresql', [V1, V2, R1], [V1, V2, R1].map(applied));
    expect(plan.steps).toEqual([]);
    expect(plan.statuses.map((status) => status.state)).toEqual(['applied', 'applied', 'applied']);
  });

  it('applies only the new migration after earlier ones', () => {
    const plan = planMigrations('postgresql', [V1, V2, R1], [V1, R1].map(applied));
    expect(plan.steps.map((step) => step.asset.name)).toEqual(['V0002__articles.sql']);
  });

  it('re-applies a repeatable asset whose content changed', () => {
    const edited = asset('R__functions.sql', '-- R__functions.sql\nSELECT 2;\n');
    const plan = planMigrations('postgresql', [V1, edited], [V1, R1].map(applied));
    expect(plan.steps.map((step) => [step.asset.name, step.reason])).toEqual([['R__functions.sql', 'changed']]);
    expect(plan.statuses.find((status) => status.asset.name === 'R__functions.sql')!.state).toBe('changed');
  });

  it('refuses an applied migration whose file changed, naming the file and both checksums', () => {
    const tampered = asset('V0001__users.sql', '-- V0001__users.sql\nSELECT 42;\n');
    const plan = planMigrations('postgresql', [tampered, V2], [V1].map(applied));
    expect(plan.steps).toEqual([]);
    // and its status says so (a status report must not call it applied)
    expect(plan.statuses.map((status) => status.state)).toEqual(['edited', 'pending']);
    expect(plan.problems).toEqual([
      `databases/postgresql/schemas/V0001__users.sql: V0001 was changed after it was applied (ledger checksum ${V1.checksum.slice(7, 19)}, file checksum ${tampered.checksum.slice(7, 19)}); restore the file and add a new migration for the change`,
    ]);
  });

  it('refuses a new migration numbered below one already applied', () => {
    const plan = planMigrations('postgresql', [V1, V2], [V2].map(applied));
    expect(plan.steps).toEqual([]);
    expect(plan.problems).toEqual([
      'databases/postgresql/schemas/V0001__users.sql: V0001 is not applied, but V0002 already is; a new migration needs a version above every applied one',
    ]);
  });

  it('refuses to go on when an applied migration file is gone, naming the path it was applied from', () => {
    const plan = planMigrations('postgresql', [V2], [V1, V2].map(applied));
    expect(plan.problems).toEqual(['databases/postgresql/schemas/V0001__users.sql: V0001 is applied but its file is gone; restore it (applied migrations are history)']);
    // (a ledger that kept no path: the name)
    const { path: _path, ...withoutPath } = applied(V1);
    expect(planMigrations('postgresql', [V2], [withoutPath, applied(V2)]).problems[0]).toMatch(/^V0001__users\.sql: /);
  });
});

describe('checksums', () => {
  const content = 'CREATE TABLE t (id int);\n\nSELECT 1;\n';

  it('are the same for a CRLF checkout, trailing blanks, a missing final newline and a BOM', () => {
    for (const variant of [content.replaceAll('\n', '\r\n'), content.replaceAll(';\n', ';   \n'), content.trimEnd(), `\uFEFF${content}`]) {
      expect(checksum(variant)).toBe(checksum(content));
    }
  });

  it('differ for any real edit, even inside a line or in blank lines between statements', () => {
    for (const variant of [content.replace('int', 'bigint'), content.replace('\n\n', '\n'), content.replace('CREATE', 'CREATE  '), `-- note\n${content}`]) {
      expect(checksum(variant)).not.toBe(checksum(content));
    }
  });
});
