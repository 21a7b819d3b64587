/**
 * `hark run`: the live sensor. Listens promiscuously on one or more interfaces (a mirror port or
 * TAP), runs the whole pipeline, and writes captures to the SQLite store and the EVE JSON lines
 * file in the data directory. Status every --stats-interval seconds on stderr. SIGINT/SIGTERM:
 * stop capturing, finish every flow, store every capture, exit 0. SIGHUP: reopen the EVE file
 * (after logrotate has moved it).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultInterface, LiveCapture } from '../capture/live.js';
import type { CaptureEvent } from '../events/capture.js';
import { JsonLinesWriter } from '../output/eve-writer.js';
import { CaptureStore } from '../store/capture-store.js';
import { ensurePrivateDir } from '../store/private-dir.js';
import { DEFAULT_DICTIONARY, Sensor, type EngineChoice } from '../main.js';
import { LocalApi } from '../api/local-api.js';
import { sensorApiRoutes } from '../api/routes.js';
import { KeyStore } from '../app-layer/tls/keylog.js';
import { TLS_KEY_WAIT_US } from '../app-layer/tls/index.js';
import { Counters } from '../events/counters.js';
import { IdentityTable } from '../identity/table.js';
import { CliError, type Command } from './command.js';
import { SITE_OPTIONS, SITE_USAGE, siteFilesFrom } from './site-options.js';

/** Where a checkout keeps its data when nothing else is configured (gitignored). */
const CHECKOUT_DATA_DIR = fileURLToPath(new URL('../../../var', import.meta.url));

