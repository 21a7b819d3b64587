/**
 * Cross-check against tcpflow: on real captures, `hark flows --dump` must write byte-identical
 * streams to `tcpflow -r` for every flow without overlaps or gaps (tcpflow resolves those
 * differently). tcpflow is installed by appliance/dev-setup.sh.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { FlowRecord } from '../../sensor/flow/flow-table.js';
import { StreamDump, tcpflowName } from '../../sensor/output/stream-dump.js';
import { Pipeline } from '../../sensor/pipeline.js';
import { fixture } from '../helpers/replay.js';

// zeek-http-pipelined-requests.pcap is left out on purpose: tcpflow 1.6 appends 10 bytes of
// Ethernet trailer after the client's last segment (tshark: the last data segment is seq 2059 +
// 660, so the stream is 2718 bytes; tcpflow writes 2728 plus a 10-byte "c1" file). Hark trims
// frames to the IP total length. test/replay/corpus.test.ts covers that file against tshark.
const FILES = [
  'zeek-tcp-missing-syn.pcap',
  'ndpi-WebattackXSS.pcap',
  'arkime-v6-http.pcap',
  'sv-http-brotli-ce.pcap',
  'zeek-http-get-gzip.pcap',
];

function tcpflow(file: string, dir: string): void {
  try {
    execFileSync('tcpflow', ['-r', file, '-o', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') assert.fail('tcpflow is not installed: run appliance/dev-setup.sh (npm test does)');
    throw err;
  }
}

describe('StreamDump', () => {
  test('tcpflowName pads IPv4 octets and ports like tcpflow', () => {
    assert.equal(tcpflowName('10.0.0.1', 80, '192.168.1.20', 51234), '010.000.000.001.00080-192.168.001.020.51234');
    assert.equal(tcpflowName('2001:db8::1', 443, '::1', 5), '2001:db8::1.00443-::1.00005');
  });

  for (const name of FILES) {
    test(`writes the same bytes as tcpflow -r for ${name}`, () => {
      const ours = mkdtempSync(join(tmpdir(), 'hark-dump-'));
      const theirs = mkdtempSync(join(tmpdir(), 'hark-tcpflow-'));
      try {
        const records: FlowRecord[] = [];
        const pipeline = new Pipeline({ streams: new StreamDump(ours), flowEnded: { flowEnded: (r) => records.push(r) } });
        pipeline.runFile(fixture('tcp', name));
        tcpflow(fixture('tcp', name), theirs);
        const clean = records.filter((r) => r.proto === 6 && r.gaps[0] + r.gaps[1] === 0 && r.overlaps === 0);
        let compared = 0;
        for (const r of clean) {
          const dirs: Array<[string, number]> = [
            [tcpflowName(r.srcIp, r.srcPort, r.dstIp, r.dstPort), r.dataBytes[0]],
            [tcpflowName(r.dstIp, r.dstPort, r.srcIp, r.srcPort), r.dataBytes[1]],
          ];
          for (const [file, bytes] of dirs) {
            if (bytes === 0) continue;
            const a = readFileSync(join(ours, file));
            const b = readFileSync(join(theirs, file));
            assert.equal(a.length, b.length, `${file}: length`);
            assert.ok(a.equals(b), `${file}: bytes differ from tcpflow's`);
            compared++;
          }
        }
        assert.ok(compared > 0, 'at least one stream compared');
        // Every stream tcpflow wrote for these captures is one of ours too.
        const theirFiles = readdirSync(theirs).filter((f) => f !== 'report.xml');
        const ourFiles = new Set(readdirSync(ours));
        for (const f of theirFiles) assert.ok(ourFiles.has(f), `hark wrote no ${f}`);
      } finally {
        rmSync(ours, { recursive: true, force: true });
        rmSync(theirs, { recursive: true, force: true });
      }
    });
  }
});
