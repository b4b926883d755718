// cargohold pull worker: serves the OCI Distribution pull API from cargohold's sparse
// static index in an R2 bucket, and forwards everything else to the cargohold API.
//
// Bindings (see wrangler.toml):
//   BUCKET      R2 bucket cargohold's S3 backend writes to (docs/index-format.md layout)
//   API_ORIGIN  where the cargohold API server listens, e.g. https://api.registry.example.com
//   BLOBS_URL   optional: base URL serving the bucket's root (an R2 custom domain); when set,
//               `GET /v2/<name>/blobs/<digest>` answers 307 to `<BLOBS_URL>/<key>`
//   KEY_PREFIX  optional: the S3 backend's `prefix`, when the index is not at the bucket root
//   AUTH_REFRESH_SECONDS  optional: how long config.json's auth is kept per isolate (30)
//   MIRRORS     optional: the API's [[mirror.upstream]]s (docs/mirror.md) as JSON,
//               {"docker.io": {"aliases": ["registry-1.docker.io"], "tag_ttl": 600}}:
//               a mirrored repository's misses, and its tags older than tag_ttl seconds,
//               go to the API (which fetches and revalidates them upstream); containerd's
//               `?ns=<name or alias>` reads `<name>/<repository>`, with OCI-Namespace
//
// What is answered here, for GET and HEAD without a query string (docs/index-format.md):
//
//   /v2/ and /v2                          200 {}
//   /v2/<name>/manifests/<tag|digest>     index/<name>/_manifests/<ref>
//   /v2/<name>/blobs/<digest>             blobs/<alg>/<hex>, if index/<name>/_blobs/<digest> exists
//   /v2/<name>/tags/list                  index/<name>/_tags/list
//   /v2/<name>/referrers/<digest>         index/<name>/_referrers/<digest>, or an empty index
//   /v2/_catalog                          index/_catalog, or an empty catalog
//   /config.json                          config.json
//   /, /ui/app.js, /ui/style.css          ui/index.html, ui/app.js, ui/style.css (browse UI)
//   /index/.../_browse/....json           the browse documents at their own keys (CORS: *)
//
// Every other request (any other method or path, anything with a query string) goes to
// API_ORIGIN unchanged. Keys are only ever built from a validated repository name and tag
// or digest, so no request can reach `uploads/` or any other key.
//
// With auth on (config.json's `auth`, docs/auth.md), read from the bucket and kept for
// AUTH_REFRESH_SECONDS (default 30) per isolate:
//
//   /v2/                                  401 with the API's challenge; with a valid token 200;
//                                         with Basic credentials, the API
//   repositories anyone may pull          as above, no token looked at
//   any other repository                  the token verified here (signature with a key of
//                                         config.json, exp, nbf, aud, iss, and pull on that
//                                         repository in its `access`), then as above, with
//                                         Cache-Control private and no blob redirect;
//                                         without one 401 + challenge; Basic: the API
//   /v2/_catalog                          the API (administrators only)
//   /token                                the API; while it is unreachable, an anonymous GET
//                                         gets a placeholder token (public pulls go on)

const IMMUTABLE = "public, max-age=31536000, immutable";
const REVALIDATE = "public, max-age=0, must-revalidate";
const JSON_TYPE = "application/json";
const OCTET_STREAM = "application/octet-stream";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/// The manifest media types cargohold stores (index_format::ManifestMediaType).
const MANIFEST_TYPES = new Set([
  OCI_MANIFEST,
  OCI_INDEX,
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);
/// Exactly the bytes cargohold's API answers for a subject nothing refers to.
const EMPTY_REFERRERS = `{"schemaVersion":2,"mediaType":"${OCI_INDEX}","manifests":[]}`;
const EMPTY_CATALOG = `{"repositories":[]}`;

// The grammar of index_format::names: lowercase components joined by '.', '_', '__' or
// '-'+, separated by '/', at most 255 characters; tags; sha256 and sha512 digests.
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const MAX_NAME_LEN = 255;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
// Browse documents (docs/index-format.md, "Browse documents"): served at `/` + their key.
const BROWSE =
  /^\/index\/(?:_browse\/(?:catalog|search)(?:\/[a-f0-9]{8})?|(.+)\/_browse\/(?:tags(?:\/[a-f0-9]{8})?|manifests\/(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})))\.json$/;
