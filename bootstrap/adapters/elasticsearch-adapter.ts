/**
 * The Elasticsearch adapter (the engine is `elasticsearch.ts`; this module and its driver,
 * @elastic/elasticsearch, are loaded only when a run connects): the articles index behind its
 * alias and the search-analytics index template, brought to the definitions of
 * `databases/elasticsearch/`. The adapter observes the cluster, `elasticsearch-plan.ts` decides
 * (pure), the adapter applies.
 *
 * Elasticsearch has no sessions to hang a lock on: bootstraps are serialised by a lease
 * (`bootstrap/lease.ts`), one document in a hidden index, created with op_type=create (so only
 * one bootstrap can create it) and renewed by its holder. A holder that stops renewing (killed)
 * loses it when it expires; a waiting bootstrap then takes it over with a conditional write on
 * the document's sequence number, which only one of several waiters can win. Every change
 * applied is recorded in a hidden ledger index.
 *
 * Passwords rotate (README "Rotating a password"): the admin user (`elastic`, native realm) logs
 * in with the stack's current password or, while the cluster still has the previous one the
 * rotation keeps, with that one, and then sets the current one. The platform's users live in the
 * file realm, which Elasticsearch reloads from its mounted Secret: the bootstrap only checks that
 * the application's login is accepted.
 */
import { hostname } from 'node:os';
import { Client, errors, type estypes } from '@elastic/elasticsearch';
import { CLIENT_CA_PATH } from '../../databases/connection.ts';
import { readClientCa } from './client-ca.ts';
import { BootstrapError, toError } from '../errors.ts';
import { Lease, type LeaseStore, type Renewal } from '../lease.ts';
import type { Adapter, Change } from '../contract.ts';
import type { ElasticsearchObserved, ElasticsearchPayload, LedgerRecord, ObservedAliasedIndex, ObservedBackup, ObservedDataStream, ObservedIndex } from './elasticsearch-plan.ts';
import { notReachable, readiness, retryWithBackoff, TRY_AGAIN } from './backoff.ts';
import { urlUser, waitUntilAccepted, type LoginAttempt } from './logins.ts';
import type { AdapterOptions, Login } from '../contract.ts';

export const LEDGER_INDEX = 'allixios-bootstrap-ledger';
export const LOCK_INDEX = 'allixios-bootstrap-lock';
const LOCK_ID = 'lock';
/** How long a reindex into the next version may take before the bootstrap gives up on it. */
export const DEFAULT_REINDEX_TIMEOUT_MS = 60 * 60_000;

/** Where the admin's password is defined, for the change that sets it. */
const PASSWORD_SOURCE = 'databases/elasticsearch/index.ts';
/** How long one check of a login may take: it is repeated within the readiness timeout. */
const LOGIN_CHECK_TIMEOUT_MS = 10_000;

/** What setting the admin's password needs: never printed. */
export interface ElasticsearchCredentialPayload {
  /** The stack's current password. */
  password: string;
}

export interface ElasticsearchAdapterOptions extends AdapterOptions {
  /** The aliases (with their `<alias>_v<N>` indices), the index templates and the backups' repository and policy to observe. */
  watch: { aliases: string[]; templates: string[]; backup?: { repository: string; policy: string } };
  /** Bookkeeping index names; tests give throwaway ones. */
  ledgerIndex?: string;
  lockIndex?: string;
  reindexTimeoutMs?: number;
}

/** The client's constructor options (the package's ESM types do not export `ClientOptions`). */
type ClientOptions = ConstructorParameters<typeof Client>[0];

/**
 * The client's options for `url`: its node and credentials, and for an `https:` URL the stack's CA
 * bundle (read from `caFile`), which the client verifies the chain and the host name with (Node's
 * defaults, neither turned off here). The URL carries no CA: Elasticsearch's TLS form is its scheme.
 */
