import { describe, expect, it } from 'vitest';
import { EXCERPT, hits, searchable } from './messageSearch';
import type { Chat } from './store';

const chat = (id: string, name: string): Chat => ({ id, kind: 'group', name, lastChat: '', unread: 0 });

describe('message search', () => {
  it('searches only queries with a letter or a digit', () => {
    expect(searchable('lunch')).toBe(true);
    expect(searchable('Grüße')).toBe(true);
    expect(searchable('42')).toBe(true);
    expect(searchable('  ?!*  ')).toBe(false);
    expect(searchable('')).toBe(false);
  });

  it('names each hit by its chat, keeps the order and shortens long text', () => {
    const long = 'word '.repeat(40);
    const found = hits(
      [
        { ChatId: 'g1', MessageId: 'm2', SenderId: 'u', Content: 'lunch\n at  noon', Timestamp: 't2' },
        { ChatId: 'gone', MessageId: 'm1', SenderId: 'u', Content: long, Timestamp: 't1' },
      ],
      [chat('g1', 'Team')],
    );
    expect(found.map((h) => [h.chatId, h.messageId, h.chat])).toEqual([
      ['g1', 'm2', 'Team'],
      ['gone', 'm1', 'a chat'],
    ]);
    expect(found[0].excerpt).toBe('lunch at noon');
    expect(found[1].excerpt.length).toBe(EXCERPT);
    expect(found[1].excerpt.endsWith('…')).toBe(true);
  });
});
