/** The wire protocol's version. Bump it when a message changes shape in a way an older peer would misread. */
export const PROTOCOL_VERSION = 1;

/** Protocol versions this build of the agent can serve. */
export const SUPPORTED_PROTOCOLS: readonly number[] = [1];

/** The agent's own version, reported in the hello reply. Kept in step with package.json by a unit test. */
export const AGENT_VERSION = '0.1.0';

/** Largest JSON text frame the agent parses; bigger ones get a `too_large` error and the connection stays open. */
export const MAX_TEXT_FRAME = 1024 * 1024;

/** Largest frame of any kind; the WebSocket layer closes the connection (1009) on anything bigger. */
export const MAX_FRAME = 16 * 1024 * 1024;

/** Size of the binary chunks clients and the agent send for contexts and outputs. */
export const CHUNK_SIZE = 1024 * 1024;
