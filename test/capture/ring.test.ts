/**
 * Tests for sensor/capture/ring.ts and its addon (sensor/capture/native): live, as root, on a veth
 * pair made per test (removed in `finally`). Frames are sent with tcpreplay on one end and captured
 * with RingCapture on the other; the fixture's own frames (read with the sensor's file reader) are
 * the expectation. Covers byte identity, kernel timestamps, VLAN tag restoration, BPF filters,
 * promiscuous mode, fanout, kernel drop counting and the open errors users see.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readCaptureFile } from '../../sensor/capture/file-reader.js';
import { CaptureInterfaceError } from '../../sensor/capture/live.js';
import { missingInterfaceError, RingCapture, ringAvailable, type RingCaptureOptions } from '../../sensor/capture/ring.js';
import { Counters } from '../../sensor/events/counters.js';

function fixture(name: string): string {
  return fileURLToPath(new URL(`../../../test/fixtures/capture-ring/${name}`, import.meta.url));
}

const DNS_FRAGMENTED = fixture('ndpi-dns_fragmented.pcap'); // 66 frames, IPv4 + IPv6, up to 1,818 bytes
const QINQ = fixture('zeek-http-qinq-0.pcap'); // 14 frames, two 802.1Q tags each

interface Frame {
  readonly data: Buffer;
  readonly origLen: number;
  readonly tsUs: number;
  readonly ifIndex: number;
  readonly linkType: number;
}

function fileFrames(path: string): Buffer[] {
  const out: Buffer[] = [];
  readCaptureFile(path, (_lt, buf, off, capLen) => {
    out.push(Buffer.from(buf.subarray(off, off + capLen)));
  });
  return out;
}

let pairSeq = 0;

/** A fresh veth pair `<a>` (sender) and `<b>` (capture side), MTU 9000, IPv6 off so neither end talks. */
function makeVeth(up = true): { a: string; b: string; remove(): void } {
  const base = `hkr${process.pid % 100000}${pairSeq++}`;
  const a = `${base}a`;
  const b = `${base}b`;
  execFileSync('ip', ['link', 'add', a, 'mtu', '9000', 'type', 'veth', 'peer', 'name', b, 'mtu', '9000']);
  const remove = (): void => {
    spawnSync('ip', ['link', 'del', a]);
  };
  try {
    for (const n of [a, b]) {
      try {
        writeFileSync(`/proc/sys/net/ipv6/conf/${n}/disable_ipv6`, '1');
      } catch {
        // no IPv6 in this kernel: nothing to silence
      }
    }
    execFileSync('ip', ['link', 'set', a, 'up']);
    if (up) execFileSync('ip', ['link', 'set', b, 'up']);
  } catch (err) {
    remove();
    throw err;
  }
  return { a, b, remove };
}

/** Replays a pcap as fast as possible, pinned to one CPU so the frames keep their order through the backlog. */
function replay(iface: string, file: string, loops = 1): void {
  const r = spawnSync('taskset', ['-c', '0', 'tcpreplay', '-q', '--topspeed', `--loop=${loops}`, '-i', iface, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `tcpreplay failed: ${r.stderr}${r.stdout}`);
}

/** Waits for `cond` (a liveness guard against a hung capture, not a speed check). */
async function waitFor(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets any frame still on its way arrive (several block timeouts) before the exact-count checks. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 100));
}

function collector(): { frames: Frame[]; handler: ConstructorParameters<typeof RingCapture>[1] } {
  const frames: Frame[] = [];
  return {
    frames,
    handler: (linkType, buf, off, capLen, origLen, tsUs, ifIndex) => {
      frames.push({ data: Buffer.from(buf.subarray(off, off + capLen)), origLen, tsUs, ifIndex, linkType });
    },
  };
}

function promiscuity(iface: string): number {
  const out = execFileSync('ip', ['-d', 'link', 'show', iface], { encoding: 'utf8' });
  const m = /promiscuity (\d+)/.exec(out);
  assert.ok(m, `no promiscuity in: ${out}`);
  return Number(m[1]);
}

async function captureReplay(opts: Omit<RingCaptureOptions, 'interfaces'>, file: string, expected: number): Promise<{ frames: Frame[]; cap: RingCapture; before: number; after: number }> {
  const veth = makeVeth();
  try {
    const { frames, handler } = collector();
    const cap = new RingCapture({ ...opts, interfaces: [veth.b] }, handler);
    cap.start();
    try {
      const before = Date.now() * 1000;
      replay(veth.a, file);
      await waitFor(() => frames.length >= expected, `${expected} frames (have ${frames.length})`);
      await settle();
      const after = Date.now() * 1000;
      return { frames, cap, before, after };
    } finally {
      cap.stop();
    }
  } finally {
    veth.remove();
  }
}

