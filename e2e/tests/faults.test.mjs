// Fault tests of the production topology's processes (E2E_TOPOLOGY=1; skipped all-in-one): kill -9
// of the projection-service mid-stream, a projection-service down for longer than the stream keeps
// events, kill -9 and SIGTERM of the command-service with requests in flight, SIGTERM of a gateway
// with requests queued. Its backends going away is tests/outages.test.mjs (a file each, so that
// each stays well within the runner's per-file timeout).
// infra/scripts/topology starts a process that died again, as a process manager would; the tests
// check what clients and the stores see.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MailSink, startServer, login, connected } from '../lib/harness.mjs';
import { skip, identity, pidOf, psql, head, checkpoint, eventually, killAndAwaitRestart, withSupervisorHeld, killAndAwaitGone, pair, pairWithSecondSocket, contents, sendMany, storedContents, assertStoredOnce, terminate, readModels, undisturbedProjection } from '../lib/faults.mjs';

let mail;
before(async () => {
  if (!skip) mail = await new MailSink().start();
});
after(() => mail?.stop());

test('kill -9 of the projection-service mid-stream: read models end identical to an undisturbed run', { skip }, async (t) => {
  const server = await startServer({ mail });
  try {
    const { a, b, chat } = await pair(server, mail);
    const group = await a.s.request('create-group-chat', { Name: 'ops', Description: '', Participants: [b.userId] });
    assert.equal(group.success, 1);
    const a2 = await connected(server.at(1), { accessToken: (await login(server, a)).accessToken });

    let acked = 0;
    const sends = [];
    const track = (p) => p.then((ack) => { acked += 1; return ack; });
    for (let i = 0; i < 150; i++) {
      sends.push(track(a.s.request('send-personal-message', { ChatId: chat, Content: `a${i}` }, 30000)));
      sends.push(track(a2.request('send-group-message', { GroupId: group.GroupId, Content: `g${i}` }, 30000)));
      sends.push(track(b.s.request('send-personal-message', { ChatId: chat, Content: `b${i}` }, 30000)));
      if (i % 25 === 0) sends.push(track(b.s.request('read-personal-message', { ChatId: chat }, 30000)));
    }
    await eventually('a third of the commands acknowledged', () => acked >= sends.length / 3, 30000);
    const { DATABASE_URL, EVENT_STORE_URL } = identity(server);
    const projectedAtKill = await killAndAwaitRestart(server, 'projection-service', () => checkpoint(DATABASE_URL));
    const acks = await Promise.all(sends);
    assert.ok(acks.every((x) => x.success === 1), JSON.stringify(acks.find((x) => x.success !== 1)));

    // Every message reaches the other gateway's sockets, in order.
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'a149', timeoutMs: 30000 });
    await b.s.waitFor('receive-group-message', { pred: (p) => p.Content === 'g149', timeoutMs: 30000 });
    assert.deepEqual(contents(b.s, 'receive-personal-message'), Array.from({ length: 150 }, (_, i) => `a${i}`));
    assert.deepEqual(contents(b.s, 'receive-group-message'), Array.from({ length: 150 }, (_, i) => `g${i}`));

    const target = head(EVENT_STORE_URL);
    assert.ok(projectedAtKill < target, `the kill came after the last event (${projectedAtKill} of ${target})`);
    t.diagnostic(`${projectedAtKill} of ${target} events projected just after the kill`);
    await eventually('the restarted projection caught up', () => checkpoint(DATABASE_URL) >= target);
    const live = readModels(DATABASE_URL);
    const undisturbed = await undisturbedProjection(EVENT_STORE_URL);
    for (const table of Object.keys(live)) assert.equal(live[table], undisturbed[table], `read model ${table} differs`);
    assert.ok(live.messages.split('\n').length >= 450);
    for (const s of [a.s, a2, b.s]) s.close();
  } finally {
    await server.stop();
  }
});

