// Optional progressive enhancement: while a payment is pending, ask the app
// for its status and reload the page once it changes. Without JavaScript a
// <noscript> meta refresh does the same.
(function () {
  "use strict";
  var el = document.querySelector("[data-poll]");
  if (!el || !window.fetch) return;
  var url = el.getAttribute("data-poll");
  var status = el.getAttribute("data-status");
  var reload = el.getAttribute("data-reload");
  var delay = 1000;
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (j && j.status && j.status !== status) {
          el.textContent = j.status;
          el.className = "status status-" + j.status;
          window.location.replace(reload);
          return;
        }
        delay = Math.min(delay * 1.3, 5000);
        setTimeout(tick, delay);
      })
      .catch(function () { setTimeout(tick, 5000); });
  }
  setTimeout(tick, delay);
})();
