// Bad input through the cache's own API (the demo route has its HTTP twin): a clear 4xx error or a bypass, and
// bounded work on any input size.

import { createRedisKit, type LlmRequest } from '../../plugin/index';
import { OfflineEmbedder } from '../../plugin/semantic-cache/embedders/offline';

const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
const cache = kit.semanticCache();
afterAll(() => kit.close());

const ask = (content: string, extra: Partial<LlmRequest> = {}): LlmRequest => ({
  model: 'm',
  messages: [{ role: 'user', content }],
  ...extra,
});

test.each([
  ['missing model', 400, { messages: [{ role: 'user', content: 'hi' }] }],
  ['empty model', 400, { model: '', messages: [{ role: 'user', content: 'hi' }] }],
  ['empty prompt', 400, ask('  \n ')],
  ['no messages and no prompt', 400, { model: 'm' }],
  ['lone surrogate (invalid UTF-16, not encodable as UTF-8)', 400, ask('caf\ud800 au lait')],
  ['temperature 1e9', 400, ask('hi', { temperature: 1e9 })],
  ['temperature NaN', 400, ask('hi', { temperature: Number.NaN })],
  ['max_tokens -5', 400, ask('hi', { max_tokens: -5 })],
  ['a 1.1 MB prompt', 413, ask('x'.repeat(1_100_000))],
  [
    '2,000 messages',
    413,
    { model: 'm', messages: Array.from({ length: 2000 }, () => ({ role: 'user', content: 'a' })) },
  ],
])('%s → %i from lookup and from store, before any embedding', async (_name, status, request) => {
  const embed = jest.spyOn(OfflineEmbedder.prototype, 'embedOne');
  await expect(cache.lookup(request as LlmRequest)).rejects.toMatchObject({ status });
  await expect(cache.store(request as LlmRequest, 'answer')).rejects.toMatchObject({ status });
  expect(embed).not.toHaveBeenCalled();
  embed.mockRestore();
});

test('a long prompt under the request bound is bypassed (too-large), not embedded', async () => {
  const long = ask(`Summarise this: ${'lorem ipsum dolor sit amet '.repeat(30_000)}`); // ~800 kB
  const embed = jest.spyOn(OfflineEmbedder.prototype, 'embedOne');
  const r = await cache.lookup(long);
  expect(r).toMatchObject({ status: 'bypass', reason: 'too-large' });
  expect((await cache.store(long, 'answer')).stored).toBe(false);
  expect(embed).not.toHaveBeenCalled();
  embed.mockRestore();
});

test('a question just under maxQueryChars is cached and found again', async () => {
  const text = `Explain ${'the replication settings of cluster number 7 and '.repeat(150)}`.slice(0, 7900);
  expect((await cache.store(ask(text), 'A')).stored).toBe(true);
  const r = await cache.lookup(ask(`${text.slice(0, -20)} please`));
  expect(r.status).toBe('hit');
});
