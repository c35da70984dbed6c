// The live dashboard page: one self-contained HTML document (inline CSS and script, canvas charts drawn by hand, no
// CDN, so it works in an offline deployment). It polls `./redis-metrics` every few seconds with the bearer token the
// user typed or passed once in the URL fragment (`#token=…`, never sent to the server), kept in sessionStorage.

const STYLE = `
:root{--bg:#0f1419;--panel:#171d24;--line:#263040;--text:#e6edf3;--muted:#8b98a8;--a:#4cc2ff;--b:#f5a524;--c:#c084fc;--ok:#3ecf8e;--bad:#ff5c5c;--warn:#f5a524}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:baseline;padding:.9rem 1.2rem;border-bottom:1px solid var(--line)}
h1{font-size:1.05rem;margin:0;font-weight:600;letter-spacing:.01em}
#meta{color:var(--muted);font-size:.85rem}
#status{margin-left:auto;font-size:.8rem;color:var(--muted)}
main{padding:1rem 1.2rem;display:grid;gap:1rem}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.75rem}
.tile{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:.7rem .9rem}
.tile .k{color:var(--muted);font-size:.75rem;text-transform:uppercase;letter-spacing:.06em}
.tile .v{font-size:1.6rem;font-weight:600;margin-top:.15rem;font-variant-numeric:tabular-nums}
.tile .u{font-size:.8rem;color:var(--muted);margin-left:.2rem;font-weight:400}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:.75rem .9rem .6rem}
.card h2{font-size:.85rem;margin:0 0 .4rem;font-weight:600;display:flex;justify-content:space-between;gap:.5rem}
.card h2 span{color:var(--muted);font-weight:400;font-variant-numeric:tabular-nums}
canvas{width:100%;height:150px;display:block}
.legend{display:flex;flex-wrap:wrap;gap:.3rem .9rem;font-size:.75rem;color:var(--muted);margin-top:.3rem}
.legend i{display:inline-block;width:.7rem;height:.2rem;border-radius:2px;margin-right:.3rem;vertical-align:middle}
.off{color:var(--muted);font-size:.8rem;height:150px;display:flex;align-items:center;justify-content:center;text-align:center;border:1px dashed var(--line);border-radius:8px;padding:1rem}
table{width:100%;border-collapse:collapse;font-size:.8rem;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.3rem .4rem;border-bottom:1px solid var(--line)}
th{color:var(--muted);font-weight:500}
td.n,th.n{text-align:right}
.state-closed{color:var(--ok)}.state-open{color:var(--bad)}.state-half-open{color:var(--warn)}
#login{max-width:26rem;margin:3rem auto;background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:1.2rem}
#login p{color:var(--muted);margin:.2rem 0 .8rem}
#login input{width:100%;padding:.55rem .6rem;border-radius:6px;border:1px solid var(--line);background:var(--bg);color:var(--text);font:inherit}
#login button{margin-top:.7rem;padding:.5rem 1rem;border:0;border-radius:6px;background:var(--a);color:#00131f;font-weight:600;cursor:pointer}
#login .err{color:var(--bad);min-height:1.2em}
[hidden]{display:none!important}
@media (max-width:520px){header{padding:.7rem .8rem}main{padding:.7rem .8rem}.tile .v{font-size:1.3rem}.charts{grid-template-columns:1fr}}
`;

