/**
 * A terminal's resizes, applied one at a time with the newest winning. Each resize is an HTTP call to the
 * engine, and two sent at once can land in either order: `stty cols 120 rows 40` is two changes and two
 * SIGWINCHes, so the program's terminal could be left at the size in between (120 x 30). Sizes asked while a
 * call is in flight collapse into the newest, sent when that call is done.
 */
export function serialResize(apply: (cols: number, rows: number) => Promise<void>): (cols: number, rows: number) => Promise<void> {
  let wanted: [number, number] | undefined;
  let running: Promise<void> | undefined;
  const pump = async (): Promise<void> => {
    let failure: unknown;
    while (wanted) {
      const [cols, rows] = wanted;
      wanted = undefined;
      // A failed resize (the program just exited) must not keep the newer size from going.
      await apply(cols, rows).catch((err: unknown) => (failure = err));
    }
    running = undefined;
    if (failure !== undefined) throw failure;
  };
  return (cols, rows) => {
    wanted = [cols, rows];
    running ??= pump();
    return running;
  };
}
