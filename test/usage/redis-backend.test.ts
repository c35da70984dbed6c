// The Redis usage backend's flush against a scripted store: counters and unique users in one pipeline, and what
// happens on each way that pipeline can fail. The store tiers (usage.test.ts, idempotent.test.ts) show the same on
// real servers; here each failure is made to order.

import { ReplyError } from 'ioredis';
import { StoreCommandError, StoreTimeoutError, StoreUnavailableError } from '../../plugin/core/errors';
import type { UsageBatch } from '../../plugin/usage/backend';
import { RedisUsageBackend } from '../../plugin/usage/redis';

type Command = readonly [string, ...unknown[]];

/** A store whose pipeline() answers with whatever the test queued, recording what was sent. */
class ScriptedStore {
  sent: Command[][] = [];
  scripts = 0;
  answers: Array<(commands: Command[]) => unknown[]> = [];
  async pipeline(commands: Command[]): Promise<unknown[]> {
    this.sent.push(commands);
    const answer = this.answers.shift();
    if (!answer) throw new Error('no answer queued for this pipeline');
    return answer(commands);
  }
  async script(): Promise<unknown> {
    this.scripts++;
    return [1, 0];
  }
}

const applied = (commands: Command[]): unknown[] => commands.map((c) => (c[0] === 'EVALSHA' ? [1, 0] : 1));

function batch(): UsageBatch {
  const counter = (ws: string) => ({
    appliedKey: `{${ws}}:applied`,
    counters: [
      {
        keys: [`{${ws}}:m`, `{${ws}}:h`, `{${ws}}:d`, `{${ws}}:M`] as const,
        expireAt: [1, 2, 3, 4] as const,
        fields: new Map([
          ['n', 2],
          ['u:a', 1],
        ]),
      },
    ],
  });
  return {
    id: 't.1',
    seq: 1,
    groups: [counter('w0'), counter('w1')],
    uniques: [
      { key: '{w0}:uu', members: ['a'], expireAt: 9 },
      { key: '{w1}:uu', members: ['b'], expireAt: 9 },
    ],
  };
}

function backend(store: ScriptedStore) {
  const uniqueFailures: unknown[] = [];
  const b = new RedisUsageBackend(store as never, (error) => uniqueFailures.push(error));
  return { b, uniqueFailures };
}

const names = (commands: Command[] | undefined) => (commands ?? []).map((c) => c[0]);

describe('RedisUsageBackend.apply', () => {
  test('one pipeline: two scripts (one per workspace), then PFADD and PEXPIREAT per workspace', async () => {
    const store = new ScriptedStore();
    store.answers.push(applied);
    const { b, uniqueFailures } = backend(store);
    await b.apply(batch());
    expect(store.sent).toHaveLength(1);
    expect(names(store.sent[0])).toEqual(['EVALSHA', 'EVALSHA', 'PFADD', 'PEXPIREAT', 'PFADD', 'PEXPIREAT']);
    expect(uniqueFailures).toEqual([]);
  });

  test('a store that rejects the mixed pipeline as a whole gets the counters and the unique users apart', async () => {
    const store = new ScriptedStore();
    store.answers.push(() => {
      throw new StoreCommandError('pipeline: this.batch[command] is not a function');
    });
    store.answers.push(applied, applied);
    const { b, uniqueFailures } = backend(store);
    await b.apply(batch());
    expect(store.sent.map(names)).toEqual([
      ['EVALSHA', 'EVALSHA', 'PFADD', 'PEXPIREAT', 'PFADD', 'PEXPIREAT'],
      ['EVALSHA', 'EVALSHA'],
      ['PFADD', 'PEXPIREAT', 'PFADD', 'PEXPIREAT'],
    ]);
    expect(uniqueFailures).toEqual([]);
  });

  test('an unreachable store: the error goes up (the batch is kept for a retry), nothing else is sent', async () => {
    const store = new ScriptedStore();
    store.answers.push(() => {
      throw new StoreUnavailableError('connection refused');
    });
    const { b, uniqueFailures } = backend(store);
    await expect(b.apply(batch())).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(store.sent).toHaveLength(1);
    expect(uniqueFailures).toEqual([]);
  });

  test('a script that timed out in the pipeline: unavailable (retried), and a failed estimate is not reported as if the counts went through', async () => {
    const store = new ScriptedStore();
    store.answers.push((commands) =>
      commands.map((c, i) =>
        i === 1
          ? new StoreTimeoutError('pipeline', 1000)
          : c[0] === 'PFADD'
            ? new ReplyError('ERR unknown command PFADD')
            : applied([c])[0],
      ),
    );
    const { b, uniqueFailures } = backend(store);
    await expect(b.apply(batch())).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(uniqueFailures).toEqual([]);
  });

  test('a refused PFADD costs the counts nothing and turns the estimate off; a refused increment is not retried', async () => {
    const store = new ScriptedStore();
    store.answers.push((commands) =>
      commands.map((c) => (c[0] === 'PFADD' ? new ReplyError('ERR unknown command PFADD') : applied([c])[0])),
    );
    const { b, uniqueFailures } = backend(store);
    await b.apply(batch());
    expect(uniqueFailures).toHaveLength(1);
    expect(uniqueFailures[0]).toBeInstanceOf(StoreCommandError);
    // Off from now on: the next batch sends the scripts alone.
    store.answers.push((commands) => commands.map((c) => (c[0] === 'EVALSHA' ? [1, 2] : 1)));
    await expect(b.apply({ ...batch(), id: 't.2', seq: 2 })).rejects.toThrow(/2 increments refused/);
    expect(names(store.sent[1])).toEqual(['EVALSHA', 'EVALSHA']);
    expect(store.scripts).toBe(0);
  });

  test('a lost script is loaded and run again for the calls that missed it', async () => {
    const store = new ScriptedStore();
    store.answers.push((commands) =>
      commands.map((c, i) => (i === 0 ? new ReplyError('NOSCRIPT No matching script') : applied([c])[0])),
    );
    const { b, uniqueFailures } = backend(store);
    await b.apply(batch());
    expect(store.scripts).toBe(1);
    expect(uniqueFailures).toEqual([]);
  });
});
