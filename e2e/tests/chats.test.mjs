// docs/api.md "Personal chats" and "Groups", through the real binary with socket.io-client:
// every row, its deliveries to exactly the right sockets, and every refusal.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MailSink, startServer, verifiedUser, login, connected, quiet, startShared, stopShared } from '../lib/harness.mjs';

let mail, server;
before(async () => ({ mail, server } = await startShared()));
after(() => stopShared({ mail, server }));

/** A verified user with one connected socket (`s`) and a way to open more. */
async function person(prefix = 'p') {
  const user = await verifiedUser(server, mail, undefined);
  user.s = await connected(server, user);
  user.another = async () => connected(server, { accessToken: (await login(server, user)).accessToken });
  return user;
}

function closeAll(...people) {
  for (const p of people) p.s?.close();
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

const count = (socket, event) => socket.names().filter((n) => n === event).length;

test('check-chat and create-personal-chat: one chat per pair, the partner told on every socket', async () => {
  const [a, b] = [await person(), await person()];
  const b2 = await b.another();
  const before = await a.s.request('check-chat', { Receiver: b.userId });
  assert.deepEqual([before.success, before.Exists, before.Partner], [1, 0, b.name]);
  assert.deepEqual((await a.s.waitFor('create-chat-result')).Exists, 0);

  const created = await a.s.request('create-personal-chat', { Receiver: b.userId, Partner: 'ignored', UserName: 'ignored' });
  assert.equal(created.Partner, b.name);
  assert.deepEqual(await a.s.waitFor('create-personal-chat-creator'), { ChatId: created.ChatId, Partner: b.name, PartnerId: b.userId });
  for (const s of [b.s, b2]) {
    const told = await s.waitFor('create-personal-chat-partner');
    assert.deepEqual([told.ChatId, told.Partner], [created.ChatId, a.name]);
  }
  const after = await a.s.request('check-chat', { Receiver: b.userId });
  assert.deepEqual([after.Exists, after.ChatId, after.Partner], [1, created.ChatId, b.name]);
  // Asking again (from either side) answers the same chat and tells nobody anything new.
  assert.equal((await b.s.request('create-personal-chat', { Receiver: a.userId })).ChatId, created.ChatId);
  await quiet(300);
  assert.equal(count(b2, 'create-personal-chat-partner'), 1);
  assert.equal(count(a.s, 'create-personal-chat-partner'), 0);

  for (const [payload, code] of [
    [{ Receiver: a.userId }, 'bad_request'],
    [{ Receiver: 'no-such-user' }, 'not_found'],
    [{ Receiver: { $ne: null } }, 'bad_request'],
    [{}, 'bad_request'],
    [null, 'bad_request'],
  ]) {
    assert.equal((await a.s.request('create-personal-chat', payload)).code, code, JSON.stringify(payload));
  }
  assert.equal((await a.s.request('check-chat', { Receiver: 'no-such-user' })).code, 'not_found');
  closeAll(a, b);
  b2.close();
});

test('two users creating their chat at the same moment get one chat', async () => {
  for (let round = 0; round < 5; round++) {
    const [a, b] = [await person(), await person()];
    const [x, y] = await Promise.all([
      a.s.request('create-personal-chat', { Receiver: b.userId }),
      b.s.request('create-personal-chat', { Receiver: a.userId }),
    ]);
    assert.equal(x.success, 1);
    assert.equal(y.success, 1);
    assert.equal(x.ChatId, y.ChatId);
    const list = await (await a.another()).waitFor('personal-chat-list');
    assert.equal(list.PersonalChatList.length, 1);
    closeAll(a, b);
  }
});

test('personal messages reach the partner and the sender\'s other sockets, nobody else; reads and unread counts', async () => {
  const [a, b, c] = [await person(), await person(), await person()];
  const a2 = await a.another();
  const b2 = await b.another();
  const chat = await personalChat(a, b);
  const ack = await a.s.request('send-personal-message', { ChatId: chat, Content: 'hello b' });
  assert.equal(ack.success, 1);
  assert.equal(ack.ChatId, chat);
  for (const s of [b.s, b2, a2]) {
    const got = await s.waitFor('receive-personal-message');
    assert.deepEqual(got, { ChatId: chat, Content: 'hello b', Sender: a.name, SenderId: a.userId, MessageId: ack.MessageId, Timestamp: ack.Timestamp });
  }
  await a.s.request('send-personal-message', { ChatId: chat, Content: 'second' });
  await quiet(300);
  assert.equal(count(a.s, 'receive-personal-message'), 0, 'not to the sending socket');
  assert.equal(count(c.s, 'receive-personal-message'), 0, 'not to anyone else');

  // B's chat list: A, 2 unread; the page shows both unread for B and read for A.
  const bList = (await (await b.another()).waitFor('personal-chat-list')).PersonalChatList;
  assert.equal(bList.length, 1);
  assert.deepEqual([bList[0]._id, bList[0].Partner, bList[0].PartnerId, bList[0].Unread], [chat, a.name, a.userId, 2]);
  assert.match(bList[0].LastChat, /Z$/);
  let page = await b.s.request('fetch-personal-chat', { ChatId: chat });
  assert.deepEqual(page.Messages.map((m) => m.Content), ['second', 'hello b']);
  assert.deepEqual(page.Messages[1].ReadStatus, { [a.userId]: 'Read', [b.userId]: 'Unread' });
  assert.deepEqual([page.UserId, page.User, page.Partner, page.HasMore], [b.userId, b.name, a.name, false]);
  assert.equal(page.Messages[1].Sender, a.userId);

  const read = await b.s.request('read-personal-message', { ChatId: chat });
  assert.equal(read.success, 1);
  for (const s of [a.s, a2]) assert.deepEqual(await s.waitFor('read-personal-msg-ack'), { ChatId: chat, Reader: b.userId });
  page = await b.s.request('fetch-personal-chat', { ChatId: chat });
  assert.deepEqual(page.Messages[1].ReadStatus, { [a.userId]: 'Read', [b.userId]: 'Read' });
  assert.equal((await (await b.another()).waitFor('personal-chat-list')).PersonalChatList[0].Unread, 0);

  // A non-member can neither read, write nor mark read; nothing changes.
  for (const [event, payload] of [
    ['fetch-personal-chat', { ChatId: chat }],
    ['send-personal-message', { ChatId: chat, Content: 'intrusion' }],
    ['read-personal-message', { ChatId: chat }],
  ]) {
    const r = await c.s.request(event, payload);
    assert.deepEqual([r.success, r.code], [0, 'forbidden'], event);
  }
  assert.equal((await a.s.request('fetch-personal-chat', { ChatId: chat })).Messages.length, 2);
  closeAll(a, b, c);
  a2.close();
  b2.close();
});

test('60 pipelined sends arrive complete and in order, as fetch returns them', async () => {
  const [a, b] = [await person(), await person()];
  const chat = await personalChat(a, b);
  const acks = [];
  for (let i = 0; i < 60; i++) acks.push(a.s.request('send-personal-message', { ChatId: chat, Content: `n${i}` }));
  const done = await Promise.all(acks);
  assert.ok(done.every((x) => x.success === 1));
  await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'n59' });
  const received = b.s.events.filter((e) => e.event === 'receive-personal-message').map((e) => e.payload.Content);
  assert.deepEqual(received, Array.from({ length: 60 }, (_, i) => `n${i}`));
  const page = await b.s.request('fetch-personal-chat', { ChatId: chat, Limit: 60 });
  assert.deepEqual(page.Messages.map((m) => m.Content).reverse(), received);
  assert.deepEqual(page.Messages.map((m) => m._id).reverse(), done.map((x) => x.MessageId));

  // Pages.
  const first = await b.s.request('fetch-personal-chat', { ChatId: chat, Limit: 25 });
  assert.equal(first.HasMore, true);
  const second = await b.s.request('fetch-personal-chat', { ChatId: chat, Limit: 25, Before: first.Messages[24]._id });
  const third = await b.s.request('fetch-personal-chat', { ChatId: chat, Limit: 25, Before: second.Messages[24]._id });
  assert.equal(third.Messages.length, 10);
  assert.equal(third.HasMore, false);
  assert.deepEqual([...first.Messages, ...second.Messages, ...third.Messages].map((m) => m._id), page.Messages.map((m) => m._id));
  closeAll(a, b);
});

