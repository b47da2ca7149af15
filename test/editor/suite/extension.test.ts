/**
 * Extension-host tests: the real extension in a real VS Code, with the real local agent and Docker Engine.
 * What a user or a client can observe: activation, CodeLens titles, commands, picker items from the
 * agent's live catalog, and a whole run started by command.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Cron } from 'croner';
import type { ByteNiteApi } from '../../../extension/main';
import { notes } from './index';

const EXTENSION_ID = 'bytenite.bytenite';
/**
 * A shell's prompt at the end of the output. busybox's ash then asks the terminal where the cursor is
 * (ESC [6n) and, answered, draws the prompt again and clears the rest (ESC [J).
 */
const PROMPT = /[#$] (\x1b\[6n|\x1b\[J)?$/;

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function workspaceUri(...parts: string[]): vscode.Uri {
  return vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0].uri, ...parts);
}

async function lensTitles(uri: vscode.Uri): Promise<string[]> {
  const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri, 10);
  return (lenses ?? []).map((l) => l.command?.title ?? '').filter(Boolean);
}

describe('ByteNite extension', () => {
  let api: ByteNiteApi;
  let ext: vscode.Extension<ByteNiteApi>;
  /** The labelled run, finished; the agent's journal keeps it. */
  let labelledRunId: string | undefined;

  before(async () => {
    ext = vscode.extensions.getExtension<ByteNiteApi>(EXTENSION_ID)!;
    assert.ok(ext, `extension ${EXTENSION_ID} is installed`);
    const t0 = Date.now();
    api = await ext.activate();
    notes.activateCallMs = Date.now() - t0;
    notes.activationMs = api.activationMs;
  });

  it('activates on a workspace with a Dockerfile, quickly', () => {
    assert.equal(ext.isActive, true);
    assert.ok(api.activationMs < 500, `activate() took ${api.activationMs} ms`);
  });

  it('registers every command it contributes, all in the ByteNite category', async () => {
    const contributed = (ext.packageJSON.contributes.commands as { command: string; category: string }[]);
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const c of contributed) {
      assert.ok(registered.has(c.command), `${c.command} is registered`);
      assert.equal(c.category, 'ByteNite', `${c.command} has category ByteNite`);
    }
    for (const id of ['runDockerfile', 'runAgain', 'stopRun', 'chooseHardware', 'selectAgent', 'addRemoteAgent',
      'setAgentToken', 'showRuns', 'startLocalAgent', 'stopLocalAgent', 'showOutput']) {
      assert.ok(registered.has(`bytenite.${id}`), `bytenite.${id} is registered`);
    }
  });

  it('finds Dockerfiles by name, keeps the list current, and honours search.exclude', async () => {
    const has = async (p: string) => (await api.dockerfiles()).includes(p);
    assert.deepEqual(await api.dockerfiles(), ['Dockerfile', 'labelled/Dockerfile', 'many/Dockerfile', 'slow/Dockerfile', 'watched/Dockerfile', 'web/Dockerfile']);
    const extra = workspaceUri('extra', 'app.Dockerfile');
    await vscode.workspace.fs.writeFile(extra, Buffer.from('FROM scratch\n'));
    await until('a new Dockerfile to be found', async () => (await has('extra/app.Dockerfile')) || undefined, 45_000)
      .catch(async (err) => {
        const direct = await vscode.workspace.findFiles('**/*.Dockerfile');
        throw new Error(`${err.message}; index: ${await api.dockerfiles()}; findFiles: ${direct.map((u) => u.path)}`);
      });
    const search = vscode.workspace.getConfiguration('search');
    await search.update('exclude', { '**/slow': true }, vscode.ConfigurationTarget.Workspace);
    try {
      await until('slow/ to be excluded', async () => (!(await has('slow/Dockerfile'))) || undefined, 20_000);
    } finally {
      await search.update('exclude', undefined, vscode.ConfigurationTarget.Workspace);
    }
    await until('slow/ to be back', async () => (await has('slow/Dockerfile')) || undefined, 20_000);
    await vscode.workspace.fs.delete(vscode.Uri.joinPath(extra, '..'), { recursive: true });
    await until('the deleted Dockerfile to go', async () => (!(await has('extra/app.Dockerfile'))) || undefined, 20_000);
  });

  it('shows Run on ByteNite and the hardware with its price above the first FROM', async () => {
    const uri = workspaceUri('Dockerfile');
    await vscode.window.showTextDocument(uri);
    const titles = await until('lenses with a price', async () => {
      const t = await lensTitles(uri);
      return t.some((x) => /\$[\d.]+\/h$/.test(x)) ? t : undefined;
    });
    assert.ok(titles[0].startsWith('Run on ByteNite'), `first lens: ${titles[0]}`);
    assert.match(titles[1], /^\d+(\.\d+)? vCPU · [\d.]+ (GiB|MiB) · \$[\d.]+\/h$/);
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri);
    // The Dockerfile starts with a comment: the lens sits on the FROM line (line 2, zero-based 1).
    assert.equal(lenses[0].range.start.line, 1);
  });

  it('takes hardware defaults from LABEL bytenite.* in the Dockerfile', async () => {
    const uri = workspaceUri('labelled', 'Dockerfile');
    await vscode.workspace.openTextDocument(uri);
    const titles = await until('labelled lenses', async () => {
      const t = await lensTitles(uri);
      return t.some((x) => x.includes('vCPU') && x.includes('/h')) ? t : undefined;
    });
    assert.ok(titles.some((t) => t.startsWith('1 vCPU · 512 MiB · $')), titles.join(' | '));
  });

  it('hides the CodeLens when bytenite.codeLens.enabled is off', async () => {
    const uri = workspaceUri('Dockerfile');
    const cfg = vscode.workspace.getConfiguration('bytenite');
    await cfg.update('codeLens.enabled', false, vscode.ConfigurationTarget.Workspace);
    try {
      await until('no lenses', async () => ((await lensTitles(uri)).length === 0) || undefined, 10_000);
    } finally {
      await cfg.update('codeLens.enabled', undefined, vscode.ConfigurationTarget.Workspace);
    }
    await until('lenses back', async () => ((await lensTitles(uri))[0]?.startsWith('Run on ByteNite')) || undefined, 10_000);
  });

  it('builds picker items from the agent\'s live catalog', async () => {
    const cli = path.join(ext.extensionPath, 'dist', 'bytenite.js');
    const catalog = JSON.parse(execFileSync(process.execPath, [cli, 'hardware', '--json'], {
      encoding: 'utf8', env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    }));
    const live = await api.catalog();
    assert.deepEqual(live.cpuOptions, catalog.cpuOptions);
    const labels = await api.pickerLabels();
    assert.deepEqual(labels.cpus, live.cpuOptions.map((c: number) => `${c} vCPU`));
    assert.equal(labels.memory.length, live.memoryOptionsMiB.length);
    assert.equal(labels.gpu[0], 'No GPU');
    assert.equal(labels.gpu.length, 1 + live.gpuOptions.reduce((n: number, g: { counts: number[] }) => n + g.counts.length, 0));
  });

  it('runs a Dockerfile by command to exit code 0, with its log lines and a cost', async () => {
    const uri = workspaceUri('labelled', 'Dockerfile');
    const t0 = Date.now();
    const runId = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', uri);
    assert.match(runId ?? '', /^r-/, 'the command returns the run id');
    labelledRunId = runId;
    const run = await until('the final event', () => {
      const r = api.run(runId);
      return r?.final ? r : undefined;
    }, 150_000);
    notes.runMs = Date.now() - t0;
    const final = run.final as { kind: string; exitCode: number; cost: { total: number; currency: string; billedMs: number } };
    assert.equal(final.kind, 'exited');
    assert.equal(final.exitCode, 0);
    const text = run.logs.join('');
    assert.match(text, /labelled run says hi/);
    assert.match(text, /an error line/);
    assert.equal(final.cost.currency, 'USD');
    assert.ok(final.cost.billedMs >= 1000 && final.cost.total > 0, `cost ${JSON.stringify(final.cost)}`);
    await until('the run panel tab', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
      .find((t) => t.input instanceof vscode.TabInputWebview && t.label.includes('labelled/Dockerfile')), 20_000);
  });

  it('Run Again shows the new run in the finished run\'s panel rather than opening another', async () => {
    assert.ok(labelledRunId, 'the labelled run ran');
    const panels = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
      .filter((t) => t.input instanceof vscode.TabInputWebview && t.label.includes('labelled/Dockerfile'));
    assert.equal(panels().length, 1);
    const again = await vscode.commands.executeCommand<string>('bytenite.runAgain', labelledRunId);
    assert.match(again ?? '', /^r-/);
    assert.notEqual(again, labelledRunId);
    const run = await until('the repeated run\'s final event', () => (api.run(again)?.final ? api.run(again) : undefined), 150_000);
    assert.equal((run.final as { exitCode: number }).exitCode, 0);
    assert.equal(panels().length, 1, 'one panel for the Dockerfile, now showing the new run');
  });

  it('fans a run out into 2 tasks: each task\'s log lines arrive with its index, and the final has 2 tasks', async () => {
    const uri = workspaceUri('labelled', 'Dockerfile');
    await api.setParallel(uri, 2);
    try {
      const runId = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', uri);
      assert.match(runId ?? '', /^r-/);
      const run = await until('the final event', () => (api.run(runId)?.final ? api.run(runId) : undefined), 150_000);
      const final = run.final as { kind: string; exitCode: number; tasks?: { index: number; exitCode: number | null }[] };
      assert.equal(final.kind, 'exited');
      assert.deepEqual(final.tasks?.map((t) => [t.index, t.exitCode]), [[0, 0], [1, 0]]);
      for (const task of [0, 1]) {
        const text = run.logEvents.filter((e) => e.task === task).map((e) => e.data).join('');
        assert.match(text, /labelled run says hi/, `task ${task}'s log: ${JSON.stringify(text)}`);
      }
      assert.ok(run.logEvents.every((e) => e.task === 0 || e.task === 1 || e.stream === 'build'), 'every container line names its task');
    } finally {
      await api.setParallel(uri, 1);
    }
  });

  it('schedules a Dockerfile by command: the sidebar lists it with its next time; Pause/Resume; Run now starts a run listed under it that opens its panel; Remove removes it', async () => {
    const uri = workspaceUri('labelled', 'Dockerfile');
    const name = `editor-${Date.now() % 1_000_000}`;
    const t0 = Date.now();
    // The command's second argument answers its prompts (name, times, zone, rules, hardware), as the tests of the other pickers do.
    const added = await vscode.commands.executeCommand<{ name: string; next: string[] } | undefined>('bytenite.scheduleDockerfile', uri, {
      name, cron: '0 2 * * *', timezone: 'Europe/Berlin', overlap: 'skip', catchUp: 'once', hardware: { cpus: 1, memoryMiB: 512 },
    });
    notes.scheduleAddMs = Date.now() - t0;
    assert.equal(added?.name, name, 'the command returns the schedule');
    const expected = new Cron('0 2 * * *', { timezone: 'Europe/Berlin', paused: true }).nextRun()!.toISOString();
    const row = await until('the schedule in the sidebar', async () => (await api.scheduleRows())?.find((s) => s.name === name), 20_000);
    assert.equal(row.next[0], expected, 'its next time, as croner reads "0 2 * * *" in Europe/Berlin');
    assert.equal(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(new Date(row.next[0])), '02:00');
    assert.deepEqual([row.cron, row.timezone, row.paused, row.runCount, row.last], ['0 2 * * *', 'Europe/Berlin', false, 0, undefined]);

    await vscode.commands.executeCommand('bytenite.pauseSchedule', name);
    const paused = await until('paused in the sidebar', async () => (await api.scheduleRows())?.find((s) => s.name === name && s.paused), 10_000);
    assert.deepEqual(paused.next, [], 'no next time while paused');
    await vscode.commands.executeCommand('bytenite.resumeSchedule', name);
    await until('resumed in the sidebar', async () => (await api.scheduleRows())?.find((s) => s.name === name && !s.paused && s.next[0] === expected), 10_000);

    const runId = await vscode.commands.executeCommand<string | undefined>('bytenite.runSchedule', name);
    assert.match(runId ?? '', /^r-/, 'Run now returns the run it started');
    const ran = await until('the run under its schedule, ended', async () => {
      const s = (await api.scheduleRows())?.find((x) => x.name === name);
      const r = s?.runs.find((x) => x.runId === runId);
      return r?.state === 'exited' && s?.last?.result === 'exited' ? { s, r } : undefined;
    }, 60_000);
    assert.equal(ran.r.name, `schedule ${name}`);
    assert.equal(ran.r.exitCode, 0);
    assert.equal(ran.s.last?.runId, runId);
    assert.equal(ran.s.runCount, 1);
    assert.ok((await api.runRows()).some((r) => r.runId === runId), 'the run is in the run history too');
    await vscode.commands.executeCommand('bytenite.openRun', runId);
    const run = await until('the scheduled run replayed in its panel', () => (api.run(runId!)?.final ? api.run(runId!) : undefined), 30_000);
    assert.match(run.logs.join(''), /labelled run says hi/);
    await until('its panel tab', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
      .find((t) => t.input instanceof vscode.TabInputWebview && t.label.includes(`schedule ${name}`)), 20_000);

    assert.equal(await vscode.commands.executeCommand('bytenite.removeSchedule', name, true), true);
    await until('the schedule gone from the sidebar', async () => ((await api.scheduleRows())?.some((s) => s.name === name) === false) || undefined, 10_000);
  });

  it('mounts the volume chosen in the volume step: a file one run writes the next reads; the sidebar lists the volume with its size; Remove removes it', async () => {
    const uri = workspaceUri('vol', 'Dockerfile');
    const volume = `editor-vol-${Date.now() % 1_000_000}`;
    fs.mkdirSync(path.dirname(uri.fsPath), { recursive: true });
    fs.copyFileSync(workspaceUri('labelled', 'busybox').fsPath, workspaceUri('vol', 'busybox').fsPath);
    await vscode.workspace.fs.writeFile(uri, Buffer.from([
      'FROM scratch', 'LABEL bytenite.cpus=0.5 bytenite.memory=256m', 'COPY busybox /bin/busybox',
      'RUN ["/bin/busybox", "--install", "-s", "/bin"]', 'ENV PATH=/bin',
      `CMD ["sh", "-c", "if [ -f /data/note ]; then echo \\"read: $(cat /data/note)\\"; else echo no note yet; fi; dd if=/dev/zero of=/data/blob bs=1024 count=64 2>/dev/null; echo $HOSTNAME > /data/note"]`, '',
    ].join('\n')));
    try {
      // The volume step's answer, as ByteNite: Choose Volumes takes it (the `-v` syntax the step accepts typed).
      const mounts = await vscode.commands.executeCommand<{ name: string; path: string }[]>('bytenite.chooseVolumes', uri, [`${volume}:/data`]);
      assert.deepEqual(mounts?.map((m) => `${m.name}:${m.path}`), [`${volume}:/data`]);
      await vscode.workspace.openTextDocument(uri);
      await until('the volume in the CodeLens', async () => (await lensTitles(uri)).includes(`$(database) ${volume}:/data`) || undefined, 10_000);
      const first = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', uri);
      const r1 = await until('the first run', () => (api.run(first)?.final ? api.run(first) : undefined), 150_000);
      assert.equal((r1.final as { exitCode: number }).exitCode, 0, JSON.stringify(r1.final));
      const out1 = r1.logEvents.filter((e) => e.stream === 'stdout').map((e) => e.data).join('');
      assert.equal(out1, 'no note yet\n');
      const second = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', uri);
      const r2 = await until('the second run', () => (api.run(second)?.final ? api.run(second) : undefined), 150_000);
      const out2 = r2.logEvents.filter((e) => e.stream === 'stdout').map((e) => e.data).join('');
      assert.match(out2, /^read: \S+\n$/, 'the second run reads what the first wrote');
      const v = await until('the volume with a size in the sidebar', async () => (await api.volumeRows())?.find((x) => x.name === volume && x.sizeBytes > 0), 30_000);
      notes.volumeBytes = v.sizeBytes;
      assert.ok(v.sizeBytes >= 64 * 1024, `the 64 KiB written are counted: ${v.sizeBytes} B`);
      assert.equal(await vscode.commands.executeCommand('bytenite.removeVolume', volume, true), true);
      await until('the volume gone from the sidebar', async () => ((await api.volumeRows())?.some((x) => x.name === volume) !== true) || undefined, 30_000);
    } finally {
      await vscode.commands.executeCommand('bytenite.chooseVolumes', uri, []);
      await vscode.workspace.fs.delete(workspaceUri('vol'), { recursive: true });
    }
  });

  it('builds a monorepo\'s services/api/Dockerfile with the context, stage and build secret chosen for it', async () => {
    const uri = workspaceUri('mono', 'services', 'api', 'Dockerfile');
    const secret = `editor-secret-${Date.now()}`;
    await vscode.workspace.fs.writeFile(workspaceUri('mono', 'shared', 'lib.txt'), Buffer.from('shared lib\n'));
    await vscode.workspace.fs.writeFile(uri, Buffer.from([
      'FROM scratch AS base', 'LABEL bytenite.cpus=1 bytenite.memory=512m bytenite.gpu=none', 'COPY busybox /bin/busybox',
      'RUN ["/bin/busybox", "--install", "-s", "/bin"]', 'ENV PATH=/bin',
      'FROM base AS test', 'COPY mono/shared/lib.txt /lib.txt',
      `RUN --mount=type=secret,id=tok sh -c 'md5sum /run/secrets/tok | cut -c1-32 > /md5; echo ${Date.now()}'`,
      'CMD ["sh", "-c", "cat /lib.txt /md5"]',
      'FROM base AS final', 'CMD ["echo", "the last stage"]', '',
    ].join('\n')));
    try {
      await api.setBuildChoice(uri, { contextDir: vscode.workspace.workspaceFolders![0].uri.fsPath, target: 'test' });
      await api.setBuildSecret(uri, 'tok', secret);
      const runId = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', uri);
      assert.match(runId ?? '', /^r-/);
      const run = await until('the final event', () => (api.run(runId)?.final ? api.run(runId) : undefined), 150_000);
      const final = run.final as { kind: string; exitCode: number };
      assert.equal(final.kind, 'exited', JSON.stringify(final));
      const md5 = execFileSync('md5sum', { input: secret }).toString().slice(0, 32);
      const out = run.logEvents.filter((e) => e.stream === 'stdout').map((e) => e.data).join('');
      assert.equal(out, `shared lib\n${md5}\n`, 'the test stage ran, with the workspace folder as its context and the secret mounted');
      assert.doesNotMatch(run.logs.join(''), new RegExp(secret), 'the secret\'s value shows nowhere');
    } finally {
      await api.setBuildSecret(uri, 'tok', undefined);
      await vscode.workspace.fs.delete(workspaceUri('mono'), { recursive: true });
    }
  });

  it('receives every one of 100,000 log lines', async () => {
    const runId = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', workspaceUri('many', 'Dockerfile'));
    const run = await until('the final event', () => (api.run(runId)?.final ? api.run(runId) : undefined), 150_000);
    const lines = run.logs.join('').split('\n').filter(Boolean);
    assert.equal(lines.length, 100_001, `got ${lines.length} lines, last: ${lines[lines.length - 1]}`);
  });

  it('shows phase, elapsed time, cost and Stop in the CodeLens while running, and Stop Run cancels', async () => {
    const uri = workspaceUri('slow', 'Dockerfile');
    await vscode.workspace.openTextDocument(uri);
    const runId = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', uri);
    assert.match(runId ?? '', /^r-/);
    await until('the slow run to print', () => api.run(runId)?.logs.join('').includes('slow job started') || undefined, 120_000);
    const titles = await until('running lenses', async () => {
      const t = await lensTitles(uri);
      return t.some((x) => /Running · \d+:\d\d · \$/.test(x)) ? t : undefined;
    }, 10_000);
    assert.ok(titles.includes('Stop'), titles.join(' | '));
    await vscode.commands.executeCommand('bytenite.stopRun', runId);
    const run = await until('the cancelled event', () => api.run(runId)?.final ? api.run(runId) : undefined, 60_000);
    assert.equal((run.final as { kind: string }).kind, 'cancelled');
    const after = await until('idle lenses', async () => {
      const t = await lensTitles(uri);
      return t[0]?.startsWith('Run on ByteNite') ? t : undefined;
    }, 10_000);
    assert.ok(after[1].startsWith('0.5 vCPU · 256 MiB'), after.join(' | '));
  });

  it('Run on Save: a changed context file stops the run and starts the next in the same panel; an ignored file or a watch turned off starts nothing', async () => {
    const uri = workspaceUri('watched', 'Dockerfile');
    const message = workspaceUri('watched', 'message.txt');
    const runsOf = async () => (await api.runRows()).filter((r) => r.name === 'watched/Dockerfile');
    const stdout = (id: string) => api.run(id)?.logEvents.filter((e) => e.stream === 'stdout').map((e) => e.data).join('') ?? '';
    const panels = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
      .filter((t) => t.input instanceof vscode.TabInputWebview && t.label.includes('watched/Dockerfile'));
    const quiet = () => new Promise((r) => setTimeout(r, 5000));
    await vscode.workspace.openTextDocument(uri);
    await until('Run on Save: off', async () => (await lensTitles(uri)).includes('Run on Save: off') || undefined, 20_000);
    const first = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', uri);
    assert.match(first ?? '', /^r-/);
    let current = first;
    try {
      await until('the first run to print its message', () => stdout(first).includes('message: first') || undefined, 120_000);
      assert.equal(await vscode.commands.executeCommand('bytenite.toggleRunOnSave', uri), true);
      await until('Run on Save: on', async () => (await lensTitles(uri)).includes('Run on Save: on') || undefined, 10_000);
      await until('the panel\'s Watch toggle on', () => api.panelWatch(first)?.on || undefined, 10_000);

      const t0 = Date.now();
      await vscode.workspace.fs.writeFile(message, Buffer.from('second\n'));
      const second = await until('the next run', async () => (await runsOf()).find((r) => r.runId !== first)?.runId, 60_000);
      current = second;
      await until('the next run to print the new message', () => stdout(second).includes('message: second') || undefined, 120_000);
      notes.runOnSaveRestartMs = Date.now() - t0;
      assert.equal((api.run(first)?.final as { kind: string } | undefined)?.kind, 'cancelled', 'the first run was stopped');
      assert.doesNotMatch(stdout(second), /message: first/);
      const shown = await until('the earlier run folded above the current one', () => (api.panelWatch(second)?.earlier.length ? api.panelWatch(second) : undefined), 10_000);
      assert.deepEqual(shown.earlier.map((e) => [e.runId, e.ended]), [[first, 'stopped: message.txt changed']]);
      assert.equal(shown.on, true);
      assert.equal(panels().length, 1, 'the watch\'s runs share one panel');

      // notes.txt is in watched/.dockerignore: no run sees it, so none is started for it.
      await vscode.workspace.fs.writeFile(workspaceUri('watched', 'notes.txt'), Buffer.from('edited, and ignored\n'));
      await quiet();
      assert.equal((await runsOf()).length, 2, 'no run for an ignored file');
      assert.equal(api.run(second)?.state, 'running');

      assert.equal(await vscode.commands.executeCommand('bytenite.toggleRunOnSave', uri), false);
      await until('Run on Save: off again', async () => (await lensTitles(uri)).includes('Run on Save: off') || undefined, 10_000);
      await until('the panel\'s Watch toggle off', () => (api.panelWatch(second)?.on === false) || undefined, 10_000);
      await vscode.workspace.fs.writeFile(message, Buffer.from('third\n'));
      await quiet();
      assert.equal((await runsOf()).length, 2, 'no run once the watch is off');
      assert.equal(api.run(second)?.state, 'running');
    } finally {
      await vscode.commands.executeCommand('bytenite.toggleRunOnSave', uri, false);
      if (api.run(current)?.final === undefined) await vscode.commands.executeCommand('bytenite.stopRun', current);
    }
    await until('the last run stopped', () => api.run(current)?.final, 60_000);
  });

  it('deploys web/Dockerfile as an endpoint by command: the sidebar lists it, Open\'s address answers 200, the panel shows the request and the wake, Undeploy removes it', async () => {
    const uri = workspaceUri('web', 'Dockerfile');
    const name = `web-${Date.now().toString(36)}`;
    const t0 = Date.now();
    const deployed = await vscode.commands.executeCommand<{ name: string; url: string } | undefined>('bytenite.deployEndpoint', uri,
      { name, port: 8000, idleSeconds: 30, public: false, hardware: { cpus: 0.5, memoryMiB: 256 } });
    notes.deployMs = Date.now() - t0;
    assert.ok(deployed, 'the command returns the endpoint');
    assert.match(deployed!.url, new RegExp(`^http://127\\.0\\.0\\.1:\\d+/e/${name}/$`));
    // At the agent's own address a request needs the token.
    assert.equal((await fetch(deployed!.url)).status, 401);
    const row = await until('the endpoint in the sidebar', async () => (await api.endpointRows())?.find((e) => e.name === name), 20_000);
    assert.equal(row.stateText, 'idle');
    assert.equal(row.url, deployed!.url);

    await vscode.commands.executeCommand('bytenite.endpointLogs', name);
    await until('the endpoint panel', () => vscode.window.tabGroups.all.flatMap((g) => g.tabs)
      .find((t) => t.input instanceof vscode.TabInputWebview && t.label === `Endpoint ${name}`), 20_000);
    const local = await api.endpointBrowserUrl(name);
    assert.match(local ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const t1 = Date.now();
    const res = await fetch(local!);
    notes.endpointColdRequestMs = Date.now() - t1;
    assert.equal(res.status, 200);
    assert.match(await res.text(), /served from a ByteNite run/);

    const shown = await until('the request in the panel', () => api.endpointPanel(name)?.requests.find((r) => r.path === '/' && r.status === 200), 20_000);
    assert.ok(shown.wake, `the request that woke the instance carries the wake: ${JSON.stringify(shown)}`);
    notes.endpointWake = shown.wake;
    const serving = await until('serving 1 in the sidebar', async () => (await api.endpointRows())?.find((e) => e.name === name && e.stateText === 'serving 1'), 20_000);
    assert.ok(serving.requests >= 1);
    await until('the instance in the panel', () => (api.endpointPanel(name)?.instances.length ? true : undefined), 10_000);

    assert.equal(await vscode.commands.executeCommand('bytenite.undeployEndpoint', name, true), true);
    await until('the endpoint gone from the sidebar', async () => ((await api.endpointRows())?.some((e) => e.name === name) === false) || undefined, 20_000);
    await assert.rejects(fetch(local!), 'Open\'s local forward of an undeployed endpoint is closed');
  });

  it('Open Shell on a running run: a terminal over exec where typed commands run, resizes and Ctrl-C reach the shell, and closing it ends the exec', async () => {
    const runId = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', workspaceUri('slow', 'Dockerfile'));
    assert.match(runId ?? '', /^r-/);
    try {
      await until('the slow run to print', () => api.run(runId)?.logs.join('').includes('slow job started') || undefined, 120_000);
      const t0 = Date.now();
      assert.equal(await vscode.commands.executeCommand<string>('bytenite.openShell', runId), runId);
      const title = `ByteNite: local · ${runId.slice(0, 8)} · 0.5 vCPU · 256 MiB`;
      const terminal = await until('the terminal', () => vscode.window.terminals.find((t) => t.name === title), 10_000)
        .catch((err) => { throw new Error(`${err.message}; terminals: ${vscode.window.terminals.map((t) => t.name).join(' | ')}`); });
      const shell = () => api.shell(runId)!;
      const seen = (re: RegExp, what: string, timeoutMs = 20_000) => until(what, () => (re.test(shell().transcript) ? true : undefined), timeoutMs)
        .catch((err) => { throw new Error(`${err.message}; the terminal shows ${JSON.stringify(shell().transcript.slice(-600))}`); });
      await seen(PROMPT, 'the shell\'s prompt');
      notes.shellPromptMs = Date.now() - t0;

      terminal.sendText('echo $((6*7))\r', false);
      await seen(/\r\n42\r\n/, 'the echo\'s output');
      // The container's hostname is its id: its processes, less the run's own, are the exec's.
      terminal.sendText('hostname\r', false);
      await seen(/\r\n[0-9a-f]{12}\r\n/, 'the container\'s hostname');
      const container = /\r\n([0-9a-f]{12})\r\n/.exec(shell().transcript)![1];
      const execProcs = () => execFileSync('docker', ['top', container, '-o', 'pid,args'], { encoding: 'utf8' }).split('\n').slice(1)
        .filter((l) => l.trim() && !/slow job started|sleep 120$/.test(l));
      assert.ok(execProcs().length >= 1, `the exec's shell in the container: ${execProcs().join(' | ')}`);
      const opened = shell().size;
      assert.ok(opened, 'VS Code gave the terminal a size');
      terminal.sendText('stty size\r', false);
      await seen(new RegExp(`\\r\\n${opened!.rows} ${opened!.cols}\\r\\n`), `the initial size ${opened!.rows} ${opened!.cols} inside`);

      shell().setDimensions(97, 31);
      terminal.sendText('stty size\r', false);
      await seen(/\r\n31 97\r\n/, 'the resize inside');

      // Ctrl-C is a byte for the shell: it interrupts the sleep, and the shell goes on.
      terminal.sendText('sleep 300\r', false);
      await until('the sleep to run', () => execProcs().some((l) => /sleep 300/.test(l)) || undefined, 10_000);
      terminal.sendText('\x03', false);
      terminal.sendText('echo after-ctrl-c\r', false);
      await seen(/\r\nafter-ctrl-c\r\n/, 'the shell after Ctrl-C', 10_000);
      assert.ok(execProcs().length >= 1, 'the exec\'s shell is in the container');

      terminal.dispose();
      await until('the exec\'s processes to be gone from the container', () => (execProcs().length === 0 ? true : undefined), 15_000)
        .catch((err) => { throw new Error(`${err.message}: ${execProcs().join(' | ')}`); });
      assert.equal(api.run(runId)?.state, 'running', 'the run goes on');
    } finally {
      await vscode.commands.executeCommand('bytenite.stopRun', runId);
    }
    await until('the cancelled event', () => api.run(runId)?.final ? api.run(runId) : undefined, 60_000);
  });

  it('Open Shell\'s exit: the shell\'s exit code closes the terminal with it', async () => {
    const runId = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', workspaceUri('slow', 'Dockerfile'));
    try {
      await until('the slow run to print', () => api.run(runId)?.logs.join('').includes('slow job started') || undefined, 120_000);
      const closed = new Promise<vscode.Terminal>((resolve) => {
        const sub = vscode.window.onDidCloseTerminal((t) => {
          if (!t.name.includes(runId.slice(0, 8))) return;
          sub.dispose();
          resolve(t);
        });
      });
      await vscode.commands.executeCommand('bytenite.openShell', runId);
      await until('the shell\'s prompt', () => (PROMPT.test(api.shell(runId)?.transcript ?? '') ? true : undefined), 20_000);
      const terminal = vscode.window.terminals.find((t) => t.name.includes(runId.slice(0, 8)))!;
      terminal.sendText('exit 3\r', false);
      const t = await Promise.race([closed, new Promise<undefined>((r) => setTimeout(r, 15_000))]);
      assert.ok(t, 'the terminal closed');
      assert.equal(t!.exitStatus?.code, 3);
      assert.equal(api.run(runId)?.state, 'running', 'the run goes on');
    } finally {
      await vscode.commands.executeCommand('bytenite.stopRun', runId);
    }
    await until('the cancelled event', () => api.run(runId)?.final ? api.run(runId) : undefined, 60_000);
  });

  it('Open Shell in a new container of a Dockerfile: an interactive run of a shell in the terminal, stopped when the terminal closes', async () => {
    const t0 = Date.now();
    const runId = await vscode.commands.executeCommand<string>('bytenite.openShell', {
      dockerfile: workspaceUri('labelled', 'Dockerfile'), hardware: { cpus: 1, memoryMiB: 512 },
    });
    assert.match(runId ?? '', /^r-/, 'the command returns the new run\'s id');
    const shell = () => api.shell(runId)!;
    const seen = (re: RegExp, what: string, timeoutMs = 20_000) => until(what, () => (re.test(shell()?.transcript ?? '') ? true : undefined), timeoutMs)
      .catch((err) => { throw new Error(`${err.message}; the terminal shows ${JSON.stringify(shell()?.transcript.slice(-600))}`); });
    const terminal = () => vscode.window.terminals.find((t) => t.name.startsWith(`ByteNite: local · ${runId.slice(0, 8)} · 1 vCPU · 512 MiB`));
    try {
      await seen(PROMPT, 'the shell\'s prompt', 120_000);
      notes.newContainerShellMs = Date.now() - t0;
      assert.ok(terminal(), `the terminal, renamed with the run: ${vscode.window.terminals.map((t) => t.name).join(' | ')}`);
      terminal()!.sendText('echo $((6*7))\r', false);
      await seen(/\r\n42\r\n/, 'the echo\'s output');
      shell().setDimensions(88, 22);
      terminal()!.sendText('stty size\r', false);
      await seen(/\r\n22 88\r\n/, 'the resize inside');
      assert.equal(api.run(runId)?.state, 'running');
    } finally {
      terminal()?.dispose();
    }
    const run = await until('the run to end', () => (api.run(runId)?.final ? api.run(runId) : undefined), 60_000);
    assert.equal((run.final as { kind: string }).kind, 'cancelled');
  });

  it('reconnects with backoff when the local agent dies, and Stop/Start Local Agent work', async () => {
    const pid = api.localAgentPid();
    assert.ok(pid, 'the local agent runs');
    process.kill(pid!, 'SIGKILL');
    await until('the drop to be seen', () => (api.agentState() !== 'connected' ? true : undefined), 10_000);
    await until('the reconnection', () => (api.agentState() === 'connected' ? true : undefined), 30_000);
    assert.notEqual(api.localAgentPid(), pid, 'a new agent process');
    await vscode.commands.executeCommand('bytenite.stopLocalAgent');
    assert.equal(api.agentState(), 'failed');
    assert.equal(api.localAgentPid(), undefined);
    await vscode.commands.executeCommand('bytenite.startLocalAgent');
    assert.equal(api.agentState(), 'connected');
  });

  it('lists the agent\'s past runs after a reconnect, and replays one from the agent when opened', async () => {
    assert.ok(labelledRunId, 'the labelled run ran');
    const id = labelledRunId!;
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await api.forgetRuns();
    assert.deepEqual(await api.runRows(), []);
    assert.equal(api.run(id), undefined);
    // A restarted agent on the same data folder: the extension hears of past runs only from its journal.
    await vscode.commands.executeCommand('bytenite.stopLocalAgent');
    await vscode.commands.executeCommand('bytenite.startLocalAgent');
    const rows = await until('the run from the agent\'s list', async () => {
      const r = await api.runRows();
      return r.some((x) => x.runId === id) ? r : undefined;
    }, 30_000);
    const row = rows.find((x) => x.runId === id)!;
    assert.equal(row.state, 'exited');
    assert.equal(row.exitCode, 0);
    assert.ok(row.start, 'the start kind');
    // The run slept 1 s; the engine's clock can read it a few ms short (994 ms seen).
    assert.ok((row.costUsd ?? 0) > 0 && (row.durationMs ?? 0) >= 900, JSON.stringify(row));
    const times = rows.map((r) => Date.parse(r.createdAt));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    await vscode.commands.executeCommand('bytenite.openRun', id);
    const run = await until('the replayed final event', () => (api.run(id)?.final ? api.run(id) : undefined), 30_000);
    assert.match(run.logs.join(''), /labelled run says hi/);
    assert.equal(run.costUsd, row.costUsd);
  });

  it('puts the local agent on the engine of the Docker context bytenite.localAgent.dockerContext names, and names a broken one', async () => {
    // The context's socket is a counting proxy in front of the real engine: runs that go through it are seen.
    const sock = path.join(os.tmpdir(), `bn-editor-context-${process.pid}.sock`);
    fs.rmSync(sock, { force: true });
    let connections = 0;
    const proxy = net.createServer((c) => {
      connections++;
      const up = net.connect('/var/run/docker.sock');
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(sock, resolve));
    const id = createHash('sha256').update('bn-editor').digest('hex');
    const meta = path.join(process.env.DOCKER_CONFIG!, 'contexts', 'meta', id);
    fs.mkdirSync(meta, { recursive: true });
    fs.writeFileSync(path.join(meta, 'meta.json'), JSON.stringify({ Name: 'bn-editor', Metadata: {}, Endpoints: { docker: { Host: `unix://${sock}`, SkipTLSVerify: false } } }));
    const settings = () => vscode.workspace.getConfiguration('bytenite');
    try {
      await settings().update('localAgent.dockerContext', 'bn-editor', vscode.ConfigurationTarget.Global);
      const engine = await until('the agent on the context\'s engine', () => (api.agentEngine()?.includes('context "bn-editor"') ? api.agentEngine() : undefined), 60_000);
      assert.match(engine, new RegExp(`unix://${sock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      const before = connections;
      const runId = await vscode.commands.executeCommand<string>('bytenite.runDockerfile', workspaceUri('labelled', 'Dockerfile'));
      const run = await until('the run on the context\'s engine', () => (api.run(runId)?.final ? api.run(runId) : undefined), 150_000);
      assert.equal((run.final as { exitCode: number }).exitCode, 0);
      assert.ok(connections > before, `the run went through the context's socket (${connections - before} connections)`);

      await settings().update('localAgent.dockerContext', 'no-such-context', vscode.ConfigurationTarget.Global);
      const problem = await until('the broken context to be reported', () => api.agentProblem()?.includes('no-such-context') ? api.agentProblem() : undefined, 30_000);
      assert.match(problem, /Docker context "no-such-context" is not in .*check `docker context ls`/);
    } finally {
      await settings().update('localAgent.dockerContext', undefined, vscode.ConfigurationTarget.Global);
      proxy.close();
    }
    const back = await until('the agent back on the default engine', () => api.agentEngine(), 60_000);
    assert.doesNotMatch(back, /bn-editor/);
  });
});
