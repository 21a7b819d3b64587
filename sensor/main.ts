/**
 * Composition root: configuration -> stages -> outputs. Builds the phrase matcher (Hyperscan when
 * the native addon loads, else the pure-TypeScript DFA), the HTTP app layer with its content
 * inspector, the capture collector and the outputs, and hands them to the pipeline. No logic of
 * its own beyond choosing and wiring.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dictionaryFormat, loadDictionary } from '../rules/check.js';
import type { Dictionary } from '../rules/dictionary.js';
import { findHttpStart, probeHttp } from './app-layer/http/index.js';
import { HttpSession } from './app-layer/http/session.js';
import { Http2Session, probeHttp2 } from './app-layer/http2/index.js';
import { AppLayerFactory, type AppLayerProtocol } from './app-layer/detect.js';
import { DatagramDispatcher } from './app-layer/datagrams.js';
import { QuicTracker, type QuicHelloInfo } from './app-layer/quic/index.js';
import { ja3, ja4 } from './app-layer/tls/fingerprint.js';
import { KeyLogError, KeyStore, watchKeyLogFile, type KeyLogWatcher } from './app-layer/tls/keylog.js';
import { RsaKeyError, RsaKeyRing } from './app-layer/tls/rsa.js';
import { PendingBudget, tlsAppLayer } from './app-layer/tls/index.js';
import type { CaptureEvent } from './events/capture.js';
import { tlsEventFor, type TlsEvent } from './events/tls.js';
import { Counters, defineAnomaly, defineCounter } from './events/counters.js';
import { CaptureCollector, DEFAULT_DEDUP_WINDOW_US } from './inspect/captures.js';
import type { FlowInfo, StreamConsumer } from './flow/stream.js';
import { DEFAULT_FLOW_LIMITS, type CaptureBypassSink, type FlowLimits } from './flow/flow-table.js';
import { HttpInspector, type HttpCarrier, type InspectContext } from './inspect/http-inspector.js';
import type { MatchDatabase } from './match/engine.js';
import { loadHyperscan } from './match/hyperscan.js';
import { compileDictionary, loadMatcher, MatcherFormatError, matcherPatterns, type CompiledMatcher } from './match/matcher.js';
import { Pipeline } from './pipeline.js';
import { DEFAULT_LOCALITY_FRAMES } from './workers/locality.js';
import { DhcpIdentity, DHCPV4_PORTS, DHCPV6_PORTS } from './app-layer/dhcp/index.js';
import { DnsDatagramHandler, DnsTransactions, DNS_UDP_PORTS, dnsAppLayer, type DnsSink } from './app-layer/dns/index.js';
import { ObservedHttpSink } from './app-layer/http/observe.js';
import { KerberosIdentity, KERBEROS_PORT, kerberosTcpAppLayer } from './app-layer/kerberos/index.js';
import { NetbiosIdentity, NETBIOS_NS_PORT } from './app-layer/netbios/index.js';
import { NtlmIdentity } from './app-layer/ntlm/index.js';
import { RadiusIdentity, RADIUS_PORTS } from './app-layer/radius/index.js';
import type { DnsPolicyEvent } from './events/dns.js';
import { applyStaticMap } from './identity/static-map.js';
import { IdentityTable } from './identity/table.js';
import type { CaptureAttribution } from './inspect/captures.js';
import { DomainWatch } from './inspect/domain-watch.js';
import { EVIDENCE_BUDGET_BYTES, EvidenceBudget, type Evidence } from './inspect/evidence.js';
import type { HttpRequest } from './app-layer/http/session.js';
import { loadSitePolicy, type SitePolicy, type SitePolicyFiles } from './site-policy.js';

/** The starter dictionary shipped in rules/, used when no other is configured. */
export const DEFAULT_DICTIONARY = fileURLToPath(new URL('../../rules/starter.json', import.meta.url));
/** File name ending of a compiled dictionary (`hark dictionary compile`). */
export const COMPILED_DICTIONARY_EXT = '.hdict';

export type EngineChoice = 'auto' | 'hyperscan' | 'js';

const C_RECONFIGURED = defineCounter('sensor.reconfigured');
const A_TUNNEL_TOO_DEEP = defineAnomaly('http.tunnel.too_deep');

/**
 * CONNECT tunnels looked into inside one another, at most. A chain of proxies is one or two deep;
 * every level adds a parser that each byte of the flow passes through, so thousands of nested
 * CONNECTs in a few hundred KB would exhaust the stack and blind inspection of the flow. A tunnel
 * deeper than this is counted (http.tunnel.too_deep) and its bytes are not looked into.
 */