test('a socket that stops reading is disconnected when its send buffer fills, never silently skipped', async () => {
  const [a, b] = [await person(), await person()];
  const chat = await personalChat(a, b);
  const slow = await b.another();
  // The slow socket stops reading: the kernel's buffers fill, then the gateway's buffer for it
  // (1,024 packets). 2,400 messages of 4,000 characters are several times what all of those hold.
  const tcp = slow.io.engine.transport.ws._socket;
  tcp.pause();
  const total = 2400;
  const content = (i) => `${i}:`.padEnd(4000, 'x');
  const window = 64;
  let next = 0;
  const sender = async () => {
    while (next < total) {
      const i = next++;
      const ack = await a.s.request('send-personal-message', { ChatId: chat, Content: content(i) }, 30000);
      assert.equal(ack.success, 1, JSON.stringify(ack));
    }
  };
  await Promise.all(Array.from({ length: window }, sender));
  // The reading socket of the same user got everything.
  await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === content(total - 1), timeoutMs: 30000 });
  assert.equal(count(b.s, 'receive-personal-message'), total);

  tcp.resume();
  // The server ends it: with a DISCONNECT once one fits in what the client reads again, or, when
  // the stall outlasted the heartbeat (a slow machine sending the 2,400), by closing the transport.
  const reason = await slow.waitFor('disconnect', { timeoutMs: 30000 });
  assert.ok(['io server disconnect', 'transport close'].includes(reason), reason);
  // What the slow socket did get is the conversation up to the first packet that did not fit,
  // in order, and nothing after it: no gap is hidden from its client.
  const got = slow.events.filter((e) => e.event === 'receive-personal-message').map((e) => e.payload.Content);
  assert.ok(got.length < total, `the slow socket got ${got.length} of ${total}`);
  assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => content(i)));
  // Connecting again resyncs: the unread count covers every message.
  const again = await b.another();
  const list = again.events.find((e) => e.event === 'personal-chat-list').payload.PersonalChatList;
  assert.equal(list[0].Unread, total);
  again.close();
  slow.close();
  closeAll(a, b);
});

