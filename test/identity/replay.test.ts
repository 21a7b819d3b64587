/**
 * Golden replays: captures through the real pipeline into the identity handlers and table, checked
 * against ground truth. Corpus captures: the rows of ../shared/corpus/MANIFEST.md quoted in
 * test/fixtures/identity/README.md (frame times from tshark). Generated captures: a real MIT KDC and
 * kinit (make-kerberos.sh), real curl NTLM (make-ntlm-http.sh), hand-built NBNS / DHCPv6 checked with
 * tshark (make-synthetic.mjs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture } from '../helpers/replay.js';
import { epochUs, replayIdentity } from './replay-identity.js';
import { formatIdentitySnapshot } from '../../sensor/identity/format.js';

const SECOND_US = 1_000_000;

test('zeek-dhcp: 128.2.6.189 is 90:b1:1c:99:49:29 "btest.is.cool" from the ACK on, for the 900 s lease', () => {
  const r = replayIdentity(fixture('identity', 'zeek-dhcp.pcap'));
  const ack = epochUs('1370200444.371332000'); // frame 6, DHCP ACK, your-IP 128.2.6.189, lease 900
  const discover = epochUs('1370200442.323173000'); // frame 1
  assert.equal(r.table.lookup('128.2.6.189', ack - 1), undefined, 'nothing before the ACK binds the address');
  assert.deepEqual(r.table.lookup('128.2.6.189', ack), {
    ip: '128.2.6.189', mac: '90:b1:1c:99:49:29', hostname: 'btest.is.cool', sources: { mac: 'dhcp', hostname: 'dhcp' },
  });
  assert.equal(r.table.lookup('128.2.6.189', ack + 900 * SECOND_US - 1)?.mac, '90:b1:1c:99:49:29');
  assert.equal(r.table.lookup('128.2.6.189', ack + 900 * SECOND_US)?.mac, undefined, 'the lease has ended');
  // The host name (option 12) was said in DISCOVER, both REQUESTs and INFORM, all keyed by chaddr.
  const named = r.observations.filter((o) => o.hostname === 'btest.is.cool');
  assert.equal(named.length, 4);
  assert.ok(named.every((o) => o.mac === '90:b1:1c:99:49:29' && o.ip === undefined));
  assert.equal(named[0].tsUs, discover);
  // OFFER (your-IP 128.2.6.97) and the requested 192.168.211.194 never became bindings.
  assert.equal(r.table.lookup('128.2.6.97', ack), undefined);
  assert.equal(r.table.lookup('192.168.211.194', ack), undefined);
  assert.equal(r.counter('dhcp.messages'), 9);
  assert.equal(r.counter('dhcp.type.request'), 2);
  assert.equal(r.counter('dhcp.type.nak'), 1);
});

test('tcpdump-dhcp-mud: relayed renewal binds 62.12.173.123 to b8:27:eb:b8:53:c8 "raspberrypi"', () => {
  const r = replayIdentity(fixture('identity', 'tcpdump-dhcp-mud.pcap'));
  const request = epochUs('1481200121.189402000');
  const ack = epochUs('1481200121.318491000');
  // The REQUEST comes from the relay (62.12.173.121), but its ciaddr says the client already holds the address.
  assert.deepEqual(r.table.lookup('62.12.173.123', request), {
    ip: '62.12.173.123', mac: 'b8:27:eb:b8:53:c8', hostname: 'raspberrypi', sources: { mac: 'dhcp', hostname: 'dhcp' },
  });
  assert.equal(r.table.lookup('62.12.173.121', ack), undefined, 'the relay is not the client');
  const e = r.table.snapshot().ips.find((x) => x.key === '62.12.173.123');
  assert.equal(e?.current.mac?.expiresUs, ack + 600 * SECOND_US, 'ACK lease 600 s');
});

test('sv-dhcp-eve-extended: the NUL-terminated host name "nas1\\0" is "nas1" for 10.16.1.4', () => {
  const r = replayIdentity(fixture('identity', 'sv-dhcp-eve-extended.pcap'));
  const ack = epochUs('1588190299.731693000');
  const id = r.table.lookup('10.16.1.4', ack);
  assert.equal(id?.hostname, 'nas1');
  assert.equal(id?.mac, '00:11:32:17:49:f0');
  const e = r.table.snapshot().ips.find((x) => x.key === '10.16.1.4');
  assert.equal(e?.current.mac?.expiresUs, ack + 3600 * SECOND_US, 'lease 3600');
});

test('ws-dhcp: negative control binds 192.168.0.10 to 00:0b:82:01:fc:42 with no host name', () => {
  const r = replayIdentity(fixture('identity', 'ws-dhcp.pcap'));
  const offer = epochUs('1102274184.317748000');
  const ack = epochUs('1102274184.387798000');
  assert.equal(r.table.lookup('192.168.0.10', offer), undefined, 'an OFFER is not a binding');
  assert.deepEqual(r.table.lookup('192.168.0.10', ack), { ip: '192.168.0.10', mac: '00:0b:82:01:fc:42', sources: { mac: 'dhcp' } });
  assert.ok(r.observations.every((o) => o.hostname === undefined));
});

test('arkime-radius: Accounting Interim-Update binds 10.0.0.3 to user xxxxxxxxx and 98:5a:eb:89:80:00', () => {
  const r = replayIdentity(fixture('identity', 'arkime-radius.pcap'));
  const t = epochUs('1463339353.458380000');
  assert.deepEqual(r.table.lookup('10.0.0.3', t), {
    ip: '10.0.0.3', mac: '98:5a:eb:89:80:00', user: 'xxxxxxxxx', sources: { mac: 'radius', user: 'radius' },
  });
  assert.equal(r.table.lookup('10.0.0.1', t), undefined, 'the NAS (10.0.0.1) is not the user');
  assert.equal(r.counter('radius.packets'), 2);
});

test('zeek-radius_localhost: steve is bound to the Accept\'s Framed-IP 172.16.3.33, never to the NAS address', () => {
  const r = replayIdentity(fixture('identity', 'zeek-radius_localhost.pcap'));
  // Accepts: id 114 (carries User-Name), 97, 168 and 148 (User-Name only in their Requests).
  const firstAccept = epochUs('1440447839.948233000');
  const firstChallenge = epochUs('1440447766.440868000');
  assert.equal(r.table.lookup('172.16.3.33', firstChallenge), undefined, 'a Challenge with Framed-IP is not an authentication');
  assert.deepEqual(r.table.lookup('172.16.3.33', firstAccept), { ip: '172.16.3.33', user: 'steve', sources: { user: 'radius' } });
  assert.equal(r.observations.length, 4, 'one per Access-Accept');
  assert.ok(r.observations.every((o) => o.ip === '172.16.3.33' && o.user === 'steve'));
  assert.equal(r.table.lookup('127.0.0.1', firstAccept), undefined);
  assert.equal(r.counter('radius.access_reject'), 2);
});

test('tcpdump-RADIUS-RFC4675: bob-* Access-Requests bind nothing: no Framed-IP and no Calling-Station-Id', () => {
  const r = replayIdentity(fixture('identity', 'tcpdump-RADIUS-RFC4675.pcap'));
  assert.equal(r.counter('radius.packets'), 6);
  assert.equal(r.observations.length, 0);
  assert.equal(r.counter('radius.user_unbound'), 3, 'bob-tagged, bob-untagged, bob-invalid were accepted but name no address');
  assert.equal(r.table.snapshot().ips.length, 0);
});

test('kerberos-as-req: real AS-REQs over UDP and TCP name jsmith, the machine LAPTOP-7F3$ and alice at 127.0.0.1', () => {
  const r = replayIdentity(fixture('identity', 'kerberos-as-req.pcap'));
  const jsmithUdp = epochUs('1795281651.587607000'); // frame 1, AS-REQ over UDP
  const machineTcp = epochUs('1795281652.630264000'); // frame 8, AS-REQ over TCP
  const aliceTcp = epochUs('1795281653.667638000'); // frame 28
  assert.deepEqual(r.table.lookup('127.0.0.1', jsmithUdp), {
    ip: '127.0.0.1', user: 'jsmith', domain: 'HARK.TEST', sources: { user: 'kerberos', domain: 'kerberos' },
  });
  assert.deepEqual(r.table.lookup('127.0.0.1', machineTcp), {
    ip: '127.0.0.1', hostname: 'LAPTOP-7F3', user: 'jsmith', domain: 'HARK.TEST',
    sources: { hostname: 'kerberos', user: 'kerberos', domain: 'kerberos' },
  });
  assert.equal(r.table.lookup('127.0.0.1', aliceTcp - 1)?.user, 'jsmith', 'just before alice logs on');
  assert.equal(r.table.lookup('127.0.0.1', aliceTcp)?.user, 'alice', 'a newer equal-strength logon wins');
  assert.equal(r.table.lookup('127.0.0.88', aliceTcp), undefined, 'the KDC is nobody');
  // 2 AS-REQs + 1 AS-REP per principal; KRB-ERRORs (PREAUTH_REQUIRED) bind nothing.
  assert.equal(r.observations.length, 9);
  assert.equal(r.counter('kerberos.messages'), 12);
  assert.deepEqual(r.observations.map((o) => o.tsUs).slice(0, 3),
    ['1795281651.587607000', '1795281651.604126000', '1795281651.606456000'].map(epochUs));
});

test('ntlm-http: curl\'s NTLM type 3 names HARKDOM\\jsmith on WORKSTATION at 127.0.0.1', () => {
  const r = replayIdentity(fixture('identity', 'ntlm-http.pcap'));
  const type3 = epochUs('1795281951.485898000'); // frame 8
  assert.deepEqual(r.table.lookup('127.0.0.1', type3), {
    ip: '127.0.0.1', hostname: 'WORKSTATION', user: 'jsmith', domain: 'HARKDOM',
    sources: { hostname: 'ntlm', user: 'ntlm', domain: 'ntlm' },
  });
  assert.equal(r.counter('ntlm.messages'), 2, 'type 1 and type 3 (the type 2 is in a response header)');
});

test('netbios-ns: registrations, a positive answer and a node status name hosts; a query names nobody', () => {
  const r = replayIdentity(fixture('identity', 'netbios-ns.pcap'));
  const end = 1_700_000_005 * SECOND_US;
  assert.deepEqual(r.table.lookup('192.168.1.23', end), {
    ip: '192.168.1.23', hostname: 'LAPTOP-7F3', domain: 'SCHOOL', sources: { hostname: 'netbios', domain: 'netbios' },
  });
  assert.equal(r.table.lookup('192.168.1.60', end)?.hostname, 'PRINTER01');
  assert.equal(r.table.lookup('192.168.1.50', end), undefined, 'the querier');
  assert.deepEqual(r.table.lookup('192.168.1.77', end), {
    ip: '192.168.1.77', mac: '00:1c:42:aa:bb:cc', hostname: 'DESKTOP-9Q2', domain: 'SCHOOL',
    sources: { mac: 'netbios', hostname: 'netbios', domain: 'netbios' },
  });
  const reg = r.observations.find((o) => o.hostname === 'LAPTOP-7F3');
  assert.equal(reg?.expiresUs, 1_700_000_000 * SECOND_US + 300_000 * SECOND_US, 'registration TTL 300000 s');
});

test('dhcpv6: REPLY binds 2001:db8:10::23 to the DUID-LLT MAC until RELEASE; a relayed REPLY carries the FQDN', () => {
  const r = replayIdentity(fixture('identity', 'dhcpv6.pcap'));
  const reply = 1_700_000_001 * SECOND_US;
  const release = 1_700_000_002 * SECOND_US;
  assert.deepEqual(r.table.lookup('2001:db8:10::23', reply), {
    ip: '2001:db8:10::23', mac: '00:1c:42:aa:bb:cc', hostname: 'laptop-7f3.school.example', sources: { mac: 'dhcpv6', hostname: 'dhcpv6' },
  });
  assert.equal(r.table.lookup('2001:db8:10::23', release), undefined, 'released');
  assert.equal(r.table.lookup('2001:db8:20::99', 1_700_000_004 * SECOND_US)?.hostname, 'tablet-12.school.example');
  const fwd = r.observations.find((o) => o.mac === '00:1c:42:dd:ee:ff');
  assert.equal(fwd?.hostname, 'tablet-12.school.example', 'RFC 6939 client link-layer address from the relay');
});

test('formatIdentitySnapshot prints the replayed table with sources', () => {
  const r = replayIdentity(fixture('identity', 'zeek-dhcp.pcap'));
  const text = formatIdentitySnapshot(r.table.snapshot());
  assert.match(text, /^128\.2\.6\.189$/m);
  assert.match(text, /mac\s+90:b1:1c:99:49:29 {2}\[dhcp; seen 2013-06-02T19:14:04Z/);
  assert.match(text, /hostname btest\.is\.cool {2}\[dhcp;/);
  assert.match(text, /devices by MAC:\n90:b1:1c:99:49:29\n/);
});
