// Configuration is checked at start-up: every mistake fails with a message that says what to fix.

import { modeOf } from '../../plugin/connection/connect';
import { resolveStore } from '../../plugin/connection/resolve';
import { ConfigError, createRedisKit, type RedisKitOptions } from '../../plugin/index';

// Which store a configuration leads to; resolution is pure, so checking it opens no connection.
function modeFor(options: RedisKitOptions): string {
  const spec = resolveStore(options, options.env ?? {});
  return spec.kind === 'memory' ? 'memory' : modeOf(spec);
}

// Configuration errors are thrown by createRedisKit before it connects anywhere.
function make(options: RedisKitOptions) {
  return createRedisKit({ logger: false, env: {}, ...options });
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('ERR_KIT_CONFIG');
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('store resolution', () => {
  test('nothing configured: the embedded store, with one log line saying how to point it at Redis', () => {
    const lines: string[] = [];
    const logger = { info: (o: unknown) => lines.push(String(o)), warn: () => {}, error: () => {} };
    const kit = createRedisKit({ env: {}, logger });
    expect(kit.mode).toBe('memory');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/embedded in-memory store/);
    expect(lines[0]).toMatch(/REDIS_URL=redis:\/\//);
    expect(lines[0]).toMatch(/UPSTASH_REDIS_REST_URL/);
    void kit.close();
  });

  test('REDIS_URL selects Redis over TCP; options win over the environment', () => {
    expect(modeFor({ env: { REDIS_URL: 'redis://127.0.0.1:1' } })).toBe('standalone');
    expect(modeFor({ env: { REDIS_URL: 'rediss://user:pw@example.invalid:6380/2' } })).toBe('standalone');
    expect(modeFor({ env: { REDIS_URL: 'redis://127.0.0.1:1' }, store: 'memory' })).toBe('memory');
    expect(
      modeFor({ env: { REDIS_URL: 'redis://127.0.0.1:1' }, upstash: { url: 'https://x.upstash.io', token: 't' } }),
    ).toBe('upstash');
  });

  test('the Upstash pair, under both the current and the older variable names', () => {
    expect(modeFor({ env: { UPSTASH_REDIS_REST_URL: 'https://a.upstash.io', UPSTASH_REDIS_REST_TOKEN: 't' } })).toBe(
      'upstash',
    );
    expect(modeFor({ env: { UPSTASH_REDIS_URL: 'https://a.upstash.io', UPSTASH_REDIS_TOKEN: 't' } })).toBe('upstash');
  });

  test('cluster nodes from options or REDIS_CLUSTER_NODES', () => {
    expect(modeFor({ cluster: ['127.0.0.1:7000', { host: '127.0.0.1', port: 7001 }] })).toBe('cluster');
    expect(modeFor({ env: { REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' } })).toBe('cluster');
  });

  test('a malformed URL names the variable and the expected form', () => {
    expect(configError(() => make({ env: { REDIS_URL: 'localhost:6379' } })).message).toMatch(/REDIS_URL.*redis:\/\//);
    expect(configError(() => make({ env: { REDIS_URL: 'not a url' } })).message).toMatch(
      /REDIS_URL is not a valid URL/,
    );
    expect(configError(() => make({ env: { REDIS_URL: 'https://x.upstash.io' } })).message).toMatch(
      /UPSTASH_REDIS_REST_URL/,
    );
    expect(configError(() => make({ redis: 'redis://h:99999' })).message).toMatch(/options\.redis/);
    expect(configError(() => make({ redis: 'redis://h:6379/abc' })).message).toMatch(/database number/);
    expect(configError(() => make({ redis: 'redis://h:6379/16' })).message).toMatch(/database number must be 0-15/);
    expect(modeFor({ redis: 'redis://h:6379/15' })).toBe('standalone');
  });

  test('a password in a bad URL is not echoed', () => {
    const message = configError(() => make({ env: { REDIS_URL: 'redis://u:s3cret@h:6379/x' } })).message;
    expect(message).not.toContain('s3cret');
  });

  test('a half-set Upstash pair names the missing variable', () => {
    expect(configError(() => make({ env: { UPSTASH_REDIS_REST_URL: 'https://a.upstash.io' } })).message).toMatch(
      /UPSTASH_REDIS_REST_TOKEN is not/,
    );
    expect(configError(() => make({ env: { UPSTASH_REDIS_REST_TOKEN: 't' } })).message).toMatch(
      /UPSTASH_REDIS_REST_URL is not/,
    );
    expect(configError(() => make({ env: { UPSTASH_REDIS_URL: 'https://a.upstash.io' } })).message).toMatch(
      /UPSTASH_REDIS_TOKEN is not/,
    );
    expect(configError(() => make({ upstash: { url: 'https://a.upstash.io' } as never })).message).toMatch(
      /upstash\.token/,
    );
    expect(
      configError(() => make({ env: { UPSTASH_REDIS_REST_URL: 'redis://a:1', UPSTASH_REDIS_REST_TOKEN: 't' } }))
        .message,
    ).toMatch(/REST URL \(https/);
  });

  test('two connection options at once are refused', () => {
    expect(configError(() => make({ redis: 'redis://a:1', cluster: ['a:1'] })).message).toMatch(/one of/);
    expect(configError(() => make({ store: 'redis' as never })).message).toMatch(/'memory'/);
  });
});

describe('option checking', () => {
  test('an unknown option suggests the nearest valid one', () => {
    expect(configError(() => make({ prefx: 'a' } as never)).message).toMatch(
      /unknown option 'prefx'\. Did you mean 'prefix'\?/,
    );
    expect(configError(() => make({ comandTimeout: 5 } as never)).message).toMatch(/Did you mean 'commandTimeout'/);
    expect(configError(() => make({ circuitBreaker: { threshold: 3 } } as never)).message).toMatch(
      /circuitBreaker: unknown option 'threshold'/,
    );
    const far = configError(() => make({ zzzzzzzz: 1 } as never)).message;
    expect(far).not.toMatch(/Did you mean/);
    expect(far).toMatch(/Valid options: redis, cluster/);
  });

  test('bad values are named', () => {
    expect(configError(() => make({ commandTimeout: '5 parsecs' })).message).toMatch(/commandTimeout/);
    expect(configError(() => make({ commandTimeout: -1 })).message).toMatch(/commandTimeout/);
    expect(configError(() => make({ prefix: 'a{b}' })).message).toMatch(/prefix/);
    expect(configError(() => make({ prefix: '' })).message).toMatch(/prefix/);
    expect(configError(() => make({ circuitBreaker: { failureThreshold: 0 } })).message).toMatch(/failureThreshold/);
    expect(configError(() => make({ logger: {} as never })).message).toMatch(/logger/);
    expect(configError(() => make({ redis: 42 as never })).message).toMatch(/options\.redis/);
  });

  test('a non-object options argument is a TypeError', () => {
    expect(() => createRedisKit('redis://x' as never)).toThrow(TypeError);
  });

  test('a close hook registered after close() runs at once (a feature built by a late request is still closed)', async () => {
    const kit = make({ store: 'memory' });
    await kit.close();
    let ran = false;
    kit.context.onClose(() => {
      ran = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(ran).toBe(true);
  });

  test('mount checks its arguments', () => {
    const kit = make({ store: 'memory' });
    expect(() => kit.mount(undefined as never)).toThrow(/expected an Express app/);
    expect(() => kit.mount({ use() {} } as never, { basePath: 'api' })).toThrow(ConfigError);
    expect(() => kit.mount({ use() {} } as never, { base: '/x' } as never)).toThrow(/Did you mean 'basePath'/);
  });
});
