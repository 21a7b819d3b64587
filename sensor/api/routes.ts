/**
 * What the sensor's local API offers: POST /v1/tls-keys (NSS key log lines from endpoint agents or
 * TLS-inspecting gateways, added to the running sensor's key store; flows waiting for those keys
 * are decrypted at once) and GET /v1/status (counters and per-interface packet counts).
 */
import { parseKeyLog, type KeyStore } from '../app-layer/tls/keylog.js';
import type { Counters } from '../events/counters.js';
import type { ApiRoute } from './local-api.js';

export interface InterfaceStatus {
  readonly name: string;
  readonly packets: number;
}

export function sensorApiRoutes(keyStore: KeyStore, counters: Counters, interfaces: () => InterfaceStatus[]): ApiRoute[] {
  return [
    {
      method: 'POST',
      path: '/v1/tls-keys',
      handler: (body) => {
        const parsed = parseKeyLog(body);
        const added = keyStore.addEntries(parsed.entries);
        // Bad lines are reported by number and reason only: their text may hold secrets.
        const status = parsed.entries.length === 0 && parsed.bad.length > 0 ? 400 : 200;
        return { status, body: { accepted: parsed.entries.length, new_or_changed: added, ignored: parsed.ignored, bad: parsed.bad } };
      },
    },
    {
      method: 'GET',
      path: '/v1/status',
      handler: () => ({ status: 200, body: { interfaces: interfaces(), counters: counters.snapshot() } }),
    },
  ];
}
