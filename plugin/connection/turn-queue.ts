// Collects the calls a feature starts in one turn of the event loop and hands them over in groups: at the end of
// the turn (setImmediate, so the requests of every socket read in one poll phase are together), or at once when a
// group is full (the server then works on it while the process reads the next requests). The rate limiter, the
// session reads and the response-cache hits use it to send one Redis command for many requests; each item keeps
// its own promise, reply and error.

// The timers module's own setImmediate: a test's fake timers replace the global one, and a group held for a fake
// timer would never be sent.
import { setImmediate as sendSoon } from 'node:timers';

export class TurnQueue<T> {
  private queue: T[] = [];
  private scheduled = false;

  constructor(
    /** Most items in one group; a full group is sent at once. */
    private readonly size: number,
    /** Sends one group (1 to `size` items, in the order they were pushed). */
    private readonly sendGroup: (group: T[]) => void,
    /** Called after each group is handed over (e.g. the store's flushWrites(): the group is this turn's write). */
    private readonly afterSend?: () => void,
  ) {}

  push(item: T): void {
    this.queue.push(item);
    if (this.queue.length >= this.size) this.send();
    else if (!this.scheduled) {
      this.scheduled = true;
      sendSoon(this.flush);
    }
  }

  /** Sends what is queued now (a reset, a close: what was started before goes first). */
  send(): void {
    const group = this.queue;
    if (group.length === 0) return;
    this.queue = [];
    this.sendGroup(group);
    this.afterSend?.();
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    this.send();
  };
}
