/**
 * Dispatch table pieces shared by the layer decoders: which layer follows a given ethertype,
 * IP protocol or capture link type. Decoders report the selector; only this module and
 * decoder.ts choose the successor (STYLE section 3).
 */
import {
  IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP,
  L_DONE, L_ERSPAN2, L_ERSPAN3, L_ETHERNET, L_GRE, L_ICMP, L_ICMPV6, L_IPV4, L_IPV6, L_LOOP, L_MPLS,
  L_NULL, L_PPPOE, L_RAW, L_SLL, L_SLL2, L_TCP, L_UDP, L_VLAN,
} from './packet.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_TEB = 0x6558; // transparent Ethernet bridging (GRE, Geneve)
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_QINQ_OLD1 = 0x9100;
export const ETHERTYPE_QINQ_OLD2 = 0x9200;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_MPLS_UC = 0x8847;
export const ETHERTYPE_MPLS_MC = 0x8848;
export const ETHERTYPE_PPPOE_DISC = 0x8863;
export const ETHERTYPE_PPPOE_SESS = 0x8864;
export const ETHERTYPE_ERSPAN2 = 0x88be;
export const ETHERTYPE_ERSPAN3 = 0x22eb;

/** The layer that decodes a payload of this ethertype, or L_DONE when Hark does not look inside. */
export function layerForEthertype(t: number): number {
  switch (t) {
    case ETHERTYPE_IPV4: return L_IPV4;
    case ETHERTYPE_IPV6: return L_IPV6;
    case ETHERTYPE_VLAN:
    case ETHERTYPE_QINQ:
    case ETHERTYPE_QINQ_OLD1:
    case ETHERTYPE_QINQ_OLD2: return L_VLAN;
    case ETHERTYPE_MPLS_UC:
    case ETHERTYPE_MPLS_MC: return L_MPLS;
    case ETHERTYPE_PPPOE_SESS: return L_PPPOE;
    case ETHERTYPE_TEB: return L_ETHERNET;
    case ETHERTYPE_ERSPAN2: return L_ERSPAN2;
    case ETHERTYPE_ERSPAN3: return L_ERSPAN3;
    default: return L_DONE;
  }
}

/** The layer for an IP protocol number (after extension headers). */
export function layerForIpProto(proto: number): number {
  switch (proto) {
    case IPPROTO_TCP: return L_TCP;
    case IPPROTO_UDP: return L_UDP;
    case IPPROTO_ICMP: return L_ICMP;
    case IPPROTO_ICMPV6: return L_ICMPV6;
    case IPPROTO_GRE: return L_GRE;
    case IPPROTO_IPIP: return L_IPV4;
    case IPPROTO_IPV6: return L_IPV6;
    default: return L_DONE;
  }
}

// Link types: https://www.tcpdump.org/linktypes.html
export const DLT_NULL = 0;
export const DLT_EN10MB = 1;
export const DLT_RAW_OPENBSD = 12;
export const DLT_RAW_BSD = 14;
export const DLT_RAW = 101;
export const DLT_LOOP = 108;
export const DLT_LINUX_SLL = 113;
export const DLT_IPV4 = 228;
export const DLT_IPV6 = 229;
export const DLT_LINUX_SLL2 = 276;

/** The first layer for a capture link type, or L_DONE when unsupported (counted by the caller). */
export function layerForLinkType(linkType: number): number {
  switch (linkType) {
    case DLT_EN10MB: return L_ETHERNET;
    case DLT_LINUX_SLL: return L_SLL;
    case DLT_LINUX_SLL2: return L_SLL2;
    case DLT_NULL: return L_NULL;
    case DLT_LOOP: return L_LOOP;
    case DLT_RAW:
    case DLT_RAW_OPENBSD:
    case DLT_RAW_BSD: return L_RAW;
    case DLT_IPV4: return L_IPV4;
    case DLT_IPV6: return L_IPV6;
    default: return L_DONE;
  }
}
