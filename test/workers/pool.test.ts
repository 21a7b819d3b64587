/**
 * WorkerPool against the single-thread Sensor on the same captures: identical capture sets (ids,
 * final counts, phrases) and events with 2 and 3 workers; TLS keys from key logs and pushed at
 * run time; a DHCP observation made in one worker names the device in another worker's capture;
 * reconfigure mid-run; finish flushes every flow and merge window; a killed worker is counted and
 * replaced; every worker reports its own V8 heap figures through shared memory. Files are read with the sensor's own reader into `pool.packet`.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseKeyLog } from '../../sensor/app-layer/tls/keylog.js';
import { readCaptureFile, type PacketHandler } from '../../sensor/capture/file-reader.js';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { Counters } from '../../sensor/events/counters.js';
import type { IdentityObservation } from '../../sensor/identity/observation.js';
import { Sensor, type SensorOptions } from '../../sensor/main.js';
import { FlowHasher, workerForHash } from '../../sensor/workers/dispatch.js';
import { shareFlowLimits, WorkerPool, WorkerPoolError, type WorkerPoolOptions } from '../../sensor/workers/pool.js';
import { DEFAULT_FLOW_LIMITS } from '../../sensor/flow/flow-table.js';
import type { WorkerSensorOptions } from '../../sensor/workers/protocol.js';
import { ascii, ETHERTYPE, ethernet, IPPROTO, ipv4, tcp, TCP_FLAGS } from '../helpers/packets.js';
import { writePcap } from '../helpers/pcap-writer.js';
import { fixture } from '../helpers/replay.js';
import { assertCapture } from '../helpers/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'hark-workers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function dictionary(name: string, phrases: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `phrase,category,severity,embedded\n${phrases.map((p) => `${p},test,3,no`).join('\n')}\n`);
  return path;
}

/** What is compared: the latest event per capture id (a merged capture is emitted again with its final count). */
interface Result {
  captures: Map<string, CaptureEvent>;
  events: string[];
  counters: Counters;
}

function latest(list: CaptureEvent[]): Map<string, CaptureEvent> {
  const m = new Map<string, CaptureEvent>();
  for (const c of list) m.set(c.id, c);
  return m;
}

/** The single-thread sensor on `files` in turn, finishing after each (as `pooled` does). */
function single(files: string[], o: WorkerSensorOptions): Result {
  const caps: CaptureEvent[] = [];
  const events: string[] = [];
  const sensor = new Sensor({ engine: 'js', ...(o as SensorOptions), onCapture: (c) => caps.push(c), onEvent: (e) => events.push(JSON.stringify(e)) });
  for (const f of files) {
    readCaptureFile(f, sensor.pipeline.packet);
    sensor.finish();
  }
  sensor.close();
  return { captures: latest(caps), events: events.sort(), counters: sensor.counters };
}

/** Waits until worker `k`, whose thread was `tid` before it ended, runs on a new thread; false if
 * none came within 5 s. */
async function restarted(pool: WorkerPool, k: number, tid: number | undefined): Promise<boolean> {
  const fresh = (): boolean => ![undefined, tid].includes(pool.workerThreadIds()[k]);
  for (let i = 0; i < 200 && !fresh(); i++) await new Promise((r) => setTimeout(r, 25));
  return fresh();
}

async function startPool(workers: number, o: WorkerSensorOptions, extra: Partial<WorkerPoolOptions> = {}): Promise<{ pool: WorkerPool; caps: CaptureEvent[]; events: string[]; counters: Counters }> {
  const caps: CaptureEvent[] = [];
  const events: string[] = [];
  const counters = new Counters();
  const pool = await WorkerPool.start({
    workers,
    sensorOptions: { engine: 'js', ...o },
    onCapture: (c) => caps.push(c),
    onEvent: (e) => events.push(JSON.stringify(e)),
    counters,
    whenFull: 'wait',
    tickMs: 0,
    ...extra,
  });
  return { pool, caps, events, counters };
}

