/**
 * Drives the real console menu in tmux for the menu tests: a private tmux server per session
 * (its own socket, killed in finally), a temporary HARK_ROOT with fake interfaces under
 * sys/class/net, a stand-in `hark` command that records its arguments, enrols into
 * DATA/identity/sensor.json and "runs" as a sleeping process the real control script supervises,
 * and a stand-in for the root account's tools ($HARK_ACCOUNTS: passwd -S, su under setpriv,
 * chpasswd) keeping root's password in a plain file of the test root.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** How long one screen may take to appear (node start-up on a busy 2-core machine). */
const SCREEN_DEADLINE_MS = 15_000;

/** The stand-in sensor command: the CLI contract of `hark enrol` / `hark run` / `hark status`. */
const FAKE_HARK = `#!/bin/bash
mkdir -p "$HARK_ROOT/var/log/hark"
echo "$*" >> "$HARK_ROOT/var/log/hark/fake-hark.log"
data="\${HARK_DATA_DIR:-$HARK_ROOT/var/lib/hark}"
case "$1" in
  enrol)
    case "$2" in
      --reset) mkdir -p "$data/identity"; echo '{"sensor_id":0}' > "$data/identity/sensor.json" ;;
      --status) echo '{"sensor_id":0,"enrolled":false}' ;;
      *)
        if [ "$5" = "BADCODE-0000" ]; then echo "hark enrol: home refused the enrolment code" >&2; exit 1; fi
        mkdir -p "$data/identity"
        echo "{\\"sensor_id\\":42,\\"home\\":\\"$3\\"}" > "$data/identity/sensor.json" ;;
    esac ;;
  run) trap 'exit 0' TERM; while :; do sleep 0.2; done ;;
  status) echo '{"captures":7,"interfaces":[{"name":"eth1","packets":99,"kernel_drops":0,"interface_drops":0}]}'; exit 0 ;;
  *) exit 2 ;;
esac
`;

/**
 * The stand-in for the root account's tools, called with their real command lines: `passwd
 * --status root`, `setpriv ... -- su -c true root` (password on stdin) and `chpasswd`
 * (root:password on stdin). Every call is logged; root's password is test-accounts/root-password
 * (none: locked).
 */
const FAKE_ACCOUNTS = `#!/bin/bash
dir="$(dirname "$0")/test-accounts"
mkdir -p "$dir"
echo "$*" >> "$dir/calls.log"
pw="$dir/root-password"
case "$1" in
  passwd) if [ -s "$pw" ]; then echo "root P 01/01/2026 0 99999 7 -1"; else echo "root L 01/01/2026 0 99999 7 -1"; fi ;;
  setpriv)
    IFS= read -r given
    if [ -s "$pw" ] && [ "$given" = "$(cat "$pw")" ]; then exit 0; fi
    echo "su: Authentication failure" >&2; exit 1 ;;
  chpasswd) IFS= read -r line; printf '%s' "\${line#root:}" > "$pw" ;;
  *) exit 2 ;;
esac
`;

/** Root's password in a test root unless a test says otherwise. */
export const ROOT_PASSWORD = 'Console-Root-Pass-1';

export interface MenuSessionOptions {
  /** Root's password; null: locked, as in a fresh image. Default ROOT_PASSWORD. */
  rootPassword?: string | null;
  /** Puts the image's first-boot marker (var/lib/hark-menu/root-password-unset) in place. */
  firstBoot?: boolean;
  /** $HARK_MENU_IDLE_S for the menu. */
  idleSeconds?: number;
}

export class MenuSession {
  readonly root: string;
  readonly socket: string;
  readonly name = 'menu';
  private started = false;

