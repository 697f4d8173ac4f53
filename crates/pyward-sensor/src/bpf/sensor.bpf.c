// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * pyward's kernel sensor: CO-RE programs on syscall-exit and scheduler tracepoints.
 *
 * Only tracepoint-family programs are used (tp_btf, with raw_tp as the fallback the loader
 * picks when tp_btf does not load): pyward's own machines refuse LSM/fentry and have no kprobes.
 * Arguments are read from the saved user registers at sys_exit, so user strings (paths) are
 * read after the kernel has paged them in. Every event goes through one BPF ring buffer, with
 * variable size (header + the strings actually read), built in a per-CPU scratch buffer.
 *
 * Architecture-neutral: syscall arguments come through libbpf's PT_REGS_PARMn_CORE_SYSCALL
 * (x86_64: di si dx r10 r8 r9; arm64: orig_x0 x1..x5), the syscall number from the arch's
 * pt_regs field, and the numbers themselves from the per-arch tables below (arm64 uses the
 * asm-generic table, which has no open/creat/rename/unlink/chmod/dup2). Build with
 * -D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64.
 *
 * Scratch buffer and preemption: the record is assembled in a per-CPU array (it is up to
 * 8 KiB, too big for the 512-byte BPF stack). Reserving the maximum size in the ring buffer
 * instead (bpf_ringbuf_reserve needs a constant size) would spend 8 KiB of ring per event
 * whatever its real size, i.e. ~40x fewer events before drops. The per-CPU buffer is safe
 * because these tracepoints run their BPF programs with preemption disabled (the scheduler
 * tracepoints are not faultable; the syscall tracepoints, faultable since 6.14, wrap BPF
 * programs in preempt_disable_notrace), and none of them fires from interrupt context.
 * Should that ever change (a hook added in IRQ context, a PREEMPT_RT variant), the `busy`
 * flag turns the would-be overwrite into a counted drop (stats[3]) instead of a corrupted
 * record.
 *
 * The layout of `struct event` is mirrored in src/raw.rs; change both together.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define STR_MAX 4096 /* power of two: used as a mask for the verifier */
#define ADDR_MAX 28  /* sizeof(struct sockaddr_in6) */
#define NR_MAX 512   /* size of the interesting-syscalls table */
#define MAGIC_MAX 64 /* bytes captured of a first write/read at offset 0 */
#define PATH_DEPTH 32 /* path components walked for a file's path (power of two) */
#define NAME_READ 256 /* longest path component read (NAME_MAX + NUL) */

/* Event kinds (enum EventKind in src/raw.rs). */
#define EV_SYSCALL 1 /* a syscall exit; nr says which */
#define EV_EXEC 2    /* sched_process_exec: a successful execve/execveat */
#define EV_FORK 3    /* sched_process_fork of a new process (not a thread) */
#define EV_EXIT 4    /* sched_process_exit of a thread-group leader */

/* Flags in event.flags. */
#define EF_STR1_TRUNC 1
#define EF_STR2_TRUNC 2
#define EF_EXE_MEMFD 4
#define EF_SOCK_OK 8         /* lport/laddr/l4 were read from the socket */
#define EF_EXE_WRITABLE 16   /* exec: the executable is writable by the process's fsuid/fsgid */
#define EF_EXE_UPPER 32      /* exec: overlayfs, the file is on the upper layer */
#define EF_EXE_LOWER 64      /* exec: overlayfs, the file is only on a lower layer */
#define EF_FILE_DELETED 128  /* exec/io: the inode has no links left (i_nlink == 0) */
#define EF_FILE_OK 256       /* ino/dev were read from the kernel's file */
#define EF_TIMES_OK 512      /* ctime_ns/mtime_ns were read */

/* Stats slots. */
#define ST_SUBMITTED 0
#define ST_RING_DROPS 1
#define ST_TRACKED_FULL 2
#define ST_SCRATCH_BUSY 3
#define ST_OPENS_FOLDED 4
#define ST_CLOSES_FOLDED 5
#define ST_SLOTS 6

struct event {
	__u32 kind;
	__u32 nr;
	__u64 ts_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u64 cgroup_id;
	__s64 ret;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 loginuid;
	char comm[16];
	__u64 args[6]; /* raw syscall arguments (or kind-specific numbers) */
	__u64 ino;     /* exec: inode of the executable; open/io: inode of the file */
	__u32 flags;
	__u16 str1_len; /* bytes of str1 in data, including the NUL */
	__u16 str2_len; /* bytes of str2 in data after str1 */
	__u8 addr[ADDR_MAX]; /* connect/sendto/sendmsg: the sockaddr as passed */
	__u16 lport;         /* socket: local port (host order) */
	__u16 l4proto;       /* socket: IPPROTO_* */
	__u8 laddr[16];      /* socket: local address (4 or 16 bytes) */
	__u32 dev;           /* the file's superblock s_dev (kernel encoding) */
	__u32 busy;          /* scratch in use on this CPU (not event data) */
	__u64 ctime_ns;      /* exec: executable's ctime, ns since the epoch */
	__u64 mtime_ns;      /* exec: executable's mtime */
	char data[2 * STR_MAX]; /* starts at offset 208 */
};

#define HDR_SIZE __builtin_offsetof(struct event, data)

struct sensor_config {
	__u32 self_tgid; /* events of the sensor's own process are dropped */
	__u32 follow;    /* 1: only processes in `tracked` (pyward run) */
	__u32 fold;      /* 1: fold repeated read-only opens (see "Repeat folding") */
	__u32 pad;
	__u64 seed[2];   /* random per start: keys the fold hash */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sensor_config);
} sensor_config SEC(".maps");

/* Syscall numbers to report (1) or skip (0), filled by user space from what the rules and
 * detectors need: the write/read family here is what turns first-bytes capture on. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_MAX);
	__type(key, __u32);
	__type(value, __u8);
} interesting SEC(".maps");

/* Process tree followed by `pyward run`: tgid -> 1, seeded with the child, kept on fork/exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} tracked SEC(".maps");

/* Counters: 0 events submitted, 1 ring-buffer drops, 2 tracked-map full, 3 scratch busy,
 * 4 opens folded, 5 closes folded. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

/* A path being built: dentry name pointers (leaf first) and the walk's state. The state
 * lives in this map value, not on the stack, so the verifier sees it as unknown and checks
 * each bpf_loop callback once instead of once per concrete value. */
struct path_parts {
	__u64 names[PATH_DEPTH];
	struct dentry *d;
	struct mount *mnt;
	__u32 n;
	__u32 off;
	__u32 complete;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_parts);
} path_scratch SEC(".maps");

/* First-bytes capture: one event per (process, fd, open file, inode, direction). LRU, so
 * the map is bounded and forgets closed files first. */
struct io_key {
	__u64 file;  /* struct file pointer */
	__u64 ino;   /* its inode: a reused struct file of another file is another key */
	__u32 tgid;
	__u32 fd_dir; /* fd, bit 31 set for writes */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct io_key);
	__type(value, __u8);
} io_seen SEC(".maps");

