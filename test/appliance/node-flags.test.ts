/**
 * The V8 flags the sensor runs with are written in three places: bin/hark (a checkout, `npm
 * start`), appliance/systemd/hark.service (the appliance) and bench/workload.ts (what the benches
 * give the sensors they start, so their figures are the sensor's). They must be the same list.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { SENSOR_V8_FLAGS } from '../../bench/workload.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The `--flags` between the node executable and the script on the line that starts the CLI. */
function flagsOf(file: string, linePattern: RegExp): string[] {
  const line = readFileSync(ROOT + file, 'utf8').split('\n').find((l) => linePattern.test(l));
  assert.ok(line !== undefined, `${file}: no line matches ${linePattern}`);
  const words = line.trim().split(/\s+/);
  const node = words.findIndex((w) => w === 'node' || w.endsWith('/node'));
  const script = words.findIndex((w) => w.includes('dist/sensor/cli/hark.js'));
  assert.ok(node >= 0 && script > node, `${file}: cannot find node and the script in: ${line}`);
  return words.slice(node + 1, script);
}

test('bin/hark, hark.service and the benches run the sensor with the same V8 flags', () => {
  const bin = flagsOf('bin/hark', /^exec node /);
  const unit = flagsOf('appliance/systemd/hark.service', /^ExecStart=.*hark\.js run/);
  assert.ok(bin.length > 0 && bin.every((f) => f.startsWith('--')), `bin/hark flags: ${bin.join(' ')}`);
  assert.deepEqual(unit, bin);
  assert.deepEqual([...SENSOR_V8_FLAGS], bin);
  // 64 MiB semi-spaces at most; no minimum, which would hold for every thread, the capture
  // thread's too: the worker pool starts the workers' at full size itself (see bin/hark)
  assert.ok(bin.includes('--max-semi-space-size=64'), `bin/hark flags: ${bin.join(' ')}`);
  assert.ok(!bin.some((f) => f.startsWith('--min-semi-space-size')), `bin/hark flags: ${bin.join(' ')}`);
});
