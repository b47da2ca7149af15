/**
 * Endpoint definitions in the agent's data folder (`DATA_DIR/endpoints.json`), with the run ids of the
 * instances each has running, so that an agent killed and started again serves the same endpoints and
 * adopts the instances it left (agent/store/jsonListFile.ts: written whole, then renamed).
 */
import path from 'node:path';
import { z } from 'zod';
import { EndpointSettings, RunSpec } from '../protocol';
import { Spent } from './endpointCost';
import { JsonListFile } from '../store/jsonListFile';

/** One endpoint as kept on disk: the run spec its instances are made from, and how it scales. */
export const EndpointDefinition = z.strictObject({
  tenant: z.string(), name: z.string(), spec: RunSpec, settings: EndpointSettings, image: z.string(), createdAt: z.string(),
  instances: z.array(z.string()).default([]).describe('Run ids of the instances running when this was written.'),
  spent: Spent.optional().describe('What its instances have cost, as of this writing.'),
});
export type EndpointDefinition = z.infer<typeof EndpointDefinition>;

/** The endpoints kept in `DATA_DIR/endpoints.json`. */
export class DefinitionStore extends JsonListFile<EndpointDefinition> {
  constructor(dataDir: string) {
    super(path.join(dataDir, 'endpoints.json'), 'endpoints', EndpointDefinition, 'definitions');
  }
}
