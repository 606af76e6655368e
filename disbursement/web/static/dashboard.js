// The monitors' dashboard: Chart.js charts fed by /console/dashboard.json.
// Amounts arrive as integer centimes plus an exact "amount" string; bars are
// drawn in whole dirhams (integer division), tooltips show the exact string.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root || !window.Chart) { return; }
  var PALETTE = ["#0b5cad", "#1e7b34", "#d97706", "#b3261e", "#6d28d9", "#0e7490", "#be185d",
                 "#4d7c0f", "#92400e", "#475569", "#2563eb", "#15803d", "#9333ea"];
  var charts = {};
  Chart.defaults.animation = false;   // painted at once: the page is read, not watched
  // An empty chart says so instead of staying blank.
  Chart.register({ id: "noData", afterDraw: function (c) {
    var empty = c.data.datasets.every(function (d) { return !d.data.length; });
    if (!empty) { return; }
    var ctx = c.ctx;
    ctx.save();
    ctx.fillStyle = "#5b6475";
    ctx.font = "14px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.fillText("no data yet", c.width / 2 / (window.devicePixelRatio || 1), c.height / 2 / (window.devicePixelRatio || 1));
    ctx.restore();
  } });
  Chart.defaults.maintainAspectRatio = false;

  function chart(id, type, options) {
    charts[id] = new Chart(document.getElementById(id), {
      type: type, data: { labels: [], datasets: [] },
      options: Object.assign({ responsive: true, plugins: { legend: { position: "bottom" } } }, options || {})
    });
    return charts[id];
  }

  chart("chart-states", "bar", { plugins: { legend: { display: false } } });
  chart("chart-hourly", "bar", { scales: { x: { stacked: true }, y: { stacked: true } } });
  chart("chart-paid", "bar", { plugins: { legend: { display: false }, tooltip: { callbacks: {
    label: function (ctx) { return ctx.raw.label; } } } }, parsing: { yAxisKey: "units" } });
  chart("chart-latency", "bar");
  chart("chart-errors", "bar");
  chart("chart-exceptions", "doughnut");

  function set(id, labels, datasets) {
    charts[id].data.labels = labels;
    charts[id].data.datasets = datasets;
    charts[id].update();
  }

  function rows(tableId, cells) {
    var body = document.querySelector("#" + tableId + " tbody");
    body.replaceChildren.apply(body, cells.map(function (values) {
      var tr = document.createElement("tr");
      values.forEach(function (v, i) {
        var td = document.createElement("td");
        td.textContent = v;
        if (i > 0 && typeof v !== "string") { td.className = "num"; }
        tr.appendChild(td);
      });
      return tr;
    }));
  }

  function draw(d) {
    var states = Object.keys(d.transfers_by_state);
    set("chart-states", states, [{ label: "transfers", data: states.map(function (s) { return d.transfers_by_state[s]; }),
      backgroundColor: states.map(function (_, i) { return PALETTE[i % PALETTE.length]; }) }]);

    var hours = [], hourly = {};
    d.transfers_by_state_hourly.forEach(function (r) {
      var h = r.hour.slice(11, 16);
      if (hours.indexOf(h) < 0) { hours.push(h); }
      (hourly[r.state] = hourly[r.state] || {})[h] = r.count;
    });
    set("chart-hourly", hours, Object.keys(hourly).sort().map(function (s, i) {
      return { label: s, backgroundColor: PALETTE[i % PALETTE.length],
               data: hours.map(function (h) { return hourly[s][h] || 0; }) };
    }));

    set("chart-paid", d.paid_by_partner.map(function (p) { return p.partner; }), [{
      label: "paid", backgroundColor: PALETTE[1],
      data: d.paid_by_partner.map(function (p) {
        return { x: p.partner, units: Math.floor(p.amount_centimes / 100), label: p.amount + " " + p.currency };
      }) }]);

    var lat = d.confirmation_latency;
    set("chart-latency", lat.map(function (p) { return p.partner; }), [
      { label: "p50", backgroundColor: PALETTE[0], data: lat.map(function (p) { return p.p50_seconds; }) },
      { label: "p95", backgroundColor: PALETTE[2], data: lat.map(function (p) { return p.p95_seconds; }) }]);

    var err = d.errors, kinds = ["dispatch_errors", "retries", "rejected", "unknown_outcomes"];
    set("chart-errors", err.map(function (p) { return p.partner; }), kinds.map(function (k, i) {
      return { label: k.replace("_", " "), backgroundColor: PALETTE[(i + 3) % PALETTE.length],
               data: err.map(function (p) { return p[k]; }) };
    }));

    var ex = Object.keys(d.exceptions_by_type);
    set("chart-exceptions", ex, [{ data: ex.map(function (k) { return d.exceptions_by_type[k]; }),
      backgroundColor: ex.map(function (_, i) { return PALETTE[i % PALETTE.length]; }) }]);

    rows("breakers", d.breakers.map(function (b) { return [b.partner, b.state]; }));
    rows("queues", Object.keys(d.queues).map(function (k) { return [k, d.queues[k]]; }));
    rows("paid-table", d.paid_by_partner.map(function (p) { return [p.partner, p.count, p.amount + " " + p.currency]; }));
    document.getElementById("generated-at").textContent = "as of " + d.generated_at.slice(0, 19).replace("T", " ") + " UTC";
    root.dataset.loaded = "1";
  }

  function refresh() {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(draw)
      .catch(function (e) { document.getElementById("generated-at").textContent = "refresh failed (" + e.message + ")"; })
      .finally(function () { window.setTimeout(refresh, Number(root.dataset.refreshSeconds) * 1000); });
  }
  refresh();
})();
