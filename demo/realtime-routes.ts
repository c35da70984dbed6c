// The realtime demo: a small collaboration page (who is here, live messages) built on the kit's browser client.
// Mount the router on the demo app, and create the kit with `demoRealtimeOptions` (or an authorize hook that lets
// `demo:` channels through). The page loads the client from this router, compiled from its TypeScript source
// once, so the demo needs no build step and no CDN.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Request, type Response, Router } from 'express';
import ts from 'typescript';
import type { RealtimeOptions } from '../plugin/index.js';

// The demo runs as CommonJS (tsx without "type": "module", and jest), where __dirname is defined.
const here = __dirname;

/** Realtime options for the demo: only `demo:` channels, open to anyone (it is a demo). */
export const demoRealtimeOptions: RealtimeOptions = {
  authorize: (_req, { channel }) => channel.startsWith('demo:'),
};

let compiled: string | undefined;
function clientSource(): string {
  compiled ??= ts.transpileModule(readFileSync(join(here, '..', 'plugin', 'client', 'core.ts'), 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2020 },
  }).outputText;
  return compiled;
}

export interface RealtimeDemoOptions {
  /** Where the kit's routers are mounted. @default '/api/v1' */
  apiBase?: string;
}

/** The demo page at `/realtime` and its script at `/realtime/client.js`, relative to where the router is mounted. */
export function realtimeDemoRoutes(options: RealtimeDemoOptions = {}): Router {
  const apiBase = options.apiBase ?? '/api/v1';
  const router = Router();
  router.get('/realtime/client.js', (_req: Request, res: Response) => {
    res.type('text/javascript').setHeader('Cache-Control', 'no-cache');
    res.send(clientSource());
  });
  router.get('/realtime', (req: Request, res: Response) => {
    res.type('html').setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'");
    res.send(page(apiBase, `${req.baseUrl}/realtime`));
  });
  router.get('/realtime/app.js', (_req: Request, res: Response) => {
    res.type('text/javascript').setHeader('Cache-Control', 'no-cache');
    res.send(APP_SCRIPT);
  });
  return router;
}

function page(apiBase: string, self: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Realtime demo · express-redis-kit</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}
main{display:grid;grid-template-columns:12rem 1fr;gap:1.5rem}
ul{list-style:none;padding:0;margin:0}#messages{min-height:12rem;border:1px solid #ddd;padding:.5rem;border-radius:4px}
#members li::before{content:"● ";color:#2a2}small{color:#777}form{display:flex;gap:.5rem;margin-top:.5rem}
input{flex:1;padding:.3rem}
</style></head><body data-api="${apiBase}">
<h1>Realtime demo</h1>
<p>Room <code id="room"></code> as <strong id="me"></strong> · <span id="status">connecting</span>.
Open this page in a second window to see presence and messages move.</p>
<main>
<section><h2>Here now</h2><ul id="members"></ul></section>
<section><h2>Messages</h2><ul id="messages"></ul>
<form id="send"><input id="text" autocomplete="off" maxlength="500" placeholder="Say something" required><button>Send</button></form>
</section>
</main>
<script type="module" src="${self}/app.js"></script>
</body></html>`;
}

// The page's own script: plain ES module, no framework; the React hooks are the same calls wrapped in effects.
const APP_SCRIPT = `import { channelUrl, joinPresence, listPresence, publish, subscribe } from './client.js';
const params = new URLSearchParams(location.search);
const room = 'demo:' + (params.get('room') || 'lobby').replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 40);
const name = (params.get('name') || 'guest-' + Math.random().toString(36).slice(2, 7)).replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 40) || 'guest';
const url = channelUrl(document.body.dataset.api, room);
document.getElementById('room').textContent = room;
document.getElementById('me').textContent = name;
const members = new Map();
const render = () => {
  const list = document.getElementById('members');
  list.replaceChildren(...[...members.keys()].sort().map((m) => {
    const li = document.createElement('li');
    li.dataset.member = m;
    li.textContent = m + (m === name ? ' (you)' : '');
    return li;
  }));
};
const refresh = () => listPresence(url).then((list) => {
  members.clear();
  for (const m of list) members.set(m.member, m.meta);
  render();
}, () => undefined);
const say = (event) => {
  const li = document.createElement('li');
  const who = document.createElement('strong');
  who.textContent = String(event.data && event.data.from) + ': ';
  li.append(who, String(event.data && event.data.text));
  document.getElementById('messages').append(li);
};
subscribe(url, (event) => {
  if (event.type === 'presence.join') { members.set(event.data.member, event.data.meta); render(); }
  else if (event.type === 'presence.leave') { members.delete(event.data.member); render(); }
  else if (event.type === 'chat') say(event);
}, { onStatus: (status) => {
  document.getElementById('status').textContent = status;
  if (status === 'open') refresh();
} });
const session = joinPresence(url, { member: name, meta: { since: Date.now() } });
addEventListener('pagehide', () => void session.leave());
document.getElementById('send').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('text');
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  publish(url, { from: name, text }, { type: 'chat' }).catch((error) => alert(error.message));
});
`;
