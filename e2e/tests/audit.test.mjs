// Issue "audit": the history of a group and of a user over HTTP, from the event store, behind
// AUDIT_TOKEN; and the same history from the command line (projection-service audit).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { startServer, startShared, stopShared, verifiedUser, connected, TOPOLOGY } from '../lib/harness.mjs';

const TOKEN = 'audit-token-for-the-e2e-suite-0123456789';
let mail, server;
before(async () => ({ mail, server } = await startShared({ env: { AUDIT_TOKEN: TOKEN } })));
after(() => stopShared({ mail, server }));

const bearer = (token) => ({ authorization: `Bearer ${token}` });
const audit = (path, token = TOKEN) => server.get(path, bearer(token));

/** A group lived and died: created, talked in, read, a member kicked, the admin handed over, the
 * old admin left, the new admin deleted it. Returns the people and the group id. */
async function groupLife() {
  const [a, b, c] = [await verifiedUser(server, mail), await verifiedUser(server, mail), await verifiedUser(server, mail)];
  for (const p of [a, b, c]) p.s = await connected(server, p);
  const g = (await a.s.request('create-group-chat', { Name: 'Audited', Description: 'life', Participants: [b.userId, c.userId] })).GroupId;
  assert.ok(g);
  const ok = async (socket, event, payload) => assert.equal((await socket.request(event, payload)).success, 1, event);
  await ok(a.s, 'send-group-message', { GroupId: g, Content: 'hello' });
  await ok(b.s, 'send-group-message', { GroupId: g, Content: 'hi' });
  await ok(c.s, 'read-group-message', { GroupId: g });
  await ok(a.s, 'kickout', { GroupId: g, Member: b.userId });
  await ok(a.s, 'change-admin', { GroupId: g, Member: c.userId });
  await ok(a.s, 'leave-grp', { GroupId: g });
  await ok(c.s, 'delete-grp', { GroupId: g });
  for (const p of [a, b, c]) p.s.close();
  return { a, b, c, g };
}

test('the audit of a group shows its whole life in order, with actors, even after its deletion', async () => {
  const { a, b, c, g } = await groupLife();
  const r = await audit(`/audit/chats/${g}/events`);
  assert.equal(r.status, 200, r.text);
  const life = r.body.events.map((e) => [e.type, e.actor]);
  assert.deepEqual(life, [
    ['GroupCreated', a.userId],
    ['MessageSent', a.userId],
    ['MessageSent', b.userId],
    ['MessageRead', c.userId],
    ['MemberRemoved', a.userId],
    ['AdminChanged', a.userId],
    ['MemberRemoved', a.userId],
    ['GroupDeleted', c.userId],
  ]);
  assert.equal(r.body.next, null);
  const [created, hello, , , kicked, handed, left] = r.body.events;
  assert.deepEqual(created.data.members.sort(), [a.userId, b.userId, c.userId].sort());
  assert.deepEqual([hello.data.content, hello.data.format], ['hello', 'text']);
  assert.deepEqual([kicked.data.member, kicked.data.reason], [b.userId, 'kicked']);
  assert.deepEqual([handed.data.from, handed.data.to], [a.userId, c.userId]);
  assert.deepEqual([left.data.member, left.data.reason], [a.userId, 'left']);
  for (const e of r.body.events) {
    assert.equal(e.stream, `chat-${g}`);
    assert.ok(!Number.isNaN(Date.parse(e.occurredAt)) && e.occurredAt.endsWith('Z'));
    assert.match(e.correlationId, /^[0-9a-f-]{36}$/);
  }
  const positions = r.body.events.map((e) => e.position);
  assert.deepEqual([...positions].sort((x, y) => x - y), positions);
  assert.deepEqual(r.body.events.map((e) => e.version), [0, 1, 2, 3, 4, 5, 6, 7]);

  // Pages of 3 walk the same history; `type`, `since` and `until` filter it.
  const walked = [];
  let next = 0;
  do {
    const page = await audit(`/audit/chats/${g}/events?after=${next}&limit=3`);
    walked.push(...page.body.events);
    next = page.body.next;
  } while (next !== null);
  assert.deepEqual(walked.map((e) => e.position), positions);
  const sent = await audit(`/audit/chats/${g}/events?type=MessageSent`);
  assert.deepEqual(sent.body.events.map((e) => e.data.content), ['hello', 'hi']);
  const since = encodeURIComponent(r.body.events[4].occurredAt);
  const late = await audit(`/audit/chats/${g}/events?since=${since}`);
  assert.ok(late.body.events.every((e) => Date.parse(e.occurredAt) >= Date.parse(r.body.events[4].occurredAt)));
  assert.ok(late.body.events.some((e) => e.type === 'GroupDeleted'));
  const until = await audit(`/audit/chats/${g}/events?until=${encodeURIComponent('2000-01-01T00:00:00Z')}`);
  assert.deepEqual(until.body.events, []);

  // A user's audit: every event they acted in, across chats.
  const byB = await audit(`/audit/users/${b.userId}/events`);
  assert.equal(byB.status, 200);
  assert.deepEqual(byB.body.events.filter((e) => e.stream === `chat-${g}`).map((e) => e.type), ['MessageSent']);
  assert.ok(byB.body.events.every((e) => e.actor === b.userId));
});

