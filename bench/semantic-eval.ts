// Evaluation harness of the semantic cache: runs the published protocols of the paraphrase sets through the real
// cache (kit.semanticCache on the embedded store: store every origin, look up every paraphrase) and prints
// correct / wrong / miss, precision, recall and false-hit rate per threshold, and each guard's effect.
// Usage: npm run eval:semantic -- [--data file.json]... [--thresholds 0.7,0.8] [--slice 0:2500] [--json out.json]

import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createRedisKit } from '../plugin/index.js';
import { DEFAULT_THRESHOLD, type SemanticCacheOptions } from '../plugin/semantic-cache/options.js';

export interface EvalPair {
  /** The text stored in the cache. */
  stored: string;
  /** The text looked up. */
  query: string;
  /** 1 = the query should hit `stored`; 0 = the query should miss (any hit is false). */
  label: 0 | 1;
}

export interface EvalCounts {
  /** Hits on the row's own stored text (label-1 rows). */
  correct: number;
  /** Hits on anything else, and any hit of a label-0 row. */
  wrong: number;
  misses: number;
  lookups: number;
  positives: number;
  precision: number;
  recall: number;
  falseHitRate: number;
}

/** Reads `[{origin, similar}]` (all label 1) or `[{text_a, text_b, label}]`. */
export function parseEvalSet(json: unknown): EvalPair[] {
  if (!Array.isArray(json)) throw new Error('an evaluation set is a JSON array');
  return json.map((row, i) => {
    const r = row as Record<string, unknown>;
    if (typeof r.origin === 'string' && typeof r.similar === 'string') {
      return { stored: r.origin, query: r.similar, label: 1 as const };
    }
    if (typeof r.text_a === 'string' && typeof r.text_b === 'string') {
      return { stored: r.text_a, query: r.text_b, label: Number(r.label) === 1 ? (1 as const) : (0 as const) };
    }
    throw new Error(`row ${i}: expected {origin, similar} or {text_a, text_b, label}`);
  });
}

function asRequest(text: string) {
  return { model: 'eval-model', messages: [{ role: 'user', content: text }] };
}

/** Runs one configuration: a fresh cache, every stored text in, every query looked up. */
export async function evaluate(pairs: EvalPair[], options: SemanticCacheOptions): Promise<EvalCounts> {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  try {
    const cache = kit.semanticCache({
      maxEntriesPerNamespace: pairs.length + 10,
      embeddingCacheSize: 2 * pairs.length + 10,
      ...options,
    });
    const seen = new Set<string>();
    for (const p of pairs) {
      if (seen.has(p.stored)) continue;
      seen.add(p.stored);
      const r = await cache.store(asRequest(p.stored), { text: p.stored });
      if (!r.stored) throw new Error(`could not store an entry: ${r.reason}`);
    }
    const counts = { correct: 0, wrong: 0, misses: 0 };
    for (const p of pairs) {
      const r = await cache.lookup<{ text: string }>(asRequest(p.query));
      if (r.status !== 'hit') counts.misses++;
      else if (p.label === 1 && r.response?.text === p.stored) counts.correct++;
      else counts.wrong++;
    }
    const positives = pairs.filter((p) => p.label === 1).length;
    const hits = counts.correct + counts.wrong;
    return {
      ...counts,
      lookups: pairs.length,
      positives,
      precision: hits ? counts.correct / hits : 1,
      recall: positives ? counts.correct / positives : 0,
      falseHitRate: counts.wrong / pairs.length,
    };
  } finally {
    await kit.close();
  }
}

export interface EvalRow {
  config: string;
  threshold: number;
  counts: EvalCounts;
}

/** Every false-hit guard off: what the vector search alone decides (the protocol's row, and tests comparing indexes). */
export const NO_GUARDS = {
  negation: false,
  numbers: false,
  entities: false,
  intent: false,
  refinement: false,
  substitution: false,
  wording: false,
  minOverlap: 0,
} as const satisfies SemanticCacheOptions['guards'];

