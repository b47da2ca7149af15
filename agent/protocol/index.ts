// The one contract between agents and clients (CLI, VS Code extension).
export * from './messages';
export * from './parse';
export * from './version';
