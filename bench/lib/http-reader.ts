// Where HTTP/1.1 responses end in a byte stream, for the --http-blocks load generator (lib/block-load.ts): just
// enough of a reader for the harness's own apps, which answer with a Content-Length. A response without one is
// reported as unreadable rather than guessed at.

const HEADER_END = Buffer.from('\r\n\r\n');

export interface ReadResponses {
  /** The status of each complete response, in order. */
  statuses: number[];
  /** The bytes after the last complete response (the start of the next one). */
  rest: Buffer;
  /** True when a response came without a Content-Length: the stream cannot be followed further. */
  unreadable: boolean;
}

export function readResponses(pending: Buffer): ReadResponses {
  const statuses: number[] = [];
  let rest = pending;
  for (;;) {
    const end = rest.indexOf(HEADER_END);
    if (end < 0) return { statuses, rest, unreadable: false };
    const head = rest.toString('latin1', 0, end);
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    if (!length) return { statuses, rest, unreadable: true };
    const total = end + HEADER_END.length + Number(length[1]);
    if (rest.length < total) return { statuses, rest, unreadable: false };
    statuses.push(Number(head.slice(9, 12)));
    rest = rest.subarray(total);
  }
}
