// The response fields: IETF RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers-10/11, structured
// field lists with one item per policy), legacy X-RateLimit-*, Retry-After. Everything constant is built once.

import type { Response } from 'express';
import type { CompiledPolicy } from './algorithms.js';
import type { RateLimitResult } from './limiter.js';

const seconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));

/** `"name";q=100;w=60, ...`: the policies as the draft writes them (w in whole seconds, at least 1). */
export function policyHeader(policies: readonly CompiledPolicy[]): string {
  return policies.map((p) => `"${p.name}";q=${p.limit};w=${Math.max(1, Math.round(p.windowMs / 1000))}`).join(', ');
}

export type HeaderWriter = (res: Response, result: RateLimitResult) => void;

export function headerWriter(policies: readonly CompiledPolicy[], ietf: boolean, legacy: boolean): HeaderWriter {
  const policyValue = policyHeader(policies);
  const heads = policies.map((p) => `"${p.name}";r=`);
  return (res, result) => {
    if (ietf) {
      res.setHeader('RateLimit-Policy', policyValue);
      let value = '';
      const list = result.policies;
      for (let i = 0; i < list.length; i++) {
        const p = list[i]!;
        value += `${i === 0 ? '' : ', '}${heads[i]}${p.remaining};t=${seconds(p.resetMs)}`;
      }
      res.setHeader('RateLimit', value);
    }
    if (legacy) {
      res.setHeader('X-RateLimit-Limit', String(result.limit));
      res.setHeader('X-RateLimit-Remaining', String(result.remaining));
      res.setHeader('X-RateLimit-Reset', String(seconds(result.resetMs)));
    }
  };
}

export function retryAfterSeconds(result: RateLimitResult): string {
  return String(Math.max(1, seconds(result.retryAfterMs)));
}
