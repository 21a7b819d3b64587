import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../sensor/events/counters.js';
import {
  decodeUtf8Fallback, decodeWindows1252, parseMediaType, prescanCharset, resolveCharset, sniffBom, TextDecodeStage,
  Utf8FallbackDecoder,
} from '../../sensor/normalize/charset.js';
import type { TextConsumer } from '../../sensor/normalize/sink.js';
import { bytes, latin1Bytes } from './helpers.js';

/** Decodes `b` cut into the given chunks with a fresh streaming decoder. */
function streamUtf8(chunks: Uint8Array[], counters?: Counters): string {
  const d = new Utf8FallbackDecoder(counters);
  let out = '';
  for (const c of chunks) out += d.decode(c);
  return out + d.flush();
}

function assertUtf8CutInvariant(b: Uint8Array): string {
  const whole = streamUtf8([b]);
  for (let k = 0; k <= b.length; k++) {
    assert.equal(streamUtf8([b.subarray(0, k), b.subarray(k)]), whole, `cut at ${k}`);
    for (let m = k; m <= b.length; m++) {
      assert.equal(streamUtf8([b.subarray(0, k), b.subarray(k, m), b.subarray(m)]), whole, `cuts at ${k}, ${m}`);
    }
  }
  return whole;
}

/** Runs a TextDecodeStage and returns the decoded text. */
function stage(chunks: Uint8Array[], declared: string | undefined, prescan: 'html' | 'xml' | 'none'): { text: string; charset: string | undefined } {
  let text = '';
  const consumer: TextConsumer = { push: (t) => (text += t), finish: () => undefined };
  const s = new TextDecodeStage(consumer, new Counters(), declared, prescan);
  for (const c of chunks) s.write(c);
  s.end();
  return { text, charset: s.charset };
}

describe('parseMediaType', () => {
  it('lower-cases the essence and unquotes parameters, first one winning', () => {
    const m = parseMediaType('Text/HTML ; Charset="ISO-8859-1" ; boundary=a\\b; charset=utf-8');
    assert.equal(m?.essence, 'text/html');
    assert.equal(m?.params.get('charset'), 'ISO-8859-1');
    assert.equal(m?.params.get('boundary'), 'a\\b');
  });

  it('reads backslash escapes and ";" inside a quoted value', () => {
    assert.equal(parseMediaType('multipart/form-data; boundary="x\\"y;z"')?.params.get('boundary'), 'x"y;z');
  });

  it('returns undefined without type/subtype', () => {
    assert.equal(parseMediaType('html'), undefined);
    assert.equal(parseMediaType('/json'), undefined);
    assert.equal(parseMediaType('text/'), undefined);
    assert.equal(parseMediaType(''), undefined);
  });
});

describe('resolveCharset', () => {
  it('maps WHATWG labels to canonical names', () => {
    assert.equal(resolveCharset(' UTF8 '), 'utf-8');
    assert.equal(resolveCharset('ISO-8859-1'), 'windows-1252');
    assert.equal(resolveCharset('us-ascii'), 'windows-1252');
    assert.equal(resolveCharset('utf-16'), 'utf-16le');
    assert.equal(resolveCharset('UTF-16BE'), 'utf-16be');
  });

  it('falls back to ICU for other encodings and refuses unknown labels', () => {
    assert.equal(resolveCharset('Shift_JIS'), 'shift_jis');
    assert.equal(resolveCharset('x-no-such-charset'), undefined);
    assert.equal(resolveCharset(''), undefined);
  });
});

describe('sniffBom', () => {
  it('finds UTF-8, UTF-16LE and UTF-16BE BOMs and nothing else', () => {
    assert.deepEqual(sniffBom(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])), { charset: 'utf-8', length: 3 });
    assert.deepEqual(sniffBom(new Uint8Array([0xff, 0xfe])), { charset: 'utf-16le', length: 2 });
    assert.deepEqual(sniffBom(new Uint8Array([0xfe, 0xff, 0])), { charset: 'utf-16be', length: 2 });
    assert.equal(sniffBom(new Uint8Array([0xef, 0xbb])), undefined);
  });
});

