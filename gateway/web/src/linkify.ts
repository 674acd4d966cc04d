// Splits message text into plain text and web links, so that links are rendered as <a> elements
// built by the UI library (never through innerHTML). Only http(s) links become links.

export type Part = { text: string } | { text: string; href: string };

const LINK = /\b(?:https?:\/\/|www\.)[^\s<>"']+/gi;
const TRAILING = /[).,;:!?\]}'"]+$/;

export function linkify(text: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const start = match.index ?? 0;
    let raw = match[0];
    // Punctuation closing a sentence is not part of the link; a balanced ")" is.
    const trailing = TRAILING.exec(raw)?.[0] ?? '';
    let cut = trailing.length;
    if (trailing.startsWith(')') && raw.slice(0, -cut).includes('(')) cut -= 1;
    raw = raw.slice(0, raw.length - cut);
    const href = safeHref(raw);
    if (!href) continue;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: raw, href });
    last = start + raw.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

function safeHref(raw: string): string | undefined {
  try {
    const url = new URL(raw.toLowerCase().startsWith('www.') ? `https://${raw}` : raw);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}
