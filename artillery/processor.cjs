// Artillery processor functions for the load scenarios: Zipf sampling over the demo's catalogue, one simulated client
// (IP) per virtual user, and counters that classify the demo's answers (cache status, rate-limit decisions, lock and
// fencing outcomes, semantic-cache hits) so the report and the `ensure` checks can see them.
// CommonJS on purpose: artillery require()s it, and the repository's jest tests load it without artillery installed.

'use strict';

const { readFileSync } = require('node:fs');
const { join } = require('node:path');

// ---------------------------------------------------------------------------------------------------------------
// Zipf sampling

/**
 * A sampler of ranks 1..n with P(k) proportional to 1 / k^s: the cumulative distribution is built once, each draw
 * is a binary search. `random` returns numbers in [0, 1).
 */
function zipfSampler(n, s, random = Math.random) {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`zipf: n must be a whole number >= 1, got ${n}`);
  if (!(s >= 0)) throw new RangeError(`zipf: s must be >= 0, got ${s}`);
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 1; k <= n; k++) {
    total += 1 / k ** s;
    cdf[k - 1] = total;
  }
  for (let i = 0; i < n; i++) cdf[i] /= total;
  return () => {
    const u = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
}

/**
 * The hit ratio a TTL cache is expected to reach in steady state under this load: requests for rank k arrive as a
 * Poisson stream of rate lambda_k = rate * P(k); each miss stores the answer for ttl seconds, during which every
 * request hits, so rank k hits with probability lambda_k * ttl / (1 + lambda_k * ttl).
 */
function expectedTtlHitRatio(n, s, ratePerSecond, ttlSeconds) {
  let total = 0;
  for (let k = 1; k <= n; k++) total += 1 / k ** s;
  let hit = 0;
  for (let k = 1; k <= n; k++) {
    const p = 1 / k ** s / total;
    const x = ratePerSecond * p * ttlSeconds;
    hit += (p * x) / (1 + x);
  }
  return hit;
}

const samplers = new Map();
function samplerFor(vars) {
  const n = Number(vars.demoCatalogueSize ?? 1000);
  const s = Number(vars.zipfExponent ?? 1);
  const key = `${n}:${s}`;
  let sampler = samplers.get(key);
  if (!sampler) {
    sampler = zipfSampler(n, s);
    samplers.set(key, sampler);
  }
  return sampler;
}

/** Sets `productId` to a Zipf-distributed catalogue id (1 is the most popular). */
function pickProduct(context, _events, done) {
  context.vars.productId = String(samplerFor(context.vars)());
  return done();
}

// ---------------------------------------------------------------------------------------------------------------
// Clients and phases

/**
 * Makes this virtual user a client of its own: a random address from the IPv6 documentation prefix (2001:db8::/32),
 * one /64 per user, sent as X-Forwarded-For (the demo trusts its loopback proxy). The rate limiter keys by IP and
 * groups IPv6 by /64, so every user gets its own quota, as real clients would; nothing is ever sent to that address.
 */
function asNewClient(context, _events, done) {
  const hex = () => Math.floor(Math.random() * 0x10000).toString(16);
  context.vars.clientIp = `2001:db8:${hex()}:${hex()}::1`;
  return done();
}

/** Scenario-level beforeRequest: every request of the user carries its address (see asNewClient). */
function sendAsClient(requestParams, context, _events, done) {
  if (context.vars.clientIp) {
    requestParams.headers = { ...requestParams.headers, 'x-forwarded-for': context.vars.clientIp };
  }
  return done();
}

let firstScenarioAt;
/**
 * 'warm' during the first `warmSeconds` of the run (config.variables), 'measured' after. Counted from the first
 * virtual user this worker started, which is the start of the first phase.
 */
function phaseOf(context) {
  const now = Date.now();
  firstScenarioAt ??= now;
  const warmMs = Number(context.vars.warmSeconds ?? 0) * 1000;
  return now - firstScenarioAt < warmMs ? 'warm' : 'measured';
}

/** Marks the start of a virtual user (so phaseOf counts from the first one) and makes it a client of its own. */
function startUser(context, events, done) {
  phaseOf(context);
  return asNewClient(context, events, done);
}

// Counters that `ensure` expressions name must exist even when nothing happened, or the expression cannot be
// evaluated; each worker emits them once at 0.
const ZERO_COUNTERS = [
  'responses.5xx',
  'responses.429',
  'responses.2xx',
  'ratelimit.missing_headers',
  'cache.measured.hit',
  'cache.measured.miss',
  'cache.measured.other',
  'cache.warm.hit',
  'cache.warm.miss',
  'cache.warm.other',
  'llm.wrong_answer',
  'locks.duplicate_runs',
  'locks.fencing_violations',
  'sessions.mismatch',
  'sessions.unlisted',
];
let zeroed = false;
function zeroCounters(events) {
  if (zeroed) return;
  zeroed = true;
  for (const name of ZERO_COUNTERS) events.emit('counter', name, 0);
}

