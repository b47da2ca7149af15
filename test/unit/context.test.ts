// The build context as a client and an agent see it: what .dockerignore lets through, the digest that names it
// for warm starts, the archive round trip, and the archives an agent must refuse.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Header, list, type ReadEntry } from 'tar';
import { BadContextError, checkContext, checkDockerfilePath } from '../../agent/context/checkContext';
import { contextDigest } from '../../agent/context/digest';
import { listContext } from '../../agent/context/listContext';
import { listForBuild, packContext } from '../../agent/context/packContext';

const scratch: string[] = [];
after(async () => {
  await Promise.all(scratch.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'bytenite-context-test-'));
  scratch.push(d);
  return d;
}

/** Files as `path: content`; a path ending in `/` is an empty folder. */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await tempDir();
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    if (rel.endsWith('/')) {
      await mkdir(abs, { recursive: true });
    } else {
      await mkdir(path.dirname(abs), { recursive: true });
      await writeFile(abs, content);
      await chmod(abs, 0o644);
    }
  }
  return root;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

async function listed(root: string, dockerfile = 'Dockerfile'): Promise<string[]> {
  return (await listContext(root, dockerfile)).map((e) => e.path);
}

describe('listContext applies .dockerignore as docker build does', () => {
  test('plain patterns match from the context root only; comments and blank lines are skipped', async () => {
    const root = await tree({
      'Dockerfile': 'FROM scratch\n',
      '.dockerignore': '# outputs\n\n*.log\nbuild\n/secret.txt\n',
      'app.log': '', 'src/app.log': '', 'src/main.c': '', 'build/out.o': '', 'secret.txt': '', 'keep.txt': '',
    });
    assert.deepEqual(await listed(root), ['.dockerignore', 'Dockerfile', 'keep.txt', 'src', 'src/app.log', 'src/main.c']);
  });

  test('** matches at any depth', async () => {
    const root = await tree({
      'Dockerfile': '',
      '.dockerignore': '**/*.log\n**/node_modules\ndocs/**/*.draft\n',
      'a.log': '', 'x/y/z.log': '', 'x/y/z.txt': '', 'node_modules/m/i.js': '', 'pkg/node_modules/m/i.js': '',
      'docs/a/b/c.draft': '', 'docs/a/readme.md': '', 'docs/top.draft': '',
    });
    assert.deepEqual(await listed(root), [
      '.dockerignore', 'Dockerfile', 'docs', 'docs/a', 'docs/a/b', 'docs/a/readme.md', 'pkg', 'x', 'x/y', 'x/y/z.txt',
    ]);
  });

  test('! exceptions re-include files under an ignored folder, without sending the folder itself', async () => {
    const root = await tree({
      'Dockerfile': '',
      '.dockerignore': 'vendor\n!vendor/lib/keep.txt\nsecrets/*\n!secrets/public.txt\n',
      'vendor/lib/keep.txt': 'k', 'vendor/lib/drop.txt': '', 'vendor/other/x': '',
      'secrets/key.pem': '', 'secrets/public.txt': '',
    });
    assert.deepEqual(await listed(root), ['.dockerignore', 'Dockerfile', 'secrets', 'secrets/public.txt', 'vendor/lib/keep.txt']);
  });

  test('a wildcard exception does not open an ignored folder, as with docker build', async () => {
    const root = await tree({
      'Dockerfile': '', '.dockerignore': 'logs\n*.txt\n!**/keep.txt\n', 'logs/keep.txt': '', 'keep.txt': '', 'other.txt': '',
    });
    assert.deepEqual(await listed(root), ['.dockerignore', 'Dockerfile', 'keep.txt']);
  });

  test('the Dockerfile and .dockerignore are sent even when ignored, also from an ignored folder', async () => {
    const root = await tree({ 'Dockerfile': '', '.dockerignore': '*\n', 'a.txt': '', 'sub/b.txt': '' });
    assert.deepEqual(await listed(root), ['.dockerignore', 'Dockerfile']);

    const nested = await tree({ 'docker/Dockerfile': '', 'docker/other': '', '.dockerignore': 'docker\n.dockerignore\n', 'x': '' });
    assert.deepEqual(await listed(nested, 'docker/Dockerfile'), ['.dockerignore', 'docker/Dockerfile', 'x']);
  });

  test('patterns are case-sensitive, as docker matches them on Linux', async () => {
    const root = await tree({ 'Dockerfile': '', '.dockerignore': 'notes.txt\n', 'Notes.TXT': '', 'notes.txt': '' });
    assert.deepEqual(await listed(root), ['.dockerignore', 'Dockerfile', 'Notes.TXT']);
  });

  test('a ** pattern still drops files under a folder an exception opened (the 20.10 CLI would send them)', async () => {
    const root = await tree({
      'Dockerfile': '', '.dockerignore': '**/cache\n!a/b/cache/keep\n', 'a/b/cache/keep': '', 'a/b/cache/keep2': '', 'a/b/cache/deep/f': '',
    });
    assert.deepEqual(await listed(root), ['.dockerignore', 'Dockerfile', 'a', 'a/b', 'a/b/cache/keep']);
  });

  test('FIFOs are left out: no image can hold one', async () => {
    const root = await tree({ 'Dockerfile': '' });
    execFileSync('mkfifo', [path.join(root, 'pipe')]);
    assert.deepEqual(await listed(root), ['Dockerfile']);
  });

  test('entries carry type, mode, size, content hash and link target', async () => {
    const root = await tree({ 'Dockerfile': 'FROM scratch\n', 'bin/run': '#!/bin/sh\n' });
    await chmod(path.join(root, 'bin/run'), 0o775);
    await symlink('bin/run', path.join(root, 'run'));
    const entries = await listContext(root, 'Dockerfile');
    for (const e of entries) assert.ok(Number.isInteger(e.mtime) && e.mtime! > 0, `${e.path} has an mtime`);
    const listed = (p: string) => {
      const { mtime: _mtime, ...rest } = entries.find((e) => e.path === p)!;
      return rest;
    };
    assert.deepEqual(listed('bin/run'), {
      // group write is dropped, as in the archive (node-tar portable mode)
      type: 'file', path: 'bin/run', mode: 0o755, size: 10, sha256: sha256('#!/bin/sh\n'),
    });
    assert.deepEqual(listed('run'), { type: 'symlink', path: 'run', mode: 0o755, size: 0, linkTarget: 'bin/run' });
    assert.deepEqual(listed('bin'), { type: 'dir', path: 'bin', mode: 0o755, size: 0 });
  });
});

