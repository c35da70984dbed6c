// Captures what a handler writes, whichever way it writes it (res.send, res.json, res.write + res.end, a piped
// stream, Buffers or strings in any encoding), by wrapping the response's writeHead/write/end on the instance.
// In 'pass' mode the bytes also go to the client; in 'shadow' mode the client already has its answer (a stale copy)
// and the handler runs against a stand-in header state, so the refreshed response can be stored.

import type { Response } from 'express';

export interface CaptureHooks {
  /**
   * Called once, before the status line leaves (pass mode only). Returns whether the body should be recorded.
   * It may call `capture.divert()` to answer the client some other way and turn the rest into a shadow run.
   */
  onHead(capture: Capture): boolean;
  /** Called once when the handler ended its response. */
  onEnd(capture: Capture): void;
}

type WriteHead = Response['writeHead'];
type Write = Response['write'];
type End = Response['end'];

export class Capture {
  mode: 'pass' | 'shadow';
  recording = false;
  overflow = false;
  ended = false;
  /** Set when the captured response is to be thrown away (a 5xx replaced by a stale copy). */
  discarded = false;
  headSeen = false;
  private chunks: Buffer[] = [];
  private size = 0;
  private shadowHeaders = new Map<string, { name: string; value: number | string | string[] }>();
  private shadowStatus: number | undefined;
  private shadowHeadSent = false;
  readonly origWriteHead: WriteHead;
  readonly origWrite: Write;
  readonly origEnd: End;

  constructor(
    readonly res: Response,
    private readonly maxBodySize: number,
    private readonly hooks: CaptureHooks,
    mode: 'pass' | 'shadow',
    /** Shadow mode: the header state the handler starts from (taken before the client was answered). */
    snapshot?: Record<string, number | string | string[] | undefined>,
  ) {
    this.mode = mode;
    this.origWriteHead = res.writeHead;
    this.origWrite = res.write;
    this.origEnd = res.end;
    this.install();
    if (mode === 'shadow') this.enterShadow(snapshot);
  }

  /** Status and headers as the handler set them (the real ones in pass mode, the stand-in ones in shadow). */
  get status(): number {
    return this.mode === 'shadow' ? (this.shadowStatus ?? this.res.statusCode) : this.res.statusCode;
  }

  headers(): Record<string, number | string | string[] | undefined> {
    return this.res.getHeaders();
  }

