// docs/operations.md "Traces": with OTEL_EXPORTER_OTLP_ENDPOINT set, every process exports its
// spans over OTLP, and one socket request's trace runs through every process that handles it:
// the gateway that took the request, the command-service that decided it, the projection-service
// that applied its event and the gateways that delivered it. Here the collector is a small
// OTLP/HTTP (JSON) receiver in this test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { TOPOLOGY, verifiedUser, connected, startShared, stopShared } from '../lib/harness.mjs';

/** An OTLP/HTTP receiver keeping every span it is sent, with the name of the service that sent it. */
class Collector {
  constructor() {
    this.spans = [];
    this.server = createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/v1/traces') {
          try {
            this.take(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (e) {
            this.errors = [...(this.errors ?? []), `${req.headers['content-type']}: ${e.message}`];
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
  }

  take(body) {
    for (const resource of body.resourceSpans ?? []) {
      const service = attributes(resource.resource?.attributes)['service.name'];
      for (const scope of resource.scopeSpans ?? []) {
        for (const span of scope.spans ?? []) {
          this.spans.push({
            service,
            name: span.name,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId ?? '',
            attributes: attributes(span.attributes),
          });
        }
      }
    }
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  stop() {
    const closed = new Promise((resolve) => this.server.close(resolve));
    // The exporters keep their connections open.
    this.server.closeAllConnections();
    return closed;
  }
}

/** OTLP key/value attributes as a plain object of their values. */
function attributes(list = []) {
  const out = {};
  for (const { key, value } of list) {
    out[key] = value?.stringValue ?? value?.intValue ?? value?.boolValue ?? value?.doubleValue;
  }
  return out;
}

const collector = new Collector();
let mail, server;
before(async () => {
  const endpoint = await collector.start();
  ({ mail, server } = await startShared({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      // Export every 100 ms rather than every 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  }));
});
after(async () => {
  await stopShared({ mail, server });
  await collector.stop();
});

/** Polls until `find` returns something, for at most `ms`. */
async function eventually(what, find, ms = 20000) {
  const until = Date.now() + ms;
  for (;;) {
    const found = find();
    if (found) return found;
    if (Date.now() > until) {
      const seen = collector.spans.map((s) => `${s.service}/${s.name}`);
      assert.fail(`${what}; spans seen: ${JSON.stringify([...new Set(seen)])} ${collector.errors ?? ''}`);
    }
    await sleep(100);
  }
}

test('one socket request is one trace through decide, append, project and deliver, in every process', async () => {
  const [alice, bob] = await Promise.all([verifiedUser(server, mail), verifiedUser(server, mail)]);
  // In the topology the two users are on different gateways.
  const a = await connected(server.at(0), alice);
  const b = await connected(server.at(server.urls.length - 1), bob);
  try {
    const created = await a.request('create-personal-chat', { Receiver: bob.userId });
    assert.equal(created.success, 1, JSON.stringify(created));
    const ack = await a.request('send-personal-message', { ChatId: created.ChatId, Content: 'traced' });
    assert.equal(ack.success, 1, JSON.stringify(ack));
    await b.waitFor('receive-personal-message', { pred: (p) => p.Content === 'traced' });

    const request = await eventually('the gateway exports the socket request', () =>
      collector.spans.find((s) => s.name === 'socket request' && s.attributes.event === 'send-personal-message'),
    );
    assert.equal(request.service, 'gateway');
    const trace = () => collector.spans.filter((s) => s.traceId === request.traceId);
    const named = (name) => trace().filter((s) => s.name === name);
    const wanted = ['dispatch', 'command', 'decide', 'append', 'project', 'deliver'];
    await eventually('every stage in the request\'s trace', () => wanted.every((n) => named(n).length > 0));

    const [dispatch] = named('dispatch');
    const [command] = named('command');
    assert.equal(dispatch.parentSpanId, request.spanId, 'dispatch is part of the socket request');
    assert.equal(command.parentSpanId, dispatch.spanId, 'the command continues the dispatch');
    for (const name of ['project', 'deliver']) {
      for (const span of named(name)) {
        assert.equal(span.parentSpanId, command.spanId, `${name} continues the command that wrote the event`);
        assert.equal(span.attributes.correlation_id, command.attributes.correlation_id, `${name} names the request`);
      }
    }
    assert.equal(dispatch.attributes.correlation_id, command.attributes.correlation_id);
    assert.ok(named('project').some((s) => s.attributes.event === 'MessageSent'));

    const services = (name) => new Set(named(name).map((s) => s.service));
    if (TOPOLOGY) {
      assert.deepEqual([...services('command')], ['command-service']);
      assert.deepEqual([...services('append')], ['command-service']);
      assert.deepEqual([...services('project')], ['projection-service']);
      assert.deepEqual([...services('deliver')], ['gateway']);
      // Each gateway delivers every event to its own sockets: the trace ends on both.
      await eventually('both gateways deliver in the trace', () => named('deliver').filter((s) => s.attributes.event === 'MessageSent').length >= 2);
    } else {
      assert.deepEqual([...new Set(trace().map((s) => s.service))], ['gateway'], 'all-in-one: one process');
    }
  } finally {
    a.close();
    b.close();
  }
});

test('an HTTP request is a span of its own, named by its route', async () => {
  const r = await server.get('/health');
  assert.equal(r.status, 200);
  const span = await eventually('the /health request span', () =>
    collector.spans.find((s) => s.name === 'http request' && s.attributes.route === '/health'),
  );
  assert.equal(span.attributes.method, 'GET');
  assert.equal(String(span.attributes.status), '200');
});
