// The four algorithms in TypeScript, for the embedded store and the local fallback. They mirror lua/limit.lua
// step by step (same state, same rounding), so a limiter decides the same way on every store.

/** Algorithm codes shared with the Lua script. */
export const FIXED_WINDOW = 1;
export const SLIDING_WINDOW = 2;
export const TOKEN_BUCKET = 3;
export const GCRA = 4;

export const CONSUME = 0;
export const PEEK = 1;
/** Adds the cost whatever the outcome: used to put back counts taken locally while the store was away. */
export const FORCE = 2;
export type Mode = typeof CONSUME | typeof PEEK | typeof FORCE;

export interface CompiledPolicy {
  readonly name: string;
  readonly algorithm: 1 | 2 | 3 | 4;
  readonly limit: number;
  readonly windowMs: number;
  readonly burst: number;
}

/** Numbers per algorithm after a policy's expiry in a client's state (indexed by algorithm code). */
export const STATE_FIELDS: readonly number[] = [0, 2, 5, 2, 1];
/** Numbers before the policies' own: block-until (ms; 0 when never blocked), the blocking policy's index. */
const HEADER = 2;

/**
 * How many numbers one client's state holds for these policies: the header, then per policy its expiry and its
 * fields (the same layout as the string lua/limit.lua packs).
 */
export function stateLength(policies: readonly CompiledPolicy[]): number {
  let length = HEADER;
  for (const p of policies) length += 1 + (STATE_FIELDS[p.algorithm] as number);
  return length;
}

/** What the embedded engine offers (a MemoryEngine fits). */
export interface StateEngine {
  get<T = unknown>(key: string): T | undefined;
  set(key: string, value: unknown, ttlMs?: number): void;
  pttl(key: string): number;
  delete(key: string): boolean;
  now(): number;
}

// Scratch space of decide(), reused by every decision: a decision runs to its end synchronously, so one set is
// enough, and the embedded store's hot path allocates nothing here but a new client's first state.
/** The state to write if the request is consumed: header, then per policy its new expiry and fields. */
let W: number[] = [];
/** Six per policy: allowed (1/0), remaining/reset without (r0, e0) and with (r1, e1) the cost, retry-after. */
let V = new Float64Array(6 * 3);

/**
 * Runs one decision against every policy. A client's whole state for the limiter is one entry under `key` (an
 * array of numbers laid out as lua/limit.lua's string, see stateLength), with each policy's own expiry inside it.
 * Same output layout as the Lua script: `[block ms left, blocking policy index, then per policy: allowed (1/0),
 * remaining, reset ms, retry-after ms]` (zeros after the first two while a block is served). Written into `out`
 * when given (a caller that reads it at once can reuse one array), else into a new array.
 */
