// Table tests of the worker's pure parts, and its manifest answers over an in-memory
// bucket: `node --test` (run.sh runs them first).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import worker, {
  accepts,
  grants,
  isPublic,
  mirroredPath,
  mirrorTtl,
  parseRange,
  parseRoute,
  prepareAuth,
  verifyToken,
} from "../../infra/cloudflare/worker.js";

const D = `sha256:${"0123456789abcdef".repeat(4)}`;
const D512 = `sha512:${"ab".repeat(64)}`;

test("paths the index answers map to typed routes", () => {
  const table = [
    ["/v2", { kind: "base" }],
    ["/v2/", { kind: "base" }],
    ["/config.json", { kind: "config" }],
    ["/v2/_catalog", { kind: "catalog" }],
    ["/v2/a/b/tags/list", { kind: "tags", name: "a/b" }],
    ["/v2/library/alpine/manifests/3.20", { kind: "manifest", name: "library/alpine", ref: "3.20" }],
    [`/v2/a/manifests/${D}`, { kind: "manifest", name: "a", ref: D }],
    [`/v2/a/manifests/${D512}`, { kind: "manifest", name: "a", ref: D512 }],
    [`/v2/x/y/blobs/${D}`, { kind: "blob", name: "x/y", ref: D }],
    [`/v2/x/referrers/${D}`, { kind: "referrers", name: "x", ref: D }],
    // A digest's colon percent-encoded, as some clients send it.
    [`/v2/x/blobs/${D.replace(":", "%3A")}`, { kind: "blob", name: "x", ref: D }],
    // Repositories may be called manifests or blobs.
    ["/v2/manifests/manifests/v1", { kind: "manifest", name: "manifests", ref: "v1" }],
    ["/v2/a__b/c-d--e/f.g/manifests/_x", { kind: "manifest", name: "a__b/c-d--e/f.g", ref: "_x" }],
    // The browse UI and its documents, at their keys.
    ["/", { kind: "ui", key: "ui/index.html", type: "text/html; charset=utf-8" }],
    ["/ui/app.js", { kind: "ui", key: "ui/app.js", type: "text/javascript; charset=utf-8" }],
    ["/index/_browse/catalog.json", { kind: "browse", key: "index/_browse/catalog.json", type: "application/json" }],
    ["/index/_browse/search/0a1b2c3d.json", { kind: "browse", key: "index/_browse/search/0a1b2c3d.json", type: "application/json" }],
    ["/index/a/b/_browse/tags.json", { kind: "browse", key: "index/a/b/_browse/tags.json", type: "application/json", name: "a/b" }],
    [`/index/a/_browse/manifests/${D}.json`, { kind: "browse", key: `index/a/_browse/manifests/${D}.json`, type: "application/json", name: "a" }],
  ];
  for (const [path, want] of table) assert.deepEqual(parseRoute(path), want, path);
});

test("everything else is left to the API", () => {
  const uploads = "0f0e0d0c-0b0a-4908-8706-050403020100";
  for (const path of [
    "/ui/other.js",
    "/index/_catalog",
    "/index/a/_manifests/v1",
    "/index/a/_blobs/x.json",
    "/index/../_browse/tags.json",
    "/index/A/_browse/tags.json",
    `/index/a/_browse/manifests/${D}/00000000.json`,
    "/v2/_catalog/x",
    "/v2/a/blobs/uploads/",
    "/v2/a/blobs/uploads",
    `/v2/a/blobs/uploads/${uploads}`,
    `/uploads/${uploads}/data`,
    `/v2/uploads/${uploads}/data`,
    "/v2/UPPER/manifests/v1",
    "/v2/a/manifests/bad:ref",
    "/v2/a/manifests/-dash",
    `/v2/a/manifests/${"x".repeat(129)}`,
    "/v2/a/blobs/sha256:xyz",
    `/v2/a/blobs/md5:${"0".repeat(32)}`,
    `/v2/a/blobs/${D.toUpperCase()}`,
    "/v2/a/unknown/x",
    "/v2/nothing",
    "/v2/../index/a/_manifests/v1",
    "/v2/a/%2e%2e/manifests/v1",
    `/v2/a/manifests/..%2F..%2F..%2Fuploads%2F${uploads}%2Fdata`,
    "/v2/a//b/tags/list",
    "/v2/_x/tags/list",
    "/v2/a/tags/list/",
    "/v2/%zz/tags/list",
    `/v2/${"a".repeat(256)}/tags/list`,
  ]) {
    assert.equal(parseRoute(path), null, path);
  }
});

