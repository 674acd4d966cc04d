// docs/api.md "Search", through the real binary with socket.io-client: `search-messages` finds
// every word (whole, case-insensitively, the last one as a prefix too) in the chats the caller is
// a member of now, newest first, edited text as edited and deleted messages never; pages follow
// `Next`; refusals are typed. In the topology the search goes to the other gateway than the
// writes, so it also shows that a search reflects every acknowledged change.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { verifiedUser, connected, startShared, stopShared, TOPOLOGY } from '../lib/harness.mjs';

const SEARCHES_PER_HOUR = 40;
let mail, server;
before(async () => ({ mail, server } = await startShared({ env: { SEARCH_RATE_LIMIT: `${SEARCHES_PER_HOUR}/hour` } })));
after(() => stopShared({ mail, server }));

/** A verified user with a socket on gateway 0 (`s`, for writes) and one on gateway 1 (`q`, for searches). */
async function person() {
  const user = await verifiedUser(server, mail);
  user.s = await connected(TOPOLOGY ? server.at(0) : server, user);
  user.q = await connected(TOPOLOGY ? server.at(1) : server, user);
  return user;
}

const close = (...people) => people.forEach((p) => { p.s.close(); p.q.close(); });

const ok = async (socket, event, payload) => {
  const ack = await socket.request(event, payload);
  assert.equal(ack.success, 1, `${event}: ${JSON.stringify(ack)}`);
  return ack;
};

const search = (p, payload) => ok(p.q, 'search-messages', payload);
const texts = async (p, Query, extra = {}) => (await search(p, { Query, ...extra })).Results.map((r) => r.Content);