// Runs in the browser. Plain ES2017, no dependencies.
const SCRIPT = `
(function(){
'use strict';
var POLL_MS = 3000, KEEP = 100, MIN_POINTS = 20, KEY = 'rediskit-admin-token';
var hist = [];
var token = null;
// Next to this page, whether or not the address ends with a slash.
var API = location.pathname.replace(/\\/dashboard\\/?$/, '/redis-metrics');

function fromUrl(){
  var m = /(?:^|[#&?])token=([^&]+)/.exec(location.hash) || /(?:^|[?&])token=([^&]+)/.exec(location.search);
  if (m) {
    try { sessionStorage.setItem(KEY, decodeURIComponent(m[1])); } catch (e) {}
    history.replaceState(null, '', location.pathname);
  }
}
function $(id){ return document.getElementById(id); }
function fmt(v, digits){
  if (v === null || v === undefined || !isFinite(v)) return '–';
  var a = Math.abs(v);
  if (a >= 1e9) return (v/1e9).toFixed(1)+'G';
  if (a >= 1e6) return (v/1e6).toFixed(1)+'M';
  if (a >= 1e4) return (v/1e3).toFixed(1)+'k';
  return v.toFixed(digits === undefined ? (a < 10 && a !== Math.round(a) ? 2 : 0) : digits);
}
function bytes(v){ if (v === null || v === undefined) return '–'; return fmt(v/1048576, 1); }
function pct(v){ return v === null || v === undefined ? '–' : (v*100).toFixed(1); }
function esc(s){ return String(s).replace(/[&<>"']/g, function(c){ return '&#'+c.charCodeAt(0)+';'; }); }

function showLogin(message){
  $('app').hidden = true; $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('status').textContent = 'locked';
}
function showApp(){ $('login').hidden = true; $('app').hidden = false; }

var charts = [
  { id:'c-throughput', title:'Throughput', unit:'/s', series:[
    {label:'HTTP req/s', color:'#4cc2ff', get:function(r){return r.kit.http.requestsPerSecond;}},
    {label:'kit store cmd/s', color:'#f5a524', get:function(r){return r.kit.store.commandsPerSecond;}},
    {label:'server ops/s', color:'#c084fc', get:function(r){return r.server.opsPerSecond;}}]},
  { id:'c-latency', title:'HTTP latency', unit:'ms', series:[
    {label:'p50', color:'#3ecf8e', get:function(r){return r.kit.http.latencyMs.p50;}},
    {label:'p90', color:'#f5a524', get:function(r){return r.kit.http.latencyMs.p90;}},
    {label:'p99', color:'#ff5c5c', get:function(r){return r.kit.http.latencyMs.p99;}}]},
  { id:'c-store', title:'Store command latency', unit:'ms', off:function(r){return r.store.mode==='memory'?'Embedded store: commands run in process and are not timed.':null;}, series:[
    {label:'p50', color:'#3ecf8e', get:function(r){return r.kit.store.latencyMs.p50;}},
    {label:'p99', color:'#ff5c5c', get:function(r){return r.kit.store.latencyMs.p99;}}]},
  { id:'c-hits', title:'Hit ratios', unit:'%', max:100, series:[
    {label:'Redis keyspace', color:'#c084fc', get:function(r){return r.server.hitRatio==null?null:r.server.hitRatio*100;}},
    {label:'response cache', color:'#4cc2ff', get:function(r){return r.kit.cache&&r.kit.cache.hitRatio!=null?r.kit.cache.hitRatio*100:null;}},
    {label:'semantic cache', color:'#3ecf8e', get:function(r){return r.kit.semanticCache&&r.kit.semanticCache.hitRatio!=null?r.kit.semanticCache.hitRatio*100:null;}}]},
  { id:'c-ratelimit', title:'Rate-limit blocks', unit:'/s', off:function(r){return r.kit.rateLimit?null:'Rate limiting is not wired into metrics yet.';}, series:[
    {label:'blocked/s', color:'#ff5c5c', get:function(r){return r.kit.rateLimit&&r.kit.rateLimit.blockedPerSecond;}}]},
  { id:'c-locks', title:'Lock contention', unit:'ms', off:function(r){return r.kit.locks?null:'Locks are not wired into metrics yet.';}, series:[
    {label:'wait p50', color:'#f5a524', get:function(r){return r.kit.locks&&r.kit.locks.waitMs.p50;}},
    {label:'wait p99', color:'#ff5c5c', get:function(r){return r.kit.locks&&r.kit.locks.waitMs.p99;}}]},
  { id:'c-queue', title:'Queue depth', unit:'jobs', off:function(r){return r.kit.queue?null:'The queue is not wired into metrics yet.';}, series:[
    {label:'waiting', color:'#4cc2ff', get:function(r){return r.kit.queue&&r.kit.queue.waiting;}},
    {label:'active', color:'#3ecf8e', get:function(r){return r.kit.queue&&r.kit.queue.active;}},
    {label:'delayed', color:'#c084fc', get:function(r){return r.kit.queue&&r.kit.queue.delayed;}}]},
  { id:'c-memory', title:'Server memory', unit:'MB', off:function(r){return r.server.usedMemoryBytes==null?'The store does not report memory ('+(r.store.mode)+').':null;}, series:[
    {label:'used MB', color:'#c084fc', get:function(r){return r.server.usedMemoryBytes==null?null:r.server.usedMemoryBytes/1048576;}}]}
];

function buildCharts(){
  var box = $('charts');
  charts.forEach(function(c){
    var card = document.createElement('section');
    card.className = 'card';
    card.innerHTML = '<h2>'+esc(c.title)+' <span id="'+c.id+'-now" data-chart-value></span></h2>'+
      '<canvas id="'+c.id+'" role="img" aria-label="'+esc(c.title)+'"></canvas><div class="off" id="'+c.id+'-off" hidden></div>'+
      '<div class="legend">'+c.series.map(function(s){return '<span><i style="background:'+s.color+'"></i>'+esc(s.label)+'</span>';}).join('')+'</div>';
    box.appendChild(card);
  });
}

function draw(c){
  var canvas = $(c.id), off = $(c.id+'-off'), latest = hist[hist.length-1];
  if (!latest) return;
  var why = latest && c.off ? c.off(latest) : null;
  off.hidden = !why; canvas.hidden = !!why; off.textContent = why || '';
  if (why) { $(c.id+'-now').textContent = ''; return; }
  var dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return;
  canvas.width = Math.round(w*dpr); canvas.height = Math.round(h*dpr);
  var g = canvas.getContext('2d'); g.setTransform(dpr,0,0,dpr,0,0); g.clearRect(0,0,w,h);
  var pad = {l:40, r:6, t:6, b:16};
  var max = c.max || 0;
  if (!c.max) hist.forEach(function(r){ c.series.forEach(function(s){ var v=s.get(r); if (v!=null && v>max) max=v; }); });
  if (!max) max = 1;
  if (!c.max) { var mag = Math.pow(10, Math.floor(Math.log10(max))); max = Math.ceil(max*1.1/mag)*mag; }
  g.font = '10px system-ui,sans-serif'; g.fillStyle = '#8b98a8'; g.strokeStyle = '#263040'; g.lineWidth = 1;
  for (var i=0;i<=3;i++){
    var y = pad.t + (h-pad.t-pad.b)*i/3;
    g.beginPath(); g.moveTo(pad.l,Math.round(y)+.5); g.lineTo(w-pad.r,Math.round(y)+.5); g.stroke();
    g.textAlign='right'; g.textBaseline='middle'; g.fillText(fmt(max*(1-i/3)), pad.l-5, y);
  }
  g.textAlign='left'; g.textBaseline='bottom';
  // The x axis spans what has been collected (at least a minute), so a fresh page draws lines, not a sliver.
  var n = Math.max(hist.length, MIN_POINTS), xs = (w-pad.l-pad.r)/(n-1), start = n - hist.length;
  var span = Math.round((n-1)*POLL_MS/1000);
  g.fillText(span >= 120 ? Math.round(span/60)+' min ago' : span+' s ago', pad.l, h);
  g.textAlign='right'; g.fillText('now', w-pad.r, h);
  c.series.forEach(function(s){
    var pts = [];
    hist.forEach(function(r,k){ var v=s.get(r); if (v!=null && isFinite(v)) pts.push([pad.l+(start+k)*xs, pad.t+(h-pad.t-pad.b)*(1-Math.min(v,max)/max)]); });
    if (!pts.length) return;
    g.beginPath(); pts.forEach(function(p,k){ if(k) g.lineTo(p[0],p[1]); else g.moveTo(p[0],p[1]); });
    g.strokeStyle = s.color; g.lineWidth = 1.8; g.lineJoin='round'; g.stroke();
    g.lineTo(pts[pts.length-1][0], h-pad.b); g.lineTo(pts[0][0], h-pad.b); g.closePath();
    g.globalAlpha = .12; g.fillStyle = s.color; g.fill(); g.globalAlpha = 1;
    var last = pts[pts.length-1]; g.beginPath(); g.arc(last[0], last[1], 2.5, 0, 7); g.fillStyle = s.color; g.fill();
  });
  var first = c.series[0].get(latest);
  $(c.id+'-now').textContent = first==null ? '' : fmt(first)+' '+c.unit;
}

function tile(id, value, unit, cls){
  var el = $(id); el.innerHTML = esc(value)+(unit?'<span class="u">'+esc(unit)+'</span>':''); el.className = 'v'+(cls?' '+cls:'');
}

function render(r){
  // The first answer has no window yet (its percentiles cover everything since start-up): tiles only.
  if (r.windowSeconds > 0) { hist.push(r); if (hist.length > KEEP) hist.shift(); }
  $('meta').textContent = 'store: '+r.store.mode+(r.server.version?' · Redis '+r.server.version:'')+' · window '+fmt(r.windowSeconds,0)+' s';
  tile('t-rps', fmt(r.kit.http.requestsPerSecond), 'req/s');
  tile('t-requests', fmt(r.kit.http.requests), 'total');
  tile('t-p99', fmt(r.kit.http.latencyMs.p99), 'ms');
  tile('t-ops', fmt(r.server.opsPerSecond != null ? r.server.opsPerSecond : r.kit.store.commandsPerSecond), 'ops/s');
  tile('t-hit', pct(r.server.hitRatio), '%');
  tile('t-mem', bytes(r.server.usedMemoryBytes), 'MB');
  tile('t-circuit', r.store.circuit, '', 'state-'+r.store.circuit);
  charts.forEach(draw);
  $('routes').innerHTML = r.kit.http.routes.map(function(x){
    return '<tr><td>'+esc(x.method)+' '+esc(x.route)+'</td><td class="n">'+fmt(x.requests)+'</td><td class="n">'+fmt(x.latencyMs.p50)+'</td><td class="n">'+fmt(x.latencyMs.p99)+'</td></tr>';
  }).join('') || '<tr><td colspan="4">No requests yet.</td></tr>';
  var cmds = r.server.commandStats || [];
  $('commands').innerHTML = cmds.slice(0,8).map(function(x){
    return '<tr><td>'+esc(x.command)+'</td><td class="n">'+fmt(x.calls)+'</td><td class="n">'+fmt(x.usecPerCall,1)+'</td></tr>';
  }).join('') || '<tr><td colspan="3">'+(r.server.available?'No command statistics from this server.':'Not available on this store ('+esc(r.store.mode)+').')+'</td></tr>';
  $('status').textContent = 'updated '+new Date(r.time).toLocaleTimeString();
}

function poll(){
  fetch(API, { headers: { Authorization: 'Bearer '+token }, cache: 'no-store' }).then(function(res){
    if (res.status === 401 || res.status === 403) {
      try { sessionStorage.removeItem(KEY); } catch (e) {}
      return res.json().catch(function(){ return {}; }).then(function(b){
        token = null; showLogin(res.status === 401 ? 'Refused: that token is not valid.' : ((b.error && b.error.message) || 'Refused.'));
      });
    }
    if (!res.ok) throw new Error('HTTP '+res.status);
    return res.json().then(function(r){ showApp(); render(r); schedule(); });
  }).catch(function(e){ $('status').textContent = 'error: '+e.message+' (retrying)'; schedule(); });
}
var timer;
function schedule(){ clearTimeout(timer); if (token) timer = setTimeout(poll, POLL_MS); }

function start(){
  fromUrl();
  buildCharts();
  try { token = sessionStorage.getItem(KEY); } catch (e) {}
  $('login-form').addEventListener('submit', function(ev){
    ev.preventDefault();
    token = $('token').value.trim();
    if (!token) return;
    try { sessionStorage.setItem(KEY, token); } catch (e) {}
    poll();
  });
  window.addEventListener('resize', function(){ charts.forEach(draw); });
  if (token) poll(); else showLogin('');
}
start();
})();
`;

