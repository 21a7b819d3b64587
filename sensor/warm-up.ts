/**
 * Start-up warm-up: synthetic mirror-port traffic through a throwaway Sensor before a live sensor
 * opens its interfaces. Input: the sensor's options and its loaded dictionary (shared, not
 * compiled again), a time budget. Output: nothing but V8's compiled code (and the module pools
 * the pipeline reuses): the throwaway sensor's captures, events, counters, flows and identity
 * table are its own and are dropped.
 *
 * Why: V8 compiles the hot functions only once they have run a while, on the cores the packets
 * need. A sensor (re)started onto a busy mirror port spent its first second or two at half speed
 * compiling its three threads' code, filled its worker rings and then lost frames at the hand-off
 * for seconds (`node dist/bench/live.js`: at 500 Mbit/s the backlog reached 63 MB 1.3 s into the
 * replay while the workers ran at 31-35% of a core). Warmed up first, the same step kept up.
 *
 * The traffic: TCP conversations between addresses of the benchmarking range (RFC 2544,
 * 198.18.0.0/15), each a search (a dictionary phrase in the query), a gzip + chunked HTML page, a
 * JSON post and its JSON answer, a form post and a UTF-8 text answer, all carrying dictionary
 * phrases, then FIN both ways; and a DNS query and answer over UDP. Deterministic, no I/O.
 */
import { gzipSync } from 'node:zlib';
import { Counters } from './events/counters.js';
import { DLT_EN10MB, ETHERTYPE_IPV4 } from './decode/dispatch.js';
import { IPPROTO_TCP, IPPROTO_UDP } from './decode/packet.js';
import { TH_ACK as ACK, TH_FIN as FIN, TH_PSH as PSH, TH_SYN as SYN } from './decode/transport.js';
import { Sensor, type Matching, type SensorOptions } from './main.js';

/** Default budget: long enough for V8 to optimise the packet path's hot functions (see README). */
export const DEFAULT_WARM_UP_MS = 1000;
/** Upper bound on rounds whatever the budget (a round is ~128 kB of frames). */
const MAX_ROUNDS = 400;
/** Conversations per round, each from its own client port. */
const CONVERSATIONS = 24;
/** TCP payload per segment, as an Ethernet path with timestamps carries. */
const MSS = 1448;
/** Capture time of the first frame: any fixed instant (only ids and merge windows read it). */
const START_US = 1_700_000_000_000_000;

type PacketFn = Sensor['pipeline']['packet'];

export interface WarmUpOptions {
  /** What the real sensor was built from; its callbacks, key logs and identity are not used. */
  readonly sensorOptions: Omit<SensorOptions, 'onCapture' | 'onEvent' | 'matching'>;
  /** The real sensor's dictionary and engine, shared. */
  readonly matching: Matching;
  /** Stop starting rounds after this long (wall clock); at least one round runs. */
  readonly budgetMs: number;
  /** The throwaway sensor's counters (tests read them); default: its own. */
  readonly counters?: Counters;
}

export interface WarmUpResult {
  readonly rounds: number;
  readonly frames: number;
  readonly bytes: number;
  /** Captures the throwaway sensor handed over (dropped; a merged one again with its final count): the match path ran. */
  readonly captures: number;
  readonly ms: number;
}

/** Runs rounds of synthetic traffic through a throwaway sensor until the budget is spent. */
export function warmUp(o: WarmUpOptions): WarmUpResult {
  const t0 = performance.now();
  let captures = 0;
  const s = o.sensorOptions;
  // its own counters, identity table and key store; no key logs, RSA keys or capture-thread bypass
  const sensor = new Sensor({
    dedupWindowUs: s.dedupWindowUs,
    bodyLimitBytes: s.bodyLimitBytes,
    flowLimits: s.flowLimits,
    dropDuplicates: s.dropDuplicates,
    bypass: s.bypass,
    keepEvidence: s.keepEvidence,
    keyWaitUs: s.keyWaitUs,
    site: s.site,
    matching: o.matching,
    counters: o.counters ?? new Counters(),
    onCapture: () => {
      captures++;
    },
  });
  const traffic = warmUpTraffic(o.matching, sensor.pipeline.packet);
  let rounds = 0;
  do {
    traffic.round(rounds);
    rounds++;
  } while (rounds < MAX_ROUNDS && performance.now() - t0 < o.budgetMs);
  sensor.finish();
  return { rounds, frames: traffic.frames(), bytes: traffic.bytes(), captures, ms: performance.now() - t0 };
}

/** The warm-up's frames, round by round, handed to `packet` (exported for the tests). */
export function warmUpTraffic(matching: Matching, packet: PacketFn): { round(n: number): void; frames(): number; bytes(): number } {
  const list = scripts(pickPhrases(matching));
  const wire = new Wire(packet);
  return { round: (n) => playRound(wire, list, n), frames: () => wire.frames, bytes: () => wire.bytes };
}

