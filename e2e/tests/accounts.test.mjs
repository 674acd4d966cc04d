// docs/api.md "HTTP" through the real binary: sign-up mail over real SMTP, verification, login,
// resend, and the failure rules a client sees.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MailSink, startServer, codeOf, uniqueUser, verifiedUser, login, startShared, stopShared } from '../lib/harness.mjs';

let mail, server;
before(async () => ({ mail, server } = await startShared()));
after(() => stopShared({ mail, server }));

test('signup mails a text and an HTML part with the link and the code', async () => {
  const user = uniqueUser('mail');
  const r = await server.post('/signup', { name: user.name, email: user.email, password: user.password, source: 'web' });
  assert.equal(r.status, 200);
  assert.equal(r.body.success, 1);
  const m = await mail.next(user.email);
  const { link, code } = codeOf(m);
  assert.match(code, /^\d{6}$/);
  assert.ok(link.startsWith(`http://allowed.test/verify?email=`), link);
  assert.ok(m.text.includes(code), 'code in the text part');
  assert.ok(m.html.includes(code), 'code in the HTML part');
  assert.ok(m.html.includes('/verify?email='), 'link in the HTML part');
  assert.match(m.from, /no-reply@localhost/);
});

test('the link verifies (paths are case-insensitive), sets both cookies and shows a page', async () => {
  const user = uniqueUser('link');
  await server.post('/signup', { name: user.name, email: user.email, password: user.password });
  const { link } = codeOf(await mail.next(user.email));
  const path = new URL(link).pathname.replace('/verify', '/Verify') + new URL(link).search;
  const r = await server.get(path);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/html/);
  const cookies = r.headers.getSetCookie();
  assert.ok(cookies.some((c) => c.startsWith('access_token=') && /HttpOnly/.test(c) && /SameSite=Lax/.test(c) && /Path=\//.test(c)));
  assert.ok(cookies.some((c) => c.startsWith('refresh_token=') && /HttpOnly/.test(c)));
  // Used: a second click is refused.
  const again = await server.get(path);
  assert.equal(again.status, 400);
  assert.equal(again.body.success, 0);
});

test('verify with source=app answers tokens; login answers tokens and the name', async () => {
  const user = await verifiedUser(server, mail, uniqueUser('app'));
  assert.ok(user.accessToken && user.refreshToken && user.userId);
  const body = await login(server, user);
  assert.equal(body.success, 1);
  assert.equal(body.userId, user.userId);
  assert.equal(body.userName, user.name);
  assert.equal(body.accessToken.split('.').length, 3, 'access token is a JWT');
  assert.notEqual(body.refreshToken, user.refreshToken, 'each login is its own session');
});

test('resend replaces the code; an unknown address is answered the same and gets nothing', async () => {
  const user = uniqueUser('resend');
  await server.post('/signup', { name: user.name, email: user.email, password: user.password });
  const first = codeOf(await mail.next(user.email, 0)).code;
  const r = await server.post('/resend', { email: user.email });
  assert.deepEqual([r.status, r.body.success], [200, 1]);
  const second = codeOf(await mail.next(user.email, 1)).code;
  if (first !== second) {
    const old = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${first}&source=app`);
    assert.equal(old.status, 400, 'the replaced code is void');
  }
  const ok = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${second}&source=app`);
  assert.equal(ok.status, 200);

  const nobody = 'nobody-' + user.email;
  const unknown = await server.post('/resend', { email: nobody });
  assert.deepEqual([unknown.status, unknown.body.success], [200, 1]);
  assert.equal(mail.count(nobody), 0);
  assert.equal((await server.post('/resend', {})).status, 400);
});

test('login refusals: unknown e-mail and wrong password alike, unverified is -2, missing field -1', async () => {
  const user = await verifiedUser(server, mail, uniqueUser('refuse'));
  const wrong = await server.post('/login', { email: user.email, password: 'not the password' });
  const unknown = await server.post('/login', { email: 'x' + user.email, password: user.password });
  assert.deepEqual([wrong.status, wrong.body], [401, { success: 0, message: 'Invalid email or password' }]);
  assert.deepEqual([unknown.status, unknown.body], [wrong.status, wrong.body]);
  const pending = uniqueUser('pending');
  await server.post('/signup', { name: pending.name, email: pending.email, password: pending.password });
  const unverified = await server.post('/login', { email: pending.email, password: pending.password });
  assert.deepEqual([unverified.status, unverified.body.success], [403, -2]);
  const missing = await server.post('/login', { email: user.email });
  assert.deepEqual([missing.status, missing.body.success], [400, -1]);
});

test('signup refusals: invalid fields are 400 -1, a verified e-mail is 409 0', async () => {
  const user = await verifiedUser(server, mail, uniqueUser('dup'));
  for (const body of [
    { email: 'a@b.io', password: 'long enough' },
    { name: 'A', email: 'not-an-email', password: 'long enough' },
    { name: 'A', email: 'a@b.io', password: 'short' },
    { name: 'x'.repeat(65), email: 'a@b.io', password: 'long enough' },
    { name: 42, email: 'a@b.io', password: 'long enough' },
  ]) {
    const r = await server.post('/signup', body);
    assert.deepEqual([r.status, r.body.success], [400, -1], JSON.stringify(body));
  }
  const again = await server.post('/signup', { name: user.name, email: user.email.toUpperCase(), password: user.password });
  assert.deepEqual([again.status, again.body], [409, { success: 0, message: 'User Already Exists' }]);
});

test('five wrong codes void the code until a new one is requested', async () => {
  const user = uniqueUser('wrong');
  await server.post('/signup', { name: user.name, email: user.email, password: user.password });
  const { code } = codeOf(await mail.next(user.email));
  const bad = String((Number(code) + 1) % 1000000).padStart(6, '0');
  for (let i = 0; i < 5; i++) {
    const r = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${bad}&source=app`);
    assert.equal(r.status, 400);
  }
  const right = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${code}&source=app`);
  assert.equal(right.status, 400, 'the right code no longer works');
  await server.post('/resend', { email: user.email });
  const fresh = codeOf(await mail.next(user.email, 1)).code;
  const ok = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${fresh}&source=app`);
  assert.equal(ok.status, 200);
});

test('refresh rotates; update-access-token sets the cookie only for a good token; logout always 200', async () => {
  const user = await verifiedUser(server, mail, uniqueUser('tokens'));
  const r = await server.post('/refresh', { refreshToken: user.refreshToken });
  assert.equal(r.status, 200);
  assert.notEqual(r.body.refreshToken, user.refreshToken);
  const update = await server.post('/update-access-token', { acessToken: r.body.accessToken });
  assert.equal(update.status, 200);
  assert.ok(update.headers.getSetCookie().some((c) => c.startsWith('access_token=')));
  const forged = await server.post('/update-access-token', { acessToken: r.body.accessToken.slice(0, -2) + 'xx' });
  assert.deepEqual([forged.status, forged.body.success], [400, -1]);
  const asRefresh = await server.post('/update-access-token', { acessToken: r.body.refreshToken });
  assert.equal(asRefresh.status, 400, 'a refresh token is never an access token');
  const out = await server.post('/logout', undefined, { cookie: `refresh_token=${r.body.refreshToken}` });
  assert.equal(out.status, 200);
  assert.ok(out.headers.getSetCookie().some((c) => c.startsWith('access_token=;') && /Max-Age=0/.test(c)));
  assert.equal((await server.post('/refresh', { refreshToken: r.body.refreshToken })).status, 401);
  assert.equal((await server.post('/logout', {})).status, 200);
});

test('a body over 16 KiB is 413', async () => {
  const r = await server.post('/signup', { name: 'x', email: 'a@b.io', password: 'p'.repeat(17 * 1024) });
  assert.deepEqual([r.status, r.body.success], [413, -1]);
});

test('auth routes are rate limited per address with 429 and Retry-After', async () => {
  const server = await startServer({ mail, env: { AUTH_RATE_LIMIT: '3/min' } });
  // The budget is per gateway process: in the topology, ask one of them.
  const limited = server.at(0);
  try {
    const statuses = [];
    let last;
    for (let i = 0; i < 4; i++) {
      last = await limited.post('/login', { email: 'a@b.io', password: 'whatever1' });
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 429]);
    assert.equal(last.body.success, -1);
    assert.ok(Number(last.headers.get('retry-after')) >= 1);
    // Another route has its own budget.
    assert.equal((await limited.post('/resend', { email: 'a@b.io' })).status, 200);
  } finally {
    await server.stop();
  }
});

test('an SMTP server that never answers costs a few seconds at most, answers -1, and /resend recovers', async () => {
  // A TCP server that accepts and then says nothing (a hung SMTP server).
  const sockets = [];
  const blackhole = net.createServer((s) => sockets.push(s));
  await new Promise((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  const port = blackhole.address().port;
  const hung = await startServer({ env: { SMTP_URL: `smtp://127.0.0.1:${port}` } });
  const user = uniqueUser('hung');
  try {
    const started = Date.now();
    const r = await hung.post('/signup', { name: user.name, email: user.email, password: user.password });
    const elapsed = Date.now() - started;
    assert.deepEqual([r.status, r.body.success], [500, -1]);
    assert.ok(elapsed < 20000, `signup hung for ${elapsed} ms`);
    await hung.stop({ keepData: true });
    // The account stayed: the same data with a working SMTP server, /resend delivers a code.
    const fixed = await startServer({ mail, dataDir: hung.dataDir, adopt: true });
    try {
      assert.equal((await fixed.post('/resend', { email: user.email })).status, 200);
      const { code } = codeOf(await mail.next(user.email));
      const ok = await fixed.get(`/verify?email=${encodeURIComponent(user.email)}&token=${code}&source=app`);
      assert.equal(ok.status, 200);
    } finally {
      await fixed.stop();
    }
  } finally {
    for (const s of sockets) s.destroy();
    blackhole.close();
    await hung.stop(); // if an assertion stopped the test before the restart
  }
});

test('health and ready', async () => {
  assert.equal((await server.get('/health')).status, 200);
  const ready = await server.get('/ready');
  assert.equal(ready.status, 200);
});

test('SIGTERM stops the server gracefully with exit code 0', async () => {
  const s = await startServer({ mail });
  assert.equal(await s.stop(), 0);
});
