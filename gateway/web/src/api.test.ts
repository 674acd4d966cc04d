import { describe, expect, it } from 'vitest';
import { expiry, sessionsOf } from './api';

const b64url = (o: object) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

describe('expiry', () => {
  it('reads exp from a JWT, and 0 from anything else', () => {
    expect(expiry(`${b64url({ alg: 'HS256' })}.${b64url({ sub: 'u', exp: 1790000000 })}.sig`)).toBe(1790000000);
    expect(expiry('not a token')).toBe(0);
    expect(expiry(`x.${b64url({ sub: 'u' })}.y`)).toBe(0);
    expect(expiry('')).toBe(0);
  });
});

describe('sessionsOf', () => {
  it('lists the current session first, then the most recently used, and skips malformed entries', () => {
    const listed = sessionsOf({
      success: 1,
      Sessions: [
        { Id: 'a', Current: false, CreatedAt: '2026-01-01T00:00:00.000Z', LastUsedAt: '2026-01-02T00:00:00.000Z', UserAgent: 'phone', Ip: '10.0.0.1' },
        { Id: 'b', Current: true, CreatedAt: '2026-01-01T00:00:00.000Z', LastUsedAt: '2026-01-01T00:00:00.000Z', UserAgent: null, Ip: null },
        { Id: 'c', Current: false, CreatedAt: '2026-01-01T00:00:00.000Z', LastUsedAt: '2026-01-03T00:00:00.000Z', UserAgent: 'laptop', Ip: '10.0.0.2' },
        { Current: true },
      ],
    });
    expect(listed.map((s) => s.id)).toEqual(['b', 'c', 'a']);
    expect(listed[0]).toMatchObject({ current: true, userAgent: 'Unknown browser or app', ip: '' });
    expect(sessionsOf({})).toEqual([]);
    expect(sessionsOf({ Sessions: 'nope' })).toEqual([]);
  });
});
