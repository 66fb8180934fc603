/**
 * Drops new connections from chosen IPv4 source addresses inside the kernel, before they cost
 * the worker anything: a classic BPF socket filter on the listening socket (SO_ATTACH_FILTER).
 * Linux runs a listening socket's filter on every SYN and handshake ACK it receives; a packet
 * the filter rejects is discarded before a SYN-ACK, a request socket or an accept(). The peer
 * sees what a firewall DROP looks like: no answer, its connect retries and times out.
 *
 * Sockets accepted while a filter is attached inherit a copy of it; their peers are, by
 * construction, not on the list, so the copy never drops anything of theirs.
 *
 * Bun has no API for socket options: setsockopt is called through `bun:ffi` from the C
 * library. Where that cannot be loaded (no glibc/musl found, FFI unavailable) {@link openSynFilter}
 * says why and the caller keeps refusing in user space.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";

/** Most addresses one filter drops (each is one BPF instruction; jumps span at most 255). */
export const MAX_DROPPED_ADDRESSES = 200;

const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
const SO_DETACH_FILTER = 27;
/** Offset that makes a BPF load address the network (IP) header, wherever the data starts. */
const SKF_NET_OFF = -0x100000;

// Classic BPF opcodes (linux/filter.h).
const LD_B_ABS = 0x30;
const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JEQ_K = 0x15;
const RET_K = 0x06;

/** The 32-bit value of an IPv4 address ("a.b.c.d" or IPv4-mapped "::ffff:a.b.c.d"), or null. */
export function ipv4Number(addr: string): number | null {
  // Bun leaves remoteAddress undefined on a socket the peer already reset.
  if (typeof addr !== "string") return null;
  const v4 = addr.startsWith("::ffff:") ? addr.slice(7) : addr;
  const parts = v4.split(".");
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const b = Number(p);
    if (b > 255) return null;
    n = n * 256 + b;
  }
  return n;
}

/**
 * A filter program (an array of `struct sock_filter`, 8 bytes each) that drops IPv4 packets
 * whose source is one of `sources` and keeps everything else (IPv6 included).
 */
export function dropProgram(sources: readonly number[]): Uint8Array {
  if (sources.length === 0 || sources.length > MAX_DROPPED_ADDRESSES) {
    throw new Error(`A drop program takes 1 to ${MAX_DROPPED_ADDRESSES} addresses, not ${sources.length}`);
  }
  const n = sources.length;
  // 0: A = first byte of the IP header     1: A &= 0xf0 (version)
  // 2: if A != 0x40 goto keep              3: A = source address
  // 4..4+n-1: if A == source[i] goto drop  4+n: keep   5+n: drop
  const keep = 4 + n;
  const code: [op: number, jt: number, jf: number, k: number][] = [
    [LD_B_ABS, 0, 0, SKF_NET_OFF],
    [ALU_AND_K, 0, 0, 0xf0],
    [JEQ_K, 0, keep - 3, 0x40],
    [LD_W_ABS, 0, 0, SKF_NET_OFF + 12],
  ];
  sources.forEach((s, i) => code.push([JEQ_K, keep - (4 + i), 0, s]));
  code.push([RET_K, 0, 0, 0xffff_ffff], [RET_K, 0, 0, 0]);
  const bytes = new Uint8Array(code.length * 8);
  const view = new DataView(bytes.buffer);
  code.forEach(([op, jt, jf, k], i) => {
    view.setUint16(i * 8, op, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k >>> 0, true);
  });
  return bytes;
}

/** Sets the drop list of listening sockets. */
export interface SynFilter {
  /** Makes the listening socket `fd` drop new connections from `sources` (empty: none). */
  apply(fd: number, sources: readonly number[]): void;
}

const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

/** Loads the C library's setsockopt; returns the filter, or why it is unavailable. */
export function openSynFilter(): SynFilter | string {
  if (process.platform !== "linux") return `socket filters need Linux, this is ${process.platform}`;
  const errors: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      const lib = dlopen(name, {
        setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
        __errno_location: { args: [], returns: FFIType.ptr },
      });
      return new LibcSynFilter(lib.symbols.setsockopt, lib.symbols.__errno_location);
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message}`);
    }
  }
  return `cannot load the C library through bun:ffi (${errors.join("; ")})`;
}

/** Names of the errors setsockopt can give here. */
const ERRNO: Record<number, string> = { 1: "EPERM", 9: "EBADF", 12: "ENOMEM", 14: "EFAULT", 22: "EINVAL", 88: "ENOTSOCK" };

type SetSockOpt = (fd: number, level: number, name: number, value: ReturnType<typeof ptr> | null, len: number) => number;

class LibcSynFilter implements SynFilter {
  constructor(
    private readonly setsockopt: SetSockOpt,
    private readonly errnoLocation: () => unknown,
  ) {}

  private errno(): number {
    const at = this.errnoLocation();
    return typeof at === "number" && at !== 0 ? read.i32(at as Parameters<typeof read.i32>[0], 0) : 0;
  }

  private failed(what: string, fd: number): Error {
    const n = this.errno();
    return new Error(`setsockopt(${what}) on fd ${fd} failed with errno ${ERRNO[n] ? `${ERRNO[n]} (${n})` : n}`);
  }

  apply(fd: number, sources: readonly number[]): void {
    if (sources.length === 0) {
      // The kernel wants an int-sized value even here. ENOENT: no filter attached, as asked.
      if (this.setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, ptr(new Int32Array(1)), 4) !== 0 && this.errno() !== 2) {
        throw this.failed("SO_DETACH_FILTER", fd);
      }
      return;
    }
    const program = dropProgram(sources);
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (pointer at 8).
    const fprog = new Uint8Array(16);
    const view = new DataView(fprog.buffer);
    view.setUint16(0, program.length / 8, true);
    view.setBigUint64(8, BigInt(ptr(program)), true);
    // The kernel copies the program during the call; both buffers may go afterwards.
    if (this.setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, ptr(fprog), 16) !== 0) {
      throw this.failed("SO_ATTACH_FILTER", fd);
    }
  }
}
