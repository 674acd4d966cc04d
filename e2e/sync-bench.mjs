// The catch-up target of docs/benchmarks/README.md ("Catch-up"): a user who missed 1,000 events
// across 50 chats asks `sync` for them; the time from the request to its acknowledgement, over
// many rounds.
//
//   cargo build --release -p gateway
//   cd e2e && npm ci && SERVER_BIN=../target/release/gateway node sync-bench.mjs [--rounds 200] [--chats 50] [--per-chat 20]
//   # the production topology (the catching-up socket on gateway 1):
//   cargo build --release --workspace && E2E_TOPOLOGY=1 TOPOLOGY_BIN_DIR=../target/release node sync-bench.mjs
//
// Prints one JSON document. Wall-clock, client and server together on one machine.

import { performance } from 'node:perf_hooks';
import { MailSink, startServer, verifiedUser, connected, TOPOLOGY } from './lib/harness.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('rounds', 200);
const chats = arg('chats', 50);
const perChat = arg('per-chat', 20);

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(2);
  return { n: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

async function ok(socket, event, payload) {
  const ack = await socket.request(event, payload, 60000);
  if (ack.success !== 1) throw new Error(`${event}: ${JSON.stringify(ack)}`);
  return ack;
}

async function main() {
  const mail = await new MailSink().start();
  const server = await startServer({ mail, env: { CREATE_RATE_LIMIT: '100000/min' } });
  try {
    const [author, reader] = [await verifiedUser(server, mail), await verifiedUser(server, mail)];
    const a = await connected(TOPOLOGY ? server.at(0) : server, author);
    const r = await connected(TOPOLOGY ? server.at(1) : server, reader);
    const groups = [];
    for (let i = 0; i < chats; i++) {
      groups.push((await ok(a, 'create-group-chat', { Name: `g${i}`, Description: '', Participants: [reader.userId] })).GroupId);
    }
    // Every group's creation delivered, so that the point taken is after all of them.
    for (const g of groups) await r.waitFor('create-group-chat-receiver', { pred: (p) => p.GroupId === g, timeoutMs: 60000 });
    const since = (await ok(r, 'sync', {})).Seq;
    r.close();
    // Sent in turns across the chats, as a day of chatting interleaves them.
    for (let m = 0; m < perChat; m++) {
      await Promise.all(groups.map((g) => ok(a, 'send-group-message', { GroupId: g, Content: `message ${m} of ${g}` })));
    }
    const catching = await connected(TOPOLOGY ? server.at(1) : server, reader);
    const first = await ok(catching, 'sync', { Since: since, Limit: 1000 });
    if (first.Events.length !== chats * perChat || first.HasMore) {
      throw new Error(`sync returned ${first.Events.length} events (HasMore ${first.HasMore}), expected ${chats * perChat}`);
    }
    const times = [];
    for (let i = 0; i < rounds; i++) {
      const started = performance.now();
      await ok(catching, 'sync', { Since: since, Limit: 1000 });
      times.push(performance.now() - started);
    }
    console.log(JSON.stringify({ mode: TOPOLOGY ? 'topology' : 'all-in-one', chats, events: chats * perChat, syncMs: summary(times) }, null, 2));
    a.close();
    catching.close();
  } finally {
    await server.stop();
    await mail.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
