// The relative app's service worker (served at /sw.js, scope /): Web Push notifications.
//
// A push carries {title, body, url, tag}: never the message itself (lock screens are seen by
// others), only whom it is about and what kind of event. Tapping the notification focuses an
// open window of the app and takes it to `url` (the conversation), or opens one there. Nothing
// is cached: the app needs the server anyway, and a stale page would show stale answers.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = {};
  }
  const title = data.title || "亲情在线";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || "您有新的消息",
      tag: data.tag || "kinline",
      icon: "/static/icons/icon-192.png",
      badge: "/static/icons/icon-192.png",
      data: { url: sameOrigin(data.url) },
    }),
  );
});

function sameOrigin(url) {
  try {
    const target = new URL(url || "/app", self.location.origin);
    return target.origin === self.location.origin ? target.pathname + target.search + target.hash : "/app";
  } catch {
    return "/app";
  }
}

// Tapping: an open window of the app is brought forward and taken to `url`, else one opens.
// (A focus the browser refuses does not stop the navigation.)
async function openConversation(url) {
  const target = sameOrigin(url);
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (new URL(client.url).pathname === "/app") {
      await client.focus().catch(() => null);
      return client.navigate(target);
    }
  }
  return self.clients.openWindow(target);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openConversation(event.notification.data && event.notification.data.url));
});
