// The whole slice with both stores on PostgreSQL (EVENT_STORE_URL and DATABASE_URL), across a
// restart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MailSink, startServer, verifiedUser, login, connected, tempPostgres } from '../lib/harness.mjs';

test('signup → verify → connect → send → receive → restart → fetch, on PostgreSQL', async () => {
  const mail = await new MailSink().start();
  const pg = await tempPostgres();
  const env = { EVENT_STORE_URL: pg.url, DATABASE_URL: pg.url };
  let server;
  try {
    server = await startServer({ mail, env });
    const user = await verifiedUser(server, mail);
    const a = await connected(server, user);
    const b = await connected(server, { accessToken: (await login(server, user)).accessToken });
    const ack = await a.request('send-self-message', { Content: 'stored in PostgreSQL' });
    assert.equal(ack.success, 1);
    assert.equal((await b.waitFor('receive-self-message')).MessageId, ack.MessageId);
    const search = await b.request('search-user', { Name: user.name, Type: 'Search' });
    assert.deepEqual(search.Users, [], 'the searcher is not found by their own search');
    a.close();
    b.close();
    await server.stop({ keepData: true });
    server = await startServer({ mail, env, dataDir: server.dataDir, adopt: true });
    const again = await connected(server, await login(server, user));
    const page = await again.request('fetch-self-chat', {});
    assert.deepEqual(page.Messages.map((m) => m._id), [ack.MessageId]);
    again.close();
  } finally {
    await server?.stop();
    pg.drop();
    await mail.stop();
  }
});
