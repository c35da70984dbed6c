// What every feature factory receives from the kit: the one store, the logger, and the shared settings.

import type { Store } from '../connection/store.js';
import type { KitLogger } from './logger.js';

export interface FeatureContext {
  readonly store: Store;
  readonly logger: KitLogger;
  /** The kit's command timeout: a feature's own store calls are bounded by it (the store applies it). */
  readonly commandTimeoutMs: number;
  /** Registers a function the kit runs on close() (timers, subscriptions, buffers to flush). */
  onClose(fn: () => Promise<void> | void): void;
}
