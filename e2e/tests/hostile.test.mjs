// Hostile input through the real binary, on every store. Each test names the rule it checks:
//   item 1  NUL and other C0 control characters in text are refused (docs/api.md "Text"), and a
//           refused text leaves the chat working;
//   item 2  a Socket.IO packet over 64 KiB closes its connection (docs/api.md "Requests");
//   item 3  a ClientId is per sender (docs/api.md "Requests", `ClientId`);
//   item 4  the auth routes take JSON only, so a cross-site form cannot log anyone in, and token
//           responses are not cached (docs/api.md "HTTP");
//   item 5  a spent refresh token presented at the handshake ends its session (docs/api.md "HTTP"
//           and "Handshake");
//   item 6  user-left-grp names the leaving user by id; someone-kicked-out names the group
//           (docs/api.md "Groups").
//
// All-in-one, every test runs twice: on SQLite and on PostgreSQL (EVENT_STORE_URL and DATABASE_URL
// on a temporary database), since PostgreSQL refuses some text SQLite keeps. With E2E_TOPOLOGY=1 the
// store is the topology's PostgreSQL.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import {
  MailSink, TOPOLOGY, startServer, verifiedUser, login, socketFor, quiet, uniqueUser, tempPostgres,
} from '../lib/harness.mjs';

const BACKENDS = TOPOLOGY ? [{ label: 'topology, PostgreSQL', pg: false }] : [{ label: 'SQLite', pg: false }, { label: 'PostgreSQL', pg: true }];
const FOREIGN_ORIGIN = 'http://evil.test';

/** A server on `backend` (with a temporary PostgreSQL database of its own when asked); `stop` drops it. */
async function launch(backend, mail, env = {}) {
  const pg = backend.pg ? await tempPostgres('e2e_hostile') : undefined;
  try {
    const stores = pg ? { EVENT_STORE_URL: pg.url, DATABASE_URL: pg.url } : {};
    const server = await startServer({ mail, env: { ...env, ...stores } });
    return {
      server,
      async stop() {
        try {
          await server.stop();
        } finally {
          pg?.drop();
        }
      },
    };
  } catch (e) {
    pg?.drop();
    throw e;
  }
}

/** A `kB` field of /proc/PID/status (VmRSS, VmHWM), in bytes. */
function procBytes(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

/**
 * Opens a raw Engine.IO WebSocket to `url` (no Socket.IO client), waits for the open packet and
 * sends `text` as one message. Answers how that ended: `closed` (with the close code) when the
 * server closed the connection, else `answered` or `timeout`; and every packet received after the
 * open packet but pings.
 */
async function sendRawFrame(url, text, timeoutMs = 15000) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
  const received = [];
  let opened, answered;
  const openPacket = new Promise((resolve) => (opened = resolve));
  const answer = new Promise((resolve) => (answered = resolve));
  ws.on('message', (data) => {
    const packet = data.toString();
    if (packet.startsWith('0')) opened();
    else if (packet !== '2') {
      received.push(packet.slice(0, 200));
      answered();
    }
  });
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('error', () => {}); // a reset while the frame is still being sent is one way of being closed
  try {
    await Promise.race([openPacket, closed.then(() => assert.fail('closed before the open packet'))]);
    ws.send(text);
    const end = await Promise.race([
      closed.then((code) => ({ end: 'closed', code })),
      answer.then(() => quiet(300)).then(() => ({ end: 'answered' })),
      sleep(timeoutMs).then(() => ({ end: 'timeout' })),
    ]);
    return { ...end, received };
  } finally {
    ws.terminate();
  }
}

/** Like the harness's `connected`, but the socket is in `sockets` (to be closed) even if it never connects. */
async function connectInto(sockets, server, user, options = {}) {
  const socket = socketFor(server, { auth: { accessToken: user.accessToken, refreshToken: user.refreshToken }, ...options });
  sockets.push(socket);
  await socket.waitFor('group-chat-list');
  return socket;
}

