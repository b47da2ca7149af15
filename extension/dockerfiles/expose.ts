/**
 * The TCP ports a Dockerfile's `EXPOSE` lines name: what the ports step of a run proposes to forward.
 * `EXPOSE 8000`, `EXPOSE 8000/tcp 9000`, continuation lines; UDP ports are left out (a forward carries
 * TCP), as are ports given through a variable (`EXPOSE $PORT`: its value is the build's, not known here).
 * Ranges (`8000-8002`) give each port, up to 16 of them.
 */
const MAX_RANGE = 16;

/** Joins `\`-continued lines, drops comments: one entry per instruction. */
function instructions(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*#/.test(raw) && cur === '') continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    out.push(cur + line);
    cur = '';
  }
  if (cur) out.push(cur);
  return out;
}

/** The TCP ports exposed, in the order first named, without repeats. */
export function exposedPorts(text: string): number[] {
  const ports: number[] = [];
  const add = (n: number) => {
    if (n >= 1 && n <= 65535 && !ports.includes(n)) ports.push(n);
  };
  for (const ins of instructions(text)) {
    const m = /^\s*EXPOSE\s+(.*)$/i.exec(ins);
    if (!m) continue;
    for (const word of m[1].split(/\s+/).filter(Boolean)) {
      const w = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
      if (!w || (w[3] && w[3].toLowerCase() !== 'tcp')) continue;
      const from = Number(w[1]);
      const to = w[2] ? Number(w[2]) : from;
      for (let p = from; p <= to && p < from + MAX_RANGE; p++) add(p);
    }
  }
  return ports;
}