describe('contextDigest', () => {
  const files = { 'Dockerfile': 'FROM scratch\nCOPY . /app\n', 'src/main.sh': 'echo hi\n', 'src/lib/util.sh': 'true\n' };
  const digestOf = async (root: string, dockerfile = 'Dockerfile', args: Record<string, string> = {}): Promise<string> =>
    contextDigest(await listContext(root, dockerfile), dockerfile, args);

  test('the same tree gives the same digest, whatever the file times or the folder it is in', async () => {
    const a = await tree(files);
    const b = await tree(files);
    await utimes(path.join(b, 'src/main.sh'), new Date(2001, 0, 1), new Date(2001, 0, 1));
    assert.equal(await digestOf(a), await digestOf(b));
    assert.match(await digestOf(a), /^[a-f0-9]{64}$/);
  });

  test('a changed byte, mode, build argument or Dockerfile path gives another digest', async () => {
    const root = await tree({ ...files, 'Dockerfile.dev': 'FROM scratch\n' });
    const base = await digestOf(root, 'Dockerfile', { A: '1' });
    assert.equal(await digestOf(root, 'Dockerfile', { A: '1' }), base);
    assert.equal(await digestOf(root, './Dockerfile', { A: '1' }), base, 'the same Dockerfile spelt differently');

    assert.notEqual(await digestOf(root, 'Dockerfile', { A: '2' }), base);
    assert.notEqual(await digestOf(root, 'Dockerfile', { A: '1', B: '' }), base);
    assert.notEqual(await digestOf(root, 'Dockerfile', {}), base);
    assert.notEqual(await digestOf(root, 'Dockerfile.dev', { A: '1' }), base);

    await writeFile(path.join(root, 'src/main.sh'), 'echo ho\n');
    const changedByte = await digestOf(root, 'Dockerfile', { A: '1' });
    assert.notEqual(changedByte, base);
    await chmod(path.join(root, 'src/main.sh'), 0o755);
    assert.notEqual(await digestOf(root, 'Dockerfile', { A: '1' }), changedByte);
  });

  test('build arguments are taken in name order, and values cannot pose as other records', () => {
    const entries = [{ type: 'file' as const, path: 'Dockerfile', mode: 0o644, size: 0, sha256: sha256('') }];
    assert.equal(contextDigest(entries, 'Dockerfile', { A: '1', B: '2' }), contextDigest(entries, 'Dockerfile', { B: '2', A: '1' }));
    assert.notEqual(
      contextDigest(entries, 'Dockerfile', { A: '1"]\n["arg","B","2' }),
      contextDigest(entries, 'Dockerfile', { A: '1', B: '2' }),
    );
    assert.equal(contextDigest([...entries].reverse(), 'Dockerfile', {}), contextDigest(entries, 'Dockerfile', {}));
  });
});

