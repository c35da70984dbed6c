// A Redis Cluster of its own for tests that change its shape (slot migration, failover): masters and replicas on
// free ports, each in a temp dir, plus the admin steps those tests need (who owns a slot, moving a slot with
// SETSLOT IMPORTING/MIGRATING + MIGRATE + SETSLOT NODE, killing a node, waiting for a promotion).

import { execFileSync } from 'node:child_process';
import Redis from 'ioredis';
import { type RedisProcess, startRedis } from './redis-server';

export interface NodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  masterId: string | undefined;
  failed: boolean;
  slots: Array<[number, number]>;
}

export interface PrivateCluster {
  /** Every node started (some may have been killed since). */
  ports: number[];
  seeds: string;
  /** CLUSTER NODES as seen from a live node. */
  nodes(): Promise<NodeInfo[]>;
  /** The live master serving `slot`. */
  ownerOf(slot: number): Promise<NodeInfo>;
  /** A client to one node (not cluster-aware), made once and closed by stop(). */
  admin(port: number): Redis;
  keyslot(key: string): Promise<number>;
  /** Moves one slot and its keys; `pauseMs` is waited halfway through the keys (the slot is then split). */
  migrateSlot(slot: number, fromPort: number, toPort: number, pauseMs?: number): Promise<number>;
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

function parseNodes(text: string): NodeInfo[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.trim().split(' ');
      const port = Number((address ?? '').split('@')[0]?.split(':')[1]);
      const flagList = (flags ?? '').split(',');
      return {
        id: id as string,
        port,
        role: flagList.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? undefined : master,
        failed: flagList.includes('fail') || flagList.includes('fail?'),
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [a, b] = s.split('-').map(Number);
            return [a as number, (b ?? a) as number] as [number, number];
          }),
      } satisfies NodeInfo;
    });
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function startPrivateCluster(
  options: { masters?: number; replicas?: number; nodeTimeoutMs?: number } = {},
): Promise<PrivateCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 0;
  const total = masters * (1 + replicas);
  const servers = new Map<number, RedisProcess>();
  const clients = new Map<number, Redis>();
  for (let i = 0; i < total; i++) {
    // No port given: startRedis picks one, and another when the first (or its bus port) turns out taken.
    const server = await startRedis({
      args: (port) => [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        String(options.nodeTimeoutMs ?? 1000),
        // A replica may take over however long it was cut off (the default factor can refuse on a slow box).
        '--cluster-replica-validity-factor',
        '0',
      ],
    });
    servers.set(server.port, server);
  }
  const ports = [...servers.keys()];
  execFileSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ],
    { stdio: 'ignore', timeout: 30_000 },
  );

  const admin = (port: number): Redis => {
    let client = clients.get(port);
    if (!client) {
      client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: false });
      client.on('error', () => undefined);
      clients.set(port, client);
    }
    return client;
  };
  const live = () => ports.filter((p) => servers.has(p));
  const nodes = async (): Promise<NodeInfo[]> => {
    let lastError: unknown;
    for (const port of live()) {
      try {
        return parseNodes(String(await admin(port).call('CLUSTER', 'NODES')));
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError ?? new Error('no live node');
  };
  const ownerOf = async (slot: number): Promise<NodeInfo> => {
    const owner = (await nodes()).find(
      (n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b),
    );
    if (!owner) throw new Error(`no live master serves slot ${slot}`);
    return owner;
  };

  await waitFor(
    async () => {
      for (const port of ports) {
        if (!String(await admin(port).call('CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      }
      const all = await nodes();
      if (all.filter((n) => n.role === 'replica').length !== masters * replicas) return false;
      for (const replica of all.filter((n) => n.role === 'replica')) {
        if (!String(await admin(replica.port).call('INFO', 'replication')).includes('master_link_status:up')) {
          return false;
        }
      }
      return true;
    },
    'cluster_state:ok with every replica in sync',
    30_000,
  );

  return {
    ports,
    seeds: ports
      .slice(0, masters)
      .map((p) => `127.0.0.1:${p}`)
      .join(','),
    nodes,
    ownerOf,
    admin,
    async keyslot(key) {
      return Number(await admin(live()[0] as number).call('CLUSTER', 'KEYSLOT', key));
    },
    async migrateSlot(slot, fromPort, toPort, pauseMs = 0) {
      const all = await nodes();
      const from = all.find((n) => n.port === fromPort);
      const to = all.find((n) => n.port === toPort);
      if (!from || !to) throw new Error('migrateSlot: unknown node');
      const src = admin(fromPort);
      const dst = admin(toPort);
      await dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
      await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
      let moved = 0;
      let paused = pauseMs === 0;
      for (;;) {
        const keys = (await src.call('CLUSTER', 'GETKEYSINSLOT', slot, paused ? 100 : 1)) as string[];
        if (keys.length === 0) break;
        await src.call('MIGRATE', '127.0.0.1', toPort, '', 0, 5000, 'KEYS', ...keys);
        moved += keys.length;
        if (!paused) {
          // One key moved, the rest not: commands on this slot now meet ASK (and multi-key ones TRYAGAIN).
          paused = true;
          await new Promise((r) => setTimeout(r, pauseMs));
        }
      }
      // The new owner first, then the old one, then everyone else (as redis-cli --cluster does).
      await dst.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      await src.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      for (const n of all.filter((x) => x.role === 'master' && !x.failed && x.port !== fromPort && x.port !== toPort)) {
        await admin(n.port)
          .call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id)
          .catch(() => undefined);
      }
      return moved;
    },
    async kill(port) {
      const server = servers.get(port);
      if (!server) return;
      servers.delete(port);
      clients.get(port)?.disconnect();
      clients.delete(port);
      await server.stop();
    },
    async stop() {
      for (const client of clients.values()) client.disconnect();
      clients.clear();
      await Promise.all([...servers.values()].map((s) => s.stop()));
      servers.clear();
    },
  };
}
