// Groups the samples of `perf script -F comm,tid,ip,sym` (call graphs, leaf first) of the
// all-in-one server by the stage of a 1:1 message they were spent in, and prints a Markdown table.
// Used by infra/scripts/send-profile, which gives the CPU time and the message count.
//
//   node send-stages.mjs PERF_SCRIPT_TEXT --cpu-seconds S --messages N
//
// A sample goes to the innermost frame that names a stage (a serializer called from delivery is
// encoding; a futex woken from the event store's channel is a wake-up). SQLite runs on sqlx's
// worker threads, one per connection, where the stack no longer says who asked: each such thread is
// told apart by what it does: the event store's writer is the one whose commits fsync (WAL,
// synchronous=FULL), the others are the read models' connections (projection and queries). Since
// the SQLite event store's writer has a thread of its own (`event-writer`), every sqlx worker is a
// read models' connection.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'cpu-seconds': { type: 'string' }, messages: { type: 'string' } },
});
const text = readFileSync(positionals[0], 'utf8');
const cpuSeconds = Number(opt['cpu-seconds'] ?? NaN);
const messages = Number(opt.messages ?? NaN);

// Innermost match wins; order matters only among patterns of one frame.
const STAGES = [
  [/fsync|fdatasync|jbd2|blkdev_issue_flush/, 'SQLite: fsync (kernel)'],
  [/serde_json::ser|serde::ser::|::serialize|socketioxide::packet::.*(encode|Packet.*into)|engineioxide::.*encode/, 'encode'],
  [/serde_json::de|serde::de::|::deserialize|socketioxide::(parser|packet)|engineioxide::.*(decode|Packet.*from)/, 'decode'],
  [/gateway::socket::requests/, 'decode'],
  [/command_service::domain/, 'authorize + decide (the aggregate)'],
  [/infra::event_store/, 'append (the writer task)'],
  [/projection_service/, 'project (the projector task)'],
  [/gateway::delivery/, 'deliver (audience, rooms)'],
  [/gateway::socket::reply/, 'ack'],
  [/command_service::app/, 'route, batch, cached state'],
  [/gateway::socket|gateway::state|gateway::limits/, 'request queue and dispatch'],
  [/\btcp_|\bsock_|\bskb_|\bip_|__sys_sendto|__sys_recvfrom|\bnet_rx|\bloopback|__dev_queue_xmit|\bsock_/, 'TCP (kernel)'],
  [/tungstenite|engineioxide|socketioxide|hyper::|axum::/, 'WebSocket, Engine.IO, Socket.IO'],
  [/futex|\btry_to_wake_up|\bschedule\b|__schedule|epoll|\bep_poll|tokio::runtime|parking_lot|std::thread::park|mio::/, 'threads: scheduling, wake-ups, polling'],
  [/sqlite3|sqlx_sqlite|sqlx_core|sqlx::/, 'sqlx on the tokio threads (pool, Any driver, channels)'],
  [/\bmi_|_mi_|mimalloc/, 'allocator'],
];

function stageOf(frames) {
  for (const f of frames) {
    for (const [re, stage] of STAGES) if (re.test(f)) return stage;
  }
  return 'other';
}

// Samples: a header line (comm tid), then frames, then a blank line.
const samples = [];
for (const block of text.split(/\n\s*\n/)) {
  const lines = block.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) continue;
  const head = lines[0].trim().match(/^(.*?)\s+(\d+)\s*$/);
  if (!head) continue;
  const frames = lines.slice(1).map((l) => l.trim().replace(/^[0-9a-f]+\s+/, ''));
  samples.push({ comm: head[1], tid: head[2], frames });
}
if (samples.length === 0) {
  console.error('send-stages: no samples');
  process.exit(1);
}

// SQLite worker threads: without a writer thread of its own, the one with the most fsync samples
// is the event store's writer.
const ownWriter = samples.some((s) => s.comm.startsWith('event-writer'));
const sqliteThreads = new Map();
for (const s of samples) {
  if (!s.comm.startsWith('sqlx-sqlite')) continue;
  const t = sqliteThreads.get(s.tid) ?? { all: 0, fsync: 0 };
  t.all += 1;
  if (s.frames.some((f) => STAGES[0][0].test(f))) t.fsync += 1;
  sqliteThreads.set(s.tid, t);
}
const writer = ownWriter ? undefined : [...sqliteThreads.entries()].sort((a, b) => b[1].fsync - a[1].fsync)[0]?.[0];

// What a SQLite worker thread was doing: waiting for or handing over work (sqlx sends each
// statement to the connection's thread over a channel and back), file I/O, or SQLite itself.
function sqliteWork(frames) {
  if (frames.some((f) => STAGES[0][0].test(f))) return 'fsync';
  if (frames.some((f) => /__x64_sys_futex|flume::|std::thread::park|futex_wait|futex_wake/.test(f))) return 'hand-offs (channel, futex)';
  if (frames.some((f) => /__x64_sys_(pwrite|pread|write|read|fcntl|openat|close)|__do_sys_newfstatat/.test(f))) return 'file I/O (pwrite, pread, locks)';
  return 'SQLite (and the writer\'s own code)';
}

const tally = new Map();
const add = (stage) => tally.set(stage, (tally.get(stage) ?? 0) + 1);
for (const s of samples) {
  if (s.comm.startsWith('event-writer')) {
    add(`append: the event store's writer thread — ${sqliteWork(s.frames)}`);
  } else if (s.comm.startsWith('sqlx-sqlite')) {
    const who = s.tid === writer ? 'append: SQLite on the event store\'s connection' : 'project: SQLite on the read models\' connections';
    add(`${who} — ${sqliteWork(s.frames)}`);
  } else {
    add(stageOf(s.frames));
  }
}

const total = samples.length;
const perMessageUs = (n) => (Number.isFinite(cpuSeconds) && messages > 0 ? ((cpuSeconds * n) / total / messages) * 1e6 : NaN);
const rows = [...tally.entries()].sort((a, b) => b[1] - a[1]);
console.log(`${total} samples; ${Number.isFinite(cpuSeconds) ? cpuSeconds.toFixed(2) : '?'} s of server CPU for ${messages || '?'} messages` +
  (Number.isFinite(perMessageUs(total)) ? ` (${perMessageUs(total).toFixed(0)} µs a message)` : ''));
console.log('');
console.log('| stage | share of the server\'s CPU | CPU a message (µs) |');
console.log('|---|---|---|');
for (const [stage, n] of rows) {
  const us = perMessageUs(n);
  console.log(`| ${stage} | ${((100 * n) / total).toFixed(1)} % | ${Number.isFinite(us) ? us.toFixed(1) : '—'} |`);
}
const threads = new Map();
for (const s of samples) {
  const kind = s.comm.startsWith('sqlx-sqlite') ? 'sqlx SQLite workers' : s.comm.startsWith('tokio-runtime') ? 'tokio workers' : s.comm;
  threads.set(kind, (threads.get(kind) ?? 0) + 1);
}
console.log('');
console.log(`By thread: ${[...threads.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${((100 * n) / total).toFixed(1)} %`).join(', ')}.`);
const alloc = samples.filter((s) => s.frames.slice(0, 3).some((f) => /\bmi_|_mi_|mimalloc|malloc|free|realloc/.test(f))).length;
console.log(`Allocator frames at the leaf (within whatever stage): ${((100 * alloc) / total).toFixed(1)} %.`);
