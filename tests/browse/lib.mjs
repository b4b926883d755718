// Shared by browse.mjs (the scenario) and bench.mjs (the scale figures): Debian's chromium
// driven by playwright-core (no browser download), and a page view measured from inside
// the page (Resource Timing: requests, bytes over the wire, time to the UI's first render).
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespaces for the sandbox.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/// Opens `url` in a fresh page (empty cache) and waits for the UI to render the view.
export async function view(browser, url, viewport = { width: 1200, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 15000 });
  return { page, context };
}

/// Requests, bytes transferred and the time of the UI's first render, for the view open in
/// `page` (the navigation itself included).
export async function figures(page) {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const res = performance.getEntriesByType("resource");
    const mark = performance.getEntriesByName("cargohold-rendered")[0];
    const bytes = [nav, ...res].reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0);
    const documents = res.filter((e) => !e.name.includes("/ui/"));
    return {
      requests: 1 + res.length,
      documents: documents.length,
      bytes,
      renderMs: mark ? Math.round(mark.startTime) : null,
    };
  });
}

/// As the UI formats sizes (registry-api/ui/app.js `size`).
export function size(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
