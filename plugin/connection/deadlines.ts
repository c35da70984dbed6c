// Command timeouts without a timer per command. Every command of a store waits at most the same time, so their
// deadlines arrive in the order the commands were sent: a FIFO with one timer, armed for the oldest deadline
// still pending, does the work of one setTimeout/clearTimeout pair per command (about 0.5 µs each, and one
// more object for the collector) for a push and a flag.

/** One pending command's deadline: `expire` runs at `at` unless the command settled first. */
export interface Deadline {
  readonly at: number;
  done: boolean;
  expire: (() => void) | undefined;
}

export class Deadlines {
  private queue: Deadline[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly timeoutMs: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  /** Registers a deadline `timeoutMs` from now; `expire` runs then unless `settle` was called before. */
  add(expire: () => void): Deadline {
    const deadline: Deadline = { at: this.now() + this.timeoutMs, done: false, expire };
    this.queue.push(deadline);
    if (this.timer === undefined) this.arm(deadline.at);
    return deadline;
  }

  /**
   * The command settled: its deadline will not expire. Replies on a connection come back in the order commands
   * were sent, so the settled front of the queue is dropped at once and an entry (and what its closure holds)
   * dies young instead of waiting a whole timeout for the timer.
   */
  settle(deadline: Deadline): void {
    deadline.done = true;
    deadline.expire = undefined;
    const queue = this.queue;
    let head = this.head;
    while (head < queue.length && (queue[head] as Deadline).done) head++;
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.queue = queue.slice(head);
      head = 0;
    }
    this.head = head;
  }

  /** Deadlines not yet reached or settled (testing). */
  get pending(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) if (!(this.queue[i] as Deadline).done) n++;
    return n;
  }

  private arm(at: number): void {
    // +1: setTimeout may fire a fraction of a millisecond early relative to performance.now().
    this.timer = setTimeout(this.fire, Math.max(0, at - this.now()) + 1);
    // A pending command keeps the process alive through its own socket or request, not through this timer.
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = this.now();
    // this.queue and this.head are read afresh each time: an expiry's handler may add or settle commands.
    while (this.head < this.queue.length) {
      const first = this.queue[this.head] as Deadline;
      if (!first.done && first.at > now) break;
      this.head++;
      const expire = first.expire;
      first.done = true;
      first.expire = undefined;
      expire?.();
    }
    if (this.head >= this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.timer === undefined) this.arm((this.queue[this.head] as Deadline).at);
  };

  /** Expires nothing and forgets everything (the store is closing). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.head = 0;
  }
}
