import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPartExtractor } from '../../sensor/normalize/extract.js';
import { MultipartExtractor, UrlencodedExtractor } from '../../sensor/normalize/form.js';
import { assertSplitInvariant, latin1Bytes, run, segmentsOf, type MakeExtractor } from './helpers.js';

const makeUrlencoded: MakeExtractor = (sink, counters) => new UrlencodedExtractor(sink, counters);
const multipart = (boundary: string | undefined): MakeExtractor => (sink, counters) =>
  new MultipartExtractor(boundary, sink, counters, createPartExtractor);

describe('UrlencodedExtractor', () => {
  it('emits each field value as a segment and drops the names', () => {
    assert.deepEqual(segmentsOf(makeUrlencoded, 'comment=Our+secret+plan&lang=en&empty=&n=1'), ['Our secret plan', 'en', '1']);
  });

  it('decodes UTF-8 escapes and keeps invalid escapes as written', () => {
    assert.deepEqual(segmentsOf(makeUrlencoded, 'a=caf%C3%A9+%F0%9F%98%80&b=%FF%2&c=100%25'), ['caf\u00e9 \ud83d\ude00', '%FF%2', '100%']);
  });

  it('takes a field without "=" as text', () => {
    assert.deepEqual(segmentsOf(makeUrlencoded, 'our+secret&x=1'), ['our secret', '1']);
  });

  it('skips password and token fields and counts them', () => {
    const r = run(makeUrlencoded, 'user=bob&password=hunter2&authenticity_token=abc&msg=hi');
    assert.deepEqual(r.segments, ['bob', 'hi']);
    assert.equal(r.counters['normalize.form.private_field_skipped'], 2);
  });

  it('bounds a field name at 256 bytes and counts it', () => {
    const r = run(makeUrlencoded, 'n'.repeat(300) + '&a=b');
    assert.deepEqual(r.segments, ['n'.repeat(256), 'b']);
    assert.equal(r.counters['normalize.form.name_truncated'], 1);
  });

  it('hands a JSON body sent as a form to the JSON extractor', () => {
    const r = run(makeUrlencoded, '  {"q": "our secret", "n": 1}');
    assert.deepEqual(r.segments, ['our secret']);
    assert.equal(r.counters['normalize.form.json_body'], 1);
  });

  it('gives the same output for every cut, inside escapes too', () => {
    const r = assertSplitInvariant(makeUrlencoded, 'q=our+%22secret%22&e=%E2%82%AC%F0%9F%98%80&bad=%E2%82x&pwd=no&tail%');
    assert.deepEqual(r.segments, ['our "secret"', '\u20ac\ud83d\ude00', '%E2%82x', 'tail%']);
  });
});

const CRLF = '\r\n';
const FORM = [
  'This is the preamble, ignored.',
  '--XyZ',
  'Content-Disposition: form-data; name="comment"',
  '',
  'Our secret plan',
  '--XyZ',
  'Content-Disposition: form-data; name="password"',
  '',
  'hunter2',
  '--XyZ',
  'Content-Disposition: form-data; name="upload"; filename="C:\\Users\\kid\\photo.png"',
  'Content-Type: image/png',
  '',
  '\x89PNG\r\n\x1a\n\x00\x01binary--XyZ\r\n-\r\n--XyZ-\xff',
  '--XyZ  ',
  'Content-Disposition: form-data; name="notes"; filename="notes.txt"',
  'Content-Type: text/plain; charset=windows-1252',
  '',
  '\x93quoted\x94',
  '--XyZ',
  'content-disposition: form-data; name="data"',
  'content-type: application/json',
  '',
  '{"k": "json value"}',
  '--XyZ--',
  'Epilogue, ignored.',
].join(CRLF);

describe('MultipartExtractor', () => {
  it('emits text parts, file names and textual files; skips binary files and password fields', () => {
    const r = run(multipart('XyZ'), latin1Bytes(FORM));
    assert.deepEqual(r.segments, ['Our secret plan', 'photo.png', 'notes.txt', '\u201cquoted\u201d', 'json value']);
    assert.equal(r.counters['normalize.multipart.file_skipped'], 1);
    assert.equal(r.counters['normalize.form.private_field_skipped'], 1);
  });

  it('gives the same output for every cut, inside boundaries and headers too', () => {
    const r = assertSplitInvariant(multipart('XyZ'), latin1Bytes(FORM));
    assert.equal(r.segments.length, 5);
  });

  it('reads a body that opens with the delimiter and has no closing one (counted)', () => {
    const r = run(multipart('b'), ['--b', 'Content-Disposition: form-data; name="a"', '', 'cut off te'].join(CRLF));
    assert.deepEqual(r.segments, ['cut off te']);
    assert.equal(r.counters['normalize.multipart.truncated'], 1);
  });

  it('reads nothing without a boundary, and counts a body without any delimiter', () => {
    const none = run(multipart(undefined), 'x');
    assert.deepEqual(none.segments, []);
    assert.equal(none.counters['normalize.multipart.no_boundary'], 1);
    const missing = run(multipart('b'), 'no delimiter here');
    assert.deepEqual(missing.segments, []);
    assert.equal(missing.counters['normalize.multipart.no_delimiter'], 1);
  });

  it('skips a part whose header block passes 8 KiB, then reads the next part', () => {
    const body = ['--b', 'X-Long: ' + 'h'.repeat(9000), '', 'skipped', '--b', 'Content-Disposition: form-data; name="a"', '', 'kept', '--b--'].join(CRLF);
    const r = run(multipart('b'), body);
    assert.deepEqual(r.segments, ['kept']);
    assert.equal(r.counters['normalize.multipart.header_too_long'], 1);
  });

  it('skips base64 parts and nested multipart parts', () => {
    const body = [
      '--b', 'Content-Disposition: form-data; name="a"', 'Content-Transfer-Encoding: base64', '', 'T3VyIHNlY3JldA==',
      '--b', 'Content-Disposition: form-data; name="files"', 'Content-Type: multipart/mixed; boundary=c', '', '--c--',
      '--b', 'Content-Disposition: form-data; name="z"', '', 'last', '--b--',
    ].join(CRLF);
    const r = run(multipart('b'), body);
    assert.deepEqual(r.segments, ['last']);
    assert.equal(r.counters['normalize.multipart.part_skipped'], 2);
  });

  it('decodes an RFC 5987 filename* and prefers it', () => {
    const body = ['--b', 'Content-Disposition: form-data; name="f"; filename="x.txt"; filename*=UTF-8\'\'our%20secret%E2%82%AC.txt', 'Content-Type: application/octet-stream', '', 'data', '--b--'].join(CRLF);
    assert.deepEqual(segmentsOf(multipart('b'), body), ['our secret\u20ac.txt']);
  });
});
