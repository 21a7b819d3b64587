/**
 * The site-policy options `hark scan`, `hark run` and `hark identity` share: domain blocklists, the
 * allow list, the static identity map and the monitored / ignored networks.
 */
import type { SitePolicyFiles } from '../site-policy.js';

export const SITE_OPTIONS = {
  blocklist: { type: 'string', multiple: true },
  'allow-list': { type: 'string' },
  'identity-map': { type: 'string' },
  monitored: { type: 'string', multiple: true },
  ignored: { type: 'string', multiple: true },
} as const;

export const SITE_USAGE = `  --blocklist [NAME=]FILE  domain list (hosts file, one domain a line, or CSV
                        domain,category,threat_level); names seen in DNS queries, TLS/QUIC SNI or
                        HTTP Host that it covers give dns events; repeatable
  --allow-list FILE     domains never captured (each at least a registrable domain: "co.uk" alone is
                        refused); covers subdomains
  --identity-map FILE   CSV "ip or mac,hostname,user": static identities (strongest source)
  --monitored CIDR      inside networks whose hosts are the users (default RFC 1918, 100.64/10,
                        fc00::/7, link-local); repeatable, comma-separated lists accepted
  --ignored CIDR        hosts or networks never treated as users (no captures); repeatable`;

function cidrs(v: string[] | undefined): string[] | undefined {
  return v?.flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x.length > 0);
}

export function siteFilesFrom(values: {
  blocklist?: string[]; 'allow-list'?: string; 'identity-map'?: string; monitored?: string[]; ignored?: string[];
}): SitePolicyFiles {
  return {
    blocklists: values.blocklist,
    allowList: values['allow-list'],
    identityMap: values['identity-map'],
    monitored: cidrs(values.monitored),
    ignored: cidrs(values.ignored),
  };
}
