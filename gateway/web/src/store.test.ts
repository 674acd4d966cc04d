import { describe, expect, it } from 'vitest';
import {
  type Chat,
  type Message,
  acknowledge,
  addMessage,
  bumpChat,
  deleted,
  edited,
  emptyHistory,
  fail,
  filesText,
  fromGroup,
  fromPersonal,
  isImage,
  markRead,
  mergePage,
  olderCursor,
  reacted,
  sizeText,
  sortChats,
} from './store';

const at = (n: number) => new Date(Date.UTC(2026, 11, 4, 9, 0, n)).toISOString();
const msg = (id: string, n: number, extra: Partial<Message> = {}): Message => ({
  id,
  senderId: 'u2',
  senderName: 'Bea',
  content: `m${id}`,
  timestamp: at(n),
  readBy: [],
  ...extra,
});
const ids = (h: { messages: Message[] }) => h.messages.map((m) => m.id);

describe('messages', () => {
  it('are ordered by time whatever order they arrive in, and kept once per MessageId', () => {
    let h = emptyHistory();
    h = addMessage(h, msg('b', 2));
    h = addMessage(h, msg('a', 1));
    h = addMessage(h, msg('c', 3));
    h = addMessage(h, msg('b', 2));
    expect(ids(h)).toEqual(['a', 'b', 'c']);
  });

  it('keep a pending send after every stored message until it is acknowledged', () => {
    let h = addMessage(emptyHistory(), msg('pending:k1', 9, { clientId: 'k1', status: 'pending', senderId: 'u1' }));
    h = addMessage(h, msg('x', 10));
    expect(ids(h)).toEqual(['x', 'pending:k1']);
    h = acknowledge(h, 'k1', 'm1', at(11));
    expect(ids(h)).toEqual(['x', 'm1']);
    expect(h.messages[1]).toMatchObject({ clientId: 'k1', status: undefined });
  });

  it('are not doubled when the acknowledged message also arrived by another way', () => {
    let h = addMessage(emptyHistory(), msg('pending:k1', 1, { clientId: 'k1', status: 'pending' }));
    h = mergePage(h, [msg('m1', 2)], false, false);
    h = acknowledge(h, 'k1', 'm1', at(2));
    expect(ids(h)).toEqual(['m1']);
  });

  it('that are refused stay on screen as failed with the reason', () => {
    let h = addMessage(emptyHistory(), msg('pending:k', 1, { clientId: 'k', status: 'pending' }));
    h = fail(h, 'k', 'too long');
    expect(h.messages[0]).toMatchObject({ status: 'failed', error: 'too long' });
  });

  it('are marked read by the reader, never by their own sender', () => {
    let h = addMessage(emptyHistory(), msg('a', 1, { senderId: 'u1' }));
    h = addMessage(h, msg('b', 2, { senderId: 'u2' }));
    h = markRead(h, 'u2');
    expect(h.messages.map((m) => m.readBy)).toEqual([['u2'], []]);
    expect(markRead(h, 'u2')).toBe(h);
  });
});

