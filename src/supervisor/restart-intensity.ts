/**
 * Restart intensity, OTP style: restarts of all children counted in a sliding window.
 * The supervisor gives up when more than `maxRestarts` restarts fall within `periodMs`.
 */

/** A sliding-window restart counter. */
export interface RestartIntensity {
  /** Records a restart at `now` (ms) and returns how many restarts fall in the window ending at `now`. */
  record(now: number): number;
  /** How many restarts fall in the window ending at `now`, without recording one. */
  count(now: number): number;
}

/** Creates a counter whose window is `periodMs` long (a restart exactly `periodMs` ago has left it). */
export function createRestartIntensity(periodMs: number): RestartIntensity {
  const times: number[] = [];
  const prune = (now: number) => {
    while (times.length > 0 && times[0]! <= now - periodMs) times.shift();
  };
  return {
    record(now) {
      prune(now);
      times.push(now);
      return times.length;
    },
    count(now) {
      prune(now);
      return times.length;
    },
  };
}
