// docs/api.md "Replies, edits, deletions, reactions", through the real binary with
// socket.io-client: every event, its deliveries to every member's sockets (across both gateways in
// the topology), pages, the audit history, and refusals that change nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { verifiedUser, connected, quiet, startShared, stopShared, TOPOLOGY } from '../lib/harness.mjs';

const TOKEN = 'messages-audit-token-0123456789';
// Short, so that one test can outlive it.
const EDIT_WINDOW_MS = 4000;
let mail, server;
before(async () => ({ mail, server } = await startShared({ env: { AUDIT_TOKEN: TOKEN, EDIT_WINDOW: `${EDIT_WINDOW_MS}ms` } })));
after(() => stopShared({ mail, server }));

/** A verified user with one connected socket on gateway `at` (the topology has two). */
async function person(at = 0) {
  const user = await verifiedUser(server, mail);
  user.s = await connected(TOPOLOGY ? server.at(at) : server, user);
  return user;
}

const ok = async (socket, event, payload) => {
  const ack = await socket.request(event, payload);
  assert.equal(ack.success, 1, `${event}: ${JSON.stringify(ack)}`);
  return ack;
};

const count = (socket, event) => socket.names().filter((n) => n === event).length;

/** A group of `admin` with `members`, and its id. */
async function group(admin, members) {
  return (await ok(admin.s, 'create-group-chat', { Name: 'Team', Description: '', Participants: members.map((m) => m.userId) })).GroupId;
}

async function groupPage(p, g) {
  return (await ok(p.s, 'fetch-group-chat', { GroupId: g })).Messages;
}

test('a reply carries ReplyTo in the delivery and the page; a reply elsewhere is refused', async () => {
  const [a, b] = [await person(0), await person(1)];
  const chat = (await ok(a.s, 'create-personal-chat', { Receiver: b.userId })).ChatId;
  const first = (await ok(a.s, 'send-personal-message', { ChatId: chat, Content: 'lunch?' })).MessageId;
  const reply = await ok(b.s, 'send-personal-message', { ChatId: chat, Content: 'yes', ReplyTo: first });
  const got = await a.s.waitFor('receive-personal-message', { pred: (m) => m.MessageId === reply.MessageId });
  assert.equal(got.ReplyTo, first);
  const plain = await b.s.waitFor('receive-personal-message', { pred: (m) => m.MessageId === first });
  assert.equal('ReplyTo' in plain, false);
  const page = (await ok(a.s, 'fetch-personal-chat', { ChatId: chat })).Messages;
  assert.deepEqual(page.map((m) => [m._id, m.ReplyTo]), [[reply.MessageId, first], [first, undefined]]);

  // A message of another chat, an unknown id, a malformed one: refused, nothing sent.
  const g = await group(a, [b]);
  const inGroup = (await ok(a.s, 'send-group-message', { GroupId: g, Content: 'g' })).MessageId;
  for (const [replyTo, code] of [[inGroup, 'not_found'], ['no-such-message', 'not_found'], [{ $gt: '' }, 'bad_request']]) {
    const refused = await b.s.request('send-personal-message', { ChatId: chat, Content: 'x', ReplyTo: replyTo });
    assert.equal(refused.code, code, JSON.stringify(replyTo));
  }
  const groupReply = await ok(b.s, 'send-group-message', { GroupId: g, Content: 'ok', ReplyTo: inGroup });
  const delivered = await a.s.waitFor('receive-group-message', { pred: (m) => m.MessageId === groupReply.MessageId });
  assert.equal(delivered.ReplyTo, inGroup);
  assert.equal((await groupPage(a, g))[0].ReplyTo, inGroup);
  assert.equal((await ok(a.s, 'fetch-personal-chat', { ChatId: chat })).Messages.length, 2);
  a.s.close();
  b.s.close();
});

