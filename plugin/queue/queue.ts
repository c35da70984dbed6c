// kit.queue(name): reliable background jobs. Adding is one script run; a worker leases jobs in batches with one
// round trip that also reports the jobs it finished, renews the leases of the jobs it runs, and sleeps until a
// push (pub/sub on TCP Redis and memory) or an adaptive poll (Upstash REST) says there is work.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FeatureContext } from '../core/context.js';
import { neverSent } from '../connection/store.js';
import { ClosedError } from '../core/errors.js';
import type { Finish, JobRecord, QueueBackend, TakenJob } from './backend.js';
import { openDedicated, RedisQueueBackend } from './backend.js';
import { QueueInputError } from './errors.js';
import { MemoryQueueBackend } from './memory.js';
import {
  backoffDelay,
  type JobOptions,
  type NewJob,
  parseQueueOptions,
  prepareJob,
  type QueueConfig,
  type QueueOptions,
  readBackoff,
  validateName,
} from './options.js';
import { Histogram, type HistogramSnapshot } from './stats.js';

export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed' | 'dead';

/** What a handler receives. */
export interface Job<T = unknown> {
  readonly id: string;
  readonly queue: string;
  readonly data: T;
  /** This attempt's number, from 1. */
  readonly attempt: number;
  /** Attempts allowed in all. */
  readonly attempts: number;
  /** When the job was added (epoch ms, store clock). */
  readonly addedAt: number;
}

/** A job as getJob() and the dead-letter listing show it. */
export interface JobInfo<T = unknown> {
  id: string;
  /**
   * `waiting`, `delayed` (due later), `active` (leased to a worker), `completed`, `failed` (an attempt failed and
   * the next one is scheduled) or `dead` (every attempt failed, or it stalled too often: in the dead-letter set).
   */
  state: JobState;
  data: T;
  /** Attempts started so far (a stall does not count). */
  attemptsMade: number;
  attempts: number;
  priority: number;
  /** Times the job's lease ran out because its worker died or hung. */
  stalls: number;
  addedAt: number;
  processedAt: number | null;
  finishedAt: number | null;
  /** When a delayed or failed job becomes due. */
  runAt: number | null;
  /** The handler's return value (completed jobs). */
  result?: unknown;
  /** The last error message. */
  error?: string;
}

export interface QueueCounts {
  /** Ready to run (plain and prioritised). */
  waiting: number;
  /** Due later: delayed jobs and failed jobs waiting for their retry. */
  delayed: number;
  /** Leased to workers. */
  active: number;
  completed: number;
  dead: number;
  paused: boolean;
}

export interface QueueStats {
  counts: QueueCounts;
  /** This process's workers. */
  local: {
    inFlight: number;
    concurrency: number;
    completed: number;
    failed: number;
    retried: number;
    deadLettered: number;
    stalledRecovered: number;
    leasesLost: number;
    /** Jobs given back to the queue (or whose stall was taken back) because the reply leasing them here was lost. */
    released: number;
  };
  /** Time from a job becoming runnable (added, or due) to its start, as measured by the worker that ran it. */
  waitTime: HistogramSnapshot;
  /** Handler run time. */
  runTime: HistogramSnapshot;
}

export interface ProcessOptions {
  /** Jobs this process runs at once. @default 1 */
  concurrency?: number;
}

export type JobHandler<T = unknown> = (job: Job<T>) => unknown | Promise<unknown>;

export interface QueueEvents<T> {
  completed: [job: Job<T>, result: unknown];
  /** An attempt failed; `retryInMs` is null when the job was dead-lettered. */
  failed: [job: Job<T>, error: Error, retryInMs: number | null];
  retried: [job: Job<T>, delayMs: number];
  dead: [job: Job<T>, error: Error];
  /** A job whose lease ran out was given back to the queue (or dead-lettered when `dead`) by this process. */
  stalled: [jobId: string, dead: boolean];
  /** The store failed under the worker; it retries by itself. Logged when nobody listens. */
  error: [error: Error];
}

