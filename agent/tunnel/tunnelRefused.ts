/** A tunnel the agent would not open: its HTTP status (which says whether trying again can help) and reason. */
export class TunnelRefused extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'TunnelRefused';
  }
}
