// The end-to-end harness: the real server binary (SERVER_BIN) on a random port with its own data
// directory, a real SMTP server catching verification mail, and socket.io-client sockets that record
// every event they receive, in order.
//
// With E2E_TOPOLOGY=1 every "server" is instead the production topology started by
// infra/scripts/topology (two gateways, a command-service and a projection-service over NATS and
// PostgreSQL, binaries from TOPOLOGY_BIN_DIR): requests and sockets alternate between the two
// gateways, so every test also checks that clients of different gateways see each other.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { io } from 'socket.io-client';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

export const ALLOWED_ORIGIN = 'http://allowed.test';
/** Whether servers are the production topology (two gateways) rather than the all-in-one binary. */
export const TOPOLOGY = process.env.E2E_TOPOLOGY === '1';
const TOPOLOGY_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../infra/scripts/topology');

/** A real SMTP server (smtp-server) that keeps every mail it receives, parsed. */
export class MailSink {
  constructor() {
    this.mails = [];
    this.waiters = [];
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, _session, done) => {
        simpleParser(stream)
          .then((parsed) => {
            const mail = {
              to: parsed.to?.value?.[0]?.address?.toLowerCase(),
              from: parsed.from?.text,
              subject: parsed.subject,
              text: parsed.text ?? '',
              html: typeof parsed.html === 'string' ? parsed.html : '',
            };
            this.mails.push(mail);
            this.waiters = this.waiters.filter((w) => !w(mail));
            done();
          })
          .catch(done);
      },
    });
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.server.address().port;
    return this;
  }

  get url() {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** The next mail to `address` after the `skip` already received for it. */
  async next(address, skip = 0, timeoutMs = 10000) {
    const wanted = address.toLowerCase();
    const existing = this.mails.filter((m) => m.to === wanted);
    if (existing.length > skip) return existing[skip];
    let seen = existing.length;
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no mail for ${address}`)), timeoutMs);
      this.waiters.push((mail) => {
        if (mail.to !== wanted) return false;
        if (seen++ < skip) return false;
        clearTimeout(timer);
        resolve(mail);
        return true;
      });
    });
  }

  count(address) {
    return this.mails.filter((m) => m.to === address.toLowerCase()).length;
  }

  async stop() {
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The 6-digit code and the verification link of a mail. */
export function codeOf(mail) {
  const link = /(https?:\/\/[^\s"<>]+\/verify\?[^\s"<>]+)/.exec(mail.text)?.[1];
  const code = /token=(\d{6})/.exec(link ?? '')?.[1];
  return { link, code };
}

/** A running server process. */
export class Server {
  constructor(proc, urls, dataDir, ownsDataDir, logs) {
    this.proc = proc;
    this.urls = urls;
    this.url = urls[0];
    this.dataDir = dataDir;
    this.ownsDataDir = ownsDataDir;
    this.logs = logs;
    this.turn = 0;
  }

  /** The next gateway's address, round robin (there is one all-in-one). */
  nextUrl() {
    this.turn += 1;
    return this.urls[this.turn % this.urls.length];
  }

  /** The pid of gateway `i` (the all-in-one server's own), for reading its memory in /proc. */
  pid(i = 0) {
    if (!TOPOLOGY) return this.proc.pid;
    return Number(readFileSync(join(this.dataDir, `gateway-${i + 1}.pid`), 'utf8').trim());
  }

  /** This server seen through its gateway `i` only. */
  at(i) {
    const view = Object.create(this);
    view.urls = [this.urls[i]];
    view.url = this.urls[i];
    return view;
  }

  /** Sends SIGTERM and waits for the process to exit; returns its exit code. */
  async stop({ keepData = false } = {}) {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      // The topology script keeps its database and stream for a restart when told so.
      if (TOPOLOGY && keepData) writeFileSync(join(this.dataDir, 'keep'), '');
      const exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
      this.proc.kill('SIGTERM');
      const limit = TOPOLOGY ? 30000 : 15000;
      const code = await Promise.race([exited, sleep(limit).then(() => 'timeout')]);
      if (code === 'timeout') {
        this.proc.kill('SIGKILL');
        throw new Error(`server did not stop within ${limit / 1000} s of SIGTERM`);
      }
      this.exitCode = code;
    }
    if (this.ownsDataDir && !keepData) rmSync(this.dataDir, { recursive: true, force: true });
    return this.exitCode ?? this.proc.exitCode;
  }

  async http(method, path, body, headers = {}) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.headers['content-type'] ??= 'application/json';
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const response = await fetch(this.nextUrl() + path, init);
    const text = await response.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, body: json, text, headers: response.headers };
  }

  post(path, body, headers) {
    return this.http('POST', path, body, headers);
  }

  get(path, headers) {
    return this.http('GET', path, undefined, headers);
  }
}

/**
 * Starts SERVER_BIN on a random port. `env` adds or overrides settings; `dataDir` reuses a data
 * directory (a restart; `adopt` makes this server remove it on stop), else a fresh one is made
 * and removed on stop.
 */
export async function startServer({ env = {}, dataDir, mail, adopt = false } = {}) {
  const bin = TOPOLOGY ? TOPOLOGY_SCRIPT : process.env.SERVER_BIN && resolve(process.env.SERVER_BIN);
  if (!bin) throw new Error('SERVER_BIN must name the gateway binary (see infra/scripts/test)');
  // A fresh directory is removed on stop; a given one only when adopted (a restart's second server).
  const ownsDataDir = !dataDir || adopt;
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'expresschat-e2e-'));
  const settings = {
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dir,
    PUBLIC_URL: ALLOWED_ORIGIN,
    AUTH_RATE_LIMIT: '1000/min',
    RUST_LOG: process.env.E2E_RUST_LOG ?? 'info',
    ...(mail ? { SMTP_URL: mail.url } : {}),
    ...env,
  };
  const childEnv = { ...process.env, ...settings };
  for (const key of ['NATS_URL', 'EVENT_STORE_URL', 'DATABASE_URL', 'AUTH_SECRET', 'ALLOWED_ORIGINS']) {
    if (!(key in settings)) delete childEnv[key];
  }
  if (TOPOLOGY) {
    childEnv.GATEWAY_PORTS = '0 0';
    childEnv.BIN_DIR = resolve(process.env.TOPOLOGY_BIN_DIR ?? 'target/debug');
    rmSync(join(dir, 'keep'), { force: true });
  }
  const args = TOPOLOGY ? [dir] : [];
  const proc = spawn(bin, args, { cwd: dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.on('error', () => {}); // reported through the start-up promise
  const logs = [];
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${logs.join('')}`)), TOPOLOGY ? 90000 : 30000);
    const onData = (chunk) => {
      const text = chunk.toString();
      logs.push(text);
      if (process.env.E2E_SHOW_LOGS) process.stderr.write(text);
      const all = logs.join('');
      if (TOPOLOGY) {
        if (/topology: ready/.test(all)) {
          clearTimeout(timer);
          resolve([...all.matchAll(/gateway-\d listening on (http:\/\/[\d.]+:\d+)/g)].map((m) => m[1]));
        }
        return;
      }
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(all);
      if (m) {
        clearTimeout(timer);
        resolve([m[1]]);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${logs.join('')}`));
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${e.message}`));
    });
  });
  let urls;
  try {
    urls = await started;
  } catch (e) {
    if (TOPOLOGY && proc.exitCode === null) {
      // The script removes its database and stream on SIGTERM.
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(30000)]);
    }
    proc.kill('SIGKILL');
    if (ownsDataDir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return new Server(proc, urls, dir, ownsDataDir, logs);
}

