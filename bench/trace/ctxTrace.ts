// Not part of `npm run bench`: a diagnostic for the bottleneck analysis (npx tsx bench/trace/<name>.ts).
// Where the time of a cold 100 MiB / 2000-file context goes: client listing+digest, tar write, then agent phases.
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { listContext } from '../../agent/context/listContext';
import { contextDigest } from '../../agent/context/digest';
import { packContext } from '../../agent/context/packContext';
import { checkContext } from '../../agent/context/checkContext';
import { addRandomFiles, startAgentProcess, makeContext, tempDir, cleanupAll, ensureBaseImage, dockerBuild, removeImage } from '../lib';
import { runJson } from '../cliRun';
(async () => {
  try {
    ensureBaseImage(tempDir());
    const work = tempDir();
    const ctx = makeContext(path.join(work, 'ctx'), 'COPY . /ctx\nCMD ["true"]\n');
    addRandomFiles(ctx, 2000, (i) => (i < 1990 ? 40_000 : 2_500_000));
    for (let k = 0; k < 2; k++) {
      writeFileSync(path.join(ctx, 'nonce'), randomBytes(8));
      let t = performance.now();
      const entries = await listContext(ctx, 'Dockerfile'); const tl = performance.now() - t;
      t = performance.now(); contextDigest(entries, 'Dockerfile', {}); const td = performance.now() - t;
      t = performance.now(); const pack = await packContext(ctx, 'Dockerfile', {}); const tp = performance.now() - t;
      t = performance.now(); await checkContext(pack.tarPath, 'Dockerfile', {}); const tc = performance.now() - t;
      await pack.cleanup();
      console.log(`client: list+sha256 ${tl.toFixed(0)} ms, digest ${td.toFixed(0)} ms, packContext (list+hash+tar) ${tp.toFixed(0)} ms; agent-side checkContext ${tc.toFixed(0)} ms (${(pack.bytes / 2 ** 20).toFixed(0)} MiB)`);
      const agent = await startAgentProcess(path.join(work, `data${k}`));
      writeFileSync(path.join(ctx, 'nonce'), randomBytes(8));
      const r = await runJson([path.join(ctx, 'Dockerfile'), ...agent.flags, '--memory', '256m']);
      console.log(`cli: starting at ${r.startingMs.toFixed(0)} ms; agent phases ${JSON.stringify(r.final.phases)}`);
      removeImage(r.image);
      await agent.stop();
      writeFileSync(path.join(ctx, 'nonce'), randomBytes(8));
      t = performance.now(); dockerBuild(ctx, 'bytenite-trace:x'); console.log(`docker build ${(performance.now() - t).toFixed(0)} ms`);
      removeImage('bytenite-trace:x');
    }
  } finally { cleanupAll(); }
})();
