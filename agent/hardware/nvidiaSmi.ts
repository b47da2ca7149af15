/**
 * GPU discovery through nvidia-smi: parsers for its CSV query output and its `-q -x` XML, and `detectGpus()`
 * that runs it. No NVML binding: nvidia-smi ships with every NVIDIA driver, so it is the one thing we can count on.
 */
import { execFile } from 'node:child_process';
import type { GpuInfo } from '../protocol/messages';

/** The query `detectGpus()` runs; `parseNvidiaSmiCsv` reads the first four columns in this order. */
export const NVIDIA_SMI_QUERY_ARGS = ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits'];

// Words that name the maker or the product line, not the model: `Tesla T4` and `NVIDIA T4` are the same GPU.
const VENDOR_WORDS = new Set(['nvidia', 'tesla', 'geforce', 'quadro']);
// Model words that need the next word to mean anything: `RTX 4090`, `RTX A6000`, `RTX PRO 6000`.
const JOINING_WORDS = new Set(['rtx', 'gtx', 'gt', 'pro']);
// Words after the model that change the price class (`RTX 4070 Ti SUPER`); form factors (`SXM4-80GB`, `PCIe`) do not.
const SUFFIX_WORDS = new Set(['ti', 'super', 'ada']);
// A model word: a letter or three then digits, e.g. h200, a100, t4, l40s, a10g, gh200, v100.
const MODEL_WORD = /^[a-z]{1,3}\d{1,4}[a-z]?$/;

/**
 * The short type used in requests and prices: `NVIDIA H200` -> `h200`, `NVIDIA A100-SXM4-80GB` -> `a100`,
 * `Tesla T4` -> `t4`, `NVIDIA GeForce RTX 4090` -> `rtx4090`. A name with no recognisable model word
 * gives its letters and digits, lowercased.
 */
export function gpuType(name: string): string {
  const words = name.toLowerCase().split(/[\s\-_/]+/).filter(Boolean);
  const rest = words.filter((w) => !VENDOR_WORDS.has(w));
  let i = 0;
  let type = '';
  while (i < rest.length && JOINING_WORDS.has(rest[i])) type += rest[i++];
  if (i < rest.length && (type !== '' || MODEL_WORD.test(rest[i]))) {
    type += rest[i++];
    while (i < rest.length && SUFFIX_WORDS.has(rest[i])) type += rest[i++];
    return alnum(type);
  }
  return alnum(rest.join('')) || alnum(name) || 'gpu';
}

const alnum = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 64);

// nvidia-smi prints `[N/A]`, `N/A` or `[Not Supported]` where a value is unknown; an unknown size counts as 0.
function mib(text: string): number {
  const n = Number.parseInt(text, 10);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

/**
 * Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`.
 * Extra columns after the fourth are ignored; lines that do not start with a GPU index (a header, a driver
 * error message) are skipped.
 */
export function parseNvidiaSmiCsv(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of text.split(/\r?\n/)) {
    const fields = line.split(',').map((f) => f.trim());
    if (fields.length < 4 || !/^\d+$/.test(fields[0])) continue;
    const [index, uuid, name, memory] = fields;
    if (!name) continue;
    gpus.push({ index: Number(index), type: gpuType(name), name, memoryMiB: mib(memory), ...(uuidOf(uuid)) });
  }
  return gpus;
}

// The CSV says `[N/A]` for an unknown value, the XML `N/A`.
const uuidOf = (text: string | undefined) => (text && !text.startsWith('[') && text !== 'N/A' ? { uuid: text } : {});

/**
 * Parses `nvidia-smi -q -x`. Only the few fields we need are read, by pattern, so no XML library is pulled in.
 * GPUs are listed in index order, so the position in the document is the index.
 */
export function parseNvidiaSmiXml(xml: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const match of xml.matchAll(/<gpu(?:\s[^>]*)?>([\s\S]*?)<\/gpu>/g)) {
    const body = match[1];
    const name = element(body, 'product_name');
    if (!name) continue;
    // `<total>` also appears under bar1 and cc_protected memory; the frame buffer is the GPU's memory.
    const fb = element(body, 'fb_memory_usage') ?? '';
    gpus.push({
      index: gpus.length, type: gpuType(name), name, memoryMiB: mib(element(fb, 'total') ?? ''),
      ...uuidOf(element(body, 'uuid')),
    });
  }
  return gpus;
}

function element(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? decodeEntities(m[1].trim()) : undefined;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const decodeEntities = (s: string) => s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e]);

/**
 * The GPUs of this machine, or [] when nvidia-smi is absent, fails or hangs (a broken driver can make it hang).
 * Logs nothing: the caller decides what a machine without GPUs is worth saying.
 */
export function detectGpus(options: { timeoutMs?: number } = {}): Promise<GpuInfo[]> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', NVIDIA_SMI_QUERY_ARGS, { timeout: options.timeoutMs ?? 5000, windowsHide: true }, (err, stdout) => {
      resolve(err ? [] : parseNvidiaSmiCsv(String(stdout)));
    });
  });
}
