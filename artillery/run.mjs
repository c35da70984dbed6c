// `npm run load -- <scenario> [--record] [--quiet]`: runs one artillery scenario (or `all`) against the demo on a
// real Redis and prints a readable summary.
//
// It installs artillery's own dependencies on first use (npm ci --prefix artillery, no install scripts, so no
// browser download), starts a private redis-server on a free port (or uses REDIS_URL), starts the demo on a free
// port against it with the scenario's demo settings (config.variables named demo*, e.g. demoApiLimit → DEMO_API_LIMIT),
// runs artillery with its JSON report under artillery/reports/, and summarises it: throughput, latency percentiles,
// status counts, the scenario's own counters (cache hit ratio, 429 share, ...), the demo's and Redis's CPU time per
// request and the machine's load. The exit code is artillery's: non-zero when an `ensure` check fails.
// --record also writes the summary into docs/performance.md between <!-- load:NAME:start/end --> markers.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(import.meta.url);
const { parse: parseYaml } = require('yaml');
const { expectedTtlHitRatio } = require('./processor.cjs');

const scenariosDir = join(here, 'scenarios');
const reportsDir = join(here, 'reports');
const performanceDoc = join(root, 'docs', 'performance.md');
const SCENARIOS = readdirSync(scenariosDir)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => f.slice(0, -4))
  .sort();

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const names = args.filter((a) => !a.startsWith('--'));
const record = flags.has('--record');
const quiet = flags.has('--quiet');
if (names.length === 0 || flags.has('--help')) {
  console.log(`usage: npm run load -- <${SCENARIOS.join('|')}|all> [--record] [--quiet]`);
  process.exit(names.length === 0 && !flags.has('--help') ? 2 : 0);
}
const selected = names.includes('all') ? SCENARIOS : names;
for (const name of selected) {
  if (!SCENARIOS.includes(name)) {
    console.error(`unknown scenario '${name}'; one of: ${SCENARIOS.join(', ')}, all`);
    process.exit(2);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------------
// Artillery, installed apart from the main dependencies

function ensureArtillery() {
  const bin = join(here, 'node_modules', '.bin', 'artillery');
  if (existsSync(bin)) return bin;
  console.log('installing artillery into artillery/node_modules (first use; a few minutes)...');
  // No install scripts: artillery's optional Playwright engine would download a browser, and nothing else it ships
  // needs one for HTTP scenarios.
  const result = spawnSync('npm', ['ci', '--prefix', here, '--no-audit', '--no-fund', '--ignore-scripts'], {
    stdio: 'inherit',
    env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
  });
  if (result.status !== 0 || !existsSync(bin)) {
    console.error('could not install artillery (npm ci --prefix artillery failed)');
    process.exit(1);
  }
  return bin;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes: a private redis-server and the demo

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Sends one RESP command and returns the raw reply text (enough for PING and INFO). */
function redisCommand(port, host, ...parts) {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('redis: no answer'));
    }, 2000);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.connect(port, host, () => {
      socket.write(`*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      // A status/error line, or a bulk string whose announced length has arrived.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (
        (reply[0] !== '$' && reply.endsWith('\r\n')) ||
        (bulk && Buffer.byteLength(reply) >= bulk[0].length + Number(bulk[1]) + 2)
      ) {
        clearTimeout(timer);
        socket.end();
        resolve(bulk ? reply.slice(bulk[0].length, -2) : reply.trim());
      }
    });
  });
}

async function redisInfo(redis) {
  const text = await redisCommand(redis.port, redis.host, 'INFO', 'all');
  const info = {};
  const commands = {};
  let calls = 0;
  for (const line of text.split('\r\n')) {
    const m = /^([a-z_0-9|]+):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1].startsWith('cmdstat_')) {
      const n = Number(/calls=(\d+)/.exec(m[2])?.[1] ?? 0);
      commands[m[1].slice(8)] = n;
      calls += n;
    } else info[m[1]] = m[2];
  }
  return {
    cpu: Number(info.used_cpu_sys ?? 0) + Number(info.used_cpu_user ?? 0),
    calls,
    commands,
  };
}

async function startRedis() {
  if (process.env.REDIS_URL) {
    const url = new URL(process.env.REDIS_URL);
    return { url: process.env.REDIS_URL, host: url.hostname, port: Number(url.port || 6379), stop: async () => {} };
  }
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
    { stdio: 'ignore' },
  );
  child.on('error', (error) => {
    console.error(`could not start redis-server (${error.message}); install it or set REDIS_URL`);
    process.exit(1);
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await redisCommand(port, '127.0.0.1', 'PING')) === '+PONG') break;
    } catch {
      await sleep(50);
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    private: true,
    stop: () => stopChild(child),
  };
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The scenario's demo settings: every config.variables entry named demoXxx becomes the env variable DEMO_XXX. */
function demoEnv(variables) {
  const env = {};
  for (const [name, value] of Object.entries(variables ?? {})) {
    if (!/^demo[A-Z]/.test(name)) continue;
    env[
      `DEMO_${name
        .slice(4)
        .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
        .toUpperCase()}`
    ] = String(value);
  }
  return env;
}

async function startDemo(redis, env, logPath) {
  const port = await freePort();
  const adminToken = randomBytes(24).toString('base64url');
  const log = createWriteStream(logPath);
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'demo', 'server.ts')], {
    cwd: root,
    env: {
      ...process.env,
      ...env,
      PORT: String(port),
      REDIS_URL: redis.url,
      REDIS_KIT_ADMIN_TOKEN: adminToken,
      NODE_ENV: 'production',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(`${url}/api/v1/health/redis`);
      if (res.status === 200) return { url, adminToken, child, stop: () => stopChild(child) };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stopChild(child);
  throw new Error(`the demo did not become ready; see ${relative(root, logPath)}`);
}

/** CPU seconds (user + system) a process has used, from /proc (Linux); undefined elsewhere. */
function processCpu(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

async function kitMetrics(demo) {
  try {
    const res = await fetch(`${demo.url}/api/v1/metrics`, { headers: { authorization: `Bearer ${demo.adminToken}` } });
    return res.ok ? await res.text() : '';
  } catch {
    return '';
  }
}

/** Sum of a Prometheus metric's samples whose labels contain every given label=value. */
function metricSum(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------------------------
// Running one scenario

function runArtillery(bin, file, target, output, variables) {
  return new Promise((resolve) => {
    const child = spawn(
      bin,
      ['run', '--target', target, '--output', output, '--variables', JSON.stringify(variables), file],
      {
        cwd: here,
        env: { ...process.env, ARTILLERY_DISABLE_TELEMETRY: 'true', PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let text = '';
    const take = (stream, sink) =>
      stream.on('data', (chunk) => {
        text += chunk.toString('utf8');
        if (!quiet) sink.write(chunk);
      });
    take(child.stdout, process.stdout);
    take(child.stderr, process.stderr);
    // Its CPU time (all worker threads), read just before it exits: the load generator shares the machine's cores.
    let cpu;
    const sample = setInterval(() => {
      cpu = processCpu(child.pid) ?? cpu;
    }, 1000);
    child.on('exit', (code) => {
      clearInterval(sample);
      resolve({ code: code ?? 1, text, cpu });
    });
  });
}

async function runScenario(bin, name) {
  const file = join(scenariosDir, `${name}.yml`);
  const script = parseYaml(readFileSync(file, 'utf8'));
  const variables = script.config?.variables ?? {};
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  mkdirSync(reportsDir, { recursive: true });
  const output = join(reportsDir, `${name}-${stamp}.json`);
  const redis = await startRedis();
  let demo;
  try {
    demo = await startDemo(redis, demoEnv(variables), join(reportsDir, `${name}-${stamp}.demo.log`));
    console.log(`\n== ${name}: demo ${demo.url}, Redis ${redis.url}${redis.private ? ' (private)' : ''}`);
    const before = {
      load: loadavg()[0],
      demoCpu: processCpu(demo.child.pid),
      redis: await redisInfo(redis),
      metrics: await kitMetrics(demo),
    };
    const { code, text, cpu } = await runArtillery(bin, file, demo.url, output, { runId: stamp });
    before.artilleryCpu = cpu;
    const after = {
      load: loadavg()[0],
      demoCpu: processCpu(demo.child.pid),
      redis: await redisInfo(redis),
      metrics: await kitMetrics(demo),
    };
    const report = existsSync(output) ? JSON.parse(readFileSync(output, 'utf8')) : undefined;
    const summary = summarise(name, script, report, before, after, text, code);
    const summaryPath = output.replace(/\.json$/, '.md');
    writeFileSync(summaryPath, `${summary}\n`);
    console.log(`\n${summary}\n`);
    console.log(`report: ${relative(root, output)}, summary: ${relative(root, summaryPath)}`);
    if (record) recordSummary(name, summary);
    return code;
  } finally {
    await demo?.stop();
    await redis.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The summary

const fmt = (n, digits = 0) =>
  n === undefined || Number.isNaN(n)
    ? 'n/a'
    : Number(n).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const pct = (part, whole) => (whole > 0 ? `${fmt((100 * part) / whole, 1)} %` : 'n/a');

function summarise(name, script, report, before, after, artilleryText, code) {
  const description = (readFileSync(join(scenariosDir, `${name}.yml`), 'utf8').match(/^#.*$/m)?.[0] ?? '')
    .replace(/^#\s*/, '')
    .split(':')[0];
  if (!report) return `### ${name}\n\nartillery wrote no report (exit code ${code}).`;
  const agg = report.aggregate;
  const c = agg.counters ?? {};
  const rt = agg.summaries?.['http.response_time'] ?? {};
  const seconds = Math.max(1, (agg.lastMetricAt - agg.firstMetricAt) / 1000);
  const responses = c['http.responses'] ?? 0;
  const byClass = (lo, hi) =>
    Object.entries(c)
      .filter(([k]) => k.startsWith('http.codes.'))
      .reduce((sum, [k, v]) => {
        const status = Number(k.slice(11));
        return status >= lo && status < hi ? sum + v : sum;
      }, 0);
  const errors = Object.entries(c)
    .filter(([k]) => k.startsWith('errors.'))
    .map(([k, v]) => `${k.slice(7)} ${v}`);
  const checks = artilleryText
    .replace(ANSI_COLOUR, '')
    .split('\n')
    .filter((l) => /^(ok|fail): /.test(l.trim()))
    .map((l) => l.trim());
  const requestsCount = responses || 1;
  const demoCpu =
    before.demoCpu !== undefined && after.demoCpu !== undefined ? after.demoCpu - before.demoCpu : undefined;
  const redisCpu = after.redis.cpu - before.redis.cpu;
  const redisCalls = after.redis.calls - before.redis.calls;
  const lines = [];
  lines.push(`### ${name}: ${description}`);
  lines.push('');
  lines.push(
    `${new Date(agg.firstMetricAt).toISOString().slice(0, 16).replace('T', ' ')} UTC, ${fmt(seconds)} s, ` +
      `load average ${fmt(before.load, 2)} → ${fmt(after.load, 2)} on ${cpus().length} cores; ` +
      `ensure: ${code === 0 ? 'passed' : `FAILED (exit ${code})`}`,
  );
  lines.push('');
  lines.push('| requests | throughput | p50 | p95 | p99 | max | 2xx | 4xx (429) | 5xx | errors |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  lines.push(
    `| ${fmt(responses)} | ${fmt(responses / seconds, 1)} req/s | ${fmt(rt.p50 ?? rt.median, 1)} ms | ${fmt(rt.p95, 1)} ms | ` +
      `${fmt(rt.p99, 1)} ms | ${fmt(rt.max, 1)} ms | ${fmt(byClass(200, 300))} | ${fmt(byClass(400, 500))} ` +
      `(${fmt(c['http.codes.429'] ?? 0)}) | ${fmt(byClass(500, 600))} | ${errors.length ? errors.join(', ') : 0} |`,
  );
  lines.push('');
  const cost = [];
  if (demoCpu !== undefined) cost.push(`demo CPU ${fmt((1000 * demoCpu) / requestsCount, 2)} ms/request`);
  if (before.artilleryCpu !== undefined)
    cost.push(`artillery CPU ${fmt((1000 * before.artilleryCpu) / requestsCount, 2)} ms/request`);
  cost.push(`Redis CPU ${fmt((1000 * redisCpu) / requestsCount, 3)} ms/request`);
  cost.push(`${fmt(redisCalls / requestsCount, 1)} Redis commands/request (those run inside scripts included)`);
  lines.push(`- cost: ${cost.join(', ')}`);
  const top = Object.entries(after.redis.commands)
    .map(([command, n]) => [command, n - (before.redis.commands[command] ?? 0)])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([command, n]) => `${command} ${fmt(n / requestsCount, 2)}`);
  if (top.length) lines.push(`- Redis commands per request, most frequent: ${top.join(', ')}`);
  const server = serverPercentiles(before, after);
  if (server) lines.push(`- time inside the demo (kit metrics histogram, bucket bounds): ${server}`);
  for (const line of scenarioLines(name, script, c, agg, report, before, after)) lines.push(`- ${line}`);
  const routes = Object.entries(agg.summaries ?? {})
    .filter(([k]) => k.startsWith('route.'))
    .sort((a, b) => (b[1].count ?? 0) - (a[1].count ?? 0))
    .map(([k, h]) => `${k.slice(6)} ${fmt(h.count)} × ${fmt(h.p50 ?? h.median, 1)}/${fmt(h.p95, 1)}`);
  if (routes.length > 1) lines.push(`- per route (count × p50/p95 ms): ${routes.join('; ')}`);
  if (checks.length) lines.push(`- checks: ${checks.map((l) => `\`${l}\``).join(', ')}`);
  return lines.join('\n');
}

function scenarioLines(name, script, c, agg, report, before, after) {
  const out = [];
  const v = script.config?.variables ?? {};
  const get = (k) => c[k] ?? 0;
  if (get('cache.measured.hit') + get('cache.measured.miss') + get('cache.warm.hit') + get('cache.warm.miss') > 0) {
    const measured = get('cache.measured.hit') + get('cache.measured.miss') + get('cache.measured.other');
    const warm = get('cache.warm.hit') + get('cache.warm.miss') + get('cache.warm.other');
    const measuredSeconds = measuredPhaseSeconds(script, agg);
    const rate = measuredSeconds ? measured / measuredSeconds : undefined;
    const model =
      rate && v.ttlSeconds
        ? expectedTtlHitRatio(
            Number(v.demoCatalogueSize ?? 1000),
            Number(v.zipfExponent ?? 1),
            rate,
            Number(v.ttlSeconds),
          )
        : undefined;
    const other = Object.entries(c)
      .filter(([k]) => k.startsWith('cache.measured.') && !/\.(hit|miss|other)$/.test(k))
      .map(([k, n]) => `${k.slice(15)} ${n}`);
    out.push(
      `cache hit ratio (Cache-Status): **${pct(get('cache.measured.hit'), measured)} in steady state** ` +
        `(${fmt(measured)} catalogue reads after the ${fmt(v.warmSeconds)} s warm-up${other.length ? `; not hit or miss: ${other.join(', ')}` : ''}), ` +
        `${pct(get('cache.warm.hit'), warm)} during the warm-up` +
        (model !== undefined
          ? `; a TTL cache under this Zipf load (${fmt(rate, 0)} reads/s over ${fmt(Number(v.demoCatalogueSize ?? 1000))} ids, s = ${v.zipfExponent ?? 1}, ttl ${v.ttlSeconds} s) is expected to reach ${fmt(100 * model, 1)} %`
          : ''),
    );
    const hits = metricDelta(before, after, 'rediskit_cache_requests_total', { result: 'hit' });
    if (hits !== undefined) out.push(`kit metrics: ${fmt(hits)} cache hits counted by the demo's /metrics`);
  }
  if (name === 'rate-limit') {
    const responses = get('http.responses');
    out.push(
      `429 share: **${pct(get('responses.429'), responses)}** (expected 33.3 %: ${v.demoApiLimit ?? '?'} of each client's 30 requests allowed per minute), ` +
        `${fmt(get('ratelimit.missing_headers'))} API answers without RateLimit headers, ` +
        `${fmt(get('ratelimit.missing_retry_after'))} 429s without Retry-After`,
    );
  }
  if (get('sessions.ok') + get('sessions.mismatch') > 0) {
    out.push(
      `sessions: ${fmt(get('sessions.ok'))} reads of /me saw the session they logged into, ${fmt(get('sessions.mismatch'))} did not; ` +
        `${fmt(get('sessions.listed'))} session lists contained it, ${fmt(get('sessions.unlisted'))} did not`,
    );
  }
  if (get('locks.reports_generated') + get('locks.reports_served_stored') > 0) {
    out.push(
      `locks: ${fmt(get('locks.reports_generated'))} generations, ${fmt(get('locks.reports_served_stored'))} answers ` +
        `from the report another request generated, ${fmt(get('locks.duplicate_runs'))} duplicate runs; fenced writes: ` +
        `${fmt(get('locks.writes_accepted'))} accepted, ${fmt(get('locks.writes_fenced_off'))} refused as stale (409), ` +
        `${fmt(get('locks.fencing_violations'))} violations`,
    );
  }
  const llm = Object.entries(c).filter(([k]) => k.startsWith('llm.measured.'));
  if (llm.length > 0) {
    const ratio = (wording) => {
      const hit = get(`llm.measured.${wording}.hit`);
      const all = llm.filter(([k]) => k.startsWith(`llm.measured.${wording}.`)).reduce((s, [, n]) => s + n, 0);
      return `${pct(hit, all)} of ${fmt(all)}`;
    };
    out.push(
      `semantic cache hits after the warm-up: original wording ${ratio('origin')}, paraphrases ${ratio('paraphrase')}; ` +
        `${fmt(get('llm.wrong_answer'))} hits answered with another question's answer`,
    );
  }
  void report;
  return out;
}

