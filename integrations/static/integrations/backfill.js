// The backfill progress page: poll its JSON and update the bars and counts in place (the strict
// CSP allows scripts only as static files). Stops when the backfill is no longer active.
(function () {
  "use strict";
  var section = document.getElementById("backfill-progress");
  if (!section) { return; }
  var url = section.getAttribute("data-url");
  var active = section.getAttribute("data-active") === "1";
  var status = null;

  function show(data) {
    document.querySelectorAll("[data-field]").forEach(function (node) {
      var name = node.getAttribute("data-field");
      if (Object.prototype.hasOwnProperty.call(data, name)) {
        var value = data[name];
        node.textContent = (value === null || value === "") ? "—" : String(value);
      }
    });
    document.getElementById("progress-file").value = data.file_percent;
    document.getElementById("progress-delivery").value = data.percent;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        show(data);
        if (status !== null && data.status !== status && !data.active) {
          window.location.reload();  // finished or cancelled: the buttons change
          return;
        }
        status = data.status;
        if (data.active) { window.setTimeout(poll, 1500); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }

  if (active) { window.setTimeout(poll, 500); }
})();
