/**
 * `-p/--publish`, read as `docker run -p` reads it: `[IP:][LOCAL:]CONTAINER[/tcp]`. Unlike docker, the
 * local side listens on 127.0.0.1 unless an address is given (a forward is for this machine's own tools
 * first; `-p 0.0.0.0:8080:80` opens it to the network), and an absent or empty LOCAL takes a free port.
 */
export interface Publish {
  /** The local address to listen on. */
  host: string;
  /** The local port; 0: any free one. */
  localPort: number;
  containerPort: number;
}

function portOf(text: string, what: string, flag: string, allowZero: boolean): number {
  if (!/^\d{1,5}$/.test(text)) throw new Error(`${flag}: ${what} ${JSON.stringify(text)} is not a port number${text.includes('-') ? ' (port ranges are not supported: give each port its own -p)' : ''}`);
  const n = Number(text);
  if (n > 65535 || (n === 0 && !allowZero)) throw new Error(`${flag}: ${what} ${n} is out of range (1-65535)`);
  return n;
}

export function parsePublish(value: string): Publish {
  const flag = `-p ${value}`;
  let rest = value.trim();
  const proto = /\/([a-z]+)$/i.exec(rest);
  if (proto) {
    if (proto[1].toLowerCase() !== 'tcp') throw new Error(`${flag}: only TCP ports can be forwarded (got /${proto[1]})`);
    rest = rest.slice(0, -proto[0].length);
  }
  let host = '127.0.0.1';
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(rest);
  if (v6) {
    host = v6[1];
    rest = v6[2];
  }
  const parts = rest.split(':');
  if (parts.length > 3 || (v6 && parts.length !== 2)) throw new Error(`${flag}: use [IP:][LOCAL_PORT:]CONTAINER_PORT, e.g. -p 8080:80`);
  if (parts.length === 3) {
    if (!/^[0-9.]+$/.test(parts[0]) || parts[0].split('.').length !== 4) throw new Error(`${flag}: ${JSON.stringify(parts[0])} is not an IPv4 address (write an IPv6 one in brackets: [::1]:8080:80)`);
    host = parts[0];
  }
  const containerPort = portOf(parts[parts.length - 1], 'container port', flag, false);
  const local = parts.length >= 2 ? parts[parts.length - 2] : '';
  const localPort = local === '' ? 0 : portOf(local, 'local port', flag, true);
  return { host, localPort, containerPort };
}

/** `http://127.0.0.1:8080`, `http://[::1]:8080`: how a forward is shown. */
export function forwardUrl(host: string, port: number): string {
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}
