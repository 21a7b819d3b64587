/**
 * Tests for sensor/decode/dispatch.ts: the successor tables. Each selector maps to the layer the
 * standards say follows it; anything else maps to L_DONE (the caller counts it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerForEthertype, layerForIpProto, layerForLinkType } from '../../sensor/decode/dispatch.js';
import {
  L_DONE, L_ERSPAN2, L_ERSPAN3, L_ETHERNET, L_GRE, L_ICMP, L_ICMPV6, L_IPV4, L_IPV6, L_LOOP, L_MPLS, L_NULL,
  L_PPPOE, L_RAW, L_SLL, L_SLL2, L_TCP, L_UDP, L_VLAN,
} from '../../sensor/decode/packet.js';
import { ETHERTYPE, IPPROTO, LINKTYPE } from '../helpers/packets.js';

test('layerForEthertype maps IP, tags, MPLS, PPPoE session, TEB and ERSPAN', () => {
  const cases: Array<[number, number]> = [
    [ETHERTYPE.IPV4, L_IPV4],
    [ETHERTYPE.IPV6, L_IPV6],
    [ETHERTYPE.VLAN, L_VLAN],
    [ETHERTYPE.QINQ, L_VLAN],
    [ETHERTYPE.QINQ_9100, L_VLAN],
    [0x9200, L_VLAN],
    [ETHERTYPE.MPLS, L_MPLS],
    [ETHERTYPE.MPLS_MC, L_MPLS],
    [ETHERTYPE.PPPOE_SESS, L_PPPOE],
    [ETHERTYPE.TEB, L_ETHERNET],
    [ETHERTYPE.ERSPAN2, L_ERSPAN2],
    [ETHERTYPE.ERSPAN3, L_ERSPAN3],
  ];
  for (const [t, layer] of cases) assert.equal(layerForEthertype(t), layer, `ethertype 0x${t.toString(16)}`);
});

test('layerForEthertype stops at ARP, PPPoE discovery, LLDP and 802.3 lengths', () => {
  for (const t of [ETHERTYPE.ARP, ETHERTYPE.PPPOE_DISC, 0x88cc, 0x0000, 0x05dc, 0xffff]) {
    assert.equal(layerForEthertype(t), L_DONE, `ethertype 0x${t.toString(16)}`);
  }
});

test('layerForIpProto maps transports, GRE and IP-in-IP', () => {
  const cases: Array<[number, number]> = [
    [IPPROTO.TCP, L_TCP],
    [IPPROTO.UDP, L_UDP],
    [IPPROTO.ICMP, L_ICMP],
    [IPPROTO.ICMPV6, L_ICMPV6],
    [IPPROTO.GRE, L_GRE],
    [IPPROTO.IPIP, L_IPV4],
    [IPPROTO.IPV6, L_IPV6],
  ];
  for (const [proto, layer] of cases) assert.equal(layerForIpProto(proto), layer, `proto ${proto}`);
  for (const proto of [IPPROTO.ESP, 132 /* SCTP */, 255]) assert.equal(layerForIpProto(proto), L_DONE, `proto ${proto}`);
});

test('layerForLinkType maps every supported capture link type and rejects others', () => {
  const cases: Array<[number, number]> = [
    [LINKTYPE.ETHERNET, L_ETHERNET],
    [LINKTYPE.LINUX_SLL, L_SLL],
    [LINKTYPE.LINUX_SLL2, L_SLL2],
    [LINKTYPE.NULL, L_NULL],
    [LINKTYPE.LOOP, L_LOOP],
    [LINKTYPE.RAW, L_RAW],
    [LINKTYPE.RAW_BSD, L_RAW],
    [LINKTYPE.RAW_OPENBSD, L_RAW],
    [LINKTYPE.IPV4, L_IPV4],
    [LINKTYPE.IPV6, L_IPV6],
  ];
  for (const [lt, layer] of cases) assert.equal(layerForLinkType(lt), layer, `link type ${lt}`);
  for (const lt of [105 /* 802.11 */, 127 /* radiotap */, 147 /* USER0 */, 0xffff]) assert.equal(layerForLinkType(lt), L_DONE, `link type ${lt}`);
});
