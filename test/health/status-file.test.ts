/**
 * StatusFileWriter: atomic rewrites (a reader in another process never sees a partial file), mode
 * 0640 whatever the umask, the final `stopped: true` on stop(), and failed writes reported once
 * without throwing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { SensorSampler } from '../../sensor/health/snapshot.js';
import { STATUS_FILE_MODE, StatusFileWriter, type StatusFileContent } from '../../sensor/health/status-file.js';

const CHILD = fileURLToPath(new URL('./status-child.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'hark-status-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function sampler(): SensorSampler {
  return new SensorSampler({ interfaces: () => [{ name: 'eth1', packets: 5, bytes: 500 }], counters: new Counters(), sysfsRoot: dir });
}

describe('StatusFileWriter', () => {
  test('StatusFileWriter writes on start and the final state with stopped: true on stop', () => {
    const path = join(dir, 'start-stop.json');
    const w = new StatusFileWriter(path, { intervalMs: 60_000, snapshot: () => sampler().sample() });
    w.start();
    const running = JSON.parse(readFileSync(path, 'utf8')) as StatusFileContent;
    assert.equal(running.stopped, false);
    assert.equal(running.interval_ms, 60_000);
    assert.equal(running.pid, process.pid);
    assert.equal(running.interfaces[0].name, 'eth1');
    w.stop();
    const stopped = JSON.parse(readFileSync(path, 'utf8')) as StatusFileContent;
    assert.equal(stopped.stopped, true);
    assert.equal(stopped.interfaces[0].packets, 5);
    w.stop();
    w.start();
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as StatusFileContent).stopped, true, 'stop is final');
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
  });

  test('StatusFileWriter makes the file mode 0640 whatever the umask and the old mode', () => {
    const path = join(dir, 'mode.json');
    writeFileSync(path, '{}');
    chmodSync(path, 0o666);
    const old = process.umask(0o077);
    try {
      new StatusFileWriter(path, { snapshot: () => sampler().sample() }).writeNow();
    } finally {
      process.umask(old);
    }
    assert.equal(STATUS_FILE_MODE, 0o640);
    assert.equal(statSync(path).mode & 0o777, 0o640);
    const loose = process.umask(0o000);
    try {
      new StatusFileWriter(path, { snapshot: () => sampler().sample() }).writeNow();
    } finally {
      process.umask(loose);
    }
    assert.equal(statSync(path).mode & 0o777, 0o640);
  });

  test('StatusFileWriter is atomic: a reader in another process never sees a partial file', async () => {
    const path = join(dir, 'churn.json');
    const done = join(dir, 'churn.done');
    const child = spawn(process.execPath, [CHILD, 'churn', path, '400', done], { stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let whole = 0;
    try {
      // A bounded busy loop: the writer is another process, so it runs while this one reads.
      for (let i = 0; i < 1_000_000 && !existsSync(done); i++) {
        let text: string;
        try {
          text = readFileSync(path, 'utf8');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        const s = JSON.parse(text) as StatusFileContent;
        assert.equal(s.interfaces.length, s.captures, 'every interface the file announces is in it');
        assert.ok(text.endsWith('}\n'));
        whole++;
      }
    } finally {
      // On a failed assertion the writer may still be running: stop it before the folder is removed.
      if (!existsSync(done)) child.kill('SIGKILL');
    }
    assert.equal(await exited, 0);
    assert.ok(existsSync(done), 'the writer finished');
    assert.ok(whole > 0, 'the reader saw the file');
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('churn') && f.endsWith('.tmp')), []);
    const last = JSON.parse(readFileSync(path, 'utf8')) as StatusFileContent;
    assert.equal(last.interfaces.length, 1 + ((399 * 37) % 300));
  });

  test('StatusFileWriter reports a failed write once, counts it and never throws', () => {
    const path = join(dir, 'no-such-dir', 'status.json');
    const errors: Error[] = [];
    const counters = new Counters();
    const w = new StatusFileWriter(path, { snapshot: () => sampler().sample(), counters, onError: (e) => errors.push(e) });
    assert.equal(w.writeNow(), false);
    assert.equal(w.writeNow(), false);
    w.stop();
    assert.equal(errors.length, 1);
    assert.ok(errors[0].message.includes(path));
    assert.match(errors[0].message, /Cannot write status file/);
    assert.equal(counters.get('status.write_failed'), 3);
    assert.equal(counters.get('status.writes'), 0);
  });

  test('StatusFileWriter rejects a bad interval', () => {
    assert.throws(() => new StatusFileWriter(join(dir, 'x.json'), { intervalMs: 0, snapshot: () => sampler().sample() }), RangeError);
  });
});