/** `GET /api/v1/products/{id}` from a request: path segments of digits only, or with ':' or a load- prefix are ids. */
function routeLabel(method, url) {
  const path = url.replace(/^[a-z]+:\/\/[^/]+/, '').split('?')[0];
  const template = path
    .split('/')
    .map((seg) => (/^\d+$|:|^load-/.test(seg) ? '{id}' : seg))
    .join('/');
  return `${String(method ?? 'GET').toUpperCase()} ${template}`;
}

/** Scenario-level afterResponse: counts 2xx, 429 and 5xx answers and checks the rate-limit headers of API answers. */
function countResponse(req, res, _context, events, done) {
  zeroCounters(events);
  const status = res.statusCode;
  if (status >= 500) events.emit('counter', 'responses.5xx', 1);
  else if (status === 429) events.emit('counter', 'responses.429', 1);
  else if (status >= 200 && status < 300) events.emit('counter', 'responses.2xx', 1);
  const url = String(req.url ?? '');
  const firstByte = res.timings?.phases?.firstByte;
  if (typeof firstByte === 'number') events.emit('histogram', `route.${routeLabel(req.method, url)}`, firstByte);
  if (url.includes('/api/v1/') && !url.includes('/api/v1/health') && !res.headers.ratelimit) {
    events.emit('counter', 'ratelimit.missing_headers', 1);
  }
  if (status === 429 && !res.headers['retry-after']) events.emit('counter', 'ratelimit.missing_retry_after', 1);
  return done();
}

// ---------------------------------------------------------------------------------------------------------------
// Response cache

/** 'hit' for any answer served from the cache (fresh, stale-while-revalidate, in-process layer), else the fwd value. */
function cacheOutcome(header) {
  if (typeof header !== 'string' || header === '') return 'none';
  const params = header.split(';').map((p) => p.trim());
  if (params.includes('hit')) return 'hit';
  const fwd = params.find((p) => p.startsWith('fwd='));
  if (fwd === 'fwd=miss' && params.includes('collapsed')) return 'collapsed';
  return fwd ? fwd.slice(4) : 'other';
}

