// docs/api.md "Catch-up": `Seq` on every delivery of stored state, and `sync` answering exactly what
// a user's sockets got after a `Seq`, through the real binary with socket.io-client, across both
// gateways in the topology. The main test is a property: random interleavings of sends, reads,
// edits, deletions, reactions, kicks, leaves, re-adds and a group's deletion, after which `sync`
// from any point equals what a socket connected all along received from that point.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { verifiedUser, connected, startShared, stopShared, TOPOLOGY } from '../lib/harness.mjs';

let mail, server;
before(async () => ({ mail, server } = await startShared()));
after(() => stopShared({ mail, server }));

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

/** A small seeded generator, so a failing interleaving can be run again (SYNC_SEED). */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every page of `sync` after `since`, as `[{Event, Data}]`, and the last `Seq`. */
async function syncAll(socket, since, limit = 7) {
  const events = [];
  let seq = since;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await ok(socket, 'sync', { Since: seq, Limit: limit });
    events.push(...page.Events);
    assert.equal(typeof page.Seq, 'string');
    seq = page.Seq;
    if (!page.HasMore) return { events, seq };
  }
  throw new Error('sync never ended');
}

/** The deliveries a socket recorded, which carry a Seq (answers to its own requests do not), as `sync` returns them. */
const deliveries = (socket) => socket.events.filter((e) => e.seq !== undefined).map((e) => ({ Event: e.event, Data: { ...e.payload, Seq: e.seq } }));

/**
 * A `receipt` tells pointers as they are when it is told: compared by its last word per member and
 * chat, in the chats the user is still a member of (`sync` tells no pointers of chats they left).
 */
const withoutReceipts = (list) => list.filter((e) => e.Event !== 'receipt');
function lastReceipts(list, chats) {
  const last = new Map();
  for (const e of list) {
    if (e.Event === 'receipt' && chats.includes(e.Data.ChatId)) last.set(`${e.Data.ChatId} ${e.Data.UserId}`, { Delivered: e.Data.Delivered, Read: e.Data.Read });
  }
  return Object.fromEntries([...last].sort());
}

