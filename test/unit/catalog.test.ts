// The hardware catalog a client picks from, and the refusal it gets when a request does not fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { Catalog, type GpuInfo } from '../../agent/protocol/messages';
import { buildCatalog, checkHardware, readHost, type HostInfo } from '../../agent/hardware/catalog';
import { loadPricing } from '../../agent/cost/pricing';

const { prices, reference } = loadPricing();
const gpu = (index: number, name: string, type: string): GpuInfo => ({ index, name, type, memoryMiB: 81920 });
const catalogOf = (host: HostInfo) => Catalog.parse(buildCatalog(host, prices, reference));

// The machine the fixtures came from: 16 cores, 125 GiB, one H200.
const h200Host: HostInfo = {
  cpus: 16, memoryMiB: 128_000, gpus: [{ index: 0, type: 'h200', name: 'NVIDIA H200', memoryMiB: 143771, uuid: 'GPU-x' }],
};

test('vCPU choices double from 0.5 up to the host, ending on the host count', () => {
  assert.deepEqual(catalogOf({ cpus: 2, memoryMiB: 4096, gpus: [] }).cpuOptions, [0.5, 1, 2]);
  assert.deepEqual(catalogOf(h200Host).cpuOptions, [0.5, 1, 2, 4, 8, 16]);
  assert.deepEqual(catalogOf({ cpus: 12, memoryMiB: 4096, gpus: [] }).cpuOptions, [0.5, 1, 2, 4, 8, 12]);
  assert.deepEqual(catalogOf({ cpus: 1, memoryMiB: 4096, gpus: [] }).cpuOptions, [0.5, 1]);
});

test('memory choices double from 256 MiB and stop short of a reserve (10%, at most 1 GiB)', () => {
  // 4096 MiB: reserve 409.6, usable 3686.4, top choice rounded down to 256 MiB = 3584.
  assert.deepEqual(catalogOf({ cpus: 2, memoryMiB: 4096, gpus: [] }).memoryOptionsMiB, [256, 512, 1024, 2048, 3584]);
  // 128000 MiB: reserve 1024, usable 126976 (a multiple of 256).
  assert.deepEqual(
    catalogOf(h200Host).memoryOptionsMiB,
    [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 126976],
  );
  // 2304 MiB: reserve 230.4, usable 2073.6: 2048 is already the top choice.
  assert.deepEqual(catalogOf({ cpus: 2, memoryMiB: 2304, gpus: [] }).memoryOptionsMiB, [256, 512, 1024, 2048]);
});

test('GPU choices are grouped by type with counts 1..n, in index order', () => {
  const host: HostInfo = {
    cpus: 8, memoryMiB: 65536,
    gpus: [gpu(2, 'NVIDIA A100-SXM4-80GB', 'a100'), gpu(0, 'NVIDIA A100-SXM4-80GB', 'a100'), gpu(1, 'NVIDIA L4', 'l4')],
  };
  assert.deepEqual(catalogOf(host).gpuOptions, [
    { type: 'a100', name: 'NVIDIA A100-SXM4-80GB', counts: [1, 2] },
    { type: 'l4', name: 'NVIDIA L4', counts: [1] },
  ]);
  assert.deepEqual(catalogOf({ cpus: 2, memoryMiB: 4096, gpus: [] }).gpuOptions, []);
});

test('the catalog carries the prices and reference rates it was built with', () => {
  const c = catalogOf(h200Host);
  assert.deepEqual(c.prices, prices);
  assert.deepEqual(c.reference, reference);
  assert.deepEqual(c.host, h200Host);
});

test('requests within the host fit, including values between the listed choices', () => {
  const c = catalogOf(h200Host);
  assert.equal(checkHardware(c, { cpus: 0.5, memoryMiB: 256 }), undefined);
  assert.equal(checkHardware(c, { cpus: 3, memoryMiB: 3000 }), undefined);
  assert.equal(checkHardware(c, { cpus: 16, memoryMiB: 126976, gpu: { type: 'h200', count: 1 } }), undefined);
});

test('a request that does not fit is refused with what was asked and what is available', () => {
  const small = catalogOf({ cpus: 2, memoryMiB: 4096, gpus: [] });
  assert.equal(checkHardware(small, { cpus: 64, memoryMiB: 512 }), 'asked for 64 vCPUs; this agent offers 0.5, 1, 2 vCPUs');
  assert.equal(checkHardware(small, { cpus: 2.5, memoryMiB: 512 }), 'asked for 2.5 vCPUs; this agent offers 0.5, 1, 2 vCPUs');
  assert.equal(
    checkHardware(small, { cpus: 1, memoryMiB: 8192 }),
    'asked for 8 GiB of memory; this agent offers 256 MiB, 512 MiB, 1 GiB, 2 GiB, 3.5 GiB',
  );
  assert.equal(
    checkHardware(small, { cpus: 1, memoryMiB: 512, gpu: { type: 'a100', count: 1 } }),
    'asked for gpu a100:1; this agent has no GPUs',
  );

  const big = catalogOf(h200Host);
  assert.equal(checkHardware(big, { cpus: 1, memoryMiB: 512, gpu: { type: 'a100', count: 1 } }), 'asked for gpu a100:1; this agent has h200 x1');
  assert.equal(checkHardware(big, { cpus: 1, memoryMiB: 512, gpu: { type: 'h200', count: 2 } }), 'asked for gpu h200:2; this agent has h200 x1');
  // Every problem is named, not only the first.
  assert.equal(
    checkHardware(small, { cpus: 4, memoryMiB: 4000, gpu: { type: 'h100', count: 1 } }),
    'asked for 4 vCPUs; this agent offers 0.5, 1, 2 vCPUs; '
      + 'asked for 3.91 GiB of memory; this agent offers 256 MiB, 512 MiB, 1 GiB, 2 GiB, 3.5 GiB; '
      + 'asked for gpu h100:1; this agent has no GPUs',
  );
});

test('readHost describes this machine', async () => {
  const host = await readHost();
  assert.equal(host.cpus, os.cpus().length || os.availableParallelism());
  assert.equal(host.memoryMiB, Math.floor(os.totalmem() / 1048576));
  // Whatever GPUs this machine has (often none), the catalog built from them is valid on the wire.
  Catalog.parse(buildCatalog(host, prices, reference));
});