const BODY = `
<header><h1>express-redis-kit · live metrics</h1><span id="meta"></span><span id="status">connecting…</span></header>
<section id="login" hidden>
  <form id="login-form">
    <h2 style="margin:0;font-size:1rem">Admin token required</h2>
    <p>Paste the token set in <code>REDIS_KIT_ADMIN_TOKEN</code> (or <code>admin.token</code>). It stays in this tab.</p>
    <input id="token" type="password" autocomplete="off" placeholder="token" aria-label="admin token">
    <div class="err" id="login-error" role="alert"></div>
    <button type="submit">Open dashboard</button>
  </form>
</section>
<main id="app" hidden>
  <section class="tiles">
    <div class="tile"><div class="k">Requests</div><div class="v" id="t-rps" data-tile>–</div></div>
    <div class="tile"><div class="k">Served</div><div class="v" id="t-requests" data-tile>–</div></div>
    <div class="tile"><div class="k">HTTP p99</div><div class="v" id="t-p99" data-tile>–</div></div>
    <div class="tile"><div class="k">Store ops</div><div class="v" id="t-ops" data-tile>–</div></div>
    <div class="tile"><div class="k">Keyspace hits</div><div class="v" id="t-hit" data-tile>–</div></div>
    <div class="tile"><div class="k">Memory</div><div class="v" id="t-mem" data-tile>–</div></div>
    <div class="tile"><div class="k">Circuit</div><div class="v" id="t-circuit" data-tile>–</div></div>
  </section>
  <section class="charts" id="charts"></section>
  <section class="charts">
    <div class="card"><h2>Routes</h2><table><thead><tr><th>route</th><th class="n">requests</th><th class="n">p50 ms</th><th class="n">p99 ms</th></tr></thead><tbody id="routes"></tbody></table></div>
    <div class="card"><h2>Server commands <span>INFO commandstats</span></h2><table><thead><tr><th>command</th><th class="n">calls</th><th class="n">µs/call</th></tr></thead><tbody id="commands"></tbody></table></div>
  </section>
</main>`;

let cached: string | undefined;

export function dashboardPage(): string {
  cached ??= `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>express-redis-kit · metrics</title>
<style>${STYLE}</style></head><body>${BODY}
<script>${SCRIPT}</script></body></html>`;
  return cached;
}