test('bad parameters are 400 and change nothing', async () => {
  for (const q of ['limit=0', 'limit=1001', 'after=-1', 'since=yesterday', 'type=no%20such', 'since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z']) {
    const r = await audit(`/audit/users/someone/events?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.body.success, -1);
  }
});

test('auditor routes refuse missing and wrong tokens, and a chat member\'s token', async () => {
  const member = await verifiedUser(server, mail);
  const path = `/audit/users/${member.userId}/events`;
  assert.equal((await server.get(path)).status, 401);
  assert.equal((await audit(path, 'not-the-token-at-all-0000000000')).status, 401);
  assert.equal((await audit(path, TOKEN.slice(0, -1))).status, 401);
  assert.equal((await audit(path, member.accessToken)).status, 401);
  assert.equal((await server.get(path, { authorization: TOKEN })).status, 401);
  assert.equal((await audit(path)).status, 200);
});

test('without AUDIT_TOKEN the audit routes do not exist', async () => {
  const plain = await startServer({ mail });
  try {
    const r = await plain.get('/audit/users/anyone/events', bearer(TOKEN));
    assert.equal(r.status, 404);
  } finally {
    await plain.stop();
  }
});

test('the command line prints the same history, as JSON lines and as a table', async () => {
  const { a, g } = await groupLife();
  const http = (await audit(`/audit/chats/${g}/events?limit=1000`)).body.events;
  const bins = TOPOLOGY ? resolve(process.env.TOPOLOGY_BIN_DIR ?? 'target/debug') : resolve(process.env.SERVER_BIN, '..');
  const storeUrl = TOPOLOGY
    ? /EVENT_STORE_URL=(.*)/.exec(readFileSync(join(server.dataDir, 'topology.env'), 'utf8'))[1].replace(/^'(.*)'$/, '$1')
    : `sqlite://${join(server.dataDir, 'events.db')}`;
  const run = (...args) =>
    execFileSync(join(bins, 'projection-service'), ['audit', ...args], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, EVENT_STORE_URL: storeUrl, DATA_DIR: server.dataDir, RUST_LOG: 'warn' },
    });
  const lines = run('--chat', g, '--format', 'jsonl').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines, http);
  const table = run('--chat', g, '--format', 'table');
  assert.match(table, /GroupCreated/);
  assert.match(table, /GroupDeleted/);
  assert.equal(table.trim().split('\n').length, 1 + http.length);
  const mine = run('--user', a.userId, '--type', 'MessageSent', '--format', 'jsonl').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(mine.length >= 1 && mine.every((e) => e.actor === a.userId && e.type === 'MessageSent'));
});

test('a replay of the store this suite produced equals the live read models and is swapped in while serving', async () => {
  const { a, c, g } = await groupLife();
  const bins = TOPOLOGY ? resolve(process.env.TOPOLOGY_BIN_DIR ?? 'target/debug') : resolve(process.env.SERVER_BIN, '..');
  const env = { PATH: process.env.PATH, DATA_DIR: server.dataDir, RUST_LOG: 'warn' };
  if (TOPOLOGY) {
    const text = readFileSync(join(server.dataDir, 'topology.env'), 'utf8');
    for (const key of ['EVENT_STORE_URL', 'DATABASE_URL']) env[key] = new RegExp(`${key}=(.*)`).exec(text)[1].replace(/^'(.*)'$/, '$1');
  }
  const out = execFileSync(join(bins, 'projection-service'), ['replay', '--all'], { encoding: 'utf8', env });
  assert.match(out, /read_models: rebuilt from \d+ events .* swapped in at position \d+; every table matched the live one/);
  // Still serving, from the swapped-in tables, and still projecting new events.
  const s = await connected(server, a);
  const other = (await s.request('create-personal-chat', { Receiver: c.userId }));
  assert.equal(other.success, 1);
  assert.equal((await s.request('send-personal-message', { ChatId: other.ChatId, Content: 'after the replay' })).success, 1);
  const page = await s.request('fetch-personal-chat', { ChatId: other.ChatId, Limit: 5 });
  assert.deepEqual(page.Messages.map((m) => m.Content), ['after the replay']);
  assert.equal((await audit(`/audit/chats/${g}/events`)).body.events.length, 8);
  s.close();
});
