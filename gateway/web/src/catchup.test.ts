import { describe, expect, it } from 'vitest';
import { SeqLog, seqAfter } from './catchup';

describe('catch-up', () => {
  it('orders Seq values as numbers of any length', () => {
    expect(seqAfter('10', '9')).toBe(true);
    expect(seqAfter('9', '10')).toBe(false);
    expect(seqAfter('123456789012345678901', '123456789012345678900')).toBe(true);
    expect(seqAfter('5', '5')).toBe(false);
  });

  it('applies a delivery once, whether it comes live or in a catch-up, and keeps the highest', () => {
    const log = new SeqLog();
    expect(log.highest).toBeUndefined();
    expect(log.admit('17')).toBe(true);
    expect(log.admit('9')).toBe(true);
    expect(log.admit('17')).toBe(false);
    expect(log.highest).toBe('17');
    expect(log.admit(undefined)).toBe(true);
    expect(log.admit('not a seq')).toBe(true);
    log.raise('100');
    expect(log.highest).toBe('100');
    log.raise('50');
    expect(log.highest).toBe('100');
  });

  it('forgets the oldest beyond its capacity', () => {
    const log = new SeqLog(2);
    log.admit('1');
    log.admit('2');
    log.admit('3');
    expect(log.admit('1')).toBe(true);
    expect(log.admit('3')).toBe(false);
  });
});