const GUARD_OFF: Record<string, SemanticCacheOptions['guards']> = {
  'no guards': NO_GUARDS,
  'without negation': { negation: false },
  'without numbers': { numbers: false },
  'without entities': { entities: false },
  'without intent': { intent: false },
  'without refinement': { refinement: false },
  'without substitution': { substitution: false },
  'without wording': { wording: false },
  'without overlap': { minOverlap: 0 },
};

/** The full protocol: every threshold with the default guards, then each guard switched off at the default. */
export async function runProtocol(pairs: EvalPair[], thresholds: number[]): Promise<EvalRow[]> {
  const rows: EvalRow[] = [];
  for (const threshold of thresholds) {
    rows.push({ config: 'default guards', threshold, counts: await evaluate(pairs, { threshold }) });
  }
  for (const [config, guards] of Object.entries(GUARD_OFF)) {
    rows.push({
      config,
      threshold: DEFAULT_THRESHOLD,
      counts: await evaluate(pairs, { threshold: DEFAULT_THRESHOLD, guards }),
    });
  }
  return rows;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

export function formatRows(name: string, rows: EvalRow[]): string {
  const lines = [
    `### ${name}`,
    '',
    '| configuration | threshold | correct hits | wrong hits | misses | precision | recall | false hits / lookups |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const { config, threshold, counts: c } of rows) {
    const mark = config === 'default guards' && threshold === DEFAULT_THRESHOLD ? ' **(default)**' : '';
    lines.push(
      `| ${config}${mark} | ${threshold.toFixed(2)} | ${c.correct} | ${c.wrong} | ${c.misses} | ${c.precision.toFixed(3)} | ${c.recall.toFixed(3)} | ${pct(c.falseHitRate)} |`,
    );
  }
  return lines.join('\n');
}

function defaultFiles(): string[] {
  // CI clones the repository next to a copy of shared/: ../shared/data/semantic relative to the repo root.
  const dir = join(__dirname, '..', '..', 'shared', 'data', 'semantic');
  return [join(dir, 'gptcache-mock-999.json'), join(dir, 'qqp-dev-5000.json')];
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const files: string[] = [];
  let thresholds = [0.55, 0.6, 0.65, 0.7, 0.76, 0.8, 0.85, 0.9, 0.95];
  let slice: [number, number] | undefined;
  let jsonOut: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--data') files.push(...String(args[++i]).split(','));
    else if (a === '--thresholds') thresholds = String(args[++i]).split(',').map(Number);
    else if (a === '--json') jsonOut = args[++i];
    else if (a === '--slice') {
      const [from, to] = String(args[++i]).split(':').map(Number);
      slice = [from ?? 0, to ?? Number.POSITIVE_INFINITY];
    } else
      throw new Error(
        `unknown argument ${a}; use --data <file>, --thresholds 0.7,0.8, --slice from:to (rows), --json <out>`,
      );
  }
  if (!thresholds.includes(DEFAULT_THRESHOLD)) thresholds.push(DEFAULT_THRESHOLD);
  thresholds.sort((a, b) => a - b);
  const results: Record<string, EvalRow[]> = {};
  for (const file of files.length ? files : defaultFiles()) {
    const all = parseEvalSet(JSON.parse(readFileSync(file, 'utf8')));
    // --slice keeps rows [from, to): the whole protocol (stores and lookups) runs on those rows only.
    const pairs = slice ? all.slice(slice[0], slice[1]) : all;
    const name = slice ? `${basename(file)} rows ${slice[0]}-${Math.min(slice[1], all.length)}` : basename(file);
    const started = performance.now();
    const rows = await runProtocol(pairs, thresholds);
    results[name] = rows;
    console.log(`${formatRows(`${name} (${pairs.length} pairs, offline embedder)`, rows)}\n`);
    console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
  }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 2));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
