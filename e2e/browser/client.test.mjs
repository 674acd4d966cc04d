// The web client the server serves at /, driven in Debian's chromium through playwright-core: two
// people (two browser contexts) sign up, verify (one by code, one by the mailed link), find each
// other, chat, run every group admin action, live through a server restart without a message lost
// or doubled, and see markup in names and messages as text. axe-core checks every screen. Then the
// budget: the page's JavaScript, time to a usable first screen, and long tasks while 1,000 messages
// arrive in 10 s. A failing step leaves a screenshot in e2e/browser/artifacts/.
//
// SERVER_BIN names the gateway binary (all-in-one); CHROMIUM the browser (default /usr/bin/chromium).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { MailSink, codeOf, connected, login, startServer, uniqueUser } from '../lib/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(here, 'artifacts');
const AXE = readFileSync(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
const XSS = '<img src=x onerror="window.__xss=1">';
/** A 1×1 PNG. */
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

let mail;
let server;
let browser;
const measured = {};

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  mail = await new MailSink().start();
  server = await startServer({ mail });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await mail?.stop();
  writeFileSync(join(ARTIFACTS, 'measurements.json'), `${JSON.stringify(measured, null, 2)}\n`);
  console.log('browser measurements:', JSON.stringify(measured));
});

/** Runs one step; when it fails, a screenshot of every page named in `pages` is kept. */
async function step(name, pages, work) {
  try {
    await work();
  } catch (e) {
    for (const [who, page] of Object.entries(pages)) {
      const file = join(ARTIFACTS, `${name.replace(/[^a-z0-9]+/gi, '-')}-${who}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`step "${name}" failed; screenshot: ${file}`);
    }
    throw e;
  }
}

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(page, screen) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${screen}: ${JSON.stringify(bad)}`);
  measured.axeScreens = [...(measured.axeScreens ?? []), screen];
}

async function newPerson(width = 1100, height = 720) {
  const context = await browser.newContext({ viewport: { width, height } });
  // The CSP forbids inline script, so axe is added through the DevTools protocol, not the page.
  await context.addInitScript(AXE);
  const page = await context.newPage();
  page.on('dialog', (d) => void d.accept());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // A style or script the Content-Security-Policy refused is reported on the console.
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) errors.push(m.text());
  });
  page.errors = errors;
  return { context, page };
}

const chatList = (page) => page.getByRole('list', { name: 'Chat list' });
const messageLog = (page) => page.getByRole('log');
const composer = (page) => page.getByRole('textbox', { name: 'Message' });

async function send(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

/** The texts of the messages on screen (the list is windowed: those in and near the view). */
const texts = (page) => messageLog(page).locator('.message .content').allTextContents();

async function signUp(page, user) {
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.getByLabel('Name').fill(user.name);
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Create account' }).last().click();
  await page.getByRole('heading', { name: 'Check your e-mail' }).waitFor();
}

/** Bytes of a file as sent with `encoding`. */
function sizeOf(url, encoding) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { 'accept-encoding': encoding } }, (res) => {
      let n = 0;
      res.on('data', (c) => (n += c.length));
      res.on('end', () => resolve(n));
    });
    req.on('error', reject);
    req.end();
  });
}

