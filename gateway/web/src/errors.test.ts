import { describe, expect, it } from 'vitest';
import { httpText, refusalText } from './errors';

describe('refusal messages', () => {
  it('has a message for every socket refusal code, with the server detail', () => {
    for (const code of ['bad_request', 'not_found', 'forbidden', 'conflict', 'rate_limited', 'internal', 'timeout']) {
      expect(refusalText(code).length).toBeGreaterThan(10);
    }
    expect(refusalText('bad_request', 'Content is too long')).toContain('(Content is too long)');
    expect(refusalText('forbidden', undefined, 'kickout')).toBe('Only the group admin can do that.');
    expect(refusalText('conflict', 'Already in Group', 'add-member')).toContain('already in the group');
    expect(refusalText('weird')).toBe(refusalText('internal'));
  });

  it('tells each HTTP refusal apart', () => {
    expect(httpText('login', { status: 401, success: 0 })).toBe('Wrong e-mail or password.');
    expect(httpText('login', { status: 403, success: -2 })).toContain('not verified');
    expect(httpText('signup', { status: 409, success: 0 })).toContain('already exists');
    expect(httpText('signup', { status: 429, retryAfter: 12 })).toContain('12 s');
    expect(httpText('verify', { status: 400, success: 0 })).toContain('wrong, used or expired');
    expect(httpText('signup', { status: 400, success: -1, message: 'name must be 1-64 characters' })).toContain('name must be');
    expect(httpText('login', { status: 0 })).toContain('Cannot reach');
  });
});
