/**
 * What the sidebar and the endpoint panel show of an endpoint, from the agent's summary: its state (idle,
 * starting, serving N, as `bytenite endpoints` words it), counts and cost. No vscode import: unit-tested.
 */
import type { EndpointSummary } from '../../agent/protocol';
import type { EndpointHeaderView, EndpointRowView, EndpointStatusView } from '../../webview/protocol';
import { formatHardware } from '../hardware/pricing';

export function endpointState(e: Pick<EndpointSummary, 'instances'>): { state: EndpointRowView['state']; stateText: string } {
  const serving = e.instances.filter((i) => i.state === 'ready').length;
  if (e.instances.some((i) => i.state === 'starting')) return { state: 'starting', stateText: 'starting' };
  return serving ? { state: 'serving', stateText: `serving ${serving}` } : { state: 'idle', stateText: 'idle' };
}

export function endpointRow(e: EndpointSummary, url: string): EndpointRowView {
  return {
    name: e.name, url, ...endpointState(e), requests: e.requests, queued: e.queued,
    ...(e.requestsToday !== undefined ? { requestsToday: e.requestsToday } : {}),
    ...(e.cost ? { costToday: e.cost.today } : {}), public: e.settings.public,
  };
}

export function endpointStatus(e: EndpointSummary | undefined): EndpointStatusView {
  if (!e) return { exists: false, stateText: 'undeployed', instances: [], queued: 0, requests: 0 };
  return {
    exists: true, stateText: endpointState(e).stateText, instances: e.instances, queued: e.queued, requests: e.requests,
    ...(e.cost ? { costToday: e.cost.today, costTotal: e.cost.total, idleText: e.cost.idle.text } : {}),
  };
}

export function endpointHeader(e: EndpointSummary, url: string, agent: string): EndpointHeaderView {
  const s = e.settings;
  const settings = [
    `${s.min}..${s.max} instances`, `idle ${s.idleMs / 1000} s`, `${s.concurrency} per instance`, `port ${s.port}`,
    ...(s.readyPath ? [`ready at ${s.readyPath}`] : []), s.public ? 'public' : 'needs the agent token',
  ].join(' · ');
  return { name: e.name, url, agent, settings, hardware: formatHardware(e.hardware) };
}

/** The name an endpoint gets by default: its Dockerfile's folder, made a valid endpoint name. */
export function defaultEndpointName(folder: string): string {
  const n = folder.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return /^[a-z0-9]/.test(n) ? n : 'endpoint';
}