test('a ClientId retry stores nothing new, in personal chats and groups', async () => {
  const [a, b] = [await person(), await person()];
  const chat = await personalChat(a, b);
  const one = await a.s.request('send-personal-message', { ChatId: chat, Content: 'once', ClientId: 'k-1' });
  const two = await a.s.request('send-personal-message', { ChatId: chat, Content: 'once', ClientId: 'k-1' });
  assert.equal(two.MessageId, one.MessageId);
  assert.equal((await a.s.request('fetch-personal-chat', { ChatId: chat })).Messages.length, 1);
  const g = await group(a, [b]);
  const x = await a.s.request('send-group-message', { GroupId: g, Content: 'once', ClientId: 'k-1' });
  const y = await a.s.request('send-group-message', { GroupId: g, Content: 'once', ClientId: 'k-1' });
  assert.equal(y.MessageId, x.MessageId);
  assert.equal((await a.s.request('fetch-group-chat', { GroupId: g })).Messages.length, 1);
  await quiet(200);
  assert.equal(count(b.s, 'receive-group-message'), 1);
  closeAll(a, b);
});

test('groups: create, fetch, send to the others only, read receipts and unread counts', async () => {
  const [admin, b, c, outsider] = [await person(), await person(), await person(), await person()];
  const adminOther = await admin.another();
  const g = await group(admin, [b, c], 'Project');
  assert.deepEqual(await admin.s.waitFor('create-group-chat-creator'), { GroupId: g, Name: 'Project' });
  for (const p of [b, c]) assert.deepEqual(await p.s.waitFor('create-group-chat-receiver'), { GroupId: g, Name: 'Project' });
  await quiet(200);
  assert.equal(count(outsider.s, 'create-group-chat-receiver'), 0);
  assert.equal(count(adminOther, 'create-group-chat-receiver'), 0);

  const fetched = await b.s.request('fetch-group-chat', { GroupId: g });
  assert.deepEqual([fetched.Admin, fetched.Name, fetched.Description, fetched.HasMore], [admin.userId, 'Project', 'd', false]);
  assert.deepEqual(fetched.Participants, { [admin.userId]: admin.name, [b.userId]: b.name, [c.userId]: c.name });

  const ack = await b.s.request('send-group-message', { GroupId: g, Content: 'hi all' });
  for (const s of [admin.s, adminOther, c.s]) {
    assert.deepEqual(await s.waitFor('receive-group-message'), {
      ChatId: g, Sender: b.name, SenderId: b.userId, Content: 'hi all', MessageId: ack.MessageId, Timestamp: ack.Timestamp,
    });
  }
  await quiet(200);
  assert.equal(count(b.s, 'receive-group-message'), 0);
  assert.equal(count(outsider.s, 'receive-group-message'), 0);

  const cList = (await (await c.another()).waitFor('group-chat-list')).GroupChatList;
  assert.deepEqual([cList[0]._id, cList[0].Name, cList[0].Unread], [g, 'Project', 1]);
  const page = await c.s.request('fetch-group-chat', { GroupId: g });
  const m = page.Messages[0];
  assert.deepEqual([m.Id, m._id, m.Sender, m.SenderId, m.Content], [ack.MessageId, ack.MessageId, b.name, b.userId, 'hi all']);
  assert.deepEqual(m.ReadStatus, { [admin.userId]: 'Unread', [b.userId]: 'Read', [c.userId]: 'Unread' });
  await c.s.request('read-group-message', { GroupId: g });
  for (const s of [admin.s, b.s]) assert.deepEqual(await s.waitFor('read-grp-msg-ack'), { Reader: c.userId, ChatId: g });
  assert.equal((await (await c.another()).waitFor('group-chat-list')).GroupChatList[0].Unread, 0);
  assert.equal((await c.s.request('fetch-group-chat', { GroupId: g })).Messages[0].ReadStatus[c.userId], 'Read');

  for (const [event, payload] of [
    ['fetch-group-chat', { GroupId: g }],
    ['send-group-message', { GroupId: g, Content: 'x' }],
    ['read-group-message', { GroupId: g }],
  ]) {
    assert.equal((await outsider.s.request(event, payload)).code, 'forbidden', event);
  }
  closeAll(admin, b, c, outsider);
  adminOther.close();
});

