/* Samia Tarot: the little the pages need beyond HTML and htmx. No inline script anywhere (CSP). */
(function () {
  "use strict";
  // the client's time zone, so that the server shows times in it (a preference, not a secret);
  // Intl's first use is slow on a phone, so it waits until the page is idle
  function rememberZone() {
    try {
      var zone = encodeURIComponent(Intl.DateTimeFormat().resolvedOptions().timeZone || "");
      if (zone && document.cookie.indexOf("samia_tz=" + zone) < 0) {
        document.cookie = "samia_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
      }
    } catch (e) { /* an old browser: times stay in UTC, and the page says so */ }
  }
  function whenIdle(fn) { (window.requestIdleCallback || function (f) { setTimeout(f, 200); })(fn); }

  // a form's error summary takes the focus, so keyboard and screen-reader users hear it first
  function focusSummary(root) {
    var s = (root || document).querySelector("[data-focus]");
    if (s) s.focus();
  }

  // the hold's countdown: "mm:ss" left, then the page's "expired" text
  function countdowns(root) {
    (root || document).querySelectorAll("[data-countdown]").forEach(function (el) {
      var end = Date.parse(el.getAttribute("data-countdown"));
      var clock = el.querySelector(".clock");
      if (!clock || isNaN(end)) return;
      function tick() {
        var left = Math.max(0, Math.round((end - Date.now()) / 1000));
        clock.textContent = (el.getAttribute("data-left") || "") + " " + String(Math.floor(left / 60)).padStart(2, "0") + ":" +
          String(left % 60).padStart(2, "0");
        if (left === 0) { el.textContent = el.getAttribute("data-expired"); el.classList.add("expired"); return; }
        setTimeout(tick, 1000);
      }
      tick();
    });
  }

  // on a phone the tabs scroll sideways: bring the current one into view
  function currentTab() {
    var a = document.querySelector(".nav [aria-current=page]");
    var ul = a && a.closest("ul");
    if (!ul || ul.scrollWidth <= ul.clientWidth) return;
    var r = a.getBoundingClientRect(), u = ul.getBoundingClientRect();
    ul.scrollLeft += (r.left + r.width / 2) - (u.left + u.width / 2);
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusSummary();
    countdowns();
    currentTab();
  });
  window.addEventListener("load", function () {
    whenIdle(function () {
      rememberZone();
      if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(function () {});
    });
  });
  document.addEventListener("htmx:afterSwap", function (ev) { focusSummary(ev.target); countdowns(ev.target); });
})();
