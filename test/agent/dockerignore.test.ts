// listContext against the real thing: the docker CLI (20.10, legacy builder) builds a context folder with a
// non-trivial .dockerignore, and what COPY put in the image must be what listContext says is sent. The same
// build from the archive packContext writes must give the same tree, content and modes.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { listContext } from '../../agent/context/listContext';
import { packContext } from '../../agent/context/packContext';

const DOCKER = '/usr/bin/docker';
const BUSYBOX = '/bin/busybox';
const env = { ...process.env, DOCKER_BUILDKIT: '0' };
const run = promisify(execFile);

const images: string[] = [];
const scratch: string[] = [];
after(async () => {
  if (images.length) await run(DOCKER, ['rmi', '-f', ...images], { env }).catch(() => undefined);
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

function requireBusybox(): void {
  assert.ok(existsSync(BUSYBOX), `${BUSYBOX} is missing: install busybox-static (apt-get install busybox-static); these tests build images FROM scratch with it`);
}

const DOCKERFILE = [
  'FROM scratch',
  'COPY busybox /bin/busybox',
  'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
  'ENV PATH=/bin',
  'COPY . /ctx',
  '',
].join('\n');

/** Files as `path: content` (mode 0644, or 0755 for `*.sh`); a path ending in `/` is an empty folder (0755). */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'bytenite-dockerignore-'));
  scratch.push(root);
  await copyFile(BUSYBOX, path.join(root, 'busybox'));
  await chmod(path.join(root, 'busybox'), 0o755);
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    await mkdir(rel.endsWith('/') ? abs : path.dirname(abs), { recursive: true });
    if (!rel.endsWith('/')) {
      await writeFile(abs, content);
      await chmod(abs, rel.endsWith('.sh') ? 0o755 : 0o644);
    }
  }
  // Folders made by mkdir get the umask; pin them so both builds and the listing agree on modes.
  await run('find', [root, '-type', 'd', '-exec', 'chmod', '0755', '{}', '+']);
  return root;
}

function imageName(): string {
  const name = `bytenite-test-dockerignore:${process.pid}-${images.length}`;
  images.push(name);
  return name;
}

/** `docker build` as a user runs it, on the folder. */
async function buildFolder(root: string, dockerfile: string): Promise<string> {
  const image = imageName();
  await run(DOCKER, ['build', '--no-cache', '--force-rm', '-q', '-f', dockerfile, '-t', image, '.'], { cwd: root, env, maxBuffer: 16 << 20 });
  return image;
}

