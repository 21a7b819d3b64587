/**
 * What the sensor's local API offers: POST /v1/tls-keys (NSS key log lines from endpoint agents or
 * TLS-inspecting gateways, added to the running sensor's key store; flows waiting for those keys
 * are decrypted at once) and GET /v1/status (counters and per-interface packet counts).
 */
import { parseKeyLog, type KeyStore } from '../app-layer/tls/keylog.js';
import type { Counters } from '../events/counters.js';
import { mappingToObservation, MAX_API_MAPPINGS_PER_REQUEST } from '../identity/mapping.js';
import { parseStaticMap } from '../identity/static-map.js';
import type { IdentitySink } from '../identity/observation.js';
import type { ApiRoute } from './local-api.js';

export interface InterfaceStatus {
  readonly name: string;
  readonly packets: number;
}

/** Identity mappings pushed by identity products: a JSON array of {ip|mac, hostname?, user?, domain?,
 * ttlSeconds?, release?} (or { mappings: [...] }), or the static-map CSV. Observed as source `api`, at
 * the time they arrive. */
function identityRoute(identity: IdentitySink): ApiRoute {
  return {
    method: 'POST',
    path: '/v1/identity',
    handler: (body) => {
      const nowUs = Date.now() * 1000;
      const text = body.trimStart();
      if (text.startsWith('[') || text.startsWith('{')) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch (err) {
          return { status: 400, body: { error: `not JSON: ${(err as Error).message}` } };
        }
        const wrapped = typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as { mappings?: unknown }).mappings);
        const list: unknown[] = Array.isArray(parsed) ? parsed : wrapped ? (parsed as { mappings: unknown[] }).mappings : [parsed];
        if (list.length > MAX_API_MAPPINGS_PER_REQUEST) return { status: 413, body: { error: `more than ${MAX_API_MAPPINGS_PER_REQUEST} mappings` } };
        const bad: Array<{ index: number; reason: string }> = [];
        let accepted = 0;
        list.forEach((m, index) => {
          const obs = mappingToObservation(m, nowUs);
          if (typeof obs === 'string') bad.push({ index, reason: obs });
          else {
            identity.observe(obs);
            accepted++;
          }
        });
        return { status: accepted === 0 && bad.length > 0 ? 400 : 200, body: { accepted, bad } };
      }
      const map = parseStaticMap(body);
      for (const e of map.entries) {
        identity.observe({
          ...(e.kind === 'ip' ? { ip: e.address } : { mac: e.address }),
          ...(e.hostname !== undefined ? { hostname: e.hostname } : {}),
          ...(e.user !== undefined ? { user: e.user } : {}),
          source: 'api',
          tsUs: nowUs,
        });
      }
      const bad = map.errors.map((e) => ({ line: e.line, reason: e.message }));
      return { status: map.entries.length === 0 && bad.length > 0 ? 400 : 200, body: { accepted: map.entries.length, bad } };
    },
  };
}

export function sensorApiRoutes(keyStore: KeyStore, counters: Counters, interfaces: () => InterfaceStatus[], identity?: IdentitySink): ApiRoute[] {
  return [
    ...(identity !== undefined ? [identityRoute(identity)] : []),
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
