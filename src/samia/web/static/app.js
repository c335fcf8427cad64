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

  // the notification settings' "turn on in this browser": subscribe with the server's VAPID
  // key, then register the subscription (a form post with the page's CSRF token)
  function key(b64) {
    var s = atob(b64.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(s, function (c) { return c.charCodeAt(0); });
  }
  function pushButton() {
    var box = document.getElementById("push-here");
    if (!box || !("serviceWorker" in navigator) || !("PushManager" in window)) return;
    box.hidden = false;
    var state = document.getElementById("push-state");
    document.getElementById("push-on").addEventListener("click", function () {
      Notification.requestPermission().then(function (answer) {
        if (answer !== "granted") { state.textContent = state.getAttribute("data-denied"); return null; }
        return navigator.serviceWorker.register("/sw.js").then(function () { return navigator.serviceWorker.ready; })
          .then(function (reg) {
            return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key(box.getAttribute("data-push-key")) });
          })
          .then(function (sub) {
            var body = new URLSearchParams({ _csrf: box.getAttribute("data-csrf"), subscription: JSON.stringify(sub.toJSON()),
                                             label: navigator.userAgent.split(") ")[0].split("(").pop().slice(0, 100) });
            return fetch("/account/notifications/devices", { method: "POST", body: body, credentials: "same-origin" });
          })
          .then(function (r) {
            if (r && r.ok) { window.location = r.url; } else { state.textContent = state.getAttribute("data-failed"); }
          });
      }).catch(function () { state.textContent = state.getAttribute("data-failed"); });
    });
  }

  // the horoscopes' players: "started" on the first play, "finished" at the end (with the
  // seconds heard), posted with the page's CSRF token; analytics only, nothing waits on it
  function listenEvents() {
    var box = document.querySelector("[data-listen]");
    if (!box) return;
    function send(audio, event) {
      var body = new URLSearchParams({ _csrf: box.getAttribute("data-csrf"), event: event,
                                       scope: audio.getAttribute("data-scope"), date: audio.getAttribute("data-date"),
                                       sign: audio.getAttribute("data-sign") });
      if (event === "finished" && isFinite(audio.duration)) body.set("seconds", String(Math.round(audio.duration)));
      fetch(box.getAttribute("data-listen"), { method: "POST", body: body, credentials: "same-origin", keepalive: true })
        .catch(function () {});
    }
    box.querySelectorAll("audio[data-sign]").forEach(function (audio) {
      audio.addEventListener("play", function () {
        if (!audio.dataset.started) { audio.dataset.started = "1"; send(audio, "started"); }
      });
      audio.addEventListener("ended", function () { send(audio, "finished"); delete audio.dataset.started; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusSummary();
    listenEvents();
    countdowns();
    currentTab();
    pushButton();
  });
  window.addEventListener("load", function () {
    whenIdle(function () {
      rememberZone();
      if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(function () {});
    });
  });
  document.addEventListener("htmx:afterSwap", function (ev) { focusSummary(ev.target); countdowns(ev.target); });
})();