test('a group with an unknown or duplicate participant is refused whole', async () => {
  const [admin, b] = [await person(), await person()];
  const unknown = await admin.s.request('create-group-chat', { Name: 'X', Description: '', Participants: [b.userId, 'nobody-here'] });
  assert.equal(unknown.code, 'not_found');
  const dup = await admin.s.request('create-group-chat', { Name: 'X', Description: '', Participants: [b.userId, b.userId] });
  assert.equal(dup.code, 'bad_request');
  await quiet(300);
  assert.equal(count(b.s, 'create-group-chat-receiver'), 0);
  assert.deepEqual((await (await admin.another()).waitFor('group-chat-list')).GroupChatList, []);
  closeAll(admin, b);
});

test('add-member: admin only, not twice; everyone but the new member told, the new member too', async () => {
  const [admin, b, c, d] = [await person(), await person(), await person(), await person()];
  const g = await group(admin, [b]);
  const notAdmin = await b.s.request('add-member', { GroupId: g, Member: c.userId });
  assert.deepEqual([notAdmin.success, notAdmin.code], [0, 'forbidden']);
  assert.equal(typeof (await b.s.waitFor('add-member-fail')).Message, 'string');
  const twice = await admin.s.request('add-member', { GroupId: g, Member: b.userId });
  assert.equal(twice.code, 'conflict');
  assert.deepEqual(await admin.s.waitFor('add-member-fail'), { Message: 'Already in Group' });
  assert.equal((await admin.s.request('add-member', { GroupId: g, Member: 'nobody-here' })).code, 'not_found');
  // A message first, so that delivery knows the group's members before the add.
  assert.equal((await admin.s.request('send-group-message', { GroupId: g, Content: 'before' })).success, 1);
  await b.s.waitFor('receive-group-message', { pred: (m) => m.Content === 'before' });

  const added = await admin.s.request('add-member', { GroupId: g, Member: c.userId });
  assert.equal(added.success, 1);
  for (const s of [admin.s, b.s]) {
    const told = await s.waitFor('add-member-success');
    assert.deepEqual([told.ChatId, told.Member], [g, c.userId]);
  }
  assert.deepEqual(await c.s.waitFor('new-grp-added'), { ChatId: g });
  await quiet(200);
  assert.equal(count(c.s, 'add-member-success'), 0);
  assert.equal(count(d.s, 'add-member-success'), 0);
  assert.equal((await c.s.request('send-group-message', { GroupId: g, Content: 'joined' })).success, 1);
  // The new member is among those messages go to and come from, by name.
  for (const s of [admin.s, b.s]) {
    const got = await s.waitFor('receive-group-message', { pred: (m) => m.Content === 'joined' });
    assert.deepEqual([got.Sender, got.SenderId], [c.name, c.userId]);
  }
  assert.equal((await b.s.request('send-group-message', { GroupId: g, Content: 'welcome' })).success, 1);
  assert.equal((await c.s.waitFor('receive-group-message', { pred: (m) => m.Content === 'welcome' })).Sender, b.name);
  assert.ok(!c.s.events.some((e) => e.event === 'receive-group-message' && e.payload.Content === 'before'));
  // Without a callback: add-member-fail and request-failed.
  const mark = b.s.events.length;
  b.s.emit('add-member', { GroupId: g, Member: d.userId });
  assert.equal((await b.s.waitFor('request-failed', { from: mark })).code, 'forbidden');
  closeAll(admin, b, c, d);
});

