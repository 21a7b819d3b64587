/**
 * EmailAlerter against a real SMTP server (smtp-server) on loopback with a forge certificate:
 * STARTTLS is required and checked on the server side (session.secure when the message arrives),
 * a burst becomes one message, below-threshold captures send nothing, a server without STARTTLS
 * is refused with a clear error before any MAIL FROM, failures are retried a bounded number of times.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { Counters } from '../../sensor/events/counters.js';
import { alertSubject, composeAlert, EmailAlerter, MAX_CAPTURES_PER_EMAIL } from '../../sensor/output/email.js';
import { testPki } from './cert-fixtures.js';

interface Received {
  secure: boolean;
  from: string;
  to: string[];
  user: unknown;
  subject: string;
  body: string;
  raw: string;
}

/** Header unfolding (RFC 5322 2.2.3) and the body decoded per its Content-Transfer-Encoding. */
function parseMessage(raw: string): { subject: string; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const headers = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const rawBody = raw.slice(split + 4);
  const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(headers)?.[1] ?? '';
  const cte = header('Content-Transfer-Encoding').toLowerCase();
  let body = rawBody;
  if (cte === 'quoted-printable') {
    const bytes = rawBody.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    body = Buffer.from(bytes, 'latin1').toString('utf8');
  } else if (cte === 'base64') {
    body = Buffer.from(rawBody, 'base64').toString('utf8');
  }
  return { subject: header('Subject'), body: body.replace(/\r\n/g, '\n') };
}

class TestSmtp {
  readonly received: Received[] = [];
  connections = 0;
  mailFroms = 0;
  /** Replies to DATA with these errors first (one per message), then accepts. */
  dataErrors: Array<Error & { responseCode?: number }> = [];
  private server: SMTPServer | undefined;
  port = 0;

  constructor(private readonly extra: Partial<SMTPServerOptions> = {}) {}

  async start(): Promise<void> {
    const pki = testPki();
    this.server = new SMTPServer({
      key: pki.keyPem,
      cert: pki.certPem,
      logger: false,
      authOptional: true,
      onConnect: (_s, cb) => { this.connections++; cb(); },
      onMailFrom: (_a, _s, cb) => { this.mailFroms++; cb(); },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const err = this.dataErrors.shift();
          if (err) return cb(err);
          const raw = Buffer.concat(chunks).toString('latin1');
          const { subject, body } = parseMessage(raw);
          this.received.push({
            secure: session.secure, from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address), user: session.user, subject, body, raw,
          });
          cb();
        });
      },
      ...this.extra,
    });
    this.server.on('error', () => {});
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

function capture(severity: number, phrase: string, over: Record<string, unknown> = {}) {
  return {
    event_type: 'capture', id: `id-${phrase}`, timestamp: '2024-05-01T10:00:01.123456Z', ts_us: 1714557601123456, flow_id: 7,
    src_ip: '10.1.2.3', src_port: 50123, dest_ip: '93.184.216.34', dest_port: 443, vlan: [], proto: 'TCP', app_proto: 'http',
    direction: 'to_server', source: 'typed', field: 'search', host: 'www.example.com', url: `https://www.example.com/search?q=${encodeURIComponent(phrase)}`,
    phrase, category: 'self-harm', severity, count: 1, context: `... searched for ${phrase} at lunch ...`,
    device: { ip: '10.1.2.3', user: 'alice', hostname: 'LAPTOP-12' }, ...over,
  };
}

const servers: TestSmtp[] = [];
async function smtp(extra: Partial<SMTPServerOptions> = {}): Promise<TestSmtp> {
  const s = new TestSmtp(extra);
  await s.start();
  servers.push(s);
  return s;
}
after(async () => {
  for (const s of servers) await s.stop();
});

