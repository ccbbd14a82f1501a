// Times: the server writes them in UTC, in a <time datetime> element;
// here they are shown in the browser's own time zone, in the same format.
function demoLocalTimes(root) {
  "use strict";
  var months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function two(n) { return (n < 10 ? "0" : "") + n; }
  Array.prototype.forEach.call(root.querySelectorAll("time[datetime][data-fmt]"), function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) return;
    var day = d.getDate() + " " + months[d.getMonth()] + " " + d.getFullYear() + " " + two(d.getHours()) + ":" + two(d.getMinutes());
    el.textContent = el.getAttribute("data-fmt") === "clock" ? two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds()) : day;
    el.title = day;
  });
}

// Forms with data-confirm ask first (Disconnect).
(function () {
  "use strict";
  demoLocalTimes(document);
  Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
})();

// Progressive enhancement: while payments are pending, ask the app for
// their status and update the page in place — the status badge, its
// history and, once money moved, the balances — without a reload. Polling
// stops when nothing is pending. Without JavaScript a <noscript> meta
// refresh reloads the page instead.
(function () {
  "use strict";
  if (!window.fetch || !document.querySelector("[data-poll]")) return;

  var minDelay = 1000, maxDelay = 5000;
  var giveUpAt = Date.now() + 15 * 60 * 1000; // then the page says "reload"
  var delay = minDelay, timer = null, busy = false, stopped = false;

  function pending() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-poll]"));
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status >= 400 && r.status < 500) throw { fatal: true };
        if (!r.ok) throw { fatal: false };
        return r.json();
      });
  }

  function show(id, on) {
    var el = document.getElementById(id);
    if (el) el.hidden = !on;
  }

  // history rebuilds a payment's status history from the answer; texts
  // go in as text, never as markup.
  function history(id, entries) {
    var ol = document.getElementById("history-" + id);
    if (!ol || !entries) return;
    while (ol.firstChild) ol.removeChild(ol.firstChild);
    entries.forEach(function (h) {
      var li = document.createElement("li");
      var st = document.createElement("span");
      st.className = "history-status";
      st.textContent = h.status;
      var t = document.createElement("time");
      t.setAttribute("datetime", h.at);
      t.setAttribute("data-fmt", "clock");
      t.textContent = h.shown;
      li.appendChild(st);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(t);
      ol.appendChild(li);
    });
    demoLocalTimes(ol);
  }

  function balances() {
    getJSON("/demo/balances").then(function (j) {
      (j.accounts || []).forEach(function (a) {
        var sel = '[data-balance-of="' + CSS.escape(a.id) + '"]';
        Array.prototype.forEach.call(document.querySelectorAll(sel), function (el) {
          el.textContent = a.balance;
          el.classList.toggle("negative", !!a.negative);
        });
        sel = '[data-option-of="' + CSS.escape(a.id) + '"]';
        Array.prototype.forEach.call(document.querySelectorAll(sel), function (el) {
          el.textContent = el.getAttribute("data-label") + " (" + a.balance + ")";
        });
      });
    }).catch(function () { /* the link in the note still reloads */ });
  }

  // update applies one payment's answer; it returns the final status, or
  // "" while the payment is still pending.
  function update(el, j) {
    var id = j.id;
    history(id, j.status_history);
    if (j.status !== el.getAttribute("data-status")) {
      el.textContent = j.status;
      el.className = "status status-" + j.status;
      el.setAttribute("data-status", j.status);
    }
    if (!j.final) return "";
    el.removeAttribute("data-poll");
    return j.status;
  }

  function tick() {
    timer = null;
    var els = pending();
    if (!els.length || busy || stopped) return;
    busy = true;
    Promise.all(els.map(function (el) {
      return getJSON(el.getAttribute("data-poll")).then(function (j) {
        return update(el, j);
      }, function (e) {
        if (e && e.fatal) stopped = true; // no session or no consent: asking again will not help
        return "";
      });
    })).then(function (settled) {
      busy = false;
      var executed = settled.indexOf("executed") >= 0;
      if (executed) balances();
      settled.forEach(function (s) {
        if (s) {
          show("flash-payment_created", false); // "approve it in the bunq app" is done
          show("note-executed", s === "executed");
          show("note-closed", s !== "executed");
        }
      });
      if (!pending().length) {
        show("pending-hint", false); // nothing left: stop polling
        return;
      }
      if (stopped || Date.now() > giveUpAt) {
        show("note-paused", true);
        return;
      }
      delay = settled.some(Boolean) ? minDelay : Math.min(delay * 1.3, maxDelay);
      timer = setTimeout(tick, delay);
    });
  }

  // Coming back from the bunq app's tab: ask at once.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || !timer) return;
    clearTimeout(timer);
    delay = minDelay;
    tick();
  });

  timer = setTimeout(tick, delay);
})();
