// Benchmark of the semantic cache (not a test): lookup latency at 10,000 and 100,000 entries on the embedded store
// and on a real Redis (its own redis-server on a free port), memory per entry, the dense flat index for
// comparison, and a hit through the demo endpoint against the simulated LLM.
// Run: npx tsx bench/semantic.ts [--quick: 10,000 only] [--large: 100,000 only] [--broad: Zipf vocabulary]

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createLlmRoutes } from '../demo/llm-routes.js';
import { createRedisKit, type LlmRequest, type RedisKit, type RedisStore } from '../plugin/index.js';
import { FlatIndex } from '../plugin/semantic-cache/vector-index.js';
import { signals } from '../plugin/semantic-cache/text.js';
import { hasRedisServer, startRedis } from '../test/support/redis-server.js';

const quick = process.argv.includes('--quick');
const SIZES = quick ? [10_000] : process.argv.includes('--large') ? [100_000] : [10_000, 100_000];
const LOOKUPS = 2000;

// A deterministic pseudo-random generator, so every run builds the same corpus.
let seed = 42;
function rand(): number {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;

const VERBS = [
  'configure',
  'install',
  'debug',
  'deploy',
  'monitor',
  'secure',
  'scale',
  'migrate',
  'test',
  'optimise',
  'back up',
  'upgrade',
];
const THINGS = [
  'postgres',
  'redis',
  'kafka',
  'nginx',
  'kubernetes',
  'docker',
  'react',
  'express',
  'django',
  'terraform',
  'grafana',
  'elasticsearch',
  'mongodb',
  'rabbitmq',
  'spark',
  'airflow',
  'jenkins',
  'vault',
  'consul',
  'envoy',
];
const CONTEXTS = [
  'on aws',
  'on a laptop',
  'in production',
  'for a small team',
  'with high availability',
  'behind a proxy',
  'in a monorepo',
  'on windows',
  'on ubuntu',
  'for beginners',
  'without downtime',
  'at scale',
  'in ci',
  'with tls',
  'on arm machines',
];
const ASPECTS = [
  'logging',
  'memory usage',
  'connection pooling',
  'authentication',
  'timeouts',
  'retries',
  'caching',
  'backups',
  'metrics',
  'alerts',
  'rate limits',
  'upgrades',
  'replication',
  'sharding',
  'permissions',
  'cost',
];
const OPENERS = ['How do I', 'What is the best way to', 'How can I', 'What steps do I need to'];

// 'narrow' (default): ~80 distinct words, so every posting list is long (a worst case for the inverted index).
// 'broad': topic words drawn with a Zipf distribution from 5,000 generated words, closer to real traffic.
const broad = process.argv.includes('--broad');
const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'ren',
  'tu',
  'sa',
  'vo',
  'ne',
  'dri',
  'pa',
  'zo',
  'ul',
  'fen',
  'gar',
  'ish',
  'tor',
];
const LEXICON = Array.from({ length: 5000 }, (_, i) => {
  let w = '';
  for (let n = i + 1; n > 0; n = Math.floor(n / 16)) w += SYLLABLES[n % 16];
  return w;
});
function zipfWord(): string {
  // Inverse-CDF sampling of a Zipf(1) distribution over the lexicon.
  const u = rand();
  return LEXICON[Math.min(LEXICON.length - 1, Math.floor(Math.exp(u * Math.log(LEXICON.length + 1)) - 1))] as string;
}

function question(i: number): string {
  if (broad) return `${pick(OPENERS)} ${pick(VERBS)} ${zipfWord()} ${zipfWord()} ${zipfWord()} ${pick(CONTEXTS)}?`;
  return `${pick(OPENERS)} ${pick(VERBS)} ${pick(THINGS)} ${pick(ASPECTS)} ${pick(CONTEXTS)} (case ${i % 997})?`;
}

function req(text: string): LlmRequest {
  return { model: 'bench-model', messages: [{ role: 'user', content: text }] };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function fill(kit: RedisKit, n: number) {
  const cache = kit.semanticCache({ maxEntriesPerNamespace: n + 10, embeddingCacheSize: 1000 });
  const texts: string[] = [];
  for (let i = 0; i < n; i++) texts.push(question(i));
  const started = performance.now();
  const concurrency = 16;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const r = await cache.store(req(texts[i] as string), { answer: i, usage: { total_tokens: 200 } });
        if (!r.stored) throw new Error(`store failed: ${r.reason}`);
      }
    }),
  );
  return { cache, texts, fillMs: performance.now() - started };
}

