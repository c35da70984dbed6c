#!/usr/bin/env node
// Lints an OpenAPI document with Redocly's recommended rules; prints the problems as JSON lines and exits 1 when
// there is any error or warning. (@redocly/openapi-core is ESM-only, so the jest suite runs this as a child.)

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createConfig, lintDocument, makeDocumentFromString, BaseResolver } from '@redocly/openapi-core';

const file = resolve(process.argv[2] ?? 'openapi.yaml');
// Recommended rules, less one: `operation-4xx-response` wants a client-error response on every operation, but the
// health and landing routes take no input and have none. Routes that can answer 4xx document it.
const config = await createConfig({ extends: ['recommended'], rules: { 'operation-4xx-response': 'off' } });
const document = makeDocumentFromString(readFileSync(file, 'utf8'), file);
const problems = await lintDocument({ document, config, externalRefResolver: new BaseResolver() });
for (const p of problems) {
  console.log(
    JSON.stringify({ severity: p.severity, rule: p.ruleId, message: p.message, at: p.location?.[0]?.pointer }),
  );
}
process.exit(problems.some((p) => p.severity === 'error' || p.severity === 'warn') ? 1 : 0);