test("Accept negotiation agrees with the API", () => {
  const index = "application/vnd.oci.image.index.v1+json";
  const docker = "application/vnd.docker.distribution.manifest.v2+json";
  assert.ok(accepts(null, index));
  assert.ok(accepts("*/*", index));
  assert.ok(accepts("application/json", index));
  assert.ok(!accepts(docker, index));
  assert.ok(accepts(`${docker}, ${index}`, index));
  assert.ok(accepts(`${docker};q=0.5, */*`, index));
  assert.ok(accepts(`${docker}, application/*`, index));
  assert.ok(accepts(`${docker}, ${index.toUpperCase()}`, index));
});

test("byte ranges agree with the API's parse_range", () => {
  const r = (s) => parseRange(s, 100);
  assert.deepEqual(r("bytes=0-9"), { start: 0, end: 9 });
  assert.deepEqual(r("bytes=90-"), { start: 90, end: 99 });
  assert.deepEqual(r("bytes=-10"), { start: 90, end: 99 });
  assert.deepEqual(r("bytes=-200"), { start: 0, end: 99 });
  assert.deepEqual(r("bytes=95-200"), { start: 95, end: 99 });
  assert.deepEqual(r("bytes=0-1,5-6"), { start: 0, end: 1 });
  assert.equal(r("bytes=100-"), "unsatisfiable");
  assert.equal(r("bytes=5-1"), "unsatisfiable");
  assert.equal(r("bytes=-0"), "unsatisfiable");
  assert.equal(parseRange("bytes=-5", 0), "unsatisfiable");
  // Not a byte range: served whole, as RFC 9110 asks (the API answers 416).
  assert.equal(r("items=0-1"), null);
  assert.equal(r("bytes=-"), null);
});

// --- manifests over an in-memory R2 bucket ----------------------------------------------

/// R2's get/head, as much of them as the worker uses: `head` has no body.
function memoryBucket(objects) {
  const found = (key, withBody) => {
    const o = objects.get(key);
    if (o === undefined) return null;
    const obj = {
      key,
      size: o.bytes.byteLength,
      httpEtag: `"${key}"`,
      httpMetadata: o.httpMetadata,
      customMetadata: o.customMetadata,
      uploaded: o.uploaded ?? new Date(),
    };
    if (withBody) {
      obj.body = new Blob([o.bytes]).stream();
      obj.arrayBuffer = async () => o.bytes.buffer.slice(0);
      obj.text = async () => new TextDecoder().decode(o.bytes);
    }
    return obj;
  };
  return {
    get: async (key) => found(key, true),
    head: async (key) => found(key, false),
  };
}

/// How many SHA-256 digests `fn` takes through Web Crypto, the worker's only hash.
async function sha256Calls(fn) {
  const subtle = globalThis.crypto.subtle;
  const original = subtle.digest;
  let calls = 0;
  subtle.digest = function (alg, data) {
    calls += 1;
    return original.call(subtle, alg, data);
  };
  try {
    await fn();
  } finally {
    subtle.digest = original;
  }
  return calls;
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ALL_MANIFESTS = [
  OCI_MANIFEST,
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

function manifestFixture(withMetadata) {
  const bytes = new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }),
  );
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  // As cargohold's S3 backend writes it: Content-Type, and x-amz-meta-digest (R2 custom
  // metadata); an object copied in by another tool has neither.
  const stored = withMetadata
    ? { bytes, httpMetadata: { contentType: OCI_MANIFEST }, customMetadata: { digest } }
    : { bytes, httpMetadata: {}, customMetadata: {} };
  const objects = new Map([
    ["index/test/app/_manifests/v1", stored],
    [`index/test/app/_manifests/${digest}`, stored],
  ]);
  return { bytes, digest, env: { BUCKET: memoryBucket(objects) } };
}

async function fetchManifest(env, method, ref) {
  const request = new Request(`https://registry.test/v2/test/app/manifests/${ref}`, {
    method,
    headers: { Accept: ALL_MANIFESTS },
  });
  return worker.fetch(request, env);
}

test("manifests stored with their digest are answered without hashing them", async () => {
  const { bytes, digest, env } = manifestFixture(true);
  for (const method of ["GET", "HEAD"]) {
    for (const ref of ["v1", digest]) {
      let response;
      const calls = await sha256Calls(async () => {
        response = await fetchManifest(env, method, ref);
      });
      assert.equal(calls, 0, `SHA-256 digests taken for ${method} ${ref}`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("Docker-Content-Digest"), digest);
      assert.equal(response.headers.get("Content-Type"), OCI_MANIFEST);
      assert.equal(response.headers.get("Content-Length"), String(bytes.byteLength));
      const body = new Uint8Array(await response.arrayBuffer());
      assert.deepEqual(body, method === "GET" ? bytes : new Uint8Array());
    }
  }
});

