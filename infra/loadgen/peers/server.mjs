// A plain Express + Socket.IO 4 server of the ExpressChat protocol (docs/api.md), written to be
// measured beside the Rust server with the same loadgen scenarios. It speaks the part of the
// protocol loadgen uses: sign-up with a mailed code, verify, login; the handshake and the
// on-connect lists; personal chats (create, send, pages); groups (create, add a member, send).
// Each request is checked (membership, admin, payload) and answered with an acknowledgement.
//
//   node server.mjs --store memory|sqlite     PORT, HOST, DATA_DIR, SMTP_URL from the environment
//
// `memory` keeps everything in the process; `sqlite` writes every change to DATA_DIR/peer.db (WAL,
// synchronous=FULL) before it answers.

import { randomBytes, randomInt, randomUUID, scrypt, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import express from 'express';
import nodemailer from 'nodemailer';
import { Server } from 'socket.io';
import { MemoryStore } from './store-memory.mjs';

const { values: args } = parseArgs({ options: { store: { type: 'string', default: 'memory' } } });
const HOST = process.env.HOST ?? '127.0.0.1';
const PORT = Number(process.env.PORT ?? 3000);
const DATA_DIR = process.env.DATA_DIR ?? './peer-data';
const MAX_CONTENT = 4000;
const MAX_MEMBERS = 1000;
const hashPassword = promisify(scrypt);

async function openStore(kind) {
  if (kind === 'memory') return new MemoryStore();
  if (kind === 'sqlite') {
    const { SqliteStore } = await import('./store-sqlite.mjs');
    mkdirSync(DATA_DIR, { recursive: true });
    return new SqliteStore(join(DATA_DIR, 'peer.db'));
  }
  throw new Error(`--store must be memory or sqlite, not ${kind}`);
}

const store = await openStore(args.store);
const mailer = process.env.SMTP_URL
  ? nodemailer.createTransport(process.env.SMTP_URL)
  : nodemailer.createTransport({ jsonTransport: true });
const now = () => new Date().toISOString();
const text = (v, max) => typeof v === 'string' && v.trim().length > 0 && v.length <= max;

// ---- HTTP: accounts -------------------------------------------------------------------------

const app = express();
app.set('case sensitive routing', false);
app.use(express.json({ limit: '16kb' }));

app.get(['/health', '/ready'], (_req, res) => res.json({ success: 1, message: 'ok' }));

app.post('/signup', async (req, res) => {
  const { name, email, password } = req.body ?? {};
  if (!text(name, 64) || !text(email, 254) || !/^[^@\s]+@[^@\s]+$/.test(email) || !text(password, 256) || password.length < 8) {
    return res.status(400).json({ success: -1, message: 'Invalid name, email or password' });
  }
  const known = store.userByEmail(email);
  if (known?.verified) return res.status(409).json({ success: 0, message: 'User Already Exists' });
  const salt = randomBytes(16).toString('hex');
  const hash = (await hashPassword(password, salt, 32)).toString('hex');
  const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
  store.putUser({ id: known?.id ?? randomUUID(), name, email, hash, salt, verified: false, code });
  const link = `http://${HOST}:${PORT}/verify?email=${encodeURIComponent(email)}&token=${code}`;
  try {
    await mailer.sendMail({ from: 'peer@localhost', to: email, subject: 'Verify', text: `Code ${code}: ${link}` });
  } catch (e) {
    console.error(`mail to ${email}: ${e.message}`);
    return res.status(500).json({ success: -1, message: 'Could not send mail' });
  }
  res.json({ success: 1, message: 'Verification mail sent' });
});

function issueTokens(userId) {
  const accessToken = randomBytes(32).toString('hex');
  const refreshToken = randomBytes(32).toString('hex');
  store.addSession(accessToken, userId);
  return { accessToken, refreshToken };
}

app.get('/verify', (req, res) => {
  const { email, token } = req.query;
  const user = typeof email === 'string' ? store.userByEmail(email) : undefined;
  if (!user || user.verified || typeof token !== 'string' || user.code !== token) {
    return res.status(400).json({ success: 0, message: 'Invalid or expired code' });
  }
  store.setVerified(user.id);
  res.json({ success: 1, message: 'Verified', userId: user.id, ...issueTokens(user.id) });
});

app.post('/login', async (req, res) => {
  const { email, password } = req.body ?? {};
  if (typeof email !== 'string' || typeof password !== 'string') {
    return res.status(400).json({ success: -1, message: 'Missing email or password' });
  }
  const user = store.userByEmail(email);
  const hash = (await hashPassword(password, user?.salt ?? 'none', 32));
  if (!user || !timingSafeEqual(hash, Buffer.from(user.hash, 'hex'))) {
    return res.status(401).json({ success: 0, message: 'Invalid email or password' });
  }
  if (!user.verified) return res.status(403).json({ success: -2, message: 'Not verified' });
  res.json({ success: 1, message: 'Logged in', userId: user.id, userName: user.name, ...issueTokens(user.id) });
});

// ---- Socket.IO ------------------------------------------------------------------------------

const http = createServer(app);
const io = new Server(http, { maxHttpBufferSize: 64 * 1024 });

class Refusal extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
const refuse = (code, message) => { throw new Refusal(code, message); };

// Runs a request's handler; its result (or refusal) goes to the acknowledgement when there is one,
// else a refusal is emitted as `request-failed`.
function on(socket, event, handler) {
  socket.on(event, (data, ack) => {
    let answer;
    try {
      if (data === null || typeof data !== 'object') refuse('bad_request', 'payload must be an object');
      answer = { success: 1, ...handler(data) };
    } catch (e) {
      const code = e instanceof Refusal ? e.code : 'internal';
      if (code === 'internal') console.error(`${event}: ${e.stack}`);
      answer = { success: code === 'internal' || code === 'bad_request' ? -1 : 0, code, message: e.message };
      if (typeof ack !== 'function') socket.emit('request-failed', { Event: event, code, message: e.message });
    }
    if (typeof ack === 'function') ack(answer);
  });
}

function memberOf(chatId, userId, kind) {
  if (typeof chatId !== 'string') refuse('bad_request', 'chat id must be a string');
  const chat = store.chat(chatId);
  if (!chat || chat.kind !== kind || !store.isMember(chatId, userId)) refuse('not_found', 'no such chat');
  return chat;
}

function content(v) {
  if (!text(v, MAX_CONTENT)) refuse('bad_request', `content must be 1–${MAX_CONTENT} characters`);
  return v;
}

function userName(id) {
  return store.userById(id)?.name ?? '';
}

io.on('connection', (socket) => {
  const { accessToken, token } = socket.handshake.auth ?? {};
  const userId = store.userByToken(accessToken ?? token ?? socket.handshake.query.accessToken);
  if (!userId) {
    socket.emit('auth-failure', { reason: 'invalid token' });
    socket.disconnect(true);
    return;
  }
  const me = store.userById(userId);
  socket.join(userId);
  socket.emit('user-id', { userId, userName: me.name });
  socket.emit('personal-chat-list', {
    PersonalChatList: store.chatList(userId, 'personal').map((c) => ({
      _id: c.id, Partner: userName(c.partnerId), PartnerId: c.partnerId, LastChat: c.lastAt, Unread: c.unread,
    })),
  });
  socket.emit('group-chat-list', {
    GroupChatList: store.chatList(userId, 'group').map((c) => ({ _id: c.id, Name: c.name, LastChat: c.lastAt, Unread: c.unread })),
  });

  on(socket, 'create-personal-chat', ({ Receiver }) => {
    const partner = typeof Receiver === 'string' ? store.userById(Receiver) : undefined;
    if (!partner?.verified || Receiver === userId) refuse('not_found', 'no such user');
    let chatId = store.personalChatOf(userId, Receiver);
    if (!chatId) {
      chatId = randomUUID();
      store.createChat({ id: chatId, kind: 'personal', members: [userId, Receiver], at: now() });
      io.to(Receiver).emit('create-personal-chat-partner', { ChatId: chatId, Partner: me.name });
    }
    socket.emit('create-personal-chat-creator', { ChatId: chatId, Partner: partner.name });
    return { ChatId: chatId };
  });

  on(socket, 'send-personal-message', ({ ChatId, Content }) => {
    memberOf(ChatId, userId, 'personal');
    const message = { id: randomUUID(), chatId: ChatId, senderId: userId, content: content(Content), at: now() };
    store.appendMessage(message);
    // The partner's sockets and the sender's other ones.
    socket.to(store.members(ChatId)).emit('receive-personal-message', {
      ChatId, Content: message.content, Sender: me.name, SenderId: userId, MessageId: message.id, Timestamp: message.at,
    });
    return { MessageId: message.id };
  });

  on(socket, 'fetch-personal-chat', ({ ChatId, Before, Limit }) => {
    memberOf(ChatId, userId, 'personal');
    const limit = Limit === undefined ? 50 : Limit;
    if (!Number.isInteger(limit) || limit < 1) refuse('bad_request', 'Limit must be a positive integer');
    if (Before !== undefined && typeof Before !== 'string') refuse('bad_request', 'Before must be a message id');
    const page = store.page(ChatId, Before ?? null, Math.min(limit, 200));
    if (!page) refuse('not_found', 'no such message');
    const partnerId = store.members(ChatId).find((m) => m !== userId);
    socket.emit('personal-chat', {
      Messages: page.messages.map((m) => ({ _id: m.id, Sender: m.senderId, Content: m.content, Timestamp: m.at })),
      UserId: userId, User: me.name, Partner: userName(partnerId), HasMore: page.hasMore,
    });
    return {};
  });

  on(socket, 'create-group-chat', ({ Name, Description, Participants }) => {
    if (!text(Name, 64) || (Description !== undefined && typeof Description !== 'string')) refuse('bad_request', 'bad name or description');
    if (!Array.isArray(Participants)) refuse('bad_request', 'Participants must be a list');
    const others = new Set(Participants);
    if (others.size !== Participants.length || others.has(userId) || others.size + 1 > MAX_MEMBERS) {
      refuse('bad_request', 'duplicate participants, or too many');
    }
    for (const p of others) if (typeof p !== 'string' || !store.userById(p)?.verified) refuse('not_found', 'no such user');
    const groupId = randomUUID();
    store.createChat({ id: groupId, kind: 'group', name: Name, description: Description ?? '', admin: userId, members: [userId, ...others], at: now() });
    socket.emit('create-group-chat-creator', { GroupId: groupId, Name });
    if (others.size > 0) io.to([...others]).emit('create-group-chat-receiver', { GroupId: groupId, Name });
    return { GroupId: groupId };
  });

  on(socket, 'add-member', ({ GroupId, Member }) => {
    const group = memberOf(GroupId, userId, 'group');
    if (group.admin !== userId) {
      socket.emit('add-member-fail', { Message: 'Only the admin may add members' });
      refuse('forbidden', 'only the admin may add members');
    }
    if (typeof Member !== 'string' || !store.userById(Member)?.verified) refuse('not_found', 'no such user');
    const members = store.members(GroupId);
    if (members.includes(Member)) {
      socket.emit('add-member-fail', { Message: 'Already in Group' });
      refuse('conflict', 'already in the group');
    }
    if (members.length >= MAX_MEMBERS) refuse('conflict', 'the group is full');
    store.addMember(GroupId, Member);
    io.to(members).emit('add-member-success', { ChatId: GroupId, Member });
    io.to(Member).emit('new-grp-added', { ChatId: GroupId });
    return {};
  });

  on(socket, 'send-group-message', ({ GroupId, Content }) => {
    memberOf(GroupId, userId, 'group');
    const message = { id: randomUUID(), chatId: GroupId, senderId: userId, content: content(Content), at: now() };
    store.appendMessage(message);
    const others = store.members(GroupId).filter((m) => m !== userId);
    if (others.length > 0) {
      io.to(others).emit('receive-group-message', {
        ChatId: GroupId, Sender: me.name, SenderId: userId, Content: message.content, MessageId: message.id, Timestamp: message.at,
      });
    }
    return { MessageId: message.id };
  });
});

http.listen(PORT, HOST, () => {
  console.log(`listening on http://${HOST}:${PORT} (store: ${args.store}${store.durable ? ', synchronous=FULL' : ''})`);
});
process.on('SIGTERM', () => {
  io.close();
  http.close(() => process.exit(0));
});