/** Up to 64 phrases spread over the dictionary (its own spelling), or stand-ins for an empty one. */
function pickPhrases(m: Matching): string[] {
  const all = m.matcher.phrases;
  if (all.length === 0) return ['warm up text'];
  const n = Math.min(64, all.length);
  const out: string[] = [];
  for (let k = 0; k < n; k++) out.push(all[Math.floor((k * all.length) / n)].phrase);
  return out;
}

// ---------- frames ----------

interface Host {
  readonly mac: number;
  readonly ip: number;
  readonly port: number;
}

/** Builds Ethernet / IPv4 / TCP or UDP frames and hands each to the pipeline. */
class Wire {
  frames = 0;
  bytes = 0;
  private tsUs = START_US;
  private ipId = 1;
  private readonly buf = Buffer.alloc(14 + 20 + 20 + MSS);
  /** The same bytes as a plain Uint8Array: every capture source hands the pipeline one (file reader,
   * capture rings, worker rings), and code that V8 compiled for a Buffer's map would be thrown away
   * ("wrong map") at the first real frame. */
  private readonly frame = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.buf.length);

  constructor(private readonly packet: PacketFn) {}

  tcp(from: Host, to: Host, flags: number, seq: number, ack: number, payload: Uint8Array = EMPTY): void {
    const b = this.buf;
    const ipStart = this.ethernet(from, to);
    const l4 = this.ipv4(ipStart, from, to, IPPROTO_TCP, 20 + payload.length);
    b.writeUInt16BE(from.port, l4);
    b.writeUInt16BE(to.port, l4 + 2);
    b.writeUInt32BE(seq >>> 0, l4 + 4);
    b.writeUInt32BE(ack >>> 0, l4 + 8);
    b[l4 + 12] = 5 << 4;
    b[l4 + 13] = flags;
    b.writeUInt16BE(64240, l4 + 14);
    b.writeUInt32BE(0, l4 + 16); // checksum (not verified by the decoder, offloaded on real ports) and urgent pointer
    b.set(payload, l4 + 20);
    this.emit(l4 + 20 + payload.length);
  }

  udp(from: Host, to: Host, payload: Uint8Array): void {
    const b = this.buf;
    const ipStart = this.ethernet(from, to);
    const l4 = this.ipv4(ipStart, from, to, IPPROTO_UDP, 8 + payload.length);
    b.writeUInt16BE(from.port, l4);
    b.writeUInt16BE(to.port, l4 + 2);
    b.writeUInt16BE(8 + payload.length, l4 + 4);
    b.writeUInt16BE(0, l4 + 6);
    b.set(payload, l4 + 8);
    this.emit(l4 + 8 + payload.length);
  }

  private ethernet(from: Host, to: Host): number {
    this.mac(0, to.mac);
    this.mac(6, from.mac);
    this.buf.writeUInt16BE(ETHERTYPE_IPV4, 12);
    return 14;
  }

  /** A locally administered unicast MAC, 02:48:4b ("HK") then the host's 24 bits. */
  private mac(at: number, host: number): void {
    this.buf.writeUInt16BE(0x0248, at);
    this.buf.writeUInt32BE((0x4b000000 | host) >>> 0, at + 2);
  }

  private ipv4(at: number, from: Host, to: Host, proto: number, l4Len: number): number {
    const b = this.buf;
    b[at] = 0x45;
    b[at + 1] = 0;
    b.writeUInt16BE(20 + l4Len, at + 2);
    b.writeUInt16BE(this.ipId, at + 4);
    this.ipId = (this.ipId + 1) & 0xffff;
    b.writeUInt16BE(0x4000, at + 6); // don't fragment
    b[at + 8] = 64;
    b[at + 9] = proto;
    b.writeUInt16BE(0, at + 10);
    b.writeUInt32BE(from.ip >>> 0, at + 12);
    b.writeUInt32BE(to.ip >>> 0, at + 16);
    let sum = 0;
    for (let k = 0; k < 20; k += 2) sum += b.readUInt16BE(at + k);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    b.writeUInt16BE(~sum & 0xffff, at + 10);
    return at + 20;
  }

  private emit(len: number): void {
    this.tsUs += 150;
    this.frames++;
    this.bytes += len;
    this.packet(DLT_EN10MB, this.frame, 0, len, len, this.tsUs, 0);
  }
}

const EMPTY = new Uint8Array(0);

/** One direction of a TCP connection: its next sequence number (mod 2^32). */
class Side {
  constructor(readonly host: Host, public seq: number) {}
}

/** How a message's segments cross the link: in order, with two swapped, or with one sent twice. */
const IN_ORDER = 0;
const SWAPPED = 1;
const RESENT = 2;

