/**
 * Loads the agent code on first need. Run from source this is an ordinary dynamic import; in the CLI bundle
 * scripts/build.mjs turns it into a require of dist/bytenite-agent.js, which the client bundle leaves out.
 */
export function loadAgentSide(): Promise<typeof import('./agentSide')> {
  return import('./agentSide');
}
