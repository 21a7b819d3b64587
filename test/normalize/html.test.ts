import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LEGACY_REFS, NAMED_REFS } from '../../sensor/normalize/html-entities.js';
import { decodeHtmlEntities, HtmlExtractor } from '../../sensor/normalize/html.js';
import { assertSplitInvariant, bytes, latin1Bytes, run, segmentsOf, type MakeExtractor } from './helpers.js';

const makeHtml: MakeExtractor = (sink, counters) => new HtmlExtractor(sink, counters);
const makeXml: MakeExtractor = (sink, counters) => new HtmlExtractor(sink, counters, undefined, { xml: true });
// A declared charset skips the 1024-byte prescan window, so cuts reach the tokenizer itself.
const makeHtmlUtf8: MakeExtractor = (sink, counters) => new HtmlExtractor(sink, counters, 'utf-8');
const makeXmlUtf8: MakeExtractor = (sink, counters) => new HtmlExtractor(sink, counters, 'utf-8', { xml: true });
const make1252: MakeExtractor = (sink, counters) => new HtmlExtractor(sink, counters, 'windows-1252');
const html = (s: string | Uint8Array): string[] => segmentsOf(makeHtml, s);
/** The page as one string: segments joined with '|'. */
const view = (s: string | Uint8Array): string => html(s).join('|');

describe('HtmlExtractor text and tags', () => {
  it('drops tags and keeps text', () => {
    assert.deepEqual(html('<html><body><span class="x">Our secret</span></body></html>'), ['Our secret ']);
  });

  it('joins words across inline tags, as a browser draws them', () => {
    assert.equal(view('s<b>ex</b> and <a href="/x">wo</a><i>rd</i><span>s</span>'), 'sex and words');
  });

  it('puts one space at block-level tags', () => {
    assert.equal(view('<p>Our</p><p>Secret</p>'), 'Our Secret ');
    assert.equal(view('one<br>two<br/>three<li>four<td>five<h2>six</h2>'), 'one two three four five six ');
    assert.equal(view('cell<img src=x.png>text'), 'cell text');
  });

  it('adds no space where the text already ends in whitespace', () => {
    assert.equal(view('Our\n<div>Secret</div>'), 'Our\nSecret ');
  });

  it('reads uppercase and mixed-case tags', () => {
    assert.equal(view('<P>a</P><B>b</B><SCRIPT>hidden()</SCRIPT><Div>c</dIV>'), 'a b c ');
  });

  it('keeps a ">" inside quoted attribute values out of the text', () => {
    assert.equal(view('<a title="x > y" href=\'a>b\' data-x="<p>">link</a>'), 'link|x > y');
  });

  it('treats a "<" that opens no tag as text', () => {
    assert.equal(view('1 < 2 and a <3 b, x<=y, <'), '1 < 2 and a <3 b, x<=y, <');
  });

  it('drops "</>" and reads "</ x>" as a bogus comment', () => {
    assert.equal(view('a</>b</ x>c</'), 'abc</');
  });
});

describe('HtmlExtractor hidden content', () => {
  it('drops script content up to the first "</script", even inside a string', () => {
    assert.equal(view('a<script>var s = "</script>";b</script>c'), 'a";bc');
  });

  it('ends script only at "</script" followed by space, "/" or ">"', () => {
    assert.equal(view('<script>x = "</scripty>"; y = "</script"</script >after'), 'after');
    assert.equal(view('<script>if (a<b && c</d) {}</SCRIPT\n>after'), 'after');
  });

  it('drops style, iframe, noembed and noframes content', () => {
    assert.equal(view('<style>p { content: "<b>x</b>" }</style>a<iframe><p>fallback</p></iframe>b<noembed>n</noembed><noframes>f</noframes>c'), 'a bc');
  });

  it('keeps noscript content, parsed as markup', () => {
    assert.equal(view('<noscript><b>Please</b> enable JS</noscript>'), 'Please enable JS');
  });

  it('drops template content, nested templates included', () => {
    assert.equal(view('a<template>b<template>c</template>d<p title="t">e</p></template>f'), 'af');
  });

  it('drops comments, with the HTML comment-end rules', () => {
    assert.equal(view('a<!-- x -- > still comment -->b'), 'ab');
    assert.equal(view('a<!-->b'), 'ab');
    assert.equal(view('a<!--->b'), 'ab');
    assert.equal(view('a<!-- x --!>b'), 'ab');
    assert.equal(view('a<!-- x --->b'), 'ab');
    assert.equal(view('a<!-- never closed'), 'a');
  });

  it('drops doctype, processing instructions and CDATA sections', () => {
    assert.equal(view('<!DOCTYPE html><?xml version="1.0"?>a<![CDATA[ x > y ]]>b'), 'ab');
  });
});

