// express-redis-kit/client: the browser side of realtime channels and presence (no Node-only imports). The React
// hooks need React, an optional peer dependency; `express-redis-kit/client/core` has everything else without it.

export * from './core.js';
export * from './react.js';