export function elasticsearchClientOptions(url: string, requestTimeout: number, caFile: string = CLIENT_CA_PATH): ClientOptions {
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username);
  return {
    node: `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`,
    ...(user ? { auth: { username: user, password: decodeURIComponent(parsed.password) } } : {}),
    ...(parsed.protocol === 'https:' ? { tls: { ca: readClientCa('elasticsearch', caFile) } } : {}),
    // Retries are the bootstrap's own: a create retried by the client after a lost response
    // would conflict with itself.
    maxRetries: 0,
    requestTimeout,
    name: 'allixios-bootstrap',
  };
}

function statusOf(error: unknown): number | undefined {
  return error instanceof errors.ResponseError ? error.statusCode : undefined;
}

function errorType(error: unknown): string | undefined {
  if (!(error instanceof errors.ResponseError)) return undefined;
  const body = error.body as { error?: { type?: unknown } } | undefined;
  return typeof body?.error?.type === 'string' ? body.error.type : undefined;
}

/** The cluster's own words: `type: reason (HTTP status)`, or the client's message. */
export function describeError(error: unknown): string {
  if (error instanceof errors.ResponseError) {
    const body = error.body as
      { error?: { type?: string; reason?: string; caused_by?: { type?: string; reason?: string } } | string; status?: string; timed_out?: boolean } | undefined;
    if (body?.timed_out === true && typeof body.status === 'string') return `cluster health ${body.status}, not yet yellow (HTTP ${error.statusCode})`;
    if (typeof body?.error === 'string') return `${body.error} (HTTP ${error.statusCode})`;
    if (body?.error) {
      const cause = body.error.caused_by ? `; caused by ${body.error.caused_by.type}: ${body.error.caused_by.reason}` : '';
      return `${body.error.type}: ${body.error.reason}${cause} (HTTP ${error.statusCode})`;
    }
    return `HTTP ${error.statusCode}`;
  }
  return toError(error).message;
}

/** Not ready yet: unreachable, timing out, or a node still starting (no master, security index). */
function isTransient(error: unknown): boolean {
  if (error instanceof errors.ConnectionError || error instanceof errors.TimeoutError || error instanceof errors.NoLivingConnectionsError) return true;
  const status = statusOf(error);
  return status === 408 || status === 429 || status === 502 || status === 503 || status === 504;
}

/** How one cluster health request went: answered, or why not (a refused login kept apart). */
type HealthOutcome = { answered: true } | { answered: false; refused: boolean; reason: string };

/** Bookkeeping indices: one shard, a replica once a second node exists, hidden from wildcards. */
const BOOKKEEPING_SETTINGS: estypes.IndicesIndexSettings = { number_of_shards: 1, auto_expand_replicas: '0-1', hidden: true };

const LEDGER_MAPPINGS: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  properties: {
    subject: { type: 'keyword' },
    action: { type: 'keyword' },
    detail: { type: 'text' },
    appliedAt: { type: 'date' },
    appliedBy: { type: 'keyword' },
  },
};

const LOCK_MAPPINGS: estypes.MappingTypeMapping = {
  dynamic: 'strict',
  properties: { holder: { type: 'keyword' }, expiresAt: { type: 'date' } },
};

interface LockDocument {
  holder: string;
  /** ISO 8601, from the holder's clock. */
  expiresAt: string;
}

/** The document's sequence number and primary term: what a conditional write must match. */
interface LockVersion {
  seqNo: number;
  primaryTerm: number;
}

/**
 * One entry of a reindex's `failures`: a bulk failure (a document refused: `id` and `cause`) or
 * a search failure (a shard that could not be read: `index`, `shard` and `reason`, no `cause`).
 */
