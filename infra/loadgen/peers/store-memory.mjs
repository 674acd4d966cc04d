// Everything in the process's memory: lost when it stops. The fastest a Node server of this
// protocol can be, and the lower bound the durable servers are compared with.

export class MemoryStore {
  constructor() {
    this.users = new Map(); // id → {id, name, email, hash, salt, verified, code}
    this.byEmail = new Map(); // email → id
    this.sessions = new Map(); // token → user id
    this.chats = new Map(); // id → {id, kind, name, description, admin, members: Set, messages: [], lastAt}
    this.pairs = new Map(); // "a|b" (sorted) → personal chat id
    this.unread = new Map(); // "chat|user" → count
    this.messageAt = new Map(); // message id → its index in its chat's messages
    this.chatsOf = new Map(); // user id → Set of chat ids
  }

  get durable() {
    return false;
  }

  putUser(user) {
    this.users.set(user.id, { ...user });
    this.byEmail.set(user.email, user.id);
  }

  userByEmail(email) {
    const id = this.byEmail.get(email);
    return id === undefined ? undefined : this.users.get(id);
  }

  userById(id) {
    return this.users.get(id);
  }

  setVerified(id) {
    const u = this.users.get(id);
    if (u) { u.verified = true; u.code = null; }
  }

  addSession(token, userId) {
    this.sessions.set(token, userId);
  }

  userByToken(token) {
    return this.sessions.get(token);
  }

  personalChatOf(a, b) {
    return this.pairs.get(pairKey(a, b));
  }

  createChat({ id, kind, name = '', description = '', admin = null, members, at }) {
    const chat = { id, kind, name, description, admin, members: new Set(members), messages: [], lastAt: at };
    this.chats.set(id, chat);
    if (kind === 'personal') this.pairs.set(pairKey(members[0], members[1]), id);
    for (const m of members) this.#joined(m, id);
  }

  chat(id) {
    const c = this.chats.get(id);
    return c && { id: c.id, kind: c.kind, name: c.name, admin: c.admin };
  }

  isMember(chatId, userId) {
    return this.chats.get(chatId)?.members.has(userId) ?? false;
  }

  members(chatId) {
    return [...(this.chats.get(chatId)?.members ?? [])];
  }

  addMember(chatId, userId) {
    this.chats.get(chatId)?.members.add(userId);
    this.#joined(userId, chatId);
  }

  appendMessage({ id, chatId, senderId, content, at }) {
    const chat = this.chats.get(chatId);
    this.messageAt.set(id, chat.messages.length);
    chat.messages.push({ id, senderId, content, at });
    chat.lastAt = at;
    for (const m of chat.members) {
      if (m !== senderId) {
        const k = `${chatId}|${m}`;
        this.unread.set(k, (this.unread.get(k) ?? 0) + 1);
      }
    }
  }

  // Newest first; `before` is a message id of the chat (older than it), or null for the newest.
  page(chatId, before, limit) {
    const all = this.chats.get(chatId).messages;
    let end = all.length;
    if (before !== null) {
      end = this.messageAt.get(before);
      if (end === undefined || all[end]?.id !== before) return null;
    }
    const start = Math.max(0, end - limit);
    return { messages: all.slice(start, end).reverse(), hasMore: start > 0 };
  }

  chatList(userId, kind) {
    const out = [];
    for (const id of this.chatsOf.get(userId) ?? []) {
      const c = this.chats.get(id);
      if (c.kind !== kind) continue;
      const partnerId = kind === 'personal' ? [...c.members].find((m) => m !== userId) : null;
      out.push({ id, name: c.name, partnerId, lastAt: c.lastAt, unread: this.unread.get(`${id}|${userId}`) ?? 0 });
    }
    return out.sort((a, b) => (a.lastAt < b.lastAt ? 1 : -1));
  }

  #joined(userId, chatId) {
    let s = this.chatsOf.get(userId);
    if (!s) this.chatsOf.set(userId, (s = new Set()));
    s.add(chatId);
  }
}

export function pairKey(a, b) {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
