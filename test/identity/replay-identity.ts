/**
 * Test helper: replays a capture through the real pipeline (file reader, decoder, flow table,
 * reassembly) into the identity handlers, routed by port as the sensor will route them: DHCP
 * 67/68/546/547, RADIUS 1812/1813/1645/1646, Kerberos 88 (UDP and TCP), NetBIOS 137, HTTP on any other
 * TCP port (requests go to the NTLM handler). Collects every observation with its packet time.
 * (test/helpers/replay.ts drops the datagram timestamp, which identity needs.)
 */
import type { FlowInfo } from '../../sensor/flow/stream.js';
import { Counters } from '../../sensor/events/counters.js';
import { Pipeline } from '../../sensor/pipeline.js';
import { DhcpIdentity, DHCPV4_PORTS, DHCPV6_PORTS } from '../../sensor/app-layer/dhcp/index.js';
import { RadiusIdentity, RADIUS_PORTS } from '../../sensor/app-layer/radius/index.js';
import { KerberosIdentity, KerberosTcpSession, KERBEROS_PORT } from '../../sensor/app-layer/kerberos/index.js';
import { NetbiosIdentity, NETBIOS_NS_PORT } from '../../sensor/app-layer/netbios/index.js';
import { NtlmIdentity } from '../../sensor/app-layer/ntlm/index.js';
import { HttpSession } from '../../sensor/app-layer/http/index.js';
import type { IdentityObservation } from '../../sensor/identity/observation.js';
import { IdentityTable } from '../../sensor/identity/table.js';

export interface IdentityReplay {
  table: IdentityTable;
  observations: IdentityObservation[];
  /** Packet times of every UDP datagram handed over, in order. */
  datagramTimes: number[];
  counters: Counters;
  counter(name: string): number;
}

const has = (ports: readonly number[], f: FlowInfo): boolean => ports.includes(f.srcPort) || ports.includes(f.dstPort);

export function replayIdentity(path: string): IdentityReplay {
  const counters = new Counters();
  const table = new IdentityTable(counters);
  const observations: IdentityObservation[] = [];
  const datagramTimes: number[] = [];
  const sink = { observe: (o: IdentityObservation) => { observations.push(o); table.observe(o); } };
  const dhcp = new DhcpIdentity(sink, counters);
  const radius = new RadiusIdentity(sink, counters);
  const kerberos = new KerberosIdentity(sink, counters);
  const netbios = new NetbiosIdentity(sink, counters);
  const ntlm = new NtlmIdentity(sink, counters);
  const pipeline = new Pipeline({
    counters,
    streams: {
      open(flow) {
        if (flow.srcPort === KERBEROS_PORT || flow.dstPort === KERBEROS_PORT) return new KerberosTcpSession(flow, sink, counters);
        return new HttpSession(flow, {
          onRequest: (req) => ntlm.onHttpRequest(req),
          onResponse: () => {},
          onBody: () => {},
          onMessageEnd: () => {},
        }, counters);
      },
    },
    datagrams: {
      datagram(flow, dir, payload, tsUs) {
        datagramTimes.push(tsUs);
        if (has(DHCPV4_PORTS, flow) || has(DHCPV6_PORTS, flow)) dhcp.datagram(flow, dir, payload, tsUs);
        else if (has(RADIUS_PORTS, flow)) radius.datagram(flow, dir, payload, tsUs);
        else if (has([KERBEROS_PORT], flow)) kerberos.datagram(flow, dir, payload, tsUs);
        else if (has([NETBIOS_NS_PORT], flow)) netbios.datagram(flow, dir, payload, tsUs);
      },
    },
  });
  const summary = pipeline.runFile(path);
  if (summary.problem) throw new Error(`${path}: ${summary.problem.message}`);
  return { table, observations, datagramTimes, counters, counter: (n) => counters.get(n) };
}

/** Microseconds since the epoch from tshark's `frame.time_epoch` text (exact: no float rounding). */
export function epochUs(text: string): number {
  const [s, frac = ''] = text.split('.');
  return Number(s) * 1_000_000 + Number((frac + '000000').slice(0, 6));
}
