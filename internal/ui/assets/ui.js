// The sluice web UI: loads the initial state from the JSON API, then follows
// the server's event stream (one snapshot per completed batch, and at least
// one a second) and appends each new batch to the charts (uPlot) and tables.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_POINTS = 300; // per chart: older batches scroll off
  const PHASES = ["latestOffset", "walCommit", "addBatch", "sinkCommit", "commitOffsets"];
  const COLORS = ["#2f6fdf", "#e8772e", "#2e9e5b", "#b0389a", "#8a6d1e", "#5a5a5a"];

  const ui = {
    selected: null,   // the followed query's id
    lastBatch: -1,    // the last batch added to the charts
    lastX: -Infinity, // its time (uPlot needs ascending x)
    charts: {},       // name -> {u, data, target}
    batches: [],      // recent progress, oldest first
    es: null,         // the EventSource
    generation: 0,    // bumps on every select: late answers of an older one are dropped
  };

  // ---- formatting ----
  const dash = "—";
  function num(v, digits = 0) {
    if (v === null || v === undefined || Number.isNaN(Number(v))) return dash;
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });
  }
  function bytes(n) {
    if (n === null || n === undefined || n < 0) return dash;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return num(n, i ? 1 : 0) + " " + units[i];
  }
  function time(iso) { return iso ? iso.replace("T", " ").replace("Z", "") : dash; }
  function offset(o) { return o === null || o === undefined ? dash : JSON.stringify(o); }
  function sum(list, f) { return (list || []).reduce((a, x) => a + (Number(f(x)) || 0), 0); }

  // setRows replaces tbody's rows; a cell is text or {text, cls, title}.
  function setRows(tbody, rows) {
    const frag = document.createDocumentFragment();
    for (const row of rows) {
      const tr = document.createElement("tr");
      if (row.cls) tr.className = row.cls;
      if (row.onclick) tr.addEventListener("click", row.onclick);
      for (const c of row.cells) {
        const td = document.createElement("td");
        const cell = typeof c === "object" && c !== null ? c : { text: c };
        td.textContent = cell.text === undefined || cell.text === null ? dash : String(cell.text);
        if (cell.cls) td.className = cell.cls;
        if (cell.title) td.title = cell.title;
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
  }
  const n = (text) => ({ text, cls: "num" });

  async function fetchJSON(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || url + ": HTTP " + r.status);
    return body;
  }

  function conn(text, cls) {
    const c = $("conn");
    c.textContent = text;
    c.className = "conn " + (cls || "");
  }

  // ---- charts ----
  function makeChart(name, series, yLabel) {
    const target = $("chart-" + name);
    // destroy, not just dropping its DOM: uPlot keeps every live chart in
    // a global set, so a replaced one would stay there with its data.
    ui.charts[name]?.u.destroy();
    const opts = {
      width: Math.max(target.clientWidth, 300),
      height: 200,
      scales: { x: { time: true } },
      series: [{}].concat(series.map((s, i) => ({
        label: s, stroke: COLORS[i % COLORS.length], width: 1.5, points: { size: 4 },
      }))),
      axes: [{}, { size: 64, label: yLabel, labelSize: 16 }],
      legend: { live: true },
    };
    const data = [[]].concat(series.map(() => []));
    ui.charts[name] = { u: new uPlot(opts, data, target), data, target };
  }

  function makeCharts() {
    makeChart("rates", ["input rows/s", "processed rows/s"]);
    makeChart("durations", PHASES.concat(["total"]));
    makeChart("watermark", ["watermark delay s"]);
    makeChart("state", ["state rows"]);
    makeChart("late", ["late rows dropped"]);
  }

  function push(name, x, ys) {
    const c = ui.charts[name];
    c.data[0].push(x);
    ys.forEach((y, i) => c.data[i + 1].push(y));
    if (c.data[0].length > MAX_POINTS) c.data.forEach((s) => s.shift());
  }

  // addProgress appends one completed batch (Spark's StreamingQueryProgress).
  function addProgress(p) {
    if (p.batchId <= ui.lastBatch) return;
    const x = Date.parse(p.timestamp) / 1000;
    if (!(x > ui.lastX)) return;
    ui.lastBatch = p.batchId;
    ui.lastX = x;
    const d = p.durationMs || {};
    push("rates", x, [p.inputRowsPerSecond, p.processedRowsPerSecond]);
    push("durations", x, PHASES.map((ph) => (ph in d ? d[ph] : null)).concat([d.triggerExecution ?? null]));
    const wm = p.eventTime && p.eventTime.watermark ? Date.parse(p.eventTime.watermark) : null;
    push("watermark", x, [wm === null ? null : (Date.parse(p.timestamp) - wm) / 1000]);
    push("state", x, [sum(p.stateOperators, (s) => s.numRowsTotal)]);
    push("late", x, [sum(p.stateOperators, (s) => s.numRowsDroppedByWatermark)]);
    ui.batches.push(p);
    if (ui.batches.length > 100) ui.batches.shift();
  }

  function redraw() {
    for (const c of Object.values(ui.charts)) c.u.setData(c.data);
    renderBatches();
    renderLast();
  }

  // ---- tables ----
  function renderQueries(queries) {
    $("noqueries").hidden = queries.length > 0;
    setRows($("queries").tBodies[0], queries.map((q) => {
      const p = q.lastProgress;
      return {
        cls: "clickable" + (q.id === ui.selected ? " selected" : ""),
        onclick: () => { location.hash = "q=" + encodeURIComponent(q.id); },
        cells: [q.name || dash, { text: q.id, cls: "mono" }, { text: q.exception ? "Failed" : q.status.message, cls: q.exception ? "bad" : (q.status.isActive ? "ok" : "muted"), title: q.exception || "" },
          n(p ? p.batchId : null), n(p ? num(p.inputRowsPerSecond, 1) : null), n(p ? num(p.processedRowsPerSecond, 1) : null),
          time(p && p.eventTime ? p.eventTime.watermark : null)],
      };
    }));
    const q = queries.find((q) => q.id === ui.selected);
    if (q) {
      $("qname").textContent = q.name || "";
      $("qid").textContent = q.id + " · run " + q.runId;
      $("qstatus").textContent = q.status.message;
      $("qerror").hidden = !q.exception;
      $("qerror").textContent = q.exception || "";
    }
  }

  function renderBatches() {
    const rows = ui.batches.slice(-20).reverse().map((p) => ({
      cells: [n(p.batchId), time(p.timestamp), n(num(p.numInputRows)), n(num(p.inputRowsPerSecond, 1)),
        n(num(p.processedRowsPerSecond, 1)), n(num(p.durationMs ? p.durationMs.triggerExecution : null)),
        time(p.eventTime ? p.eventTime.watermark : null), n(p.sink && p.sink.numOutputRows >= 0 ? num(p.sink.numOutputRows) : null)],
    }));
    setRows($("batches").tBodies[0], rows);
  }

  // renderLast shows the sources and state operators of the last batch.
  function renderLast() {
    const p = ui.batches[ui.batches.length - 1];
    setRows($("sources").tBodies[0], (p ? p.sources : []).map((s) => ({
      cells: [s.description, { text: offset(s.startOffset), cls: "mono" }, { text: offset(s.endOffset), cls: "mono" },
        { text: offset(s.latestOffset), cls: "mono" }, n(s.metrics && s.metrics.offsetsBehindLatest !== undefined ? num(s.metrics.offsetsBehindLatest) : null),
        n(num(s.numInputRows)), n(num(s.inputRowsPerSecond, 1)), n(num(s.processedRowsPerSecond, 1))],
    })));
    setRows($("state").tBodies[0], (p ? p.stateOperators : []).map((s) => ({
      cells: [s.operatorName, n(num(s.numRowsTotal)), n(bytes(s.memoryUsedBytes)), n(num(s.numRowsDroppedByWatermark)), n(num(s.numRowsRemoved))],
    })));
  }

  function renderExecutors(ans) {
    setRows($("executors").tBodies[0], ans.executors.map((e) => {
      const rt = e.runtime || {}, st = e.stats || {};
      return {
        cells: [{ text: e.id, cls: "mono" }, e.role, e.address || dash, { text: e.state, cls: e.state === "active" ? "ok" : "bad" },
          n(e.slots || null), n(num(rt.goroutines)), n(e.runtime ? bytes(rt.heapBytes) : null),
          n(num(st.tasks)), n(num(st.tasks_failed)), n(e.stats ? bytes(st.bytes_served) : null), n(e.stats ? bytes(st.block_memory) : null)],
      };
    }));
    $("execerror").hidden = !ans.error;
    $("execerror").textContent = ans.error || "";
  }

  // ---- following a query ----
  function wanted(queries) {
    const m = /^#q=(.+)$/.exec(location.hash);
    if (m) return decodeURIComponent(m[1]);
    return queries.length ? queries[0].id : null;
  }

  async function select(id) {
    const gen = ++ui.generation;
    if (ui.es) { ui.es.close(); ui.es = null; }
    ui.selected = id;
    ui.lastBatch = -1;
    ui.lastX = -Infinity;
    ui.batches = [];
    $("query").hidden = !id;
    if (id) {
      makeCharts();
      const d = await fetchJSON("/api/queries/" + encodeURIComponent(id));
      if (gen !== ui.generation) return;
      $("plan").textContent = d.plan;
      d.recentProgress.forEach(addProgress);
      redraw();
    }
    follow(gen);
  }

  function follow(gen) {
    const params = new URLSearchParams();
    if (ui.selected) {
      params.set("query", ui.selected);
      params.set("after", String(ui.lastBatch));
    }
    const es = new EventSource("/api/events?" + params);
    ui.es = es;
    es.onopen = () => conn("live", "ok");
    // EventSource reconnects by itself, sending the last batch it had.
    es.onerror = () => conn("reconnecting…", "bad");
    es.addEventListener("snapshot", (ev) => {
      if (gen !== ui.generation) return;
      const s = JSON.parse(ev.data);
      renderExecutors(s.executors);
      if (!ui.selected && s.queries.length) {
        renderQueries(s.queries);
        select(wanted(s.queries)).catch(fail);
        return;
      }
      renderQueries(s.queries);
      if (s.query === ui.selected && s.progress.length) {
        s.progress.forEach(addProgress);
        redraw();
      }
    });
  }

  function fail(err) {
    conn(String(err.message || err), "bad");
    console.error("sluice ui:", err);
  }

  async function start() {
    const r = await fetchJSON("/api/queries");
    document.title = "sluice · " + r.job;
    $("job").textContent = r.job;
    renderExecutors(await fetchJSON("/api/executors"));
    const id = wanted(r.queries);
    ui.selected = id; // so the table marks it before its detail arrives
    renderQueries(r.queries);
    await select(id);
  }

  window.addEventListener("hashchange", () => {
    const m = /^#q=(.+)$/.exec(location.hash);
    if (m && decodeURIComponent(m[1]) !== ui.selected) select(decodeURIComponent(m[1])).catch(fail);
  });
  window.addEventListener("resize", () => {
    for (const c of Object.values(ui.charts)) c.u.setSize({ width: Math.max(c.target.clientWidth, 300), height: 200 });
  });

  // A read-only hook for tests and the curious: how many points each chart
  // holds, and which query the page follows.
  window.sluiceUI = Object.freeze({
    points: () => Object.fromEntries(Object.entries(ui.charts).map(([k, c]) => [k, c.data[0].length])),
    selected: () => ui.selected,
    lastBatch: () => ui.lastBatch,
  });

  start().catch(fail);
})();
