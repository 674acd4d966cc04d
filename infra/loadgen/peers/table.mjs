// The side-by-side table of a bench-peers run: reads OUT/round-*/<server>/<scenario>.json (loadgen
// reports) and prints Markdown, the median over rounds in each cell, and this server's figure
// divided by each peer's.
//
//   node table.mjs OUT [--step S] [--commit C] [--cpu MODEL]

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { step: { type: 'string' }, commit: { type: 'string' }, cpu: { type: 'string' } },
});
const out = positionals[0];
if (!out) {
  console.error('usage: node table.mjs OUT [--step S] [--commit C] [--cpu MODEL]');
  process.exit(2);
}

const SERVERS = [['rust', 'this server'], ['node-memory', 'Node, in memory'], ['node-sqlite', 'Node + SQLite']];
const rounds = readdirSync(out).filter((d) => d.startsWith('round-')).sort();

function reports(server, scenario) {
  return rounds
    .map((r) => join(out, r, server, `${scenario}.json`))
    .filter(existsSync)
    .map((f) => JSON.parse(readFileSync(f, 'utf8')));
}

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const fixedStep = (r) => r.results.steps?.[0] ?? {};
const rampBest = (r) => (r.results.steps ?? []).filter((s) => s.pass).at(-1) ?? {};
// Each row: label, unit, which way is better, and how to read the figure from a server's reports.
const ROWS = [
  ['1:1 ramp: highest passing rate, ack p99 ≤ 50 ms (0: none)', 'msg/s', 'higher', 'ramp', (r) => r.results.highest_passing_rate ?? 0],
  ['1:1 ramp: server CPU a message at that rate', 'ms', 'lower', 'ramp', (r) => rampBest(r).server_cpu_s_per_1000],
  ['fixed 1:1 rate: ack p50', 'ms', 'lower', 'fixed', (r) => fixedStep(r).ack_p50_ms],
  ['fixed 1:1 rate: ack p99', 'ms', 'lower', 'fixed', (r) => fixedStep(r).ack_p99_ms],
  ['fixed 1:1 rate: server CPU a message', 'ms', 'lower', 'fixed', (r) => fixedStep(r).server_cpu_s_per_1000],
  ['fan-out: worst last delivery of 5 messages', 'ms', 'lower', 'fanout', (r) => r.results.worst_last_delivery_ms],
  ['idle: RSS a socket (second half)', 'KiB', 'lower', 'idle', (r) => r.results.server_rss_per_socket_kib_marginal?.server],
  ['idle: connects a second', '/s', 'higher', 'idle', (r) => r.results.connects_per_second],
  ['history: first page p99', 'ms', 'lower', 'history', (r) => r.results.first_page_p99_ms],
  ['history: deep page p99', 'ms', 'lower', 'history', (r) => r.results.deep_page_p99_ms],
  ['history: fill rate', 'msg/s', 'higher', 'history', (r) => r.results.fill_messages_per_s],
];

function fmt(x) {
  if (x === null) return '—';
  if (Number.isInteger(x) || Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  return x.toPrecision(3);
}

function params() {
  for (const [server] of SERVERS) {
    for (const s of ['ramp', 'fixed', 'fanout', 'idle', 'history']) {
      const r = reports(server, s)[0];
      if (r) return r;
    }
  }
  return null;
}

const any = params();
const lines = [];
const started = any ? any.started.slice(0, 10) : 'unknown date';
lines.push(`Peer comparison, ${started}, ${opt.cpu ?? any?.machine?.cpu_model ?? 'unknown CPU'} (${any?.machine?.cpus ?? '?'} CPUs), commit ${opt.commit ?? 'unknown'}; ` +
  `${rounds.length} round(s), ${opt.step ?? '?'} s steps; median of the rounds.`);
const sizes = [];
for (const [s, f] of [['ramp', (p) => `${p.pairs} pairs, ramp from ${p.start} by ${p.step}`], ['fixed', (p) => `fixed rate ${p.rates?.[0]}/s`],
  ['fanout', (p) => `${p.members} members`], ['idle', (p) => `${p.sockets} idle sockets of ${p.users} users`], ['history', (p) => `${p.messages} messages`]]) {
  const r = SERVERS.map(([k]) => reports(k, s)[0]).find(Boolean);
  if (r) sizes.push(f(r.params));
}
if (sizes.length) lines.push(`Sizes: ${sizes.join('; ')}.`);
lines.push('');
lines.push(`| | ${SERVERS.map(([, n]) => n).join(' | ')} | this ÷ in memory | this ÷ SQLite | better |`);
lines.push(`|---|${SERVERS.map(() => '---').join('|')}|---|---|---|`);
for (const [label, unit, better, scenario, read] of ROWS) {
  const cells = SERVERS.map(([k]) => median(reports(k, scenario).map((r) => read(r) ?? null)));
  if (cells.every((c) => c === null)) continue;
  const ratio = (peer) => (cells[0] === null || peer === null || peer === 0 ? '—' : `${(cells[0] / peer).toPrecision(2)}×`);
  lines.push(`| ${label} (${unit}) | ${cells.map(fmt).join(' | ')} | ${ratio(cells[1])} | ${ratio(cells[2])} | ${better} |`);
}
console.log(lines.join('\n'));
