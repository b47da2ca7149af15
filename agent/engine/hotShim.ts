/**
 * The shim that lets a container be started before its run exists ("hot" start). The container's process
 * is a static busybox shell copied into the container, waiting on stdin. The run's go message gives the
 * run id and the argv to run (so runs that differ only by command share containers), after which the
 * shell execs it: the program becomes PID 1, with stdin from /dev/null as under `docker run` without -i.
 * Nothing of the shim is printed, so the log holds only the program's output.
 */
import { closeSync, openSync, readSync, readFileSync } from 'node:fs';

/** Where the shim lives inside the container: out of the way of anything an image ships. */
export const SHIM_DIR = '.bytenite';
export const SHIM_PATH = `/${SHIM_DIR}/busybox`;

/**
 * The waiting script. It resolves a bare command name along PATH itself so that the exec goes to the
 * image's program: busybox built "standalone" would otherwise prefer its own applet of the same name
 * (`echo`, `sh`, `cat`), which is not what the image would have run.
 */
const SCRIPT = [
  'IFS= read -r BYTENITE_RUN_ID || exit 125',
  // Podman hands the attach request's JSON body (dockerode's options) to stdin ahead of the go message,
  // with no newline: a run id never holds a brace, so whatever precedes the last one is that body.
  'BYTENITE_RUN_ID=${BYTENITE_RUN_ID##*\\}}',
  'export BYTENITE_RUN_ID',
  'IFS= read -r n || exit 125',
  'set --',
  // Each argument on a line: `r` + the text, or `b` + base64 for one that holds a newline.
  'while [ "$n" -gt 0 ]; do IFS= read -r a || exit 125; case $a in r*) a=${a#r};; ' +
    `*) a=$(printf %s "\${a#b}" | ${SHIM_PATH} base64 -d; echo x); a=\${a%x};; esac; set -- "$@" "$a"; n=$((n-1)); done`,
  'c=$1; shift',
  'case $c in */*) ;; *) IFS=:; for d in $PATH; do if [ -f "$d/$c" ] && [ -x "$d/$c" ]; then c=$d/$c; break; fi; done; unset IFS;; esac',
  'exec "$c" "$@" </dev/null',
].join('\n');

/** The entrypoint of a hot container: the shim, waiting for its go message. */
export function shimEntrypoint(): string[] {
  return [SHIM_PATH, 'sh', '-c', SCRIPT, 'bytenite-hot'];
}

/** The go message for a run (run ids are [a-z0-9-]): what the script above reads. */
export function goMessage(runId: string, argv: string[]): string {
  const args = argv.map((a) => (a.includes('\n') ? `b${Buffer.from(a).toString('base64')}` : `r${a}`));
  return [runId, String(argv.length), ...args].join('\n') + '\n';
}

/**
 * A busybox that can run in any image, or undefined: it must be statically linked (a scratch image has
 * no dynamic loader). Debian's busybox-static installs one at /bin/busybox.
 */
export function findStaticBusybox(candidates = [process.env.BYTENITE_HOT_SHIM, '/bin/busybox', '/usr/bin/busybox']): Buffer | undefined {
  for (const file of candidates) {
    if (!file) continue;
    try {
      if (!isStaticElf(file)) continue;
      return readFileSync(file);
    } catch {
      /* not there: try the next */
    }
  }
  return undefined;
}

const PT_INTERP = 3;

/** A 64-bit little-endian ELF executable with no program interpreter (statically linked). */
export function isStaticElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(64);
    if (readSync(fd, head, 0, 64, 0) < 64) return false;
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return false;
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    if (phentsize < 4 || phnum === 0 || phnum > 256) return false;
    const table = Buffer.alloc(phentsize * phnum);
    if (readSync(fd, table, 0, table.length, phoff) < table.length) return false;
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === PT_INTERP) return false;
    return true;
  } finally {
    closeSync(fd);
  }
}
