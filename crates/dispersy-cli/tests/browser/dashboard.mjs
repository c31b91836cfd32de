// Drives two nodes' dashboards in headless Chromium: posts on the first page and waits for the
// post to appear on the second, then undoes it on the first and waits for the second to strike
// it through. Usage: node dashboard.mjs URL_A URL_B [SCREENSHOT_DIR]
// Chromium is Debian's (CHROMIUM or /usr/bin/chromium); playwright-core never downloads one.

import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [urlA, urlB, shots] = process.argv.slice(2);
if (!urlA || !urlB) {
  console.error("usage: node dashboard.mjs URL_A URL_B [SCREENSHOT_DIR]");
  process.exit(2);
}

const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "dispersy-chromium-")), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // The network here is closed: without these Chromium floods refused connections.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1300, height: 1100 },
});
const problems = [];
try {
  const [a, b] = [await browser.newPage(), await browser.newPage()];
  for (const [name, page] of [["A", a], ["B", b]]) {
    page.on("pageerror", (e) => problems.push(name + ": page error: " + e.message));
    page.on("console", (m) => { if (m.type() === "error") problems.push(name + ": console: " + m.text()); });
  }
  await a.goto(urlA);
  await b.goto(urlB);
  // Both pages loaded their community and joined the event stream.
  for (const page of [a, b]) {
    await page.waitForSelector("#live-dot.live", { timeout: 15000 });
    await page.waitForSelector("#post-meta option", { state: "attached", timeout: 15000 });
  }
  const text = "hello from the browser " + Date.now();
  await a.fill("#post-text", text);
  await a.click("#post-button");
  // A shows it at once (from the POST answer), B when it arrives over UDP and the event stream.
  await a.waitForSelector(`#feed .msg .text:text-is("${text}")`, { timeout: 10000 });
  await b.waitForSelector(`#feed .msg .text:text-is("${text}")`, { timeout: 20000 });
  // A undoes its post (hover shows the button); B strikes it through when the undo arrives.
  const itemA = a.locator("#feed .msg", { has: a.locator(`.text:text-is("${text}")`) });
  await itemA.hover();
  await itemA.locator("button.undo").click();
  await b.waitForSelector(`#feed .msg.undone .text:text-is("${text}")`, { timeout: 20000 });
  // B's candidate table lists A.
  await b.waitForSelector("#candidates tr", { timeout: 15000 });
  // B's sync progress is the node's estimate from A's claim, and B holds all of it.
  await b.locator("#sync .small", { hasText: /\(100\.0%, from [1-9]\d* peers/ })
    .waitFor({ state: "attached", timeout: 30000 });
  const bar = await b.locator("#sync .bar > div").first().getAttribute("style");
  if (!/width:\s*100(\.0)?%/.test(bar || "")) problems.push("B: sync bar style " + bar);
  if (shots) {
    await a.screenshot({ path: join(shots, "dashboard-a.png"), fullPage: true });
    await b.screenshot({ path: join(shots, "dashboard-b.png"), fullPage: true });
  }
  console.log("the post made on A's dashboard appeared on B's, and its undo too");
} catch (e) {
  problems.push(String(e && e.stack || e));
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
