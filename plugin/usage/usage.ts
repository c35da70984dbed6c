// Usage tracking: counts per workspace, user, route and feature in minute, hour, day and month buckets, daily
// unique users (HyperLogLog) and LLM tokens used and saved. A request costs four writes to a preallocated log in
// process (see `hit`), folded into per-minute counters a few hundred entries at a time; a timer
// cuts the buffer into a numbered batch every few hundred ms and sends it as one pipeline, and close() flushes what
// is left. A batch that fails for lack of a store is kept as it is and sent again before the next one is cut, and
// the store skips a batch it already applied, so each batch counts exactly once even when a timed-out flush had in
// fact been applied.
//
// Key scheme (all keys of a workspace share the `{workspace}` hash tag, so a query's PFCOUNT spans one slot):
//   prefix:usage:{ws}:m:<epoch minute>   hash, fields below      prefix:usage:{ws}:h:<epoch hour>
//   prefix:usage:{ws}:d:<epoch day>      prefix:usage:{ws}:M:<yyyy-mm>
//   prefix:usage:{ws}:uu:<epoch day>     HyperLogLog of user ids
//   prefix:usage:{ws}:applied:<tracker>  last batch number of that tracker applied to this workspace (Redis only)
// Hash fields: `n` events, `r:<route>`, `u:<user>`, `f:<feature>`, `tu` tokens used, `ts` tokens saved.
// Buckets are cut on this process's clock (UTC): instances with clocks a second apart put a request on a
// minute boundary in neighbouring buckets, which analytics tolerate.

import { randomBytes } from 'node:crypto';
import type { Store } from '../connection/store.js';
import { KitError, StoreUnavailableError } from '../core/errors.js';
import { safeId } from '../core/keys.js';
import type { KitLogger } from '../core/logger.js';
import type { CounterGroup, CounterWrite, UniqueWrite, UsageBackend, UsageBatch } from './backend.js';
import { MemoryUsageBackend } from './memory.js';
import type { Granularity, UsageConfig } from './options.js';
import { GRANULARITIES } from './options.js';
import { APPLIED_RETENTION_MS, RedisUsageBackend } from './redis.js';

/** A usage query the kit cannot answer as asked (bad range, unknown granularity). HTTP 400. */
export class UsageQueryError extends KitError {
  constructor(message: string) {
    super('ERR_KIT_USAGE_QUERY', message, { status: 400 });
  }
}

export interface UsageEvent {
  /** The tenant the event counts against. @default 'default' */
  workspace?: string;
  user?: string;
  route?: string;
  feature?: string;
  /** Events to add. @default 1, or 0 when the event carries only tokens */
  count?: number;
  /** LLM tokens spent (prompt + completion). */
  tokensUsed?: number;
  /** LLM tokens not spent thanks to a cache hit. */
  tokensSaved?: number;
}

export interface UsageQuery {
  workspace: string;
  /** Start of the range (inclusive): a Date, epoch ms or an ISO string. @default 24 hours before `to` */
  from?: Date | number | string;
  /** End of the range (exclusive). @default now */
  to?: Date | number | string;
  /** @default 'hour' */
  granularity?: Granularity;
}

export interface UsageCounts {
  requests: number;
  tokensUsed: number;
  tokensSaved: number;
  routes: Record<string, number>;
  users: Record<string, number>;
  features: Record<string, number>;
}

export interface UsageBucket extends UsageCounts {
  /** ISO start of the bucket (UTC). */
  start: string;
}

export interface UsageReport {
  workspace: string;
  granularity: Granularity;
  from: string;
  to: string;
  buckets: UsageBucket[];
  totals: UsageCounts;
  /**
   * Distinct users over the days the range touches (HyperLogLog: about 0.8 % standard error on Redis; exact on the
   * embedded store); null when the store has no HyperLogLog (ioredis-mock).
   */
  uniqueUsers: number | null;
}

export interface UsageStats {
  events: number;
  flushes: number;
  flushErrors: number;
  dropped: number;
  buffered: number;
  lastFlushMs: number;
}

