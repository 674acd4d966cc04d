// docs/api.md "Handshake" through the real binary: the three credential sources, refresh on
// connect, auth-failure, the Origin rule, the on-connect events in order, and sessions ending.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MailSink, startServer, codeOf, verifiedUser, login, socketFor, connected, quiet, uniqueUser, ALLOWED_ORIGIN, startShared, stopShared } from '../lib/harness.mjs';

let mail, server;
before(async () => ({ mail, server } = await startShared()));
after(() => stopShared({ mail, server }));

const ON_CONNECT = ['connect', 'user-id', 'personal-chat-list', 'group-chat-list', 'presence'];

function assertRefused(socket) {
  const names = socket.names().filter((n) => n !== 'connect');
  assert.equal(names[0], 'auth-failure', JSON.stringify(names));
  assert.ok(names.includes('disconnect'), JSON.stringify(names));
  assert.ok(!names.includes('user-id'), 'no other event for a refused socket');
}

async function refusedSocket(options) {
  const socket = socketFor(server, options);
  await socket.waitFor('disconnect');
  await quiet(100);
  return socket;
}

test('access token in the auth payload: the on-connect events in order', async () => {
  const user = await verifiedUser(server, mail);
  const socket = socketFor(server, { auth: { accessToken: user.accessToken } });
  socket.on('connect', () => socket.events.push({ event: 'connect' }));
  await socket.waitFor('presence');
  assert.deepEqual(socket.names(), ON_CONNECT);
  assert.deepEqual(socket.events.find((e) => e.event === 'user-id').payload, { userId: user.userId, userName: user.name });
  assert.deepEqual(socket.events.find((e) => e.event === 'personal-chat-list').payload, { PersonalChatList: [] });
  assert.deepEqual(socket.events.find((e) => e.event === 'group-chat-list').payload, { GroupChatList: [] });
  assert.deepEqual(socket.events.find((e) => e.event === 'presence').payload, { Users: [] });
  socket.close();
});

test('a request sent the moment the socket connects is answered after the on-connect events', async () => {
  const user = await verifiedUser(server, mail);
  const socket = socketFor(server, { auth: { accessToken: user.accessToken } });
  socket.on('connect', () => socket.emit('fetch-user-details', {}));
  await socket.waitFor('user-details');
  assert.deepEqual(socket.names(), ['user-id', 'personal-chat-list', 'group-chat-list', 'presence', 'user-details']);
  socket.close();
});

test('{token} in the auth payload, and the query string as the mobile app sends it', async () => {
  const user = await verifiedUser(server, mail);
  const a = socketFor(server, { auth: { token: user.accessToken } });
  assert.equal((await a.waitFor('user-id')).userId, user.userId);
  a.close();
  const b = socketFor(server, { query: { accessToken: user.accessToken, refreshToken: user.refreshToken } });
  assert.equal((await b.waitFor('user-id')).userId, user.userId);
  b.close();
});

test('cookies: allowed with no Origin (mobile) or an allowed Origin; refused from a foreign Origin', async () => {
  const user = await verifiedUser(server, mail);
  const cookie = `access_token=${user.accessToken}; refresh_token=${user.refreshToken}`;
  for (const transports of [['websocket'], ['polling']]) {
    const native = socketFor(server, { transports, extraHeaders: { cookie } });
    assert.equal((await native.waitFor('user-id')).userId, user.userId, `no Origin over ${transports}`);
    native.close();
    const allowed = socketFor(server, { transports, extraHeaders: { cookie, origin: ALLOWED_ORIGIN } });
    assert.equal((await allowed.waitFor('user-id')).userId, user.userId, `allowed Origin over ${transports}`);
    allowed.close();
  }
  const foreign = await refusedSocket({ transports: ['websocket'], extraHeaders: { cookie, origin: 'http://evil.test' } });
  assertRefused(foreign);
  assert.equal(foreign.events.find((e) => e.event === 'auth-failure').payload.reason, 'origin not allowed');
  // A token in the auth payload is not a cookie: the Origin rule does not apply to it.
  const explicit = socketFor(server, { transports: ['websocket'], auth: { accessToken: user.accessToken }, extraHeaders: { origin: 'http://evil.test' } });
  assert.equal((await explicit.waitFor('user-id')).userId, user.userId);
  explicit.close();
});

test('no, garbage, forged or refresh-as-access credentials: auth-failure, then disconnect, nothing else', async () => {
  const user = await verifiedUser(server, mail);
  const forged = user.accessToken.slice(0, -3) + (user.accessToken.endsWith('AAA') ? 'BBB' : 'AAA');
  for (const auth of [undefined, { accessToken: 'garbage' }, { accessToken: forged }, { accessToken: user.refreshToken }, { refreshToken: 'made-up' }]) {
    const socket = await refusedSocket(auth ? { auth } : {});
    assertRefused(socket);
    assert.equal(typeof socket.events.find((e) => e.event === 'auth-failure').payload.reason, 'string');
  }
});

