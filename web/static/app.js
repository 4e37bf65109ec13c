// metertrust operator dashboard: the one script of the pages (the CSP
// allows no other). It refreshes the parts of a page that say so:
//   <div id="live" data-refresh="/overview/live" data-every="5">
// is replaced every 5 seconds by the HTML the server renders at that path.
"use strict";

function refresh(el) {
  const url = el.dataset.refresh;
  const every = Math.max(1, Number(el.dataset.every || "5")) * 1000;
  const tick = async () => {
    try {
      const r = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (r.redirected || r.status === 401) { // the session ended
        window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
        return;
      }
      if (r.ok) {
        el.innerHTML = await r.text();
        el.dataset.updated = new Date().toISOString();
      }
    } catch (e) {
      // the server is away: keep what is shown and try again
    }
    window.setTimeout(tick, every);
  };
  window.setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refresh);
});
