// The queue contract on the embedded store, in TypeScript: the same states, leases, retries and retention as the
// Lua scripts, for one process. State is kept per MemoryEngine (so per kit) and per queue name.

import type { MemoryEngine } from '../connection/memory.js';
import type { JobRecord, MoveRequest, MoveResult, QueueBackend, RawCounts, Retention, TakenJob } from './backend.js';
import type { NewJob } from './options.js';

/** A sorted set: members ordered by score, then by member text (as Redis orders them). */
class SortedSet {
  private readonly scores = new Map<string, number>();
  private readonly items: Array<{ s: number; id: string }> = [];

  get size(): number {
    return this.items.length;
  }

  private index(s: number, id: string): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const it = this.items[mid] as { s: number; id: string };
      if (it.s < s || (it.s === s && it.id < id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(id: string, s: number): void {
    this.remove(id);
    this.scores.set(id, s);
    this.items.splice(this.index(s, id), 0, { s, id });
  }

  has(id: string): boolean {
    return this.scores.has(id);
  }

  remove(id: string): boolean {
    const s = this.scores.get(id);
    if (s === undefined) return false;
    this.scores.delete(id);
    this.items.splice(this.index(s, id), 1);
    return true;
  }

  /** Up to `limit` members with a score ≤ max, lowest first. */
  upTo(max: number, limit: number): string[] {
    const out: string[] = [];
    for (const it of this.items) {
      if (it.s > max || out.length >= limit) break;
      out.push(it.id);
    }
    return out;
  }

  range(start: number, stop: number): string[] {
    return this.items.slice(start, stop + 1).map((it) => it.id);
  }

  first(): { s: number; id: string } | undefined {
    return this.items[0];
  }

  popMin(): string | undefined {
    const it = this.items.shift();
    if (it) this.scores.delete(it.id);
    return it?.id;
  }
}

/** FIFO of ids with cheap pops from the front. */
class IdQueue {
  private items: string[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(id: string): void {
    this.items.push(id);
  }

  unshift(id: string): void {
    if (this.head > 0) this.items[--this.head] = id;
    else this.items.unshift(id);
  }

  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const id = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return id;
  }
}

/** A job as a fetch record names it: its token is unique to this one delivery (see `deliveries`). */
interface FetchedJob {
  id: string;
  token: string;
}

interface State {
  jobs: Map<string, JobRecord>;
  wait: IdQueue;
  prio: SortedSet;
  prioSeq: number;
  delayed: SortedSet;
  active: SortedSet;
  completed: SortedSet;
  dead: SortedSet;
  paused: boolean;
  seq: number;
  /** The delivery counter: every lease's token. */
  deliveries: number;
  /** Per worker, its latest fetch that took jobs, kept for two leases (see move.lua). */
  fetches: Map<string, { fetch: string; jobs: FetchedJob[]; until: number }>;
}

const states = new WeakMap<MemoryEngine, Map<string, State>>();

function stateOf(engine: MemoryEngine, name: string): State {
  let byName = states.get(engine);
  if (!byName) {
    byName = new Map();
    states.set(engine, byName);
  }
  let s = byName.get(name);
  if (!s) {
    s = {
      jobs: new Map(),
      wait: new IdQueue(),
      prio: new SortedSet(),
      prioSeq: 0,
      delayed: new SortedSet(),
      active: new SortedSet(),
      completed: new SortedSet(),
      dead: new SortedSet(),
      paused: false,
      seq: 0,
      deliveries: 0,
      fetches: new Map(),
    };
    byName.set(name, s);
  }
  return s;
}

export class MemoryQueueBackend implements QueueBackend {
  private readonly s: State;

  constructor(
    private readonly engine: MemoryEngine,
    name: string,
    private readonly channel: string,
  ) {
    this.s = stateOf(engine, name);
  }

  private push(id: string, job: JobRecord, front: boolean): void {
    if (job.ps) this.s.prio.add(id, Number(job.ps));
    else if (front) this.s.wait.unshift(id);
    else this.s.wait.push(id);
  }

  async add(jobs: readonly NewJob[]): Promise<Array<{ id: string; added: boolean }>> {
    const s = this.s;
    const now = this.engine.now();
    const idle = s.wait.size === 0 && s.prio.size === 0;
    let wake = false;
    const out: Array<{ id: string; added: boolean }> = [];
    for (const j of jobs) {
      let id = j.id;
      if (id === '') id = String(++s.seq);
      else if (s.jobs.has(id)) {
        out.push({ id, added: false });
        continue;
      }
      out.push({ id, added: true });
      const ps = j.priority > 0 ? String(j.priority * 1e10 + (++s.prioSeq % 1e10)) : '';
      const job: JobRecord = {
        d: j.data,
        t: String(now),
        a: String(j.attempts),
        b: j.backoff,
        p: String(j.priority),
        ps,
        m: '0',
        dl: '0',
        s: '0',
        st: j.delayMs > 0 ? 'delayed' : 'waiting',
      };
      s.jobs.set(id, job);
      if (j.delayMs > 0) {
        job.rt = String(now + j.delayMs);
        s.delayed.add(id, now + j.delayMs);
        if (s.delayed.first()?.id === id) wake = true;
      } else {
        this.push(id, job, false);
        if (idle) wake = true;
      }
    }
    if (wake) this.engine.publish(this.channel, '1');
    return out;
  }

  private trim(set: SortedSet, keep: Retention, now: number): void {
    if (keep.count >= 0) {
      const excess = Math.min(set.size - keep.count, 1000);
      if (excess > 0) {
        for (const id of set.range(0, excess - 1)) {
          set.remove(id);
          this.s.jobs.delete(id);
        }
      }
    }
    if (keep.ageMs > 0) {
      for (const id of set.upTo(now - keep.ageMs, 1000)) {
        set.remove(id);
        this.s.jobs.delete(id);
      }
    }
  }

  async move(r: MoveRequest): Promise<MoveResult> {
    const s = this.s;
    const now = this.engine.now();
    for (const [worker, record] of s.fetches) if (record.until <= now) s.fetches.delete(worker);
    const releasedFetches: string[] = [];
    let released = 0;
    const record = r.release.length > 0 ? s.fetches.get(r.worker) : undefined;
    if (record && r.release.includes(record.fetch)) {
      // The number stays (with no jobs): a late re-send of that fetch then leases nothing (see move.lua).
      s.fetches.set(r.worker, { fetch: record.fetch, jobs: [], until: now + 2 * r.leaseMs });
      releasedFetches.push(record.fetch);
      // Backwards, each to the head: the fetch's first job ends up first in line again.
      for (let i = record.jobs.length - 1; i >= 0; i--) {
        const { id, token } = record.jobs[i] as FetchedJob;
        const job = s.jobs.get(id);
        if (!job || job.dl !== token) continue;
        if (s.active.remove(id)) {
          job.m = String(Number(job.m) - 1);
          job.st = 'waiting';
          this.push(id, job, true);
          released++;
        } else if (Number(job.s ?? 0) > 0) {
          // The lease ran out first and counted a stall: undo it, and the dead-lettering it caused if it did.
          if (job.st === 'waiting') {
            job.s = String(Number(job.s) - 1);
            released++;
          } else if (job.st === 'dead' && s.dead.remove(id)) {
            job.s = String(Number(job.s) - 1);
            job.st = 'waiting';
            delete job.e;
            delete job.f;
            this.push(id, job, true);
            released++;
          }
        }
      }
    }
    let lost = 0;
    let repeated = 0;
    for (const f of r.finishes) {
      const job = s.jobs.get(f.id);
      if (!job || job.dl !== f.token || !s.active.remove(f.id)) {
        if (job?.fd === f.token) repeated++;
        else lost++;
        continue;
      }
      job.fd = f.token;
      if (f.outcome === 'c') {
        if (r.keepCompleted.count === 0) s.jobs.delete(f.id);
        else {
          job.st = 'completed';
          job.f = String(now);
          job.r = f.payload;
          s.completed.add(f.id, now);
        }
      } else if (f.outcome === 'r') {
        job.e = f.payload;
        job.f = String(now);
        if (f.delayMs > 0) {
          job.st = 'failed';
          job.rt = String(now + f.delayMs);
          s.delayed.add(f.id, now + f.delayMs);
        } else {
          job.st = 'waiting';
          this.push(f.id, job, false);
        }
      } else {
        job.st = 'dead';
        job.e = f.payload;
        job.f = String(now);
        s.dead.add(f.id, now);
      }
    }
    if (r.keepCompleted.count > 0 || r.keepCompleted.ageMs > 0) this.trim(s.completed, r.keepCompleted, now);
    this.trim(s.dead, r.keepDead, now);

    const stalled: string[] = [];
    const buried: string[] = [];
    // Read first, then each job leaves the active set only as it goes back, as in move.lua (where an error part-way
    // keeps the writes made before it).
    const expired: Array<{ id: string; job: JobRecord | undefined }> = [];
    for (const id of s.active.upTo(now, 100)) expired.push({ id, job: s.jobs.get(id) });
    // In the order they were leased, not the set's: one fetch's jobs share a deadline, then sort by id as text. Only
    // within this pass of up to 100 (the earliest deadlines): a later pass puts its jobs ahead of these.
    const dl = (x: { job: JobRecord | undefined }) => Number(x.job?.dl ?? 0) || 0;
    expired.sort((x, y) => dl(x) - dl(y) || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    // Backwards, each to the head: the first leased ends up first in line again, ahead of the jobs that were waiting.
    for (let i = expired.length - 1; i >= 0; i--) {
      const { id, job } = expired[i] as { id: string; job: JobRecord | undefined };
      if (!job) {
        s.active.remove(id);
        continue;
      }
      const stalls = Number(job.s) + 1;
      job.s = String(stalls);
      job.m = String(Number(job.m) - 1);
      s.active.remove(id);
      if (stalls > r.maxStalls) {
        job.st = 'dead';
        job.e = `stalled ${stalls} times (its worker died or hung)`;
        job.f = String(now);
        s.dead.add(id, now);
        buried.push(id);
      } else {
        job.st = 'waiting';
        this.push(id, job, true);
        stalled.push(id);
      }
    }
    // Reported in lease order too.
    stalled.reverse();
    buried.reverse();

    for (const id of s.delayed.upTo(now, 1000)) {
      s.delayed.remove(id);
      const job = s.jobs.get(id);
      if (!job) continue;
      job.st = 'waiting';
      this.push(id, job, false);
    }

    const taken: TakenJob[] = [];
    const previous = r.take > 0 && r.fetch !== '' ? s.fetches.get(r.worker) : undefined;
    if (previous !== undefined && Number(r.fetch) < Number(previous.fetch)) {
      // A late re-send of an older fetch: it leases nothing (see move.lua).
    } else if (previous !== undefined && previous.fetch === r.fetch) {
      // A replay of a call whose reply was lost (see move.lua): the same jobs again, with fresh leases.
      const deadline = now + r.leaseMs;
      for (const { id, token } of previous.jobs) {
        const job = s.jobs.get(id);
        if (!job || job.dl !== token || !s.active.has(id)) continue;
        s.active.add(id, deadline);
        taken.push(this.taken(id, job));
      }
    } else if (!s.paused && r.take > 0) {
      const deadline = now + r.leaseMs;
      while (taken.length < r.take) {
        const id = s.wait.shift() ?? s.prio.popMin();
        if (id === undefined) break;
        const job = s.jobs.get(id);
        if (!job) continue;
        // Tokens come from one counter per queue (see move.lua, KEYS[8]).
        job.dl = String(++s.deliveries);
        job.m = String(Number(job.m) + 1);
        job.st = 'active';
        job.pt = String(now);
        s.active.add(id, deadline);
        taken.push(this.taken(id, job));
      }
      if (taken.length > 0 && r.fetch !== '') {
        s.fetches.set(r.worker, {
          fetch: r.fetch,
          jobs: taken.map((j) => ({ id: j.id, token: j.token })),
          // Kept for two leases: a release that comes after the lease ran out still undoes the stall it caused.
          until: now + 2 * r.leaseMs,
        });
      }
    }

    let nextInMs = -1;
    if (taken.length === 0) {
      for (const set of [s.delayed, s.active]) {
        const head = set.first();
        if (head) {
          const wait = Math.max(0, head.s - now);
          if (nextInMs < 0 || wait < nextInMs) nextInMs = wait;
        }
      }
    }
    return { taken, stalled, buried, lost, nextInMs, paused: s.paused, releasedFetches, released, repeated };
  }

  private taken(id: string, job: JobRecord): TakenJob {
    return {
      id,
      token: job.dl as string,
      attempt: Number(job.m),
      data: job.d as string,
      addedAt: Number(job.t),
      attempts: Number(job.a),
      backoff: job.b as string,
    };
  }

  async extend(jobs: ReadonlyArray<{ id: string; token: string }>, leaseMs: number): Promise<string[]> {
    const deadline = this.engine.now() + leaseMs;
    const lost: string[] = [];
    for (const j of jobs) {
      if (this.s.jobs.get(j.id)?.dl === j.token && this.s.active.has(j.id)) this.s.active.add(j.id, deadline);
      else lost.push(j.id);
    }
    return lost;
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const job = this.s.jobs.get(id);
    return job ? { ...job } : null;
  }

  async counts(): Promise<RawCounts> {
    const s = this.s;
    return {
      waiting: s.wait.size,
      prioritised: s.prio.size,
      delayed: s.delayed.size,
      active: s.active.size,
      completed: s.completed.size,
      dead: s.dead.size,
      paused: s.paused,
    };
  }

  async setPaused(paused: boolean): Promise<void> {
    this.s.paused = paused;
    if (!paused) this.engine.publish(this.channel, '1');
  }

  async listDead(start: number, stop: number): Promise<Array<{ id: string; record: JobRecord }>> {
    return this.s.dead.range(start, stop).map((id) => ({ id, record: { ...(this.s.jobs.get(id) ?? {}) } }));
  }

  async retryDead(ids: readonly string[], limit: number): Promise<number> {
    const s = this.s;
    let n = 0;
    for (const id of ids.length > 0 ? ids : s.dead.range(0, limit - 1)) {
      const job = s.jobs.get(id);
      if (!s.dead.remove(id) || !job) continue;
      job.st = 'waiting';
      job.m = '0';
      job.s = '0';
      this.push(id, job, false);
      n++;
    }
    if (n > 0) this.engine.publish(this.channel, '1');
    return n;
  }

  async purgeDead(ids: readonly string[], limit: number): Promise<number> {
    const s = this.s;
    let n = 0;
    for (const id of ids.length > 0 ? ids : s.dead.range(0, limit - 1)) {
      if (!s.dead.remove(id)) continue;
      s.jobs.delete(id);
      n++;
    }
    return n;
  }
}