describe('pages and cursors', () => {
  const page = (from: number, to: number) => {
    const out: Message[] = [];
    for (let i = to; i >= from; i--) out.push(msg(`m${i}`, i));
    return out; // newest first, as the server sends
  };

  it('the cursor is the oldest stored message, never a pending one', () => {
    let h = mergePage(emptyHistory(), page(5, 9), true, false);
    expect(olderCursor(h)).toBe('m5');
    h = addMessage(h, msg('pending:z', 0, { clientId: 'z', status: 'pending' }));
    expect(olderCursor(h)).toBe('m5');
  });

  it('an older page goes before what is held, and HasMore comes from it', () => {
    let h = mergePage(emptyHistory(), page(5, 9), true, false);
    h = mergePage(h, page(1, 4), false, true);
    expect(ids(h)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    expect(h.hasMore).toBe(false);
  });

  it('a newest page fetched again after a reconnect joins what is held when they overlap', () => {
    let h = mergePage(emptyHistory(), page(1, 5), false, false);
    h = addMessage(h, msg('m6', 6));
    h = mergePage(h, page(4, 8), true, false);
    expect(ids(h)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8']);
    expect(h.hasMore).toBe(false);
  });

  it('a newest page with a gap before it replaces what is held, so nothing in between is silently missing', () => {
    let h = mergePage(emptyHistory(), page(1, 5), false, false);
    h = mergePage(h, page(60, 109), true, false);
    expect(ids(h)[0]).toBe('m60');
    expect(h.messages).toHaveLength(50);
    expect(h.hasMore).toBe(true);
    expect(olderCursor(h)).toBe('m60');
  });

  it('pending sends survive a page and go when the page holds them', () => {
    let h = addMessage(emptyHistory(), msg('pending:k', 1, { clientId: 'k', status: 'pending' }));
    h = mergePage(h, page(1, 2), false, false);
    expect(ids(h)).toEqual(['m1', 'm2', 'pending:k']);
  });
});

describe('chat list', () => {
  const chat = (id: string, lastChat: string, kind: Chat['kind'] = 'personal'): Chat => ({ id, kind, name: id, lastChat, unread: 0 });

  it('puts notes first, then the newest activity', () => {
    const sorted = sortChats([chat('a', at(1)), chat('me', '', 'self'), chat('b', at(5))]);
    expect(sorted.map((c) => c.id)).toEqual(['me', 'b', 'a']);
  });

  it('moves a chat up and counts unread when a message arrives', () => {
    const chats = bumpChat([chat('a', at(5)), chat('b', at(1))], 'b', at(9), true);
    expect(chats.map((c) => [c.id, c.unread])).toEqual([
      ['b', 1],
      ['a', 0],
    ]);
  });
});

describe('wire pages', () => {
  it('read marks come from ReadStatus, leaving out the sender', () => {
    const m = fromPersonal({ _id: 'x', Sender: 'u1', Content: 'hi', Timestamp: at(1), ReadStatus: { u1: 'Read', u2: 'Read' } }, { u1: 'Ada' });
    expect(m).toMatchObject({ senderName: 'Ada', readBy: ['u2'] });
    const g = fromGroup({ _id: 'y', Sender: 'Ada', SenderId: 'u1', Content: 'hi', Timestamp: at(1), ReadStatus: { u1: 'Read', u2: 'Unread', u3: 'Read' } });
    expect(g.readBy).toEqual(['u3']);
  });
});

describe('attachments', () => {
  const png = { FileId: 'f1', Name: 'dot.png', Size: 68, ContentType: 'image/png' };
  const txt = { FileId: 'f2', Size: 2048, ContentType: 'application/octet-stream' };

  it('come from a page in the sender\'s order; a message without them has none', () => {
    const m = fromGroup({ _id: 'y', Sender: 'Ada', SenderId: 'u1', Content: 'see', Timestamp: at(1), Attachments: [png, txt] });
    expect(m.attachments).toEqual([
      { fileId: 'f1', name: 'dot.png', size: 68, contentType: 'image/png' },
      { fileId: 'f2', name: undefined, size: 2048, contentType: 'application/octet-stream' },
    ]);
    expect(fromGroup({ _id: 'z', Sender: 'Ada', SenderId: 'u1', Content: 'no', Timestamp: at(1), Attachments: [] }).attachments).toBeUndefined();
  });

  it('only the four checked image types are shown inline', () => {
    expect(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/svg+xml', 'text/html'].map((contentType) => isImage({ fileId: 'f', size: 1, contentType }))).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it('sizes read as people write them, and a message of only files names them', () => {
    expect([0, 1023, 1024, 1536, 10 * 1024, 25 * 1024 * 1024, 3 * 1024 ** 3].map(sizeText)).toEqual(['0 B', '1023 B', '1 KB', '1.5 KB', '10 KB', '25 MB', '3 GB']);
    expect(filesText([{ fileId: 'a', name: 'dot.png', size: 1, contentType: 'image/png' }, { fileId: 'b', size: 1, contentType: 'x' }])).toBe('📎 dot.png, 📎 file');
  });

  it('a deleted message loses its files', () => {
    const h = deleted(addMessage(emptyHistory(), msg('a', 1, { attachments: [{ fileId: 'f', size: 1, contentType: 'image/png' }] })), 'a');
    expect(h.messages[0].attachments).toBeUndefined();
  });
});

describe('edits, deletions and reactions', () => {
  const base = () => addMessage(emptyHistory(), msg('a', 1, { senderId: 'u1' }));

  it('an edit replaces the text, and an older edit arriving late changes nothing', () => {
    let h = edited(base(), 'a', 'second', at(5));
    h = edited(h, 'a', 'first', at(3));
    expect(h.messages[0]).toMatchObject({ content: 'second', editedAt: at(5) });
  });

  it('a deleted message keeps its place but loses its text and reactions, and takes no edit', () => {
    let h = reacted(base(), 'a', 'u2', '👍', true);
    h = deleted(h, 'a');
    h = edited(h, 'a', 'again', at(9));
    h = reacted(h, 'a', 'u2', '❤️', true);
    expect(h.messages[0]).toMatchObject({ id: 'a', content: '', deleted: true, reactions: undefined });
  });

  it('each person counts once per emoji, and taking it back removes it', () => {
    let h = reacted(base(), 'a', 'u2', '👍', true);
    h = reacted(h, 'a', 'u2', '👍', true);
    h = reacted(h, 'a', 'u3', '👍', true);
    expect(h.messages[0].reactions).toEqual({ '👍': ['u2', 'u3'] });
    h = reacted(h, 'a', 'u2', '👍', false);
    h = reacted(h, 'a', 'u3', '👍', false);
    expect(h.messages[0].reactions).toBeUndefined();
  });

  it('a change to a message not held is ignored', () => {
    const h = base();
    expect(deleted(h, 'zzz')).toBe(h);
  });

  it('pages carry replies, edits, deletions and reactions', () => {
    const m = fromGroup({ _id: 'y', Sender: 'Ada', SenderId: 'u1', Content: '', Timestamp: at(1), Deleted: true, ReplyTo: 'x', Reactions: {} });
    expect(m).toMatchObject({ deleted: true, replyTo: 'x', reactions: undefined });
  });
});
