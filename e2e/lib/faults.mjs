// What the fault tests share (tests/faults.test.mjs, tests/outages.test.mjs): the topology's
// processes and settings, waiting, sending under load, what the stores hold, and PostgreSQL going
// away under the services.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { verifiedUser, login, connected, tempPostgres, TOPOLOGY } from './harness.mjs';

export const skip = TOPOLOGY ? false : 'the fault tests run against the production topology (E2E_TOPOLOGY=1)';

/** The run's settings, as the topology script recorded them. */
export function identity(server) {
  const text = readFileSync(join(server.dataDir, 'topology.env'), 'utf8');
  return Object.fromEntries(text.trim().split('\n').map((line) => {
    const i = line.indexOf('=');
    return [line.slice(0, i), line.slice(i + 1).replace(/^'(.*)'$/, '$1')];
  }));
}

export const pidOf = (server, name) => Number(readFileSync(join(server.dataDir, `${name}.pid`), 'utf8').trim());
/** `/ready` of the command-service or the projection-service (HEALTH_PORT, recorded by the topology). */
export async function serviceReady(server, name) {
  const url = readFileSync(join(server.dataDir, `${name}.health`), 'utf8').trim();
  const response = await fetch(`${url}/ready`);
  return { status: response.status, body: await response.json() };
}
export const psql = (url, sql) => execFileSync('psql', [url, '-Atqc', sql], { encoding: 'utf8' }).trim();
export const head = (url) => Number(psql(url, 'SELECT COALESCE(MAX(position), 0) FROM events'));
export const checkpoint = (url) => Number(psql(url, "SELECT COALESCE(MAX(position), 0) FROM projection_checkpoints WHERE name = 'read_models'") || 0);

export async function eventually(what, check, timeoutMs = 60000) {
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
export async function killAndAwaitRestart(server, name, atKill = () => undefined) {
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
export async function withSupervisorHeld(server, during) {
  process.kill(server.proc.pid, 'SIGSTOP');
  try {
    return await during();
  } finally {
    process.kill(server.proc.pid, 'SIGCONT');
  }
}

/** Kills `name` with SIGKILL and waits until it has died (a zombie while its supervisor is held). */
export async function killAndAwaitGone(server, name) {
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
export async function pair(server, mail) {
  const a = await verifiedUser(server, mail);
  const b = await verifiedUser(server, mail);
  a.s = await connected(server.at(0), a);
  b.s = await connected(server.at(1), b);
  const ack = await a.s.request('create-personal-chat', { Receiver: b.userId });
  assert.equal(ack.success, 1, JSON.stringify(ack));
  return { a, b, chat: ack.ChatId };
}

/** `pair`, with a second socket of user a, on the other gateway. */
export async function pairWithSecondSocket(server, mail) {
  const p = await pair(server, mail);
  p.a2 = await connected(server.at(1), { accessToken: (await login(server, p.a)).accessToken });
  return p;
}

export const contents = (socket, event) => socket.events.filter((e) => e.event === event).map((e) => e.payload.Content);

/**
 * Sends `rounds` personal messages from each socket at once (contents `x0`, `y0`, … by socket);
 * `sent` holds each content with its acknowledgement, `answered()` how many came so far.
 */
export function sendMany(sockets, chat, rounds) {
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
export const storedContents = (url) => psql(url, "SELECT payload::json->>'content' FROM events WHERE event_type = 'MessageSent' ORDER BY position").split('\n');

/** Each acknowledged content stored exactly once, each failed one at most once. */
export function assertStoredOnce(outcomes, stored) {
  const times = new Map();
  for (const c of stored) times.set(c, (times.get(c) ?? 0) + 1);
  for (const { content, ack } of outcomes) {
    if (ack.success === 1) assert.equal(times.get(content), 1, `acknowledged ${content} stored ${times.get(content) ?? 0} times`);
    else assert.ok((times.get(content) ?? 0) <= 1, `failed ${content} stored ${times.get(content)} times`);
  }
  return times;
}

/** Sends SIGTERM to `pid` and waits until it is gone; how long that took, in ms. */
export async function terminate(pid) {
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
export function readModels(url) {
  const tables = ['users', 'chats', 'chat_members', 'messages', 'projection_checkpoints'];
  return Object.fromEntries(tables.map((t) => [t, psql(url, `SELECT x::text FROM ${t} x ORDER BY 1`)]));
}

/** Projects the store at `storeUrl` with a projection-service nobody disturbs; its read models. */
export async function undisturbedProjection(storeUrl) {
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

/** The database a postgres:// URL names. */
export const dbName = (url) => decodeURIComponent(new URL(url).pathname.slice(1));
export const ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * PostgreSQL goes away under the running services, as in a restart, as far as they can tell:
 * every connection to the run's databases is cut and new ones are refused until `up()`.
 */
export function postgresDown(urls) {
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