describe('packContext and checkContext', () => {
  test('pack then check gives the same digest, file count and size', async () => {
    const root = await tree({
      '.dockerignore': '*.tmp\ncache\n!cache/keep\n',
      'build/Dockerfile': 'FROM scratch\n', 'src/a.txt': 'a'.repeat(70_000), 'src/deep/b.txt': 'b', '@at-sign': 'not an archive',
      'scratch.tmp': '', 'cache/keep': 'k', 'cache/drop': '', 'empty/': '',
    });
    await chmod(path.join(root, 'src/a.txt'), 0o664);
    await chmod(path.join(root, 'empty'), 0o700);
    await symlink('../src/a.txt', path.join(root, 'build/a-link'));
    await link(path.join(root, 'src/deep/b.txt'), path.join(root, 'src/b-hardlink'));

    const args = { VERSION: '1.2.3' };
    const packed = await packContext(root, 'build/Dockerfile', args);
    try {
      const types = new Map<string, string>();
      await list({ file: packed.tarPath, onReadEntry: (e: ReadEntry) => { types.set(e.path, e.type); } });
      assert.equal(types.get('src/deep/b.txt'), 'Link', 'the second name of a hard-linked file travels as a link');
      assert.equal(types.get('@at-sign'), 'File');
      assert.ok(!types.has('cache/drop') && !types.has('cache/') && types.has('cache/keep'));

      const checked = await checkContext(packed.tarPath, 'build/Dockerfile', args);
      assert.deepEqual(checked, { digest: packed.digest, files: packed.files, bytes: packed.bytes });
      assert.equal(packed.files, 7); // .dockerignore, Dockerfile, a.txt, b.txt, b-hardlink, @at-sign, cache/keep
      assert.equal(packed.digest, contextDigest(await listContext(root, 'build/Dockerfile'), 'build/Dockerfile', args));
      assert.notEqual((await checkContext(packed.tarPath, 'build/Dockerfile', {})).digest, packed.digest);
    } finally {
      await packed.cleanup();
    }
  });

  test('packContext refuses a Dockerfile that is not a file inside the context', async () => {
    const root = await tree({ 'Dockerfile': '', 'sub/': '' });
    await assert.rejects(packContext(root, '/etc/Dockerfile', {}), /absolute/);
    await assert.rejects(packContext(root, '../Dockerfile', {}), /out of the context folder/);
    await assert.rejects(packContext(root, 'Missing.Dockerfile', {}), /"Missing.Dockerfile" does not exist/);
    await assert.rejects(packContext(root, 'sub', {}), /"sub" .* is a folder/);
    await assert.rejects(packContext(root, '', {}), /empty/);
  });

  test('packContext lists a link that points out of the context as a link, and reads nothing through it', async () => {
    const root = await tree({ 'Dockerfile': '' });
    await symlink('/etc/shadow', path.join(root, 'shadow')); // unreadable to a user: following it would fail
    await symlink('../../etc/passwd', path.join(root, 'up'));
    const listed = await listForBuild(root, 'Dockerfile', {});
    assert.deepEqual(listed.entries.filter((e) => e.type === 'symlink').map((e) => [e.path, e.type === 'symlink' && e.linkTarget]),
      [['shadow', '/etc/shadow'], ['up', '../../etc/passwd']]);
    assert.equal(listed.bytes, 0);
  });

  test('checkDockerfilePath', () => {
    for (const ok of ['Dockerfile', './Dockerfile', 'a/b/Dockerfile', 'a/../Dockerfile']) assert.equal(checkDockerfilePath(ok), undefined, ok);
    assert.match(checkDockerfilePath('') ?? '', /empty/);
    assert.match(checkDockerfilePath('/Dockerfile') ?? '', /absolute/);
    assert.match(checkDockerfilePath('C:\\ctx\\Dockerfile') ?? '', /absolute/);
    assert.match(checkDockerfilePath('../Dockerfile') ?? '', /out of the context/);
    assert.match(checkDockerfilePath('a/../../Dockerfile') ?? '', /out of the context/);
    assert.match(checkDockerfilePath('Docker\0file') ?? '', /NUL/);
    assert.match(checkDockerfilePath('.') ?? '', /context folder itself/);
  });
});

