/**
 * Benchmark (not a test): throughput of the normalize extractors on synthetic but realistic
 * bodies, fed in TCP-sized (1,460 B) and 16 KiB chunks. Prints MB/s of body bytes per extractor.
 * Run: ./node_modules/.bin/tsc -p tsconfig.json && node dist/bench/extract.js [--seconds 2]
 */

import { Counters } from '../sensor/events/counters.js';
import { createExtractor } from '../sensor/normalize/extract.js';
import type { TextSink } from '../sensor/normalize/sink.js';
import { BenchCommandLine } from './command-line.js';

const cli: BenchCommandLine = new BenchCommandLine('bench/extract', 'Usage: node dist/bench/extract.js [--seconds 2]\n');
const { values } = cli.parse({ options: { seconds: { type: 'string', default: '2' } } });
/** CPU seconds each figure runs for. */
const SECONDS = cli.positiveNumber('--seconds', values.seconds, 'seconds');

// Deterministic PRNG (mulberry32) so every run measures the same bytes.
let seed = 0x9e3779b9;
function rnd(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)];
const WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by word but ' +
  'not what all were we when your can said there use an each which she do how their if will up other about out many ' +
  'then them these so some her would make like him into time has look two more write go see number no way could people ' +
  'school pupil teacher lesson homework caf\u00e9 na\u00efve \u00fcber r\u00e9sum\u00e9 \u2014 \u201cquoted\u201d'
).split(' ');
const sentence = (n: number): string => Array.from({ length: n }, () => pick(WORDS)).join(' ');

/** A news-style page: head with meta/links, inline scripts and styles, nav, articles, footer. */
function makePage(targetBytes: number): string {
  const parts: string[] = [
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n',
    '<title>School news &amp; events \u2014 Example Academy</title>\n',
  ];
  for (let i = 0; i < 12; i++) parts.push(`<link rel="stylesheet" href="/static/css/bundle.${i}.a81f3c.css" media="all">\n`);
  parts.push('<style>\n');
  for (let i = 0; i < 120; i++) parts.push(`.c${i} > a:hover, .n${i}::after { content: "\\2014"; margin: ${i}px 0 0 ${i % 7}px; color: #${(i * 2654435761 >>> 8).toString(16).slice(0, 6)}; }\n`);
  parts.push('</style>\n<script>\n');
  for (let i = 0; i < 150; i++) parts.push(`  window.__cfg${i} = {"id": ${i}, "path": "/api/v1/items/${i}", "label": "${sentence(4)}"}; if (a < b && c > d) { f("</div>"); }\n`);
  parts.push('</script>\n<script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle"}</script>\n</head>\n<body class="home page-template">\n');
  parts.push('<header class="site-header"><nav aria-label="Main"><ul class="menu">\n');
  for (let i = 0; i < 40; i++) {
    parts.push(`<li class="menu-item menu-item-${i}"><a href="/section/${i}/" title="${sentence(3)}" data-track="nav-${i}">${sentence(2)}</a></li>\n`);
  }
  parts.push('</ul></nav></header>\n<main id="content">\n');
  let article = 0;
  while (parts.reduce((n, p) => n + p.length, 0) < targetBytes) {
    article++;
    parts.push(`<article class="post post-${article}" id="post-${article}">\n<h2 class="entry-title"><a href="/news/${article}/${sentence(3).replace(/ /g, '-')}">${sentence(7)}</a></h2>\n`);
    parts.push(`<div class="meta"><time datetime="2024-03-${(article % 28) + 1}">March ${(article % 28) + 1}, 2024</time> by <span class="author">${sentence(2)}</span></div>\n`);
    parts.push(`<figure><img src="/img/${article}.jpg" alt="${sentence(5)}" width="640" height="360" loading="lazy"><figcaption>${sentence(8)}</figcaption></figure>\n`);
    for (let p = 0; p < 4; p++) {
      parts.push(`<p>${sentence(18)} <a href="/link/${p}">${sentence(3)}</a> ${sentence(12)} &amp; ${sentence(6)} &nbsp;&copy; <strong>${sentence(3)}</strong>${sentence(10)}.</p>\n`);
    }
    parts.push(`<!-- ad slot ${article} --><div class="ad" data-slot="${article}"><script>googletag.cmd.push(function(){ display("div-${article}"); });</script></div>\n</article>\n`);
  }
  parts.push('</main>\n<footer><p>&copy; 2024 Example Academy &middot; <a href="/privacy">Privacy</a></p></footer>\n</body>\n</html>\n');
  return parts.join('');
}