/**
 * Sends `data` from `a` to `b` in MSS-sized segments, each acknowledged. SWAPPED delivers the
 * second segment before the first, RESENT sends the first one again after the second (a mirror port
 * carries both, and the reassembler's out-of-order and retransmission paths must be compiled too).
 */
function send(w: Wire, a: Side, b: Side, data: Uint8Array, how = IN_ORDER): void {
  const start = a.seq;
  const segment = (off: number): void => w.tcp(a.host, b.host, ACK | PSH, (start + off) >>> 0, b.seq, data.subarray(off, Math.min(data.length, off + MSS)));
  for (let off = 0; off < data.length; off += MSS) {
    if (how === SWAPPED && off === 0 && data.length > MSS) {
      // the second segment first, then the first: acknowledged once both are in
      segment(MSS);
      segment(0);
      off = MSS;
    } else segment(off);
    a.seq = (start + Math.min(data.length, off + MSS)) >>> 0;
    w.tcp(b.host, a.host, ACK, b.seq, a.seq);
    if (how === RESENT && off === MSS) segment(0);
  }
}

/**
 * An initial sequence number spread over the whole 32-bit space, as real ones are: three in four are
 * above V8's small-integer range (2^30), where arithmetic on them takes another code path.
 */
function initialSeq(k: number, salt: number): number {
  return (Math.imul(k + 1, 0x9e3779b1) ^ salt) >>> 0;
}

/** A client's first sequence number that its first request carries past 2^32. */
const WRAPPING_SEQ = 0x1_0000_0000 - 200;

// ---------- conversations ----------

const SERVER_IP = (198 << 24) | (19 << 16) | 80; // 198.19.0.80

/** The six messages of one conversation, built once and replayed from other ports each round. */
interface Script {
  readonly request: Buffer;
  readonly page: Buffer;
  readonly post: Buffer;
  readonly answer: Buffer;
  readonly form: Buffer;
  readonly text: Buffer;
  readonly dnsLabel: string;
}

/** The conversations of a round: phrase k*3+j of the list in message j. */
function scripts(phrases: readonly string[]): Script[] {
  const out: Script[] = [];
  for (let k = 0; k < CONVERSATIONS; k++) {
    const phrase = (j: number): string => phrases[(k * 3 + j) % phrases.length];
    const json = Buffer.from(JSON.stringify({ message: `hello ${phrase(0)} and ${phrase(3)}`, tags: ['chat', phrase(2)], n: k, note: 'caf\u00e9 \u201cquoted\u201d' }), 'utf8');
    const answer = Buffer.from(JSON.stringify({ ok: true, items: [{ title: phrase(4), body: `more about ${phrase(5)}` }, { title: 'other', body: 'nothing here \u00fcber' }] }), 'utf8');
    const form = `comment=${encodeURIComponent(`I said ${phrase(6)}`).replace(/%20/g, '+')}&name=pupil${k}&submit=Send`;
    const text = Buffer.from(`Thanks. Your note about ${phrase(7)} was saved.\nR\u00e9sum\u00e9 follows: ${filler(k, 400)}\n`, 'utf8');
    out.push({
      request: Buffer.from(searchRequest(phrase(0), k), 'latin1'),
      page: htmlResponse(phrase(1), phrase(2), k),
      post: Buffer.concat([Buffer.from(`POST /api/messages HTTP/1.1\r\nHost: warm-up.invalid\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n`, 'latin1'), json]),
      answer: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${answer.length}\r\n\r\n`, 'latin1'), answer]),
      form: Buffer.from(`POST /comments HTTP/1.1\r\nHost: warm-up.invalid\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`, 'latin1'),
      text: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${text.length}\r\n\r\n`, 'latin1'), text]),
      dnsLabel: phrase(8),
    });
  }
  return out;
}

/** Every conversation once, from client addresses and ports of this round. */
function playRound(w: Wire, list: readonly Script[], round: number): void {
  for (let c = 0; c < list.length; c++) {
    const sc = list[c];
    const k = round * list.length + c;
    const client: Host = { mac: 0x010000 + (k & 0xffff), ip: (198 << 24) | (18 << 16) | (((k >>> 8) & 0xff) << 8) | ((k & 0xff) || 1), port: 20000 + (k % 40000) };
    const server: Host = { mac: 0x000050, ip: SERVER_IP, port: 80 };
    // every fourth conversation's client numbers wrap inside its first request
    const cs = new Side(client, (k & 3) === 1 ? WRAPPING_SEQ : initialSeq(k, 0));
    const ss = new Side(server, initialSeq(k, 0x5bd1e995));
    w.tcp(client, server, SYN, (cs.seq - 1) >>> 0, 0);
    w.tcp(server, client, SYN | ACK, (ss.seq - 1) >>> 0, cs.seq);
    w.tcp(client, server, ACK, cs.seq, ss.seq);
    send(w, cs, ss, sc.request);
    send(w, ss, cs, sc.page);
    send(w, cs, ss, sc.post);
    send(w, ss, cs, sc.answer);
    send(w, cs, ss, sc.form);
    // the text answer (two segments): one conversation in three has them swapped, one in three the first sent twice
    send(w, ss, cs, sc.text, c % 3 === 1 ? SWAPPED : c % 3 === 2 ? RESENT : IN_ORDER);
    w.tcp(client, server, FIN | ACK, cs.seq, ss.seq);
    cs.seq = (cs.seq + 1) >>> 0;
    w.tcp(server, client, FIN | ACK, ss.seq, cs.seq);
    ss.seq = (ss.seq + 1) >>> 0;
    w.tcp(client, server, ACK, cs.seq, ss.seq);
    if (c === 0) dnsExchange(w, client, sc.dnsLabel, k);
  }
}

