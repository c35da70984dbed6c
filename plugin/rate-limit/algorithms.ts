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

/** Per-policy state: a window start and counts (windows), tokens and time (bucket), theoretical arrival (GCRA). */
interface State {
  a: number;
  b: number;
  c: number;
  /** Sliding window only: when counting began in the current (d) and the previous (e) window. */
  d?: number;
  e?: number;
}

/** What the embedded engine offers (a MemoryEngine fits). */
export interface StateEngine {
  get<T = unknown>(key: string): T | undefined;
  set(key: string, value: unknown, ttlMs?: number): void;
  pttl(key: string): number;
  delete(key: string): boolean;
  now(): number;
}

/**
 * Runs one decision against every policy. Same output layout as the Lua script: `[block ms left, blocking policy
 * index, then per policy: allowed (1/0), remaining, reset ms, retry-after ms]`.
 */
export function decide(
  engine: StateEngine,
  blockKey: string,
  keys: readonly string[],
  policies: readonly CompiledPolicy[],
  cost: number,
  mode: Mode,
  blockMs: number,
): number[] {
  const now = engine.now();
  if (mode !== FORCE && blockMs > 0) {
    const left = engine.pttl(blockKey);
    if (left > 0) return [left, Number(engine.get(blockKey) ?? 0)];
  }
  const n = policies.length;
  const writes: Array<{ state: State; ttl: number }> = new Array(n);
  // Per policy: allowed, remaining/reset without (r0, e0) and with (r1, e1) the cost, retry-after.
  const res = new Array<[boolean, number, number, number, number, number]>(n);
  let all = true;
  let worst = -1;
  let worstRetry = -1;
  for (let i = 0; i < n; i++) {
    const p = policies[i] as CompiledPolicy;
    const st = engine.get<State>(keys[i] as string);
    const { limit, windowMs: w, burst } = p;
    let allowed: boolean;
    let r0: number;
    let r1: number;
    let e0: number;
    let e1: number;
    let retry: number;
    if (p.algorithm === FIXED_WINDOW) {
      const ws = now - (now % w);
      const used = st && st.a === ws ? st.b : 0;
      allowed = used + cost <= limit;
      e0 = ws + w - now;
      e1 = e0;
      r0 = limit - used;
      r1 = r0 - cost;
      writes[i] = { state: { a: ws, b: used + cost, c: 0 }, ttl: e0 };
      retry = allowed ? 0 : cost > limit ? e0 + w : e0;
    } else if (p.algorithm === SLIDING_WINDOW) {
      // See lua/limit.lua: the windows' grid starts at the client's first request (kept while its state lives), and
      // the previous count is spread from its window's first request to the window's end.
      const ws = st ? (now >= st.a ? st.a + Math.floor((now - st.a) / w) * w : st.a) : now;
      let cur = 0;
      let prev = 0;
      let first: number | undefined;
      let pfirst = ws - w;
      if (st && st.a === ws) {
        cur = st.b;
        prev = st.c;
        first = st.d;
        pfirst = st.e ?? pfirst;
      } else if (st && st.a === ws - w) {
        prev = st.b;
        pfirst = st.d ?? pfirst;
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
      writes[i] = { state: { a: ws, b: cur + cost, c: prev, d: first ?? now, e: pfirst }, ttl: e0 + w };
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
      const tokens = st ? Math.min(burst, st.a + Math.max(0, now - st.b) * rate) : burst;
      allowed = tokens >= cost;
      r0 = tokens;
      r1 = tokens - cost;
      e0 = (burst - r0) / rate;
      e1 = (burst - r1) / rate;
      writes[i] = { state: { a: r1, b: now, c: 0 }, ttl: e1 };
      retry = allowed ? 0 : cost > burst ? e0 + w : (cost - tokens) / rate;
    } else {
      const interval = w / limit;
      const tau = burst * interval;
      const tat = st && st.a >= now ? st.a : now;
      const newTat = tat + cost * interval;
      allowed = newTat - now <= tau + 0.0001;
      e0 = tat - now;
      e1 = newTat - now;
      r0 = (tau - e0) / interval + 0.0001;
      r1 = (tau - e1) / interval + 0.0001;
      writes[i] = { state: { a: newTat, b: 0, c: 0 }, ttl: e1 };
      retry = allowed ? 0 : cost > burst ? e0 + w : newTat - tau - now;
    }
    if (!allowed) {
      all = false;
      if (retry > worstRetry) {
        worstRetry = retry;
        worst = i;
      }
    }
    res[i] = [allowed, r0, r1, e0, e1, retry];
  }
  const consumed = mode === FORCE || (mode === CONSUME && all);
  const out: number[] = [0, 0];
  for (let i = 0; i < n; i++) {
    const [allowed, r0, r1, e0, e1, retry] = res[i] as [boolean, number, number, number, number, number];
    const remaining = consumed ? r1 : r0;
    out.push(allowed ? 1 : 0, Math.floor(Math.max(0, remaining)), Math.ceil(consumed ? e1 : e0), Math.ceil(retry));
  }
  if (consumed) {
    for (let i = 0; i < n; i++) {
      const wr = writes[i] as { state: State; ttl: number };
      engine.set(keys[i] as string, wr.state, Math.max(1, Math.ceil(wr.ttl)));
    }
  } else if (mode === CONSUME && blockMs > 0) {
    engine.set(blockKey, worst, blockMs);
    out[0] = blockMs;
    out[1] = worst;
  }
  return out;
}