const UI_FILES = {
  "/": ["ui/index.html", "text/html; charset=utf-8"],
  "/ui/app.js": ["ui/app.js", "text/javascript; charset=utf-8"],
  "/ui/style.css": ["ui/style.css", "text/css; charset=utf-8"],
};

export default {
  async fetch(request, env) {
    let response;
    try {
      response = await handle(request, env);
    } catch (err) {
      // R2 failing is the only thing expected here; the API answers 503 the same way.
      console.error(`${request.method} ${new URL(request.url).pathname}: ${err && err.stack}`);
      response = ociError(request, 503, "TOOMANYREQUESTS", "storage temporarily unavailable", {
        "Retry-After": "1",
      });
    }
    // Responses from fetch() have immutable headers: copy before adding ours.
    response = new Response(response.body, response);
    response.headers.set("Docker-Distribution-API-Version", "registry/2.0");
    return response;
  },
};

async function handle(request, env) {
  const url = new URL(request.url);
  const readOnly = request.method === "GET" || request.method === "HEAD";
  const mirrors = parseMirrors(env.MIRRORS);
  const mirrored = mirroredPath(mirrors, url);
  const pathname = mirrored ? mirrored.pathname : url.pathname;
  const route = readOnly && (url.search === "" || mirrored) ? parseRoute(pathname) : null;
  if (route === null) {
    return proxy(request, env, url);
  }
  const store = new Store(env);
  const access = await authorize(request, env, store, url, route);
  if (access.answer) return access.answer;
  // What the index lacks of a mirrored repository is the API's to fetch.
  route.mirrorTtl = route.name === undefined ? null : mirrorTtl(mirrors, route.name);
  route.miss = () => proxy(request, env, url);
  let response = await serve(request, env, store, route, access.public);
  if (mirrored) {
    response = new Response(response.body, response);
    response.headers.set("OCI-Namespace", mirrored.namespace);
  }
  return access.public ? response : privateCaching(response);
}

/// env.MIRRORS parsed: { name: { aliases, tag_ttl } }; {} when unset or not JSON.
function parseMirrors(text) {
  if (!text) return {};
  try {
    const m = typeof text === "string" ? JSON.parse(text) : text;
    return m !== null && typeof m === "object" ? m : {};
  } catch {
    return {};
  }
}

/// The tag TTL (seconds) of the upstream `name` is mirrored from; null if not mirrored.
export function mirrorTtl(mirrors, name) {
  const first = name.split("/")[0];
  if (!Object.hasOwn(mirrors, first) || !name.includes("/")) return null;
  const ttl = Number(mirrors[first].tag_ttl);
  return ttl > 0 ? ttl : 600;
}

/// containerd's `?ns=` (the only query parameter) naming a mirrored upstream: the path
/// of the repository as stored (`/v2/<name>/<repository>/...`) and the namespace; null
/// otherwise.
export function mirroredPath(mirrors, url) {
  const ns = url.searchParams.get("ns");
  if (ns === null || [...url.searchParams.keys()].some((k) => k !== "ns")) return null;
  const name = Object.keys(mirrors).find(
    (n) => n === ns || (mirrors[n].aliases || []).includes(ns),
  );
  const rest = url.pathname.match(/^\/v2\/([a-z0-9].*)$/);
  if (name === undefined || rest === null) return null;
  const already = rest[1].startsWith(`${name}/`);
  return { pathname: already ? url.pathname : `/v2/${name}/${rest[1]}`, namespace: ns };
}

/// Whether a mirrored tag's object is older than its TTL (the API then revalidates it,
/// and writes it again when it is still current).
export function staleTag(obj, ttlSeconds, now = Date.now()) {
  const uploaded = obj.uploaded instanceof Date ? obj.uploaded.getTime() : NaN;
  return !(now - uploaded <= ttlSeconds * 1000);
}

