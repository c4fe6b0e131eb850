// The status page itself: one HTML document with its CSS and JS inline and its charts drawn as SVG by hand, so it
// needs no build step, no CDN and no network beyond GET status/data (relative, so it also works behind a prefix).
// The script builds the DOM with textContent only (route names and reasons are never parsed as HTML).

export const PAGE_STYLE = `
:root{--bg:#f6f7f9;--card:#fff;--ink:#1b2430;--muted:#667085;--line:#e4e7ec;--good:#15803d;--warn:#b45309;--bad:#b91c1c;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;align-items:baseline;gap:16px;flex-wrap:wrap;padding:14px 24px;background:#111827;color:#f9fafb}
header h1{margin:0;font-size:20px;letter-spacing:.3px}
header .meta{color:#cbd5e1;font-size:13px}
header .live{margin-left:auto;font-size:13px;color:#cbd5e1}
header .live::before{content:"";display:inline-block;width:9px;height:9px;border-radius:50%;background:#9ca3af;margin-right:6px;vertical-align:0}
header .live.ok::before{background:#22c55e}
header .live.down::before{background:#ef4444}
#routes{display:contents}
main{padding:18px 24px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(560px,1fr))}
.route,.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.panel.wide{grid-column:1/-1}
.route h2,.panel h2{margin:0 0 8px;font-size:16px}
.route h2 .badge{font-weight:500}
.badge{display:inline-block;font-size:11px;padding:1px 7px;border-radius:999px;background:#eef2ff;color:#3730a3;margin-left:6px;vertical-align:2px}
.stats{display:grid;grid-template-columns:repeat(6,1fr);gap:8px;margin:6px 0 10px}
.stat .label{font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.4px}
.stat .value{font-size:18px;font-weight:600;font-variant-numeric:tabular-nums;white-space:nowrap}
.good .value{color:var(--good)}.warn .value{color:var(--warn)}.bad .value{color:var(--bad)}
.mix{display:flex;height:12px;border-radius:6px;overflow:hidden;background:var(--line);margin:4px 0}
.mix span{display:block;height:100%}
.decision{font-size:13px}
.decision .knobs{color:var(--muted)}
.decision .reason{margin:2px 0 6px;color:var(--ink)}
.legend{display:flex;gap:12px;flex-wrap:wrap;font-size:12px;color:var(--muted);margin-top:2px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
svg.chart{width:100%;height:auto;display:block;margin-top:6px}
svg.chart text{font:10px system-ui,sans-serif;fill:#667085}
table{width:100%;border-collapse:collapse;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums}
th{font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.4px;font-weight:600}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.pill.ready{background:#dcfce7;color:var(--good)}.pill.pending{background:#fef3c7;color:var(--warn)}.pill.down,.pill.closed{background:#fee2e2;color:var(--bad)}
ol.changes{margin:0;padding-left:18px;font-size:13px}
ol.changes li{margin:2px 0}
ol.changes .when{color:var(--muted);font-variant-numeric:tabular-nums;margin-right:6px}
.empty{color:var(--muted);font-style:italic}
`;