/**
 * The demo's own view of request time: the kit's rediskit_http_request_duration_seconds histogram (all routes),
 * as the upper bounds of the buckets holding the 50th and 95th percentiles of this run's requests. Far below
 * artillery's figures means the time went to waiting for a CPU (the machine) rather than to the request's work.
 */
function serverPercentiles(before, after) {
  const buckets = (text) => {
    const out = new Map();
    for (const line of (text ?? '').split('\n')) {
      const m = /^rediskit_http_request_duration_seconds_bucket\{(.*)\}\s+(\S+)/.exec(line);
      if (!m) continue;
      const le = /le="([^"]+)"/.exec(m[1])?.[1];
      if (le === undefined) continue;
      out.set(le, (out.get(le) ?? 0) + Number(m[2]));
    }
    return out;
  };
  const a = buckets(after.metrics);
  const b = buckets(before.metrics);
  const rows = [...a.entries()]
    .map(([le, n]) => [le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), n - (b.get(le) ?? 0)])
    .sort((x, y) => x[0] - y[0]);
  const total = rows.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const at = (q) => rows.find(([, n]) => n >= q * total)?.[0];
  const ms = (s) => (s === Number.POSITIVE_INFINITY ? 'over 5,000 ms' : `≤ ${fmt(s * 1000, s < 0.001 ? 1 : 0)} ms`);
  return `p50 ${ms(at(0.5))}, p95 ${ms(at(0.95))} over ${fmt(total)} requests`;
}

