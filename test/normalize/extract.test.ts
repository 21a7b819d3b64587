import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../sensor/events/counters.js';
import { createExtractor, sniffFormat, SNIFF_BYTES, type BodyDirection } from '../../sensor/normalize/extract.js';
import { SegmentCollector } from '../../sensor/normalize/sink.js';
import { assertSplitInvariant, bytes, latin1Bytes, segmentsOf, type MakeExtractor } from './helpers.js';

function formatOf(contentType: string | undefined, direction: BodyDirection = 'response'): string | undefined {
  return createExtractor(contentType, direction, new SegmentCollector(), new Counters())?.format;
}

function extractor(contentType: string | undefined, direction: BodyDirection = 'response'): MakeExtractor {
  return (sink, counters) => {
    const x = createExtractor(contentType, direction, sink, counters);
    assert.ok(x !== undefined, `an extractor for ${contentType}`);
    return x;
  };
}

describe('createExtractor by Content-Type', () => {
  it('chooses the extractor for each textual type', () => {
    assert.equal(formatOf('text/html; charset=utf-8'), 'html');
    assert.equal(formatOf('application/xhtml+xml'), 'html');
    assert.equal(formatOf('TEXT/XML'), 'xml');
    assert.equal(formatOf('application/rss+xml'), 'xml');
    assert.equal(formatOf('image/svg+xml'), 'xml');
    assert.equal(formatOf('application/json'), 'json');
    assert.equal(formatOf('application/vnd.api+json'), 'json');
    assert.equal(formatOf('application/x-ndjson'), 'json');
    assert.equal(formatOf('application/x-www-form-urlencoded', 'request'), 'form');
    assert.equal(formatOf('multipart/form-data; boundary=x', 'request'), 'multipart');
    assert.equal(formatOf('text/plain'), 'text');
    assert.equal(formatOf('text/csv'), 'text');
    assert.equal(formatOf('text/vtt'), 'text');
  });

  it('returns undefined for binary types, scripts and style sheets, and counts them', () => {
    const counters = new Counters();
    for (const t of ['image/png', 'video/mp4', 'audio/mpeg', 'font/woff2', 'application/octet-stream', 'application/pdf', 'multipart/byteranges; boundary=x']) {
      assert.equal(createExtractor(t, 'response', new SegmentCollector(), counters), undefined, t);
    }
    for (const t of ['application/javascript', 'text/javascript; charset=utf-8', 'text/css']) {
      assert.equal(createExtractor(t, 'response', new SegmentCollector(), counters), undefined, t);
    }
    assert.equal(counters.get('normalize.extract.skipped_binary'), 7);
    assert.equal(counters.get('normalize.extract.skipped_script'), 3);
  });

  it('passes the charset parameter on', () => {
    assert.deepEqual(segmentsOf(extractor('text/plain; charset=windows-1252'), latin1Bytes('\x93hi\x94 \x80')), ['\u201chi\u201d \u20ac']);
    assert.deepEqual(segmentsOf(extractor('application/json; charset="iso-8859-1"'), latin1Bytes('["caf\xe9"]')), ['caf\u00e9']);
  });

  it('passes plain text through unchanged, one segment', () => {
    assert.deepEqual(segmentsOf(extractor('text/plain'), 'Our <b>secret</b> &amp;\n  plan'), ['Our <b>secret</b> &amp;\n  plan']);
  });

  it('reads multipart end to end with the boundary from Content-Type', () => {
    const body = '--a"b\r\nContent-Disposition: form-data; name="t"\r\n\r\nhello\r\n--a"b--\r\n';
    assert.deepEqual(segmentsOf(extractor('multipart/form-data; boundary="a\\"b"', 'request'), body), ['hello']);
  });

  it('gives the same output for every cut of a plain text body', () => {
    assertSplitInvariant(extractor('text/plain'), latin1Bytes('caf\xc3\xa9 \xe2\x82\xac \xa3 \xf0\x9f\x98\x80'));
  });
});

describe('sniffFormat', () => {
  it('recognises HTML, XML and JSON openers after whitespace', () => {
    assert.equal(sniffFormat(bytes('\n  <!DOCTYPE html><p>x'), 'response'), 'html');
    assert.equal(sniffFormat(bytes('<HTML>'), 'response'), 'html');
    assert.equal(sniffFormat(bytes('<p>hi'), 'response'), 'html');
    assert.equal(sniffFormat(bytes('<?xml version="1.0"?><feed>'), 'response'), 'xml');
    assert.equal(sniffFormat(bytes('<?xml version="1.0"?><html xmlns="x">'), 'response'), 'html');
    assert.equal(sniffFormat(bytes(' {"a":1}'), 'response'), 'json');
    assert.equal(sniffFormat(bytes('[1,2]'), 'request'), 'json');
  });

  it('recognises binary by signature or by control bytes', () => {
    assert.equal(sniffFormat(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]), 'response'), 'binary');
    assert.equal(sniffFormat(latin1Bytes('GIF89a'), 'response'), 'binary');
    assert.equal(sniffFormat(latin1Bytes('\x00\x00\x00\x18ftypmp42'), 'response'), 'binary');
    assert.equal(sniffFormat(latin1Bytes('looks like text\x01'), 'response'), 'binary');
  });

  it('recognises a urlencoded request body, but not in a response', () => {
    assert.equal(sniffFormat(bytes('q=our+secret&lang=en'), 'request'), 'form');
    assert.equal(sniffFormat(bytes('q=our+secret&lang=en'), 'response'), 'text');
    assert.equal(sniffFormat(bytes('a = b is math'), 'request'), 'text');
  });

  it('falls back to text, and reads a UTF-16 BOM', () => {
    assert.equal(sniffFormat(bytes('Just some words'), 'response'), 'text');
    assert.equal(sniffFormat(new Uint8Array([0xff, 0xfe, ...Buffer.from('<html>', 'utf16le')]), 'response'), 'html');
  });
});

