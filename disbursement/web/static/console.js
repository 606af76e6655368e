// Light JavaScript only: progress bars that poll a JSON endpoint.
(function () {
  "use strict";
  var POLL_MS = 1500;

  function poll(el) {
    var bar = el.querySelector("progress");
    var text = el.querySelector(".progress-text");
    fetch(el.dataset.progressUrl || el.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (el.dataset.jobUrl) {
          if (data.total) { bar.max = data.total; }
          bar.value = data.done;
          text.textContent = data.kind + ": " + data.status + " (" + data.done + (data.total ? " of " + data.total : "") + ")";
          if (data.status === "failed") { text.textContent += ": " + (data.error || "failed"); el.dataset.finished = "1"; return; }
          if (data.status === "done") {
            el.dataset.finished = "1";
            if (data.next_url) { window.location.assign(data.next_url); }
            return;
          }
        } else {
          bar.max = data.total || 1;
          bar.value = data.dispatched;
          var parts = Object.keys(data.by_state).sort().map(function (k) { return k + " " + data.by_state[k]; });
          text.textContent = "dispatched " + data.dispatched + " of " + data.total + " (" + parts.join(", ") + ")";
          if (data.total && data.dispatched >= data.total) { el.dataset.finished = "1"; return; }
        }
        window.setTimeout(function () { poll(el); }, POLL_MS);
      })
      .catch(function () { window.setTimeout(function () { poll(el); }, POLL_MS * 4); });
  }

  document.querySelectorAll("[data-progress-url], [data-job-url]").forEach(poll);
})();
