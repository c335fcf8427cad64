/* Samia Tarot service worker: an offline shell, the catalogue, and push notifications.
   Pages are fetched from the network first and kept for offline use; static files are served
   from the cache first. Nothing signed-in is cached except pages the person opened. */
"use strict";
const VERSION = "samia-v1";
const SHELL = ["/offline", "/static/theme.css", "/static/app.js", "/static/htmx-2.0.11.min.js",
               "/static/icons/icon.svg", "/static/icons/icon-192.png", "/catalogue", "/"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
    return;
  }
  // only the public pages are kept; a signed-in page may hold personal data
  const keep = url.pathname === "/" || url.pathname === "/catalogue" || url.pathname.startsWith("/catalogue/");
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).then((response) => {
      if (keep && response.ok) {
        const copy = response.clone();
        caches.open(VERSION).then((cache) => cache.put(request, copy));
      }
      return response;
    }).catch(() => caches.match(request).then((hit) => hit || caches.match("/offline"))));
  }
});

// a push from the platform (providers/push.py webpush_payload): show it in its own language and
// direction; a tap opens the link it carries (a path on this site), else the notification page
self.addEventListener("push", (event) => {
  let msg = {};
  try { msg = event.data ? event.data.json() : {}; } catch (e) { msg = {}; }
  const data = msg.data || {};
  event.waitUntil(self.registration.showNotification(msg.title || "Samia Tarot", {
    body: msg.body || "", lang: msg.lang || "en", dir: msg.dir || "auto", data: data,
    icon: "/static/icons/icon-192.png", tag: data.tag || undefined,
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const link = (event.notification.data || {}).link || "";
  const target = link.startsWith("/") && !link.startsWith("//") ? link : "/account/notifications";
  event.waitUntil(self.clients.openWindow(target));
});
