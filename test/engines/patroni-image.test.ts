/**
 * The PostgreSQL image with Patroni (databases/postgresql/image/Dockerfile), checked without
 * building it (no Docker engine here): its base is the pinned image the engine describes, Patroni,
 * PgBouncer and pgBackRest come from the apt repository that base image already names (pgdg) and
 * from nowhere else, and it runs Patroni, not root, with the configuration patroni.ts renders.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_PORT, PGBACKREST_CONFIG_PATH } from '../../databases/postgresql/backup.ts';
import { postgresql } from '../../databases/postgresql/index.ts';
import { ROOT } from '../support/pulumi.ts';

const dockerfile = readFileSync(join(ROOT, 'databases/postgresql/image/Dockerfile'), 'utf8');
/** Instructions with continuation lines joined and comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'))
  .map((line) => {
    const [, keyword, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    return { keyword: keyword!.toUpperCase(), args: args! };
  });
const all = (keyword: string) => instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.args);

describe('the PostgreSQL image with Patroni', () => {
  it("builds on the engine's pinned image, in one stage, never a floating tag", () => {
    expect(all('FROM')).toEqual([`postgres:${postgresql.defaultVersion}`]);
    expect(dockerfile).not.toMatch(/:latest\b/);
  });

  it('installs Patroni, PgBouncer and pgBackRest from the pgdg repository the base image configures, curl from the distribution, adding no repository or download of its own', () => {
    const runs = all('RUN').join('\n');
    expect(runs).toMatch(/apt-get install -y --no-install-recommends -t "\$\{VERSION_CODENAME\}-pgdg" patroni pgbouncer pgbackrest;/);
    expect(runs).toMatch(/apt-get install -y --no-install-recommends curl;/);
    expect(runs).toContain('. /etc/os-release');
    // curl is installed (the probes use it), never run to fetch anything into the image.
    expect(runs.replace(/install -y --no-install-recommends curl;/, '')).not.toMatch(/sources\.list|apt-key|gpg|curl|wget|pip3? install|add-apt-repository/);
    expect(all('ADD')).toEqual([]);
    // The lists are removed in the same layer they were fetched in.
    expect(runs).toMatch(/apt-get update;[\s\S]*rm -rf \/var\/lib\/apt\/lists\/\*/);
  });

  it("leaves pgBackRest only the rendered configuration to read, and exposes its agent's port", () => {
    const runs = all('RUN').join('\n');
    // The build fails when pgBackRest is missing, and pgBackRest falls back to the package's sample
    // file when the mounted one is missing: removed, so such a member fails loudly.
    expect(runs).toContain('pgbackrest version;');
    expect(runs).toMatch(/rm -f \/etc\/pgbackrest\.conf \/etc\/pgbackrest\/pgbackrest\.conf;/);
    expect(PGBACKREST_CONFIG_PATH).toBe('/etc/pgbackrest/pgbackrest.conf');
    expect(runs).toMatch(/mkdir -p [^;]*\/etc\/pgbackrest[ ;]/);
    expect(all('EXPOSE').join(' ').split(/\s+/)).toContain(String(AGENT_PORT));
  });

  it('runs Patroni as the postgres user with the rendered configuration, and stops it with SIGTERM', () => {
    expect(all('USER').at(-1)).toBe('postgres');
    expect(all('ENTRYPOINT')).toEqual(['["patroni", "/etc/patroni/patroni.yml"]']);
    expect(all('CMD')).toEqual(['[]']);
    expect(all('STOPSIGNAL')).toEqual(['SIGTERM']);
  });
});