/*
 * Repeat folding. A process that opens the same file again and again (a config file read in a
 * loop, a poller) would send one open and one close event per cycle, and those events are
 * most of the sensor's cost on such loops. A read-only open of a regular file that matches,
 * in everything a rule or detector can see of it, an open this process reported less than
 * FOLD_WINDOW_JIFFIES ago (about a second) is therefore counted (stats[4]) and not sent, and the close of its fd
 * is counted (stats[5]) and not sent either, so the user-space fd table, which never learnt
 * the fd, stays right. A dup of such an fd carries the file's path and inode for the same
 * reason. Never folded: failed opens, opens that can write, create or truncate,
 * non-regular files (a directory fd could be the base of a later *at call), truncated paths,
 * and everything while recording (user space turns `fold` off).
 *
 * "Everything a rule can see" is the fold key: process and thread ids, parent, uid/gid,
 * login uid, credentials (pointer), exec generation (self_exec_id), comm, cgroup; syscall,
 * flags, mode, resolve, the fd returned; the raw path string; and the file opened (inode,
 * device). A relative path also keys the directory it started from (cwd or
 * dirfd) and the namespace generation, bumped by every successful rename, mount, umount,
 * pivot_root, chroot, unshare, setns and move_mount on the host: those are what can change
 * the absolute path user space is given for a relative open of the same dentry. An absolute
 * path's fd.name is its own text, which is in the key.
 *
 * The key is a 128-bit hash seeded at random on every start (the seed is in a map only root
 * can read), kept with the inode number in the process's own fold state.
 */
/* The window is counted in jiffies: bpf_jiffies64 is one load, bpf_ktime_get_ns reads the
 * clock source (a visible cost on a VM) and the coarse clock is refused in tracing programs.
 * 250 jiffies is 1 s at HZ=250, 0.25 s at HZ=1000, 2.5 s at HZ=100; HZ is not read from the
 * kernel config, which libbpf would then require to be installed. */
#define FOLD_WINDOW_JIFFIES 250
#define FOLD_SLOTS 16   /* recent opens remembered per process (power of two) */
#define FOLD_FDS 1024   /* fds below this can be folded (bitmap size) */

struct fold_slot {
	__u64 h1;
	__u64 h2;
	__u64 ino;
	__u64 sent_jiffies; /* when this open was last sent */
};

/* Per process (task storage of the thread-group leader, freed with it): the opens it sent
 * recently, direct-mapped by hash, and the fds whose open was folded and whose close is
 * therefore folded too. A bit is cleared at that close and whenever a sent event makes the
 * fd number known to user space again (an open, socket, memfd or dup returning it); a stale
 * bit (an fd closed by exec or close_range) can only fold the close of an fd user space was
 * never told about, which it would ignore. */
struct fold_state {
	struct fold_slot slots[FOLD_SLOTS];
	__u64 fds[FOLD_FDS / 64];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fold_state);
} fold_states SEC(".maps");

/* The namespace generation (see above). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ns_gen SEC(".maps");

/* Layouts not taken from vmlinux.h: struct inode time fields moved across kernel versions
 * (CO-RE flavours, matched by name without the ___suffix). */
struct inode___v6_11 {
	time64_t i_mtime_sec;
	time64_t i_ctime_sec;
	__u32 i_mtime_nsec;
	__u32 i_ctime_nsec;
} __attribute__((preserve_access_index));

struct inode___v6_6 {
	struct timespec64 __i_ctime;
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));

struct inode___v6_7 {
	struct timespec64 __i_ctime;
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));

struct inode___old {
	struct timespec64 i_ctime;
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));

#define S_IFMT 0170000
#define S_IFREG 0100000
#define SB_RDONLY 1
#define S_IMMUTABLE 8
#define CAP_DAC_OVERRIDE 1
#define OVERLAYFS_SUPER_MAGIC 0x794c7630

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&stats, &idx);
	if (c)
		*c += 1;
}

static __always_inline struct sensor_config *get_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&sensor_config, &zero);
}