test("a tag stored without a digest is hashed, and the digest is still right", async () => {
  const { digest, env } = manifestFixture(false);
  let response;
  const calls = await sha256Calls(async () => {
    response = await fetchManifest(env, "HEAD", "v1");
  });
  assert.equal(calls, 1);
  assert.equal(response.headers.get("Docker-Content-Digest"), digest);
  assert.equal(response.headers.get("Content-Type"), OCI_MANIFEST);
});

// --- the mirror: ?ns=, misses and stale tags to the API --------------------------------

test("?ns= naming a mirrored upstream reads the prefixed repository", () => {
  const mirrors = { "docker.io": { aliases: ["registry-1.docker.io"], tag_ttl: 2 } };
  const path = (u) => mirroredPath(mirrors, new URL(`https://r.test${u}`))?.pathname ?? null;
  assert.equal(path("/v2/library/a/manifests/v1?ns=docker.io"), "/v2/docker.io/library/a/manifests/v1");
  assert.equal(path("/v2/library/a/blobs/x?ns=registry-1.docker.io"), "/v2/docker.io/library/a/blobs/x");
  assert.equal(path("/v2/docker.io/library/a/manifests/v1?ns=docker.io"), "/v2/docker.io/library/a/manifests/v1");
  assert.equal(path("/v2/library/a/manifests/v1?ns=quay.io"), null);
  assert.equal(path("/v2/library/a/manifests/v1?ns=docker.io&n=1"), null);
  assert.equal(path("/v2/library/a/manifests/v1"), null);
  assert.equal(mirrorTtl(mirrors, "docker.io/library/a"), 2);
  assert.equal(mirrorTtl(mirrors, "library/a"), null);
});

test("a mirrored repository's misses and stale tags go to the API, the rest is served", async () => {
  const { digest, env } = manifestFixture(true);
  const calls = [];
  const original = globalThis.fetch;
  globalThis.fetch = async (target) => {
    calls.push(new URL(target instanceof Request ? target.url : target).pathname);
    return new Response("{}", { status: 200 });
  };
  const mirrored = { ...env, API_ORIGIN: "https://api.test", MIRRORS: '{"test": {"tag_ttl": 60}}' };
  const get = (path) =>
    worker.fetch(new Request(`https://registry.test${path}`, { headers: { Accept: ALL_MANIFESTS } }), mirrored);
  try {
    let r = await get("/v2/app/manifests/v1?ns=test");
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("Docker-Content-Digest"), digest);
    assert.equal(r.headers.get("OCI-Namespace"), "test");
    assert.deepEqual(calls, [], "a fresh cached tag is served from R2");
    r = await get("/v2/test/app/manifests/v2");
    r = await get(`/v2/test/app/blobs/${D}`);
    assert.deepEqual(calls, ["/v2/test/app/manifests/v2", `/v2/test/app/blobs/${D}`]);
    // Past its TTL the tag is the API's to revalidate.
    const old = { BUCKET: memoryBucket(new Map([["index/test/app/_manifests/v1", {
      bytes: new Uint8Array([123, 125]), httpMetadata: {}, customMetadata: {}, uploaded: new Date(0),
    }]])) };
    await worker.fetch(new Request("https://registry.test/v2/test/app/manifests/v1"), { ...mirrored, ...old });
    assert.equal(calls.at(-1), "/v2/test/app/manifests/v1");
  } finally {
    globalThis.fetch = original;
  }
});

// --- auth: which repositories are public, tokens, the answers -------------------------------

test("the most specific pattern decides, as the API's rules do", () => {
  const auth = {
    public: ["public/*", "public/secret/open", "team/app"],
    private: ["public/secret/*", "pub*", "*", "dup"],
  };
  const table = [
    ["public/x", true],
    ["public/secret/x", false],
    ["public/secret/open", true],
    ["public/secret/open/x", false],
    ["team/app", true],
    ["team/app2", false],
    ["pubx", false],
    ["other", false],
  ];
  for (const [name, want] of table) assert.equal(isPublic(auth, name), want, name);
  assert.equal(isPublic({ public: [], private: [] }, "x"), false, "no rule: not public");
  // A tie (never published by cargohold) is not public.
  assert.equal(isPublic({ public: ["dup"], private: ["dup"] }, "dup"), false);
});

const b64url = (x) => Buffer.from(typeof x === "string" ? x : JSON.stringify(x)).toString("base64url");

