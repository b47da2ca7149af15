/**
 * How the agent reaches a TCP port inside one of its Docker containers, for port forwards and readiness.
 *
 * Direct: a TCP connection to the container's address on its network. That is the fast path, and the one a
 * user's own `curl 172.18.0.2:8000` takes; it needs the agent on the engine's host (the engine at a local
 * socket) and a container with a network.
 *
 * Relay: otherwise (a `--no-network` container, an engine over SSH or TCP, an address the agent cannot
 * route to), `docker exec` of the agent's static busybox inside the container: `nc 127.0.0.1 PORT` in the
 * container's own network namespace, its stdin and stdout carried by the exec's hijacked connection. It
 * works for any image, as no tool of the image is used; the busybox is copied in at the first use.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { FrameSplitter } from './dockerStream';
import { SHIM_PATH, findStaticBusybox } from './hotShim';
import { shimArchive } from './outputSkeleton';

export interface PortDialer {
  /** A connection to `port` inside the container; rejects with the reason when nothing can be reached. */
  dial(port: number): Promise<Duplex>;
  /** Whether something inside the container accepts connections on `port` now. */
  probe(port: number): Promise<boolean>;
}

export interface DialOptions {
  /** The agent shares the engine's host, so the container's address can be routed to. */
  local: boolean;
  /** The container was made with the busybox in it (a hot container). */
  hasShim?: boolean;
}

const PROBE_TIMEOUT_MS = 1000;

export function dockerDialer(container: Docker.Container, opts: DialOptions): PortDialer {
  let address: Promise<string | undefined> | undefined;
  const addressOf = () => (address ??= opts.local ? containerAddress(container) : Promise.resolve(undefined));
  let shim: Promise<void> | undefined = opts.hasShim ? Promise.resolve() : undefined;
  const withShim = () => (shim ??= copyShim(container).catch((err) => {
    shim = undefined;
    throw err;
  }));
  let routable = true; // set false once a direct connection fails other than by refusal

  return {
    async dial(port) {
      const ip = routable ? await addressOf() : undefined;
      if (ip) {
        try {
          return await connectTcp(ip, port);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') throw new Error(`nothing listens on port ${port} of the container (yet)`);
          routable = false; // the agent is not where it can route to the container: relay from now on
        }
      }
      await withShim();
      return relay(container, port);
    },
    async probe(port) {
      const ip = routable ? await addressOf() : undefined;
      if (ip) {
        return connectTcp(ip, port, PROBE_TIMEOUT_MS).then((s) => {
          s.destroy();
          return true;
        }, (err) => {
          if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') routable = false;
          return false;
        });
      }
      await withShim();
      return (await listeningPorts(container)).has(port);
    },
  };
}

async function containerAddress(container: Docker.Container): Promise<string | undefined> {
  const info = await container.inspect();
  for (const n of Object.values(info.NetworkSettings?.Networks ?? {})) if (n.IPAddress) return n.IPAddress;
  return undefined;
}

function connectTcp(host: string, port: number, timeoutMs = 5000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => s.destroy(Object.assign(new Error(`no answer from ${host}:${port}`), { code: 'ETIMEDOUT' })), timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function copyShim(container: Docker.Container): Promise<void> {
  const busybox = findStaticBusybox();
  if (!busybox) throw new Error('reaching this container\'s ports needs a static busybox on the agent\'s host (Debian: apt install busybox-static)');
  await container.putArchive(shimArchive(busybox), { path: '/' });
}

/** Runs the busybox in the container and gives its stdout (demultiplexed) and stderr. */
async function execShim(container: Docker.Container, args: string[], stdin: boolean): Promise<Duplex> {
  const exec = await container.exec({
    Cmd: [SHIM_PATH, ...args], AttachStdin: stdin, AttachStdout: true, AttachStderr: true, Tty: false, User: '0',
  });
  return (await exec.start({ hijack: true, stdin })) as unknown as Duplex;
}

/** The ports with a listening TCP socket in the container's network namespace (/proc/net/tcp and tcp6). */
async function listeningPorts(container: Docker.Container): Promise<Set<number>> {
  const stream = await execShim(container, ['cat', '/proc/net/tcp', '/proc/net/tcp6'], false);
  const frames = new FrameSplitter();
  let text = '';
  await new Promise<void>((resolve) => {
    stream.on('data', (c: Buffer) => frames.push(c, (s, p) => { if (s === 'stdout') text += p.toString('latin1'); }));
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', () => resolve());
  });
  const ports = new Set<number>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st ...: state 0A is LISTEN
    if (f.length > 3 && f[3] === '0A') ports.add(parseInt(f[1].split(':')[1], 16));
  }
  return ports;
}

/** A connection to `port` through `nc` inside the container. */
function relay(container: Docker.Container, port: number): Promise<Duplex> {
  return relayThrough(container, '127.0.0.1', port);
}

/** A connection to `host:port` as seen from inside the container (which has the busybox), through its `nc`. */
export async function relayThrough(container: Docker.Container, host: string, port: number): Promise<Duplex> {
  const raw = await execShim(container, ['nc', host, String(port)], true);
  return new RelayStream(raw);
}

/**
 * The exec's hijacked connection as a plain byte stream: what is written goes to nc's stdin (an end is a
 * half-close, which the engine passes on as the end of stdin); what nc prints comes out of its frames. A
 * relay that ends having printed to stderr (nc could not connect) fails with nc's words.
 */
class RelayStream extends Duplex {
  private readonly frames = new FrameSplitter();
  private stderr = '';
  private gotData = false;

  constructor(private readonly raw: Duplex) {
    super({ allowHalfOpen: true });
    raw.on('data', (c: Buffer) => this.frames.push(c, (s, p) => {
      if (s === 'stderr') {
        this.stderr = (this.stderr + p.toString('utf8')).slice(-500);
        return;
      }
      this.gotData = true;
      if (!this.push(Buffer.from(p))) raw.pause();
    }));
    const ended = () => {
      const why = this.stderr.trim();
      if (why && !this.gotData) this.destroy(new Error(why.replace(/^nc: /, '')));
      else this.push(null);
    };
    raw.on('end', ended);
    raw.on('close', () => {
      if (!this.readableEnded) ended();
    });
    raw.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.raw.write(chunk)) cb();
    else this.raw.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.raw.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.raw.destroy();
    cb(err);
  }
}