/// The answer of a static route (anyone may read it, or the caller was authorised).
async function serve(request, env, store, route, publicRepo) {
  switch (route.kind) {
    case "base":
      return respond(request, 200, { "Content-Type": JSON_TYPE }, "{}");
    case "config":
      return document(request, store, "config.json", JSON_TYPE, () =>
        ociError(request, 404, "NAME_UNKNOWN", "config.json not found"),
      );
    case "browse":
    case "ui": {
      const response = await document(request, store, route.key, route.type, () =>
        ociError(request, 404, "NAME_UNKNOWN", `${url.pathname} not found`),
      );
      // Public documents: a UI on another origin may read them.
      if (route.kind === "browse") response.headers.set("Access-Control-Allow-Origin", "*");
      return response;
    }
    case "catalog":
      return document(request, store, "index/_catalog", JSON_TYPE, () =>
        respond(request, 200, listHeaders(JSON_TYPE), EMPTY_CATALOG),
      );
    case "tags":
      return document(request, store, `index/${route.name}/_tags/list`, JSON_TYPE, () =>
        ociError(request, 404, "NAME_UNKNOWN", `repository ${route.name} not known to registry`),
      );
    case "referrers":
      // Never a 404: a subject nothing refers to has an empty list.
      return document(request, store, `index/${route.name}/_referrers/${route.ref}`, OCI_INDEX, () =>
        respond(request, 200, listHeaders(OCI_INDEX), EMPTY_REFERRERS),
      );
    case "manifest":
      return manifest(request, store, route);
    case "blob":
      return blob(request, env, store, route, publicRepo);
  }
  throw new Error(`unhandled route ${route.kind}`);
}

/// The static route of a path, or null when only the API can answer it.
export function parseRoute(pathname) {
  if (pathname === "/config.json") return { kind: "config" };
  if (UI_FILES[pathname]) {
    const [key, type] = UI_FILES[pathname];
    return { kind: "ui", key, type };
  }
  const browse = BROWSE.exec(pathname);
  if (browse && (browse[1] === undefined || (browse[1].length <= MAX_NAME_LEN && NAME.test(browse[1])))) {
    // name: the repository a document is about; none for the catalog and search.
    const route = { kind: "browse", key: pathname.slice(1), type: JSON_TYPE };
    return browse[1] === undefined ? route : { ...route, name: browse[1] };
  }
  if (pathname === "/v2" || pathname === "/v2/") return { kind: "base" };
  if (!pathname.startsWith("/v2/")) return null;
  let rest;
  try {
    // As the API does (axum's Path), match on the decoded path; the checks below then see
    // every character, so `%2e%2e` is as invalid as `..`.
    rest = decodeURIComponent(pathname.slice("/v2/".length));
  } catch {
    return null;
  }
  if (rest === "_catalog") return { kind: "catalog" };
  const validName = (n) => n.length <= MAX_NAME_LEN && NAME.test(n);
  if (rest.endsWith("/tags/list")) {
    const name = rest.slice(0, -"/tags/list".length);
    return validName(name) ? { kind: "tags", name } : null;
  }
  const cut = rest.lastIndexOf("/");
  const head = rest.slice(0, cut);
  const ref = rest.slice(cut + 1);
  const cut2 = head.lastIndexOf("/");
  if (cut < 0 || cut2 < 0) return null;
  const name = head.slice(0, cut2);
  const kind = head.slice(cut2 + 1);
  if (!validName(name)) return null;
  if (kind === "manifests" && (TAG.test(ref) || DIGEST.test(ref))) {
    return { kind: "manifest", name, ref };
  }
  if (kind === "blobs" && DIGEST.test(ref)) return { kind: "blob", name, ref };
  if (kind === "referrers" && DIGEST.test(ref)) return { kind: "referrers", name, ref };
  return null;
}

