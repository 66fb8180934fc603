/**
 * Sends datagrams to the service manager's notification socket (`$NOTIFY_SOCKET`, sd_notify(3)).
 * Bun has no AF_UNIX datagram sockets, so socket(2) and sendto(2) are called through `bun:ffi`
 * from the C library, as the listener's socket filter does. The socket is non-blocking: a full
 * receive queue drops the notification instead of stalling the supervisor.
 *
 * @module
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0x800;
const SOCK_CLOEXEC = 0x80000;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un.sun_path) on Linux. */
const SUN_PATH_MAX = 108;
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];
const ERRNO: Record<number, string> = { 2: "ENOENT", 11: "EAGAIN", 13: "EACCES", 22: "EINVAL", 91: "EPROTOTYPE", 97: "EAFNOSUPPORT", 111: "ECONNREFUSED" };

/** A datagram socket that writes to one AF_UNIX address. */
export interface NotifySocket {
  /** Sends `text` as one datagram; throws an Error naming errno when the kernel refuses it. */
  send(text: string): void;
  /** Closes the socket. */
  close(): void;
}

/**
 * The `struct sockaddr_un` for a `$NOTIFY_SOCKET` value: a path (`/run/...`) or, with a
 * leading `@`, a Linux abstract socket name. Throws for anything else.
 */
export function sockaddrUn(address: string): Uint8Array {
  const abstract = address.startsWith("@");
  if (!abstract && !address.startsWith("/")) {
    throw new Error(`NOTIFY_SOCKET "${address}" is neither an absolute path nor an abstract socket name (@...)`);
  }
  const path = new TextEncoder().encode(address);
  if (abstract) path[0] = 0;
  // A path is NUL-terminated; an abstract name's length is exact.
  const pathLen = path.length + (abstract ? 0 : 1);
  if (pathLen > SUN_PATH_MAX) throw new Error(`NOTIFY_SOCKET "${address}" is longer than the ${SUN_PATH_MAX} bytes a unix socket address holds`);
  const addr = new Uint8Array(2 + pathLen);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(path, 2);
  return addr;
}

/** Opens a socket that sends to `address` (a `$NOTIFY_SOCKET` value); throws with the reason when it cannot. */
export function openNotifySocket(address: string): NotifySocket {
  const addr = sockaddrUn(address);
  if (process.platform !== "linux") throw new Error(`NOTIFY_SOCKET needs Linux, this is ${process.platform}`);
  const errors: string[] = [];
  for (const name of LIBC_NAMES) {
    let lib;
    try {
      lib = dlopen(name, {
        socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
        sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64 },
        close: { args: [FFIType.i32], returns: FFIType.i32 },
        __errno_location: { args: [], returns: FFIType.ptr },
      });
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
      continue;
    }
    const { socket, sendto, close, __errno_location } = lib.symbols;
    const errno = () => {
      const at = __errno_location();
      const n = typeof at === "number" && at !== 0 ? read.i32(at as Parameters<typeof read.i32>[0], 0) : 0;
      return ERRNO[n] ? `${ERRNO[n]} (${n})` : String(n);
    };
    const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error(`socket(AF_UNIX, SOCK_DGRAM) failed with errno ${errno()}`);
    let open = true;
    return {
      send(text: string) {
        if (!open) throw new Error("The notify socket is closed");
        const bytes = new TextEncoder().encode(text);
        const n = sendto(fd, ptr(bytes), bytes.length, MSG_NOSIGNAL, ptr(addr), addr.length);
        if (Number(n) !== bytes.length) throw new Error(`sendto(${address}) failed with errno ${errno()}`);
      },
      close() {
        if (open) close(fd);
        open = false;
      },
    };
  }
  throw new Error(`Cannot load the C library through bun:ffi (${errors.join("; ")})`);
}
