/**
 * The `bytenite` command: run, attach, runs, hardware, agent. The agent's own code is loaded only for
 * `bytenite agent` and the embedded agent (see loadAgentSide.ts): a client starts faster without it.
 */
import { AGENT_VERSION } from '../protocol/version';
import { loadAgentSide } from './loadAgentSide';

// Each command's module is loaded when that command runs (esbuild keeps them in the bundle, each behind an
// init function): `run` no longer runs the top level of schedule, endpoint, volume or exec code it never uses.
const runModule = () => import('./runCommand');
const endpointModule = () => import('./endpointCommands');
const volumeModule = () => import('./volumeCommands');
const scheduleModule = () => import('./scheduleCommands');

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
    case 'run': return (await runModule()).runCommand(rest);
    case 'agent': return (await loadAgentSide()).agentCommand(rest);
    case 'hardware': return (await import('./hardwareCommand')).hardwareCommand(rest);
    case 'attach': return (await import('./attachCommand')).attachCommand(rest);
    case 'runs': return (await import('./runsCommand')).runsCommand(rest);
    case 'outputs': return (await import('./outputsCommand')).outputsCommand(rest);
    case 'exec': return (await import('./execCommand')).execCommand(rest);
    case 'deploy': return (await endpointModule()).deployCommand(rest);
    case 'endpoints': return (await endpointModule()).endpointsCommand(rest);
    case 'undeploy': return (await endpointModule()).undeployCommand(rest);
    case 'endpoint': return (await endpointModule()).endpointCommand(rest);
    case 'volumes': return (await volumeModule()).volumesCommand(rest);
    case 'volume': return (await volumeModule()).volumeCommand(rest);
    case 'schedule': return (await scheduleModule()).scheduleCommand(rest);
    case 'schedules': return (await scheduleModule()).schedulesCommand(rest);
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

/** The usage text shown after a usage error of `cmd`. */
async function helpOf(cmd: string | undefined): Promise<string> {
  switch (cmd) {
    case 'agent': return (await loadAgentSide()).AGENT_HELP;
    case 'attach': return (await import('./attachCommand')).ATTACH_HELP;
    case 'outputs': return (await import('./outputsCommand')).OUTPUTS_HELP;
    case 'exec': return (await import('./execCommand')).EXEC_HELP;
    case 'deploy': return (await endpointModule()).DEPLOY_HELP;
    case 'volume': case 'volumes': return (await volumeModule()).VOLUME_HELP;
    case 'schedule': case 'schedules': return (await scheduleModule()).SCHEDULE_HELP;
    default: return (await runModule()).RUN_HELP;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (err: Error) => {
    const { EXIT_NOT_RUN, UsageError } = await runModule();
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`bytenite: ${err.message}\n`);
    if (usage) process.stderr.write(`\n${await helpOf(process.argv[2])}`);
    process.exitCode = usage ? 2 : EXIT_NOT_RUN;
  },
);