/// The bucket, seen through KEY_PREFIX.
class Store {
  constructor(env) {
    if (!env.BUCKET) throw new Error("the R2 binding BUCKET is missing");
    this.bucket = env.BUCKET;
    const p = (env.KEY_PREFIX || "").replace(/^\/+|\/+$/g, "");
    this.prefix = p === "" ? "" : `${p}/`;
  }
  key(k) {
    return this.prefix + k;
  }
  get(k, options) {
    return this.bucket.get(this.key(k), options);
  }
  head(k) {
    return this.bucket.head(this.key(k));
  }
}

function listHeaders(contentType) {
  return { "Content-Type": contentType, "Cache-Control": REVALIDATE };
}

/// A small JSON document (tag list, catalog, referrers, config.json), revalidated by ETag.
async function document(request, store, key, contentType, missing) {
  const obj = await store.get(key);
  if (obj === null) return missing();
  const headers = { ...listHeaders(contentType), ETag: obj.httpEtag };
  if (notModified(request, obj.httpEtag)) {
    await obj.body.cancel();
    return respond(request, 304, headers, null);
  }
  return respond(request, 200, headers, new Uint8Array(await obj.arrayBuffer()));
}

async function manifest(request, store, route) {
  const { name, ref } = route;
  const key = `index/${name}/_manifests/${ref}`;
  const unknown = (detail) =>
    ociError(request, 404, "MANIFEST_UNKNOWN", `manifest ${ref} unknown to ${name}`, {}, detail);
  // cargohold records the type (Content-Type) and digest (`digest` custom metadata) with
  // every manifest (docs/index-format.md): a HEAD is one head(), a GET one get(), and
  // nothing is parsed or hashed. Objects stored without them (format 1, or copied in by
  // another tool) are read and hashed.
  const headOnly = request.method === "HEAD";
  let obj = headOnly ? await store.head(key) : await store.get(key);
  if (route.mirrorTtl !== null) {
    const stale = obj !== null && !DIGEST.test(ref) && staleTag(obj, route.mirrorTtl);
    if (obj === null || stale) {
      if (obj?.body) await obj.body.cancel();
      return route.miss();
    }
  }
  if (obj === null) return unknown();
  let digest = storedDigest(obj, ref);
  let mediaType = storedType(obj);
  let bytes = null;
  if (obj.body === undefined && (digest === null || mediaType === null)) {
    obj = await store.get(key);
    if (obj === null) return unknown();
  }
  if (obj.body !== undefined) {
    bytes = new Uint8Array(await obj.arrayBuffer());
    digest ??= await sha256(bytes);
    mediaType ??= typeFromBody(bytes);
  }
  if (!accepts(request.headers.get("Accept"), mediaType)) {
    return unknown({ reason: `stored as ${mediaType}, which the Accept header does not list` });
  }
  const etag = `"${digest}"`;
  const headers = {
    "Content-Type": mediaType,
    "Content-Length": String(obj.size),
    "Docker-Content-Digest": digest,
    ETag: etag,
    "Cache-Control": DIGEST.test(ref) ? IMMUTABLE : REVALIDATE,
  };
  if (notModified(request, etag)) return respond(request, 304, headers, null);
  return respond(request, 200, headers, bytes);
}

/// The manifest's digest without reading it: the `digest` custom metadata, or the digest
/// it is stored under (writers verify it).
function storedDigest(obj, ref) {
  const meta = obj.customMetadata && obj.customMetadata.digest;
  if (meta && DIGEST.test(meta)) return meta;
  return DIGEST.test(ref) ? ref : null;
}

/// The Content-Type cargohold stored, unless missing or a generic one a copy tool set.
function storedType(obj) {
  const t = obj.httpMetadata && obj.httpMetadata.contentType;
  if (!t) return null;
  const bare = t.split(";")[0].trim().toLowerCase();
  return bare === OCTET_STREAM || bare === "binary/octet-stream" ? null : t;
}

/// The manifest's own `mediaType` field; cargohold requires it to agree with Content-Type.
function typeFromBody(bytes) {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof doc.mediaType === "string" && doc.mediaType !== "") return doc.mediaType;
    return Array.isArray(doc.manifests) ? OCI_INDEX : OCI_MANIFEST;
  } catch {
    return OCI_MANIFEST;
  }
}

