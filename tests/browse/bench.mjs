// Scale figures of the browse UI (bench/browse.sh runs it against a generated index):
//   node bench.mjs <url> <first-tag>
// For each view, a fresh browser context (empty cache), three runs: requests, bytes over
// the wire (Resource Timing transferSize: compressed if the host compresses), documents
// read, and the time from navigation start to the UI's first render; the median run.
import { figures, launch, view } from "./lib.mjs";

const [base, firstTag] = process.argv.slice(2);
const views = [
  ["repository list, page 1", "#/"],
  ["repository list, page 100", "#/?page=99"],
  ["search 'service-4242'", "#/search?q=service-4242"],
  ["search 'org-1' (many hits)", "#/search?q=org-1"],
  ["repository of 10,000 tags", "#/r/big/repo"],
  ["repository of 10,000 tags, page 50", "#/r/big/repo?page=49"],
  ["tag page", `#/r/big/repo/m/${firstTag}`],
];

const browser = await launch();
try {
  console.log("| view | requests (documents) | bytes | first render |");
  console.log("|---|---|---|---|");
  for (const [name, hash] of views) {
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const v = await view(browser, `${base}/${hash}`);
      runs.push(await figures(v.page));
      await v.context.close();
    }
    runs.sort((a, b) => a.renderMs - b.renderMs);
    const m = runs[1];
    console.log(`| ${name} | ${m.requests} (${m.documents}) | ${(m.bytes / 1024).toFixed(1)} KiB | ${m.renderMs} ms |`);
  }
} finally {
  await browser.close();
}
