// The session scripts as shipped: their SHA1s match what a real server computes, so EVALSHA hits on first use.

import * as scripts from '../../plugin/session/scripts.generated';
import { describeForEachStore } from '../support/stores';

describeForEachStore(
  'session scripts',
  ({ makeKit }) => {
    test('shipped SHA1s match SCRIPT LOAD', async () => {
      const kit = makeKit();
      const store = kit.store as unknown as { command: (...args: string[]) => Promise<string> };
      const all = Object.values(scripts);
      expect(all.map((s) => s.name).sort()).toEqual([
        'destroy',
        'index_add',
        'index_forget',
        'index_take',
        'load_many',
        'save',
        'touch',
      ]);
      for (const script of all) expect(await store.command('SCRIPT', 'LOAD', script.source)).toBe(script.sha);
    });
  },
  { tiers: ['standalone'] },
);