function makeJson(targetBytes: number): string {
  const items: string[] = [];
  let n = 0;
  while (n < targetBytes) {
    const item = JSON.stringify({ id: items.length, title: sentence(8), body: sentence(40) + ' \ud83d\ude00 "x"\n', tags: [sentence(1), sentence(1)], score: rnd() * 100, ok: true });
    items.push(item);
    n += item.length + 1;
  }
  return `{"data": [${items.join(',')}], "next": null}`;
}

function makeForm(targetBytes: number): string {
  const fields: string[] = [];
  let n = 0;
  while (n < targetBytes) {
    const f = `field${fields.length}=${encodeURIComponent(sentence(20)).replace(/%20/g, '+')}`;
    fields.push(f);
    n += f.length + 1;
  }
  return fields.join('&');
}

interface Figure {
  name: string;
  bytes: number;
  chunk: number;
  mbps: number;
  wallMbps: number;
  chars: number;
}

function measure(name: string, contentType: string, direction: 'request' | 'response', body: Uint8Array, chunk: number): Figure {
  let chars = 0;
  let segments = 0;
  const sink: TextSink = {
    onText: (t) => {
      chars += t.length;
    },
    onBreak: () => {
      segments++;
    },
  };
  const counters = new Counters();
  const once = (): void => {
    const x = createExtractor(contentType, direction, sink, counters)!;
    for (let o = 0; o < body.length; o += chunk) x.write(body.subarray(o, o + chunk));
    x.end();
  };
  // Warm up the JIT, then run for SECONDS of this process's CPU time (the figure holds up better
  // than wall time on a shared machine; both are printed).
  for (let i = 0; i < 10; i++) once();
  chars = 0;
  let runs = 0;
  const wall0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let cpu = 0;
  while (cpu < SECONDS) {
    for (let k = 0; k < 5; k++, runs++) once();
    const used = process.cpuUsage(cpu0);
    cpu = (used.user + used.system) / 1e6;
  }
  const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
  const mb = (body.length * runs) / 1e6;
  return { name, bytes: body.length, chunk, mbps: mb / cpu, wallMbps: mb / wall, chars: Math.round(chars / runs) };
}

const page = Buffer.from(makePage(200_000), 'utf8');
const ascii = Buffer.from(page.toString('utf8').replace(/[^\x00-\x7f]/g, '?'), 'latin1');
const latin = Buffer.from(makePage(200_000).replace(/[^\x00-\xff]/g, '?'), 'latin1');
const json = Buffer.from(makeJson(200_000), 'utf8');
const form = Buffer.from(makeForm(50_000), 'latin1');

const figures: Figure[] = [];
for (const chunk of [1460, 16384]) {
  figures.push(measure('html utf-8 page', 'text/html; charset=utf-8', 'response', page, chunk));
  figures.push(measure('html ascii-only page', 'text/html; charset=utf-8', 'response', ascii, chunk));
  figures.push(measure('html undeclared (prescan)', 'text/html', 'response', page, chunk));
  figures.push(measure('html windows-1252', 'text/html; charset=windows-1252', 'response', latin, chunk));
  figures.push(measure('html utf-8 fallback on 1252', 'text/html; charset=utf-8', 'response', latin, chunk));
  figures.push(measure('json', 'application/json', 'response', json, chunk));
  figures.push(measure('urlencoded form', 'application/x-www-form-urlencoded', 'request', form, chunk));
  figures.push(measure('text/plain', 'text/plain', 'response', page, chunk));
}
console.log(`node ${process.version}, ${SECONDS} s CPU per figure; MB/s of body bytes per CPU second (wall in brackets)`);
for (const f of figures) {
  console.log(
    `${f.name.padEnd(30)} ${String(f.bytes).padStart(7)} B  chunk ${String(f.chunk).padStart(5)}  ` +
      `${f.mbps.toFixed(0).padStart(5)} MB/s (${f.wallMbps.toFixed(0)})  ${f.chars} chars out`,
  );
}