/// As the API: no Accept, wildcards, or an Accept naming no manifest type take anything;
/// otherwise the stored type must be listed.
export function accepts(accept, mediaType) {
  if (!accept) return true;
  const listed = accept
    .split(",")
    .map((t) => t.split(";")[0].trim().toLowerCase())
    .filter((t) => t !== "");
  if (!listed.some((t) => MANIFEST_TYPES.has(t))) return true;
  const want = mediaType.split(";")[0].trim().toLowerCase();
  return listed.some((t) => t === want || t === "*/*" || t === "application/*");
}

async function blob(request, env, store, route, publicRepo) {
  const { name, ref: digest, mirrorTtl, miss } = route;
  const [alg, hex] = digest.split(":");
  const blobKey = `blobs/${alg}/${hex}`;
  const unknown = () => ociError(request, 404, "BLOB_UNKNOWN", `blob ${digest} unknown to ${name}`);
  // The repository's link gates the shared bytes, and holds their size.
  const link = await store.get(`index/${name}/_blobs/${digest}`);
  if (link === null && mirrorTtl !== null) return miss();
  if (link === null) return unknown();
  let size = linkSize(await link.text());
  const base = {
    "Content-Type": OCTET_STREAM,
    "Docker-Content-Digest": digest,
    ETag: `"${digest}"`,
    "Accept-Ranges": "bytes",
    "Cache-Control": IMMUTABLE,
  };
  // The custom domain serves anyone: only blobs of public repositories are sent there.
  if (request.method === "GET" && env.BLOBS_URL && publicRepo) {
    const target = `${env.BLOBS_URL.replace(/\/+$/, "")}/${store.key(blobKey)}`;
    return respond(request, 307, { Location: target, "Docker-Content-Digest": digest }, null);
  }
  if (size === null) {
    const info = await store.head(blobKey);
    if (info === null) return unknown();
    size = info.size;
  }
  if (notModified(request, base.ETag)) return respond(request, 304, base, null);
  if (request.method === "HEAD") {
    return respond(request, 200, { ...base, "Content-Length": String(size) }, null);
  }
  const rangeHeader = request.headers.get("Range");
  const range = rangeHeader === null ? null : parseRange(rangeHeader, size);
  if (range === "unsatisfiable") {
    return respond(request, 416, { "Content-Range": `bytes */${size}` }, null);
  }
  const length = range ? range.end - range.start + 1 : 0;
  const obj = await store.get(blobKey, range ? { range: { offset: range.start, length } } : {});
  if (obj === null) return unknown();
  if (range) {
    return respond(
      request,
      206,
      {
        ...base,
        "Content-Range": `bytes ${range.start}-${range.end}/${obj.size}`,
        "Content-Length": String(length),
      },
      obj.body,
    );
  }
  return respond(request, 200, { ...base, "Content-Length": String(obj.size) }, obj.body);
}

/// `{"digest","size"}` of a blob link; null if the document is not one.
function linkSize(text) {
  try {
    const size = JSON.parse(text).size;
    return Number.isSafeInteger(size) && size >= 0 ? size : null;
  } catch {
    return null;
  }
}

/// A single `bytes=` range against `size`, as the API's parse_range: the first of several,
/// suffix ranges, the end clamped to the object. null for a header that is no byte range
/// (served whole, as RFC 9110 allows), "unsatisfiable" for 416.
export function parseRange(spec, size) {
  const m = /^\s*bytes=\s*(\d*)\s*-\s*(\d*)\s*(?:,.*)?$/.exec(spec);
  if (m === null || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || Number(m[2] || start) < start) return "unsatisfiable";
  return { start, end };
}

