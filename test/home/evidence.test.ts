/**
 * home/evidence.ts Chromium: the command line keeps the sandbox unless home is root; a render as
 * "nobody" (runuser) works with the sandbox on, its renderers under seccomp-bpf in user and PID
 * namespaces of their own; as root the browser runs with --no-sandbox and home.log says so once.
 * Uses Debian's /usr/bin/chromium and needs root (CI runs as root) to run the render as nobody.
 * EvidenceRenderer on a full disk (a small tmpfs, root too): a result it cannot store never ends home.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Chromium, chromiumArgs, DEFAULT_CHROMIUM, EvidenceRenderer, EvidenceStore } from '../../home/evidence.js';
import { HomeLog } from '../../home/log.js';
import { HomeStore } from '../../home/store.js';
import { Counters } from '../../sensor/events/counters.js';
import { withSmallDisk } from '../store/small-disk.js';

const EVIDENCE_JS = fileURLToPath(new URL('../../home/evidence.js', import.meta.url));
/** Starting Chromium and drawing one small page: start-up, not a speed claim. */
const RENDER_DEADLINE_MS = 60_000;

interface ProcessView { pid: number; args: string; seccomp: string; userNs: string; pidNs: string }

/**
 * Every process below `root` as /proc shows it: its command line (Chromium rewrites it with
 * spaces), its seccomp mode (2: a filter) and its user and PID namespaces. Source of the child's
 * report below, and used as is for the root test.
 */
function processesBelow(root: number): ProcessView[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      parent.set(Number(d), Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'))![1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: ProcessView[] = [];
  for (const pid of parent.keys()) {
    let p = parent.get(pid);
    while (p !== undefined && p > 1 && p !== root) p = parent.get(p);
    if (p !== root) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      out.push({
        pid,
        args: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '),
        seccomp: /^Seccomp:\s+(\d+)/m.exec(status)?.[1] ?? '?',
        userNs: readlinkSync(`/proc/${pid}/ns/user`),
        pidNs: readlinkSync(`/proc/${pid}/ns/pid`),
      });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Renders a page with `Chromium` and, while its browser is up, reports the processes below this one. */
const CHILD = `
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Chromium, DEFAULT_CHROMIUM } from ${JSON.stringify(EVIDENCE_JS)};
const processesBelow = ${processesBelow.toString()};
const logged = [];
const chromium = new Chromium({ chromium: DEFAULT_CHROMIUM, log: { write: (event) => logged.push(event) } });
const report = await chromium.run(async (page) => {
  await page.setContent('<html><body><p>a page a pupil was sent</p></body></html>', { waitUntil: 'load', timeout: 15000 });
  const png = await page.screenshot({ type: 'png' });
  return { pngBytes: png.length, processes: processesBelow(process.pid) };
});
await chromium.close();
process.stdout.write(JSON.stringify({ uid: process.getuid(), userNs: readlinkSync('/proc/self/ns/user'), logged, ...report }));
`;

test('chromiumArgs passes --no-sandbox only for root, and always turns the network off', () => {
  assert.ok(chromiumArgs(true).includes('--no-sandbox'));
  assert.ok(!chromiumArgs(false).includes('--no-sandbox'));
  for (const asRoot of [true, false]) {
    assert.ok(chromiumArgs(asRoot).includes('--host-resolver-rules=MAP * ~NOTFOUND'));
    assert.ok(chromiumArgs(asRoot).includes('--proxy-server=127.0.0.1:9'));
  }
});

test('Chromium run by a user other than root renders with its sandbox: renderers under seccomp in namespaces of their own', () => {
  assert.equal(process.getuid?.(), 0, 'this test needs root to run the render as nobody (CI runs as root)');
  const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: RENDER_DEADLINE_MS });
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { uid: number; userNs: string; logged: string[]; pngBytes: number; processes: ProcessView[] };
  assert.equal(report.uid, 65534);
  assert.ok(report.pngBytes > 1000, 'a picture came out');
  assert.deepEqual(report.logged, [], 'nothing to warn about');
  const chromium = report.processes.filter((p) => /chromium/.test(p.args));
  assert.ok(chromium.length > 0, JSON.stringify(report.processes));
  for (const p of chromium) assert.doesNotMatch(p.args, /--no-sandbox/, `pid ${p.pid}`);
  const sandboxed = chromium.filter((p) => p.seccomp === '2' && p.userNs !== report.userNs);
  assert.ok(sandboxed.length > 0, `some Chromium processes (the renderers) run under a seccomp filter in a user namespace of their own: ${JSON.stringify(chromium.map(({ pid, seccomp, userNs }) => ({ pid, seccomp, userNs })))}`);
  assert.ok(sandboxed.every((p) => p.pidNs !== readlinkSync(`/proc/self/ns/pid`)), 'and in PID namespaces of their own');
});

test('Chromium run as root has no sandbox to use: it passes --no-sandbox and home.log says so once', async () => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (CI runs as root)');
  const logged: { event: string; fields: Record<string, unknown> }[] = [];
  const chromium = new Chromium({ chromium: DEFAULT_CHROMIUM, log: { write: (event, fields = {}) => logged.push({ event, fields }) } });
  try {
    for (let i = 0; i < 2; i++) {
      const seen = await chromium.run(async (page) => {
        await page.setContent('<p>root</p>', { waitUntil: 'load', timeout: 15_000 });
        return processesBelow(process.pid).filter((p) => /chromium/.test(p.args));
      });
      assert.ok(seen.some((p) => /--no-sandbox/.test(p.args)), 'Chromium refuses to start as root with its sandbox');
    }
  } finally {
    await chromium.close();
  }
  assert.deepEqual(logged, [{ event: 'evidence.sandbox_off', fields: { reason: 'home runs as root, where Chromium cannot use its sandbox: run home as an unprivileged user' } }]);
});

