/**
 * TLS inside a CONNECT tunnel to a web proxy: the real TLS 1.2 session of zeek-tls12-decryption
 * (Firefox to heise.de), its payloads carried in their original order on a connection to a proxy
 * on port 3128 after "CONNECT heise.de:443" and "200 Connection established" (the client's
 * ClientHello either waits for the answer or is sent right behind the CONNECT). The sensor must
 * describe it with a tls event, decrypt it with its key log (the GET / and its 301), and bypass it
 * without keys, as it does the same session without the proxy.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readCaptureFile } from '../../../sensor/capture/file-reader.js';
import type { TlsEvent } from '../../../sensor/events/tls.js';
import { memoryInUse } from '../../../sensor/events/memuse.js';
import { Sensor } from '../../../sensor/main.js';
import { decodeOne } from '../../helpers/decode.js';
import { ethTcp, TCP_FLAGS } from '../../helpers/packets.js';
import { withTempFile, writePcap, type PcapPacket } from '../../helpers/pcap-writer.js';
import { fixture } from '../../helpers/replay.js';

const { SYN, ACK, PSH } = TCP_FLAGS;
const PCAP = fixture('tls-crypto', 'zeek-tls12-decryption.pcap');
const KEYS = fixture('tls-crypto', 'zeek-tls12-decryption.keys');
const C = { src: '10.20.0.5', dst: '10.20.0.1', sport: 51000, dport: 3128 };
const S = { src: C.dst, dst: C.src, sport: C.dport, dport: C.sport };
const CONNECT = 'CONNECT heise.de:443 HTTP/1.1\r\nHost: heise.de:443\r\nUser-Agent: Mozilla/5.0\r\n\r\n';
const ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

/** The TLS payloads of the fixture's one connection, in capture order, with their direction. */
function tlsPayloads(): Array<{ dir: 0 | 1; bytes: Buffer; tsUs: number }> {
  const out: Array<{ dir: 0 | 1; bytes: Buffer; tsUs: number }> = [];
  let clientPort = -1;
  readCaptureFile(PCAP, (linkType, buf, off, capLen, _orig, tsUs) => {
    const { ok, p } = decodeOne(buf.subarray(off, off + capLen), linkType, { tsUs });
    if (!ok) return;
    if (clientPort < 0 && (p.tcpFlags & SYN) !== 0 && (p.tcpFlags & ACK) === 0) clientPort = p.srcPort;
    if (p.payloadLen > 0) out.push({ dir: p.srcPort === clientPort ? 0 : 1, bytes: Buffer.from(p.buf.subarray(p.payloadOff, p.payloadOff + p.payloadLen)), tsUs });
  });
  return out;
}

/**
 * The proxied connection: handshake, CONNECT, 200, the TLS payloads (the first one before the 200 when
 * `eager`). `segment`: the CONNECT and the payload sent before the 200 are cut in segments of that size.
 */
function proxiedFrames(eager: boolean, segment = Infinity): PcapPacket[] {
  const tls = tlsPayloads();
  const frames: PcapPacket[] = [];
  let t = tls[0].tsUs - 1000;
  const seq = [1000, 7000];
  const send = (dir: 0 | 1, bytes: Buffer, flags = PSH | ACK): void => {
    const o = dir === 0 ? C : S;
    frames.push({ data: ethTcp({ ...o, seq: seq[dir], ack: seq[dir ^ 1], flags }, bytes), tsUs: t++ });
    seq[dir] += bytes.length;
  };
  const sendCut = (dir: 0 | 1, bytes: Buffer): void => {
    for (let i = 0; i < bytes.length; i += segment) send(dir, bytes.subarray(i, i + segment));
  };
  frames.push({ data: ethTcp({ ...C, seq: seq[0] - 1, flags: SYN }), tsUs: t++ });
  frames.push({ data: ethTcp({ ...S, seq: seq[1] - 1, ack: seq[0], flags: SYN | ACK }), tsUs: t++ });
  sendCut(0, Buffer.from(CONNECT));
  let rest = tls;
  if (eager) {
    sendCut(tls[0].dir, tls[0].bytes);
    rest = tls.slice(1);
  }
  send(1, Buffer.from(ESTABLISHED));
  for (const x of rest) send(x.dir, x.bytes);
  return frames;
}

function proxiedPcap(eager: boolean): Buffer {
  return writePcap(proxiedFrames(eager));
}

function scan(pcap: Buffer, keyLogs: string[]): { tls: TlsEvent[]; counters: Sensor['counters'] } {
  const tls: TlsEvent[] = [];
  const sensor = new Sensor({ engine: 'js', keyLogs, onCapture: () => undefined, onEvent: (e) => void (e.event_type === 'tls' && tls.push(e as TlsEvent)) });
  withTempFile(pcap, (file) => {
    readCaptureFile(file, sensor.pipeline.packet);
    sensor.finish();
  });
  sensor.close();
  return { tls, counters: sensor.counters };
}

