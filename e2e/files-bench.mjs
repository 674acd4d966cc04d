// The files target of docs/benchmarks/README.md ("Files"): upload and download of a 25 MiB file on
// loopback (MiB/s, one at a time), and the server's RSS growth while 50 such uploads run at once.
//
//   cargo build --release -p gateway
//   cd e2e && npm ci && SERVER_BIN=../target/release/gateway node files-bench.mjs [--rounds 5] [--parallel 50]
//
// Prints one JSON document. Wall-clock, client and server together on one machine; the file store
// is the default folder under DATA_DIR.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { MailSink, startServer, verifiedUser } from './lib/harness.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('rounds', 5);
const parallel = arg('parallel', 50);
const SIZE = 25 * 1024 * 1024;

const rssMiB = (pid) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line.split(/\s+/)[1]) / 1024;
};

const mail = await new MailSink().start();
const server = await startServer({ mail });
try {
  const user = await verifiedUser(server, mail);
  const auth = { authorization: `Bearer ${user.accessToken}` };
  const body = Buffer.alloc(SIZE, 7);
  const upload = async () => {
    const r = await fetch(`${server.nextUrl()}/files`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body });
    if (r.status !== 201) throw new Error(`upload: ${r.status} ${await r.text()}`);
    return (await r.json()).FileId;
  };
  const download = async (id) => {
    const r = await fetch(`${server.nextUrl()}/files/${id}`, { headers: auth });
    let n = 0;
    for await (const chunk of r.body) n += chunk.length;
    if (n !== SIZE) throw new Error(`download: ${n} bytes`);
  };
  // Warm up once.
  await download(await upload());
  const up = [];
  const down = [];
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    const id = await upload();
    up.push(SIZE / 1048576 / ((performance.now() - t) / 1000));
    t = performance.now();
    await download(id);
    down.push(SIZE / 1048576 / ((performance.now() - t) / 1000));
  }
  const pid = server.pid();
  const before = rssMiB(pid);
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, 20);
  const t = performance.now();
  await Promise.all(Array.from({ length: parallel }, upload));
  const seconds = (performance.now() - t) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, rssMiB(pid));
  const median = (xs) => +[...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)].toFixed(1);
  console.log(
    JSON.stringify(
      {
        fileMiB: 25,
        rounds,
        uploadMiBps: median(up),
        downloadMiBps: median(down),
        parallelUploads: parallel,
        parallelSeconds: +seconds.toFixed(2),
        rssBeforeMiB: +before.toFixed(1),
        rssPeakMiB: +peak.toFixed(1),
        rssGrowthMiB: +(peak - before).toFixed(1),
      },
      null,
      2,
    ),
  );
} finally {
  await server.stop();
  await mail.stop();
}