/** Ordinary words around the phrases, as pages mostly are. */
const FILLER = ('the school library opened a new reading room this week and pupils can borrow books about history science ' +
  'art music and sport from monday to friday while teachers plan lessons for the next term with homework clubs after class').split(' ');

function filler(seed: number, words: number): string {
  const out: string[] = [];
  for (let w = 0; w < words; w++) out.push(FILLER[(seed * 7 + w * 13) % FILLER.length]);
  return out.join(' ');
}

function searchRequest(phrase: string, k: number): string {
  const q = encodeURIComponent(phrase).replace(/%20/g, '+');
  return `GET /search?q=${q}&page=${k % 5} HTTP/1.1\r\nHost: warm-up.invalid\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n` +
    'Accept: text/html,application/xhtml+xml\r\nAccept-Encoding: gzip, deflate\r\nAccept-Language: en-GB,en;q=0.8\r\nConnection: keep-alive\r\n\r\n';
}

/** A results page, gzip then chunked as a web server streams it. */
function htmlResponse(a: string, b: string, k: number): Buffer {
  const paras: string[] = [];
  for (let p = 0; p < 48; p++) {
    const mention = p % 16 === 0 ? ` that mention <b>${p % 32 === 0 ? a : b}</b>` : '';
    paras.push(`<p class="result">Result ${p}: ${filler(k + p, 24)}${mention} &amp; more, caf&eacute; &#8220;news&#8221; item ${k}.</p>`);
  }
  const html = `<!DOCTYPE html><html><head><title>Search: ${a}</title><style>p { margin: 0 }</style>` +
    `<script>var q = "${k}"; function go() { return q; }</script></head><body><h1>Results</h1>${paras.join('\n')}` +
    '<!-- footer --><footer>School library search</footer></body></html>';
  const gz = gzipSync(Buffer.from(html, 'utf8'));
  const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1')];
  for (let off = 0; off < gz.length; off += 700) {
    const piece = gz.subarray(off, Math.min(gz.length, off + 700));
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`, 'latin1'), piece, Buffer.from('\r\n', 'latin1'));
  }
  parts.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return Buffer.concat(parts);
}

/** A DNS A query for a name made of the phrase's letters, and its answer. */
function dnsExchange(w: Wire, client: Host, phrase: string, k: number): void {
  const label = phrase.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'warm';
  const name = [label, 'example', 'invalid'];
  const qname = Buffer.concat([...name.map((l) => Buffer.concat([Buffer.of(l.length), Buffer.from(l, 'latin1')])), Buffer.of(0)]);
  const id = k & 0xffff;
  const query = Buffer.concat([Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), qname, Buffer.of(0, 1, 0, 1)]);
  const answer = Buffer.concat([
    Buffer.from([id >> 8, id & 0xff, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]), qname, Buffer.of(0, 1, 0, 1),
    Buffer.of(0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 198, 19, 0, 80),
  ]);
  const resolver: Host = { mac: 0x000053, ip: (198 << 24) | (19 << 16) | 53, port: 53 };
  const from: Host = { ...client, port: 40000 + (k % 20000) };
  w.udp(from, resolver, query);
  w.udp(resolver, from, answer);
}

/** One log line for the warm-ups of a sensor's packet threads, e.g. "2 threads, 96 rounds, 41.3 MB of frames in 1,004 ms". */
export function describeWarmUps(list: readonly WarmUpResult[]): string {
  let rounds = 0;
  let bytes = 0;
  let ms = 0;
  for (const r of list) {
    rounds += r.rounds;
    bytes += r.bytes;
    ms = Math.max(ms, r.ms);
  }
  const threads = `${list.length} thread${list.length === 1 ? '' : 's'}`;
  return `${threads}, ${rounds} rounds, ${(bytes / 1e6).toFixed(1)} MB of frames in ${Math.round(ms).toLocaleString('en-US')} ms`;
}
