// cargohold browse UI: reads the browse documents of the static index (docs/index-format.md,
// "Browse documents") from the origin it is served from, or from the origin in
// `?index=<url>` (CORS). No framework, no build step; every page view reads a fixed
// number of small documents:
//   list     catalog.json + one catalog page
//   search   search.json + one or two search pages
//   repo     tags.json (summary and directory) + one tag page
//   manifest tags.json + tag page (for a tag) + manifest detail + referrers
"use strict";

const BASE = (new URLSearchParams(location.search).get("index") || "").replace(/\/+$/, "");
const MAX_RESULTS = 100;
const main = document.getElementById("main");
const cache = new Map();

// --- reading documents -------------------------------------------------------------------

async function get(path, optional) {
  if (cache.has(path)) return cache.get(path);
  const p = fetch(BASE + path, { headers: { Accept: "application/json" } }).then(async (r) => {
    if (r.status === 404 && optional) return null;
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  });
  cache.set(path, p);
  p.catch(() => cache.delete(path));
  return p;
}

const emptyDir = { version: 1, pages: [{ id: "00000000", from: "" }] };

/// The directory of a list, or a single empty page before the first push.
async function directory(path) {
  return (await get(path, true)) || emptyDir;
}

function pageOf(dir, key) {
  let i = 0;
  while (i + 1 < dir.pages.length && dir.pages[i + 1].from <= key) i++;
  return i;
}

/// Page `i` of a list, its entries limited to the page's range (a split in progress may
/// leave a copy of an entry on the page it left).
async function page(folder, dir, i, keyOf) {
  const p = dir.pages[i];
  const doc = await get(`${folder}/${p.id}.json`, true);
  const until = dir.pages[i + 1] ? dir.pages[i + 1].from : null;
  return ((doc && doc.entries) || []).filter((e) => {
    const k = keyOf(e);
    return k >= p.from && (until === null || k < until);
  });
}

const repoPath = (name) => `/index/${name}/_browse`;

let configPromise = null;
function config() {
  configPromise ||= get("/config.json", true).catch(() => null);
  return configPromise;
}

