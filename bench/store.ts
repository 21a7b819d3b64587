/**
 * Benchmark: the capture store and the uploader. Commits N synthetic captures (synchronous=FULL,
 * 500 per transaction, on the real disk under the OS tmp dir) and reports captures/s committed;
 * then uploads them all to a loopback HTTP ingest server running in a child process (a node:http
 * server keeping ids in a Set, so its work is not charged to, or hidden in, this process) and
 * reports captures/s uploaded, checking the server holds every id. Peak RSS of this process.
 * Prints figures; asserts nothing about speed.
 *
 *   node dist/bench/store.js [--captures 200000] [--batch 500]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { CaptureEvent } from '../sensor/events/capture.js';
import { isoMicros, stableId } from '../sensor/events/capture.js';
import { Counters } from '../sensor/events/counters.js';
import type { HomeRequestOptions, HomeResponse, HomeTransport } from '../sensor/home-client/transport.js';
import { CaptureStore } from '../sensor/store/capture-store.js';
import { Uploader } from '../sensor/upload/uploader.js';
import { BenchCommandLine } from './command-line.js';

export interface StoreBenchResult {
  captures: number;
  commitSeconds: number;
  committedPerSec: number;
  dbBytes: number;
  uploadSeconds: number;
  uploadedPerSec: number;
  uploadBatch: number;
  serverIds: number;
  peakRssBytes: number;
}

const CATEGORIES = ['weapons', 'violence', 'drugs', 'self-harm', 'bullying', 'adult'];

/** A realistic capture (~1 KB as JSON) from a counter: cheap, deterministic, varied severity. */
function syntheticCapture(n: number): CaptureEvent {
  const ts = 1_700_000_000_000_000 + n * 1000;
  return {
    event_type: 'capture',
    id: stableId(ts, 'bench', n),
    timestamp: isoMicros(ts),
    ts_us: ts,
    flow_id: n >>> 3,
    src_ip: `10.0.${(n >>> 8) & 255}.${n & 255}`,
    src_port: 49152 + (n % 16384),
    dest_ip: '192.0.2.1',
    dest_port: 443,
    vlan: [6],
    proto: 'TCP',
    app_proto: 'http',
    decrypted: true,
    direction: 'to_server',
    source: 'typed',
    field: 'search',
    host: 'www.search.example',
    url: `/search?q=where+to+buy+an+ak47+${n}&client=firefox-b-d&sourceid=chrome&ie=UTF-8`,
    method: 'GET',
    phrase: 'AK47',
    category: CATEGORIES[n % CATEGORIES.length],
    severity: 1 + (n % 5),
    count: 1,
    context: `where to buy an [[ak47]] near me cheap ${n} - the words typed before and after the phrase, as the sensor keeps them for review`,
    device: { ip: `10.0.${(n >>> 8) & 255}.${n & 255}`, mac: '00:11:22:33:44:55', hostname: `pupil-laptop-${n % 900}`, user: `pupil${n % 900}` },
  };
}

/** Plain-HTTP HomeTransport for the loopback ingest server (the sensor's is mutual TLS). */
class LoopbackTransport implements HomeTransport {
  constructor(private readonly base: string) {}

  async request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, opts: HomeRequestOptions = {}): Promise<HomeResponse> {
    const res = await request(this.base + path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: opts.signal,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
    const text = await res.body.text();
    return { status: res.statusCode, body: text.length > 0 ? JSON.parse(text) : undefined, home: this.base };
  }
}

/** The child: an ingest server that keeps ids in a Set and answers {accepted, duplicates}. */
function serveIngest(): void {
  const stored = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let accepted = 0;
      let duplicates = 0;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { captures: { id: string }[] };
        for (const c of body.captures) {
          if (stored.has(c.id)) duplicates++;
          else {
            stored.add(c.id);
            accepted++;
          }
        }
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"E_JSON","message":"not JSON"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted, duplicates }));
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  process.on('message', (m: { count?: boolean; exit?: boolean }) => {
    if (m.count === true) process.send?.({ ids: stored.size });
    if (m.exit === true) server.close(() => process.exit(0));
  });
}

function ask<T>(child: ChildProcess, msg: object, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (key in m) {
        child.off('message', on);
        resolve(m[key] as T);
      }
    };
    child.on('message', on);
    if (Object.keys(msg).length > 0) child.send(msg);
  });
}

const cli: BenchCommandLine = new BenchCommandLine('bench/store', 'Usage: node dist/bench/store.js [--captures 200000] [--batch 500]\n');

/** Runs the bench; a bad command line ends the process with the usage (exit 2). */
export async function main(args: string[] = process.argv.slice(2)): Promise<StoreBenchResult> {
  const { values } = cli.parse({ args, options: { captures: { type: 'string', default: '200000' }, batch: { type: 'string', default: '500' } } });
  const n = cli.wholeNumber('--captures', values.captures, 'captures', 1);
  const uploadBatch = cli.wholeNumber('--batch', values.batch, 'captures', 1);
  const dir = mkdtempSync(join(tmpdir(), 'hark-bench-store-'));
  const child = fork(fileURLToPath(import.meta.url), ['--ingest-server'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await ask<number>(child, {}, 'port');
    const path = join(dir, 'captures.db');
    const counters = new Counters();
    const store = new CaptureStore(path, { counters });

    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) store.add(syntheticCapture(i));
    store.flush();
    const commitSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const dbBytes = statSync(path).size + statSync(`${path}-wal`).size;

    const uploader = new Uploader(store, new LoopbackTransport(`http://127.0.0.1:${port}`), { counters, batchSize: uploadBatch });
    const t1 = process.hrtime.bigint();
    uploader.start();
    const drained = await uploader.drain(30 * 60_000);
    const uploadSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
    await uploader.stop();
    const serverIds = await ask<number>(child, { count: true }, 'ids');
    store.close();
    if (!drained || serverIds !== n) throw new Error(`upload incomplete: server holds ${serverIds} of ${n} ids (drained: ${drained}, failures ${counters.get('upload.failures')})`);

    const result: StoreBenchResult = {
      captures: n,
      commitSeconds: round(commitSeconds),
      committedPerSec: Math.round(n / commitSeconds),
      dbBytes,
      uploadSeconds: round(uploadSeconds),
      uploadedPerSec: Math.round(n / uploadSeconds),
      uploadBatch,
      serverIds,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
    const mib = (b: number) => (b / 1048576).toFixed(1);
    process.stdout.write(
      `capture store, ${n.toLocaleString('en-GB')} captures: committed ${result.committedPerSec.toLocaleString('en-GB')}/s ` +
      `(${result.commitSeconds} s, synchronous=FULL, 500 per transaction, ${mib(dbBytes)} MiB on disk)\n` +
      `uploader: ${result.uploadedPerSec.toLocaleString('en-GB')} captures/s to a loopback ingest server in a child process ` +
      `(${result.uploadSeconds} s, batches of ${uploadBatch}, server holds ${serverIds.toLocaleString('en-GB')} ids)\n` +
      `peak RSS ${mib(result.peakRssBytes)} MiB\n`,
    );
    return result;
  } finally {
    child.send({ exit: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  if (process.argv.includes('--ingest-server')) serveIngest();
  else {
    main().catch((err: unknown) => {
      process.stderr.write(`bench/store: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    });
  }
}
