/**
 * The site's policy files, loaded and checked at start: domain blocklists (hosts, plain-domain or
 * CSV), the allow list (domains never captured), the static identity map (CSV) and the monitored /
 * ignored networks. A bad line or entry stops the start with a message naming the file, line and
 * reason: a policy that silently lost entries would be worse than none.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { loadStaticMap, type StaticMap } from './identity/static-map.js';
import { AllowList } from './policy/allow-list.js';
import { loadDomainList } from './policy/blocklist.js';
import { DomainPolicy, DomainPolicyBuilder } from './policy/domain-policy.js';
import { MonitoredNetworks, NetworkConfigError } from './policy/networks.js';

/** Problems listed in a start-up error before "and N more". */
const MAX_PROBLEMS_SHOWN = 5;

export class SitePolicyError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface SitePolicyFiles {
  /** Blocklists: `FILE` (list named after the file) or `NAME=FILE`. */
  readonly blocklists?: readonly string[];
  readonly allowList?: string;
  readonly identityMap?: string;
  /** CIDRs of the inside networks (default RFC 1918, CGNAT, ULA, link-local) and of hosts to ignore. */
  readonly monitored?: readonly string[];
  readonly ignored?: readonly string[];
}

export interface SitePolicy {
  readonly domains: DomainPolicy | undefined;
  readonly allowList: AllowList | undefined;
  readonly identityMap: StaticMap | undefined;
  readonly networks: MonitoredNetworks;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SitePolicyError('E_POLICY_READ', `Cannot read ${what} "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function refuse(code: string, path: string, problems: ReadonlyArray<{ line: number; reason: string }>, total = problems.length): never {
  const shown = problems.slice(0, MAX_PROBLEMS_SHOWN).map((p) => `line ${p.line}: ${p.reason}`).join('; ');
  const more = total > MAX_PROBLEMS_SHOWN ? `; and ${total - MAX_PROBLEMS_SHOWN} more` : '';
  throw new SitePolicyError(code, `${path}: ${total} bad ${total === 1 ? 'entry' : 'entries'}: ${shown}${more}`);
}

export function loadSitePolicy(files: SitePolicyFiles): SitePolicy {
  let domains: DomainPolicy | undefined;
  if (files.blocklists !== undefined && files.blocklists.length > 0) {
    const builder = new DomainPolicyBuilder();
    for (const spec of files.blocklists) {
      const eq = spec.indexOf('=');
      const [list, path] = eq > 0 ? [spec.slice(0, eq), spec.slice(eq + 1)] : [basename(spec).replace(/\.[^.]*$/, ''), spec];
      const report = loadDomainList(builder, readText(path, 'blocklist'), { list });
      if (report.problemCount > 0) refuse('E_BLOCKLIST', path, report.problems, report.problemCount);
    }
    domains = builder.build();
  }
  let allowList: AllowList | undefined;
  if (files.allowList !== undefined) {
    const { allowList: a, problems } = AllowList.parse(readText(files.allowList, 'allow list'));
    if (problems.length > 0) refuse('E_ALLOW_LIST', files.allowList, problems.map((p) => ({ line: p.line, reason: p.error })));
    allowList = a;
  }
  let identityMap: StaticMap | undefined;
  if (files.identityMap !== undefined) {
    readText(files.identityMap, 'identity map');
    identityMap = loadStaticMap(files.identityMap);
    if (identityMap.errors.length > 0) refuse('E_IDENTITY_MAP', files.identityMap, identityMap.errors.map((e) => ({ line: e.line, reason: e.message })));
  }
  let networks: MonitoredNetworks;
  try {
    networks = new MonitoredNetworks({
      ...(files.monitored !== undefined && files.monitored.length > 0 ? { monitored: files.monitored } : {}),
      ...(files.ignored !== undefined ? { ignored: files.ignored } : {}),
    });
  } catch (err) {
    if (err instanceof NetworkConfigError) throw new SitePolicyError('E_NETWORKS', err.message);
    throw err;
  }
  return { domains, allowList, identityMap, networks };
}
