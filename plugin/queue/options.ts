// Options of kit.queue() and of each job, parsed once when the queue is created.

import { ConfigError } from '../core/errors.js';
import { type Duration, parseDuration } from '../core/duration.js';
import { assertKnownKeys, assertPlainObject, positiveInt } from '../core/options.js';
import { QueueInputError } from './errors.js';

/** How long to wait before the next attempt of a failed job. */
export interface BackoffOptions {
  /** `exponential`: delay × 2^(attempt−1); `fixed`: the same delay each time. @default 'exponential' */
  type?: 'exponential' | 'fixed';
  /** Base delay. @default '1 s' */
  delay?: Duration;
  /** Longest delay, whatever the attempt. @default '1 h' */
  maxDelay?: Duration;
  /**
   * Share of the delay that is random, from 0 (none) to 1: the wait is drawn from [delay × (1 − jitter), delay],
   * so retries of jobs that failed together spread out instead of hitting a recovering service at once.
   * @default 0.5
   */
  jitter?: number;
}

export interface JobOptions {
  /** Run the job no earlier than this long from now. @default 0 */
  delay?: Duration;
  /** Attempts in all, the first included; after the last one the job is dead-lettered. @default the queue's `attempts` */
  attempts?: number;
  /** Wait between attempts; a number is a fixed delay in ms. @default the queue's `backoff` */
  backoff?: BackoffOptions | Duration;
  /**
   * 0 (default) or 1 to 100000: jobs with priority 0 run first, in order of arrival; then prioritised jobs, the
   * lowest number first (1 before 2), in order of arrival within a priority.
   * @default 0
   */
  priority?: number;
  /**
   * Your own id: adding a job whose id already exists does nothing and returns the existing one, so a retried
   * request cannot enqueue twice (as long as the first job is still kept: see `keepCompleted`). 1-128 characters
   * from A-Z a-z 0-9 _ . : @ = + -, not all digits (those are the queue's own ids).
   */
  jobId?: string;
}

export interface RetentionOptions {
  /** Delete finished jobs older than this. `0` keeps them whatever their age. */
  age?: Duration;
  /** Keep at most this many (the newest); `0` deletes them at once; `-1` has no count limit. */
  count?: number;
}

export interface QueueOptions {
  /** Attempts in all for jobs that do not say. @default 1 */
  attempts?: number;
  /** Wait between attempts for jobs that do not say. @default { type: 'exponential', delay: '1 s', maxDelay: '1 h', jitter: 0.5 } */
  backoff?: BackoffOptions | Duration;
  /**
   * How long a worker holds a job before others may take it over. A running job's lease is renewed every third of
   * this, so it only runs out when the worker died or its event loop is blocked that long.
   * @default '30 s'
   */
  lease?: Duration;
  /** Stalls (lease run out) a job survives; one more and it is dead-lettered, so a job that crashes workers stops. @default 2 */
  maxStalls?: number;
  /** Completed jobs kept for getJob() and idempotent ids. @default { age: '1 h', count: 1000 } */
  keepCompleted?: RetentionOptions;
  /** Dead-lettered jobs kept for inspection and retry. @default { age: '7 d', count: 10000 } */
  keepDead?: RetentionOptions;
  /**
   * Longest an idle worker waits between two looks at the queue. With push wake-ups (TCP Redis, memory) this is
   * only a safety net; on Upstash REST the wait starts at 20 ms after work and doubles up to this.
   * @default '5 s'
   */
  idlePoll?: Duration;
  /** Largest job data (JSON) accepted, in bytes. @default 524288 */
  maxDataBytes?: number;
  /** How long close() waits, by default, for running jobs. @default '10 s' */
  closeTimeout?: Duration;
}

export interface BackoffConfig {
  exponential: boolean;
  delayMs: number;
  maxDelayMs: number;
  jitter: number;
}

export interface QueueConfig {
  attempts: number;
  backoff: BackoffConfig;
  /** The backoff in the compact form stored with each job. */
  backoffText: string;
  leaseMs: number;
  maxStalls: number;
  keepCompleted: { ageMs: number; count: number };
  keepDead: { ageMs: number; count: number };
  idlePollMs: number;
  maxDataBytes: number;
  closeTimeoutMs: number;
}

