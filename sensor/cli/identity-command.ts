/**
 * `hark identity <file>`: the identity table built from a capture (DHCP, RADIUS, Kerberos, NTLM,
 * NetBIOS, DNS PTR, plus a static map): per address and per MAC, each value with its source and
 * when it was seen. What a capture at the end of the file would be attributed to.
 */
import { Sensor } from '../main.js';
import { formatIdentitySnapshot } from '../identity/format.js';
import { cliErrorOf, type Command } from './command.js';
import { exitStatusFor, parseFileCommand, readWithProgress } from './file-run.js';
import { SITE_OPTIONS, SITE_USAGE, siteFilesFrom } from './site-options.js';

export const identityCommand: Command = {
  name: 'identity',
  summary: 'print who is who (IP, MAC, hostname, user) as learnt from a capture file',
  usage: `Usage: hark identity [options] <capture.pcap|capture.pcapng>

Builds the identity table from the passive signals in a capture: DHCP (v4 and v6) leases and host
names, RADIUS accounting (Wi-Fi logins), Kerberos AS-REQ and NTLM user names, NetBIOS names and DNS
reverse answers, plus a static map. Prints each address and MAC with the values valid at the end
of the capture and which source said so.

Options:
  --json                the table as JSON
${SITE_USAGE}
  --keep-duplicates     do not drop mirror-port duplicates
  --no-progress         no progress bar
  --quiet               no summary on stderr
  -h, --help            this help`,
  run(argv) {
    const parsed = parseFileCommand(this, argv, { json: { type: 'boolean', default: false }, ...SITE_OPTIONS });
    if (parsed === undefined) return 0;
    const { values, file } = parsed;
    let sensor: Sensor;
    try {
      sensor = new Sensor({ site: siteFilesFrom(values), dropDuplicates: !values['keep-duplicates'], onCapture: () => {} });
    } catch (err) {
      throw cliErrorOf(err);
    }
    const { summary } = readWithProgress(sensor.pipeline, file, !values['no-progress'], 'reading');
    sensor.finish();
    // "at the end of the capture": its last packet's time, also when only a static map named anyone
    const endUs = sensor.pipeline.flows.latestUs;
    const snapshot = endUs > 0 ? sensor.identity.snapshot(endUs) : sensor.identity.snapshot();
    process.stdout.write(values.json ? `${JSON.stringify(snapshot, null, 2)}\n` : `${formatIdentitySnapshot(snapshot)}\n`);
    return exitStatusFor(file, summary);
  },
};
