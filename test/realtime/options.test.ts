// Realtime options: defaults, durations, and misconfiguration caught at createRedisKit() with the fix in the message.

import { createRedisKit } from '../../plugin/index';
import { parseRealtimeOptions } from '../../plugin/realtime/options';

test('defaults match the documented ones', () => {
  const config = parseRealtimeOptions();
  expect(config).toMatchObject({
    historySize: 1000,
    historyTtlMs: 86_400_000,
    maxEventBytes: 16_384,
    heartbeatMs: 15_000,
    maxClientBuffer: 1_048_576,
    maxClients: 10_000,
    pollMinMs: 250,
    pollMaxMs: 2000,
    presenceTtlMs: 30_000,
    maxMembers: 1000,
    maxMetaBytes: 1024,
  });
  expect(config.authorize).toBeUndefined();
});

test('durations and nested options are parsed', () => {
  const config = parseRealtimeOptions({ heartbeat: '5 s', poll: { min: 100, max: '1 s' }, presence: { ttl: '10 s' } });
  expect(config).toMatchObject({ heartbeatMs: 5000, pollMinMs: 100, pollMaxMs: 1000, presenceTtlMs: 10_000 });
});

test('mistakes throw at construction with the nearest valid name', () => {
  const make = (realtime: unknown) =>
    createRedisKit({ store: 'memory', logger: false, env: {}, realtime: realtime as never });
  expect(() => make({ authorise: () => true })).toThrow(/unknown option 'authorise'.*Did you mean 'authorize'/);
  expect(() => make({ presence: { tll: '1 s' } })).toThrow(/Did you mean 'ttl'/);
  expect(() => make({ authorize: true })).toThrow(TypeError);
  expect(() => make({ historySize: 0 })).toThrow(/historySize/);
  expect(() => make({ presence: { maxMembers: 10_000 } })).toThrow(/maxMembers.*5000/);
  expect(() => make({ presence: { ttl: '500 ms' } })).toThrow(/at least '1 s'/);
  expect(() => make({ poll: { min: '2 s', max: '1 s' } })).toThrow(/max must be at least min/);
  expect(() => make({ heartbeat: 'soon' })).toThrow(/heartbeat/);
});

test('publish and presence reject bad input with typed errors, not crashes', async () => {
  const kit = createRedisKit({ store: 'memory', logger: false, env: {} });
  await expect(kit.realtime.publish('bad channel', { data: 1 })).rejects.toMatchObject({
    code: 'ERR_KIT_REALTIME_INPUT',
    status: 400,
  });
  await expect(kit.realtime.publish('ok', null as never)).rejects.toMatchObject({ status: 400 });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  await expect(kit.realtime.publish('ok', { data: cyclic })).rejects.toMatchObject({ status: 400 });
  await expect(kit.realtime.publish('ok', { data: 'x'.repeat(20_000) })).rejects.toMatchObject({ status: 413 });
  await expect(kit.presence.join('ok', 'has space')).rejects.toMatchObject({ code: 'ERR_KIT_REALTIME_INPUT' });
  await expect(kit.realtime.subscribe('{x}', () => undefined)).rejects.toMatchObject({ status: 400 });
  await kit.close();
  await expect(kit.realtime.publish('ok', { data: 1 })).rejects.toMatchObject({ code: 'ERR_KIT_CLOSED' });
});
