/**
 * SyslogOutput against real collectors started here on loopback: a dgram server (RFC 5426), a
 * net server (RFC 6587 octet counting) and a tls server with a forge certificate (RFC 5425).
 * What arrives is parsed as RFC 5424: PRI, header fields, structured data with escapes, BOM + JSON.
 */
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { after, describe, test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import {
  escapeSdValue, formatSyslogMessage, frameOctetCounted, parseSyslogUrl, SD_ID, SyslogOutput, syslogSeverity, truncateUtf8,
} from '../../sensor/output/syslog.js';
import { testPki } from './cert-fixtures.js';

interface Parsed {
  pri: number;
  version: string;
  timestamp: string;
  hostname: string;
  app: string;
  procId: string;
  msgId: string;
  sdId: string | undefined;
  params: Record<string, string>;
  bom: boolean;
  msg: string;
}

/** An RFC 5424 parser written from section 6 (independent of the formatter under test). */
function parse5424(buf: Buffer): Parsed {
  const text = buf.toString('utf8');
  const m = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(text);
  assert.ok(m, `header of ${JSON.stringify(text.slice(0, 80))}`);
  let i = m[0].length;
  const params: Record<string, string> = {};
  let sdId: string | undefined;
  if (text[i] === '-') {
    i++;
  } else {
    assert.equal(text[i], '[');
    i++;
    const idEnd = text.indexOf(' ', i);
    sdId = text.slice(i, idEnd);
    i = idEnd;
    while (text[i] === ' ') {
      i++;
      const eq = text.indexOf('=', i);
      const name = text.slice(i, eq);
      assert.equal(text[eq + 1], '"');
      i = eq + 2;
      let value = '';
      for (;;) {
        const c = text[i++];
        if (c === '\\' && (text[i] === '"' || text[i] === '\\' || text[i] === ']')) value += text[i++];
        else if (c === '"') break;
        else {
          assert.ok(c !== ']' && c !== undefined, `unescaped "]" or end inside ${name}`);
          value += c;
        }
      }
      params[name] = value;
    }
    assert.equal(text[i], ']');
    i++;
  }
  assert.equal(text[i], ' ');
  const rest = buf.subarray(Buffer.byteLength(text.slice(0, i + 1)));
  const bom = rest[0] === 0xef && rest[1] === 0xbb && rest[2] === 0xbf;
  return {
    pri: Number(m[1]), version: m[2], timestamp: m[3], hostname: m[4], app: m[5], procId: m[6], msgId: m[7], sdId, params, bom,
    msg: rest.subarray(bom ? 3 : 0).toString('utf8'),
  };
}

/** Splits an RFC 6587 octet-counted stream (arriving in any chunking) into messages. */
class OctetCountingReader {
  private buf = Buffer.alloc(0);
  readonly messages: Buffer[] = [];
  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const sp = this.buf.indexOf(0x20);
      if (sp < 0) return;
      const lenText = this.buf.subarray(0, sp).toString('latin1');
      assert.match(lenText, /^[1-9]\d*$/, 'MSG-LEN is a non-zero number');
      const len = Number(lenText);
      if (this.buf.length < sp + 1 + len) return;
      this.messages.push(this.buf.subarray(sp + 1, sp + 1 + len));
      this.buf = this.buf.subarray(sp + 1 + len);
    }
  }
}

