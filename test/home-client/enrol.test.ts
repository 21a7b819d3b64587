import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import forge from 'node-forge';
import { CliError } from '../../sensor/cli/command.js';
import { fingerprint, SensorCredentials } from '../../sensor/home-client/credentials.js';
import { completeEnrolment, EnrolError, enrolWithCredentials, listSensors, requestCode, waitForApproval } from '../../sensor/home-client/enrol.js';
import { enrolCommand, readSiteKey, runEnrol } from '../../sensor/home-client/enrol-command.js';
import { HomeLink } from '../../sensor/home-client/link.js';
import { FakeHome, makeCa, type Pem, type SeenRequest } from './fake-home.js';
import { scratchDir } from '../helpers/scratch.js';

const HARK_JS = fileURLToPath(new URL('../../sensor/cli/hark.js', import.meta.url));
const PS_WARNING = /hark enrol: warning: --site-key puts the site key where every local user can read it \(ps\); use --site-key-file PATH, or --site-key-file - to give it on standard input/;

let ca: Pem;
let otherCa: Pem;
let creds: SensorCredentials;

before(() => {
  ca = makeCa('Hark Home CA');
  otherCa = makeCa('Other CA');
  creds = SensorCredentials.loadOrCreate(join(scratchDir('hark-enrol-'), 'identity'));
});

