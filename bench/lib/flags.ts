// The harness's command line (bench/run.ts): suite names and flags, checked here before anything starts, so that a
// flag the chosen mode would not use is refused rather than silently ignored.

import type { Flags } from './types';

/** Parses `npm run bench -- [suite ...] [flags]`; throws an Error naming the fix for an unknown or misplaced flag. */
export function parseFlags(argv: string[]): { names: string[]; flags: Partial<Flags>; build: boolean } {
  const flags: Partial<Flags> = {};
  let build = true;
  let only: string[] | undefined;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const m = /^--(rounds|duration|connections|warmup|settle|generation|block|lead)(?:=(.*))?$/.exec(arg);
    if (arg === '--only') {
      only = String(argv[++i]).split(',');
    } else if (arg === '--paired') {
      flags.paired = true;
    } else if (arg === '--in-process') {
      flags.inProcess = true;
    } else if (arg === '--http-blocks') {
      // The in-process runner with its blocks sent over HTTP (lib/in-process-run.ts, lib/block-load.ts).
      flags.inProcess = true;
      flags.httpBlocks = true;
    } else if (arg === '--kit-server') {
      flags.kitServer = true;
    } else if (arg === '--no-build') {
      build = false;
    } else if (m) {
      const value = Number(m[2] ?? argv[++i]);
      const zeroOk = m[1] === 'settle' || m[1] === 'generation' || m[1] === 'lead';
      if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroOk)) {
        throw new Error(`--${m[1]}: expected a positive number`);
      }
      if ((m[1] === 'generation' || m[1] === 'block' || m[1] === 'lead') && !Number.isInteger(value)) {
        throw new Error(`--${m[1]}: expected a whole number`);
      }
      flags[m[1] as 'rounds' | 'duration' | 'connections' | 'warmup' | 'settle' | 'generation' | 'block' | 'lead'] =
        value;
    } else if (arg.startsWith('--')) throw new Error(`unknown flag ${arg}`);
    else names.push(arg);
  }
  if ((flags.block !== undefined || flags.lead !== undefined) && !flags.inProcess) {
    throw new Error('--block and --lead apply to --in-process and --http-blocks runs only');
  }
  if (flags.kitServer && !flags.httpBlocks) {
    throw new Error('--kit-server applies to --http-blocks runs only');
  }
  // The block modes have no autocannon runs to warm up or settle: each process runs unmeasured blocks of its own
  // before the first measured round, and --lead is their "settle" (unmeasured requests before each measured block).
  const sustainedOnly = (['warmup', 'settle'] as const).filter((f) => flags[f] !== undefined);
  if (sustainedOnly.length && flags.inProcess) {
    const given = sustainedOnly.map((f) => `--${f}`).join(' and ');
    throw new Error(
      `${given} ${sustainedOnly.length > 1 ? 'apply' : 'applies'} to sustained (autocannon) runs only, not to ` +
        `${flags.httpBlocks ? '--http-blocks' : '--in-process'} runs: those warm every process up with unmeasured ` +
        'blocks of their own; for unmeasured requests right before each measured block, use --lead N',
    );
  }
  if (flags.paired && flags.inProcess) {
    throw new Error('--paired and --in-process (or --http-blocks) are different runs: pick one');
  }
  return { names, flags: only ? { ...flags, only } : flags, build };
}
