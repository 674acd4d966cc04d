// docs/api.md "Files": an upload sent in a group reaches the members with the message and on the
// page, and can be fetched by a current member; after a kick it cannot. In the topology the upload
// and the fetch may go through different gateways (one shared database and file store).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { verifiedUser, connected, startShared, stopShared } from '../lib/harness.mjs';

let mail, server;
before(async () => ({ mail, server } = await startShared()));
after(() => stopShared({ mail, server }));

async function person() {
  const user = await verifiedUser(server, mail, undefined);
  user.s = await connected(server, user);
  return user;
}

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');

async function upload(user, bytes, type, name) {
  const r = await fetch(`${server.nextUrl()}/files?name=${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.accessToken}`, 'content-type': type },
    body: bytes,
  });
  return { status: r.status, body: await r.json() };
}

const download = (user, id, headers = {}) =>
  fetch(`${server.nextUrl()}/files/${id}`, { headers: { authorization: `Bearer ${user.accessToken}`, ...headers } });

test('an attachment sent in a group: delivered, paged, fetched by members, refused after a kick', async () => {
  const [admin, b, c] = [await person(), await person(), await person()];
  const created = await admin.s.request('create-group-chat', { Name: 'Pics', Description: 'd', Participants: [b.userId, c.userId] });
  assert.equal(created.success, 1, JSON.stringify(created));
  const g = created.GroupId;

  const up = await upload(admin, PNG, 'image/png', 'dot.png');
  assert.equal(up.status, 201, JSON.stringify(up.body));
  assert.equal(up.body.Sha256, createHash('sha256').update(PNG).digest('hex'));
  assert.equal(up.body.ContentType, 'image/png');
  const id = up.body.FileId;

  // Someone else's upload (or an unknown id) is refused, and nothing is sent.
  const theirs = await upload(b, Buffer.from('b'), 'text/plain', 'b.txt');
  assert.equal((await admin.s.request('send-group-message', { GroupId: g, Content: 'x', Attachments: [theirs.body.FileId] })).code, 'not_found');
  assert.equal((await admin.s.request('send-group-message', { GroupId: g, Content: 'x', Attachments: ['nosuchfile'] })).code, 'not_found');

  const sent = await admin.s.request('send-group-message', { GroupId: g, Content: 'look', Attachments: [id] });
  assert.equal(sent.success, 1, JSON.stringify(sent));
  const expected = [{ FileId: id, Name: 'dot.png', Size: PNG.length, ContentType: 'image/png' }];
  const delivered = await b.s.waitFor('receive-group-message', { pred: (m) => m.MessageId === sent.MessageId });
  assert.deepEqual(delivered.Attachments, expected);
  await b.s.request('fetch-group-chat', { GroupId: g });
  const paged = await b.s.waitFor('group-chat', { pred: (p) => p.Messages?.some((m) => m._id === sent.MessageId) });
  assert.deepEqual(paged.Messages.find((m) => m._id === sent.MessageId).Attachments, expected);

  // No `Attachments` on a message without any: the original payload as it was.
  const plain = await admin.s.request('send-group-message', { GroupId: g, Content: 'plain' });
  const plainDelivered = await b.s.waitFor('receive-group-message', { pred: (m) => m.MessageId === plain.MessageId });
  assert.equal('Attachments' in plainDelivered, false);

  for (const member of [admin, b, c]) {
    const r = await download(member, id);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), PNG);
  }
  const part = await download(c, id, { range: 'bytes=0-7' });
  assert.equal(part.status, 206);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), PNG.subarray(0, 8));

  const kicked = await admin.s.request('kickout', { GroupId: g, Member: c.userId });
  assert.equal(kicked.success, 1);
  await c.s.waitFor('kicked-out');
  assert.equal((await download(c, id)).status, 404);
  assert.equal((await download(b, id)).status, 200);
  assert.equal((await fetch(`${server.nextUrl()}/files/${id}`)).status, 401);
  for (const p of [admin, b, c]) p.s.close();
});