/** Signs a sensor's CSR the way PROTOCOL.md says home does (CN = UUID from the request). */
function signCsr(signer: Pem, csrPem: string): string {
  const csr = forge.pki.certificationRequestFromPem(csrPem);
  assert.equal(csr.verify(), true);
  const cert = forge.pki.createCertificate();
  cert.publicKey = csr.publicKey as forge.pki.PublicKey;
  cert.serialNumber = '0a1b2c3d';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 5 * 365 * 86400_000);
  cert.setSubject(csr.subject.attributes);
  cert.setIssuer(forge.pki.certificateFromPem(signer.cert).subject.attributes);
  cert.sign(forge.pki.privateKeyFromPem(signer.key), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** A home speaking the enrolment calls: code approved after `pending` polls, one admin "admin"/"pw", site key "hilltop-key". */
async function enrolHome(pending = 1, signer = ca): Promise<FakeHome> {
  const home = await FakeHome.start(ca);
  let csr = '';
  let polls = 0;
  const siteOk = (r: SeenRequest): boolean => (r.body as { site_key?: string }).site_key === 'hilltop-key';
  const siteRefused = { status: 403, body: { error: 'E_SITE_KEY', message: 'site key required' } };
  home.routes.set('POST /v1/enrol/request', (r) => {
    if (!siteOk(r)) return siteRefused;
    csr = (r.body as { csr: string }).csr;
    return { status: 202, body: { code: 'ABCD-EFGH', poll: 'poll-1' } };
  });
  home.routes.set('GET /v1/enrol/request/poll-1', () => (polls++ < pending ? { body: { status: 'pending' } } : { body: { status: 'approved', sensor_id: 7, certificate: signCsr(signer, csr), ca: ca.cert } }));
  home.routes.set('GET /v1/enrol/request/poll-2', () => ({ body: { status: 'rejected' } }));
  const login = (r: SeenRequest): boolean => {
    const b = r.body as { user?: string; password?: string };
    return b.user === 'admin' && b.password === 'pw';
  };
  home.routes.set('POST /v1/enrol/sensors', (r) => (!siteOk(r) ? siteRefused : !login(r) ? { status: 401, body: { error: 'E_LOGIN', message: 'bad login' } } : { body: { sensors: [{ id: 7, name: 'Main', site: 'Hilltop', enrolled: false }] } }));
  home.routes.set('POST /v1/enrol/credentials', (r) => {
    if (!siteOk(r)) return siteRefused;
    if (!login(r)) return { status: 401, body: { error: 'E_LOGIN', message: 'bad login' } };
    const b = r.body as { sensor_id: number; csr: string };
    return { body: { sensor_id: b.sensor_id, certificate: signCsr(signer, b.csr), ca: ca.cert } };
  });
  return home;
}

describe('enrol by code', () => {
  it('requestCode then waitForApproval gives a grant that installs', async () => {
    const home = await enrolHome(2);
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    const mine = SensorCredentials.loadOrCreate(join(scratchDir('hark-enrol-'), 'identity'));
    try {
      const ctx = { link, creds: mine, hostname: 'sensor1', siteKey: 'hilltop-key' };
      const { code, poll } = await requestCode(ctx);
      assert.equal(code, 'ABCD-EFGH');
      const sent = home.seen.find((r) => r.path === '/v1/enrol/request')!.body as Record<string, unknown>;
      assert.equal(sent.uuid, mine.uuid);
      assert.equal(sent.hostname, 'sensor1');
      assert.match(String(sent.csr), /BEGIN CERTIFICATE REQUEST/);
      const grant = await waitForApproval(ctx, poll, { intervalMs: 5 });
      assert.equal(home.count('/v1/enrol/request/poll-1'), 3);
      completeEnrolment(mine, grant, [home.url], ca.cert);
      assert.equal(mine.sensorId, 7);
      assert.equal(mine.caFingerprint, fingerprint(ca.cert));
    } finally {
      await link.close();
      await home.close();
    }
  });

  it('waitForApproval reports a rejected request', async () => {
    const home = await enrolHome();
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      await assert.rejects(waitForApproval({ link, creds }, 'poll-2', { intervalMs: 5 }), (e: unknown) => e instanceof EnrolError && e.code === 'E_ENROL_REJECTED');
    } finally {
      await link.close();
      await home.close();
    }
  });

  it('waitForApproval stops when its signal aborts', async () => {
    const home = await enrolHome(1_000_000);
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      const stop = new AbortController();
      const p = waitForApproval({ link, creds }, 'poll-1', { intervalMs: 5, signal: stop.signal });
      setTimeout(() => stop.abort(new Error('stopped')), 30);
      await assert.rejects(p, /stopped/);
    } finally {
      await link.close();
      await home.close();
    }
  });

  it('requestCode turns E_SITE_KEY into "Home refused the site key"', async () => {
    const home = await enrolHome();
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      await assert.rejects(requestCode({ link, creds, siteKey: 'wrong' }), (e: unknown) => e instanceof EnrolError && e.code === 'E_SITE_KEY' && e.message === 'Home refused the site key' && e.status === 403);
      await assert.rejects(requestCode({ link, creds }), (e: unknown) => e instanceof EnrolError && /needs one \(--site-key-file PATH\)/.test(e.message));
    } finally {
      await link.close();
      await home.close();
    }
  });

  it('completeEnrolment refuses a grant naming another CA than the confirmed one', () => {
    const grant = { sensor_id: 7, certificate: signCsr(otherCa, creds.csr('x')), ca: otherCa.cert };
    assert.throws(() => completeEnrolment(creds, grant, [], ca.cert), (e: unknown) => e instanceof EnrolError && e.code === 'E_ENROL_CA');
    assert.equal(creds.enrolled, false);
  });
});

describe('enrol with credentials', () => {
  it('listSensors and enrolWithCredentials with an admin login', async () => {
    const home = await enrolHome();
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    const mine = SensorCredentials.loadOrCreate(join(scratchDir('hark-enrol-'), 'identity'));
    try {
      const ctx = { link, creds: mine, siteKey: 'hilltop-key' };
      assert.deepEqual(await listSensors(ctx, 'admin', 'pw'), [{ id: 7, name: 'Main', site: 'Hilltop', enrolled: false }]);
      const grant = await enrolWithCredentials(ctx, 'admin', 'pw', 7);
      completeEnrolment(mine, grant, [home.url], ca.cert);
      assert.equal(mine.sensorId, 7);
    } finally {
      await link.close();
      await home.close();
    }
  });

  it('enrolWithCredentials turns E_LOGIN into "Wrong user ID or password"', async () => {
    const home = await enrolHome();
    const link = new HomeLink({ homes: [home.url], ca: ca.cert });
    try {
      await assert.rejects(enrolWithCredentials({ link, creds, siteKey: 'hilltop-key' }, 'admin', 'nope', 7), (e: unknown) => e instanceof EnrolError && e.code === 'E_LOGIN' && e.message === 'Wrong user ID or password');
    } finally {
      await link.close();
      await home.close();
    }
  });
});

