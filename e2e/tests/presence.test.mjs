// docs/api.md "Typing" and "Presence", through the real binary with socket.io-client: typing to
// the chat's other members (across both gateways in the topology), its end by itself and with the
// last socket, the rate; `presence` on connect, `presence-changed` after the grace and never for a
// quick reconnect, last seen kept, `set-presence`; and in the topology a user on two gateways.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { verifiedUser, connected, quiet, startShared, stopShared, TOPOLOGY } from '../lib/harness.mjs';

// The grace after a user's last socket leaves (docs/api.md, "Presence"), and a margin past it.
const GRACE_MS = 5000;
const PAST_GRACE_MS = GRACE_MS + 2500;
let mail, server;
before(async () => ({ mail, server } = await startShared()));
after(() => stopShared({ mail, server }));

const at = (i) => (TOPOLOGY ? server.at(i) : server);

/** A verified user with one connected socket on gateway `i` (the topology has two). */
async function person(i = 0) {
  const user = await verifiedUser(server, mail);
  user.s = await connected(at(i), user);
  return user;
}

const ok = async (socket, event, payload) => {
  const ack = await socket.request(event, payload);
  assert.equal(ack.success, 1, `${event}: ${JSON.stringify(ack)}`);
  return ack;
};

const chatOf = async (a, b) => (await ok(a.s, 'create-personal-chat', { Receiver: b.userId })).ChatId;

const changesOf = (socket, user) =>
  socket.events.filter((e) => e.event === 'presence-changed' && e.payload.UserId === user.userId).map((e) => e.payload);

const typingOf = (socket) => socket.events.filter((e) => e.event === 'typing').map((e) => e.payload);

const isoTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('typing reaches the other members only, and stops when said', async () => {
  const [a, b, c] = [await person(0), await person(1), await person(0)];
  const chat = await chatOf(a, b);
  const group = (await ok(a.s, 'create-group-chat', { Name: 'T', Description: '', Participants: [b.userId, c.userId] })).GroupId;

  assert.deepEqual(await a.s.request('typing', { ChatId: chat, Typing: true }), { success: 1 });
  assert.deepEqual(await b.s.waitFor('typing'), { ChatId: chat, UserId: a.userId, Typing: true });
  await ok(a.s, 'typing', { ChatId: chat, Typing: false });
  await b.s.waitFor('typing', { pred: (t) => t.Typing === false });
  await ok(b.s, 'typing', { ChatId: group, Typing: true });
  await a.s.waitFor('typing', { pred: (t) => t.ChatId === group && t.UserId === b.userId });
  await c.s.waitFor('typing', { pred: (t) => t.ChatId === group && t.UserId === b.userId });
  await quiet();
  // The typer's own sockets are told nothing; the personal chat's outsider nothing of it.
  assert.equal(typingOf(a.s).filter((t) => t.UserId === a.userId).length, 0);
  assert.equal(typingOf(b.s).filter((t) => t.UserId === b.userId).length, 0);
  assert.equal(typingOf(c.s).filter((t) => t.ChatId === chat).length, 0);

  // A chat the caller is not a member of, one that does not exist, malformed payloads: refused.
  assert.equal((await c.s.request('typing', { ChatId: chat, Typing: true })).code, 'forbidden');
  assert.equal((await c.s.request('typing', { ChatId: 'no-such-chat', Typing: true })).code, 'not_found');
  for (const payload of [{ ChatId: chat }, { ChatId: chat, Typing: 'yes' }, { Typing: true }, 'typing']) {
    assert.equal((await a.s.request('typing', payload)).code, 'bad_request', JSON.stringify(payload));
  }
  await quiet();
  assert.equal(typingOf(b.s).filter((t) => t.ChatId === chat).length, 2, 'refusals told nothing');
  for (const s of [a.s, b.s, c.s]) s.disconnect();
});

test('beyond two a second per socket and chat, typing is acknowledged and dropped', async () => {
  const [a, b] = [await person(0), await person(1)];
  const chat = await chatOf(a, b);
  const acks = await Promise.all(
    [true, false, true, false, true].map((typing) => a.s.request('typing', { ChatId: chat, Typing: typing })),
  );
  assert.deepEqual(acks, Array(5).fill({ success: 1 }));
  await b.s.waitFor('typing', { pred: (t) => t.Typing === false });
  await quiet(600);
  // The first two were told; the three after them within the second were not.
  assert.deepEqual(typingOf(b.s).map((t) => t.Typing), [true, false]);
  a.s.disconnect();
  b.s.disconnect();
});

test('typing not renewed ends by itself, and ends when the typer\'s last socket leaves', async () => {
  const [a, b] = [await person(0), await person(1)];
  const chat = await chatOf(a, b);
  await ok(a.s, 'typing', { ChatId: chat, Typing: true });
  await b.s.waitFor('typing', { pred: (t) => t.Typing });
  // Nothing more from `a`: the server ends it.
  assert.deepEqual(await b.s.waitFor('typing', { pred: (t) => !t.Typing, timeoutMs: 15000 }), {
    ChatId: chat,
    UserId: a.userId,
    Typing: false,
  });

  const second = await connected(at(1), a);
  const from = b.s.events.length;
  await ok(a.s, 'typing', { ChatId: chat, Typing: true });
  await b.s.waitFor('typing', { from, pred: (t) => t.Typing });
  second.disconnect();
  a.s.disconnect();
  await b.s.waitFor('typing', { from, pred: (t) => !t.Typing });
  b.s.disconnect();
});

