/**
 * A small non-validating XML 1.0 parser for OVF descriptors: text in, an element tree with
 * namespace-resolved names out, or a list of well-formedness errors (never throws). It handles the
 * XML declaration, comments, processing instructions, CDATA, the five predefined entities and
 * character references; it has no DTD support (OVF descriptors carry none; a DOCTYPE is refused).
 */

export interface XmlElement {
  /** Qualified name as written, e.g. `rasd:ResourceType`. */
  readonly qname: string;
  /** Namespace URI resolved from the in-scope declarations ('' when none). */
  readonly ns: string;
  readonly local: string;
  /** Attributes by qualified name as written (xmlns declarations included). */
  readonly attrs: ReadonlyMap<string, string>;
  /** Attributes by `{namespace}local` (unprefixed attributes: `local` alone). */
  readonly nsAttrs: ReadonlyMap<string, string>;
  readonly children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
  /** 1-based line of the start tag. */
  readonly line: number;
}

export type XmlResult = { ok: true; root: XmlElement } | { ok: false; errors: string[] };

/** Deeper nesting than any OVF descriptor needs: a guard against pathological input. */
export const MAX_XML_DEPTH = 64;

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const NAME_RE = /^[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?$/;
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Replaces entity and character references; returns undefined on an unknown or broken one. */
function decodeEntities(s: string): string | undefined {
  if (!s.includes('&')) return s;
  let bad = false;
  const out = s.replace(/&([^;&\s]*);?/g, (m, name: string) => {
    if (!m.endsWith(';')) { bad = true; return m; }
    if (name.startsWith('#x')) {
      const cp = Number.parseInt(name.slice(2), 16);
      if (!/^[0-9a-fA-F]+$/.test(name.slice(2)) || cp > 0x10ffff) { bad = true; return m; }
      return String.fromCodePoint(cp);
    }
    if (name.startsWith('#')) {
      const cp = Number.parseInt(name.slice(1), 10);
      if (!/^[0-9]+$/.test(name.slice(1)) || cp > 0x10ffff) { bad = true; return m; }
      return String.fromCodePoint(cp);
    }
    const v = ENTITIES[name];
    if (v === undefined) { bad = true; return m; }
    return v;
  });
  return bad ? undefined : out;
}

function lineAt(text: string, pos: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < pos; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

interface Open {
  qname: string;
  scope: Map<string, string>;
  el: XmlElement;
}

/** Parses a whole document. Errors carry the line number. */
export function parseXml(text: string): XmlResult {
  const errors: string[] = [];
  const fail = (pos: number, msg: string): XmlResult => ({ ok: false, errors: [...errors, `line ${lineAt(text, pos)}: ${msg}`] });
  let pos = 0;
  if (text.charCodeAt(0) === 0xfeff) pos = 1;
  const stack: Open[] = [];
  let root: XmlElement | undefined;
  const rootScope = new Map<string, string>([['xml', XML_NS]]);

  while (pos < text.length) {
    const lt = text.indexOf('<', pos);
    const chunk = text.slice(pos, lt === -1 ? text.length : lt);
    if (chunk.length > 0) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        if (chunk.trim() !== '') return fail(pos, 'text outside the root element');
      } else {
        if (chunk.includes(']]>')) return fail(pos, '"]]>" in character data');
        const decoded = decodeEntities(chunk);
        if (decoded === undefined) return fail(pos, 'unknown or unterminated entity reference');
        top.el.text += decoded;
      }
    }
    if (lt === -1) break;
    pos = lt;
    if (text.startsWith('<?', pos)) {
      const end = text.indexOf('?>', pos + 2);
      if (end === -1) return fail(pos, 'unterminated processing instruction');
      const target = /^<\?([^\s?]+)/.exec(text.slice(pos, end))?.[1] ?? '';
      if (target.toLowerCase() === 'xml' && pos > (text.charCodeAt(0) === 0xfeff ? 1 : 0)) return fail(pos, 'the XML declaration must come first');
      pos = end + 2;
      continue;
    }
    if (text.startsWith('<!--', pos)) {
      const end = text.indexOf('-->', pos + 4);
      if (end === -1) return fail(pos, 'unterminated comment');
      if (text.slice(pos + 4, end).includes('--')) return fail(pos, '"--" inside a comment');
      pos = end + 3;
      continue;
    }
    if (text.startsWith('<![CDATA[', pos)) {
      const top = stack[stack.length - 1];
      if (top === undefined) return fail(pos, 'CDATA outside the root element');
      const end = text.indexOf(']]>', pos + 9);
      if (end === -1) return fail(pos, 'unterminated CDATA section');
      top.el.text += text.slice(pos + 9, end);
      pos = end + 3;
      continue;
    }
    if (text.startsWith('<!', pos)) return fail(pos, 'DOCTYPE and other declarations are not allowed');
    if (text.startsWith('</', pos)) {
      const end = text.indexOf('>', pos);
      if (end === -1) return fail(pos, 'unterminated end tag');
      const name = text.slice(pos + 2, end).trim();
      const top = stack.pop();
      if (top === undefined) return fail(pos, `end tag </${name}> without a start tag`);
      if (top.qname !== name) return fail(pos, `end tag </${name}> does not match <${top.qname}>`);
      pos = end + 1;
      continue;
    }
    // Start tag: scan to the closing '>' outside quoted attribute values.
    let i = pos + 1;
    let quote = 0;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (quote !== 0) { if (c === quote) quote = 0; }
      else if (c === 0x22 || c === 0x27) quote = c;
      else if (c === 0x3e) break;
      else if (c === 0x3c) return fail(i, '"<" inside a tag');
    }
    if (i >= text.length) return fail(pos, 'unterminated start tag');
    const selfClosing = text.charCodeAt(i - 1) === 0x2f;
    const body = text.slice(pos + 1, selfClosing ? i - 1 : i);
    const nameMatch = /^[^\s/>]+/.exec(body);
    const qname = nameMatch?.[0] ?? '';
    if (!NAME_RE.test(qname)) return fail(pos, `bad element name "${qname}"`);
    const attrs = new Map<string, string>();
    let rest = body.slice(qname.length);
    const attrRe = /^\s+([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')/;
    for (;;) {
      const m = attrRe.exec(rest);
      if (m === null) break;
      const an = m[1] ?? '';
      if (!NAME_RE.test(an)) return fail(pos, `bad attribute name "${an}" on <${qname}>`);
      if (attrs.has(an)) return fail(pos, `attribute "${an}" repeated on <${qname}>`);
      const raw = m[3] ?? m[4] ?? '';
      if (raw.includes('<')) return fail(pos, `"<" in the value of attribute "${an}"`);
      const v = decodeEntities(raw);
      if (v === undefined) return fail(pos, `bad entity reference in attribute "${an}"`);
      attrs.set(an, v);
      rest = rest.slice(m[0].length);
    }
    if (rest.trim() !== '') return fail(pos, `malformed attributes on <${qname}>: "${rest.trim().slice(0, 40)}"`);
    if (stack.length === 0 && root !== undefined) return fail(pos, `a second root element <${qname}>`);
    if (stack.length >= MAX_XML_DEPTH) return fail(pos, `elements nested deeper than ${MAX_XML_DEPTH}`);

    const parentScope = stack[stack.length - 1]?.scope ?? rootScope;
    let scope = parentScope;
    for (const [an, v] of attrs) {
      if (an === 'xmlns' || an.startsWith('xmlns:')) {
        if (scope === parentScope) scope = new Map(parentScope);
        scope.set(an === 'xmlns' ? '' : an.slice(6), v);
      }
    }
    const colon = qname.indexOf(':');
    const prefix = colon === -1 ? '' : qname.slice(0, colon);
    const ns = scope.get(prefix);
    if (ns === undefined && prefix !== '') return fail(pos, `undeclared namespace prefix "${prefix}" on <${qname}>`);
    const nsAttrs = new Map<string, string>();
    for (const [an, v] of attrs) {
      if (an === 'xmlns' || an.startsWith('xmlns:')) continue;
      const c = an.indexOf(':');
      if (c === -1) { nsAttrs.set(an, v); continue; }
      const ans = scope.get(an.slice(0, c));
      if (ans === undefined) return fail(pos, `undeclared namespace prefix "${an.slice(0, c)}" on attribute "${an}"`);
      const key = `{${ans}}${an.slice(c + 1)}`;
      if (nsAttrs.has(key)) return fail(pos, `attribute ${key} repeated on <${qname}>`);
      nsAttrs.set(key, v);
    }
    const el: XmlElement = {
      qname, ns: ns ?? '', local: colon === -1 ? qname : qname.slice(colon + 1), attrs, nsAttrs, children: [], text: '', line: lineAt(text, pos),
    };
    const parent = stack[stack.length - 1];
    if (parent === undefined) root = el;
    else parent.el.children.push(el);
    if (!selfClosing) stack.push({ qname, scope, el });
    pos = i + 1;
  }
  const open = stack[stack.length - 1];
  if (open !== undefined) return fail(text.length, `element <${open.qname}> is not closed`);
  if (root === undefined) return fail(0, 'no root element');
  return { ok: true, root };
}

/** Escapes text for element content and double-quoted attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