test('events of a refused socket are not acted on', async () => {
  const user = await verifiedUser(server, mail);
  const intruder = socketFor(server, { auth: { accessToken: 'garbage' } });
  intruder.on('connect', () => {
    intruder.emit('send-self-message', { Content: 'should never be stored' });
    intruder.emit('fetch-user-details', {});
  });
  await intruder.waitFor('disconnect');
  await quiet(200);
  assert.ok(!intruder.names().includes('user-details'));
  const socket = await connected(server, user);
  const page = await socket.request('fetch-self-chat', {});
  assert.deepEqual(page.Messages, []);
  socket.close();
});

test('an expired access token with a valid refresh token: access-token first, refresh token not spent', async () => {
  const short = await startServer({ mail, env: { ACCESS_TOKEN_TTL: '1s' } });
  try {
    const user = await verifiedUser(short, mail);
    await sleep(2100);
    for (let i = 0; i < 2; i++) {
      const socket = socketFor(short, { auth: { accessToken: user.accessToken, refreshToken: user.refreshToken } });
      await socket.waitFor('presence');
      const order = socket.names();
      assert.deepEqual(order, ['access-token', 'user-id', 'personal-chat-list', 'group-chat-list', 'presence']);
      const fresh = socket.events[0].payload.accessToken;
      assert.notEqual(fresh, user.accessToken);
      socket.close();
      // The fresh token works on its own.
      const again = socketFor(short, { auth: { accessToken: fresh } });
      assert.equal((await again.waitFor('user-id')).userId, user.userId);
      again.close();
    }
    // The refresh token was never spent: /refresh still takes it.
    assert.equal((await short.post('/refresh', { refreshToken: user.refreshToken })).status, 200);
    // Expired access token alone: refused.
    const alone = socketFor(short, { auth: { accessToken: user.accessToken } });
    await alone.waitFor('disconnect');
    assert.equal(alone.names()[0], 'auth-failure');
  } finally {
    await short.stop();
  }
});

test('a user may connect from many sockets at once', async () => {
  const user = await verifiedUser(server, mail);
  const sockets = await Promise.all([1, 2, 3].map(() => connected(server, user)));
  for (const s of sockets) assert.ok(s.connected);
  for (const s of sockets) s.close();
});

test('logout ends that session: its sockets get auth-failure and are disconnected, other sessions stay', async () => {
  const user = await verifiedUser(server, mail);
  const other = await login(server, user);
  const a = await connected(server, user);
  const b = await connected(server, user);
  const c = await connected(server, { accessToken: other.accessToken });
  const mark = a.events.length;
  assert.equal((await server.post('/logout', { refreshToken: user.refreshToken })).status, 200);
  await a.waitFor('disconnect', { from: mark });
  await b.waitFor('disconnect');
  assert.equal(a.events.slice(mark)[0].event, 'auth-failure');
  await quiet(200);
  assert.ok(c.connected, 'another session is untouched');
  // The session's access token is dead at the next handshake, before it expires.
  const again = socketFor(server, { auth: { accessToken: user.accessToken } });
  await again.waitFor('disconnect');
  assert.equal(again.names()[0], 'auth-failure');
  c.close();
});

test('presenting a spent refresh token revokes the session and disconnects its sockets', async () => {
  const user = await verifiedUser(server, mail);
  const socket = await connected(server, user);
  const rotated = await server.post('/refresh', { refreshToken: user.refreshToken });
  assert.equal(rotated.status, 200);
  assert.ok(socket.connected, 'a rotation alone does not end the session');
  const reuse = await server.post('/refresh', { refreshToken: user.refreshToken });
  assert.equal(reuse.status, 401);
  await socket.waitFor('disconnect');
  assert.ok(socket.names().includes('auth-failure'));
  assert.equal((await server.post('/refresh', { refreshToken: rotated.body.refreshToken })).status, 401);
});

test('signing up again while unverified replaces the password and the name', async () => {
  const user = uniqueUser('again');
  await server.post('/signup', { name: user.name, email: user.email, password: user.password });
  const r = await server.post('/signup', { name: 'Renamed', email: user.email, password: 'another password' });
  assert.equal(r.status, 200);
  const { code } = codeOf(await mail.next(user.email, 1));
  const verified = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${code}&source=app`);
  assert.equal(verified.status, 200);
  assert.equal((await server.post('/login', { email: user.email, password: user.password })).status, 401);
  const ok = await login(server, { email: user.email, password: 'another password' });
  assert.equal(ok.userName, 'Renamed');
  const socket = await connected(server, ok);
  assert.equal(socket.events.find((e) => e.event === 'user-id').payload.userName, 'Renamed');
  socket.close();
});
