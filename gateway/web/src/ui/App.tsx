// The screens: signing in, creating an account, verifying it, and the chat itself (the chat list
// with search, one chat's messages, group details with the admin's actions, settings). Every
// piece of user text is rendered as text by Preact; links are <a> elements made by linkify.

import type { JSX, VNode } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type Client, type State, loadDraft, saveDraft } from '../client';
import { linkify } from '../linkify';
import { type SearchResult, hits, searchable } from '../messageSearch';
import * as api from '../api';
import { httpText } from '../errors';
import { allowNotifications } from '../notify';
import { isOnline, typingIn, typingLine } from '../presence';
import { type Attachment, type Chat, type Message, filesText, isImage, sizeText } from '../store';
import { VirtualList } from './VirtualList';

export function useClient(client: Client): State {
  const [state, setState] = useState(client.state);
  useEffect(() => client.subscribe(() => setState(client.state)), [client]);
  return state;
}

export function App({ client }: { client: Client }) {
  const state = useClient(client);
  return (
    <>
      <Notices client={client} state={state} />
      {state.phase === 'starting' && <p class="loading" role="status">Loading…</p>}
      {state.phase === 'signed-out' && <AuthScreen client={client} />}
      {state.phase === 'verify' && <VerifyScreen client={client} email={state.pendingEmail ?? ''} />}
      {state.phase === 'ready' && <Main client={client} state={state} />}
    </>
  );
}

function Notices({ client, state }: { client: Client; state: State }) {
  return (
    <div class="notices" role="status" aria-live="polite">
      {state.notices.map((n) => (
        <div key={n.id} class={`notice ${n.kind}`} role={n.kind === 'error' ? 'alert' : undefined}>
          <span>{n.text}</span>
          <button type="button" class="icon" aria-label="Dismiss" onClick={() => client.dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

function useBusy(): [boolean, string | undefined, (work: () => Promise<string | undefined>) => Promise<void>] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const run = async (work: () => Promise<string | undefined>) => {
    setBusy(true);
    setError(undefined);
    try {
      setError(await work());
    } finally {
      setBusy(false);
    }
  };
  return [busy, error, run];
}

const value = (e: JSX.TargetedEvent<HTMLInputElement | HTMLTextAreaElement>) => e.currentTarget.value;

function AuthScreen({ client }: { client: Client }) {
  const [mode, setMode] = useState<'login' | 'signup' | 'forgot'>('login');
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, error, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(() => (mode === 'login' ? client.login(email, password) : client.signup(name, email, password)));
  };
  if (mode === 'forgot') return <ForgotPassword email={email} onDone={() => setMode('login')} />;
  return (
    <main class="auth">
      <h1>ExpressChat</h1>
      <div class="tabs" role="tablist" aria-label="Account">
        <button type="button" role="tab" aria-selected={mode === 'login'} onClick={() => setMode('login')}>
          Sign in
        </button>
        <button type="button" role="tab" aria-selected={mode === 'signup'} onClick={() => setMode('signup')}>
          Create account
        </button>
      </div>
      <form onSubmit={submit} aria-label={mode === 'login' ? 'Sign in' : 'Create account'}>
        {mode === 'signup' && (
          <label>
            Name
            <input name="name" required maxLength={64} autoComplete="nickname" value={name} onInput={(e) => setName(value(e))} />
          </label>
        )}
        <label>
          E-mail
          <input name="email" type="email" required autoComplete="email" value={email} onInput={(e) => setEmail(value(e))} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            required
            minLength={mode === 'signup' ? 8 : undefined}
            maxLength={256}
            autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
            value={password}
            onInput={(e) => setPassword(value(e))}
          />
        </label>
        {mode === 'signup' && <p class="hint">At least 8 characters.</p>}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'login' ? 'Sign in' : 'Create account'}
        </button>
        {mode === 'login' && (
          <button type="button" class="link" onClick={() => setMode('forgot')}>
            Forgot password?
          </button>
        )}
      </form>
    </main>
  );
}

/** A forgotten password: a code is mailed, then the code and a new password reset it. */
function ForgotPassword({ email: initial, onDone }: { email: string; onDone: () => void }) {
  const [step, setStep] = useState<'ask' | 'reset' | 'done'>('ask');
  const [email, setEmail] = useState(initial);
  const [code, setCode] = useState('');
  const [password, setPassword] = useState('');
  const [busy, error, run] = useBusy();
  const ask = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const answer = await api.forgotPassword(email.trim());
      if (!api.ok(answer)) return httpText('forgot', answer);
      setStep('reset');
      return undefined;
    });
  };
  const reset = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const answer = await api.resetPassword(email.trim(), code.trim(), password);
      if (api.ok(answer)) {
        setStep('done');
        return undefined;
      }
      if (answer.status === 400 && answer.success === 0) return 'That code is wrong, used or expired: ask for a new one if needed.';
      if (answer.status === 400) return 'The new password must be 8 to 256 characters.';
      return httpText('reset', answer);
    });
  };
  return (
    <main class="auth">
      <h1>Reset your password</h1>
      {step === 'ask' && (
        <form onSubmit={ask} aria-label="Ask for a reset code">
          <label>
            E-mail
            <input name="email" type="email" required autoComplete="email" value={email} onInput={(e) => setEmail(value(e))} />
          </label>
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" class="primary" disabled={busy}>
            Mail me a code
          </button>
        </form>
      )}
      {step === 'reset' && (
        <form onSubmit={reset} aria-label="Reset the password">
          <p class="hint">If an account uses {email.trim()}, a 6-digit code is on its way (it lasts 10 minutes).</p>
          <label>
            Code
            <input name="code" inputMode="numeric" autoComplete="one-time-code" required value={code} onInput={(e) => setCode(value(e))} />
          </label>
          <label>
            New password
            <input
              name="password"
              type="password"
              required
              minLength={8}
              maxLength={256}
              autoComplete="new-password"
              value={password}
              onInput={(e) => setPassword(value(e))}
            />
          </label>
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" class="primary" disabled={busy}>
            Set the new password
          </button>
        </form>
      )}
      {step === 'done' && <p role="status">Your password is changed and every session was signed out. Sign in with the new password.</p>}
      <button type="button" class="link" onClick={onDone}>
        Back to sign in
      </button>
    </main>
  );
}

