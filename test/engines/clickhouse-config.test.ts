/**
 * ClickHouse's config.d and users.d files, checked against a real ClickHouse engine: chdb (the
 * ClickHouse 26 SQL engine in-process, see ENGINES.md) supplies the server setting names
 * (system.server_settings), the query setting names (system.settings), accepts or refuses each
 * value (`SELECT 1 SETTINGS name = value`) and parses each GRANT (`EXPLAIN AST`).
 *
 * chdb cannot load a server configuration file, so the structure is walked here: every element is
 * either a setting ClickHouse knows or one of a short, explicit list of structural elements, each
 * with its own rule. Anything else fails, and the checker's own tests prove that it does.
 */
import { renderSecretFile } from '../../databases/secret-files.ts';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouse, TLS_DIRECTORY } from '../../databases/clickhouse/index.ts';
import { ENVIRONMENTS, TLS_FILES, type EngineSpec, type EnvValue, type Environment } from '../../databases/engine.ts';
import { describeWithDefaults } from '../support/engines.ts';
import { toError } from '../../bootstrap/errors.ts';

// ---------------------------------------------------------------------------------------------
// XML

interface XmlElement {
  name: string;
  /** `<clickhouse>/<users>/<allixios_app>`, for messages. */
  path: string;
  attributes: Record<string, string>;
  text: string;
  children: XmlElement[];
}

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  commentPropName: '#comment',
});

function toElement(node: OrderedNode, parentPath: string): XmlElement | undefined {
  const name = Object.keys(node).find((key) => key !== ':@' && key !== '#text' && key !== '#comment');
  if (!name) return undefined;
  const path = `${parentPath}/<${name}>`;
  const content = node[name] as OrderedNode[];
  const text = content
    .filter((child) => '#text' in child)
    .map((child) => String(child['#text']))
    .join('');
  const children = content.flatMap((child) => toElement(child, path) ?? []);
  return { name, path, attributes: node[':@'] ?? {}, text, children };
}

/** Parses a ClickHouse XML config file; malformed XML throws with the file and the position. */
function parseXml(xml: string, source: string): XmlElement {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`${source}: malformed XML at line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg}`);
  const roots = (parser.parse(xml) as OrderedNode[]).flatMap((node) => toElement(node, '') ?? []);
  if (roots.length !== 1 || roots[0]!.name !== 'clickhouse') {
    throw new Error(`${source}: expected a single <clickhouse> root element, found ${roots.map((root) => `<${root.name}>`).join(', ') || 'none'}`);
  }
  return roots[0]!;
}

function readEngineXml(source: string): XmlElement {
  return parseXml(readFileSync(join(clickhouse.directory, source), 'utf8'), source);
}

function allElements(root: XmlElement): XmlElement[] {
  return [root, ...root.children.flatMap(allElements)];
}

// ---------------------------------------------------------------------------------------------
// What ClickHouse knows, asked of chdb