async function waitFor(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function capture(over: Record<string, unknown> = {}) {
  return {
    event_type: 'capture', id: '0b1e2c3d-0000-8000-8000-000000000001', timestamp: '2024-05-01T10:00:01.123456Z', ts_us: 1714557601123456,
    flow_id: 7, src_ip: '10.1.2.3', src_port: 50123, dest_ip: '93.184.216.34', dest_port: 80, vlan: [], proto: 'TCP', app_proto: 'http',
    direction: 'to_server', source: 'typed', field: 'search', host: 'www.example.com', url: '/search?q=x', phrase: 'hurt myself',
    category: 'self-harm', severity: 5, count: 1, context: 'how to hurt myself', device: { ip: '10.1.2.3', user: 'alice', hostname: 'LAPTOP-12' },
    ...over,
  };
}

const FORMAT = { facility: 16, hostname: 'sensor-1', procId: '4242' };

describe('formatSyslogMessage', () => {
  test('formatSyslogMessage writes the RFC 5424 header, hark@32473 structured data and BOM + JSON', () => {
    const e = capture();
    const p = parse5424(formatSyslogMessage(e, FORMAT));
    assert.equal(p.pri, 16 * 8 + 2); // local0.crit
    assert.equal(p.version, '1');
    assert.equal(p.timestamp, '2024-05-01T10:00:01.123456Z');
    assert.deepEqual([p.hostname, p.app, p.procId, p.msgId], ['sensor-1', 'hark', '4242', 'capture']);
    assert.equal(p.sdId, SD_ID);
    assert.deepEqual(p.params, {
      severity: '5', category: 'self-harm', phrase: 'hurt myself', src_ip: '10.1.2.3', src_port: '50123', dest_ip: '93.184.216.34',
      dest_port: '80', user: 'alice', device: 'LAPTOP-12', host: 'www.example.com', id: e.id,
    });
    assert.equal(p.bom, true);
    assert.deepEqual(JSON.parse(p.msg), e);
  });

  test('formatSyslogMessage escapes ", \\ and ] in SD values and keeps them readable back', () => {
    const phrase = 'say "hi" \\ to [you] ]]';
    const p = parse5424(formatSyslogMessage(capture({ phrase, category: 'a]b' }), FORMAT));
    assert.equal(p.params.phrase, phrase);
    assert.equal(p.params.category, 'a]b');
    assert.equal(escapeSdValue('a"b\\c]d'), 'a\\"b\\\\c\\]d');
  });

  test('formatSyslogMessage maps capture severity 1-5 and health severity to PRI with the facility', () => {
    const pri = (e: object, facility = 16) => parse5424(formatSyslogMessage(e as { event_type: string }, { ...FORMAT, facility })).pri;
    assert.deepEqual([5, 4, 3, 2, 1].map((s) => pri(capture({ severity: s }))), [130, 131, 132, 133, 134]);
    assert.equal(pri(capture({ severity: 4 }), 3), 3 * 8 + 3); // daemon.err
    const health = (severity: string, state = 'raised') => ({ event_type: 'health', timestamp: '2024-05-01T10:00:00.000Z', name: 'store.full', severity, state, message: 'm' });
    assert.equal(pri(health('critical')), 130);
    assert.equal(pri(health('warning')), 132);
    assert.equal(pri(health('info')), 134);
    assert.equal(pri(health('critical', 'cleared')), 133);
    assert.equal(syslogSeverity({ event_type: 'dns' }), 5);
    assert.equal(syslogSeverity({ event_type: 'tls' }), 6);
  });

  test('formatSyslogMessage puts health fields in SD and uses NILVALUE SD for an event with no key fields', () => {
    const h = parse5424(formatSyslogMessage({ event_type: 'health', timestamp: '2024-05-01T10:00:00.000Z', name: 'store.full', severity: 'critical', state: 'raised' } as { event_type: string }, FORMAT));
    assert.deepEqual(h.params, { name: 'store.full', severity: 'critical', state: 'raised' });
    const s = parse5424(formatSyslogMessage({ event_type: 'stats' }, { ...FORMAT, now: new Date('2024-01-02T03:04:05.678Z') }));
    assert.equal(s.sdId, undefined);
    assert.equal(s.timestamp, '2024-01-02T03:04:05.678Z', 'no event timestamp: the given clock');
  });

  test('formatSyslogMessage keeps header fields within PRINTUSASCII', () => {
    const p = parse5424(formatSyslogMessage({ event_type: 'odd type' }, { ...FORMAT, hostname: 'host name' }));
    assert.equal(p.hostname, 'host_name');
    assert.equal(p.msgId, 'odd_type');
  });
});

describe('syslog helpers', () => {
  test('parseSyslogUrl reads the transport, host and port, with default ports and IPv6', () => {
    assert.deepEqual(parseSyslogUrl('udp://10.0.0.1:5514'), { transport: 'udp', host: '10.0.0.1', port: 5514 });
    assert.deepEqual(parseSyslogUrl('tls://logs.example.org'), { transport: 'tls', host: 'logs.example.org', port: 6514 });
    assert.deepEqual(parseSyslogUrl('tcp://[::1]:601'), { transport: 'tcp', host: '::1', port: 601 });
    assert.throws(() => parseSyslogUrl('http://x:1'), { code: 'E_SYSLOG_URL' });
    assert.throws(() => parseSyslogUrl('not a url'), { code: 'E_SYSLOG_URL' });
  });

  test('truncateUtf8 never cuts inside a multi-byte character', () => {
    const b = Buffer.from('aé€😀', 'utf8'); // 1 + 2 + 3 + 4 bytes
    assert.equal(truncateUtf8(b, 2).toString(), 'a');
    assert.equal(truncateUtf8(b, 5).toString(), 'aé');
    assert.equal(truncateUtf8(b, 9).toString(), 'aé€');
    assert.equal(truncateUtf8(b, 10), b);
  });

  test('frameOctetCounted prefixes the byte length, not the character length', () => {
    assert.equal(frameOctetCounted(Buffer.from('é!', 'utf8')).toString('utf8'), '3 é!');
  });
});

describe('SyslogOutput over UDP', () => {
  test('SyslogOutput sends one RFC 5424 message per datagram', async () => {
    const server = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    server.on('message', (m) => got.push(m));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    const counters = new Counters();
    const out = new SyslogOutput({ url: `udp://127.0.0.1:${server.address().port}`, counters, hostname: 'sensor-1', facility: 'local3' });
    out.write(capture({ severity: 4 }));
    out.write({ event_type: 'flow' });
    out.write(capture({ severity: 1, phrase: 'p2' }));
    await waitFor(() => got.length === 3, 'three datagrams');
    await out.close();
    server.close();
    const parsed = got.map(parse5424).sort((a, b) => a.pri - b.pri);
    assert.deepEqual(parsed.map((p) => p.pri), [19 * 8 + 3, 19 * 8 + 6, 19 * 8 + 6]);
    assert.deepEqual(parsed.map((p) => p.msgId).sort(), ['capture', 'capture', 'flow']);
    assert.equal(counters.get('output.syslog.sent'), 3);
  });

  test('SyslogOutput sends only the configured event types', async () => {
    const server = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    server.on('message', (m) => got.push(m));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    const counters = new Counters();
    const out = new SyslogOutput({ url: `udp://127.0.0.1:${server.address().port}`, counters, eventTypes: ['capture', 'health'] });
    out.write({ event_type: 'flow' });
    out.write({ event_type: 'tls' });
    out.write(capture());
    await waitFor(() => got.length === 1, 'one datagram');
    await out.close();
    server.close();
    assert.equal(parse5424(got[0]).msgId, 'capture');
    assert.equal(counters.get('output.syslog.sent'), 1);
    assert.equal(counters.get('output.syslog.dropped'), 0, 'filtered events are not drops');
  });

  test('SyslogOutput truncates a datagram to maxDatagramBytes and counts it', async () => {
    const server = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    server.on('message', (m) => got.push(m));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    const counters = new Counters();
    const out = new SyslogOutput({ url: `udp://127.0.0.1:${server.address().port}`, counters, maxDatagramBytes: 480 });
    out.write(capture({ context: '€'.repeat(400) }));
    await waitFor(() => got.length === 1, 'one datagram');
    await out.close();
    server.close();
    assert.ok(got[0].length <= 480 && got[0].length > 470, `length ${got[0].length}`);
    assert.equal(Buffer.from(got[0].toString('utf8'), 'utf8').equals(got[0]), true, 'still valid UTF-8');
    assert.equal(parse5424(got[0]).params.phrase, 'hurt myself');
    assert.equal(counters.get('output.syslog.truncated'), 1);
  });
});

/** A TCP or TLS collector on loopback that parses octet-counted messages; stop() drops clients. */
class StreamCollector {
  readonly messages: Buffer[] = [];
  connections = 0;
  private server: net.Server | undefined;
  private sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly tlsOptions?: tls.TlsOptions) {}

  async start(port = 0): Promise<void> {
    const onSocket = (s: net.Socket) => {
      this.connections++;
      this.sockets.add(s);
      const reader = new OctetCountingReader();
      const seen = reader.messages;
      s.on('data', (d: Buffer) => {
        const before = seen.length;
        reader.push(d);
        for (let i = before; i < seen.length; i++) this.messages.push(seen[i]);
      });
      s.on('error', () => {});
      s.on('close', () => this.sockets.delete(s));
    };
    this.server = this.tlsOptions ? tls.createServer(this.tlsOptions, onSocket) : net.createServer(onSocket);
    this.server.on('tlsClientError', () => {});
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

describe('SyslogOutput over TCP', () => {
  test('SyslogOutput frames messages with octet counting (RFC 6587)', async () => {
    const c = new StreamCollector();
    await c.start();
    const counters = new Counters();
    const out = new SyslogOutput({ url: `tcp://127.0.0.1:${c.port}`, counters });
    const phrases = ['one', 'two words', 'ünïcödé "quoted"', 'new\nline'];
    for (const phrase of phrases) out.write(capture({ phrase }));
    await waitFor(() => c.messages.length === 4, 'four messages');
    await out.close();
    await c.stop();
    assert.deepEqual(c.messages.map((m) => parse5424(m).params.phrase), phrases);
    assert.deepEqual(c.messages.map((m) => (JSON.parse(parse5424(m).msg) as { phrase: string }).phrase), phrases);
    assert.equal(counters.get('output.syslog.sent'), 4);
  });

  test('SyslogOutput reconnects after the collector restarts and sends what was queued', async () => {
    const c = new StreamCollector();
    await c.start();
    const counters = new Counters();
    const out = new SyslogOutput({ url: `tcp://127.0.0.1:${c.port}`, counters, reconnectBaseMs: 10, reconnectMaxMs: 50 });
    out.write(capture({ phrase: 'before' }));
    await waitFor(() => c.messages.length === 1, 'first message');
    await c.stop();
    await waitFor(() => !out.connected, 'the output to notice the lost connection');
    out.write(capture({ phrase: 'while down 1' }));
    out.write(capture({ phrase: 'while down 2' }));
    assert.equal(out.queued, 2);
    await c.start(c.port);
    await waitFor(() => c.messages.length === 3, 'queued messages after the restart');
    await out.close();
    await c.stop();
    assert.deepEqual(c.messages.map((m) => parse5424(m).params.phrase), ['before', 'while down 1', 'while down 2']);
    assert.ok(counters.get('output.syslog.reconnects') >= 1);
    assert.equal(c.connections, 2);
  });

  test('SyslogOutput bounds its queue while the collector is down and counts the drops', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r())); // nothing listens there now
    const counters = new Counters();
    const out = new SyslogOutput({ url: `tcp://127.0.0.1:${port}`, counters, maxQueueMessages: 5, reconnectBaseMs: 10, reconnectMaxMs: 20, closeTimeoutMs: 50 });
    for (let i = 0; i < 12; i++) out.write(capture({ phrase: `p${i}` }));
    assert.equal(out.queued, 5);
    assert.equal(counters.get('output.syslog.dropped'), 7);
    await waitFor(() => out.lastError !== undefined, 'a connection error');
    assert.match(out.lastError!.message, /Cannot send syslog to tcp:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    await out.close();
    assert.equal(counters.get('output.syslog.dropped'), 12, 'close drops (and counts) what never went');
    assert.equal(counters.get('output.syslog.sent'), 0);
  });
});