test('a projection-service down while the stream dropped what it had not applied: it reads that from the event store', { skip }, async (t) => {
  // The stream keeps the newest 30 events; the projection misses 120 messages.
  const server = await startServer({ mail, env: { NATS_STREAM_MAX_EVENTS: '30' } });
  try {
    const { a, b, chat } = await pair(server, mail);
    const { DATABASE_URL, EVENT_STORE_URL } = identity(server);
    await eventually('the chat projected', () => checkpoint(DATABASE_URL) >= head(EVENT_STORE_URL));
    // The projection-service stays down while the topology's supervisor is held.
    const projectedAtKill = await withSupervisorHeld(server, async () => {
      await killAndAwaitGone(server, 'projection-service');
      const projected = checkpoint(DATABASE_URL);
      const acks = await Promise.all(Array.from({ length: 120 }, (_, i) =>
        a.s.request('send-personal-message', { ChatId: chat, Content: `m${i}` }, 30000)));
      assert.ok(acks.every((x) => x.success === 1), JSON.stringify(acks.find((x) => x.success !== 1)));
      return projected;
    });
    const target = head(EVENT_STORE_URL);
    assert.ok(target - projectedAtKill > 30, `the stream still holds every event after the checkpoint (${projectedAtKill} of ${target})`);
    t.diagnostic(`${projectedAtKill} of ${target} events projected when it went down`);

    await eventually('the restarted projection caught up', () => checkpoint(DATABASE_URL) >= target);
    const log = readFileSync(join(server.dataDir, 'projection-service.log'), 'utf8');
    assert.match(log, /reading them from the event store/);
    // What it read from the store reaches the other gateway's socket like anything else, in order.
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'm119', timeoutMs: 30000 });
    assert.deepEqual(contents(b.s, 'receive-personal-message'), Array.from({ length: 120 }, (_, i) => `m${i}`));
    const live = readModels(DATABASE_URL);
    const undisturbed = await undisturbedProjection(EVENT_STORE_URL);
    for (const table of Object.keys(live)) assert.equal(live[table], undisturbed[table], `read model ${table} differs`);
    for (const s of [a.s, b.s]) s.close();
  } finally {
    await server.stop();
  }
});

test('kill -9 of the command-service with requests in flight: acknowledged once, the rest once or failed', { skip }, async (t) => {
  const server = await startServer({ mail });
  try {
    const { a, a2, b, chat } = await pairWithSecondSocket(server, mail);
    const { sent, answered } = sendMany([a.s, a2], chat, 200);
    await eventually('some commands acknowledged', () => answered() >= 60, 30000);
    const ackedAtKill = await killAndAwaitRestart(server, 'command-service', answered);
    const outcomes = await Promise.all(sent.map(async (s) => ({ ...s, ack: await s.ack })));
    for (const { ack } of outcomes) {
      assert.ok(ack.success === 1 || (ack.success === -1 && ack.code === 'internal'), JSON.stringify(ack));
    }
    const failed = outcomes.filter((o) => o.ack.success !== 1).length;

    // Service resumes: a new message goes through once the new instance is serving.
    await eventually('a send after the restart acknowledged', async () => (await a.s.request('send-personal-message', { ChatId: chat, Content: 'after', ClientId: 'after-1' })).success === 1, 30000);

    const { EVENT_STORE_URL, DATABASE_URL } = identity(server);
    const stored = storedContents(EVENT_STORE_URL);
    const times = assertStoredOnce(outcomes, stored);
    assert.equal(times.get('after'), 1);
    // And the read models hold exactly what the store holds.
    const target = head(EVENT_STORE_URL);
    await eventually('the projection caught up', () => checkpoint(DATABASE_URL) >= target);
    const projected = psql(DATABASE_URL, `SELECT content FROM messages WHERE chat_id = '${chat}' ORDER BY 1`).split('\n');
    assert.deepEqual(projected, [...stored].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    assert.ok(ackedAtKill < outcomes.length, 'the kill came after every answer');
    t.diagnostic(`killed with ${ackedAtKill} of ${outcomes.length} answered; ${failed} answered as failed`);
    for (const s of [a.s, a2, b.s]) s.close();
  } finally {
    await server.stop();
  }
});

test('SIGTERM of the command-service with requests in flight: it drains, exits, and its restart fails no command', { skip }, async (t) => {
  const server = await startServer({ mail });
  try {
    const { a, a2, b, chat } = await pairWithSecondSocket(server, mail);
    const { sent, answered } = sendMany([a.s, a2], chat, 200);
    await eventually('some commands answered', () => answered() >= 60, 30000);
    const pid = pidOf(server, 'command-service');
    const answeredAtSignal = answered();
    // docs/operations.md "Health and shutdown": SIGTERM drains within 10 s.
    const gone = await terminate(pid);
    assert.ok(gone < 10000, `the command-service took ${gone} ms to stop`);
    await eventually('command-service restarted', () => pidOf(server, 'command-service') !== pid);
    const log = readFileSync(join(server.dataDir, 'command-service.log'), 'utf8');
    assert.doesNotMatch(log, /stopped with commands still in flight/);

    // What it had taken it answered; what came while no instance ran waited for the new one.
    const outcomes = await Promise.all(sent.map(async (s) => ({ ...s, ack: await s.ack })));
    const failed = outcomes.filter((o) => o.ack.success !== 1);
    assert.equal(failed.length, 0, `answered as failed: ${JSON.stringify(failed.slice(0, 3).map((o) => o.ack))}`);
    await eventually('a send after the restart acknowledged', async () => (await a.s.request('send-personal-message', { ChatId: chat, Content: 'after', ClientId: 'after-1' })).success === 1, 30000);

    const { EVENT_STORE_URL, DATABASE_URL } = identity(server);
    const stored = storedContents(EVENT_STORE_URL);
    assertStoredOnce(outcomes, stored);
    const target = head(EVENT_STORE_URL);
    await eventually('the projection caught up', () => checkpoint(DATABASE_URL) >= target);
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'after', timeoutMs: 30000 });
    assert.deepEqual(contents(b.s, 'receive-personal-message'), stored, 'the other gateway got every stored message once, in order');
    assert.ok(answeredAtSignal < outcomes.length, 'the signal came after every answer');
    t.diagnostic(`signalled with ${answeredAtSignal} of ${outcomes.length} answered; gone after ${gone} ms`);
    for (const s of [a.s, a2, b.s]) s.close();
  } finally {
    await server.stop();
  }
});

