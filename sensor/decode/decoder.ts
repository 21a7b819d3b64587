/**
 * The decode stage: runs layer decoders from the capture link type down to the transport header,
 * choosing each successor from a dispatch table. Input: one frame. Output: the filled `Packet`;
 * `decodeFrame` returns true when it reached TCP or UDP (the flow stage takes over). Every
 * malformed case is an anomaly counter; packet bytes never throw (a bug that does is caught by
 * the pipeline, counted and rate-limited).
 */
import { Counters, defineAnomaly, defineCounter } from '../events/counters.js';
import { layerForLinkType } from './dispatch.js';
import { Defragmenter } from './ip-fragments.js';
import { decodeIpv4, decodeIpv6 } from './ip.js';
import { decodeEthernet, decodeLoop, decodeMpls, decodeNull, decodePppoe, decodeRaw, decodeSll, decodeSll2, decodeVlan } from './link.js';
import {
  L_COUNT, L_DONE, L_ERSPAN2, L_ERSPAN3, L_ETHERNET, L_GENEVE, L_GRE, L_ICMP,
  L_ICMPV6, L_IPV4, L_IPV6, L_LOOP, L_MPLS, L_NULL, L_PPPOE, L_RAW, L_SLL, L_SLL2, L_TCP, L_UDP, L_VLAN,
  L_VXLAN, Packet,
} from './packet.js';
import { decodeIcmp, decodeIcmpv6, decodeTcp, decodeUdp } from './transport.js';
import { decodeErspan2, decodeErspan3, decodeGeneve, decodeGre, decodeVxlan } from './tunnel.js';

const A_LINKTYPE = defineAnomaly('decoder.unsupported_linktype');
const A_LAYERS = defineAnomaly('decoder.too_many_layers');
const C_PKTS = defineCounter('decoder.pkts');
const C_BYTES = defineCounter('decoder.bytes');

/** Layers decoded per frame at most: a guard against tunnel/tag loops crafted to spin. */
const MAX_LAYERS_PER_PACKET = 32;

type LayerDecoder = (p: Packet, c: Counters, defrag: Defragmenter) => number;

const NOOP: LayerDecoder = () => L_DONE;
const TABLE: LayerDecoder[] = new Array<LayerDecoder>(L_COUNT).fill(NOOP);
TABLE[L_ETHERNET] = decodeEthernet;
TABLE[L_VLAN] = decodeVlan;
TABLE[L_MPLS] = decodeMpls;
TABLE[L_PPPOE] = decodePppoe;
TABLE[L_IPV4] = decodeIpv4;
TABLE[L_IPV6] = decodeIpv6;
TABLE[L_TCP] = decodeTcp;
TABLE[L_UDP] = decodeUdp;
TABLE[L_ICMP] = decodeIcmp;
TABLE[L_ICMPV6] = decodeIcmpv6;
TABLE[L_GRE] = decodeGre;
TABLE[L_ERSPAN2] = decodeErspan2;
TABLE[L_ERSPAN3] = decodeErspan3;
TABLE[L_VXLAN] = decodeVxlan;
TABLE[L_GENEVE] = decodeGeneve;
TABLE[L_SLL] = decodeSll;
TABLE[L_SLL2] = decodeSll2;
TABLE[L_NULL] = decodeNull;
TABLE[L_LOOP] = decodeLoop;
TABLE[L_RAW] = decodeRaw;

export class Decoder {
  readonly packet = new Packet();
  readonly defrag: Defragmenter;

  constructor(readonly counters: Counters, defrag?: Defragmenter) {
    this.defrag = defrag ?? new Defragmenter(counters);
  }

  /** Decodes one frame into `this.packet`; true when it carries TCP or UDP for the flow stage. */
  decodeFrame(linkType: number, buf: Uint8Array, off: number, len: number, tsUs: number, ifIndex = 0): boolean {
    const c = this.counters;
    const p = this.packet;
    c.inc(C_PKTS);
    c.inc(C_BYTES, len);
    p.reset(buf, off, off + len, tsUs, ifIndex);
    let layer = layerForLinkType(linkType);
    if (layer === L_DONE) {
      c.inc(A_LINKTYPE);
      return false;
    }
    const defrag = this.defrag;
    for (let n = 0; layer !== L_DONE; n++) {
      if (n === MAX_LAYERS_PER_PACKET) {
        c.inc(A_LAYERS);
        return false;
      }
      layer = TABLE[layer](p, c, defrag);
    }
    return p.transport !== 0;
  }
}
