/**
 * Tests for sensor/health/memory-alarm.ts: /proc/meminfo parsing, the memory.high event raised when
 * the sensor nears the memory it may use or the machine runs short, no flapping between the marks,
 * and the clear.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HealthEvent } from '../../sensor/events/health.js';
import { HEALTH_MEMORY, MemoryAlarm, parseMeminfo, readMachineMemory } from '../../sensor/health/memory-alarm.js';

const GIB = 1024 * 1024 * 1024;
const MEMINFO = 'MemTotal:        4028240 kB\nMemFree:          123456 kB\nMemAvailable:    2014120 kB\nBuffers:           10000 kB\n';

function alarm(limit = 4 * GIB): { a: MemoryAlarm; events: HealthEvent[] } {
  const events: HealthEvent[] = [];
  return { a: new MemoryAlarm(() => limit, (e) => events.push(e), () => 0), events };
}

const roomy = { totalBytes: 4 * GIB, availableBytes: 2 * GIB };

test('parseMeminfo reads MemTotal and MemAvailable in bytes, and refuses what it does not know', () => {
  assert.deepEqual(parseMeminfo(MEMINFO), { totalBytes: 4028240 * 1024, availableBytes: 2014120 * 1024 });
  assert.equal(parseMeminfo('MemTotal: 4028240 kB\n'), undefined, 'no MemAvailable (kernels before 3.14)');
  assert.equal(parseMeminfo('MemTotal: 0 kB\nMemAvailable: 0 kB\n'), undefined);
  assert.equal(parseMeminfo('x'.repeat(20_000)), undefined);
  const here = readMachineMemory();
  assert.ok(here !== undefined && here.availableBytes <= here.totalBytes && here.totalBytes > 0, JSON.stringify(here));
  assert.equal(readMachineMemory('/nonexistent/meminfo'), undefined);
});

test('memory.high is raised once when the sensor passes 85% of the memory it may use, and cleared under 75%', () => {
  const { a, events } = alarm();
  a.check(3.3 * GIB, roomy); // 82%: under the mark
  assert.equal(events.length, 0);
  a.check(3.5 * GIB, roomy); // 87.5%
  assert.equal(events.length, 1);
  const e = events[0];
  assert.equal(e.name, HEALTH_MEMORY);
  assert.equal(e.state, 'raised');
  assert.equal(e.severity, 'warning');
  assert.match(e.message, /the sensor uses 3\.5 GiB of the 4\.0 GiB it may use \(88%\).*--workers/);
  assert.equal(e.detail?.limit_bytes, 4 * GIB);
  a.check(3.6 * GIB, roomy);
  a.check(3.1 * GIB, roomy); // 77.5%: between the marks, still raised
  assert.equal(events.length, 1, 'no second raise, no clear between the marks');
  a.check(2.9 * GIB, roomy); // 72.5%
  assert.equal(events.length, 2);
  assert.equal(events[1].state, 'cleared');
  assert.equal(events[1].name, HEALTH_MEMORY);
  a.check(3.5 * GIB, roomy);
  assert.equal(events.length, 3, 'raised again after a clear');
});

test('memory.high is raised when the machine runs short, whoever uses the memory, and cleared over 15% available', () => {
  const { a, events } = alarm();
  a.check(1 * GIB, { totalBytes: 4 * GIB, availableBytes: 0.3 * GIB }); // 7.5% available
  assert.equal(events.length, 1);
  assert.match(events[0].message, /the machine has 0\.3 GiB of its 4\.0 GiB available \(8%; the sensor uses 1\.0 GiB\)/);
  a.check(1 * GIB, { totalBytes: 4 * GIB, availableBytes: 0.5 * GIB }); // 12.5%: between the marks
  assert.equal(events.length, 1);
  a.check(1 * GIB, { totalBytes: 4 * GIB, availableBytes: 0.7 * GIB }); // 17.5%
  assert.equal(events.length, 2);
  assert.equal(events[1].state, 'cleared');
});

test('memory.high stays raised while either condition holds, and unknown figures neither raise nor hold it', () => {
  const { a, events } = alarm();
  a.check(undefined, undefined);
  assert.equal(events.length, 0);
  a.check(3.5 * GIB, { totalBytes: 4 * GIB, availableBytes: 0.2 * GIB });
  assert.equal(events.length, 1);
  a.check(2 * GIB, { totalBytes: 4 * GIB, availableBytes: 0.2 * GIB }); // own fine, machine still short
  assert.equal(events.length, 1);
  a.check(undefined, undefined);
  assert.equal(events.length, 2, 'nothing known any more: cleared');
});

test('memory.high follows a limit that changes while the sensor runs (a cgroup lowered, then raised)', () => {
  let limit = 4 * GIB;
  const events: HealthEvent[] = [];
  const a = new MemoryAlarm(() => limit, (e) => events.push(e), () => 0);
  a.check(2 * GIB, roomy); // 50% of 4 GiB
  assert.equal(events.length, 0);
  limit = 2.2 * GIB; // 91%
  a.check(2 * GIB, roomy);
  assert.equal(events.length, 1);
  assert.equal(events[0].detail?.limit_bytes, 2.2 * GIB);
  limit = 3 * GIB; // 67%
  a.check(2 * GIB, roomy);
  assert.equal(events.length, 2);
  assert.equal(events[1].state, 'cleared');
});