/* Whether events of the current process are wanted. */
static __always_inline int wanted_by(struct sensor_config *cfg, __u32 tgid)
{
	if (!cfg)
		return 0;
	if (tgid == cfg->self_tgid)
		return 0;
	if (cfg->follow && !bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	return 1;
}

static __always_inline int wanted(__u32 tgid)
{
	return wanted_by(get_config(), tgid);
}

static __always_inline struct event *new_event(__u32 kind, __u32 nr)
{
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	if (e->busy) {
		count(ST_SCRATCH_BUSY);
		return 0;
	}
	e->busy = 1;
	/* A trusted BTF pointer: its fields are plain (fault-checked) loads, not a helper call
	 * each as BPF_CORE_READ on an untyped pointer would be. */
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();
	e->kind = kind;
	e->nr = nr;
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->ret = 0;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = task->real_parent->tgid;
	e->uid = (__u32)ug;
	e->gid = ug >> 32;
	e->loginuid = (__u32)-1;
	if (bpf_core_field_exists(task->loginuid))
		e->loginuid = task->loginuid.val;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	for (int i = 0; i < 6; i++)
		e->args[i] = 0;
	e->ino = 0;
	e->dev = 0;
	e->ctime_ns = 0;
	e->mtime_ns = 0;
	e->flags = 0;
	e->str1_len = 0;
	e->str2_len = 0;
	e->lport = 0;
	e->l4proto = 0;
	return e;
}

/* Read a user string into str1. */
static __always_inline void read_user_str1(struct event *e, const void *p)
{
	long n = bpf_probe_read_user_str(&e->data[0], STR_MAX, p);
	if (n < 0)
		n = 0;
	if (n >= STR_MAX)
		e->flags |= EF_STR1_TRUNC;
	e->str1_len = n & (STR_MAX - 1);
}

static __always_inline void read_kernel_str1(struct event *e, const void *p)
{
	long n = bpf_probe_read_kernel_str(&e->data[0], STR_MAX, p);
	if (n < 0)
		n = 0;
	if (n >= STR_MAX)
		e->flags |= EF_STR1_TRUNC;
	e->str1_len = n & (STR_MAX - 1);
}

/* Read a user string into str2 (right after str1). */
static __always_inline void read_user_str2(struct event *e, const void *p)
{
	__u32 off = e->str1_len & (STR_MAX - 1);
	long n = bpf_probe_read_user_str(&e->data[off], STR_MAX, p);
	if (n < 0)
		n = 0;
	if (n >= STR_MAX)
		e->flags |= EF_STR2_TRUNC;
	e->str2_len = n & (STR_MAX - 1);
}

/* Syscall numbers handled here, per architecture (mirrored in src/raw.rs). -1: the
 * architecture has no such syscall. */
#if defined(__TARGET_ARCH_x86)
#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_close 3
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_dup 32
#define NR_dup2 33
#define NR_socket 41
#define NR_connect 42
#define NR_sendto 44
#define NR_sendmsg 46
#define NR_execve 59
#define NR_chdir 80
#define NR_fchdir 81
#define NR_rename 82
#define NR_creat 85
#define NR_link 86
#define NR_unlink 87
#define NR_symlink 88
#define NR_chmod 90
#define NR_ptrace 101
#define NR_setuid 105
#define NR_setgid 106
#define NR_setreuid 113
#define NR_setregid 114
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_init_module 175
#define NR_openat 257
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_symlinkat 266
#define NR_fchmodat 268
#define NR_dup3 292
#define NR_preadv 295
#define NR_pwritev 296
#define NR_sendmmsg 307
#define NR_finit_module 313
#define NR_renameat2 316
#define NR_memfd_create 319
#define NR_execveat 322
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_pivot_root 155
#define NR_chroot 161
#define NR_mount 165
#define NR_umount2 166
#define NR_unshare 272
#define NR_setns 308
#define NR_move_mount 429
/* r10, r9, r8, ax, cx, dx, si, di, orig_ax: consecutive in the (ABI-fixed) x86_64 pt_regs. */
#define REGS_FIRST r10
#define REGS_WORDS 9
#define SYS_NR(w) ((long)(w)[8])
#define SYS_ARGS(w, a)                                                                          \
	do {                                                                                    \
		(a)[0] = (w)[7]; /* di */                                                       \
		(a)[1] = (w)[6]; /* si */                                                       \
		(a)[2] = (w)[5]; /* dx */                                                       \
		(a)[3] = (w)[0]; /* r10 */                                                      \
		(a)[4] = (w)[2]; /* r8 */                                                       \
		(a)[5] = (w)[1]; /* r9 */                                                       \
	} while (0)
/* The same from a BTF-typed pt_regs (tp_btf): plain loads, no helper call. */
#define SYS_NR_TYPED(r) ((long)(r)->orig_ax)
#define SYS_ARGS_TYPED(r, a)                                                                    \
	do {                                                                                    \
		(a)[0] = (r)->di;                                                               \
		(a)[1] = (r)->si;                                                               \
		(a)[2] = (r)->dx;                                                               \
		(a)[3] = (r)->r10;                                                              \
		(a)[4] = (r)->r8;                                                               \
		(a)[5] = (r)->r9;                                                               \
	} while (0)
#elif defined(__TARGET_ARCH_arm64)
#define NR_open -1
#define NR_creat -1
#define NR_rename -1
#define NR_unlink -1
#define NR_chmod -1
#define NR_dup2 -1
#define NR_link -1
#define NR_symlink -1
#define NR_dup 23
#define NR_dup3 24
#define NR_unlinkat 35
#define NR_symlinkat 36
#define NR_linkat 37
#define NR_renameat 38
#define NR_chdir 49
#define NR_fchdir 50
#define NR_fchmodat 53
#define NR_openat 56
#define NR_close 57
#define NR_read 63
#define NR_write 64
#define NR_readv 65
#define NR_writev 66
#define NR_pread64 67
#define NR_pwrite64 68
#define NR_preadv 69
#define NR_pwritev 70
#define NR_init_module 105
#define NR_ptrace 117
#define NR_setregid 143
#define NR_setgid 144
#define NR_setreuid 145
#define NR_setuid 146
#define NR_setresuid 147
#define NR_setresgid 149
#define NR_socket 198
#define NR_connect 203
#define NR_sendto 206
#define NR_sendmsg 211
#define NR_execve 221
#define NR_sendmmsg 269
#define NR_finit_module 273
#define NR_renameat2 276
#define NR_memfd_create 279
#define NR_execveat 281
#define NR_openat2 437
#define NR_fchmodat2 452
#define NR_umount2 39
#define NR_mount 40
#define NR_pivot_root 41
#define NR_chroot 51
#define NR_unshare 97
#define NR_setns 268
#define NR_move_mount 429
/* regs[0..30], sp, pc, pstate, orig_x0, syscallno: the arguments are regs[1..5] and orig_x0
 * (x0 holds the return value at exit); read_sys_call reads them for raw_tp. */
#define SYS_NR_TYPED(r) ((long)(r)->syscallno)
#define SYS_ARGS_TYPED(r, a)                                                                    \
	do {                                                                                    \
		(a)[0] = (r)->orig_x0;                                                          \
		(a)[1] = (r)->regs[1];                                                          \
		(a)[2] = (r)->regs[2];                                                          \
		(a)[3] = (r)->regs[3];                                                          \
		(a)[4] = (r)->regs[4];                                                          \
		(a)[5] = (r)->regs[5];                                                          \
	} while (0)
#else
#error "pyward-sensor: define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

/* Send the event; 1 if it went into the ring buffer. */
static __always_inline int submit(void *ctx, struct event *e)
{
	int sent = 0;
	__u64 len = HDR_SIZE + (e->str1_len & (STR_MAX - 1)) + (e->str2_len & (STR_MAX - 1));
	if (len <= sizeof(struct event)) {
		if (bpf_ringbuf_output(&events, e, len, 0) == 0) {
			count(ST_SUBMITTED);
			sent = 1;
		} else {
			count(ST_RING_DROPS);
		}
	}
	e->busy = 0;
	return sent;
}

/* The open file behind fd `fd` of the current task, or NULL. */
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	unsigned int maxfds = fdt->max_fds;
	if (fd < 0 || fd >= maxfds)
		return 0;
	struct file **fdarr = fdt->fd;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fdarr[fd]);
	/* Typed (bpf_rdonly_cast, inlined by the verifier): callers read its fields directly. */
	return bpf_core_cast(f, struct file);
}

/* Inode number, device and link count of an inode. */
static __always_inline void read_inode_id(struct event *e, struct inode *ino)
{
	if (!ino)
		return;
	ino = bpf_core_cast(ino, struct inode);
	e->ino = ino->i_ino;
	e->dev = ino->i_sb->s_dev;
	if (ino->__i_nlink == 0)
		e->flags |= EF_FILE_DELETED;
	e->flags |= EF_FILE_OK;
}

/* ctime/mtime of an inode, whichever layout this kernel has. */
static __always_inline void read_inode_times(struct event *e, struct inode *ino)
{
	__u64 cs = 0, cn = 0, ms = 0, mn = 0;
	struct inode___v6_11 *i11 = (void *)ino;
	struct inode___v6_7 *i7 = (void *)ino;
	struct inode___v6_6 *i6 = (void *)ino;
	struct inode___old *io = (void *)ino;
	if (bpf_core_field_exists(i11->i_ctime_sec)) {
		cs = BPF_CORE_READ(i11, i_ctime_sec);
		cn = BPF_CORE_READ(i11, i_ctime_nsec);
		ms = BPF_CORE_READ(i11, i_mtime_sec);
		mn = BPF_CORE_READ(i11, i_mtime_nsec);
	} else if (bpf_core_field_exists(i7->__i_mtime)) {
		cs = BPF_CORE_READ(i7, __i_ctime.tv_sec);
		cn = BPF_CORE_READ(i7, __i_ctime.tv_nsec);
		ms = BPF_CORE_READ(i7, __i_mtime.tv_sec);
		mn = BPF_CORE_READ(i7, __i_mtime.tv_nsec);
	} else if (bpf_core_field_exists(i6->__i_ctime)) {
		cs = BPF_CORE_READ(i6, __i_ctime.tv_sec);
		cn = BPF_CORE_READ(i6, __i_ctime.tv_nsec);
		ms = BPF_CORE_READ(i6, i_mtime.tv_sec);
		mn = BPF_CORE_READ(i6, i_mtime.tv_nsec);
	} else if (bpf_core_field_exists(io->i_ctime)) {
		cs = BPF_CORE_READ(io, i_ctime.tv_sec);
		cn = BPF_CORE_READ(io, i_ctime.tv_nsec);
		ms = BPF_CORE_READ(io, i_mtime.tv_sec);
		mn = BPF_CORE_READ(io, i_mtime.tv_nsec);
	} else {
		return;
	}
	/* Since 6.13 bit 31 of i_ctime_nsec flags a multigrain "queried" ctime; nanoseconds
	 * fit in 30 bits. */
	e->ctime_ns = cs * 1000000000ULL + (cn & 0x3fffffff);
	e->mtime_ns = ms * 1000000000ULL + (mn & 0x3fffffff);
	e->flags |= EF_TIMES_OK;
}

