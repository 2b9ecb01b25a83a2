// The dashboard page: it renders every snapshot the server pushes over the
// WebSocket /ws (see server.go for the JSON) and reconnects when it drops.
"use strict";

const $ = (id) => document.getElementById(id);

function text(id, v) { $(id).textContent = v; }

// hhmm is a minute's start as HH:MM in UTC, whatever the browser's zone.
function hhmm(iso) { return iso.slice(11, 16); }

function percent(rate) { return (100 * rate).toFixed(1) + "%"; }

function figure(name, f) {
  return f.batch < 0 ? name + ": no batch yet"
    : name + ": batch " + f.batch + ", events up to Kafka offset " + f.offset;
}

// rows replaces a table body with one row per item: cells(item) gives the
// cells' text, bar(item) the bar's width as a fraction.
function rows(tableId, items, cells, bar) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    for (const c of cells(item)) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    td.className = "bar";
    const div = document.createElement("div");
    div.style.width = (100 * Math.min(1, bar(item))).toFixed(1) + "%";
    td.appendChild(div);
    tr.appendChild(td);
    return tr;
  }));
}

function render(s) {
  text("seq", s.seq);
  text("time", s.time.slice(11, 19) + " UTC");
  text("start", s.start.slice(11, 19) + " UTC");
  text("placed", s.conversion.placed);
  text("paid", s.conversion.paid);
  text("conversion", s.conversion.placed > 0 ? percent(s.conversion.rate) : "-");
  text("conversion-figure", figure("conversion", s.conversion_figure));

  const most = Math.max(1, ...s.minutes.map((m) => m.orders));
  rows("minutes", s.minutes, (m) => [hhmm(m.start), m.orders, m.paid], (m) => m.orders / most);
  text("minutes-figure", figure("orders per minute", s.minutes_figure));

  const top = Math.max(1, ...s.regions.map((r) => Number(r.revenue)));
  rows("regions", s.regions, (r) => [r.region, r.revenue, r.paid], (r) => Number(r.revenue) / top);
  text("regions-figure", figure("revenue by region", s.regions_figure));
}

function status(cls, label) {
  const el = $("status");
  el.className = "status " + cls;
  el.textContent = label;
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => status("live", "live");
  ws.onmessage = (ev) => render(JSON.parse(ev.data));
  ws.onclose = () => {
    status("down", "disconnected, retrying");
    setTimeout(connect, 2000);
  };
}

connect();