describe('prescanCharset', () => {
  it('reads <meta charset> and <meta http-equiv content>', () => {
    assert.equal(prescanCharset(bytes('<html><meta charset=\'latin1\'>'), 'html'), 'windows-1252');
    assert.equal(prescanCharset(bytes('<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=Shift_JIS">'), 'html'), 'shift_jis');
  });

  it('skips meta tags inside comments and unknown labels', () => {
    assert.equal(prescanCharset(bytes('<!-- <meta charset="koi8-r"> --><p>x'), 'html'), undefined);
    assert.equal(prescanCharset(bytes('<meta charset="bogus-9">'), 'html'), undefined);
  });

  it('reads a UTF-16 meta as UTF-8, as the HTML standard says', () => {
    assert.equal(prescanCharset(bytes('<meta charset="utf-16">'), 'html'), 'utf-8');
  });

  it('looks only at the first 1024 bytes', () => {
    assert.equal(prescanCharset(bytes(' '.repeat(1020) + '<meta charset="latin1">'), 'html'), undefined);
  });

  it('reads the XML declaration in XML mode only', () => {
    const decl = bytes('<?xml version="1.0" encoding="ISO-8859-1"?><a/>');
    assert.equal(prescanCharset(decl, 'xml'), 'windows-1252');
    assert.equal(prescanCharset(decl, 'html'), undefined);
  });
});

describe('decodeWindows1252', () => {
  it('maps 0x80-0x9F to the windows-1252 characters and the rest as Latin-1', () => {
    assert.equal(decodeWindows1252(latin1Bytes('\x80\x93x\x94\xa3\xe9\x81')), '\u20ac\u201cx\u201d\u00a3\u00e9\u0081');
  });
});

describe('Utf8FallbackDecoder', () => {
  it('decodes valid UTF-8 the same for every cut, up to two cuts', () => {
    assert.equal(assertUtf8CutInvariant(bytes('a\u00e9\u20ac\ud83d\ude00z')), 'a\u00e9\u20ac\ud83d\ude00z');
  });

  it('reads each byte outside a valid sequence as windows-1252, for every cut', () => {
    // café in Latin-1, a cut 3-byte sequence, an overlong NUL, a UTF-16 surrogate, a stray continuation.
    const b = latin1Bytes('caf\xe9 \xe2\x82x \xc0\x80 \xed\xa0\x80 \x93q\x94');
    assert.equal(assertUtf8CutInvariant(b), 'caf\u00e9 \u00e2\u201ax \u00c0\u20ac \u00ed\u00a0\u20ac \u201cq\u201d');
  });

  it('flushes a sequence cut by the end of input as windows-1252 and counts each byte', () => {
    const counters = new Counters();
    assert.equal(streamUtf8([latin1Bytes('ok\xf0\x9f\x98')], counters), 'ok\u00f0\u0178\u02dc');
    assert.equal(counters.get('normalize.charset.invalid_utf8_byte'), 3);
  });

  it('one-shot decodeUtf8Fallback agrees with the streaming decoder', () => {
    const b = latin1Bytes('\xa3 \xc2\xa3 \xff');
    assert.equal(decodeUtf8Fallback(b), streamUtf8([b]));
    assert.equal(decodeUtf8Fallback(b), '\u00a3 \u00a3 \u00ff');
  });
});

describe('TextDecodeStage', () => {
  it('strips a BOM and lets it override the declared charset', () => {
    const r = stage([new Uint8Array([0xef, 0xbb, 0xbf, ...bytes('\u00e9')])], 'windows-1252', 'none');
    assert.deepEqual(r, { text: '\u00e9', charset: 'utf-8' });
  });

  it('uses the declared charset, and UTF-8 when the label is unknown (counted)', () => {
    assert.deepEqual(stage([latin1Bytes('\x93')], 'cp1252', 'none'), { text: '\u201c', charset: 'windows-1252' });
    const counters = new Counters();
    const s = new TextDecodeStage({ push: () => undefined, finish: () => undefined }, counters, 'klingon', 'none');
    s.end();
    assert.equal(s.charset, 'utf-8');
    assert.equal(counters.get('normalize.charset.unknown_label'), 1);
  });

  it('decodes UTF-16LE without a BOM when declared, for every cut', () => {
    const b = new Uint8Array(Buffer.from('a\ud83d\ude00b\u00e9', 'utf16le'));
    for (let k = 0; k <= b.length; k++) {
      assert.equal(stage([b.subarray(0, k), b.subarray(k)], 'utf-16le', 'none').text, 'a\ud83d\ude00b\u00e9', `cut at ${k}`);
    }
  });

  it('waits for the prescan window before choosing, and handles bodies shorter than it', () => {
    const page = latin1Bytes('<meta charset="windows-1252">' + 'x'.repeat(2000) + '\x80');
    const r = stage([page.subarray(0, 10), page.subarray(10, 1500), page.subarray(1500)], undefined, 'html');
    assert.equal(r.charset, 'windows-1252');
    assert.ok(r.text.endsWith('x\u20ac'));
    assert.deepEqual(stage([bytes('hi')], undefined, 'html'), { text: 'hi', charset: 'utf-8' });
  });
});