async function measure(label: string, kit: RedisKit, n: number, redisMemory?: () => Promise<number>) {
  const before = redisMemory ? await redisMemory() : 0;
  const heapBefore = process.memoryUsage().heapUsed;
  const { cache, texts, fillMs } = await fill(kit, n);
  // A fresh cache on the same store loads the partition from the store on first use, as a new instance would.
  const follower = kit.semanticCache({ maxEntriesPerNamespace: n + 10, embeddingCacheSize: 10 });
  const loadStart = performance.now();
  await follower.lookup(req('warm up the partition index please'));
  const firstLookupMs = performance.now() - loadStart;
  // A large partition finishes loading in the background: measure lookups on the loaded index only.
  // (The corpus may repeat a question: identical requests share one entry, so stop when the count stops growing.)
  let seen = -1;
  while (follower.stats().indexedEntries !== seen) {
    seen = follower.stats().indexedEntries;
    await new Promise((r) => setTimeout(r, 300));
  }
  const loadMs = performance.now() - loadStart;
  const lat: number[] = [];
  let hits = 0;
  for (let i = 0; i < LOOKUPS; i++) {
    // Half paraphrases of stored questions (reworded opener), half new questions: the search runs every time.
    const text =
      i % 2 === 0 ? (texts[Math.floor(rand() * n)] as string).replace(/^\S+ \S+/, 'How would I') : question(n + i);
    const t = performance.now();
    const r = await follower.lookup(req(text));
    lat.push(performance.now() - t);
    if (r.status === 'hit') hits++;
  }
  lat.sort((a, b) => a - b);
  const stats = follower.stats();
  const heapAfter = process.memoryUsage().heapUsed;
  const after = redisMemory ? await redisMemory() : 0;
  const row = {
    store: label,
    entries: n,
    p50: percentile(lat, 50).toFixed(3),
    p90: percentile(lat, 90).toFixed(3),
    p99: percentile(lat, 99).toFixed(3),
    hitRate: (hits / LOOKUPS).toFixed(2),
    indexBytesPerEntry: Math.round(stats.indexBytes / stats.indexedEntries),
    heapBytesPerEntry: Math.round((heapAfter - heapBefore) / n / 2),
    redisBytesPerEntry: redisMemory ? Math.round((after - before) / n) : undefined,
    fillPerSec: Math.round(n / (fillMs / 1000)),
    firstLookupMs: Math.round(firstLookupMs),
    loadMs: Math.round(loadMs),
  };
  console.log(JSON.stringify(row));
  await cache.close();
  await follower.close();
  return row;
}

function denseFlat() {
  for (const n of SIZES) {
    const d = 384;
    const index = new FlatIndex(d);
    const sig = signals('x');
    const v = new Float32Array(d);
    for (let i = 0; i < n; i++) {
      let norm = 0;
      for (let k = 0; k < d; k++) {
        v[k] = rand() - 0.5;
        norm += (v[k] as number) ** 2;
      }
      for (let k = 0; k < d; k++) v[k] = (v[k] as number) / Math.sqrt(norm);
      index.add({ id: String(i), expiresAt: Number.MAX_SAFE_INTEGER, text: '', signals: sig }, v);
    }
    const lat: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      index.search(v, 1, 0, 0);
      lat.push(performance.now() - t);
    }
    lat.sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        index: 'flat, 384-d dense',
        entries: n,
        p50: percentile(lat, 50).toFixed(3),
        p99: percentile(lat, 99).toFixed(3),
        bytesPerEntry: Math.round(index.bytes() / n),
      }),
    );
  }
}

async function demoSpeedup() {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  const app = express();
  app.use(createLlmRoutes({ kit }));
  const server = createServer(app).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/llm/chat`;
  const call = async (content: string) => {
    const t = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content }] }),
    });
    await res.json();
    return { ms: performance.now() - t, status: res.headers.get('x-llm-cache') };
  };
  const misses: number[] = [];
  const hits: number[] = [];
  for (let i = 0; i < 5; i++) misses.push((await call(`Explain topic number ${i} in detail`)).ms);
  for (let r = 0; r < 40; r++) {
    const h = await call(`Explain topic number ${r % 5} in detail`);
    if (h.status === 'hit') hits.push(h.ms);
  }
  misses.sort((a, b) => a - b);
  hits.sort((a, b) => a - b);
  const missP50 = percentile(misses, 50);
  const hitP50 = percentile(hits, 50);
  console.log(
    JSON.stringify({
      demo: 'HTTP round trip',
      missP50: missP50.toFixed(1),
      hitP50: hitP50.toFixed(2),
      speedup: Math.round(missP50 / hitP50),
    }),
  );
  server.close();
  await kit.close();
}

async function main() {
  console.log(
    `# semantic cache benchmark (node ${process.version}, ${quick ? 'quick' : 'full'}, ${broad ? 'broad' : 'narrow'} corpus; 2 cores shared)`,
  );
  await demoSpeedup();
  denseFlat();
  for (const n of SIZES) {
    const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
    await measure('embedded', kit, n);
    await kit.close();
  }
  if (!hasRedisServer()) {
    console.log('redis-server not found: Redis rows skipped');
    return;
  }
  const redis = await startRedis();
  try {
    for (const n of SIZES) {
      const kit = createRedisKit({ redis: redis.url, logger: false, env: {}, prefix: `bench${n}` });
      await kit.ready();
      const mem = async () => {
        const info = String(await (kit.store as RedisStore).command('INFO', 'memory'));
        return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
      };
      await measure('redis', kit, n, mem);
      await (kit.store as RedisStore).command('FLUSHDB');
      await kit.close();
    }
  } finally {
    await redis.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
