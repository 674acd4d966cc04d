// Fault tests of the production topology (E2E_TOPOLOGY=1; skipped all-in-one): kill -9 of the
// projection-service mid-stream, a projection-service down for longer than the stream keeps
// events, kill -9 of the command-service with requests in flight, a restart of the NATS server
// (also with its storage lost) and PostgreSQL going away under running services.
// infra/scripts/topology starts a process that died again, as a process manager would; the tests
// check what clients and the stores see.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MailSink, startServer, verifiedUser, login, connected, tempPostgres, TOPOLOGY } from '../lib/harness.mjs';

const skip = TOPOLOGY ? false : 'the fault tests run against the production topology (E2E_TOPOLOGY=1)';
let mail;
before(async () => {
  if (!skip) mail = await new MailSink().start();
});
after(() => mail?.stop());

/** The run's settings, as the topology script recorded them. */
function identity(server) {
  const text = readFileSync(join(server.dataDir, 'topology.env'), 'utf8');
  return Object.fromEntries(text.trim().split('\n').map((line) => {
    const i = line.indexOf('=');
    return [line.slice(0, i), line.slice(i + 1).replace(/^'(.*)'$/, '$1')];
  }));
}

const pidOf = (server, name) => Number(readFileSync(join(server.dataDir, `${name}.pid`), 'utf8').trim());
/** `/ready` of the command-service or the projection-service (HEALTH_PORT, recorded by the topology). */
async function serviceReady(server, name) {
  const url = readFileSync(join(server.dataDir, `${name}.health`), 'utf8').trim();
  const response = await fetch(`${url}/ready`);
  return { status: response.status, body: await response.json() };
}
const psql = (url, sql) => execFileSync('psql', [url, '-Atqc', sql], { encoding: 'utf8' }).trim();
const head = (url) => Number(psql(url, 'SELECT COALESCE(MAX(position), 0) FROM events'));
const checkpoint = (url) => Number(psql(url, "SELECT COALESCE(MAX(position), 0) FROM projection_checkpoints WHERE name = 'read_models'") || 0);

