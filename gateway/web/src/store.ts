// The client's state logic, free of the DOM and the socket: message lists (ordered, deduplicated
// by MessageId, pending sends matched by ClientId), page cursors and the chat list. Tested with
// Vitest (store.test.ts).

export type ChatKind = 'self' | 'personal' | 'group';

export interface Message {
  /** The server's MessageId; `pending:<ClientId>` until the send is acknowledged. */
  id: string;
  clientId?: string;
  senderId: string;
  senderName: string;
  content: string;
  timestamp: string;
  /** Unset once stored; `pending` while on its way, `failed` when refused. */
  status?: 'pending' | 'failed';
  error?: string;
  /** Members other than the sender who have read it. */
  readBy: string[];
  /** The message this one answers. */
  replyTo?: string;
  editedAt?: string;
  /** Deleted by its sender or the group's admin: no content, no reactions. */
  deleted?: boolean;
  /** Who reacted with each emoji. */
  reactions?: Record<string, string[]>;
  /** Files sent with it, in the sender's order. */
  attachments?: Attachment[];
}

/** A file sent in a message (`POST /files`, then its id in the send's `Attachments`). */
export interface Attachment {
  fileId: string;
  name?: string;
  size: number;
  contentType: string;
}

export interface WireAttachment {
  FileId: string;
  Name?: string;
  Size: number;
  ContentType: string;
}

/** A payload's `Attachments`, or undefined when it has none. */
export const attachmentsOf = (list: WireAttachment[] | undefined): Attachment[] | undefined =>
  Array.isArray(list) && list.length
    ? list.map((a) => ({ fileId: a.FileId, name: a.Name, size: a.Size, contentType: a.ContentType }))
    : undefined;

/** The four types the server serves inline, since it checked their bytes (docs/api.md, "HTTP"). */
const INLINE_IMAGES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
export const isImage = (a: Attachment) => INLINE_IMAGES.includes(a.contentType);

