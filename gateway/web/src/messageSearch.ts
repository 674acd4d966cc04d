// Message search (docs/api.md, "Search"): what `search-messages` answers, shown as the chat each
// hit is in and a short excerpt of its text.

import type { Chat } from './store';

/** One result of `search-messages`. */
export interface SearchResult {
  ChatId: string;
  MessageId: string;
  SenderId: string;
  Content: string;
  Timestamp: string;
}

/** A result as the sidebar lists it. */
export interface Hit {
  chatId: string;
  messageId: string;
  chat: string;
  excerpt: string;
}

/** At most this many characters of a message's text are shown. */
export const EXCERPT = 80;

/** Whether a query has something to search for (the server refuses queries without words). */
export function searchable(query: string): boolean {
  return /[\p{L}\p{N}]/u.test(query);
}

/** The hits in the server's order (newest first), each named by its chat as the list names it. */
export function hits(results: SearchResult[], chats: Chat[]): Hit[] {
  const names = new Map(chats.map((c) => [c.id, c.name]));
  return results.map((r) => {
    const text = r.Content.replace(/\s+/g, ' ').trim();
    return {
      chatId: r.ChatId,
      messageId: r.MessageId,
      chat: names.get(r.ChatId) ?? 'a chat',
      excerpt: text.length > EXCERPT ? `${text.slice(0, EXCERPT - 1)}…` : text,
    };
  });
}