test('presence on connect lists contacts after the chat lists; changes wait out the grace', async () => {
  const [a, b] = [await person(0), await person(1)];
  const stranger = await person(1);
  await chatOf(a, b);

  const again = await connected(at(0), a);
  const list = await again.waitFor('presence');
  const names = again.names();
  assert.ok(names.indexOf('presence') > names.indexOf('group-chat-list'), names.join(','));
  assert.deepEqual(list, { Users: [{ UserId: b.userId, Online: true, LastSeen: null }] });
  again.disconnect();

  // A quick reconnect is invisible: no presence-changed at all.
  b.s.disconnect();
  b.s = await connected(at(0), b);
  await quiet(PAST_GRACE_MS);
  assert.deepEqual(changesOf(a.s, b), []);

  // A disconnect beyond the grace: offline, with when.
  b.s.disconnect();
  const offline = await a.s.waitFor('presence-changed', { pred: (p) => p.UserId === b.userId, timeoutMs: 20000 });
  assert.equal(offline.Online, false);
  assert.match(offline.LastSeen, isoTime);
  assert.equal(changesOf(stranger.s, b).length, 0, 'not a contact');

  // Kept: a new socket is told when they were last seen; their return is told.
  const later = await connected(at(1), a);
  const seen = (await later.waitFor('presence')).Users.find((u) => u.UserId === b.userId);
  assert.deepEqual(seen, { UserId: b.userId, Online: false, LastSeen: offline.LastSeen });
  b.s = await connected(at(1), b);
  assert.deepEqual(await later.waitFor('presence-changed', { pred: (p) => p.UserId === b.userId }), {
    UserId: b.userId,
    Online: true,
    LastSeen: null,
  });
  await quiet();
  assert.equal(changesOf(a.s, b).length, 2, 'one offline, one online');
  for (const s of [a.s, b.s, later, stranger.s]) s.disconnect();
});

test('contacts made while both are online see each other at once', async () => {
  const [a, b, c] = [await person(0), await person(1), await person(0)];
  const listed = (socket, user) => (p) => p.Users.some((u) => u.UserId === user.userId && u.Online);

  // A personal chat: both get their list again, now with the other online.
  await chatOf(a, b);
  await a.s.waitFor('presence', { pred: listed(a.s, b) });
  await b.s.waitFor('presence', { pred: listed(b.s, a) });

  // A group: every member gets their list again.
  const group = (await ok(a.s, 'create-group-chat', { Name: 'P', Description: '', Participants: [c.userId] })).GroupId;
  await c.s.waitFor('presence', { pred: listed(c.s, a) });

  // A member added: they get their list, the members before them one presence-changed each.
  const d = await person(1);
  await ok(a.s, 'add-member', { GroupId: group, Member: d.userId });
  const list = await d.s.waitFor('presence', { pred: (p) => p.Users.length === 2 });
  assert.deepEqual(
    list.Users.map((u) => [u.UserId, u.Online]).sort(),
    [[a.userId, true], [c.userId, true]].sort(),
  );
  for (const member of [a, c]) {
    assert.deepEqual(await member.s.waitFor('presence-changed', { pred: (p) => p.UserId === d.userId }), {
      UserId: d.userId,
      Online: true,
      LastSeen: null,
    });
  }
  await quiet();
  assert.equal(changesOf(b.s, d).length, 0, 'not a contact');
  assert.equal(changesOf(d.s, d).length, 0, 'not told of themselves');
  for (const s of [a.s, b.s, c.s, d.s]) s.disconnect();
});

test('set-presence hides the caller from their contacts until they show again', async () => {
  const [a, b] = [await person(0), await person(1)];
  const group = (await ok(a.s, 'create-group-chat', { Name: 'G', Description: '', Participants: [b.userId] })).GroupId;
  assert.ok(group);

  assert.deepEqual(await b.s.request('set-presence', { Visible: false }), { success: 1 });
  assert.deepEqual(await a.s.waitFor('presence-changed', { pred: (p) => p.UserId === b.userId }), {
    UserId: b.userId,
    Online: false,
    LastSeen: null,
  });
  const fresh = await connected(at(0), a);
  assert.deepEqual((await fresh.waitFor('presence')).Users, [{ UserId: b.userId, Online: false, LastSeen: null }]);

  // Hidden, their comings and goings are not told.
  const second = await connected(at(0), b);
  b.s.disconnect();
  second.disconnect();
  await quiet(PAST_GRACE_MS);
  assert.equal(changesOf(a.s, b).length, 1);

  b.s = await connected(at(1), b);
  await ok(b.s, 'set-presence', { Visible: true });
  assert.deepEqual(await a.s.waitFor('presence-changed', { pred: (p) => p.UserId === b.userId && p.Online }), {
    UserId: b.userId,
    Online: true,
    LastSeen: null,
  });
  for (const payload of [{}, { Visible: 'no' }, null]) {
    assert.equal((await b.s.request('set-presence', payload)).code, 'bad_request', JSON.stringify(payload));
  }
  for (const s of [a.s, b.s, fresh]) s.disconnect();
});

test('a user with sockets on two gateways is online until the last of them leaves', async () => {
  const [a, b] = [await person(0), await person(0)];
  await chatOf(a, b);
  const elsewhere = await connected(at(1), b);
  const list = await (await connected(at(1), a)).waitFor('presence');
  assert.deepEqual(list.Users, [{ UserId: b.userId, Online: true, LastSeen: null }]);

  // One gateway lets go of `b`, past the grace: still online through the other.
  b.s.disconnect();
  await quiet(PAST_GRACE_MS);
  assert.deepEqual(changesOf(a.s, b), []);
  elsewhere.disconnect();
  const offline = await a.s.waitFor('presence-changed', { pred: (p) => p.UserId === b.userId, timeoutMs: 20000 });
  assert.equal(offline.Online, false);
  assert.match(offline.LastSeen, isoTime);
  a.s.disconnect();
});
