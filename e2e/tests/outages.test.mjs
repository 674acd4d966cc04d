// Fault tests of the production topology's backends (E2E_TOPOLOGY=1; skipped all-in-one): a
// restart of the NATS server (also with its storage lost), PostgreSQL going away under running
// services (for seconds, and for half a second), a backend unreachable at start, a topology whose
// start fails. Its processes failing is tests/faults.test.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MailSink, startServer, tempPostgres } from '../lib/harness.mjs';
import { skip, identity, pidOf, serviceReady, psql, head, checkpoint, eventually, killAndAwaitRestart, withSupervisorHeld, killAndAwaitGone, pair, pairWithSecondSocket, contents, sendMany, storedContents, assertStoredOnce, postgresDown } from '../lib/faults.mjs';

let mail;
before(async () => {
  if (!skip) mail = await new MailSink().start();
});
after(() => mail?.stop());

test('a restart of the NATS server: service resumes without restarting the services', { skip }, async () => {
  const server = await startServer({ mail, env: { NATS_PRIVATE: '1' } });
  try {
    const { a, b, chat } = await pair(server, mail);
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
    const { a, b, chat } = await pair(server, mail);
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

test('PostgreSQL gone under load and back: service resumes without restarting the services', { skip }, async (t) => {
  const server = await startServer({ mail });
  const { DATABASE_URL, EVENT_STORE_URL } = identity(server);
  let outage;
  try {
    const { a, a2, b, chat } = await pairWithSecondSocket(server, mail);
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
    const { a, a2, b, chat } = await pairWithSecondSocket(server, mail);
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
    // A gateway in the topology refuses to start without a shared AUTH_SECRET; give it one so the
    // unreachable backend is what it names.
    const secret = { AUTH_SECRET: 'outages-test-secret-0123456789abcdef' };
    const noNats = { ...secret, NATS_URL: 'nats://127.0.0.1:1', EVENT_STORE_URL: pg.url, DATABASE_URL: pg.url };
    const noPg = { ...secret, NATS_URL: 'nats://127.0.0.1:4222', EVENT_STORE_URL: 'postgres://postgres@127.0.0.1:1/x', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' };
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
