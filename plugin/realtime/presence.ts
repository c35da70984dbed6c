// Presence: who is in a channel. Each member holds a lease that ends on the store's clock unless renewed by a
// heartbeat; joins and leaves (explicit or by expiry) are announced on the channel as `presence.join` and
// `presence.leave` events. Expired members are removed by whichever process notices first, and only that one
// announces the leave, because the removal is atomic.

import type { MemoryStore, RedisStore, Store } from '../connection/store.js';
import type { KitLogger } from '../core/logger.js';
import { PresenceFullError, RealtimeInputError } from './errors.js';
import { MEMBER_PATTERN, type RealtimeConfig } from './options.js';
import { presenceBeat, presenceLeave, presenceList } from './scripts.generated.js';

export interface PresenceMember {
  member: string;
  meta: unknown;
}

export interface PresenceHandle {
  readonly channel: string;
  readonly member: string;
  /** Replaces the member's metadata (sent with the next heartbeat, which happens now). */
  update(meta: unknown): Promise<void>;
  /** Leaves the channel and stops the heartbeats. */
  leave(): Promise<void>;
}

export interface Presence {
  /**
   * Joins `member` to `channel` and keeps it there with heartbeats from this process (every third of the lease)
   * until `leave()`. Announces `presence.join` when the member was not present.
   */
  join(channel: string, member: string, meta?: unknown): Promise<PresenceHandle>;
  /** One heartbeat: joins or renews the lease. What the HTTP route calls for browsers. */
  heartbeat(channel: string, member: string, meta?: unknown): Promise<{ joined: boolean; ttlMs: number }>;
  /** Removes the member now and announces `presence.leave`. Resolves to whether it was present. */
  leave(channel: string, member: string): Promise<boolean>;
  /** The members present now (expired ones are removed and announced). */
  list(channel: string): Promise<PresenceMember[]>;
}

interface BeatResult {
  joined: boolean;
  full: boolean;
  expired: string[];
}

interface PresenceBackend {
  beat(channel: string, member: string, meta: string, ttlMs: number, max: number): Promise<BeatResult>;
  leave(channel: string, member: string): Promise<boolean>;
  list(channel: string, max: number): Promise<{ expired: string[]; members: Array<[string, string]> }>;
}

type Announce = (channel: string, type: 'presence.join' | 'presence.leave', data: PresenceMember) => Promise<unknown>;

export class PresenceService implements Presence {
  private readonly backend: PresenceBackend;
  /** Channels with members joined from this process, by channel: member -> handle's heartbeat timer. */
  private readonly local = new Map<string, Map<string, NodeJS.Timeout>>();
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;

  constructor(
    store: Store,
    private readonly config: RealtimeConfig,
    private readonly logger: KitLogger,
    private readonly announce: Announce,
    /** Channels this process serves listeners on: their stale members are swept too. */
    private readonly watched: () => Iterable<string>,
  ) {
    this.backend = store.mode === 'memory' ? new MemoryPresence(store) : new RedisPresence(store);
    this.sweepTimer = setInterval(() => void this.sweep(), Math.max(500, Math.floor(config.presenceTtlMs / 2)));
    this.sweepTimer.unref();
  }

  private check(channel: string, member: string, meta: unknown): string {
    if (typeof member !== 'string' || !MEMBER_PATTERN.test(member)) {
      throw new RealtimeInputError('presence member: 1-128 characters from A-Z a-z 0-9 _ . : @ = + -');
    }
    if (meta === undefined) return '';
    let json: string | undefined;
    try {
      json = JSON.stringify(meta);
    } catch {
      json = undefined;
    }
    if (json === undefined) throw new RealtimeInputError('presence meta: must be JSON-serialisable');
    if (Buffer.byteLength(json) > this.config.maxMetaBytes) {
      throw new RealtimeInputError(`presence meta: larger than ${this.config.maxMetaBytes} bytes`, 413);
    }
    void channel;
    return json;
  }

  async heartbeat(channel: string, member: string, meta?: unknown): Promise<{ joined: boolean; ttlMs: number }> {
    const json = this.check(channel, member, meta);
    const result = await this.backend.beat(channel, member, json, this.config.presenceTtlMs, this.config.maxMembers);
    if (result.full) throw new PresenceFullError(channel, this.config.maxMembers);
    await this.announceLeaves(channel, result.expired);
    if (result.joined) await this.announce(channel, 'presence.join', { member, meta: meta ?? null });
    return { joined: result.joined, ttlMs: this.config.presenceTtlMs };
  }

  async join(channel: string, member: string, meta?: unknown): Promise<PresenceHandle> {
    let current = meta;
    await this.heartbeat(channel, member, current);
    let members = this.local.get(channel);
    if (!members) {
      members = new Map();
      this.local.set(channel, members);
    }
    clearInterval(members.get(member));
    const timer = setInterval(
      () => {
        this.heartbeat(channel, member, current).catch((error: unknown) => {
          this.logger.warnOnce('ERR_KIT_PRESENCE_HEARTBEAT', 'presence: a heartbeat failed; retrying', {
            err: error,
          });
        });
      },
      Math.max(100, Math.floor(this.config.presenceTtlMs / 3)),
    );
    timer.unref();
    members.set(member, timer);
    return {
      channel,
      member,
      update: async (next) => {
        this.check(channel, member, next);
        current = next;
        await this.heartbeat(channel, member, current);
      },
      leave: async () => {
        this.stopLocal(channel, member, timer);
        await this.leave(channel, member);
      },
    };
  }