/* Falco's proc.is_exe_writable: could the process (fsuid/fsgid, CAP_DAC_OVERRIDE) write the
 * executable? Read-only filesystems and immutable inodes are never writable. Supplementary
 * groups are not checked (as in Falco's modern probe). */
static __always_inline int exe_writable(struct task_struct *task, struct inode *ino)
{
	__u16 mode = BPF_CORE_READ(ino, i_mode);
	unsigned long sflags = BPF_CORE_READ(ino, i_sb, s_flags);
	if (sflags & SB_RDONLY)
		return 0;
	if (BPF_CORE_READ(ino, i_flags) & S_IMMUTABLE)
		return 0;
	const struct cred *cred = BPF_CORE_READ(task, cred);
	__u32 fsuid = BPF_CORE_READ(cred, fsuid.val);
	__u32 fsgid = BPF_CORE_READ(cred, fsgid.val);
	__u32 iuid = BPF_CORE_READ(ino, i_uid.val);
	__u32 igid = BPF_CORE_READ(ino, i_gid.val);
	if (fsuid == iuid) {
		if (mode & 0200)
			return 1;
	} else if (fsgid == igid) {
		if (mode & 0020)
			return 1;
	} else if (mode & 0002) {
		return 1;
	}
	/* kernel_cap_t is a u64 (6.3+) or u32[2]: bit CAP_DAC_OVERRIDE of the first word. */
	__u32 cap_lo = 0;
	bpf_core_read(&cap_lo, sizeof(cap_lo), &cred->cap_effective);
	return (cap_lo >> CAP_DAC_OVERRIDE) & 1;
}

/* Falco's proc.is_exe_upper_layer: on overlayfs, struct ovl_inode keeps its upper dentry
 * right after the embedded vfs inode; a non-NULL one with an inode means "upper". */
static __always_inline void exe_layer(struct event *e, struct inode *ino)
{
	unsigned long magic = BPF_CORE_READ(ino, i_sb, s_magic);
	if (magic != OVERLAYFS_SUPER_MAGIC)
		return;
	__u64 isz = bpf_core_type_size(struct inode);
	struct dentry *upper = 0;
	if (isz)
		bpf_probe_read_kernel(&upper, sizeof(upper), (void *)ino + isz);
	if (upper && BPF_CORE_READ(upper, d_inode))
		e->flags |= EF_EXE_UPPER;
	else
		e->flags |= EF_EXE_LOWER;
}

/* Context of the bpf_loop callbacks: pointers only (the changing state is in path_parts). */
struct path_ctx {
	struct event *e;
	struct path_parts *pp;
};

/* One step up: record the dentry's name, or cross to the parent mount at a mount root. */
static long path_walk_step(__u64 i, void *vctx)
{
	struct path_ctx *c = vctx;
	struct path_parts *pp = c->pp;
	/* Typed pointers: plain loads instead of a helper call per field. */
	struct dentry *d = bpf_core_cast(pp->d, struct dentry);
	struct mount *mnt = bpf_core_cast(pp->mnt, struct mount);
	struct dentry *mnt_root = mnt->mnt.mnt_root;
	struct dentry *parent = d->d_parent;
	if (d == mnt_root || d == parent) {
		struct mount *mp = mnt->mnt_parent;
		if (d != mnt_root || mp == mnt || !mp) {
			pp->complete = 1;
			return 1;
		}
		pp->d = mnt->mnt_mountpoint;
		pp->mnt = mp;
		return 0;
	}
	__u32 n = pp->n;
	if (n >= PATH_DEPTH)
		return 1;
	pp->names[n & (PATH_DEPTH - 1)] = (__u64)d->d_name.name;
	pp->n = n + 1;
	pp->d = parent;
	return 0;
}

/* Write component n-1-i (root first) as "/name" at the current offset. */
static long path_write_step(__u64 i, void *vctx)
{
	struct path_ctx *c = vctx;
	struct path_parts *pp = c->pp;
	struct event *e = c->e;
	__u32 n = pp->n;
	if (i >= n)
		return 1;
	__u32 off = pp->off;
	if (off >= STR_MAX - NAME_READ - 1) {
		e->flags |= EF_STR1_TRUNC;
		return 1;
	}
	e->data[off & (STR_MAX - 1)] = '/';
	off++;
	__u32 idx = (n - 1 - (__u32)i) & (PATH_DEPTH - 1);
	long r = bpf_probe_read_kernel_str(&e->data[off & (STR_MAX - 1)], NAME_READ,
					   (const void *)pp->names[idx]);
	if (r > 1 && r <= NAME_READ)
		off += r - 1;
	pp->off = off;
	return 0;
}

/* The path of an open file, built from its dentries and mounts (bpf_d_path is not allowed in
 * tracepoint programs), into str1. At most PATH_DEPTH components (deeper paths keep their
 * last components and set EF_STR1_TRUNC). Paths are as seen from the mount namespace root.
 * Needs bpf_loop (kernel 5.17+) and bpf_rdonly_cast (6.2+). */
static __always_inline void read_file_path(struct event *e, struct file *f)
{
	__u32 zero = 0;
	struct path_parts *pp = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pp)
		return;
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	pp->d = BPF_CORE_READ(f, f_path.dentry);
	pp->mnt = (struct mount *)((void *)vm - bpf_core_field_offset(struct mount, mnt));
	pp->n = 0;
	pp->off = 0;
	pp->complete = 0;
	struct path_ctx c = { .e = e, .pp = pp };
	bpf_loop(PATH_DEPTH + 8, path_walk_step, &c, 0);
	if (!pp->complete)
		e->flags |= EF_STR1_TRUNC;
	bpf_loop(PATH_DEPTH, path_write_step, &c, 0);
	__u32 off = pp->off;
	if (off == 0) {
		e->data[0] = '/';
		off = 1;
	}
	e->data[off & (STR_MAX - 1)] = 0;
	e->str1_len = (off + 1) & (STR_MAX - 1);
}

/* The absolute path of a mount + dentry, into str2 (after str1): user space cannot resolve a
 * relative name reliably later (the process may have changed directory with `cd`, or exited,
 * by the time the event is read). Built as read_file_path does, from the dentries. */
