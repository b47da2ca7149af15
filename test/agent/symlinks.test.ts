// Symlinks travel as symlinks, whatever they point to, with both builders: what `readlink` says inside the
// built container, and that neither the client nor the agent read what the links point to.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../../agent/client/agentClient';
import { startRun } from '../../agent/client/startRun';
import { DockerEngine } from '../../agent/engine/dockerEngine';
import type { BuilderSetting } from '../../agent/build/builderChoice';
import { cleanup, makeContext, startTestAgent, tmpDir, type TestAgent } from './helpers';

const dirs: string[] = [];
const agents: TestAgent[] = [];
const clients: AgentClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  for (const a of agents) await a.close();
  cleanup(...dirs);
});

// Each builder with the context uploaded to the store, and read from the folder by the agent (the local path).
for (const builder of ['buildkit', 'legacy'] as const satisfies readonly BuilderSetting[]) for (const localContext of [false, true]) {
  test(`${builder}, ${localContext ? 'read from the folder' : 'uploaded'}: an absolute link and a link that climbs out build, and stay links in the image`, async () => {
    // A file outside the context that two links point to: its content must not reach the image or the agent.
    const outside = tmpDir('bytenite-outside-');
    dirs.push(outside);
    const marker = `outside-${randomBytes(12).toString('hex')}`;
    const target = path.join(outside, 'target.txt');
    writeFileSync(target, `${marker}\n`);

    const dir = makeContext({ 'venv/lib/site.py': 'print(1)\n' }, `COPY . /ctx\nLABEL test.uniq=${randomBytes(6).toString('hex')}\n`);
    dirs.push(dir);
    mkdirSync(path.join(dir, 'venv/bin'), { recursive: true });
    symlinkSync('/usr/bin/python3', path.join(dir, 'venv/bin/python')); // a virtualenv's link
    symlinkSync(target, path.join(dir, 'venv/bin/outside'));
    symlinkSync('../../etc/passwd', path.join(dir, 'up'));
    symlinkSync(path.relative(dir, target), path.join(dir, 'climbs'));
    symlinkSync('lib/site.py', path.join(dir, 'venv/site.py'));

    const sent: { source: string; bytes: number }[] = [];
    const engine = new DockerEngine(undefined, { hotPool: 0, builder, onSent: (source, s) => sent.push({ source, bytes: s.bytes }) });
    const agent = await startTestAgent({ engine });
    agents.push(agent);
    const client = await AgentClient.connect(agent.url, { token: agent.token });
    clients.push(client);

    let out = '';
    let image = '';
    const links = ['/ctx/venv/bin/python', '/ctx/venv/bin/outside', '/ctx/up', '/ctx/climbs', '/ctx/venv/site.py'];
    const r = await startRun(client, {
      contextDir: dir, dockerfile: path.join(dir, 'Dockerfile'), hardware: { cpus: 0.5, memoryMiB: 64 }, localContext,
      command: ['sh', '-c', `for l in ${links.join(' ')}; do [ -L "$l" ] && readlink "$l"; done; cat /ctx/venv/site.py`],
      onEvent: (_s, e) => {
        if (e.kind === 'log' && e.stream === 'stdout') out += e.data;
        if (e.kind === 'starting') image = e.image;
      },
    });
    const final = await r.done;
    assert.equal(final.exitCode, 0, JSON.stringify(final));
    assert.equal(final.builder, builder);
    assert.equal(r.localContext, localContext);
    assert.equal(out, ['/usr/bin/python3', target, '../../etc/passwd', path.relative(dir, target), 'lib/site.py', 'print(1)', ''].join('\n'));

    const saved = execFileSync('/usr/bin/docker', ['save', image], { maxBuffer: 1 << 30 });
    assert.equal(saved.includes(Buffer.from(marker)), false, 'what the links point to is not in the image');
    assert.equal(spawnSync('grep', ['-rlF', marker, agent.dataDir]).stdout.toString(), '', 'nor in the agent\'s store');
    if (builder === 'buildkit') {
      const bytes = sent.filter((s) => s.source === 'context').reduce((n, s) => n + s.bytes, 0);
      const files = execFileSync('sh', ['-c', `cat ${dir}/busybox ${dir}/Dockerfile ${dir}/venv/lib/site.py | wc -c`]).toString().trim();
      assert.equal(bytes, Number(files), 'the engine got the files\' contents and nothing through a link');
    }
  });
}
