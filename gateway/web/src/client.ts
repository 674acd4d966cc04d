// The session and the socket: signing in, the access token kept fresh without dropping the socket
// (one tab refreshes at a time, the others are handed the new token), every server event applied
// to the state, every request sent with an acknowledgement and its refusal turned into a message.

import { io, type Socket } from 'socket.io-client';
import * as api from './api';
import { httpText, refusalText } from './errors';
import {
  type Attachment,
  type Chat,
  type History,
  type Message,
  type WireAttachment,
  type WireGroup,
  type WirePersonal,
  type WireSelf,
  acknowledge,
  addMessage,
  attachmentsOf,
  bumpChat,
  deleted,
  edited,
  emptyHistory,
  fail,
  fromGroup,
  fromPersonal,
  fromSelf,
  markRead,
  mergePage,
  olderCursor,
  reacted,
  retrying,
  sortChats,
  upsertChat,
} from './store';
import { alertFor, type Settings, loadSettings, saveSettings } from './notify';
import { SeqLog } from './catchup';
import { type SearchResult, searchable } from './messageSearch';
import {
  type Presence,
  TYPING_SHOWN_MS,
  emptyPresence,
  presenceChanged,
  presenceList,
  shouldSayTyping,
  typingChanged,
} from './presence';

export type Phase = 'starting' | 'signed-out' | 'verify' | 'ready';
export type Connection = 'connecting' | 'online' | 'offline';

export interface Group {
  admin: string;
  description: string;
  participants: Record<string, string>;
}

export interface Notice {
  kind: 'error' | 'info';
  text: string;
  id: number;
}

export interface State {
  phase: Phase;
  me?: { id: string; name: string };
  /** The e-mail waiting for verification (phase `verify`). */
  pendingEmail?: string;
  connection: Connection;
  chats: Chat[];
  histories: Record<string, History>;
  loading: Record<string, boolean>;
  groups: Record<string, Group>;
  open?: string;
  notices: Notice[];
  settings: Settings;
  /** Contacts online or not, and who is typing where. */
  presence: Presence;
}

type Ack = { success: number; code?: string; message?: string; [key: string]: unknown };

/** The newest page; older pages, fetched while scrolling back, are larger (the server allows 200). */
const PAGE = 50;
const OLDER_PAGE = 100;
const ACK_TIMEOUT = 10_000;

export class Client {
  state: State = {
    phase: 'starting',
    connection: 'connecting',
    chats: [],
    histories: {},
    loading: {},
    groups: {},
    notices: [],
    settings: loadSettings(),
    presence: emptyPresence(),
  };
  private listeners = new Set<() => void>();
  private socket?: Socket;
  private accessToken?: string;
  private refreshTimer?: ReturnType<typeof setTimeout>;
  private channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('expresschat-auth') : undefined;
  private noticeId = 0;
  private readTimer?: ReturnType<typeof setTimeout>;
  private authFailed = false;
  /** Deliveries seen, for catch-up after a reconnect (docs/api.md, "Catch-up"). */
  private seqs = new SeqLog();
  /** Each event's handler, which a catch-up calls with the events it returns. */
  private handlers = new Map<string, (payload: never) => void>();
  /** True while a catch-up replays what was missed: the chat lists sent on connect already count it. */
  private catchingUp = false;
  /** When the user's own typing was last said, per chat. */
  private typingSaid: Record<string, number> = {};

  constructor() {
    this.channel?.addEventListener('message', (e: MessageEvent) => this.onBroadcast(e.data));
    document.addEventListener('visibilitychange', () => this.markOpenRead());
    window.addEventListener('focus', () => {
      this.markOpenRead();
      void this.checkVerifiedOnReturn();
    });
  }

  /** Back from the mail's link (which signs this browser in): continue without a click. */
  private async checkVerifiedOnReturn() {
    if (this.state.phase !== 'verify' || Date.now() - this.lastVerifyCheck < 15_000) return;
    this.lastVerifyCheck = Date.now();
    const answer = await api.refresh();
    if (api.ok(answer) && this.state.phase === 'verify') this.signedIn(String(answer.body.accessToken));
  }
  private lastVerifyCheck = 0;

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Changes the state now and redraws once per frame at most, however many changes come. */
  private set(patch: Partial<State>) {
    this.state = { ...this.state, ...patch };
    if (this.redrawing) return;
    this.redrawing = true;
    const redraw = () => {
      this.redrawing = false;
      for (const l of this.listeners) l();
    };
    // No animation frames in a hidden tab: a timer keeps the state shown current.
    if (document.visibilityState === 'visible') requestAnimationFrame(redraw);
    else setTimeout(redraw, 100);
  }
  private redrawing = false;