/** Counts the RFC 9211 Cache-Status of a catalogue answer, per phase: cache.<phase>.hit / .miss / .other. */
function countCacheStatus(_req, res, context, events, done) {
  zeroCounters(events);
  const outcome = cacheOutcome(res.headers['cache-status']);
  const phase = phaseOf(context);
  const bucket = outcome === 'hit' || outcome === 'miss' ? outcome : 'other';
  events.emit('counter', `cache.${phase}.${bucket}`, 1);
  if (bucket === 'other') events.emit('counter', `cache.${phase}.${outcome}`, 1);
  return done();
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions

const ACCOUNTS = [
  { username: 'alice', password: 'alice-password' },
  { username: 'bob', password: 'bob-password' },
];

/** Picks one of the two demo accounts for this virtual user. */
function pickAccount(context, _events, done) {
  const account = ACCOUNTS[Math.floor(Math.random() * ACCOUNTS.length)];
  context.vars.username = account.username;
  context.vars.password = account.password;
  return done();
}

function jsonOf(res) {
  if (res.body && typeof res.body === 'object') return res.body;
  try {
    return JSON.parse(res.body);
  } catch {
    return undefined;
  }
}

/**
 * After GET /me and GET /me/sessions. /me must show the session this user logged into (the cookie jar is per
 * virtual user): a different one is a `sessions.mismatch`. The list must contain that session, marked current: a
 * list without it is counted apart as `sessions.unlisted` (the user's session index lost the id).
 */
function checkSession(req, res, context, events, done) {
  zeroCounters(events);
  if (res.statusCode !== 200) return done();
  const body = jsonOf(res);
  const expected = context.vars.sessionId;
  if (String(req.url).endsWith('/me/sessions')) {
    const listed = Array.isArray(body?.sessions) && body.sessions.some((s) => s.id === expected && s.current === true);
    events.emit('counter', listed ? 'sessions.listed' : 'sessions.unlisted', 1);
  } else {
    const same = body?.sessionId === expected && body?.user?.id === context.vars.username;
    events.emit('counter', same ? 'sessions.ok' : 'sessions.mismatch', 1);
  }
  return done();
}

// ---------------------------------------------------------------------------------------------------------------
// Locks

/**
 * Report ids that many users ask for at the same moment: every user arriving in the same `reportWindowSeconds`
 * picks one of `reportsPerWindow` ids of that window, so each id is requested concurrently and must be generated once.
 */
function pickReport(context, _events, done) {
  const windowSeconds = Number(context.vars.reportWindowSeconds ?? 2);
  const perWindow = Number(context.vars.reportsPerWindow ?? 4);
  const window = Math.floor(Date.now() / (windowSeconds * 1000));
  const k = Math.floor(Math.random() * perWindow);
  context.vars.reportId = `load-${context.vars.runId ?? 'run'}-${window}-${k}`;
  context.vars.documentId = `load-${context.vars.runId ?? 'run'}-${window}`;
  return done();
}

/** Generated reports: `runs` must be 1 however many users asked; counts generations and waits. */
function checkReport(_req, res, context, events, done) {
  zeroCounters(events);
  if (res.statusCode !== 200) return done();
  const body = jsonOf(res);
  if (!body) return done();
  if (body.runs !== 1) events.emit('counter', 'locks.duplicate_runs', 1);
  events.emit('counter', body.cached ? 'locks.reports_served_stored' : 'locks.reports_generated', 1);
  context.vars.fencingToken = String(body.fencingToken);
  return done();
}

/**
 * Fenced writes: users holding the same report's token race to write one document. The document must take each
 * token at most once and never go back to an older one: a 409 must name a token at least as new as ours.
 */
function checkFencedWrite(_req, res, context, events, done) {
  zeroCounters(events);
  const body = jsonOf(res);
  const ours = Number(context.vars.fencingToken);
  if (res.statusCode === 200) {
    events.emit('counter', 'locks.writes_accepted', 1);
    if (body?.fencingToken !== ours) events.emit('counter', 'locks.fencing_violations', 1);
  } else if (res.statusCode === 409) {
    events.emit('counter', 'locks.writes_fenced_off', 1);
    if (!(Number(body?.lastFencingToken) >= ours)) events.emit('counter', 'locks.fencing_violations', 1);
  }
  return done();
}

// ---------------------------------------------------------------------------------------------------------------
// Semantic cache

let prompts;
function loadPrompts() {
  prompts ??= JSON.parse(readFileSync(join(__dirname, 'data', 'prompts.json'), 'utf8'));
  return prompts;
}

/**
 * A question from the prompt mix. During the warm phase the original wording of each pair in turn (so the cache
 * holds them all); afterwards the original or its paraphrase, half and half, from a Zipf-distributed pair.
 */
function pickPrompt(context, _events, done) {
  const list = loadPrompts();
  const phase = phaseOf(context);
  let index;
  let wording;
  if (phase === 'warm') {
    pickPrompt.next = ((pickPrompt.next ?? -1) + 1) % list.length;
    index = pickPrompt.next;
    wording = 'origin';
  } else {
    index = samplerFor({ demoCatalogueSize: list.length, zipfExponent: context.vars.zipfExponent ?? 1 })() - 1;
    wording = Math.random() < 0.5 ? 'origin' : 'paraphrase';
  }
  const pair = list[index];
  context.vars.prompt = wording === 'origin' ? pair.origin : pair.similar;
  context.vars.promptIndex = index;
  context.vars.promptWording = wording;
  return done();
}

/**
 * Counts X-LLM-Cache per phase and wording (llm.measured.paraphrase.hit, ...). The simulated model quotes the
 * question it answered, so a hit whose quote is neither wording of the same pair is a wrong answer.
 */
function countLlmCache(_req, res, context, events, done) {
  zeroCounters(events);
  if (res.statusCode !== 200) return done();
  const status = res.headers['x-llm-cache'] ?? 'none';
  const phase = phaseOf(context);
  events.emit('counter', `llm.${phase}.${context.vars.promptWording}.${status}`, 1);
  if (status === 'hit') {
    const pair = loadPrompts()[context.vars.promptIndex];
    const content = jsonOf(res)?.choices?.[0]?.message?.content ?? '';
    const quoted = (text) => content.includes(`You asked: "${text.slice(0, 200)}"`);
    if (!quoted(pair.origin) && !quoted(pair.similar)) events.emit('counter', 'llm.wrong_answer', 1);
  }
  return done();
}

module.exports = {
  zipfSampler,
  expectedTtlHitRatio,
  cacheOutcome,
  routeLabel,
  pickProduct,
  asNewClient,
  sendAsClient,
  startUser,
  countResponse,
  countCacheStatus,
  pickAccount,
  checkSession,
  pickReport,
  checkReport,
  checkFencedWrite,
  pickPrompt,
  countLlmCache,
};
