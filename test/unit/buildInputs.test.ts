// What the extension reads from a Dockerfile before a run: COPY/ADD sources (to propose the workspace
// folder as the context of a monorepo's Dockerfile), stage names (the stage picker), secret ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copySources, missingSources, proposeWorkspaceContext, secretIds, stageNames } from '../../extension/dockerfiles/buildInputs';

const MONOREPO = `# syntax=docker/dockerfile:1
FROM node:20 AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/shared ./packages/shared
COPY --chown=node:node ["services/api/src", "./src"]
COPY --from=deps /app/node_modules ./node_modules
ADD https://example.com/tool.tgz /opt/
ADD vendor/*.tgz /opt/vendor/
COPY *.md /docs/
COPY $CONFIG /etc/app.json
COPY . /ctx
COPY ./packages/shared/ \\
  /again
copy ../outside /x
COPY <<EOF /inline
FROM deps AS test
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc --mount=type=cache,target=/c --mount=type=secret,target=/run/secrets/token npm test
FROM --platform=linux/amd64 deps as final
`;

test('COPY/ADD sources: context paths only, each once, patterns as their folder', () => {
  assert.deepEqual(copySources(MONOREPO), ['package.json', 'package-lock.json', 'packages/shared', 'services/api/src', 'vendor']);
  assert.deepEqual(copySources('FROM scratch\nCOPY busybox /bin/busybox\n'), ['busybox']);
});

test('which sources are missing from a folder, and when the workspace folder is the context to propose', () => {
  const sources = copySources(MONOREPO);
  const dockerfileFolder = new Set(['package.json', 'src']);
  const workspace = new Set(['package.json', 'package-lock.json', 'packages/shared', 'services/api/src', 'vendor']);
  assert.deepEqual(missingSources(sources, (p) => dockerfileFolder.has(p)), ['package-lock.json', 'packages/shared', 'services/api/src', 'vendor']);
  assert.deepEqual(proposeWorkspaceContext(sources, (p) => dockerfileFolder.has(p), (p) => workspace.has(p)),
    ['package-lock.json', 'packages/shared', 'services/api/src', 'vendor']);
  // All there already: nothing to propose.
  assert.equal(proposeWorkspaceContext(sources, (p) => workspace.has(p), (p) => workspace.has(p)), undefined);
  // Missing from both: the workspace folder would not build either, so it is not proposed.
  assert.equal(proposeWorkspaceContext(sources, () => false, (p) => p !== 'vendor'), undefined);
  assert.equal(proposeWorkspaceContext([], () => false, () => false), undefined);
});

test('stage names in order, and the ids of secret mounts (id, or the target\'s base name)', () => {
  assert.deepEqual(stageNames(MONOREPO), ['deps', 'test', 'final']);
  assert.deepEqual(stageNames('FROM scratch\nCOPY a b\n'), []);
  assert.deepEqual(secretIds(MONOREPO), ['npmrc', 'token']);
});