async function waitFor(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('EmailAlerter', () => {
  const pki = testPki();

  test('EmailAlerter sends a burst of captures as ONE message over STARTTLS, listing every one', async () => {
    const s = await smtp({ onAuth: (auth, _session, cb) => (auth.username === 'hark' && auth.password === 's3cret' ? cb(null, { user: 'hark' }) : cb(new Error('bad'))) });
    const counters = new Counters();
    const a = new EmailAlerter({
      smtp: `smtp://127.0.0.1:${s.port}`, from: 'hark@school.example', to: ['dsl@school.example', 'head@school.example'], site: 'Test School',
      counters, ca: pki.caPem, auth: { user: 'hark', pass: 's3cret' }, batchSeconds: 3600,
    });
    a.write(capture(5, 'hurt myself'));
    a.write(capture(2, 'below two'));
    a.write(capture(4, 'run away', { device: { ip: '10.9.9.9', hostname: 'IPAD-3' } }));
    a.write({ event_type: 'tls' });
    a.write(capture(3, 'below three'));
    a.write(capture(4, 'nobody likes me'));
    assert.equal(a.pending, 3);
    assert.equal(s.received.length, 0, 'nothing before the window closes');
    await a.close();
    assert.equal(s.received.length, 1);
    const m = s.received[0];
    assert.equal(m.secure, true, 'STARTTLS was in force when the message arrived');
    assert.equal(m.user, 'hark', 'AUTH (offered only after STARTTLS) succeeded');
    assert.equal(m.from, 'hark@school.example');
    assert.deepEqual(m.to, ['dsl@school.example', 'head@school.example']);
    assert.equal(m.subject, 'Hark: 3 safeguarding captures, highest severity 5, at Test School');
    for (const p of ['hurt myself', 'run away', 'nobody likes me']) {
      assert.ok(m.body.includes(`Phrase: "${p}"`), `body lists "${p}"`);
      assert.ok(!m.subject.includes(p), 'no capture content in the subject');
    }
    assert.ok(!m.body.includes('below'), 'below-threshold captures are not listed');
    assert.match(m.body, /severity 5 {2}category self-harm/);
    assert.match(m.body, /User\/device: alice on LAPTOP-12, 10\.1\.2\.3/);
    assert.match(m.body, /User\/device: \(unknown user\) on IPAD-3, 10\.9\.9\.9/);
    assert.match(m.body, /Where: www\.example\.com {2}https:\/\/www\.example\.com\/search\?q=run%20away/);
    assert.match(m.body, /Context: \.\.\. searched for hurt myself at lunch \.\.\./);
    assert.ok(m.body.indexOf('hurt myself') < m.body.indexOf('run away') && m.body.indexOf('run away') < m.body.indexOf('nobody likes me'), 'in arrival order');
    assert.equal(counters.get('output.email.sent'), 1);
    assert.equal(counters.get('output.email.failed'), 0);
  });

  test('EmailAlerter opens a window with the first capture and sends when it ends', async () => {
    const s = await smtp();
    const counters = new Counters();
    const a = new EmailAlerter({ smtp: `smtp://127.0.0.1:${s.port}`, from: 'hark@x.example', to: ['dsl@x.example'], site: 'S', counters, ca: pki.caPem, batchSeconds: 0.05 });
    a.write(capture(4, 'first'));
    a.write(capture(5, 'second'));
    await waitFor(() => s.received.length === 1, 'the first window');
    a.write(capture(4, 'third'));
    await waitFor(() => s.received.length === 2, 'the second window');
    await a.close();
    assert.equal(s.received[0].subject, 'Hark: 2 safeguarding captures, highest severity 5, at S');
    assert.equal(s.received[1].subject, 'Hark: 1 safeguarding capture, highest severity 4, at S');
    assert.ok(s.received[1].body.includes('"third"') && !s.received[1].body.includes('"first"'));
    assert.equal(counters.get('output.email.sent'), 2);
  });

  test('EmailAlerter sends nothing for captures below min_severity', async () => {
    const s = await smtp();
    const counters = new Counters();
    const a = new EmailAlerter({ smtp: `smtp://127.0.0.1:${s.port}`, from: 'hark@x.example', to: ['dsl@x.example'], site: 'S', counters, ca: pki.caPem, minSeverity: 5, batchSeconds: 0 });
    a.write(capture(4, 'four'));
    a.write(capture(1, 'one'));
    a.write({ event_type: 'health' });
    assert.equal(a.pending, 0);
    await a.close();
    assert.equal(s.connections, 0, 'not even a connection');
    assert.equal(counters.get('output.email.sent'), 0);
  });

  test('EmailAlerter refuses a server without STARTTLS with a clear error and never sends in plaintext', async () => {
    const s = await smtp({ disabledCommands: ['STARTTLS'], hideSTARTTLS: true });
    const counters = new Counters();
    const errors: Error[] = [];
    const a = new EmailAlerter({
      smtp: `smtp://127.0.0.1:${s.port}`, from: 'hark@x.example', to: ['dsl@x.example'], site: 'S', counters, ca: pki.caPem, batchSeconds: 3600,
      retryBaseMs: 1, onError: (e) => errors.push(e),
    });
    a.write(capture(5, 'secret phrase'));
    await a.close();
    assert.equal(s.connections, 1, 'it did connect');
    assert.equal(s.mailFroms, 0, 'but never got as far as MAIL FROM');
    assert.equal(s.received.length, 0);
    assert.match(a.lastError?.message ?? '', /^Cannot send alert e-mail via smtp:\/\/127\.0\.0\.1:\d+: the server did not complete STARTTLS .*refusing to send in plaintext$/);
    assert.equal(a.lastError?.code, 'E_EMAIL_SEND');
    assert.equal(errors.length, 1, 'a refused STARTTLS is not retried');
    assert.equal(counters.get('output.email.failed'), 1);
    assert.equal(counters.get('output.email.sent'), 0);
  });

  test('EmailAlerter.verify() reports a missing STARTTLS the same way', async () => {
    const s = await smtp({ disabledCommands: ['STARTTLS'], hideSTARTTLS: true });
    const a = new EmailAlerter({ smtp: `smtp://127.0.0.1:${s.port}`, from: 'h@x.example', to: ['d@x.example'], site: 'S', counters: new Counters(), ca: pki.caPem });
    await assert.rejects(a.verify(), /STARTTLS .*refusing to send in plaintext/);
    await a.close();
  });

  test('EmailAlerter does not trust a server certificate outside the given CA, retrying a bounded number of times', async () => {
    const s = await smtp();
    const counters = new Counters();
    const a = new EmailAlerter({
      smtp: `smtp://127.0.0.1:${s.port}`, from: 'h@x.example', to: ['d@x.example'], site: 'S', counters, ca: pki.otherCaPem, batchSeconds: 3600,
      maxAttempts: 3, retryBaseMs: 1, retryMaxMs: 5,
    });
    a.write(capture(5, 'p'));
    await a.close();
    assert.match(a.lastError?.message ?? '', /certificate/i);
    assert.equal(s.mailFroms, 0);
    assert.equal(counters.get('output.email.retries'), 2);
    assert.equal(counters.get('output.email.failed'), 1);
    assert.equal(counters.get('output.email.sent'), 0);
  });

  test('EmailAlerter retries a temporary failure and then delivers', async () => {
    const s = await smtp();
    s.dataErrors.push(Object.assign(new Error('try later'), { responseCode: 451 }));
    const counters = new Counters();
    const a = new EmailAlerter({ smtp: `smtp://127.0.0.1:${s.port}`, from: 'h@x.example', to: ['d@x.example'], site: 'S', counters, ca: pki.caPem, batchSeconds: 3600, retryBaseMs: 1, retryMaxMs: 5 });
    a.write(capture(5, 'eventually'));
    await a.close();
    assert.equal(s.received.length, 1);
    assert.ok(s.received[0].body.includes('"eventually"'));
    assert.equal(counters.get('output.email.retries'), 1);
    assert.equal(counters.get('output.email.sent'), 1);
  });

  test('EmailAlerter gives up at once on a permanent (5xx) rejection', async () => {
    const s = await smtp();
    s.dataErrors.push(Object.assign(new Error('no such policy'), { responseCode: 554 }));
    const counters = new Counters();
    const a = new EmailAlerter({ smtp: `smtp://127.0.0.1:${s.port}`, from: 'h@x.example', to: ['d@x.example'], site: 'S', counters, ca: pki.caPem, batchSeconds: 3600, retryBaseMs: 1 });
    a.write(capture(5, 'p'));
    await a.close();
    assert.equal(s.received.length, 0);
    assert.equal(counters.get('output.email.retries'), 0);
    assert.equal(counters.get('output.email.failed'), 1);
  });

  test('EmailAlerter uses implicit TLS for smtps://', async () => {
    const s = await smtp({ secure: true });
    const counters = new Counters();
    const a = new EmailAlerter({ smtp: `smtps://127.0.0.1:${s.port}`, from: 'h@x.example', to: ['d@x.example'], site: 'S', counters, ca: pki.caPem, batchSeconds: 3600 });
    a.write(capture(4, 'implicit'));
    await a.close();
    assert.equal(s.received.length, 1);
    assert.equal(s.received[0].secure, true);
  });

  test('EmailAlerter sends plaintext only with the explicit insecure option', async () => {
    const s = await smtp({ disabledCommands: ['STARTTLS'], hideSTARTTLS: true });
    const a = new EmailAlerter({ smtp: `smtp://127.0.0.1:${s.port}`, from: 'h@x.example', to: ['d@x.example'], site: 'S', counters: new Counters(), insecure: true, batchSeconds: 3600 });
    a.write(capture(4, 'plain'));
    await a.close();
    assert.equal(s.received.length, 1);
    assert.equal(s.received[0].secure, false);
  });

  test('EmailAlerter rejects a bad SMTP URL, credentials in the URL, no recipients and a bad threshold', () => {
    const base = { from: 'h@x.example', to: ['d@x.example'], site: 'S', counters: new Counters() };
    assert.throws(() => new EmailAlerter({ ...base, smtp: 'http://mail.example:25' }), { code: 'E_EMAIL_CONFIG' });
    assert.throws(() => new EmailAlerter({ ...base, smtp: 'smtp://u:p@mail.example' }), (e: Error) => (e as { code?: string }).code === 'E_EMAIL_CONFIG' && !e.message.includes(':p@'));
    assert.throws(() => new EmailAlerter({ ...base, to: [], smtp: 'smtp://mail.example' }), { code: 'E_EMAIL_CONFIG' });
    assert.throws(() => new EmailAlerter({ ...base, smtp: 'smtp://mail.example', minSeverity: 7 }), { code: 'E_EMAIL_CONFIG' });
  });
});

describe('composeAlert', () => {
  test('composeAlert caps the list and says how many more, keeping the most severe', () => {
    const many = Array.from({ length: MAX_CAPTURES_PER_EMAIL + 10 }, (_, i) => capture(4, `phrase-${i}`));
    many.push(capture(5, 'late but severe'));
    const m = composeAlert(many, 'Site');
    assert.equal(m.subject, alertSubject(MAX_CAPTURES_PER_EMAIL + 11, 5, 'Site'));
    assert.equal(m.subject, `Hark: ${MAX_CAPTURES_PER_EMAIL + 11} safeguarding captures, highest severity 5, at Site`);
    assert.equal((m.text.match(/^\d+\. /gm) ?? []).length, MAX_CAPTURES_PER_EMAIL);
    assert.ok(m.text.includes('"late but severe"'), 'a severity 5 replaces a listed severity 4');
    assert.ok(m.text.includes(`... and 11 more captures not listed (a message lists at most ${MAX_CAPTURES_PER_EMAIL}).`));
  });

  test('composeAlert strips control characters that came off the network', () => {
    const m = composeAlert([capture(5, 'line\r\nBcc: evil@x.example', { context: 'a\u0000b\u001b[31mc' })], 'Site\r\nX-Injected: 1');
    assert.ok(!/[\r\u0000\u001b]/.test(m.text));
    assert.ok(m.text.includes('Phrase: "line Bcc: evil@x.example"'));
    assert.ok(!m.subject.includes('\n') && !m.subject.includes('\r'));
  });
});
