// Minimal typings for peers that ship none (used only by the benchmarks).

declare module 'redlock' {
  interface RedlockLock {
    unlock(): Promise<void>;
  }
  class Redlock {
    constructor(clients: unknown[], options?: { retryCount?: number; retryDelay?: number; retryJitter?: number });
    lock(resource: string, ttl: number): Promise<RedlockLock>;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
  export = Redlock;
}
