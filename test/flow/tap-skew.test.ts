/**
 * A TAP delivers each direction on its own port; one port's packets can be handled before the
 * other's. Each direction keeps its own order, but the server's whole answer (SYN-ACK, the page,
 * its FIN) may come before the client's SYN. It is still one conversation: one flow, and the page's
 * capture names the URL the request asked for.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { Sensor } from '../../sensor/main.js';
import { httpTrafficPackets } from '../helpers/http-traffic.js';
import { writePcap, withTempFile } from '../helpers/pcap-writer.js';

function run(order: number[]): { caps: CaptureEvent[]; flows: number } {
  const p = httpTrafficPackets({ conversations: 1, echo: true });
  const pcap = writePcap(order.map((i, k) => ({ data: p[i].data, tsUs: 1_700_000_000_000_000 + k * 100 })));
  const caps: CaptureEvent[] = [];
  const sensor = new Sensor({ engine: 'js', onCapture: (c) => caps.push(c) });
  withTempFile(pcap, (file) => sensor.pipeline.runFile(file));
  sensor.finish();
  return { caps, flows: sensor.counters.get('flow.tcp') };
}

const describe = (caps: CaptureEvent[]): string[] => caps.map((c) => `${c.source} ${c.url}`).sort();

test('FlowTable keeps one flow when the server side (SYN-ACK, page, FIN) arrives before the client SYN', () => {
  // packets: 0 SYN, 1 SYN-ACK, 2 ACK, 3 request, 4 response, 5 client FIN, 6 server FIN, 7 ACK
  const inOrder = run([0, 1, 2, 3, 4, 5, 6, 7]);
  const skewed = run([1, 4, 6, 0, 2, 3, 5, 7]);
  assert.equal(skewed.flows, 1, 'one conversation, one flow');
  assert.deepEqual(describe(skewed.caps), describe(inOrder.caps));
  assert.deepEqual(describe(skewed.caps), ['typed /search?q=buy+ak47+number+0', 'viewed /search?q=buy+ak47+number+0']);
});

test('HttpInspector gives a page that ended before its request the URL of that request', () => {
  // the response (4) before the request (3), after the handshake
  const skewed = run([0, 1, 2, 4, 3, 5, 6, 7]);
  assert.deepEqual(describe(skewed.caps), ['typed /search?q=buy+ak47+number+0', 'viewed /search?q=buy+ak47+number+0']);
});
