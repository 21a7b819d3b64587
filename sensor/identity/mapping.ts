/**
 * Identity mappings pushed by identity products (NAC, SSO, MDM exports) through the sensor's local
 * API (`POST /v1/identity`, sensor/api/routes.ts): each mapping { ip | mac, hostname?, user?,
 * domain?, ttlSeconds?, release? } checked and turned into an observation with source `api`.
 */
import { normaliseIp, normaliseMac } from './address.js';
import { MAX_IDENTITY_TEXT_LEN, type IdentityObservation } from './observation.js';

/** Mappings accepted per request. */
export const MAX_API_MAPPINGS_PER_REQUEST = 10_000;

/** Checks one pushed mapping; returns the observation or an error text. */
export function mappingToObservation(m: unknown, tsUs: number): IdentityObservation | string {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'not an object';
  const o = m as Record<string, unknown>;
  for (const k of ['ip', 'mac', 'hostname', 'user', 'domain']) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || (o[k] as string).length > MAX_IDENTITY_TEXT_LEN)) return `"${k}" must be a string of at most ${MAX_IDENTITY_TEXT_LEN} characters`;
  }
  const ip = o.ip === undefined ? undefined : normaliseIp(o.ip as string);
  const mac = o.mac === undefined ? undefined : normaliseMac(o.mac as string);
  if (o.ip !== undefined && ip === undefined) return `"ip" ${JSON.stringify(o.ip)} is not an IPv4 or IPv6 address`;
  if (o.mac !== undefined && mac === undefined) return `"mac" ${JSON.stringify(o.mac)} is not a MAC address`;
  if (ip === undefined && mac === undefined) return 'needs "ip" or "mac"';
  const release = o.release === true;
  if (!release && o.hostname === undefined && o.user === undefined && o.domain === undefined) return 'needs "hostname", "user" or "domain"';
  let expiresUs: number | undefined;
  if (o.ttlSeconds !== undefined) {
    if (typeof o.ttlSeconds !== 'number' || !Number.isFinite(o.ttlSeconds) || o.ttlSeconds <= 0) return '"ttlSeconds" must be a positive number';
    expiresUs = tsUs + Math.round(o.ttlSeconds * 1_000_000);
  }
  return {
    ...(ip !== undefined ? { ip } : {}),
    ...(mac !== undefined ? { mac } : {}),
    ...(typeof o.hostname === 'string' ? { hostname: o.hostname } : {}),
    ...(typeof o.user === 'string' ? { user: o.user } : {}),
    ...(typeof o.domain === 'string' ? { domain: o.domain } : {}),
    source: 'api',
    tsUs,
    ...(expiresUs !== undefined ? { expiresUs } : {}),
    ...(release ? { release: true } : {}),
  };
}