async function runCommand(argv: string[]): Promise<{ code: number | undefined; out: string; error?: unknown }> {
  let out = '';
  try {
    return { code: await runEnrol(argv, (t) => (out += t)), out };
  } catch (error) {
    return { code: undefined, out, error };
  }
}

describe('enrolCommand', () => {
  it('hark enrol as root on a data directory another user owns writes the identity as that user, and hands over what an earlier root run left', async () => {
    assert.equal(process.getuid?.(), 0, 'this test needs root (CI runs as root)');
    const nobody = 65534;
    const base = mkdtempSync(join(tmpdir(), 'hark-enrol-owner-'));
    chmodSync(base, 0o711);
    // as setup.sh makes /var/lib/hark for hark.service's user
    const data = join(base, 'data');
    mkdirSync(data, { mode: 0o700 });
    chownSync(data, nobody, nobody);
    // an earlier run as root (the console's status screen, before enrolment) made identity/ root's
    SensorCredentials.loadOrCreate(join(data, 'identity'));
    // the site key stays root's: it is read as root, not as the data directory's owner
    const keyFile = join(base, 'site-key');
    writeFileSync(keyFile, 'hilltop-key\n', { mode: 0o600 });
    const home = await enrolHome(0);
    const owned = (): void => {
      const dir = join(data, 'identity');
      assert.deepEqual([lstatSync(dir).uid, lstatSync(dir).gid, lstatSync(dir).mode & 0o777], [nobody, nobody, 0o700], dir);
      for (const name of readdirSync(dir)) {
        const st = lstatSync(join(dir, name));
        assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [nobody, nobody, 0o600], name);
      }
    };
    try {
      const r = await runCommand(['--home', home.url, '--code', '--site-key-file', keyFile, '--ca-fingerprint', fingerprint(ca.cert), '--data-dir', data]);
      assert.equal(r.error, undefined, String(r.error));
      assert.match(r.out, /Enrolled as sensor 7/);
      assert.deepEqual(readdirSync(join(data, 'identity')).sort(), ['ca.pem', 'cert.pem', 'key.pem', 'sensor.json']);
      owned();
      assert.equal((await runCommand(['--reset', '--data-dir', data])).code, 0);
      owned();
      assert.deepEqual([process.geteuid?.(), process.getegid?.()], [0, 0], 'root again after each command');
    } finally {
      await home.close();
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('hark enrol --code without --ca-fingerprint and without a terminal to confirm it sends home nothing (no request, no site key)', async () => {
    assert.notEqual(process.stdin.isTTY, true, 'the test needs a standard input that is not a terminal');
    const home = await enrolHome(0);
    const data = scratchDir('hark-enrol-cmd-');
    try {
      const r = await runCommand(['--home', home.url, '--code', '--site-key', 'hilltop-key', '--data-dir', data]);
      assert.ok(r.error instanceof CliError && r.error.exitCode === 1, String(r.error));
      assert.match(r.error.message, /^Not sending an enrolment request and the site key to a home whose CA fingerprint was not confirmed: give --ca-fingerprint FP/);
      assert.match(r.out, new RegExp(`Home's CA fingerprint \\(SHA-256\\): ${fingerprint(ca.cert)}`), 'the fingerprint is shown');
      assert.equal(home.count('/v1/ca'), 1, 'only the CA was fetched');
      assert.equal(home.count('/v1/enrol/request'), 0, 'no enrolment request, so no site key, went to home');
      assert.equal(JSON.parse(readFileSync(join(data, 'identity', 'sensor.json'), 'utf8')).sensor_id, 0, 'still unconfigured');
    } finally {
      await home.close();
    }
  });

  it('hark enrol --code enrols, prints the code and fingerprint, and --status and --reset work', async () => {
    const home = await enrolHome(0);
    const data = scratchDir('hark-enrol-cmd-');
    try {
      const r = await runCommand(['--home', home.url, '--code', '--site-key', 'hilltop-key', '--ca-fingerprint', fingerprint(ca.cert), '--data-dir', data, '--proxy', 'http://127.0.0.1:1']);
      // The proxy is unreachable: the CA fetch fails, naming it.
      assert.ok(r.error instanceof CliError && r.error.exitCode === 1 && /proxy/.test(r.error.message), String(r.error));
      const keyFile = join(data, 'site-key');
      writeFileSync(keyFile, 'hilltop-key\n', { mode: 0o600 });
      const ok = await runCommand(['--home', home.url, '--code', '--site-key-file', keyFile, '--ca-fingerprint', fingerprint(ca.cert), '--data-dir', data]);
      assert.equal(ok.error, undefined);
      assert.equal(ok.code, 0);
      assert.doesNotMatch(ok.out, PS_WARNING);
      assert.match(ok.out, /Enrolment code: ABCD-EFGH/);
      assert.ok(ok.out.includes(fingerprint(ca.cert)));
      assert.match(ok.out, /Enrolled as sensor 7/);
      const info = JSON.parse(readFileSync(join(data, 'identity', 'sensor.json'), 'utf8'));
      assert.equal(info.sensor_id, 7);
      assert.deepEqual(info.homes, [home.url]);
      const st = await runCommand(['--status', '--data-dir', data]);
      assert.match(st.out, /Sensor id: +7/);
      assert.match(st.out, /from home/);
      // the console menu's licence screen reads this form
      const js = await runCommand(['--status', '--json', '--data-dir', data]);
      const fields = JSON.parse(js.out);
      assert.equal(fields.sensor_id, 7);
      assert.deepEqual(fields.homes, [home.url]);
      assert.equal(fields.ca_fingerprint, fingerprint(ca.cert));
      assert.equal(fields.certificate, 'from home');
      assert.ok(Number.isFinite(Date.parse(fields.certificate_valid_until)));
      const lone = await runCommand(['--json', '--data-dir', data]);
      assert.ok(lone.error instanceof CliError && lone.error.exitCode === 2 && /--json goes with --status/.test(lone.error.message), String(lone.error));
      const again = await runCommand(['--home', home.url, '--code', '--data-dir', data]);
      assert.ok(again.error instanceof CliError && /already enrolled/.test(again.error.message));
      const rs = await runCommand(['--reset', '--data-dir', data]);
      assert.match(rs.out, /Reset to unconfigured \(was sensor 7\)/);
      assert.equal(JSON.parse(readFileSync(join(data, 'identity', 'sensor.json'), 'utf8')).sensor_id, 0);
    } finally {
      await home.close();
    }
  });

  it('hark enrol stops when the CA fingerprint differs from --ca-fingerprint', async () => {
    const home = await enrolHome(0);
    const data = scratchDir('hark-enrol-cmd-');
    try {
      const r = await runCommand(['--home', home.url, '--code', '--site-key', 'hilltop-key', '--ca-fingerprint', fingerprint(otherCa.cert), '--data-dir', data]);
      assert.ok(r.error instanceof CliError && r.error.exitCode === 1 && /fingerprint/.test(r.error.message), String(r.error));
      assert.equal(home.count('/v1/enrol/request'), 0);
    } finally {
      await home.close();
    }
  });

  it('hark enrol --user with $HARK_PASSWORD and --sensor enrols by credentials', async () => {
    const home = await enrolHome();
    const data = scratchDir('hark-enrol-cmd-');
    process.env.HARK_PASSWORD = 'pw';
    try {
      const r = await runCommand(['--home', home.url, '--user', 'admin', '--sensor', '7', '--site-key', 'hilltop-key', '--ca-fingerprint', fingerprint(ca.cert), '--data-dir', data]);
      assert.equal(r.error, undefined);
      assert.equal(r.code, 0);
      assert.match(r.out, PS_WARNING, '--site-key still works, and says that ps shows it');
      assert.equal(JSON.parse(readFileSync(join(data, 'identity', 'sensor.json'), 'utf8')).sensor_id, 7);
    } finally {
      delete process.env.HARK_PASSWORD;
      await home.close();
    }
  });

  it('enrolCommand --help explains the modes', async () => {
    assert.match(enrolCommand.usage, /--code/);
    const r = await runCommand(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.out, /--ca-fingerprint FP/);
    assert.match(r.out, /HARK_PASSWORD/);
    assert.match(r.out, /--site-key-file PATH +the site key/);
    assert.match(r.out, /--site-key KEY +the same on the command line, where every local user can read it \(ps\)/);
  });

  it('hark enrol --site-key-file - reads the key from standard input, and ps never shows it', async () => {
    const home = await enrolHome(0);
    const data = scratchDir('hark-enrol-cmd-');
    try {
      const child = spawn(process.execPath, [HARK_JS, 'enrol', '--home', home.url, '--code', '--site-key-file', '-', '--ca-fingerprint', fingerprint(ca.cert), '--data-dir', data], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      const exited = once(child, 'exit');
      assert.doesNotMatch(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8'), /hilltop-key/);
      child.stdin.end('hilltop-key\n');
      const [code] = await exited;
      assert.equal(code, 0, err);
      assert.match(out, /Enrolled as sensor 7/);
      assert.equal(err, '', 'no warning');
      assert.equal((home.seen.find((r) => r.path === '/v1/enrol/request')!.body as { site_key?: string }).site_key, 'hilltop-key');
    } finally {
      await home.close();
    }
  });

  it('hark enrol refuses both --site-key and --site-key-file', async () => {
    const r = await runCommand(['--home', 'https://h:1', '--code', '--site-key', 'a', '--site-key-file', '/nonexistent', '--data-dir', scratchDir('hark-enrol-cmd-')]);
    assert.ok(r.error instanceof CliError && r.error.exitCode === 2 && r.error.message === 'Give the site key once: --site-key-file PATH or --site-key KEY, not both', String(r.error));
  });
});

describe('readSiteKey', () => {
  it('readSiteKey takes the first line of a file without its line ending', async () => {
    const dir = scratchDir('hark-site-key-');
    writeFileSync(join(dir, 'lf'), 'hilltop-key\nsecond line\n');
    writeFileSync(join(dir, 'crlf'), 'hilltop-key\r\n');
    writeFileSync(join(dir, 'bare'), ' hilltop key ');
    assert.equal(await readSiteKey(join(dir, 'lf')), 'hilltop-key');
    assert.equal(await readSiteKey(join(dir, 'crlf')), 'hilltop-key');
    assert.equal(await readSiteKey(join(dir, 'bare')), ' hilltop key ', 'home compares the key exactly: spaces are kept');
  });

  it('readSiteKey reads "-" from the input given, up to the first newline', async () => {
    assert.equal(await readSiteKey('-', Readable.from([Buffer.from('hill'), Buffer.from('top-key\nrest')])), 'hilltop-key');
    assert.equal(await readSiteKey('-', Readable.from([Buffer.from('hilltop-key')])), 'hilltop-key');
  });

  it('readSiteKey names a file it cannot read', async () => {
    await assert.rejects(readSiteKey('/nonexistent/site-key'), (e: unknown) => e instanceof CliError && e.exitCode === 2 && e.message === 'Cannot read the site key file "/nonexistent/site-key": no such file');
  });

  it('readSiteKey refuses an empty first line', async () => {
    const dir = scratchDir('hark-site-key-');
    writeFileSync(join(dir, 'empty'), '');
    await assert.rejects(readSiteKey(join(dir, 'empty')), (e: unknown) => e instanceof CliError && /^No site key in the site key file ".*\/empty": its first line is empty$/.test(e.message));
    await assert.rejects(readSiteKey('-', Readable.from([Buffer.from('\nhilltop-key\n')])), (e: unknown) => e instanceof CliError && e.message === 'No site key in standard input: its first line is empty');
  });

  it('readSiteKey reads at most 1024 bytes and refuses a first line that long', async () => {
    await assert.rejects(readSiteKey('/dev/zero'), (e: unknown) => e instanceof CliError && e.message === 'No site key in the site key file "/dev/zero": its first line is longer than 1024 bytes');
    await assert.rejects(readSiteKey('-', Readable.from([Buffer.alloc(600, 0x61), Buffer.alloc(600, 0x61)])), (e: unknown) => e instanceof CliError && /longer than 1024 bytes/.test(e.message));
  });

  it('hark enrol refuses a malformed --home, --proxy or --ca-fingerprint as a bad option (exit 2) before contacting home', async () => {
    const home = await enrolHome(0);
    const data = scratchDir('hark-enrol-cmd-');
    const fp = fingerprint(ca.cert);
    try {
      for (const [options, message] of [
        [['--home', 'notaurl'], 'Cannot use home "notaurl": not a URL (expected https://host:port)'],
        [['--home', home.url, '--home', 'ftp://fallback:21'], 'Cannot use home "ftp://fallback:21": scheme "ftp:" (expected https://)'],
        [['--home', 'http://127.0.0.1:1'], 'Refusing home "http://127.0.0.1:1": plain http:// has no TLS and no pin; use https://'],
        [['--home', home.url, '--proxy', 'notaurl'], 'Cannot use proxy "notaurl": not a URL (expected http://host:port)'],
        [['--home', home.url, '--ca-fingerprint', 'zz'], '--ca-fingerprint must be a SHA-256 fingerprint, 64 hex digits (colons or spaces allowed), not "zz"'],
        [['--home', home.url, '--ca-fingerprint', fp.slice(0, -3)], `--ca-fingerprint must be a SHA-256 fingerprint, 64 hex digits (colons or spaces allowed), not "${fp.slice(0, -3)}"`],
      ] as const) {
        const argv = [...options, '--code', '--data-dir', data];
        if (!(options as readonly string[]).includes('--ca-fingerprint')) argv.push('--ca-fingerprint', fp);
        const r = await runCommand(argv);
        assert.ok(r.error instanceof CliError, `${options.join(' ')}: ${String(r.error)}`);
        assert.equal(r.error.exitCode, 2, options.join(' '));
        assert.equal(r.error.message, message);
      }
      assert.equal(home.count('/v1/ca'), 0, 'home was never asked');
      const ok = await runCommand(['--home', home.url, '--code', '--site-key', 'hilltop-key', '--ca-fingerprint', fp.toLowerCase().replace(/:/g, ' '), '--data-dir', data]);
      assert.equal(ok.error, undefined, 'a fingerprint in lower case with spaces is well-formed');
    } finally {
      await home.close();
    }
  });

  it('hark enrol to a well-formed home that does not answer fails with exit 1, as --help says', async () => {
    const r = await runCommand(['--home', 'https://127.0.0.1:1', '--code', '--data-dir', scratchDir('hark-enrol-cmd-')]);
    assert.ok(r.error instanceof CliError && r.error.exitCode === 1 && /127\.0\.0\.1:1/.test(r.error.message), String(r.error));
    assert.match(enrolCommand.usage, /1 enrolment refused or failed, 2 bad options/);
  });

  it('hark enrol refuses both --code and --user', async () => {
    const r = await runCommand(['--home', 'https://h:1', '--code', '--user', 'a', '--data-dir', scratchDir('hark-enrol-cmd-')]);
    assert.ok(r.error instanceof CliError && r.error.exitCode === 2);
  });
});
