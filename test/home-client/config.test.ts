import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, fetchBundle, LAST_GOOD_FILE, loadStartupConfig, materialise, type BundleOwner } from '../../sensor/home-client/config.js';
import { HomeLink } from '../../sensor/home-client/link.js';
import { HomeTransportError, type HomeResponse, type HomeTransport } from '../../sensor/home-client/transport.js';
import { loadSitePolicy } from '../../sensor/site-policy.js';
import { FakeHome, issue, makeCa, type Pem } from './fake-home.js';
import { scratchDir } from '../helpers/scratch.js';

const UUID = '6b0c3c1e-8a51-4a3e-9a0c-2f9a41f0c0d7';
let ca: Pem;
let otherCa: Pem;
let owner: BundleOwner;

before(() => {
  ca = makeCa('Hark Home CA');
  otherCa = makeCa('Other CA');
  owner = { caPem: ca.cert, sensorId: 7, uuid: UUID };
});

function bundleObject(over: Record<string, unknown> = {}, config: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 1, sensor_id: 7, uuid: UUID, version: 12, issued_at: '2026-11-21T10:00:00.000Z',
    config: {
      name: 'Main building', site: 'Hilltop School', interfaces: ['eth1'], bpf: '',
      monitored: ['10.0.0.0/8'], ignored: [],
      dictionary: { name: 'starter', format: 'csv', text: 'phrase,category,severity\nour secret,grooming,4\n' },
      allow_list: 'example.org\n',
      blocklists: [{ name: 'malware', text: 'bad.example\n' }],
      identity_map: '',
      outputs: { eve: { enabled: true, max_bytes: 104857600, keep: 5 }, syslog: [{ url: 'udp://192.0.2.10:514' }], email: { smtp: 'smtp://mail.example:587', from: 'hark@example', to: ['dsl@example'], min_severity: 4, batch_seconds: 60 } },
      retention: { days: 30, by_category: { violence: 90 } },
      homes: ['https://home.example:8443', 'https://home2.example:8443'],
      ...config,
    },
    ...over,
  };
}

function signed(bundle: Record<string, unknown>, key = ca.key): { alg: string; bundle: string; signature: string } {
  const bytes = Buffer.from(JSON.stringify(bundle));
  return { alg: 'RS256', bundle: bytes.toString('base64'), signature: sign('sha256', bytes, key).toString('base64') };
}

/** A transport answering GET /v1/sensor/config from a function (or failing like an unreachable home). */
function transport(answer: () => HomeResponse | 'down'): HomeTransport & { calls: number } {
  const t = {
    calls: 0,
    async request(_m: string, path: string): Promise<HomeResponse> {
      t.calls++;
      assert.equal(path, '/v1/sensor/config');
      const a = answer();
      if (a === 'down') throw new HomeTransportError('E_HOME_UNREACHABLE', 'Cannot reach home "https://home.example:8443": ECONNREFUSED', 'https://home.example:8443');
      return a;
    },
  };
  return t;
}

const ok = (body: unknown): HomeResponse => ({ status: 200, body, home: 'https://home.example:8443' });
const dir = (): string => join(scratchDir('hark-config-'), 'config');

async function refusal(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a refusal');
}

