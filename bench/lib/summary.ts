// The summary table's rule for a target measured in several modes: once a feature has a reading over HTTP in blocks
// (`--http-blocks`, the mode the ratio targets are decided in), its readings in the other modes (interleaved
// autocannon rounds, paired runs, in process) leave the summary, even when one of those ran later. They stay in
// their own sections of docs/performance.md.

/**
 * Suites a full `npm run bench` leaves out: they run only when named. They are probes, not product figures, so the
 * summary table leaves their results out too (their own section in docs/performance.md shows them).
 */
export const NAMED_ONLY: ReadonlySet<string> = new Set(['express-probes']);

/** What follows a suite's name in a run of another mode: `-paired`, `-in-process`, `-http-blocks[-kit-server]`. */
export const RUN_SUFFIX = /-(?:paired|in-process|http-blocks(?:-kit-server)?)$/;

/** Whether a results name (`<suite>`, `<suite>-http-blocks`, ...) belongs to a suite that runs only when named. */
export function namedOnly(name: string): boolean {
  return NAMED_ONLY.has(name.replace(RUN_SUFFIX, ''));
}

/** What each mode's report appends to a target's feature in its summary rows. */
export const MODE_SUFFIX = {
  paired: ', paired runs',
  inProcess: ', in process (implied req/s)',
  httpBlocks: ', HTTP blocks (server CPU per request)',
  /** Appended after the mode's suffix by --kit-server runs. */
  kitServer: ', both served by createServer()',
} as const;

/**
 * One line of the summary table, with the feature it reads (empty for a line that reads none). A placeholder
 * stands for a suite with no rows at all ("not measured by the harness yet").
 */
export interface SummaryLine {
  feature: string;
  line: string;
  placeholder?: boolean;
}

/** A summary row's feature without the mode that measured it: the rows of one target in several modes share it. */
export function featureKey(feature: string): string {
  const { kitServer, ...modes } = MODE_SUFFIX;
  const key = feature.endsWith(kitServer) ? feature.slice(0, -kitServer.length) : feature;
  for (const suffix of Object.values(modes)) {
    if (key.endsWith(suffix)) return key.slice(0, -suffix.length);
  }
  return key;
}

/** An HTTP-blocks run's name, on either server (`-http-blocks`, `-http-blocks-kit-server`). */
const HTTP_BLOCKS = /-http-blocks(?:-kit-server)?$/;
const overHttp = (name: string): boolean => HTTP_BLOCKS.test(name);
/** A --kit-server run: its rows never hide others, since the targets are stated against app.listen(). */
const onKitServer = (name: string): boolean => name.endsWith('-kit-server');

/**
 * The lines to print, in the order given; `superseding` when some HTTP-blocks reading hid or may have hidden
 * others. A suite whose rows all left an earlier rebuild of the table (the table is read back from the guide when
 * bench/results/ holds no run of it) reads as having no rows; its placeholder is dropped too when the suite's
 * HTTP-blocks run has rows, so rebuilding the table twice gives the same table.
 */
export function supersede(sources: Array<{ name: string; lines: SummaryLine[] }>): {
  lines: string[];
  superseding: boolean;
} {
  const measured = sources.filter(
    (s) => overHttp(s.name) && !onKitServer(s.name) && s.lines.some((l) => l.feature !== ''),
  );
  const keys = new Set(measured.flatMap((s) => s.lines.map((l) => featureKey(l.feature))).filter((k) => k !== ''));
  const suites = new Set(measured.map((s) => s.name.replace(HTTP_BLOCKS, '')));
  const lines: string[] = [];
  for (const source of sources) {
    for (const l of source.lines) {
      if (l.placeholder && suites.has(source.name)) continue;
      if (!overHttp(source.name) && keys.has(featureKey(l.feature))) continue;
      lines.push(l.line);
    }
  }
  return { lines, superseding: measured.length > 0 };
}
