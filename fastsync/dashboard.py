"""GET /: the dashboard, one self-contained page (no CDN, works offline), kept in the
package as a string so that the one-file binary carries it. It polls the JSON API once
a second; with a token, the page asks for it once and keeps it for the tab."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastsync</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 70em }
 h1 { font-size: 1.3em; margin: 0 0 .3em } h2 { font-size: 1.05em; margin: 1.2em 0 .4em }
 .muted { color: #666 } .num { font-variant-numeric: tabular-nums }
 .bar { background: #e6e6e6; height: 1.1em; border-radius: 3px; overflow: hidden }
 .bar > div { background: #2f7ed8; height: 100%; width: 0 }
 #banner { display: none; background: #c0392b; color: #fff; padding: .5em .8em;
           border-radius: 3px; margin: .5em 0 }
 table { border-collapse: collapse; width: 100% } td, th { text-align: left;
   padding: .15em .6em .15em 0; vertical-align: top } th { font-weight: 600 }
 svg { width: 100%; height: 140px; background: #fafafa; border: 1px solid #ddd }
 button, input { font: inherit }
</style></head><body>
<h1>fastsync <span id="phase" class="muted">…</span></h1>
<div class="muted"><span id="route"></span> · run <span id="run"></span></div>
<div id="banner"></div>
<h2>Backlog</h2>
<div>Bytes: <span id="bytes" class="num"></span></div>
<div class="bar"><div id="bytesbar"></div></div>
<div>Files: <span id="files" class="num"></span></div>
<div class="bar"><div id="filesbar"></div></div>
<p class="num">Rate <b id="rate">–</b> · ETA <b id="eta">–</b> · cap <b id="cap">–</b></p>
<p class="num">Synced <b id="synced">–</b> · pending <b id="pending">–</b>
 · failed in this run <b id="failed">0</b></p>
<h2>In flight</h2><table id="current"></table>
<h2>Rate, last hour <span class="muted">(read <span style="color:#e67e22">━</span>,
 written <span style="color:#2f7ed8">━</span>)</span></h2>
<svg id="chart" viewBox="0 0 600 140" preserveAspectRatio="none"></svg>
<h2>Control</h2>
<p>Cap <input id="cap-in" size="8" placeholder="50M or off">
 <button id="cap-set">Set</button> <button id="pause">Pause</button>
 <button id="stop">Stop the run</button>
 <span id="said" class="muted"></span></p>
<h2>Recent failures</h2><table id="failures"></table>
<h2>Runs</h2><table id="runs"></table>
<script>
"use strict";
const $ = id => document.getElementById(id);
let token = sessionStorage.getItem("fastsync-token");
function size(n) {
  if (n == null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
}
function dur(s) {
  if (s == null || !isFinite(s)) return "–";
  s = Math.round(s); const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
  return h ? h + "h" + String(m).padStart(2, "0") + "m" : m ? m + "m" + (s % 60) + "s" : s + "s";
}
async function api(path, body) {
  const opts = {headers: {}};
  if (token) opts.headers.Authorization = "Bearer " + token;
  if (body !== undefined) { opts.method = "POST"; opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json"; }
  const r = await fetch(path, opts);
  if (r.status === 401 || r.status === 403) {
    token = prompt("This fastsync needs its token (--http-token-file):");
    if (token) sessionStorage.setItem("fastsync-token", token);
    throw new Error("auth");
  }
  return r.json();
}
function rows(table, head, items) {
  table.replaceChildren();
  const tr = document.createElement("tr");
  head.forEach(h => { const th = document.createElement("th"); th.textContent = h; tr.append(th); });
  table.append(tr);
  items.forEach(cells => { const r = document.createElement("tr");
    cells.forEach(c => { const td = document.createElement("td"); td.textContent = c; r.append(td); });
    table.append(r); });
}
function bar(el, done, total) { el.style.width = (total ? 100 * done / total : 0) + "%"; }
async function status() {
  const s = await api("api/status");
  $("phase").textContent = s.phase; $("run").textContent = s.run ?? "–";
  paused = s.paused; $("pause").textContent = paused ? "Resume" : "Pause";
  $("route").textContent = s.src + " → " + s.dst;
  $("cap").textContent = s.bwlimit_bytes_per_second ? size(s.bwlimit_bytes_per_second) + "/s" : "none";
  const waits = s.waiting ? Object.values(s.waiting).join("; ") : "";
  $("banner").style.display = waits ? "block" : "none"; $("banner").textContent = waits;
  const c = s.copy;
  if (c) {
    $("bytes").textContent = size(c.bytes_done) + " of " + size(c.bytes_total);
    $("files").textContent = c.files_done + " of " + c.files_total;
    bar($("bytesbar"), c.bytes_done, c.bytes_total); bar($("filesbar"), c.files_done, c.files_total);
    $("rate").textContent = c.rate_bytes_per_second == null ? "–" : size(c.rate_bytes_per_second) + "/s";
    $("eta").textContent = dur(c.eta_seconds); $("failed").textContent = c.files_failed;
    $("synced").textContent = c.files_synced_before == null ? "–" :
      (c.files_synced_before + c.files_done).toLocaleString();
    $("pending").textContent = (c.files_total - c.files_done - c.files_failed).toLocaleString();
    rows($("current"), ["file", "progress"], c.current.map(f =>
      [f.name, size(f.done) + " of " + size(f.size)]));
  } else if (s.scan) {
    $("bytes").textContent = "scanning: " + size(s.scan.pending_bytes) + " to copy so far";
    $("files").textContent = s.scan.pending_files + " files to copy so far";
  }
}
function chart(points) {
  const svg = $("chart"); svg.replaceChildren();
  if (points.length < 2) return;
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const top = Math.max(1, ...points.map(p => Math.max(p.read, p.written)));
  for (const [key, color] of [["read", "#e67e22"], ["written", "#2f7ed8"]]) {
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map(p =>
      (600 * (p.t - t0) / Math.max(1, t1 - t0)).toFixed(1) + "," +
      (138 - 134 * p[key] / top).toFixed(1)).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", color);
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
}
async function slow() {
  chart(await api("api/history"));
  const f = await api("api/files?status=failed&limit=10");
  rows($("failures"), ["file", "attempts", "error"], f.files.map(x => [x.src, x.attempts, x.error]));
  const r = await api("api/runs");
  rows($("runs"), ["#", "started", "mode", "status", "copied", "bytes", "failed"],
    r.map(x => [x.id, new Date(x.started / 1e6).toISOString(), x.mode, x.status ?? "running",
                x.files_copied, size(x.bytes_copied), x.files_failed]));
}
$("cap-set").onclick = async () => {
  const r = await api("api/bwlimit", {rate: $("cap-in").value || "off"});
  $("said").textContent = r.error || "cap now " + (r.bwlimit_bytes_per_second ?
    size(r.bwlimit_bytes_per_second) + "/s" : "off");
};
let paused = false;
$("pause").onclick = async () => {
  const r = await api(paused ? "api/resume" : "api/pause", {});
  paused = r.paused; $("pause").textContent = paused ? "Resume" : "Pause";
  $("said").textContent = paused ? "paused" : "resumed";
};
$("stop").onclick = async () => {
  if (confirm("Stop the run? Files in flight are finished and recorded.")) {
    await api("api/stop", {}); $("said").textContent = "stopping";
  }
};
let tick = 0;
async function loop() {
  try { await status(); if (tick++ % 5 === 0) await slow(); } catch (e) {}
  setTimeout(loop, 1000);
}
loop();
</script></body></html>
"""
