// A windowed list of messages of any height: only the rows in view (and a margin) are in the
// DOM, so a chat of 10,000 messages scrolls like one of 50. Heights are measured as rows render;
// the row at the top of the view stays put when rows are added above it (older pages) or change
// height, and the list follows new messages while it is scrolled to the bottom.

import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';

interface Props<T> {
  items: T[];
  keyOf: (item: T) => string;
  render: (item: T) => ComponentChildren;
  /** Called when the view nears the top (load older messages). */
  onTop: () => void;
  label: string;
  /** Changes when another chat is shown: scroll to its bottom. */
  resetKey: string;
}

const ESTIMATE = 60;
const MARGIN = 600;

export function VirtualList<T>({ items, keyOf, render, onTop, label, resetKey }: Props<T>) {
  const box = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const [, redraw] = useState(0);
  const [view, setView] = useState({ top: 0, height: 800 });
  const atBottom = useRef(true);
  const anchor = useRef<{ key: string; offset: number } | undefined>();

  // Linear in the number of messages, which is cheap next to rendering even one row.
  const keys = items.map(keyOf);
  const offsets = new Array<number>(keys.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < keys.length; i++) offsets[i + 1] = offsets[i] + (heights.current.get(keys[i]) ?? ESTIMATE);
  const total = offsets[keys.length];

  const first = Math.max(0, search(offsets, view.top - MARGIN) - 1);
  const last = Math.min(keys.length, search(offsets, view.top + view.height + MARGIN) + 1);

  // Before the DOM changes, remember which row is at the top of the view and where.
  const box0 = box.current;
  if (box0 && !atBottom.current) {
    const i = Math.max(0, search(offsets, box0.scrollTop) - 1);
    const key = keys[i];
    if (key !== undefined && (anchor.current === undefined || anchor.current.key !== key)) {
      anchor.current = { key, offset: box0.scrollTop - offsets[i] };
    }
  }

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    if (atBottom.current) {
      const bottom = el.scrollHeight - el.clientHeight;
      if (el.scrollTop < bottom - 1) el.scrollTop = bottom;
    } else if (anchor.current) {
      const i = keys.indexOf(anchor.current.key);
      if (i >= 0) {
        const want = offsets[i] + anchor.current.offset;
        if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
      }
    }
  });

  // A list too short to scroll cannot be scrolled to its top: ask for older messages directly.
  useEffect(() => {
    if (keys.length > 0 && total < view.height + 300) onTop();
  });

  useEffect(() => {
    atBottom.current = true;
    anchor.current = undefined;
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [resetKey]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const resize = new ResizeObserver(() => setView({ top: el.scrollTop, height: el.clientHeight }));
    resize.observe(el);
    return () => resize.disconnect();
  }, []);

  const measured = useRef(new ResizeObserver((entries) => {
    let changed = false;
    for (const entry of entries) {
      const el = entry.target as HTMLElement;
      const key = el.dataset.key;
      const height = el.offsetHeight;
      if (key && height && heights.current.get(key) !== height) {
        heights.current.set(key, height);
        changed = true;
      }
    }
    if (changed) redraw((n) => n + 1);
  }));
  useEffect(() => () => measured.current.disconnect(), []);
  // One function for every row and render, so that Preact does not detach and attach it again.
  const observe = useCallback((el: HTMLDivElement | null) => {
    if (el) measured.current.observe(el);
  }, []);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    anchor.current = undefined;
    setView({ top: el.scrollTop, height: el.clientHeight });
    if (el.scrollTop < 300) onTop();
  };

  const rows = [];
  for (let i = first; i < last; i++) {
    const key = keys[i];
    rows.push(
      <div
        key={key}
        data-key={key}
        class="row"
        style={{ transform: `translateY(${offsets[i]}px)` }}
        ref={observe}
      >
        {render(items[i])}
      </div>,
    );
  }

  return (
    <div ref={box} class="messages" role="log" aria-label={label} tabIndex={0} onScroll={onScroll}>
      <div class="spacer" style={{ height: `${total}px` }}>
        {rows}
      </div>
    </div>
  );
}

/** The index of the first offset above `y` (offsets ascending). */
function search(offsets: number[], y: number): number {
  let lo = 0;
  let hi = offsets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (offsets[mid] <= y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
