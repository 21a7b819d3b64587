import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters } from '../../../sensor/events/counters.js';
import {
  DEFAULT_HEADER_TABLE_SIZE, HpackDecoder, MAX_DYNAMIC_TABLE_BYTES, MAX_HEADER_LIST_BYTES, STATIC_TABLE,
} from '../../../sensor/app-layer/http2/hpack.js';
import { block, hpackInt, hpackString } from './h2-helpers.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** The dynamic table as RFC 7541 Appendix C prints it (long entries on one line). */
function dump(d: HpackDecoder): string {
  const entries = d.tableEntries();
  if (entries.length === 0) return 'empty.';
  const pad = (n: number) => String(n).padStart(3, ' ');
  const lines = entries.map(([n, v], i) => `[${pad(i + 1)}] (s = ${pad(n.length + v.length + 32)}) ${n}: ${v}`);
  lines.push(`      Table size: ${pad(d.tableSize)}`);
  return lines.join('\n');
}

function decodeList(d: HpackDecoder, bytes: Uint8Array): string {
  const r = d.decode(bytes);
  assert.ok(r, `decode failed: ${d.error}`);
  return r.headers.map(([n, v]) => `${n}: ${v}`).join('\n');
}

interface Vector {
  name: string;
  wire: string;
  list: string;
  table: string;
}

function runVectors(vectors: Vector[], tableSize?: number): void {
  const d = new HpackDecoder(new Counters());
  if (tableSize !== undefined) {
    // The examples' SETTINGS_HEADER_TABLE_SIZE of 256, as an encoder signals it: a size update (§6.3).
    assert.ok(d.decode(Buffer.concat([hpackInt(tableSize, 5, 0x20)])));
    assert.equal(d.tableMaxSize, tableSize);
  }
  for (const v of vectors) {
    assert.equal(decodeList(d, hex(v.wire)), v.list, `${v.name}: header list`);
    assert.equal(dump(d), v.table, `${v.name}: dynamic table`);
  }
}

test('HpackDecoder decodes the field representations of RFC 7541 C.2', () => {
  runVectors([{
    name: 'C.2.1 literal with indexing',
    wire: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572',
    list: 'custom-key: custom-header',
    table: '[  1] (s =  55) custom-key: custom-header\n      Table size:  55',
  }]);
  runVectors([{
    name: 'C.2.2 literal without indexing',
    wire: '040c 2f73 616d 706c 652f 7061 7468',
    list: ':path: /sample/path',
    table: 'empty.',
  }]);
  runVectors([{
    name: 'C.2.3 literal never indexed',
    wire: '1008 7061 7373 776f 7264 0673 6563 7265 74',
    list: 'password: secret',
    table: 'empty.',
  }]);
  runVectors([{ name: 'C.2.4 indexed', wire: '82', list: ':method: GET', table: 'empty.' }]);
});

const REQUEST_LISTS = [
  ':method: GET\n:scheme: http\n:path: /\n:authority: www.example.com',
  ':method: GET\n:scheme: http\n:path: /\n:authority: www.example.com\ncache-control: no-cache',
  ':method: GET\n:scheme: https\n:path: /index.html\n:authority: www.example.com\ncustom-key: custom-value',
];
const REQUEST_TABLES = [
  '[  1] (s =  57) :authority: www.example.com\n      Table size:  57',
  '[  1] (s =  53) cache-control: no-cache\n[  2] (s =  57) :authority: www.example.com\n      Table size: 110',
  '[  1] (s =  54) custom-key: custom-value\n[  2] (s =  53) cache-control: no-cache\n[  3] (s =  57) :authority: www.example.com\n      Table size: 164',
];

test('HpackDecoder decodes the requests of RFC 7541 C.3 (no Huffman) with the tables it prints', () => {
  const wires = [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ];
  runVectors(wires.map((wire, i) => ({ name: `C.3.${i + 1}`, wire, list: REQUEST_LISTS[i], table: REQUEST_TABLES[i] })));
});

