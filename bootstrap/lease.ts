/**
 * The lease lock of the engines that have no session to hang a lock on (ClickHouse, MongoDB,
 * Redis, Elasticsearch), written once. A lease is a record in the engine naming its holder and
 * lasting a while: the holder renews it while it works and ends it when done, so a killed
 * bootstrap blocks the others for one lease at most. What the record is, and how the engine
 * makes "take it", "extend it" and "end it" safe against another bootstrap, is each engine's
 * `LeaseStore`; the rest is here: the holder's name, the lease's length, the wait for another
 * holder, the renewals and what they say, and the check before every change.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { EngineName } from '../databases/engine.ts';
import { lockHeld, lockWait, retryWithBackoff, TRY_AGAIN } from './adapters/backoff.ts';
import type { AdapterOptions } from './contract.ts';
import { BootstrapError, toError } from './errors.ts';

/** How long a lease lasts without renewal when `lockLeaseMs` does not say. */
export const DEFAULT_LEASE_MS = 30_000;

/**
 * What one renewal found: the lease extended; no longer this holder's; or not extended this
 * time although nothing says it was lost (the lease is kept, and renewed at the next beat).
 */
export type Renewal = 'renewed' | 'lost' | 'skipped';

/** One engine's lease record; every write must leave another holder's lease alone. */
export interface LeaseStore {
  /** One attempt to take the lease for `leaseMs`: true when it is now `holder`'s, false while another's is live. */
  tryAcquire(holder: string, leaseMs: number): Promise<boolean>;
  /**
   * Extends `holder`'s lease to `leaseMs` from now, if it is still `holder`'s. 'skipped' only
   * for a failure the engine explains and that leaves the lease `holder`'s; a throw counts as
   * the lease lost.
   */
  renew(holder: string, leaseMs: number): Promise<Renewal>;
  /**
   * Ends `holder`'s lease now if it is still `holder`'s, and no other's: the engine decides in
   * one step, since what this process last heard may be out of date.
   */
  release(holder: string): Promise<void>;
  /** The live holder as the messages name it (`host/pid/id` and what the engine knows of it), or undefined when there is none. */
  describeHolder(): Promise<string | undefined>;
  /** Where the lease is kept, when the messages should say so (`database.collection`). */
  readonly where?: string;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(1);

export class Lease {
  /** Unique per run: the host and process say who, the UUID tells two runs of one process apart. */
  readonly holder = `${hostname()}/${process.pid}/${randomUUID()}`;
  readonly leaseMs: number;
  private readonly lockTimeoutMs: number;
  private readonly onWait: AdapterOptions['onWait'];
  private acquired = false;
  private released = false;
  /** Why the lease is no longer this run's; set once, never cleared. */
  private lost?: string;
  /**
   * `performance.now()` when the last acquisition or renewal that succeeded was sent: the engine
   * dated the lease after that, so it lasts `leaseMs` from then at least. A monotonic clock of
   * this process, never compared with another host's.
   */
  private confirmedAt = 0;
  private timer?: NodeJS.Timeout;
  private renewal?: Promise<void>;

  constructor(
    private readonly engine: EngineName,
    /** Where the lease is kept; the conformance suite plants other holders' leases through it. */
    readonly store: LeaseStore,
    options: Pick<AdapterOptions, 'lockTimeoutMs' | 'lockLeaseMs' | 'onWait'>,
  ) {
    this.leaseMs = options.lockLeaseMs ?? DEFAULT_LEASE_MS;
    this.lockTimeoutMs = options.lockTimeoutMs;
    this.onWait = options.onWait;
  }

  /** A third of the lease: two renewals may fail before it runs out. */
  private get intervalMs(): number {
    return Math.max(100, Math.floor(this.leaseMs / 3));
  }

  private get held(): boolean {
    return this.acquired && !this.released && this.lost === undefined;
  }

