/**
 * The /metrics endpoint scraped over loopback and parsed strictly as Prometheus text format 0.0.4
 * (HELP/TYPE before samples, name and label grammar, label escaping, float values): every value
 * must equal the snapshot's. Also: loopback-only addresses, clear errors for bad or busy ones.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { counterId } from '../../sensor/events/counters.js';
import type { HealthEvent } from '../../sensor/events/health.js';
import { ALWAYS_EXPORTED_COUNTERS, metricNamePart, parseMetricsListen, startMetricsServer, MetricsListenError } from '../../sensor/health/metrics.js';
// the stages that define the counters issue 5 names (registered at load)
import '../../sensor/decode/duplicates.js';
import '../../sensor/decode/ip-fragments.js';
import '../../sensor/flow/flow-table.js';
import '../../sensor/flow/tcp-reassembly.js';
import type { SensorSnapshot } from '../../sensor/health/snapshot.js';

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Family { help: string; type: string; samples: Sample[] }

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: string): number {
  // Prometheus reads values with Go's strconv.ParseFloat, which takes NaN and Inf in any case;
  // prom-client writes "Nan" (event loop lag before the first sample).
  if (/^\+?inf(inity)?$/i.test(text)) return Infinity;
  if (/^-inf(inity)?$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  assert.match(text, /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `value "${text}" in: ${line}`);
  return Number(text);
}

/** Label set `{a="x",b="y\"z"}` from position `i` of `line`; returns labels and the index after `}`. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  if (line[i] === '}') return { labels, end: i + 1 };
  for (;;) {
    const eq = line.indexOf('=', i);
    assert.ok(eq > i, `label name in: ${line}`);
    const name = line.slice(i, eq);
    assert.match(name, LABEL_NAME, `label name "${name}" in: ${line}`);
    assert.ok(!(name in labels), `duplicate label ${name} in: ${line}`);
    assert.equal(line[eq + 1], '"', `label value must be quoted in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = line[j];
      assert.ok(c !== undefined, `unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const n = line[j + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else assert.fail(`bad escape \\${n} in: ${line}`);
        j += 2;
        continue;
      }
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') {
      i++;
      if (line[i] === '}') return { labels, end: i + 1 };
      continue;
    }
    assert.equal(line[i], '}', `expected , or } in: ${line}`);
    return { labels, end: i + 1 };
  }
}

function unescapeHelp(text: string, line: string): string {
  return text.replace(/\\(.?)/g, (_m, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    assert.fail(`bad escape in HELP: ${line}`);
  });
}

/** Strict parser for the Prometheus text exposition format 0.0.4. */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const families = new Map<string, Family>();
  const series = new Set<string>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (m === null) continue; // a plain comment
      const [, kind, name, rest] = m;
      assert.match(name, METRIC_NAME, `metric name in: ${line}`);
      let f = families.get(name);
      if (f === undefined) {
        assert.ok(current !== name, line);
        f = { help: '', type: '', samples: [] };
        families.set(name, f);
      } else {
        assert.equal(f.samples.length, 0, `${kind} after samples of ${name}`);
      }
      if (kind === 'HELP') {
        assert.equal(f.help, '', `second HELP for ${name}`);
        f.help = unescapeHelp(rest, line);
      } else {
        assert.equal(f.type, '', `second TYPE for ${name}`);
        assert.ok(TYPES.has(rest), `type "${rest}" in: ${line}`);
        f.type = rest;
      }
      current = name;
      continue;
    }
    const nameEnd = line.search(/[{ ]/);
    assert.ok(nameEnd > 0, `sample line: ${line}`);
    const name = line.slice(0, nameEnd);
    assert.match(name, METRIC_NAME, `metric name in: ${line}`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i));
    assert.equal(line[i], ' ', `space before value in: ${line}`);
    const parts = line.slice(i + 1).split(' ');
    assert.ok(parts.length === 1 || (parts.length === 2 && /^-?\d+$/.test(parts[1])), `value [timestamp] in: ${line}`);
    const value = parseValue(parts[0], line);
    const base = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    const f = families.get(base);
    assert.ok(f !== undefined && base === current, `sample ${name} outside its family (after ${current})`);
    assert.ok(f.type !== '', `sample ${name} before its TYPE`);
    if (base !== name) assert.ok(f.type === 'histogram' || f.type === 'summary', `suffix on a ${f.type}: ${line}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!series.has(key), `duplicate series: ${line}`);
    series.add(key);
    f.samples.push({ name, labels, value });
  }
  return families;
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.get(name);
  const s = f?.samples.find((x) => x.name === name && JSON.stringify(Object.entries(x.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  return s?.value;
}

function health(name: string, iface?: string): HealthEvent {
  return { event_type: 'health', timestamp: '2024-05-01T10:00:00.000Z', name, severity: 'warning', state: 'raised', message: 'x', ...(iface ? { detail: { interface: iface } } : {}) };
}

const WEIRD_CODE = 'weird"code\\with\nnewline';

function snapshot(): SensorSnapshot {
  return {
    pid: 4242,
    version: '9.8.7',
    started_at: '2024-05-01T09:00:00.000Z',
    updated_at: '2024-05-01T10:00:00.000Z',
    interfaces: [
      { name: 'eth1', packets: 123456, bytes: 98765432, kernel_drops: 17, interface_drops: 4, handoff_drops: 9, last_packet_at: '2024-05-01T09:59:58.500Z', pps: 10, bps: 800 },
      { name: 'eth2', packets: 0, bytes: 0, pps: 0, bps: 0 },
    ],
    handoff_backlog: { bytes: 5_000_000, capacity: 67_108_864 },
    threads: {
      process: { cpu_seconds: 90.5, cpu_pct: 180 }, capture: { cpu_seconds: 12.25, cpu_pct: 25 },
      workers: [{ cpu_seconds: 33, cpu_pct: 66, tid: 101 }, { cpu_seconds: 32, cpu_pct: 64, tid: 102 }], other: { cpu_seconds: 13.25, cpu_pct: 25 },
    },
    memory: {
      rss_bytes: 1_200_000_000, peak_rss_bytes: 1_400_000_000,
      capture: { heap_used_bytes: 40_000_000, heap_committed_bytes: 150_000_000, young_generation_bytes: 134_217_728, external_bytes: 6_000_000 },
      workers: [{ heap_used_bytes: 61_000_000, heap_committed_bytes: 171_000_000, young_generation_bytes: 134_217_728, external_bytes: 5_000_000 }, { heap_used_bytes: 59_000_000 }],
      shared: { capture_rings: 67_108_864, handoff_rings: 67_109_120 },
      other_bytes: 500_000_000,
    },
    counters: { 'tcp.reassembly_gap': 7, 'capture.emitted': 3, 'flow.active': 12, 'defrag.in_progress': 2, 'http.requests': 1e6 },
    flows_active: 12,
    captures: 3,
    anomalies: { 'decoder.ipv4.hlen_too_small': 5, [WEIRD_CODE]: 1 },
    upload: { queue: 9, last_success_at: '2024-05-01T09:58:00.000Z', home: 'https://home.example' },
    config: { source: 'home', version: '7', age_s: 42 },
    health: [health('capture.no_packets', 'eth2'), health('capture.no_packets', 'eth3'), health('store.full')],
  };
}

async function scrape(address: string, path = '/metrics', init?: RequestInit): Promise<Response> {
  return fetch(`http://${address}${path}`, init);
}

