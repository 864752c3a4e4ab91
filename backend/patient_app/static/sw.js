// Service worker of the skintrack patient app: keeps the app shell for use without network.
// Only the shell's own files are cached; API answers (health data, sent with
// Cache-Control: no-store) never are. Photos waiting for the network live in IndexedDB
// (js/queue.js), not here.
const VERSION = 'skintrack-app-v1';
const SHELL = ["/app/", "/app/manifest.webmanifest", "/app/static/app.css", "/app/static/js/main.js", "/app/static/js/api.js", "/app/static/js/queue.js", "/app/static/js/capture.js", "/app/static/js/views.js", "/app/static/icons/icon.svg", "/app/static/icons/icon-192.png", "/app/static/icons/icon-512.png"];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== VERSION).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

// Network first (a deployed fix reaches the phone at once), the cached shell when offline.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith('/app/')) {
    return;  // the API and everything else: straight to the network
  }
  const key = event.request.mode === 'navigate' ? '/app/' : url.pathname;
  event.respondWith(fetch(event.request).then((response) => {
    if (response.ok && SHELL.includes(key)) {
      const copy = response.clone();
      caches.open(VERSION).then((cache) => cache.put(key, copy));
    }
    return response;
  }).catch(() => caches.match(key).then((cached) => cached || Response.error())));
});
