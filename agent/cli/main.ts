/**
 * The `bytenite` command: run, attach, runs, hardware, agent. The agent's own code is loaded only for
 * `bytenite agent` and the embedded agent (see loadAgentSide.ts): a client starts faster without it.
 */
import { AGENT_VERSION } from '../protocol/version';
import { loadAgentSide } from './loadAgentSide';
import { hardwareCommand } from './hardwareCommand';
import { runsCommand } from './runsCommand';
import { attachCommand, ATTACH_HELP } from './attachCommand';
import { outputsCommand, OUTPUTS_HELP } from './outputsCommand';
import { execCommand, EXEC_HELP } from './execCommand';
import { EXIT_NOT_RUN, RUN_HELP, runCommand, UsageError } from './runCommand';
import { DEPLOY_HELP, deployCommand, endpointCommand, endpointsCommand, undeployCommand } from './endpointCommands';
import { VOLUME_HELP, volumeCommand, volumesCommand } from './volumeCommands';
import { SCHEDULE_HELP, scheduleCommand, schedulesCommand } from './scheduleCommands';

const HELP = `bytenite ${AGENT_VERSION}: run any Dockerfile on your own hardware, with live logs, warm starts and cost.

Usage:
  bytenite run [DOCKERFILE] [options] [-- COMMAND...]   build and run (see bytenite run --help)
  bytenite hardware [--json] [--agent URL --token-file FILE [--ca-file FILE]]   what an agent offers, with prices
  bytenite attach RUN [--json] [--agent URL --token-file FILE]   follow a run: replay, then live
  bytenite runs [--json] [--agent URL --token-file FILE]   the runs an agent knows, past ones too, newest first
  bytenite outputs RUN [--out DIR] [--agent URL --token-file FILE]   fetch a run's output files (again)
  bytenite exec [-i] [-t] RUN --agent URL -- COMMAND...  a command (a shell: -it ... -- sh) in a running run's container
  bytenite deploy NAME [DOCKERFILE] --port N [options]  an endpoint at /e/NAME/ that scales to zero (see bytenite deploy --help)
  bytenite endpoints [--json] | undeploy NAME | endpoint logs NAME [--follow]   endpoints of an agent
  bytenite volumes [--json] | volume rm NAME            named volumes of your tenant (run -v NAME:/path), sizes and cost
  bytenite schedule add NAME --cron "EXPR" [options] [DOCKERFILE]   run it at times (see bytenite schedule --help)
  bytenite schedules [--json] | schedule rm|run|pause|resume NAME   schedules of an agent: next times, last result, cost
  bytenite agent [options]                              serve runs to clients (see bytenite agent --help)
  bytenite --version
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run': return runCommand(rest);
    case 'agent': return (await loadAgentSide()).agentCommand(rest);
    case 'hardware': return hardwareCommand(rest);
    case 'attach': return attachCommand(rest);
    case 'runs': return runsCommand(rest);
    case 'outputs': return outputsCommand(rest);
    case 'exec': return execCommand(rest);
    case 'deploy': return deployCommand(rest);
    case 'endpoints': return endpointsCommand(rest);
    case 'undeploy': return undeployCommand(rest);
    case 'endpoint': return endpointCommand(rest);
    case 'volumes': return volumesCommand(rest);
    case 'volume': return volumeCommand(rest);
    case 'schedule': return scheduleCommand(rest);
    case 'schedules': return schedulesCommand(rest);
    case '--version': case '-v':
      process.stdout.write(`${AGENT_VERSION}\n`);
      return 0;
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`bytenite: unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (err: Error) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`bytenite: ${err.message}\n`);
    if (usage) {
      const cmd = process.argv[2];
      const help = cmd === 'agent' ? (await loadAgentSide()).AGENT_HELP : cmd === 'attach' ? ATTACH_HELP : cmd === 'outputs' ? OUTPUTS_HELP : cmd === 'exec' ? EXEC_HELP : cmd === 'deploy' ? DEPLOY_HELP : cmd === 'volume' || cmd === 'volumes' ? VOLUME_HELP : cmd === 'schedule' || cmd === 'schedules' ? SCHEDULE_HELP : RUN_HELP;
      process.stderr.write(`\n${help}`);
    }
    process.exitCode = usage ? 2 : EXIT_NOT_RUN;
  },
);
