/**
 * Test helper: synthetic capture events for the store and upload tests. `makeCapture(n)` is
 * deterministic (id from n, time 1.7e15 us + n), valid against the capture schema; overrides
 * change severity, category, time or size. Not a test file: it declares no tests.
 */
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { isoMicros, stableId } from '../../sensor/events/capture.js';

export const BASE_TS_US = 1_700_000_000_000_000;

export interface CaptureOverrides {
  severity?: number;
  category?: string;
  tsUs?: number;
  count?: number;
  /** Pad the context to about this many bytes (quota tests). */
  contextBytes?: number;
  tag?: string;
}

export function makeCapture(n: number, o: CaptureOverrides = {}): CaptureEvent {
  const ts = o.tsUs ?? BASE_TS_US + n;
  const context = o.contextBytes !== undefined ? `[[ak47]] ${'x'.repeat(Math.max(0, o.contextBytes - 9))}`.slice(0, Math.max(9, o.contextBytes)) : '[[ak47]]';
  return {
    event_type: 'capture',
    id: stableId(ts, o.tag ?? 'test', n),
    timestamp: isoMicros(ts),
    ts_us: ts,
    flow_id: 42,
    src_ip: '10.0.0.2',
    src_port: 50000,
    dest_ip: '192.0.2.1',
    dest_port: 80,
    vlan: [6],
    proto: 'TCP',
    app_proto: 'http',
    direction: 'to_server',
    source: 'typed',
    field: 'search',
    host: 'example.test',
    url: '/?q=ak47',
    method: 'GET',
    phrase: 'AK47',
    category: o.category ?? 'weapons',
    severity: o.severity ?? 4,
    count: o.count ?? 1,
    context,
    device: { ip: '10.0.0.2', mac: '00:11:22:33:44:55' },
  };
}