async function pooled(workers: number, files: string[], o: WorkerSensorOptions): Promise<Result> {
  const { pool, caps, events, counters } = await startPool(workers, o);
  try {
    for (const f of files) {
      readCaptureFile(f, pool.packet);
      await pool.finish();
      assert.equal(pool.flowsActive(), 0, 'finish ended every flow');
    }
  } finally {
    await pool.close();
  }
  return { captures: latest(caps), events: events.sort(), counters };
}

const SAME_COUNTERS = ['decoder.pkts', 'decoder.bytes', 'flow.tcp', 'flow.udp', 'tcp.reassembled_bytes', 'http.requests', 'http.responses', 'match.hits', 'capture.emitted', 'dns.queries'];

function assertSame(a: Result, b: Result, what: string): void {
  assert.deepEqual([...b.captures.keys()].sort(), [...a.captures.keys()].sort(), `${what}: capture ids`);
  for (const [id, c] of a.captures) {
    const d = b.captures.get(id)!;
    assert.equal(d.count, c.count, `${what}: count of ${c.phrase}`);
    assert.equal(d.phrase, c.phrase);
    assert.deepEqual(d, c, `${what}: capture ${id}`);
    assertCapture(d);
  }
  assert.deepEqual(b.events, a.events, `${what}: events`);
  // frames of bypassed connections that the capture thread dropped never reached a decoder
  const dropped = { 'decoder.pkts': b.counters.get('workers.bypass_dropped'), 'decoder.bytes': b.counters.get('workers.bypass_dropped_bytes') } as Record<string, number>;
  for (const name of SAME_COUNTERS) assert.equal(b.counters.get(name) + (dropped[name] ?? 0), a.counters.get(name), `${what}: counter ${name}`);
  assert.equal(b.counters.get('workers.ring_full'), 0);
}

test('WorkerPool with 2 and 3 workers gives the single-thread Sensor\'s captures (ids, counts, phrases), events and counts', async () => {
  // One run over several captures (each finished before the next): one HTTP search page, 661
  // attack flows, fragmented DNS, IPv6 with QUIC, TLS 1.2 and 1.3 decrypted with their key logs.
  const files = [
    fixture('school-search', 'school-search.pcap'),
    fixture('tcp', 'ndpi-WebattackXSS.pcap'),
    fixture('dns', 'ndpi-dns_fragmented.pcap'),
    fixture('quic', 'ndpi-http_ipv6.pcap'),
    fixture('tls-crypto', 'ws-tls12-chacha20poly1305.pcap'),
    fixture('tls-crypto', 'ws-tls13-rfc8446.pcap'),
  ];
  const o: WorkerSensorOptions = {
    dictionary: dictionary('mixed.csv', ['AK47', 'our secret', 'script', 'alert', 'document']),
    keyLogs: [fixture('tls-crypto', 'ws-tls12-chacha20poly1305.keys'), fixture('tls-crypto', 'ws-tls13-rfc8446.keys')],
  };
  const want = single(files, o);
  assert.ok(want.captures.size > 1000, `a real test: ${want.captures.size} captures`);
  const phrases = new Set([...want.captures.values()].map((c) => c.phrase));
  for (const p of ['AK47', 'our secret', 'script']) assert.ok(phrases.has(p), p);
  const tls = want.events.filter((e) => e.includes('"event_type":"tls"') && e.includes('"decrypted":true'));
  assert.equal(tls.length, 9, 'the 7 + 2 TLS sessions were decrypted');
  assert.ok(want.counters.get('dns.queries') > 0);
  for (const n of [2, 3]) assertSame(want, await pooled(n, files, o), `${n} workers`);
  // the workers taking connection-grouped batches from their rings (hark run --group-frames)
  for (const n of [2, 3]) assertSame(want, await pooled(n, files, { ...o, localityFrames: 4096 }), `${n} workers, grouped batches`);
});