let counter = 0;
/** A unique e-mail address and name for this run. */
export function uniqueUser(prefix = 'user') {
  counter += 1;
  const tag = `${prefix}${counter}x${process.pid}`;
  return { name: `${prefix} ${counter}`, email: `${tag}@example.com`, password: 'correct horse battery' };
}

/** Signs up, reads the code from the mail, verifies as the app does; returns tokens and ids. */
export async function verifiedUser(server, mail, user = uniqueUser()) {
  const signup = await server.post('/signup', { name: user.name, email: user.email, password: user.password });
  if (signup.status !== 200) throw new Error(`signup failed: ${signup.status} ${signup.text}`);
  const { code } = codeOf(await mail.next(user.email, mail.count(user.email) - 1));
  const verify = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${code}&source=app`);
  if (verify.status !== 200) throw new Error(`verify failed: ${verify.status} ${verify.text}`);
  return { ...user, userId: verify.body.userId, accessToken: verify.body.accessToken, refreshToken: verify.body.refreshToken };
}

/** Logs in; returns the body (tokens, userId, userName). */
export async function login(server, user) {
  const r = await server.post('/login', { email: user.email, password: user.password });
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`);
  return r.body;
}

/**
 * A socket.io-client socket that records every event. `options` go to `io()`; by default the
 * socket authenticates with `auth`.
 */
