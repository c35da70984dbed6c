// The per-process hub with a scripted backend: lost pub/sub messages are filled from the history in order, a
// history that restarted is followed, and replay does not repeat what arrives live meanwhile.

import type { Entry, ReadResult, RealtimeBackend } from '../../plugin/realtime/backend';
import { Hub, type Listener } from '../../plugin/realtime/hub';
import { KitLogger, silentLogger } from '../../plugin/core/logger';

class FakeBackend implements RealtimeBackend {
  readonly pushes = true;
  history: Entry[] = [];
  push: ((entry: Entry) => void) | undefined;
  reads = 0;
  readGate: Promise<void> = Promise.resolve();

  add(id: number): Entry {
    const entry = { id, payload: JSON.stringify({ type: 'message', data: id, at: 0 }) };
    this.history.push(entry);
    return entry;
  }
  async append(): Promise<number> {
    throw new Error('not used');
  }
  async read(_channel: string, after: number): Promise<ReadResult> {
    this.reads++;
    await this.readGate;
    const current = this.history.at(-1)?.id ?? 0;
    if (after < 0) return { current, entries: [] };
    return { current, entries: this.history.filter((e) => (after > current ? true : e.id > after)) };
  }
  async listen(_channel: string, onEntry: (entry: Entry) => void): Promise<() => Promise<void>> {
    this.push = onEntry;
    return async () => {
      this.push = undefined;
    };
  }
}

function collector(): Listener & { ids: number[] } {
  const ids: number[] = [];
  return {
    ids,
    cursor: 0,
    pending: null,
    deliver: (entry) => {
      ids.push(entry.id);
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

test('a jump in ids is filled from the history, in order, before the new entry', async () => {
  const backend = new FakeBackend();
  const hub = new Hub(backend, { pollMinMs: 10, pollMaxMs: 10 }, new KitLogger(silentLogger));
  const listener = collector();
  await hub.attach('c', listener);
  backend.push?.(backend.add(1));
  backend.add(2);
  backend.add(3); // 2 and 3 were lost on the way (subscriber connection dropped)
  backend.push?.(backend.add(4));
  backend.push?.(backend.add(5));
  await tick();
  expect(listener.ids).toEqual([1, 2, 3, 4, 5]);
  await hub.close();
});

test('an id lower than the last one (history expired and restarted) is delivered, not dropped', async () => {
  const backend = new FakeBackend();
  const hub = new Hub(backend, { pollMinMs: 10, pollMaxMs: 10 }, new KitLogger(silentLogger));
  const listener = collector();
  await hub.attach('c', listener);
  backend.push?.(backend.add(1));
  backend.push?.(backend.add(2));
  await tick();
  backend.history = [];
  backend.push?.(backend.add(1));
  await tick();
  expect(listener.ids).toEqual([1, 2, 1]);
  await hub.close();
});

test('live entries arriving during a replay are queued and not repeated', async () => {
  const backend = new FakeBackend();
  const hub = new Hub(backend, { pollMinMs: 10, pollMaxMs: 10 }, new KitLogger(silentLogger));
  const first = collector();
  await hub.attach('c', first);
  for (let id = 1; id <= 3; id++) backend.push?.(backend.add(id));
  await tick();
  let open: () => void = () => undefined;
  backend.readGate = new Promise((r) => {
    open = r;
  });
  const second = collector();
  const attaching = hub.attach('c', second, 1);
  await tick();
  backend.push?.(backend.add(4)); // arrives while the replay read is held
  await tick();
  open();
  await attaching;
  await tick();
  expect(second.ids).toEqual([2, 3, 4]);
  expect(first.ids).toEqual([1, 2, 3, 4]);
  await hub.close();
});

test('an event this process published that pub/sub lost is read from the history within a second', async () => {
  const backend = new FakeBackend();
  const hub = new Hub(backend, { pollMinMs: 10, pollMaxMs: 10 }, new KitLogger(silentLogger));
  const listener = collector();
  await hub.attach('c', listener);
  backend.push?.(backend.add(1));
  await tick();
  // Published here, lost on the way back (nothing later reveals the gap), long after the subscription's catch-ups.
  hub.published('c', backend.add(2).id);
  const deadline = Date.now() + 900;
  while (listener.ids.length < 2 && Date.now() < deadline) await tick();
  expect(listener.ids).toEqual([1, 2]);
  // Delivered by pub/sub after all: not twice.
  backend.push?.(backend.history[1] as Entry);
  hub.published('c', 2);
  await new Promise((r) => setTimeout(r, 300));
  expect(listener.ids).toEqual([1, 2]);
  await hub.close();
});

test('a listener step that throws does not stop the entries after it', async () => {
  const backend = new FakeBackend();
  const hub = new Hub(backend, { pollMinMs: 10, pollMaxMs: 10 }, new KitLogger(silentLogger));
  const ids: number[] = [];
  const listener: Listener = {
    cursor: 0,
    pending: null,
    deliver: (entry) => {
      ids.push(entry.id);
      if (entry.id === 1) throw new Error('a broken stream');
    },
  };
  await hub.attach('c', listener);
  backend.push?.(backend.add(1));
  backend.push?.(backend.add(2));
  await tick();
  expect(ids).toEqual([1, 2]);
  await hub.close();
});

test('a pub/sub copy of an entry published before the subscription, arriving after it, is not delivered twice', async () => {
  // A Cluster's bus can bring a message published on another node just before this SUBSCRIBE after it.
  const backend = new FakeBackend();
  const hub = new Hub(backend, { pollMinMs: 10, pollMaxMs: 10 }, new KitLogger(silentLogger));
  for (let i = 1; i <= 3; i++) backend.add(i);
  const listener = collector();
  await hub.attach('c', listener, 1);
  expect(listener.ids).toEqual([2, 3]);
  backend.push?.(backend.history[2] as Entry); // id 3, late
  backend.push?.(backend.add(4));
  await tick();
  expect(listener.ids).toEqual([2, 3, 4]);
  await hub.close();
});