describe('startMetricsServer', () => {
  test('startMetricsServer serves every snapshot value in strict Prometheus text format', async () => {
    const snap = snapshot();
    const server = await startMetricsServer({ listen: '127.0.0.1:0', snapshot: () => snap });
    try {
      assert.match(server.address, /^127\.0\.0\.1:\d+$/);
      assert.notEqual(server.address, '127.0.0.1:0');
      const res = await scrape(server.address);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const m = parseExposition(await res.text());

      assert.equal(m.get('hark_interface_packets_total')?.type, 'counter');
      assert.equal(value(m, 'hark_interface_packets_total', { interface: 'eth1' }), 123456);
      assert.equal(value(m, 'hark_interface_packets_total', { interface: 'eth2' }), 0);
      assert.equal(value(m, 'hark_interface_bytes_total', { interface: 'eth1' }), 98765432);
      assert.equal(value(m, 'hark_interface_kernel_drops_total', { interface: 'eth1' }), 17);
      assert.equal(value(m, 'hark_interface_kernel_drops_total', { interface: 'eth2' }), undefined, 'unknown drops are absent, not 0');
      assert.equal(value(m, 'hark_interface_interface_drops_total', { interface: 'eth1' }), 4);
      assert.equal(value(m, 'hark_interface_handoff_drops_total', { interface: 'eth1' }), 9);
      assert.equal(value(m, 'hark_interface_handoff_drops_total', { interface: 'eth2' }), undefined, 'no workers: absent');
      assert.equal(value(m, 'hark_interface_last_packet_timestamp_seconds', { interface: 'eth1' }), Date.parse('2024-05-01T09:59:58.500Z') / 1000);
      assert.equal(m.get('hark_flows_active')?.type, 'gauge');
      assert.equal(value(m, 'hark_flows_active'), 12);
      assert.equal(m.get('hark_handoff_backlog_bytes')?.type, 'gauge');
      assert.equal(value(m, 'hark_handoff_backlog_bytes'), 5_000_000);
      assert.equal(m.get('hark_thread_cpu_seconds_total')?.type, 'counter');
      assert.equal(value(m, 'hark_thread_cpu_seconds_total', { thread: 'capture' }), 12.25);
      assert.equal(value(m, 'hark_thread_cpu_seconds_total', { thread: 'worker-1' }), 32);
      assert.equal(value(m, 'hark_thread_cpu_seconds_total', { thread: 'other' }), 13.25);
      for (const g of ['hark_thread_heap_used_bytes', 'hark_thread_heap_committed_bytes', 'hark_thread_young_generation_bytes', 'hark_thread_external_bytes', 'hark_shared_memory_bytes', 'hark_memory_other_bytes']) {
        assert.equal(m.get(g)?.type, 'gauge', g);
      }
      assert.equal(value(m, 'hark_thread_heap_used_bytes', { thread: 'capture' }), 40_000_000);
      assert.equal(value(m, 'hark_thread_heap_used_bytes', { thread: 'worker-1' }), 59_000_000);
      assert.equal(value(m, 'hark_thread_heap_committed_bytes', { thread: 'capture' }), 150_000_000);
      assert.equal(value(m, 'hark_thread_heap_committed_bytes', { thread: 'worker-0' }), 171_000_000);
      assert.equal(value(m, 'hark_thread_heap_committed_bytes', { thread: 'worker-1' }), undefined, 'a figure a worker has not reported is absent, not 0');
      assert.equal(value(m, 'hark_thread_young_generation_bytes', { thread: 'worker-0' }), 134_217_728);
      assert.equal(value(m, 'hark_thread_external_bytes', { thread: 'capture' }), 6_000_000);
      assert.equal(value(m, 'hark_shared_memory_bytes', { part: 'capture_rings' }), 67_108_864);
      assert.equal(value(m, 'hark_shared_memory_bytes', { part: 'handoff_rings' }), 67_109_120);
      assert.equal(value(m, 'hark_shared_memory_bytes', { part: 'bypass_tables' }), undefined);
      assert.equal(value(m, 'hark_memory_other_bytes'), 500_000_000);
      assert.equal(value(m, 'hark_captures_total'), 3);
      assert.equal(value(m, 'hark_upload_queue'), 9);
      assert.equal(value(m, 'hark_upload_last_success_timestamp_seconds'), Date.parse('2024-05-01T09:58:00.000Z') / 1000);
      assert.equal(value(m, 'hark_anomalies_total', { code: 'decoder.ipv4.hlen_too_small' }), 5);
      assert.equal(value(m, 'hark_anomalies_total', { code: WEIRD_CODE }), 1, 'label escaping round-trips');
      assert.equal(m.get('hark_tcp_reassembly_gap_total')?.type, 'counter');
      assert.equal(value(m, 'hark_tcp_reassembly_gap_total'), 7);
      assert.match(m.get('hark_tcp_reassembly_gap_total')?.help ?? '', /tcp\.reassembly_gap/);
      assert.equal(value(m, 'hark_capture_emitted_total'), 3);
      assert.equal(value(m, 'hark_http_requests_total'), 1e6);
      assert.equal(m.get('hark_defrag_in_progress')?.type, 'gauge');
      assert.equal(value(m, 'hark_defrag_in_progress'), 2);
      assert.equal(m.has('hark_flow_active_total'), false, 'a gauge kept in Counters is not a _total counter');
      assert.equal(value(m, 'hark_health_active', { name: 'capture.no_packets' }), 2);
      assert.equal(value(m, 'hark_health_active', { name: 'store.full' }), 1);
      assert.equal(value(m, 'hark_config_age_seconds'), 42);
      assert.equal(value(m, 'hark_config_info', { source: 'home', version: '7' }), 1);
      assert.equal(value(m, 'hark_info', { version: '9.8.7' }), 1);
      // prom-client's default process metrics
      assert.ok(m.has('process_cpu_user_seconds_total'));
      assert.ok(m.has('nodejs_heap_size_used_bytes'));
      for (const [name, f] of m) assert.ok(f.help !== '' && f.type !== '', `${name} has HELP and TYPE`);
    } finally {
      await server.close();
    }
  });

  test('startMetricsServer reflects each new snapshot and drops what disappeared', async () => {
    let snap = snapshot();
    const server = await startMetricsServer({ listen: '127.0.0.1:0', snapshot: () => snap, defaultMetrics: false });
    try {
      parseExposition(await (await scrape(server.address)).text());
      snap = { ...snapshot(), handoff_backlog: undefined, memory: undefined, interfaces: [{ name: 'eth1', packets: 200000, bytes: 1, pps: 0, bps: 0 }], counters: { 'tcp.reassembly_gap': 8, 'dns.queries': 2 }, anomalies: {}, health: [], upload: { queue: 0 }, config: { source: 'command line' } };
      const m = parseExposition(await (await scrape(server.address)).text());
      assert.equal(value(m, 'hark_interface_packets_total', { interface: 'eth1' }), 200000);
      assert.equal(value(m, 'hark_interface_packets_total', { interface: 'eth2' }), undefined);
      assert.equal(value(m, 'hark_tcp_reassembly_gap_total'), 8);
      assert.equal(value(m, 'hark_dns_queries_total'), 2);
      assert.equal(value(m, 'hark_http_requests_total'), 0, 'a counter seen before stays, at 0 when no longer reported');
      assert.equal(m.get('hark_anomalies_total')?.samples.length, 0);
      assert.equal(m.get('hark_health_active')?.samples.length, 0);
      assert.equal(m.has('hark_config_age_seconds'), false, 'unknown config age is absent');
      assert.equal(m.has('hark_upload_last_success_timestamp_seconds'), false);
      assert.equal(m.has('hark_handoff_backlog_bytes'), false, 'no worker threads: no backlog gauge');
      assert.equal(m.get('hark_thread_heap_committed_bytes')?.samples.length, 0, 'no memory section: no per-thread memory');
      assert.equal(m.get('hark_shared_memory_bytes')?.samples.length, 0);
      assert.equal(m.has('hark_memory_other_bytes'), false, 'unknown other memory is absent, not 0');
      assert.equal(m.has('process_cpu_user_seconds_total'), false);
    } finally {
      await server.close();
    }
  });

  test('startMetricsServer exports duplicates, reassembly gaps and memcap hits at 0 before their first event', async () => {
    // a series that does not exist yet never fires an alert: `rate(hark_tcp_reassembly_gap_total[5m]) > 0`
    let snap: SensorSnapshot = { ...snapshot(), counters: {} };
    const server = await startMetricsServer({ listen: '127.0.0.1:0', snapshot: () => snap, defaultMetrics: false });
    const issue5 = ['decoder.duplicates', 'tcp.reassembly_gap', 'tcp.reassembly_gap_bytes', 'flow.memcap_evicted', 'tcp.reassembly_memcap', 'defrag.memcap_evicted'];
    try {
      let m = parseExposition(await (await scrape(server.address)).text());
      for (const dotted of issue5) {
        const name = `hark_${metricNamePart(dotted)}_total`;
        assert.equal(m.get(name)?.type, 'counter', name);
        assert.equal(value(m, name), 0, name);
        assert.ok(m.get(name)!.help.includes(`"${dotted}"`), `${name}'s help names the counter`);
      }
      snap = { ...snapshot(), counters: { 'decoder.duplicates': 11, 'tcp.reassembly_gap_bytes': 4096, 'defrag.memcap_evicted': 2 } };
      m = parseExposition(await (await scrape(server.address)).text());
      assert.equal(value(m, 'hark_decoder_duplicates_total'), 11);
      assert.equal(value(m, 'hark_tcp_reassembly_gap_bytes_total'), 4096);
      assert.equal(value(m, 'hark_defrag_memcap_evicted_total'), 2);
      assert.equal(value(m, 'hark_flow_memcap_evicted_total'), 0);
    } finally {
      await server.close();
    }
    assert.deepEqual([...ALWAYS_EXPORTED_COUNTERS.keys()].sort(), [...issue5].sort());
    for (const dotted of issue5) assert.notEqual(counterId(dotted), undefined, `${dotted} is a counter a stage defines`);
  });

  test('startMetricsServer answers 404 off /metrics and 405 for other methods', async () => {
    const server = await startMetricsServer({ listen: '127.0.0.1:0', snapshot: snapshot, defaultMetrics: false });
    try {
      assert.equal((await scrape(server.address, '/')).status, 404);
      assert.equal((await scrape(server.address, '/metrics/x')).status, 404);
      assert.equal((await scrape(server.address, '/metrics?x=1')).status, 200);
      const post = await scrape(server.address, '/metrics', { method: 'POST', body: 'x' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET');
    } finally {
      await server.close();
    }
  });

  test('startMetricsServer answers 500 when the snapshot throws, and keeps serving', async () => {
    let fail = true;
    const server = await startMetricsServer({ listen: '127.0.0.1:0', snapshot: () => { if (fail) throw new Error('boom'); return snapshot(); }, defaultMetrics: false });
    try {
      const res = await scrape(server.address);
      assert.equal(res.status, 500);
      assert.match(await res.text(), /boom/);
      fail = false;
      assert.equal((await scrape(server.address)).status, 200);
    } finally {
      await server.close();
    }
  });

  test('startMetricsServer listens on IPv6 loopback', async () => {
    // Whether this host has ::1 at all, asked of a plain socket, not of the code under test.
    const probe = createServer();
    const hostHasIpv6 = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(0, '::1', () => probe.close(() => resolve(true)));
    });
    if (!hostHasIpv6) {
      // a host without IPv6 must say so clearly, not crash
      await assert.rejects(startMetricsServer({ listen: '[::1]:0', snapshot: snapshot, defaultMetrics: false }), (err: unknown) => err instanceof MetricsListenError && /^Cannot serve metrics on "\[::1\]:0": /.test(err.message));
      return;
    }
    const server = await startMetricsServer({ listen: '[::1]:0', snapshot: snapshot, defaultMetrics: false });
    try {
      assert.match(server.address, /^\[::1\]:\d+$/);
      assert.equal((await scrape(server.address)).status, 200);
    } finally {
      await server.close();
    }
  });

  test('startMetricsServer refuses a non-loopback address without allowRemote', async () => {
    for (const listen of ['0.0.0.0:9464', '192.168.1.10:9464', '[::]:9464', 'metrics.example:9464']) {
      await assert.rejects(startMetricsServer({ listen, snapshot }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_METRICS_LISTEN');
        assert.match(err.message, /not a loopback address/);
        assert.ok(err.message.includes(listen));
        return true;
      });
    }
  });

  test('startMetricsServer names a busy address', async () => {
    const first = await startMetricsServer({ listen: '127.0.0.1:0', snapshot, defaultMetrics: false });
    try {
      await assert.rejects(startMetricsServer({ listen: first.address, snapshot, defaultMetrics: false }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_METRICS_LISTEN');
        assert.ok(err.message.includes(first.address));
        assert.match(err.message, /already in use/);
        return true;
      });
    } finally {
      await first.close();
    }
  });
});