const QUEUE_OPTIONS = [
  'attempts',
  'backoff',
  'lease',
  'maxStalls',
  'keepCompleted',
  'keepDead',
  'idlePoll',
  'maxDataBytes',
  'closeTimeout',
] as const;
const JOB_OPTIONS = ['delay', 'attempts', 'backoff', 'priority', 'jobId'] as const;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const JOB_ID = /^[A-Za-z0-9_.:@=+-]{1,128}$/;
export const MAX_PRIORITY = 100_000;
const MAX_ATTEMPTS = 1000;

export function validateName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ConfigError(
      `kit.queue(name): ${JSON.stringify(name)} is not a valid queue name; use 1-64 characters from A-Z a-z 0-9 _ . -`,
    );
  }
  return name;
}

export function parseBackoff(value: BackoffOptions | Duration, what: string, fail = configFail): BackoffConfig {
  if (typeof value === 'number' || typeof value === 'string') {
    return { exponential: false, delayMs: duration(value, what, fail, true), maxDelayMs: 3_600_000, jitter: 0 };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(`${what}: expected an object or a duration`);
  try {
    assertKnownKeys(value, ['type', 'delay', 'maxDelay', 'jitter'], what);
  } catch (error) {
    fail((error as Error).message);
  }
  const type = value.type ?? 'exponential';
  if (type !== 'exponential' && type !== 'fixed') fail(`${what}.type: expected 'exponential' or 'fixed'`);
  const jitter = value.jitter ?? 0.5;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1))
    fail(`${what}.jitter: expected a number from 0 to 1`);
  return {
    exponential: type === 'exponential',
    delayMs: duration(value.delay ?? '1 s', `${what}.delay`, fail, true),
    maxDelayMs: duration(value.maxDelay ?? '1 h', `${what}.maxDelay`, fail, false),
    jitter,
  };
}

function configFail(message: string): never {
  throw new ConfigError(message);
}

function inputFail(message: string): never {
  throw new QueueInputError(message);
}

function duration(value: Duration, what: string, fail: (m: string) => never, allowZero: boolean): number {
  try {
    return parseDuration(value, what, { allowZero });
  } catch (error) {
    return fail((error as Error).message);
  }
}

export function backoffText(b: BackoffConfig): string {
  return `${b.exponential ? 'e' : 'f'},${b.delayMs},${b.maxDelayMs},${b.jitter}`;
}

const backoffCache = new Map<string, BackoffConfig>();

/** Reads the compact backoff stored with a job (cached: a queue has few distinct ones). */
export function readBackoff(text: string, fallback: BackoffConfig): BackoffConfig {
  let b = backoffCache.get(text);
  if (!b) {
    const [type, delay, max, jitter] = text.split(',');
    if (type === undefined || delay === undefined || max === undefined || jitter === undefined) return fallback;
    b = { exponential: type === 'e', delayMs: Number(delay), maxDelayMs: Number(max), jitter: Number(jitter) };
    if (backoffCache.size > 1000) backoffCache.clear();
    backoffCache.set(text, b);
  }
  return b;
}

/** The wait before attempt `attempt + 1`, after attempt number `attempt` (1-based) failed. */
export function backoffDelay(b: BackoffConfig, attempt: number, random: () => number = Math.random): number {
  const base = b.exponential ? b.delayMs * 2 ** Math.max(0, attempt - 1) : b.delayMs;
  const capped = Math.min(base, b.maxDelayMs);
  return Math.round(capped * (1 - b.jitter * random()));
}

function retention(value: RetentionOptions | undefined, fallback: { age: Duration; count: number }, what: string) {
  const v = value ?? {};
  assertPlainObject(v, what);
  assertKnownKeys(v, ['age', 'count'], what);
  const count = v.count ?? fallback.count;
  if (!Number.isInteger(count) || count < -1) {
    throw new ConfigError(`${what}.count: expected a whole number, 0 or more (or -1 for no limit), got ${count}`);
  }
  return { ageMs: parseDuration(v.age ?? fallback.age, `${what}.age`, { allowZero: true }), count };
}