  notify(kind: Notice['kind'], text: string) {
    const notice = { kind, text, id: ++this.noticeId };
    this.set({ notices: [...this.state.notices.slice(-3), notice] });
    if (kind === 'info') setTimeout(() => this.dismiss(notice.id), 6000);
  }

  dismiss(id: number) {
    this.set({ notices: this.state.notices.filter((n) => n.id !== id) });
  }

  // ---- Session ----

  /** On page load: another tab's token, else the refresh cookie, else the sign-in screen. */
  async start() {
    const shared = await this.askOtherTabs();
    if (shared) return this.signedIn(shared);
    const token = await this.refreshToken();
    if (token) this.signedIn(token);
    else this.set({ phase: 'signed-out' });
  }

  async login(email: string, password: string): Promise<string | undefined> {
    const answer = await api.login(email, password);
    if (api.ok(answer)) {
      this.signedIn(String(answer.body.accessToken));
      return undefined;
    }
    if (answer.status === 403 || answer.success === -2) {
      this.set({ phase: 'verify', pendingEmail: email });
      this.notify('info', 'Your e-mail address is not verified yet: enter the code from the mail, or open its link.');
      return undefined;
    }
    return httpText('login', answer);
  }

  async signup(name: string, email: string, password: string): Promise<string | undefined> {
    const answer = await api.signup(name, email, password);
    if (api.ok(answer)) {
      this.set({ phase: 'verify', pendingEmail: email });
      return undefined;
    }
    return httpText('signup', answer);
  }

  async verify(code: string): Promise<string | undefined> {
    const email = this.state.pendingEmail ?? '';
    const answer = await api.verify(email, code.trim());
    if (api.ok(answer)) {
      this.signedIn(String(answer.body.accessToken));
      return undefined;
    }
    return httpText('verify', answer);
  }

  /** After the link in the mail was opened (in another tab): its cookie signs this page in. */
  async verifiedByLink(): Promise<string | undefined> {
    const token = await this.refreshToken();
    if (token) {
      this.signedIn(token);
      return undefined;
    }
    return 'Not verified yet: open the link in the mail (it signs you in), then press this button again.';
  }

  async resend(): Promise<string | undefined> {
    const answer = await api.resend(this.state.pendingEmail ?? '');
    if (api.ok(answer)) {
      this.notify('info', 'A new code is on its way. The previous one no longer works.');
      return undefined;
    }
    return httpText('resend', answer);
  }

  backToSignIn() {
    this.set({ phase: 'signed-out', pendingEmail: undefined });
  }

  async logout() {
    await api.logout();
    this.channel?.postMessage({ type: 'logout' });
    this.signedOut();
  }

  private signedOut(text?: string) {
    clearTimeout(this.refreshTimer);
    this.accessToken = undefined;
    this.socket?.removeAllListeners();
    this.socket?.disconnect();
    this.socket = undefined;
    const me = this.state.me;
    if (me) clearDrafts(me.id);
    this.set({
      phase: 'signed-out',
      me: undefined,
      chats: [],
      histories: {},
      groups: {},
      open: undefined,
      loading: {},
      connection: 'connecting',
    });
    if (text) this.notify('error', text);
  }

  private signedIn(token: string) {
    this.adopt(token);
    this.set({ phase: 'ready', pendingEmail: undefined });
    this.connect();
  }

  /** Takes a new access token and plans its refresh a minute before it expires. */
  private adopt(token: string) {
    this.accessToken = token;
    clearTimeout(this.refreshTimer);
    const left = api.expiry(token) * 1000 - Date.now();
    const wait = Math.max(5_000, left - 60_000 - Math.random() * 10_000);
    this.refreshTimer = setTimeout(() => void this.silentRefresh(), Math.min(wait, 2 ** 31 - 1));
  }

  /** A fresh access token while the socket stays connected; the next reconnect uses it. */
  private async silentRefresh() {
    const token = await this.refreshToken();
    if (token) this.adopt(token);
    else if (this.state.phase === 'ready') this.signedOut('Your session has ended. Sign in again.');
  }

  /**
   * Spends the refresh cookie, one tab at a time (a refresh token shown twice ends the session),
   * and hands the new access token to the other tabs. A tab that waited for the lock while another
   * refreshed takes that tab's token instead of refreshing again.
   */
  private async refreshToken(): Promise<string | undefined> {
    const run = async () => {
      const current = this.accessToken;
      if (current && api.expiry(current) * 1000 - Date.now() > 120_000 && current !== this.staleToken) return current;
      const answer = await api.refresh();
      if (api.ok(answer)) {
        const token = String(answer.body.accessToken);
        this.channel?.postMessage({ type: 'token', token });
        return token;
      }
      if (answer.status !== 401) this.notify('error', httpText('refresh', answer));
      return undefined;
    };
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    this.staleToken = this.accessToken;
    return locks ? locks.request('expresschat-refresh', run) : run();
  }
  private staleToken?: string;

