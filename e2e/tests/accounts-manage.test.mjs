// docs/api.md "Accounts", through the real binary with socket.io-client and HTTP: a password reset
// ends every session and disconnects its sockets (on both gateways in the topology), sessions are
// listed and one ended disconnects only its own sockets, and a rename reaches a contact live, in
// later pages and in the audit history.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { verifiedUser, connected, login, quiet, startShared, stopShared, TOPOLOGY } from '../lib/harness.mjs';

const TOKEN = 'accounts-audit-token-0123456789abcdef';
let mail, server;
before(async () => ({ mail, server } = await startShared({ env: { AUDIT_TOKEN: TOKEN } })));
after(() => stopShared({ mail, server }));

const at = (i) => (TOPOLOGY ? server.at(i) : server);
const bearer = (token) => ({ authorization: `Bearer ${token}` });

/** The code of a password reset mail. */
const resetCodeOf = (m) => /password reset code: (\d{6})/.exec(m.text)?.[1];

const ok = async (socket, event, payload) => {
  const ack = await socket.request(event, payload);
  assert.equal(ack.success, 1, `${event}: ${JSON.stringify(ack)}`);
  return ack;
};

/** A socket opened with `tokens` (a session's) on gateway `i`. */
const socketOf = (tokens, i) => connected(at(i), { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken });

test('a password reset ends every session and disconnects its sockets everywhere', async () => {
  const user = await verifiedUser(server, mail);
  const other = await login(server, user);
  const first = await socketOf(user, 0);
  const second = await socketOf(other, 1);

  const mailsBefore = mail.count(user.email);
  const forgot = await server.post('/password/forgot', { email: user.email });
  const unknown = await server.post('/password/forgot', { email: `nobody-${user.email}` });
  assert.deepEqual([forgot.status, unknown.status], [200, 200]);
  assert.deepEqual(forgot.body, unknown.body);
  const code = resetCodeOf(await mail.next(user.email, mailsBefore));
  assert.match(code, /^\d{6}$/);

  const wrong = await server.post('/password/reset', { email: user.email, token: code === '000000' ? '111111' : '000000', password: 'a new password' });
  assert.deepEqual([wrong.status, wrong.body.success], [400, 0]);
  const weak = await server.post('/password/reset', { email: user.email, token: code, password: 'short' });
  assert.deepEqual([weak.status, weak.body.success], [400, -1]);
  // Refused attempts end nothing.
  await ok(first, 'fetch-user-details', {});

  const reset = await server.post('/password/reset', { email: user.email, token: code, password: 'a new password' });
  assert.deepEqual([reset.status, reset.body.success], [200, 1], reset.text);
  for (const socket of [first, second]) {
    await socket.waitFor('auth-failure');
    await socket.waitFor('disconnect');
  }
  assert.equal((await server.post('/refresh', { refreshToken: other.refreshToken })).status, 401);
  assert.equal((await server.post('/login', { email: user.email, password: user.password })).status, 401);
  const back = await login(server, { ...user, password: 'a new password' });
  (await socketOf(back, 0)).disconnect();
});

