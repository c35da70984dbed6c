// The fault proxy the fault-injection suite stands between the kit and Redis: checked here against a TCP echo
// server, so a fault that the suite believes it injected is really there.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../support/redis-server';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';

let echo: Server;
let echoPort: number;
let proxy: FaultProxy;

beforeAll(async () => {
  echo = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
  echoPort = (echo.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

beforeEach(async () => {
  proxy = await startFaultProxy({ targetPort: echoPort });
});

afterEach(async () => {
  await proxy.close();
});

interface Client {
  socket: Socket;
  received: () => string;
  closed: Promise<{ error?: NodeJS.ErrnoException }>;
}

async function open(port: number): Promise<Client> {
  const socket = connect({ host: '127.0.0.1', port });
  let data = '';
  let error: NodeJS.ErrnoException | undefined;
  socket.on('data', (chunk) => {
    data += chunk.toString();
  });
  socket.on('error', (e) => {
    error = e;
  });
  const closed = new Promise<{ error?: NodeJS.ErrnoException }>((resolve) =>
    socket.on('close', () => resolve(error ? { error } : {})),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => data, closed };
}

async function until(check: () => boolean, ms = 2000): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - started;
}

test('forwards both ways, in order', async () => {
  const c = await open(proxy.port);
  for (let i = 0; i < 50; i++) c.socket.write(`${i},`);
  const expected = Array.from({ length: 50 }, (_, i) => `${i},`).join('');
  await until(() => c.received() === expected);
  expect(proxy.stats).toMatchObject({ accepted: 1, open: 1 });
  c.socket.destroy();
});

test('adds latency per direction, keeping order when it changes', async () => {
  const c = await open(proxy.port);
  proxy.setLatency({ up: 100, down: 50 });
  const started = Date.now();
  c.socket.write('a');
  await new Promise((r) => setTimeout(r, 30)); // 'a' is at the proxy, held for 100 ms
  proxy.setLatency({ up: 0 }); // a later chunk must not overtake the delayed one
  c.socket.write('b');
  await until(() => c.received() === 'ab');
  expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  proxy.setLatency({ up: 0, down: 0 });
  const fast = Date.now();
  c.socket.write('c');
  await until(() => c.received() === 'abc');
  expect(Date.now() - fast).toBeLessThan(100);
  c.socket.destroy();
});

test('resetAll resets open connections; new ones work', async () => {
  const c = await open(proxy.port);
  proxy.resetAll();
  const { error } = await c.closed;
  expect(error?.code).toBe('ECONNRESET');
  const d = await open(proxy.port);
  d.socket.write('x');
  await until(() => d.received() === 'x');
  d.socket.destroy();
});

test('a reset storm resets every new connection until it ends', async () => {
  proxy.resetStorm(300);
  // Reset at once: the client may see it before or after its connect event.
  const during = connect({ host: '127.0.0.1', port: proxy.port });
  const error = await new Promise<NodeJS.ErrnoException>((resolve) => during.once('error', resolve));
  expect(error.code).toBe('ECONNRESET');
  await new Promise((r) => setTimeout(r, 350));
  const after = await open(proxy.port);
  after.socket.write('ok');
  await until(() => after.received() === 'ok');
  after.socket.destroy();
  expect(proxy.stats.resets).toBeGreaterThanOrEqual(1);
});

test('a black hole answers nothing and delivers the held bytes, in order, when healed', async () => {
  const before = await open(proxy.port);
  proxy.blackhole();
  before.socket.write('1');
  const during = await open(proxy.port); // accepted, but not forwarded
  during.socket.write('2');
  await new Promise((r) => setTimeout(r, 200));
  expect(before.received()).toBe('');
  expect(during.received()).toBe('');
  before.socket.write('3');
  proxy.heal();
  await until(() => before.received() === '13' && during.received() === '2');
  before.socket.destroy();
  during.socket.destroy();
});

test('a server that refuses shows as a reset to the client', async () => {
  proxy.retarget(await freePort());
  const c = await open(proxy.port);
  expect((await c.closed).error?.code).toBe('ECONNRESET');
});
