// Serves infra/cloudflare/worker.js in Miniflare on https://127.0.0.1, with a local R2 bucket
// filled from a cargohold filesystem store, as cargohold's S3 backend would fill R2.
//
//   node serve.mjs --root DIR --api URL [--blobs-url URL] [--prefix P]
//
// Prints `listening <url>` once serving, and `synced <generation> <objects>` after every
// copy. SIGUSR2 copies again (new and changed objects, and deletes what is gone);
// SIGTERM or SIGINT stops workerd and exits.
//
// The copy takes every object of the store's directory but its dot folders (.meta,
// .multipart, .locks, .tmp): config.json, blobs/, index/ and uploads/, which a real
// bucket holds too. The Content-Type, Cache-Control and a manifest's `digest` custom
// metadata come from the `.meta/<key>.json` sidecar, when its size matches, as the S3
// backend sets them on the object.

import { readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Log, LogLevel, Miniflare } from "miniflare";

const here = path.dirname(fileURLToPath(import.meta.url));
const workerDir = path.resolve(here, "../../infra/cloudflare");

const { values: args } = parseArgs({
  options: {
    root: { type: "string" },
    api: { type: "string" },
    "blobs-url": { type: "string", default: "" },
    prefix: { type: "string", default: "" },
  },
});
if (!args.root || !args.api) {
  console.error("usage: node serve.mjs --root DIR --api URL [--blobs-url URL] [--prefix P]");
  process.exit(2);
}

// The deployed settings, so the test runs what `wrangler deploy` would.
const toml = await readFile(path.join(workerDir, "wrangler.toml"), "utf8");
const setting = (re, what) => {
  const m = re.exec(toml);
  if (!m) throw new Error(`wrangler.toml: no ${what}`);
  return m[1];
};
const compatibilityDate = setting(/^compatibility_date\s*=\s*"([^"]+)"/m, "compatibility_date");
const mainScript = setting(/^main\s*=\s*"([^"]+)"/m, "main");
const binding = setting(/\[\[r2_buckets\]\][^[]*?binding\s*=\s*"([^"]+)"/, "[[r2_buckets]] binding");
if (binding !== "BUCKET") throw new Error(`wrangler.toml binds the bucket as ${binding}, not BUCKET`);

const mf = new Miniflare({
  modules: true,
  scriptPath: path.join(workerDir, mainScript),
  modulesRoot: workerDir,
  // Offline: no fetch of the `request.cf` sample from workers.cloudflare.com.
  cf: false,
  compatibilityDate,
  r2Buckets: [binding],
  bindings: { API_ORIGIN: args.api, BLOBS_URL: args["blobs-url"], KEY_PREFIX: args.prefix },
  host: "127.0.0.1",
  port: 0,
  // HTTPS with a throwaway self-signed certificate: containers/image tries HTTPS first,
  // and workerd holds a TLS hello sent to a plain-HTTP socket for 15 s before closing.
  https: true,
  log: new Log(LogLevel.WARN),
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    process.exit(code);
  }
}
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));

const url = await mf.ready;
const bucket = await mf.getR2Bucket(binding);
const prefix = args.prefix.replace(/^\/+|\/+$/g, "");
const keyOf = (rel) => (prefix === "" ? rel : `${prefix}/${rel}`);

/// Every object key of the store (relative paths with '/'), dot folders left out.
async function storeKeys(dir, rel = "") {
  const keys = [];
  for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    if (rel === "" && entry.name.startsWith(".")) continue;
    const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) keys.push(...(await storeKeys(dir, child)));
    else if (entry.isFile()) keys.push(child);
  }
  return keys;
}

async function sidecar(rel, size) {
  try {
    const meta = JSON.parse(await readFile(path.join(args.root, ".meta", `${rel}.json`), "utf8"));
    // A sidecar whose size disagrees is left over from a crash: the store ignores it too.
    return meta.size === size ? meta : null;
  } catch {
    return null;
  }
}

let generation = 0;
const copied = new Map(); // key -> mtimeMs,size of what is in the bucket
async function sync() {
  const keys = await storeKeys(args.root);
  const seen = new Set();
  for (const rel of keys) {
    const file = path.join(args.root, rel);
    let st;
    try {
      st = await stat(file);
    } catch {
      continue; // removed meanwhile
    }
    const key = keyOf(rel);
    seen.add(key);
    const stamp = `${st.mtimeMs},${st.size}`;
    if (copied.get(key) === stamp) continue;
    const meta = await sidecar(rel, st.size);
    const httpMetadata = {};
    if (meta && meta.content_type) httpMetadata.contentType = meta.content_type;
    if (meta && meta.cache_control) httpMetadata.cacheControl = meta.cache_control;
    // A manifest's digest: the S3 backend's x-amz-meta-digest, R2's `digest` custom metadata.
    const customMetadata = meta && meta.digest ? { digest: meta.digest } : {};
    await bucket.put(key, new Uint8Array(await readFile(file)), { httpMetadata, customMetadata });
    copied.set(key, stamp);
  }
  let cursor;
  do {
    const page = await bucket.list({ prefix: prefix === "" ? undefined : `${prefix}/`, cursor });
    for (const obj of page.objects) {
      if (!seen.has(obj.key)) {
        await bucket.delete(obj.key);
        copied.delete(obj.key);
      }
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  generation += 1;
  console.log(`synced ${generation} ${seen.size}`);
}

let queue = Promise.resolve();
const syncNow = () => {
  queue = queue.then(sync).catch((err) => {
    console.error(`sync failed: ${err.stack || err}`);
    console.log(`sync-failed ${generation + 1}`);
  });
  return queue;
};
process.on("SIGUSR2", () => void syncNow());

await syncNow();
console.log(`listening ${url.origin}`);