interface Running {
  job: TakenJob;
  started: number;
}

interface Pending {
  finish: Finish;
  job: Job<any>;
  result: unknown;
  error: Error | null;
}

const MIN_POLL_MS = 20;
/** Queue objects made per kit before we warn that kit.queue() is probably called per request. */
const MANY_QUEUES = 100;
const queuesPerKit = new WeakMap<FeatureContext, number>();
const MAX_BATCH = 1000;
/** Fetches with lost replies a worker remembers; beyond this the oldest are left to their leases. */
const MAX_UNCONFIRMED = 32;

function num(v: string | undefined): number | null {
  return v === undefined || v === '' ? null : Number(v);
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class Queue<T = unknown> extends EventEmitter {
  readonly name: string;
  private readonly config: QueueConfig;
  private readonly backend: QueueBackend;
  private readonly push: boolean;
  private readonly channel: string;
  private handler: JobHandler<T> | undefined;
  private concurrency = 0;
  private readonly running = new Map<string, Running>();
  private pending: Pending[] = [];
  private pumping = false;
  private again = false;
  private flushScheduled = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private pollMs = MIN_POLL_MS;
  private errorDelayMs = 0;
  /** Names this worker on the store (its fetch record); random, unique per queue object. */
  private readonly worker = randomBytes(9).toString('base64url');
  private fetchCount = 0;
  /**
   * Fetches whose replies were lost, each for two leases (as long as the store keeps the record): sent with every
   * call until the store reports one released (a call that timed out can still run late on the server).
   */
  private unconfirmed: Array<{ fetch: string; until: number }> = [];
  private unsubscribe: (() => Promise<void>) | undefined;
  private closing = false;
  /** close() has finished: outcomes of jobs still running are dropped (their leases run out, they run again). */
  private stopped = false;
  private closed: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private readonly waitTime = new Histogram();
  private readonly runTime = new Histogram();
  private readonly local = {
    completed: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    stalledRecovered: 0,
    leasesLost: 0,
    released: 0,
  };

  constructor(
    private readonly ctx: FeatureContext,
    name: string,
    options: QueueOptions = {},
  ) {
    super();
    this.name = validateName(name);
    this.config = parseQueueOptions(options);
    const made = (queuesPerKit.get(ctx) ?? 0) + 1;
    queuesPerKit.set(ctx, made);
    if (made === MANY_QUEUES) {
      // Each Queue object is held by the kit until close(): made per request, they add up.
      ctx.logger.warn(
        { code: 'ERR_KIT_QUEUE_MANY', queues: made },
        `kit.queue() was called ${made} times on one kit: create each queue once at start-up and reuse it ` +
          '(see docs/queue.md)',
      );
    }
    const { store } = ctx;
    this.channel = store.keys.channel('queue', this.name);
    this.backend =
      store.mode === 'memory'
        ? new MemoryQueueBackend(store.engine, this.name, this.channel)
        : new RedisQueueBackend(store, this.name, this.channel);
    this.push = store.canSubscribe;
    // The kit closes features in reverse order: the connection registered by the first queue closes after every
    // queue has flushed its outcomes.
    const closeDedicated = store.mode === 'memory' ? undefined : openDedicated(store);
    if (closeDedicated) ctx.onClose(closeDedicated);
    ctx.onClose(() => this.close());
  }

  /** Adds one job; resolves to its id (the existing one when `jobId` was already there). */
  async add(data: T, options?: JobOptions): Promise<string> {
    this.assertOpen();
    const [first] = await this.addPrepared([prepareJob(this.config, data, options)]);
    return (first as { id: string }).id;
  }

  /** Adds several jobs in as few round trips as possible; resolves to their ids, in order. */
  async addBulk(jobs: ReadonlyArray<{ data: T; options?: JobOptions }>): Promise<string[]> {
    this.assertOpen();
    if (!Array.isArray(jobs)) throw new QueueInputError('addBulk: expected an array of { data, options }');
    const prepared = jobs.map((j, i) => {
      if (!j || typeof j !== 'object') throw new QueueInputError(`addBulk: item ${i} is not { data, options }`);
      return prepareJob(this.config, j.data, j.options);
    });
    const ids: string[] = [];
    for (let i = 0; i < prepared.length; i += MAX_BATCH) {
      for (const r of await this.addPrepared(prepared.slice(i, i + MAX_BATCH))) ids.push(r.id);
    }
    return ids;
  }

  private async addPrepared(jobs: NewJob[]): Promise<Array<{ id: string; added: boolean }>> {
    const result = await this.backend.add(jobs);
    // A worker of this very object is woken directly: no wait for a poll on stores without push. (While a round
    // trip is in flight, this marks that another one is needed: its reply may predate this add.)
    if (this.handler && !this.closing && this.running.size < this.concurrency) this.wake();
    return result;
  }

  /** Starts running jobs in this process with `handler`. One handler per Queue object. */
  process(handler: JobHandler<T>, options: ProcessOptions = {}): this {
    this.assertOpen();
    if (typeof handler !== 'function') throw new TypeError('queue.process(handler): handler must be a function');
    if (this.handler) throw new TypeError(`queue ${this.name}: process() was already called on this object`);
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
      throw new TypeError(`queue.process: concurrency must be a whole number from 1 to 10000, got ${concurrency}`);
    }
    this.handler = handler;
    this.concurrency = concurrency;
    this.leaseTimer = setInterval(() => this.renewLeases(), Math.max(10, Math.floor(this.config.leaseMs / 3)));
    this.leaseTimer.unref();
    void this.start();
    return this;
  }

  private async start(): Promise<void> {
    if (this.push) {
      try {
        // Subscribe before the first look at the queue, so no wake-up between the two is missed.
        this.unsubscribe = await this.ctx.store.subscribe(this.channel, () => this.wake());
      } catch (error) {
        this.report(error, 'could not subscribe for wake-ups; polling instead');
      }
    }
    if (this.closing) {
      await this.unsubscribe?.();
      return;
    }
    this.pump();
  }

  /** Stops every worker of this queue (all processes) from taking new jobs; running ones finish. */
  async pause(): Promise<void> {
    await this.backend.setPaused(true);
  }

  async resume(): Promise<void> {
    await this.backend.setPaused(false);
    if (this.handler) this.wake();
  }

  private wake(): void {
    if (this.closing || !this.handler) return;
    this.pollMs = MIN_POLL_MS;
    this.pump();
  }

  private pump(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.pumping = true;
    // Listeners' errors are caught where they are called (tell, report): what still makes the loop reject is
    // unexpected (a reply of a shape the worker cannot read). Reported, never left unhandled.
    void this.loop()
      .catch((error: unknown) => {
        this.report(error, 'the worker loop stopped on an error; going round again');
        this.again = true; // the loop stopped half-way: go round again rather than sleep without a timer
      })
      .finally(() => {
        this.pumping = false;
        if (this.again && (!this.closing || this.pending.length > 0)) this.pump();
        else if (this.closing && this.running.size === 0 && this.pending.length === 0) this.drained?.();
      });
  }

  private async loop(): Promise<void> {
    for (;;) {
      this.again = false;
      const want = this.closing ? 0 : Math.max(0, this.concurrency - this.running.size);
      const pending = this.pending.length > MAX_BATCH ? this.pending.splice(0, MAX_BATCH) : this.pending.splice(0);
      if (want === 0 && pending.length === 0) return;
      const fetch = want > 0 ? String(++this.fetchCount) : '';
      const release = this.unconfirmedFetches();
      let result: Awaited<ReturnType<QueueBackend['move']>>;
      try {
        result = await this.backend.move({
          ...this.moveOptions(),
          take: want,
          worker: this.worker,
          fetch,
          release,
          finishes: pending.map((p) => p.finish),
        });
      } catch (error) {
        // Keep the outcomes: they are sent again with the next round trip (the leases prove they are ours).
        this.pending.unshift(...pending);
        // The call may still have run on the server and leased jobs to us that we never saw: remember the fetch so
        // that the next call that gets through gives them back.
        if (fetch !== '' && !neverSent(error)) {
          this.unconfirmed.push({ fetch, until: Date.now() + 2 * this.config.leaseMs });
          if (this.unconfirmed.length > MAX_UNCONFIRMED) this.unconfirmed.shift();
        }
        this.report(error, 'the worker could not reach the store; retrying');
        this.again = false;
        this.errorDelayMs = Math.min(Math.max(this.errorDelayMs * 2, 100), this.config.idlePollMs);
        this.sleep(this.errorDelayMs);
        return;
      }
      this.errorDelayMs = 0;
      if (result.releasedFetches.length > 0) {
        const found = new Set(result.releasedFetches);
        this.unconfirmed = this.unconfirmed.filter((u) => !found.has(u.fetch));
      }
      if (result.released > 0) this.local.released += result.released;
      this.settle(pending, result.lost);
      for (const id of result.stalled) {
        this.local.stalledRecovered++;
        this.tell('stalled', id, false);
      }
      for (const id of result.buried) {
        this.local.stalledRecovered++;
        this.tell('stalled', id, true);
      }
      const now = Date.now();
      for (const job of result.taken) this.run(job, now);
      if (result.taken.length > 0) this.pollMs = MIN_POLL_MS;
      if (want > 0 && result.taken.length < want) {
        // The queue is empty (or paused) for us: sleep until a push, the next due job or lease, or the poll.
        let wait = this.push ? this.config.idlePollMs : this.pollMs;
        if (!this.push) this.pollMs = Math.min(this.pollMs * 2, this.config.idlePollMs);
        if (result.nextInMs >= 0) wait = Math.min(wait, result.nextInMs + 1);
        if (this.pending.length === 0 && !this.again) {
          this.sleep(wait);
          return;
        }
      }
      if (this.pending.length === 0 && !this.again) return;
    }
  }

  /** Fetch numbers to release with the next call: those whose records the store may still hold. */
  private unconfirmedFetches(): string[] {
    if (this.unconfirmed.length === 0) return [];
    const now = Date.now();
    this.unconfirmed = this.unconfirmed.filter((u) => u.until > now);
    return this.unconfirmed.map((u) => u.fetch);
  }

  private moveOptions() {
    const { leaseMs, keepCompleted, keepDead, maxStalls } = this.config;
    return { leaseMs, keepCompleted, keepDead, maxStalls };
  }

  private sleep(ms: number): void {
    clearTimeout(this.idleTimer);
    if (this.stopped) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.pump();
    }, ms);
    this.idleTimer.unref();
  }

  private settle(pending: Pending[], lost: number): void {
    if (lost > 0) this.local.leasesLost += lost;
    for (const p of pending) {
      const { finish, job } = p;
      if (finish.outcome === 'c') {
        this.local.completed++;
        this.tell('completed', job, p.result);
      } else {
        const error = p.error as Error;
        this.local.failed++;
        if (finish.outcome === 'r') {
          this.local.retried++;
          this.tell('failed', job, error, finish.delayMs);
          this.tell('retried', job, finish.delayMs);
        } else {
          this.local.deadLettered++;
          this.tell('failed', job, error, null);
          this.tell('dead', job, error);
        }
      }
    }
  }

  private run(taken: TakenJob, now: number): void {
    const started = performance.now();
    this.running.set(taken.id, { job: taken, started });
    this.waitTime.observe(now - taken.addedAt);
    const job: Job<T> = {
      id: taken.id,
      queue: this.name,
      data: parseJson(taken.data) as T,
      attempt: taken.attempt,
      attempts: taken.attempts,
      addedAt: taken.addedAt,
    };
    let promise: Promise<unknown>;
    try {
      promise = Promise.resolve((this.handler as JobHandler<T>)(job));
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (result) => this.finished(taken, job, started, result, null),
      (error: unknown) =>
        this.finished(taken, job, started, undefined, error instanceof Error ? error : new Error(String(error))),
    );
  }

  private finished(taken: TakenJob, job: Job<T>, started: number, result: unknown, error: Error | null): void {
    this.running.delete(taken.id);
    this.runTime.observe(performance.now() - started);
    let finish: Finish;
    if (!error) {
      let payload = '';
      try {
        payload = result === undefined ? '' : (JSON.stringify(result) ?? '');
      } catch {
        payload = '';
      }
      if (payload.length > this.config.maxDataBytes) payload = '';
      finish = { id: taken.id, token: taken.token, outcome: 'c', payload, delayMs: 0 };
    } else {
      const message = (error.message || error.name || 'failed').slice(0, 2000);
      if (taken.attempt < taken.attempts) {
        const delayMs = backoffDelay(readBackoff(taken.backoff, this.config.backoff), taken.attempt);
        finish = {
          id: taken.id,
          token: taken.token,
          outcome: 'r',
          payload: message,
          delayMs,
        };
      } else {
        finish = {
          id: taken.id,
          token: taken.token,
          outcome: 'd',
          payload: message,
          delayMs: 0,
        };
      }
    }
    if (this.stopped) {
      // close() gave up waiting for this job: record its outcome once if the store is still there, else leave it
      // to its lease (it runs again elsewhere). No retries: nothing of a closed queue may linger.
      void this.backend
        .move({ ...this.moveOptions(), take: 0, worker: this.worker, fetch: '', release: [], finishes: [finish] })
        .catch(() => undefined);
      return;
    }
    this.pending.push({ finish, job, result, error });
    // Finishes of one tick travel together in the next round trip.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.pump();
      });
    }
  }

  private renewLeases(): void {
    if (this.running.size === 0) return;
    const jobs = [...this.running.values()].map((r) => ({ id: r.job.id, token: r.job.token }));
    this.backend.extend(jobs, this.config.leaseMs).then(
      (lost) => {
        for (const id of lost) {
          if (!this.running.has(id)) continue;
          this.local.leasesLost++;
          this.ctx.logger.warn(
            { code: 'ERR_KIT_QUEUE_LEASE_LOST', queue: this.name, jobId: id },
            'a running job lost its lease (taken over after a stall); it may run twice',
          );
        }
      },
      (error: unknown) => this.report(error, 'could not renew job leases'),
    );
  }

  /** Emits to the user's listeners; one that throws is reported and cannot derail the worker's loop. */
  private tell(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (error) {
      // The application's own fault, not the store's: its own code, so an alert on store failures stays quiet.
      this.report(error, `a '${event}' listener threw`, 'ERR_KIT_QUEUE_LISTENER');
    }
  }

  private report(error: unknown, message: string, code = 'ERR_KIT_QUEUE_STORE'): void {
    const err = error instanceof Error ? error : new Error(String(error));
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err);
        return;
      } catch (thrown) {
        // An 'error' listener that throws must not derail the worker's loop either: logged below instead.
        this.ctx.logger.warnCoded('ERR_KIT_QUEUE_LISTENER', `queue ${this.name}: an 'error' listener threw`, {
          queue: this.name,
          err: thrown,
        });
      }
    }
    this.ctx.logger.warnCoded(code, `queue ${this.name}: ${message}`, { queue: this.name, err });
  }

  private assertOpen(): void {
    if (this.closing) throw new ClosedError(`queue ${this.name}`);
  }

  /** A job by id, or null when it does not exist (any more: finished jobs are removed by `keepCompleted`). */
  async getJob(id: string): Promise<JobInfo<T> | null> {
    if (typeof id !== 'string' || !/^[A-Za-z0-9_.:@=+-]{1,128}$/.test(id)) return null;
    const record = await this.backend.getJob(id);
    return record ? toInfo<T>(id, record) : null;
  }

  async counts(): Promise<QueueCounts> {
    const c = await this.backend.counts();
    return {
      waiting: c.waiting + c.prioritised,
      delayed: c.delayed,
      active: c.active,
      completed: c.completed,
      dead: c.dead,
      paused: c.paused,
    };
  }

  /** This process's counters and latency histograms, without asking the store (read by kit.metrics). */
  localStats(): Omit<QueueStats, 'counts'> {
    return {
      local: { inFlight: this.running.size, concurrency: this.concurrency, ...this.local },
      waitTime: this.waitTime.snapshot(),
      runTime: this.runTime.snapshot(),
    };
  }

  /** Counts from the store plus this process's counters and latency histograms. */
  async stats(): Promise<QueueStats> {
    return {
      counts: await this.counts(),
      local: { inFlight: this.running.size, concurrency: this.concurrency, ...this.local },
      waitTime: this.waitTime.snapshot(),
      runTime: this.runTime.snapshot(),
    };
  }

  /** Dead-lettered jobs, oldest first. */
  async listDead(options: { offset?: number; limit?: number } = {}): Promise<Array<JobInfo<T>>> {
    const offset = Math.max(0, Math.floor(options.offset ?? 0));
    const limit = Math.min(1000, Math.max(1, Math.floor(options.limit ?? 100)));
    const rows = await this.backend.listDead(offset, offset + limit - 1);
    return rows.map((r) => toInfo<T>(r.id, r.record));
  }

  /** Puts dead-lettered jobs back in the queue with fresh attempts: the given ids, or up to `limit` of the oldest. */
  async retryDead(ids?: readonly string[], options: { limit?: number } = {}): Promise<number> {
    const n = await this.backend.retryDead(ids ?? [], Math.max(1, options.limit ?? 1000));
    if (n > 0 && this.handler) this.wake();
    return n;
  }

  /** Deletes dead-lettered jobs: the given ids, or up to `limit` of the oldest. */
  purgeDead(ids?: readonly string[], options: { limit?: number } = {}): Promise<number> {
    return this.backend.purgeDead(ids ?? [], Math.max(1, options.limit ?? 1000));
  }

  /**
   * Graceful stop: takes no new jobs, waits up to `timeout` for the running ones and records their outcome. Jobs
   * still running after that keep running, but their leases are no longer renewed: once a lease runs out another
   * worker runs the job again. Jobs leased by fetches whose replies were lost are given back (one call, if the
   * store answers within the command timeout). Safe to call twice.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      clearTimeout(this.idleTimer);
      const timeoutMs = options.timeout ?? this.config.closeTimeoutMs;
      if (this.running.size > 0 || this.pending.length > 0 || this.pumping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          this.drained = () => {
            clearTimeout(timer);
            resolve();
          };
          if (!this.pumping && this.running.size === 0) this.pump();
        });
      }
      this.stopped = true;
      clearInterval(this.leaseTimer);
      clearTimeout(this.idleTimer);
      // Jobs leased to this worker by fetches whose replies were lost go back now, if the store answers, rather
      // than wait out their leases and count a stall.
      const release = this.unconfirmedFetches();
      if (release.length > 0) {
        await this.backend
          .move({ ...this.moveOptions(), take: 0, worker: this.worker, fetch: '', release, finishes: [] })
          .then((r) => {
            this.local.released += r.released;
          })
          .catch(() => undefined);
      }
      await this.unsubscribe?.().catch(() => undefined);
    })();
    return this.closed;
  }
}

export function toInfo<T>(id: string, r: JobRecord): JobInfo<T> {
  const info: JobInfo<T> = {
    id,
    state: (r.st ?? 'waiting') as JobState,
    data: parseJson(r.d) as T,
    attemptsMade: Number(r.m ?? 0),
    attempts: Number(r.a ?? 1),
    priority: Number(r.p ?? 0),
    stalls: Number(r.s ?? 0),
    addedAt: Number(r.t ?? 0),
    processedAt: num(r.pt),
    finishedAt: num(r.f),
    runAt: num(r.rt),
  };
  if (r.r !== undefined && r.r !== '') info.result = parseJson(r.r);
  if (r.e !== undefined && r.e !== '') info.error = r.e;
  return info;
}
