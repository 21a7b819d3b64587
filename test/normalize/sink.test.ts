import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_COLLECTED_CHARS, SegmentCollector } from '../../sensor/normalize/sink.js';

describe('SegmentCollector', () => {
  it('joins text between breaks and treats repeated or leading breaks as one', () => {
    const c = new SegmentCollector();
    c.onBreak();
    c.onText('Our ');
    c.onText('secret');
    c.onBreak();
    c.onBreak();
    c.onText('next');
    assert.deepEqual(c.segments, ['Our secret']);
    assert.deepEqual(c.all(), ['Our secret', 'next']);
    c.onBreak();
    assert.deepEqual(c.segments, ['Our secret', 'next']);
  });

  it('stops collecting at MAX_COLLECTED_CHARS and says so', () => {
    const c = new SegmentCollector();
    c.onText('x'.repeat(MAX_COLLECTED_CHARS - 1));
    c.onText('yz');
    c.onBreak();
    assert.equal(c.truncated, true);
    assert.equal(c.segments[0].length, MAX_COLLECTED_CHARS);
    assert.ok(c.segments[0].endsWith('xy'));
  });
});