test('a pool whose workers warmed up first (hark run) gives the same captures, events and counts as one that did not', async () => {
  const files = [fixture('school-search', 'school-search.pcap'), fixture('tcp', 'ndpi-WebattackXSS.pcap'), fixture('dns', 'ndpi-dns_fragmented.pcap')];
  const o: WorkerSensorOptions = { dictionary: dictionary('warm.csv', ['AK47', 'our secret', 'script', 'alert']) };
  const want = single(files, o);
  assert.ok(want.captures.size > 100, `a real test: ${want.captures.size} captures`);
  const { pool, caps, events, counters } = await startPool(2, o, { warmUpMs: 100 });
  try {
    assert.equal(pool.warmUps.length, 2, 'each worker warmed up');
    for (const w of pool.warmUps) assert.ok(w.rounds >= 1 && w.frames > 0 && w.captures > 0, JSON.stringify(w));
    assert.equal(caps.length + events.length, 0, 'nothing of the warm-up reached the pool');
    for (const f of files) {
      readCaptureFile(f, pool.packet);
      await pool.finish();
    }
  } finally {
    await pool.close();
  }
  assertSame(want, { captures: latest(caps), events: events.sort(), counters }, 'warmed-up workers');
});

test('WorkerPool.addKeys: TLS secrets pushed at run time reach the worker that owns the session', async () => {
  const pcap = fixture('tls-crypto', 'ws-tls12-chacha20poly1305.pcap');
  const keys = fixture('tls-crypto', 'ws-tls12-chacha20poly1305.keys');
  const want = single([pcap], { keyLogs: [keys] });
  const { pool, events } = await startPool(2, {});
  try {
    pool.addKeys(parseKeyLog(readFileSync(keys, 'utf8')).entries);
    // Keys pushed before the traffic (a key wait covers keys that come later on a live sensor).
    await pool.drain();
    readCaptureFile(pcap, pool.packet);
    await pool.finish();
  } finally {
    await pool.close();
  }
  assert.deepEqual(events.sort(), want.events);
});

