/**
 * `hark flows <file>`: one line (or JSON object) per TCP/UDP flow of a capture file, optionally
 * dumping each direction's reassembled bytes (`--dump DIR`), with a progress bar and a counter
 * summary on stderr. Exit status: 0, or 3 when the file was truncated or corrupt (everything
 * before the bad record was processed and printed).
 */
import type { FlowRecord } from '../flow/flow-table.js';
import { StreamDump } from '../output/stream-dump.js';
import { Pipeline } from '../pipeline.js';
import { formatSummary } from './summary.js';
import { cliErrorOf, type Command } from './command.js';
import { exitStatusFor, parseFileCommand, readWithProgress } from './file-run.js';

const PROTO_NAMES: Record<number, string> = { 6: 'TCP', 17: 'UDP' };

function iso(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString().replace('Z', `${String(us % 1000).padStart(3, '0')}Z`);
}

export function flowJson(r: FlowRecord): Record<string, unknown> {
  return {
    flow_id: r.flowId,
    proto: PROTO_NAMES[r.proto] ?? String(r.proto),
    src_ip: r.srcIp,
    src_port: r.srcPort,
    dest_ip: r.dstIp,
    dest_port: r.dstPort,
    vlan: r.vlan,
    start: iso(r.startUs),
    end: iso(r.endUs),
    pkts_toserver: r.pkts[0],
    pkts_toclient: r.pkts[1],
    bytes_toserver: r.bytes[0],
    bytes_toclient: r.bytes[1],
    data_toserver: r.dataBytes[0],
    data_toclient: r.dataBytes[1],
    gaps_toserver: r.gaps[0],
    gaps_toclient: r.gaps[1],
    gap_bytes_toserver: r.gapBytes[0],
    gap_bytes_toclient: r.gapBytes[1],
    overlaps: r.overlaps,
    overlap_mismatches: r.overlapMismatches,
    midstream: r.midstream,
    state: r.state,
    reason: r.closeReason,
  };
}

export function flowLine(r: FlowRecord): string {
  const ep = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
  const vlan = r.vlan.length > 0 ? ` vlan=${r.vlan.join('/')}` : '';
  const gaps = r.gaps[0] + r.gaps[1] > 0 ? ` gaps=${r.gaps[0]}/${r.gaps[1]} (${r.gapBytes[0]}/${r.gapBytes[1]} B)` : ' gaps=0';
  return `${r.flowId} ${PROTO_NAMES[r.proto] ?? r.proto} ${ep(r.srcIp, r.srcPort)} -> ${ep(r.dstIp, r.dstPort)}${vlan} ${iso(r.startUs)} ${iso(r.endUs)} pkts=${r.pkts[0]}/${r.pkts[1]} bytes=${r.bytes[0]}/${r.bytes[1]} data=${r.dataBytes[0]}/${r.dataBytes[1]}${gaps} overlaps=${r.overlaps}${r.overlapMismatches > 0 ? ` mismatched=${r.overlapMismatches}` : ''}${r.midstream ? ' midstream' : ''} state=${r.state} reason=${r.closeReason}`;
}

export const flowsCommand: Command = {
  name: 'flows',
  summary: 'list the TCP/UDP flows of a capture file, optionally dumping reassembled streams',
  usage: `Usage: hark flows [options] <capture.pcap|capture.pcapng>

One line per TCP/UDP flow when it ends: flow id, endpoints (originator first), VLAN, start and
end time, packets, bytes and reassembled bytes each way (to server / to client), reassembly gaps,
overlaps (and overlaps whose bytes differed), state and why it closed.

Options:
  --json            one JSON object per line instead (EVE-style field names)
  --dump DIR        write each TCP direction's reassembled bytes to DIR, named as tcpflow does
                    (SRCIP.SRCPORT-DSTIP.DSTPORT); gaps are left as sparse holes
  --keep-duplicates do not drop mirror-port duplicates (identical copies of a packet within 1 ms,
                    as a SPAN session mirroring ingress and egress delivers them)
  --no-progress     no progress bar (it is shown only when stderr is a terminal anyway)
  --quiet           no counter summary on stderr
  -h, --help        this help

Exit status: 0 on success; 3 when the file is truncated or corrupt (the message names the byte
offset; everything before it was processed); 2 on usage errors, an unreadable file or a --dump
DIR that cannot be made.`,
  run(argv) {
    const parsed = parseFileCommand(this, argv, { json: { type: 'boolean', default: false }, dump: { type: 'string' } });
    if (parsed === undefined) return 0;
    const { values, file } = parsed;
    const out: string[] = [];
    const flush = () => {
      if (out.length > 0) {
        process.stdout.write(out.join(''));
        out.length = 0;
      }
    };
    let dump: StreamDump | undefined;
    try {
      dump = values.dump !== undefined ? new StreamDump(values.dump) : undefined;
    } catch (err) {
      throw cliErrorOf(err);
    }
    const pipeline = new Pipeline({
      dropDuplicates: !values['keep-duplicates'],
      streams: dump,
      flowEnded: {
        flowEnded(r) {
          out.push(values.json ? `${JSON.stringify(flowJson(r))}\n` : `${flowLine(r)}\n`);
          if (out.length >= 512) flush();
        },
      },
    });
    const { summary, ms } = readWithProgress(pipeline, file, !values['no-progress'], 'reading');
    flush();
    if (!values.quiet) process.stderr.write(`${formatSummary(file, summary, pipeline.counters, ms)}\n`);
    if (dump) process.stderr.write(`  dump: ${dump.filesWritten} files in ${values.dump}\n`);
    return exitStatusFor(file, summary);
  },
};