test('HpackDecoder decodes the requests of RFC 7541 C.4 (Huffman) with the tables it prints', () => {
  const wires = [
    '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  ];
  runVectors(wires.map((wire, i) => ({ name: `C.4.${i + 1}`, wire, list: REQUEST_LISTS[i], table: REQUEST_TABLES[i] })));
});

const RESPONSE_LISTS = [
  ':status: 302\ncache-control: private\ndate: Mon, 21 Oct 2013 20:13:21 GMT\nlocation: https://www.example.com',
  ':status: 307\ncache-control: private\ndate: Mon, 21 Oct 2013 20:13:21 GMT\nlocation: https://www.example.com',
  ':status: 200\ncache-control: private\ndate: Mon, 21 Oct 2013 20:13:22 GMT\nlocation: https://www.example.com\n' +
    'content-encoding: gzip\nset-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
];
const RESPONSE_TABLES = [
  '[  1] (s =  63) location: https://www.example.com\n[  2] (s =  65) date: Mon, 21 Oct 2013 20:13:21 GMT\n' +
    '[  3] (s =  52) cache-control: private\n[  4] (s =  42) :status: 302\n      Table size: 222',
  '[  1] (s =  42) :status: 307\n[  2] (s =  63) location: https://www.example.com\n' +
    '[  3] (s =  65) date: Mon, 21 Oct 2013 20:13:21 GMT\n[  4] (s =  52) cache-control: private\n      Table size: 222',
  '[  1] (s =  98) set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1\n' +
    '[  2] (s =  52) content-encoding: gzip\n[  3] (s =  65) date: Mon, 21 Oct 2013 20:13:22 GMT\n      Table size: 215',
];

test('HpackDecoder decodes the responses of RFC 7541 C.5 (no Huffman, 256-byte table, evictions)', () => {
  const wires = [
    '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d ' +
      '546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '4803 3330 37c1 c0bf',
    '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f ' +
      '6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b ' +
      '2076 6572 7369 6f6e 3d31',
  ];
  runVectors(wires.map((wire, i) => ({ name: `C.5.${i + 1}`, wire, list: RESPONSE_LISTS[i], table: RESPONSE_TABLES[i] })), 256);
});

test('HpackDecoder decodes the responses of RFC 7541 C.6 (Huffman, 256-byte table, evictions)', () => {
  const wires = [
    '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 ' +
      '8f0b 97c8 e9ae 82ae 43d3',
    '4883 640e ffc1 c0bf',
    '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 ' +
      'dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
  ];
  runVectors(wires.map((wire, i) => ({ name: `C.6.${i + 1}`, wire, list: RESPONSE_LISTS[i], table: RESPONSE_TABLES[i] })), 256);
});

test('HpackDecoder reads the integers of RFC 7541 C.1 through size updates (5-bit prefix)', () => {
  const d = new HpackDecoder(new Counters());
  // C.1.1: 10 on a 5-bit prefix is 01010; with the size-update pattern 001 that is 0x2a.
  assert.ok(d.decode(Buffer.from([0x2a])));
  assert.equal(d.tableMaxSize, 10);
  // C.1.2: 1337 is 11111 10011010 00001010.
  d.setAllowedTableSize(2000);
  assert.ok(d.decode(Buffer.from([0x3f, 0x9a, 0x0a])));
  assert.equal(d.tableMaxSize, 1337);
  assert.deepEqual([...hpackInt(1337, 5)], [0x1f, 0x9a, 0x0a]);
});

test('HpackDecoder indexes the static table of RFC 7541 Appendix A (61 entries)', () => {
  assert.equal(STATIC_TABLE.length, 61);
  const d = new HpackDecoder(new Counters());
  const r = d.decode(Buffer.from([0x81, 0x88, 0x90, 0xbd]));
  assert.deepEqual(r?.headers, [[':authority', ''], [':status', '200'], ['accept-encoding', 'gzip, deflate'], ['www-authenticate', '']]);
});

test('HpackDecoder evicts everything when an entry is larger than the table, and adds nothing', () => {
  const d = new HpackDecoder(new Counters());
  assert.ok(d.decode(Buffer.concat([hpackInt(100, 5, 0x20), block([['a', 'b']], { index: true })])));
  assert.equal(dump(d), '[  1] (s =  34) a: b\n      Table size:  34');
  const r = d.decode(block([['big', 'x'.repeat(80)]], { index: true }));
  assert.deepEqual(r?.headers, [['big', 'x'.repeat(80)]]);
  assert.equal(dump(d), 'empty.');
});

test('HpackDecoder shrinks the table on a size update and evicts oldest first', () => {
  const d = new HpackDecoder(new Counters());
  d.decode(block([['k1', 'v1'], ['k2', 'v2'], ['k3', 'v3']], { index: true }));
  assert.equal(d.tableSize, 3 * 36);
  d.decode(hpackInt(80, 5, 0x20));
  assert.deepEqual(d.tableEntries(), [['k3', 'v3'], ['k2', 'v2']]);
  d.decode(hpackInt(0, 5, 0x20));
  assert.equal(d.tableLength, 0);
  // Index 62 no longer exists.
  assert.equal(d.decode(Buffer.from([0xbe])), undefined);
});

test('HpackDecoder keeps a large dynamic table in step over many insertions (ring growth and wrap)', () => {
  const d = new HpackDecoder(new Counters());
  for (let i = 0; i < 500; i++) {
    const r = d.decode(Buffer.concat([block([[`name-${i}`, `value-${i}`]], { index: true }), Buffer.from([0xbe])]));
    // The field just added is index 62.
    assert.deepEqual(r?.headers, [[`name-${i}`, `value-${i}`], [`name-${i}`, `value-${i}`]]);
  }
  const entries = d.tableEntries();
  assert.ok(d.tableSize <= DEFAULT_HEADER_TABLE_SIZE);
  assert.deepEqual(entries[0], ['name-499', 'value-499']);
  assert.deepEqual(entries[entries.length - 1], [`name-${500 - entries.length}`, `value-${500 - entries.length}`]);
});

test('HpackDecoder decodes Huffman names and values and sensitive (never indexed) fields', () => {
  const d = new HpackDecoder(new Counters());
  const bytes = Buffer.concat([Buffer.from([0x10]), hpackString('x-secret', true), hpackString('tok\u00e9n', true)]);
  assert.deepEqual(d.decode(bytes)?.headers, [['x-secret', 'tok\u00e9n']]);
  assert.equal(d.tableLength, 0);
});

function failing(bytes: Uint8Array, setup?: (d: HpackDecoder) => void): { d: HpackDecoder; counters: Counters } {
  const counters = new Counters();
  const d = new HpackDecoder(counters);
  setup?.(d);
  assert.equal(d.decode(bytes), undefined);
  assert.equal(d.failed, true);
  // The context is out of step for good: even a valid block is refused afterwards.
  assert.equal(d.decode(Buffer.from([0x82])), undefined);
  return { d, counters };
}

test('HpackDecoder fails on index 0 and on an index beyond both tables', () => {
  assert.equal(failing(Buffer.from([0x80])).d.error, 'index_out_of_range');
  const { d, counters } = failing(Buffer.from([0xbe])); // 62 with an empty dynamic table
  assert.equal(d.error, 'index_out_of_range');
  assert.equal(counters.get('http2.hpack.index_out_of_range'), 1);
  // A literal naming an absent entry fails the same way.
  assert.equal(failing(Buffer.concat([Buffer.from([0x7f, 0x00]), hpackString('v')])).d.error, 'index_out_of_range');
});

test('HpackDecoder fails on a string or integer cut by the end of the block', () => {
  assert.equal(failing(Buffer.from([0x40, 0x05, 0x61, 0x62])).d.error, 'truncated');
  assert.equal(failing(Buffer.from([0x40])).d.error, 'truncated');
  assert.equal(failing(Buffer.from([0xff, 0x80])).d.error, 'truncated');
  assert.equal(failing(Buffer.from([0x40, 0x01, 0x61])).d.error, 'truncated'); // name but no value
});

test('HpackDecoder fails on an integer beyond 2^32 - 1', () => {
  const { d, counters } = failing(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]));
  assert.equal(d.error, 'integer_overflow');
  assert.equal(counters.get('http2.header_integer_overflow'), 1);
  // Endless zero continuation groups are refused too.
  assert.equal(failing(Buffer.from([0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])).d.error, 'integer_overflow');
});