function VerifyScreen({ client, email }: { client: Client; email: string }) {
  const [code, setCode] = useState('');
  const [busy, error, run] = useBusy();
  return (
    <main class="auth">
      <h1>Check your e-mail</h1>
      <p>
        We sent a 6-digit code and a link to <strong>{email}</strong>. Enter the code here, or open the link (it signs you in) and
        come back.
      </p>
      <form
        aria-label="Verify e-mail"
        onSubmit={(e) => {
          e.preventDefault();
          void run(() => client.verify(code));
        }}
      >
        <label>
          Code
          <input
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9]{6}"
            maxLength={6}
            required
            value={code}
            onInput={(e) => setCode(value(e))}
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Verify
        </button>
      </form>
      <div class="row-buttons">
        <button type="button" disabled={busy} onClick={() => void run(() => client.verifiedByLink())}>
          I opened the link
        </button>
        <button type="button" disabled={busy} onClick={() => void run(() => client.resend())}>
          Send a new code
        </button>
        <button type="button" onClick={() => client.backToSignIn()}>
          Back to sign in
        </button>
      </div>
    </main>
  );
}

function Main({ client, state }: { client: Client; state: State }) {
  const [dialog, setDialog] = useState<'group' | 'settings' | 'info' | undefined>();
  const open = client.chat(state.open);
  return (
    <div class={`shell ${open ? 'chat-open' : ''}`}>
      {state.connection !== 'online' && (
        <div class="banner" role="status">
          {state.connection === 'connecting' ? 'Connecting…' : 'Offline: reconnecting… Messages you send now go out when the connection is back.'}
        </div>
      )}
      <Sidebar client={client} state={state} onNewGroup={() => setDialog('group')} onSettings={() => setDialog('settings')} />
      {open ? (
        <ChatPane key={open.id} client={client} state={state} chat={open} onInfo={() => setDialog('info')} />
      ) : (
        <section class="empty" aria-label="No chat open">
          <p>Pick a chat, or search for someone to talk to.</p>
        </section>
      )}
      {dialog === 'group' && <NewGroupDialog client={client} onClose={() => setDialog(undefined)} />}
      {dialog === 'settings' && <SettingsDialog client={client} state={state} onClose={() => setDialog(undefined)} />}
      {dialog === 'info' && open?.kind === 'group' && (
        <GroupDialog client={client} state={state} chat={open} onClose={() => setDialog(undefined)} />
      )}
    </div>
  );
}

