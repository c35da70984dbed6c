// Deciding, once, which store a kit talks to: explicit options first, then the environment, then the embedded
// store. Configuration mistakes are reported here, at start-up, naming the option or variable to fix.

import { ConfigError } from '../core/errors.js';
import { isIORedisLike, type IORedisLike } from './ioredis.js';
import { isUpstashLike, type UpstashLike } from './upstash.js';

export interface HostPort {
  host: string;
  port: number;
}

export type StoreSpec =
  | { kind: 'memory'; reason: 'explicit' | 'default' }
  | { kind: 'redis-url'; url: string; source: string }
  | { kind: 'redis-instance'; instance: IORedisLike; cluster: boolean }
  | { kind: 'cluster-nodes'; nodes: HostPort[]; password?: string; username?: string; tls: boolean; source: string }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; password?: string }
  | { kind: 'upstash-config'; url: string; token: string; source: string }
  | { kind: 'upstash-instance'; instance: UpstashLike };

export interface ConnectionOptions {
  redis?: unknown;
  cluster?: unknown;
  sentinel?: unknown;
  upstash?: unknown;
  store?: unknown;
}

type Env = Record<string, string | undefined>;

/** Checks a redis:// or rediss:// URL; `what` names the option or variable in the error. */
export function validateRedisUrl(url: string, what: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      `${what} is not a valid URL (${redact(url)}); expected redis://[user:password@]host:port[/db] or rediss://… for TLS`,
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(
      `${what} must start with redis:// or rediss:// (got ${parsed.protocol}//); for Upstash's REST URL (https://…) use UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN`,
    );
  }
  if (!parsed.hostname) throw new ConfigError(`${what} has no host (${redact(url)}); expected redis://host:port`);
  if (parsed.port && !(Number(parsed.port) > 0 && Number(parsed.port) < 65536)) {
    throw new ConfigError(`${what} has an invalid port (${redact(url)})`);
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db && !/^(\d|1[0-5])$/.test(db)) throw new ConfigError(`${what}: the database number must be 0-15 (got '${db}')`);
  return url;
}

