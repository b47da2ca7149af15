/**
 * dist/bytenite.js, the file `bin/bytenite.js`, the extension and the tests start: it loads the CLI bundle
 * (dist/bytenite-cli.js) through the code cache (bundleLoader.ts). Run from source, agent/cli/main.ts is the
 * entry instead.
 */
import path from 'node:path';
import { requireBundle } from './bundleLoader';

requireBundle(path.join(__dirname, 'bytenite-cli.js'));
