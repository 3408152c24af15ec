// A small Markdown renderer that builds Preact elements, never HTML strings: whatever a comment
// holds ends up as text nodes, so markup in it is shown, not run. Supports paragraphs, line
// breaks, headings (#), block quotes (>), lists (-, *, 1.), fenced code (```), `code`,
// **bold**, *italic* and [links](https://…) to http(s) and mailto addresses only.
import type { ComponentChildren, VNode } from 'preact';

export type Block =
  | { kind: 'p'; text: string }
  | { kind: 'h'; level: number; text: string }
  | { kind: 'quote'; text: string }
  | { kind: 'ul' | 'ol'; items: string[] }
  | { kind: 'code'; text: string };

/** Splits text into blocks (exported for tests). */
export function blocks(src: string): Block[] {
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  const out: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*```/.test(line)) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !/^\s*```/.test(lines[i])) body.push(lines[i++]);
      i++;
      out.push({ kind: 'code', text: body.join('\n') });
      continue;
    }
    if (!line.trim()) {
      i++;
      continue;
    }
    const h = /^(#{1,3})\s+(.*)$/.exec(line);
    if (h) {
      out.push({ kind: 'h', level: h[1].length, text: h[2] });
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const body: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ''));
      out.push({ kind: 'quote', text: body.join('\n') });
      continue;
    }
    const listKind = /^\s*[-*]\s+/.test(line) ? 'ul' : /^\s*\d+[.)]\s+/.test(line) ? 'ol' : null;
    if (listKind) {
      const re = listKind === 'ul' ? /^\s*[-*]\s+/ : /^\s*\d+[.)]\s+/;
      const items: string[] = [];
      while (i < lines.length && re.test(lines[i])) items.push(lines[i++].replace(re, ''));
      out.push({ kind: listKind, items });
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && lines[i].trim() && !/^\s*(```|>|#{1,3}\s|[-*]\s|\d+[.)]\s)/.test(lines[i])) para.push(lines[i++]);
    if (!para.length) para.push(lines[i++]);
    out.push({ kind: 'p', text: para.join('\n') });
  }
  return out;
}

/** Whether a link target is one we let people follow. */
export function safeHref(href: string): string | null {
  const h = href.trim();
  return /^(https?:\/\/|mailto:)/i.test(h) ? h : null;
}

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*)|(\[[^\]\n]+\]\([^)\s]+\))/;

/** Inline marks of one block's text, as Preact children. */
export function inline(text: string): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  let rest = text;
  let key = 0;
  const pushText = (t: string) => {
    const parts = t.split('\n');
    parts.forEach((p, i) => {
      if (i > 0) out.push(<br key={`br${key++}`} />);
      if (p) out.push(p);
    });
  };
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) {
      pushText(rest);
      break;
    }
    if (m.index > 0) pushText(rest.slice(0, m.index));
    const tok = m[0];
    if (m[1]) out.push(<code key={key++}>{tok.slice(1, -1)}</code>);
    else if (m[2]) out.push(<strong key={key++}>{tok.slice(2, -2)}</strong>);
    else if (m[3]) out.push(<em key={key++}>{tok.slice(1, -1)}</em>);
    else {
      const [, label, href] = /^\[([^\]]+)\]\(([^)]+)\)$/.exec(tok)!;
      const safe = safeHref(href);
      out.push(
        safe ? (
          <a key={key++} href={safe} target="_blank" rel="noopener noreferrer nofollow">
            {label}
          </a>
        ) : (
          tok
        ),
      );
    }
    rest = rest.slice(m.index + tok.length);
  }
  return out;
}

export function Markdown({ text, class: cls }: { text: string; class?: string }): VNode {
  return (
    <div class={`md${cls ? ` ${cls}` : ''}`}>
      {blocks(text).map((b, i) => {
        switch (b.kind) {
          case 'code':
            return (
              <pre key={i}>
                <code>{b.text}</code>
              </pre>
            );
          case 'h':
            return b.level === 1 ? <h3 key={i}>{inline(b.text)}</h3> : <h4 key={i}>{inline(b.text)}</h4>;
          case 'quote':
            return <blockquote key={i}>{inline(b.text)}</blockquote>;
          case 'ul':
            return (
              <ul key={i}>
                {b.items.map((t, j) => (
                  <li key={j}>{inline(t)}</li>
                ))}
              </ul>
            );
          case 'ol':
            return (
              <ol key={i}>
                {b.items.map((t, j) => (
                  <li key={j}>{inline(t)}</li>
                ))}
              </ol>
            );
          default:
            return <p key={i}>{inline(b.text)}</p>;
        }
      })}
    </div>
  );
}

/** Fills `{{requester.name}}` and the like from `values`; unknown placeholders stay as written. */
export function fillPlaceholders(text: string, values: Record<string, string | number | null | undefined>): string {
  return text.replace(/\{\{\s*([a-z_.]+)\s*\}\}/gi, (all, key: string) => {
    const v = values[key.toLowerCase()];
    return v === undefined || v === null || v === '' ? all : String(v);
  });
}
