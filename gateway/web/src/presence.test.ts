import { describe, expect, it } from 'vitest';
import {
  TYPING_RENEW_MS,
  TYPING_SHOWN_MS,
  emptyPresence,
  isOnline,
  presenceChanged,
  presenceList,
  shouldSayTyping,
  typingChanged,
  typingIn,
  typingLine,
} from './presence';

describe('presence', () => {
  it('takes the list on connect, replacing what was known', () => {
    let p = presenceChanged(emptyPresence(), { UserId: 'old', Online: true, LastSeen: null });
    p = presenceList(p, [
      { UserId: 'u1', Online: true, LastSeen: null },
      { UserId: 'u2', Online: false, LastSeen: '2026-12-04T09:00:00.000Z' },
    ]);
    expect(isOnline(p, 'u1')).toBe(true);
    expect(isOnline(p, 'u2')).toBe(false);
    expect(p.users.u2.lastSeen).toBe('2026-12-04T09:00:00.000Z');
    expect(isOnline(p, 'old')).toBe(false);
    expect(isOnline(p, undefined)).toBe(false);
  });

  it('follows changes, and ignores a change that only renames', () => {
    let p = presenceList(emptyPresence(), [{ UserId: 'u1', Online: false, LastSeen: null }]);
    p = presenceChanged(p, { UserId: 'u1', Online: true, LastSeen: null });
    expect(isOnline(p, 'u1')).toBe(true);
    const renamed = presenceChanged(p, { UserId: 'u1', Name: 'Bea' } as never);
    expect(renamed).toBe(p);
    p = presenceChanged(p, { UserId: 'u1', Online: false, LastSeen: '2026-12-04T09:00:00.000Z' });
    expect(p.users.u1).toEqual({ online: false, lastSeen: '2026-12-04T09:00:00.000Z' });
  });
});

describe('typing', () => {
  it('shows who types until they stop, or for a while without news', () => {
    let p = typingChanged(emptyPresence(), { ChatId: 'c', UserId: 'u2', Typing: true }, 1000);
    p = typingChanged(p, { ChatId: 'c', UserId: 'u1', Typing: true }, 1000);
    expect(typingIn(p, 'c', 1000)).toEqual(['u1', 'u2']);
    expect(typingIn(p, 'other', 1000)).toEqual([]);
    p = typingChanged(p, { ChatId: 'c', UserId: 'u1', Typing: false }, 2000);
    expect(typingIn(p, 'c', 2000)).toEqual(['u2']);
    // The server's end may be lost with a connection: it lapses here too.
    expect(typingIn(p, 'c', 1000 + TYPING_SHOWN_MS)).toEqual([]);
    p = typingChanged(p, { ChatId: 'c', UserId: 'u2', Typing: false }, 3000);
    expect(p.typing).toEqual({});
  });

  it('ends everywhere for someone who goes offline', () => {
    let p = typingChanged(emptyPresence(), { ChatId: 'c', UserId: 'u2', Typing: true }, 0);
    p = typingChanged(p, { ChatId: 'd', UserId: 'u2', Typing: true }, 0);
    p = typingChanged(p, { ChatId: 'd', UserId: 'u3', Typing: true }, 0);
    p = presenceChanged(p, { UserId: 'u2', Online: false, LastSeen: null });
    expect(typingIn(p, 'c', 1)).toEqual([]);
    expect(typingIn(p, 'd', 1)).toEqual(['u3']);
  });

  it('says the user\'s own typing on the first keystroke, then every few seconds', () => {
    expect(shouldSayTyping(undefined, 5)).toBe(true);
    expect(shouldSayTyping(5, 5 + TYPING_RENEW_MS - 1)).toBe(false);
    expect(shouldSayTyping(5, 5 + TYPING_RENEW_MS)).toBe(true);
  });

  it('words the line by how many type', () => {
    expect(typingLine([])).toBe('');
    expect(typingLine(['Bea'])).toBe('Bea is typing…');
    expect(typingLine(['Bea', 'Cy'])).toBe('Bea and Cy are typing…');
    expect(typingLine(['Bea', 'Cy', 'Di'])).toBe('3 people are typing…');
  });
});