describe('createExtractor without Content-Type', () => {
  it('sniffs, then extracts with the sniffed extractor', () => {
    const make = extractor(undefined);
    assert.deepEqual(segmentsOf(make, '<html><p>Our <b>secret</b></p>'), ['Our secret ']);
    assert.deepEqual(segmentsOf(make, '{"a": "b"}'), ['b']);
    assert.deepEqual(segmentsOf(extractor(undefined, 'request'), 'a=1&b=two+words'), ['1', 'two words']);
    assert.deepEqual(segmentsOf(extractor('not a type'), 'plain'), ['plain']);
  });

  it('discards a binary body and reports it', () => {
    const counters = new Counters();
    const sink = new SegmentCollector();
    const x = createExtractor(undefined, 'response', sink, counters)!;
    assert.equal(x.format, 'sniffing');
    x.write(new Uint8Array([0x89, 0x50, 0x4e, 0x47, ...new Uint8Array(SNIFF_BYTES)]));
    assert.equal(x.format, 'binary');
    x.write(bytes('<p>not text</p>'));
    x.end();
    assert.deepEqual(sink.segments, []);
    assert.equal(counters.get('normalize.extract.sniffed_binary'), 1);
  });

  it('gives the same output for every cut across the sniff window', () => {
    const page = '<!doctype html><title>T</title>' + 'x'.repeat(SNIFF_BYTES) + '<p>Our &amp; secret</p>';
    const r = assertSplitInvariant(extractor(undefined), page);
    assert.deepEqual(r.segments, ['T ' + 'x'.repeat(SNIFF_BYTES) + ' Our & secret ']);
  });

  it('emits only a break for an empty body', () => {
    const counters = new Counters();
    const sink = new SegmentCollector();
    const x = createExtractor(undefined, 'response', sink, counters)!;
    x.end();
    assert.deepEqual(sink.segments, []);
    assert.deepEqual(counters.snapshot(), {});
  });
});

describe('extractors on random input', () => {
  // Tokens that matter to one extractor or another, glued at random: a seeded fuzz of the
  // cut-invariance rule and of "never throws", over inputs no hand-written case covers.
  const TOKENS = [
    '<', '>', '/', '&', 'amp;', 'amp', 'not', 'it;', '#x', '#', '1F600', '65', ';', '<!--', '--', '-->', '--!>', '<!', '[CDATA[', ']]>',
    '<script>', '</script', '</SCRIPT>', '<style>', '</style>', '<template>', '</template>', '<textarea>', '</textarea>', '<p>', '</p>',
    '<b>', '<img alt="', '<input type=', 'hidden', ' value=', ' title=\'', '"', "'", '=', ' ', '\n', 'our', 'secret', '\u00e9',
    '\ud83d\ude00', '%', 'C3', 'A9', '%25', '+', '&', 'q=', '{', '}', '[', ']', ':', ',', '\\', '\\u', 'd83d', '\\ude00', 'true', '1',
    '\r\n', '--b', 'Content-Disposition: form-data; name="x"', 'Content-Type: text/plain', '\r\n\r\n', '\x93', '\xa3', '\x00',
  ];
  let state = 12345;
  const rnd = (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % n;
  };
  const makers: [string, MakeExtractor][] = [
    // Declared charsets: an undeclared HTML or XML body this short sits in the prescan window.
    ['html', extractor('text/html; charset=utf-8')],
    ['xml', extractor('application/xml; charset=utf-8')],
    ['json', extractor('application/json')],
    ['form', extractor('application/x-www-form-urlencoded', 'request')],
    ['multipart', extractor('multipart/form-data; boundary=b', 'request')],
    ['sniffing', extractor(undefined, 'request')],
  ];

  it('give the same output for random cuts and never throw', () => {
    for (let n = 0; n < 150; n++) {
      let s = '';
      const len = 1 + rnd(40);
      for (let k = 0; k < len; k++) s += TOKENS[rnd(TOKENS.length)];
      // Mostly UTF-8, sometimes Latin-1 bytes (invalid UTF-8).
      const input = n % 3 === 0 ? latin1Bytes(s.replace(/[^\x00-\xff]/g, '?')) : bytes(s);
      for (const [name, make] of makers) {
        const whole = runChunksOf(make, [input]);
        for (let t = 0; t < 6; t++) {
          const a = rnd(input.length + 1);
          const b = a + rnd(input.length - a + 1);
          const cut = runChunksOf(make, [input.subarray(0, a), input.subarray(a, b), input.subarray(b)]);
          assert.deepEqual(cut, whole, `${name} cut at ${a}, ${b} of ${JSON.stringify(s)}`);
        }
      }
    }
  });
});

function runChunksOf(make: MakeExtractor, chunks: Uint8Array[]): { segments: string[]; counters: Record<string, number> } {
  const counters = new Counters();
  const sink = new SegmentCollector();
  const x = make(sink, counters);
  for (const c of chunks) x.write(c);
  x.end();
  return { segments: sink.segments, counters: counters.snapshot() };
}