static __always_inline void read_path_str2(struct event *e, struct vfsmount *vm,
					   struct dentry *dentry)
{
	__u32 zero = 0;
	struct path_parts *pp = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pp || !vm || !dentry)
		return;
	__u32 start = e->str1_len & (STR_MAX - 1);
	pp->d = dentry;
	pp->mnt = (struct mount *)((void *)vm - bpf_core_field_offset(struct mount, mnt));
	pp->n = 0;
	pp->off = start;
	pp->complete = 0;
	struct path_ctx c = { .e = e, .pp = pp };
	bpf_loop(PATH_DEPTH + 8, path_walk_step, &c, 0);
	if (!pp->complete)
		return; /* a partial path would be wrong, not just short: let user space resolve */
	bpf_loop(PATH_DEPTH, path_write_step, &c, 0);
	__u32 off = pp->off;
	if (off <= start || off >= STR_MAX - 1)
		return;
	e->data[off & (STR_MAX - 1)] = 0;
	e->str2_len = (off + 1 - start) & (STR_MAX - 1);
}

static __always_inline void read_open_path_str2(struct event *e, struct file *f)
{
	read_path_str2(e, BPF_CORE_READ(f, f_path.mnt), BPF_CORE_READ(f, f_path.dentry));
}

/* The current task's working directory (after a successful chdir/fchdir), into str2: user
 * space keeps proc.cwd from these instead of racing /proc/PID/cwd. */
static __always_inline void read_cwd_str2(struct event *e)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(t, fs);
	if (!fs)
		return;
	read_path_str2(e, BPF_CORE_READ(fs, pwd.mnt), BPF_CORE_READ(fs, pwd.dentry));
}

/* Local end of a socket fd of the current task: port, address, protocol. */
static __always_inline void read_socket(struct event *e, long fd)
{
	struct file *f = fd_file(fd);
	if (!f)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->l4proto = BPF_CORE_READ(sk, sk_protocol);
	__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (fam == 2 /* AF_INET */) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(e->laddr, &a, 4);
	} else if (fam == 10 /* AF_INET6 */) {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
	}
	e->flags |= EF_SOCK_OK;
}


/* A syscall's number and arguments, copied out of pt_regs with one helper call: read one by
 * one (BPF_CORE_READ is a helper call each), they cost more than the rest of a close event. */
struct sys_call {
	long nr;
	__u64 a[6];
};

static __always_inline int read_sys_call(struct pt_regs *regs, struct sys_call *c)
{
#if defined(__TARGET_ARCH_arm64)
	/* regs[1..5] and (orig_x0, syscallno): two short reads, not the 288 bytes between, which
	 * would not fit on the BPF stack next to the fold state. */
	__u64 w[6], tail[2];
	if (bpf_probe_read_kernel(w, sizeof(w), &regs->regs[0]) ||
	    bpf_probe_read_kernel(tail, sizeof(tail), &regs->orig_x0))
		return -1;
	c->nr = (long)(__s32)tail[1];
	c->a[0] = tail[0];
	c->a[1] = w[1];
	c->a[2] = w[2];
	c->a[3] = w[3];
	c->a[4] = w[4];
	c->a[5] = w[5];
#else
	__u64 w[REGS_WORDS];
	if (bpf_probe_read_kernel(w, sizeof(w), (void *)regs + __builtin_offsetof(struct pt_regs, REGS_FIRST)))
		return -1;
	c->nr = SYS_NR(w);
	SYS_ARGS(w, c->a);
#endif
	return 0;
}

#define ARG(n, c) ((c)->a[(n) - 1])

#define IO_ON 1
#define IO_WRITE 2
#define IO_VEC 4        /* the buffer is an iovec array */
#define IO_POSITIONAL 8 /* the offset is argument 4 (pread/pwrite family) */

/* Which first-bytes capture a syscall is (0: none). */
static __always_inline int io_kind(long nr)
{
	if (nr == NR_write)
		return IO_ON | IO_WRITE;
	if (nr == NR_read)
		return IO_ON;
	if (nr == NR_pwrite64)
		return IO_ON | IO_WRITE | IO_POSITIONAL;
	if (nr == NR_pread64)
		return IO_ON | IO_POSITIONAL;
	if (nr == NR_writev)
		return IO_ON | IO_WRITE | IO_VEC;
	if (nr == NR_readv)
		return IO_ON | IO_VEC;
	if (nr == NR_pwritev)
		return IO_ON | IO_WRITE | IO_VEC | IO_POSITIONAL;
	if (nr == NR_preadv)
		return IO_ON | IO_VEC | IO_POSITIONAL;
	return 0;
}

/* First bytes at offset 0 of a regular file, for the write or read family. Without
 * IO_POSITIONAL, "at offset 0" means the file position after the call equals the bytes
 * moved. */
static __always_inline int on_io(struct pt_regs *regs, const struct sys_call *c, long ret, int io)
{
	int is_write = io & IO_WRITE;
	int vec = io & IO_VEC;
	int positional = io & IO_POSITIONAL;
	if (ret <= 0)
		return 0;
	long fd = (long)ARG(1, c);
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	struct inode *ino = f->f_inode;
	if (!ino)
		return 0;
	__u16 mode = ino->i_mode;
	if ((mode & S_IFMT) != S_IFREG)
		return 0;
	if (positional) {
		if (ARG(4, c) != 0)
			return 0;
	} else {
		long long pos = f->f_pos;
		if (pos != ret)
			return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	struct io_key key = {
		.file = (__u64)f,
		.ino = ino->i_ino,
		.tgid = id >> 32,
		.fd_dir = ((__u32)fd & 0x7fffffff) | (is_write ? 0x80000000 : 0),
	};
	if (bpf_map_lookup_elem(&io_seen, &key))
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&io_seen, &key, &one, BPF_ANY);
	struct event *e = new_event(EV_SYSCALL, c->nr);
	if (!e)
		return 0;
	e->ret = ret;
	e->args[0] = fd;
	e->args[1] = ARG(2, c);
	e->args[2] = ARG(3, c);
	e->args[3] = ARG(4, c);
	read_inode_id(e, ino);
	read_file_path(e, f);
	const void *buf = (const void *)e->args[1];
	__u64 len = ret;
	if (vec) {
		/* struct iovec { void *iov_base; size_t iov_len; }: the first one. */
		__u64 iov[2] = {};
		bpf_probe_read_user(iov, sizeof(iov), buf);
		buf = (const void *)iov[0];
		if (iov[1] < len)
			len = iov[1];
	}
	if (len > MAGIC_MAX)
		len = MAGIC_MAX;
	__u32 off = e->str1_len & (STR_MAX - 1);
	if (len > 0 && bpf_probe_read_user(&e->data[off], len & (2 * MAGIC_MAX - 1), buf) == 0)
		e->str2_len = len & (2 * MAGIC_MAX - 1);
	submit(regs, e);
	return 0;
}

