// Who is online and who is typing, as the server tells it (docs/api.md, "Typing" and "Presence"):
// pure functions over a plain value, so the client's state stays one object and the rules are
// tested without a socket.

/** How long a `typing` from the server counts without another (the server ends it at 6 s too). */
export const TYPING_SHOWN_MS = 7_000;
/** While the user keeps typing, `typing {Typing: true}` is said again this often (the server lets
 * it lapse after 6 s). */
export const TYPING_RENEW_MS = 3_000;

export interface Seen {
  online: boolean;
  lastSeen: string | null;
}

export interface Presence {
  /** Each contact's presence, by user id. */
  users: Record<string, Seen>;
  /** Per chat, who is typing there and until when (ms since the epoch). */
  typing: Record<string, Record<string, number>>;
}

export const emptyPresence = (): Presence => ({ users: {}, typing: {} });

interface WireSeen {
  UserId: string;
  Online?: boolean;
  LastSeen?: string | null;
}

/** `presence {Users}` on connect: replaces what was known. */
export function presenceList(p: Presence, users: WireSeen[]): Presence {
  const next: Record<string, Seen> = {};
  for (const u of users ?? []) next[u.UserId] = { online: !!u.Online, lastSeen: u.LastSeen ?? null };
  return { ...p, users: next };
}

/** `presence-changed {UserId, Online, LastSeen}` (one carrying only a `Name` changes nothing here). */
export function presenceChanged(p: Presence, change: WireSeen): Presence {
  if (typeof change?.Online !== 'boolean') return p;
  const users = { ...p.users, [change.UserId]: { online: change.Online, lastSeen: change.LastSeen ?? null } };
  // Someone gone offline is typing nowhere.
  const typing = change.Online ? p.typing : withoutTypist(p.typing, change.UserId);
  return { users, typing };
}

/** `typing {ChatId, UserId, Typing}` at `now`. */
export function typingChanged(p: Presence, t: { ChatId: string; UserId: string; Typing: boolean }, now: number): Presence {
  const chat = { ...(p.typing[t.ChatId] ?? {}) };
  if (t.Typing) chat[t.UserId] = now + TYPING_SHOWN_MS;
  else delete chat[t.UserId];
  const typing = { ...p.typing };
  if (Object.keys(chat).length) typing[t.ChatId] = chat;
  else delete typing[t.ChatId];
  return { ...p, typing };
}

/** Who is typing in `chat` at `now`, in a stable order. */
export function typingIn(p: Presence, chat: string, now: number): string[] {
  return Object.entries(p.typing[chat] ?? {})
    .filter(([, until]) => until > now)
    .map(([user]) => user)
    .sort();
}

/** Whether `user` is online, as far as the server said. */
export const isOnline = (p: Presence, user: string | undefined) => !!user && !!p.users[user]?.online;

/** Whether the user's own typing must be said now: the first keystroke, then every
 * [`TYPING_RENEW_MS`] while it goes on. */
export const shouldSayTyping = (lastSaid: number | undefined, now: number) =>
  lastSaid === undefined || now - lastSaid >= TYPING_RENEW_MS;

/** "Bea is typing…", "Bea and Cy are typing…", "3 people are typing…". */
export function typingLine(names: string[]): string {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

function withoutTypist(typing: Presence['typing'], user: string): Presence['typing'] {
  const next: Presence['typing'] = {};
  for (const [chat, who] of Object.entries(typing)) {
    const rest = { ...who };
    delete rest[user];
    if (Object.keys(rest).length) next[chat] = rest;
  }
  return next;
}
