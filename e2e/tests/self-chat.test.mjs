// docs/api.md "Requests": the account, search and self-chat rows through the real binary, with
// every failure rule answered by acknowledgement or by request-failed; and survival of a restart.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MailSink, startServer, verifiedUser, login, connected, quiet, uniqueUser, startShared, stopShared } from '../lib/harness.mjs';

let mail, server;
before(async () => ({ mail, server } = await startShared()));
after(() => stopShared({ mail, server }));

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

test('fetch-user-details answers user-details and the ack', async () => {
  const user = await verifiedUser(server, mail);
  const socket = await connected(server, user);
  const ack = await socket.request('fetch-user-details', {});
  // `Sessions` (docs/api.md, "Accounts"): the verification's session is the only one open.
  assert.deepEqual(ack, { success: 1, Name: user.name, Email: user.email.toLowerCase(), Id: user.userId, Sessions: 1 });
  const event = await socket.waitFor('user-details');
  assert.deepEqual(event, { Name: user.name, Email: user.email.toLowerCase(), Id: user.userId, Sessions: 1 });
  // Clients that pass no payload and no callback keep working.
  const mark = socket.events.length;
  socket.emit('fetch-user-details');
  assert.equal((await socket.waitFor('user-details', { from: mark })).Id, user.userId);
  socket.close();
});

test('search-user: verified users only, case-insensitive, literal, at most 8 (Search) or 3 (Add)', async () => {
  const tag = `Zq${process.pid}`;
  const found = [];
  for (let i = 0; i < 10; i++) found.push(await verifiedUser(server, mail, { ...uniqueUser('s'), name: `${tag} Member ${i}` }));
  const pending = uniqueUser('p');
  await server.post('/signup', { name: `${tag} Pending`, email: pending.email, password: pending.password });
  const literal = await verifiedUser(server, mail, { ...uniqueUser('l'), name: `${tag} 100%_done` });
  const socket = await connected(server, found[0]);

  const search = await socket.request('search-user', { Name: tag.toLowerCase(), Type: 'Search' });
  assert.equal(search.success, 1);
  assert.equal(search.Users.length, 8);
  for (const u of search.Users) {
    assert.deepEqual(Object.keys(u).sort(), ['Email', 'Name', '_id']);
    assert.ok(u.Name.toLowerCase().includes(tag.toLowerCase()));
    assert.notEqual(u.Name, `${tag} Pending`, 'unverified users are not found');
    assert.notEqual(u._id, found[0].userId, 'the searcher is not among the results');
  }
  assert.deepEqual(await socket.waitFor('searched-user'), { Users: search.Users });

  const add = await socket.request('search-user', { Name: `${tag} MEMBER`, Type: 'Add' });
  assert.equal(add.Users.length, 3);
  assert.deepEqual(await socket.waitFor('added-user-match'), { Users: add.Users });

  const percent = await socket.request('search-user', { Name: '%_', Type: 'Search' });
  assert.deepEqual(percent.Users.map((u) => u._id), [literal.userId], 'the query is taken literally');
  const none = await socket.request('search-user', { Name: `${tag} Pending`, Type: 'Search' });
  assert.deepEqual(none.Users, []);

  for (const bad of [{ Type: 'Search' }, { Name: 'x', Type: 'Nope' }, { Name: 5, Type: 'Search' }, 'text']) {
    const r = await socket.request('search-user', bad);
    assert.deepEqual([r.success, r.code], [-1, 'bad_request'], JSON.stringify(bad));
  }
  socket.close();
});