export const runCommand: Command = {
  name: 'run',
  summary: 'run the live sensor on mirror-port interfaces (what npm start does)',
  usage: `Usage: hark run [options]

Captures promiscuously on the given interfaces (all feed one flow table, so a TAP that sends each
direction to its own port gives whole conversations), reassembles, decodes HTTP, matches the
phrase dictionary and stores every capture. Needs root or cap_net_raw,cap_net_admin.

Options:
  -i, --interface IF     interface to listen on; repeat for several (default: $HARK_INTERFACE,
                         else the first non-loopback interface)
  -f, --filter BPF       capture filter (default: none)
  --data-dir DIR         captures.db and eve.json go here (default: $HARK_DATA_DIR, else ./var
                         in a checkout); created mode 0700
  --dictionary FILE      phrase dictionary, CSV, JSON pack or compiled .hdict (default: starter)
  --engine NAME          auto, hyperscan or js (default: auto)
  --keylog FILE          TLS key log (SSLKEYLOGFILE format) to follow as it grows; repeatable
  --rsa-key FILE         RSA server private key (PEM) for TLS <= 1.2 RSA key exchange; repeatable
  --key-wait SECS        how long encrypted records wait for keys that arrive late (default 10)
  --api-socket PATH      the local API's Unix socket (default: DATA_DIR/api.sock); bearer token
                         in DATA_DIR/api.token (made on first start, mode 0600)
  --api-listen ADDR      also serve the local API on a loopback address, e.g. 127.0.0.1:8439
  --no-api               no local API
${SITE_USAGE}
  --stats-interval SECS  status line period on stderr, 0 for none (default: 10)
  -h, --help             this help`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        interface: { type: 'string', short: 'i', multiple: true },
        filter: { type: 'string', short: 'f' },
        'data-dir': { type: 'string' },
        dictionary: { type: 'string' },
        engine: { type: 'string', default: 'auto' },
        keylog: { type: 'string', multiple: true },
        ...SITE_OPTIONS,
        'rsa-key': { type: 'string', multiple: true },
        'key-wait': { type: 'string', default: String(TLS_KEY_WAIT_US / 1e6) },
        'api-socket': { type: 'string' },
        'api-listen': { type: 'string' },
        'no-api': { type: 'boolean', default: false },
        'stats-interval': { type: 'string', default: '10' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(`${this.usage}\n`);
      return 0;
    }
    const interfaces = values.interface ?? (process.env.HARK_INTERFACE ? process.env.HARK_INTERFACE.split(',') : [defaultInterface()]);
    const dataDir = values['data-dir'] ?? process.env.HARK_DATA_DIR ?? CHECKOUT_DATA_DIR;
    const statsSecs = Number(values['stats-interval']);
    if (!Number.isFinite(statsSecs) || statsSecs < 0) throw new CliError(`--stats-interval must be a number of seconds, not "${values['stats-interval']}"`);
    try {
      ensurePrivateDir(dataDir);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    const keyWaitSecs = Number(values['key-wait']);
    if (!Number.isFinite(keyWaitSecs) || keyWaitSecs < 0) throw new CliError(`--key-wait must be a number of seconds, not "${values['key-wait']}"`);
    const store = new CaptureStore(join(dataDir, 'captures.db'));
    const evePath = join(dataDir, 'eve.json');
    let eve = new JsonLinesWriter(evePath);
    const counters = new Counters();
    // Always a key store: keys may come over the local API even when no key log is configured.
    const keyStore = new KeyStore(counters);
    const identity = new IdentityTable(counters);
    let sensor: Sensor;
    try {
      sensor = new Sensor({
        counters,
        dictionary: values.dictionary ?? DEFAULT_DICTIONARY,
        engine: values.engine as EngineChoice,
        keyStore,
        keyLogs: values.keylog,
        followKeyLogs: true,
        rsaKeys: values['rsa-key'],
        site: siteFilesFrom(values),
        identity,
        keyWaitUs: keyWaitSecs * 1e6,
        onCapture: (c: CaptureEvent) => {
          store.add(c);
          eve.write(c);
        },
        onEvent: (e) => eve.write(e),
      });
    } catch (err) {
      store.close();
      eve.close();
      const e = err as Error & { code?: string };
      if (typeof e.code === 'string' && e.code.startsWith('E_')) throw new CliError(e.message);
      throw err;
    }
    const live = new LiveCapture({ interfaces, filter: values.filter }, sensor.pipeline.packet);
    let api: LocalApi | undefined;
    try {
      live.start();
      if (!values['no-api']) {
        api = await LocalApi.start({
          socketPath: values['api-socket'] ?? join(dataDir, 'api.sock'),
          listen: values['api-listen'],
          tokenFile: join(dataDir, 'api.token'),
          routes: sensorApiRoutes(keyStore, counters, () => interfaces.map((name, i) => ({ name, packets: live.packets[i] })), identity),
        });
      }
    } catch (err) {
      live.stop();
      sensor.close();
      store.close();
      eve.close();
      throw new CliError((err as Error).message);
    }
    const m = sensor.matching;
    process.stderr.write(`hark: listening on ${interfaces.join(', ')} (${live.linkTypes.join(', ')})${values.filter ? ` filter "${values.filter}"` : ''}; ${m.matcher.phrases.length} phrases, engine ${m.engine}; data in ${dataDir}\n`);

    // Capture time is wall time here: flows and merge windows must expire even when traffic stops.
    const tick = setInterval(() => {
      const now = Date.now() * 1000;
      sensor.pipeline.flows.expire(now);
      sensor.collector.expire(now);
      store.flush();
      eve.flush();
    }, 1000);
    const stats = statsSecs > 0
      ? setInterval(() => {
          const c = sensor.counters;
          const per = interfaces.map((n, i) => `${n} ${live.packets[i]} pkts`).join(', ');
          process.stderr.write(`hark: ${per}; flows active ${sensor.pipeline.flows.active}; http ${c.get('http.requests')} requests; captures ${c.get('capture.emitted')}; anomalies ${c.anomalyTotal()}\n`);
        }, statsSecs * 1000)
      : undefined;
    const reopen = () => {
      eve.close();
      eve = new JsonLinesWriter(evePath);
    };
    process.on('SIGHUP', reopen);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    live.stop();
    await api?.close();
    sensor.close();
    clearInterval(tick);
    if (stats) clearInterval(stats);
    process.off('SIGHUP', reopen);
    sensor.finish();
    store.close();
    eve.close();
    process.stderr.write(`hark: stopped; ${sensor.counters.get('capture.emitted')} captures stored in ${join(dataDir, 'captures.db')}\n`);
    return 0;
  },
};