/// Whether If-None-Match names `etag` (weak comparison, as RFC 9110 asks for GET/HEAD).
function notModified(request, etag) {
  const inm = request.headers.get("If-None-Match");
  if (!inm || !etag) return false;
  return inm.split(",").some((t) => {
    const tag = t.trim();
    return tag === "*" || tag.replace(/^W\//, "") === etag.replace(/^W\//, "");
  });
}

/// Everything the index cannot answer: to the API, method, headers and body as they came.
async function proxy(request, env, url) {
  if (!env.API_ORIGIN) {
    return ociError(request, 502, "UNKNOWN", "read-only here: API_ORIGIN is not set");
  }
  const origin = new URL(env.API_ORIGIN);
  if (origin.host === url.host) {
    return ociError(request, 508, "UNKNOWN", "API_ORIGIN points at this worker");
  }
  const base = env.API_ORIGIN.replace(/\/+$/, "");
  const target = base + url.pathname + url.search;
  const headers = new Headers(request.headers);
  // The API's own host name goes upstream; the one the client used goes along as a hint.
  headers.delete("Host");
  headers.set("X-Forwarded-Host", url.host);
  headers.set("X-Forwarded-Proto", url.protocol.replace(/:$/, ""));
  const init = { method: request.method, headers, redirect: "manual" };
  if (request.method !== "GET" && request.method !== "HEAD") init.body = request.body;
  let upstream;
  try {
    upstream = await fetch(target, init);
  } catch (err) {
    console.error(`proxy ${request.method} ${target}: ${err}`);
    return (
      anonymousToken(request, url) ?? ociError(request, 502, "UNKNOWN", "the registry API is unreachable")
    );
  }
  // Cloudflare answers 52x itself for an origin that is down.
  if (upstream.status >= 500) {
    const fallback = anonymousToken(request, url);
    if (fallback) return fallback;
  }
  const response = new Response(upstream.body, upstream);
  // Relative Locations (cargohold's) pass as they are; absolute ones naming the API are
  // turned back into this host, so clients keep one origin (and one set of credentials).
  const location = response.headers.get("Location");
  if (location && location.startsWith(base + "/")) {
    response.headers.set("Location", url.origin + location.slice(base.length));
  }
  return response;
}

/// A response; HEAD keeps every header, Content-Length included, and drops the body.
function respond(request, status, headers, body) {
  const h = new Headers(headers);
  if (status === 304) h.delete("Content-Length");
  if (request.method === "HEAD" || status === 304) {
    if (body instanceof ReadableStream) body.cancel();
    if (body !== null && !h.has("Content-Length") && status !== 304) {
      const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
      h.set("Content-Length", String(bytes.byteLength));
    }
    return new Response(null, { status, headers: h });
  }
  return new Response(body, { status, headers: h });
}

/// The spec's error envelope.
function ociError(request, status, code, message, extraHeaders = {}, detail) {
  const err = { code, message };
  if (detail !== undefined) err.detail = detail;
  const body = JSON.stringify({ errors: [err] });
  return respond(request, status, { "Content-Type": JSON_TYPE, ...extraHeaders }, body);
}

async function sha256(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return "sha256:" + Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- Auth (docs/auth.md): config.json's `auth`, tokens verified with WebCrypto ---------------

/// Seconds a token's exp and nbf may be off, as the API allows.
const LEEWAY_SECONDS = 1;
/// The JWT algorithms verified here, as WebCrypto spells them (the API's built-in issuer
/// signs EdDSA; an external one may use the others). HMAC is never accepted.
const ALGORITHMS = {
  EdDSA: { key: { name: "Ed25519" }, verify: { name: "Ed25519" } },
  ES256: { key: { name: "ECDSA", namedCurve: "P-256" }, verify: { name: "ECDSA", hash: "SHA-256" } },
  RS256: { key: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, verify: { name: "RSASSA-PKCS1-v1_5" } },
};

/// config.json's auth, per isolate: { at, bucket, store (its prefix), promise of the
/// prepared settings or null }.
let authCache = null;

/// The auth settings from config.json (null: auth off), re-read every
/// AUTH_REFRESH_SECONDS. A bucket failure is not "off": it throws (503).
async function authSettings(env, store) {
  const ttl = Number(env.AUTH_REFRESH_SECONDS || 30) * 1000;
  const now = Date.now();
  const fresh =
    authCache !== null &&
    authCache.bucket === store.bucket &&
    authCache.store === store.key("") &&
    now - authCache.at < ttl;
  if (!fresh) {
    const promise = store.get("config.json").then(async (obj) => {
      if (obj === null) return null;
      const config = JSON.parse(await obj.text());
      return config.auth ? prepareAuth(config.auth) : null;
    });
    authCache = { at: now, bucket: store.bucket, store: store.key(""), promise };
    promise.catch(() => {
      if (authCache && authCache.promise === promise) authCache = null;
    });
  }
  return authCache.promise;
}

/// The settings with their keys imported; keys of algorithms not verified here are left out.
export async function prepareAuth(auth) {
  const keys = [];
  for (const jwk of auth.keys || []) {
    const alg = jwkAlgorithm(jwk);
    if (alg === null) continue;
    const pub = {};
    for (const m of ["kty", "crv", "x", "y", "n", "e"]) if (jwk[m] !== undefined) pub[m] = jwk[m];
    try {
      const key = await crypto.subtle.importKey("jwk", pub, ALGORITHMS[alg].key, false, ["verify"]);
      keys.push({ alg, kid: jwk.kid, key });
    } catch (err) {
      console.error(`config.json: key ${jwk.kid}: ${err}`);
    }
  }
  return {
    realm: auth.realm || null,
    service: auth.service,
    issuer: auth.issuer,
    public: auth.anonymous_pull || [],
    private: auth.private || [],
    keys,
  };
}

function jwkAlgorithm(jwk) {
  const alg =
    jwk.alg ??
    (jwk.kty === "OKP" && jwk.crv === "Ed25519"
      ? "EdDSA"
      : jwk.kty === "EC" && jwk.crv === "P-256"
        ? "ES256"
        : jwk.kty === "RSA"
          ? "RS256"
          : null);
  return Object.hasOwn(ALGORITHMS, alg) ? alg : null;
}

/// Whether anyone may pull `name`: the most specific pattern matching it, of both lists,
/// is a public one (an exact name beats any prefix, a longer prefix a shorter one; a tie,
/// which cargohold never publishes, is not public). No pattern: not public.
export function isPublic(auth, name) {
  let best = -1;
  let result = false;
  for (const [patterns, pub] of [
    [auth.public, true],
    [auth.private, false],
  ]) {
    for (const p of patterns) {
      const rank = patternRank(p, name);
      if (rank > best || (rank === best && rank >= 0 && !pub)) {
        best = rank;
        result = pub;
      }
    }
  }
  return result;
}

/// How specifically `pattern` matches `name`, as the API's Pattern::rank: -1 not at all,
/// a prefix (`team-a/*`) its length, an exact name above every prefix.
function patternRank(pattern, name) {
  if (!pattern.endsWith("*")) return pattern === name ? Infinity : -1;
  const prefix = pattern.slice(0, -1);
  return name.startsWith(prefix) ? prefix.length : -1;
}

/// The claims of a valid access token, or null: the signature (an algorithm of ours, a key
/// of config.json, by kid when the token names one), exp, nbf, aud and iss.
export async function verifyToken(token, auth, now = Date.now() / 1000) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  let header;
  let claims;
  let signature;
  try {
    header = JSON.parse(base64urlText(parts[0]));
    claims = JSON.parse(base64urlText(parts[1]));
    signature = base64url(parts[2]);
  } catch {
    return null;
  }
  if (typeof header !== "object" || header === null || !Object.hasOwn(ALGORITHMS, header.alg)) return null;
  const candidates = auth.keys.filter(
    (k) => k.alg === header.alg && (header.kid === undefined || k.kid === header.kid),
  );
  const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
  let valid = false;
  for (const k of candidates) {
    if (await crypto.subtle.verify(ALGORITHMS[k.alg].verify, k.key, signature, signed)) {
      valid = true;
      break;
    }
  }
  if (!valid || typeof claims !== "object" || claims === null) return null;
  const t = Math.floor(now);
  if (typeof claims.exp !== "number" || claims.exp < t - LEEWAY_SECONDS) return null;
  if (typeof claims.nbf === "number" && claims.nbf > t + LEEWAY_SECONDS) return null;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(auth.service) || claims.iss !== auth.issuer) return null;
  return claims;
}