test('send-self-message: ack with ids, receive-self-message on every other socket of the user only', async () => {
  const user = await verifiedUser(server, mail);
  const stranger = await verifiedUser(server, mail);
  const sender = await connected(server, user);
  const sameSession = await connected(server, user);
  const otherDevice = await connected(server, { accessToken: (await login(server, user)).accessToken });
  const outsider = await connected(server, stranger);

  const ack = await sender.request('send-self-message', { Content: 'note to self' });
  assert.equal(ack.success, 1);
  assert.equal(typeof ack.MessageId, 'string');
  assert.equal(ack.ChatId, user.userId, 'the self chat has the user id');
  assert.match(ack.Timestamp, ISO_MS);
  for (const s of [sameSession, otherDevice]) {
    const got = await s.waitFor('receive-self-message');
    assert.deepEqual(got, { ChatId: user.userId, Content: 'note to self', MessageId: ack.MessageId, Timestamp: ack.Timestamp });
  }
  await quiet(300);
  assert.ok(!sender.names().includes('receive-self-message'), 'not to the sending socket');
  assert.ok(!outsider.names().includes('receive-self-message'), 'not to anyone else');
  for (const s of [sender, sameSession, otherDevice, outsider]) s.close();
});

test('fetch-self-chat: read-your-writes, newest first, Limit, Before and HasMore', async () => {
  const user = await verifiedUser(server, mail);
  const socket = await connected(server, user);
  const ids = [];
  for (let i = 0; i < 7; i++) ids.push((await socket.request('send-self-message', { Content: `m${i}` })).MessageId);
  // Right after the last ack, a fetch shows everything.
  const all = await socket.request('fetch-self-chat', {});
  assert.equal(all.success, 1);
  assert.deepEqual(all.Messages.map((m) => m.Content), ['m6', 'm5', 'm4', 'm3', 'm2', 'm1', 'm0']);
  assert.equal(all.HasMore, false);
  assert.equal(all.Name, user.name);
  for (const m of all.Messages) {
    assert.deepEqual(Object.keys(m).sort(), ['Content', 'Timestamp', '_id']);
    assert.match(m.Timestamp, ISO_MS);
  }
  // Receipts: the owner has read, and so received, every note they wrote.
  const receipts = { [user.userId]: { Delivered: ids[6], Read: ids[6] } };
  assert.deepEqual(await socket.waitFor('self-chat'), { Messages: all.Messages, Name: all.Name, HasMore: false, Receipts: receipts });

  const first = await socket.request('fetch-self-chat', { Limit: 3 });
  assert.deepEqual(first.Messages.map((m) => m._id), [ids[6], ids[5], ids[4]]);
  assert.equal(first.HasMore, true);
  const second = await socket.request('fetch-self-chat', { Limit: 3, Before: ids[4] });
  assert.deepEqual(second.Messages.map((m) => m._id), [ids[3], ids[2], ids[1]]);
  assert.equal(second.HasMore, true);
  const last = await socket.request('fetch-self-chat', { Limit: 3, Before: ids[1] });
  assert.deepEqual(last.Messages.map((m) => m._id), [ids[0]]);
  assert.equal(last.HasMore, false);
  socket.close();
});

test('Limit defaults to 50 and is capped at 200', async () => {
  const user = await verifiedUser(server, mail);
  const socket = await connected(server, user);
  for (let i = 0; i < 205; i++) socket.emit('send-self-message', { Content: `n${i}` });
  await socket.request('send-self-message', { Content: 'last' });
  const byDefault = await socket.request('fetch-self-chat', {});
  assert.equal(byDefault.Messages.length, 50);
  assert.equal(byDefault.Messages[0].Content, 'last');
  const capped = await socket.request('fetch-self-chat', { Limit: 1000 });
  assert.equal(capped.Messages.length, 200);
  assert.equal(capped.HasMore, true);
  socket.close();
});

