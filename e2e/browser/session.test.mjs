// The web client's session against a server whose access tokens last 12 s: the client refreshes
// them in the background without dropping its socket, a reload signs in again from the refresh
// cookie, and two tabs sharing that cookie never spend the same refresh token twice (which would
// end the session).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { MailSink, startServer, uniqueUser, verifiedUser } from '../lib/harness.mjs';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
let mail;
let server;
let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  mail = await new MailSink().start();
  server = await startServer({ mail, env: { ACCESS_TOKEN_TTL: '12s' } });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await mail?.stop();
});

test('tokens are refreshed silently, on one socket, by one tab at a time', async () => {
  const user = await verifiedUser(server, mail, uniqueUser('tab'));
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  const sockets = [];
  const refreshes = [];
  context.on('response', (r) => {
    if (new URL(r.url()).pathname === '/refresh') refreshes.push(r.status());
  });
  page.on('websocket', (ws) => sockets.push(ws.url()));
  try {
    await page.goto(server.url);
    await page.getByLabel('E-mail').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).last().click();
    const list = page.getByRole('list', { name: 'Chat list' });
    await list.getByText('Notes to self').click();
    // Only what follows the sign-in (the page's first look, with no cookie yet, is a 401).
    refreshes.length = 0;

    // Past the first token's expiry, twice over.
    await sleep(26000);
    assert.ok(refreshes.filter((s) => s === 200).length >= 2, `refreshes: ${refreshes}`);
    assert.deepEqual(refreshes.filter((s) => s !== 200), [], 'no refused refresh');
    assert.equal(sockets.length, 1, `one socket all along: ${sockets}`);
    const composer = page.getByRole('textbox', { name: 'Message' });
    await composer.fill('still here');
    await composer.press('Enter');
    await page.getByRole('log').getByText('still here').waitFor();
    await page.getByText('saving…').waitFor({ state: 'detached' });

    // A second tab takes the first tab's token; both go on refreshing, one at a time.
    const second = await context.newPage();
    await second.goto(server.url);
    await second.getByRole('list', { name: 'Chat list' }).getByText('Notes to self').waitFor();
    await sleep(20000);
    for (const p of [page, second]) {
      assert.equal(await p.getByText('Your session has ended').count(), 0);
      await p.getByRole('list', { name: 'Chat list' }).waitFor();
    }
    assert.deepEqual(refreshes.filter((s) => s !== 200), [], 'no refresh token shown twice');

    // A reload signs in from the cookie.
    await page.reload();
    await page.getByRole('list', { name: 'Chat list' }).getByText('Notes to self').click();
    await page.getByRole('log').getByText('still here').waitFor();
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, 'session.png') }).catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
});