// --- building the page -------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function size(n) {
  if (n === undefined || n === null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function when(secs) {
  if (!secs) return "";
  return new Date(secs * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

const short = (digest) => digest.replace(/^(sha\d+:)(.{12}).*$/, "$1$2");
const link = (href, text) => h("a", { href }, text);
const repoLink = (name) => link(`#/r/${name}`, name);
const manifestLink = (name, ref, text) => link(`#/r/${name}/m/${ref}`, text || ref);

function render(title, ...content) {
  document.title = `${title} · cargohold`;
  main.replaceChildren(h("h1", {}, title), ...content.filter((c) => c !== null && c !== undefined));
  document.body.dataset.ready = location.hash || "#/";
  performance.mark("cargohold-rendered");
}

function pager(prefix, i, n) {
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    i > 0 ? link(`${prefix}?page=${i - 1}`, "← Previous") : null,
    h("span", { class: "muted" }, `page ${i + 1} of ${n}`),
    i + 1 < n ? link(`${prefix}?page=${i + 1}`, "Next →") : null,
  );
}

async function pullCommands(name, ref) {
  const cfg = await config();
  let host = location.host;
  try {
    if (cfg && cfg.api) host = new URL(cfg.api).host;
  } catch {
    /* keep the page's host */
  }
  const sep = ref.includes(":") ? "@" : ":";
  const image = `${host}/${name}${sep}${ref}`;
  const lines = [`docker pull ${image}`, `podman pull ${image}`, `cargohold pull ${image}`];
  return h(
    "section",
    { "aria-labelledby": "pull" },
    h("h2", { id: "pull" }, "Pull"),
    lines.map((line) =>
      h(
        "div",
        { class: "cmd" },
        h("pre", {}, h("code", {}, line)),
        h(
          "button",
          {
            type: "button",
            "aria-label": `Copy: ${line}`,
            onclick: (e) => {
              navigator.clipboard?.writeText(line);
              e.currentTarget.textContent = "Copied";
            },
          },
          "Copy",
        ),
      ),
    ),
  );
}

// --- pages -------------------------------------------------------------------------------

async function listPage(params) {
  const dir = await directory("/index/_browse/catalog.json");
  const i = Math.min(Math.max(0, Number(params.get("page")) || 0), dir.pages.length - 1);
  const names = await page("/index/_browse/catalog", dir, i, (e) => e);
  render(
    "Repositories",
    names.length === 0
      ? h("p", {}, "No repositories yet: push an image to see it here.")
      : h("ul", { class: "repos" }, names.map((n) => h("li", {}, repoLink(n)))),
    dir.pages.length > 1 ? pager("#/", i, dir.pages.length) : null,
  );
}

async function searchPage(params) {
  const q = (params.get("q") || "").trim().toLowerCase();
  document.getElementById("q").value = q;
  if (!q) return listPage(new URLSearchParams());
  const dir = await directory("/index/_browse/search.json");
  const found = new Set();
  // Terms starting with q sort together: from q's page onwards while they still match.
  for (let i = pageOf(dir, q), read = 0; i < dir.pages.length && read < 2; i++, read++) {
    const entries = await page("/index/_browse/search", dir, i, (e) => e);
    let past = false;
    for (const e of entries) {
      const [term, name] = e.split(" ");
      if (term.startsWith(q)) found.add(name);
      else if (term > q) past = true;
      if (found.size >= MAX_RESULTS) break;
    }
    if (past || found.size >= MAX_RESULTS) break;
  }
  const names = [...found].sort();
  render(
    `Search: ${q}`,
    h("p", { class: "muted" }, `${names.length}${names.length >= MAX_RESULTS ? "+" : ""} repositories`),
    h("ul", { class: "repos" }, names.map((n) => h("li", {}, repoLink(n)))),
  );
}

const COLUMNS = [
  ["tag", "Tag", (r) => r.tag],
  ["pushed", "Pushed", (r) => r.pushed],
  ["size", "Size", (r) => r.size],
  ["platforms", "Platforms", (r) => (r.platforms || []).length],
];

async function repoPage(name, params) {
  const dir = await directory(`${repoPath(name)}/tags.json`);
  const summary = dir.repository || { tags: 0, recent: [] };
  const i = Math.min(Math.max(0, Number(params.get("page")) || 0), dir.pages.length - 1);
  const records = await page(`${repoPath(name)}/tags`, dir, i, (r) => r.tag);
  const sortKey = params.get("sort") || "tag";
  const desc = params.get("order") === "desc";
  const col = COLUMNS.find((c) => c[0] === sortKey) || COLUMNS[0];
  records.sort((a, b) => {
    const x = col[2](a), y = col[2](b);
    return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
  });
  const base = `#/r/${name}`;
  const sortHref = (key) => {
    const p = new URLSearchParams({ sort: key, order: key === sortKey && !desc ? "desc" : "asc" });
    if (i) p.set("page", i);
    return `${base}?${p}`;
  };
  const table = h(
    "div",
    { class: "scroll" },
    h(
      "table",
      {},
      h("caption", { class: "muted" }, `${summary.tags} tag${summary.tags === 1 ? "" : "s"}${dir.pages.length > 1 ? `, page ${i + 1} of ${dir.pages.length}` : ""}`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          COLUMNS.map(([key, label]) =>
            h(
              "th",
              {
                scope: "col",
                class: key === "size" ? "num" : null,
                "aria-sort": key === sortKey ? (desc ? "descending" : "ascending") : null,
              },
              h("button", { type: "button", onclick: () => (location.hash = sortHref(key)) }, label),
            ),
          ),
          h("th", { scope: "col", class: "hide-narrow" }, "Digest"),
          h("th", { scope: "col", class: "hide-narrow" }, "Referrers"),
        ),
      ),
      h(
        "tbody",
        {},
        records.map((r) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, manifestLink(name, r.tag)),
            h("td", {}, when(r.pushed)),
            h("td", { class: "num" }, size(r.size)),
            h("td", {}, (r.platforms || []).length ? r.platforms.map((p) => h("span", { class: "badge" }, p.platform)) : "—"),
            h("td", { class: "hide-narrow" }, h("code", {}, short(r.digest))),
            h(
              "td",
              { class: "hide-narrow" },
              Object.entries(r.referrers || {}).map(([t, n]) => h("span", { class: "badge" }, `${t} × ${n}`)),
            ),
          ),
        ),
      ),
    ),
  );
  const latest = summary.recent && summary.recent[0];
  render(
    name,
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Tags"),
      h("dd", {}, String(summary.tags)),
      h("dt", {}, "Last push"),
      h("dd", {}, latest ? [manifestLink(name, latest.tag), " ", when(summary.pushed)] : "—"),
    ),
    await pullCommands(name, latest ? latest.tag : "latest"),
    h("h2", {}, "Tags"),
    records.length ? table : h("p", {}, "No tags."),
    dir.pages.length > 1 ? pager(base, i, dir.pages.length) : null,
  );
}

function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, v]) => v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && v.length === 0)).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
  );
}

