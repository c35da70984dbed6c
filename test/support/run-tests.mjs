#!/usr/bin/env node
// `npm test [-- <jest arguments>]`: the checks and the two jest phases, one after the other, stopping at the first
// that fails (its exit code is the run's):
//   1. npm run build:lua -- --check      the generated Lua modules are up to date
//   2. npm run build:wasm -- --check     the generated WebAssembly modules are up to date
//   3. jest --testPathIgnorePatterns /test/faults/                  every suite but the fault-injection one
//   4. jest --runInBand --forceExit --testPathPatterns /test/faults/  the fault-injection suite, alone
// (why 4 runs alone and with --forceExit: the header of test/faults/outage-under-load.test.ts.)
//
// Without arguments it runs exactly those four commands. An npm script of `a && b && jest && jest` would hand
// `npm test -- <args>` to the last jest only; here the arguments (paths, patterns, jest flags such as -t) go to
// both phases, and a phase runs only when they select a test file of its own. Which files they select is jest's
// answer, not a guess from the words: `jest --listTests <args>` (about a second, runs nothing) lists them, a
// selected file under test/faults/ brings in phase 4, any other file phase 3. So `npm test -- test/unit/server`
// runs phase 3 alone, `npm test -- test/faults` or `npm test -- outage-under` phase 4 alone, and `-t <name>` without
// a path selects every file, so both phases run. When they select no file (a typo, or --help), phase 3 runs alone
// and jest says so; the same if they include --outputFile, which is where jest then writes its list. Each phase
// gets the arguments unchanged, restricted to its own files.
//
// Ctrl-C reaches jest directly (same process group) and is also passed on; SIGTERM and SIGHUP are passed on to
// the running step. A step ended by a signal ends the run, by the same signal when it is one of those three (else
// with exit code 128 + its number, as a shell does), and no later step starts.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const jestBin = createRequire(import.meta.url).resolve('jest/bin/jest');
const args = process.argv.slice(2);
const FAULTS = /[\\/]test[\\/]faults[\\/]/;

let running; // the step's child process, while there is one
let interrupted; // the signal that asked the run to stop
const forward = (signal) => {
  interrupted ??= signal;
  if (running) running.kill(signal);
  else dieBy(signal);
};
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
for (const signal of SIGNALS) process.on(signal, forward);

/** Runs one step; resolves with its exit code, or ends this process the way the step ended. */
function step(command, argv, { capture = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      cwd: root,
      stdio: ['inherit', capture ? 'pipe' : 'inherit', 'inherit'],
      shell: process.platform === 'win32' && command === 'npm',
    });
    running = child;
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      running = undefined;
      const by = signal ?? interrupted;
      if (by) dieBy(by);
      else resolve({ code: code ?? 1, out });
    });
  });
}

/** Ends this process as the step ended: by the same signal if it is one of those above, else as a shell would. */
function dieBy(signal) {
  for (const s of SIGNALS) process.off(s, forward);
  // With no listener left, its default action ends the process; re-raising e.g. a SIGSEGV would dump a core.
  if (SIGNALS.includes(signal)) process.kill(process.pid, signal);
  process.exit(128 + (constants.signals[signal] ?? 0));
}

async function must(command, argv) {
  const { code } = await step(command, argv);
  if (code !== 0) process.exit(code);
}

// `npm run` the way npm itself was started (npm_execpath is set when `npm test` runs this file).
const npmRun = (...rest) => {
  const cli = process.env.npm_execpath;
  return cli && /\.[cm]?js$/.test(cli) ? must(process.execPath, [cli, 'run', ...rest]) : must('npm', ['run', ...rest]);
};
const jest = (argv) => must(process.execPath, [jestBin, ...argv]);

await npmRun('build:lua', '--', '--check');
await npmRun('build:wasm', '--', '--check');

if (args.length === 0) {
  await jest(['--testPathIgnorePatterns', '/test/faults/']);
  await jest(['--runInBand', '--forceExit', '--testPathPatterns', '/test/faults/']);
} else {
  // The user's arguments go first: jest's array flags (--testPathIgnorePatterns ...) take every word after them
  // up to the next flag, so a path placed after ours would be read as one more ignore pattern. --json makes the
  // list one line that cannot be mistaken; watch mode is turned off for the listing only, or it would never end.
  const list = ['--listTests', '--json', '--watch=false', '--watchAll=false'];
  const listing = await step(process.execPath, [jestBin, ...args, ...list], { capture: true });
  if (listing.code !== 0) process.exit(listing.code);
  const line = listing.out.split('\n').findLast((l) => l.startsWith('['));
  const files = line ? JSON.parse(line) : [];
  const faults = files.filter((f) => FAULTS.test(f));
  if (faults.length < files.length || files.length === 0) {
    await jest([...args, '--testPathIgnorePatterns', '/test/faults/']);
  }
  if (faults.length > 0) {
    // Not --testPathPatterns /test/faults/: jest ORs it with the user's paths, which would bring their other files
    // into this phase. Ignoring every path outside test/faults/ keeps only the selected fault files.
    await jest([...args, '--runInBand', '--forceExit', '--testPathIgnorePatterns', '^(?!.*/test/faults/)']);
  }
}