describe('HtmlExtractor text elements', () => {
  it('reads textarea and title content as text: tags inside are not tags', () => {
    assert.equal(view('<title>A <b> &amp; B</title><textarea>x<p>y</p></TEXTAREA>z'), 'A <b> & B x<p>y</p> z');
  });

  it('shows xmp content as written, references not decoded', () => {
    assert.equal(view('<xmp><b>&amp;</b></xmp>'), '<b>&amp;</b> ');
  });

  it('shows everything after plaintext as text', () => {
    assert.equal(view('a<plaintext><b>x</b></plaintext>'), 'a <b>x</b></plaintext>');
  });
});

describe('HtmlExtractor character references', () => {
  it('decodes named references, and &amp;lt; only once', () => {
    assert.equal(view('&lt;b&gt; &quot;x&quot; &apos;y&apos; a&nbsp;b &amp;lt;'), '<b> "x" \'y\' a\u00a0b &lt;');
  });

  it('holds the whole WHATWG table: 2,125 names, 106 of them legacy', () => {
    assert.equal(NAMED_REFS.size, 2125);
    assert.equal(LEGACY_REFS.size, 106);
    assert.equal(NAMED_REFS.get('amp;'), '&');
    assert.ok(LEGACY_REFS.has('not') && !LEGACY_REFS.has('notin'));
  });

  it('decodes the full WHATWG set, multi-code-point values included', () => {
    assert.equal(decodeHtmlEntities('&CounterClockwiseContourIntegral;&NotEqualTilde;&fjlig;&Afr;'), '\u2233\u2242\u0338fj\ud835\udd04');
  });

  it('decodes legacy names without ";" in text (&notit; is "¬it;", &notin; is "∉")', () => {
    assert.equal(view('&notit; &notin; &copy 2024 &ampx &eacutex'), '\u00acit; \u2209 \u00a9 2024 &x \u00e9x');
  });

  it('leaves non-legacy names without ";" and unknown names literal', () => {
    assert.equal(view('&hellip &foo; &; & x &'), '&hellip &foo; &; & x &');
  });

  it('does not decode a legacy name followed by a letter, digit or "=" in an attribute', () => {
    assert.equal(decodeHtmlEntities('?a=1&notit=2&copy=3&amp;x=&amp', true), '?a=1&notit=2&copy=3&x=&');
    assert.equal(view('<img alt="&notit; &copy2 &copy; &ampx">'), '&notit; &copy2 \u00a9 &ampx');
  });

  it('decodes decimal and hex references with or without ";"', () => {
    assert.equal(view('&#65;&#x42;&#X43;&#68 &#x45x &#0000000070;'), 'ABCD Ex F');
  });

  it('maps 0, surrogates and out-of-range numbers to U+FFFD, 0x80-0x9F to windows-1252', () => {
    assert.equal(view('&#0;&#xD800;&#x110000;&#99999999999;&#x80;&#147;&#x94;&#x81;'), '\ufffd\ufffd\ufffd\ufffd\u20ac\u201c\u201d\u0081');
  });

  it('keeps "&#" and "&#x" without digits literal', () => {
    assert.equal(view('&#; &#x; &#xg; &#'), '&#; &#x; &#xg; &#');
  });

  it('cuts a reference after 40 characters and counts it', () => {
    const r = run(makeHtml, '&#' + '0'.repeat(50) + '65;');
    assert.deepEqual(r.segments, ['\ufffd' + '0'.repeat(12) + '65;']);
    assert.equal(r.counters['normalize.html.charref_too_long'], 1);
  });
});

