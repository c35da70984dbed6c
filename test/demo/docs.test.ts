// The documentation holds together: docs/README.md lists every guide, and every relative link in README.md and
// docs/*.md points at a file that exists (anchors are not checked).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const DOCS = join(ROOT, 'docs');
const guides = readdirSync(DOCS).filter((f) => f.endsWith('.md') && f !== 'README.md');

test('docs/README.md indexes every guide', () => {
  const index = readFileSync(join(DOCS, 'README.md'), 'utf8');
  expect(guides.length).toBeGreaterThanOrEqual(15);
  expect(guides.filter((g) => !index.includes(`](${g})`))).toEqual([]);
});

test('relative links in README.md and docs/ point at files that exist', () => {
  const files = [join(ROOT, 'README.md'), ...['README.md', ...guides].map((g) => join(DOCS, g))];
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!target || /^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
      checked++;
      const path = resolve(dirname(file), target.split('#')[0]!);
      if (!existsSync(path)) broken.push(`${file.slice(ROOT.length + 1)} → ${target}`);
    }
  }
  expect(checked).toBeGreaterThan(20);
  expect(broken).toEqual([]);
});
