/**
 * `hark keys push [FILE]`: sends TLS session keys (NSS key log lines, from a file or stdin) to the
 * running sensor over its local API, authenticated with the sensor's bearer token. For endpoint
 * agents and TLS-inspecting gateways that export keys; the sensor decrypts flows waiting for them.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliError, type Command } from './command.js';

const CHECKOUT_DATA_DIR = fileURLToPath(new URL('../../../var', import.meta.url));

/** Sends one request to the local API over its Unix socket; resolves with the status and JSON body. */
export function callLocalApi(socketPath: string, token: string, method: string, path: string, body?: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

export const keysCommand: Command = {
  name: 'keys',
  summary: 'push TLS session keys (NSS key log lines) to the running sensor',
  usage: `Usage: hark keys push [options] [FILE]

Sends NSS key log lines (SSLKEYLOGFILE format) from FILE, or standard input, to the running
sensor's local API. Encrypted records wait there for their keys (hark run --key-wait), so keys may
follow the traffic by some seconds.

Options:
  --socket PATH      the sensor's API socket (default: $HARK_DATA_DIR/api.sock, else ./var/api.sock)
  --token-file PATH  the API token (default: api.token beside the socket; hark run keeps it in its
                     data directory, so give DATA_DIR/api.token when its --api-socket is elsewhere)
  -h, --help         this help`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        'token-file': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(`${this.usage}\n`);
      return 0;
    }
    if (positionals[0] !== 'push' || positionals.length > 2) throw new CliError('usage: hark keys push [FILE] (see hark keys --help)');
    const socket = values.socket ?? join(process.env.HARK_DATA_DIR ?? CHECKOUT_DATA_DIR, 'api.sock');
    const tokenFile = values['token-file'] ?? join(dirname(socket), 'api.token');
    let token: string;
    let body: string;
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      throw new CliError(`Cannot read API token "${tokenFile}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!/^[\x21-\x7e]{32,}$/.test(token)) throw new CliError(`API token file "${tokenFile}" holds no token (one line of at least 32 printable characters)`);
    const file = positionals[1] ?? '-';
    try {
      body = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new CliError(`Cannot read key log "${file}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let r: { status: number; body: unknown };
    try {
      r = await callLocalApi(socket, token, 'POST', '/v1/tls-keys', body);
    } catch (err) {
      throw new CliError(`Cannot reach the sensor's API at "${socket}": ${(err as Error).message} (is hark run running?)`);
    }
    const b = r.body as { accepted?: number; ignored?: number; bad?: Array<{ line: number; reason: string }>; error?: string };
    if (r.status !== 200 && r.status !== 400) throw new CliError(`The sensor refused the keys: HTTP ${r.status} ${b.error ?? ''}`.trim());
    for (const bad of b.bad ?? []) process.stderr.write(`hark: line ${bad.line}: ${bad.reason}\n`);
    process.stdout.write(`${b.accepted ?? 0} keys accepted, ${b.ignored ?? 0} lines ignored, ${(b.bad ?? []).length} bad\n`);
    return r.status === 200 ? 0 : 2;
  },
};
