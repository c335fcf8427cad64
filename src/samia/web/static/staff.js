/* The staff consoles: live clocks, the ringing overlay (polled by htmx), and recording in the
   page with MediaRecorder into the same form a chosen file goes through. No inline script (CSP). */
(function () {
  "use strict";

  // "2:15 left" / "overdue by 0:40" (hours:minutes), refreshed every half minute
  function clocks(root) {
    (root || document).querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var mins = Math.round((due - Date.now()) / 60000), abs = Math.abs(mins);
      var hm = Math.floor(abs / 60) + ":" + String(abs % 60).padStart(2, "0");
      var text = mins >= 0 ? hm + " " + el.getAttribute("data-left") : el.getAttribute("data-over") + " " + hm;
      var time = el.querySelector("time");
      if (time) { time.textContent = "\u2066" + text + "\u2069"; }
      el.classList.toggle("overdue", mins < 0);
    });
  }

  // the overlay: a poll that brings the same ringing call again leaves it (and its sound) alone
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var slot = ev.detail.target;
    if (!slot || slot.id !== "ring") return;
    // a signed-out session is sent to the log-in page: never swap that page into the slot
    var url = ev.detail.xhr && ev.detail.xhr.responseURL;
    if (url && url.indexOf("/staff/ring") < 0) { ev.detail.shouldSwap = false; return; }
    var now = slot.querySelector("[data-ring]");
    var m = /data-ring="([^"]+)"/.exec(ev.detail.serverResponse || "");
    if (now && m && now.getAttribute("data-ring") === m[1]) ev.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterSwap", function (ev) {
    if (!ev.target || ev.target.id !== "ring") return;
    var overlay = ev.target.querySelector("[data-ring]");
    if (!overlay) return;
    var sound = overlay.querySelector("[data-ring-sound]");
    if (sound && sound.play) sound.play().catch(function () { /* autoplay refused until a click */ });
    var button = overlay.querySelector("[data-autofocus]");
    if (button) button.focus();
  });

  function recorder(form) {
    var controls = form.querySelector("[data-rec-controls]");
    var input = form.querySelector("input[type=file]");
    if (!controls || !input || !window.MediaRecorder || !navigator.mediaDevices) return;
    var start = form.querySelector("[data-rec-start]"), stop = form.querySelector("[data-rec-stop]");
    var state = form.querySelector("[data-rec-state]"), preview = form.querySelector("[data-rec-preview]");
    var rec = null, chunks = [];
    controls.hidden = false;
    start.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
        chunks = [];
        rec = new MediaRecorder(stream);
        rec.ondataavailable = function (e) { if (e.data.size) chunks.push(e.data); };
        rec.onstop = function () {
          stream.getTracks().forEach(function (tr) { tr.stop(); });
          var type = (rec.mimeType || "audio/webm").split(";")[0];
          var file = new File(chunks, "recording." + (type.indexOf("ogg") >= 0 ? "ogg" : "webm"), { type: type });
          var dt = new DataTransfer();
          dt.items.add(file);
          input.files = dt.files;
          preview.src = URL.createObjectURL(file);
          preview.hidden = false;
          state.textContent = state.getAttribute("data-ready");
          form.classList.remove("recording");
          start.disabled = false; stop.disabled = true;
        };
        rec.start();
        form.classList.add("recording");
        state.textContent = state.getAttribute("data-recording");
        start.disabled = true; stop.disabled = false; stop.focus();
      }).catch(function () { state.textContent = state.getAttribute("data-denied"); });
    });
    stop.addEventListener("click", function () { if (rec && rec.state !== "inactive") rec.stop(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    clocks();
    setInterval(clocks, 30000);
    document.querySelectorAll("[data-recorder]").forEach(recorder);
  });
})();