function Sidebar({ client, state, onNewGroup, onSettings }: { client: Client; state: State; onNewGroup: () => void; onSettings: () => void }) {
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<{ _id: string; Name: string; Email: string }[] | undefined>();
  useEffect(() => {
    if (!query.trim()) {
      setFound(undefined);
      return;
    }
    const timer = setTimeout(() => void client.search(query, 'Search').then(setFound), 300);
    return () => clearTimeout(timer);
  }, [query, client]);
  const [words, setWords] = useState('');
  const [results, setResults] = useState<SearchResult[] | undefined>();
  useEffect(() => {
    if (!searchable(words)) {
      setResults(undefined);
      return;
    }
    const timer = setTimeout(() => void client.searchMessages(words).then(setResults), 300);
    return () => clearTimeout(timer);
  }, [words, client]);
  return (
    <nav class="sidebar" aria-label="Chats">
      <header>
        <span class="me" title={state.me?.name}>
          {state.me?.name}
        </span>
        <button type="button" onClick={onNewGroup}>
          New group
        </button>
        <button type="button" onClick={onSettings}>
          Settings
        </button>
        <button type="button" onClick={() => void client.logout()}>
          Sign out
        </button>
      </header>
      <label class="search">
        <span class="visually-hidden">Search people</span>
        <input type="search" placeholder="Search people" value={query} onInput={(e) => setQuery(value(e))} />
      </label>
      {found && (
        <ul class="results" aria-label="People found">
          {found.length === 0 && <li class="hint">Nobody by that name.</li>}
          {found.map((u) => (
            <li key={u._id}>
              <button
                type="button"
                onClick={() => {
                  setQuery('');
                  void client.chatWith(u._id, u.Name);
                }}
              >
                <span class="name">{u.Name}</span> <span class="hint">{u.Email}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      <label class="search">
        <span class="visually-hidden">Search messages</span>
        <input type="search" placeholder="Search messages" value={words} onInput={(e) => setWords(value(e))} />
      </label>
      {results && (
        <ul class="results" aria-label="Messages found">
          {results.length === 0 && <li class="hint">No message has those words.</li>}
          {hits(results, state.chats).map((h) => (
            <li key={h.messageId}>
              <button
                type="button"
                onClick={() => {
                  setWords('');
                  client.open(h.chatId);
                }}
              >
                <span class="name">{h.chat}</span> <span class="hint">{h.excerpt}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      <ul class="chats" aria-label="Chat list">
        {state.chats.map((c) => (
          <li key={c.id}>
            <button
              type="button"
              class={c.id === state.open ? 'current' : ''}
              aria-current={c.id === state.open ? 'true' : undefined}
              onClick={() => client.open(c.id)}
            >
              <span class="name">
                {c.kind === 'group' ? '# ' : ''}
                {c.name}
              </span>
              {c.unread > 0 && (
                <span class="badge">
                  {c.unread > 99 ? '99+' : c.unread}
                  <span class="visually-hidden"> unread</span>
                </span>
              )}
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}

// One formatter for every message: building one per call costs more than rendering the row.
const FORMAT = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', day: 'numeric', month: 'short' });
const time = (iso: string) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : FORMAT.format(d);
};

function Text({ content }: { content: string }) {
  return (
    <>
      {linkify(content).map((part, i) =>
        'href' in part ? (
          <a key={i} href={part.href} target="_blank" rel="noopener noreferrer">
            {part.text}
          </a>
        ) : (
          part.text
        ),
      )}
    </>
  );
}

function ChatPane({ client, state, chat, onInfo }: { client: Client; state: State; chat: Chat; onInfo: () => void }) {
  const me = state.me?.id ?? '';
  const history = state.histories[chat.id];
  const group = state.groups[chat.id];
  const [draft, setDraft] = useState(() => loadDraft(me, chat.id));
  const input = useRef<HTMLTextAreaElement>(null);
  const announcer = useRef<HTMLDivElement>(null);
  const messages = history?.messages ?? [];
  const lastNewest = useRef<string | undefined>(messages[messages.length - 1]?.id);

  useEffect(() => input.current?.focus(), [chat.id]);
  useEffect(() => {
    // Screen readers hear the newest message from someone else. Written as text straight into the
    // live region, so that an announcement costs no render.
    // Not the messages of a page just loaded: only one that arrived after them.
    const newest = messages[messages.length - 1];
    if (newest && lastNewest.current !== undefined && newest.id !== lastNewest.current && newest.senderId !== me && announcer.current) {
      announcer.current.textContent = `${newest.senderName}: ${newest.content.slice(0, 200)}`;
    }
    if (newest) lastNewest.current = newest.id;
  }, [messages, me]);

  const [replyTo, setReplyTo] = useState<Message | undefined>();
  const [editing, setEditing] = useState<Message | undefined>();
  const [files, setFiles] = useState<Attachment[]>([]);
  const [uploading, setUploading] = useState(0);
  const picker = useRef<HTMLInputElement>(null);
  useEffect(() => setFiles([]), [chat.id]);
  const attach = async (chosen: FileList | null) => {
    const list = Array.from(chosen ?? []);
    if (picker.current) picker.current.value = '';
    const room = MAX_ATTACHMENTS - files.length;
    if (list.length > room) client.notify('error', `At most ${MAX_ATTACHMENTS} files go with one message.`);
    const taken = list.slice(0, Math.max(0, room));
    setUploading((n) => n + taken.length);
    for (const file of taken) {
      const uploaded = await client.upload(file);
      setUploading((n) => n - 1);
      if (uploaded) setFiles((now) => [...now, uploaded]);
    }
  };
  const send = async () => {
    if (uploading > 0) return;
    const withFiles = !editing && files.length > 0;
    const text = draft.trim() || (withFiles ? filesText(files) : '');
    if (!text) return;
    if (text.length > 4000) {
      client.notify('error', 'A message can be at most 4,000 characters.');
      return;
    }
    if (editing) {
      if (!(await client.edit(chat.id, editing.id, draft))) return;
      setEditing(undefined);
    } else {
      client.send(chat.id, draft.trim() ? draft : text, replyTo?.id, files);
      setReplyTo(undefined);
      setFiles([]);
    }
    setDraft('');
    saveDraft(me, chat.id, '');
  };
  const startEdit = (m: Message) => {
    setReplyTo(undefined);
    setEditing(m);
    setDraft(m.content);
    input.current?.focus();
  };
  const startReply = (m: Message) => {
    setEditing(undefined);
    setReplyTo(m);
    input.current?.focus();
  };
  const byId = (id: string | undefined) => (id ? messages.find((x) => x.id === id) : undefined);
  const amAdmin = chat.kind === 'group' && group?.admin === me;

  const members = group ? Object.keys(group.participants).length : 0;
  // A message object never changes (a change makes a new one), so its row is built once and
  // Preact skips it on every later render.
  const rows = useMemo(() => new WeakMap<Message, { node: VNode; quoted?: Message }>(), [amAdmin]);
  const row = (m: Message) => {
    const quoted = byId(m.replyTo);
    let made = rows.get(m);
    if (!made || made.quoted !== quoted) {
      made = { node: buildRow(m), quoted };
      rows.set(m, made);
    }
    return made.node;
  };
  const buildRow = (m: Message) => {
    const mine = m.senderId === me;
    const read = m.readBy.length;
    return (
      <article class={`message ${mine ? 'mine' : ''} ${m.status ?? ''}`} aria-label={`${mine ? 'You' : m.senderName}, ${time(m.timestamp)}`}>
        {!mine && chat.kind === 'group' && <div class="sender">{m.senderName}</div>}
        {m.replyTo && <Quote original={byId(m.replyTo)} />}
        <div class="content">
          {m.deleted ? <em class="hint">This message was deleted.</em> : <Text content={m.content} />}
        </div>
        {m.attachments && <Files files={m.attachments} />}
        {m.reactions && (
          <div class="reactions">
            {Object.entries(m.reactions).map(([emoji, people]) => {
              const minePressed = people.includes(me);
              return (
                <button
                  type="button"
                  key={emoji}
                  class="reaction"
                  aria-pressed={minePressed}
                  aria-label={`${emoji} ${people.length}${minePressed ? ', yours: take it back' : ''}`}
                  onClick={() => void client.react(chat.id, m.id, emoji, !minePressed)}
                >
                  {emoji} {people.length}
                </button>
              );
            })}
          </div>
        )}
        <div class="meta">
          {m.editedAt && !m.deleted && <span>edited · </span>}
          <time dateTime={m.timestamp}>{time(m.timestamp)}</time>
          {mine && chat.kind !== 'self' && (
            <span class="ticks">
              {m.status === 'pending'
                ? ' · sending…'
                : m.status === 'failed'
                  ? ' · not sent'
                  : chat.kind === 'personal'
                    ? read > 0
                      ? ' · ✓✓ read'
                      : ' · ✓ sent'
                    : read > 0
                      ? ` · read by ${read}`
                      : ' · ✓ sent'}
            </span>
          )}
          {mine && chat.kind === 'self' && m.status === 'pending' && <span> · saving…</span>}
        </div>
        {!m.status && !m.deleted && (
          <div class="actions" aria-label="Message actions" role="group">
            {chat.kind !== 'self' && (
              <button type="button" onClick={() => startReply(m)}>
                Reply
              </button>
            )}
            {QUICK.map((emoji) => (
              <button type="button" key={emoji} aria-label={`React ${emoji}`} onClick={() => void client.react(chat.id, m.id, emoji, !(m.reactions?.[emoji] ?? []).includes(me))}>
                {emoji}
              </button>
            ))}
            {mine && (
              <button type="button" onClick={() => startEdit(m)}>
                Edit
              </button>
            )}
            {(mine || amAdmin) && (
              <button type="button" onClick={() => window.confirm('Delete this message for everyone?') && void client.remove(chat.id, m.id)}>
                Delete
              </button>
            )}
          </div>
        )}
        {m.status === 'failed' && (
          <div class="failed-line">
            <span role="alert">{m.error}</span>{' '}
            <button type="button" onClick={() => m.clientId && client.retry(chat.id, m.clientId)}>
              Retry
            </button>
          </div>
        )}
      </article>
    );
  };

  return (
    <section class="chat" aria-label={`Chat: ${chat.name}`}>
      <header>
        <button type="button" class="back" aria-label="Back to chat list" onClick={() => client.open(undefined)}>
          ←
        </button>
        <h2>{chat.name}</h2>
        {chat.kind === 'personal' && <OnlineDot online={isOnline(state.presence, chat.partnerId)} />}
        {chat.kind === 'group' && (
          <button type="button" onClick={onInfo}>
            Group details{members ? ` (${members})` : ''}
          </button>
        )}
      </header>
      <p class="typing" aria-live="polite">
        {typingLine(typingIn(state.presence, chat.id, Date.now()).map((id) => nameOf(state, chat, id)))}
      </p>
      {state.loading[chat.id] && (
        <p class="hint loading-older" role="status">
          Loading messages…
        </p>
      )}
      {history && !history.hasMore && messages.length === 0 && <p class="hint">No messages yet. Say hello!</p>}
      <VirtualList
        items={messages}
        keyOf={keyOf}
        render={row}
        label={`Messages with ${chat.name}`}
        resetKey={chat.id}
        onTop={() => void client.loadOlder(chat.id)}
      />
      <div class="visually-hidden" aria-live="polite" ref={announcer} />
      {(replyTo || editing) && (
        <div class="composing" role="status">
          <span>{editing ? 'Editing your message' : <>Replying to {replyTo?.senderName}: {replyTo?.content.slice(0, 80)}</>}</span>
          <button
            type="button"
            onClick={() => {
              if (editing) {
                setDraft('');
                setEditing(undefined);
              }
              setReplyTo(undefined);
            }}
          >
            Cancel
          </button>
        </div>
      )}
      {(files.length > 0 || uploading > 0) && (
        <ul class="attaching" aria-label="Files to send">
          {files.map((f) => (
            <li key={f.fileId}>
              📎 {f.name ?? 'file'} ({sizeText(f.size)})
              <button type="button" aria-label={`Remove ${f.name ?? 'file'}`} onClick={() => setFiles((now) => now.filter((x) => x !== f))}>
                ×
              </button>
            </li>
          ))}
          {uploading > 0 && (
            <li role="status">
              Uploading {uploading} file{uploading > 1 ? 's' : ''}…
            </li>
          )}
        </ul>
      )}
      <form
        class="composer"
        aria-label="Send a message"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        {!editing && (
          <>
            <input ref={picker} type="file" multiple hidden onChange={(e) => void attach(e.currentTarget.files)} />
            <button type="button" class="attach" aria-label="Attach files" title="Attach files" onClick={() => picker.current?.click()}>
              📎
            </button>
          </>
        )}
        <label class="visually-hidden" for="composer-text">
          Message
        </label>
        <span id="composer-hint" class="visually-hidden">
          Enter sends; Shift+Enter starts a new line; Escape cancels a reply or an edit.
        </span>
        <textarea
          id="composer-text"
          ref={input}
          rows={1}
          maxLength={4000}
          placeholder="Write a message…"
          aria-describedby="composer-hint"
          value={draft}
          onInput={(e) => {
            setDraft(value(e));
            saveDraft(me, chat.id, value(e));
            if (value(e).trim()) client.composing(chat.id);
            else client.stoppedComposing(chat.id);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              void send();
            } else if (e.key === 'Escape' && (replyTo || editing)) {
              if (editing) setDraft('');
              setEditing(undefined);
              setReplyTo(undefined);
            }
          }}
        />
        <button type="submit" class="primary">
          {editing ? 'Save' : 'Send'}
        </button>
      </form>
    </section>
  );
}

const keyOf = (m: Message) => m.clientId ?? m.id;
const QUICK = ['👍', '❤️', '😂'];

/** The message a reply answers, shortened; as text, like every message. */
/** A contact's online dot: green while they are connected, hollow otherwise. */
/** The most files one message takes (docs/api.md, "Attachments"). */
const MAX_ATTACHMENTS = 10;

/** A message's files: images shown (the server sends only checked image types inline), others as
 * links that download. Both load with the access cookie, and only for members of the chat. */
function Files({ files }: { files: Attachment[] }) {
  return (
    <ul class="files" aria-label="Attachments">
      {files.map((f) => {
        const href = `/files/${encodeURIComponent(f.fileId)}`;
        const name = f.name ?? 'file';
        return (
          <li key={f.fileId}>
            {isImage(f) ? (
              <a href={href} target="_blank" rel="noopener noreferrer">
                <img src={href} alt={name} loading="lazy" />
              </a>
            ) : (
              <a href={href} download={name}>
                📎 {name} ({sizeText(f.size)})
              </a>
            )}
          </li>
        );
      })}
    </ul>
  );
}

function OnlineDot({ online }: { online: boolean }) {
  return <span class={online ? 'dot online' : 'dot'} role="img" aria-label={online ? 'online' : 'offline'} title={online ? 'Online' : 'Offline'} />;
}

/** A member's name for the typing line: the partner's, or a group member's, else a placeholder. */
function nameOf(state: State, chat: Chat, user: string): string {
  if (chat.kind === 'personal') return chat.name;
  return state.groups[chat.id]?.participants[user] ?? 'Someone';
}

function Quote({ original }: { original: Message | undefined }) {
  const text = !original ? 'an earlier message' : original.deleted ? 'a deleted message' : `${original.senderName}: ${original.content.slice(0, 100)}`;
  return <div class="quote">↪ {text}</div>;
}

function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: preact.ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (el && !el.open) el.showModal();
    return () => el?.close();
  }, []);
  return (
    <dialog ref={ref} aria-label={title} onClose={onClose} onCancel={onClose}>
      <header>
        <h2>{title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      {children}
    </dialog>
  );
}

function PeoplePicker({ client, onPick, exclude }: { client: Client; onPick: (id: string, name: string) => void; exclude: string[] }) {
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<{ _id: string; Name: string; Email: string }[]>([]);
  useEffect(() => {
    const timer = setTimeout(() => void client.search(query, 'Add').then(setFound), 300);
    return () => clearTimeout(timer);
  }, [query, client]);
  return (
    <div class="picker">
      <label>
        Find people
        <input type="search" value={query} onInput={(e) => setQuery(value(e))} />
      </label>
      <ul aria-label="Matches">
        {found
          .filter((u) => !exclude.includes(u._id))
          .map((u) => (
            <li key={u._id}>
              <button
                type="button"
                onClick={() => {
                  onPick(u._id, u.Name);
                  setQuery('');
                }}
              >
                Add {u.Name} <span class="hint">{u.Email}</span>
              </button>
            </li>
          ))}
      </ul>
    </div>
  );
}

function NewGroupDialog({ client, onClose }: { client: Client; onClose: () => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [people, setPeople] = useState<{ id: string; name: string }[]>([]);
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title="New group" onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          const made = await client.createGroup(name, description, people.map((p) => p.id));
          setBusy(false);
          if (made) onClose();
        }}
      >
        <label>
          Group name
          <input name="group-name" required maxLength={100} value={name} onInput={(e) => setName(value(e))} />
        </label>
        <label>
          Description
          <textarea name="description" maxLength={1000} rows={2} value={description} onInput={(e) => setDescription(value(e))} />
        </label>
        <ul class="chips" aria-label="Members to add">
          {people.map((p) => (
            <li key={p.id}>
              {p.name}{' '}
              <button type="button" class="icon" aria-label={`Remove ${p.name}`} onClick={() => setPeople(people.filter((x) => x.id !== p.id))}>
                ×
              </button>
            </li>
          ))}
        </ul>
        <PeoplePicker client={client} exclude={people.map((p) => p.id)} onPick={(id, n) => setPeople([...people, { id, name: n }])} />
        <button type="submit" class="primary" disabled={busy}>
          Create group
        </button>
      </form>
    </Dialog>
  );
}

function GroupDialog({ client, state, chat, onClose }: { client: Client; state: State; chat: Chat; onClose: () => void }) {
  const group = state.groups[chat.id];
  const me = state.me?.id ?? '';
  if (!group) return null;
  const admin = group.admin === me;
  const members = Object.entries(group.participants).sort((a, b) => a[1].localeCompare(b[1]));
  const confirmThen = (text: string, work: () => void) => {
    if (window.confirm(text)) work();
  };
  return (
    <Dialog title={`Group: ${chat.name}`} onClose={onClose}>
      {group.description && <p class="description">{group.description}</p>}
      <h3>Members ({members.length})</h3>
      <ul class="members" aria-label="Members">
        {members.map(([id, name]) => (
          <li key={id}>
            <span class="name">
              {name}
              {id === me ? ' (you)' : ''}
            </span>
            {id === group.admin && <span class="tag">admin</span>}
            {admin && id !== me && (
              <span class="actions">
                <button type="button" onClick={() => confirmThen(`Make ${name} the admin? You will no longer be admin.`, () => void client.handOver(chat.id, id))}>
                  Make admin
                </button>
                <button type="button" onClick={() => confirmThen(`Remove ${name} from the group?`, () => void client.kick(chat.id, id))}>
                  Remove
                </button>
              </span>
            )}
          </li>
        ))}
      </ul>
      {admin && (
        <>
          <h3>Add a member</h3>
          <PeoplePicker client={client} exclude={Object.keys(group.participants)} onPick={(id, name) => void client.addMember(chat.id, id, name)} />
        </>
      )}
      <div class="row-buttons">
        {admin ? (
          <button type="button" class="danger" onClick={() => confirmThen('Delete this group for everyone?', () => void client.deleteGroup(chat.id).then(onClose))}>
            Delete group
          </button>
        ) : (
          <button type="button" class="danger" onClick={() => confirmThen('Leave this group?', () => void client.leave(chat.id).then(onClose))}>
            Leave group
          </button>
        )}
      </div>
    </Dialog>
  );
}

function SettingsDialog({ client, state, onClose }: { client: Client; state: State; onClose: () => void }) {
  const { settings } = state;
  return (
    <Dialog title="Settings" onClose={onClose}>
      <label class="check">
        <input
          type="checkbox"
          checked={settings.notifications}
          onChange={async (e) => {
            const on = e.currentTarget.checked;
            if (on && !(await allowNotifications())) {
              client.notify('error', 'The browser does not allow notifications for this page.');
              client.updateSettings({ notifications: false });
              return;
            }
            client.updateSettings({ notifications: on });
          }}
        />
        Desktop notifications for messages while this tab is in the background
      </label>
      <label class="check">
        <input type="checkbox" checked={settings.sound} onChange={(e) => client.updateSettings({ sound: e.currentTarget.checked })} />
        Play a sound for messages while this tab is in the background
      </label>
      <RenameForm client={client} current={state.me?.name ?? ''} />
      <SessionList client={client} />
    </Dialog>
  );
}

/** Renaming oneself: 1–64 characters, seen by one's contacts at once. */
function RenameForm({ client, current }: { client: Client; current: string }) {
  const [name, setName] = useState(current);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      await client.rename(name.trim());
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="rename" onSubmit={submit} aria-label="Rename yourself">
      <label>
        Your name
        <input name="name" required maxLength={64} value={name} onInput={(e) => setName(value(e))} />
      </label>
      <button type="submit" disabled={busy || !name.trim() || name.trim() === current}>
        Rename
      </button>
    </form>
  );
}

/** The user's open sessions, each with a way to sign it out. */
function SessionList({ client }: { client: Client }) {
  const [sessions, setSessions] = useState<api.SessionInfo[] | undefined>();
  const load = async () => setSessions(await client.sessions());
  useEffect(() => {
    void load();
  }, []);
  return (
    <section aria-label="Sessions">
      <h3>Sessions</h3>
      {!sessions && <p class="hint">Loading…</p>}
      <ul class="sessions">
        {sessions?.map((s) => (
          <li key={s.id}>
            <span>
              {s.userAgent}
              {s.ip && ` · ${s.ip}`} · last used {time(s.lastUsedAt)}
              {s.current && ' (this one)'}
            </span>
            {!s.current && (
              <button
                type="button"
                aria-label={`Sign out the session of ${s.userAgent}`}
                onClick={async () => {
                  if (await client.endSession(s.id)) await load();
                }}
              >
                Sign out
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