/// A signing key and the config.json auth publishing it, as cargohold does.
async function issuer(alg = "EdDSA") {
  const params = alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: "P-256" };
  const pair = await crypto.subtle.generateKey(params, true, ["sign", "verify"]);
  const jwk = { ...(await crypto.subtle.exportKey("jwk", pair.publicKey)), alg, kid: "k1", use: "sig" };
  delete jwk.key_ops;
  delete jwk.ext;
  const config = {
    service: "cargohold",
    issuer: "cargohold",
    keys: [jwk],
    anonymous_pull: ["public/*"],
    private: ["private/*"],
  };
  const sign = async (claims, header = { alg, typ: "JWT", kid: "k1" }, key = pair.privateKey) => {
    const input = `${b64url(header)}.${b64url(claims)}`;
    const how = alg === "EdDSA" ? { name: "Ed25519" } : { name: "ECDSA", hash: "SHA-256" };
    const sig = new Uint8Array(await crypto.subtle.sign(how, key, new TextEncoder().encode(input)));
    return `${input}.${Buffer.from(sig).toString("base64url")}`;
  };
  return { config, sign, auth: await prepareAuth(config) };
}

const NOW = 1_800_000_000;
const claimsFor = (over = {}) => ({
  iss: "cargohold",
  sub: "bob",
  aud: "cargohold",
  exp: NOW + 300,
  nbf: NOW - 1,
  iat: NOW,
  access: [{ type: "repository", name: "private/app", actions: ["pull"] }],
  ...over,
});

test("tokens are verified: signature, algorithm, key, exp, nbf, aud, iss", async () => {
  const { sign, auth } = await issuer();
  const other = await issuer();
  const good = await sign(claimsFor());
  assert.equal((await verifyToken(good, auth, NOW)).sub, "bob");
  assert.ok(await verifyToken(good, auth, NOW + 300 + 1), "within the leeway");
  const refused = {
    "expired": await sign(claimsFor({ exp: NOW - 2 })),
    "not yet valid": await sign(claimsFor({ nbf: NOW + 60 })),
    "another audience": await sign(claimsFor({ aud: "elsewhere" })),
    "a refresh token": await sign(claimsFor({ aud: "cargohold#refresh" })),
    "another issuer": await sign(claimsFor({ iss: "evil" })),
    "no exp": await sign(claimsFor({ exp: undefined })),
    "signed with another key": await other.sign(claimsFor()),
    "another kid": await sign(claimsFor(), { alg: "EdDSA", kid: "k2" }),
    "alg none": `${b64url({ alg: "none" })}.${b64url(claimsFor())}.`,
    "HS256 with the public key": `${b64url({ alg: "HS256" })}.${b64url(claimsFor())}.${b64url("x")}`,
    "claims changed after signing": good.replace(/\.[^.]+\./, `.${b64url(claimsFor({ sub: "root" }))}.`),
    "not a JWT": "anonymous",
    "bad base64": `${good}!`,
  };
  for (const [what, token] of Object.entries(refused)) {
    assert.equal(await verifyToken(token, auth, NOW), null, what);
  }
  assert.equal(await verifyToken(good, auth, NOW + 302), null, "expired, past the leeway");
  // An external issuer's ES256 key works the same way.
  const es = await issuer("ES256");
  assert.ok(await verifyToken(await es.sign(claimsFor()), es.auth, NOW));
});

test("the access claim grants per repository and action", () => {
  const c = claimsFor({
    access: [
      { type: "repository", name: "a", actions: ["pull"] },
      { type: "repository", name: "b", actions: ["push"] },
      { type: "repository", name: "c", actions: ["*"] },
      { type: "registry", name: "d", actions: ["pull"] },
    ],
  });
  assert.ok(grants(c, "a", "pull"));
  assert.ok(!grants(c, "b", "pull"));
  assert.ok(grants(c, "c", "pull"));
  assert.ok(!grants(c, "d", "pull"));
  assert.ok(!grants(c, "a/x", "pull"));
  assert.ok(!grants({}, "a", "pull"));
});