for (const backend of BACKENDS) {
  describe(`hostile input [${backend.label}]`, () => {
    let mail, shared, server;
    before(async () => {
      mail = await new MailSink().start();
      shared = await launch(backend, mail);
      server = shared.server;
    });
    after(async () => {
      try {
        await shared?.stop();
      } finally {
        await mail?.stop();
      }
    });

    /** A verified user with one connected socket (`s`); every socket it opens is closed after the test. */
    async function person(t, on = server) {
      const user = await verifiedUser(on, mail);
      const sockets = [];
      t.after(() => sockets.forEach((s) => s.close()));
      user.connect = (options) => connectInto(sockets, on, user, options);
      user.s = await user.connect();
      return user;
    }

    async function personalChat(a, b) {
      const ack = await a.s.request('create-personal-chat', { Receiver: b.userId });
      assert.equal(ack.success, 1, JSON.stringify(ack));
      return ack.ChatId;
    }

    async function group(admin, members, name = 'Team') {
      const ack = await admin.s.request('create-group-chat', { Name: name, Description: 'd', Participants: members.map((m) => m.userId) });
      assert.equal(ack.success, 1, JSON.stringify(ack));
      return ack.GroupId;
    }

    const assertBadRequest = (r, what) => assert.deepEqual([r.success, r.code], [-1, 'bad_request'], `${what}: ${JSON.stringify(r)}`);

    for (const transports of [['websocket'], ['polling']]) {
      test(`item 2: a 2 MiB packet from an authenticated socket (${transports}) closes it; nothing is stored`, async (t) => {
        const user = await person(t);
        const big = await user.connect({ transports });
        const mark = big.events.length;
        big.emit('send-self-message', { Content: 'x'.repeat(2 << 20) });
        await big.waitFor('disconnect', { from: mark, timeoutMs: 5000 });
        await quiet(300);
        assert.deepEqual((await user.s.request('fetch-self-chat', {})).Messages, [], 'nothing was stored');
        assert.ok(!user.s.names().includes('receive-self-message'));
        assert.equal((await user.s.request('send-self-message', { Content: 'small' })).success, 1, 'the other socket still works');
      });
    }

    test('item 2: an unauthenticated 16 MB WebSocket frame is closed unread; the gateway stays up and small', async (t) => {
      const gateway = server.at(0);
      const pid = server.pid(0);
      const peakBefore = procBytes(pid, 'VmHWM');
      const packet = `40{"p":[${'0,'.repeat(8_000_000)}0]}`;
      const { end, received } = await sendRawFrame(gateway.url, packet);
      const grown = procBytes(pid, 'VmHWM') - peakBefore;
      t.diagnostic(`the gateway's peak memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
      assert.deepEqual(received, [], 'the packet was not acted on (no auth-failure, no connect answer)');
      assert.equal(end, 'closed', 'the server closes the connection');
      assert.ok(grown < 50 << 20, `the gateway's peak memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
      assert.equal((await gateway.get('/health')).status, 200);
      const user = await person(t, gateway);
      assert.equal((await user.s.request('send-self-message', { Content: 'after the flood' })).success, 1);
    });

    test('item 2: a long-polling POST over 64 KiB is refused and its session closed', async () => {
      const gateway = server.at(0);
      const base = `${gateway.url}/socket.io/?EIO=4&transport=polling`;
      const open = await (await fetch(base)).text();
      const { sid } = JSON.parse(open.slice(1));
      const body = `40{"p":"${'x'.repeat(100 * 1024)}"}`;
      const post = await fetch(`${base}&sid=${sid}`, { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      await post.text();
      assert.ok(post.status >= 400, `the oversized body is refused (status ${post.status})`);
      // A live session would hold this poll open; a closed one is an unknown sid at once.
      const poll = await fetch(`${base}&sid=${sid}`, { signal: AbortSignal.timeout(3000) }).catch((e) => e);
      assert.ok(!(poll instanceof Error), 'the session is closed, not held open');
      await poll.text();
      assert.equal(poll.status, 400, 'the session is gone');
      assert.equal((await gateway.get('/health')).status, 200);
    });

    test('item 3: ClientId is per sender in a group; a retry answers the first MessageId', async (t) => {
      const [a, b] = [await person(t), await person(t)];
      const g = await group(a, [b]);
      const fromB = await b.s.request('send-group-message', { GroupId: g, Content: 'from B', ClientId: 'k-1' });
      assert.equal(fromB.success, 1, JSON.stringify(fromB));
      const fromA = await a.s.request('send-group-message', { GroupId: g, Content: 'from A', ClientId: 'k-1' });
      assert.equal(fromA.success, 1, JSON.stringify(fromA));
      assert.notEqual(fromA.MessageId, fromB.MessageId, "another member's ClientId does not affect A's message");
      const retry = await a.s.request('send-group-message', { GroupId: g, Content: 'from A', ClientId: 'k-1' });
      assert.deepEqual([retry.success, retry.MessageId], [1, fromA.MessageId], 'a retry answers the first MessageId');
      const page = await b.s.request('fetch-group-chat', { GroupId: g });
      assert.deepEqual(page.Messages.map((m) => [m._id, m.Content]), [[fromA.MessageId, 'from A'], [fromB.MessageId, 'from B']]);
    });

    test('item 3: ClientId is per sender in a personal chat; a retry answers the first MessageId', async (t) => {
      const [a, b] = [await person(t), await person(t)];
      const chat = await personalChat(a, b);
      const fromB = await b.s.request('send-personal-message', { ChatId: chat, Content: 'from B', ClientId: 'k-1' });
      assert.equal(fromB.success, 1, JSON.stringify(fromB));
      const fromA = await a.s.request('send-personal-message', { ChatId: chat, Content: 'from A', ClientId: 'k-1' });
      assert.equal(fromA.success, 1, JSON.stringify(fromA));
      assert.notEqual(fromA.MessageId, fromB.MessageId, "another member's ClientId does not affect A's message");
      const retry = await a.s.request('send-personal-message', { ChatId: chat, Content: 'from A', ClientId: 'k-1' });
      assert.deepEqual([retry.success, retry.MessageId], [1, fromA.MessageId], 'a retry answers the first MessageId');
      const page = await a.s.request('fetch-personal-chat', { ChatId: chat });
      assert.deepEqual(page.Messages.map((m) => [m._id, m.Content]), [[fromA.MessageId, 'from A'], [fromB.MessageId, 'from B']]);
    });

    test('item 4: auth routes refuse non-JSON bodies with 415 and set no cookie; JSON still works, tokens not cached', async () => {
      const user = await verifiedUser(server, mail);
      const credentials = JSON.stringify({ email: user.email, password: user.password });
      const refused = async (path, body, type) => {
        const r = await server.post(path, body, { 'content-type': type, origin: FOREIGN_ORIGIN });
        assert.equal(r.status, 415, `${path} as ${type}: ${r.status} ${r.body?.message}`);
        assert.equal(r.headers.get('set-cookie'), null, `${path} as ${type} sets no cookie`);
      };
      for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded']) {
        await refused('/login', credentials, type);
      }
      await refused('/login', `email=${encodeURIComponent(user.email)}&password=${encodeURIComponent(user.password)}`, 'application/x-www-form-urlencoded');
      const newcomer = uniqueUser('csrf');
      await refused('/signup', JSON.stringify({ name: newcomer.name, email: newcomer.email, password: newcomer.password }), 'text/plain');
      assert.equal((await server.post('/login', { email: newcomer.email, password: newcomer.password })).status, 401, 'the refused sign-up made no account');
      const session = await login(server, user);
      const token = JSON.stringify({ refreshToken: session.refreshToken });
      for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
        await refused('/refresh', token, type);
        await refused('/logout', token, type);
      }

      // The session was neither rotated nor ended by the refused requests.
      const refreshed = await server.post('/refresh', { refreshToken: session.refreshToken });
      assert.equal(refreshed.status, 200, refreshed.body?.message);
      assert.match(refreshed.headers.get('cache-control') ?? '', /no-store/, '/refresh is not cached');
      const ok = await server.post('/login', credentials, { 'content-type': 'application/json; charset=utf-8' });
      assert.equal(ok.status, 200, ok.body?.message);
      assert.ok(ok.headers.getSetCookie().some((c) => c.startsWith('access_token=')));
      assert.match(ok.headers.get('cache-control') ?? '', /no-store/, '/login is not cached');
    });

    test('item 5: a spent refresh token at the handshake is refused and ends its session', async (t) => {
      const short = await launch(backend, mail, { ACCESS_TOKEN_TTL: '1s' });
      const sockets = [];
      t.after(() => {
        sockets.forEach((s) => s.close());
        return short.stop();
      });
      const user = await verifiedUser(short.server, mail);
      const expiresAt = Date.now() + 1000;
      const earlier = await connectInto(sockets, short.server, user);
      const rotated = await short.server.post('/refresh', { refreshToken: user.refreshToken });
      assert.equal(rotated.status, 200, rotated.body?.message);
      await sleep(Math.max(0, expiresAt - Date.now()) + 1100);

      const stale = socketFor(short.server, { auth: { accessToken: user.accessToken, refreshToken: user.refreshToken } });
      sockets.push(stale);
      await stale.waitFor('disconnect');
      assert.equal(stale.names()[0], 'auth-failure', JSON.stringify(stale.names()));
      assert.ok(!stale.names().includes('user-id'));

      const newest = await short.server.post('/refresh', { refreshToken: rotated.body.refreshToken });
      assert.equal(newest.status, 401, `the session ended: /refresh with its newest token answers ${newest.status}`);
      await earlier.waitFor('auth-failure', { timeoutMs: 5000 });
      await earlier.waitFor('disconnect', { timeoutMs: 5000 });
    });

    test("item 6: user-left-grp carries the leaving user's id; someone-kicked-out the group's name", async (t) => {
      const [admin, b, c, d] = [await person(t), await person(t), await person(t), await person(t)];
      const g = await group(admin, [b, c, d], 'Crew');
      assert.equal((await b.s.request('leave-grp', { GroupId: g })).success, 1);
      for (const p of [admin, c, d]) {
        const told = await p.s.waitFor('user-left-grp');
        assert.deepEqual([told.GroupId, told.User], [g, b.userId]);
      }
      assert.equal((await admin.s.request('kickout', { GroupId: g, Member: c.userId })).success, 1);
      const told = await d.s.waitFor('someone-kicked-out');
      assert.deepEqual([told.GroupId, told.GroupName], [g, 'Crew']);
    });

    // Item 1 last: a server that takes a NUL may wedge its PostgreSQL projection, which would
    // otherwise show up as timeouts in every later test.
    test('item 1: a sign-up name with a NUL is refused 400', async () => {
      const user = uniqueUser('nul');
      const r = await server.post('/signup', { name: 'Ada\u0000Lovelace', email: user.email, password: user.password });
      assert.deepEqual([r.status, r.body?.success], [400, -1], r.text);
      assert.equal((await server.post('/login', { email: user.email, password: user.password })).status, 401, 'no account was made');
    });

    test('item 1: control characters in group names, descriptions and group and self messages are refused', async (t) => {
      const [a, b] = [await person(t), await person(t)];
      const participants = [b.userId];
      assertBadRequest(await a.s.request('create-group-chat', { Name: 'Team', Description: 'x\u0000y', Participants: participants }), 'NUL description');
      assertBadRequest(await a.s.request('create-group-chat', { Name: 'Te\u0001am', Description: 'd', Participants: participants }), 'U+0001 name');
      assert.deepEqual((await a.connect()).events.find((e) => e.event === 'group-chat-list').payload.GroupChatList, [], 'no group was created');

      const created = await a.s.request('create-group-chat', { Name: 'Team', Description: 'two\nlines\tand a tab', Participants: participants });
      assert.equal(created.success, 1, `tab and LF in a description are accepted: ${JSON.stringify(created)}`);
      const g = created.GroupId;
      assertBadRequest(await a.s.request('send-group-message', { GroupId: g, Content: 'ding\u0007' }), 'BEL group content');
      const sent = await b.s.request('send-group-message', { GroupId: g, Content: 'after the bell' });
      assert.equal(sent.success, 1, JSON.stringify(sent));
      assert.equal((await a.s.waitFor('receive-group-message')).MessageId, sent.MessageId);
      const page = await a.s.request('fetch-group-chat', { GroupId: g });
      assert.equal(page.Description, 'two\nlines\tand a tab');
      assert.deepEqual(page.Messages.map((m) => m.Content), ['after the bell']);

      assertBadRequest(await a.s.request('send-self-message', { Content: 'bell \u0007 rings' }), 'BEL self content');
      const note = await a.s.request('send-self-message', { Content: 'note\r\n\tindented' });
      assert.equal(note.success, 1, JSON.stringify(note));
      assert.deepEqual((await a.s.request('fetch-self-chat', {})).Messages.map((m) => m.Content), ['note\r\n\tindented']);
    });

    test('item 1: NUL in personal message content is refused; both members go on talking', async (t) => {
      const [a, b] = [await person(t), await person(t)];
      const chat = await personalChat(a, b);
      const nul = await a.s.request('send-personal-message', { ChatId: chat, Content: 'a\u0000b' });
      const multiline = 'tab\there\r\nnext line\n';
      const fromA = await a.s.request('send-personal-message', { ChatId: chat, Content: multiline });
      assert.equal(fromA.success, 1, `tab, CR and LF are accepted: ${JSON.stringify(fromA)}`);
      const fromB = await b.s.request('send-personal-message', { ChatId: chat, Content: 'still here' });
      assert.equal(fromB.success, 1, JSON.stringify(fromB));
      await b.s.waitFor('receive-personal-message', { pred: (m) => m.MessageId === fromA.MessageId && m.Content === multiline });
      await a.s.waitFor('receive-personal-message', { pred: (m) => m.MessageId === fromB.MessageId });
      const page = await a.s.request('fetch-personal-chat', { ChatId: chat });
      assert.deepEqual(page.Messages.map((m) => [m._id, m.Content]), [[fromB.MessageId, 'still here'], [fromA.MessageId, multiline]]);
      // Checked last, so that a server which took it shows first whether it stalled.
      assertBadRequest(nul, 'NUL content');
    });
  });
}
