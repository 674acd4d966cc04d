// Everything in one SQLite file, written before the server answers: WAL, synchronous=FULL, so an
// acknowledged message survives a crash of the process or of the machine. better-sqlite3 is
// synchronous: each write holds the event loop for its fsync, as a naive Node server's would.

import Database from 'better-sqlite3';
import { pairKey } from './store-memory.mjs';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
  hash TEXT NOT NULL, salt TEXT NOT NULL, verified INTEGER NOT NULL, code TEXT);
CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, user_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chats (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
  description TEXT NOT NULL, admin TEXT, pair TEXT UNIQUE, last_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (chat_id TEXT NOT NULL, user_id TEXT NOT NULL,
  unread INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (chat_id, user_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id);
CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  chat_id TEXT NOT NULL, sender_id TEXT NOT NULL, content TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_chat ON messages (chat_id, seq);
`;

export class SqliteStore {
  constructor(file) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
    const q = (sql) => this.db.prepare(sql);
    this.s = {
      putUser: q(`INSERT INTO users (id, name, email, hash, salt, verified, code)
        VALUES (@id, @name, @email, @hash, @salt, @verified, @code)
        ON CONFLICT (email) DO UPDATE SET name = excluded.name, hash = excluded.hash,
          salt = excluded.salt, code = excluded.code`),
      userByEmail: q('SELECT * FROM users WHERE email = ?'),
      userById: q('SELECT * FROM users WHERE id = ?'),
      setVerified: q('UPDATE users SET verified = 1, code = NULL WHERE id = ?'),
      addSession: q('INSERT INTO sessions (token, user_id) VALUES (?, ?)'),
      userByToken: q('SELECT user_id FROM sessions WHERE token = ?').pluck(),
      personalChatOf: q('SELECT id FROM chats WHERE pair = ?').pluck(),
      createChat: q(`INSERT INTO chats (id, kind, name, description, admin, pair, last_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      addMember: q('INSERT OR IGNORE INTO members (chat_id, user_id) VALUES (?, ?)'),
      chat: q('SELECT id, kind, name, admin FROM chats WHERE id = ?'),
      isMember: q('SELECT 1 FROM members WHERE chat_id = ? AND user_id = ?').pluck(),
      members: q('SELECT user_id FROM members WHERE chat_id = ?').pluck(),
      insertMessage: q('INSERT INTO messages (id, chat_id, sender_id, content, at) VALUES (?, ?, ?, ?, ?)'),
      touchChat: q('UPDATE chats SET last_at = ? WHERE id = ?'),
      bumpUnread: q('UPDATE members SET unread = unread + 1 WHERE chat_id = ? AND user_id <> ?'),
      seqOf: q('SELECT seq FROM messages WHERE id = ? AND chat_id = ?').pluck(),
      newest: q(`SELECT id, sender_id AS senderId, content, at FROM messages
        WHERE chat_id = ? ORDER BY seq DESC LIMIT ?`),
      older: q(`SELECT id, sender_id AS senderId, content, at FROM messages
        WHERE chat_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
      chatList: q(`SELECT c.id, c.name, c.last_at AS lastAt, m.unread,
          (SELECT o.user_id FROM members o WHERE o.chat_id = c.id AND o.user_id <> m.user_id) AS partnerId
        FROM members m JOIN chats c ON c.id = m.chat_id
        WHERE m.user_id = ? AND c.kind = ? ORDER BY c.last_at DESC`),
    };
    // One transaction, one fsync, per message: the row, the chat's time and the unread counts.
    this.append = this.db.transaction(({ id, chatId, senderId, content, at }) => {
      this.s.insertMessage.run(id, chatId, senderId, content, at);
      this.s.touchChat.run(at, chatId);
      this.s.bumpUnread.run(chatId, senderId);
    });
    this.create = this.db.transaction(({ id, kind, name, description, admin, members, at }) => {
      const pair = kind === 'personal' ? pairKey(members[0], members[1]) : null;
      this.s.createChat.run(id, kind, name, description, admin, pair, at);
      for (const m of members) this.s.addMember.run(id, m);
    });
  }

  get durable() {
    return true;
  }

  putUser(user) {
    this.s.putUser.run({ ...user, verified: user.verified ? 1 : 0 });
  }

  userByEmail(email) {
    return this.s.userByEmail.get(email);
  }

  userById(id) {
    return this.s.userById.get(id);
  }

  setVerified(id) {
    this.s.setVerified.run(id);
  }

  addSession(token, userId) {
    this.s.addSession.run(token, userId);
  }

  userByToken(token) {
    return this.s.userByToken.get(token);
  }

  personalChatOf(a, b) {
    return this.s.personalChatOf.get(pairKey(a, b));
  }

  createChat({ id, kind, name = '', description = '', admin = null, members, at }) {
    this.create({ id, kind, name, description, admin, members, at });
  }

  chat(id) {
    return this.s.chat.get(id);
  }

  isMember(chatId, userId) {
    return this.s.isMember.get(chatId, userId) === 1;
  }

  members(chatId) {
    return this.s.members.all(chatId);
  }

  addMember(chatId, userId) {
    this.s.addMember.run(chatId, userId);
  }

  appendMessage(message) {
    this.append(message);
  }

  page(chatId, before, limit) {
    let rows;
    if (before === null) {
      rows = this.s.newest.all(chatId, limit + 1);
    } else {
      const seq = this.s.seqOf.get(before, chatId);
      if (seq === undefined) return null;
      rows = this.s.older.all(chatId, seq, limit + 1);
    }
    const hasMore = rows.length > limit;
    return { messages: hasMore ? rows.slice(0, limit) : rows, hasMore };
  }

  chatList(userId, kind) {
    return this.s.chatList.all(userId, kind);
  }
}