/* sendto/sendmsg/sendmmsg with an explicit destination (unconnected UDP, TCP fast open). */
static __always_inline int on_send(struct pt_regs *regs, const struct sys_call *c, long ret)
{
	__u64 addr = 0, alen = 0;
	if (c->nr == NR_sendto) {
		addr = ARG(5, c);
		alen = ARG(6, c);
	} else {
		/* struct user_msghdr (first of the vector for sendmmsg): msg_name, msg_namelen. */
		struct {
			__u64 name;
			__u32 namelen;
		} hdr = {};
		if (bpf_probe_read_user(&hdr, sizeof(hdr), (const void *)ARG(2, c)) != 0)
			return 0;
		addr = hdr.name;
		alen = hdr.namelen;
	}
	if (!addr || !alen)
		return 0;
	struct event *e = new_event(EV_SYSCALL, c->nr);
	if (!e)
		return 0;
	e->ret = ret;
	e->args[0] = ARG(1, c);
	e->args[1] = ARG(2, c);
	e->args[2] = ARG(3, c);
	e->args[3] = ARG(4, c);
	if (alen > ADDR_MAX)
		alen = ADDR_MAX;
	__builtin_memset(e->addr, 0, ADDR_MAX);
	bpf_probe_read_user(e->addr, alen & 31, (const void *)addr);
	read_socket(e, (long)e->args[0]);
	submit(regs, e);
	return 0;
}

/* --- Repeat folding (see the maps above) --- */

#define AT_FDCWD -100
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000

struct fold_hash {
	__u64 h1;
	__u64 h2;
};

/* Two independent multiply-xorshift lanes, each seeded at random. */
static __always_inline void fold_mix(struct fold_hash *h, __u64 w)
{
	__u64 a = (h->h1 ^ w) * 0x9E3779B97F4A7C15ULL;
	h->h1 = a ^ (a >> 31);
	__u64 b = (h->h2 + w) * 0xC2B2AE3D27D4EB4FULL;
	h->h2 = ((b << 27) | (b >> 37)) ^ (b >> 33);
}

struct str_hash_ctx {
	struct event *e;
	struct fold_hash h;
	__u32 n;
};

/* One 8-byte word of str1 past the first 64 bytes (bytes past its end masked off). */
static long str_hash_step(__u64 i, void *vctx)
{
	struct str_hash_ctx *c = vctx;
	__u32 off = 64 + (__u32)i * 8;
	__u32 n = c->n;
	if (off >= n)
		return 1;
	__u64 w = *(__u64 *)&c->e->data[off & (STR_MAX - 8)];
	__u32 left = n - off;
	if (left < 8)
		w &= (1ULL << ((left & 7) * 8)) - 1;
	fold_mix(&c->h, w);
	return 0;
}

/* The n bytes of str1 into the hash: the first 64 inline (most paths are shorter), the rest
 * in a bpf_loop. */
static __always_inline void hash_str1(struct event *e, __u32 n, struct fold_hash *h)
{
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i * 8 >= n)
			return;
		__u64 w = *(__u64 *)&e->data[i * 8];
		__u32 left = n - i * 8;
		if (left < 8)
			w &= (1ULL << ((left & 7) * 8)) - 1;
		fold_mix(h, w);
	}
	if (n <= 64)
		return;
	struct str_hash_ctx c = { .e = e, .h = *h, .n = n };
	bpf_loop(STR_MAX / 8 - 8, str_hash_step, &c, 0);
	*h = c.h;
}

#define FOLD_NO 0     /* send it, and remember it as sent */
#define FOLD_YES 1    /* a repeat: fold it */
#define FOLD_NEVER -1 /* not foldable: send it */

/* The fold state of `task`'s process (created when `create`), or NULL. */
static __always_inline struct fold_state *fold_state_of(struct task_struct *task, int create)
{
	return bpf_task_storage_get(&fold_states, task->group_leader, 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* Whether the successful open `c` (syscall nr, fd `ret`) repeats one this process sent less
 * than FOLD_WINDOW_JIFFIES ago. Runs before the event's header is built, so that a repeat costs
 * as little as possible: the task's fields are read with plain loads, not helper calls, and
 * the clock is jiffies.
 *
 * The path is read into this CPU's scratch buffer, and its length (with the NUL) returned in
 * *path_len when it was read whole: the caller's event reuses it (nothing else runs on this
 * CPU in between). On FOLD_NO, *key is what to store in **st once the event is sent. */
static __always_inline int fold_open(struct sensor_config *cfg, struct task_struct *task,
				     const struct sys_call *c, long nr, long ret,
				     struct fold_slot *key, struct fold_state **st, __u32 *path_len)
{
	__u64 flags, mode, resolve = 0;
	long dirfd = AT_FDCWD;
	const void *path;
	if (nr == NR_open) {
		path = (const void *)ARG(1, c);
		flags = ARG(2, c);
		mode = ARG(3, c);
	} else {
		dirfd = (int)ARG(1, c);
		path = (const void *)ARG(2, c);
		flags = ARG(3, c);
		mode = ARG(4, c);
		if (nr == NR_openat2) {
			/* struct open_how { u64 flags; u64 mode; u64 resolve; } */
			__u64 how[3] = {};
			if (bpf_probe_read_user(how, sizeof(how), (const void *)ARG(3, c)))
				return FOLD_NEVER;
			flags = how[0];
			mode = how[1];
			resolve = how[2];
		}
	}
	if ((flags & O_ACCMODE) != 0 || (flags & (O_CREAT | O_TRUNC)))
		return FOLD_NEVER;
	if (ret < 0 || ret >= FOLD_FDS)
		return FOLD_NEVER;
	struct file *f = fd_file(ret);
	if (!f)
		return FOLD_NEVER;
	struct inode *ino = f->f_inode;
	if (!ino || (ino->i_mode & S_IFMT) != S_IFREG)
		return FOLD_NEVER;

	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e || e->busy)
		return FOLD_NEVER;
	long n = bpf_probe_read_user_str(&e->data[0], STR_MAX, path);
	if (n <= 1 || n >= STR_MAX)
		return FOLD_NEVER;
	*path_len = n;

	struct fold_hash hh = { cfg->seed[0], cfg->seed[1] };
	struct fold_hash *h = &hh;
	hash_str1(e, n, h);
	const struct cred *cr = task->cred;
	fold_mix(h, ((__u64)n << 32) | nr);
	fold_mix(h, (__u64)ret);
	fold_mix(h, flags);
	fold_mix(h, mode);
	fold_mix(h, resolve);
	fold_mix(h, ((__u64)task->tgid << 32) | (__u32)task->pid);
	fold_mix(h, task->real_parent->tgid);
	fold_mix(h, task->self_exec_id);
	fold_mix(h, ((__u64)cr->uid.val << 32) | cr->gid.val);
	fold_mix(h, ((__u64)cr->euid.val << 32) | cr->egid.val);
	fold_mix(h, ((__u64)cr->suid.val << 32) | cr->sgid.val);
	fold_mix(h, ((__u64)cr->fsuid.val << 32) | cr->fsgid.val);
	/* kernel_cap_t: a u64 (6.3+) or u32[2], 8 bytes either way (thread.cap_effective). */
	__u64 caps = 0;
	bpf_core_read(&caps, sizeof(caps), &cr->cap_effective);
	fold_mix(h, caps);
	if (bpf_core_field_exists(task->loginuid))
		fold_mix(h, task->loginuid.val);
	fold_mix(h, *(__u64 *)&task->comm[0]);
	fold_mix(h, *(__u64 *)&task->comm[8]);
	fold_mix(h, task->cgroups->dfl_cgrp->kn->id);
	/* The file opened (its identity is inode and device: fd.ino, fd.dev). */
	__u64 ino_nr = ino->i_ino;
	fold_mix(h, ino->i_sb->s_dev);
	if (e->data[0] != '/') {
		/* Relative: the directory it started from (mount and dentry, read as numbers:
		 * the verifier allows no arithmetic on pointers), and renames/mounts since. */
		__u64 base[2] = {};
		if ((int)dirfd == AT_FDCWD) {
			bpf_probe_read_kernel(base, sizeof(base), &task->fs->pwd);
		} else {
			struct file *df = fd_file((int)dirfd);
			if (!df)
				return FOLD_NEVER;
			bpf_probe_read_kernel(base, sizeof(base), &df->f_path);
		}
		if (!base[1])
			return FOLD_NEVER;
		fold_mix(h, base[0]);
		fold_mix(h, base[1]);
		__u64 *gen = bpf_map_lookup_elem(&ns_gen, &zero);
		fold_mix(h, gen ? *gen : 0);
	}
	__u64 now = bpf_jiffies64();
	key->h1 = h->h1;
	key->h2 = h->h2;
	key->ino = ino_nr;
	key->sent_jiffies = now;
	struct fold_state *s = fold_state_of(task, 1);
	if (!s)
		return FOLD_NEVER;
	*st = s;
	struct fold_slot *slot = &s->slots[h->h1 & (FOLD_SLOTS - 1)];
	if (slot->h1 == key->h1 && slot->h2 == key->h2 && slot->ino == key->ino &&
	    now - slot->sent_jiffies < FOLD_WINDOW_JIFFIES)
		return FOLD_YES;
	return FOLD_NO;
}