describe('SyslogOutput over TLS', () => {
  const pki = testPki();
  const collectors: StreamCollector[] = [];
  after(async () => {
    for (const c of collectors) await c.stop();
  });

  test('SyslogOutput sends over TLS to a collector whose certificate chains to the given CA', async () => {
    const c = new StreamCollector({ key: pki.keyPem, cert: pki.certPem });
    collectors.push(c);
    await c.start();
    const counters = new Counters();
    const out = new SyslogOutput({ url: `tls://127.0.0.1:${c.port}`, counters, ca: pki.caPem });
    out.write(capture({ phrase: 'over tls' }));
    out.write({ event_type: 'health', timestamp: '2024-05-01T10:00:00.000Z', name: 'capture.no_packets', severity: 'warning', state: 'raised' } as { event_type: string });
    await waitFor(() => c.messages.length === 2, 'two messages over TLS');
    await out.close();
    const [a, b] = c.messages.map(parse5424);
    assert.equal(a.params.phrase, 'over tls');
    assert.equal(b.msgId, 'health');
    assert.equal(b.pri, 16 * 8 + 4);
  });

  test('SyslogOutput refuses a collector whose certificate does not chain to the pinned CA', async () => {
    const c = new StreamCollector({ key: pki.keyPem, cert: pki.certPem });
    collectors.push(c);
    await c.start();
    const counters = new Counters();
    const out = new SyslogOutput({ url: `tls://127.0.0.1:${c.port}`, counters, ca: pki.otherCaPem, reconnectBaseMs: 10, reconnectMaxMs: 20, closeTimeoutMs: 50 });
    out.write(capture({ phrase: 'must not arrive' }));
    await waitFor(() => out.lastError !== undefined, 'a TLS verification error');
    assert.match(out.lastError!.message, /certificate/i);
    await out.close();
    assert.equal(c.messages.length, 0);
    assert.equal(counters.get('output.syslog.sent'), 0);
    assert.equal(counters.get('output.syslog.dropped'), 1);
  });

  test('SyslogOutput checks the certificate name against the URL host', async () => {
    const c = new StreamCollector({ key: pki.keyPem, cert: pki.certPem });
    collectors.push(c);
    await c.start();
    const counters = new Counters();
    // The certificate names localhost and 127.0.0.1, not logs.example.org.
    const out = new SyslogOutput({ url: `tls://127.0.0.1:${c.port}`, counters, ca: pki.caPem, servername: 'logs.example.org', reconnectBaseMs: 10, reconnectMaxMs: 20, closeTimeoutMs: 50 });
    out.write(capture());
    await waitFor(() => out.lastError !== undefined, 'a host name mismatch');
    assert.match(out.lastError!.message, /logs\.example\.org|altnames|Hostname/i);
    await out.close();
    assert.equal(c.messages.length, 0);
  });
});