test('sync after any point equals what a socket connected all along received', async () => {
  const seed = Number(process.env.SYNC_SEED ?? Date.now() % 100000);
  const rnd = random(seed);
  const pick = (list) => list[Math.floor(rnd() * list.length)];
  // W is watched: `watch` only listens (on the other gateway in the topology), `w.s` acts.
  const [w, b, c] = [await person(0), await person(1), await person(0)];
  const watch = await connected(TOPOLOGY ? server.at(1) : server, w);
  const start = (await ok(watch, 'sync', {})).Seq;
  assert.match(start, /^\d+$/);

  const personal = (await ok(w.s, 'create-personal-chat', { Receiver: b.userId })).ChatId;
  const create = async (admin, members) =>
    (await ok(admin.s, 'create-group-chat', { Name: `g${seed}`, Description: '', Participants: members.map((m) => m.userId) })).GroupId;
  const mine = await create(w, [b, c]); // W is its admin
  const theirs = await create(b, [w, c]); // B kicks W out of it and adds W back
  const left = await create(c, [w, b]); // W leaves it and C adds W back
  const chats = { [personal]: { kind: 'personal', members: [w, b] }, [mine]: { kind: 'group', members: [w, b, c] }, [theirs]: { kind: 'group', members: [b, w, c] }, [left]: { kind: 'group', members: [c, w, b] } };
  const sent = []; // [chatId, messageId, sender]
  let theirsDeleted = false;

  const has = (chat, p) => chats[chat].members.includes(p);
  const ops = [
    async () => {
      const chat = pick(Object.keys(chats).filter((id) => !(id === theirs && theirsDeleted)));
      const sender = pick(chats[chat].members);
      const personalChat = chats[chat].kind === 'personal';
      const ack = await sender.s.request(personalChat ? 'send-personal-message' : 'send-group-message', personalChat ? { ChatId: chat, Content: `m${sent.length}` } : { GroupId: chat, Content: `m${sent.length}` });
      if (ack.success === 1) sent.push([chat, ack.MessageId, sender]);
    },
    async () => {
      const chat = pick(Object.keys(chats));
      const reader = pick(chats[chat].members);
      const personalChat = chats[chat].kind === 'personal';
      await reader.s.request(personalChat ? 'read-personal-message' : 'read-group-message', personalChat ? { ChatId: chat } : { GroupId: chat });
    },
    async () => {
      if (!sent.length) return;
      const [chat, id, sender] = pick(sent);
      await sender.s.request('mark-delivered', { ChatId: chat, UpTo: id });
      const other = pick(chats[chat].members);
      await other.s.request('mark-delivered', { ChatId: chat, UpTo: id });
    },
    async () => {
      if (!sent.length) return;
      const [chat, id, sender] = pick(sent);
      await sender.s.request('edit-message', { ChatId: chat, MessageId: id, Content: `edited ${rnd()}` });
    },
    async () => {
      if (!sent.length) return;
      const [chat, id, sender] = pick(sent);
      await sender.s.request('delete-message', { ChatId: chat, MessageId: id });
    },
    async () => {
      if (!sent.length) return;
      const [chat, id] = pick(sent);
      const who = pick([w, b, c].filter((p) => has(chat, p)));
      if (who) await who.s.request('react', { ChatId: chat, MessageId: id, Emoji: pick(['👍', '🎉', '😀']), On: rnd() < 0.7 });
    },
    async () => {
      if (theirsDeleted) return;
      if (has(theirs, w)) {
        if ((await b.s.request('kickout', { GroupId: theirs, Member: w.userId })).success === 1) chats[theirs].members = [b, c];
      } else if ((await b.s.request('add-member', { GroupId: theirs, Member: w.userId })).success === 1) chats[theirs].members = [b, c, w];
    },
    async () => {
      if (has(left, w)) {
        if ((await w.s.request('leave-grp', { GroupId: left })).success === 1) chats[left].members = [c, b];
      } else if ((await c.s.request('add-member', { GroupId: left, Member: w.userId })).success === 1) chats[left].members = [c, b, w];
    },
  ];
  for (let i = 0; i < 70; i++) await pick(ops)();
  // The group's end, then a last message for everyone to wait on.
  await ok(b.s, 'delete-grp', { GroupId: theirs });
  theirsDeleted = true;
  await ok(b.s, 'send-group-message', { GroupId: theirs, Content: 'too late' }).catch(() => {});
  const last = await ok(b.s, 'send-personal-message', { ChatId: personal, Content: 'the end' });
  await watch.waitFor('receive-personal-message', { pred: (m) => m.MessageId === last.MessageId });
  // Coalesced receipts land within a second of the last move.
  await new Promise((r) => setTimeout(r, 1500));

  const live = deliveries(watch);
  const liveSeqs = withoutReceipts(live).map((e) => BigInt(e.Data.Seq));
  for (let i = 1; i < liveSeqs.length; i++) assert.ok(liveSeqs[i - 1] < liveSeqs[i], `Seq not increasing at ${i} (seed ${seed})`);

  const all = await syncAll(w.s, start);
  assert.deepEqual(withoutReceipts(all.events), withoutReceipts(live), `seed ${seed}`);
  const current = Object.keys(chats).filter((id) => has(id, w) && !(id === theirs && theirsDeleted));
  // Sync tells every member and chat live told, with the pointers as the pages have them now (a
  // send moves the sender's own pointers without a receipt, so the last live one may be older).
  const synced = lastReceipts(all.events, current);
  assert.deepEqual(Object.keys(synced), Object.keys(lastReceipts(live, current)), `seed ${seed}`);
  for (const id of current) {
    const page = chats[id].kind === 'personal' ? await ok(w.s, 'fetch-personal-chat', { ChatId: id }) : await ok(w.s, 'fetch-group-chat', { GroupId: id });
    for (const [user, pointers] of Object.entries(page.Receipts)) {
      const told = synced[`${id} ${user}`];
      if (told) assert.deepEqual(told, { Delivered: pointers.Delivered, Read: pointers.Read }, `seed ${seed}`);
    }
  }
  const told = new Set(all.events.filter((e) => e.Event === 'receipt').map((e) => e.Data.ChatId));
  assert.deepEqual([...told].filter((id) => !current.includes(id)), [], 'receipts of chats W left');
  // Nothing of the deleted group after its deletion; W got its deletion only while a member.
  const afterDeletion = all.events.filter((e) => (e.Data.ChatId ?? e.Data.GroupId) === theirs && e.Data.Content === 'too late');
  assert.deepEqual(afterDeletion, []);

  // From a point in the middle (a device that saw the first part): the rest, exactly.
  const kept = withoutReceipts(live);
  if (kept.length > 2) {
    const cut = Math.floor(kept.length / 2);
    const rest = await syncAll(w.s, kept[cut - 1].Data.Seq, 500);
    assert.deepEqual(withoutReceipts(rest.events), kept.slice(cut), `seed ${seed}`);
  }
  // Caught up: nothing more, and the same Seq again.
  const none = await ok(w.s, 'sync', { Since: all.seq });
  assert.deepEqual([none.Events, none.HasMore], [[], false]);
  for (const s of [watch, w.s, b.s, c.s]) s.close();
});