const MAX_TUNNEL_DEPTH = 4;

export interface SensorOptions {
  /** A dictionary file (CSV, JSON pack, compiled .hdict) or a Dictionary already in memory. */
  readonly dictionary?: string | Dictionary;
  readonly engine?: EngineChoice;
  /** A dictionary and engine already loaded (shared with another sensor): `dictionary` and `engine` are then not read. */
  readonly matching?: Matching;
  readonly dedupWindowUs?: number;
  readonly bodyLimitBytes?: number;
  /** Every capture; with `keepEvidence`, the page of a viewed capture the first time it is emitted. */
  readonly onCapture: (capture: CaptureEvent, evidence?: Evidence) => void;
  /** Flow table limits (count and memcap); default DEFAULT_FLOW_LIMITS. */
  readonly flowLimits?: Partial<Pick<FlowLimits, 'maxFlows' | 'memcapBytes'>>;
  /** Keep the response pages of viewed captures (bounded) for home's evidence pictures. */
  readonly keepEvidence?: boolean;
  readonly counters?: Counters;
  /** Drop mirror-port duplicate copies of packets (default true). */
  readonly dropDuplicates?: boolean;
  /** Frames per connection-grouped batch (PipelineOptions.localityFrames; default DEFAULT_LOCALITY_FRAMES, 0: capture order). */
  readonly localityFrames?: number;
  /** Stop reassembling flows nothing more can be learned from (default true; PipelineOptions.bypass). */
  readonly bypass?: boolean;
  /** A worker's capture-thread bypass (PipelineOptions.captureBypass). */
  readonly captureBypass?: CaptureBypassSink;
  /** NSS key log files (SSLKEYLOGFILE format) with TLS session secrets. */
  readonly keyLogs?: readonly string[];
  /** Follow the key logs as they grow (live sensor) rather than reading them once (default false). */
  readonly followKeyLogs?: boolean;
  /** A key store fed from elsewhere too (the local API); made when key logs are given and this is not. */
  readonly keyStore?: KeyStore;
  /** RSA server private keys (PEM) for TLS <= 1.2 RSA key exchange. */
  readonly rsaKeys?: readonly string[];
  /** Capture time encrypted records wait for late keys (default 0 for files, see TLS_KEY_WAIT_US). */
  readonly keyWaitUs?: number;
  /** Without key logs, records wait for keys only once a key has come (TlsKeySources.waitOnlyOnceKeys). */
  readonly keyWaitAuto?: boolean;
  /** Events other than captures (tls, dns policy). */
  readonly onEvent?: (event: TlsEvent | DnsPolicyEvent) => void;
  /** Site policy files (blocklists, allow list, identity map, networks), or the policy already loaded. */
  readonly site?: SitePolicyFiles | SitePolicy;
  /** The identity table (shared with the local API); made when not given. */
  readonly identity?: IdentityTable;
}

export class SensorConfigError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface Matching {
  readonly matcher: CompiledMatcher;
  readonly database?: MatchDatabase;
  /** `hyperscan` or `js`, and why not Hyperscan when it was not used. */
  readonly engine: string;
  readonly note?: string;
}

function loadMatcherFrom(source: string | Dictionary): CompiledMatcher {
  if (typeof source !== 'string') return compileDictionary(source);
  if (!existsSync(source)) throw new SensorConfigError('E_DICTIONARY_READ', `Cannot read dictionary "${source}": no such file`);
  if (statSync(source).isDirectory()) throw new SensorConfigError('E_DICTIONARY_READ', `Cannot read dictionary "${source}": is a directory`);
  if (source.endsWith(COMPILED_DICTIONARY_EXT)) return loadCompiledDictionary(source);
  // Checked here rather than left to loadDictionary, whose message lists only the source formats.
  if (dictionaryFormat(source) === undefined) {
    throw new SensorConfigError('E_DICTIONARY_FORMAT', `Cannot read dictionary "${source}": extension "${extname(source)}" is not .csv, .json or ${COMPILED_DICTIONARY_EXT}`);
  }
  return compileDictionary(loadDictionary(source));
}

/**
 * A compiled dictionary file, its damage (truncated, foreign, an older format) an
 * E_DICTIONARY_FORMAT naming the file: a worker hands only `code` and `message` back to the
 * pool, and `hark scan` / `hark run` print any E_ error as one line.
 */
