// Design target: all-in-one, 2 cores, loopback, at least 10,000 acknowledged and delivered 1:1
// messages a second. P pairs of users; each sender keeps W sends in flight on one socket for D
// seconds; every send must be acknowledged and delivered to its partner's socket.
//
//   cargo build --release -p gateway
//   cd e2e && SERVER_BIN=../target/release/gateway node throughput.mjs [--pairs 150] [--window 12] [--seconds 10]
//
// The client runs on the same machine and shares its cores; the number is for both together.

import { performance } from 'node:perf_hooks';
import { MailSink, startServer, verifiedUser, connected } from './lib/harness.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const pairs = arg('pairs', 150);
const windowSize = arg('window', 12);
const seconds = arg('seconds', 10);

async function main() {
  const mail = await new MailSink().start();
  const server = await startServer({ mail, env: { RUST_LOG: 'warn,gateway::app=info', AUTH_RATE_LIMIT: '100000/min' } });
  try {
    const links = [];
    for (let i = 0; i < pairs; i++) {
      const [a, b] = [await verifiedUser(server, mail), await verifiedUser(server, mail)];
      const sa = await connected(server, a, { transports: ['websocket'] });
      const sb = await connected(server, b, { transports: ['websocket'] });
      const chat = (await sa.request('create-personal-chat', { Receiver: b.userId })).ChatId;
      links.push({ sa, sb, chat, delivered: 0 });
    }
    for (const link of links) {
      link.sb.on('receive-personal-message', () => {
        link.delivered += 1;
      });
    }
    let acked = 0;
    let failed = 0;
    const latencies = [];
    const deadline = performance.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(
      links.map(async (link) => {
        const inFlight = new Set();
        while (performance.now() < deadline) {
          while (inFlight.size < windowSize && performance.now() < deadline) {
            const t0 = performance.now();
            const p = link.sa
              .timeout(30000)
              .emitWithAck('send-personal-message', { ChatId: link.chat, Content: 'load' })
              .then((ack) => {
                if (ack.success === 1) {
                  acked += 1;
                  if (latencies.length < 200000) latencies.push(performance.now() - t0);
                } else failed += 1;
              })
              .catch(() => {
                failed += 1;
              })
              .finally(() => inFlight.delete(p));
            inFlight.add(p);
          }
          await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
      }),
    );
    const ackedAt = performance.now();
    // Wait for the deliveries still in flight.
    const expected = acked;
    const total = () => links.reduce((n, l) => n + l.delivered, 0);
    const waitUntil = performance.now() + 30000;
    while (total() < expected && performance.now() < waitUntil) await new Promise((r) => setTimeout(r, 10));
    const deliveredAt = performance.now();
    latencies.sort((x, y) => x - y);
    const q = (p) => +latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(1);
    console.log(JSON.stringify({
      pairs, window: windowSize, seconds,
      acked, failed, delivered: total(),
      ackedPerSecond: Math.round(acked / ((ackedAt - started) / 1000)),
      deliveredPerSecond: Math.round(total() / ((deliveredAt - started) / 1000)),
      ackLatencyMs: { p50: q(0.5), p99: q(0.99) },
    }, null, 2));
    for (const l of links) {
      l.sa.close();
      l.sb.close();
    }
  } finally {
    await server.stop();
    await mail.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
