// docs/operations.md "Metrics and logs": /metrics of every process moves with the traffic, in
// Prometheus's text format; METRICS_PORT moves a gateway's off its public port; METRICS=off keeps none.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { MailSink, TOPOLOGY, startServer, verifiedUser, connected, startShared, stopShared } from '../lib/harness.mjs';

let mail, server;
before(async () => ({ mail, server } = await startShared()));
after(() => stopShared({ mail, server }));

/** The samples of a text exposition: `name{labels}` → value (summed over the gateways' views). */
function samples(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** The sum of every sample of `name` whose labels contain each of `labels` (`k="v"` strings). */
function total(map, name, ...labels) {
  let sum = 0;
  for (const [key, value] of map) {
    const base = key.split('{')[0];
    if (base === name && labels.every((l) => key.includes(l))) sum += value;
  }
  return sum;
}

async function metricsOf(url) {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200, `${url}/metrics`);
  assert.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return samples(await response.text());
}

/** Every gateway's metrics, merged (each counts its own sockets and requests). */
async function gatewayMetrics() {
  const merged = new Map();
  for (const url of server.urls) {
    for (const [k, v] of await metricsOf(url)) merged.set(k, (merged.get(k) ?? 0) + v);
  }
  return merged;
}

test('requests, commands, appends, projections and sockets show on /metrics', async () => {
  const before = await gatewayMetrics();
  const a = await verifiedUser(server, mail);
  const socket = await connected(server, a);
  for (let i = 0; i < 3; i++) {
    assert.equal((await socket.request('send-self-message', { Content: `metric ${i}` })).success, 1);
  }
  assert.equal((await socket.request('send-self-message', { Content: '' })).success, -1);
  const after = await gatewayMetrics();
  const grew = (name, ...labels) => total(after, name, ...labels) - total(before, name, ...labels);

  assert.ok(total(after, 'chat_sockets_connected') >= 1, 'a socket is counted while connected');
  assert.equal(grew('chat_socket_requests_total', 'event="send-self-message"', 'outcome="ok"'), 3);
  assert.equal(grew('chat_socket_requests_total', 'event="send-self-message"', 'outcome="bad_request"'), 1);
  assert.ok(grew('chat_socket_request_seconds_count', 'event="send-self-message"') >= 4);
  assert.ok(grew('chat_http_requests_total', 'route="/signup"', 'status="201"') + grew('chat_http_requests_total', 'route="/signup"', 'status="200"') >= 1);

  // Where commands are decided, stored and projected: the gateway all-in-one, the services in the topology.
  const side = TOPOLOGY
    ? async (name) => metricsOf(readFileSync(join(server.dataDir, `${name}.health`), 'utf8').trim())
    : async () => after;
  const command = await side('command-service');
  assert.ok(total(command, 'chat_commands_total', 'outcome="ok"') >= 3);
  assert.ok(total(command, 'chat_events_appended_total') >= 3);
  assert.ok(total(command, 'chat_append_batch_size_count') >= 1);
  const projection = await side('projection-service');
  assert.ok(total(projection, 'chat_events_projected_total', 'projector="read_models"') >= 3);
  if (TOPOLOGY) {
    assert.equal(total(command, 'chat_nats_connected'), 1);
    assert.ok(total(command, 'chat_events_relayed_total') >= 3);
  }
  socket.close();
});

const freePort = () =>
  new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

test('METRICS_PORT serves /metrics apart and 404s it on the public port; METRICS=off keeps none', { skip: TOPOLOGY && 'all-in-one settings' }, async () => {
  const port = await freePort();
  const own = new MailSink();
  await own.start();
  const apart = await startServer({ env: { METRICS_PORT: String(port) }, mail: own });
  try {
    assert.equal((await fetch(`${apart.url}/metrics`)).status, 404);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(text, /# TYPE chat_http_requests_total counter/);
  } finally {
    await apart.stop();
  }
  const off = await startServer({ env: { METRICS: 'off' }, mail: own });
  try {
    assert.equal((await fetch(`${off.url}/metrics`)).status, 404);
  } finally {
    await off.stop();
    await own.stop();
  }
});
