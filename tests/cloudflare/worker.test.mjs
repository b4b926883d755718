// Table tests of the worker's pure parts: `node --test` (run.sh runs them first).
import assert from "node:assert/strict";
import { test } from "node:test";
import { accepts, parseRange, parseRoute } from "../../infra/cloudflare/worker.js";

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
    ["/index/a/b/_browse/tags.json", { kind: "browse", key: "index/a/b/_browse/tags.json", type: "application/json" }],
    [`/index/a/_browse/manifests/${D}.json`, { kind: "browse", key: `index/a/_browse/manifests/${D}.json`, type: "application/json" }],
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
