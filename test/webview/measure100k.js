// Runs inside the panel harness page (an expression: the async IIFE's promise is the result). Posts
// 100,000 log lines the way the host does (batches of 2,000 events) and measures when the last one shows.
(async () => {
  const N = 100_000;
  const BATCH = 2000;
  const longTasks = [];
  new PerformanceObserver((l) => l.getEntries().forEach((e) => longTasks.push(e.duration))).observe({ entryTypes: ['longtask'] });
  let maxFrameGap = 0;
  let lastFrame = performance.now();
  let frames = true;
  const tick = () => {
    const now = performance.now();
    maxFrameGap = Math.max(maxFrameGap, now - lastFrame);
    lastFrame = now;
    if (frames) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  const view = document.getElementById('log-view');
  const shown = new Promise((res) => {
    const mo = new MutationObserver(() => {
      for (const el of view.querySelectorAll('.log-line')) {
        if (el.textContent.includes(`line ${N} `)) {
          mo.disconnect();
          res(performance.now());
          return;
        }
      }
    });
    mo.observe(view, { childList: true, subtree: true, characterData: true });
  });
  const time = new Date().toISOString();
  const t0 = performance.now();
  let lastPosted = 0;
  for (let b = 0; b < N / BATCH; b++) {
    const events = [];
    for (let i = 1; i <= BATCH; i++) {
      const n = b * BATCH + i;
      events.push({ seq: n, at: Date.now(), event: { kind: 'log', stream: n % 10 ? 'stdout' : 'stderr', time, data: `line ${n} \u001b[32mok\u001b[0m payload ${'x'.repeat(n % 40)}\n` } });
    }
    lastPosted = performance.now();
    window.postMessage({ type: 'events', runId: 'r-abc123', events }, '*');
  }
  // The loop above is the harness, not the panel: count frame gaps from here on only.
  maxFrameGap = 0;
  lastFrame = performance.now();
  const at = await shown;
  frames = false;
  await new Promise((r) => setTimeout(r, 100));
  // After the load: jump to the middle and time until that frame is drawn.
  const s0 = performance.now();
  view.scrollTop = view.scrollHeight / 2;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const scrollToMiddleMs = Math.round(performance.now() - s0);
  const middle = view.querySelector('.log-line')?.textContent;
  return {
    lines: N,
    lastLineShownAfterPostMs: Math.round(at - lastPosted),
    allShownAfterFirstPostMs: Math.round(at - t0),
    postingMs: Math.round(lastPosted - t0),
    longestTaskMs: Math.round(Math.max(0, ...longTasks)),
    longestFrameGapWhileIngestingMs: Math.round(maxFrameGap),
    scrollToMiddleMs,
    firstRowAfterScroll: middle,
    rowsInDom: view.querySelectorAll('.log-line').length,
    // Chromium only; after a GC it would be lower, this is an upper bound.
    jsHeapMiB: performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : undefined,
    count: document.getElementById('log-count')?.textContent,
  };
})()
