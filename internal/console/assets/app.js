// The scalepress dashboard: one server-sent event stream (a snapshot, then
// updates and events), rendered with DOM calls only. Text from the server is
// always set as textContent, never parsed as markup: event messages carry
// names chosen by strangers (a login throttling event names the user name a
// client tried).
'use strict';
(function () {
  const HISTORY_MS = 10 * 60 * 1000;
  const MAX_EVENTS = 200;
  const TOKEN_KEY = 'scalepress-api-token';
  const $ = (id) => document.getElementById(id);
  const state = { status: null, edges: [], dns: [], host: null, load: [], events: [], seen: new Set() };

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells, attrs) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? '' : String(c);
      tr.appendChild(td);
    }
    if (attrs) for (const k in attrs) tr.dataset[k] = attrs[k];
    return tr;
  }
  function fill(tableId, rows) {
    const body = $(tableId).tBodies[0];
    body.replaceChildren(...rows);
  }
  function badge(text, kind) { return el('span', text, 'badge s-' + String(kind || text).replace(/[^a-z-]/gi, '')); }
  function pct(x) { return (100 * (x || 0)).toFixed(1) + '%'; }
  function bar(x) {
    const b = el('span', null, 'bar');
    const f = el('span', null, x > 0.85 ? 'hot' : '');
    f.style.width = Math.min(100, Math.max(0, 100 * (x || 0))) + '%';
    b.appendChild(f);
    const w = el('span');
    w.append(b, pct(x));
    return w;
  }
  function hostOf(addr) { const i = String(addr || '').lastIndexOf(':'); return i > 0 ? addr.slice(0, i) : addr; }
  function clock(t) { const d = new Date(t); return isNaN(d) ? '' : d.toLocaleTimeString(); }

  function renderHeader() {
    const st = state.status;
    const site = $('site');
    site.textContent = st.site_url;
    site.href = /^https?:\/\//.test(st.site_url) ? st.site_url : '#';
    const r = $('ready');
    r.textContent = st.ready ? 'ready' : 'starting';
    r.className = 'badge s-' + (st.ready ? 'ready' : 'starting');
    const h = state.host;
    if (h) $('host').textContent = `host: CPU ${pct(h.cpu)} of ${h.cpus}, load ${(h.load1 || 0).toFixed(2)}`;
  }

  function renderNodes() {
    const st = state.status;
    const nodes = st.nodes || [];
    const inService = nodes.filter((n) => n.state === 'in-service').length;
    const a = st.autoscaling;
    $('node-count').textContent = `${nodes.length} nodes, ${inService} in service` + (a ? `, desired ${a.desired} (min ${a.min}, max ${a.max})` : '');
    $('node-count').dataset.count = String(nodes.length);
    fill('nodes', nodes.map((n) => row([n.id, badge(n.state), hostOf(n.addr), bar(n.utilization), n.restarts || 0, n.files_seq || ''], { node: n.id })));
  }

  function svg(tag, attrs) {
    const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function renderChart() {
    const c = $('chart');
    const W = 600, H = 180, pad = 4;
    const load = state.load;
    const kids = [];
    for (const y of [0.25, 0.5, 0.75]) kids.push(svg('line', { x1: 0, x2: W, y1: H - y * H, y2: H - y * H, stroke: '#e5e5e5' }));
    if (load.length > 1) {
      // The x axis spans what there is, up to HISTORY_MS.
      const t1 = Date.parse(load[load.length - 1].t), t0 = Math.max(Date.parse(load[0].t), t1 - HISTORY_MS);
      const span = Math.max(1, t1 - t0);
      const x = (s) => Math.max(0, ((Date.parse(s.t) - t0) / span) * W);
      const y = (v) => H - pad - Math.min(1, Math.max(0, v)) * (H - 2 * pad);
      const maxN = Math.max(1, ...load.map((s) => Math.max(s.in_service, s.desired)));
      const yn = (n) => H - pad - (n / maxN) * (H - 2 * pad) * 0.9;
      const line = (f, color, dash) => {
        const pts = load.map((s) => `${x(s).toFixed(1)},${f(s).toFixed(1)}`).join(' ');
        const p = svg('polyline', { points: pts, fill: 'none', stroke: color, 'stroke-width': 2 });
        if (dash) p.setAttribute('stroke-dasharray', '6 4');
        kids.push(p);
      };
      line((s) => yn(s.in_service), '#00a32a');
      line((s) => y(s.target), '#d63638', true);
      line((s) => y(s.utilization), '#2271b1');
      const label = svg('text', { x: W - 4, y: 14, 'text-anchor': 'end', 'font-size': 12, fill: '#646970' });
      label.textContent = `${maxN} nodes, last ${Math.round(span / 1000)} s`;
      kids.push(label);
      const last = load[load.length - 1];
      $('load-now').textContent = `now ${pct(last.utilization)} of target ${pct(last.target)}, ${last.in_service} in service`;
    }
    c.replaceChildren(...kids);
  }

  function why(e) {
    const i = e.inputs;
    if (!i) return '';
    if (typeof i.reason === 'string') return i.reason;
    return Object.keys(i).sort().map((k) => `${k}=${typeof i[k] === 'object' ? JSON.stringify(i[k]) : i[k]}`).join('  ');
  }
  function renderEvents() {
    const items = state.events.slice().reverse().map((e) => {
      const li = el('li', null, 'k-' + String(e.kind).replace(/[^a-z]/gi, ''));
      const t = el('time', clock(e.time));
      t.dateTime = e.time;
      li.append(t, badge(e.kind, 'kind'), ' ', el('span', e.message, 'msg'));
      const w = why(e);
      if (w) li.appendChild(el('div', w, 'why'));
      li.dataset.seq = String(e.seq);
      return li;
    });
    $('events').replaceChildren(...items);
  }
  function addEvent(e) {
    if (state.seen.has(e.seq)) return;
    state.seen.add(e.seq);
    state.events.push(e);
    if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
  }

  function renderEdges() {
    fill('edges', state.edges.map((e) => row([
      e.id, e.region, badge(e.error ? 'unreadable' : e.healthy ? 'healthy' : 'unhealthy', e.healthy && !e.error ? 'healthy' : 'unhealthy'),
      e.hits + e.misses + e.stale > 0 ? pct(e.hit_ratio) : '–', `${e.hits} / ${e.misses}`, e.purged, e.objects,
    ], { edge: e.id })));
  }

  function renderDB() {
    const db = state.status.db;
    $('db-section').hidden = !db;
    if (!db) return;
    $('db-writer').textContent = `router ${db.router}` + (db.writer ? `, writer ${db.writer}` : '') + (db.router_mode ? ` (${db.router_mode})` : '');
    fill('db', (db.members || []).map((m) => row([
      m.id + (m.id === db.writer ? ' (writer)' : ''), badge(m.state), m.addr, m.last_committed || '–', m.cluster_status ? `${m.cluster_status} ${m.cluster_size}` : '',
    ], { member: m.id })));
  }

  function renderFiles() {
    const f = state.status.files;
    $('files-section').hidden = !f;
    if (!f) return;
    $('files-store').textContent = `store ${f.state}, sequence ${f.seq}`;
    fill('files', (state.status.nodes || []).map((n) => row([n.id, n.files_seq || 0, Math.max(0, f.seq - (n.files_seq || 0))], { node: n.id })));
  }

  function renderDNS() {
    const d = state.status.dns;
    $('dns-section').hidden = !d;
    if (!d) return;
    $('dns-zone').textContent = `${d.zone} on ${d.addr}, ${d.state}`;
    const addr = {};
    for (const e of state.status.edges || []) addr[e.id] = { host: hostOf(e.addr), healthy: e.healthy };
    const answers = {};
    for (const a of state.dns) answers[a.region] = a;
    fill('dns', (d.regions || []).map((r) => {
      const up = (r.edges || []).filter((id) => addr[id] && addr[id].healthy).map((id) => `${addr[id].host} (${id})`);
      const a = answers[r.name];
      const rate = !a ? '' : a.error ? a.error : a.rate.toFixed(1);
      return row([r.name, up.length ? up.join(', ') : 'another region (no healthy edge)', badge(r.healthy ? 'healthy' : 'unhealthy'), rate, a && !a.error ? a.answers : ''], { region: r.name });
    }));
  }

  function render() {
    if (!state.status) return;
    renderHeader(); renderNodes(); renderChart(); renderEvents(); renderEdges(); renderDB(); renderFiles(); renderDNS();
  }

  function setConn(live) {
    const c = $('conn');
    c.textContent = live ? 'live' : 'reconnecting…';
    c.dataset.live = live ? '1' : '0';
  }

  function connect() {
    const es = new EventSource('/v1/console/stream');
    es.addEventListener('snapshot', (m) => {
      const d = JSON.parse(m.data);
      state.status = d.status; state.edges = d.edges || []; state.dns = d.dns || []; state.host = d.host;
      state.load = d.load || [];
      state.events = []; state.seen = new Set();
      for (const e of d.events || []) addEvent(e);
      setConn(true);
      render();
    });
    es.addEventListener('update', (m) => {
      const d = JSON.parse(m.data);
      state.status = d.status; state.edges = d.edges || []; state.dns = d.dns || []; state.host = d.host;
      state.load.push(d.sample);
      const cut = Date.parse(d.sample.t) - HISTORY_MS;
      while (state.load.length && Date.parse(state.load[0].t) < cut) state.load.shift();
      setConn(true);
      render();
    });
    es.addEventListener('event', (m) => { addEvent(JSON.parse(m.data)); renderEvents(); });
    es.addEventListener('error', () => setConn(false));
  }

  // Actions go to the control API's own write routes with the operator's
  // token as a bearer header; a browser never adds that header by itself.
  function say(text, good) {
    const r = $('result');
    r.textContent = text;
    r.className = good ? 'good' : 'bad';
  }
  async function act(path, body, describe) {
    const tok = $('token').value.trim();
    if ($('remember').checked && tok) sessionStorage.setItem(TOKEN_KEY, tok); else sessionStorage.removeItem(TOKEN_KEY);
    const headers = { 'Content-Type': 'application/json' };
    if (tok) headers.Authorization = 'Bearer ' + tok;
    let resp, text;
    try {
      resp = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store', credentials: 'omit', redirect: 'error' });
      text = (await resp.text()).trim();
    } catch (err) {
      say(`not sent: ${err}`, false);
      return;
    }
    if (!resp.ok) {
      say(`refused (${resp.status}): ${text}` + (resp.status === 401 ? ' — type the token of DIR/secrets/api-token' : ''), false);
      return;
    }
    let doc = null;
    try { doc = JSON.parse(text); } catch (e) { /* not JSON */ }
    say(doc ? describe(doc, resp.status) : text, true);
  }
  function num(id, float) {
    const v = $(id).value.trim();
    if (v === '') return undefined;
    const n = float ? parseFloat(v) : parseInt(v, 10);
    return isNaN(n) ? undefined : n;
  }
  function onScale(ev) {
    ev.preventDefault();
    const body = {};
    const mn = num('scale-min'), mx = num('scale-max'), tg = num('scale-target', true);
    if (mn !== undefined) body.min = mn;
    if (mx !== undefined) body.max = mx;
    if (tg !== undefined) body.target = tg;
    if (!Object.keys(body).length) { say('give min, max or target', false); return; }
    act('/v1/scale', body, (a) => `scaled: min ${a.min}, max ${a.max}, target ${a.target}; desired now ${a.desired}`);
  }
  function onPurge(ev) {
    ev.preventDefault();
    const what = $('purge-what').value.trim();
    const body = { soft: true };
    if ($('purge-all').checked) body.all = true;
    else if (/^https?:\/\//.test(what)) body.urls = [what];
    else if (what) body.tags = [what];
    else { say('give a URL, a tag, or tick everything', false); return; }
    act('/v1/purge', body, (r, code) => `purged ${r.purged} entries on ${(r.applied || []).length} edges` + (code === 202 ? `; still retrying on ${(r.pending || []).join(', ')}` : ''));
  }

  function start() {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) { $('token').value = saved; $('remember').checked = true; }
    $('scale-form').addEventListener('submit', onScale);
    $('purge-form').addEventListener('submit', onPurge);
    connect();
  }
  start();
})();