/* Mark fd as folded (its close will be folded too). */
static __always_inline void fold_fd_set(struct fold_state *s, long fd)
{
	__u32 i = (__u32)fd;
	if (i < FOLD_FDS)
		__sync_fetch_and_or(&s->fds[(i / 64) & (FOLD_FDS / 64 - 1)], 1ULL << (i % 64));
}

/* Unmark fd; whether it was marked. */
static __always_inline int fold_fd_take(struct fold_state *s, long fd)
{
	__u32 i = (__u32)fd;
	if (!s || i >= FOLD_FDS)
		return 0;
	__u64 bit = 1ULL << (i % 64);
	__u64 *w = &s->fds[(i / 64) & (FOLD_FDS / 64 - 1)];
	if (!(*w & bit))
		return 0;
	return (__sync_fetch_and_and(w, ~bit) & bit) != 0;
}

/* openat2's struct open_how { u64 flags; u64 mode; u64 resolve; } into args 2..4. */
static __always_inline void read_open_how(struct event *e)
{
	__u64 how[3] = {};
	bpf_probe_read_user(how, sizeof(how), (const void *)e->args[2]);
	e->args[2] = how[0];
	e->args[3] = how[1];
	e->args[4] = how[2];
}

/* Syscalls after which a relative path may name another absolute path (see "Repeat
 * folding"). */
static __always_inline int changes_paths(long nr)
{
	return nr == NR_rename || nr == NR_renameat || nr == NR_renameat2 || nr == NR_mount ||
	       nr == NR_umount2 || nr == NR_pivot_root || nr == NR_chroot || nr == NR_unshare ||
	       nr == NR_setns || nr == NR_move_mount;
}

/* Syscalls whose result is a new fd that user space learns from the event. */
static __always_inline int returns_fd(long nr)
{
	return nr == NR_open || nr == NR_openat || nr == NR_openat2 || nr == NR_creat ||
	       nr == NR_memfd_create || nr == NR_socket || nr == NR_dup || nr == NR_dup2 ||
	       nr == NR_dup3;
}

/* `typed`: regs is a BTF-typed pointer (tp_btf), read with plain loads, and only as far as
 * needed: most syscall exits stop at the `interesting` check, and this path runs for every
 * syscall on the host. raw_tp's untyped regs are copied out with one helper call. */