test('ringAvailable finds the built addon', () => {
  assert.deepEqual(ringAvailable(), { ok: true });
});

test('RingCapture delivers every replayed frame byte-identical, in order, with kernel timestamps', async () => {
  const want = fileFrames(DNS_FRAGMENTED);
  assert.equal(want.length, 66);
  const { frames, cap, before, after } = await captureReplay({}, DNS_FRAGMENTED, want.length);
  assert.equal(frames.length, want.length);
  frames.forEach((f, i) => {
    assert.ok(f.data.equals(want[i]), `frame ${i + 1} differs`);
    assert.equal(f.origLen, want[i].length);
    assert.equal(f.linkType, 1);
    assert.equal(f.ifIndex, 0);
    // Stamped by the kernel on receive: within the replay's wall-clock window, never backwards.
    assert.ok(Number.isInteger(f.tsUs) && f.tsUs >= before && f.tsUs <= after, `frame ${i + 1} timestamp ${f.tsUs} outside [${before}, ${after}]`);
    if (i > 0) assert.ok(f.tsUs >= frames[i - 1].tsUs, `frame ${i + 1} timestamp goes backwards`);
  });
  assert.deepEqual(cap.packets, [66]);
  assert.deepEqual(cap.bytes, [want.reduce((s, b) => s + b.length, 0)]);
  assert.deepEqual(cap.linkTypes, ['ETHERNET']);
  const [st] = cap.stats();
  assert.equal(st.packets, 66);
  assert.equal(st.kernelPackets, 66);
  assert.equal(st.kernelDrops, 0);
});

test('RingCapture puts back the outer VLAN tag the kernel strips: QinQ frames arrive as sent', async () => {
  const want = fileFrames(QINQ);
  assert.equal(want.length, 14);
  // Every frame is double-tagged on the wire (TPID 0x8100 twice).
  for (const w of want) assert.equal(w.readUInt16BE(12) === 0x8100 && w.readUInt16BE(16) === 0x8100, true);
  const { frames } = await captureReplay({}, QINQ, want.length);
  assert.equal(frames.length, want.length);
  frames.forEach((f, i) => {
    assert.equal(f.data.toString('hex'), want[i].toString('hex'), `frame ${i + 1}`);
    assert.equal(f.origLen, want[i].length);
  });
});

test('RingCapture with a BPF filter delivers only the matching frames', async () => {
  // Expectation computed from the frames, not from libpcap: IPv4 (ethertype 0x0800) with protocol 17.
  const want = fileFrames(DNS_FRAGMENTED).filter((b) => b.readUInt16BE(12) === 0x0800 && b[23] === 17);
  assert.equal(want.length, 12);
  const { frames, cap } = await captureReplay({ filter: 'ip and udp' }, DNS_FRAGMENTED, want.length);
  assert.deepEqual(
    frames.map((f) => f.data.toString('hex')),
    want.map((b) => b.toString('hex')),
  );
  assert.equal(cap.stats()[0].kernelPackets, 12);
});

test('RingCapture sets promiscuous mode while open and the kernel drops it on stop', () => {
  const veth = makeVeth();
  try {
    assert.equal(promiscuity(veth.b), 0);
    const cap = new RingCapture({ interfaces: [veth.b] }, () => {});
    cap.start();
    try {
      assert.equal(promiscuity(veth.b), 1);
    } finally {
      cap.stop();
    }
    assert.equal(promiscuity(veth.b), 0);
  } finally {
    veth.remove();
  }
});

test('RingCapture.start names a missing interface and leaves no interface open', () => {
  const veth = makeVeth();
  try {
    const cap = new RingCapture({ interfaces: [veth.b, 'hk-no-such0'] }, () => {});
    assert.throws(
      () => cap.start(),
      (err: unknown) =>
        err instanceof CaptureInterfaceError &&
        err.code === 'E_CAPTURE_INTERFACE' &&
        err.message.startsWith('Cannot open capture interface "hk-no-such0": no such interface (available: ') &&
        err.message.includes(veth.b),
    );
    // The first interface was opened, then closed again: opens all or none.
    assert.equal(promiscuity(veth.b), 0);
  } finally {
    veth.remove();
  }
});

