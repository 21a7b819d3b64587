/**
 * The file commands' end-of-run summary: Hark's own failures, caught so that a run goes on, are
 * named in it when they happened (a robustness review found a stack overflow in one flow's
 * inspection that the summary reported as "anomalies: none"), and absent otherwise.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSummary } from '../../sensor/cli/summary.js';
import { Counters, defineCounter } from '../../sensor/events/counters.js';
import type { ReadSummary } from '../../sensor/capture/file-reader.js';

const READ: ReadSummary = { format: 'pcap', packets: 10, bytesRead: 1000, fileSize: 1000 };

test('formatSummary names caught packet and inspection failures, and only when there were some', () => {
  const counters = new Counters();
  assert.doesNotMatch(formatSummary('f.pcap', READ, counters, 10), /internal errors/);
  counters.inc(defineCounter('pipeline.exception'), 2);
  counters.inc(defineCounter('flow.consumer_error'));
  assert.match(
    formatSummary('f.pcap', READ, counters, 10),
    /\n {2}internal errors: 2 packets failed \(pipeline\.exception\), 1 flows' inspection failed \(flow\.consumer_error\)/,
  );
});