test('edit-message: the sender within the window, to every member on either gateway', async () => {
  const [a, b, c] = [await person(0), await person(1), await person(0)];
  const b2 = await connected(TOPOLOGY ? server.at(0) : server, b);
  const g = await group(a, [b, c]);
  const sent = (await ok(b.s, 'send-group-message', { GroupId: g, Content: 'helo' })).MessageId;
  const ack = await ok(b.s, 'edit-message', { ChatId: g, MessageId: sent, Content: 'hello' });
  assert.deepEqual([ack.ChatId, ack.MessageId], [g, sent]);
  for (const s of [a.s, b.s, b2, c.s]) {
    const edited = await s.waitFor('message-edited');
    assert.deepEqual(Object.keys(edited).sort(), ['ChatId', 'Content', 'EditedAt', 'MessageId']);
    assert.deepEqual([edited.ChatId, edited.MessageId, edited.Content], [g, sent, 'hello']);
    assert.match(edited.EditedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  const [shown] = await groupPage(c, g);
  assert.deepEqual([shown.Content, typeof shown.EditedAt, shown.Deleted], ['hello', 'string', undefined]);

  // Not the sender (the admin neither), bad content, unknown message: refused, nothing changes.
  for (const [who, payload, code] of [
    [a, { ChatId: g, MessageId: sent, Content: 'admin was here' }, 'forbidden'],
    [c, { ChatId: g, MessageId: sent, Content: 'c was here' }, 'forbidden'],
    [b, { ChatId: g, MessageId: sent, Content: '   ' }, 'bad_request'],
    [b, { ChatId: g, MessageId: sent, Content: 'x'.repeat(4001) }, 'bad_request'],
    [b, { ChatId: g, MessageId: 'no-such-message', Content: 'x' }, 'not_found'],
    [b, { ChatId: g, Content: 'x' }, 'bad_request'],
    [b, { ChatId: 'no-such-chat', MessageId: sent, Content: 'x' }, 'not_found'],
  ]) {
    assert.equal((await who.s.request('edit-message', payload)).code, code, JSON.stringify(payload));
  }
  // Without a callback the refusal comes as request-failed.
  c.s.emit('edit-message', { ChatId: g, MessageId: sent, Content: 'no' });
  const failed = await c.s.waitFor('request-failed');
  assert.deepEqual([failed.Event, failed.code], ['edit-message', 'forbidden']);
  await quiet(300);
  for (const s of [a.s, b.s, b2, c.s]) assert.equal(count(s, 'message-edited'), 1);
  assert.equal((await groupPage(a, g))[0].Content, 'hello');

  // Past EDIT_WINDOW: forbidden.
  await quiet(EDIT_WINDOW_MS + 200);
  assert.equal((await b.s.request('edit-message', { ChatId: g, MessageId: sent, Content: 'late' })).code, 'forbidden');
  for (const s of [a.s, b.s, b2, c.s]) s.close();
});

test('delete-message: the sender or the admin; pages show it deleted, the audit keeps the text', async () => {
  const [a, b, c] = [await person(0), await person(1), await person(1)];
  const g = await group(a, [b, c]);
  const mine = (await ok(b.s, 'send-group-message', { GroupId: g, Content: 'secret' })).MessageId;
  const theirs = (await ok(c.s, 'send-group-message', { GroupId: g, Content: 'spam' })).MessageId;
  await ok(b.s, 'edit-message', { ChatId: g, MessageId: mine, Content: 'secret, edited' });
  await ok(c.s, 'react', { ChatId: g, MessageId: mine, Emoji: '😮', On: true });

  // A member may not delete another's message.
  assert.equal((await c.s.request('delete-message', { ChatId: g, MessageId: mine })).code, 'forbidden');
  assert.deepEqual(await ok(b.s, 'delete-message', { ChatId: g, MessageId: mine }), { success: 1, ChatId: g, MessageId: mine });
  await ok(a.s, 'delete-message', { ChatId: g, MessageId: theirs });
  for (const s of [a.s, b.s, c.s]) {
    const deleted = [await s.waitFor('message-deleted'), await s.waitFor('message-deleted', { pred: (d) => d.MessageId === theirs })];
    assert.deepEqual(deleted[0], { ChatId: g, MessageId: mine });
  }
  const page = await groupPage(c, g);
  assert.deepEqual(page.map((m) => [m._id, m.Deleted, m.Content, m.Reactions]), [
    [theirs, true, '', undefined],
    [mine, true, '', undefined],
  ]);
  // Gone for every request.
  for (const [event, payload] of [
    ['delete-message', { ChatId: g, MessageId: mine }],
    ['edit-message', { ChatId: g, MessageId: mine, Content: 'back' }],
    ['react', { ChatId: g, MessageId: mine, Emoji: '👍', On: true }],
    ['send-group-message', { GroupId: g, Content: 're', ReplyTo: mine }],
  ]) {
    assert.equal((await b.s.request(event, payload)).code, 'not_found', event);
  }

  // The audit history keeps what was said, and what it was edited to.
  const audit = await server.get(`/audit/chats/${g}/events`, { authorization: `Bearer ${TOKEN}` });
  assert.equal(audit.status, 200);
  const about = audit.body.events.filter((e) => e.data.messageId === mine).map((e) => [e.type, e.data.content ?? null]);
  assert.deepEqual(about, [
    ['MessageSent', 'secret'],
    ['MessageEdited', 'secret, edited'],
    ['ReactionAdded', null],
    ['MessageDeleted', null],
  ]);
  for (const p of [a, b, c]) p.s.close();
});

test('react: toggles per member and emoji, at most 20 distinct emoji, one grapheme', async () => {
  const [a, b] = [await person(0), await person(1)];
  const chat = (await ok(a.s, 'create-personal-chat', { Receiver: b.userId })).ChatId;
  const m = (await ok(a.s, 'send-personal-message', { ChatId: chat, Content: 'party' })).MessageId;
  await ok(b.s, 'react', { ChatId: chat, MessageId: m, Emoji: '👍🏽', On: true });
  for (const s of [a.s, b.s]) {
    assert.deepEqual(await s.waitFor('reaction'), { ChatId: chat, MessageId: m, UserId: b.userId, Emoji: '👍🏽', On: true });
  }
  // Again: already so; acknowledged, nothing stored or delivered.
  await ok(b.s, 'react', { ChatId: chat, MessageId: m, Emoji: '👍🏽', On: true });
  await ok(a.s, 'react', { ChatId: chat, MessageId: m, Emoji: '👍🏽', On: true });
  let page = (await ok(a.s, 'fetch-personal-chat', { ChatId: chat })).Messages;
  assert.deepEqual(page[0].Reactions, { '👍🏽': [b.userId, a.userId] });
  await ok(b.s, 'react', { ChatId: chat, MessageId: m, Emoji: '👍🏽', On: false });
  await a.s.waitFor('reaction', { pred: (r) => r.On === false });
  await quiet(300);
  assert.equal(count(a.s, 'reaction'), 3);

  // Twenty distinct emoji, then a 21st is a conflict; an emoji already there is not new.
  const faces = Array.from({ length: 21 }, (_, i) => String.fromCodePoint(0x1f600 + i));
  for (const face of faces.slice(0, 19)) await ok(a.s, 'react', { ChatId: chat, MessageId: m, Emoji: face, On: true });
  assert.equal((await b.s.request('react', { ChatId: chat, MessageId: m, Emoji: faces[20], On: true })).code, 'conflict');
  await ok(b.s, 'react', { ChatId: chat, MessageId: m, Emoji: faces[0], On: true });
  page = (await ok(b.s, 'fetch-personal-chat', { ChatId: chat })).Messages;
  assert.equal(Object.keys(page[0].Reactions).length, 20);
  assert.deepEqual(page[0].Reactions[faces[0]], [a.userId, b.userId]);

  for (const [payload, code] of [
    [{ ChatId: chat, MessageId: m, Emoji: '👍👍', On: true }, 'bad_request'],
    [{ ChatId: chat, MessageId: m, Emoji: 'a', On: true }, 'bad_request'],
    [{ ChatId: chat, MessageId: m, Emoji: '😀' + '\u0301'.repeat(15), On: true }, 'bad_request'],
    [{ ChatId: chat, MessageId: m, Emoji: '👍', On: 'yes' }, 'bad_request'],
    [{ ChatId: chat, MessageId: 'nope', Emoji: '👍', On: true }, 'not_found'],
  ]) {
    assert.equal((await b.s.request('react', payload)).code, code, JSON.stringify(payload));
  }
  a.s.close();
  b.s.close();
});

test('only members: an outsider cannot edit, delete or react, and learns nothing', async () => {
  const [a, b, outsider] = [await person(0), await person(1), await person(1)];
  const chat = (await ok(a.s, 'create-personal-chat', { Receiver: b.userId })).ChatId;
  const m = (await ok(a.s, 'send-personal-message', { ChatId: chat, Content: 'private' })).MessageId;
  for (const [event, payload] of [
    ['edit-message', { ChatId: chat, MessageId: m, Content: 'mine now' }],
    ['delete-message', { ChatId: chat, MessageId: m }],
    ['react', { ChatId: chat, MessageId: m, Emoji: '👀', On: true }],
  ]) {
    assert.equal((await outsider.s.request(event, payload)).code, 'forbidden', event);
  }
  await quiet(300);
  for (const s of [a.s, b.s]) {
    assert.equal(s.names().some((n) => ['message-edited', 'message-deleted', 'reaction'].includes(n)), false);
  }
  const [shown] = (await ok(b.s, 'fetch-personal-chat', { ChatId: chat })).Messages;
  assert.deepEqual([shown.Content, shown.Reactions, shown.Deleted], ['private', undefined, undefined]);
  for (const p of [a, b, outsider]) p.s.close();
});

test('notes to self: edited, reacted to and deleted by their owner, on every socket', async () => {
  const a = await person(0);
  const a2 = await connected(TOPOLOGY ? server.at(1) : server, a);
  const note = (await ok(a.s, 'send-self-message', { Content: 'buy milk' })).MessageId;
  await ok(a.s, 'edit-message', { ChatId: a.userId, MessageId: note, Content: 'buy oat milk' });
  await ok(a2, 'react', { ChatId: a.userId, MessageId: note, Emoji: '✅', On: true });
  let page = (await ok(a.s, 'fetch-self-chat', {})).Messages;
  assert.deepEqual([page[0].Content, typeof page[0].EditedAt, page[0].Reactions], ['buy oat milk', 'string', { '✅': [a.userId] }]);
  await ok(a.s, 'delete-message', { ChatId: a.userId, MessageId: note });
  for (const s of [a.s, a2]) {
    await s.waitFor('message-edited');
    await s.waitFor('reaction');
    assert.deepEqual(await s.waitFor('message-deleted'), { ChatId: a.userId, MessageId: note });
  }
  page = (await ok(a2, 'fetch-self-chat', {})).Messages;
  assert.deepEqual([page[0].Deleted, page[0].Content], [true, '']);
  a.s.close();
  a2.close();
});

test('receipts: mark-delivered and reads with UpTo move pointers forward, coalesced to one receipt a second, in every page', async () => {
  const [a, b, c] = [await person(0), await person(1), await person(0)];
  const g = await group(a, [b, c]);
  const ids = [];
  for (const text of ['one', 'two', 'three']) ids.push((await ok(a.s, 'send-group-message', { GroupId: g, Content: text })).MessageId);

  const receipts = (s) => s.events.filter((e) => e.event === 'receipt').map((e) => e.payload);
  assert.deepEqual(await ok(b.s, 'mark-delivered', { ChatId: g, UpTo: ids[1] }), { success: 1, ChatId: g });
  // The first move is told at once, to the others only.
  const first = await a.s.waitFor('receipt');
  assert.deepEqual(first, { ChatId: g, UserId: b.userId, Delivered: ids[1], Read: null });
  await c.s.waitFor('receipt');
  // Three more moves within the second: one receipt, after it, with the pointers as they end.
  await ok(b.s, 'mark-delivered', { ChatId: g, UpTo: ids[2] });
  await ok(b.s, 'read-group-message', { GroupId: g, UpTo: ids[0] });
  await ok(b.s, 'read-group-message', { GroupId: g, UpTo: ids[1] });
  await quiet(400);
  assert.equal(receipts(a.s).length, 1);
  const last = await a.s.waitFor('receipt', { pred: (r) => r.Read === ids[1], timeoutMs: 3000 });
  assert.deepEqual(last, { ChatId: g, UserId: b.userId, Delivered: ids[2], Read: ids[1] });
  await quiet(1200);
  assert.equal(receipts(a.s).length, 2);
  assert.equal(receipts(c.s).length, 2);
  assert.equal(receipts(b.s).length, 0);

  // Never back: an older UpTo changes nothing and tells nobody.
  await ok(b.s, 'mark-delivered', { ChatId: g, UpTo: ids[0] });
  await ok(b.s, 'read-group-message', { GroupId: g, UpTo: ids[0] });
  await quiet(300);
  assert.equal(receipts(a.s).length, 2);
  const page = await ok(c.s, 'fetch-group-chat', { GroupId: g });
  assert.deepEqual(page.Receipts, {
    [a.userId]: { Delivered: ids[2], Read: ids[2] },
    [b.userId]: { Delivered: ids[2], Read: ids[1] },
    [c.userId]: { Delivered: null, Read: null },
  });
  // A read pulls a lagging delivered pointer along; a read with no UpTo reads everything.
  await ok(c.s, 'read-group-message', { GroupId: g });
  const pulled = (await ok(a.s, 'fetch-group-chat', { GroupId: g })).Receipts[c.userId];
  assert.deepEqual(pulled, { Delivered: ids[2], Read: ids[2] });

  for (const [who, payload, code] of [
    [b, { ChatId: g, UpTo: 'no-such-message' }, 'not_found'],
    [b, { ChatId: g }, 'bad_request'],
    [b, { ChatId: g, UpTo: { $gt: '' } }, 'bad_request'],
  ]) {
    assert.equal((await who.s.request('mark-delivered', payload)).code, code, JSON.stringify(payload));
  }
  const outsider = await person(1);
  assert.equal((await outsider.s.request('mark-delivered', { ChatId: g, UpTo: ids[0] })).code, 'forbidden');
  assert.equal((await b.s.request('read-group-message', { GroupId: g, UpTo: 'nope' })).code, 'not_found');

  // Personal chats and the self chat carry Receipts too.
  const chat = (await ok(a.s, 'create-personal-chat', { Receiver: b.userId })).ChatId;
  const m = (await ok(a.s, 'send-personal-message', { ChatId: chat, Content: 'hi' })).MessageId;
  await ok(b.s, 'read-personal-message', { ChatId: chat, UpTo: m });
  assert.deepEqual((await b.s.waitFor('receipt', { pred: (r) => r.ChatId === chat, timeoutMs: 100 }).catch(() => null)), null);
  assert.deepEqual(await a.s.waitFor('receipt', { pred: (r) => r.ChatId === chat }), { ChatId: chat, UserId: b.userId, Delivered: m, Read: m });
  assert.deepEqual((await ok(a.s, 'fetch-personal-chat', { ChatId: chat })).Receipts[b.userId], { Delivered: m, Read: m });
  const note = (await ok(a.s, 'send-self-message', { Content: 'n' })).MessageId;
  assert.deepEqual((await ok(a.s, 'fetch-self-chat', {})).Receipts, { [a.userId]: { Delivered: note, Read: note } });
  for (const p of [a, b, c, outsider]) p.s.close();
});