describe('HtmlExtractor attribute text', () => {
  it('emits title, alt, placeholder and button labels as their own segments', () => {
    assert.deepEqual(html('<img src="a.png" alt="A cat"><input type="search" placeholder="Search here"><input type=submit value="Go now">'), [
      'A cat', 'Search here', 'Go now',
    ]);
  });

  it('waits for the next word break so an attribute does not cut the sentence', () => {
    assert.deepEqual(html('Our <span title="tip">secret</span> plan<p>next'), ['Our secret plan', 'tip', 'next']);
  });

  it('skips values of hidden, password and checkbox inputs, whatever the attribute order', () => {
    assert.deepEqual(html('<input value="h1" type="hidden"><input type=password value=pw><input type="checkbox" value="c"><input value="shown">'), ['shown']);
  });

  it('ignores duplicate attributes (the first wins) and attributes of end tags', () => {
    assert.deepEqual(html('<img alt="first" alt="second"></img title="no">'), ['first']);
  });

  it('reads option labels but not alt on elements that have none', () => {
    assert.deepEqual(html('<select><option label="Opt">o</option></select><div alt="no">d</div>'), ['o', 'Opt', 'd ']);
  });

  it('truncates a long attribute value and counts it', () => {
    const r = run(makeHtml, `<img alt="${'x'.repeat(2000)}">`);
    assert.deepEqual(r.segments, ['x'.repeat(1024)]);
    assert.equal(r.counters['normalize.html.attr_truncated'], 1);
  });

  it('drops attribute text past the pending bound and counts it', () => {
    const r = run(makeHtml, `<span title="${'a'.repeat(1000)}">x</span>`.repeat(5));
    assert.equal(r.segments[0], 'xxxxx');
    assert.equal(r.segments.length, 5);
    assert.equal(r.counters['normalize.html.attr_dropped'], 1);
  });
});

describe('HtmlExtractor charsets', () => {
  it('reads a windows-1252 page with "£" and curly quotes, declared in Content-Type', () => {
    const body = latin1Bytes('<p>\x93Our secret\x94 costs \xa35 \x96 \x80</p>');
    const make: MakeExtractor = (sink, counters) => new HtmlExtractor(sink, counters, 'windows-1252');
    assert.deepEqual(segmentsOf(make, body), ['\u201cOur secret\u201d costs \u00a35 \u2013 \u20ac ']);
  });

  it('reads the same page undeclared, through the UTF-8 -> windows-1252 fallback, and counts it', () => {
    const r = run(makeHtml, latin1Bytes('<p>\x93Our secret\x94 costs \xa35</p>'));
    assert.deepEqual(r.segments, ['\u201cOur secret\u201d costs \u00a35 ']);
    assert.equal(r.counters['normalize.charset.invalid_utf8_byte'], 3);
  });

  it('honours an early <meta charset> over the UTF-8 default', () => {
    const body = latin1Bytes('<html><head><meta charset="windows-1252"></head><body>caf\xe9 \xc3\xa9</body>');
    assert.deepEqual(html(body), ['caf\u00e9 \u00c3\u00a9 ']);
  });

  it('lets the Content-Type charset win over <meta>, and a BOM over both', () => {
    const page = '<meta charset="windows-1252">\u00e9';
    const make: MakeExtractor = (sink, counters) => new HtmlExtractor(sink, counters, 'utf-8');
    assert.deepEqual(segmentsOf(make, bytes(page)), ['\u00e9']);
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...bytes(page)]);
    const make1252: MakeExtractor = (sink, counters) => new HtmlExtractor(sink, counters, 'windows-1252');
    assert.deepEqual(segmentsOf(make1252, withBom), ['\u00e9']);
  });

  it('reads UTF-16LE and UTF-16BE bodies with a BOM', () => {
    const text = '<p>Our \u00e9 secret \ud83d\ude00</p>';
    const le = new Uint8Array([0xff, 0xfe, ...Buffer.from(text, 'utf16le')]);
    const be = new Uint8Array(le.length);
    be[0] = 0xfe;
    be[1] = 0xff;
    for (let i = 2; i < le.length; i += 2) {
      be[i] = le[i + 1];
      be[i + 1] = le[i];
    }
    assert.deepEqual(html(le), ['Our \u00e9 secret \ud83d\ude00 ']);
    assert.deepEqual(html(be), ['Our \u00e9 secret \ud83d\ude00 ']);
    assertSplitInvariant(makeHtml, le);
  });
});