export function describeReindexFailure(failure: unknown): string {
  const entry = failure as { id?: string; index?: string; shard?: number; cause?: { type?: string; reason?: string }; reason?: { type?: string; reason?: string } | string };
  if (entry.cause) return `document ${entry.id ?? '(no id)'}: ${entry.cause.type}: ${entry.cause.reason}`;
  if (entry.reason !== undefined) {
    const reason = typeof entry.reason === 'string' ? entry.reason : `${entry.reason.type}: ${entry.reason.reason}`;
    return `reading ${entry.index ?? 'the source'}${entry.shard !== undefined ? ` shard ${entry.shard}` : ''}: ${reason}`;
  }
  return JSON.stringify(failure).slice(0, 300);
}

export class ElasticsearchAdapter implements Adapter<ElasticsearchObserved, ElasticsearchPayload> {
  readonly engine = 'elasticsearch' as const;
  readonly target: string;
  private readonly hostPort: string;
  private readonly user: string;
  /** The admin URL, with the stack's current password. */
  private readonly url: string;
  /** The client with the stack's current password. */
  private readonly currentClient: Client;
  /** The client the adapter works with: the current one, or the previous one until a rotation sets the current password. */
  private client: Client;
  /** Every client made for the admin, closed by `close()`. */
  private readonly clients: Client[] = [];
  private loggedIn?: Login;
  private readonly ledgerIndex: string;
  private readonly lockIndex: string;
  /** The lease the lock is (`bootstrap/lease.ts`). */
  readonly lease: Lease;
  /** The lease document's version as this holder last wrote it: what its next write is conditional on. */
  private lockVersion?: LockVersion;
  private ledgerReady = false;

  constructor(
    url: string,
    private readonly options: ElasticsearchAdapterOptions,
  ) {
    const parsed = new URL(url);
    const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
    this.hostPort = `${parsed.hostname}:${port}`;
    this.target = `${parsed.protocol}//${this.hostPort}`;
    this.user = decodeURIComponent(parsed.username);
    this.url = url;
    this.ledgerIndex = options.ledgerIndex ?? LEDGER_INDEX;
    this.lockIndex = options.lockIndex ?? LOCK_INDEX;
    this.lease = new Lease(this.engine, this.leaseStore(), options);
    this.currentClient = this.client = this.adminClient(url);
  }

  /** A client for `url`, with its credentials. */
  private clientFor(url: string, requestTimeout: number): Client {
    return new Client(elasticsearchClientOptions(url, requestTimeout));
  }

  /** A client for the admin URL with one of its passwords, closed with the adapter. */
  private adminClient(url: string): Client {
    const client = this.clientFor(url, 120_000);
    this.clients.push(client);
    return client;
  }

  /** Which password `connect()` logged in with; `current` again once a rotation has set it. */
  get login(): Login | undefined {
    return this.loggedIn;
  }

  /** One cluster health request: answered, refused (401), or not ready; throws what waiting does not fix. */
  private async health(client: Client, remaining: number): Promise<HealthOutcome> {
    try {
      await client.cluster.health(
        { wait_for_status: 'yellow', timeout: `${Math.max(1, Math.min(5, Math.floor(remaining / 1000)))}s` },
        { requestTimeout: Math.max(2000, Math.min(10_000, remaining + 1000)) },
      );
      return { answered: true };
    } catch (error) {
      const status = statusOf(error);
      if (status === 401) return { answered: false, refused: true, reason: describeError(error) };
      if (status === 403) {
        // Waiting does not fix a user without the monitor privilege.
        throw new BootstrapError(
          this.engine,
          `cannot connect to ${this.hostPort} as ${this.user || 'an anonymous user'}: not allowed to read the cluster health: ${describeError(error)}`,
          { code: errorType(error) },
        );
      }
      if (!isTransient(error)) throw new BootstrapError(this.engine, `cannot connect to ${this.hostPort}: ${describeError(error)}`, { code: errorType(error) });
      return { answered: false, refused: false, reason: describeError(error) };
    }
  }

