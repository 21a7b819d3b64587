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
import { CliError, type Command } from './command.js';

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
    const store = new CaptureStore(join(dataDir, 'captures.db'));
    const evePath = join(dataDir, 'eve.json');
    let eve = new JsonLinesWriter(evePath);
    const sensor = new Sensor({
      dictionary: values.dictionary ?? DEFAULT_DICTIONARY,
      engine: values.engine as EngineChoice,
      onCapture: (c: CaptureEvent) => {
        store.add(c);
        eve.write(c);
      },
    });
    const live = new LiveCapture({ interfaces, filter: values.filter }, sensor.pipeline.packet);
    try {
      live.start();
    } catch (err) {
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
