// The kit as an application installs it: the compiled package (dist/cjs, built by `npm run build`; `npm run bench`
// builds it before it starts), not the TypeScript sources.
//
// Why it matters: the benchmark's processes run under tsx, which compiles TypeScript to CommonJS with esbuild, and
// esbuild's CommonJS exports are getters, so every call from one of our modules into another went through one. The
// peers run their own compiled JavaScript from node_modules. Measured on 2026-11-27 (five interleaved rounds each,
// same machine, same minute): the embedded-store rate limiter 0.90 x bare Express from the sources through tsx and
// 0.96 x from dist; a session middleware that found no cookie 0.90 x and 0.97 x.

import type * as Kit from '../../plugin/index';

export type * from '../../plugin/index';

function load(): typeof Kit {
  try {
    return require('../../dist/cjs/index.js') as typeof Kit;
  } catch (error) {
    throw new Error(
      `bench: the compiled package is missing or broken (${(error as Error).message}); run \`npm run build\` first (npm run bench does)`,
    );
  }
}

export const { createRedisKit, createServer } = load();