test('a member removed gets everything up to the removal and nothing after it', async () => {
  const [admin, x] = [await person(0), await person(1)];
  const start = (await ok(x.s, 'sync', {})).Seq;
  const g = (await ok(admin.s, 'create-group-chat', { Name: 'Kick', Description: '', Participants: [x.userId] })).GroupId;
  const before = await ok(admin.s, 'send-group-message', { GroupId: g, Content: 'before' });
  await ok(admin.s, 'kickout', { GroupId: g, Member: x.userId });
  await ok(admin.s, 'send-group-message', { GroupId: g, Content: 'after' });
  await ok(admin.s, 'add-member', { GroupId: g, Member: x.userId });
  const again = await ok(admin.s, 'send-group-message', { GroupId: g, Content: 'again' });
  const { events } = await syncAll(x.s, start, 500);
  assert.deepEqual(
    events.map((e) => [e.Event, e.Data.Content ?? null]),
    [
      ['create-group-chat-receiver', null],
      ['receive-group-message', 'before'],
      ['kicked-out', null],
      ['new-grp-added', null],
      ['receive-group-message', 'again'],
    ],
  );
  // A page that holds exactly what is there says there is no more; one short of it says there is.
  const exact = await ok(x.s, 'sync', { Since: start, Limit: 5 });
  assert.deepEqual([exact.Events.length, exact.HasMore], [5, false]);
  const short = await ok(x.s, 'sync', { Since: start, Limit: 4 });
  assert.deepEqual([short.Events.length, short.HasMore], [4, true]);
  assert.equal(events[1].Data.MessageId, before.MessageId);
  assert.equal(events[4].Data.MessageId, again.MessageId);
  admin.s.close();
  x.s.close();
});

test('sync {} answers where now is; malformed and unknown points are refused and change nothing', async () => {
  const a = await person(0);
  const now = await ok(a.s, 'sync', {});
  assert.deepEqual([now.Events, now.HasMore], [[], false]);
  assert.match(now.Seq, /^\d+$/);
  for (const [payload, code] of [
    [{ Since: 'abc' }, 'bad_request'],
    [{ Since: { $gt: 0 } }, 'bad_request'],
    [{ Since: now.Seq, Limit: 0 }, 'bad_request'],
    [{ Since: now.Seq, Limit: 1001 }, 'bad_request'],
    [{ Since: '999999999999999999' }, 'gone'],
  ]) {
    const refused = await a.s.request('sync', payload);
    assert.equal(refused.code, code, JSON.stringify(payload));
    assert.notEqual(refused.success, 1);
  }
  a.s.close();
});