  get body(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.size);
  }

  startRecording(): void {
    this.recording = true;
  }

  private collect(chunk: unknown, encoding: unknown): void {
    if (!this.recording || this.overflow || chunk === undefined || chunk === null || typeof chunk === 'function')
      return;
    let buf: Buffer;
    if (Buffer.isBuffer(chunk)) buf = chunk;
    else if (typeof chunk === 'string')
      buf = Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (chunk instanceof Uint8Array) buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else return;
    this.size += buf.length;
    if (this.size > this.maxBodySize) {
      this.overflow = true;
      this.chunks = [];
      return;
    }
    // Copy: a caller may reuse its Buffer after write() returns.
    this.chunks.push(Buffer.from(buf));
  }

  private head(): void {
    this.headSeen = true;
    if (this.hooks.onHead(this)) this.recording = true;
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.hooks.onEnd(this);
  }

  private install(): void {
    const self = this;
    const res = this.res;
    res.writeHead = function writeHead(this: Response, status: number, ...rest: unknown[]) {
      const reason = typeof rest[0] === 'string' ? rest[0] : undefined;
      const fields = typeof rest[0] === 'string' ? rest[1] : rest[0];
      if (self.mode === 'pass') {
        // Fields passed to writeHead are not in getHeaders(): move them there so they are seen and stored.
        if (!res.headersSent) applyFields(res, fields);
        if (!self.headSeen) {
          res.statusCode = status;
          self.head();
        }
      }
      if (self.mode === 'shadow') {
        self.shadowStatus = status;
        applyFields(res, fields);
        self.shadowHeadSent = true;
        return res;
      }
      const original = self.origWriteHead as (s: number, r?: string) => Response;
      return reason === undefined ? original.call(res, status) : original.call(res, status, reason);
    } as WriteHead;
    res.write = function write(this: Response, chunk: unknown, encoding?: unknown, cb?: unknown) {
      if (self.mode === 'pass' && !self.headSeen && !res.headersSent) self.head();
      self.collect(chunk, encoding);
      if (self.mode === 'shadow') {
        self.shadowHeadSent = true;
        const done = typeof encoding === 'function' ? encoding : cb;
        if (typeof done === 'function') queueMicrotask(() => done());
        return true;
      }
      return (self.origWrite as (...a: unknown[]) => boolean).call(res, chunk, encoding, cb);
    } as Write;
    res.end = function end(this: Response, chunk?: unknown, encoding?: unknown, cb?: unknown) {
      if (typeof chunk === 'function') {
        cb = chunk;
        chunk = undefined;
      } else if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      if (self.mode === 'pass' && !self.headSeen && !res.headersSent) self.head();
      self.collect(chunk, encoding);
      if (self.mode === 'shadow') {
        self.shadowHeadSent = true;
        self.finish();
        if (typeof cb === 'function') queueMicrotask(() => (cb as () => void)());
        return res;
      }
      const out = (self.origEnd as (...a: unknown[]) => Response).call(res, chunk, encoding, cb);
      self.finish();
      return out;
    } as End;
  }

  /** Puts the response's own methods back (used before answering the client some other way). */
  private uninstall(): void {
    this.res.writeHead = this.origWriteHead;
    this.res.write = this.origWrite;
    this.res.end = this.origEnd;
  }

  /**
   * Answers the client now with `answer` (using the response's real methods), and lets the handler carry on in
   * shadow mode. `keep` says whether what the handler still produces may be stored (false after a 5xx).
   */
  divert(answer: (res: Response) => void, keep: boolean): void {
    if (this.mode === 'shadow') return;
    const snapshot = this.res.getHeaders();
    const status = this.res.statusCode;
    this.uninstall();
    for (const name of this.res.getHeaderNames()) this.res.removeHeader(name);
    answer(this.res);
    this.discarded = !keep;
    this.recording = keep && this.recording;
    this.install();
    this.enterShadow(snapshot, status);
  }

  /** Switches to a stand-in header state: the client's response is (or is about to be) finished. */
  private enterShadow(snapshot?: Record<string, number | string | string[] | undefined>, status?: number): void {
    const res = this.res as unknown as Record<string, unknown>;
    this.mode = 'shadow';
    this.shadowStatus = status;
    for (const [name, value] of Object.entries(snapshot ?? this.res.getHeaders())) {
      if (value !== undefined) this.shadowHeaders.set(name.toLowerCase(), { name, value });
    }
    const h = this.shadowHeaders;
    res.setHeader = (name: string, value: number | string | string[]) => {
      h.set(name.toLowerCase(), { name, value });
      return this.res;
    };
    res.getHeader = (name: string) => h.get(name.toLowerCase())?.value;
    res.getHeaders = () => {
      const out: Record<string, unknown> = Object.create(null);
      for (const [k, v] of h) out[k] = v.value;
      return out;
    };
    res.getHeaderNames = () => [...h.keys()];
    res.hasHeader = (name: string) => h.has(name.toLowerCase());
    res.removeHeader = (name: string) => {
      h.delete(name.toLowerCase());
    };
    Object.defineProperty(res, 'headersSent', { configurable: true, get: () => this.shadowHeadSent });
    // statusCode is a plain field: what the handler sets after this point is the shadow's.
    Object.defineProperty(res, 'statusCode', {
      configurable: true,
      get: () => this.shadowStatus ?? 200,
      set: (v: number) => {
        this.shadowStatus = v;
      },
    });
  }
}

function applyFields(res: Response, fields: unknown): void {
  if (!fields) return;
  if (Array.isArray(fields)) {
    // Node accepts [name, value, name, value, ...] or [[name, value], ...].
    if (fields.length && Array.isArray(fields[0])) {
      for (const pair of fields as Array<[string, string]>) res.setHeader(pair[0], pair[1]);
    } else {
      for (let i = 0; i + 1 < fields.length; i += 2) res.setHeader(String(fields[i]), fields[i + 1] as string);
    }
    return;
  }
  if (typeof fields === 'object') {
    for (const [name, value] of Object.entries(fields as Record<string, unknown>)) {
      if (value !== undefined) res.setHeader(name, value as string);
    }
  }
}