  constructor(label: string, opts: MenuSessionOptions = {}) {
    this.root = mkdtempSync(join(tmpdir(), `hark-menu-${label}-`));
    this.socket = `hark-menu-test-${process.pid}-${label}`;
    for (const n of ['eth0', 'eth1', 'eth2']) {
      mkdirSync(join(this.root, 'sys/class/net', n, 'statistics'), { recursive: true });
      writeFileSync(join(this.root, 'sys/class/net', n, 'operstate'), 'up\n');
      writeFileSync(join(this.root, 'sys/class/net', n, 'statistics/rx_packets'), '1234\n');
      writeFileSync(join(this.root, 'sys/class/net', n, 'statistics/rx_dropped'), '0\n');
    }
    writeFileSync(join(this.root, 'hark'), FAKE_HARK);
    chmodSync(join(this.root, 'hark'), 0o755);
    writeFileSync(join(this.root, 'accounts'), FAKE_ACCOUNTS);
    chmodSync(join(this.root, 'accounts'), 0o755);
    mkdirSync(join(this.root, 'test-accounts'));
    const rootPassword = opts.rootPassword === undefined ? ROOT_PASSWORD : opts.rootPassword;
    if (rootPassword !== null) writeFileSync(join(this.root, 'test-accounts/root-password'), rootPassword);
    if (opts.firstBoot === true) {
      mkdirSync(join(this.root, 'var/lib/hark-menu'), { recursive: true });
      writeFileSync(join(this.root, 'var/lib/hark-menu/root-password-unset'), '');
    }
    const idle = opts.idleSeconds === undefined ? '' : ` HARK_MENU_IDLE_S=${opts.idleSeconds}`;
    writeFileSync(
      join(this.root, 'launch.sh'),
      `#!/bin/sh\nexport HARK_ROOT=${this.root} HARK_BIN=${this.root}/hark HARK_CTL=${join(REPO, 'appliance/hark.sh')} HARK_RESTART_DELAY_S=1 HARK_ACCOUNTS=${this.root}/accounts${idle}\n` +
        `node ${join(DIST, 'menu/main.js')}\necho "MENU-EXITED $?"\nsleep 60\n`,
    );
    chmodSync(join(this.root, 'launch.sh'), 0o755);
  }

  file(p: string): string {
    return readFileSync(join(this.root, p), 'utf8');
  }

  /** The command lines the menu ran through the account stand-in, one per entry. */
  accountCalls(): string[] {
    try {
      return this.file('test-accounts/calls.log').split('\n').filter((l) => l !== '');
    } catch {
      return [];
    }
  }

  /** Root's password as the stand-in holds it now (undefined: locked). */
  rootPassword(): string | undefined {
    try {
      return this.file('test-accounts/root-password');
    } catch {
      return undefined;
    }
  }

  /** Unlocks the console with `password` and waits for the menu or the wizard. */
  async login(password = ROOT_PASSWORD): Promise<void> {
    await this.answer(/Root password:/, password);
  }

  tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  start(): void {
    this.tmux('new-session', '-d', '-s', this.name, '-x', '140', '-y', '50', join(this.root, 'launch.sh'));
    this.started = true;
  }

  screen(): string {
    return this.tmux('capture-pane', '-p', '-t', this.name);
  }

  async expect(re: RegExp): Promise<string> {
    return this.expectScreen(String(re), (screen) => re.test(screen));
  }

  /** Polls the screen until `ok` says yes; fails with what it shows after SCREEN_DEADLINE_MS. */
  private async expectScreen(what: string, ok: (screen: string) => boolean): Promise<string> {
    const end = Date.now() + SCREEN_DEADLINE_MS;
    let last = '';
    while (Date.now() < end) {
      last = this.screen();
      if (ok(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`screen never showed ${what}; it shows:\n${last}`);
  }

  /** Types text and Enter. */
  type(text: string): void {
    if (text !== '') this.tmux('send-keys', '-t', this.name, '-l', text);
    this.tmux('send-keys', '-t', this.name, 'Enter');
  }

  key(k: string): void {
    this.tmux('send-keys', '-t', this.name, k);
  }

  /**
   * Answers the question matching `prompt` once it is the one waiting: the match must reach the
   * last line inquirer marks as pending (`? `; answered questions turn to `✔`), so an earlier,
   * answered question with the same words still on screen does not make the keys go out before the
   * new one can take them (they were lost that way under load).
   */
  async answer(prompt: RegExp, text: string): Promise<void> {
    const all = new RegExp(prompt.source, prompt.flags.includes('g') ? prompt.flags : `${prompt.flags}g`);
    await this.expectScreen(`${prompt} as the pending question`, (screen) => {
      const pending = screen.search(/^[ \t]*\? [^\n]*$(?![\s\S]*^[ \t]*\? )/m);
      if (pending < 0) return false;
      let lastEnd = -1;
      for (const m of screen.matchAll(all)) lastEnd = m.index + m[0].length;
      return lastEnd > pending;
    });
    this.type(text);
  }

  close(): void {
    if (this.started) spawnSync('tmux', ['-L', this.socket, 'kill-server']);
    // The control script's supervisor outlives the menu: stop it through the script itself.
    spawnSync('bash', [join(REPO, 'appliance/hark.sh'), 'stop'], { env: { ...process.env, HARK_ROOT: this.root, HARK_BIN: join(this.root, 'hark') } });
    rmSync(this.root, { recursive: true, force: true });
  }
}