test('HpackDecoder fails on invalid Huffman coding', () => {
  const bad = Buffer.from([0x00, 0x81, 0xff, 0x81, 0x1f]); // name: 8 one-bits of padding only
  assert.equal(failing(bad).d.error, 'huffman_invalid');
  assert.deepEqual(new HpackDecoder(new Counters()).decode(Buffer.concat([Buffer.from([0x00]), hpackString('ok', true), hpackString('fine', true)]))?.headers, [['ok', 'fine']]);
});

test('HpackDecoder fails on a size update above the allowed size, after a field, or above its own cap', () => {
  assert.equal(failing(hpackInt(DEFAULT_HEADER_TABLE_SIZE + 1, 5, 0x20)).d.error, 'size_update_too_large');
  assert.equal(failing(Buffer.concat([Buffer.from([0x82]), hpackInt(100, 5, 0x20)])).d.error, 'size_update_misplaced');
  const { d, counters } = failing(hpackInt(MAX_DYNAMIC_TABLE_BYTES + 1, 5, 0x20), (x) => x.setAllowedTableSize(1 << 20));
  assert.equal(d.error, 'table_limit');
  assert.equal(counters.get('http2.hpack.table_limit'), 1);
  // Two updates at the start are fine (RFC 7541 §4.2), the allowed size is honoured.
  const ok = new HpackDecoder(new Counters());
  ok.setAllowedTableSize(8192);
  assert.ok(ok.decode(Buffer.concat([hpackInt(0, 5, 0x20), hpackInt(8192, 5, 0x20), Buffer.from([0x82])])));
  assert.equal(ok.tableMaxSize, 8192);
});