function loadCompiledDictionary(path: string): CompiledMatcher {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new SensorConfigError('E_DICTIONARY_READ', `Cannot read dictionary "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    return loadMatcher(bytes);
  } catch (err) {
    if (err instanceof MatcherFormatError) throw new SensorConfigError('E_DICTIONARY_FORMAT', `Cannot load compiled dictionary "${path}": ${err.reason}`, { cause: err });
    throw err;
  }
}

/** Loads a dictionary (source .csv/.json, a compiled .hdict, or in memory) and the engine that will run it. */
export function loadMatching(source: string | Dictionary, engine: EngineChoice, counters: Counters): Matching {
  const matcher = loadMatcherFrom(source);
  if (engine === 'js') return { matcher, engine: 'js' };
  const hs = loadHyperscan(counters);
  if (hs.engine === undefined) {
    if (engine === 'hyperscan') throw new SensorConfigError('E_ENGINE', `Cannot use the Hyperscan engine: ${hs.reason}`);
    return { matcher, engine: 'js', note: hs.reason };
  }
  return { matcher, database: hs.engine.compileLiterals(matcherPatterns(matcher)), engine: 'hyperscan' };
}

/** HTTP/2 and HTTP/1.x app layers whose messages go to a content inspector, every request shown to
 * `observe` first (HTTP/2 probes first: its preface also looks like an HTTP/1 request line). */
function httpProtocols(
  ctx: InspectContext, counters: Counters, bodyLimitBytes: number | undefined, carrier: HttpCarrier, observe: (req: HttpRequest) => void,
  tunnel?: (flow: FlowInfo) => StreamConsumer | undefined,
): AppLayerProtocol[] {
  return [
    {
      name: 'http2',
      probe: probeHttp2,
      create: (flow: FlowInfo) => new Http2Session(flow, new ObservedHttpSink(new HttpInspector(flow, ctx, { ...carrier, appProto: 'http2' }), observe), counters, { bodyLimitBytes }),
    },
    {
      name: 'http',
      probe: probeHttp,
      findStart: findHttpStart,
      create: (flow: FlowInfo) => new HttpSession(flow, new ObservedHttpSink(new HttpInspector(flow, ctx, carrier), observe), counters, { bodyLimitBytes, tunnel }),
    },
  ];
}

function isSitePolicy(site: SitePolicyFiles | SitePolicy): site is SitePolicy {
  return 'networks' in site;
}

function sitePolicyFrom(site: SitePolicyFiles | SitePolicy | undefined): SitePolicy {
  try {
    return site === undefined ? loadSitePolicy({}) : isSitePolicy(site) ? site : loadSitePolicy(site);
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new SensorConfigError(e.code ?? 'E_POLICY', e.message, { cause: err });
  }
}

function loadRsaKeys(paths: readonly string[] | undefined): RsaKeyRing | undefined {
  if (paths === undefined || paths.length === 0) return undefined;
  try {
    return RsaKeyRing.load(paths);
  } catch (err) {
    if (err instanceof RsaKeyError) throw new SensorConfigError('E_RSA_KEY', err.message, { cause: err });
    throw err;
  }
}

/** A QUIC connection's tls event: what its Initial packet showed; the content is never readable. */
function quicEvent(h: QuicHelloInfo): TlsEvent {
  const ch = h.clientHello;
  const j3 = ch !== undefined ? ja3(ch) : undefined;
  return tlsEventFor(h.flow, h.tsUs, 'quic', {
    ...(h.sni !== undefined ? { sni: h.sni } : {}),
    version: `QUIC ${h.version.name}`,
    client_alpns: ch !== undefined ? [...ch.alpn] : [],
    ...(j3 !== undefined ? { ja3: { hash: j3.hash, string: j3.text } } : {}),
    ...(ch !== undefined ? { ja4: ja4(ch, 'quic') } : {}),
    ech: ch?.echOuter ?? false,
    resumed: false,
    decrypted: false,
    not_decrypted_reason: 'quic',
    app_bytes: 0,
    decrypted_bytes: 0,
  });
}

export class Sensor {
  readonly counters: Counters;
  readonly pipeline: Pipeline;
  readonly collector: CaptureCollector;
  /** Replaced as a whole by `reconfigure()`; messages being scanned keep the one they started with. */
  matching: Matching;
  readonly keyStore: KeyStore | undefined;
  readonly identity: IdentityTable;
  /** Replaced as a whole by `reconfigure()`. */
  site: SitePolicy;
  private watch: DomainWatch | undefined;
  private readonly attribution: CaptureAttribution;
  private readonly onEvent: SensorOptions['onEvent'];
  private readonly keyLogWatchers: KeyLogWatcher[] = [];
  private readonly dnsTransactions: DnsTransactions;

  constructor(opts: SensorOptions) {
    this.counters = opts.counters ?? new Counters();
    const counters = this.counters;
    this.matching = opts.matching ?? loadMatching(opts.dictionary ?? DEFAULT_DICTIONARY, opts.engine ?? 'auto', counters);
    this.site = sitePolicyFrom(opts.site);
    const identity = (this.identity = opts.identity ?? new IdentityTable(counters));
    if (this.site.identityMap !== undefined) applyStaticMap(identity, this.site.identityMap);
    // Every closure reads this.site / this.watch / this.matching when called, so reconfigure() swaps them.
    const attribution: CaptureAttribution = (this.attribution = {
      identify: (ip, tsUs) => identity.lookup(ip, tsUs),
      userSide: (src, dst) => {
        const o = this.site.networks.orient(src, dst);
        return o.kind === 'ignored' ? 'ignore' : o.user ?? 'src';
      },
      allowed: (host: string) => this.site.allowList?.allows(host) === true,
    });
    this.collector = new CaptureCollector(opts.onCapture, counters, opts.dedupWindowUs ?? DEFAULT_DEDUP_WINDOW_US, attribution);
    const onEvent = (this.onEvent = opts.onEvent);
    this.watch = this.domainWatch(this.site);
    const ntlm = new NtlmIdentity(identity, counters);
    const observe = (req: HttpRequest): void => {
      ntlm.onHttpRequest(req);
      this.watch?.request(req);
    };
    const sensor = this;
    const ctx: InspectContext = {
      get matcher() {
        return sensor.matching.matcher;
      },
      get database() {
        return sensor.matching.database;
      },
      counters,
      collector: this.collector,
      ...(opts.keepEvidence === true ? { evidence: new EvidenceBudget(EVIDENCE_BUDGET_BYTES, counters) } : {}),
    };
    // What a CONNECT tunnel carries (TLS to a web proxy) is detected and inspected like any TCP
    // flow's bytes, by a factory whose own tunnels are one level deeper (made at the first use).
    const tunnelFactories: AppLayerFactory[] = [];
    const tunnelAt = (depth: number) => (flow: FlowInfo): StreamConsumer | undefined => {
      if (depth > MAX_TUNNEL_DEPTH) {
        counters.inc(A_TUNNEL_TOO_DEEP);
        return undefined;
      }
      tunnelFactories[depth] ??= new AppLayerFactory(streamProtocols(httpProtocols(ctx, counters, opts.bodyLimitBytes, {}, observe, tunnelAt(depth + 1))), counters);
      return tunnelFactories[depth].open(flow);
    };
    const http = httpProtocols(ctx, counters, opts.bodyLimitBytes, {}, observe, tunnelAt(1));
    this.keyStore = opts.keyStore ?? (opts.keyLogs !== undefined && opts.keyLogs.length > 0 ? new KeyStore(counters) : undefined);
    this.openKeyLogs(opts.keyLogs ?? [], opts.followKeyLogs === true);
    const tls = tlsAppLayer({
      counters,
      keys: {
        keyStore: this.keyStore,
        rsaKeys: loadRsaKeys(opts.rsaKeys),
        keyWaitUs: opts.keyWaitUs ?? 0,
        waitOnlyOnceKeys: opts.keyWaitAuto === true && (opts.keyLogs ?? []).length === 0,
      },
      pending: new PendingBudget(),
      inner: (flow, sni) => new AppLayerFactory(httpProtocols(ctx, counters, opts.bodyLimitBytes, { decrypted: true, sni }, observe), counters, 'app_layer.decrypted_bytes').open(flow),
      onEvent: (flow, tsUs, fields) => {
        if (fields.sni !== undefined) this.watch?.sni(flow, tsUs, fields.sni, false);
        onEvent?.(tlsEventFor(flow, tsUs, 'tls', fields));
      },
    });
    const quic = new QuicTracker(counters, (hello) => {
      if (hello.sni !== undefined) this.watch?.sni(hello.flow, hello.tsUs, hello.sni, true);
      onEvent?.(quicEvent(hello));
    });
    // DNS: queries against the domain policy; reverse answers name addresses for the identity table.
    const dnsSink: DnsSink = {
      query: (q) => this.watch?.query(q),
      response: (r) => {
        const mdns = r.service === 'mdns';
        const local = (name: string): string => (mdns && name.toLowerCase().endsWith('.local') ? name.slice(0, -'.local'.length) : name);
        for (const p of r.ptrs) identity.observe({ ip: p.address, hostname: local(p.hostname), source: mdns ? 'mdns' : 'dns-ptr', tsUs: r.tsUs });
        // mDNS announces a device's own name: NAME.local -> its addresses.
        if (mdns) {
          for (const a of r.answers) {
            if ((a.rdata.kind === 'a' || a.rdata.kind === 'aaaa') && a.lname.endsWith('.local')) {
              identity.observe({ ip: a.rdata.address, hostname: local(a.name), source: 'mdns', tsUs: r.tsUs });
            }
          }
        }
      },
    };
    this.dnsTransactions = new DnsTransactions(dnsSink, counters);
    const dns = new DnsDatagramHandler(dnsSink, counters, this.dnsTransactions);
    const dhcp = new DhcpIdentity(identity, counters);
    const udp = new DatagramDispatcher([
      { name: 'quic', ports: [443], sink: quic, flowEnded: (id) => quic.end(id) },
      { name: 'dns', ports: DNS_UDP_PORTS, sink: dns },
      { name: 'dhcp', ports: [...DHCPV4_PORTS, ...DHCPV6_PORTS], sink: dhcp },
      { name: 'radius', ports: RADIUS_PORTS, sink: new RadiusIdentity(identity, counters) },
      { name: 'kerberos', ports: [KERBEROS_PORT], sink: new KerberosIdentity(identity, counters) },
      { name: 'netbios', ports: [NETBIOS_NS_PORT], sink: new NetbiosIdentity(identity, counters) },
    ], counters);
    const dnsTcp = { name: 'dns', probe: dnsAppLayer.probe, create: (flow: FlowInfo) => dnsAppLayer.create(flow, dnsSink, counters, this.dnsTransactions) };
    const kerberosTcp = kerberosTcpAppLayer(identity, counters);
    const streamProtocols = (httpLayers: AppLayerProtocol[]): AppLayerProtocol[] => [...httpLayers, tls, dnsTcp, kerberosTcp];
    const streams = new AppLayerFactory(streamProtocols(http), counters);
    this.pipeline = new Pipeline({
      counters,
      streams,
      datagrams: udp,
      flowEnded: { flowEnded: (r) => udp.flowEnded(r) },
      dropDuplicates: opts.dropDuplicates,
      bypass: opts.bypass,
      captureBypass: opts.captureBypass,
      localityFrames: opts.localityFrames ?? DEFAULT_LOCALITY_FRAMES,
      flowLimits: { ...DEFAULT_FLOW_LIMITS, ...opts.flowLimits },
    });
  }

  private domainWatch(site: SitePolicy): DomainWatch | undefined {
    return site.domains !== undefined ? new DomainWatch(site.domains, this.attribution, (e) => this.onEvent?.(e), this.counters) : undefined;
  }

  /**
   * Swaps in a new dictionary and/or site policy (a reload) without stopping: everything new is
   * loaded and checked first, so a bad file leaves the running configuration untouched (and throws
   * a SensorConfigError); then the swap is a few assignments. Flows go on; a message already being
   * scanned finishes with the dictionary it started with.
   */
  reconfigure(opts: { dictionary?: string | Dictionary; engine?: EngineChoice; site?: SitePolicyFiles | SitePolicy }): void {
    const matching = opts.dictionary !== undefined ? loadMatching(opts.dictionary, opts.engine ?? 'auto', this.counters) : undefined;
    const site = opts.site !== undefined ? sitePolicyFrom(opts.site) : undefined;
    if (matching !== undefined) this.matching = matching;
    if (site !== undefined) {
      this.site = site;
      this.watch = this.domainWatch(site);
      if (site.identityMap !== undefined) applyStaticMap(this.identity, site.identityMap);
    }
    this.counters.inc(C_RECONFIGURED);
  }

  private openKeyLogs(paths: readonly string[], follow: boolean): void {
    const store = this.keyStore;
    if (store === undefined) return;
    for (const path of paths) {
      try {
        this.keyLogWatchers.push(watchKeyLogFile(path, store, this.counters, { follow }));
      } catch (err) {
        this.close();
        if (err instanceof KeyLogError) throw new SensorConfigError('E_KEYLOG', err.message, { cause: err });
        throw err;
      }
    }
  }

  /** Stops following key logs. */
  close(): void {
    for (const w of this.keyLogWatchers.splice(0)) w.close();
  }

  /** End of input: every flow ends, every held capture is emitted. */
  finish(): void {
    this.pipeline.finish();
    this.dnsTransactions.finish();
    this.collector.flush();
  }
}
