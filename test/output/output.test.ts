/**
 * The shared output pieces: OutputFanout hands every call to each output (one that throws loses
 * only its own call, counted); backoffDelayMs grows
 * exponentially and stays under its cap.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counters } from '../../sensor/events/counters.js';
import { backoffDelayMs, OutputFanout, type EventOutput, type OutputEvent } from '../../sensor/output/output.js';

class Recorder implements EventOutput {
  calls: string[] = [];
  write(event: OutputEvent): void {
    this.calls.push(`write:${event.event_type}`);
  }
  flush(): void {
    this.calls.push('flush');
  }
  async close(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    this.calls.push('close');
  }
}

describe('OutputFanout', () => {
  test('OutputFanout passes writes, flushes, reopens and close to every output', async () => {
    const a = new Recorder();
    const b = new Recorder();
    let reopened = 0;
    const c = Object.assign(new Recorder(), { reopen: () => { reopened++; } });
    const fan = new OutputFanout([a, b, c]);
    fan.write({ event_type: 'capture' });
    fan.flush();
    fan.reopen();
    await fan.close();
    for (const r of [a, b, c]) assert.deepEqual(r.calls, ['write:capture', 'flush', 'close']);
    assert.equal(reopened, 1);
  });

  test('OutputFanout: an output that throws does not keep the event from the others, and is counted', async () => {
    const broken: EventOutput = {
      write: () => { throw new Error('write'); },
      flush: () => { throw new Error('flush'); },
      reopen: () => { throw new Error('reopen'); },
      close: () => Promise.reject(new Error('close')),
    };
    const after = new Recorder();
    const counters = new Counters();
    const fan = new OutputFanout([broken, after], counters);
    fan.write({ event_type: 'capture' });
    fan.write({ event_type: 'tls' });
    fan.flush();
    fan.reopen();
    await fan.close();
    assert.deepEqual(after.calls, ['write:capture', 'write:tls', 'flush', 'close']);
    assert.equal(counters.get('output.errors'), 5);
  });
});

describe('backoffDelayMs', () => {
  test('backoffDelayMs doubles per attempt within 20% jitter and never passes the cap', () => {
    for (let attempt = 0; attempt < 6; attempt++) {
      const d = backoffDelayMs(attempt, 100, 1_000_000);
      assert.ok(d >= 100 * 2 ** attempt && d <= 120 * 2 ** attempt, `attempt ${attempt}: ${d}`);
    }
    for (let attempt = 0; attempt < 100; attempt += 7) assert.ok(backoffDelayMs(attempt, 100, 5000) <= 5000);
  });
});