export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  // The charts span the last 3 minutes, or less on a server that has not been up that long.
  var WINDOW_S = 180;
  var COLORS = ['#2563eb', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d', '#b45309'];
  var colorOf = {};
  var nextColor = 0;
  var failures = 0;

  function variantColor(v) {
    if (!Object.prototype.hasOwnProperty.call(colorOf, v)) colorOf[v] = COLORS[nextColor++ % COLORS.length];
    return colorOf[v];
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'className') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function s(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function ms(x) {
    if (x === null || x === undefined) return '\u2013';
    return (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : String(Math.round(x))) + ' ms';
  }
  function pct(x) {
    if (x === null || x === undefined) return '\u2013';
    var p = x * 100;
    return (Math.abs(p - Math.round(p)) < 1e-9 ? String(Math.round(p)) : p.toFixed(p >= 99.95 || p < 90 ? 1 : 2)) + '%';
  }
  function perS(x) { return (x < 10 ? x.toFixed(1) : String(Math.round(x))) + '/s'; }
  function ago(iso) {
    var d = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return d < 60 ? d + ' s ago' : d < 3600 ? Math.round(d / 60) + ' min ago' : Math.round(d / 3600) + ' h ago';
  }
  function duration(sec) {
    if (sec < 120) return sec + ' s';
    if (sec < 7200) return Math.round(sec / 60) + ' min';
    return (sec / 3600).toFixed(1) + ' h';
  }
  function niceCeil(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }
  function stat(key, label, value, cls) {
    return el('div', { className: 'stat ' + (cls || ''), 'data-stat': key }, [el('div', { className: 'label', text: label }), el('div', { className: 'value', text: value })]);
  }
  function attainClass(a) { return a === null ? '' : a >= 0.99 ? 'good' : a >= 0.95 ? 'warn' : 'bad'; }

  // p99 per second (line) against the route's target (dashed), over the last WINDOW_S seconds.
  function latencyChart(r, nowT) {
    var W = 640, H = 168, L = 46, R = 10, T = 8, B = 20;
    var h = r.history, target = r.slo.p99Ms, t0 = nowT - WINDOW_S * 1000;
    var maxV = target * 1.25;
    for (var i = 0; i < h.t.length; i++) if (h.t[i] >= t0 && h.p99Ms[i] !== null && h.p99Ms[i] > maxV) maxV = h.p99Ms[i];
    var top = niceCeil(Math.min(maxV, target * 6));
    function x(t) { return L + ((t - t0) / (WINDOW_S * 1000)) * (W - L - R); }
    function y(v) { return T + (1 - Math.min(v, top) / top) * (H - T - B); }
    var g = s('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'chart', role: 'img', 'aria-label': 'p99 latency of ' + r.name + ' per second against its target', 'data-chart': 'latency' });
    for (var k = 0; k <= 4; k++) {
      var v = (top * k) / 4, yy = y(v);
      g.appendChild(s('line', { x1: L, x2: W - R, y1: yy, y2: yy, stroke: '#eef0f3' }));
      g.appendChild(s('text', { x: L - 6, y: yy + 3, 'text-anchor': 'end' }, (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ms'));
    }
    for (var m = 0; m <= 3; m++) {
      var back = (WINDOW_S * (3 - m)) / 3;
      g.appendChild(s('text', { x: x(t0 + m * (WINDOW_S * 1000) / 3), y: H - 5, 'text-anchor': m === 0 ? 'start' : m === 3 ? 'end' : 'middle' }, m === 3 ? 'now' : '\u2212' + (WINDOW_S >= 120 ? back / 60 + ' min' : back + ' s')));
    }
    g.appendChild(s('line', { x1: L, x2: W - R, y1: y(target), y2: y(target), stroke: '#b91c1c', 'stroke-dasharray': '6 4', 'stroke-width': 1.5 }));
    g.appendChild(s('text', { x: W - R - 2, y: y(target) - 4, 'text-anchor': 'end', fill: '#b91c1c' }, 'target ' + ms(target)));
    var d = '', prevT = null, pts = [];
    for (var j = 0; j < h.t.length; j++) {
      var t = h.t[j], p = h.p99Ms[j];
      if (t < t0 || p === null) { prevT = null; continue; }
      d += (prevT !== null && t - prevT <= 1500 ? 'L' : 'M') + x(t + 500).toFixed(1) + ' ' + y(p).toFixed(1) + ' ';
      pts.push([x(t + 500), y(p), p > target]);
      prevT = t;
    }
    if (d !== '') g.appendChild(s('path', { d: d, fill: 'none', stroke: '#2563eb', 'stroke-width': 1.8, 'stroke-linejoin': 'round' }));
    pts.forEach(function (q) { if (q[2]) g.appendChild(s('circle', { cx: q[0], cy: q[1], r: 2.6, fill: '#b91c1c' })); });
    if (pts.length === 0) g.appendChild(s('text', { x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle' }, 'no answered requests in the last ' + duration(WINDOW_S)));
    return g;
  }

  // Requests per second by outcome: met, missed, shed + dropped (stacked).
  function trafficChart(r, nowT) {
    var W = 640, H = 74, L = 46, R = 10, T = 6, B = 6;
    var h = r.history, t0 = nowT - WINDOW_S * 1000, maxN = 1;
    for (var i = 0; i < h.t.length; i++) if (h.t[i] >= t0) maxN = Math.max(maxN, h.met[i] + h.missed[i] + h.shed[i] + h.dropped[i]);
    var top = niceCeil(maxN), bw = Math.max(1, (W - L - R) / WINDOW_S - 0.6);
    function y(v) { return T + (1 - v / top) * (H - T - B); }
    var g = s('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'chart', role: 'img', 'aria-label': 'requests per second of ' + r.name + ' by outcome', 'data-chart': 'traffic' });
    g.appendChild(s('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), stroke: '#e4e7ec' }));
    g.appendChild(s('text', { x: L - 6, y: y(top) + 8, 'text-anchor': 'end' }, top + '/s'));
    g.appendChild(s('text', { x: L - 6, y: y(0), 'text-anchor': 'end' }, '0'));
    for (var j = 0; j < h.t.length; j++) {
      if (h.t[j] < t0) continue;
      var xx = L + ((h.t[j] - t0) / (WINDOW_S * 1000)) * (W - L - R), base = 0;
      [[h.met[j], '#16a34a'], [h.missed[j], '#f59e0b'], [h.shed[j] + h.dropped[j], '#dc2626']].forEach(function (seg) {
        if (seg[0] <= 0) return;
        g.appendChild(s('rect', { x: xx.toFixed(1), y: y(base + seg[0]).toFixed(1), width: bw.toFixed(1), height: (y(base) - y(base + seg[0])).toFixed(1), fill: seg[1] }));
        base += seg[0];
      });
    }
    return g;
  }

  function legend(items) {
    return el('div', { className: 'legend' }, items.map(function (it) {
      var i = el('i');
      i.style.background = it[1];
      return el('span', {}, [i, document.createTextNode(it[0])]);
    }));
  }

  function decisionView(d) {
    if (d === null) return el('div', { className: 'decision empty', text: 'no decision yet' });
    var bar = el('div', { className: 'mix', 'data-mix': '' });
    var parts = [];
    d.variants.forEach(function (v) {
      if (v.share <= 0) return;
      var sp = el('span', { title: v.variant + ' ' + pct(v.share) });
      sp.style.width = (v.share * 100).toFixed(2) + '%';
      sp.style.background = variantColor(v.variant);
      bar.appendChild(sp);
      parts.push([v.variant + ' ' + Math.round(v.share * 100) + '%', variantColor(v.variant)]);
    });
    var knobs = 'batch \u2264 ' + d.maxBatch + ' \u00b7 max wait ' + ms(d.maxQueueDelayMs) + (d.admissionRps !== null ? ' \u00b7 admit ' + perS(d.admissionRps) : '') +
      (d.accuracy !== null ? ' \u00b7 accuracy ' + pct(d.accuracy) : '') + ' \u00b7 decided ' + ago(d.at);
    return el('div', { className: 'decision', 'data-decision': '' }, [
      bar,
      legend(parts),
      el('div', { className: 'reason', 'data-reason': '', text: d.reason }),
      el('div', { className: 'knobs', text: knobs }),
    ]);
  }

  function routeCard(r, nowT, windowS) {
    var obsCls = r.observedP99Ms === null ? '' : r.observedP99Ms <= r.slo.p99Ms ? 'good' : 'bad';
    var title = el('h2', {}, [
      document.createTextNode(r.name),
      el('span', { className: 'badge', text: r.model }),
      el('span', { className: 'badge', text: r.policy }),
      el('span', { className: 'badge', text: r.objective }),
      el('span', { className: 'badge', text: 'priority ' + r.priority }),
    ]);
    var slo = ms(r.slo.p99Ms) + (r.slo.minAccuracy !== null ? ', acc \u2265 ' + pct(r.slo.minAccuracy) : '');
    var stats = el('div', { className: 'stats' }, [
      stat('slo', 'SLO p99', slo),
      stat('observed', 'p99 observed', ms(r.observedP99Ms), obsCls),
      stat('predicted', 'p99 predicted', ms(r.decision === null ? null : r.decision.predictedP99Ms)),
      stat('rate', 'Request rate', perS(r.rate)),
      stat('attainment', 'Attainment (' + duration(windowS) + ')', pct(r.attainment), attainClass(r.attainment)),
      stat('shed', 'Shed + dropped', perS(r.shedRate), r.shedRate > 0 ? 'bad' : ''),
    ]);
    return el('article', { className: 'route', 'data-route': r.name }, [
      title,
      stats,
      decisionView(r.decision),
      latencyChart(r, nowT),
      legend([['p99 per second', '#2563eb'], ['target', '#b91c1c']]),
      trafficChart(r, nowT),
      legend([['met', '#16a34a'], ['missed', '#f59e0b'], ['shed + dropped', '#dc2626']]),
    ]);
  }

  function table(head, rows, empty) {
    var t = el('table', {}, [el('thead', {}, [el('tr', {}, head.map(function (h) { return el('th', { text: h }); }))])]);
    var body = el('tbody');
    rows.forEach(function (cells) { body.appendChild(el('tr', {}, cells.map(function (c) { return typeof c === 'string' ? el('td', { text: c }) : el('td', {}, [c]); }))); });
    if (rows.length === 0) body.appendChild(el('tr', {}, [el('td', { className: 'empty', colspan: String(head.length), text: empty })]));
    t.appendChild(body);
    return t;
  }

  function render(data) {
    WINDOW_S = Math.min(180, Math.max(30, Math.ceil(data.uptimeS / 30) * 30));
    var nowT = Date.parse(data.now);
    document.getElementById('meta').textContent = 'v' + data.version + ' \u00b7 up ' + duration(data.uptimeS) + ' \u00b7 ' + data.provider +
      ' \u00b7 gateway ' + Math.round(data.utilisation.gateway * 100) + '% busy \u00b7 replicas ' + Math.round(data.utilisation.replicas * 100) + '% busy';
    var routes = document.getElementById('routes');
    var cards = data.routes.map(function (r) { return routeCard(r, nowT, data.windowS); });
    routes.replaceChildren.apply(routes, cards);
    document.getElementById('replicas').replaceChildren(table(['Replica', 'Kind', 'State', 'Provider', 'Busy', 'Batches', 'Restarts', 'Last change'], data.replicas.map(function (r) {
      return [r.id, r.kind, el('span', { className: 'pill ' + r.state, 'data-state': r.state, text: r.state }), r.provider, r.outstanding + '/' + r.slots, String(r.batches), String(r.restarts), r.lastChange];
    }), 'no replicas'));
    document.getElementById('queues').replaceChildren(table(['Variant', 'Queued', 'Rows', 'Batch limit', 'Batches'], data.queues.map(function (q) {
      return [q.variant, String(q.queued), String(q.queuedRows), String(q.maxBatch), String(q.batches)];
    }), 'no queues yet'));
    document.getElementById('revisions').replaceChildren(table(['Variant', 'Serving', 'Latest deploy', 'State', 'Gates'], (data.revisions || []).map(function (r) {
      return [r.variant, r.active, r.latest, r.state, r.gates];
    }), 'no deploys yet'));
    document.getElementById('rollouts').replaceChildren(table(['Variant', 'Revision', 'State', 'Phase / share', 'Evidence', 'Next / reason'], (data.rollouts || []).map(function (r) {
      return [r.variant, r.revision, r.state, r.share, r.evidence, r.reason];
    }), 'no rollouts yet'));
    var ch = document.getElementById('changes');
    var items = data.changes.slice().reverse().map(function (c) {
      return el('li', {}, [el('span', { className: 'when', text: new Date(c.at).toLocaleTimeString() }), document.createTextNode(c.route + ': ' + c.from + ' \u2192 ' + c.to + ' \u2014 ' + c.reason)]);
    });
    if (items.length === 0) items = [el('li', { className: 'empty', text: 'no changes in the last 15 minutes' })];
    ch.replaceChildren.apply(ch, items);
    document.body.setAttribute('data-updated', data.now);
  }

  function live(ok, text) {
    var l = document.getElementById('live');
    l.className = 'live ' + (ok ? 'ok' : 'down');
    l.textContent = text;
  }

  function poll() {
    fetch('status/data', { cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
      .then(function (data) {
        failures = 0;
        render(data);
        live(true, 'live \u00b7 updated ' + new Date(data.now).toLocaleTimeString());
        setTimeout(poll, 1000);
      })
      .catch(function (err) {
        failures++;
        live(false, 'disconnected (' + err.message + '), retrying');
        setTimeout(poll, Math.min(10000, 1000 * Math.pow(2, Math.min(failures, 4))));
      });
  }
  poll();
})();
`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderPage(version: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>slogate status</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head>
<body>
<header><h1>slogate</h1><span class="meta" id="meta">v${escapeHtml(version)}</span><span class="live" id="live">connecting</span></header>
<main>
<div id="routes"></div>
<section class="panel"><h2>Replicas</h2><div id="replicas"></div></section>
<section class="panel"><h2>Queues</h2><div id="queues"></div></section>
<section class="panel wide"><h2>Model revisions</h2><div id="revisions"></div></section>
<section class="panel wide"><h2>Rollouts</h2><div id="rollouts"></div></section>
<section class="panel wide"><h2>Decision changes</h2><ol class="changes" id="changes"></ol></section>
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