export function parseQueueOptions(options: QueueOptions = {}): QueueConfig {
  assertPlainObject(options, 'kit.queue');
  assertKnownKeys(options, QUEUE_OPTIONS, 'kit.queue');
  const backoff = parseBackoff(options.backoff ?? {}, 'kit.queue: backoff');
  const maxStalls = options.maxStalls ?? 2;
  if (!Number.isInteger(maxStalls) || maxStalls < 0 || maxStalls > 1000) {
    throw new ConfigError(`kit.queue: maxStalls: expected a whole number from 0 to 1000, got ${maxStalls}`);
  }
  return {
    attempts: positiveInt(options.attempts ?? 1, 'kit.queue: attempts', MAX_ATTEMPTS),
    backoff,
    backoffText: backoffText(backoff),
    leaseMs: parseDuration(options.lease ?? '30 s', 'kit.queue: lease'),
    maxStalls,
    keepCompleted: retention(options.keepCompleted, { age: '1 h', count: 1000 }, 'kit.queue: keepCompleted'),
    keepDead: retention(options.keepDead, { age: '7 d', count: 10_000 }, 'kit.queue: keepDead'),
    idlePollMs: parseDuration(options.idlePoll ?? '5 s', 'kit.queue: idlePoll'),
    maxDataBytes: positiveInt(options.maxDataBytes ?? 524_288, 'kit.queue: maxDataBytes'),
    closeTimeoutMs: parseDuration(options.closeTimeout ?? '10 s', 'kit.queue: closeTimeout', { allowZero: true }),
  };
}

/** A job ready for the store: every field as the scripts want it. */
export interface NewJob {
  id: string;
  data: string;
  delayMs: number;
  priority: number;
  attempts: number;
  backoff: string;
}

/** Checks one job's data and options; throws QueueInputError (400) on anything wrong. */
export function prepareJob(config: QueueConfig, data: unknown, options: JobOptions | undefined): NewJob {
  let json: string | undefined;
  try {
    json = JSON.stringify(data === undefined ? null : data);
  } catch (error) {
    inputFail(`job data cannot be serialised as JSON: ${(error as Error).message}`);
  }
  if (json === undefined) inputFail('job data cannot be serialised as JSON');
  if (json.length > config.maxDataBytes && Buffer.byteLength(json) > config.maxDataBytes) {
    inputFail(`job data is ${Buffer.byteLength(json)} bytes of JSON, more than maxDataBytes (${config.maxDataBytes})`);
  }
  if (options === undefined) {
    return { id: '', data: json, delayMs: 0, priority: 0, attempts: config.attempts, backoff: config.backoffText };
  }
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    inputFail('job options: expected an object');
  for (const key of Object.keys(options)) {
    if (!(JOB_OPTIONS as readonly string[]).includes(key)) {
      try {
        assertKnownKeys(options, JOB_OPTIONS, 'job options');
      } catch (error) {
        inputFail((error as Error).message);
      }
    }
  }
  const { jobId, priority = 0, attempts = config.attempts } = options;
  if (jobId !== undefined && (typeof jobId !== 'string' || !JOB_ID.test(jobId) || /^\d+$/.test(jobId))) {
    inputFail(
      `jobId: ${JSON.stringify(jobId).slice(0, 80)} is not allowed; use 1-128 characters from A-Z a-z 0-9 _ . : @ = + - (not all digits)`,
    );
  }
  if (!Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
    inputFail(`priority: expected a whole number from 0 to ${MAX_PRIORITY}, got ${JSON.stringify(priority)}`);
  }
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > MAX_ATTEMPTS) {
    inputFail(`attempts: expected a whole number from 1 to ${MAX_ATTEMPTS}, got ${JSON.stringify(attempts)}`);
  }
  const delayMs = options.delay === undefined ? 0 : duration(options.delay, 'delay', inputFail, true);
  return {
    id: jobId ?? '',
    data: json,
    delayMs,
    priority,
    attempts,
    backoff:
      options.backoff === undefined
        ? config.backoffText
        : backoffText(parseBackoff(options.backoff, 'backoff', inputFail)),
  };
}
