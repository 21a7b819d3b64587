import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counters } from '../../../sensor/events/counters.js';
import type { FlowInfo } from '../../../sensor/flow/stream.js';
import type { IdentityObservation } from '../../../sensor/identity/observation.js';
import { NtlmIdentity, ntlmObservation } from '../../../sensor/app-layer/ntlm/index.js';

// davenport.sourceforge.net/ntlm.html worked example, type 3: DOMAIN \ user on WORKSTATION (see parser.test.ts).
const TYPE3 = 'NTLM TlRMTVNTUAADAAAAGAAYAGoAAAAYABgAggAAAAwADABAAAAACAAIAEwAAAAWABYAVAAAAAAAAACaAAAAAQIAAEQATwBNAEEASQBOAHUAcwBlAHIAVwBPAFIASwBTAFQAQQBUAEkATwBOAMM3zVy9RPyXgqZnr21CfG3mfCDC0+d8ViWpjBwx6BhHRmspst9GgPOZWPuMITqcxg==';
const TYPE1 = 'NTLM TlRMTVNTUAABAAAABzIAAAYABgArAAAACwALACAAAABXT1JLU1RBVElPTkRPTUFJTg==';
const flow: FlowInfo = { flowId: 1, proto: 6, srcIp: '10.4.7.23', srcPort: 50000, dstIp: '10.0.0.80', dstPort: 80, vlan: [], startUs: 0 };

test('NtlmIdentity.onHttpRequest binds a type 3\'s user, domain and workstation to the client', () => {
  const obs: IdentityObservation[] = [];
  const c = new Counters();
  const n = new NtlmIdentity({ observe: (o) => obs.push(o) }, c);
  n.onHttpRequest({ flow, headers: [['Host', 'x'], ['Authorization', TYPE1]], tsUs: 5 });
  n.onHttpRequest({ flow, headers: [['proxy-authorization', TYPE3]], tsUs: 6 });
  assert.deepEqual(obs, [{ ip: '10.4.7.23', user: 'user', hostname: 'WORKSTATION', domain: 'DOMAIN', source: 'ntlm', tsUs: 6 }]);
  assert.equal(c.get('ntlm.messages'), 2);
  assert.equal(c.get('ntlm.authenticate'), 1);
});

test('ntlmObservation: anonymous logons bind nothing; a $ user is a machine account', () => {
  const m = { type: 3 as const, unicode: true, user: '', domain: 'D', workstation: 'W', anonymous: true, lmResponseLength: 1, ntResponseLength: 0, anomalies: [] };
  assert.equal(ntlmObservation(m, '10.0.0.1', 1), undefined);
  assert.deepEqual(ntlmObservation({ ...m, user: 'PC-12$', anonymous: false }, '10.0.0.1', 1), { ip: '10.0.0.1', hostname: 'PC-12', domain: 'D', source: 'ntlm', tsUs: 1 });
});