test('HpackDecoder drops fields beyond MAX_HEADER_LIST_BYTES but keeps the table in step', () => {
  const counters = new Counters();
  const d = new HpackDecoder(counters, { maxHeaderListBytes: 200 });
  const fields: [string, string][] = Array.from({ length: 6 }, (_, i) => [`h${i}`, 'v'.repeat(20)]);
  const r = d.decode(block(fields, { index: true }));
  assert.ok(r);
  assert.equal(r.truncated, true);
  assert.equal(r.listBytes, 6 * (2 + 20 + 32));
  assert.deepEqual(r.headers, fields.slice(0, 3)); // 3 * 54 = 162 <= 200 < 216
  assert.equal(d.tableLength, 6); // all six were still indexed
  assert.equal(counters.get('http2.header_list.too_large'), 1);
  assert.equal(MAX_HEADER_LIST_BYTES, 256 * 1024);
});

test('HpackDecoder bounds an "HPACK bomb": one-byte references to a large entry', () => {
  const counters = new Counters();
  const d = new HpackDecoder(counters);
  const big = 'x'.repeat(4000);
  // Insert a 4 KB entry, then reference it 10,000 times (10 KB of block, 40 MB of headers if expanded).
  const r = d.decode(Buffer.concat([block([['bomb', big]], { index: true }), Buffer.alloc(10000, 0xbe)]));
  assert.ok(r);
  assert.equal(r.truncated, true);
  assert.ok(r.headers.length <= Math.ceil(MAX_HEADER_LIST_BYTES / 4036));
  assert.equal(counters.get('http2.header_list.too_large'), 1);
});
