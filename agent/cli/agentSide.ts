/**
 * The CLI's agent code (server, engines, dockerode, pino): `bytenite agent` and the agent embedded in
 * `bytenite run` without --agent. It is bundled apart (dist/bytenite-agent.js) and loaded only through
 * loadAgentSide(), so that a client of an agent already running does not parse and run it on every start.
 */
export { agentCommand, AGENT_HELP } from './agentCommand';
export { startEmbeddedAgent, type EmbeddedAgent } from './embeddedAgent';