  /**
   * Waits (bounded, with backoff) for the cluster to answer with status yellow or green, with the
   * current password or, when the cluster refuses it and a rotation keeps the previous one, with
   * that one. A 401 is a wrong password or a node whose security index is still recovering (its
   * native users cannot be checked yet): only waiting tells them apart, so it is waited on, and
   * both passwords are tried in every attempt.
   */
  async connect(): Promise<void> {
    const previousUrl = this.options.logins?.previousUrl;
    const previous = previousUrl ? this.adminClient(previousUrl) : undefined;
    const who = this.user || 'an anonymous user';
    let last = 'no attempt made';
    let unauthorised = false;
    const attempt = async (remaining: number): Promise<Login | typeof TRY_AGAIN> => {
      const current = await this.health(this.currentClient, remaining);
      if (current.answered) return 'current';
      unauthorised = current.refused;
      last = current.refused ? `authentication failed as ${who} (a wrong password, or the security index still recovering): ${current.reason}` : current.reason;
      if (!current.refused || !previous) return TRY_AGAIN;
      const fallback = await this.health(previous, remaining);
      if (fallback.answered) return 'previous';
      unauthorised = fallback.refused;
      last = fallback.refused
        ? `authentication failed as ${who} with the stack's current password and with the previous one the rotation keeps (wrong passwords, or the security index still recovering): current: ${current.reason}; previous: ${fallback.reason}`
        : fallback.reason;
      return TRY_AGAIN;
    };
    const login = await retryWithBackoff(
      readiness(this.options.readyTimeoutMs),
      attempt,
      (elapsed) =>
        unauthorised
          ? new BootstrapError(this.engine, `cannot connect to ${this.hostPort} after ${(elapsed / 1000).toFixed(1)} s: ${last}`, { code: 'security_exception' })
          : notReachable(this.engine, this.hostPort, elapsed, last),
      { onWait: this.options.onWait, waiting: () => (unauthorised ? `${this.hostPort} refuses the login yet (${last})` : `not reachable at ${this.hostPort} yet (${last})`) },
    );
    this.loggedIn = login;
    if (login === 'previous') this.client = previous!;
  }

  /** Whether `client`'s credentials are accepted now (`_authenticate` needs no privilege); throws what waiting does not fix. */
  private async authenticates(client: Client, what: string): Promise<LoginAttempt> {
    try {
      await client.security.authenticate();
      return { accepted: true };
    } catch (error) {
      if (statusOf(error) === 401) return { accepted: false, reason: `refused: ${describeError(error)}` };
      if (isTransient(error)) return { accepted: false, reason: describeError(error) };
      throw new BootstrapError(this.engine, `${what}: ${describeError(error)}`, { code: errorType(error) });
    }
  }

  /** From now on the adapter works with the current password. */
  private useCurrent(): void {
    this.client = this.currentClient;
    this.loggedIn = 'current';
  }

  /**
   * Logged in with the previous password: set the stack's. Unless the cluster accepts the
   * current one by now (a concurrent bootstrap set it): then the adapter switches to it.
   */
  async planCredentials(): Promise<Array<Change<ElasticsearchCredentialPayload>>> {
    if (this.loggedIn !== 'previous') return [];
    if ((await this.authenticates(this.currentClient, `${this.user} with the stack's current password`)).accepted) {
      this.useCurrent();
      return [];
    }
    return [
      {
        subject: `user ${this.user}`,
        action: 'update',
        detail: "the engine still has the previous password: set the stack's",
        source: PASSWORD_SOURCE,
        payload: { password: decodeURIComponent(new URL(this.url).password) },
      },
    ];
  }

  /**
   * Sets the admin's password with the previous one, then works with the current one. The
   * previous password stops working at once: the switch comes before anything else (the lease
   * renewals go through `this.client` too).
   */
  async applyCredential(change: Change<ElasticsearchCredentialPayload>): Promise<void> {
    this.lease.assertHeld(change.subject);
    try {
      await this.client.security.changePassword({ username: this.user, password: change.payload.password });
    } catch (error) {
      throw new BootstrapError(this.engine, `${change.subject}: setting the stack's password failed: ${describeError(error)}`, {
        location: { file: change.source },
        code: errorType(error),
      });
    }
    this.useCurrent();
    const what = `${this.user} with the stack's current password`;
    await waitUntilAccepted(this.engine, what, this.options, () => this.authenticates(this.currentClient, what));
  }

