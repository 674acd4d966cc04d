import { describe, expect, it } from 'vitest';
import { linkify } from './linkify';

describe('linkify', () => {
  it('makes http(s) and www links, leaving the rest as text', () => {
    expect(linkify('see https://example.com/a?b=1, and www.x.org.')).toEqual([
      { text: 'see ' },
      { text: 'https://example.com/a?b=1', href: 'https://example.com/a?b=1' },
      { text: ', and ' },
      { text: 'www.x.org', href: 'https://www.x.org/' },
      { text: '.' },
    ]);
  });

  it('never makes a link of another scheme', () => {
    expect(linkify('javascript:alert(1) data:text/html,<b>')).toEqual([{ text: 'javascript:alert(1) data:text/html,<b>' }]);
  });

  it('keeps markup as text', () => {
    const text = '<img src=x onerror=alert(1)>';
    expect(linkify(text)).toEqual([{ text }]);
  });

  it('keeps a balanced parenthesis', () => {
    expect(linkify('(https://en.wikipedia.org/wiki/A_(b))')[1]).toEqual({
      text: 'https://en.wikipedia.org/wiki/A_(b)',
      href: 'https://en.wikipedia.org/wiki/A_(b)',
    });
  });
});