/** SQL string literal. */
function quote(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

class ClickHouseCatalog {
  private constructor(
    private readonly client: ClickHouseClient,
    /** system.server_settings: name -> type. */
    readonly serverSettings: ReadonlyMap<string, string>,
    /** system.settings names. */
    readonly settings: ReadonlySet<string>,
  ) {}

  static async load(client: ClickHouseClient): Promise<ClickHouseCatalog> {
    const serverSettings = await client.query({ query: 'SELECT name, type FROM system.server_settings', format: 'JSONEachRow' });
    const settings = await client.query({ query: 'SELECT name FROM system.settings', format: 'JSONEachRow' });
    return new ClickHouseCatalog(
      client,
      new Map((await serverSettings.json<{ name: string; type: string }>()).map((row) => [row.name, row.type])),
      new Set((await settings.json<{ name: string }>()).map((row) => row.name)),
    );
  }

  /** The error ClickHouse raises for `sql`, or undefined when it runs. */
  async failureOf(sql: string): Promise<string | undefined> {
    try {
      await (await this.client.query({ query: sql, format: 'TabSeparated' })).text();
      return undefined;
    } catch (error) {
      return toError(error).message.trim();
    }
  }

  /** Whether a query may run with `name = value` (the same parser as a profile's value). */
  async settingValueError(name: string, value: string): Promise<string | undefined> {
    if (!IDENTIFIER.test(name)) return `"${name}" is not a setting name`;
    return this.failureOf(`SELECT 1 SETTINGS ${name} = ${quote(value)}`);
  }

  /** Whether `value` converts to the server setting's type (only plain types; others fail loudly). */
  async serverValueError(name: string, value: string): Promise<string | undefined> {
    const type = this.serverSettings.get(name)!;
    if (!/^(U?Int(8|16|32|64)|Float(32|64)|Double|Bool|String)$/.test(type)) {
      return `no value check for type ${type}: add one to this test before using ${name}`;
    }
    return this.failureOf(`SELECT CAST(${quote(value)} AS ${type})`);
  }

  async timeZoneError(name: string): Promise<string | undefined> {
    return this.failureOf(`SELECT toTimeZone(now(), ${quote(name)})`);
  }

  /**
   * Parses a users.xml grant. The server parses those without a grantee (the enclosing user is
   * one); the SQL parser needs one, so the user's name is appended, after checking the query
   * names none itself.
   */
  async grantError(query: string, user: string): Promise<string | undefined> {
    if (/\bTO\b/i.test(query)) return 'a users.xml grant names no grantee (TO ...): the enclosing user is the grantee';
    if (/\bON\s+CLUSTER\b/i.test(query)) return 'ON CLUSTER is not allowed in users.xml grants';
    if (!/^\s*(GRANT|REVOKE)\b/i.test(query)) return 'expected a GRANT or REVOKE query';
    const error = await this.failureOf(`EXPLAIN AST ${query} TO ${user}`);
    return error ? `does not parse: ${error}` : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// config.d: server settings

/** Poco's log levels, as listed in the default config.xml. */
const LOG_LEVELS = new Set(['none', 'fatal', 'critical', 'error', 'warning', 'notice', 'information', 'debug', 'trace', 'test']);
/** Children of <prometheus> the server reads when it opens the port (clickhouse.com/docs/concepts/features/interfaces/prometheus-metrics). */
const PROMETHEUS_ELEMENTS = new Set(['endpoint', 'port', 'metrics', 'events', 'asynchronous_metrics', 'errors', 'histograms', 'dimensional_metrics']);
const BOOLEAN = /^(true|false|1|0)$/;

function isPort(value: string): boolean {
  return /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 65535;
}

type ElementRule = (element: XmlElement, catalog: ClickHouseCatalog) => Promise<string[]>;

/**
 * Top-level elements of config.d that are not in system.server_settings: the server reads them
 * while it starts (listeners, logging, time zone), not as runtime settings. Each has its own rule.
 */
const STRUCTURAL_SERVER_ELEMENTS: Record<string, ElementRule> = {
  async logger(element, catalog) {
    const errors: string[] = [];
    for (const child of element.children) {
      // logger.* is in system.server_settings, one entry per child element.
      if (!catalog.serverSettings.has(`logger.${child.name}`)) errors.push(`${child.path}: unknown logger setting`);
      else if (child.name === 'level' && !LOG_LEVELS.has(child.text)) errors.push(`${child.path}: unknown log level "${child.text}"`);
      else if (child.name === 'console' && !BOOLEAN.test(child.text)) errors.push(`${child.path}: expected a boolean, got "${child.text}"`);
    }
    return errors;
  },
  async listen_host(element) {
    return isIP(element.text) ? [] : [`${element.path}: expected an IP address, got "${element.text}"`];
  },
  async mysql_port(element) {
    return 'remove' in element.attributes || isPort(element.text) ? [] : [`${element.path}: expected remove="remove" or a port, got "${element.text}"`];
  },
  async postgresql_port(element) {
    return 'remove' in element.attributes || isPort(element.text) ? [] : [`${element.path}: expected remove="remove" or a port, got "${element.text}"`];
  },
  // The plaintext listeners of the default config.xml may only be removed (a TLS stack); the TLS
  // ones are ports.
  async http_port(element) {
    return 'remove' in element.attributes ? [] : [`${element.path}: expected remove="remove"`];
  },
  async tcp_port(element) {
    return 'remove' in element.attributes ? [] : [`${element.path}: expected remove="remove"`];
  },
  async https_port(element) {
    return isPort(element.text) ? [] : [`${element.path}: expected a port, got "${element.text}"`];
  },
  async tcp_port_secure(element) {
    return isPort(element.text) ? [] : [`${element.path}: expected a port, got "${element.text}"`];
  },
  async openSSL(element, catalog) {
    // openSSL.server.* and openSSL.client.* are in system.server_settings, one entry per leaf.
    const errors: string[] = [];
    for (const side of element.children) {
      for (const child of side.children) {
        const name = `openSSL.${side.name}.${child.name}`;
        if (!catalog.serverSettings.has(name)) errors.push(`${child.path}: unknown setting ${name}`);
        else if (child.children.length > 0) errors.push(`${child.path}: ${name} is a scalar setting but has child elements`);
        else {
          const error = await catalog.serverValueError(name, child.text);
          if (error) errors.push(`${child.path}: value "${child.text}" rejected: ${error}`);
        }
      }
    }
    return errors;
  },
  async timezone(element, catalog) {
    const error = await catalog.timeZoneError(element.text);
    return error ? [`${element.path}: "${element.text}" is not a time zone ClickHouse knows: ${error}`] : [];
  },
  async prometheus(element, catalog) {
    const errors: string[] = [];
    for (const child of element.children) {
      if (!PROMETHEUS_ELEMENTS.has(child.name) && !catalog.serverSettings.has(`prometheus.${child.name}`)) errors.push(`${child.path}: unknown prometheus element`);
      else if (child.name === 'port' && !isPort(child.text)) errors.push(`${child.path}: expected a port, got "${child.text}"`);
      else if (child.name === 'endpoint' && !child.text.startsWith('/')) errors.push(`${child.path}: expected a path starting with /`);
      else if (!['port', 'endpoint'].includes(child.name) && !BOOLEAN.test(child.text)) errors.push(`${child.path}: expected a boolean, got "${child.text}"`);
    }
    return errors;
  },
};

/** Every problem of a config.d file; an empty list means ClickHouse 26 knows all of it. */
async function serverConfigErrors(root: XmlElement, catalog: ClickHouseCatalog): Promise<string[]> {
  const errors: string[] = [];
  for (const element of root.children) {
    const structural = STRUCTURAL_SERVER_ELEMENTS[element.name];
    if (structural) {
      errors.push(...(await structural(element, catalog)));
    } else if (!catalog.serverSettings.has(element.name)) {
      errors.push(`${element.path}: unknown server setting (neither in system.server_settings nor a known structural element)`);
    } else if ('remove' in element.attributes) {
      // Removing a setting the server knows restores its built-in default (or disables a listener).
    } else if (element.children.length > 0) {
      errors.push(`${element.path}: ${element.name} is a scalar server setting but has child elements`);
    } else {
      const error = await catalog.serverValueError(element.name, element.text);
      if (error) errors.push(`${element.path}: value "${element.text}" rejected: ${error}`);
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------
// users.d: profiles, users, grants

/** Defined by the image's users.xml, which users.d is merged into. */
const IMAGE_PROFILES = ['default', 'readonly'];
const IMAGE_QUOTAS = ['default'];
const CONSTRAINT_BOUNDS = new Set(['min', 'max', 'disallowed']);
const CONSTRAINT_WRITABILITY = new Set(['const', 'readonly', 'changeable_in_readonly']);
const USER_ELEMENTS = new Set(['password', 'password_sha256_hex', 'networks', 'profile', 'quota', 'access_management', 'grants']);

/**
 * The value ClickHouse will read for an element: its text, or the engine's env var it names with
 * from_env. Setting values must come from a literal env var; secrets are for passwords only.
 */
function settingValue(element: XmlElement, env: Record<string, EnvValue>): { value?: string; error?: string } {
  const variable = element.attributes.from_env;
  if (variable === undefined) return { value: element.text };
  if (element.text !== '') return { error: `${element.path}: has both from_env and a value` };
  const value = env[variable];
  if (value === undefined) return { error: `${element.path}: from_env="${variable}" names no environment variable the engine sets` };
  if (typeof value !== 'string') return { error: `${element.path}: from_env="${variable}" is a secret, not a setting value` };
  return { value };
}

async function usersConfigErrors(root: XmlElement, catalog: ClickHouseCatalog, env: Record<string, EnvValue>): Promise<string[]> {
  const errors: string[] = [];
  const profilesElement = root.children.find((child) => child.name === 'profiles');
  const profiles = new Set([...IMAGE_PROFILES, ...(profilesElement?.children.map((profile) => profile.name) ?? [])]);

  const checkSetting = async (name: string, element: XmlElement) => {
    if (!catalog.settings.has(name)) return errors.push(`${element.path}: unknown setting ${name} (not in system.settings)`);
    const { value, error } = settingValue(element, env);
    if (error) return errors.push(error);
    const rejected = await catalog.settingValueError(name, value!);
    if (rejected) errors.push(`${element.path}: value "${value}" rejected for ${name}: ${rejected}`);
  };

  for (const section of root.children) {
    if (section.name === 'profiles') {
      for (const profile of section.children) {
        for (const entry of profile.children) {
          if (entry.name === 'profile') {
            if (!profiles.has(entry.text)) errors.push(`${entry.path}: parent profile "${entry.text}" is not defined`);
          } else if (entry.name === 'constraints') {
            for (const constraint of entry.children) {
              for (const kind of constraint.children) {
                if (CONSTRAINT_BOUNDS.has(kind.name)) await checkSetting(constraint.name, kind);
                else if (!CONSTRAINT_WRITABILITY.has(kind.name)) errors.push(`${kind.path}: unknown constraint ${kind.name}`);
                else if (!catalog.settings.has(constraint.name)) errors.push(`${constraint.path}: unknown setting ${constraint.name} (not in system.settings)`);
              }
            }
          } else {
            await checkSetting(entry.name, entry);
          }
        }
      }
    } else if (section.name === 'users') {
      for (const user of section.children) {
        if (!user.children.some((child) => child.name === 'password_sha256_hex')) errors.push(`${user.path}: no <password_sha256_hex>`);
        for (const entry of user.children) {
          if (!USER_ELEMENTS.has(entry.name)) {
            errors.push(`${entry.path}: element this test has no rule for (allowed: ${[...USER_ELEMENTS].join(', ')})`);
          } else if (entry.name === 'profile' && !profiles.has(entry.text)) {
            errors.push(`${entry.path}: profile "${entry.text}" is not defined`);
          } else if (entry.name === 'quota' && !IMAGE_QUOTAS.includes(entry.text)) {
            errors.push(`${entry.path}: quota "${entry.text}" is not defined`);
          } else if (entry.name === 'access_management' && !/^[01]$/.test(entry.text)) {
            errors.push(`${entry.path}: expected 0 or 1`);
          } else if (entry.name === 'networks') {
            for (const network of entry.children) {
              const [address, prefix] = network.text.split('/');
              const validPrefix = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (isIP(address!) === 6 ? 128 : 32));
              if (network.name !== 'ip' || !isIP(address!) || !validPrefix) errors.push(`${network.path}: expected <ip> with an address or a CIDR range, got "${network.text}"`);
            }
          } else if (entry.name === 'grants') {
            for (const query of entry.children) {
              if (query.name !== 'query') errors.push(`${query.path}: expected <query>`);
              const error = await catalog.grantError(query.text, user.name);
              if (error) errors.push(`${query.path}: "${query.text}" ${error}`);
            }
          }
        }
      }
    } else {
      errors.push(`${section.path}: section this test has no rule for`);
    }
  }
  return errors;
}

/**
 * Every element holding a password that is not the digest of an engine secret: the only password
 * element is <password_sha256_hex> with a `{{ sha256 "<secret>" }}` placeholder, and a <password>
 * only appears to remove the image's (remove="remove").
 */
function literalPasswordErrors(root: XmlElement, secretKeys: readonly string[]): string[] {
  return allElements(root)
    .filter((element) => /password/i.test(element.name))
    .flatMap((element) => {
      if (element.name === 'password' && element.attributes.remove === 'remove' && element.text === '') return [];
      if (element.name !== 'password_sha256_hex') return [`${element.path}: a password as ${element.name}, not the digest of a secret (password_sha256_hex)`];
      const key = /^\{\{\s*sha256\s+"([a-z0-9-]+)"\s*\}\}$/.exec(element.text)?.[1];
      if (!key) return [`${element.path}: "${element.text}" is not a {{ sha256 "<secret>" }} placeholder`];
      if (!secretKeys.includes(key)) return [`${element.path}: names no secret of the engine (${key})`];
      return [];
    });
}

// ---------------------------------------------------------------------------------------------

function describeFor(environment: Environment, options: Record<string, unknown> = {}, tls = false): EngineSpec {
  return describeWithDefaults(clickhouse, environment, { options, tls });
}

const SERVER_CONFIG = 'config/config.d/allixios.xml';
const USERS_CONFIG = 'config/users.d/allixios.xml';

/**
 * chdb's connection is typed against @clickhouse/client-common 1.23.0, while @clickhouse/client
 * 1.23.1 bundles its own copy of the same declarations: one shape, two nominal types. The cast
 * bridges the copies, nothing else.
 */
type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];

let dataDir: string;
let client: ClickHouseClient;
let catalog: ClickHouseCatalog;

beforeAll(async () => {
  // One data directory for this file: libchdb binds one per process (ENGINES.md).
  dataDir = mkdtempSync(join(tmpdir(), 'allixios-clickhouse-config-'));
  client = createClient({ connection: createChdbConnection({ path: dataDir }) as unknown as ClientConnection });
  catalog = await ClickHouseCatalog.load(client);
});

afterAll(async () => {
  await client?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the checker itself', () => {
  it('knows the ClickHouse 26 setting tables (a real engine answered)', () => {
    expect(catalog.serverSettings.get('max_concurrent_queries')).toBe('UInt64');
    expect(catalog.settings.has('max_memory_usage')).toBe(true);
  });

  it('refuses malformed XML', () => {
    expect(() => parseXml('<clickhouse><logger><level>trace</logger></clickhouse>', 'broken.xml')).toThrow(/broken\.xml: malformed XML at line 1/);
  });

  it('refuses a misspelled server setting', async () => {
    const root = parseXml('<clickhouse><max_concurent_queries>100</max_concurent_queries></clickhouse>', 'bad.xml');
    expect(await serverConfigErrors(root, catalog)).toEqual([expect.stringContaining('<max_concurent_queries>: unknown server setting')]);
  });

  it('refuses a misspelled TLS setting, a TLS setting value of the wrong type and a plaintext port that is set rather than removed', async () => {
    const root = parseXml(
      '<clickhouse><http_port>8123</http_port><openSSL><server><certificatFile>/x</certificatFile><cacheSessions>often</cacheSessions></server></openSSL></clickhouse>',
      'bad.xml',
    );
    expect(await serverConfigErrors(root, catalog)).toEqual([
      expect.stringContaining('<http_port>: expected remove="remove"'),
      expect.stringContaining('<certificatFile>: unknown setting openSSL.server.certificatFile'),
      expect.stringContaining('<cacheSessions>: value "often" rejected'),
    ]);
  });

  it('refuses a server setting value of the wrong type and a misspelled logger setting', async () => {
    const root = parseXml(
      '<clickhouse><max_concurrent_queries>lots</max_concurrent_queries><logger><consol>true</consol></logger><timezone>Mars/Olympus</timezone></clickhouse>',
      'bad.xml',
    );
    const errors = await serverConfigErrors(root, catalog);
    expect(errors).toHaveLength(3);
    expect(errors[0]).toContain('<max_concurrent_queries>: value "lots" rejected');
    expect(errors[1]).toContain('<consol>: unknown logger setting');
    expect(errors[2]).toContain('"Mars/Olympus" is not a time zone');
  });

  it('refuses a misspelled profile setting, a rejected value, a misspelled privilege and a grant with a grantee', async () => {
    const root = parseXml(
      `<clickhouse>
         <profiles><p><max_execution_tme>60</max_execution_tme><max_execution_time>soon</max_execution_time></p></profiles>
         <users><u><password_sha256_hex>{{ sha256 "x" }}</password_sha256_hex><grants><query>GRANT SELEC ON allixios.*</query><query>GRANT SELECT ON allixios.* TO u</query></grants></u></users>
       </clickhouse>`,
      'bad.xml',
    );
    const errors = await usersConfigErrors(root, catalog, {});
    expect(errors).toHaveLength(4);
    expect(errors[0]).toContain('unknown setting max_execution_tme');
    expect(errors[1]).toContain('value "soon" rejected for max_execution_time');
    expect(errors[2]).toContain('"GRANT SELEC ON allixios.*" does not parse');
    expect(errors[3]).toContain('names no grantee');
  });

  it('refuses a literal password, one from the environment, and a digest written in the file', () => {
    const root = parseXml(
      '<clickhouse><users><u><password>hunter2</password></u><v><password from_env="SECRET"/></v><w><password_sha256_hex>5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8</password_sha256_hex></w></users></clickhouse>',
      'bad.xml',
    );
    expect(literalPasswordErrors(root, ['app-password'])).toEqual([
      expect.stringContaining('<u>/<password>: a password as password, not the digest of a secret'),
      expect.stringContaining('<v>/<password>: a password as password, not the digest of a secret'),
      expect.stringContaining('is not a {{ sha256 "<secret>" }} placeholder'),
    ]);
  });
});

describe('config.d/allixios.xml', () => {
  it('contains only server settings ClickHouse 26 knows, with values of their type', async () => {
    // Given the project's server config; when every element is checked against the engine
    const errors = await serverConfigErrors(readEngineXml(SERVER_CONFIG), catalog);
    // Then nothing is unknown or rejected
    expect(errors).toEqual([]);
  });

  it('listens on IPv4, logs to the console only and closes the MySQL and PostgreSQL protocols', () => {
    const root = readEngineXml(SERVER_CONFIG);
    const byName = (name: string) => root.children.filter((child) => child.name === name);
    expect(byName('listen_host').map((element) => element.text)).toEqual(['0.0.0.0']);
    const logger = byName('logger')[0]!;
    expect(logger.children.find((child) => child.name === 'console')?.text).toBe('true');
    expect(
      logger.children
        .filter((child) => 'remove' in child.attributes)
        .map((child) => child.name)
        .sort(),
    ).toEqual(['errorlog', 'log']);
    for (const port of ['mysql_port', 'postgresql_port', 'interserver_http_port']) expect(byName(port)[0]?.attributes).toHaveProperty('remove');
  });

  it('replaces the image file that would otherwise decide the listen addresses', () => {
    const spec = describeFor('dev');
    const serverFile = spec.configFiles.find((file) => file.source === SERVER_CONFIG);
    expect(serverFile?.mountPath).toBe('/etc/clickhouse-server/config.d/docker_related_config.xml');
    // The declared metrics port is the one the file opens.
    const prometheusPort = readEngineXml(SERVER_CONFIG)
      .children.find((child) => child.name === 'prometheus')
      ?.children.find((child) => child.name === 'port');
    expect(spec.ports.find((port) => port.name === 'metrics')?.containerPort).toBe(Number(prometheusPort?.text));
  });
});

describe('config.d/tls.xml (a stack that serves TLS)', () => {
  const TLS_CONFIG = 'config/config.d/tls.xml';
  const tlsSetting = (name: string) =>
    readEngineXml(TLS_CONFIG)
      .children.find((child) => child.name === 'openSSL')
      ?.children.find((child) => child.name === 'server')
      ?.children.find((child) => child.name === name)?.text;

  it('contains only server settings ClickHouse 26 knows, with values of their type', async () => {
    expect(await serverConfigErrors(readEngineXml(TLS_CONFIG), catalog)).toEqual([]);
  });

  it('closes the plaintext HTTP and native ports and opens the TLS ports the description declares, keeping the metrics port', () => {
    const root = readEngineXml(TLS_CONFIG);
    const byName = (name: string) => root.children.find((child) => child.name === name);
    expect(byName('http_port')?.attributes).toHaveProperty('remove');
    expect(byName('tcp_port')?.attributes).toHaveProperty('remove');
    const spec = describeFor('prod', {}, true);
    expect(spec.ports).toEqual([
      { name: 'https', containerPort: Number(byName('https_port')?.text) },
      { name: 'native-secure', containerPort: Number(byName('tcp_port_secure')?.text) },
      { name: 'metrics', containerPort: 9363 },
    ]);
    expect(spec.configFiles.find((file) => file.source === TLS_CONFIG)?.mountPath).toBe('/etc/clickhouse-server/config.d/tls.xml');
  });

  it('serves the certificate of the TLS directory the targets mount, TLS 1.2 and later only, and asks no client for a certificate', () => {
    const { tls } = describeFor('prod', {}, true);
    expect(tls).toEqual({ directory: TLS_DIRECTORY });
    expect(tlsSetting('certificateFile')).toBe(`${TLS_DIRECTORY}/${TLS_FILES.certificate}`);
    expect(tlsSetting('privateKeyFile')).toBe(`${TLS_DIRECTORY}/${TLS_FILES.key}`);
    expect(tlsSetting('caConfig')).toBe(`${TLS_DIRECTORY}/${TLS_FILES.ca}`);
    expect(tlsSetting('disableProtocols')?.split(',').sort()).toEqual(['sslv2', 'sslv3', 'tlsv1', 'tlsv1_1']);
    expect(tlsSetting('verificationMode')).toBe('none');
  });

  it('checks health over HTTPS, verifying the certificate with the mounted CA, and gives connections the https form', () => {
    const spec = describeFor('prod', {}, true);
    const check = spec.healthCheck.command.join(' ');
    expect(check).toContain(`--ca-certificate=${TLS_DIRECTORY}/${TLS_FILES.ca} https://localhost:8443/ping`);
    expect(check).not.toMatch(/no-check-certificate|http:\/\//);
    expect(spec.appConnection.tls).toEqual({ scheme: 'https' });
    expect(spec.adminConnection.tls).toEqual({ scheme: 'https' });
  });

  it('is not mounted, and the plaintext ports stay, on a stack without TLS', () => {
    const spec = describeFor('dev');
    expect(spec.configFiles.map((file) => file.source)).not.toContain(TLS_CONFIG);
    expect(spec.ports.map((port) => port.containerPort)).toEqual([8123, 9000, 9363]);
    expect(spec.tls).toBeUndefined();
  });
});

describe('users.d/allixios.xml', () => {
  it.each(ENVIRONMENTS)('every profile setting and constraint is accepted with the values describe() sets for %s', async (environment) => {
    // Given the env the engine renders for this environment (from_env values resolved from it)
    const { env } = describeFor(environment);
    // When every profile, user and grant is checked against the engine
    const errors = await usersConfigErrors(readEngineXml(USERS_CONFIG), catalog, env);
    // Then nothing is unknown or rejected
    expect(errors).toEqual([]);
  });

  it("every user's password is the SHA-256 digest of its own secret: no password in the file, the environment or the rendered copy", () => {
    const root = readEngineXml(USERS_CONFIG);
    const spec = describeFor('prod');
    expect(
      literalPasswordErrors(
        root,
        spec.secrets.map((secret) => secret.key),
      ),
    ).toEqual([]);
    const digests = Object.fromEntries(
      root.children.find((child) => child.name === 'users')!.children.map((user) => [user.name, user.children.find((child) => child.name === 'password_sha256_hex')!.text]),
    );
    expect(digests).toEqual({
      default: '{{ sha256 "default-password" }}',
      allixios_admin: '{{ sha256 "admin-password" }}',
      allixios_app: '{{ sha256 "app-password" }}',
      allixios_readonly: '{{ sha256 "readonly-password" }}',
      allixios_backup: '{{ sha256 "backup-password" }}',
    });
    // Shipped as a secret file, rendered to digests; the environment holds no password at all
    expect(spec.secretFiles.map((file) => file.source)).toEqual([USERS_CONFIG]);
    expect(spec.configFiles.map((file) => file.source)).not.toContain(USERS_CONFIG);
    expect(Object.values(spec.env).filter((value) => typeof value !== 'string')).toEqual([]);
    const secrets = { 'default-password': 'd-secret', 'admin-password': 'a-secret', 'app-password': 'p-secret', 'readonly-password': 'r-secret', 'backup-password': 'b-secret' };
    const rendered = renderSecretFile(readFileSync(join(clickhouse.directory, USERS_CONFIG), 'utf8'), secrets);
    expect(rendered).toContain(`<password_sha256_hex>${createHash('sha256').update('a-secret').digest('hex')}</password_sha256_hex>`);
    for (const secret of Object.values(secrets)) expect(rendered).not.toContain(secret);
  });

  it('keeps the default user local and grants the platform users only the allixios database', () => {
    const users = readEngineXml(USERS_CONFIG).children.find((child) => child.name === 'users')!;
    const user = (name: string) => users.children.find((child) => child.name === name)!;
    const networks = user('default').children.find((child) => child.name === 'networks')!;
    expect(networks.attributes.replace).toBe('replace');
    expect(networks.children.map((ip) => ip.text)).toEqual(['::1', '127.0.0.1']);
    const grants = (name: string) =>
      user(name)
        .children.find((child) => child.name === 'grants')
        ?.children.map((query) => query.text);
    expect(grants('allixios_app')).toEqual(['GRANT SELECT, INSERT ON allixios.*']);
    expect(grants('allixios_readonly')).toEqual(['GRANT SELECT ON allixios.*']);
    // The backup jobs: BACKUP of allixios through the store's named collection, and nothing else
    expect(grants('allixios_backup')).toEqual(['GRANT BACKUP ON allixios.*', 'GRANT NAMED COLLECTION ON allixios_backups']);
  });
});

describe('the engine description', () => {
  it('has a secret per user, no password in its environment, skips the image user setup and sizes queries from the memory limit', () => {
    const dev = describeFor('dev');
    // The replicas' two (replication.ts) are generated everywhere and used by a stack of several members only.
    expect(dev.secrets.map((secret) => secret.key).sort()).toEqual([
      'admin-password',
      'app-password',
      'backup-password',
      'cluster-secret',
      'default-password',
      'interserver-password',
      'readonly-password',
    ]);
    expect(dev.env).toEqual({
      CLICKHOUSE_SKIP_USER_SETUP: '1',
      // 512Mi * 0.5
      CLICKHOUSE_QUERY_MAX_MEMORY_BYTES: String(256 * 2 ** 20),
    });
    expect(dev.env).not.toHaveProperty('CLICKHOUSE_DB');
    expect(describeFor('prod', { queryMemoryRatio: 0.25 }).env.CLICKHOUSE_QUERY_MAX_MEMORY_BYTES).toBe(String(2 * 2 ** 30));
    expect(() => clickhouse.optionsSchema.parse({ queryMemoryRatio: 0.9 })).toThrow();
  });

  it('runs as the image user on a read-only root filesystem and connects the platform over HTTP', () => {
    const spec = describeFor('staging');
    expect(spec).toMatchObject({
      runAs: { user: 101, group: 101 },
      readOnlyRootFilesystem: true,
      scratchPaths: ['/tmp'],
      dataPath: '/var/lib/clickhouse',
      component: 'analytics',
      appConnection: { scheme: 'http', username: 'allixios_app', passwordSecret: 'app-password', path: '/allixios' },
      adminConnection: { scheme: 'http', username: 'allixios_admin', passwordSecret: 'admin-password' },
    });
    expect(clickhouse.urlVariable).toBe('CLICKHOUSE_URL');
    expect(spec.ports[0]).toEqual({ name: 'http', containerPort: 8123 });
    expect(spec.healthCheck.command.join(' ')).toContain('http://127.0.0.1:8123/ping');
    // Every source file exists on disk (readFileSync throws otherwise).
    for (const file of [...spec.configFiles, ...spec.secretFiles]) readFileSync(join(clickhouse.directory, file.source));
  });
});
