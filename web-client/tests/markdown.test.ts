import { describe, expect, it } from 'vitest';
import { blocks, fillPlaceholders, inline, safeHref } from '../src/markdown';

describe('markdown', () => {
  it('splits blocks', () => {
    const b = blocks('# Title\n\nHello\nworld\n\n- a\n- b\n\n1. one\n2. two\n\n> quoted\n\n```\n<b>x</b>\n```');
    expect(b.map((x) => x.kind)).toEqual(['h', 'p', 'ul', 'ol', 'quote', 'code']);
    expect(b[5]).toEqual({ kind: 'code', text: '<b>x</b>' });
  });
  it('keeps markup as text and only follows safe links', () => {
    const parts = inline('<script>alert(1)</script> **bold** [x](javascript:alert(1)) [ok](https://example.com)');
    expect(parts[0]).toBe('<script>alert(1)</script> ');
    expect(parts.filter((p) => typeof p === 'string').join('')).toContain('[x](javascript:alert(1)');
    expect(parts.filter((p: any) => p?.type === 'a').length).toBe(1);
    expect(safeHref('javascript:alert(1)')).toBeNull();
    expect(safeHref('https://example.com')).toBe('https://example.com');
  });
  it('fills placeholders it knows', () => {
    expect(fillPlaceholders('Hi {{requester.name}}, re #{{ticket.number}} {{nope}}', { 'requester.name': 'Cleo', 'ticket.number': 1042 })).toBe(
      'Hi Cleo, re #1042 {{nope}}',
    );
  });
});
