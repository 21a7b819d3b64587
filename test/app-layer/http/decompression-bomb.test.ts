/**
 * The whole sensor on a connection whose first response is a stacked-encoding bomb (`Content-Encoding:
 * gzip, br`; the br layer expands to 64 MiB that the gzip layer skips as trailing data) and whose second
 * is an ordinary page with a dictionary phrase: the bomb is cut off at the ratio limit, counted, and the
 * page after it on the same connection is still parsed and inspected.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { readCaptureFile } from '../../../sensor/capture/file-reader.js';
import type { CaptureEvent } from '../../../sensor/events/capture.js';
import { Sensor } from '../../../sensor/main.js';
import { ethTcp, TCP_FLAGS } from '../../helpers/packets.js';
import { withTempFile, writePcap, type PcapPacket } from '../../helpers/pcap-writer.js';

const { SYN, ACK, PSH, FIN } = TCP_FLAGS;
const C = { src: '10.20.0.5', dst: '192.0.2.80', sport: 52000, dport: 80 };
const S = { src: C.dst, dst: C.src, sport: C.dport, dport: C.sport };
const PAGE = '<html><body><p>Where to buy an AK47 cheaply</p></body></html>';

async function stackedBomb(): Promise<Buffer> {
  const enc = zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_LGWIN]: 24 } });
  const parts: Buffer[] = [];
  enc.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((resolve) => enc.on('end', resolve));
  enc.write(zlib.gzipSync(Buffer.from('hello')));
  const zeros = Buffer.alloc(1 << 20);
  for (let i = 0; i < 64; i++) enc.write(zeros);
  enc.end();
  await done;
  return Buffer.concat(parts);
}

/** One keep-alive connection: GET /bomb, GET /page; the bomb answer, then the page (gzip, br as well). */
function conversation(bomb: Buffer): Buffer {
  const page = zlib.brotliCompressSync(zlib.gzipSync(Buffer.from(PAGE)));
  const frames: PcapPacket[] = [];
  let t = 1_700_000_000_000_000;
  const seq = [1000, 9000];
  const send = (dir: 0 | 1, bytes: Buffer, flags = PSH | ACK): void => {
    for (let i = 0; i === 0 || i < bytes.length; i += 1448) {
      const piece = bytes.subarray(i, i + 1448);
      frames.push({ data: ethTcp({ ...(dir === 0 ? C : S), seq: seq[dir], ack: seq[dir ^ 1], flags }, piece), tsUs: t += 100 });
      seq[dir] += piece.length + (flags & FIN ? 1 : 0);
    }
  };
  frames.push({ data: ethTcp({ ...C, seq: seq[0] - 1, flags: SYN }), tsUs: t += 100 });
  frames.push({ data: ethTcp({ ...S, seq: seq[1] - 1, ack: seq[0], flags: SYN | ACK }), tsUs: t += 100 });
  send(0, Buffer.from('GET /bomb HTTP/1.1\r\nHost: bomb.example.test\r\n\r\nGET /page HTTP/1.1\r\nHost: bomb.example.test\r\n\r\n'));
  const head = (len: number) => `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip, br\r\nContent-Length: ${len}\r\n\r\n`;
  send(1, Buffer.concat([Buffer.from(head(bomb.length)), bomb, Buffer.from(head(page.length)), page]));
  send(0, Buffer.alloc(0), FIN | ACK);
  send(1, Buffer.alloc(0), FIN | ACK);
  return writePcap(frames);
}

test('a "gzip, br" bomb is cut off at the ratio limit and the page after it on the same connection is inspected', async () => {
  const captures: CaptureEvent[] = [];
  const sensor = new Sensor({ engine: 'js', onCapture: (c) => captures.push(c) });
  withTempFile(conversation(await stackedBomb()), (file) => {
    readCaptureFile(file, sensor.pipeline.packet);
    sensor.finish();
  });
  sensor.close();
  const c = sensor.counters;
  assert.equal(c.get('http.responses'), 2);
  assert.equal(c.get('decompress.ratio_limit'), 1);
  assert.equal(c.get('decompress.trailing_data'), 1);
  assert.equal(c.get('http.body_truncated'), 1);
  const viewed = captures.filter((x) => x.phrase === 'AK47' && x.source === 'viewed');
  assert.equal(viewed.length, 1, JSON.stringify(captures.map((x) => [x.phrase, x.source, x.url])));
  assert.equal(viewed[0].field, 'response_body');
  assert.match(viewed[0].url ?? '', /\/page$/);
});