  private askOtherTabs(): Promise<string | undefined> {
    if (!this.channel) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.channel?.removeEventListener('message', listen);
        resolve(undefined);
      }, 150);
      const listen = (e: MessageEvent) => {
        const data = e.data as { type?: string; token?: string };
        if (data.type === 'token' && data.token && api.expiry(data.token) * 1000 - Date.now() > 30_000) {
          clearTimeout(timer);
          this.channel?.removeEventListener('message', listen);
          resolve(data.token);
        }
      };
      this.channel?.addEventListener('message', listen);
      this.channel?.postMessage({ type: 'ask' });
    });
  }

  private onBroadcast(data: { type?: string; token?: string }) {
    if (data.type === 'ask' && this.accessToken && this.state.phase === 'ready') {
      this.channel?.postMessage({ type: 'token', token: this.accessToken });
    } else if (data.type === 'token' && data.token && this.state.phase === 'ready') {
      if (api.expiry(data.token) > api.expiry(this.accessToken ?? '')) this.adopt(data.token);
    } else if (data.type === 'logout' && this.state.phase === 'ready') {
      this.signedOut('You signed out in another tab.');
    }
  }

  // ---- Socket ----

  private connect() {
    this.authFailed = false;
    const socket = io({
      path: '/socket.io',
      auth: (cb) => cb({ accessToken: this.accessToken }),
      reconnectionDelayMax: 5000,
    });
    this.socket = socket;
    this.set({ connection: 'connecting' });
    socket.on('connect', () => {
      this.set({ connection: 'online' });
      this.afterReconnect();
      void this.catchUp();
    });
    // Every other event goes through `on`: applied once however it arrives, and replayable.
    const on = <T>(event: string, handler: (payload: T) => void) => {
      const once = (payload: T) => {
        const seq = payload && typeof payload === 'object' ? (payload as { Seq?: unknown }).Seq : undefined;
        if (this.seqs.admit(seq)) handler(payload);
      };
      this.handlers.set(event, once as (payload: never) => void);
      socket.on(event, once);
    };
    socket.on('disconnect', (reason) => {
      this.set({ connection: 'offline' });
      // The server closed it: the session ended (auth-failure came first), or this client read
      // too slowly and must fetch again. Either way socket.io does not reconnect by itself.
      if (reason === 'io server disconnect' && !this.authFailed) setTimeout(() => socket.connect(), 1000);
    });
    socket.on('connect_error', () => this.set({ connection: 'offline' }));
    on('auth-failure', () => void this.onAuthFailure());
    on('access-token', (p: { accessToken?: string }) => {
      if (p?.accessToken) this.adopt(p.accessToken);
    });
    on('user-id', (p: { userId: string; userName: string }) => {
      this.set({ me: { id: p.userId, name: p.userName } });
      const self: Chat = { id: p.userId, kind: 'self', name: 'Notes to self', lastChat: '', unread: 0 };
      const existing = this.state.chats.find((c) => c.id === p.userId);
      this.set({ chats: upsertChat(this.state.chats, existing ?? self) });
    });
    on('personal-chat-list', (p: { PersonalChatList: { _id: string; Partner: string; PartnerId: string; LastChat: string; Unread: number }[] }) => {
      const keep = this.state.chats.filter((c) => c.kind !== 'personal');
      const list: Chat[] = (p.PersonalChatList ?? []).map((c) => ({
        id: c._id,
        kind: 'personal',
        name: c.Partner,
        partnerId: c.PartnerId,
        lastChat: c.LastChat ?? '',
        unread: this.state.open === c._id ? 0 : c.Unread ?? 0,
      }));
      this.set({ chats: sortChats([...keep, ...list]) });
    });
    on('group-chat-list', (p: { GroupChatList: { _id: string; Name: string; LastChat: string; Unread: number }[] }) => {
      const keep = this.state.chats.filter((c) => c.kind !== 'group');
      const list: Chat[] = (p.GroupChatList ?? []).map((c) => ({
        id: c._id,
        kind: 'group',
        name: c.Name,
        lastChat: c.LastChat ?? '',
        unread: this.state.open === c._id ? 0 : c.Unread ?? 0,
      }));
      this.set({ chats: sortChats([...keep, ...list]) });
      this.markOpenRead();
    });
    on('receive-self-message', (p: { ChatId: string; Content: string; MessageId: string; Timestamp: string; Attachments?: WireAttachment[] }) => {
      const me = this.state.me;
      if (!me) return;
      const attachments = attachmentsOf(p.Attachments);
      this.received(me.id, { id: p.MessageId, senderId: me.id, senderName: me.name, content: p.Content, timestamp: p.Timestamp, readBy: [], attachments });
    });
    type Received = { ChatId: string; Content: string; Sender: string; SenderId: string; MessageId: string; Timestamp: string; ReplyTo?: string; Attachments?: WireAttachment[] };
    const receivedFrom = (p: Received): Message => ({
      id: p.MessageId,
      senderId: p.SenderId,
      senderName: p.Sender,
      content: p.Content,
      timestamp: p.Timestamp,
      readBy: [],
      replyTo: p.ReplyTo,
      attachments: attachmentsOf(p.Attachments),
    });
    on('receive-personal-message', (p: Received) => this.received(p.ChatId, receivedFrom(p)));
    on('receive-group-message', (p: Received) => this.received(p.ChatId, receivedFrom(p)));
    on('message-edited', (p: { ChatId: string; MessageId: string; Content: string; EditedAt: string }) =>
      this.changeHistory(p.ChatId, (h) => edited(h, p.MessageId, p.Content, p.EditedAt)),
    );
    on('message-deleted', (p: { ChatId: string; MessageId: string }) => this.changeHistory(p.ChatId, (h) => deleted(h, p.MessageId)));
    on('reaction', (p: { ChatId: string; MessageId: string; UserId: string; Emoji: string; On: boolean }) =>
      this.changeHistory(p.ChatId, (h) => reacted(h, p.MessageId, p.UserId, p.Emoji, p.On)),
    );
    on('read-personal-msg-ack', (p: { ChatId: string; Reader: string }) => this.readBy(p.ChatId, p.Reader));
    on('read-grp-msg-ack', (p: { ChatId: string; Reader: string }) => this.readBy(p.ChatId, p.Reader));
    on('create-personal-chat-partner', (p: { ChatId: string; Partner: string; PartnerId: string }) => {
      if (this.state.chats.some((c) => c.id === p.ChatId)) return;
      this.set({ chats: upsertChat(this.state.chats, { id: p.ChatId, kind: 'personal', name: p.Partner, partnerId: p.PartnerId, lastChat: new Date().toISOString(), unread: 0 }) });
    });
    on('create-group-chat-receiver', (p: { GroupId: string; Name: string }) => {
      this.addGroupToList(p.GroupId, p.Name);
      this.notify('info', `You were added to the group “${p.Name}”.`);
    });
    on('new-grp-added', (p: { ChatId: string }) => void this.joinedGroup(p.ChatId));
    on('add-member-success', (p: { ChatId: string; Member: string; MemberName?: string }) => {
      this.patchGroup(p.ChatId, (g) => ({ ...g, participants: { ...g.participants, [p.Member]: p.MemberName ?? g.participants[p.Member] ?? '' } }));
    });
    on('kicked-out', (p: { GroupId: string; GroupName?: string }) => {
      this.leftGroup(p.GroupId, `You were removed from the group “${p.GroupName ?? this.chatName(p.GroupId)}”.`);
    });
    const memberGone = (p: { GroupId: string; Member?: string; User?: string }) => {
      const who = p.Member ?? p.User;
      if (!who) return;
      this.patchGroup(p.GroupId, (g) => {
        const participants = { ...g.participants };
        delete participants[who];
        return { ...g, participants };
      });
    };
    on('someone-kicked-out', memberGone);
    on('user-left-grp', memberGone);
    on('kickout-successful', memberGone);
    const adminChanged = (p: { GroupId: string; Admin?: string }) => {
      if (p.Admin) this.patchGroup(p.GroupId, (g) => ({ ...g, admin: p.Admin as string }));
      else void this.loadLatest(p.GroupId);
    };
    on('change-admin-success-creator', adminChanged);
    on('change-admin-success-receiver', adminChanged);
    on('delete-grp-success-receiver', (p: { GroupId: string }) => {
      this.leftGroup(p.GroupId, `The group “${this.chatName(p.GroupId)}” was deleted by its admin.`);
    });
    on('delete-group-chat-creator', (p: { GroupId: string }) => this.leftGroup(p.GroupId));
    on('group-left-success', (p: { GroupId: string }) => this.leftGroup(p.GroupId));
    on('presence', (p: { Users: { UserId: string; Online: boolean; LastSeen: string | null }[] }) =>
      this.set({ presence: presenceList(this.state.presence, p?.Users ?? []) }),
    );
    on('presence-changed', (p: { UserId: string; Online?: boolean; LastSeen?: string | null }) =>
      this.set({ presence: presenceChanged(this.state.presence, p) }),
    );
    on('typing', (p: { ChatId: string; UserId: string; Typing: boolean }) => {
      this.set({ presence: typingChanged(this.state.presence, p, Date.now()) });
      // Shown for a while without news: looked at again once that has passed.
      if (p.Typing) setTimeout(() => this.set({}), TYPING_SHOWN_MS + 100);
    });
  }

  /** The user is writing in `chatId`: the other members are told, at most every few seconds. */
  composing(chatId: string) {
    if (this.chat(chatId)?.kind === 'self') return;
    const now = Date.now();
    if (!shouldSayTyping(this.typingSaid[chatId], now)) return;
    this.typingSaid[chatId] = now;
    void this.request('typing', { ChatId: chatId, Typing: true });
  }

  /** The user stopped writing in `chatId` (sent, or emptied the draft). */
  stoppedComposing(chatId: string) {
    if (this.typingSaid[chatId] === undefined) return;
    delete this.typingSaid[chatId];
    void this.request('typing', { ChatId: chatId, Typing: false });
  }

  private async onAuthFailure() {
    this.authFailed = true;
    const token = await this.refreshToken();
    if (!token) {
      this.signedOut('Your session has ended. Sign in again.');
      return;
    }
    this.adopt(token);
    this.authFailed = false;
    this.socket?.connect();
  }

  /** After every (re)connect: unsent messages go again (same ClientId: stored once), the open chat's newest page is fetched again and merged, other chats are fetched again when opened. */
  private afterReconnect() {
    const histories: Record<string, History> = {};
    for (const [id, h] of Object.entries(this.state.histories)) histories[id] = { ...h, fresh: false };
    this.set({ histories });
    if (this.state.open) void this.loadLatest(this.state.open);
    for (const [chatId, h] of Object.entries(this.state.histories)) {
      for (const m of h.messages) if (m.status === 'pending' && m.clientId) void this.deliver(chatId, m);
    }
  }

  /**
   * After a reconnect: the deliveries missed while offline, applied as if they had arrived (the chat
   * lists sent on connect already count them as unread). On the first connect: where now is.
   */
  private async catchUp() {
    if (this.seqs.highest === undefined) {
      const now = await this.request('sync', {});
      if (now.success === 1) this.seqs.raise(now.Seq);
      return;
    }
    for (let pages = 0; pages < 100; pages++) {
      const page = await this.request('sync', { Since: this.seqs.highest, Limit: 500 });
      // `gone`: the server does not know that point; the lists sent on connect stand.
      if (page.success !== 1) return;
      const events = (page.Events ?? []) as { Event: string; Data: { Seq?: string } }[];
      this.catchingUp = true;
      try {
        for (const e of events) this.handlers.get(e.Event)?.(e.Data as never);
      } finally {
        this.catchingUp = false;
      }
      this.seqs.raise(page.Seq);
      if (!page.HasMore) return;
    }
  }

  private request(event: string, payload: object): Promise<Ack> {
    const socket = this.socket;
    if (!socket) return Promise.resolve({ success: -1, code: 'internal', message: 'not connected' });
    return new Promise((resolve) => {
      socket.timeout(ACK_TIMEOUT).emit(event, payload, (err: Error | null, ack: Ack) => {
        if (err) resolve({ success: -1, code: 'timeout' });
        else resolve(ack && typeof ack === 'object' ? ack : { success: -1, code: 'internal' });
      });
    });
  }

  /** Sends a request and shows its refusal; the answer when it succeeded. */
  private async act(event: string, payload: object): Promise<Ack | undefined> {
    const ack = await this.request(event, payload);
    if (ack.success === 1) return ack;
    this.notify('error', refusalText(ack.code, ack.message, event));
    return undefined;
  }

  // ---- Chats and messages ----

  chat(id: string | undefined): Chat | undefined {
    return this.state.chats.find((c) => c.id === id);
  }

  private chatName(id: string) {
    return this.chat(id)?.name ?? 'group';
  }

  private history(id: string): History {
    return this.state.histories[id] ?? emptyHistory();
  }

  private setHistory(id: string, history: History) {
    this.set({ histories: { ...this.state.histories, [id]: history } });
  }

  open(id: string | undefined) {
    this.set({ open: id });
    if (!id) return;
    if (!this.history(id).fresh) void this.loadLatest(id);
    this.markOpenRead();
  }

  private received(chatId: string, message: Message) {
    const mine = message.senderId === this.state.me?.id;
    const visible = this.state.open === chatId && document.visibilityState === 'visible';
    if (!this.chat(chatId)) {
      // A chat this tab has not heard of yet (a group we were added to meanwhile): the list is
      // fetched again by reconnecting is too much; fetch its page, which names it.
      void this.loadLatest(chatId);
    }
    const chats = this.catchingUp ? this.state.chats : bumpChat(this.state.chats, chatId, message.timestamp, !mine && !visible);
    const held = this.state.histories[chatId];
    if (held) this.set({ chats, histories: { ...this.state.histories, [chatId]: addMessage(held, message) } });
    else this.set({ chats });
    if (!mine && !this.catchingUp) {
      if (visible) this.markOpenRead();
      alertFor(this.state.settings, message.senderName || this.chatName(chatId), message.content, chatId);
    }
  }

  private changeHistory(chatId: string, change: (h: History) => History) {
    const held = this.state.histories[chatId];
    if (held) this.setHistory(chatId, change(held));
  }

  async edit(chatId: string, messageId: string, content: string): Promise<boolean> {
    const ack = await this.act('edit-message', { ChatId: chatId, MessageId: messageId, Content: content });
    if (ack) this.changeHistory(chatId, (h) => edited(h, messageId, content, new Date().toISOString()));
    return ack !== undefined;
  }

  async remove(chatId: string, messageId: string) {
    if (await this.act('delete-message', { ChatId: chatId, MessageId: messageId })) this.changeHistory(chatId, (h) => deleted(h, messageId));
  }

  async react(chatId: string, messageId: string, emoji: string, on: boolean) {
    const me = this.state.me?.id;
    if (me && (await this.act('react', { ChatId: chatId, MessageId: messageId, Emoji: emoji, On: on }))) {
      this.changeHistory(chatId, (h) => reacted(h, messageId, me, emoji, on));
    }
  }

  private readBy(chatId: string, reader: string) {
    if (this.state.histories[chatId]) this.setHistory(chatId, markRead(this.history(chatId), reader));
  }

  /** Read marks for the open chat while the page is visible. */
  markOpenRead() {
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      const chat = this.chat(this.state.open);
      if (!chat || document.visibilityState !== 'visible' || this.state.connection !== 'online') return;
      if (chat.unread === 0 && !this.unreadInHistory(chat)) return;
      this.set({ chats: this.state.chats.map((c) => (c.id === chat.id ? { ...c, unread: 0 } : c)) });
      if (chat.kind === 'personal') void this.request('read-personal-message', { ChatId: chat.id });
      if (chat.kind === 'group') void this.request('read-group-message', { GroupId: chat.id });
    }, 250);
  }

  private unreadInHistory(chat: Chat) {
    const me = this.state.me?.id;
    return this.history(chat.id).messages.some((m) => m.senderId !== me && me && !m.readBy.includes(me) && !m.status);
  }

  /** The newest page of a chat (merged with what is held). */
  async loadLatest(id: string) {
    await this.loadPage(id, undefined);
  }

  /** The next older page, when the list is scrolled to its top. */
  async loadOlder(id: string) {
    const history = this.history(id);
    if (!history.hasMore || this.state.loading[id]) return;
    const before = olderCursor(history);
    if (!before) return this.loadLatest(id);
    await this.loadPage(id, before);
  }

  private async loadPage(id: string, before: string | undefined) {
    const me = this.state.me;
    if (!me) return;
    this.set({ loading: { ...this.state.loading, [id]: true } });
    try {
      const kind = this.chat(id)?.kind ?? (id === me.id ? 'self' : 'group');
      const paging = before ? { Before: before, Limit: OLDER_PAGE } : { Limit: PAGE };
      let page: Message[] = [];
      let hasMore = false;
      if (kind === 'self') {
        const ack = await this.act('fetch-self-chat', paging);
        if (!ack) return;
        page = ((ack.Messages as WireSelf[]) ?? []).map((m) => fromSelf(m, me));
        hasMore = Boolean(ack.HasMore);
      } else if (kind === 'personal') {
        const ack = await this.act('fetch-personal-chat', { ChatId: id, ...paging });
        if (!ack) return;
        const names: Record<string, string> = { [me.id]: me.name };
        if (typeof ack.PartnerId === 'string') names[ack.PartnerId] = String(ack.Partner ?? '');
        page = ((ack.Messages as WirePersonal[]) ?? []).map((m) => fromPersonal(m, names));
        hasMore = Boolean(ack.HasMore);
      } else {
        const ack = await this.act('fetch-group-chat', { GroupId: id, ...paging });
        if (!ack) return;
        page = ((ack.Messages as WireGroup[]) ?? []).map(fromGroup);
        hasMore = Boolean(ack.HasMore);
        this.set({
          groups: {
            ...this.state.groups,
            [id]: {
              admin: String(ack.Admin ?? ''),
              description: String(ack.Description ?? ''),
              participants: (ack.Participants as Record<string, string>) ?? {},
            },
          },
        });
        if (!this.chat(id)) this.addGroupToList(id, String(ack.Name ?? 'Group'));
      }
      this.setHistory(id, mergePage(this.history(id), page, hasMore, before !== undefined));
    } finally {
      this.set({ loading: { ...this.state.loading, [id]: false } });
    }
  }

  /** Uploads a file to send in a message; undefined (with a notice) when it is refused. */
  async upload(file: File): Promise<Attachment | undefined> {
    const answer = await api.upload(file, this.accessToken);
    if (answer.status === 201 && typeof answer.body.FileId === 'string') {
      return {
        fileId: answer.body.FileId,
        name: file.name,
        size: Number(answer.body.Size ?? file.size),
        contentType: String(answer.body.ContentType ?? 'application/octet-stream'),
      };
    }
    this.notify('error', `${file.name}: ${httpText('upload', answer)}`);
    return undefined;
  }

  send(chatId: string, content: string, replyTo?: string, attachments?: Attachment[]) {
    this.stoppedComposing(chatId);
    const me = this.state.me;
    const chat = this.chat(chatId);
    if (!me || !chat) return;
    const clientId = crypto.randomUUID();
    const message: Message = {
      id: `pending:${clientId}`,
      clientId,
      senderId: me.id,
      senderName: me.name,
      content,
      timestamp: new Date().toISOString(),
      status: 'pending',
      readBy: [],
      replyTo: chat.kind === 'self' ? undefined : replyTo,
      attachments: attachments?.length ? attachments : undefined,
    };
    this.setHistory(chatId, addMessage(this.history(chatId), message));
    void this.deliver(chatId, message);
  }

  retry(chatId: string, clientId: string) {
    this.setHistory(chatId, retrying(this.history(chatId), clientId));
    const message = this.history(chatId).messages.find((m) => m.clientId === clientId);
    if (message) void this.deliver(chatId, message);
  }

  private async deliver(chatId: string, message: Message) {
    if (!this.socket?.connected || !message.clientId) return; // sent again on reconnect
    const chat = this.chat(chatId);
    const clientId = message.clientId;
    const Attachments = message.attachments?.map((a) => a.fileId);
    const payload =
      chat?.kind === 'self'
        ? ['send-self-message', { Content: message.content, ClientId: clientId, Attachments }]
        : chat?.kind === 'personal'
          ? ['send-personal-message', { ChatId: chatId, Content: message.content, ClientId: clientId, ReplyTo: message.replyTo, Attachments }]
          : ['send-group-message', { GroupId: chatId, Content: message.content, ClientId: clientId, ReplyTo: message.replyTo, Attachments }];
    const ack = await this.request(payload[0] as string, payload[1] as object);
    if (ack.success === 1) {
      const timestamp = String(ack.Timestamp ?? message.timestamp);
      this.setHistory(chatId, acknowledge(this.history(chatId), clientId, String(ack.MessageId), timestamp));
      this.set({ chats: bumpChat(this.state.chats, chatId, timestamp, false) });
    } else if (ack.code === 'timeout' && !this.socket?.connected) {
      // Stays pending: sent again, with the same ClientId, when the socket is back.
    } else {
      this.setHistory(chatId, fail(this.history(chatId), clientId, refusalText(ack.code, ack.message, payload[0] as string)));
    }
  }

  // ---- The account ----

  /** Renames the user (1–64 characters); their contacts see it live. */
  async rename(name: string): Promise<boolean> {
    const ack = await this.act('rename', { Name: name });
    if (!ack) return false;
    const me = this.state.me;
    if (me) this.set({ me: { ...me, name: String(ack.Name ?? name) } });
    return true;
  }

  /** The user's open sessions, or undefined (with a notice) when they cannot be listed. */
  async sessions(): Promise<api.SessionInfo[] | undefined> {
    const answer = await api.sessions(this.accessToken);
    if (api.ok(answer)) return api.sessionsOf(answer.body);
    this.notify('error', httpText('sessions', answer));
    return undefined;
  }

  /** Signs one session out: its sockets are disconnected wherever they are. */
  async endSession(id: string): Promise<boolean> {
    const answer = await api.endSession(id, this.accessToken);
    if (api.ok(answer)) return true;
    this.notify('error', httpText('sessions', answer));
    return false;
  }


  async search(name: string, type: 'Search' | 'Add'): Promise<{ _id: string; Name: string; Email: string }[]> {
    if (!name.trim()) return [];
    const ack = await this.act('search-user', { Name: name.trim(), Type: type });
    return (ack?.Users as { _id: string; Name: string; Email: string }[]) ?? [];
  }

  /** Messages of the user's chats with every word of `query` (newest first); none when refused. */
  async searchMessages(query: string): Promise<SearchResult[]> {
    if (!searchable(query)) return [];
    const ack = await this.request('search-messages', { Query: query.trim() });
    return ack.success === 1 ? ((ack.Results as SearchResult[]) ?? []) : [];
  }

  /** Opens the one-to-one chat with a user, creating it when there is none. */
  async chatWith(userId: string, name: string) {
    const check = await this.act('check-chat', { Receiver: userId });
    if (!check) return;
    let chatId = check.Exists === 1 ? String(check.ChatId) : undefined;
    if (!chatId) {
      const created = await this.act('create-personal-chat', { Receiver: userId });
      if (!created) return;
      chatId = String(created.ChatId);
    }
    if (!this.chat(chatId)) {
      this.set({ chats: upsertChat(this.state.chats, { id: chatId, kind: 'personal', name, partnerId: userId, lastChat: new Date().toISOString(), unread: 0 }) });
    }
    this.open(chatId);
  }

  async createGroup(name: string, description: string, participants: string[]): Promise<boolean> {
    const ack = await this.act('create-group-chat', { Name: name, Description: description, Participants: participants });
    if (!ack) return false;
    const id = String(ack.GroupId ?? ack.ChatId);
    this.addGroupToList(id, name.trim());
    this.open(id);
    return true;
  }

  async addMember(groupId: string, member: string, name: string) {
    if (await this.act('add-member', { GroupId: groupId, Member: member })) {
      this.patchGroup(groupId, (g) => ({ ...g, participants: { ...g.participants, [member]: name } }));
      this.notify('info', `${name} was added to the group.`);
    }
  }

  async kick(groupId: string, member: string) {
    if (await this.act('kickout', { GroupId: groupId, Member: member })) {
      this.patchGroup(groupId, (g) => {
        const participants = { ...g.participants };
        delete participants[member];
        return { ...g, participants };
      });
    }
  }

  async handOver(groupId: string, member: string) {
    if (await this.act('change-admin', { GroupId: groupId, Member: member })) {
      this.patchGroup(groupId, (g) => ({ ...g, admin: member }));
      this.notify('info', 'You handed over the admin role.');
    }
  }

  async leave(groupId: string) {
    if (await this.act('leave-grp', { GroupId: groupId })) this.leftGroup(groupId, 'You left the group.');
  }

  async deleteGroup(groupId: string) {
    if (await this.act('delete-grp', { GroupId: groupId })) this.leftGroup(groupId, 'The group was deleted.');
  }

  private addGroupToList(id: string, name: string) {
    if (this.chat(id)) return;
    this.set({ chats: upsertChat(this.state.chats, { id, kind: 'group', name, lastChat: new Date().toISOString(), unread: 0 }) });
  }

  private async joinedGroup(id: string) {
    await this.loadLatest(id);
    this.notify('info', `You were added to the group “${this.chatName(id)}”.`);
  }

  private patchGroup(id: string, change: (g: Group) => Group) {
    const group = this.state.groups[id];
    if (group) this.set({ groups: { ...this.state.groups, [id]: change(group) } });
  }

  private leftGroup(id: string, text?: string) {
    if (!this.chat(id)) return;
    const histories = { ...this.state.histories };
    delete histories[id];
    this.set({
      chats: this.state.chats.filter((c) => c.id !== id),
      histories,
      open: this.state.open === id ? undefined : this.state.open,
    });
    if (text) this.notify('info', text);
  }

  // ---- Settings ----

  updateSettings(patch: Partial<Settings>) {
    const settings = { ...this.state.settings, ...patch };
    saveSettings(settings);
    this.set({ settings });
  }
}

// Drafts, per user and chat, kept in this browser until sent or signed out.
const draftKey = (user: string, chat: string) => `expresschat:draft:${user}:${chat}`;
export const loadDraft = (user: string, chat: string) => localStorage.getItem(draftKey(user, chat)) ?? '';
export function saveDraft(user: string, chat: string, text: string) {
  try {
    if (text) localStorage.setItem(draftKey(user, chat), text);
    else localStorage.removeItem(draftKey(user, chat));
  } catch {
    // Storage full or disabled: the draft lives only as long as the page.
  }
}
function clearDrafts(user: string) {
  for (const key of Object.keys(localStorage)) if (key.startsWith(`expresschat:draft:${user}:`)) localStorage.removeItem(key);
}