async function manifestPage(name, ref) {
  let digest = ref;
  if (!ref.includes(":")) {
    const dir = await directory(`${repoPath(name)}/tags.json`);
    const records = await page(`${repoPath(name)}/tags`, dir, pageOf(dir, ref), (r) => r.tag);
    const record = records.find((r) => r.tag === ref);
    if (!record) return render(`${name}:${ref}`, h("p", {}, "No such tag."));
    digest = record.digest;
  }
  const [d, referrers] = await Promise.all([
    get(`${repoPath(name)}/manifests/${digest}.json`, true),
    get(`/v2/${name}/referrers/${digest}`, true),
  ]);
  const title = ref.includes(":") ? `${name}@${short(ref)}` : `${name}:${ref}`;
  if (!d) return render(title, h("p", {}, "No such manifest."));
  const sections = [
    facts([
      ["Repository", repoLink(name)],
      ["Digest", h("code", {}, d.digest)],
      ["Media type", d.mediaType],
      ["Artifact type", d.artifactType],
      ["Total size", size(d.size)],
      ["Created", d.created],
      ["Tags", (d.tags || []).map((t) => [manifestLink(name, t), " "])],
      ["Refers to", d.subject ? manifestLink(name, d.subject, short(d.subject)) : null],
    ]),
    await pullCommands(name, ref),
  ];
  if ((d.platforms || []).length) {
    sections.push(
      h("h2", {}, "Platforms"),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Platform"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "Digest"))),
          h(
            "tbody",
            {},
            d.platforms.map((p) =>
              h("tr", {}, h("th", { scope: "row" }, manifestLink(name, p.digest, p.platform)), h("td", { class: "num" }, size(p.size)), h("td", {}, h("code", {}, short(p.digest)))),
            ),
          ),
        ),
      ),
    );
  }
  if ((d.layers || []).length) {
    sections.push(
      h("h2", {}, "Layers"),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "#"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "Media type"), h("th", { scope: "col" }, "Digest"))),
          h("tbody", {}, d.layers.map((l, n) => h("tr", {}, h("td", {}, n + 1), h("td", { class: "num" }, size(l.size)), h("td", {}, l.mediaType), h("td", {}, h("code", {}, short(l.digest)))))),
        ),
      ),
    );
  }
  const c = d.config;
  if (c) {
    sections.push(
      h("h2", {}, "Config"),
      facts([
        ["Platform", c.platform],
        ["Entrypoint", c.entrypoint && h("code", {}, JSON.stringify(c.entrypoint))],
        ["Command", c.cmd && h("code", {}, JSON.stringify(c.cmd))],
        ["Environment", (c.env || []).map((e) => h("span", { class: "badge" }, e))],
        ["Labels", Object.entries(c.labels || {}).map(([k, v]) => h("div", {}, h("code", {}, `${k}=${v}`)))],
        ["Config blob", h("code", {}, `${short(c.digest)} (${size(c.size)})`)],
      ]),
    );
    if ((c.history || []).length) {
      sections.push(
        h("h2", {}, "History"),
        h("ol", {}, c.history.map((s) => h("li", {}, h("code", {}, s.created_by || s.comment || "(no command)"), s.empty_layer ? h("span", { class: "muted" }, " (no layer)") : null))),
      );
    }
  }
  const byType = {};
  for (const r of (referrers && referrers.manifests) || []) (byType[r.artifactType || "unknown"] ||= []).push(r);
  sections.push(h("h2", {}, "Referrers"));
  if (Object.keys(byType).length === 0) sections.push(h("p", { class: "muted" }, "Nothing refers to this manifest."));
  for (const [type, list] of Object.entries(byType)) {
    sections.push(
      h("h3", {}, type),
      h("ul", {}, list.map((r) => h("li", {}, manifestLink(name, r.digest, short(r.digest)), ` ${size(r.size)}`))),
    );
  }
  render(title, ...sections);
}

// --- routing -----------------------------------------------------------------------------

async function route() {
  const hash = decodeURIComponent(location.hash.slice(1)) || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  document.body.dataset.ready = "";
  cache.clear(); // each view reads fresh documents (revalidated by ETag)
  try {
    let m;
    if (path === "/search") await searchPage(params);
    else if ((m = path.match(/^\/r\/(.+)\/m\/([^/]+)$/))) await manifestPage(m[1], m[2]);
    else if ((m = path.match(/^\/r\/(.+)$/))) await repoPage(m[1], params);
    else await listPage(params);
  } catch (e) {
    render("Something went wrong", h("p", {}, String(e.message || e)));
  }
}

document.getElementById("search").addEventListener("submit", (e) => {
  e.preventDefault();
  location.hash = `#/search?q=${encodeURIComponent(document.getElementById("q").value.trim())}`;
});
let routed = false;
window.addEventListener("hashchange", () => {
  route().then(() => main.focus({ preventScroll: false }));
});
if (!routed) {
  routed = true;
  route();
}
