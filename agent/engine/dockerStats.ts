/** Turns two consecutive Docker stats samples into the figures a run reports. */

export interface DockerStatsSample {
  cpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number; online_cpus?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: { cache?: number; inactive_file?: number } };
  pids_stats?: { current?: number };
}

export function statsSample(prev: DockerStatsSample, cur: DockerStatsSample) {
  const cpuDelta = (cur.cpu_stats?.cpu_usage?.total_usage ?? 0) - (prev.cpu_stats?.cpu_usage?.total_usage ?? 0);
  const sysDelta = (cur.cpu_stats?.system_cpu_usage ?? 0) - (prev.cpu_stats?.system_cpu_usage ?? 0);
  const cpus = cur.cpu_stats?.online_cpus ?? 1;
  // 100% = one full vCPU, as `docker stats` shows it.
  const cpuPercent = sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * cpus * 100 : 0;
  const mem = cur.memory_stats ?? {};
  // Page cache is reclaimable, so `docker stats` leaves it out; cgroup v1 calls it `cache`, v2 `inactive_file`.
  const cache = mem.stats?.cache ?? mem.stats?.inactive_file ?? 0;
  return {
    cpuPercent: Math.round(cpuPercent * 10) / 10,
    memoryBytes: Math.max(0, (mem.usage ?? 0) - cache),
    memoryLimitBytes: mem.limit ?? 0,
    pids: cur.pids_stats?.current ?? 0,
  };
}
