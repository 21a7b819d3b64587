/**
 * Progress bar for long file reads: bytes read of total, rate, ETA, on stderr, only when stderr
 * is a terminal (pipes and CI logs stay clean). Uses cli-progress.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(bytesRead: number, total: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { update() {}, stop() {} };

export function createProgress(enabled: boolean, label: string): Progress {
  if (!enabled || !process.stderr.isTTY) return NO_PROGRESS;
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {readMB}/{totalMB} MB | {rate} MB/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let begun = false;
  return {
    update(bytesRead, total) {
      const secs = Math.max((Date.now() - started) / 1000, 0.001);
      const payload = { readMB: (bytesRead / 1e6).toFixed(1), totalMB: (total / 1e6).toFixed(1), rate: (bytesRead / 1e6 / secs).toFixed(0) };
      if (!begun) {
        bar.start(total, bytesRead, payload);
        begun = true;
      } else bar.update(bytesRead, payload);
    },
    stop() {
      if (begun) bar.stop();
    },
  };
}