test("with auth on: /v2/ challenges, private repositories need a token, public ones none", async () => {
  const { config, sign } = await issuer();
  const { bytes, digest } = manifestFixture(true);
  const stored = { bytes, httpMetadata: { contentType: OCI_MANIFEST }, customMetadata: { digest } };
  const objects = new Map([
    ["config.json", { bytes: new TextEncoder().encode(JSON.stringify({ auth: config })) }],
    ["index/public/app/_manifests/v1", stored],
    ["index/private/app/_manifests/v1", stored],
  ]);
  const env = { BUCKET: memoryBucket(objects) };
  const get = (path, headers = {}) =>
    worker.fetch(new Request(`https://registry.test${path}`, { headers }), env);
  const now = Math.floor(Date.now() / 1000);
  const token = await sign(claimsFor({ exp: now + 60, nbf: now - 1 }));
  const bearer = (t) => ({ Authorization: `Bearer ${t}` });

  let r = await get("/v2/");
  assert.equal(r.status, 401);
  const realm = 'Bearer realm="https://registry.test/token",service="cargohold"';
  assert.equal(r.headers.get("WWW-Authenticate"), realm);
  assert.equal((await r.json()).errors[0].code, "UNAUTHORIZED");
  assert.equal((await get("/v2/", bearer(token))).status, 200);

  r = await get("/v2/public/app/manifests/v1");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("Cache-Control"), "public, max-age=0, must-revalidate");
  assert.equal((await get("/v2/public/app/manifests/v1", bearer("forged"))).status, 200, "not looked at");

  r = await get("/v2/private/app/manifests/v1");
  assert.equal(r.status, 401);
  assert.match(r.headers.get("WWW-Authenticate"), /,scope="repository:private\/app:pull"$/);
  r = await get("/v2/private/app/manifests/v1", bearer("forged"));
  assert.equal(r.status, 401);
  assert.match(r.headers.get("WWW-Authenticate"), /,error="invalid_token"$/);
  r = await get("/v2/private/app/manifests/v1", bearer(token));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("Docker-Content-Digest"), digest);
  assert.equal(r.headers.get("Cache-Control"), "private, max-age=0, must-revalidate");
  // A token for another repository: a user may get one that covers it; anonymous not.
  const elsewhere = claimsFor({
    exp: now + 60,
    nbf: now - 1,
    access: [{ type: "repository", name: "private/other", actions: ["pull"] }],
  });
  r = await get("/v2/private/app/manifests/v1", bearer(await sign(elsewhere)));
  assert.equal(r.status, 401);
  assert.match(r.headers.get("WWW-Authenticate"), /error="insufficient_scope"/);
  r = await get("/v2/private/app/manifests/v1", bearer(await sign({ ...elsewhere, sub: "" })));
  assert.equal(r.status, 403);
  assert.equal((await r.json()).errors[0].code, "DENIED");
});

test("blobs of private repositories are never redirected to the public custom domain", async () => {
  const { config, sign } = await issuer();
  const blob = new TextEncoder().encode("layer");
  const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
  const link = new TextEncoder().encode(JSON.stringify({ digest, size: blob.byteLength }));
  const objects = new Map([
    ["config.json", { bytes: new TextEncoder().encode(JSON.stringify({ auth: config })) }],
    [`index/public/app/_blobs/${digest}`, { bytes: link }],
    [`index/private/app/_blobs/${digest}`, { bytes: link }],
    [`blobs/sha256/${digest.slice(7)}`, { bytes: blob }],
  ]);
  const env = { BUCKET: memoryBucket(objects), BLOBS_URL: "https://blobs.test" };
  const now = Math.floor(Date.now() / 1000);
  const token = await sign(claimsFor({ exp: now + 60, nbf: now - 1 }));
  const get = (repo, headers = {}) =>
    worker.fetch(new Request(`https://registry.test/v2/${repo}/blobs/${digest}`, { headers }), env);
  let r = await get("public/app");
  assert.equal(r.status, 307);
  assert.equal(r.headers.get("Location"), `https://blobs.test/blobs/sha256/${digest.slice(7)}`);
  r = await get("private/app", { Authorization: `Bearer ${token}` });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("Location"), null);
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), blob);
});

test("an upload Location on the upload_url host passes unchanged; one naming API_ORIGIN comes back here", async () => {
  const id = "0f0e0d0c-0b0a-4908-8706-050403020100";
  const env = { BUCKET: memoryBucket(new Map()), API_ORIGIN: "https://api.registry.test" };
  const original = globalThis.fetch;
  let location = "";
  globalThis.fetch = async () => new Response(null, { status: 202, headers: { Location: location } });
  const post = async () => {
    const request = new Request("https://registry.test/v2/a/blobs/uploads/", { method: "POST" });
    return (await worker.fetch(request, env)).headers.get("Location");
  };
  try {
    location = `https://up.registry.test/v2/a/blobs/uploads/${id}?cap=1.YQ.eA`;
    assert.equal(await post(), location);
    location = `https://api.registry.test/v2/a/blobs/uploads/${id}`;
    assert.equal(await post(), `https://registry.test/v2/a/blobs/uploads/${id}`);
  } finally {
    globalThis.fetch = original;
  }
});
