// Measurements for docs/benchmarks/README.md: the end-to-end latency of signup → verify → login → connect → send
// → receive, and the memory of the gateway holding N connected sockets (RSS per socket).
//
//   cargo build --release -p gateway
//   cd e2e && npm ci && SERVER_BIN=../target/release/gateway node measure.mjs [--rounds 20] [--sockets 1000]
//   # the production topology (every socket of the fleet on gateway 1):
//   cargo build --release --workspace && E2E_TOPOLOGY=1 TOPOLOGY_BIN_DIR=../target/release node measure.mjs
//
// Prints one JSON document. Timings are wall-clock, client and server together on one machine.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { MailSink, startServer, codeOf, uniqueUser, socketFor } from './lib/harness.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('rounds', 20);
const sockets = arg('sockets', 1000);

function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rssMiB: +(kib('VmRSS') / 1024).toFixed(1), peakRssMiB: +(kib('VmHWM') / 1024).toFixed(1) };
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { n: sorted.length, medianMs: +at(0.5).toFixed(1), p95Ms: +at(0.95).toFixed(1), maxMs: +sorted[sorted.length - 1].toFixed(1) };
}

async function oneRound(server, mail) {
  const user = uniqueUser('measure');
  const t = { start: performance.now() };
  const signup = await server.post('/signup', { name: user.name, email: user.email, password: user.password });
  if (signup.status !== 200) throw new Error(`signup ${signup.status}`);
  t.signup = performance.now();
  const { code } = codeOf(await mail.next(user.email));
  t.mail = performance.now();
  const verify = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${code}&source=app`);
  if (verify.status !== 200) throw new Error(`verify ${verify.status}`);
  t.verify = performance.now();
  const login = await server.post('/login', { email: user.email, password: user.password });
  t.login = performance.now();
  const sender = socketFor(server, { transports: ['websocket'], auth: { accessToken: login.body.accessToken } });
  const receiver = socketFor(server, { transports: ['websocket'], auth: { accessToken: verify.body.accessToken } });
  await Promise.all([sender.waitFor('group-chat-list'), receiver.waitFor('group-chat-list')]);
  t.connect = performance.now();
  const received = receiver.waitFor('receive-self-message');
  const ack = await sender.request('send-self-message', { Content: 'measured' });
  t.ack = performance.now();
  await received;
  t.receive = performance.now();
  if (ack.success !== 1) throw new Error('send refused');
  sender.close();
  receiver.close();
  return {
    total: t.receive - t.start,
    signup: t.signup - t.start,
    mail: t.mail - t.signup,
    verify: t.verify - t.mail,
    login: t.login - t.verify,
    connect: t.connect - t.login,
    sendAck: t.ack - t.connect,
    receive: t.receive - t.connect,
  };
}

async function main() {
  const mail = await new MailSink().start();
  const server = await startServer({ mail });
  const result = { rounds, sockets, node: process.version };
  try {
    await oneRound(server, mail); // warm-up
    const samples = [];
    for (let i = 0; i < rounds; i++) samples.push(await oneRound(server, mail));
    result.latency = Object.fromEntries(Object.keys(samples[0]).map((k) => [k, summary(samples.map((s) => s[k]))]));

    // Login refusals: an unknown e-mail and a wrong password should cost the same.
    const known = uniqueUser('timing');
    await server.post('/signup', { name: known.name, email: known.email, password: known.password });
    const kc = codeOf(await mail.next(known.email)).code;
    await server.get(`/verify?email=${encodeURIComponent(known.email)}&token=${kc}&source=app`);
    const timeLogin = async (email, password) => {
      const t0 = performance.now();
      const r = await server.post('/login', { email, password });
      if (r.status !== 401) throw new Error(`expected 401, got ${r.status}`);
      return performance.now() - t0;
    };
    const wrongPassword = [];
    const unknownEmail = [];
    for (let i = 0; i < rounds; i++) {
      wrongPassword.push(await timeLogin(known.email, 'not the password'));
      unknownEmail.push(await timeLogin(`nobody${i}@example.com`, 'not the password'));
    }
    result.loginRefusal = { wrongPassword: summary(wrongPassword), unknownEmail: summary(unknownEmail) };

    // Memory of the (first) gateway, which holds every socket of the fleet.
    const gateway = server.at(0);
    result.idleMemory = memory(server.pid(0));
    // N sockets of 10 users, connected in batches of 100, every on-connect event received.
    const users = [];
    for (let i = 0; i < 10; i++) {
      const user = uniqueUser('fleet');
      await server.post('/signup', { name: user.name, email: user.email, password: user.password });
      const { code } = codeOf(await mail.next(user.email));
      const v = await server.get(`/verify?email=${encodeURIComponent(user.email)}&token=${code}&source=app`);
      users.push(v.body);
    }
    const fleet = [];
    const started = performance.now();
    for (let i = 0; i < sockets; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(sockets, i + 100); j++) {
        const s = socketFor(gateway, { transports: ['websocket'], auth: { accessToken: users[j % users.length].accessToken } });
        fleet.push(s);
        batch.push(s.waitFor('group-chat-list', { timeoutMs: 60000 }));
      }
      await Promise.all(batch);
    }
    result.connectAllMs = +(performance.now() - started).toFixed(0);
    result.connectedMemory = memory(server.pid(0));
    result.rssPerSocketKiB = +(((result.connectedMemory.rssMiB - result.idleMemory.rssMiB) * 1024) / sockets).toFixed(1);
    // One note to self from a socket of user 0 reaches that user's other sockets.
    const targets = fleet.filter((_, i) => i % users.length === 0).slice(1);
    const arrivals = targets.map((s) => s.waitFor('receive-self-message', { timeoutMs: 60000 }));
    const sendStart = performance.now();
    await fleet[0].request('send-self-message', { Content: 'fan-out' });
    await Promise.all(arrivals);
    result.fanOut = { recipients: targets.length, allReceivedMs: +(performance.now() - sendStart).toFixed(1) };
    result.peakMemory = memory(server.pid(0));
    for (const s of fleet) s.close();
  } finally {
    await server.stop();
    await mail.stop();
  }
  console.log(JSON.stringify(result, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