function metricDelta(before, after, name, labels) {
  if (!after.metrics) return undefined;
  const a = metricSum(after.metrics, name, labels);
  const b = metricSum(before.metrics ?? '', name, labels);
  return a - b > 0 ? a - b : undefined;
}

/** How long the measured phase lasted: the run's real span (a loaded machine stretches it) less the warm-up. */
function measuredPhaseSeconds(script, agg) {
  const warm = Number(script.config?.variables?.warmSeconds ?? 0);
  const planned = (script.config?.phases ?? []).reduce((s, p) => s + Number(p.duration ?? 0), 0);
  const span = agg?.lastMetricAt && agg?.firstMetricAt ? (agg.lastMetricAt - agg.firstMetricAt) / 1000 : planned;
  return Math.max(span, planned) - warm;
}

function recordSummary(name, summary) {
  const doc = readFileSync(performanceDoc, 'utf8');
  const start = `<!-- load:${name}:start -->`;
  const end = `<!-- load:${name}:end -->`;
  const block = `${start}\n${summary}\n${end}`;
  let next;
  if (doc.includes(start) && doc.includes(end)) {
    next = doc.slice(0, doc.indexOf(start)) + block + doc.slice(doc.indexOf(end) + end.length);
  } else if (doc.includes('<!-- load:end -->')) {
    const at = doc.indexOf('<!-- load:end -->');
    next = `${doc.slice(0, at)}${block}\n\n${doc.slice(at)}`;
  } else {
    console.error('docs/performance.md has no <!-- load:start --> ... <!-- load:end --> section; not recorded');
    return;
  }
  writeFileSync(performanceDoc, next);
  console.log(`recorded in ${relative(root, performanceDoc)}`);
}

// ---------------------------------------------------------------------------------------------------------------

const bin = ensureArtillery();
let exitCode = 0;
for (const name of selected) {
  try {
    const code = await runScenario(bin, name);
    if (code !== 0) exitCode = code;
  } catch (error) {
    console.error(`${name}: ${error.message}`);
    exitCode = 1;
  }
}
process.exit(exitCode);
