/**
 * `hark run --smtp`: a live sensor on a veth pair e-mails captures at or above the threshold through
 * a real SMTP server the test starts (smtp-server with STARTTLS, a certificate from the test's own
 * CA passed as --smtp-ca). The school-search capture has "AK47" (severity 4) and "our secret"
 * (severity 4 too), typed and viewed: one message lists all four; nothing is sent in plaintext.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { testPki } from '../output/cert-fixtures.js';
import { fixture } from '../helpers/replay.js';
import { hark, makeVeth, removeVeth, sensorListening, waitFor } from '../helpers/system.js';

test('hark run --smtp sends one STARTTLS message for a burst of captures at or above the threshold', { timeout: 120_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'the live test needs root (CI runs as root)');
  const pki = testPki();
  const dir = mkdtempSync(join(tmpdir(), 'hark-run-email-'));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, pki.caPem);
  const received: Array<{ secure: boolean; text: string; to: string[] }> = [];
  const server = new SMTPServer({
    key: pki.keyPem,
    cert: pki.certPem,
    logger: false,
    authOptional: true,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ secure: session.secure, text: Buffer.concat(chunks).toString('utf8'), to: session.envelope.rcptTo.map((r) => r.address) });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as { port: number }).port;
  const veth = makeVeth('m');
  const sensor = hark(['run', '-i', veth.recv, '--data-dir', join(dir, 'data'), '--stats-interval', '0', '--no-api',
    '--smtp', `smtp://127.0.0.1:${port}`, '--smtp-ca', ca, '--alert-to', 'dsl@school.test', '--alert-from', 'hark@school.test',
    '--alert-min-severity', '4', '--alert-batch', '2', '--site', 'Hilltop School']);
  try {
    await sensorListening(sensor);
    execFileSync('tcpreplay', ['-i', veth.send, fixture('school-search', 'school-search.pcap')], { stdio: 'ignore' });
    await waitFor('the alert message', 30_000, () => received.length > 0);
    assert.equal(await sensor.stop('SIGTERM'), 0, sensor.err);
    assert.equal(received.length, 1, 'one message for the burst');
    const m = received[0];
    assert.equal(m.secure, true, 'delivered after STARTTLS');
    assert.deepEqual(m.to, ['dsl@school.test']);
    const unfolded = m.text.replace(/\r\n[ \t]/g, ' ');
    assert.match(unfolded, /Subject: Hark: 4 safeguarding captures, highest severity 4, at Hilltop School/);
    for (const phrase of ['"AK47" (typed in search)', '"AK47" (viewed', '"our secret" (typed in search)', '"our secret" (viewed']) assert.ok(m.text.includes(phrase), phrase);
  } finally {
    await sensor.stop('SIGKILL');
    removeVeth(veth);
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});
