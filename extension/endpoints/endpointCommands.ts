/**
 * The commands that act on one of the selected agent's endpoints (Open, Logs, Undeploy): from the sidebar's
 * row or the endpoint panel with its name, or from the palette with a pick. Deploy itself is in
 * endpoints/deployEndpoint.ts.
 */
import * as vscode from 'vscode';
import type { CommandFactories } from '../commands';
import type { Ctx } from '../context';

export const endpointCommands: CommandFactories = {
  /** The browser at an endpoint's `/` (a local forward adds the token unless it is public); returns the address opened. */
  openEndpoint: (ctx) => async (name?: string) => {
    const found = await endpointArg(ctx, name, 'Open which endpoint?');
    if (!found?.endpoint) return undefined;
    const url = await found.list.browserUrl(found.client, found.endpoint);
    const external = await vscode.env.asExternalUri(vscode.Uri.parse(url));
    ctx.log.info(`open endpoint ${found.endpoint.name}: ${url} (${external.toString(true)})`);
    await vscode.env.openExternal(external);
    return url;
  },

  /** The endpoint's panel: its requests, instances and their logs. */
  endpointLogs: (ctx) => async (name?: string) => {
    const found = await endpointArg(ctx, name, 'Show the requests of which endpoint?');
    if (found?.endpoint) ctx.endpointPanels.open(found.endpoint.name);
  },

  /** Asks, then removes the endpoint: new requests get 404, its instances finish what they hold. `confirmed` skips the question. */
  undeployEndpoint: (ctx) => async (name?: string, confirmed?: boolean) => {
    const found = await endpointArg(ctx, name, 'Undeploy which endpoint?');
    if (!found?.endpoint) return false;
    const n = found.endpoint.name;
    if (confirmed !== true) {
      const ok = await vscode.window.showWarningMessage(
        `Undeploy endpoint ${n}? Requests to it then get 404; its instances finish what they hold and stop.`, { modal: true }, 'Undeploy');
      if (ok !== 'Undeploy') return false;
    }
    await found.client.removeEndpoint(n);
    await found.list.forget(found.client, n);
    ctx.log.info(`endpoint ${n} undeployed`);
    ctx.endpoints.fireChanged();
    return true;
  },
};

/** The endpoint a command is about: its name, or the user's pick among the selected agent's. */
async function endpointArg(ctx: Ctx, name: string | undefined, title: string) {
  const listed = await ctx.endpoints.list(15_000);
  if (!listed) throw new Error(`agent "${ctx.agents.selectedName()}" serves no endpoints (or is not connected)`);
  if (!name && !listed.endpoints.length) {
    void vscode.window.showInformationMessage(`No endpoint on agent "${listed.agent}" yet: deploy one with ByteNite: Deploy as Endpoint.`);
    return undefined;
  }
  const pickName = name ?? (listed.endpoints.length === 1 ? listed.endpoints[0].name
    : (await vscode.window.showQuickPick(listed.endpoints.map((e) => e.name), { title })));
  if (!pickName) return undefined;
  const endpoint = listed.endpoints.find((e) => e.name === pickName);
  if (!endpoint) throw new Error(`no endpoint ${pickName} on agent "${listed.agent}"`);
  return { list: ctx.endpoints, client: listed.client, endpoint };
}