test('kickout: admin only; the kicked member is told and refused from the next request', async () => {
  const [admin, b, c] = [await person(), await person(), await person()];
  const g = await group(admin, [b, c], 'Crew');
  assert.equal((await b.s.request('kickout', { GroupId: g, Member: c.userId })).code, 'forbidden');
  assert.equal((await admin.s.request('kickout', { GroupId: g, Member: admin.userId })).code, 'bad_request');
  const kicked = await admin.s.request('kickout', { GroupId: g, Member: c.userId });
  assert.equal(kicked.success, 1);
  assert.equal((await admin.s.waitFor('kickout-successful')).GroupId, g);
  assert.deepEqual(await c.s.waitFor('kicked-out'), { GroupId: g, GroupName: 'Crew' });
  assert.equal((await b.s.waitFor('someone-kicked-out')).GroupId, g);
  await quiet(200);
  assert.equal(count(admin.s, 'someone-kicked-out'), 0);
  for (const [event, payload] of [
    ['send-group-message', { GroupId: g, Content: 'still here?' }],
    ['fetch-group-chat', { GroupId: g }],
    ['read-group-message', { GroupId: g }],
    ['leave-grp', { GroupId: g }],
  ]) {
    assert.equal((await c.s.request(event, payload)).code, 'forbidden', event);
  }
  assert.equal((await admin.s.request('kickout', { GroupId: g, Member: c.userId })).code, 'not_found', 'no longer a member');
  assert.deepEqual((await (await c.another()).waitFor('group-chat-list')).GroupChatList, []);
  closeAll(admin, b, c);
});

test('change-admin and leave-grp: the admin cannot leave until they hand over', async () => {
  const [admin, b, c, outsider] = [await person(), await person(), await person(), await person()];
  const g = await group(admin, [b, c]);
  const stay = await admin.s.request('leave-grp', { GroupId: g });
  assert.deepEqual([stay.success, stay.code], [0, 'forbidden']);
  assert.equal(typeof (await admin.s.waitFor('group-left-fail')).Message, 'string');
  assert.equal((await b.s.request('change-admin', { GroupId: g, Member: c.userId })).code, 'forbidden');
  assert.equal((await admin.s.request('change-admin', { GroupId: g, Member: outsider.userId })).code, 'not_found');

  assert.equal((await admin.s.request('change-admin', { GroupId: g, Member: b.userId })).success, 1);
  assert.equal((await admin.s.waitFor('change-admin-success-creator')).GroupId, g);
  for (const p of [b, c]) assert.equal((await p.s.waitFor('change-admin-success-receiver')).GroupId, g);
  assert.equal((await b.s.request('fetch-group-chat', { GroupId: g })).Admin, b.userId);
  assert.equal((await admin.s.request('kickout', { GroupId: g, Member: c.userId })).code, 'forbidden', 'no longer admin');

  const left = await admin.s.request('leave-grp', { GroupId: g });
  assert.equal(left.success, 1);
  assert.equal((await admin.s.waitFor('group-left-success')).GroupId, g);
  for (const p of [b, c]) {
    const told = await p.s.waitFor('user-left-grp');
    assert.deepEqual([told.GroupId, told.User, told.UserName], [g, admin.userId, admin.name]);
  }
  assert.equal((await admin.s.request('send-group-message', { GroupId: g, Content: 'x' })).code, 'forbidden');
  closeAll(admin, b, c, outsider);
});

