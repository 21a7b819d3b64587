// vmware/zip.ts: central directory listing and member extraction, against Info-ZIP's zip.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listZip, readZipMember } from '../../vmware/zip.js';

const bufferReader = (b: Buffer) => async (o: number, l: number) => b.subarray(o, o + l);

test('listZip lists the members of a zip made by zip(1) and readZipMember inflates one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hark-vmware-zip-'));
  try {
    mkdirSync(join(dir, 'b'));
    const text = 'config.version = "8"\n'.repeat(50);
    writeFileSync(join(dir, 'b', 'x.vmx'), text);
    writeFileSync(join(dir, 'b', 'x.vmdk'), Buffer.alloc(3000, 7));
    execFileSync('zip', ['-q', '-r', 'out.zip', 'b'], { cwd: dir });
    const buf = readFileSync(join(dir, 'out.zip'));
    const r = await listZip(bufferReader(buf), buf.length);
    assert.ok(r.ok);
    const vmx = r.members.find((m) => m.name === 'b/x.vmx');
    assert.ok(vmx);
    assert.equal(vmx.method, 8);
    assert.equal(r.members.find((m) => m.name === 'b/x.vmdk')?.size, 3000);
    const data = await readZipMember(bufferReader(buf), vmx);
    assert.ok(data.ok);
    assert.equal(data.data.toString('utf8'), text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listZip says a file without an end-of-central-directory record is not a zip', async () => {
  const buf = Buffer.alloc(200, 1);
  const r = await listZip(bufferReader(buf), buf.length);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.problem, /not a zip/);
});