/** Hides the password part of a URL, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

function validateHttpsUrl(url: string, what: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${what} is not a valid URL (${JSON.stringify(url)}); expected https://<name>.upstash.io`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError(
      `${what} must be the REST URL (https://…), got ${parsed.protocol}//; a redis:// URL belongs in REDIS_URL`,
    );
  }
  return url.replace(/\/$/, '');
}

function parseHostPort(value: unknown, what: string): HostPort {
  if (typeof value === 'string') {
    const text = value.replace(/^rediss?:\/\//, '').replace(/^[^@]*@/, '');
    const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
    if (!match) throw new ConfigError(`${what}: expected host:port, got ${JSON.stringify(value)}`);
    return { host: match[1] as string, port: Number(match[2]) };
  }
  if (value && typeof value === 'object') {
    const { host, port } = value as { host?: unknown; port?: unknown };
    if (typeof host === 'string' && host && typeof port === 'number' && port > 0 && port < 65536) return { host, port };
  }
  throw new ConfigError(`${what}: expected 'host:port' or { host, port }, got ${JSON.stringify(value)}`);
}

function clusterFromList(list: unknown, source: string): StoreSpec {
  const items =
    typeof list === 'string'
      ? list
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : list;
  if (!Array.isArray(items) || items.length === 0) {
    throw new ConfigError(`${source}: expected a non-empty list of cluster nodes ('host:port' or { host, port })`);
  }
  const first = typeof items[0] === 'string' ? (items[0] as string) : '';
  let password: string | undefined;
  let username: string | undefined;
  if (first.includes('@')) {
    const url = new URL(first.includes('://') ? first : `redis://${first}`);
    password = decodeURIComponent(url.password) || undefined;
    username = decodeURIComponent(url.username) || undefined;
  }
  return {
    kind: 'cluster-nodes',
    nodes: items.map((item, i) => parseHostPort(item, `${source}[${i}]`)),
    password,
    username,
    tls: first.startsWith('rediss://'),
    source,
  };
}

function upstashFromEnv(env: Env): StoreSpec | undefined {
  const pairs: Array<[string, string]> = [
    ['UPSTASH_REDIS_REST_URL', 'UPSTASH_REDIS_REST_TOKEN'],
    ['UPSTASH_REDIS_URL', 'UPSTASH_REDIS_TOKEN'],
  ];
  for (const [urlName, tokenName] of pairs) {
    const url = env[urlName];
    const token = env[tokenName];
    if (!url && !token) continue;
    if (!url) throw new ConfigError(`${tokenName} is set but ${urlName} is not: set both (the REST URL and its token)`);
    if (!token)
      throw new ConfigError(`${urlName} is set but ${tokenName} is not: set both (the REST URL and its token)`);
    return { kind: 'upstash-config', url: validateHttpsUrl(url, urlName), token, source: `${urlName}/${tokenName}` };
  }
  return undefined;
}

export function resolveStore(options: ConnectionOptions, env: Env): StoreSpec {
  const given = (['redis', 'cluster', 'sentinel', 'upstash'] as const).filter((k) => options[k] !== undefined);
  if (options.store !== undefined && options.store !== 'memory') {
    throw new ConfigError(
      `store: the only value is 'memory' (to force the embedded store), got ${JSON.stringify(options.store)}`,
    );
  }
  if (given.length > 1) {
    throw new ConfigError(`give one of redis, cluster, sentinel or upstash, not ${given.join(' and ')}`);
  }
  if (options.store === 'memory') {
    if (given.length) throw new ConfigError(`store: 'memory' cannot be combined with ${given[0]}`);
    return { kind: 'memory', reason: 'explicit' };
  }

  const { redis, cluster, sentinel, upstash } = options;
  if (redis !== undefined) {
    if (typeof redis === 'string')
      return { kind: 'redis-url', url: validateRedisUrl(redis, 'options.redis'), source: 'options.redis' };
    if (isIORedisLike(redis)) return { kind: 'redis-instance', instance: redis, cluster: redis.isCluster === true };
    if (isUpstashLike(redis)) return { kind: 'upstash-instance', instance: redis };
    throw new ConfigError(
      'options.redis: expected a redis:// URL, an ioredis instance (Redis or Cluster) or an @upstash/redis instance',
    );
  }
  if (cluster !== undefined) {
    if (isIORedisLike(cluster)) return { kind: 'redis-instance', instance: cluster, cluster: true };
    return clusterFromList(cluster, 'options.cluster');
  }
  if (sentinel !== undefined) {
    const s = sentinel as { sentinels?: unknown; name?: unknown; password?: unknown };
    if (!s || typeof s !== 'object' || !Array.isArray(s.sentinels) || typeof s.name !== 'string' || !s.name) {
      throw new ConfigError("options.sentinel: expected { sentinels: ['host:port', …], name: 'mymaster' }");
    }
    return {
      kind: 'sentinel',
      sentinels: s.sentinels.map((x, i) => parseHostPort(x, `options.sentinel.sentinels[${i}]`)),
      name: s.name,
      password: typeof s.password === 'string' ? s.password : undefined,
    };
  }
  if (upstash !== undefined) {
    if (isUpstashLike(upstash)) return { kind: 'upstash-instance', instance: upstash };
    const u = upstash as { url?: unknown; token?: unknown };
    if (!u || typeof u !== 'object')
      throw new ConfigError('options.upstash: expected { url, token } or an @upstash/redis instance');
    if (typeof u.url !== 'string' || !u.url)
      throw new ConfigError('options.upstash.url is missing: give the REST URL (https://…)');
    if (typeof u.token !== 'string' || !u.token)
      throw new ConfigError('options.upstash.token is missing: give the REST token');
    return {
      kind: 'upstash-config',
      url: validateHttpsUrl(u.url, 'options.upstash.url'),
      token: u.token,
      source: 'options.upstash',
    };
  }

  // Environment. A half-set Upstash pair is an error even when REDIS_URL is also set: it is certainly a mistake.
  const fromUpstash = upstashFromEnv(env);
  if (env.REDIS_CLUSTER_NODES) return clusterFromList(env.REDIS_CLUSTER_NODES, 'REDIS_CLUSTER_NODES');
  if (env.REDIS_URL)
    return { kind: 'redis-url', url: validateRedisUrl(env.REDIS_URL, 'REDIS_URL'), source: 'REDIS_URL' };
  if (fromUpstash) return fromUpstash;
  return { kind: 'memory', reason: 'default' };
}
