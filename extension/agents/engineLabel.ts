/**
 * The engine in a few words for the status bar: `Docker 20.10.24`, `Podman 4.3.1 · colima`. The agent
 * describes it in full (`Docker Engine 20.10.24 (API 1.41) at unix:///… (context "colima", from …)`); the
 * full text stays in the tooltip.
 */
export function engineLabel(engine: string): string {
  const kind = /^(Docker Engine|Podman)\s+(\S+)/.exec(engine);
  if (!kind) return engine.split(/\s+/).slice(0, 2).join(' ');
  const name = `${kind[1] === 'Podman' ? 'Podman' : 'Docker'} ${kind[2]}`;
  const context = /\(context "([^"]+)"/.exec(engine);
  if (context) return `${name} · ${context[1]}`;
  if (/\(DOCKER_HOST\)|\(--engine-host\)/.test(engine)) {
    const at = / at (\S+)/.exec(engine)?.[1];
    if (at && !at.startsWith('unix://')) return `${name} · ${at.replace(/^\w+:\/\//, '')}`;
  }
  return name;
}