test('delete-grp: admin only; members told; the group takes nothing and cannot be fetched', async () => {
  const [admin, b] = [await person(), await person()];
  const g = await group(admin, [b]);
  assert.equal((await b.s.request('delete-grp', { GroupId: g })).code, 'forbidden');
  assert.equal((await admin.s.request('delete-grp', { GroupId: g })).success, 1);
  assert.equal((await admin.s.waitFor('delete-group-chat-creator')).GroupId, g);
  assert.equal((await b.s.waitFor('delete-grp-success-receiver')).GroupId, g);
  for (const [who, event, payload] of [
    [b, 'fetch-group-chat', { GroupId: g }],
    [admin, 'send-group-message', { GroupId: g, Content: 'x' }],
    [b, 'read-group-message', { GroupId: g }],
    [admin, 'add-member', { GroupId: g, Member: b.userId }],
    [admin, 'delete-grp', { GroupId: g }],
  ]) {
    assert.equal((await who.s.request(event, payload)).code, 'not_found', event);
  }
  assert.deepEqual((await (await b.another()).waitFor('group-chat-list')).GroupChatList, []);
  closeAll(admin, b);
});

test('malformed payloads on every chat event are refused and change nothing', async () => {
  const [a, b] = [await person(), await person()];
  const chat = await personalChat(a, b);
  const g = await group(a, [b]);
  await a.s.request('send-personal-message', { ChatId: chat, Content: 'kept' });
  await a.s.request('send-group-message', { GroupId: g, Content: 'kept' });
  const bad = [null, 'text', 42, [], { x: 1 }];
  const idFields = {
    'check-chat': ['Receiver'],
    'create-personal-chat': ['Receiver'],
    'fetch-personal-chat': ['ChatId'],
    'send-personal-message': ['ChatId'],
    'read-personal-message': ['ChatId'],
    'fetch-group-chat': ['GroupId'],
    'send-group-message': ['GroupId'],
    'read-group-message': ['GroupId'],
    'add-member': ['GroupId', 'Member'],
    kickout: ['GroupId', 'Member'],
    'change-admin': ['GroupId', 'Member'],
    'leave-grp': ['GroupId'],
    'delete-grp': ['GroupId'],
    'create-group-chat': ['Name'],
  };
  const valid = {
    'check-chat': { Receiver: b.userId },
    'create-personal-chat': { Receiver: b.userId },
    'fetch-personal-chat': { ChatId: chat },
    'send-personal-message': { ChatId: chat, Content: 'x' },
    'read-personal-message': { ChatId: chat },
    'fetch-group-chat': { GroupId: g },
    'send-group-message': { GroupId: g, Content: 'x' },
    'read-group-message': { GroupId: g },
    'add-member': { GroupId: g, Member: b.userId },
    kickout: { GroupId: g, Member: b.userId },
    'change-admin': { GroupId: g, Member: b.userId },
    'leave-grp': { GroupId: g },
    'delete-grp': { GroupId: g },
    'create-group-chat': { Name: 'N', Description: '', Participants: [b.userId] },
  };
  for (const [event, fields] of Object.entries(idFields)) {
    for (const payload of bad) {
      const r = await a.s.request(event, payload);
      assert.deepEqual([r.success, r.code], [-1, 'bad_request'], `${event} ${JSON.stringify(payload)}`);
    }
    for (const field of fields) {
      const badValues = field === 'Name'
        ? [{ $gt: '' }, 7, null, '', '   ', 'x'.repeat(101), ['x']]
        : [{ $gt: '' }, 7, null, '', 'a b', 'x'.repeat(65), ['x']];
      for (const value of badValues) {
        const r = await a.s.request(event, { ...valid[event], [field]: value });
        assert.equal(r.code, 'bad_request', `${event} ${field}=${JSON.stringify(value)}`);
      }
    }
  }
  for (const [event, field] of [['send-personal-message', 'ChatId'], ['send-group-message', 'GroupId']]) {
    for (const Content of ['', '   ', 'x'.repeat(4001), 5, { a: 1 }, null]) {
      const r = await a.s.request(event, { ...valid[event], Content });
      assert.equal(r.code, 'bad_request', `${event} Content=${JSON.stringify(Content)?.slice(0, 20)}`);
    }
    const unknown = await a.s.request(event, { ...valid[event], [field]: 'no-such-chat' });
    assert.equal(unknown.code, 'not_found');
  }
  for (const Participants of ['x', [7], [{ $gt: '' }], null, ['a b']]) {
    const r = await a.s.request('create-group-chat', { Name: 'N', Participants });
    assert.equal(r.code, 'bad_request', `Participants=${JSON.stringify(Participants)}`);
  }
  // Kinds do not mix: a group id is no personal chat and vice versa.
  assert.equal((await a.s.request('send-personal-message', { ChatId: g, Content: 'x' })).code, 'not_found');
  assert.equal((await a.s.request('fetch-group-chat', { GroupId: chat })).code, 'not_found');
  assert.equal((await a.s.request('send-personal-message', { ChatId: a.userId, Content: 'x' })).code, 'not_found', 'the self chat is not a personal chat');
  // Nothing changed.
  assert.deepEqual((await a.s.request('fetch-personal-chat', { ChatId: chat })).Messages.map((m) => m.Content), ['kept']);
  const gp = await a.s.request('fetch-group-chat', { GroupId: g });
  assert.deepEqual(gp.Messages.map((m) => m.Content), ['kept']);
  assert.deepEqual(Object.keys(gp.Participants).sort(), [a.userId, b.userId].sort());
  assert.equal(gp.Admin, a.userId);
  assert.ok(a.s.connected);
  closeAll(a, b);
});