describe('fetchBundle', () => {
  it('fetchBundle verifies, validates and keeps a good bundle as last-known-good (0600)', async () => {
    const d = dir();
    const v = await fetchBundle(transport(() => ok(signed(bundleObject()))), owner, d);
    assert.equal(v.version, 12);
    assert.equal(v.config.name, 'Main building');
    assert.deepEqual(v.config.outputs.syslog, [{ url: 'udp://192.0.2.10:514' }]);
    assert.equal(v.config.retention.by_category.violence, 90);
    const p = join(d, LAST_GOOD_FILE);
    assert.equal(statSync(p).mode & 0o777, 0o600);
    const saved = JSON.parse(readFileSync(p, 'utf8'));
    assert.equal(Buffer.from(saved.bundle, 'base64').toString('utf8'), JSON.stringify(bundleObject()));
  });

  it('fetchBundle refuses a bundle with one byte changed (E_BUNDLE_SIGNATURE) and keeps nothing', async () => {
    const d = dir();
    const s = signed(bundleObject());
    const bytes = Buffer.from(s.bundle, 'base64');
    const at = bytes.indexOf(Buffer.from('Main building'));
    bytes[at] = 'N'.charCodeAt(0);
    const err = await refusal(fetchBundle(transport(() => ok({ ...s, bundle: bytes.toString('base64') })), owner, d));
    assert.equal(err.code, 'E_BUNDLE_SIGNATURE');
    assert.equal(existsSync(join(d, LAST_GOOD_FILE)), false);
  });

  it('fetchBundle refuses a bundle signed by another key', async () => {
    const err = await refusal(fetchBundle(transport(() => ok(signed(bundleObject(), otherCa.key))), owner));
    assert.equal(err.code, 'E_BUNDLE_SIGNATURE');
  });

  it('fetchBundle refuses a bundle for another sensor id', async () => {
    const err = await refusal(fetchBundle(transport(() => ok(signed(bundleObject({ sensor_id: 8 })))), owner));
    assert.equal(err.code, 'E_BUNDLE_SENSOR');
    assert.match(err.message, /sensor 8/);
  });

  it('fetchBundle refuses a bundle for another UUID', async () => {
    const err = await refusal(fetchBundle(transport(() => ok(signed(bundleObject({ uuid: 'someone-else' })))), owner));
    assert.equal(err.code, 'E_BUNDLE_SENSOR');
  });

  const badFields: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['format', { format: 2 }, {}],
    ['version', { version: -1 }, {}],
    ['issued_at', { issued_at: 'yesterday' }, {}],
    ['config.interfaces[0]', {}, { interfaces: ['eth0; rm -rf /'] }],
    ['config.dictionary.format', {}, { dictionary: { name: 'x', format: 'xml', text: 'a' } }],
    ['config.dictionary.text', {}, { dictionary: { name: 'x', format: 'csv', text: '  ' } }],
    ['config.blocklists[0].name', {}, { blocklists: [{ name: 'a=b', text: '' }] }],
    ['config.outputs.syslog[0].url', {}, { outputs: { syslog: [{ url: 'ftp://x' }] } }],
    ['config.outputs.eve.keep', {}, { outputs: { eve: { enabled: true, keep: 'five' } } }],
    ['config.retention.days', {}, { retention: { days: 0 } }],
    ['config.homes[0]', {}, { homes: ['ftp://home.example'] }],
    ['config.name', {}, { name: 5 }],
    ['config.inspection', {}, { inspection: 'fast' }],
    ['config.inspection.dedup_window_seconds', {}, { inspection: { dedup_window_seconds: 86401 } }],
    ['config.inspection.dedup_window_seconds', {}, { inspection: { dedup_window_seconds: -1 } }],
    ['config.inspection.dedup_window_seconds', {}, { inspection: { dedup_window_seconds: 1.5 } }],
    ['config.inspection.dedup_window_seconds', {}, { inspection: { dedup_window_seconds: '60' } }],
    ['config.inspection.body_limit_bytes', {}, { inspection: { body_limit_bytes: 0 } }],
    ['config.inspection.body_limit_bytes', {}, { inspection: { body_limit_bytes: 67108865 } }],
  ];
  for (const [field, over, config] of badFields) {
    it(`fetchBundle names the bad field ${field}`, async () => {
      const err = await refusal(fetchBundle(transport(() => ok(signed(bundleObject(over, config)))), owner));
      assert.equal(err.code, 'E_BUNDLE_FIELD');
      assert.equal(err.field, field);
      assert.ok(err.message.includes(`"${field}"`), err.message);
    });
  }

  it('fetchBundle reads a bundle without inspection (from an older home) as {}, and keeps the values of one with it', async () => {
    const old = await fetchBundle(transport(() => ok(signed(bundleObject()))), owner);
    assert.deepEqual(old.config.inspection, {});
    const set = await fetchBundle(transport(() => ok(signed(bundleObject({}, { inspection: { dedup_window_seconds: 0, body_limit_bytes: 67108864, later_setting: true } })))), owner);
    assert.deepEqual(set.config.inspection, { dedup_window_seconds: 0, body_limit_bytes: 67108864 }, 'a key a newer home adds is left out');
    assert.deepEqual(materialise(set.config, dir()).inspection, { dedup_window_seconds: 0, body_limit_bytes: 67108864 });
  });

  it('fetchBundle works over a real mutually authenticated HomeLink', async () => {
    const home = await FakeHome.start(ca);
    home.routes.set('GET /v1/sensor/config', () => ({ body: signed(bundleObject()) }));
    const client = issue(ca, { cn: UUID, ou: 'sensor' });
    const link = new HomeLink({ homes: [home.url], ca: ca.cert, cert: client.cert, key: client.key });
    try {
      const v = await fetchBundle(link, owner);
      assert.equal(v.version, 12);
      assert.equal(home.seen.at(-1)!.clientCn, UUID);
    } finally {
      await link.close();
      await home.close();
    }
  });
});