test('EvidenceRenderer on a full disk: a result it cannot store ends the pass, not home; the next kick stores it', withSmallDisk('4m', async ({ dir, fill }) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown): void => { unhandled.push(err); };
  process.on('unhandledRejection', onUnhandled);
  const store = new HomeStore(join(dir, 'home.db'));
  try {
    const counters = new Counters();
    const lines: string[] = [];
    const log = new HomeLog(join(dir, 'home.log'), (line) => lines.push(line));
    const evidence = new EvidenceStore(store, counters);
    store.putDictionary('starter', 'pack', '{}', 0);
    const sid = store.addSensor({ name: 'full disk' });
    store.ingestCaptures(sid, [{ id: 'fd-1', ts_us: 1, severity: 4, category: 'grooming', user: null, host: null, url: null, phrase: 'our secret', event: '{}' }]);
    evidence.add(sid, [{ capture_id: 'fd-1', content_type: 'text/html', charset: null, body: Buffer.from('<p>our secret</p>'), truncated: false }], 'pending');
    // A browser that fails (a crash, a timeout): what follows is a write of the failure to the database.
    const browser = { available: true, run: () => Promise.reject(new Error('browser has been closed')) } as unknown as Chromium;
    const renderer = new EvidenceRenderer(evidence, browser, counters, log);
    const filler = fill();
    renderer.kick();
    await renderer.idle();
    renderer.kick();
    await renderer.idle();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, [], 'no rejection reaches the event loop');
    assert.equal(counters.get('home.evidence.store_failed'), 2);
    assert.equal(lines.filter((l) => / evidence\.store_failed /.test(l)).length, 1, `logged once per distinct error: ${lines.join('\n')}`);
    assert.match(lines.find((l) => / evidence\.store_failed /.test(l)) ?? '', /full/);
    assert.equal(evidence.nextPending()?.capture_id, 'fd-1', 'the evidence is still pending');
    rmSync(filler);
    renderer.kick();
    await renderer.idle();
    assert.equal(evidence.nextPending(), undefined);
    assert.equal(evidence.row('fd-1')?.png_status, 'failed');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    store.close();
  }
}));