test('missingInterfaceError names a missing interface before anything is opened, and the ones there are', () => {
  assert.equal(missingInterfaceError(['lo']), undefined);
  const err = missingInterfaceError(['lo', 'hk-no-such1']);
  assert.ok(err instanceof CaptureInterfaceError);
  assert.equal(err.code, 'E_CAPTURE_INTERFACE');
  assert.ok(err.message.startsWith('Cannot open capture interface "hk-no-such1": no such interface (available: '), err.message);
  assert.match(err.message, /\blo\b/);
});

test('RingCapture.start rejects a bad filter with libpcap\'s reason', () => {
  const veth = makeVeth();
  try {
    const cap = new RingCapture({ interfaces: [veth.b], filter: 'tcp port hk_no_such_port' }, () => {});
    assert.throws(() => cap.start(), {
      name: 'Error',
      message: `Cannot apply capture filter "tcp port hk_no_such_port" on "${veth.b}": unknown port 'hk_no_such_port'`,
    });
    assert.equal(promiscuity(veth.b), 0);
  } finally {
    veth.remove();
  }
});

test('RingCapture.start says the interface is down', () => {
  const veth = makeVeth(false);
  try {
    const cap = new RingCapture({ interfaces: [veth.b] }, () => {});
    assert.throws(() => cap.start(), { message: `Cannot open capture interface "${veth.b}": the interface is down (ip link set ${veth.b} up)` });
  } finally {
    veth.remove();
  }
});