static __always_inline int on_sys_exit(struct pt_regs *regs, long ret, int typed)
{
	struct sys_call c;
	long nr;
	if (typed) {
		nr = SYS_NR_TYPED(regs);
	} else {
		if (read_sys_call(regs, &c))
			return 0;
		nr = c.nr;
	}
	if (nr < 0 || nr >= NR_MAX)
		return 0;
	if (ret == 0 && changes_paths(nr)) {
		__u32 zero = 0;
		__u64 *gen = bpf_map_lookup_elem(&ns_gen, &zero);
		if (gen)
			__sync_fetch_and_add(gen, 1);
	}
	__u32 key = nr;
	__u8 *on = bpf_map_lookup_elem(&interesting, &key);
	if (!on || !*on)
		return 0;
	/* A successful exec is reported by sched_process_exec, with the new image. */
	if ((nr == NR_execve || nr == NR_execveat) && ret == 0)
		return 0;
	if (typed) {
		c.nr = nr;
		SYS_ARGS_TYPED(regs, c.a);
	}
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct sensor_config *cfg = get_config();
	if (!wanted_by(cfg, tgid))
		return 0;
	int fold = cfg && cfg->fold;
	struct task_struct *task = bpf_get_current_task_btf();
	if (fold && nr == NR_close && fold_fd_take(fold_state_of(task, 0), (long)c.a[0])) {
		count(ST_CLOSES_FOLDED);
		return 0;
	}
	int io = io_kind(nr);
	if (io)
		return on_io(regs, &c, ret, io);
	if (nr == NR_sendto || nr == NR_sendmsg || nr == NR_sendmmsg)
		return on_send(regs, &c, ret);
	/* Repeat folding: decided before the event is built. */
	struct fold_slot fk = {};
	struct fold_state *fst = 0;
	int remember = 0;
	__u32 path_len = 0;
	if (fold && ret >= 0 && (nr == NR_open || nr == NR_openat || nr == NR_openat2)) {
		int r = fold_open(cfg, task, &c, nr, ret, &fk, &fst, &path_len);
		if (r == FOLD_YES && fst) {
			fold_fd_set(fst, ret);
			count(ST_OPENS_FOLDED);
			return 0;
		}
		remember = r == FOLD_NO;
	}
	struct event *e = new_event(EV_SYSCALL, nr);
	if (!e)
		return 0;
	e->ret = ret;
	e->args[0] = ARG(1, &c);
	e->args[1] = ARG(2, &c);
	e->args[2] = ARG(3, &c);
	e->args[3] = ARG(4, &c);
	e->args[4] = ARG(5, &c);
	e->args[5] = ARG(6, &c);
	if (path_len > 0) {
		/* fold_open read the path whole into this CPU's scratch data already. */
		e->str1_len = path_len & (STR_MAX - 1);
		if (nr == NR_openat2)
			read_open_how(e);
	} else if (nr == NR_open || nr == NR_creat || nr == NR_unlink || nr == NR_chmod ||
	    nr == NR_execve || nr == NR_memfd_create) {
		read_user_str1(e, (const void *)e->args[0]);
	} else if (nr == NR_openat || nr == NR_unlinkat || nr == NR_fchmodat ||
		   nr == NR_fchmodat2 || nr == NR_execveat) {
		read_user_str1(e, (const void *)e->args[1]);
	} else if (nr == NR_rename || nr == NR_link || nr == NR_symlink) {
		read_user_str1(e, (const void *)e->args[0]);
		read_user_str2(e, (const void *)e->args[1]);
	} else if (nr == NR_symlinkat) {
		read_user_str1(e, (const void *)e->args[0]);
		read_user_str2(e, (const void *)e->args[2]);
	} else if (nr == NR_chdir || nr == NR_fchdir) {
		if (nr == NR_chdir)
			read_user_str1(e, (const void *)e->args[0]);
		if (ret == 0)
			read_cwd_str2(e);
	} else if (nr == NR_init_module) {
		read_user_str1(e, (const void *)e->args[2]);
	} else if (nr == NR_finit_module) {
		/* The module file's path, then the module parameters. */
		struct file *mf = fd_file((long)e->args[0]);
		if (mf)
			read_file_path(e, mf);
		read_user_str2(e, (const void *)e->args[1]);
	} else if (nr == NR_renameat || nr == NR_renameat2 || nr == NR_linkat) {
		read_user_str1(e, (const void *)e->args[1]);
		read_user_str2(e, (const void *)e->args[3]);
	} else if (nr == NR_openat2) {
		read_user_str1(e, (const void *)e->args[1]);
		read_open_how(e);
	} else if (nr == NR_connect) {
		__u64 alen = e->args[2];
		if (alen > ADDR_MAX)
			alen = ADDR_MAX;
		__builtin_memset(e->addr, 0, ADDR_MAX);
		bpf_probe_read_user(e->addr, alen & 31, (const void *)e->args[1]);
		read_socket(e, (long)e->args[0]);
	} else if (nr == NR_socket && ret >= 0) {
		read_socket(e, ret);
	}
	/* The opened file itself: device and inode (Falco's fd.dev, fd.ino). */
	if (ret >= 0 && (nr == NR_open || nr == NR_openat || nr == NR_openat2 || nr == NR_creat ||
			 nr == NR_memfd_create)) {
		struct file *f = fd_file(ret);
		if (f) {
			read_inode_id(e, f->f_inode);
			if (nr != NR_memfd_create && e->str1_len > 1 && e->data[0] != '/')
				read_open_path_str2(e, f);
		}
	}
	/* dup of a folded fd: user space never learnt it, so the event names the file. */
	if (fold && ret >= 0 && (nr == NR_dup || nr == NR_dup2 || nr == NR_dup3)) {
		struct fold_state *ds = fold_state_of(task, 0);
		__u32 old = (__u32)e->args[0];
		if (ds && old < FOLD_FDS &&
		    (ds->fds[(old / 64) & (FOLD_FDS / 64 - 1)] & (1ULL << (old % 64)))) {
			struct file *f = fd_file((long)e->args[0]);
			if (f) {
				read_inode_id(e, f->f_inode);
				read_file_path(e, f);
			}
		}
	}
	int sent = submit(regs, e);
	if (sent && remember && fst)
		fst->slots[fk.h1 & (FOLD_SLOTS - 1)] = fk;
	if (fold && ret >= 0 && returns_fd(nr))
		fold_fd_take(fst ? fst : fold_state_of(task, 0), ret);
	return 0;
}

static __always_inline int on_exec(struct task_struct *p, struct linux_binprm *bprm)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32))
		return 0;
	struct event *e = new_event(EV_EXEC, 0);
	if (!e)
		return 0;
	read_kernel_str1(e, BPF_CORE_READ(bprm, filename));
	struct file *exe = BPF_CORE_READ(bprm, file);
	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	if (ino) {
		read_inode_id(e, ino);
		read_inode_times(e, ino);
		if (exe_writable(p, ino))
			e->flags |= EF_EXE_WRITABLE;
		exe_layer(e, ino);
	}
	/* memfd files are named "memfd:<name>" (d_name of the file's dentry). */
	char name[6] = {};
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(exe, f_path.dentry, d_name.name));
	if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd')
		e->flags |= EF_EXE_MEMFD;
	/* argv of the new image: NUL-separated, from the new mm. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	__u64 start = BPF_CORE_READ(mm, arg_start);
	__u64 end = BPF_CORE_READ(mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len >= STR_MAX) {
		len = STR_MAX - 1;
		e->flags |= EF_STR2_TRUNC;
	}
	__u32 off = e->str1_len & (STR_MAX - 1);
	if (len > 0 && bpf_probe_read_user(&e->data[off], len & (STR_MAX - 1), (const void *)start) == 0)
		e->str2_len = len & (STR_MAX - 1);
	e->args[0] = e->str1_len; /* keep argument slots deterministic */
	submit(p, e);
	return 0;
}

static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child)
{
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u32 cpid = BPF_CORE_READ(child, pid);
	if (ctgid != cpid)
		return 0; /* a new thread, not a new process */
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	struct sensor_config *cfg = get_config();
	if (!cfg)
		return 0;
	if (cfg->follow) {
		if (!bpf_map_lookup_elem(&tracked, &ptgid))
			return 0;
		__u8 one = 1;
		if (bpf_map_update_elem(&tracked, &ctgid, &one, BPF_ANY) != 0)
			count(ST_TRACKED_FULL);
	}
	if (ptgid == cfg->self_tgid)
		return 0;
	struct event *e = new_event(EV_FORK, 0);
	if (!e)
		return 0;
	/* The event is the child's: pid/ppid are rewritten from the child task. */
	e->pid = ctgid;
	e->tid = cpid;
	e->ppid = ptgid;
	e->args[0] = ptgid;
	BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
	submit(child, e);
	return 0;
}

static __always_inline int on_exit(struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u32 pid = BPF_CORE_READ(p, pid);
	if (tgid != pid)
		return 0; /* a thread */
	int want = wanted(tgid);
	bpf_map_delete_elem(&tracked, &tgid);
	if (!want)
		return 0;
	struct event *e = new_event(EV_EXIT, 0);
	if (!e)
		return 0;
	e->ret = BPF_CORE_READ(p, exit_code);
	submit(p, e);
	return 0;
}

/* Preferred attachment: BTF-typed tracepoints. */
SEC("tp_btf/sys_exit")
int BPF_PROG(btf_sys_exit, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs, ret, 1);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(btf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(p, bprm);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(btf_fork, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(btf_exit, struct task_struct *p)
{
	return on_exit(p);
}

/* Fallback: raw tracepoints (same arguments, untyped context). */
SEC("raw_tp/sys_exit")
int BPF_PROG(raw_sys_exit, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs, ret, 0);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(raw_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(p, bprm);
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(raw_fork, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(raw_exit, struct task_struct *p)
{
	return on_exit(p);
}