/** `docker build -` with the archive on stdin, as the agent hands it to the engine. */
async function buildArchive(tarPath: string, dockerfile: string): Promise<string> {
  const image = imageName();
  const fd = openSync(tarPath, 'r');
  try {
    const child = spawn(DOCKER, ['build', '--no-cache', '--force-rm', '-q', '-f', dockerfile, '-t', image, '-'], { env, stdio: [fd, 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.stdout?.resume();
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    assert.equal(code, 0, `docker build from the archive failed: ${stderr}`);
  } finally {
    closeSync(fd);
  }
  return image;
}

/** What is under /ctx in the image: one line per path, `type mode path [sha256 | -> target]`. */
async function ctxTree(image: string): Promise<Map<string, string>> {
  const script = [
    'cd /ctx',
    'find . -mindepth 1 | while IFS= read -r p; do',
    '  if [ -L "$p" ]; then echo "l $(stat -c %a "$p") $p -> $(readlink "$p")";',
    '  elif [ -d "$p" ]; then echo "d $(stat -c %a "$p") $p";',
    '  else echo "f $(stat -c %a "$p") $p $(sha256sum < "$p" | cut -d" " -f1)"; fi',
    'done',
  ].join('\n');
  const { stdout } = await run(DOCKER, ['run', '--rm', '--network', 'none', image, 'sh', '-c', script], { env, maxBuffer: 16 << 20 });
  const out = new Map<string, string>();
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [type, mode, p, ...rest] = line.split(' ');
    // Names in this test have no spaces, so the fields split cleanly.
    out.set(p.replace(/^\.\//, ''), [type, mode, ...rest].join(' '));
  }
  return out;
}

/** What listContext promises COPY will see: the entries, the folders above them, minus what the engine drops. */
async function expectedTree(root: string, dockerfile: string, droppedByEngine: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await listContext(root, dockerfile)) {
    for (let i = e.path.indexOf('/'); i !== -1; i = e.path.indexOf('/', i + 1)) {
      const dir = e.path.slice(0, i);
      if (!out.has(dir)) out.set(dir, 'd'); // not sent, created by the engine when it unpacks what is below
    }
    if (droppedByEngine.includes(e.path)) continue;
    out.set(e.path, e.type === 'file' ? `f ${e.sha256}` : e.type === 'dir' ? 'd' : `l -> ${e.linkTarget}`);
  }
  return out;
}

/** The image's tree without modes, to compare with the listing (the CLI sends group-write bits, we do not). */
const withoutModes = (t: Map<string, string>): Map<string, string> =>
  new Map([...t].map(([p, v]) => { const [type, , ...rest] = v.split(' '); return [p, [type, ...rest].join(' ')]; }));

const sorted = (m: Map<string, string>): [string, string][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

describe('listContext matches what docker build sends (real engine)', () => {
  test('nested folders, ** patterns, exceptions, and a Dockerfile in an ignored folder', { timeout: 180_000 }, async () => {
    requireBusybox();
    const dockerfile = 'docker/Dockerfile';
    const root = await tree({
      [dockerfile]: DOCKERFILE,
      'docker/compose.yml': 'x',
      '.dockerignore': [
        '# build outputs and secrets',
        'dist',
        '**/*.log',
        '**/tmp',
        'node_modules',
        '!node_modules/keep-me',
        'secrets/*',
        '!secrets/public.txt',
        'docs/**/*.draft',
        'cache',
        '!cache/important/**',
        'docker',
        '!**/keep.txt',
        '.env',
        'notes.txt',
        '',
      ].join('\n'),
      'app/main.sh': 'echo main\n', 'app/lib/util.sh': 'true\n', 'app/debug.log': 'log', 'root.log': 'log',
      'app/tmp/scratch.txt': 'tmp', 'app/deep/er/tmp/x': 'tmp', 'app/deep/er/keep.txt': 'kept by its own name',
      'dist/bundle.js': 'js', 'dist/keep.txt': 'dist is not opened by a wildcard exception',
      'node_modules/left-pad/index.js': 'pad', 'node_modules/keep-me/index.js': 'keep', 'node_modules/keep-me/sub/x.js': 'x',
      'secrets/key.pem': 'private', 'secrets/public.txt': 'public',
      'docs/a/b/c.draft': 'draft', 'docs/a/readme.md': 'readme', 'docs/top.draft': 'top',
      'cache/junk.bin': 'junk', 'cache/important/data.txt': 'data', 'cache/important/more/deep.txt': 'deep',
      '.env': 'SECRET=1', 'Notes.TXT': 'case matters', 'notes.txt': 'ignored',
      'empty/': '',
    });
    await symlink('lib/util.sh', path.join(root, 'app/util-link'));

    const listed = await listContext(root, dockerfile);
    const paths = listed.map((e) => e.path);
    for (const p of ['dist/keep.txt', 'app/tmp/scratch.txt', 'secrets/key.pem', 'cache/junk.bin', 'docs/a/b/c.draft', '.env', 'notes.txt']) {
      assert.ok(!paths.includes(p), `${p} should be ignored`);
    }

    const fromFolder = await ctxTree(await buildFolder(root, dockerfile));
    // The engine deletes the Dockerfile from what COPY sees because .dockerignore names it (via `docker`), and
    // keeps the folder that held it; .dockerignore itself is not named, so COPY copies it.
    assert.deepEqual(sorted(withoutModes(fromFolder)), sorted(await expectedTree(root, dockerfile, [dockerfile])));

    const packed = await packContext(root, dockerfile, {});
    try {
      const fromArchive = await ctxTree(await buildArchive(packed.tarPath, dockerfile));
      assert.deepEqual(sorted(fromArchive), sorted(fromFolder));
    } finally {
      await packed.cleanup();
    }
  });

  test('an ignore-everything .dockerignore that names itself and the Dockerfile', { timeout: 180_000 }, async () => {
    requireBusybox();
    const root = await tree({
      'Dockerfile': DOCKERFILE,
      '.dockerignore': '*\n!busybox\n!src\nsrc/**/*.bak\n.dockerignore\nDockerfile\n',
      'src/a.txt': 'a', 'src/b/c.txt': 'c', 'src/b/c.bak': 'bak', 'other/x': 'x', 'top.txt': 't',
    });
    const fromFolder = await ctxTree(await buildFolder(root, 'Dockerfile'));
    // Both are sent (the build needs them) and both are deleted before COPY, since .dockerignore names them.
    assert.deepEqual(sorted(withoutModes(fromFolder)), sorted(await expectedTree(root, 'Dockerfile', ['Dockerfile', '.dockerignore'])));
    assert.ok(!fromFolder.has('src/b/c.bak') && fromFolder.has('src/b/c.txt'));

    const packed = await packContext(root, 'Dockerfile', {});
    try {
      assert.deepEqual(sorted(await ctxTree(await buildArchive(packed.tarPath, 'Dockerfile'))), sorted(fromFolder));
    } finally {
      await packed.cleanup();
    }
  });
});
