/**
 * Child process for the kill -9 durability test: commits captures to the store named by
 * HARK_KILL_CHILD_DB in flushes of HARK_KILL_CHILD_BATCH, and after each flush returns writes the
 * number of captures durable so far to stdout (synchronously), forever, until it is killed.
 * Does nothing without the variable (the test runner may load it as a file with no tests).
 */
import { writeSync } from 'node:fs';
import { CaptureStore } from '../../sensor/store/capture-store.js';
import { makeCapture } from './make-capture.js';

const db = process.env.HARK_KILL_CHILD_DB;
if (db !== undefined) {
  const batch = Number(process.env.HARK_KILL_CHILD_BATCH ?? '50');
  const store = new CaptureStore(db);
  let n = 0;
  for (;;) {
    for (let i = 0; i < batch; i++) store.add(makeCapture(n++, { tag: 'kill', severity: 1 + (n % 5), contextBytes: 300 }));
    store.flush();
    writeSync(1, `${n}\n`);
  }
}
