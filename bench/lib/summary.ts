// The summary table's rule for a target measured in several modes: once a feature has a reading over HTTP in blocks
// (`--http-blocks`, the mode the ratio targets are decided in), its older readings (interleaved autocannon rounds,
// paired runs, in process) leave the summary. They stay in their own sections of docs/performance.md.

/** One line of the summary table, with the feature it reads (empty for a line that reads none). */
export interface SummaryLine {
  feature: string;
  line: string;
}

/**
 * A summary row's feature without the name of the mode that measured it: the rows of one target measured in
 * several modes share it (the paired, in-process and HTTP-blocks reports append their mode to the feature).
 */
export function featureKey(feature: string): string {
  return feature.replace(/, (paired runs|in process \(implied req\/s\)|HTTP blocks \(server CPU per request\))$/, '');
}

/** The lines to print, in the order given, and how many were left out as superseded by an HTTP-blocks reading. */
export function supersede(sources: Array<{ name: string; lines: SummaryLine[] }>): {
  lines: string[];
  hidden: number;
} {
  const overHttp = (name: string) => name.endsWith('-http-blocks');
  const keys = new Set(
    sources
      .filter((s) => overHttp(s.name))
      .flatMap((s) => s.lines.map((l) => featureKey(l.feature)))
      .filter((k) => k !== ''),
  );
  const lines: string[] = [];
  let hidden = 0;
  for (const source of sources) {
    for (const l of source.lines) {
      if (!overHttp(source.name) && keys.has(featureKey(l.feature))) hidden++;
      else lines.push(l.line);
    }
  }
  return { lines, hidden };
}