async function eventually(what, check, timeoutMs = 60000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let last;
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s${last ? `: ${last.message}` : ''}`);
    await sleep(200);
  }
}

/**
 * Kills `name` with SIGKILL and waits until the topology has started it again. `atKill` runs right
 * after the signal, before the wait (by then a fast restarted process may have caught up with
 * everything); its value is returned.
 */
async function killAndAwaitRestart(server, name, atKill = () => undefined) {
  const pid = pidOf(server, name);
  process.kill(pid, 'SIGKILL');
  const seen = atKill();
  await eventually(`${name} restarted`, () => pidOf(server, name) !== pid);
  return seen;
}

/**
 * Runs `during` with the topology's supervisor held (SIGSTOP), so that a process killed meanwhile
 * stays down until `during` ends; the supervisor then starts it again.
 */
async function withSupervisorHeld(server, during) {
  process.kill(server.proc.pid, 'SIGSTOP');
  try {
    return await during();
  } finally {
    process.kill(server.proc.pid, 'SIGCONT');
  }
}

/** Kills `name` with SIGKILL and waits until it has died (a zombie while its supervisor is held). */
async function killAndAwaitGone(server, name) {
  const pid = pidOf(server, name);
  process.kill(pid, 'SIGKILL');
  await eventually(`${name} gone`, () => {
    try {
      return execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).trim().startsWith('Z');
    } catch {
      return true; // no such process any more
    }
  }, 15000);
  return pid;
}

/** Two verified users, each with a socket on a different gateway, and their personal chat. */
async function pair(server) {
  const a = await verifiedUser(server, mail);
  const b = await verifiedUser(server, mail);
  a.s = await connected(server.at(0), a);
  b.s = await connected(server.at(1), b);
  const ack = await a.s.request('create-personal-chat', { Receiver: b.userId });
  assert.equal(ack.success, 1, JSON.stringify(ack));
  return { a, b, chat: ack.ChatId };
}

/** `pair`, with a second socket of user a, on the other gateway. */
async function pairWithSecondSocket(server) {
  const p = await pair(server);
  p.a2 = await connected(server.at(1), { accessToken: (await login(server, p.a)).accessToken });
  return p;
}

const contents = (socket, event) => socket.events.filter((e) => e.event === event).map((e) => e.payload.Content);

/**
 * Sends `rounds` personal messages from each socket at once (contents `x0`, `y0`, … by socket);
 * `sent` holds each content with its acknowledgement, `answered()` how many came so far.
 */
function sendMany(sockets, chat, rounds) {
  let answered = 0;
  const sent = [];
  for (let i = 0; i < rounds; i++) {
    sockets.forEach((socket, k) => {
      const content = `${'xyzw'[k]}${i}`;
      const ack = socket.request('send-personal-message', { ChatId: chat, Content: content }, 30000).then((r) => {
        answered += 1;
        return r;
      });
      sent.push({ content, ack });
    });
  }
  return { sent, answered: () => answered };
}

/** The contents of every stored message, in log order. */
const storedContents = (url) => psql(url, "SELECT payload::json->>'content' FROM events WHERE event_type = 'MessageSent' ORDER BY position").split('\n');

/** Each acknowledged content stored exactly once, each failed one at most once. */
function assertStoredOnce(outcomes, stored) {
  const times = new Map();
  for (const c of stored) times.set(c, (times.get(c) ?? 0) + 1);
  for (const { content, ack } of outcomes) {
    if (ack.success === 1) assert.equal(times.get(content), 1, `acknowledged ${content} stored ${times.get(content) ?? 0} times`);
    else assert.ok((times.get(content) ?? 0) <= 1, `failed ${content} stored ${times.get(content)} times`);
  }
  return times;
}

/** Sends SIGTERM to `pid` and waits until it is gone; how long that took, in ms. */
async function terminate(pid) {
  const signalled = Date.now();
  process.kill(pid, 'SIGTERM');
  await eventually(`process ${pid} gone after SIGTERM`, () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 15000);
  return Date.now() - signalled;
}

/** Every read-model table, row by row, in a stable order. */
function readModels(url) {
  const tables = ['users', 'chats', 'chat_members', 'messages', 'projection_checkpoints'];
  return Object.fromEntries(tables.map((t) => [t, psql(url, `SELECT x::text FROM ${t} x ORDER BY 1`)]));
}

/** Projects the store at `storeUrl` with a projection-service nobody disturbs; its read models. */
async function undisturbedProjection(storeUrl) {
  const pg = await tempPostgres('undisturbed');
  const dir = mkdtempSync(join(tmpdir(), 'expresschat-e2e-'));
  const bin = resolve(process.env.TOPOLOGY_BIN_DIR ?? 'target/debug', 'projection-service');
  const env = { ...process.env, EVENT_STORE_URL: storeUrl, DATABASE_URL: pg.url, DATA_DIR: dir, RUST_LOG: 'warn' };
  delete env.NATS_URL;
  const proc = spawn(bin, [], { env, stdio: 'ignore' });
  try {
    const target = head(storeUrl);
    await eventually('the undisturbed projection caught up', () => checkpoint(pg.url) >= target);
    return readModels(pg.url);
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode === null ? proc.once('exit', r) : r()));
    pg.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('kill -9 of the projection-service mid-stream: read models end identical to an undisturbed run', { skip }, async (t) => {
  const server = await startServer({ mail });
  try {
    const { a, b, chat } = await pair(server);
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
    const { a, b, chat } = await pair(server);
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
    const { a, a2, b, chat } = await pairWithSecondSocket(server);
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
    const { a, a2, b, chat } = await pairWithSecondSocket(server);
    const { sent, answered } = sendMany([a.s, a2], chat, 200);
    await eventually('some commands answered', () => answered() >= 60, 30000);
    const pid = pidOf(server, 'command-service');
    const answeredAtSignal = answered();
    // PROTOCOL.md §1: SIGTERM drains within 10 s.
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
    const { a, b, chat } = await pair(server);
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

test('a restart of the NATS server: service resumes without restarting the services', { skip }, async () => {
  const server = await startServer({ mail, env: { NATS_PRIVATE: '1' } });
  try {
    const { a, b, chat } = await pair(server);
    assert.equal((await a.s.request('send-personal-message', { ChatId: chat, Content: 'before' })).success, 1);
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'before' });
    const services = ['command-service', 'projection-service', 'gateway-1', 'gateway-2'];
    const pids = services.map((name) => pidOf(server, name));

    await killAndAwaitRestart(server, 'nats');
    await eventually('a send after the NATS restart acknowledged', async () => (await a.s.request('send-personal-message', { ChatId: chat, Content: 'after', ClientId: 'after-1' }, 15000)).success === 1, 60000);
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'after', timeoutMs: 30000 });
    for (const i of [0, 1]) {
      await eventually(`gateway-${i + 1} ready again`, async () => (await server.at(i).get('/ready')).status === 200, 30000);
    }
    for (const name of ['command-service', 'projection-service']) {
      await eventually(`${name} ready again`, async () => (await serviceReady(server, name)).status === 200, 30000);
    }
    const page = await b.s.request('fetch-personal-chat', { ChatId: chat, Limit: 10 });
    assert.deepEqual(page.Messages.map((m) => m.Content).filter((c) => c === 'before' || c === 'after').reverse(), ['before', 'after']);
    assert.deepEqual(services.map((name) => pidOf(server, name)), pids, 'no service was restarted');
    a.s.close();
    b.s.close();
  } finally {
    await server.stop();
  }
});

test('the NATS server back with its storage lost: the relay refills the stream with the newest events, service resumes', { skip }, async () => {
  const server = await startServer({ mail, env: { NATS_PRIVATE: '1', NATS_STREAM_MAX_EVENTS: '20' } });
  try {
    const { a, b, chat } = await pair(server);
    for (let i = 0; i < 40; i++) {
      assert.equal((await a.s.request('send-personal-message', { ChatId: chat, Content: `before${i}` })).success, 1);
    }
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'before39' });
    const services = ['command-service', 'projection-service', 'gateway-1', 'gateway-2'];
    const pids = services.map((name) => pidOf(server, name));
    const { EVENT_STORE_URL } = identity(server);
    const headAtLoss = head(EVENT_STORE_URL);

    await withSupervisorHeld(server, async () => {
      await killAndAwaitGone(server, 'nats');
      rmSync(join(server.dataDir, 'nats', 'store'), { recursive: true, force: true });
    });
    await eventually('a send after the NATS restart acknowledged', async () => (await a.s.request('send-personal-message', { ChatId: chat, Content: 'after', ClientId: 'after-1' }, 15000)).success === 1, 60000);
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'after', timeoutMs: 30000 });
    for (const name of ['command-service', 'projection-service']) {
      await eventually(`${name} ready again`, async () => (await serviceReady(server, name)).status === 200, 30000);
    }
    // The relay found an empty stream and started 20 events back from the head, not at the start.
    const log = readFileSync(join(server.dataDir, 'command-service.log'), 'utf8');
    const starts = [...log.matchAll(/relaying events to JetStream from=(\d+) published=0/g)].map((m) => Number(m[1]));
    assert.ok(starts.some((from) => from >= headAtLoss - 20 && from > 0), `relay starts after the loss: ${starts} (head ${headAtLoss})`);
    const page = await b.s.request('fetch-personal-chat', { ChatId: chat, Limit: 50 });
    const history = page.Messages.map((m) => m.Content).reverse();
    assert.deepEqual(history.slice(-2), ['before39', 'after']);
    assert.deepEqual(services.map((name) => pidOf(server, name)), pids, 'no service was restarted');
    a.s.close();
    b.s.close();
  } finally {
    await server.stop();
  }
});

/** The database a postgres:// URL names. */
const dbName = (url) => decodeURIComponent(new URL(url).pathname.slice(1));
const ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * PostgreSQL goes away under the running services, as in a restart, as far as they can tell:
 * every connection to the run's databases is cut and new ones are refused until `up()`.
 */
function postgresDown(urls) {
  const names = [...new Set(urls.map(dbName))];
  const allow = (on) => {
    for (const n of names) psql(ADMIN_URL, `ALTER DATABASE "${n}" WITH ALLOW_CONNECTIONS ${on}`);
  };
  allow(false);
  const list = names.map((n) => `'${n.replace(/'/g, "''")}'`).join(', ');
  psql(ADMIN_URL, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN (${list})`);
  let upAgain = false;
  return {
    up() {
      if (!upAgain) allow(true);
      upAgain = true;
    },
  };
}

test('PostgreSQL gone under load and back: service resumes without restarting the services', { skip }, async (t) => {
  const server = await startServer({ mail });
  const { DATABASE_URL, EVENT_STORE_URL } = identity(server);
  let outage;
  try {
    const { a, a2, b, chat } = await pairWithSecondSocket(server);
    const services = ['command-service', 'projection-service', 'gateway-1', 'gateway-2'];
    const pids = services.map((name) => pidOf(server, name));

    const { sent, answered } = sendMany([a.s, a2], chat, 150);
    await eventually('some commands answered', () => answered() >= 40, 30000);
    outage = postgresDown([DATABASE_URL, EVENT_STORE_URL]);
    const answeredAtCut = answered();

    // While it is away: commands are answered as failed within the gateway's bound, and /ready on
    // both gateways names what is down.
    const during = await a.s.request('send-personal-message', { ChatId: chat, Content: 'during' }, 15000);
    assert.deepEqual([during.success, during.code], [-1, 'internal'], JSON.stringify(during));
    for (const i of [0, 1]) {
      const ready = await server.at(i).get('/ready');
      assert.equal(ready.status, 503, `gateway-${i + 1}: ${ready.text}`);
      assert.match(ready.body.message, /event store|database/, ready.text);
    }
    for (const [name, backend] of [['command-service', 'event store'], ['projection-service', 'database']]) {
      const ready = await serviceReady(server, name);
      assert.equal(ready.status, 503, `${name}: ${JSON.stringify(ready.body)}`);
      assert.deepEqual(ready.body.down, [backend], name);
    }
    await sleep(2000);
    outage.up();

    await eventually('a send after PostgreSQL came back acknowledged', async () => (await a.s.request('send-personal-message', { ChatId: chat, Content: 'after', ClientId: 'after-1' }, 15000)).success === 1, 60000);
    await b.s.waitFor('receive-personal-message', { pred: (p) => p.Content === 'after', timeoutMs: 30000 });
    for (const i of [0, 1]) {
      await eventually(`gateway-${i + 1} ready again`, async () => (await server.at(i).get('/ready')).status === 200, 30000);
    }
    for (const name of ['command-service', 'projection-service']) {
      await eventually(`${name} ready again`, async () => (await serviceReady(server, name)).status === 200, 30000);
    }
    const outcomes = await Promise.all(sent.map(async (s) => ({ ...s, ack: await s.ack })));
    for (const { ack } of outcomes) {
      assert.ok(ack.success === 1 || (ack.success === -1 && ack.code === 'internal'), JSON.stringify(ack));
    }
    const failed = outcomes.filter((o) => o.ack.success !== 1).length;

    // Acknowledged once, the rest at most once, and the read models hold what the store holds.
    const stored = storedContents(EVENT_STORE_URL);
    const times = assertStoredOnce(outcomes, stored);
    assert.equal(times.get('during'), undefined, 'a send refused while the store was away was stored');
    assert.equal(times.get('after'), 1);
    const target = head(EVENT_STORE_URL);
    await eventually('the projection caught up', () => checkpoint(DATABASE_URL) >= target);
    const projected = psql(DATABASE_URL, `SELECT content FROM messages WHERE chat_id = '${chat}' ORDER BY version`).split('\n');
    assert.deepEqual(projected, stored);

    // The other gateway's socket got every stored message once, in the chat's order.
    assert.deepEqual(contents(b.s, 'receive-personal-message'), stored);
    assert.deepEqual(services.map((name) => pidOf(server, name)), pids, 'no service was restarted');
    assert.ok(answeredAtCut < outcomes.length, 'the cut came after every answer');
    t.diagnostic(`cut with ${answeredAtCut} of ${outcomes.length} answered; ${failed} answered as failed`);
    for (const s of [a.s, a2, b.s]) s.close();
  } finally {
    outage?.up();
    await server.stop();
  }
});

test('PostgreSQL gone for half a second under load: no command fails', { skip }, async (t) => {
  const server = await startServer({ mail });
  const { DATABASE_URL, EVENT_STORE_URL } = identity(server);
  let outage;
  try {
    const { a, a2, b, chat } = await pairWithSecondSocket(server);
    const { sent, answered } = sendMany([a.s, a2], chat, 150);
    await eventually('some commands answered', () => answered() >= 40, 30000);
    outage = postgresDown([DATABASE_URL, EVENT_STORE_URL]);
    const answeredAtCut = answered();
    await sleep(500);
    outage.up();
    // Reads on connections the cut killed are run again on new ones.
    for (const s of [a2, b.s]) {
      const page = await s.request('fetch-personal-chat', { ChatId: chat, Limit: 5 }, 15000);
      assert.ok(Array.isArray(page.Messages), JSON.stringify(page));
    }

    // The event store settles the writes the cut interrupted and writes the rest once it is back.
    const outcomes = await Promise.all(sent.map(async (s) => ({ ...s, ack: await s.ack })));
    for (const { content, ack } of outcomes) assert.equal(ack.success, 1, `${content}: ${JSON.stringify(ack)}`);
    const stored = storedContents(EVENT_STORE_URL);
    assertStoredOnce(outcomes, stored);
    assert.equal(stored.length, outcomes.length);
    const target = head(EVENT_STORE_URL);
    await eventually('the projection caught up', () => checkpoint(DATABASE_URL) >= target);
    await eventually('the other gateway delivered every message', () => contents(b.s, 'receive-personal-message').length >= stored.length, 30000);
    assert.deepEqual(contents(b.s, 'receive-personal-message'), stored);
    assert.ok(answeredAtCut < outcomes.length, 'the cut came after every answer');
    t.diagnostic(`cut with ${answeredAtCut} of ${outcomes.length} answered`);
    for (const s of [a.s, a2, b.s]) s.close();
  } finally {
    outage?.up();
    await server.stop();
  }
});

test('a process whose backend is unreachable at start names it and exits non-zero', { skip }, async () => {
  const bins = resolve(process.env.TOPOLOGY_BIN_DIR ?? 'target/debug');
  const pg = await tempPostgres('unreachable');
  const dir = mkdtempSync(join(tmpdir(), 'expresschat-e2e-'));
  const run = (bin, env) =>
    new Promise((done) => {
      const proc = spawn(join(bins, bin), [], { env: { PATH: process.env.PATH, DATA_DIR: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout.on('data', (d) => (out += d));
      proc.stderr.on('data', (d) => (out += d));
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        done({ code, out });
      });
    });
  try {
    const noNats = { NATS_URL: 'nats://127.0.0.1:1', EVENT_STORE_URL: pg.url, DATABASE_URL: pg.url };
    const noPg = { NATS_URL: 'nats://127.0.0.1:4222', EVENT_STORE_URL: 'postgres://postgres@127.0.0.1:1/x', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' };
    for (const bin of ['command-service', 'projection-service', 'gateway']) {
      const nats = await run(bin, noNats);
      assert.notEqual(nats.code, 0, `${bin} without NATS exited 0`);
      assert.match(nats.out, /NATS \(NATS_URL\) unavailable/, `${bin}: ${nats.out}`);
      const postgres = await run(bin, noPg);
      assert.notEqual(postgres.code, 0, `${bin} without PostgreSQL exited 0`);
      assert.match(postgres.out, /(event store \(EVENT_STORE_URL\)|database \(DATABASE_URL\)) unavailable/, `${bin}: ${postgres.out}`);
    }
  } finally {
    pg.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a topology whose start fails stops what it started and removes its database', { skip }, async () => {
  const { mkdirSync, writeFileSync, symlinkSync, existsSync } = await import('node:fs');
  const bins = resolve(process.env.TOPOLOGY_BIN_DIR ?? 'target/debug');
  const fake = mkdtempSync(join(tmpdir(), 'expresschat-e2e-'));
  const runDir = join(fake, 'run');
  mkdirSync(runDir);
  // A command-service that never says it is serving.
  writeFileSync(join(fake, 'command-service'), '#!/bin/sh\necho starting; exec sleep 60\n', { mode: 0o755 });
  for (const bin of ['gateway', 'projection-service']) symlinkSync(join(bins, bin), join(fake, bin));
  const script = resolve(dirname(new URL(import.meta.url).pathname), '../../infra/scripts/topology');
  try {
    const out = await new Promise((done) => {
      const proc = spawn(script, [runDir], { env: { ...process.env, BIN_DIR: fake, START_WAIT_TENTHS: '20', GATEWAY_PORTS: '0 0' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      proc.stdout.on('data', (d) => (text += d));
      proc.stderr.on('data', (d) => (text += d));
      proc.once('exit', (code) => done({ code, text }));
    });
    assert.equal(out.code, 1, out.text);
    assert.match(out.text, /command-service did not get ready in time/);
    assert.match(out.text, /topology: stopped/);
    const pid = Number(readFileSync(join(runDir, 'command-service.pid'), 'utf8'));
    assert.throws(() => process.kill(pid, 0), 'the half-started command-service was stopped');
    const { own_db: db } = identity({ dataDir: runDir });
    assert.ok(db);
    assert.equal(psql(process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', `SELECT count(*) FROM pg_database WHERE datname = '${db}'`), '0');
    assert.ok(existsSync(join(runDir, 'command-service.log')), 'the logs of a failed start are kept');
  } finally {
    rmSync(fake, { recursive: true, force: true });
  }
});