  /**
   * Waits until the cluster accepts `url` (the application's login, a file-realm user whose
   * password Elasticsearch reloads from its mounted Secret), each check with a client of its own.
   */
  async verifyLogin(url: string): Promise<void> {
    const what = `the login ${urlUser(url)}`;
    await waitUntilAccepted(this.engine, what, this.options, async () => {
      const client = this.clientFor(url, LOGIN_CHECK_TIMEOUT_MS);
      try {
        return await this.authenticates(client, what);
      } finally {
        await client.close().catch(() => undefined);
      }
    });
  }

  /** Creates a bookkeeping index unless it exists; two bootstraps creating it at once both succeed. */
  private async ensureIndex(index: string, mappings: estypes.MappingTypeMapping): Promise<void> {
    if (await this.client.indices.exists({ index, expand_wildcards: 'all' })) return;
    try {
      await this.client.indices.create({ index, settings: BOOKKEEPING_SETTINGS, mappings });
    } catch (error) {
      if (errorType(error) !== 'resource_already_exists_exception') throw error;
    }
  }

  private async readLock(): Promise<{ document: LockDocument; version: LockVersion } | undefined> {
    try {
      const found = await this.client.get<LockDocument>({ index: this.lockIndex, id: LOCK_ID });
      if (!found.found || !found._source || found._seq_no === undefined || found._primary_term === undefined) return undefined;
      return { document: found._source, version: { seqNo: found._seq_no, primaryTerm: found._primary_term } };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * The one lease of the four on the hosts' clock: the expiry is written and judged by the
   * hosts, whose clocks must agree within the lease minus a renewal interval (20 s), which NTP
   * gives. A document write takes every field from the request; Elasticsearch lends its own
   * clock only to an update script (`ctx._now`) or an ingest pipeline (`_ingest.timestamp`,
   * whose installation needs the manage_pipeline privilege). A scripted update would move the
   * takeover decision into a script, in place of the `_seq_no`/`_primary_term` conditions this
   * lease rests on.
   */
  private leaseDocument(holder: string, leaseMs: number): LockDocument {
    return { holder, expiresAt: new Date(Date.now() + leaseMs).toISOString() };
  }

  /**
   * One attempt: create the lock document, or take over an expired one; true when the lock is
   * now `holder`'s. Of several waiters for an expired lease, the conditional write lets one win.
   */
  private async takeLease(holder: string, leaseMs: number): Promise<boolean> {
    try {
      const created = await this.client.index({ index: this.lockIndex, id: LOCK_ID, op_type: 'create', document: this.leaseDocument(holder, leaseMs) });
      this.lockVersion = { seqNo: created._seq_no!, primaryTerm: created._primary_term! };
      return true;
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
    }
    const current = await this.readLock();
    // Gone since the 409 (released just now): the next attempt creates it.
    if (!current || Date.parse(current.document.expiresAt) > Date.now()) return false;
    try {
      const taken = await this.client.index({
        index: this.lockIndex,
        id: LOCK_ID,
        if_seq_no: current.version.seqNo,
        if_primary_term: current.version.primaryTerm,
        document: this.leaseDocument(holder, leaseMs),
      });
      this.lockVersion = { seqNo: taken._seq_no!, primaryTerm: taken._primary_term! };
      return true;
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      return false;
    }
  }

  /** A write conditional on the version this holder last wrote. */
  private async extendLease(holder: string, leaseMs: number): Promise<Renewal> {
    const version = this.lockVersion;
    if (!version) return 'lost';
    try {
      const renewed = await this.client.index({
        index: this.lockIndex,
        id: LOCK_ID,
        if_seq_no: version.seqNo,
        if_primary_term: version.primaryTerm,
        document: this.leaseDocument(holder, leaseMs),
      });
      this.lockVersion = { seqNo: renewed._seq_no!, primaryTerm: renewed._primary_term! };
      return 'renewed';
    } catch (error) {
      // Anything but a conflict (a slow cluster) is retried at the next beat, while the lease
      // still runs. A conflict: the document changed since this holder last wrote it. Another
      // bootstrap took the lock over (this one must stop), or an earlier renewal of this one was
      // applied but its reply lost: the lock is still this one's, at a newer version, which the
      // next beat renews.
      if (statusOf(error) !== 409) return 'skipped';
      const current = await this.readLock().catch(() => undefined);
      if (current?.document.holder !== holder) return 'lost';
      this.lockVersion = current.version;
      return 'skipped';
    }
  }

  private leaseStore(): LeaseStore {
    return {
      tryAcquire: (holder, leaseMs) => this.takeLease(holder, leaseMs),
      renew: (holder, leaseMs) => this.extendLease(holder, leaseMs),
      release: async () => {
        const version = this.lockVersion;
        this.lockVersion = undefined;
        // Conditional: a lock taken over meanwhile is someone else's and stays.
        if (version) await this.client.delete({ index: this.lockIndex, id: LOCK_ID, if_seq_no: version.seqNo, if_primary_term: version.primaryTerm });
      },
      describeHolder: async () => {
        const current = await this.readLock();
        return current && `${current.document.holder}, lease until ${current.document.expiresAt}`;
      },
      where: `${this.lockIndex}/_doc/${LOCK_ID}`,
    };
  }

  async lock(): Promise<void> {
    await this.ensureIndex(this.lockIndex, LOCK_MAPPINGS);
    await this.lease.acquire();
  }

  private async observeAliased(alias: string): Promise<ObservedAliasedIndex> {
    let aliasTargets: string[] = [];
    let nameTakenByIndex = false;
    if (await this.client.indices.existsAlias({ name: alias })) {
      aliasTargets = Object.keys(await this.client.indices.getAlias({ name: alias })).sort();
    } else {
      nameTakenByIndex = await this.client.indices.exists({ index: alias, expand_wildcards: 'all' });
    }
    // Every version, hidden or closed included: a leftover blocks creating its name.
    const pattern = `${alias}_v*`;
    const wildcard = { index: pattern, expand_wildcards: 'all', allow_no_indices: true } as const;
    const mappings = await this.client.indices.getMapping(wildcard);
    const settings = await this.client.indices.getSettings({ ...wildcard, flat_settings: true });
    const versions: Record<string, ObservedIndex> = {};
    for (const [index, record] of Object.entries(mappings)) {
      versions[index] = { mappings: record.mappings, settings: (settings[index]?.settings ?? {}) as Record<string, unknown> };
    }
    return { alias, aliasTargets, nameTakenByIndex, versions };
  }

  private async observeTemplate(name: string): Promise<estypes.IndicesIndexTemplate | null> {
    try {
      const found = await this.client.indices.getIndexTemplate({ name, flat_settings: true });
      return found.index_templates.find((item) => item.name === name)?.index_template ?? null;
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  /** The latest ledger record per subject; none before the first change. */
  private async readLedger(): Promise<LedgerRecord[]> {
    const result = await this.client.search<LedgerRecord>({
      index: this.ledgerIndex,
      ignore_unavailable: true,
      size: 1000,
      sort: [{ appliedAt: 'desc' }],
      collapse: { field: 'subject' },
    });
    return result.hits.hits.flatMap((hit) => (hit._source ? [hit._source] : []));
  }

  /** The data streams matching a template's patterns, with their lifecycle. */
  private async observeDataStreams(template: estypes.IndicesIndexTemplate | null): Promise<ObservedDataStream[]> {
    if (!template?.data_stream) return [];
    const patterns = Array.isArray(template.index_patterns) ? template.index_patterns : [template.index_patterns];
    try {
      const found = await this.client.indices.getDataLifecycle({ name: patterns.join(','), expand_wildcards: 'all' });
      return found.data_streams.map((stream) => ({
        name: stream.name,
        ...(stream.lifecycle
          ? {
              lifecycle: {
                enabled: stream.lifecycle.enabled ?? true,
                ...(stream.lifecycle.data_retention !== undefined ? { data_retention: String(stream.lifecycle.data_retention) } : {}),
              },
            }
          : {}),
      }));
    } catch (error) {
      if (statusOf(error) === 404) return [];
      throw error;
    }
  }

  /** The repository and the policy of the backups, each null when the cluster has none of that name. */
  private async observeBackup(names: { repository: string; policy: string }): Promise<ObservedBackup> {
    let repository: ObservedBackup['repository'] = null;
    try {
      const found = (await this.client.snapshot.getRepository({ name: names.repository }))[names.repository];
      if (found) repository = { type: found.type, settings: { ...(found.settings as Record<string, unknown>) } };
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    let policy: ObservedBackup['policy'] = null;
    try {
      policy = (await this.client.slm.getLifecycle({ policy_id: names.policy }))[names.policy]?.policy ?? null;
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    return { repositoryName: names.repository, policyId: names.policy, repository, policy };
  }

  async observe(): Promise<ElasticsearchObserved> {
    const indices: ObservedAliasedIndex[] = [];
    for (const alias of this.options.watch.aliases) indices.push(await this.observeAliased(alias));
    const templates: Record<string, estypes.IndicesIndexTemplate | null> = {};
    const dataStreams: Record<string, ObservedDataStream[]> = {};
    for (const name of this.options.watch.templates) {
      templates[name] = await this.observeTemplate(name);
      dataStreams[name] = await this.observeDataStreams(templates[name]);
    }
    const backup = this.options.watch.backup ? await this.observeBackup(this.options.watch.backup) : undefined;
    return { indices, templates, dataStreams, ledger: await this.readLedger(), ...(backup ? { backup } : {}) };
  }

  private async createIndex(
    index: string,
    settings: estypes.IndicesIndexSettingsKeys,
    mappings: estypes.MappingTypeMapping,
    aliases?: Record<string, estypes.IndicesAlias>,
  ): Promise<void> {
    await this.client.indices.create({ index, settings, mappings, ...(aliases ? { aliases } : {}) });
  }

  /** Reindexes as a task and follows it: a long reindex outlives any single HTTP request. */
  private async reindex(from: string, to: string): Promise<void> {
    const timeoutMs = this.options.reindexTimeoutMs ?? DEFAULT_REINDEX_TIMEOUT_MS;
    const started = await this.client.reindex({ source: { index: from }, dest: { index: to, op_type: 'create' }, wait_for_completion: false, refresh: true });
    const task = String(started.task);
    let done = 'no progress reported yet';
    const attempt = async () => {
      const status = await this.client.tasks.get({ task_id: task });
      if (!status.completed) {
        const { created, updated, total } = (status.task.status ?? {}) as { created?: number; updated?: number; total?: number };
        if (total !== undefined) done = `${(created ?? 0) + (updated ?? 0)} of ${total} documents`;
        return TRY_AGAIN;
      }
      if (status.error) throw new Error(`reindex from ${from} into ${to} failed: ${status.error.type}: ${status.error.reason} (task ${task})`);
      const response = (status.response ?? {}) as estypes.ReindexResponse;
      const failures = response.failures ?? [];
      if (failures.length > 0) {
        throw new Error(
          `reindex from ${from} into ${to} failed ${failures.length} time(s), e.g. ${describeReindexFailure(failures[0]!)} (task ${task}); the alias still points at ${from}`,
        );
      }
      return true;
    };
    await retryWithBackoff(
      { timeoutMs, firstDelayMs: 250, maxDelayMs: 5000 },
      attempt,
      async () => {
        await this.client.tasks.cancel({ task_id: task }).catch(() => undefined);
        return new Error(
          `reindex from ${from} into ${to} did not finish within ${(timeoutMs / 1000).toFixed(0)} s; task ${task} was cancelled and the alias still points at ${from}`,
        );
      },
      { onWait: this.options.onWait, waiting: () => `reindexing ${from} into ${to} (task ${task}): ${done}` },
    );
  }

  private async record(change: Change<ElasticsearchPayload>): Promise<void> {
    if (!this.ledgerReady) {
      await this.ensureIndex(this.ledgerIndex, LEDGER_MAPPINGS);
      this.ledgerReady = true;
    }
    const record: LedgerRecord = {
      subject: change.subject,
      action: change.action,
      detail: change.detail,
      appliedAt: new Date().toISOString(),
      appliedBy: `${this.user || 'anonymous'} from ${hostname()}`,
    };
    await this.client.index({ index: this.ledgerIndex, document: record, refresh: 'wait_for' });
  }

  private async applyPayload(payload: ElasticsearchPayload): Promise<void> {
    switch (payload.kind) {
      case 'create-index':
        if (payload.deleteExisting) await this.client.indices.delete({ index: payload.index, ignore_unavailable: true });
        // The alias comes with the index, in the same request: never one without the other.
        await this.createIndex(payload.index, payload.settings, payload.mappings, { [payload.alias]: {} });
        return;
      case 'update-index':
        if (payload.mappings) await this.client.indices.putMapping({ index: payload.index, ...payload.mappings });
        if (payload.settings) await this.client.indices.putSettings({ index: payload.index, settings: payload.settings });
        return;
      case 'reindex':
        if (payload.deleteExisting) await this.client.indices.delete({ index: payload.to, ignore_unavailable: true });
        await this.createIndex(payload.to, payload.settings, payload.mappings);
        await this.reindex(payload.from, payload.to);
        // A reindex can outlast a lease whose renewals failed: never move the alias without the lock.
        this.lease.assertHeld(`moving the alias ${payload.alias} from ${payload.from} to ${payload.to}`);
        // One _aliases request is one cluster-state update: readers see the old index or the new
        // one, never neither. must_exist fails the swap if someone moved the alias meanwhile.
        await this.client.indices.updateAliases({
          actions: [{ remove: { index: payload.from, alias: payload.alias, must_exist: true } }, { add: { index: payload.to, alias: payload.alias } }],
        });
        return;
      case 'put-template':
        await this.client.indices.putIndexTemplate(payload.request);
        return;
      case 'put-data-stream-lifecycle':
        await this.client.indices.putDataLifecycle({ name: payload.name, data_retention: payload.dataRetention });
        return;
      case 'put-snapshot-repository':
        // verify: every master and data node writes and reads a test blob, so wrong keys or an
        // unreachable endpoint fail here, naming the node, not at the first snapshot.
        await this.client.snapshot.createRepository({ name: payload.name, repository: payload.repository, verify: true });
        return;
      case 'put-slm-policy':
        await this.client.slm.putLifecycle({ policy_id: payload.id, ...payload.policy });
        return;
      case 'delete-slm-policy':
        await this.client.slm.deleteLifecycle({ policy_id: payload.id });
        return;
    }
  }

  async apply(change: Change<ElasticsearchPayload>): Promise<void> {
    this.lease.assertHeld(change.subject);
    try {
      await this.applyPayload(change.payload);
    } catch (error) {
      // The lease lost during a reindex: its own words, not wrapped as the change's failure.
      if (error instanceof BootstrapError) throw error;
      throw new BootstrapError(this.engine, `${change.subject}: ${change.action} failed: ${describeError(error)}`, { location: { file: change.source }, code: errorType(error) });
    }
    await this.record(change);
  }

  async close(): Promise<void> {
    await this.lease.release();
    for (const client of this.clients) await client.close().catch(() => undefined);
  }
}
