/**
 * Sensor.reconfigure: a reload swaps dictionary and site policy while a connection is open; the
 * connection is not dropped, the next message is matched with the new dictionary, and a bad new
 * dictionary leaves the running one in place.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { Sensor, SensorConfigError } from '../../sensor/main.js';
import { ascii, ETHERTYPE, ethernet, IPPROTO, ipv4, LINKTYPE, tcp, TCP_FLAGS } from '../helpers/packets.js';

const dir = mkdtempSync(join(tmpdir(), 'hark-reconf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function dictionary(name: string, rows: string): string {
  const path = join(dir, name);
  writeFileSync(path, `phrase,category,severity,embedded\n${rows}`);
  return path;
}

/** One keep-alive HTTP connection, client 10.1.1.5 -> 192.0.2.80: handshake, then requests on demand. */
class Connection {
  private cseq = 1000;
  private sseq = 5000;
  private ts = 1_700_000_000_000_000;
  constructor(private readonly sensor: Sensor) {
    this.send('c', TCP_FLAGS.SYN, '');
    this.send('s', TCP_FLAGS.SYN | TCP_FLAGS.ACK, '');
    this.send('c', TCP_FLAGS.ACK, '');
  }

  private send(from: 'c' | 's', flags: number, text: string): void {
    const c = from === 'c';
    const seg = tcp({ sport: c ? 40000 : 80, dport: c ? 80 : 40000, seq: c ? this.cseq : this.sseq, ack: c ? this.sseq : this.cseq, flags }, ascii(text));
    const frame = ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.TCP, src: c ? '10.1.1.5' : '192.0.2.80', dst: c ? '192.0.2.80' : '10.1.1.5' }, seg));
    this.ts += 1000;
    this.sensor.pipeline.packet(LINKTYPE.ETHERNET, frame, 0, frame.length, frame.length, this.ts, 0);
    const adv = text.length + (flags & (TCP_FLAGS.SYN | TCP_FLAGS.FIN) ? 1 : 0);
    if (c) this.cseq += adv;
    else this.sseq += adv;
  }

  exchange(path: string, body: string): void {
    this.send('c', TCP_FLAGS.ACK | TCP_FLAGS.PSH, `GET ${path} HTTP/1.1\r\nHost: example.test\r\n\r\n`);
    this.send('s', TCP_FLAGS.ACK | TCP_FLAGS.PSH, `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  }

  close(): void {
    this.send('c', TCP_FLAGS.FIN | TCP_FLAGS.ACK, '');
    this.send('s', TCP_FLAGS.FIN | TCP_FLAGS.ACK, '');
    this.send('c', TCP_FLAGS.ACK, '');
  }
}

test('Sensor.reconfigure swaps the dictionary mid-connection: the next message uses the new one, the flow goes on', () => {
  const out: CaptureEvent[] = [];
  const sensor = new Sensor({ dictionary: dictionary('a.csv', 'pineapple,drugs,3,false\n'), engine: 'js', onCapture: (c) => out.push(c) });
  const conn = new Connection(sensor);
  conn.exchange('/one', 'pineapple and walnut');
  sensor.reconfigure({ dictionary: dictionary('b.csv', 'walnut,violence,5,false\n'), engine: 'js' });
  conn.exchange('/two', 'pineapple and walnut');
  conn.close();
  sensor.finish();
  const seen = out.map((c) => `${c.url} ${c.phrase} ${c.category} ${c.severity}`).sort();
  assert.deepEqual(seen, ['/one pineapple drugs 3', '/two walnut violence 5']);
  assert.equal(sensor.pipeline.flows.active, 0);
  assert.equal(out[0].flow_id, out[1].flow_id, 'one flow carried both messages');
  assert.equal(sensor.counters.get('sensor.reconfigured'), 1);
});

test('Sensor.reconfigure refuses a bad dictionary and keeps the running one', () => {
  const out: CaptureEvent[] = [];
  const sensor = new Sensor({ dictionary: dictionary('c.csv', 'pineapple,drugs,3,false\n'), engine: 'js', onCapture: (c) => out.push(c) });
  assert.throws(() => sensor.reconfigure({ dictionary: join(dir, 'missing.csv') }), (e: unknown) => e instanceof SensorConfigError && e.code === 'E_DICTIONARY_READ');
  const conn = new Connection(sensor);
  conn.exchange('/x', 'a pineapple');
  conn.close();
  sensor.finish();
  assert.deepEqual(out.map((c) => c.phrase), ['pineapple']);
  assert.equal(sensor.counters.get('sensor.reconfigured'), 0);
});

test('Sensor.reconfigure swaps the site policy: a newly allow-listed host is no longer captured', () => {
  const out: CaptureEvent[] = [];
  const sensor = new Sensor({ dictionary: dictionary('d.csv', 'pineapple,drugs,3,false\n'), engine: 'js', onCapture: (c) => out.push(c) });
  const conn = new Connection(sensor);
  conn.exchange('/before', 'pineapple');
  const allow = join(dir, 'allow.txt');
  writeFileSync(allow, 'example.test\n');
  sensor.reconfigure({ site: { allowList: allow } });
  conn.exchange('/after', 'pineapple');
  conn.close();
  sensor.finish();
  assert.deepEqual(out.map((c) => c.url), ['/before']);
  assert.equal(sensor.counters.get('capture.allow_listed') > 0, true);
});