test('two people use the web client end to end', async () => {
  const ada = { ...uniqueUser('ada'), name: `Ada ${XSS}` };
  const bob = uniqueUser('bob');
  const A = await newPerson();
  const B = await newPerson();
  const pages = { ada: A.page, bob: B.page };

  await step('first screen', pages, async () => {
    const started = Date.now();
    await A.page.goto(server.url);
    await A.page.getByRole('button', { name: 'Sign in' }).last().waitFor();
    measured.firstScreenMs = Date.now() - started;
    const nav = await A.page.evaluate(() => {
      const [n] = performance.getEntriesByType('navigation');
      return { domInteractive: Math.round(n.domInteractive), loadEvent: Math.round(n.loadEventEnd) };
    });
    measured.navigation = nav;
    const html = await (await fetch(server.url)).text();
    const scripts = [...html.matchAll(/src="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]);
    assert.ok(scripts.length > 0, html);
    measured.initialJsGzipBytes = 0;
    measured.initialJsBrotliBytes = 0;
    for (const s of scripts) {
      measured.initialJsGzipBytes += await sizeOf(server.url + s, 'gzip');
      measured.initialJsBrotliBytes += await sizeOf(server.url + s, 'br');
    }
    assert.ok(measured.initialJsGzipBytes <= 100 * 1024, `initial JS ${measured.initialJsGzipBytes} B gzipped`);
    await accessible(A.page, 'sign in');
    await A.page.getByRole('tab', { name: 'Create account' }).click();
    await accessible(A.page, 'create account');
  });

  await step('sign up and verify by code', pages, async () => {
    await signUp(A.page, ada);
    await accessible(A.page, 'verify');
    const { code } = codeOf(await mail.next(ada.email));
    await A.page.getByLabel('Code').fill(code === '000000' ? '111111' : '000000');
    await A.page.getByRole('button', { name: 'Verify' }).click();
    await A.page.getByText('That code is wrong, used or expired').waitFor();
    await A.page.getByLabel('Code').fill(code);
    await A.page.getByRole('button', { name: 'Verify' }).click();
    await chatList(A.page).getByText('Notes to self').waitFor();
  });

  await step('sign up and verify by link', pages, async () => {
    await B.page.goto(server.url);
    await B.page.getByRole('tab', { name: 'Sign in' }).waitFor();
    await signUp(B.page, bob);
    await B.page.getByRole('button', { name: 'I opened the link' }).click();
    await B.page.getByText('Not verified yet').waitFor();
    const { link } = codeOf(await mail.next(bob.email));
    const verified = await B.context.newPage();
    // The mail links to PUBLIC_URL; the same path on this server.
    const url = new URL(link);
    await verified.goto(server.url + url.pathname + url.search);
    await verified.getByText('Your e-mail address is verified').waitFor();
    await verified.close();
    await B.page.getByRole('button', { name: 'I opened the link' }).click();
    await chatList(B.page).getByText('Notes to self').waitFor();
    await accessible(B.page, 'chat list');
  });

  await step('notes to self', pages, async () => {
    await chatList(A.page).getByText('Notes to self').click();
    await send(A.page, 'buy milk');
    await messageLog(A.page).getByText('buy milk').waitFor();
  });

  await step('find each other and chat; markup stays text', pages, async () => {
    await B.page.getByRole('searchbox', { name: 'Search people' }).fill('Ada');
    await B.page.getByRole('list', { name: 'People found' }).getByText(ada.name).click();
    await B.page.getByRole('heading', { name: ada.name }).waitFor();
    await send(B.page, `hello ${XSS} see https://example.com/x`);
    // Ada: the chat appears with an unread badge, the message as text.
    const badge = chatList(A.page).getByRole('button', { name: /bob/ }).locator('.badge');
    await badge.waitFor();
    assert.match(await badge.textContent(), /^1( unread)?$/);
    await chatList(A.page).getByRole('button', { name: /bob/ }).click();
    await messageLog(A.page).getByText(`hello ${XSS}`, { exact: false }).waitFor();
    const link = messageLog(A.page).getByRole('link', { name: 'https://example.com/x' });
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await link.getAttribute('target'), '_blank');
    // Bob sees his message read.
    await messageLog(B.page).getByText('✓✓ read').waitFor();
    await send(A.page, 'hi Bob');
    await messageLog(B.page).getByText('hi Bob').waitFor();
    for (const page of [A.page, B.page]) {
      assert.equal(await page.locator('#app img').count(), 0, 'no element made from user text');
      assert.equal(await page.evaluate(() => window.__xss), undefined);
    }
    // Ada's name, markup included, is shown as text to Bob.
    await chatList(B.page).getByText(ada.name).waitFor();
    await accessible(A.page, 'chat');
  });

  await step('online and typing', pages, async () => {
    // They became contacts while both were online: each sees the other online at once.
    for (const page of [A.page, B.page]) {
      await page.getByRole('region', { name: /^Chat: / }).getByRole('img', { name: 'online' }).waitFor();
    }
    // The server drops typing beyond two a second per chat (docs/api.md, "Typing"), and sending
    // the last message said two; a second later Bob's typing is told again.
    await B.page.waitForTimeout(1100);
    await composer(B.page).fill('I am writing');
    const line = A.page.getByText(`${bob.name} is typing…`);
    await line.waitFor();
    await composer(B.page).fill('');
    await line.waitFor({ state: 'hidden' });
    await accessible(A.page, 'typing');
  });

  await step('reply, edit, react, delete', pages, async () => {
    const message = (page, text) =>
      messageLog(page).locator('.message').filter({ has: page.locator('.content', { hasText: new RegExp(`^${text}$`) }) });
    await message(B.page, 'hi Bob').getByRole('button', { name: 'Reply' }).click();
    await B.page.getByText('Replying to').waitFor();
    await send(B.page, 'a reply');
    await message(A.page, 'a reply').locator('.quote', { hasText: 'hi Bob' }).waitFor();

    await message(A.page, 'hi Bob').getByRole('button', { name: 'Edit' }).click();
    assert.equal(await composer(A.page).inputValue(), 'hi Bob');
    await composer(A.page).fill('hi Bob, edited');
    await composer(A.page).press('Enter');
    await message(B.page, 'hi Bob, edited').getByText('edited ·').waitFor();

    await message(B.page, 'hi Bob, edited').getByRole('button', { name: 'React 👍' }).click();
    await message(A.page, 'hi Bob, edited').getByRole('button', { name: /👍 1/ }).waitFor();
    await message(B.page, 'a reply').getByRole('button', { name: 'React ❤️' }).click();
    await message(A.page, 'a reply').getByRole('button', { name: /❤️ 1/ }).waitFor();

    await message(A.page, 'hi Bob, edited').getByRole('button', { name: 'Delete' }).click();
    await messageLog(B.page).getByText('This message was deleted.').waitFor();
    await message(B.page, 'a reply').locator('.quote', { hasText: 'a deleted message' }).waitFor();
    assert.equal(await message(A.page, 'a reply').getByRole('button', { name: 'Edit' }).count(), 0, 'only the sender edits');
    await accessible(B.page, 'chat with replies and reactions');
  });

  await step('send an image and a file; the other member sees and downloads them', pages, async () => {
    const [chooser] = await Promise.all([A.page.waitForEvent('filechooser'), A.page.getByRole('button', { name: 'Attach files' }).click()]);
    await chooser.setFiles([
      { name: 'dot.png', mimeType: 'image/png', buffer: Buffer.from(PNG_1X1, 'base64') },
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('some notes\n') },
    ]);
    const attaching = A.page.getByRole('list', { name: 'Files to send' });
    await attaching.getByText('dot.png').waitFor();
    await attaching.getByText('notes.txt').waitFor();
    await send(A.page, 'two files');
    await attaching.waitFor({ state: 'detached' });

    const files = messageLog(B.page)
      .locator('.message')
      .filter({ hasText: 'two files' })
      .getByRole('list', { name: 'Attachments' });
    // The image is fetched with Bob's own access cookie, as a member of the chat.
    const image = files.getByRole('img', { name: 'dot.png' });
    await image.waitFor();
    await B.page.waitForFunction((img) => img.complete && img.naturalWidth === 1, await image.elementHandle());
    const link = files.getByRole('link', { name: /notes\.txt/ });
    const [download] = await Promise.all([B.page.waitForEvent('download'), link.click()]);
    assert.equal(download.suggestedFilename(), 'notes.txt');
    assert.equal(readFileSync(await download.path(), 'utf8'), 'some notes\n');
    await accessible(B.page, 'chat with files');
  });

  await step('drafts are kept per chat', pages, async () => {
    await composer(A.page).fill('half a thought');
    await chatList(A.page).getByText('Notes to self').click();
    await A.page.getByRole('heading', { name: 'Notes to self' }).waitFor();
    assert.equal(await composer(A.page).inputValue(), '');
    await chatList(A.page).getByRole('button', { name: /bob/ }).click();
    await A.page.getByRole('heading', { name: bob.name }).waitFor();
    assert.equal(await composer(A.page).inputValue(), 'half a thought');
    await composer(A.page).fill('');
  });

  await step('search messages and jump to the chat', pages, async () => {
    await chatList(A.page).getByText('Notes to self').click();
    await A.page.getByRole('heading', { name: 'Notes to self' }).waitFor();
    await A.page.getByRole('searchbox', { name: 'Search messages' }).fill('example');
    const found = A.page.getByRole('list', { name: 'Messages found' });
    await found.getByRole('button', { name: new RegExp(bob.name) }).click();
    await A.page.getByRole('heading', { name: bob.name }).waitFor();
    assert.equal(await A.page.getByRole('searchbox', { name: 'Search messages' }).inputValue(), '');
    await A.page.getByRole('searchbox', { name: 'Search messages' }).fill('nosuchwordanywhere');
    await found.getByText('No message has those words.').waitFor();
    await accessible(A.page, 'message search');
    await A.page.getByRole('searchbox', { name: 'Search messages' }).fill('');
  });

  await step('group: create, hand over, kick, add, leave, delete', pages, async () => {
    await A.page.getByRole('button', { name: 'New group' }).click();
    const dialog = A.page.getByRole('dialog', { name: 'New group' });
    await dialog.getByLabel('Group name').fill('Team');
    await dialog.getByLabel('Find people').fill('bob');
    await dialog.getByRole('button', { name: `Add ${bob.name}` }).click();
    await accessible(A.page, 'new group');
    await dialog.getByRole('button', { name: 'Create group' }).click();
    await A.page.getByRole('heading', { name: 'Team' }).waitFor();
    await chatList(B.page).getByText('# Team').waitFor();
    await chatList(B.page).getByText('# Team').click();
    await send(B.page, 'team hello');
    await messageLog(A.page).getByText('team hello').waitFor();

    // Hand over admin to Bob.
    await A.page.getByRole('button', { name: /Group details/ }).click();
    const details = A.page.getByRole('dialog', { name: 'Group: Team' });
    await accessible(A.page, 'group details');
    await details.getByRole('button', { name: 'Make admin' }).click();
    await A.page.getByText('You handed over the admin role.').waitFor();
    await details.getByRole('button', { name: 'Leave group' }).waitFor();
    await details.getByRole('button', { name: 'Close' }).click();

    // Bob, now admin, removes Ada; she is told and the group leaves her list.
    await B.page.getByRole('button', { name: /Group details/ }).click();
    const bDetails = B.page.getByRole('dialog', { name: 'Group: Team' });
    await bDetails.getByRole('button', { name: 'Remove' }).click();
    await A.page.getByText('You were removed from the group').waitFor();
    await chatList(A.page).getByText('# Team').waitFor({ state: 'detached' });

    // Bob adds her back.
    await bDetails.getByLabel('Find people').fill('Ada');
    await bDetails.getByRole('button', { name: `Add ${ada.name}` }).click();
    await chatList(A.page).getByText('# Team').waitFor();

    // Ada leaves; Bob sees one member.
    await chatList(A.page).getByText('# Team').click();
    await A.page.getByRole('button', { name: /Group details/ }).click();
    await A.page.getByRole('dialog', { name: 'Group: Team' }).getByRole('button', { name: 'Leave group' }).click();
    await chatList(A.page).getByText('# Team').waitFor({ state: 'detached' });
    await bDetails.getByRole('heading', { name: 'Members (1)' }).waitFor();

    // Bob adds her again and deletes the group; she is told.
    await bDetails.getByLabel('Find people').fill('Ada');
    await bDetails.getByRole('button', { name: `Add ${ada.name}` }).click();
    await chatList(A.page).getByText('# Team').waitFor();
    await bDetails.getByRole('button', { name: 'Delete group' }).click();
    await A.page.getByText('was deleted by its admin').waitFor();
    await chatList(A.page).getByText('# Team').waitFor({ state: 'detached' });
    await chatList(B.page).getByText('# Team').waitFor({ state: 'detached' });
  });

  await step('a refusal is shown in words', pages, async () => {
    await chatList(B.page).getByText(ada.name).click();
    await composer(B.page).fill('x'.repeat(4000));
    // The server refuses content over 4,000 characters; the client refuses it before sending.
    await composer(B.page).evaluate((el) => el.removeAttribute('maxlength'));
    await composer(B.page).fill('x'.repeat(4001));
    await composer(B.page).press('Enter');
    await B.page.getByText('A message can be at most 4,000 characters.').waitFor();
    await composer(B.page).fill('');
  });

  await step('settings and phone width', pages, async () => {
    await A.page.getByRole('button', { name: 'Settings' }).click();
    await accessible(A.page, 'settings');
    await A.page.getByRole('dialog', { name: 'Settings' }).getByRole('button', { name: 'Close' }).click();
    await A.page.setViewportSize({ width: 390, height: 760 });
    await accessible(A.page, 'phone: chat list');
    await chatList(A.page).getByRole('button', { name: /bob/ }).click();
    await composer(A.page).waitFor();
    assert.equal(await chatList(A.page).isVisible(), false, 'one pane at a time');
    await accessible(A.page, 'phone: chat');
    await A.page.getByRole('button', { name: 'Back to chat list' }).click();
    await chatList(A.page).waitFor();
    await chatList(A.page).getByRole('button', { name: /bob/ }).click();
    await A.page.setViewportSize({ width: 1100, height: 720 });
  });

  await step('a server restart loses and doubles nothing', pages, async () => {
    const port = new URL(server.url).port;
    const before = await texts(A.page);
    await server.stop({ keepData: true });
    await B.page.getByRole('status').getByText(/Offline/).waitFor();
    // Sent while the server is down: kept, then sent once it is back.
    await send(B.page, 'sent while down 1');
    await send(B.page, 'sent while down 2');
    server = await startServer({ mail, dataDir: server.dataDir, adopt: true, env: { PORT: port } });
    await messageLog(A.page).getByText('sent while down 2').waitFor({ timeout: 30000 });
    await send(A.page, 'after the restart');
    await messageLog(B.page).getByText('after the restart').waitFor();
    await sleep(1000);
    for (const page of [A.page, B.page]) {
      const now = await texts(page);
      const counts = new Map();
      for (const t of now) counts.set(t, (counts.get(t) ?? 0) + 1);
      for (const [t, n] of counts) assert.equal(n, 1, `"${t.slice(0, 40)}" shown ${n} times`);
      for (const t of ['sent while down 1', 'sent while down 2', 'after the restart']) assert.ok(now.includes(t), t);
    }
    for (const t of before) assert.ok((await texts(A.page)).includes(t), `lost: ${t}`);
  });

  await step('screenshot', pages, async () => {
    await B.page.setViewportSize({ width: 960, height: 600 });
    await chatList(B.page).getByText(ada.name).click();
    await send(B.page, 'The web client is served by the gateway itself: cargo run --release, open http://127.0.0.1:3000');
    await messageLog(B.page).getByText('served by the gateway itself').waitFor();
    for (const dismiss of await B.page.getByRole('button', { name: 'Dismiss' }).all()) await dismiss.click();
    await sleep(300);
    await B.page.screenshot({ path: join(ARTIFACTS, 'screenshot.png') });
  });

  await step('1,000 messages in 10 s keep the page responsive', pages, async () => {
    // Bob's page looks at his notes meanwhile, so that only Ada's page draws the burst (both share
    // the machine's cores with the server and the sender).
    await chatList(B.page).getByText('Notes to self').click();
    await chatList(A.page).getByRole('button', { name: /bob/ }).click();
    await A.page.evaluate(() => {
      window.__longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longTasks.push(Math.round(e.duration));
      }).observe({ type: 'longtask' });
    });
    // BROWSER_PROFILE=file.cpuprofile keeps a CPU profile of Ada's page during the burst.
    const cdp = process.env.BROWSER_PROFILE ? await A.context.newCDPSession(A.page) : undefined;
    if (cdp) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
    }
    const tokens = await login(server, bob);
    const socket = await connected(server, { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken });
    const chats = socket.events.find((e) => e.event === 'personal-chat-list').payload.PersonalChatList;
    const id = chats[0]._id;
    const started = Date.now();
    const acks = [];
    for (let i = 0; i < 1000; i++) {
      acks.push(socket.request('send-personal-message', { ChatId: id, Content: `burst ${i}`, ClientId: `burst-${i}` }));
      await sleep(Math.max(0, started + (i + 1) * 10 - Date.now()));
    }
    await Promise.all(acks);
    await messageLog(A.page).getByText('burst 999', { exact: true }).waitFor({ timeout: 30000 });
    const elapsed = Date.now() - started;
    if (cdp) writeFileSync(process.env.BROWSER_PROFILE, JSON.stringify((await cdp.send('Profiler.stop')).profile));
    socket.close();
    await sleep(500);
    const longTasks = await A.page.evaluate(() => window.__longTasks);
    const rows = await messageLog(A.page).locator('.row').count();
    measured.burst = {
      messages: 1000,
      sendSeconds: 10,
      allShownAfterMs: elapsed,
      longTasks: longTasks.length,
      longestTaskMs: Math.max(0, ...longTasks),
      rowsInDom: rows,
      loadAverage: os.loadavg().map((l) => Math.round(l * 10) / 10),
    };
    assert.ok(rows < 120, `the list is windowed: ${rows} rows in the DOM`);
    // The design target is no long task over 50 ms (docs/benchmarks/README.md records the run);
    // on a shared 2-core machine that also runs the server and the sender, scheduling alone can
    // stretch a task, so the suite fails only past BROWSER_LONG_TASK_MS (default 250 ms).
    const limit = Number(process.env.BROWSER_LONG_TASK_MS ?? 250);
    assert.ok(longTasks.every((d) => d <= limit), `long tasks over ${limit} ms: ${JSON.stringify(longTasks)}`);
  });

  await step('scrolling back pages in older messages', pages, async () => {
    // Scrolled back with the wheel over 1,000 messages: pages of 50 load on the way.
    const log = messageLog(A.page);
    await A.page.evaluate(() => (window.__longTasks = []));
    const box = await log.boundingBox();
    await A.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const started = Date.now();
    let wheels = 0;
    while (Date.now() - started < 90000 && (await log.getByText(`hello ${XSS}`, { exact: false }).count()) === 0) {
      await A.page.mouse.wheel(0, -1500);
      wheels += 1;
      await sleep(50);
    }
    await log.getByText(`hello ${XSS}`, { exact: false }).waitFor({ timeout: 1000 });
    const longTasks = await A.page.evaluate(() => window.__longTasks);
    measured.scrollBack = {
      rowsInDom: await A.page.evaluate(() => document.querySelectorAll('.row').length),
      wheelSteps: wheels,
      ms: Date.now() - started,
      longTasks: longTasks.length,
      longestTaskMs: Math.max(0, ...longTasks),
    };
  });

  await step('a chat of 10,000 messages scrolls smoothly', pages, async () => {
    await chatList(A.page).getByText('Notes to self').click();
    const tokens = await login(server, bob);
    const socket = await connected(server, { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken });
    const id = socket.events.find((e) => e.event === 'personal-chat-list').payload.PersonalChatList[0]._id;
    const fill = 9000;
    const filled = Date.now();
    for (let i = 0; i < fill; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(fill, i + 100); j++) {
        batch.push(socket.request('send-personal-message', { ChatId: id, Content: `fill ${j}`, ClientId: `fill-${j}` }));
      }
      for (const ack of await Promise.all(batch)) assert.equal(ack.success, 1, JSON.stringify(ack));
    }
    socket.close();
    const fillMs = Date.now() - filled;
    await chatList(A.page).getByRole('button', { name: /bob/ }).click();
    const log = messageLog(A.page);
    await log.getByText(`fill ${fill - 1}`, { exact: true }).waitFor();
    await A.page.evaluate(() => (window.__longTasks = []));
    const box = await log.boundingBox();
    await A.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const started = Date.now();
    let wheels = 0;
    while (Date.now() - started < 180000 && (await log.getByText('fill 0', { exact: true }).count()) === 0) {
      await A.page.mouse.wheel(0, -3000);
      wheels += 1;
      await sleep(30);
    }
    await log.getByText('fill 0', { exact: true }).waitFor({ timeout: 1000 });
    const longTasks = await A.page.evaluate(() => window.__longTasks);
    measured.tenThousand = {
      listHeight: await A.page.evaluate(() => document.querySelector('[role=log] .spacer')?.style.height),
      fillSeconds: Math.round(fillMs / 100) / 10,
      wheelSteps: wheels,
      scrollBackMs: Date.now() - started,
      longTasks: longTasks.length,
      longestTaskMs: Math.max(0, ...longTasks),
      rowsInDom: await log.locator('.row').count(),
    };
    assert.ok(measured.tenThousand.rowsInDom < 120, 'windowed');
  });

  await step('sign out', pages, async () => {
    await A.page.getByRole('button', { name: 'Sign out' }).click();
    await A.page.getByRole('tab', { name: 'Sign in' }).waitFor();
    await A.page.reload();
    await A.page.getByRole('tab', { name: 'Sign in' }).waitFor();
    await A.page.getByLabel('E-mail').fill(ada.email);
    await A.page.getByLabel('Password').fill('not the password');
    await A.page.getByRole('button', { name: 'Sign in' }).last().click();
    await A.page.getByText('Wrong e-mail or password.').waitFor();
    await A.page.getByLabel('Password').fill(ada.password);
    await A.page.getByRole('button', { name: 'Sign in' }).last().click();
    await chatList(A.page).getByRole('button', { name: /bob/ }).waitFor();
    assert.deepEqual(A.page.errors, []);
    assert.deepEqual(B.page.errors, []);
  });

  await A.context.close();
  await B.context.close();
});