test('every word, whole, the last one as a prefix too, newest first, in the caller\'s chats only', async () => {
  const [a, b, c] = [await person(), await person(), await person()];
  const ab = (await ok(a.s, 'create-personal-chat', { Receiver: b.userId })).ChatId;
  const bc = (await ok(b.s, 'create-personal-chat', { Receiver: c.userId })).ChatId;
  const g = (await ok(b.s, 'create-group-chat', { Name: 'Trip', Description: '', Participants: [a.userId, c.userId] })).GroupId;
  const first = await ok(a.s, 'send-personal-message', { ChatId: ab, Content: 'Planning the quarterly OFFSITE' });
  await ok(b.s, 'send-group-message', { GroupId: g, Content: 'the offsite agenda is ready' });
  await ok(c.s, 'send-personal-message', { ChatId: bc, Content: 'offsite budget, between us' });
  const note = await ok(a.s, 'send-self-message', { Content: 'offsite packing list' });

  const all = await search(a, { Query: 'Offsite' });
  assert.deepEqual(all.Results.map((r) => r.Content), ['offsite packing list', 'the offsite agenda is ready', 'Planning the quarterly OFFSITE']);
  assert.equal(all.HasMore, false);
  assert.equal(all.Next, null);
  assert.deepEqual(Object.keys(all.Results[0]).sort(), ['ChatId', 'Content', 'MessageId', 'SenderId', 'Timestamp']);
  assert.deepEqual([all.Results[0].ChatId, all.Results[0].MessageId, all.Results[0].SenderId], [a.userId, note.MessageId, a.userId]);
  assert.deepEqual([all.Results[2].ChatId, all.Results[2].MessageId, all.Results[2].SenderId], [ab, first.MessageId, a.userId]);
  assert.equal(all.Results[1].ChatId, g);
  assert.match(all.Results[0].Timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  assert.equal((await texts(a, 'off')).length, 3, 'a prefix');
  assert.deepEqual(await texts(a, 'agenda offsite'), ['the offsite agenda is ready']);
  assert.deepEqual(await texts(a, 'agend offsite'), [], 'only the last word is a prefix');
  assert.deepEqual(await texts(a, 'quarterly plan'), ['Planning the quarterly OFFSITE']);
  assert.deepEqual(await texts(a, 'budget'), [], 'not a member of that chat');
  assert.deepEqual(await texts(c, 'budget'), ['offsite budget, between us']);
  assert.deepEqual(await texts(a, 'offsite" OR "budget'), [], 'quotes and operators are only separators');

  // One chat: the caller's; another's is refused as its fetch is.
  assert.deepEqual(await texts(a, 'offsite', { ChatId: g }), ['the offsite agenda is ready']);
  const forbidden = await a.q.request('search-messages', { Query: 'offsite', ChatId: bc });
  assert.deepEqual([forbidden.success, forbidden.code], [0, 'forbidden']);
  const unknown = await a.q.request('search-messages', { Query: 'offsite', ChatId: 'no-such-chat' });
  assert.equal(unknown.code, 'not_found');
  close(a, b, c);
});

test('edited text is found as edited; deleted messages and chats left are not', async () => {
  const [a, b] = [await person(), await person()];
  const g = (await ok(b.s, 'create-group-chat', { Name: 'Club', Description: '', Participants: [a.userId] })).GroupId;
  const edited = (await ok(b.s, 'send-group-message', { GroupId: g, Content: 'meet on monday' })).MessageId;
  const mine = (await ok(a.s, 'send-group-message', { GroupId: g, Content: 'bring the tandem bicycle' })).MessageId;
  assert.deepEqual(await texts(a, 'monday'), ['meet on monday']);

  await ok(b.s, 'edit-message', { ChatId: g, MessageId: edited, Content: 'meet on friday' });
  assert.deepEqual(await texts(a, 'monday'), []);
  const found = await search(a, { Query: 'FRIDAY' });
  assert.deepEqual(found.Results.map((r) => [r.MessageId, r.Content]), [[edited, 'meet on friday']]);

  await ok(a.s, 'delete-message', { ChatId: g, MessageId: mine });
  assert.deepEqual(await texts(a, 'tandem'), []);
  assert.deepEqual(await texts(b, 'bicycle'), []);

  await ok(a.s, 'leave-grp', { GroupId: g });
  assert.deepEqual(await texts(a, 'friday'), [], 'no longer a member');
  assert.deepEqual(await texts(b, 'friday'), ['meet on friday']);
  close(a, b);
});

test('pages: Limit, HasMore and Next as the following Before', async () => {
  const a = await person();
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push((await ok(a.s, 'send-self-message', { Content: `paged note ${i}` })).MessageId);
  await ok(a.s, 'send-self-message', { Content: 'unrelated' });
  const seen = [];
  let Before;
  for (const [size, more] of [[2, true], [2, true], [1, false]]) {
    const page = await search(a, { Query: 'paged note', Limit: 2, ...(Before ? { Before } : {}) });
    assert.deepEqual([page.Results.length, page.HasMore], [size, more]);
    seen.push(...page.Results.map((r) => r.MessageId));
    Before = page.Next;
    assert.equal(typeof Before === 'string', more);
  }
  assert.deepEqual(seen, [...sent].reverse(), 'each once, newest first');
  assert.equal((await search(a, { Query: 'paged' })).Results.length, 5, 'Limit defaults to 20');
  assert.equal((await search(a, { Query: 'paged', Limit: 1000 })).Results.length, 5, 'a large Limit is capped');
  close(a);
});

test('refusals are typed and change nothing; without a callback they come as request-failed', async () => {
  const a = await person();
  for (const payload of [
    { Query: '' },
    { Query: '   ' },
    { Query: '?! … "*" :* & |' },
    { Query: 42 },
    {},
    { Query: 'x', Before: 'not a cursor' },
    { Query: 'x', Before: 17 },
    { Query: 'x', Limit: 0 },
    { Query: 'x', Limit: 'ten' },
    { Query: 'x', ChatId: { $ne: '' } },
    { Query: 'x'.repeat(300) },
    'just a string',
  ]) {
    const refused = await a.q.request('search-messages', payload);
    assert.deepEqual([refused.success, refused.code], [-1, 'bad_request'], JSON.stringify(payload));
  }
  const mark = a.q.events.length;
  a.q.emit('search-messages', { Query: '!!!' });
  const failed = await a.q.waitFor('request-failed', { from: mark });
  assert.deepEqual([failed.Event, failed.code], ['search-messages', 'bad_request']);
  close(a);
});

test('searches are limited per user by SEARCH_RATE_LIMIT', async () => {
  const [a, b] = [await person(), await person()];
  for (let i = 0; i < SEARCHES_PER_HOUR; i++) await search(a, { Query: 'anything' });
  const refused = await a.q.request('search-messages', { Query: 'anything' });
  assert.equal(refused.code, 'rate_limited');
  // Another user's budget is their own.
  await search(b, { Query: 'anything' });
  close(a, b);
});
