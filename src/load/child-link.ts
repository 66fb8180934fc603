/**
 * A child process's end of the IPC channel to the `owsla load` coordinator: typed send, and
 * one `onGone` call when the coordinator disappears (channel closed, or this process was
 * re-parented because the coordinator was killed), so no simulator outlives its run.
 */

/** How often the parent pid is checked, in ms. */
const PARENT_CHECK_MS = 1000;

/** A child's link to the coordinator. */
export interface ChildLink<Out> {
  send(msg: Out): void;
}

/**
 * Connects to the coordinator. Throws when this process was not started with an IPC channel
 * (the `--child` flag is internal: `owsla load` starts these processes itself).
 */
export function connectToCoordinator<In, Out>(onMessage: (m: In) => void, onGone: () => void): ChildLink<Out> {
  if (typeof process.send !== "function") {
    throw new Error("owsla load --child is started by `owsla load` itself (it needs the IPC channel); run `owsla load --help` for the options");
  }
  const parent = process.ppid;
  let gone = false;
  const leave = () => {
    if (gone) return;
    gone = true;
    onGone();
  };
  process.on("message", (m) => onMessage(m as In));
  process.on("disconnect", leave);
  // Ctrl-C reaches the whole process group: the coordinator decides how children stop.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", leave);
  const timer = setInterval(() => {
    if (process.ppid !== parent || !process.connected) leave();
  }, PARENT_CHECK_MS);
  timer.unref?.();
  return {
    send(msg: Out) {
      if (gone || !process.connected) return;
      try {
        process.send!(msg);
      } catch {
        // channel closing; `disconnect` follows
      }
    },
  };
}