interface Pending {
  ws: string;
  user: string;
  route: string;
  feature: string;
  minute: number;
  count: number;
  used: number;
  saved: number;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MAX_BUCKETS = 1500;

function monthId(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

function monthStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function nextMonth(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

function bucketStart(g: Granularity, ms: number): number {
  if (g === 'minute') return Math.floor(ms / MINUTE) * MINUTE;
  if (g === 'hour') return Math.floor(ms / HOUR) * HOUR;
  if (g === 'day') return Math.floor(ms / DAY) * DAY;
  return monthStart(ms);
}

function bucketEnd(g: Granularity, start: number): number {
  if (g === 'minute') return start + MINUTE;
  if (g === 'hour') return start + HOUR;
  if (g === 'day') return start + DAY;
  return nextMonth(start);
}

/** Bounded, key-safe label for a hash field (user ids and routes come from outside). */
function field(v: string): string {
  return v.length <= 128 && /^[!-~]+$/.test(v) ? v : safeId(v);
}

function toMs(v: Date | number | string | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  const ms = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(ms)) throw new UsageQueryError(`usage.query: ${what} is not a valid date: ${String(v)}`);
  return ms;
}

export interface UsageMetricsSink {
  events: { value: number };
  flushOk: { value: number };
  flushError: { value: number };
  dropped: { value: number };
  flushSeconds(seconds: number): void;
}

/** A batch cut from the buffer, kept unchanged until the store acknowledges it. */
interface Unsent extends UsageBatch {
  pending: Pending[];
  /** Date.now() of the first attempt: past the applied-number retention a retry could count twice. */
  firstTried: number;
}

// A batch still unsent this long after its first attempt is given up (its counts are reported dropped) rather
// than risk the store having forgotten that it applied it. Leaves a margin for a retry already on the wire.
const GIVE_UP_MS = APPLIED_RETENTION_MS - 10 * MINUTE;

type Index = Map<string, Map<string, Map<string, Map<string, Pending>>>>;

/**
 * Requests the middleware logs before they are folded into the counters. Why a log: on a busy server the four
 * nested Map lookups of a fold, done once per request, ran with cold caches (the rest of the request had evicted
 * them) and cost microseconds each time; writing four references in a row costs next to nothing, and folding a
 * few hundred entries at once finds the maps in cache. Bounded: a full log is folded at once.
 */
const LOG_SIZE = 512;

export class UsageTracker {
  /** Counters waiting for the next flush; several may share a key (the flush adds them up). */
  private buffer: Pending[] = [];
  // workspace → user → route → feature for the current minute: four lookups of short strings, no key to build.
  private index: Index = new Map();
  private indexMinute = -1;
  /** The middleware's requests not yet folded: parallel columns, `logged` entries used, all of minute `logMinute`. */
  private readonly logWs: string[] = new Array<string>(LOG_SIZE).fill('');
  private readonly logUser: string[] = new Array<string>(LOG_SIZE).fill('');
  private readonly logRoute: string[] = new Array<string>(LOG_SIZE).fill('');
  private readonly logFeature: string[] = new Array<string>(LOG_SIZE).fill('');
  private logged = 0;
  private logMinute = -1;
  private readonly backend: UsageBackend;
  private readonly keyFor: (id: string, ...parts: string[]) => string;
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;
  /** The batch that failed for lack of a store: sent again, identical, before the next one is cut. */
  private unsent: Unsent | undefined;
  private seq = 0;
  /** Identifies this tracker's batches in the store (16 random bytes). */
  private readonly trackerId = randomBytes(16).toString('base64url');
  private closed = false;
  private warnedCommand = false;
  readonly stats: UsageStats = { events: 0, flushes: 0, flushErrors: 0, dropped: 0, buffered: 0, lastFlushMs: 0 };

  constructor(
    store: Store,
    private readonly config: UsageConfig,
    private readonly logger: KitLogger,
    private readonly sink?: UsageMetricsSink,
    private readonly now: () => number = Date.now,
  ) {
    this.backend =
      store.mode === 'memory'
        ? new MemoryUsageBackend(store.engine)
        : new RedisUsageBackend(store, (error) =>
            logger.warnOnce('ERR_KIT_USAGE_UNIQUES', 'usage: unique users could not be recorded (counts were)', {
              err: error,
            }),
          );
    this.keyFor = store.keys.forFeature('usage');
    this.timer = setInterval(() => {
      if (this.logged > 0 || this.buffer.length > 0 || this.unsent) void this.flush();
    }, config.flushIntervalMs);
    this.timer.unref();
  }

  /** Counters waiting to be written: the live buffer plus a batch kept for a retry. */
  get buffered(): number {
    this.fold();
    return this.held();
  }

  /** Counters in the buffer and the kept batch, without folding the log first. */
  private held(): number {
    return this.buffer.length + (this.unsent?.pending.length ?? 0);
  }

  /**
   * The middleware's path: one request (count 1, no tokens) of the current minute, written to the log. The strings
   * are kept as given, so the log holds no more than the request handed over.
   */
  hit(ws: string, user: string, route: string, feature: string): void {
    // No check of `closed`: a request that finishes while close() flushes is picked up by its last flush.
    const minute = Math.floor(this.now() / MINUTE);
    if (minute !== this.logMinute || this.logged === LOG_SIZE) {
      this.fold();
      this.logMinute = minute;
    }
    const i = this.logged++;
    this.logWs[i] = ws;
    this.logUser[i] = user;
    this.logRoute[i] = route;
    this.logFeature[i] = feature;
  }

  /** Adds the logged requests to the counters, each in the minute it was logged in. */
  fold(): void {
    const n = this.logged;
    if (n === 0) return;
    this.logged = 0;
    const minute = this.logMinute;
    for (let i = 0; i < n; i++) {
      this.addAt(
        minute,
        this.logWs[i] as string,
        this.logUser[i] as string,
        this.logRoute[i] as string,
        this.logFeature[i] as string,
        1,
        0,
        0,
      );
    }
    // Let the strings go: the log must not keep a departed request's values alive.
    this.logWs.fill('', 0, n);
    this.logUser.fill('', 0, n);
    this.logRoute.fill('', 0, n);
    this.logFeature.fill('', 0, n);
  }

  /** Adds an event to the in-process buffer. Never touches the store, never throws over bad input. */
  record(event: UsageEvent): void {
    if (this.closed) return;
    const tokensUsed = finite(event.tokensUsed);
    const tokensSaved = finite(event.tokensSaved);
    const count = event.count === undefined ? (tokensUsed || tokensSaved ? 0 : 1) : finite(event.count);
    this.add(
      event.workspace || 'default',
      event.user ?? '',
      event.route ?? '',
      event.feature ?? '',
      count,
      tokensUsed,
      tokensSaved,
    );
  }

  /** Counts an event of the current minute: a few Map lookups and additions. */
  add(ws: string, user: string, route: string, feature: string, count: number, used: number, saved: number): void {
    this.addAt(Math.floor(this.now() / MINUTE), ws, user, route, feature, count, used, saved);
  }

  private addAt(
    minute: number,
    ws: string,
    user: string,
    route: string,
    feature: string,
    count: number,
    used: number,
    saved: number,
  ): void {
    if (minute !== this.indexMinute) {
      this.index = new Map();
      this.indexMinute = minute;
    }
    let byUser = this.index.get(ws);
    if (!byUser) {
      byUser = new Map();
      this.index.set(ws, byUser);
    }
    let byRoute = byUser.get(user);
    if (!byRoute) {
      byRoute = new Map();
      byUser.set(user, byRoute);
    }
    let byFeature = byRoute.get(route);
    if (!byFeature) {
      byFeature = new Map();
      byRoute.set(route, byFeature);
    }
    const p = byFeature.get(feature);
    if (p) {
      p.count += count;
      p.used += used;
      p.saved += saved;
    } else {
      if (this.unsent || this.buffer.length >= this.config.maxBuffered) {
        // The bound covers the batch kept for a retry too: memory stays within twice maxBuffered counters.
        if (this.held() >= this.config.maxBuffered * 2) {
          this.stats.dropped += count;
          if (this.sink) this.sink.dropped.value += count;
          return;
        }
        if (this.buffer.length >= this.config.maxBuffered && !this.flushing) void this.flush();
      }
      const fresh = { ws, user, route, feature, minute, count, used, saved };
      byFeature.set(feature, fresh);
      this.buffer.push(fresh);
    }
    this.stats.events += count;
    if (this.sink) this.sink.events.value += count;
  }

  /**
   * Writes to the store now: first a batch kept from a failed flush (identical, so the store can recognise it),
   * then what is buffered. Resolves when done; a failure keeps the batch for the next flush.
   */
  flush(): Promise<void> {
    this.fold();
    if (this.flushing) {
      return this.flushing.then(() => (this.buffer.length > 0 || this.unsent ? this.flush() : undefined));
    }
    if (this.buffer.length === 0 && !this.unsent) return Promise.resolve();
    this.flushing = this.run().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async run(): Promise<void> {
    // At most the kept batch and one fresh batch per flush. While the kept one fails no new batch is cut: new
    // events keep adding up in the buffer, so one unsent batch at most is ever held.
    for (let i = 0; i < 2; i++) {
      const batch = this.unsent ?? (this.buffer.length > 0 ? this.cut() : undefined);
      if (!batch) return;
      this.unsent = batch;
      if (!(await this.send(batch))) return;
      this.unsent = undefined;
    }
  }

  private cut(): Unsent {
    const pending = this.buffer;
    this.buffer = [];
    this.index = new Map();
    const seq = ++this.seq;
    return { id: `${this.trackerId}.${seq}`, seq, pending, firstTried: 0, ...this.writes(pending) };
  }

  /** One attempt at a batch. True when it is settled (applied, or refused for good); false to keep it. */
  private async send(batch: Unsent): Promise<boolean> {
    const started = performance.now();
    if (batch.firstTried === 0) batch.firstTried = Date.now();
    else if (Date.now() - batch.firstTried > GIVE_UP_MS) {
      this.drop(batch, 'usage: a batch stayed unsent past the retry window; its counts are dropped');
      return true;
    }
    try {
      await this.backend.apply(batch);
      this.logger.reset('ERR_KIT_USAGE_FLUSH');
      this.stats.flushes++;
      if (this.sink) this.sink.flushOk.value++;
      return true;
    } catch (error) {
      this.stats.flushErrors++;
      if (this.sink) this.sink.flushError.value++;
      if (error instanceof StoreUnavailableError) {
        // Unreachable, or a timeout after which the server may or may not have applied it: send the same batch
        // again; a workspace that applied it skips it.
        this.logger.warnOnce(
          'ERR_KIT_USAGE_FLUSH',
          'usage flush failed: store unreachable; counts kept in memory and retried',
          { err: error, buffered: this.buffered },
        );
        return false;
      }
      if (!this.warnedCommand) {
        this.warnedCommand = true;
        this.logger.error({ err: error }, 'usage flush: the store refused part of a batch; those counts are lost');
      }
      return true;
    } finally {
      this.stats.lastFlushMs = performance.now() - started;
      this.sink?.flushSeconds(this.stats.lastFlushMs / 1000);
    }
  }

  private drop(batch: Unsent, message: string): void {
    let lost = 0;
    for (const p of batch.pending) lost += p.count;
    this.stats.dropped += lost;
    if (this.sink) this.sink.dropped.value += lost;
    this.logger.error({ code: 'ERR_KIT_USAGE_LOST', series: batch.pending.length, batch: batch.id }, message);
  }

  // Turns the buffered (workspace, user, route, feature, minute) tuples into per-minute hash increments, grouped by
  // workspace (one script per workspace on Redis). The hour, day and month hashes get the same increments from the
  // store (see CounterWrite), so each field is built and sent once.
  private writes(batch: Pending[]): { groups: CounterGroup[]; uniques: UniqueWrite[] } {
    const groups = new Map<string, { appliedKey: string; counters: Map<number, CounterWrite> }>();
    const uniques = new Map<string, UniqueWrite & { set: Set<string> }>();
    const retention = this.config.retentionMs;
    const bump = (c: CounterWrite, f: string, n: number) => {
      if (n !== 0) c.fields.set(f, (c.fields.get(f) ?? 0) + n);
    };
    for (const p of batch) {
      let group = groups.get(p.ws);
      if (!group) {
        group = { appliedKey: this.keyFor(p.ws, 'applied', this.trackerId), counters: new Map() };
        groups.set(p.ws, group);
      }
      const ms = p.minute * MINUTE;
      let c = group.counters.get(p.minute);
      if (!c) {
        const starts = GRANULARITIES.map((g) => bucketStart(g, ms));
        c = {
          keys: [
            this.bucketKey(p.ws, 'minute', starts[0] as number),
            this.bucketKey(p.ws, 'hour', starts[1] as number),
            this.bucketKey(p.ws, 'day', starts[2] as number),
            this.bucketKey(p.ws, 'month', starts[3] as number),
          ],
          expireAt: [
            bucketEnd('minute', starts[0] as number) + retention.minute,
            bucketEnd('hour', starts[1] as number) + retention.hour,
            bucketEnd('day', starts[2] as number) + retention.day,
            bucketEnd('month', starts[3] as number) + retention.month,
          ],
          fields: new Map(),
        };
        group.counters.set(p.minute, c);
      }
      bump(c, 'n', p.count);
      if (p.route) bump(c, `r:${field(p.route)}`, p.count);
      if (p.user) bump(c, `u:${field(p.user)}`, p.count);
      if (p.feature) bump(c, `f:${field(p.feature)}`, p.count);
      bump(c, 'tu', p.used);
      bump(c, 'ts', p.saved);
      if (p.user) {
        const day = Math.floor(ms / DAY);
        const key = this.keyFor(p.ws, 'uu', String(day));
        let u = uniques.get(key);
        if (!u) {
          u = { key, members: [], set: new Set(), expireAt: (day + 1) * DAY + retention.day };
          uniques.set(key, u);
        }
        u.set.add(field(p.user));
      }
    }
    return {
      groups: [...groups.values()].map((g) => ({ appliedKey: g.appliedKey, counters: [...g.counters.values()] })),
      uniques: [...uniques.values()].map(({ key, set, expireAt }) => ({ key, members: [...set], expireAt })),
    };
  }

  private bucketKey(ws: string, g: Granularity, start: number): string {
    if (g === 'minute') return this.keyFor(ws, 'm', String(start / MINUTE));
    if (g === 'hour') return this.keyFor(ws, 'h', String(start / HOUR));
    if (g === 'day') return this.keyFor(ws, 'd', String(start / DAY));
    return this.keyFor(ws, 'M', monthId(start));
  }

  /** Reads the flushed counts of one workspace over a range (what is still in the buffer is not included). */
  async query(q: UsageQuery): Promise<UsageReport> {
    if (!q || typeof q !== 'object')
      throw new UsageQueryError('usage.query: expected { workspace, from, to, granularity }');
    if (typeof q.workspace !== 'string' || q.workspace === '') {
      throw new UsageQueryError('usage.query: workspace is required (a non-empty string)');
    }
    const granularity = q.granularity ?? 'hour';
    if (!GRANULARITIES.includes(granularity)) {
      throw new UsageQueryError(`usage.query: granularity must be one of ${GRANULARITIES.join(', ')}`);
    }
    const to = toMs(q.to, this.now(), 'to');
    const from = toMs(q.from, to - DAY, 'from');
    if (from >= to) throw new UsageQueryError('usage.query: from must be before to');
    const starts: number[] = [];
    for (let s = bucketStart(granularity, from); s < to; s = bucketEnd(granularity, s)) {
      starts.push(s);
      if (starts.length > MAX_BUCKETS) {
        throw new UsageQueryError(`usage.query: the range spans more than ${MAX_BUCKETS} ${granularity} buckets`);
      }
    }
    const days: string[] = [];
    for (let d = Math.floor(from / DAY); d * DAY < to && days.length <= 800; d++) {
      days.push(this.keyFor(q.workspace, 'uu', String(d)));
    }
    const [hashes, uniqueUsers] = await Promise.all([
      this.backend.read(starts.map((s) => this.bucketKey(q.workspace, granularity, s))),
      this.backend.countUnique(days),
    ]);
    const totals = emptyCounts();
    const buckets = starts.map((start, i) => {
      const b: UsageBucket = { start: new Date(start).toISOString(), ...emptyCounts() };
      for (const [f, n] of Object.entries(hashes[i] ?? {})) {
        addField(b, f, n);
        addField(totals, f, n);
      }
      return b;
    });
    return {
      workspace: q.workspace,
      granularity,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      buckets,
      totals,
      uniqueUsers,
    };
  }

  /**
   * Events counted for a workspace in the current UTC calendar month, flushed and still buffered: the figure a
   * monthly quota compares against (see docs/usage.md, "Quotas").
   */
  async monthToDate(workspace: string): Promise<{ used: number; period: string; resetsAt: string }> {
    this.fold();
    const now = this.now();
    const [hash] = await this.backend.read([this.bucketKey(workspace, 'month', monthStart(now))]);
    let used = hash?.n ?? 0;
    const month = monthId(now);
    for (const p of this.unsent ? [...this.unsent.pending, ...this.buffer] : this.buffer)
      if (p.ws === workspace && monthId(p.minute * MINUTE) === month) used += p.count;
    return { used, period: month, resetsAt: new Date(nextMonth(now)).toISOString() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
    if (this.buffered > 0) {
      // One more try for what a failed last flush kept; after that the counts are reported as lost.
      await this.flush();
      if (this.buffered > 0) {
        this.logger.error(
          { code: 'ERR_KIT_USAGE_LOST', series: this.buffered },
          'usage: the store was unreachable at close; buffered counts are lost',
        );
      }
    }
  }
}

function finite(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

function emptyCounts(): UsageCounts {
  return { requests: 0, tokensUsed: 0, tokensSaved: 0, routes: {}, users: {}, features: {} };
}

function addField(c: UsageCounts, f: string, n: number): void {
  if (f === 'n') c.requests += n;
  else if (f === 'tu') c.tokensUsed += n;
  else if (f === 'ts') c.tokensSaved += n;
  else if (f.startsWith('r:')) c.routes[f.slice(2)] = (c.routes[f.slice(2)] ?? 0) + n;
  else if (f.startsWith('u:')) c.users[f.slice(2)] = (c.users[f.slice(2)] ?? 0) + n;
  else if (f.startsWith('f:')) c.features[f.slice(2)] = (c.features[f.slice(2)] ?? 0) + n;
}