test('sessions are listed, and ending one disconnects its sockets only', async () => {
  const user = await verifiedUser(server, mail);
  const other = await login(server, user);
  const mine = await socketOf(user, 0);
  const theirs = await socketOf(other, 1);

  const details = await mine.request('fetch-user-details', {});
  assert.equal(details.Sessions, 2);
  const listed = await server.get('/sessions', bearer(user.accessToken));
  assert.equal(listed.status, 200, listed.text);
  assert.equal(listed.body.Sessions.length, 2);
  const current = listed.body.Sessions.filter((s) => s.Current);
  assert.equal(current.length, 1);
  const target = listed.body.Sessions.find((s) => !s.Current);
  for (const field of ['Id', 'CreatedAt', 'LastUsedAt']) assert.equal(typeof target[field], 'string', field);
  assert.ok('UserAgent' in target && 'Ip' in target);

  // Someone else cannot end it, or even tell it from an unknown id.
  const stranger = await verifiedUser(server, mail);
  const foreign = await server.http('DELETE', `/sessions/${target.Id}`, undefined, bearer(stranger.accessToken));
  const unknown = await server.http('DELETE', '/sessions/0123456789abcdef0123456789abcdef', undefined, bearer(stranger.accessToken));
  assert.deepEqual([foreign.status, unknown.status], [404, 404]);
  assert.deepEqual(foreign.body, unknown.body);
  assert.equal((await server.http('DELETE', `/sessions/${target.Id}`)).status, 401);
  assert.equal((await server.get('/sessions')).status, 401);

  const ended = await server.http('DELETE', `/sessions/${target.Id}`, undefined, bearer(user.accessToken));
  assert.deepEqual([ended.status, ended.body.success], [200, 1], ended.text);
  await theirs.waitFor('auth-failure');
  await theirs.waitFor('disconnect');
  await quiet();
  assert.ok(!mine.names().includes('disconnect'), 'the caller\'s own session stays');
  assert.equal((await mine.request('fetch-user-details', {})).Sessions, 1);
  assert.equal((await server.post('/refresh', { refreshToken: other.refreshToken })).status, 401);
  mine.disconnect();
});

test('a rename reaches a contact live, in later pages and messages, and in the audit history', async () => {
  const a = await verifiedUser(server, mail);
  const b = await verifiedUser(server, mail);
  a.s = await socketOf(a, 0);
  b.s = await socketOf(b, 1);
  const chat = (await ok(a.s, 'create-personal-chat', { Receiver: b.userId })).ChatId;
  const group = (await ok(a.s, 'create-group-chat', { Name: 'G', Description: '', Participants: [b.userId] })).GroupId;
  const before = await ok(a.s, 'send-group-message', { GroupId: group, Content: 'before' });
  assert.equal((await b.s.waitFor('receive-group-message', { pred: (m) => m.MessageId === before.MessageId })).Sender, a.name);

  // Refusals change nothing.
  for (const payload of [{ Name: '' }, { Name: '   ' }, { Name: 'x'.repeat(65) }, { Name: 'a\u0001b' }, { Name: 5 }, {}, 'Name']) {
    const refused = await a.s.request('rename', payload);
    assert.deepEqual([refused.success, refused.code], [-1, 'bad_request'], JSON.stringify(payload));
  }

  const renamed = `${a.name} renamed`;
  assert.deepEqual(await a.s.request('rename', { Name: `  ${renamed} ` }), { success: 1, Name: renamed });
  assert.deepEqual(await b.s.waitFor('presence-changed', { pred: (p) => p.Name !== undefined }), { UserId: a.userId, Name: renamed });
  // The same name again writes nothing and tells no one.
  assert.deepEqual(await a.s.request('rename', { Name: renamed }), { success: 1, Name: renamed });

  const after = await ok(a.s, 'send-group-message', { GroupId: group, Content: 'after' });
  assert.equal((await b.s.waitFor('receive-group-message', { pred: (m) => m.MessageId === after.MessageId })).Sender, renamed);
  const list = (await (await socketOf(b, 0)).waitFor('personal-chat-list')).PersonalChatList;
  assert.equal(list.find((c) => c._id === chat).Partner, renamed);
  const page = await ok(b.s, 'fetch-personal-chat', { ChatId: chat });
  assert.equal(page.Partner, renamed);
  const found = await b.s.request('search-user', { Name: renamed, Type: 'Search' });
  assert.ok(JSON.stringify(found).includes(a.userId), JSON.stringify(found));
  assert.equal((await a.s.request('fetch-user-details', {})).Name, renamed);
  assert.equal((await login(server, a)).userName, renamed);

  await quiet();
  assert.equal(b.s.events.filter((e) => e.event === 'presence-changed' && e.payload.Name !== undefined).length, 1);
  const audit = await server.get(`/audit/users/${a.userId}/events?type=UserRenamed`, bearer(TOKEN));
  assert.equal(audit.status, 200, audit.text);
  assert.deepEqual(audit.body.events.map((e) => e.data.name), [renamed]);
  a.s.disconnect();
  b.s.disconnect();
});
