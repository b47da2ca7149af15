// Rewrites docs/protocol.md from the protocol schemas.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderProtocolDoc } from '../agent/protocol/doc';

const file = path.join(__dirname, '..', 'docs', 'protocol.md');
writeFileSync(file, renderProtocolDoc());
console.log(`wrote ${path.relative(process.cwd(), file)}`);
