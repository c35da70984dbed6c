// What a benchmark suite is: a list of server set-ups measured A/B interleaved against each other, or a custom
// run (accuracy, lock handoffs...). A suite is one file under bench/suites/ exporting `suite`.

import type { Express } from 'express';
import type Redis from 'ioredis';

export interface BenchEnv {
  /** URL of the private redis-server the harness started for this run. */
  redisUrl: string;
}

/** What a set-up's `prepare` and `check` get, in the harness process, once its server listens. */
export interface SetupContext {
  /** `http://127.0.0.1:<port>` of the set-up's server. */
  base: string;
  redisUrl: string;
  /** An ioredis client on the run's Redis, for keyspace checks (do not flush: other set-ups share it). */
  redis: Redis;
  setup: Setup;
  port: number;
  /** Responses the load generator received from this set-up so far (warm-up included); final in `check`. */
  responses: number;
  /** How many more the server may have finished unseen (one per connection per load run: those cut at the end). */
  slack: number;
}

/** Outcome of a set-up's own check after the rounds. */
export interface CheckResult {
  /** Each one fails the run (the set-up did not do its job). */
  problems?: string[];
  /** Extra figures shown in the suite's table and stored in the JSON (e.g. creation latency). */
  figures?: Record<string, number>;
}

export interface Setup {
  /** Short id: `bare`, `kit-redis-1`, ... */
  name: string;
  /** What the table shows. */
  label: string;
  /** `bare` is the baseline every ratio is taken against; `peer` set-ups get a ratio column of their own. */
  role: 'bare' | 'ours' | 'peer';
  /** Builds the app in the child process. It must serve the suite's path; `verifyPath` when it can prove itself. */
  build(env: BenchEnv): Promise<Express> | Express;
  /** The route autocannon drives for this set-up. @default the suite's `path` */
  path?: string;
  /**
   * Runs in the harness once the server listens, before the warm-up: returns request headers every load run sends
   * (e.g. a session cookie obtained from a login route).
   */
  prepare?(ctx: SetupContext): Promise<Record<string, string>>;
  /**
   * A route whose limit is `verifyLimit`: the harness sends verifyLimit + 1 requests after the rounds and fails
   * the run unless exactly the last one is refused. It proves the limiter really counted in this run.
   */
  verifyPath?: string;
  verifyLimit?: number;
  /** Any other proof that the set-up did its job (a session really stored, a cache really hit), after the rounds. */
  check?(ctx: SetupContext): Promise<CheckResult>;
  /** Whether every request is expected to reach Redis (checked with INFO commandstats). */
  usesRedis: boolean;
  /**
   * What serves the app over HTTP: `'kit'`, the kit's createServer(app) (plugin/server.ts); `'listen'`,
   * app.listen(). A set-up that names one keeps it in --kit-server runs. --in-process runs have no server.
   * @default 'listen', or 'kit' in a --kit-server run
   */
  server?: 'listen' | 'kit';
}

export interface CustomContext {
  env: BenchEnv;
  flags: Flags;
  log(line: string): void;
}

/**
 * One line of the summary table at the top of docs/performance.md: a feature's figure next to its target. A
 * throughput suite declares `targets` and the harness computes these; a custom suite puts them in its result's
 * JSON as `summary` (the summary is rebuilt from the latest results JSON of every suite).
 */
export interface SummaryRow {
  /** What is measured, e.g. "Session, real Redis: GET /ping reading one field, vs bare Express". */
  feature: string;
  /** The target as the issue states it, e.g. "≥ 0.80 ×". */
  target: string;
  /** This run's figure, formatted, e.g. "0.84 × (0.79–0.88)". */
  figure: string;
  /** Whether the figure meets the target in this run; undefined when there is no numeric target. */
  holds?: boolean;
}

/** A target of a throughput suite, turned into a SummaryRow by the harness. */
export interface ThroughputTarget {
  feature: string;
  setup: string;
  /** Minimum ratio of the set-up's req/s to bare Express (median of per-round ratios). */
  minRatio?: number;
  /** No number to meet: the set-up's ratio to bare Express is shown with this text in the target column. */
  reported?: string;
  /** A figure from the set-up's `check` (e.g. `createP99Ms`) that must stay at or below `max`. */
  figure?: string;
  max?: number;
  unit?: string;
}

export interface Suite {
  name: string;
  /** One line for the docs. */
  description: string;
  /** The route autocannon drives. @default '/ping' */
  path?: string;
  setups?: Setup[];
  /** What a passed sanity check proves, for the docs. @default the rate limiters' verification */
  sanity?: string;
  /** A suite that is not a throughput A/B: returns a markdown section and JSON to store. */
  custom?: (ctx: CustomContext) => Promise<{ markdown: string; json: unknown; ok: boolean }>;
  /** Flags this suite runs with unless given on the command line (keeps `npm run bench` within its time budget). */
  defaults?: Partial<Omit<Flags, 'only'>>;
  /** Targets of a throughput suite, shown in the summary table. */
  targets?: ThroughputTarget[];
}

export interface Flags {
  rounds: number;
  duration: number;
  connections: number;
  /** Seconds of unmeasured load on every server once started (--warmup). Sustained runs only (lib/flags.ts). */
  warmup: number;
  /**
   * Seconds of unmeasured load on a set-up just before each of its timed runs (--settle; 0: none). A server that
   * sat idle while others were measured starts a run colder than one measured a moment ago. Sustained runs only:
   * the block modes refuse it (lib/flags.ts) and have --lead instead.
   */
  settle?: number;
  /** Names of the set-ups to run (all when absent). */
  only?: string[];
  /**
   * Paired mode: each set-up with a ratio target (or each named by `only`) runs `rounds` times right next to a copy
   * of bare Express of its own, and an A/A control (a further copy of bare Express) runs the same way (see
   * bench/run.ts).
   */
  paired?: boolean;
  /**
   * Paired mode: rounds after which every server is replaced by a fresh process (--generation; 0: never). The
   * intervals are then taken over the generations, so that a lasting difference between two processes of the same
   * code is inside them.
   */
  generation?: number;
  /** --in-process and --http-blocks: requests per block (--block; default 200). */
  block?: number;
  /**
   * --in-process and --http-blocks: unmeasured requests sent to a process right before each measured block, so that
   * the block meets warm caches as a server under steady load does (--lead; default 0).
   */
  lead?: number;
  /**
   * In-process mode (--in-process): each set-up's requests go through its app without the network, the set-ups
   * taking turns in blocks of milliseconds, and the implied requests/s ratio to bare Express is reported (see
   * lib/in-process-run.ts). `rounds` counts blocks per set-up, `generation` blocks per process generation.
   */
  inProcess?: boolean;
  /**
   * HTTP-blocks mode (--http-blocks): as --in-process, but each block's requests travel over real keep-alive
   * connections from a load generator pinned to the other CPU, and the server's CPU per request over HTTP is
   * compared directly (no k). Stored and shown as `<suite>-http-blocks`.
   */
  httpBlocks?: boolean;
  /**
   * --kit-server: every set-up's server, bare Express's too, is the kit's createServer(app) instead of app.listen()
   * (plugin/server.ts: requests and responses born with the app's prototypes). Runs over HTTP only; stored and
   * shown with `-kit-server` after the mode's name.
   */
  kitServer?: boolean;
}