export function socketFor(server, options = {}) {
  const socket = io(server.nextUrl(), { reconnection: false, forceNew: true, timeout: 10000, ...options });
  const events = [];
  const waiters = [];
  socket.onAny((event, ...args) => {
    // A delivery's `Seq` (docs/api.md, "Catch-up") is kept beside its payload, so that tests of
    // the original events compare the original's fields; sync.test.mjs reads it there.
    const payload = args[0];
    if (payload && typeof payload === 'object' && !Array.isArray(payload) && typeof payload.Seq === 'string') {
      const { Seq: seq, ...fields } = payload;
      events.push({ event, payload: fields, seq });
    } else {
      events.push({ event, payload });
    }
    for (const w of [...waiters]) w();
  });
  socket.on('disconnect', (reason) => {
    events.push({ event: 'disconnect', payload: reason });
    for (const w of [...waiters]) w();
  });
  socket.on('connect_error', (err) => {
    events.push({ event: 'connect_error', payload: err.message });
    for (const w of [...waiters]) w();
  });
  /** Resolves with the first recorded `event` (from index `from`) matching `pred`. */
  socket.waitFor = (event, { from = 0, pred = () => true, timeoutMs = 10000 } = {}) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = events.slice(from).find((e) => e.event === event && pred(e.payload));
        if (found) {
          cleanup();
          resolve(found.payload);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${event}; got ${JSON.stringify(events.map((e) => e.event))}`));
      }, timeoutMs);
      const waiter = () => check();
      const cleanup = () => {
        clearTimeout(timer);
        const i = waiters.indexOf(waiter);
        if (i >= 0) waiters.splice(i, 1);
      };
      waiters.push(waiter);
      check();
    });
  socket.events = events;
  socket.names = () => events.map((e) => e.event);
  /** Emits with an acknowledgement callback and resolves with the acknowledgement. */
  socket.request = (event, payload, timeoutMs = 10000) =>
    payload === undefined
      ? socket.timeout(timeoutMs).emitWithAck(event)
      : socket.timeout(timeoutMs).emitWithAck(event, payload);
  return socket;
}

/** A connected, authenticated socket whose on-connect events have all arrived. */
export async function connected(server, user, options = {}) {
  const socket = socketFor(server, { auth: { accessToken: user.accessToken, refreshToken: user.refreshToken }, ...options });
  await socket.waitFor('group-chat-list');
  return socket;
}

/** Waits `ms` and returns; for asserting that something does NOT arrive. */
export const quiet = (ms = 300) => sleep(ms);

/**
 * A uniquely named PostgreSQL database on the machine's server (TEST_PG_URL, default the local
 * trust-auth `postgres` user), created and dropped with the server's own `psql`.
 */
export async function tempPostgres(prefix = 'e2e') {
  const { execFileSync } = await import('node:child_process');
  const admin = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `${prefix}_${process.pid}_${Date.now()}`;
  execFileSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE ${name}`]);
  const url = admin.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    drop() {
      execFileSync('psql', [admin, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
    },
  };
}

/** A mail sink and a server using it, for a test file's `before` hook. */
export async function startShared(options = {}) {
  const mail = await new MailSink().start();
  const server = await startServer({ mail, ...options });
  return { mail, server };
}

/** Stops what [`startShared`] started, for a test file's `after` hook. */
export async function stopShared({ mail, server } = {}) {
  await server?.stop();
  await mail?.stop();
}