describe('parseMetricsListen', () => {
  test('parseMetricsListen accepts loopback forms and a bare port', () => {
    assert.deepEqual(parseMetricsListen('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464, loopback: true });
    assert.deepEqual(parseMetricsListen('127.1.2.3:1'), { host: '127.1.2.3', port: 1, loopback: true });
    assert.deepEqual(parseMetricsListen('[::1]:9464'), { host: '::1', port: 9464, loopback: true });
    assert.deepEqual(parseMetricsListen('localhost:80'), { host: 'localhost', port: 80, loopback: true });
    assert.deepEqual(parseMetricsListen('9464'), { host: '127.0.0.1', port: 9464, loopback: true });
  });

  test('parseMetricsListen accepts a remote address only with allowRemote', () => {
    assert.throws(() => parseMetricsListen('10.0.0.5:9464'), /not a loopback address/);
    assert.deepEqual(parseMetricsListen('10.0.0.5:9464', true), { host: '10.0.0.5', port: 9464, loopback: false });
    assert.deepEqual(parseMetricsListen('[::]:9464', true), { host: '::', port: 9464, loopback: false });
  });

  test('parseMetricsListen rejects malformed addresses with the text quoted', () => {
    for (const bad of ['', 'nope', '127.0.0.1', '127.0.0.1:', '127.0.0.1:99999', '127.0.0.1:-1', '[zz]:1', '::1:9464', '127.0.0.1:80 ', 'http://127.0.0.1:80']) {
      assert.throws(() => parseMetricsListen(bad), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_METRICS_LISTEN');
        assert.ok(err.message.includes(`"${bad}"`), err.message);
        assert.match(err.message, /not HOST:PORT/);
        return true;
      });
    }
  });
});

describe('metricNamePart', () => {
  test('metricNamePart turns a dotted counter name into metric-name characters', () => {
    assert.equal(metricNamePart('tcp.reassembly_gap'), 'tcp_reassembly_gap');
    assert.equal(metricNamePart('decoder.ipv6.ext-hdr'), 'decoder_ipv6_ext_hdr');
  });
});
