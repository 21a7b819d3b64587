/**
 * TLS connections picked up midstream (a sensor started on a busy link, or a capture that lost the
 * connections' first packets): real captures with the first frames of every TCP connection taken
 * out. Their record headers are found (TlsStartTracker), so such a connection is named TLS, told
 * as not decrypted for want of its ClientHello, and bypassed after a few records, instead of being
 * searched for an HTTP start line for RESYNC_MAX_BYTES and counted as unknown.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readCaptureFile } from '../../../sensor/capture/file-reader.js';
import type { TlsEvent } from '../../../sensor/events/tls.js';
import { Sensor } from '../../../sensor/main.js';
import { FlowHasher } from '../../../sensor/workers/dispatch.js';
import { writePcap, withTempFile, type PcapPacket } from '../../helpers/pcap-writer.js';
import { fixture } from '../../helpers/replay.js';
import { assertTlsEvent } from '../../helpers/schema.js';

/** `file` without the first `n` frames of each TCP connection (both directions counted together). */
function withoutFirstFrames(file: string, n: number): Buffer {
  const hasher = new FlowHasher('flows');
  const seen = new Map<string, number>();
  const kept: PcapPacket[] = [];
  readCaptureFile(file, (linkType, buf, off, capLen, origLen, tsUs) => {
    const frame = buf.slice(off, off + capLen);
    hasher.hash(linkType, frame, 0, capLen);
    if (hasher.bypassKey(frame)) {
      const key = `${hasher.key1}:${hasher.key2}`;
      const k = seen.get(key) ?? 0;
      seen.set(key, k + 1);
      if (k < n) return;
    }
    kept.push({ data: frame, tsUs, origLen });
  });
  return writePcap(kept);
}

interface Scan {
  counters: Sensor['counters'];
  events: TlsEvent[];
}

function scan(pcap: Buffer): Scan {
  const events: TlsEvent[] = [];
  const sensor = new Sensor({ onCapture: () => undefined, onEvent: (e) => void (e.event_type === 'tls' && e.proto === 'TCP' && events.push(e as TlsEvent)) });
  withTempFile(pcap, (file) => sensor.pipeline.runFile(file));
  sensor.collector.flush();
  return { counters: sensor.counters, events };
}

test('TLS connections picked up midstream are named TLS from their record headers and bypassed, not searched as unknown', () => {
  for (const [name, frames] of [['ndpi-http_ipv6.pcap', 8], ['zeek-tls12-decryption.pcap', 8], ['zeek-tls13-ech.pcap', 8]] as const) {
    const { counters: c, events } = scan(withoutFirstFrames(fixture('tls', name), frames));
    const midstream = c.get('tcp.midstream_pickup');
    assert.ok(midstream > 0, `${name}: connections picked up midstream`);
    assert.ok(c.get('app_layer.resynced') > 0, `${name}: resynced`);
    assert.equal(c.get('app_layer.flow.tls'), c.get('app_layer.resynced'), `${name}: every resynced connection is TLS`);
    assert.equal(c.get('app_layer.flow.http'), 0);
    for (const e of events) {
      assertTlsEvent(e);
      assert.equal(e.tls.not_decrypted_reason, 'missing_client_hello');
    }
    assert.equal(events.length, c.get('app_layer.flow.tls'), `${name}: one tls event per connection`);
    assert.ok(c.get('flow.bypassed') > 0, `${name}: bypassed once named`);
  }
  // A connection seen from its SYN is TLS from its handshake, nothing resynced; the IPv6 capture as
  // it is starts inside seven connections, six of them at a handshake record and one inside its
  // records (unknown before the tracker): now every one is named.
  const fromSyn = scan(withoutFirstFrames(fixture('tls', 'zeek-tls12-decryption.pcap'), 0)).counters;
  assert.equal(fromSyn.get('tcp.midstream_pickup'), 0);
  assert.equal(fromSyn.get('app_layer.resynced'), 0);
  assert.equal(fromSyn.get('app_layer.flow.tls'), 1);
  const asCaptured = scan(withoutFirstFrames(fixture('tls', 'ndpi-http_ipv6.pcap'), 0)).counters;
  assert.equal(asCaptured.get('tcp.midstream_pickup'), 7);
  assert.equal(asCaptured.get('app_layer.flow.tls'), 7);
  assert.equal(asCaptured.get('app_layer.resynced'), 1);
  assert.equal(asCaptured.get('app_layer.unknown'), 0);
});