export function decide(
  engine: StateEngine,
  key: string,
  policies: readonly CompiledPolicy[],
  cost: number,
  mode: Mode,
  blockMs: number,
  out: number[] = [],
): number[] {
  const now = engine.now();
  const count = stateLength(policies);
  const n = policies.length;
  const per = 2 + 4 * n;
  if (out.length > per) out.length = per;
  let S = engine.get<number[]>(key);
  // Not of this layout: read as no state (the Lua reads a string of another length the same way).
  if (S !== undefined && (!Array.isArray(S) || S.length !== count)) S = undefined;
  if (mode !== FORCE && blockMs > 0 && S !== undefined && (S[0] as number) > now) {
    out[0] = Math.ceil((S[0] as number) - now);
    out[1] = S[1] as number;
    for (let q = 2; q < per; q++) out[q] = 0;
    return out;
  }
  if (W.length < count) W = new Array<number>(count).fill(0);
  if (V.length < 6 * n) V = new Float64Array(6 * n);
  W[0] = 0;
  W[1] = 0;
  let all = true;
  let worst = -1;
  let worstRetry = -1;
  let longest = 1;
  let o = HEADER;
  for (let i = 0; i < n; i++) {
    const p = policies[i] as CompiledPolicy;
    const { limit, windowMs: w, burst } = p;
    // This policy's stored fields are S[o + 1 ..], valid while its own expiry S[o] is ahead.
    const st = S !== undefined && (S[o] as number) > now ? S : undefined;
    let allowed: boolean;
    let r0: number;
    let r1: number;
    let e0: number;
    let e1: number;
    let retry: number;
    let ttl: number;
    if (p.algorithm === FIXED_WINDOW) {
      const ws = now - (now % w);
      const used = st && st[o + 1] === ws ? (st[o + 2] as number) : 0;
      allowed = used + cost <= limit;
      e0 = ws + w - now;
      e1 = e0;
      r0 = limit - used;
      r1 = r0 - cost;
      W[o + 1] = ws;
      W[o + 2] = used + cost;
      ttl = e0;
      retry = allowed ? 0 : cost > limit ? e0 + w : e0;
    } else if (p.algorithm === SLIDING_WINDOW) {
      // See lua/limit.lua: the windows' grid starts at the client's first request (kept while its state lives), and
      // the previous count is spread from its window's first request to the window's end.
      let ws = now;
      let cur = 0;
      let prev = 0;
      let first: number | undefined;
      let pfirst = ws - w;
      if (st) {
        const s = st[o + 1] as number;
        ws = now >= s ? s + Math.floor((now - s) / w) * w : s;
        pfirst = ws - w;
        if (s === ws) {
          cur = st[o + 2] as number;
          prev = st[o + 3] as number;
          first = st[o + 4] as number;
          pfirst = st[o + 5] as number;
        } else if (s === ws - w) {
          prev = st[o + 2] as number;
          pfirst = st[o + 4] as number;
        }
      }
      const span = ws - pfirst;
      const from = Math.max(now - w, pfirst);
      const weight = span > 0 ? (ws - from) / span : now - w < pfirst ? 1 : 0;
      const est = prev * weight + cur;
      allowed = est + cost <= limit;
      e0 = w - (now - ws);
      e1 = e0;
      r0 = limit - est;
      r1 = r0 - cost;
      W[o + 1] = ws;
      W[o + 2] = cur + cost;
      W[o + 3] = prev;
      W[o + 4] = first ?? now;
      W[o + 5] = pfirst;
      ttl = e0 + w;
      if (allowed) retry = 0;
      else if (cost > limit) retry = e0 + w;
      else if (cur + cost <= limit) retry = ws + w - ((limit - cur - cost) / prev) * span - now;
      else {
        const nws = ws + w;
        retry = nws + w - ((limit - cost) / cur) * (nws - (first ?? ws)) - now;
      }
    } else if (p.algorithm === TOKEN_BUCKET) {
      const rate = limit / w;
      // A clock that stepped back must not take tokens away (see lua/limit.lua).
      const tokens = st
        ? Math.min(burst, (st[o + 1] as number) + Math.max(0, now - (st[o + 2] as number)) * rate)
        : burst;
      allowed = tokens >= cost;
      r0 = tokens;
      r1 = tokens - cost;
      e0 = (burst - r0) / rate;
      e1 = (burst - r1) / rate;
      W[o + 1] = r1;
      W[o + 2] = now;
      ttl = e1;
      retry = allowed ? 0 : cost > burst ? e0 + w : (cost - tokens) / rate;
    } else {
      const interval = w / limit;
      const tau = burst * interval;
      const tat = st && (st[o + 1] as number) >= now ? (st[o + 1] as number) : now;
      const newTat = tat + cost * interval;
      allowed = newTat - now <= tau + 0.0001;
      e0 = tat - now;
      e1 = newTat - now;
      r0 = (tau - e0) / interval + 0.0001;
      r1 = (tau - e1) / interval + 0.0001;
      W[o + 1] = newTat;
      ttl = e1;
      retry = allowed ? 0 : cost > burst ? e0 + w : newTat - tau - now;
    }
    // The policy's expiry, as its key's time to live was: whole milliseconds, at least one.
    ttl = Math.max(1, Math.ceil(ttl));
    if (ttl > longest) longest = ttl;
    W[o] = now + ttl;
    if (!allowed) {
      all = false;
      if (retry > worstRetry) {
        worstRetry = retry;
        worst = i;
      }
    }
    const v = 6 * i;
    V[v] = allowed ? 1 : 0;
    V[v + 1] = r0;
    V[v + 2] = r1;
    V[v + 3] = e0;
    V[v + 4] = e1;
    V[v + 5] = retry;
    o += 1 + (STATE_FIELDS[p.algorithm] as number);
  }
  const consumed = mode === FORCE || (mode === CONSUME && all);
  out[0] = 0;
  out[1] = 0;
  for (let i = 0; i < n; i++) {
    const v = 6 * i;
    const q = 2 + 4 * i;
    out[q] = V[v] as number;
    out[q + 1] = Math.floor(Math.max(0, (consumed ? V[v + 2] : V[v + 1]) as number));
    out[q + 2] = Math.ceil((consumed ? V[v + 4] : V[v + 3]) as number);
    out[q + 3] = Math.ceil(V[v + 5] as number);
  }
  if (consumed) {
    // A block still running (force mode reconciles during one) is kept, and the entry outlives it.
    if (S !== undefined && (S[0] as number) > now) {
      W[0] = S[0] as number;
      W[1] = S[1] as number;
      longest = Math.max(longest, Math.ceil((S[0] as number) - now));
    }
    // A returning client's stored array takes the new numbers in place (nothing else holds it: every reader goes
    // through decide()); a new client's state is a copy of the scratch.
    let state: number[];
    if (S === undefined) state = W.slice(0, count);
    else {
      state = S;
      for (let q = 0; q < count; q++) state[q] = W[q] as number;
    }
    engine.set(key, state, longest);
  } else if (mode === CONSUME && blockMs > 0) {
    // The policies' states stay as they were (none of them consumed); only the block is added.
    const B = S === undefined ? new Array<number>(count).fill(0) : S.slice();
    B[0] = now + blockMs;
    B[1] = worst;
    longest = blockMs;
    o = HEADER;
    for (const p of policies) {
      longest = Math.max(longest, Math.ceil((B[o] as number) - now));
      o += 1 + (STATE_FIELDS[p.algorithm] as number);
    }
    engine.set(key, B, longest);
    out[0] = blockMs;
    out[1] = worst;
  }
  return out;
}
