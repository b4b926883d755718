// The browse UI in headless chromium, against one host (tests/browse/run.sh runs it):
//   node browse.mjs push   <api> <out>   pushes the fixtures through the registry API, checks
//                                        every page, deletes a tag and checks it is gone
//   node browse.mjs static <url> <out>   the same pages, read-only (nginx, the API stopped)
// Prints `ok - `/`not ok - ` lines; screenshots of each page go to <out>/<mode>-*.png.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

import { figures, launch, size, view } from "./lib.mjs";

const [mode, base, out] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
let failed = 0;
function check(what, ok, detail = "") {
  console.log(`${ok ? "ok" : "not ok"} - ${mode}: ${what}${ok || !detail ? "" : ` (${detail})`}`);
  if (!ok) failed++;
}

// --- fixtures, pushed through the OCI API ---------------------------------------------------

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json";
const digestOf = (bytes) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function pushBlob(repo, bytes) {
  const d = digestOf(bytes);
  const r = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${d}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
  });
  if (r.status !== 201) throw new Error(`blob ${repo}: ${r.status} ${await r.text()}`);
  return { digest: d, size: bytes.length };
}

async function pushManifest(repo, ref, doc) {
  const bytes = Buffer.from(JSON.stringify(doc));
  const r = await fetch(`${base}/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": doc.mediaType },
    body: bytes,
  });
  if (r.status !== 201) throw new Error(`manifest ${repo}:${ref}: ${r.status} ${await r.text()}`);
  return { digest: digestOf(bytes), size: bytes.length };
}

/// An image for `platform` with one layer of `layerSize` bytes; its digest and total size.
async function pushImage(repo, ref, platform, layerSize) {
  const [os, architecture] = platform.split("/");
  const config = Buffer.from(
    JSON.stringify({
      os,
      architecture,
      created: "2026-11-20T10:00:00Z",
      config: { Env: ["PATH=/usr/bin", "API_TOKEN=secret"], Entrypoint: ["/app"], Cmd: ["--serve"], Labels: { "org.opencontainers.image.source": "https://example.invalid/app" } },
      history: [{ created_by: "COPY app /app" }, { created_by: "ENTRYPOINT [\"/app\"]", empty_layer: true }],
    }),
  );
  const c = await pushBlob(repo, config);
  const layer = Buffer.alloc(layerSize, platform);
  const l = await pushBlob(repo, layer);
  const m = await pushManifest(repo, ref, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...c },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...l }],
  });
  return { ...m, total: m.size + c.size + l.size, platform };
}

async function pushByDigest(repo, platform, layerSize) {
  // The manifest's digest is only known once built: push it under a throwaway tag first.
  const img = await pushImage(repo, `tmp-${platform.replace("/", "-")}`, platform, layerSize);
  await fetch(`${base}/v2/${repo}/manifests/tmp-${platform.replace("/", "-")}`, { method: "DELETE" });
  return img;
}

async function pushFixtures() {
  await pushImage("library/alpine", "3.20", "linux/amd64", 1000);
  for (const n of ["demo/web", "demo/worker", "tools/debug"]) await pushImage(n, "new", "linux/amd64", 200);
  await pushImage("tools/debug", "old", "linux/amd64", 300);
  const amd = await pushByDigest("team/app", "linux/amd64", 3000);
  const arm = await pushByDigest("team/app", "linux/arm64", 5000);
  const index = await pushManifest("team/app", "1.0", {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [amd, arm].map((p) => ({
      mediaType: OCI_MANIFEST,
      digest: p.digest,
      size: p.size,
      platform: { os: "linux", architecture: p.platform.split("/")[1] },
    })),
  });
  // A signature: an artifact whose subject is the index, pushed by its digest.
  const empty = await pushBlob("team/app", Buffer.from("{}"));
  const sigDoc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SIGNATURE,
    config: { mediaType: "application/vnd.oci.empty.v1+json", ...empty },
    layers: [],
    subject: { mediaType: OCI_INDEX, digest: index.digest, size: index.size },
  };
  const sig = await pushManifest("team/app", digestOf(Buffer.from(JSON.stringify(sigDoc))), sigDoc);
  return { amd, arm, index, sig };
}

// --- the checks ---------------------------------------------------------------------------

const browser = await launch();
const shot = async (page, name) => page.screenshot({ path: `${out}/${mode}-${name}.png`, fullPage: true });
const text = (page) => page.locator("main").innerText();

try {
  let fx;
  if (mode === "push") {
    fx = await pushFixtures();
    writeFileSync(`${out}/fixtures.json`, JSON.stringify(fx));
  } else {
    fx = JSON.parse(readFileSync(`${out}/fixtures.json`, "utf8"));
  }

  const list = await view(browser, `${base}/#/`);
  const listed = await text(list.page);
  for (const n of ["library/alpine", "team/app", "demo/web", "tools/debug"]) {
    check(`the list shows ${n}`, listed.includes(n), listed);
  }
  const f = await figures(list.page);
  console.log(`# ${mode} list: ${f.requests} requests, ${f.bytes} bytes, first render ${f.renderMs} ms`);
  await shot(list.page, "list");

  // Search from the keyboard: focus the box, type, Enter.
  await list.page.locator("#q").focus();
  await list.page.keyboard.type("alp");
  await list.page.keyboard.press("Enter");
  await list.page.waitForFunction(() => (document.body.dataset.ready || "").includes("search"));
  const found = await text(list.page);
  check("search finds library/alpine", found.includes("library/alpine"), found);
  check("search leaves out team/app", !found.includes("team/app"), found);
  await shot(list.page, "search");
  await list.context.close();

  const repo = await view(browser, `${base}/#/r/team/app`);
  const repoText = await text(repo.page);
  check("the repository page lists tag 1.0 with both platforms", repoText.includes("1.0") && repoText.includes("linux/amd64") && repoText.includes("linux/arm64"), repoText);
  check("the repository page shows the pull commands", repoText.includes("docker pull") && repoText.includes("podman pull") && repoText.includes("cargohold pull"), repoText);
  await shot(repo.page, "repository");
  await repo.context.close();

  const tag = await view(browser, `${base}/#/r/team/app/m/1.0`);
  const rows = await tag.page.locator("table tbody tr").allInnerTexts();
  for (const p of [fx.amd, fx.arm]) {
    const row = rows.find((r) => r.includes(p.platform)) || "";
    check(`${p.platform} is listed with its size ${size(p.total)}`, row.includes(size(p.total)), rows.join(" | "));
  }
  const tagText = await text(tag.page);
  check("the signature is listed as a referrer", tagText.includes(SIGNATURE) && tagText.includes(fx.sig.digest.slice(0, 19)), tagText);
  await shot(tag.page, "tag");
  await tag.context.close();

  const image = await view(browser, `${base}/#/r/team/app/m/${fx.arm.digest}`);
  const imageText = await text(image.page);
  check("a platform's page shows its config and layers", imageText.includes("API_TOKEN") && !imageText.includes("secret") && imageText.includes("COPY app /app") && imageText.includes(size(5000)), imageText);
  await shot(image.page, "image");
  await image.context.close();

  const phone = await view(browser, `${base}/#/r/team/app/m/1.0`, { width: 390, height: 844 });
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check("the tag page fits a phone's width", overflow <= 0, `${overflow}px too wide`);
  await shot(phone.page, "tag-phone");
  await phone.context.close();

  if (mode === "push") {
    const before = await view(browser, `${base}/#/r/tools/debug`);
    const had = await before.page.locator("tbody th").allInnerTexts();
    check("tools/debug lists tag old before the delete", had.includes("old"), had.join(","));
    await before.context.close();
    const r = await fetch(`${base}/v2/tools/debug/manifests/old`, { method: "DELETE" });
    check("DELETE tools/debug:old", r.status === 202, String(r.status));
  }
  const after = await view(browser, `${base}/#/r/tools/debug`);
  const left = await after.page.locator("tbody th").allInnerTexts();
  check("the deleted tag old is gone, new stays", !left.includes("old") && left.includes("new"), left.join(","));
  await shot(after.page, "deleted");
  await after.context.close();
} catch (e) {
  check("the scenario ran to its end", false, e.stack || String(e));
} finally {
  await browser.close();
}
process.exit(failed === 0 ? 0 : 1);