test('a forgotten password is reset, sessions are signed out and the name changed from the web client', async () => {
  const cy = uniqueUser('cy');
  const C = await newPerson();
  const pages = { cy: C.page };
  await step('sign up and verify', pages, async () => {
    await C.page.goto(server.url);
    await signUp(C.page, cy);
    const { code } = codeOf(await mail.next(cy.email, mail.count(cy.email) - 1));
    await C.page.getByLabel('Code').fill(code);
    await C.page.getByRole('button', { name: 'Verify' }).click();
    await chatList(C.page).waitFor();
  });

  await step('another session is listed and signed out from Settings', pages, async () => {
    const other = await login(server, cy);
    const socket = await connected(server, { accessToken: other.accessToken, refreshToken: other.refreshToken });
    await C.page.getByRole('button', { name: 'Settings' }).click();
    const dialog = C.page.getByRole('dialog', { name: 'Settings' });
    const sessions = dialog.getByRole('region', { name: 'Sessions' });
    await sessions.getByText('(this one)').waitFor();
    await sessions.getByRole('button', { name: /Sign out the session/ }).click();
    await socket.waitFor('disconnect');
    await sessions.getByRole('button', { name: /Sign out the session/ }).waitFor({ state: 'detached' });

    await dialog.getByLabel('Your name').fill('Cy Renamed');
    await dialog.getByRole('button', { name: 'Rename' }).click();
    await dialog.getByRole('button', { name: 'Rename' }).and(C.page.locator('[disabled]')).waitFor();
    assert.equal((await login(server, cy)).userName, 'Cy Renamed');
    await accessible(C.page, 'settings with sessions');
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  await step('forgot password, reset with the mailed code, sign in with the new one', pages, async () => {
    await C.page.getByRole('button', { name: 'Sign out' }).click();
    await C.page.getByRole('button', { name: 'Forgot password?' }).click();
    await C.page.getByLabel('E-mail').fill(cy.email);
    const before = mail.count(cy.email);
    await C.page.getByRole('button', { name: 'Mail me a code' }).click();
    const code = /password reset code: (\d{6})/.exec((await mail.next(cy.email, before)).text)?.[1];
    await C.page.getByLabel('Code').fill(code);
    await C.page.getByLabel('New password').fill('a brand new password');
    await C.page.getByRole('button', { name: 'Set the new password' }).click();
    await C.page.getByText('Your password is changed').waitFor();
    await C.page.getByRole('button', { name: 'Back to sign in' }).click();
    await C.page.getByLabel('E-mail').fill(cy.email);
    await C.page.getByLabel('Password').fill('a brand new password');
    await C.page.getByRole('button', { name: 'Sign in' }).last().click();
    await chatList(C.page).waitFor();
    assert.deepEqual(C.page.errors, []);
  });
  await C.context.close();
});