describe('loadStartupConfig', () => {
  it('loadStartupConfig uses home when it answers', async () => {
    const d = dir();
    const r = await loadStartupConfig(transport(() => ok(signed(bundleObject()))), owner, d, 5_000_000);
    assert.equal(r.source, 'home');
    assert.equal(r.version, 12);
    assert.equal(r.ageMs, 0);
    assert.equal(r.fetchedAt, 5_000_000);
  });

  it('loadStartupConfig falls back to the last-known-good copy when home is down, and says so', async () => {
    const d = dir();
    await fetchBundle(transport(() => ok(signed(bundleObject()))), owner, d);
    const t = Date.now() + 60_000;
    const r = await loadStartupConfig(transport(() => 'down'), owner, d, t);
    assert.equal(r.source, 'last-known-good');
    assert.equal(r.version, 12);
    assert.equal(r.reasonCode, 'E_HOME_UNREACHABLE');
    assert.match(r.reason ?? '', /Cannot reach home/);
    assert.ok(r.ageMs >= 60_000);
    assert.equal(r.config.name, 'Main building');
  });

  it('loadStartupConfig refuses a tampered bundle from home and runs the last-known-good copy', async () => {
    const d = dir();
    await fetchBundle(transport(() => ok(signed(bundleObject({ version: 11 })))), owner, d);
    const s = signed(bundleObject({ version: 13 }));
    // one bit of the signature flipped (setting a byte to a fixed value left it unchanged when the
    // random key's signature already had that value there: this test failed once in 256 runs)
    const sig = Buffer.from(s.signature, 'base64');
    sig[0] ^= 0x01;
    const r = await loadStartupConfig(transport(() => ok({ ...s, signature: sig.toString('base64') })), owner, d);
    assert.equal(r.source, 'last-known-good');
    assert.equal(r.version, 11);
    assert.equal(r.reasonCode, 'E_BUNDLE_SIGNATURE');
    // The refused bundle did not replace the good copy.
    const again = await loadStartupConfig(transport(() => 'down'), owner, d);
    assert.equal(again.version, 11);
  });

  it('loadStartupConfig is E_NO_CONFIG when home is down and there is no good copy', async () => {
    const err = await refusal(loadStartupConfig(transport(() => 'down'), owner, dir()));
    assert.equal(err.code, 'E_NO_CONFIG');
    assert.match(err.message, /no last-known-good/);
  });

  it('loadStartupConfig re-verifies the last-known-good copy and refuses one edited on disk', async () => {
    const d = dir();
    await fetchBundle(transport(() => ok(signed(bundleObject()))), owner, d);
    const p = join(d, LAST_GOOD_FILE);
    const rec = JSON.parse(readFileSync(p, 'utf8'));
    rec.bundle = Buffer.from(Buffer.from(rec.bundle, 'base64').toString('utf8').replace('Main building', 'Evil building')).toString('base64');
    writeFileSync(p, JSON.stringify(rec));
    const err = await refusal(loadStartupConfig(transport(() => 'down'), owner, d));
    assert.equal(err.code, 'E_NO_CONFIG');
    assert.match(err.message, /signature/);
  });
});

describe('materialise', () => {
  it('materialise writes the texts as 0600 files the site policy loader reads', async () => {
    const v = await fetchBundle(transport(() => ok(signed(bundleObject()))), owner);
    const d = dir();
    const m = materialise(v.config, d);
    assert.equal(m.dictionary, join(d, 'dictionary.csv'));
    assert.equal(readFileSync(m.dictionary, 'utf8'), 'phrase,category,severity\nour secret,grooming,4\n');
    assert.deepEqual(m.site.blocklists, [`malware=${join(d, 'blocklist-1.txt')}`]);
    assert.equal(m.site.allowList, join(d, 'allow-list.txt'));
    assert.equal(m.site.identityMap, undefined);
    assert.deepEqual(m.site.monitored, ['10.0.0.0/8']);
    assert.equal(m.site.ignored, undefined);
    assert.deepEqual(m.interfaces, ['eth1']);
    assert.equal(m.outputs.eve?.keep, 5);
    assert.equal(m.retention.days, 30);
    assert.deepEqual(m.homes, ['https://home.example:8443', 'https://home2.example:8443']);
    assert.equal(m.site_name, 'Hilltop School');
    for (const f of [m.dictionary, m.site.allowList!, join(d, 'blocklist-1.txt')]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    const policy = loadSitePolicy(m.site);
    assert.ok(policy.domains !== undefined);
    assert.ok(policy.allowList !== undefined);
  });

  it('materialise names a pack dictionary .json', async () => {
    const v = await fetchBundle(transport(() => ok(signed(bundleObject({}, { dictionary: { name: 's', format: 'pack', text: '{"phrases":[]}' } })))), owner);
    assert.ok(materialise(v.config, dir()).dictionary.endsWith('dictionary.json'));
  });
});