test('chats and groups survive a restart', async () => {
  const own = await startServer({ mail });
  const a = await verifiedUser(own, mail);
  const b = await verifiedUser(own, mail);
  let sa = await connected(own, a);
  const chat = (await sa.request('create-personal-chat', { Receiver: b.userId })).ChatId;
  await sa.request('send-personal-message', { ChatId: chat, Content: 'before' });
  const g = (await sa.request('create-group-chat', { Name: 'Keep', Description: '', Participants: [b.userId] })).GroupId;
  await sa.request('send-group-message', { GroupId: g, Content: 'group before' });
  sa.close();
  await own.stop({ keepData: true });
  const again = await startServer({ mail, dataDir: own.dataDir, adopt: true });
  try {
    const sb = await connected(again, await login(again, b));
    const lists = sb.events;
    assert.equal(lists.find((e) => e.event === 'personal-chat-list').payload.PersonalChatList[0].Unread, 1);
    assert.equal(lists.find((e) => e.event === 'group-chat-list').payload.GroupChatList[0].Unread, 1);
    assert.deepEqual((await sb.request('fetch-personal-chat', { ChatId: chat })).Messages.map((m) => m.Content), ['before']);
    assert.deepEqual((await sb.request('fetch-group-chat', { GroupId: g })).Messages.map((m) => m.Content), ['group before']);
    sa = await connected(again, await login(again, a));
    assert.equal((await sa.request('create-personal-chat', { Receiver: b.userId })).ChatId, chat, 'still one chat per pair');
    assert.equal((await sa.request('send-group-message', { GroupId: g, Content: 'after' })).success, 1);
    assert.equal((await sb.waitFor('receive-group-message')).Content, 'after');
    sa.close();
    sb.close();
  } finally {
    await again.stop();
  }
});