/// Whether the claims grant `action` on repository `name`.
export function grants(claims, name, action) {
  return (claims.access || []).some(
    (a) =>
      a &&
      a.type === "repository" &&
      a.name === name &&
      Array.isArray(a.actions) &&
      (a.actions.includes(action) || a.actions.includes("*")),
  );
}

function base64url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

function base64urlText(text) {
  return new TextDecoder("utf-8", { fatal: true }).decode(base64url(text));
}

/// Whether a static route may be answered here: { public } (anyone may read it: no token
/// looked at), { public: false } (a valid token with pull on it), or { answer }: the
/// challenge, a refusal, or the API's answer (Basic credentials, the catalog).
async function authorize(request, env, store, url, route) {
  const auth = route.kind === "config" ? null : await authSettings(env, store);
  if (auth === null) return { public: true };
  // The UI's page and scripts hold no registry data.
  if (route.kind === "ui") return { public: true };
  // The catalog, and the browse documents that list every repository (private ones
  // too): the API's, which serves them to administrators.
  if (route.kind === "catalog" || (route.kind === "browse" && route.name === undefined)) {
    return { answer: await proxy(request, env, url) };
  }
  // A repository's browse documents: as its tags (public: anyone; else pull on it).
  const repo = route.kind === "base" ? null : route.name;
  if (repo !== null && isPublic(auth, repo)) return { public: true };
  const scope = repo === null ? undefined : `repository:${repo}:pull`;
  const authorization = request.headers.get("Authorization") || "";
  const [scheme, credentials = ""] = authorization.trim().split(/\s+/, 2);
  if (authorization === "") return { answer: challenge(request, auth, url, scope) };
  if (scheme.toLowerCase() !== "bearer") return { answer: await proxy(request, env, url) };
  const claims = await verifyToken(credentials, auth);
  if (claims === null) return { answer: challenge(request, auth, url, scope, "invalid_token") };
  if (repo === null || grants(claims, repo, "pull")) return { public: false };
  // An anonymous token gets no more by asking again; a user's or robot's might (the API
  // knows their rights, not this worker).
  if (!claims.sub) {
    return { answer: ociError(request, 403, "DENIED", "requested access to the resource is denied") };
  }
  return { answer: challenge(request, auth, url, scope, "insufficient_scope") };
}