describe('checkContext refuses archives that could write outside the context', () => {
  type Item = { path: string; type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO'; body?: string; linkpath?: string };

  /** A tar written header by header, so it can hold what no honest packer writes. */
  async function tarOf(items: Item[]): Promise<string> {
    const blocks: Buffer[] = [];
    for (const item of items) {
      const body = Buffer.from(item.body ?? '');
      const block = Buffer.alloc(512);
      new Header({
        path: item.path, type: item.type ?? 'File', size: body.length, mode: item.type === 'Directory' ? 0o755 : 0o644,
        linkpath: item.linkpath, mtime: new Date(0), uid: 0, gid: 0,
      }).encode(block, 0);
      blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
    blocks.push(Buffer.alloc(1024));
    const file = path.join(await tempDir(), 'context.tar');
    await writeFile(file, Buffer.concat(blocks));
    return file;
  }

  const dockerfile: Item = { path: 'Dockerfile', body: 'FROM scratch\n' };

  async function refused(items: Item[], message: RegExp, entry?: string): Promise<void> {
    const file = await tarOf(items);
    await assert.rejects(checkContext(file, 'Dockerfile', {}), (err: unknown) => {
      assert.ok(err instanceof BadContextError, `expected a BadContextError, got ${String(err)}`);
      assert.match(err.message, message);
      if (entry !== undefined) assert.equal(err.entry, entry);
      return true;
    });
  }

  test('a well-formed archive from another packer passes, with ./ prefixes and a root entry', async () => {
    const file = await tarOf([
      { path: './', type: 'Directory' }, { path: './Dockerfile', body: 'FROM scratch\n' }, { path: './a/', type: 'Directory' },
      { path: './a/b.txt', body: 'b' }, { path: 'a/up', type: 'SymbolicLink', linkpath: '../Dockerfile' },
      { path: 'a/same', type: 'Link', linkpath: 'a/b.txt' },
    ]);
    const checked = await checkContext(file, 'Dockerfile', {});
    assert.equal(checked.files, 3);
    assert.equal(checked.digest, contextDigest([
      { type: 'file', path: 'Dockerfile', mode: 0o644, size: 13, sha256: sha256('FROM scratch\n') },
      { type: 'dir', path: 'a', mode: 0o755, size: 0 },
      { type: 'file', path: 'a/b.txt', mode: 0o644, size: 1, sha256: sha256('b') },
      { type: 'symlink', path: 'a/up', mode: 0o644, size: 0, linkTarget: '../Dockerfile' },
      { type: 'file', path: 'a/same', mode: 0o644, size: 1, sha256: sha256('b') },
    ], 'Dockerfile', {}));
  });

  test('absolute paths', () => refused([dockerfile, { path: '/etc/cron.d/job', body: 'x' }], /"\/etc\/cron.d\/job" .*absolute path/, '/etc/cron.d/job'));

  test('.. segments that escape', async () => {
    await refused([dockerfile, { path: '../outside', body: 'x' }], /"..\/outside" .*leads out of the context/, '../outside');
    await refused([dockerfile, { path: 'a/../../outside', body: 'x' }], /"a\/..\/..\/outside" .*leads out/);
  });

  test('symlinks pass whatever they point to, and count in the digest as links', async () => {
    const file = await tarOf([
      dockerfile, { path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'a/', type: 'Directory' },
      { path: 'a/up', type: 'SymbolicLink', linkpath: '../../x' }, { path: 'd/', type: 'Directory' },
      { path: 'd/x', type: 'SymbolicLink', linkpath: '..' }, { path: 'sneaky', type: 'SymbolicLink', linkpath: 'd/x/..' },
    ]);
    const checked = await checkContext(file, 'Dockerfile', {});
    assert.equal(checked.files, 1);
    assert.equal(checked.digest, contextDigest([
      { type: 'file', path: 'Dockerfile', mode: 0o644, size: 13, sha256: sha256('FROM scratch\n') },
      { type: 'symlink', path: 'etc', mode: 0o644, size: 0, linkTarget: '/etc' },
      { type: 'dir', path: 'a', mode: 0o755, size: 0 },
      { type: 'symlink', path: 'a/up', mode: 0o644, size: 0, linkTarget: '../../x' },
      { type: 'dir', path: 'd', mode: 0o755, size: 0 },
      { type: 'symlink', path: 'd/x', mode: 0o644, size: 0, linkTarget: '..' },
      { type: 'symlink', path: 'sneaky', mode: 0o644, size: 0, linkTarget: 'd/x/..' },
    ], 'Dockerfile', {}));
    // What could reach outside is an entry written through a link: that is still refused.
    await refused([dockerfile, { path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'etc/cron.d/job', body: 'x' }],
      /"etc\/cron.d\/job" .*under "etc", which is a symlink/, 'etc/cron.d/job');
  });

  test('hard links that point out of the context or at nothing sent', async () => {
    await refused([dockerfile, { path: 'shadow', type: 'Link', linkpath: '/etc/shadow' }], /"shadow" .*hard link that points out of the build context/, 'shadow');
    await refused([dockerfile, { path: 'up', type: 'Link', linkpath: '../x' }], /"up" .*hard link that points out/, 'up');
    await refused([dockerfile, { path: 'h', type: 'Link', linkpath: 'later' }, { path: 'later', body: 'x' }], /"h" .*not a file earlier in the archive/, 'h');
  });

  test('devices and FIFOs', async () => {
    await refused([dockerfile, { path: 'dev/null', type: 'CharacterDevice' }], /"dev\/null" .*is a device/, 'dev/null');
    await refused([dockerfile, { path: 'disk', type: 'BlockDevice' }], /"disk" .*is a device/, 'disk');
    await refused([dockerfile, { path: 'pipe', type: 'FIFO' }], /"pipe" .*is a FIFO/, 'pipe');
  });

  test('entries written through a symlink, and paths sent twice', async () => {
    await refused([dockerfile, { path: 's', type: 'SymbolicLink', linkpath: 'real' }, { path: 's/x', body: 'x' }], /"s\/x" .*under "s", which is a symlink/, 's/x');
    await refused([dockerfile, { path: 'a', body: '1' }, { path: './a', body: '2' }], /holds "a" twice/, 'a');
  });

  test('a Dockerfile that is not in the archive', async () => {
    await refused([{ path: 'src/main.c', body: '' }], /The Dockerfile "Dockerfile" is not in the context archive/, 'Dockerfile');
    await refused([{ path: 'Dockerfile/', type: 'Directory' }], /The Dockerfile "Dockerfile" is a directory/);
  });

  test('something that is not a tar archive', async () => {
    const file = path.join(await tempDir(), 'junk.tar');
    await writeFile(file, 'this is not a tar file, just text. '.repeat(40));
    await assert.rejects(checkContext(file, 'Dockerfile', {}), (err: unknown) => err instanceof BadContextError && /not a readable tar/.test(err.message));
  });
});
