// GPU discovery, checked on real nvidia-smi output captured on an H200 machine (test/fixtures/nvidia-smi/README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpuInfo } from '../../agent/protocol/messages';
import { detectGpus, gpuType, NVIDIA_SMI_QUERY_ARGS, parseNvidiaSmiCsv, parseNvidiaSmiXml } from '../../agent/hardware/nvidiaSmi';

const FIXTURES = join(__dirname, '..', 'fixtures', 'nvidia-smi');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');

/** One `== title` block of gpu-inventory.txt. */
function section(text: string, title: string): string {
  const blocks = text.split(/^== /m);
  const block = blocks.find((b) => b.startsWith(`${title}\n`));
  assert.ok(block, `gpu-inventory.txt has a "== ${title}" block`);
  return block.slice(title.length + 1);
}

const H200: GpuInfo = {
  index: 0, type: 'h200', name: 'NVIDIA H200', memoryMiB: 143771, uuid: 'GPU-3cdcd47e-7301-d6cb-33ed-fd1e33e069d2',
};

test('parses the real noheader,nounits CSV: one H200 with its memory and uuid', () => {
  const gpus = parseNvidiaSmiCsv(section(fixture('gpu-inventory.txt'), 'query csv noheader nounits'));
  assert.deepEqual(gpus, [H200]);
  for (const g of gpus) GpuInfo.parse(g);
});

test('parses the real -q -x XML to the same GPU', () => {
  const gpus = parseNvidiaSmiXml(fixture('nvidia-smi-q.xml'));
  assert.deepEqual(gpus, [H200]);
});

test('in the XML, memory is the frame-buffer total wherever the other totals sit, and GPUs number in order', () => {
  const xml = `<nvidia_smi_log>
    <gpu id="00000000:01:00.0"><product_name>NVIDIA L4</product_name><gpu_operation_mode><current_gom>N/A</current_gom></gpu_operation_mode>
      <bar1_memory_usage><total>256 MiB</total></bar1_memory_usage><fb_memory_usage><total>23034 MiB</total></fb_memory_usage>
      <uuid>GPU-1111</uuid></gpu>
    <gpu id="00000000:02:00.0"><product_name>Tesla T4 &amp; friends</product_name><fb_memory_usage><total>N/A</total></fb_memory_usage>
      <uuid>N/A</uuid></gpu>
  </nvidia_smi_log>`;
  assert.deepEqual(parseNvidiaSmiXml(xml), [
    { index: 0, type: 'l4', name: 'NVIDIA L4', memoryMiB: 23034, uuid: 'GPU-1111' },
    { index: 1, type: 't4', name: 'Tesla T4 & friends', memoryMiB: 0 },
  ]);
});

test('reads several GPUs, skips a header and a driver error, and tolerates [N/A] fields', () => {
  const text = [
    'index, uuid, name, memory.total [MiB]',
    '0, GPU-aaaa, NVIDIA A100-SXM4-80GB, 81920',
    '1, GPU-bbbb, NVIDIA A100-SXM4-80GB, 81920',
    '2, [N/A], NVIDIA L4, [N/A]',
    'NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.',
    '',
  ].join('\r\n');
  assert.deepEqual(parseNvidiaSmiCsv(text), [
    { index: 0, type: 'a100', name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, uuid: 'GPU-aaaa' },
    { index: 1, type: 'a100', name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, uuid: 'GPU-bbbb' },
    { index: 2, type: 'l4', name: 'NVIDIA L4', memoryMiB: 0 },
  ]);
  assert.deepEqual(parseNvidiaSmiCsv(''), []);
  assert.deepEqual(parseNvidiaSmiXml('<nvidia_smi_log><attached_gpus>0</attached_gpus></nvidia_smi_log>'), []);
});

test('short GPU types come from the model, not the vendor or form factor', () => {
  const cases: Record<string, string> = {
    'NVIDIA H200': 'h200',
    'NVIDIA A100-SXM4-80GB': 'a100',
    'Tesla T4': 't4',
    'NVIDIA L4': 'l4',
    'NVIDIA GeForce RTX 4090': 'rtx4090',
    'NVIDIA H100 80GB HBM3': 'h100',
    'NVIDIA H100 PCIe': 'h100',
    'Tesla V100-SXM2-16GB': 'v100',
    'NVIDIA A10G': 'a10g',
    'NVIDIA L40S': 'l40s',
    'NVIDIA GH200 480GB': 'gh200',
    'NVIDIA RTX A6000': 'rtxa6000',
    'NVIDIA GeForce RTX 4070 Ti SUPER': 'rtx4070tisuper',
    'NVIDIA TITAN RTX': 'titanrtx',
    'NVIDIA Graphics Device': 'graphicsdevice',
  };
  for (const [name, type] of Object.entries(cases)) assert.equal(gpuType(name), type, name);
});

// detectGpus runs whatever `nvidia-smi` is first on PATH: put a fake one there to drive each outcome.
async function withFakeNvidiaSmi(script: string | undefined, fn: () => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'bytenite-nvsmi-'));
  const savedPath = process.env.PATH;
  try {
    if (script !== undefined) {
      // The fake still needs cat and sleep: give it the PATH the test started with.
      writeFileSync(join(dir, 'nvidia-smi'), `#!/bin/sh\nPATH='${savedPath}'\n${script}\n`);
      chmodSync(join(dir, 'nvidia-smi'), 0o755);
    }
    process.env.PATH = dir;
    await fn();
  } finally {
    process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  }
}

test('detectGpus asks nvidia-smi for the CSV query and parses its answer', async () => {
  const csv = section(fixture('gpu-inventory.txt'), 'query csv noheader nounits');
  const argsFile = join(tmpdir(), `bytenite-nvsmi-args-${process.pid}`);
  const csvFile = join(tmpdir(), `bytenite-nvsmi-csv-${process.pid}`);
  writeFileSync(csvFile, csv);
  try {
    await withFakeNvidiaSmi(`echo "$@" > '${argsFile}'\nexec cat '${csvFile}'`, async () => {
      assert.deepEqual(await detectGpus(), [H200]);
    });
    assert.equal(readFileSync(argsFile, 'utf8').trim(), NVIDIA_SMI_QUERY_ARGS.join(' '));
    assert.equal(NVIDIA_SMI_QUERY_ARGS.join(' '), '--query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits');
  } finally {
    rmSync(argsFile, { force: true });
    rmSync(csvFile, { force: true });
  }
});

test('detectGpus gives [] when nvidia-smi is absent, fails or hangs', async () => {
  await withFakeNvidiaSmi(undefined, async () => assert.deepEqual(await detectGpus(), []));
  await withFakeNvidiaSmi(
    'echo "0, GPU-x, NVIDIA H200, 143771"; echo "NVIDIA-SMI has failed" >&2; exit 9',
    async () => assert.deepEqual(await detectGpus(), []),
  );
  await withFakeNvidiaSmi('exec sleep 30', async () => {
    const started = Date.now();
    assert.deepEqual(await detectGpus({ timeoutMs: 200 }), []);
    assert.ok(Date.now() - started < 5000, 'the timeout stops a hung nvidia-smi');
  });
});
