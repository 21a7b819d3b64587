/**
 * Test support for the portal: a real home (test/home/helpers) fed by a real sensor replaying
 * test/fixtures/school-search/school-search.pcap (Sensor -> CaptureStore -> Uploader over a HomeLink
 * with the sensor's enrolled certificate), evidence bodies for the viewed captures sent through the
 * sensor API, operators of each role, and a loopback HTTP server that counts requests (a renderer
 * with network off must leave it at zero).
 */

import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { Counters } from '../../sensor/events/counters.js';
import type { CaptureEvent } from '../../sensor/events/capture.js';
import { HomeLink } from '../../sensor/home-client/link.js';
import { Sensor } from '../../sensor/main.js';
import { CaptureStore } from '../../sensor/store/capture-store.js';
import { Uploader } from '../../sensor/upload/uploader.js';
import { fixture } from '../helpers/replay.js';
import { addSensor, agentFor, call, enrolByCredentials, startTestHome, type TestHome } from '../home/helpers.js';

export const OPERATOR_PASSWORD = 'portal test password 1';

export interface World {
  t: TestHome;
  sensorId: number;
  link: HomeLink;
  captures: CaptureEvent[];
  /** Requests the tracker server received (evidence pages point at it). */
  trackerHits: () => number;
  trackerUrl: string;
  close(): Promise<void>;
}

/** The results page the fixture's wiki served for `query` (test/fixtures/school-search/generate.mjs), plus
 * external resources pointing at the tracker: a renderer that fetched anything would hit it. */
export function resultsPage(query: string, tracker: string): string {
  const rows = [
    `<li><a href="/wiki/${encodeURIComponent(query)}">${query}</a> &ndash; article matching your search</li>`,
    `<li>Results for &quot;${query}&quot; in the school library catalogue</li>`,
  ];
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Search results: ${query} - SchoolWiki</title>
<style>body{font-family:sans-serif}</style><script>var q=${JSON.stringify(query)};document.title='SCRIPT RAN';</script>
<link rel="stylesheet" href="${tracker}/style.css"><script src="${tracker}/app.js"></script></head>
<body><h1>Search results</h1><p>You searched for <b>${query}</b>.</p><img src="${tracker}/logo.png" alt="logo"><ul>${rows.join('')}</ul>
<iframe src="${tracker}/frame.html"></iframe>
<p>${'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(40)}</p></body></html>\n`;
}

export async function addOperator(t: TestHome, user: string, role: string): Promise<void> {
  const r = await call(t.home, agentFor(t.home.caPem), 'POST', '/v1/operators', { user, role, password: OPERATOR_PASSWORD, must_change_password: false }, t.adminToken);
  if (r.status !== 201) throw new Error(`add operator failed: ${JSON.stringify(r.body)}`);
}

export async function startWorld(opts: { chromium?: string | null } = {}): Promise<World> {
  let hits = 0;
  const tracker: Server = createServer((req, res) => { hits++; res.end(); });
  tracker.listen(0, '127.0.0.1');
  await once(tracker, 'listening');
  const trackerUrl = `http://127.0.0.1:${(tracker.address() as { port: number }).port}`;

  const t = await startTestHome(opts.chromium === undefined ? {} : { chromium: opts.chromium });
  const sensorId = await addSensor(t, 'Library', { site: 'Hilltop School' });
  const e = await enrolByCredentials(t, sensorId);
  await addOperator(t, 'lead1', 'lead');
  await addOperator(t, 'reader', 'readonly');
  await addOperator(t, 'admin2', 'admin');

  // The real sensor: pipeline -> capture store -> uploader -> home.
  const map = join(t.dir, 'identity.csv');
  writeFileSync(map, 'ip,hostname,user\n127.0.0.1,pupil-laptop-07,jsmith\n');
  const counters = new Counters();
  const store = new CaptureStore(join(t.dir, 'sensor', 'captures.db'), { counters });
  const captures: CaptureEvent[] = [];
  const sensor = new Sensor({ counters, engine: 'js', site: { identityMap: map }, onCapture: (c) => { captures.push(c); store.add(c); } });
  sensor.pipeline.runFile(fixture('school-search', 'school-search.pcap'));
  sensor.finish();
  sensor.close();
  store.flush();
  const link = new HomeLink({ homes: [t.home.url], ca: t.home.caPem, cert: e.cert, key: e.keyPem });
  await link.start();
  const uploader = new Uploader(store, link, { counters });
  uploader.start();
  if (!(await uploader.drain(20_000))) throw new Error('the uploader did not drain');
  await uploader.stop();
  store.close();

  // Evidence: the page each viewed capture came from.
  const viewed = captures.filter((c) => c.source === 'viewed');
  const evidence = viewed.map((c) => ({
    capture_id: c.id, content_type: 'text/html; charset=utf-8', truncated: false,
    body_base64: Buffer.from(resultsPage(/ak47/i.test(c.phrase) ? 'AK47' : 'Our Secret', trackerUrl)).toString('base64'),
  }));
  const r = await link.request('POST', '/v1/sensor/evidence', { evidence });
  if (r.status !== 200) throw new Error(`evidence upload failed: ${r.status} ${JSON.stringify(r.body)}`);
  await t.home.evidenceIdle();

  // Heartbeats with counters: a quarter of the bytes were TLS without keys.
  for (const counters of [{ 'decoder.bytes': 1000, 'tls.undecrypted_bytes': 100 }, { 'decoder.bytes': 3000, 'tls.undecrypted_bytes': 900 }]) {
    const hb = await link.request('POST', '/v1/sensor/heartbeat', { hark_version: '0.1.0', started_at: '2026-11-21T08:00:00Z', config_version: 1, config_source: 'home', counters, interfaces: [{ name: 'eth1', packets: 10, drops: 0 }], queue: 0, health: [] });
    if (hb.status !== 200) throw new Error(`heartbeat failed: ${hb.status}`);
  }

  return {
    t, sensorId, link, captures, trackerUrl, trackerHits: () => hits,
    close: async () => {
      await link.close();
      await t.close();
      tracker.close();
    },
  };
}
