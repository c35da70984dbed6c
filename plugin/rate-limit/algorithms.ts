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
  if (mode !== FORCE) {
    const left = engine.pttl(blockKey);
    if (left > 0) return [left, Number(engine.get(blockKey) ?? 0)];
  }
  const n = policies.length;
  const out: number[] = [0, 0];
  const writes: Array<{ state: State; ttl: number } | undefined> = new Array(n);
  let all = true;
  let worst = -1;
  let worstRetry = -1;
  for (let i = 0; i < n; i++) {
    const p = policies[i] as CompiledPolicy;
    const st = engine.get<State>(keys[i] as string);
    const { limit, windowMs: w, burst } = p;
    let allowed: boolean;
    let remaining: number;
    let reset: number;
    let retry: number;
    if (p.algorithm === FIXED_WINDOW) {
      const ws = now - (now % w);
      const used = st && st.a === ws ? st.b : 0;
      allowed = used + cost <= limit;
      reset = ws + w - now;
      if (allowed || mode === FORCE) writes[i] = { state: { a: ws, b: used + cost, c: 0 }, ttl: reset };
      remaining = allowed && mode !== PEEK ? limit - used - cost : limit - used;
      retry = allowed ? 0 : cost > limit ? reset + w : reset;
    } else if (p.algorithm === SLIDING_WINDOW) {
      const ws = now - (now % w);
      let cur = 0;
      let prev = 0;
      if (st && st.a === ws) {
        cur = st.b;
        prev = st.c;
      } else if (st && st.a === ws - w) {
        prev = st.b;
      }
      const elapsed = now - ws;
      const est = (prev * (w - elapsed)) / w + cur;
      allowed = est + cost <= limit;
      reset = w - elapsed;
      if (allowed || mode === FORCE) writes[i] = { state: { a: ws, b: cur + cost, c: prev }, ttl: 2 * w - elapsed };
      remaining = allowed && mode !== PEEK ? limit - est - cost : limit - est;
      if (allowed) retry = 0;
      else if (cost > limit) retry = reset + w;
      else if (cur + cost <= limit) retry = ((est + cost - limit) * w) / prev;
      else retry = reset + (cur > 0 ? Math.max(0, w * (1 - (limit - cost) / cur)) : 0);
    } else if (p.algorithm === TOKEN_BUCKET) {
      const rate = limit / w;
      const tokens = st ? Math.min(burst, st.a + (now - st.b) * rate) : burst;
      allowed = tokens >= cost;
      const after = allowed && mode !== PEEK ? tokens - cost : tokens;
      if (allowed || mode === FORCE) {
        const left = tokens - cost;
        writes[i] = { state: { a: left, b: now, c: 0 }, ttl: (burst - left) / rate };
      }
      remaining = after;
      reset = (burst - after) / rate;
      retry = allowed ? 0 : cost > burst ? reset + w : (cost - tokens) / rate;
    } else {
      const interval = w / limit;
      const tau = burst * interval;
      const tat = st && st.a >= now ? st.a : now;
      const newTat = tat + cost * interval;
      allowed = newTat - now <= tau + 0.0001;
      const used = allowed && mode !== PEEK ? newTat : tat;
      if (allowed || mode === FORCE) writes[i] = { state: { a: newTat, b: 0, c: 0 }, ttl: newTat - now };
      remaining = (tau - (used - now)) / interval + 0.0001;
      reset = used - now;
      retry = allowed ? 0 : cost > burst ? reset + w : newTat - tau - now;
    }
    if (remaining < 0) remaining = 0;
    if (!allowed) {
      all = false;
      if (retry > worstRetry) {
        worstRetry = retry;
        worst = i;
      }
    }
    out.push(allowed ? 1 : 0, Math.floor(remaining), Math.ceil(reset), Math.ceil(retry));
  }
  if (mode === FORCE || (mode === CONSUME && all)) {
    for (let i = 0; i < n; i++) {
      const wr = writes[i];
      if (wr) engine.set(keys[i] as string, wr.state, Math.max(1, Math.ceil(wr.ttl)));
    }
  } else if (mode === CONSUME && blockMs > 0) {
    engine.set(blockKey, worst, blockMs);
    out[0] = blockMs;
    out[1] = worst;
  }
  return out;
}
