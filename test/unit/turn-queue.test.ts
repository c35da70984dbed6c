// TurnQueue: the items pushed in one turn go out together at the end of it, a full group at once, in push order.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { TurnQueue } from '../../plugin/connection/turn-queue';

describe('TurnQueue', () => {
  test('groups a turn, sends a full group at once, keeps order, and send() drains now', async () => {
    const groups: number[][] = [];
    let after = 0;
    const queue = new TurnQueue<number>(
      4,
      (group) => groups.push(group),
      () => after++,
    );
    for (let i = 0; i < 10; i++) queue.push(i);
    // Two full groups left at once; the rest waits for the end of the turn.
    expect(groups).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    await nextTurn();
    expect(groups).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    queue.push(10);
    queue.send();
    expect(groups.at(-1)).toEqual([10]);
    await nextTurn();
    // Nothing left for the scheduled end of turn, so nothing more is sent.
    expect(groups).toHaveLength(4);
    expect(after).toBe(4);
  });
});