  private stopLocal(channel: string, member: string, timer?: NodeJS.Timeout): void {
    const members = this.local.get(channel);
    const current = members?.get(member);
    if (!members || (timer && current !== timer)) return;
    clearInterval(current);
    members.delete(member);
    if (members.size === 0) this.local.delete(channel);
  }

  async leave(channel: string, member: string): Promise<boolean> {
    this.check(channel, member, undefined);
    this.stopLocal(channel, member);
    const removed = await this.backend.leave(channel, member);
    if (removed) await this.announce(channel, 'presence.leave', { member, meta: null });
    return removed;
  }

  async list(channel: string): Promise<PresenceMember[]> {
    const { expired, members } = await this.backend.list(channel, this.config.maxMembers);
    await this.announceLeaves(channel, expired);
    return members
      .map(([member, meta]) => ({ member, meta: meta === '' ? null : safeParse(meta) }))
      .sort((a, b) => (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
  }

  private async announceLeaves(channel: string, expired: string[]): Promise<void> {
    for (const member of expired) await this.announce(channel, 'presence.leave', { member, meta: null });
  }

  /** Removes and announces expired members of the channels this process has members or listeners in. */
  async sweep(): Promise<void> {
    if (this.closed) return;
    const channels = new Set<string>(this.local.keys());
    for (const name of this.watched()) channels.add(name);
    let budget = 1000;
    for (const channel of channels) {
      if (budget-- <= 0 || this.closed) break;
      try {
        const { expired } = await this.backend.list(channel, 0);
        await this.announceLeaves(channel, expired);
      } catch (error) {
        this.logger.warnOnce('ERR_KIT_PRESENCE_SWEEP', 'presence: removing expired members failed; retrying', {
          err: error,
        });
        return;
      }
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweepTimer);
    for (const members of this.local.values()) for (const timer of members.values()) clearInterval(timer);
    this.local.clear();
  }
}

function safeParse(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return null;
  }
}

interface MemoryMember {
  leaseEnd: number;
  meta: string;
}

class MemoryPresence implements PresenceBackend {
  private readonly key: (id: string, ...parts: string[]) => string;

  constructor(private readonly store: MemoryStore) {
    this.key = store.keys.forFeature('presence');
  }

  private sweep(channel: string): { members: Map<string, MemoryMember> | undefined; expired: string[] } {
    const members = this.store.engine.get<Map<string, MemoryMember>>(this.key(channel, 'm'));
    const expired: string[] = [];
    if (!members) return { members, expired };
    const now = this.store.engine.now();
    for (const [member, entry] of members) {
      if (entry.leaseEnd > now) continue;
      members.delete(member);
      expired.push(member);
      if (expired.length >= 500) break;
    }
    return { members, expired };
  }

  async beat(channel: string, member: string, meta: string, ttlMs: number, max: number): Promise<BeatResult> {
    await this.store.ping();
    const { engine } = this.store;
    const swept = this.sweep(channel);
    const members = swept.members ?? new Map<string, MemoryMember>();
    const existing = members.get(member);
    if (!existing && members.size >= max) return { joined: false, full: true, expired: swept.expired };
    members.set(member, { leaseEnd: engine.now() + ttlMs, meta: meta === '' ? (existing?.meta ?? '') : meta });
    engine.set(this.key(channel, 'm'), members, ttlMs * 2);
    return { joined: !existing, full: false, expired: swept.expired };
  }

  async leave(channel: string, member: string): Promise<boolean> {
    await this.store.ping();
    const members = this.store.engine.get<Map<string, MemoryMember>>(this.key(channel, 'm'));
    return members?.delete(member) ?? false;
  }

  async list(channel: string, max: number) {
    await this.store.ping();
    const { members, expired } = this.sweep(channel);
    const out: Array<[string, string]> = [];
    if (members) {
      for (const [member, entry] of members) {
        if (out.length >= max) break;
        out.push([member, entry.meta]);
      }
    }
    return { expired, members: out };
  }
}

class RedisPresence implements PresenceBackend {
  private readonly key: (id: string, ...parts: string[]) => string;

  constructor(private readonly store: RedisStore) {
    this.key = store.keys.forFeature('presence');
  }

  private keys(channel: string): string[] {
    return [this.key(channel, 'm'), this.key(channel, 'meta')];
  }

  async beat(channel: string, member: string, meta: string, ttlMs: number, max: number): Promise<BeatResult> {
    const reply = (await this.store.script(presenceBeat, this.keys(channel), [member, meta, ttlMs, max])) as [
      unknown,
      unknown[] | undefined,
    ];
    const status = Number(reply[0]);
    return { joined: status === 1, full: status === -1, expired: (reply[1] ?? []).map(String) };
  }

  async leave(channel: string, member: string): Promise<boolean> {
    return Number(await this.store.script(presenceLeave, this.keys(channel), [member])) === 1;
  }

  async list(channel: string, max: number) {
    // ZRANGE 0 -1 would return everything: ask for at least one and drop it when none was wanted.
    const reply = (await this.store.script(presenceList, this.keys(channel), [Math.max(1, max)])) as Array<
      unknown[] | undefined
    >;
    const expired = (reply[0] ?? []).map(String);
    const names = max === 0 ? [] : (reply[1] ?? []);
    const metas = reply[2] ?? [];
    const members: Array<[string, string]> = names.map((name, i) => {
      // A user's @upstash/redis client may have parsed the stored JSON already: turn it back into text.
      const meta = metas[i];
      return [
        String(name),
        meta === null || meta === undefined ? '' : typeof meta === 'string' ? meta : JSON.stringify(meta),
      ];
    });
    return { expired, members };
  }
}