describe('HtmlExtractor in XML mode', () => {
  it('breaks words at every tag and keeps CDATA text', () => {
    assert.deepEqual(segmentsOf(makeXml, '<?xml version="1.0"?><rss><item><title><![CDATA[Our <secret>]]></title><link>x</link></item></rss>'), [
      'Our <secret> x ',
    ]);
  });

  it('honours <?xml encoding>', () => {
    assert.deepEqual(segmentsOf(makeXml, latin1Bytes('<?xml version="1.0" encoding="ISO-8859-1"?><a>\x93q\x94</a>')), ['\u201cq\u201d ']);
  });

  it('reads a self-closed <script/> as empty', () => {
    assert.deepEqual(segmentsOf(makeXml, '<svg><script/><text>Hi</text></svg>'), ['Hi ']);
  });
});

describe('HtmlExtractor streaming', () => {
  const page =
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>T&amp;C \u00e9</title>' +
    '<style>.a{x:"</style"}</style><script>if(a<b)x="</scr"+"ipt>";</script></head>' +
    '<body><!-- c -- > --><!-- d --!>Our<!-->-<!--->s<p class="a>b" title=\'Tip &notit\'>Our s<b>ec</b>ret &notit; &#x1F600;&#128512 \ud83d\ude00' +
    '&CounterClockwiseContourIntegral;</p><![CDATA[x]]><template><p>t</p></template><textarea>&lt;<b></textarea>' +
    '<img alt="caf\u00e9"><input type=hidden value=h>&copy end<';

  it('gives the same output for every two-chunk cut and byte by byte', () => {
    const r = assertSplitInvariant(makeHtmlUtf8, page);
    assert.deepEqual(assertSplitInvariant(makeHtml, page).segments, r.segments, 'undeclared: cuts inside the prescan window');
    assert.deepEqual(r.segments, [
      // </p> flushes the waiting title as a segment instead of adding a space.
      'T&C \u00e9 Our-s Our secret \u00acit; \ud83d\ude00\ud83d\ude00 \ud83d\ude00\u2233',
      'Tip &notit',
      '<<b> ',
      'caf\u00e9',
      '\u00a9 end<',
    ]);
  });

  it('is cut-invariant for a windows-1252 body and XML mode too', () => {
    const latin = latin1Bytes('<p>\x93Our secret\x94 \xa35 &pound;</p><!-- \x80 -->');
    assertSplitInvariant(make1252, latin);
    assertSplitInvariant(makeHtmlUtf8, latin);
    assertSplitInvariant(makeXmlUtf8, '<a><![CDATA[x]]]]><b t="1">y &amp; z</b><!-- q --></a>');
  });

  it('is cut-invariant past the prescan window of an undeclared page', () => {
    const page = '<p>' + 'x'.repeat(1015) + '&amp;<!-- c --!>y<b title="t">z</b></p>';
    const r = assertSplitInvariant(makeHtml, page);
    assert.deepEqual(r.segments, ['x'.repeat(1015) + '&yz', 't']);
  });
});
