/**
 * Evidence: the page a viewed capture was seen in rides with the capture (decoded, decompressed),
 * only for page-like responses, bounded per message and in total.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CaptureEvent, Evidence } from '../../sensor/events/capture.js';
import { Counters } from '../../sensor/events/counters.js';
import { EVIDENCE_MAX_BYTES, EvidenceBudget } from '../../sensor/inspect/evidence.js';
import { Sensor } from '../../sensor/main.js';
import { fixture } from '../helpers/replay.js';

test('Sensor with keepEvidence gives each viewed capture the decompressed page it was seen in, typed ones none', () => {
  const out: Array<{ c: CaptureEvent; ev?: Evidence }> = [];
  const sensor = new Sensor({ engine: 'js', keepEvidence: true, onCapture: (c, ev) => out.push({ c, ev }) });
  sensor.pipeline.runFile(fixture('school-search', 'school-search.pcap'));
  sensor.finish();
  const viewed = out.filter((x) => x.c.source === 'viewed');
  const typed = out.filter((x) => x.c.source === 'typed');
  assert.equal(viewed.length, 2);
  assert.equal(typed.length, 2);
  for (const { c, ev } of viewed) {
    assert.ok(ev !== undefined, `${c.phrase} has its page`);
    assert.equal(ev.contentType, 'text/html');
    assert.equal(ev.truncated, false);
    const html = ev.body.toString('utf8');
    assert.match(html, /<html/i, 'decompressed HTML, not gzip bytes');
    assert.ok(html.toLowerCase().includes(c.phrase.toLowerCase()), `the page shows "${c.phrase}"`);
    assert.ok(!JSON.stringify(c).includes('<html'), 'the capture JSON does not carry the page');
  }
  for (const { ev } of typed) assert.equal(ev, undefined);
  assert.equal(sensor.counters.get('capture.evidence_kept'), 2);
});

test('Sensor without keepEvidence keeps no pages', () => {
  const seen: Array<Evidence | undefined> = [];
  const sensor = new Sensor({ engine: 'js', onCapture: (_c, ev) => seen.push(ev) });
  sensor.pipeline.runFile(fixture('school-search', 'school-search.pcap'));
  sensor.finish();
  assert.equal(seen.length, 4);
  assert.ok(seen.every((e) => e === undefined));
});

test('EvidenceBuffer cuts a page at EVIDENCE_MAX_BYTES, skips non-pages, and gives up past the total budget', () => {
  const counters = new Counters();
  const budget = new EvidenceBudget(EVIDENCE_MAX_BYTES + 1000, counters);
  assert.equal(budget.open('image/png'), undefined);
  assert.equal(budget.open(undefined), undefined);
  const big = budget.open('text/html; charset=ISO-8859-1')!;
  big.write(Buffer.alloc(EVIDENCE_MAX_BYTES - 10, 0x61));
  big.write(Buffer.alloc(100, 0x62));
  assert.equal(budget.held, EVIDENCE_MAX_BYTES);
  const second = budget.open('text/plain')!;
  second.write(Buffer.alloc(2000, 0x63)); // over the total budget: this message keeps nothing
  assert.equal(second.take(), undefined);
  assert.equal(counters.get('capture.evidence_over_budget'), 1);
  const ev = big.take()!;
  assert.equal(ev.body.length, EVIDENCE_MAX_BYTES);
  assert.equal(ev.truncated, true);
  assert.equal(ev.charset, 'ISO-8859-1');
  assert.equal(ev.contentType, 'text/html');
  assert.equal(budget.held, 0, 'every byte given back');
  const none = budget.open('text/html')!;
  none.write(Buffer.from('x'));
  none.release();
  assert.equal(budget.held, 0);
});
