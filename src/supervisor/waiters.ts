/**
 * Promises that wait for a named signal from another process, with a deadline: an API call
 * waiting for a device's ack, a worker waiting for the supervisor to relay its notice.
 */
export class Waiters<K> {
  private readonly waiting = new Map<K, () => void>();

  /** Resolves true when `key` is signalled within `ms`, false when the time runs out first. */
  wait(key: K, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        resolve(false);
      }, ms);
      this.waiting.set(key, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Ends the wait for `key`, if any. */
  signal(key: K): void {
    const done = this.waiting.get(key);
    this.waiting.delete(key);
    done?.();
  }
}
