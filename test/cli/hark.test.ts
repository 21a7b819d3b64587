/**
 * The hark command as a user runs it (bin/hark): help texts, exit codes, clear one-line errors
 * for bad options and damaged files (never a stack trace), JSON output and stream dumps.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { fixture } from '../helpers/replay.js';

const HARK = fileURLToPath(new URL('../../../bin/hark', import.meta.url));

function hark(...args: string[]) {
  const r = spawnSync(HARK, args, { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Runs `fn` with a new temporary directory, removed afterwards whatever `fn` does. */
function inTempDir(prefix: string, fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function noStackTrace(text: string): void {
  assert.doesNotMatch(text, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace in: ${text}`);
}

describe('hark', () => {
  test('--help lists the commands and exits 0', () => {
    const r = hark('--help');
    assert.equal(r.code, 0);
    assert.match(r.out, /Usage: hark <command>/);
    assert.match(r.out, /flows/);
  });

  test('no command prints usage and exits 2', () => {
    const r = hark();
    assert.equal(r.code, 2);
    assert.match(r.out, /Usage: hark/);
  });

  test('an unknown command is named', () => {
    const r = hark('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command "frobnicate"/);
  });

  test('flows --help explains every option', () => {
    const r = hark('flows', '--help');
    assert.equal(r.code, 0);
    for (const opt of ['--json', '--dump DIR', '--keep-duplicates', '--no-progress', '--quiet', '--help']) assert.ok(r.out.includes(opt), opt);
    assert.match(r.out, /Exit status/);
  });

  test('flows with an unknown option says so in one line', () => {
    const r = hark('flows', '--frob', fixture('tcp', 'ws-http-ooo.pcap'));
    assert.equal(r.code, 2);
    assert.match(r.err, /--frob/);
    noStackTrace(r.err);
  });

  test('flows on a missing file names it', () => {
    const r = hark('flows', '/nonexistent/x.pcap');
    assert.equal(r.code, 2);
    assert.match(r.err, /Cannot open capture file "\/nonexistent\/x\.pcap": no such file/);
    noStackTrace(r.err);
  });

  test('flows, scan and identity on a directory say it is one and exit 2', () => {
    inTempDir('hark-cli-', (dir) => {
      for (const cmd of ['flows', 'scan', 'identity']) {
        const r = hark(cmd, dir);
        assert.equal(r.code, 2, `${cmd}: ${r.err}`);
        assert.equal(r.err, `hark ${cmd}: Cannot open capture file "${dir}": is a directory\n`);
      }
    });
  });

  test('flows on a file that is not a capture says what it found', () => {
    inTempDir('hark-cli-', (dir) => {
      const f = join(dir, 'notes.txt');
      writeFileSync(f, 'hello, this is not a pcap\n');
      const r = hark('flows', f);
      assert.equal(r.code, 2);
      assert.match(r.err, /not a pcap or pcapng file \(magic 0x68656c6c\)/);
      noStackTrace(r.err);
    });
  });

  test('flows on a truncated file prints the flows before the damage, the byte offset, and exits 3', () => {
    inTempDir('hark-cli-', (dir) => {
      const src = fixture('tcp', 'zeek-http-pipelined-requests.pcap');
      const whole = readFileSync(src);
      const cut = join(dir, 'cut.pcap');
      writeFileSync(cut, whole.subarray(0, whole.length - 100));
      const r = hark('flows', '--json', cut);
      assert.equal(r.code, 3);
      assert.match(r.err, /stopped at byte offset \d+: truncated packet record \d+: header says \d+ bytes, file ends after \d+/);
      noStackTrace(r.err);
      const flows = r.out.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(flows.length, 1);
      assert.ok(flows[0].data_toclient > 30000, 'everything before the damage was reassembled');
    });
  });

  test('flows --json emits one EVE-style object per flow', () => {
    const r = hark('flows', '--json', '--quiet', fixture('tcp', 'zeek-tcp-missing-syn.pcap'));
    assert.equal(r.code, 0);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 1);
    const f = JSON.parse(lines[0]);
    assert.equal(f.proto, 'TCP');
    assert.equal(f.src_ip, '141.42.64.125');
    assert.equal(f.src_port, 56730);
    assert.equal(f.dest_ip, '125.190.109.199');
    assert.equal(f.dest_port, 80);
    assert.equal(f.data_toserver, 98);
    assert.equal(f.data_toclient, 9417);
    assert.equal(f.state, 'closed');
    assert.equal(typeof f.flow_id, 'number');
    assert.equal(r.err, '');
  });

  test('flows prints the counter summary on stderr', () => {
    const r = hark('flows', fixture('tcp', 'ws-tcp-badsegments.pcap'));
    assert.equal(r.code, 0);
    assert.match(r.out, /^\d+ TCP 10\.0\.0\.1:32323 -> 10\.0\.0\.2:80 .* gaps=4\/0 \(62\/0 B\) overlaps=\d+ mismatched=\d+/);
    assert.match(r.err, /25 packets/);
    assert.match(r.err, /stream\.tcp\.overlap_mismatch \d+/);
    assert.match(r.err, /gaps 4 \(62 bytes\)/);
  });

  test('flow ids are stable across runs', () => {
    const a = hark('flows', '--quiet', fixture('tcp', 'arkime-v6-http.pcap'));
    const b = hark('flows', '--quiet', fixture('tcp', 'arkime-v6-http.pcap'));
    assert.equal(a.out, b.out);
    assert.ok(a.out.length > 0);
  });

  test('flows --dump writes each direction to a file readable only by its owner', () => {
    inTempDir('hark-cli-', (dir) => {
      const r = hark('flows', '--quiet', '--dump', join(dir, 'out'), fixture('tcp', 'zeek-tcp-missing-syn.pcap'));
      assert.equal(r.code, 0);
      const files = readdirSync(join(dir, 'out')).sort();
      assert.deepEqual(files, ['125.190.109.199.00080-141.042.064.125.56730', '141.042.064.125.56730-125.190.109.199.00080']);
      assert.equal(statSync(join(dir, 'out', files[1])).size, 98);
      assert.equal(statSync(join(dir, 'out', files[0])).mode & 0o077, 0);
    });
  });

  test('dictionary check reports bad rows with line numbers and exits 1; the starter passes', () => {
    const good = hark('dictionary', 'check', fileURLToPath(new URL('../../../rules/starter.json', import.meta.url)));
    assert.equal(good.code, 0);
    assert.match(good.out, /starter\.json: \d+ phrases, 0 errors/);
    inTempDir('hark-dict-', (dir) => {
      const bad = join(dir, 'bad.csv');
      writeFileSync(bad, 'phrase,category,severity,embedded\nkill myself,self-harm,5,no\n,bullying,3,no\nAK47,weapons,7,no\n');
      const r = hark('dictionary', 'check', bad);
      assert.equal(r.code, 1);
      assert.match(r.out, /bad\.csv:3: .*phrase/i);
      assert.match(r.out, /bad\.csv:4: .*severity/i);
    });
  });

  test('dictionary check on a missing file or a directory says so on stderr after the command, exit 1 as --help says', () => {
    inTempDir('hark-dict-', (dir) => {
      const missing = join(dir, 'nosuch.csv');
      const m = hark('dictionary', 'check', missing);
      assert.equal(m.code, 1, m.err);
      assert.equal(m.out, '');
      assert.equal(m.err, `hark dictionary: Cannot read dictionary "${missing}": ENOENT\n`);
      const d = hark('dictionary', 'check', dir);
      assert.equal(d.code, 1, d.err);
      assert.equal(d.out, '');
      assert.equal(d.err, `hark dictionary: Cannot read dictionary "${dir}": is a directory\n`);
      assert.match(hark('dictionary', '--help').out, /exit status 1 when there is any error or the file cannot be read/);
    });
  });

  test('dictionary compile of a dictionary with errors says so in one line on stderr and exits 1', () => {
    inTempDir('hark-dict-', (dir) => {
      const bad = join(dir, 'bad.csv');
      writeFileSync(bad, 'phrase,category,severity,embedded\nAK47,weapons,7,no\n');
      const r = hark('dictionary', 'compile', bad);
      assert.equal(r.code, 1, r.err);
      assert.equal(r.out, '');
      assert.match(r.err, /^hark dictionary: Cannot load dictionary ".*bad\.csv": 1 error, first .*bad\.csv:2: .*severity.* \(run: hark dictionary check .*bad\.csv\)\n$/);
    });
  });

  test('scan --dictionary names every format it takes (.csv, .json, .hdict) for another extension, and a directory as one', () => {
    inTempDir('hark-dict-', (dir) => {
      const md = join(dir, 'x.md');
      writeFileSync(md, '# phrases\n');
      const pcap = fixture('school-search', 'school-search.pcap');
      const r = hark('scan', '--quiet', '--dictionary', md, pcap);
      assert.equal(r.code, 2, r.err);
      assert.equal(r.err, `hark scan: Cannot read dictionary "${md}": extension ".md" is not .csv, .json or .hdict\n`);
      const d = hark('scan', '--quiet', '--dictionary', dir, pcap);
      assert.equal(d.code, 2, d.err);
      assert.equal(d.err, `hark scan: Cannot read dictionary "${dir}": is a directory\n`);
    });
  });

  test('dictionary compile writes an artifact that scan loads and that finds the same captures', () => {
    inTempDir('hark-dict-', (dir) => {
      const out = join(dir, 'starter.hdict');
      const c = hark('dictionary', 'compile', fileURLToPath(new URL('../../../rules/starter.json', import.meta.url)), '-o', out);
      assert.equal(c.code, 0, c.err);
      assert.match(c.out, /\d+ phrases, \d+ patterns, .* bytes \(\d+\.\d bytes\/phrase\)/);
      const pcap = fixture('school-search', 'school-search.pcap');
      const viaArtifact = hark('scan', '--quiet', '--dictionary', out, pcap);
      const viaSource = hark('scan', '--quiet', pcap);
      assert.equal(viaArtifact.code, 0, viaArtifact.err);
      assert.equal(viaArtifact.out, viaSource.out);
      assert.equal(viaSource.out.trim().split('\n').length, 4);
    });
  });

  test('scan --dictionary with a damaged compiled dictionary names it and exits 2', () => {
    inTempDir('hark-dict-', (dir) => {
      const junk = join(dir, 'junk.hdict');
      writeFileSync(junk, '8 bytes!');
      const r = hark('scan', '--quiet', '--dictionary', junk, fixture('school-search', 'school-search.pcap'));
      assert.equal(r.code, 2, r.err);
      assert.equal(r.err, `hark scan: Cannot load compiled dictionary "${junk}": 8 bytes is too short\n`);
    });
  });

  test('scan --group-frames: capture order (0) finds what grouped batches find; a bad value is refused', () => {
    const pcap = fixture('school-search', 'school-search.pcap');
    const grouped = hark('scan', '--quiet', pcap);
    const inOrder = hark('scan', '--quiet', '--group-frames', '0', pcap);
    assert.equal(inOrder.code, 0, inOrder.err);
    const sorted = (text: string) => text.trim().split('\n').sort();
    assert.deepEqual(sorted(inOrder.out), sorted(grouped.out));
    assert.equal(sorted(grouped.out).length, 4);
    for (const bad of ['-1', '1.5', 'many', String(2 ** 20 + 1)]) {
      const r = hark('scan', '--quiet', `--group-frames=${bad}`, pcap);
      assert.equal(r.code, 2, `${bad}: ${r.err}`);
      assert.match(r.err, /--group-frames must be a whole number of frames from 0 to 1048576/);
      noStackTrace(r.err);
    }
  });

  test('scan refuses limits beyond their documented caps, naming the range', () => {
    const pcap = fixture('school-search', 'school-search.pcap');
    for (const [args, message] of [
      [['--body-limit', '99999999999999'], /--body-limit must be a whole number of bytes from 1 to 67108864, not "99999999999999"/],
      [['--flow-memcap', '1e30'], /--flow-memcap must be a number of MiB from 1 to 1048576, not "1e30"/],
      [['--max-flows', '1e12'], /--max-flows must be a whole number of flows from 1 to 67108864, not "1e12"/],
    ] as const) {
      const r = hark('scan', '--quiet', ...args, pcap);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
      noStackTrace(r.err);
    }
  });

  test('scan bypasses TLS it cannot decrypt and says so; --no-bypass reassembles it all, with the same events', () => {
    const pcap = fixture('tls', 'zeek-tls12-decryption.pcap');
    const by = hark('scan', pcap);
    const all = hark('scan', '--no-bypass', pcap);
    assert.equal(by.code, 0, by.err);
    assert.equal(all.code, 0, all.err);
    const reassembled = (err: string) => Number(/reassembly: (\d+) bytes/.exec(err)?.[1]);
    assert.match(by.err, /bypassed 1 flows \([\d.]+ kB not reassembled\)/);
    assert.match(all.err, /bypassed 0 flows \(0\.0 kB not reassembled\)/);
    assert.ok(reassembled(by.err) < reassembled(all.err), `${reassembled(by.err)} < ${reassembled(all.err)}`);
    const tls = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as { event_type: string; tls: Record<string, unknown> }).filter((e) => e.event_type === 'tls');
    const [a] = tls(by.out);
    const [b] = tls(all.out);
    assert.equal(a.tls.subject, b.tls.subject, 'the certificate is read before the bypass');
    assert.equal(a.tls.not_decrypted_reason, 'no_keys');
  });

  test('scan --out to a missing directory or to a directory names it and exits 2', () => {
    inTempDir('hark-scan-', (dir) => {
      const pcap = fixture('school-search', 'school-search.pcap');
      const missing = hark('scan', '--quiet', '--out', '/proc/nope/x', pcap);
      assert.equal(missing.code, 2, missing.err);
      assert.equal(missing.err, 'hark scan: Cannot open event file "/proc/nope/x": no directory "/proc/nope"\n');
      const isDir = hark('scan', '--quiet', '--out', dir, pcap);
      assert.equal(isDir.code, 2, isDir.err);
      assert.equal(isDir.err, `hark scan: Cannot open event file "${dir}": is a directory\n`);
    });
  });

  test('flows --dump to a regular file names it and exits 2', () => {
    inTempDir('hark-cli-', (dir) => {
      const file = join(dir, 'afile');
      writeFileSync(file, 'not a directory\n');
      const r = hark('flows', '--quiet', '--dump', file, fixture('tcp', 'zeek-tcp-missing-syn.pcap'));
      assert.equal(r.code, 2, r.err);
      assert.equal(r.err, `hark flows: Cannot create directory "${file}": "${file}" exists and is not a directory\n`);
    });
  });

  test('dictionary compile -o a directory names it and exits 2', () => {
    inTempDir('hark-dict-', (dir) => {
      const r = hark('dictionary', 'compile', fileURLToPath(new URL('../../../rules/starter.json', import.meta.url)), '-o', dir);
      assert.equal(r.code, 2, r.err);
      assert.equal(r.err, `hark dictionary: Cannot write compiled dictionary "${dir}": is a directory\n`);
    });
  });

  test('scan --db on a file that is not a database names it and exits 2', () => {
    inTempDir('hark-scan-', (dir) => {
      const notes = join(dir, 'notes.txt');
      writeFileSync(notes, 'not a database\n');
      const r = hark('scan', '--quiet', '--db', notes, fixture('school-search', 'school-search.pcap'));
      assert.equal(r.code, 2, r.err);
      assert.equal(r.err, `hark scan: Cannot open capture store "${notes}": not an SQLite database\n`);
      assert.equal(r.out, '');
    });
  });

  test('scan --db stores the captures; scan --help explains every option', () => {
    const help = hark('scan', '--help');
    for (const opt of ['--dictionary FILE', '--out FILE', '--db FILE', '--engine NAME', '--dedup-window SECS', '--body-limit BYTES', '--group-frames N', '--no-bypass', '--keep-duplicates', '--no-progress', '--quiet']) assert.ok(help.out.includes(opt), opt);
    inTempDir('hark-scan-', (dir) => {
      const r = hark('scan', '--quiet', '--db', join(dir, 'c.db'), '--out', join(dir, 'c.jsonl'), fixture('school-search', 'school-search.pcap'));
      assert.equal(r.code, 0, r.err);
      assert.equal(r.out, '');
      assert.equal(readFileSync(join(dir, 'c.jsonl'), 'utf8').trim().split('\n').length, 4);
      assert.equal(statSync(join(dir, 'c.db')).mode & 0o077, 0);
      assert.equal(statSync(join(dir, 'c.jsonl')).mode & 0o077, 0);
    });
  });
});
