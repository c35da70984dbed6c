// A TCP proxy for fault injection between the kit and a Redis: it forwards bytes both ways and, on demand, adds
// latency per direction, resets every connection, resets each new connection for a while (a reset storm), or
// black-holes traffic (accepts connections and bytes, forwards and answers nothing until healed).
//
// Bytes are never dropped from a connection that stays open: a black hole holds them and delivers them, in order,
// when healed (a partition that heals before TCP gives up). Dropping bytes mid-stream would let replies pair with the
// wrong commands, which no real network does. A connection is either intact or reset.

import { createServer, connect, type Server, type Socket } from 'node:net';

export interface FaultProxyStats {
  /** Client connections accepted since start. */
  accepted: number;
  /** Client connections open now. */
  open: number;
  /** Connections the proxy reset (resetAll, storms, upstream refused). */
  resets: number;
}

export interface FaultProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly stats: FaultProxyStats;
  /** Delay in ms added to every chunk: `up` from client to server, `down` from server to client. */
  setLatency(latency: { up?: number; down?: number }): void;
  /** Resets (TCP RST) every open connection, both sides. */
  resetAll(): void;
  /** Resets every open connection and every new one for `ms` milliseconds. */
  resetStorm(ms: number): void;
  /** Black hole on: nothing is forwarded either way, new connections are accepted and left waiting. */
  blackhole(on?: boolean): void;
  /** Ends every fault: no latency, no storm, no black hole; held bytes are delivered. */
  heal(): void;
  /** Points new connections at another port (open ones keep their server). */
  retarget(port: number): void;
  close(): Promise<void>;
}

interface Direction {
  from: Socket;
  to: Socket;
  queue: Array<{ due: number; chunk: Buffer }>;
  timer: NodeJS.Timeout | undefined;
  ended: boolean;
}

interface Link {
  client: Socket;
  server: Socket | undefined;
  up: Direction | undefined;
  down: Direction | undefined;
  /** Bytes the client sent before the server side existed (accepted during a black hole). */
  early: Buffer[];
}

export async function startFaultProxy(options: { targetPort: number; host?: string }): Promise<FaultProxy> {
  const host = options.host ?? '127.0.0.1';
  let targetPort = options.targetPort;
  const latency = { up: 0, down: 0 };
  let stormUntil = 0;
  let holding = false;
  const links = new Set<Link>();
  const stats: FaultProxyStats = { accepted: 0, open: 0, resets: 0 };

  const reset = (socket: Socket | undefined): void => {
    if (!socket || socket.destroyed) return;
    stats.resets++;
    socket.resetAndDestroy();
  };

  const drain = (d: Direction): void => {
    clearTimeout(d.timer);
    d.timer = undefined;
    if (holding) return;
    const now = Date.now();
    while (d.queue.length > 0) {
      const next = d.queue[0] as { due: number; chunk: Buffer };
      if (next.due > now) {
        d.timer = setTimeout(() => drain(d), next.due - now);
        return;
      }
      d.queue.shift();
      if (!d.to.destroyed) d.to.write(next.chunk);
    }
    if (d.ended && !d.to.destroyed) d.to.end();
  };

  const direction = (from: Socket, to: Socket, which: 'up' | 'down', backlog: Buffer[] = []): Direction => {
    const d: Direction = { from, to, queue: [], timer: undefined, ended: false };
    const push = (chunk: Buffer) => {
      // Chunks leave in arrival order even when the latency changes between them.
      const last = d.queue[d.queue.length - 1];
      d.queue.push({ due: Math.max(Date.now() + latency[which], last?.due ?? 0), chunk });
      if (d.queue.length === 1 || !d.timer) drain(d);
    };
    for (const chunk of backlog) push(chunk);
    from.on('data', push);
    from.on('end', () => {
      d.ended = true;
      if (d.queue.length === 0) drain(d);
    });
    return d;
  };

  const attach = (link: Link): void => {
    const { client } = link;
    if (client.destroyed) return;
    const server = connect({ host, port: targetPort });
    link.server = server;
    server.setNoDelay(true);
    client.removeAllListeners('data');
    link.up = direction(client, server, 'up', link.early.splice(0));
    link.down = direction(server, client, 'down');
    // The server refused or went away: the client sees a reset, as it would from a dead host's kernel.
    server.on('error', () => reset(client));
    server.on('close', () => {
      if (!client.destroyed && !link.down?.ended) reset(client);
    });
  };

  const server: Server = createServer((client) => {
    stats.accepted++;
    client.setNoDelay(true);
    if (Date.now() < stormUntil) {
      reset(client);
      return;
    }
    const link: Link = { client, server: undefined, up: undefined, down: undefined, early: [] };
    links.add(link);
    stats.open++;
    client.on('error', () => reset(link.server));
    client.on('close', () => {
      links.delete(link);
      stats.open--;
      if (link.up) clearTimeout(link.up.timer);
      if (link.down) clearTimeout(link.down.timer);
      if (link.server && !link.server.destroyed && !link.up?.ended) reset(link.server);
    });
    if (holding) client.on('data', (chunk: Buffer) => link.early.push(chunk));
    else attach(link);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('fault proxy: no address');
  const port = address.port;

  const resetAll = (): void => {
    for (const link of [...links]) {
      reset(link.server);
      reset(link.client);
    }
  };

  const release = (): void => {
    holding = false;
    for (const link of links) {
      if (!link.server) attach(link);
      else {
        if (link.up) drain(link.up);
        if (link.down) drain(link.down);
      }
    }
  };

  return {
    port,
    url: `redis://${host}:${port}`,
    stats,
    setLatency(next) {
      latency.up = next.up ?? latency.up;
      latency.down = next.down ?? latency.down;
    },
    resetAll,
    resetStorm(ms) {
      stormUntil = Date.now() + ms;
      resetAll();
    },
    blackhole(on = true) {
      if (on) holding = true;
      else release();
    },
    heal() {
      latency.up = 0;
      latency.down = 0;
      stormUntil = 0;
      release();
    },
    retarget(next) {
      targetPort = next;
    },
    async close() {
      resetAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