test('bad requests are refused with the ack, or with request-failed when there is no callback, and change nothing', async () => {
  const user = await verifiedUser(server, mail);
  const other = await verifiedUser(server, mail);
  const socket = await connected(server, user);
  await socket.request('send-self-message', { Content: 'kept' });
  const otherSocket = await connected(server, other);
  const foreignId = (await otherSocket.request('send-self-message', { Content: 'theirs' })).MessageId;

  const cases = [
    ['send-self-message', {}, 'bad_request'],
    ['send-self-message', { Content: '' }, 'bad_request'],
    ['send-self-message', { Content: '   \n\t ' }, 'bad_request'],
    ['send-self-message', { Content: 'x'.repeat(4001) }, 'bad_request'],
    ['send-self-message', { Content: 42 }, 'bad_request'],
    ['send-self-message', { Content: { $gt: '' } }, 'bad_request'],
    ['send-self-message', 'just a string', 'bad_request'],
    ['send-self-message', { Content: 'ok', ClientId: 'c'.repeat(65) }, 'bad_request'],
    ['fetch-self-chat', { Limit: 'ten' }, 'bad_request'],
    ['fetch-self-chat', { Limit: -1 }, 'bad_request'],
    ['fetch-self-chat', { Before: 7 }, 'bad_request'],
    ['fetch-self-chat', { Before: 'no-such-message' }, 'not_found'],
    ['fetch-self-chat', { Before: foreignId }, 'not_found'],
  ];
  for (const [event, payload, code] of cases) {
    const ack = await socket.request(event, payload);
    assert.equal(ack.code, code, `${event} ${JSON.stringify(payload).slice(0, 60)}`);
    assert.equal(ack.success, code === 'bad_request' ? -1 : 0);
    assert.equal(typeof ack.message, 'string');
  }
  for (const [event, payload, code] of cases) {
    const mark = socket.events.length;
    socket.emit(event, payload);
    const failed = await socket.waitFor('request-failed', { from: mark });
    assert.deepEqual([failed.Event, failed.code], [event, code]);
    assert.equal(typeof failed.message, 'string');
  }
  // The longest allowed content is fine.
  assert.equal((await socket.request('send-self-message', { Content: 'y'.repeat(4000) })).success, 1);
  const page = await socket.request('fetch-self-chat', {});
  assert.deepEqual(page.Messages.map((m) => m.Content.slice(0, 4)), ['yyyy', 'kept']);
  assert.ok(socket.connected, 'bad input never costs the connection');
  socket.close();
  otherSocket.close();
});

test('a ClientId makes a retried send store nothing new and answer the first MessageId', async () => {
  const user = await verifiedUser(server, mail);
  const socket = await connected(server, user);
  const first = await socket.request('send-self-message', { Content: 'once', ClientId: 'retry-1' });
  const again = await socket.request('send-self-message', { Content: 'once', ClientId: 'retry-1' });
  assert.equal(again.MessageId, first.MessageId);
  const page = await socket.request('fetch-self-chat', {});
  assert.equal(page.Messages.length, 1);
  socket.close();
});

test('unknown events and oversized frames do not crash the server', async () => {
  const user = await verifiedUser(server, mail);
  const socket = await connected(server, user);
  socket.emit('no-such-event', { x: 1 });
  const huge = await connected(server, user);
  huge.emit('send-self-message', { Content: 'z'.repeat(200 * 1024) });
  await huge.waitFor('disconnect').catch(() => {});
  assert.equal((await socket.request('fetch-user-details', {})).success, 1);
  socket.close();
  huge.close();
});

test('everything survives a restart', async () => {
  const own = await startServer({ mail });
  const user = await verifiedUser(own, mail);
  const socket = await connected(own, user);
  const ack = await socket.request('send-self-message', { Content: 'before the restart' });
  socket.close();
  await own.stop({ keepData: true });
  const again = await startServer({ mail, dataDir: own.dataDir, adopt: true });
  try {
    const session = await login(again, user);
    const s = await connected(again, session);
    const page = await s.request('fetch-self-chat', {});
    assert.deepEqual(page.Messages.map((m) => [m._id, m.Content]), [[ack.MessageId, 'before the restart']]);
    // The old tokens (same generated secret, session still open) still work too.
    const old = await connected(again, user);
    assert.equal((await old.request('fetch-user-details', {})).Id, user.userId);
    const next = await s.request('send-self-message', { Content: 'after' });
    assert.equal(next.success, 1);
    s.close();
    old.close();
  } finally {
    await again.stop();
  }
});