/** "512 B", "1.5 KB", "25 MB". */
export function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1).replace(/\.0$/, '') : Math.round(value)} ${units[unit]}`;
}

/** What a message of only files says as its text (the server needs some). */
export const filesText = (files: Attachment[]) => files.map((f) => `📎 ${f.name ?? 'file'}`).join(', ');

export interface Chat {
  id: string;
  kind: ChatKind;
  name: string;
  partnerId?: string;
  lastChat: string;
  unread: number;
}

export interface History {
  /** Oldest first. */
  messages: Message[];
  /** Whether older messages exist on the server than the oldest stored one here. */
  hasMore: boolean;
  /** False until the newest page has been fetched (again, after a reconnect). */
  fresh: boolean;
}

export const emptyHistory = (): History => ({ messages: [], hasMore: true, fresh: false });

const isPending = (m: Message) => m.status !== undefined;

/** Orders by time; a message still on its way sorts after every stored one. Stable. */
export function ordered(messages: Message[]): Message[] {
  const stored = messages.filter((m) => !isPending(m));
  const pending = messages.filter(isPending);
  stored.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
  return stored.concat(pending);
}

/** The cursor for the next older page: the oldest stored message's id. */
export function olderCursor(history: History): string | undefined {
  return history.messages.find((m) => !isPending(m))?.id;
}

/**
 * Adds one message (a delivery, or our own acknowledged send). A message already known by id is
 * kept once; one whose ClientId matches a pending send replaces it.
 */
export function addMessage(history: History, message: Message): History {
  if (history.messages.some((m) => m.id === message.id)) return history;
  const rest = message.clientId
    ? history.messages.filter((m) => !(isPending(m) && m.clientId === message.clientId))
    : history.messages;
  return { ...history, messages: inserted(rest, message) };
}

/** `message` put in its place in an ordered list without sorting it again (usually at the end). */
function inserted(messages: Message[], message: Message): Message[] {
  const out = messages.slice();
  if (isPending(message)) {
    out.push(message);
    return out;
  }
  let lo = 0;
  let hi = out.findIndex(isPending);
  if (hi < 0) hi = out.length;
  // After every stored message with the same or an earlier time: arrival order breaks ties.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (out[mid].timestamp <= message.timestamp) lo = mid + 1;
    else hi = mid;
  }
  out.splice(lo, 0, message);
  return out;
}

/** Our send was stored: the pending copy becomes the message (or goes, if it already arrived). */
export function acknowledge(history: History, clientId: string, id: string, timestamp: string): History {
  const pending = history.messages.find((m) => m.clientId === clientId && isPending(m));
  if (!pending) return history;
  const others = history.messages.filter((m) => m !== pending);
  if (others.some((m) => m.id === id)) return { ...history, messages: others };
  const stored: Message = { ...pending, id, timestamp, status: undefined, error: undefined };
  return { ...history, messages: ordered([...others, stored]) };
}

export function fail(history: History, clientId: string, error: string): History {
  return {
    ...history,
    messages: history.messages.map((m) =>
      m.clientId === clientId && isPending(m) ? { ...m, status: 'failed', error } : m,
    ),
  };
}

export function retrying(history: History, clientId: string): History {
  return {
    ...history,
    messages: history.messages.map((m) =>
      m.clientId === clientId && m.status === 'failed' ? { ...m, status: 'pending', error: undefined } : m,
    ),
  };
}

/**
 * Merges a page (newest first, as the server sends it). An older page (`older`) goes before what
 * is held. The newest page (on opening a chat, or again after a reconnect) is joined to what is
 * held when the two overlap or the page reaches the chat's start; otherwise messages are missing
 * between them, so the page replaces the stored ones (older pages are fetched again on scrolling).
 * Pending sends are kept either way.
 */
export function mergePage(history: History, page: Message[], hasMore: boolean, older: boolean): History {
  const byId = new Map<string, Message>();
  const pending = history.messages.filter(isPending);
  const stored = history.messages.filter((m) => !isPending(m));
  if (older) {
    for (const m of stored) byId.set(m.id, m);
    for (const m of page) if (!byId.has(m.id)) byId.set(m.id, m);
    return { ...history, messages: ordered([...byId.values(), ...pending]), hasMore };
  }
  const oldestOfPage = page[page.length - 1];
  const overlaps =
    stored.length === 0 || !hasMore || (oldestOfPage !== undefined && stored.some((m) => m.id === oldestOfPage.id));
  // The page's copy wins (read marks are newer); stored messages older than the page stay.
  if (overlaps) for (const m of stored) byId.set(m.id, m);
  for (const m of page) byId.set(m.id, m);
  const pendingLeft = pending.filter((p) => !page.some((m) => m.clientId && m.clientId === p.clientId));
  return {
    messages: ordered([...byId.values(), ...pendingLeft]),
    hasMore: overlaps ? history.hasMore && hasMore : hasMore,
    fresh: true,
  };
}

/** `reader` has read everything up to now. */
export function markRead(history: History, reader: string): History {
  let changed = false;
  const messages = history.messages.map((m) => {
    if (m.senderId === reader || m.readBy.includes(reader) || isPending(m)) return m;
    changed = true;
    return { ...m, readBy: [...m.readBy, reader] };
  });
  return changed ? { ...history, messages } : history;
}

/** Newest activity first; the self chat ("notes") always on top. */
export function sortChats(chats: Chat[]): Chat[] {
  return [...chats].sort((a, b) => {
    if (a.kind === 'self' || b.kind === 'self') return a.kind === 'self' ? -1 : b.kind === 'self' ? 1 : 0;
    return a.lastChat < b.lastChat ? 1 : a.lastChat > b.lastChat ? -1 : 0;
  });
}

export function upsertChat(chats: Chat[], chat: Chat): Chat[] {
  const rest = chats.filter((c) => c.id !== chat.id);
  return sortChats([...rest, chat]);
}

/** A message arrived in `id` at `timestamp`; `unread` counts it as not yet read. */
export function bumpChat(chats: Chat[], id: string, timestamp: string, unread: boolean): Chat[] {
  return sortChats(
    chats.map((c) =>
      c.id === id
        ? { ...c, lastChat: timestamp > c.lastChat ? timestamp : c.lastChat, unread: c.unread + (unread ? 1 : 0) }
        : c,
    ),
  );
}

// Pages as the server sends them.

type ReadStatus = Record<string, string> | undefined;
const readers = (status: ReadStatus, sender: string) =>
  Object.entries(status ?? {})
    .filter(([id, s]) => id !== sender && s === 'Read')
    .map(([id]) => id);

interface WireExtras { ReplyTo?: string; EditedAt?: string; Deleted?: boolean; Reactions?: Record<string, string[]>; Attachments?: WireAttachment[] }
const extras = (m: WireExtras) => ({
  replyTo: m.ReplyTo,
  editedAt: m.EditedAt,
  deleted: m.Deleted === true ? true : undefined,
  reactions: m.Reactions && Object.keys(m.Reactions).length ? m.Reactions : undefined,
  attachments: attachmentsOf(m.Attachments),
});

export interface WireSelf extends WireExtras { _id: string; Content: string; Timestamp: string }
export interface WirePersonal extends WireExtras { _id: string; Sender: string; Content: string; ReadStatus?: Record<string, string>; Timestamp: string }
export interface WireGroup extends WireExtras { _id: string; Sender: string; SenderId: string; Content: string; ReadStatus?: Record<string, string>; Timestamp: string }

export const fromSelf = (m: WireSelf, me: { id: string; name: string }): Message => ({
  id: m._id,
  senderId: me.id,
  senderName: me.name,
  content: m.Content,
  timestamp: m.Timestamp,
  readBy: [],
  ...extras(m),
});

export const fromPersonal = (m: WirePersonal, names: Record<string, string>): Message => ({
  id: m._id,
  senderId: m.Sender,
  senderName: names[m.Sender] ?? '',
  content: m.Content,
  timestamp: m.Timestamp,
  readBy: readers(m.ReadStatus, m.Sender),
  ...extras(m),
});

export const fromGroup = (m: WireGroup): Message => ({
  id: m._id,
  senderId: m.SenderId,
  senderName: m.Sender,
  content: m.Content,
  timestamp: m.Timestamp,
  readBy: readers(m.ReadStatus, m.SenderId),
  ...extras(m),
});

// Changes to a stored message.

function changed(history: History, id: string, change: (m: Message) => Message): History {
  const i = history.messages.findIndex((m) => m.id === id);
  if (i < 0) return history;
  const messages = history.messages.slice();
  messages[i] = change(messages[i]);
  return { ...history, messages };
}

export const edited = (history: History, id: string, content: string, editedAt: string): History =>
  changed(history, id, (m) => (m.deleted || (m.editedAt && m.editedAt > editedAt) ? m : { ...m, content, editedAt }));

export const deleted = (history: History, id: string): History =>
  changed(history, id, (m) => ({ ...m, content: '', deleted: true, reactions: undefined, attachments: undefined }));

/** `user` added (`on`) or took back a reaction; each person counts once per emoji. */
export const reacted = (history: History, id: string, user: string, emoji: string, on: boolean): History =>
  changed(history, id, (m) => {
    if (m.deleted) return m;
    const reactions = { ...(m.reactions ?? {}) };
    const people = (reactions[emoji] ?? []).filter((u) => u !== user);
    if (on) people.push(user);
    if (people.length) reactions[emoji] = people;
    else delete reactions[emoji];
    return { ...m, reactions: Object.keys(reactions).length ? reactions : undefined };
  });
