#!/usr/bin/env node
// After tsc: marks dist/esm as ES modules and dist/cjs as CommonJS, so Node and TypeScript read each build right.

import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
writeFileSync(join(root, 'dist', 'esm', 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
writeFileSync(join(root, 'dist', 'cjs', 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