/// 401 with the API's Bearer challenge.
function challenge(request, auth, url, scope, error) {
  let value = `Bearer realm="${auth.realm ?? `${url.origin}/token`}",service="${auth.service}"`;
  if (scope) value += `,scope="${scope}"`;
  if (error) value += `,error="${error}"`;
  const message = error === "invalid_token" ? "invalid token" : "authentication required";
  return ociError(request, 401, "UNAUTHORIZED", message, { "WWW-Authenticate": value });
}

/// A private repository's answer may be cached by its client only.
function privateCaching(response) {
  const cc = response.headers.get("Cache-Control");
  if (cc === null) return response;
  const copy = new Response(response.body, response);
  copy.headers.set("Cache-Control", cc.replace(/\bpublic\b/, "private"));
  return copy;
}

/// The API unreachable: an anonymous GET /token still gets a token, so clients (which
/// fetch one once /v2/ challenges) pull public repositories, which need none. It is no
/// JWT: nothing accepts it for anything else. null for any other request.
function anonymousToken(request, url) {
  if (url.pathname !== "/token" || request.method !== "GET" || request.headers.has("Authorization")) {
    return null;
  }
  const body = JSON.stringify({ token: "anonymous", access_token: "anonymous", expires_in: 60 });
  return respond(request, 200, { "Content-Type": JSON_TYPE, "Cache-Control": "no-store" }, body);
}
