// Per-user and per-address limits (docs/security.md): sockets at once, chat creations, user
// searches, member additions. Going over is `rate_limited`, never a crash or a silent drop. Each
// limit counts per gateway process, so in the topology every test talks to one gateway.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startShared, stopShared, verifiedUser, login, connected, socketFor, quiet } from '../lib/harness.mjs';

let shared;
let server;

before(async () => {
  shared = await startShared({
    env: {
      SOCKETS_PER_USER: '2',
      SOCKETS_PER_ADDRESS: '5',
      SEARCH_RATE_LIMIT: '3/min',
      CREATE_RATE_LIMIT: '2/min',
      ADD_MEMBER_RATE_LIMIT: '1/min',
    },
  });
  server = shared.server.at(0);
});

after(async () => {
  await stopShared(shared);
});

async function person() {
  const user = await verifiedUser(server, shared.mail);
  return { ...user, s: await connected(server, user) };
}

test("a user's sockets past SOCKETS_PER_USER are refused rate_limited, and a closed one frees a place", async () => {
  const a = await person();
  const second = await connected(server, await login(server, a));
  const third = socketFor(server, { auth: { accessToken: a.accessToken } });
  const refused = await third.waitFor('request-failed');
  assert.deepEqual([refused.Event, refused.code], ['connect', 'rate_limited']);
  await third.waitFor('disconnect');
  assert.ok(!third.names().includes('group-chat-list'), 'no lists for a refused socket');
  assert.equal((await a.s.request('fetch-user-details', {})).success, 1, 'the others carry on');

  second.close();
  await quiet(300);
  const again = await connected(server, a);
  assert.equal((await again.request('fetch-user-details', {})).success, 1);
  for (const s of [a.s, again, third]) s.close();
});

test('one address past SOCKETS_PER_ADDRESS is refused, whoever the user', async () => {
  const open = [];
  try {
    const people = [];
    for (let i = 0; i < 3; i += 1) {
      people.push(await person());
      open.push(people[i].s);
    }
    for (const p of people.slice(0, 2)) open.push(await connected(server, await login(server, p)));
    // Five sockets from this address are open: the sixth is one too many.
    const over = socketFor(server, { auth: { accessToken: people[2].accessToken } });
    open.push(over);
    const refused = await over.waitFor('request-failed');
    assert.deepEqual([refused.Event, refused.code], ['connect', 'rate_limited']);
    assert.match(refused.message, /address/);
  } finally {
    for (const s of open) s.close();
    await quiet(300);
  }
});

test('searches past SEARCH_RATE_LIMIT are refused rate_limited', async () => {
  const a = await person();
  for (let i = 0; i < 3; i += 1) {
    assert.equal((await a.s.request('search-user', { Name: 'zz', Type: 'Search' })).success, 1);
  }
  const refused = await a.s.request('search-user', { Name: 'zz', Type: 'Search' });
  assert.deepEqual([refused.success, refused.code], [-1, 'rate_limited']);
  // A malformed search costs nothing and says what is wrong.
  assert.equal((await a.s.request('search-user', { Name: 5, Type: 'Search' })).code, 'bad_request');
  a.s.close();
});

test('chat creations past CREATE_RATE_LIMIT and additions past ADD_MEMBER_RATE_LIMIT are refused, and nothing is made', async () => {
  const a = await person();
  const b = await person();
  const c = await person();
  const first = await a.s.request('create-group-chat', { Name: 'one', Description: '', Participants: [] });
  assert.equal(first.success, 1);
  assert.equal((await a.s.request('create-personal-chat', { Receiver: b.userId })).success, 1);
  const third = await a.s.request('create-group-chat', { Name: 'three', Description: '', Participants: [] });
  assert.equal(third.code, 'rate_limited');
  const lists = await (await connected(server, await login(server, a))).waitFor('group-chat-list');
  assert.deepEqual(lists.GroupChatList.map((g) => g.Name), ['one']);

  assert.equal((await a.s.request('add-member', { GroupId: first.GroupId, Member: b.userId })).success, 1);
  const added = await a.s.request('add-member', { GroupId: first.GroupId, Member: c.userId });
  assert.equal(added.code, 'rate_limited');
  assert.equal(typeof (await a.s.waitFor('add-member-fail')).Message, 'string', "the original's failure event too");
  const page = await a.s.request('fetch-group-chat', { GroupId: first.GroupId });
  assert.deepEqual(Object.keys(page.Participants).sort(), [a.userId, b.userId].sort());
  for (const p of [a, b, c]) p.s.close();
});
