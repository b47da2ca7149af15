/**
 * Keeps run containers away from the link-local range 169.254.0.0/16, where a cloud VM's metadata service
 * answers (169.254.169.254) and hands out the machine's credentials. Docker has no per-network egress rule,
 * so the agent adds its own to the host's firewall: packets from its bridges (named `bn-…`, see
 * tenantNetworks.ts) to that range are rejected, whether the host forwards them (DOCKER-USER, Docker's
 * chain for its users' rules) or answers them itself (INPUT). Other containers of the host are untouched.
 *
 * This needs the agent on the engine's host, as root, with iptables. Elsewhere it says so, plainly: the
 * start-up line then tells the owner that containers can reach the metadata address.
 */
import { execFile } from 'node:child_process';
import { BRIDGE_PREFIX } from './tenantNetworks';

export const LINK_LOCAL = '169.254.0.0/16';

const CHAINS = ['DOCKER-USER', 'INPUT'];

function iptables(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('iptables', ['-w', '5', ...args], { timeout: 10_000 }, (err, _out, stderr) => {
      if (err) reject(new Error((stderr || err.message).trim().split('\n')[0]));
      else resolve();
    });
  });
}

/** Adds the rules if they are not there. Resolves with a line for the start-up log saying what holds. */
export async function blockMetadata(local: boolean, chains: readonly string[] = CHAINS): Promise<{ blocked: boolean; note: string }> {
  const not = (why: string) => ({ blocked: false, note: `containers CAN reach ${LINK_LOCAL} (a cloud machine's metadata and credentials): ${why}` });
  if (!local) return not('the engine is on another machine, whose firewall the agent does not manage; block it there');
  if (process.platform !== 'linux') return not(`no firewall rule on ${process.platform}`);
  if (process.getuid?.() !== 0) return not('the agent is not root, so it cannot add its firewall rule (run it as root, or add: iptables -I DOCKER-USER -i bn-+ -d 169.254.0.0/16 -j REJECT)');
  try {
    for (const chain of chains) {
      const rule = [chain, '-i', `${BRIDGE_PREFIX}+`, '-d', LINK_LOCAL, '-j', 'REJECT'];
      await iptables(['-C', ...rule]).catch(() => iptables(['-I', chain, '1', ...rule.slice(1)]));
    }
  } catch (err) {
    return not(`iptables refused the rule (${(err as Error).message})`);
  }
  return { blocked: true, note: `run containers cannot reach ${LINK_LOCAL} (metadata address blocked)` };
}