test('RingCapture.start names cap_net_raw when the process lacks it', () => {
  const veth = makeVeth();
  try {
    const ring = new URL('../../sensor/capture/ring.js', import.meta.url).href;
    const script = `import { RingCapture } from ${JSON.stringify(ring)};
      try { new RingCapture({ interfaces: [${JSON.stringify(veth.b)}] }, () => {}).start(); console.log('opened'); }
      catch (e) { console.log(e.message); }`;
    // Root without CAP_NET_RAW in its bounding set: what an unprivileged service account looks like to the kernel.
    const r = spawnSync('setpriv', ['--bounding-set=-net_raw', '--inh-caps=-net_raw', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Cannot open capture interface "${veth.b}": permission denied \\(capturing needs CAP_NET_RAW: start it as root`));
  } finally {
    veth.remove();
  }
});

test('RingCapture rejects a ring geometry the kernel would refuse before opening anything', () => {
  const cap = new RingCapture({ interfaces: ['lo'], blockBytes: 5000 }, () => {});
  assert.throws(() => cap.start(), /block size 5000 must be a power of two/);
  const cap2 = new RingCapture({ interfaces: ['lo'], blocks: 1 }, () => {});
  assert.throws(() => cap2.start(), /needs at least 2 blocks/);
});

test('RingCapture counts kernel drops when the handler is slow and the ring tiny', async () => {
  const veth = makeVeth();
  const sent = 66 * 5;
  try {
    const counters = new Counters();
    let delivered = 0;
    // Two one-page blocks hold about four frames; the handler spends 2 ms per frame.
    const cap = new RingCapture({ interfaces: [veth.b], blockBytes: 4096, blocks: 2 }, () => {
      delivered++;
      const until = performance.now() + 2;
      while (performance.now() < until);
    }, counters);
    cap.start();
    try {
      const done = new Promise<number | null>((resolve) => {
        const child = spawn('taskset', ['-c', '0', 'tcpreplay', '-q', '--topspeed', '--loop=5', '-i', veth.a, DNS_FRAGMENTED], { stdio: 'ignore' });
        child.on('exit', resolve);
      });
      assert.equal(await done, 0);
      await waitFor(() => {
        const [st] = cap.stats();
        return st.packets + st.kernelDrops >= sent;
      }, 'every sent frame delivered or dropped');
      await settle();
      const [st] = cap.stats();
      assert.ok(st.kernelDrops > 0, `no drops counted (delivered ${st.packets})`);
      assert.equal(st.kernelPackets, sent);
      assert.equal(st.packets + st.kernelDrops, sent);
      assert.equal(st.packets, delivered);
      assert.equal(counters.get('capture.kernel_drops'), st.kernelDrops);
      assert.equal(counters.get('capture.kernel_packets'), sent);
    } finally {
      cap.stop();
    }
  } finally {
    veth.remove();
  }
});

test('RingCapture sockets of one fanout group share an interface: each frame reaches exactly one', async () => {
  const veth = makeVeth();
  try {
    const want = fileFrames(DNS_FRAGMENTED);
    const group = 0x8000 | (process.pid & 0x7fff);
    const c1 = collector();
    const c2 = collector();
    const caps = [new RingCapture({ interfaces: [veth.b], fanoutGroup: group }, c1.handler), new RingCapture({ interfaces: [veth.b], fanoutGroup: group }, c2.handler)];
    for (const c of caps) c.start();
    try {
      replay(veth.a, DNS_FRAGMENTED);
      await waitFor(() => c1.frames.length + c2.frames.length >= want.length, 'the frames of both sockets');
      await settle();
    } finally {
      for (const c of caps) c.stop();
    }
    const got = [...c1.frames, ...c2.frames].map((f) => f.data.toString('hex')).sort();
    assert.deepEqual(got, want.map((b) => b.toString('hex')).sort());
  } finally {
    veth.remove();
  }
});

test('RingCapture.stop inside the handler ends delivery at once', async () => {
  const veth = makeVeth();
  try {
    let calls = 0;
    const cap: RingCapture = new RingCapture({ interfaces: [veth.b] }, () => {
      calls++;
      cap.stop();
    });
    cap.start();
    replay(veth.a, DNS_FRAGMENTED);
    await waitFor(() => calls > 0, 'the first frame');
    await settle();
    replay(veth.a, DNS_FRAGMENTED);
    await settle();
    assert.equal(calls, 1);
    assert.deepEqual(cap.packets, [1]);
    assert.equal(promiscuity(veth.b), 0);
  } finally {
    veth.remove();
  }
});

test('RingCapture reports an interface that goes down through onError and resumes when it is up again', async () => {
  const veth = makeVeth();
  try {
    const errors: Array<[string, number]> = [];
    const counters = new Counters();
    const { frames, handler } = collector();
    const cap = new RingCapture({ interfaces: [veth.b], onError: (err, i) => errors.push([err.message, i]) }, handler, counters);
    cap.start();
    try {
      execFileSync('ip', ['link', 'set', veth.b, 'down']);
      await waitFor(() => errors.length > 0, 'the interface error');
      await settle();
      assert.deepEqual(errors, [[`Capture interface "${veth.b}" went down (capture resumes when it is up again)`, 0]]);
      assert.equal(counters.get('capture.ring.interface_errors'), 1);
      execFileSync('ip', ['link', 'set', veth.b, 'up']);
      replay(veth.a, QINQ);
      await waitFor(() => frames.length >= 14, 'the frames sent after the interface came back');
      await settle();
      assert.equal(frames.length, 14);
    } finally {
      cap.stop();
    }
  } finally {
    veth.remove();
  }
});

test('RingCapture hands a throwing handler the rest of the block and rethrows its first error', () => {
  const veth = makeVeth();
  try {
    const ring = new URL('../../sensor/capture/ring.js', import.meta.url).href;
    const counters = new URL('../../sensor/events/counters.js', import.meta.url).href;
    // In a child: node:test turns any uncaught exception into a failure of the running test.
    const script = `import { RingCapture } from ${JSON.stringify(ring)};
      import { Counters } from ${JSON.stringify(counters)};
      import { spawnSync } from 'node:child_process';
      const counters = new Counters();
      const caught = [];
      let calls = 0;
      process.on('uncaughtException', (e) => caught.push(e.message));
      const cap = new RingCapture({ interfaces: [${JSON.stringify(veth.b)}] }, () => { calls++; if (calls <= 2) throw new Error('boom ' + calls); }, counters);
      cap.start();
      spawnSync('tcpreplay', ['-q', '--topspeed', '-i', ${JSON.stringify(veth.a)}, ${JSON.stringify(DNS_FRAGMENTED)}]);
      const deadline = Date.now() + 10000;
      const wait = () => {
        if (calls < 66 && Date.now() < deadline) return setTimeout(wait, 5);
        setTimeout(() => { cap.stop(); console.log(JSON.stringify({ calls, caught, errors: counters.get('capture.ring.handler_errors') })); }, 100);
      };
      wait();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { calls: number; caught: string[]; errors: number };
    assert.equal(got.calls, 66);
    assert.equal(got.errors, 2);
    // One rethrow per block: frames 1 and 2 share the first block unless a block timeout fell between them.
    assert.ok(got.caught.length >= 1 && got.caught.length <= 2 && got.caught[0] === 'boom 1', JSON.stringify(got.caught));
  } finally {
    veth.remove();
  }
});