  /**
   * Takes the lease, waiting (with the lock wait's backoff, up to the lock timeout) while
   * another bootstrap holds it, then keeps it renewed until `release()`. The timeout's error
   * names the holder, and so do the wait's progress lines.
   */
  async acquire(): Promise<void> {
    if (this.acquired) return;
    const attempt = async () => {
      const sent = performance.now();
      if (!(await this.store.tryAcquire(this.holder, this.leaseMs))) return TRY_AGAIN;
      this.confirmedAt = sent;
      return true;
    };
    await retryWithBackoff(lockWait(this.lockTimeoutMs), attempt, async () => lockHeld(this.engine, this.lockTimeoutMs, await this.describeHolder()), {
      onWait: this.onWait,
      waiting: async () => `another bootstrap holds the lock (${await this.describeHolder()})`,
    });
    this.acquired = true;
    this.schedule();
  }

  private async describeHolder(): Promise<string> {
    let who: string;
    try {
      const holder = await this.store.describeHolder();
      who = holder ? `held by ${holder}` : 'its lease ended just now';
    } catch (error) {
      who = `its holder could not be read: ${toError(error).message.trim()}`;
    }
    return this.store.where ? `${who}; ${this.store.where}` : who;
  }

  /**
   * Chained timers rather than an interval: the next renewal is planned when the last has
   * settled, so a slow engine never has two renewals of one holder racing each other. Unref'd:
   * a lease must not keep the process alive.
   */
  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.renewOnce();
    }, this.intervalMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private renewOnce(): Promise<void> {
    this.renewal = this.renew().finally(() => {
      this.renewal = undefined;
      if (this.held && !this.timer) this.schedule();
    });
    return this.renewal;
  }

  private async renew(): Promise<void> {
    const sent = performance.now();
    let outcome: Renewal;
    try {
      outcome = await this.store.renew(this.holder, this.leaseMs);
    } catch (error) {
      this.lose(`its renewal failed: ${toError(error).message.trim()}`);
      return;
    }
    if (outcome === 'renewed') this.confirmedAt = sent;
    if (outcome !== 'lost') return;
    // Said at once (an apply checking now must stop), then completed with who took it over.
    const reason = 'the lease expired before it was renewed';
    if (!this.lose(reason)) return;
    const taker = await this.store.describeHolder().catch(() => undefined);
    if (taker) this.lost = `${reason}; it is now held by ${taker}`;
  }

  /** Records the loss (the first reason stays) and stops renewing; true when this call recorded it. */
  private lose(reason: string): boolean {
    if (this.lost !== undefined) return false;
    this.lost = reason;
    this.stopTimer();
    return true;
  }

  /**
   * Renews at once, after any renewal in flight, and plans the next a third of a lease later:
   * for an adapter that has just regained the means to renew (ClickHouse's switch to the
   * current password). Nothing when the lease is not held.
   */
  async renewNow(): Promise<void> {
    if (!this.held) return;
    this.stopTimer();
    while (this.renewal) await this.renewal;
    if (!this.held) return;
    this.stopTimer();
    await this.renewOnce();
  }

  /**
   * Throws, naming the loss, when the lease is no longer this run's: before every change. Also
   * when no renewal has succeeded for a whole lease (renewals that hang, or are skipped again
   * and again): it may have expired, and another bootstrap taken it. A run that never took the
   * lease (nothing to apply under it) is not checked.
   */
  assertHeld(what: string): void {
    if (this.held) {
      const silentMs = performance.now() - this.confirmedAt;
      if (silentMs >= this.leaseMs) this.lose(`not renewed for ${seconds(silentMs)} s: its lease of ${seconds(this.leaseMs)} s may have run out`);
    }
    if (this.lost !== undefined) throw new BootstrapError(this.engine, `lost the lock (${this.lost}): ${what} and what follows were not applied`);
  }

  /**
   * Stops renewing and ends the lease at once rather than letting it run out. Also after a
   * loss: the store ends only a lease still this run's, and a claim left behind (ClickHouse's
   * row) would make the next bootstrap wait. Waits for a renewal in flight, which could
   * otherwise extend the lease after its end. Never throws: it runs on close, after whatever
   * went wrong.
   */
  async release(): Promise<void> {
    if (!this.acquired || this.released) return;
    this.released = true;
    this.stopTimer();
    while (this.renewal) await this.renewal;
    await this.store.release(this.holder).catch(() => undefined);
  }
}
