// Packaging: the tarball npm would publish is installed into an empty project and imported as ESM, as CommonJS
// and from strict TypeScript (NodeNext resolution), so the exports map, both builds and the types are exercised.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const repo = join(__dirname, '..', '..');
let dir: string;
let files: string[];

function run(cmd: string, args: string[], cwd = dir): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, REDIS_URL: '' } });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rk-pack-'));
  // `npm pack` runs the prepack build; --json lists the files that would be published.
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], repo)) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  const tarball = packed[0]!;
  files = tarball.files.map((f) => f.path);
  const target = join(dir, 'node_modules', 'express-redis-kit');
  mkdirSync(target, { recursive: true });
  run('tar', ['-xzf', join(dir, tarball.filename), '-C', target, '--strip-components', '1']);
  // The consumer's own dependencies: linked from this repository's node_modules.
  for (const dep of [
    'express',
    'ioredis',
    '@types/express',
    '@types/node',
    '@types/express-serve-static-core',
    '@types/qs',
    '@types/serve-static',
    '@types/range-parser',
    '@types/send',
    '@types/mime',
    '@types/http-errors',
    '@types/body-parser',
    '@types/connect',
    'react',
    '@types/react',
    'csstype',
  ]) {
    const from = join(repo, 'node_modules', dep);
    const to = join(dir, 'node_modules', dep);
    mkdirSync(join(to, '..'), { recursive: true });
    try {
      symlinkSync(from, to, 'dir');
    } catch {
      // some @types packages may be absent in a given version set; tsc says so if one is needed
    }
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const CONSUMER_BODY = `
const app = express();
const kit = createRedisKit({ store: 'memory', logger: false });
kit.mount(app);
const server = app.listen(0, async () => {
  const res = await fetch('http://127.0.0.1:' + server.address().port + '/api/v1/health/redis');
  const body = await res.json();
  console.log(JSON.stringify({ status: res.status, mode: body.checks['store:mode'][0].observedValue, configError: typeof ConfigError }));
  server.close();
  await kit.close();
});
`;

test('the tarball holds both builds and their types, and no sources or tests', () => {
  for (const f of [
    'dist/esm/index.js',
    'dist/esm/index.d.ts',
    'dist/esm/package.json',
    'dist/cjs/index.js',
    'dist/cjs/index.d.ts',
    'dist/cjs/package.json',
    'package.json',
    'README.md',
    'LICENSE',
  ]) {
    expect(files).toContain(f);
  }
  expect(files.filter((f) => f.startsWith('test/') || f.startsWith('plugin/') || f.startsWith('demo/'))).toEqual([]);
});

test('imports as ESM', () => {
  writeFileSync(
    join(dir, 'esm.mjs'),
    `import express from 'express';\nimport { createRedisKit, ConfigError } from 'express-redis-kit';\n${CONSUMER_BODY}`,
  );
  expect(JSON.parse(run('node', ['esm.mjs']))).toEqual({ status: 200, mode: 'memory', configError: 'function' });
});

test('requires as CommonJS', () => {
  writeFileSync(
    join(dir, 'cjs.cjs'),
    `const express = require('express');\nconst { createRedisKit, ConfigError } = require('express-redis-kit');\n${CONSUMER_BODY}`,
  );
  expect(JSON.parse(run('node', ['cjs.cjs']))).toEqual({ status: 200, mode: 'memory', configError: 'function' });
});

test('type-checks from strict TypeScript with NodeNext resolution, and the types are real', () => {
  writeFileSync(
    join(dir, 'consumer.ts'),
    `import express from 'express';
import { createRedisKit, ConfigError, type RedisKit, type RedisKitOptions, type HealthReport } from 'express-redis-kit';
const options: RedisKitOptions = { prefix: 'app', commandTimeout: '500 ms', circuitBreaker: { failureThreshold: 3 } };
const kit: RedisKit = createRedisKit(options);
kit.mount(express(), { basePath: '/api' });
const mode: 'memory' | 'standalone' | 'sentinel' | 'cluster' | 'upstash' = kit.mode;
// @ts-expect-error prefix must be a string
createRedisKit({ prefix: 42 });
// @ts-expect-error unknown options are type errors too
createRedisKit({ prefx: 'app' });
const report: HealthReport | undefined = undefined;
export { mode, report, ConfigError };
`,
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        target: 'ES2022',
      },
      files: ['consumer.ts'],
    }),
  );
  const tsc = join(repo, 'node_modules', '.bin', 'tsc');
  let output = '';
  try {
    output = run(tsc, ['-p', 'tsconfig.json']);
  } catch (error) {
    output = String((error as { stdout?: string }).stdout ?? error);
  }
  expect(output).toBe('');
  expect(readdirSync(dir)).toContain('consumer.ts');
});

test('the ./client entry resolves as ESM, as CommonJS and from TypeScript, and ./client/core needs no React', () => {
  for (const f of ['dist/esm/client/index.js', 'dist/esm/client/index.d.ts', 'dist/cjs/client/index.js']) {
    expect(files).toContain(f);
  }
  writeFileSync(
    join(dir, 'client.mjs'),
    `import * as client from 'express-redis-kit/client';
import * as core from 'express-redis-kit/client/core';
console.log(JSON.stringify([typeof client.subscribe, typeof client.useRealtime, typeof client.usePresence, typeof core.subscribe, core.channelUrl('/api/v1/', 'ws:1')]));
`,
  );
  expect(JSON.parse(run('node', ['client.mjs']))).toEqual([
    'function',
    'function',
    'function',
    'function',
    '/api/v1/realtime/ws%3A1',
  ]);
  writeFileSync(
    join(dir, 'client.cjs'),
    `const { subscribe, usePresence } = require('express-redis-kit/client');\nconsole.log(JSON.stringify([typeof subscribe, typeof usePresence]));\n`,
  );
  expect(JSON.parse(run('node', ['client.cjs']))).toEqual(['function', 'function']);
  writeFileSync(
    join(dir, 'client-consumer.ts'),
    `import { subscribe, useRealtime, usePresence, type RealtimeEvent, type Subscription } from 'express-redis-kit/client';
const sub: Subscription = subscribe('/api/v1/realtime/a', (event: RealtimeEvent) => void event.data);
sub.close();
type Live = ReturnType<typeof useRealtime>['events'];
type Members = ReturnType<typeof usePresence>['members'];
// @ts-expect-error the channel is a string
useRealtime(42);
export type { Live, Members };
`,
  );
  writeFileSync(
    join(dir, 'tsconfig.client.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        target: 'ES2022',
      },
      files: ['client-consumer.ts'],
    }),
  );
  let output = '';
  try {
    output = run(join(repo, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.client.json']);
  } catch (error) {
    output = String((error as { stdout?: string }).stdout ?? error);
  }
  expect(output).toBe('');
});