test('SIGTERM of a gateway with requests queued: each is answered before its sockets close', { skip }, async (t) => {
  const server = await startServer({ mail });
  try {
    const { a, b, chat } = await pair(server, mail);
    // a's socket is on gateway-1, the one stopped; b's on gateway-2 watches what is delivered.
    let answered = 0;
    const sent = [];
    const send = (content) => {
      const outcome = a.s.request('send-personal-message', { ChatId: chat, Content: content }, 30000).then(
        (ack) => {
          answered += 1;
          return { ack };
        },
        (error) => ({ error: error.message }),
      );
      sent.push({ content, outcome });
    };
    // Fewer than a socket may queue (256), all sent at once: the gateway takes them all, then works
    // through them one by one.
    for (let i = 0; i < 200; i++) send(`q${i}`);
    await eventually('some requests answered', () => answered >= 20, 30000);
    const answeredAtSignal = answered;
    const stopped = terminate(pidOf(server, 'gateway-1'));
    send('late'); // taken before the stop, or refused because of it: answered either way
    const gone = await stopped;
    assert.ok(gone < 10000, `gateway-1 took ${gone} ms to stop`);
    // Closed as a transport, not disconnected by the server: socket.io-client reconnects by itself.
    assert.equal(await a.s.waitFor('disconnect', { timeoutMs: 10000 }), 'transport close');

    const outcomes = await Promise.all(sent.map(async (s) => ({ ...s, ...(await s.outcome) })));
    const unanswered = outcomes.filter((o) => o.error);
    assert.equal(unanswered.length, 0, `left without an answer: ${unanswered.slice(0, 3).map((o) => `${o.content}: ${o.error}`).join('; ')}`);
    for (const { content, ack } of outcomes) {
      const refusedForTheStop = ack.success === -1 && ack.code === 'internal' && /restarting/.test(ack.message);
      assert.ok(ack.success === 1 || refusedForTheStop, `${content}: ${JSON.stringify(ack)}`);
    }
    const acknowledged = outcomes.filter((o) => o.ack.success === 1).map((o) => o.content);

    // Acknowledged once each; a refused one not at all; the other gateway delivered them in order.
    const { EVENT_STORE_URL } = identity(server);
    const stored = storedContents(EVENT_STORE_URL);
    assert.deepEqual(stored, acknowledged);
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === stored.at(-1), timeoutMs: 30000 });
    assert.deepEqual(contents(b.s, 'receive-personal-message'), stored);
    t.diagnostic(`signalled with ${answeredAtSignal} of ${outcomes.length} answered; gone after ${gone} ms; ${outcomes.length - acknowledged.length} refused for the stop`);
    b.s.close();
  } finally {
    await server.stop();
  }
});
