#!/usr/bin/env node
// Thin launcher: the CLI is bundled by `npm run build` (run by `npm ci` through `prepare`).
require('../dist/bytenite.js');
