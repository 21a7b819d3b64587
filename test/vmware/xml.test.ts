// vmware/xml.ts: well-formedness and namespace resolution of the small OVF XML parser.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml, parseXml } from '../../vmware/xml.js';

test('parseXml resolves default and prefixed namespaces on elements and attributes', () => {
  const r = parseXml('<?xml version="1.0"?>\n<E xmlns="urn:a" xmlns:b="urn:b"><b:C b:k="v" plain="p">t &amp; u</b:C></E>');
  assert.ok(r.ok);
  const c = r.root.children[0];
  assert.equal(r.root.ns, 'urn:a');
  assert.equal(c?.ns, 'urn:b');
  assert.equal(c?.local, 'C');
  assert.equal(c?.nsAttrs.get('{urn:b}k'), 'v');
  assert.equal(c?.nsAttrs.get('plain'), 'p');
  assert.equal(c?.text, 't & u');
  assert.equal(c?.line, 2);
});

test('parseXml reads CDATA, comments and character references', () => {
  const r = parseXml('<a><!-- c --><![CDATA[<x>]]>&#65;&#x42;</a>');
  assert.ok(r.ok);
  assert.equal(r.root.text, '<x>AB');
});

const bad: [string, string, RegExp][] = [
  ['mismatched end tag', '<a><b></a></b>', /does not match/],
  ['unclosed element', '<a><b></b>', /not closed/],
  ['two roots', '<a/><b/>', /second root/],
  ['undeclared prefix', '<x:a/>', /undeclared namespace prefix "x"/],
  ['repeated attribute', '<a k="1" k="2"/>', /repeated/],
  ['unquoted attribute', '<a k=1/>', /malformed attributes/],
  ['unknown entity', '<a>&nbsp;</a>', /entity/],
  ['bare ampersand', '<a>AT&T</a>', /entity/],
  ['text after the root', '<a/>junk', /outside the root/],
  ['DOCTYPE', '<!DOCTYPE a><a/>', /DOCTYPE/],
  ['late XML declaration', '<a/><?xml version="1.0"?>', /must come first/],
  ['empty document', '   ', /no root/],
];
for (const [what, text, why] of bad) {
  test(`parseXml refuses ${what}`, () => {
    const r = parseXml(text);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.errors.join('\n'), why);
  });
}

test('parseXml refuses nesting deeper than MAX_XML_DEPTH without throwing', () => {
  const r = parseXml('<a>'.repeat(100) + '</a>'.repeat(100));
  assert.equal(r.ok, false);
});

test('escapeXml output parses back to the same text', () => {
  const s = 'a<b>&"c"';
  const r = parseXml(`<x k="${escapeXml(s)}">${escapeXml(s)}</x>`);
  assert.ok(r.ok);
  assert.equal(r.root.text, s);
  assert.equal(r.root.attrs.get('k'), s);
});
