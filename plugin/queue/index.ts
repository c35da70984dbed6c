// The queue feature: kit.queue(name, options).

export { Queue } from './queue.js';
export type {
  Job,
  JobHandler,
  JobInfo,
  JobState,
  ProcessOptions,
  QueueCounts,
  QueueEvents,
  QueueStats,
} from './queue.js';
export type { BackoffOptions, JobOptions, QueueOptions, RetentionOptions } from './options.js';
export type { HistogramSnapshot } from './stats.js';
export { QueueInputError } from './errors.js';