/** Frames of one HTTP/1.1 connection: handshake, then each request answered with `body`, then FIN. */
function httpConnection(client: string, server: string, sport: number, startUs: number, exchanges: Array<[string, string]>): Array<{ data: Buffer; tsUs: number }> {
  const out: Array<{ data: Buffer; tsUs: number }> = [];
  let cseq = 1000;
  let sseq = 5000;
  let ts = startUs;
  const send = (fromClient: boolean, flags: number, text: string): void => {
    const seg = tcp({ sport: fromClient ? sport : 80, dport: fromClient ? 80 : sport, seq: fromClient ? cseq : sseq, ack: fromClient ? sseq : cseq, flags }, ascii(text));
    out.push({ data: ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.TCP, src: fromClient ? client : server, dst: fromClient ? server : client }, seg)), tsUs: (ts += 1000) });
    const adv = text.length + (flags & (TCP_FLAGS.SYN | TCP_FLAGS.FIN) ? 1 : 0);
    if (fromClient) cseq += adv;
    else sseq += adv;
  };
  send(true, TCP_FLAGS.SYN, '');
  send(false, TCP_FLAGS.SYN | TCP_FLAGS.ACK, '');
  send(true, TCP_FLAGS.ACK, '');
  for (const [path, body] of exchanges) {
    send(true, TCP_FLAGS.ACK | TCP_FLAGS.PSH, `GET ${path} HTTP/1.1\r\nHost: example.test\r\n\r\n`);
    send(false, TCP_FLAGS.ACK | TCP_FLAGS.PSH, `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  }
  send(true, TCP_FLAGS.FIN | TCP_FLAGS.ACK, '');
  send(false, TCP_FLAGS.FIN | TCP_FLAGS.ACK, '');
  send(true, TCP_FLAGS.ACK, '');
  return out;
}

function feed(handler: PacketHandler, frames: Array<{ data: Buffer; tsUs: number }>): void {
  for (const f of frames) handler(1, f.data, 0, f.data.length, f.data.length, f.tsUs, 0);
}

test('WorkerPool broadcasts identity: a DHCP lease seen by one worker names the device in another worker\'s capture', async () => {
  // zeek-dhcp: client 90:b1:1c:99:49:29 named btest.is.cool gets 128.2.6.189 (test/fixtures/identity/README.md row 38).
  const dhcp = fixture('identity', 'zeek-dhcp.pcap');
  let lastUs = 0;
  let dhcpHash = 0;
  const hasher = new FlowHasher();
  readCaptureFile(dhcp, (lt, buf, off, len, _o, ts) => {
    lastUs = Math.max(lastUs, ts);
    dhcpHash = hasher.hash(lt, buf, off, len);
  });
  // An HTTP connection of that address whose flow lands on the other worker of two.
  let server = 1;
  for (;; server++) {
    const f = httpConnection('128.2.6.189', `192.0.2.${server}`, 40000, 0, [])[0].data;
    if (workerForHash(hasher.hash(1, f, 0, f.length), 2) !== workerForHash(dhcpHash, 2)) break;
  }
  const http = join(dir, 'http-after-dhcp.pcap');
  writeFileSync(http, writePcap(httpConnection('128.2.6.189', `192.0.2.${server}`, 40000, lastUs + 5_000_000, [['/page', 'a pineapple page']])));
  const o: WorkerSensorOptions = { dictionary: dictionary('fruit.csv', ['pineapple']) };
  const want = single([dhcp, http], o);
  assert.equal(want.captures.size, 1);
  assert.equal([...want.captures.values()][0].device.hostname, 'btest.is.cool', 'the single-thread sensor names the device');

  const seen: IdentityObservation[] = [];
  const { pool, caps } = await startPool(2, o, { identity: { observe: (obs) => seen.push(obs) } });
  try {
    readCaptureFile(dhcp, pool.packet);
    // The lease is broadcast before the web traffic arrives (as on a live network, where seconds pass).
    await pool.drain();
    readCaptureFile(http, pool.packet);
    await pool.finish();
  } finally {
    await pool.close();
  }
  assert.ok(seen.some((s) => s.hostname === 'btest.is.cool'), 'the main thread heard the observation');
  const got = latest(caps);
  assert.deepEqual([...got.values()], [...want.captures.values()]);
});

test('WorkerPool.reconfigure mid-run: the next message uses the new dictionary, the flow goes on; a bad file changes nothing', async () => {
  const a = dictionary('a.csv', ['pineapple']);
  const b = dictionary('b.csv', ['mango']);
  const frames = httpConnection('10.1.1.5', '192.0.2.80', 40000, 1_700_000_000_000_000, [['/1', 'pineapple one'], ['/2', 'mango and pineapple'], ['/3', 'mango again']]);
  // Split after the first exchange (3 handshake + 2) and after the second.
  const { pool, caps, counters } = await startPool(2, { dictionary: a });
  try {
    feed(pool.packet, frames.slice(0, 5));
    await pool.drain();
    await pool.reconfigure({ dictionary: b, engine: 'js' });
    feed(pool.packet, frames.slice(5, 7));
    await pool.drain();
    await assert.rejects(pool.reconfigure({ dictionary: join(dir, 'missing.csv') }), (err: unknown) => err instanceof WorkerPoolError && err.code === 'E_DICTIONARY_READ');
    feed(pool.packet, frames.slice(7));
    await pool.finish();
  } finally {
    await pool.close();
  }
  const got = [...latest(caps).values()].map((c) => `${c.url} ${c.phrase}`).sort();
  assert.deepEqual(got, ['/1 pineapple', '/2 mango', '/3 mango']);
  assert.equal(new Set(caps.map((c) => c.flow_id)).size, 1, 'one flow throughout');
  assert.equal(counters.get('sensor.reconfigured'), 2, 'each of the 2 workers swapped once');
});

test('WorkerPool workers bypass TLS they cannot decrypt as one thread does, and reassemble it all with bypass off', async () => {
  const files = [fixture('tls', 'zeek-tls12-decryption.pcap'), fixture('tls', 'arkime-tls-split-client-hello.pcap')];
  for (const bypass of [true, false]) {
    const one = single(files, { bypass });
    const two = await pooled(2, files, { bypass });
    assertSame(one, two, `bypass ${bypass}`);
    for (const name of ['flow.bypassed', 'flow.bypassed_bytes']) assert.equal(two.counters.get(name), one.counters.get(name), `bypass ${bypass}: ${name}`);
    if (bypass) assert.ok(two.counters.get('flow.bypassed') > 0, 'connections bypassed');
    else assert.equal(two.counters.get('flow.bypassed'), 0, 'none bypassed');
  }
});

test('WorkerPool capture thread drops the frames of connections its workers bypassed, and nothing else changes', async () => {
  const files = [fixture('tls', 'zeek-tls12-decryption.pcap'), fixture('tls', 'arkime-tls13.pcap'), fixture('tls', 'zeek-tls13-ech.pcap')];
  const one = single(files, {});
  const { pool, caps, events, counters } = await startPool(2, {});
  try {
    for (const f of files) {
      const frames: Array<[number, Uint8Array, number, number, number]> = [];
      readCaptureFile(f, (linkType, buf, off, capLen, origLen, tsUs) => void frames.push([linkType, buf.slice(off, off + capLen), origLen, tsUs, 0]));
      // each frame taken by the workers before the next: the connections they bypass are in the
      // capture thread's tables by the time their next frames come
      for (const [linkType, b, origLen, tsUs] of frames) {
        pool.packet(linkType, b, 0, b.length, origLen, tsUs, 0);
        await pool.drain();
      }
      await pool.finish();
    }
  } finally {
    await pool.close();
  }
  const two = { captures: latest(caps), events: events.sort(), counters };
  assertSame(one, two, 'capture bypass');
  assert.ok(counters.get('workers.bypass_dropped') > 50, `frames dropped before the hand-off: ${counters.get('workers.bypass_dropped')}`);
  assert.equal(counters.get('workers.bypass_installed'), one.counters.get('flow.bypassed'), 'every bypassed connection installed');
  for (const name of ['flow.bypassed', 'flow.bypassed_bytes']) assert.equal(counters.get(name), one.counters.get(name), name);
});

test('WorkerPool forgets the bypassed connections of a worker that died: their frames reach its successor', async () => {
  const file = fixture('tls', 'zeek-tls12-decryption.pcap');
  const frames: Array<[number, Uint8Array, number, number]> = [];
  readCaptureFile(file, (linkType, buf, off, capLen, origLen, tsUs) => void frames.push([linkType, buf.slice(off, off + capLen), origLen, tsUs]));
  const { pool, counters } = await startPool(1, {});
  try {
    let i = 0;
    for (; i < frames.length && counters.get('workers.bypass_dropped') === 0; i++) {
      const [linkType, b, origLen, tsUs] = frames[i];
      pool.packet(linkType, b, 0, b.length, origLen, tsUs, 0);
      await pool.drain();
    }
    assert.ok(counters.get('workers.bypass_dropped') > 0 && i < frames.length - 2, `dropped before the hand-off by frame ${i} of ${frames.length}`);
    const dropped = counters.get('workers.bypass_dropped');
    await pool.terminateWorker(0);
    for (let k = 0; k < 200 && counters.get('workers.restarts') === 0; k++) await new Promise((r) => setTimeout(r, 25));
    await pool.ready;
    for (let k = 0; k < 200 && pool.workerThreadIds()[0] === undefined; k++) await new Promise((r) => setTimeout(r, 25));
    const decodedBefore = counters.get('decoder.pkts');
    for (; i < frames.length; i++) {
      const [linkType, b, origLen, tsUs] = frames[i];
      pool.packet(linkType, b, 0, b.length, origLen, tsUs, 0);
    }
    await pool.finish();
    assert.equal(counters.get('workers.bypass_dropped'), dropped, 'nothing dropped for the dead worker');
    assert.ok(counters.get('decoder.pkts') > decodedBefore, 'the rest reached the new worker');
  } finally {
    await pool.close();
  }
});

test('WorkerPool.finish ends open flows and flushes merge windows: final counts equal the single-thread sensor', async () => {
  // Never closed (no FIN), the same phrase twice in one page view window: one capture, count 2, re-emitted at the end.
  const frames = httpConnection('10.1.1.6', '192.0.2.81', 41000, 1_700_000_000_000_000, [['/x', 'pineapple'], ['/x', 'pineapple']]).slice(0, -3);
  const o: WorkerSensorOptions = { dictionary: dictionary('p.csv', ['pineapple']) };
  const file = join(dir, 'open.pcap');
  writeFileSync(file, writePcap(frames));
  const want = single([file], o);
  assert.equal([...want.captures.values()][0].count, 2);
  const { pool, caps } = await startPool(3, o);
  try {
    readCaptureFile(file, pool.packet);
    await pool.drain();
    assert.equal(pool.flowsActive(), 1, 'the flow is open before finish');
    await pool.finish();
    assert.equal(pool.flowsActive(), 0);
  } finally {
    await pool.close();
  }
  assert.deepEqual([...latest(caps).values()], [...want.captures.values()]);
});

test('WorkerPool restarts a worker that died: counted, its flows counted lost, packets flow again', async () => {
  const o: WorkerSensorOptions = { dictionary: dictionary('c.csv', ['pineapple']) };
  const lines: string[] = [];
  const { pool, caps, counters } = await startPool(2, o, { log: (l) => lines.push(l) });
  try {
    // An open flow on each worker, then worker 0 dies.
    for (let i = 0; i < 10; i++) feed(pool.packet, httpConnection('10.1.1.7', `192.0.2.${100 + i}`, 42000 + i, 1_700_000_000_000_000, []).slice(0, 3));
    await pool.drain();
    const before = pool.flowsPerWorker();
    assert.ok(before[0] > 0 && before[1] > 0, `flows on both workers: ${before}`);
    // each worker reported its kernel thread id: a thread of this process, not the main one
    const tids = pool.workerThreadIds();
    assert.equal(new Set(tids).size, 2, `two distinct ids: ${tids}`);
    for (const tid of tids) assert.ok(tid !== undefined && tid !== process.pid && existsSync(`/proc/${process.pid}/task/${tid}`), `thread ${tid}`);
    await pool.terminateWorker(0);
    for (let i = 0; i < 200 && counters.get('workers.restarts') === 0; i++) await new Promise((r) => setTimeout(r, 25));
    for (let i = 0; i < 200 && pool.workerThreadIds()[0] === undefined; i++) await new Promise((r) => setTimeout(r, 25));
    const after = pool.workerThreadIds();
    assert.ok(after[0] !== undefined && after[0] !== tids[0] && after[1] === tids[1], `the restarted worker is a new thread: ${tids} -> ${after}`);
    assert.equal(counters.get('workers.crashes'), 1);
    assert.equal(counters.get('workers.restarts'), 1);
    assert.equal(counters.get('workers.flows_lost'), before[0]);
    assert.match(lines.join('\n'), /worker 0 exited/);
    for (let i = 0; i < 10; i++) feed(pool.packet, httpConnection('10.1.1.7', `192.0.2.${100 + i}`, 43000 + i, 1_700_000_100_000_000, [[`/y${i}`, 'pineapple']]));
    await pool.finish();
  } finally {
    await pool.close();
  }
  assert.equal(latest(caps).size, 10, 'both workers capture again');
  assert.equal(counters.get('flow.active'), 0, 'the dead worker\'s flows left the gauge');
});

test('WorkerPool.start rejects with the Sensor\'s error code when a worker cannot load its configuration', async () => {
  await assert.rejects(
    WorkerPool.start({ workers: 2, sensorOptions: { dictionary: join(dir, 'absent.csv'), engine: 'js' }, onCapture: () => undefined, tickMs: 0 }),
    (err: unknown) => err instanceof WorkerPoolError && err.code === 'E_DICTIONARY_READ' && /absent\.csv/.test(err.message),
  );
});

test('WorkerPool.handoffDrops: frames a full ring cannot take are counted per capture interface, beside workers.ring_full', async () => {
  const o: WorkerSensorOptions = { dictionary: dictionary('h.csv', ['pineapple']) };
  // A 16 KiB ring (frames up to ~4 KiB) and a synchronous burst of 2,000 full-size frames from two
  // interfaces: the worker cannot drain it while this thread writes, and live capture never waits.
  // One jumbo frame (9,000 bytes) is too large for the ring's slots: lost too, and counted.
  const { pool, counters } = await startPool(1, o, { ringBytes: 16384, whenFull: 'drop' });
  const jumbo = Buffer.alloc(9000);
  const frame = ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.TCP, src: '10.1.1.8', dst: '192.0.2.90' }, tcp({ sport: 44000, dport: 80, seq: 1, ack: 1, flags: TCP_FLAGS.ACK }, Buffer.alloc(1400, 0x61))));
  try {
    assert.equal(pool.handoffDrops(0), 0);
    for (let i = 0; i < 2000; i++) pool.packet(1, frame, 0, frame.length, frame.length, 1_700_000_000_000_000 + i, i % 2);
    pool.packet(1, jumbo, 0, jumbo.length, jumbo.length, 1_700_000_000_002_000, 1);
    await pool.drain();
  } finally {
    await pool.close();
  }
  const d0 = pool.handoffDrops(0);
  const d1 = pool.handoffDrops(1);
  assert.ok(d0 > 0 && d1 > 0, `both interfaces lost frames at the hand-off: ${d0}, ${d1}`);
  assert.equal(counters.get('workers.frame_too_large'), 1);
  assert.equal(d0 + d1, counters.get('workers.ring_full') + 1);
  assert.equal(pool.handoffDrops(5), 0, 'an interface that lost nothing');
  assert.ok(counters.get('decoder.pkts') + d0 + d1 === 2001, `every frame was either inspected or counted lost: ${counters.get('decoder.pkts')} + ${d0 + d1}`);
});

test('WorkerPool.handoffBacklog: bytes written and not yet taken by the workers, back to 0 once they catch up', async () => {
  const o: WorkerSensorOptions = { dictionary: dictionary('b.csv', ['pineapple']) };
  const { pool } = await startPool(2, o, { ringBytes: 1 << 20, whenFull: 'drop' });
  const frame = ethernet({ type: ETHERTYPE.IPV4 }, ipv4({ proto: IPPROTO.TCP, src: '10.1.1.9', dst: '192.0.2.91' }, tcp({ sport: 44001, dport: 80, seq: 1, ack: 1, flags: TCP_FLAGS.ACK }, Buffer.alloc(1000, 0x62))));
  try {
    assert.deepEqual(pool.handoffBacklog(), { bytes: 0, capacity: 2 << 20 });
    // a synchronous burst: the workers cannot take any of it before this thread yields
    for (let i = 0; i < 100; i++) pool.packet(1, frame, 0, frame.length, frame.length, 1_700_000_000_000_000 + i, 0);
    const during = pool.handoffBacklog().bytes;
    assert.ok(during >= 100 * frame.length && during <= 100 * (frame.length + 64), `backlog ${during} B for 100 frames of ${frame.length} B`);
    await pool.drain();
    assert.equal(pool.handoffBacklog().bytes, 0);
  } finally {
    await pool.close();
  }
});

test('WorkerPool.workerMemory: every worker reports its own V8 heap through shared memory, a restarted one too', async () => {
  const GIB = 1 << 30;
  const o: WorkerSensorOptions = { dictionary: dictionary('m.csv', ['AK47', 'script', 'alert']) };
  const { pool } = await startPool(2, o, { log: () => undefined });
  const plausible = (what: string): void => {
    const heaps = pool.workerMemory();
    assert.equal(heaps.length, 2);
    heaps.forEach((h, k) => {
      const { heap_used_bytes: used, heap_committed_bytes: committed, young_generation_bytes: young, external_bytes: external } = h;
      assert.ok(used !== undefined && committed !== undefined && young !== undefined && external !== undefined, `${what}: worker ${k} reported every figure: ${JSON.stringify(h)}`);
      assert.ok(used > 0 && used <= committed && committed < GIB, `${what}: worker ${k} heap used ${used} <= committed ${committed} < 1 GiB`);
      assert.ok(young <= committed && external >= 0 && external < GIB, `${what}: worker ${k} young ${young}, external ${external}`);
    });
  };
  try {
    plausible('ready');
    readCaptureFile(fixture('tcp', 'ndpi-WebattackXSS.pcap'), pool.packet);
    await pool.drain();
    // rewritten every second: the figures of a worker that has done the work
    await new Promise((r) => setTimeout(r, 1100));
    plausible('after a capture file');
    const rings = pool.sharedMemory();
    assert.ok(rings.handoff_rings! >= 2 * (32 << 20) && rings.handoff_rings! < 2 * (33 << 20), `two 32 MiB rings: ${rings.handoff_rings}`);
    assert.ok(rings.bypass_tables! > 0, 'bypass is on by default: its tables are shared memory');
    const tid = pool.workerThreadIds()[1];
    await pool.terminateWorker(1);
    assert.deepEqual(pool.workerMemory()[1], {}, 'a worker that ended reports nothing');
    assert.ok(await restarted(pool, 1, tid), 'worker 1 was restarted');
    plausible('restarted');
  } finally {
    await pool.close();
  }
});

test('WorkerPool starts every worker\'s young generation at its full size, a restarted one too', async () => {
  // node --test runs without --min-semi-space-size: V8 alone would start each worker's young
  // generation at 1 MiB and grow it scavenge by scavenge. At its full size a 64 MiB semi-space is
  // committed before the first allocation.
  const FULL = 64 << 20;
  const o: WorkerSensorOptions = { dictionary: dictionary('y.csv', ['AK47']) };
  const { pool } = await startPool(2, o, { log: () => undefined });
  const assertFull = (what: string): void => {
    pool.workerMemory().forEach((h, k) => {
      assert.ok(h.young_generation_size_bytes !== undefined && h.young_generation_size_bytes >= FULL, `${what}: worker ${k} young generation ${h.young_generation_size_bytes} bytes, full size ${FULL}`);
    });
  };
  try {
    assertFull('ready');
    const tid = pool.workerThreadIds()[0];
    await pool.terminateWorker(0);
    assert.ok(await restarted(pool, 0, tid), 'worker 0 was restarted');
    assertFull('restarted');
  } finally {
    await pool.close();
  }
});

test('shareFlowLimits divides the sensor\'s flow memcap and flow count among the workers, defaults included', () => {
  assert.deepEqual(shareFlowLimits({ memcapBytes: 64 << 20, maxFlows: 1000 }, 2), { memcapBytes: 32 << 20, maxFlows: 500 });
  assert.deepEqual(shareFlowLimits(undefined, 4), { memcapBytes: DEFAULT_FLOW_LIMITS.memcapBytes / 4, maxFlows: DEFAULT_FLOW_LIMITS.maxFlows / 4 });
  assert.deepEqual(shareFlowLimits({ maxFlows: 7 }, 3), { memcapBytes: Math.floor(DEFAULT_FLOW_LIMITS.memcapBytes / 3), maxFlows: 2 });
  assert.deepEqual(shareFlowLimits({ maxFlows: 1, memcapBytes: 1 }, 8), { memcapBytes: 1, maxFlows: 1 }, 'never below one');
});
