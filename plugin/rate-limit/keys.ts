// Who a request is counted against: its client IP (IPv6 grouped by prefix), its user, API key, workspace, or a
// function. Everything returned here is a bounded string; the key scheme hashes whatever is not short and safe.

import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Request } from 'express';
import { ConfigError } from '../core/errors.js';
import type { KitLogger } from '../core/logger.js';
import type { KeyBy } from './options.js';

// Longest raw string kept as it is; longer ones are hashed, so two long keys that share a prefix stay apart.
const MAX_RAW = 256;

function bound(value: string): string {
  return value.length <= MAX_RAW ? value : `#${createHash('sha256').update(value).digest('base64url')}`;
}

/** Expands an IPv6 address to eight 16-bit groups, or undefined when it cannot be read. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // Embedded IPv4 (::ffff:1.2.3.4): rewrite the dotted quad as two hex groups.
    const [a = 0, b = 0, c = 0, d = 0] = last.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const head = parse(halves[0] as string);
  const groups =
    halves.length === 1
      ? head
      : [
          ...head,
          ...new Array(Math.max(0, 8 - head.length - parse(halves[1] as string).length)).fill(0),
          ...parse(halves[1] as string),
        ];
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
  return groups;
}

/** The client's address as a counting key: IPv4 as is, IPv6 cut to its `/subnet` prefix. */
export function ipKey(ip: string, subnet: number): string {
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return bound(ip);
  const groups = ipv6Groups(ip);
  if (!groups) return bound(ip);
  // An IPv4-mapped address is an IPv4 client.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const a = groups[6] as number;
    const b = groups[7] as number;
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  let bits = subnet;
  const masked = groups.map((g) => {
    const take = Math.max(0, Math.min(16, bits));
    bits -= 16;
    return take === 0 ? 0 : take === 16 ? g : g & (0xffff << (16 - take)) & 0xffff;
  });
  return `${masked.map((g) => g.toString(16)).join(':')}/${subnet}`;
}

const IP_KEYS_MAX = 4096;
/**
 * Requests keyed by IP between two reads of the app's 'trust proxy' setting while they keep coming from the same
 * request prototype (one per Express app; a mounted sub-app has its own). Reading it, and looking for
 * X-Forwarded-For, are a few property loads each on a request object V8 cannot cache (core/prototypes.ts): done on
 * every request, they were most of this function's time (in-process profile of a saturated server: the function
 * took 0.81 % of its CPU before, 0.19 % after).
 */
const RECHECK_EVERY = 256;
/** Requests of which every one is looked at for X-Forwarded-For; after them, one in XFF_SAMPLE_EVERY, until warned. */
const XFF_ALL_FIRST = 256;
const XFF_SAMPLE_EVERY = 16;

export type KeyFn = (req: Request) => string;

export function buildKeyFn(keyBy: KeyBy, subnet: number, logger: KitLogger): KeyFn {
  let warnedProxy = false;
  // Address -> key of recent clients: a returning client skips the address checks and a new string per request.
  const ipKeys = new Map<string, string>();
  // The 'trust proxy' setting of the app of the last request prototype seen, read again every RECHECK_EVERY
  // requests: an app.set('trust proxy', ...) made while the app serves takes effect within that many requests.
  let trustProto: object | null | undefined;
  let trusted = false;
  let seen = 0;
  const trustProxy = (req: Request): boolean => {
    const proto = Object.getPrototypeOf(req) as object | null;
    if (proto !== trustProto || seen % RECHECK_EVERY === 0) {
      trustProto = proto;
      trusted = Boolean(req.app?.settings?.['trust proxy']);
    }
    return trusted;
  };
  const byIp = (req: Request): string => {
    seen++;
    // A proxy adds the header to every request it passes on: looking at a sample of them finds it as surely.
    if (
      !warnedProxy &&
      (seen <= XFF_ALL_FIRST || seen % XFF_SAMPLE_EVERY === 0) &&
      req.headers['x-forwarded-for'] !== undefined
    ) {
      // The cached setting may predate an app.set('trust proxy') made since: the warning, given once and for good,
      // is confirmed against the setting as it is now.
      if (!trustProxy(req) && !req.app?.settings?.['trust proxy']) {
        warnedProxy = true;
        logger.warnOnce(
          'ERR_KIT_TRUST_PROXY',
          "a request came with X-Forwarded-For but Express 'trust proxy' is off: every client behind the proxy " +
            "shares the proxy's address. Set app.set('trust proxy', 1) (or the number of proxies) if there is one.",
        );
      }
    }
    // Without 'trust proxy' req.ip is the socket's address: read it directly and skip the forwarded-header parse.
    const ip = (trustProxy(req) ? req.ip : req.socket?.remoteAddress) ?? '';
    let key = ipKeys.get(ip);
    if (key === undefined) {
      key = `ip:${ipKey(ip, subnet)}`;
      // Bounded in entries (cleared when full, refilled by the next requests: cheaper than LRU bookkeeping) and
      // in size: only what can be an address is kept (a forwarded header can carry anything).
      if (ip.length <= 64) {
        if (ipKeys.size >= IP_KEYS_MAX) ipKeys.clear();
        ipKeys.set(ip, key);
      }
    }
    return key;
  };
  const header = (req: Request, name: string): string | undefined => {
    const value = req.headers[name];
    const v = Array.isArray(value) ? value[0] : value;
    return v ? bound(v) : undefined;
  };
  const idOf = (value: unknown): string | undefined => {
    if (typeof value === 'string' && value !== '') return bound(value);
    if (typeof value === 'number' && Number.isFinite(value)) return String(value);
    return undefined;
  };
  switch (keyBy) {
    case 'ip':
      return byIp;
    case 'user':
      return (req) => {
        const id = idOf((req as { user?: { id?: unknown } }).user?.id);
        return id === undefined ? byIp(req) : `user:${id}`;
      };
    case 'apiKey':
      return (req) => {
        const id = header(req, 'x-api-key');
        return id === undefined ? byIp(req) : `key:${id}`;
      };
    case 'workspace':
      return (req) => {
        const id = idOf((req as { workspace?: { id?: unknown } }).workspace?.id) ?? header(req, 'x-workspace-id');
        return id === undefined ? byIp(req) : `ws:${id}`;
      };
    default:
      if (typeof keyBy !== 'function') {
        throw new ConfigError(
          `keyBy: expected 'ip', 'user', 'apiKey', 'workspace' or a function, got ${JSON.stringify(keyBy)}`,
        );
      }
      return (req) => {
        const id = idOf(keyBy(req));
        if (id !== undefined) return `fn:${id}`;
        logger.warnOnce('ERR_KIT_RATE_LIMIT_KEY', 'keyBy returned no usable key: counting that request by IP');
        return byIp(req);
      };
  }
}
