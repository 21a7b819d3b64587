/**
 * End-of-run counter summary printed on stderr by the file commands: packets, decoded, anomalies by
 * code, flows, gaps, memcap evictions, bypassed flows, internal errors caught (if any), and the read
 * problem if the file was truncated or corrupt.
 */
import type { ReadSummary } from '../capture/file-reader.js';
import type { Counters } from '../events/counters.js';

export function formatSummary(file: string, read: ReadSummary, counters: Counters, elapsedMs: number): string {
  const c = (n: string) => counters.get(n);
  const lines: string[] = [];
  const mbps = read.bytesRead / 1e6 / Math.max(elapsedMs / 1000, 1e-6);
  lines.push(`${file}: ${read.format}, ${read.packets} packets, ${read.bytesRead} bytes in ${(elapsedMs / 1000).toFixed(2)} s (${mbps.toFixed(0)} MB/s)`);
  lines.push(`  decoded: ipv4 ${c('decoder.ipv4')}, ipv6 ${c('decoder.ipv6')}, tcp ${c('decoder.tcp')}, udp ${c('decoder.udp')}, icmp ${c('decoder.icmpv4') + c('decoder.icmpv6')}, vlan ${c('decoder.vlan')}, mpls ${c('decoder.mpls')}, tunnels ${c('decoder.gre') + c('decoder.vxlan') + c('decoder.geneve') + c('decoder.ipip')}, fragments ${c('defrag.fragments')} (reassembled ${c('defrag.reassembled')})`);
  lines.push(`  mirror-port duplicates dropped: ${c('decoder.duplicates')}`);
  lines.push(`  flows: tcp ${c('flow.tcp')}, udp ${c('flow.udp')}, midstream ${c('tcp.midstream_pickup')}, one-sided ${c('flow.one_sided')}, timeouts ${c('flow.timeout')}, memcap evictions ${c('flow.memcap_evicted')}`);
  lines.push(`  reassembly: ${c('tcp.reassembled_bytes')} bytes, gaps ${c('tcp.reassembly_gap')} (${c('tcp.reassembly_gap_bytes')} bytes), overlaps ${c('tcp.overlap')}, retransmissions ${c('tcp.retransmission')}, out-of-order ${c('tcp.segments_out_of_order')}, memcap ${c('tcp.reassembly_memcap')}, bypassed ${c('flow.bypassed')} flows (${mb(c('flow.bypassed_bytes'))} not reassembled)`);
  const anomalies = counters.snapshot('anomaly');
  const codes = Object.keys(anomalies);
  if (codes.length === 0) lines.push('  anomalies: none');
  else {
    lines.push(`  anomalies: ${counters.anomalyTotal()}`);
    for (const code of codes) lines.push(`    ${code} ${anomalies[code]}`);
  }
  // Hark's own failures, caught and counted so the run goes on: rare, and then they must show
  const failures = c('pipeline.exception') + c('flow.consumer_error');
  if (failures > 0) lines.push(`  internal errors: ${c('pipeline.exception')} packets failed (pipeline.exception), ${c('flow.consumer_error')} flows' inspection failed (flow.consumer_error); see the warnings above`);
  if (read.problem) lines.push(`  input problem at byte offset ${read.problem.offset}: ${read.problem.message}`);
  return lines.join('\n');
}

function mb(bytes: number): string {
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(bytes >= 1e7 ? 0 : 1)} MB`;
}

/**
 * What Hark could read of the TCP and QUIC bytes it saw: cleartext HTTP, TLS decrypted or not (and
 * why), QUIC (never inspectable: the advice is to block it so browsers fall back to TLS over TCP).
 */
export function formatCoverage(counters: Counters): string {
  const c = (n: string) => counters.get(n);
  const http = c('app_layer.bytes.http');
  const tls = c('app_layer.bytes.tls');
  const quic = c('quic.bytes_uninspectable');
  const other = c('app_layer.bytes.unknown');
  const parts = [`cleartext HTTP ${mb(http)}`];
  const flows = c('tls.flows');
  const decryptedFlows = c('tls.decrypted_flows');
  parts.push(`TLS ${mb(tls)} in ${flows} connections, ${decryptedFlows} decrypted (${mb(c('tls.decrypted_bytes'))} of content)`);
  const why = Object.entries(counters.snapshot())
    .filter(([name, n]) => name.startsWith('tls.not_decrypted.') && n > 0)
    .map(([name, n]) => `${name.slice('tls.not_decrypted.'.length)} ${n}`);
  if (why.length > 0) parts.push(`not decrypted: ${why.join(', ')}`);
  if (quic > 0) parts.push(`QUIC ${mb(quic)} not inspectable: block UDP 443 so browsers fall back to TLS over TCP`);
  parts.push(`other TCP ${mb(other)}`);
  return `  coverage: ${parts.join('; ')}`;
}