describe('TLS inside a CONNECT tunnel', () => {
  for (const eager of [false, true]) {
    test(`is described and decrypted with its keys${eager ? ' (ClientHello sent before the proxy answered)' : ''}`, () => {
      const { tls, counters } = scan(proxiedPcap(eager), [KEYS]);
      assert.equal(tls.length, 1);
      const e = tls[0];
      assert.equal(e.dest_port, 3128, 'the event names the connection to the proxy');
      assert.equal(e.tls.sni, 'heise.de');
      assert.equal(e.tls.subject, 'CN=heise.de');
      assert.equal(e.tls.decrypted, true);
      assert.equal(e.tls.inner_app_proto, 'http');
      assert.equal(counters.get('http.tunnel'), 1);
      // the CONNECT and the GET / inside, the 200 and the 301 inside
      assert.equal(counters.get('http.requests'), 2);
      assert.equal(counters.get('http.responses'), 2);
      // the tunnel's bytes are counted as TLS, what was decrypted as decrypted, and only the exchange
      // with the proxy as cleartext HTTP (a ClientHello sent ahead of the answer was counted as
      // HTTP when it came, before anyone could know)
      assert.equal(counters.get('app_layer.bytes.tls'), tlsPayloads().reduce((n, x) => n + x.bytes.length, 0));
      assert.equal(counters.get('app_layer.decrypted_bytes.http'), counters.get('tls.decrypted_bytes'));
      if (!eager) assert.equal(counters.get('app_layer.bytes.http'), CONNECT.length + ESTABLISHED.length);
    });
  }

  test('a CONNECT and a ClientHello sent a byte per segment are held, charged, replayed whole, and given back', () => {
    // held through protocol detection (the CONNECT's first bytes) and then the CONNECT hold (the
    // ClientHello sent ahead of the answer): one run each, charged to the inspection memory gauge
    const tls: TlsEvent[] = [];
    const sensor = new Sensor({ engine: 'js', keyLogs: [KEYS], onCapture: () => undefined, onEvent: (e) => void (e.event_type === 'tls' && tls.push(e as TlsEvent)) });
    const hello = tlsPayloads()[0].bytes.length;
    let peak = 0;
    for (const f of proxiedFrames(true, 1)) {
      sensor.pipeline.packet(1, f.data, 0, f.data.length, f.data.length, f.tsUs!, 0);
      peak = Math.max(peak, memoryInUse(sensor.counters));
    }
    sensor.finish();
    assert.equal(tls.length, 1);
    assert.equal(tls[0].tls.sni, 'heise.de');
    assert.equal(tls[0].tls.decrypted, true, 'the held ClientHello reached the tunnel whole');
    assert.equal(sensor.counters.get('http.requests'), 2);
    assert.equal(sensor.counters.get('app_layer.bytes.tls'), tlsPayloads().reduce((n, x) => n + x.bytes.length, 0));
    assert.ok(peak >= hello, `peak ${peak}: the held ClientHello (${hello} bytes) was not charged`);
    assert.equal(memoryInUse(sensor.counters), 0, 'everything charged was given back');
    sensor.close();
  });

  test('without keys: described, not decrypted, and bypassed', () => {
    const { tls, counters } = scan(proxiedPcap(false), []);
    assert.equal(tls.length, 1);
    assert.equal(tls[0].tls.sni, 'heise.de');
    assert.equal(tls[0].tls.decrypted, false);
    assert.equal(tls[0].tls.not_decrypted_reason, 'no_keys');
    assert.equal(counters.get('flow.bypassed'), 1);
    assert.equal(counters.get('http.requests'), 1);
    assert.equal(counters.get('app_layer.bytes.http'), CONNECT.length + ESTABLISHED.length, 'only the exchange with the proxy is cleartext HTTP');
    assert.equal(counters.get('app_layer.bytes.tls'), tlsPayloads().reduce((n, x) => n + x.bytes.length, 0), 'bypassed bytes included');
  });
});

/** One connection to a proxy: `depth` CONNECTs nested in one another, then a search inside the innermost. */
function nestedPcap(depth: number): Buffer {
  const frames: PcapPacket[] = [];
  let t = 1_700_000_000_000_000;
  const seq = [1000, 7000];
  const send = (dir: 0 | 1, text: string, flags = PSH | ACK): void => {
    frames.push({ data: ethTcp({ ...(dir === 0 ? C : S), seq: seq[dir], ack: seq[dir ^ 1], flags }, Buffer.from(text)), tsUs: t++ });
    seq[dir] += text.length;
  };
  frames.push({ data: ethTcp({ ...C, seq: seq[0] - 1, flags: SYN }), tsUs: t++ });
  frames.push({ data: ethTcp({ ...S, seq: seq[1] - 1, ack: seq[0], flags: SYN | ACK }), tsUs: t++ });
  for (let i = 0; i < depth; i++) {
    send(0, `CONNECT proxy${i + 1}.example:3128 HTTP/1.1\r\n\r\n`);
    send(1, ESTABLISHED);
  }
  send(0, 'GET /search?q=ak47 HTTP/1.1\r\nHost: a.example\r\n\r\n');
  return writePcap(frames);
}

function scanNested(depth: number): { captures: number; counters: Sensor['counters'] } {
  let captures = 0;
  const sensor = new Sensor({ engine: 'js', onCapture: () => void captures++ });
  withTempFile(nestedPcap(depth), (file) => {
    readCaptureFile(file, sensor.pipeline.packet);
    sensor.finish();
  });
  sensor.close();
  return { captures, counters: sensor.counters };
}

describe('CONNECT tunnels nested in one another', () => {
  test('a proxy chain is looked into at every level', () => {
    const { captures, counters } = scanNested(4);
    assert.equal(counters.get('http.tunnel'), 4);
    assert.equal(counters.get('http.requests'), 5, 'four CONNECTs and the search inside the innermost');
    assert.equal(captures, 1, 'the search for "ak47" inside four tunnels');
    assert.equal(counters.get('http.tunnel.too_deep'), 0);
  });

  test('thousands of levels are cut at the depth limit, counted, and never overflow the stack', () => {
    const { captures, counters } = scanNested(3000);
    assert.equal(counters.get('http.tunnel.too_deep'), 1);
    assert.equal(counters.get('http.requests'), 5, 'the CONNECTs down to the limit; what lies deeper is not parsed');
    assert.equal(counters.get('flow.consumer_error'), 0, 'no stack overflow in any consumer');
    assert.equal(captures, 0);
  });
});
