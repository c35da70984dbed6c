// What a benchmark suite is: a list of server set-ups measured A/B interleaved against each other, or a custom
// run (accuracy, lock handoffs...). A suite is one file under bench/suites/ exporting `suite`.

import type { Express } from 'express';

export interface BenchEnv {
  /** URL of the private redis-server the harness started for this run. */
  redisUrl: string;
}

export interface Setup {
  /** Short id: `bare`, `kit-redis-1`, ... */
  name: string;
  /** What the table shows. */
  label: string;
  /** `bare` is the baseline every ratio is taken against; `peer` set-ups get a ratio column of their own. */
  role: 'bare' | 'ours' | 'peer';
  /** Builds the app in the child process. It must serve GET /ping; `verifyPath` when the set-up can prove itself. */
  build(env: BenchEnv): Promise<Express> | Express;
  /**
   * A route whose limit is `verifyLimit`: the harness sends verifyLimit + 1 requests after the rounds and fails
   * the run unless exactly the last one is refused. It proves the limiter really counted in this run.
   */
  verifyPath?: string;
  verifyLimit?: number;
  /** Whether every request is expected to reach Redis (checked with INFO commandstats). */
  usesRedis: boolean;
  /**
   * Runs in the harness after the rounds: proves the set-up really did its work in this run (e.g. counted every
   * response). Returns a problem, or undefined when all is well.
   */
  check?(ctx: CheckContext): Promise<string | undefined>;
}

export interface CheckContext {
  setup: Setup;
  port: number;
  /** Responses the load generator received from this set-up over the whole run, warm-up included. */
  responses: number;
  /** How many more the server may have finished unseen (one per connection per load run: those cut at the end). */
  slack: number;
}

export interface CustomContext {
  env: BenchEnv;
  flags: Flags;
  log(line: string): void;
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
}

export interface Flags {
  rounds: number;
  duration: number;
  connections: number;
  warmup: number;
  /** Names of the set-ups to run (all when absent). */
  only?: string[];
}
