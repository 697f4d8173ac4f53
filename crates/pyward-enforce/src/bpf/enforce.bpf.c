// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * pyward's in-kernel enforcement.
 *
 * Only mechanisms that load on pyward's kernels (no BPF LSM, no fentry, no kprobes):
 *  - cgroup/connect4|connect6|sendmsg4|sendmsg6: return 0 (EPERM to the caller) when the
 *    destination is in an LPM-trie blocklist;
 *  - sched_process_exec: SIGKILL (bpf_send_signal) an exec of a drifted file (written or
 *    changed since start, memfd, deleted) before the new image runs an instruction;
 *  - sys_exit of open*: SIGKILL the opener of a protected inode (not allowed comm) before the
 *    open returns to user space, so no byte is read; SIGKILL an interpreter opening a drifted
 *    script that is its own first non-option argument;
 *  - sys_exit of write/unlink/rename: per-account sliding window of encrypted-looking writes at
 *    offset 0 and destructive operations; SIGKILL from within the syscall at the threshold.
 * The tracepoint programs exist twice, tp_btf (preferred) and raw_tp (fallback).
 *
 * The layout of `struct enf_event` is mirrored in src/event.rs; change both together.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SIGKILL 9
#define TARGET_MAX 256
#define HEAD_MAX 64    /* bytes of a write examined for magic and byte variety */
#define ARGS_MAX 512   /* bytes of argv examined for the script rule */
#define NAME_MAX_ 64   /* bytes of a dentry name compared */
#define NB 8           /* sliding-window buckets (seconds) */
#define ANCESTORS 8    /* allowlist: comm, then this many ancestors */

/* Mechanisms (config.mech bits). */
#define M_NET 1
#define M_EXEC 2
#define M_OPEN 4
#define M_RANSOM 8

/* Event kinds and actions (src/event.rs). */
#define K_NET 1
#define K_EXEC 2
#define K_OPEN 3
#define K_RANSOM 4
#define K_TREE 5
#define A_DENIED 1
#define A_KILLED 2
#define A_REPORTED 3 /* dry run */
#define A_KILL_FAILED 4

/* Exec reasons (event.reason bits). */
#define R_WRITTEN 1  /* (dev, ino) opened for writing / truncated since start */
#define R_CHANGED 2  /* inode ctime after start (write, chmod, rename, link...) */
#define R_MEMFD 4
#define R_DELETED 8
#define R_SCRIPT 16  /* an interpreter opened a drifted script (its argument) */

/* Allowlist bits (comm -> bits). */
#define AL_EXEC 1
#define AL_RANSOM 2

/* Statistics (per-CPU array indexes, src/enforcer.rs). */
#define S_NET_DENIED 0
#define S_EXEC_KILLED 1
#define S_OPEN_KILLED 2
#define S_RANSOM_KILLED 3
#define S_TREE_KILLED 4
#define S_RING_DROPS 5
#define S_DRIFT_TRACKED 6
#define S_ENC_WRITES 7
#define S_DESTRUCTIVE 8
#define S_KILL_FAILED 9
#define S_TRACKED_FULL 10
#define S_MAX 12

#define S_IFMT 00170000
#define S_IFREG 0100000
#define O_ACCMODE 3
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_PATH 010000000
#define AT_REMOVEDIR 0x200

struct enf_event {
	__u64 ts_ns;
	__u64 cgroup_id;
	__u64 dev; /* kernel dev_t (major << 20 | minor) */
	__u64 ino;
	__u32 kind;
	__u32 action;
	__u32 pid; /* thread id */
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 reason;
	__u32 family;
	__u16 port; /* host order */
	__u16 proto;
	__u32 root;
	__u32 enc;
	__u32 destr;
	__u32 nr;
	__u8 addr[16];
	char comm[16];
	char pcomm[16];
	char target[TARGET_MAX];
};

struct enforce_config {
	__u32 self_tgid;
	__u32 scoped;   /* 1: only processes in `tracked` */
	__u32 mech;     /* M_* bits */
	__u32 dry_run;  /* 1: report, never kill or deny */
	__u32 enc_min;  /* ransomware: encrypted writes in the window */
	__u32 destr_min;   /* ransomware: destructive ops in the window */
	__u32 window_s;    /* ransomware: window in seconds (1..NB) */
	__u32 distinct_min; /* distinct byte values in HEAD_MAX bytes to look encrypted */
	__s64 start_sec;   /* realtime at start: inodes changed later are drifted */
	__u32 start_nsec;
	__u32 pad;
};

struct lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct devino {
	__u64 dev;
	__u64 ino;
};

struct window {
	__u64 sec[NB];
	__u32 enc[NB];
	__u32 destr[NB];
};

struct comm_key {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} enf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct enforce_config);
} enf_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm4);
	__type(value, __u8);
} block4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm6);
	__type(value, __u8);
} block6 SEC(".maps");

/* Inodes opened for writing / truncated since start. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct devino);
	__type(value, __u8);
} drifted SEC(".maps");

/* Protected inodes -> group bits (one bit per protect_paths call). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct devino);
	__type(value, __u32);
} protected_inodes SEC(".maps");

/* comm -> protected groups it may open. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct comm_key);
	__type(value, __u32);
} open_allow SEC(".maps");

/* comm -> AL_* bits (exec of drifted files, ransomware), also checked on ancestors. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct comm_key);
	__type(value, __u32);
} allow SEC(".maps");

/* Interpreters for the script rule (comm -> 1); comms starting with "python" always are. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct comm_key);
	__type(value, __u8);
} interpreters SEC(".maps");

/* Scoped processes: tgid -> root tgid (scope_to seeds root -> root; kept across fork). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} tracked SEC(".maps");

/* Ransomware accounts (root tgid, or tgid when not scoped) -> window. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct window);
} windows SEC(".maps");

/* Inodes already counted as encrypted writes (once per inode). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct devino);
	__type(value, __u8);
} enc_seen SEC(".maps");

/* Roots whose whole tree is to die at its next syscall exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} doomed SEC(".maps");

/* Never written: exposes struct enf_event to the skeleton, for the layout checks in lib.rs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct enf_event);
} enf_layout SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, S_MAX);
	__type(key, __u32);
	__type(value, __u64);
} enf_stats SEC(".maps");

struct scratch {
	__u8 head[HEAD_MAX];
	char args[ARGS_MAX];
	char name[NAME_MAX_];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} enf_scratch SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&enf_stats, &idx);
	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline struct enforce_config *enf_cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&enf_config, &zero);
}

/* Whether the current process is subject to enforcement (2: as a member of a scoped
 * tree, 1: host-wide); *root is its account. */
static __always_inline int in_scope(struct enforce_config *cfg, __u32 tgid, __u32 *root)
{
	if (tgid == cfg->self_tgid)
		return 0;
	__u32 *r = bpf_map_lookup_elem(&tracked, &tgid);
	if (r) {
		*root = *r;
		return 2;
	}
	*root = tgid;
	return !cfg->scoped;
}

static __always_inline struct enf_event *new_event(__u32 kind, __u32 action)
{
	struct enf_event *e = bpf_ringbuf_reserve(&enf_events, sizeof(*e), 0);
	if (!e) {
		count(S_RING_DROPS);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	__u64 id = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->kind = kind;
	e->action = action;
	e->pid = (__u32)id;
	e->tgid = id >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

/* Task-side fields of an event (not available to cgroup programs). */
static __always_inline void event_task(struct enf_event *e)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	e->ppid = BPF_CORE_READ(parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->pcomm, parent, comm);
}

/* SIGKILL the current process unless in dry run; returns the action taken. */
static __always_inline __u32 kill_current(struct enforce_config *cfg)
{
	if (cfg->dry_run)
		return A_REPORTED;
	if (bpf_send_signal(SIGKILL) != 0) {
		count(S_KILL_FAILED);
		return A_KILL_FAILED;
	}
	return A_KILLED;
}

/* ---------------------------------------------------------------- network */

static __always_inline int net_verdict(struct bpf_sock_addr *ctx, int v6)
{
	struct enforce_config *cfg = enf_cfg();
	if (!cfg || !(cfg->mech & M_NET))
		return 1;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 root = 0;
	if (!in_scope(cfg, tgid, &root))
		return 1;
	__u8 addr[16] = {};
	int hit = 0;
	__u32 family = 2;
	if (!v6) {
		struct lpm4 k = {.prefixlen = 32};
		__u32 a = ctx->user_ip4;
		__builtin_memcpy(k.addr, &a, 4);
		__builtin_memcpy(addr, &a, 4);
		hit = bpf_map_lookup_elem(&block4, &k) != 0;
	} else {
		struct lpm6 k = {.prefixlen = 128};
		__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1];
		__u32 w2 = ctx->user_ip6[2], w3 = ctx->user_ip6[3];
		__builtin_memcpy(&k.addr[0], &w0, 4);
		__builtin_memcpy(&k.addr[4], &w1, 4);
		__builtin_memcpy(&k.addr[8], &w2, 4);
		__builtin_memcpy(&k.addr[12], &w3, 4);
		__builtin_memcpy(addr, k.addr, 16);
		family = 10;
		if (w0 == 0 && w1 == 0 && w2 == bpf_htonl(0xffff)) {
			/* IPv4-mapped: the IPv4 list applies. */
			struct lpm4 k4 = {.prefixlen = 32};
			__builtin_memcpy(k4.addr, &w3, 4);
			hit = bpf_map_lookup_elem(&block4, &k4) != 0;
		}
		if (!hit)
			hit = bpf_map_lookup_elem(&block6, &k) != 0;
	}
	if (!hit)
		return 1;
	__u32 action = cfg->dry_run ? A_REPORTED : A_DENIED;
	count(S_NET_DENIED);
	struct enf_event *e = new_event(K_NET, action);
	if (e) {
		e->family = family;
		e->port = bpf_ntohs((__u16)ctx->user_port);
		e->proto = ctx->protocol;
		e->root = root;
		__builtin_memcpy(e->addr, addr, 16);
		bpf_ringbuf_submit(e, 0);
	}
	return cfg->dry_run ? 1 : 0;
}

SEC("cgroup/connect4")
int enf_connect4(struct bpf_sock_addr *ctx)
{
	return net_verdict(ctx, 0);
}

SEC("cgroup/connect6")
int enf_connect6(struct bpf_sock_addr *ctx)
{
	return net_verdict(ctx, 1);
}

SEC("cgroup/sendmsg4")
int enf_sendmsg4(struct bpf_sock_addr *ctx)
{
	return net_verdict(ctx, 0);
}

SEC("cgroup/sendmsg6")
int enf_sendmsg6(struct bpf_sock_addr *ctx)
{
	return net_verdict(ctx, 1);
}

/* ---------------------------------------------------------------- helpers */

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fdarr = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int maxfds = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd < 0 || (unsigned int)fd >= maxfds)
		return 0;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fdarr[fd]);
	return f;
}

static __always_inline void inode_key(struct inode *inode, struct devino *k)
{
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->ino = BPF_CORE_READ(inode, i_ino);
}

static __always_inline int is_reg(struct inode *inode)
{
	__u16 mode = BPF_CORE_READ(inode, i_mode);
	return (mode & S_IFMT) == S_IFREG;
}

/* ctime after the start time (the inode was written, chmod'ed, renamed or linked since). */
static __always_inline int changed_since_start(struct enforce_config *cfg, struct inode *inode)
{
	if (!bpf_core_field_exists(inode->i_ctime_sec))
		return 0;
	__s64 sec = BPF_CORE_READ(inode, i_ctime_sec);
	__u32 nsec = BPF_CORE_READ(inode, i_ctime_nsec) & 0x7fffffff; /* I_CTIME_QUERIED bit */
	if (sec != cfg->start_sec)
		return sec > cfg->start_sec;
	return nsec > cfg->start_nsec;
}

struct allow_ctx {
	__u64 task;
	__u32 bit;
	__u32 found;
};

static long allow_cb(__u64 i, struct allow_ctx *c)
{
	struct task_struct *t = (struct task_struct *)c->task;
	if (!t)
		return 1;
	struct comm_key k = {};
	BPF_CORE_READ_STR_INTO(&k.comm, t, comm);
	__u32 *bits = bpf_map_lookup_elem(&allow, &k);
	if (bits && (*bits & c->bit)) {
		c->found = 1;
		return 1;
	}
	if (BPF_CORE_READ(t, tgid) <= 1)
		return 1;
	c->task = (__u64)BPF_CORE_READ(t, real_parent);
	return 0;
}

/* Allowlist bits of the current task's comm or of one of its ANCESTORS ancestors. */
static __always_inline int allowed(__u32 bit)
{
	struct allow_ctx c = {.task = bpf_get_current_task(), .bit = bit};
	bpf_loop(ANCESTORS + 1, allow_cb, &c, 0);
	return c.found;
}

static __always_inline int interpreter_name(struct comm_key *k)
{
	if (k->comm[0] == 'p' && k->comm[1] == 'y' && k->comm[2] == 't' && k->comm[3] == 'h' &&
	    k->comm[4] == 'o' && k->comm[5] == 'n')
		return 1;
	return bpf_map_lookup_elem(&interpreters, k) != 0;
}

/* Whether the current process is an interpreter, by comm or by executable name (a script
 * run through its shebang has the script's name as comm). */
static __always_inline int is_interpreter(void)
{
	struct comm_key k = {};
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	if (interpreter_name(&k))
		return 1;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct comm_key e = {};
	bpf_probe_read_kernel_str(e.comm, sizeof(e.comm),
				  BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name));
	return interpreter_name(&e);
}

/* ---------------------------------------------------------------- exec */

static __always_inline int on_exec(struct task_struct *p, struct linux_binprm *bprm)
{
	struct enforce_config *cfg = enf_cfg();
	if (!cfg || !(cfg->mech & M_EXEC))
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 root = 0;
	if (!in_scope(cfg, tgid, &root))
		return 0;
	struct file *file = BPF_CORE_READ(bprm, file);
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct devino k = {};
	inode_key(inode, &k);
	__u32 reason = 0;
	if (bpf_map_lookup_elem(&drifted, &k))
		reason |= R_WRITTEN;
	if (changed_since_start(cfg, inode))
		reason |= R_CHANGED;
	if (BPF_CORE_READ(inode, __i_nlink) == 0)
		reason |= R_DELETED;
	char name[7] = {};
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name));
	if (name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' && name[4] == 'd' &&
	    name[5] == ':')
		reason |= R_MEMFD;
	if (!reason || allowed(AL_EXEC))
		return 0;
	__u32 action = kill_current(cfg);
	count(S_EXEC_KILLED);
	struct enf_event *e = new_event(K_EXEC, action);
	if (!e)
		return 0;
	event_task(e);
	e->reason = reason;
	e->dev = k.dev;
	e->ino = k.ino;
	e->root = root;
	bpf_probe_read_kernel_str(e->target, sizeof(e->target), BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* ---------------------------------------------------------------- fork / exit */

static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child)
{
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u32 cpid = BPF_CORE_READ(child, pid);
	if (ctgid != cpid)
		return 0; /* a thread */
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 *root = bpf_map_lookup_elem(&tracked, &ptgid);
	if (!root)
		return 0;
	__u32 r = *root;
	if (bpf_map_update_elem(&tracked, &ctgid, &r, BPF_ANY) != 0)
		count(S_TRACKED_FULL);
	return 0;
}

static __always_inline int on_exit(struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u32 pid = BPF_CORE_READ(p, pid);
	if (tgid != pid)
		return 0;
	__u32 *root = bpf_map_lookup_elem(&tracked, &tgid);
	if (!root)
		bpf_map_delete_elem(&windows, &tgid); /* a per-process account */
	else
		bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

/* ---------------------------------------------------------------- ransomware */

/* Known formats whose first bytes look random after a header: never "encrypted". */
static __always_inline int known_magic(const __u8 *h)
{
	__u8 a = h[0], b = h[1], c = h[2], d = h[3];
	if (a == 0x1f && (b == 0x8b || b == 0x9d)) return 1;              /* gzip, compress */
	if (a == 'P' && b == 'K') return 1;                                /* zip, wheel, jar, docx */
	if (a == 0x28 && b == 0xb5 && c == 0x2f && d == 0xfd) return 1;    /* zstd */
	if (a == 0xfd && b == '7' && c == 'z' && d == 'X') return 1;       /* xz */
	if (a == 'B' && b == 'Z' && c == 'h') return 1;                    /* bzip2 */
	if (a == 0x04 && b == 0x22 && c == 0x4d && d == 0x18) return 1;    /* lz4 */
	if (a == 0x5d && b == 0x00 && c == 0x00) return 1;                 /* lzma */
	if (a == '7' && b == 'z' && c == 0xbc && d == 0xaf) return 1;      /* 7z */
	if (a == 'R' && b == 'a' && c == 'r' && d == '!') return 1;        /* rar */
	if (a == 0x78 && (b == 0x01 || b == 0x5e || b == 0x9c || b == 0xda)) return 1; /* zlib (git objects) */
	if (a == 'P' && b == 'A' && c == 'C' && d == 'K') return 1;        /* git pack */
	if (a == 0xff && b == 't' && c == 'O' && d == 'c') return 1;       /* git pack index */
	if (a == 'D' && b == 'I' && c == 'R' && d == 'C') return 1;        /* git index */
	if (a == 0x7f && b == 'E' && c == 'L' && d == 'F') return 1;       /* ELF */
	if (a == 0x89 && b == 'P' && c == 'N' && d == 'G') return 1;       /* png */
	if (a == 0xff && b == 0xd8 && c == 0xff) return 1;                 /* jpeg */
	if (a == 'G' && b == 'I' && c == 'F' && d == '8') return 1;        /* gif */
	if (a == '%' && b == 'P' && c == 'D' && d == 'F') return 1;        /* pdf */
	if (a == 'R' && b == 'I' && c == 'F' && d == 'F') return 1;        /* wav, avi, webp */
	if (a == 'O' && b == 'g' && c == 'g' && d == 'S') return 1;        /* ogg */
	if (a == 'f' && b == 'L' && c == 'a' && d == 'C') return 1;        /* flac */
	if (h[4] == 'f' && h[5] == 't' && h[6] == 'y' && h[7] == 'p') return 1; /* mp4, mov, heic */
	if (a == 'S' && b == 'Q' && c == 'L' && d == 'i') return 1;        /* sqlite database */
	if (a == 0xd9 && b == 0xd5 && c == 0x05 && d == 0xf9) return 1;    /* sqlite journal */
	if (a == 0x37 && b == 0x7f && c == 0x06 && (d == 0x82 || d == 0x83)) return 1; /* sqlite wal */
	if (c == 0x0d && d == 0x0a) return 1;                              /* python .pyc */
	if (a == 0xca && b == 0xfe && c == 0xba && d == 0xbe) return 1;    /* java class, fat mach-o */
	if (a == 0x93 && b == 'N' && c == 'U' && d == 'M') return 1;       /* numpy .npy */
	if (a == 0x80 && b >= 2 && b <= 5) return 1;                       /* python pickle */
	if (a == 0x89 && b == 'H' && c == 'D' && d == 'F') return 1;       /* hdf5 */
	if (a == '-' && b == '-' && c == '-' && d == '-') return 1;        /* PEM */
	if (a == 0x00 && b == 0x01 && c == 0x00 && d == 0x00) return 1;    /* truetype */
	if (a == 'w' && b == 'O' && c == 'F') return 1;                    /* woff */
	if (a == 0x1a && b == 0x45 && c == 0xdf && d == 0xa3) return 1;    /* matroska, webm */
	if (a == 0x85 && b == 0x02) return 1;                              /* gpg packet */
	return 0;
}

struct distinct_ctx {
	__u32 n;
	__u32 count;
	__u64 seen[4];
};

static long distinct_cb(__u64 i, struct distinct_ctx *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&enf_scratch, &zero);
	if (!s || i >= c->n || i >= HEAD_MAX)
		return 1;
	__u8 v = s->head[i & (HEAD_MAX - 1)];
	__u64 bit = 1ULL << (v & 63);
	__u32 w = (v >> 6) & 3;
	if (!(c->seen[w] & bit)) {
		c->seen[w] |= bit;
		c->count++;
	}
	return 0;
}

/* Number of distinct byte values among the first n (<= HEAD_MAX) bytes of scratch.head. */
static __always_inline __u32 distinct_bytes(__u32 n)
{
	struct distinct_ctx c = {.n = n};
	bpf_loop(HEAD_MAX, distinct_cb, &c, 0);
	return c.count;
}

static __always_inline struct window *account_window(__u32 root, __u64 now_s)
{
	struct window *w = bpf_map_lookup_elem(&windows, &root);
	if (!w) {
		struct window z = {};
		bpf_map_update_elem(&windows, &root, &z, BPF_NOEXIST);
		w = bpf_map_lookup_elem(&windows, &root);
		if (!w)
			return 0;
	}
	__u32 idx = now_s % NB;
	if (w->sec[idx & (NB - 1)] != now_s) {
		w->sec[idx & (NB - 1)] = now_s;
		w->enc[idx & (NB - 1)] = 0;
		w->destr[idx & (NB - 1)] = 0;
	}
	return w;
}

static __always_inline void window_sums(struct window *w, __u64 now_s, __u32 span, __u32 *enc,
					__u32 *destr)
{
	__u32 e = 0, d = 0;
	for (int i = 0; i < NB; i++) {
		__u64 s = w->sec[i];
		if (s <= now_s && now_s - s < span) {
			e += w->enc[i];
			d += w->destr[i];
		}
	}
	*enc = e;
	*destr = d;
}

/* After a counted operation: kill at the threshold. */
static __always_inline void ransom_check(struct enforce_config *cfg, struct window *w,
					 __u64 now_s, __u32 root, __u32 nr, struct devino *k,
					 const char *user_path, struct file *file)
{
	__u32 enc = 0, destr = 0;
	__u32 span = cfg->window_s;
	if (span < 1)
		span = 1;
	if (span > NB)
		span = NB;
	window_sums(w, now_s, span, &enc, &destr);
	if (enc < cfg->enc_min || destr < cfg->destr_min)
		return;
	if (allowed(AL_RANSOM))
		return;
	__u32 action = kill_current(cfg);
	count(S_RANSOM_KILLED);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!cfg->dry_run && bpf_map_lookup_elem(&tracked, &tgid)) {
		/* A scoped tree: every member dies at its next syscall exit. */
		__u8 one = 1;
		bpf_map_update_elem(&doomed, &root, &one, BPF_ANY);
	}
	struct enf_event *e = new_event(K_RANSOM, action);
	if (!e)
		return;
	event_task(e);
	e->root = root;
	e->enc = enc;
	e->destr = destr;
	e->nr = nr;
	if (k) {
		e->dev = k->dev;
		e->ino = k->ino;
	}
	if (user_path)
		bpf_probe_read_user_str(e->target, sizeof(e->target), user_path);
	else if (file)
		bpf_probe_read_kernel_str(e->target, sizeof(e->target),
					  BPF_CORE_READ(file, f_path.dentry, d_name.name));
	bpf_ringbuf_submit(e, 0);
}

struct iovec_ {
	void *base;
	__u64 len;
};

static __always_inline void on_write(struct enforce_config *cfg, __u32 root, __u32 nr,
				     __u64 *args, long ret)
{
	if (ret <= 0)
		return;
	struct file *file = fd_file((int)args[0]);
	if (!file)
		return;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if (!is_reg(inode))
		return;
	const void *buf = 0;
	__u64 len = ret;
	if (nr == 1 /* write */) {
		if (BPF_CORE_READ(file, f_pos) != ret)
			return;
		buf = (const void *)args[1];
	} else if (nr == 18 /* pwrite64 */) {
		if (args[3] != 0)
			return;
		buf = (const void *)args[1];
	} else { /* writev (20), pwritev (296), pwritev2 (328) */
		if (nr == 20) {
			if (BPF_CORE_READ(file, f_pos) != ret)
				return;
		} else if (args[3] != 0) {
			return;
		}
		struct iovec_ iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)args[1]) != 0)
			return;
		buf = iov.base;
		if (iov.len < len)
			len = iov.len;
	}
	if (len < 16)
		return; /* too short to judge */
	if (len > HEAD_MAX)
		len = HEAD_MAX;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&enf_scratch, &zero);
	if (!s)
		return;
	__builtin_memset(s->head, 0, HEAD_MAX);
	if (bpf_probe_read_user(s->head, len, buf) != 0)
		return;
	if (known_magic(s->head))
		return;
	if (distinct_bytes(len) < cfg->distinct_min)
		return;
	struct devino k = {};
	inode_key(inode, &k);
	__u8 one = 1;
	if (bpf_map_update_elem(&enc_seen, &k, &one, BPF_NOEXIST) != 0)
		return; /* this inode was already counted */
	count(S_ENC_WRITES);
	__u64 now_s = bpf_ktime_get_ns() / 1000000000ULL;
	struct window *w = account_window(root, now_s);
	if (!w)
		return;
	__sync_fetch_and_add(&w->enc[now_s % NB], 1);
	ransom_check(cfg, w, now_s, root, nr, &k, 0, file);
}

static __always_inline void on_destructive(struct enforce_config *cfg, __u32 root, __u32 nr,
					   const char *path)
{
	__u64 now_s = bpf_ktime_get_ns() / 1000000000ULL;
	struct window *w = bpf_map_lookup_elem(&windows, &root);
	if (!w)
		return; /* no encrypted write yet: nothing to count */
	__u32 enc = 0, destr = 0;
	__u32 span = cfg->window_s;
	if (span < 1)
		span = 1;
	if (span > NB)
		span = NB;
	window_sums(w, now_s, span, &enc, &destr);
	if (enc == 0)
		return;
	w = account_window(root, now_s);
	if (!w)
		return;
	count(S_DESTRUCTIVE);
	__sync_fetch_and_add(&w->destr[now_s % NB], 1);
	ransom_check(cfg, w, now_s, root, nr, 0, path, 0);
}

/* ---------------------------------------------------------------- open */

struct argscan_ctx {
	__u32 len;
	__u32 argi;     /* index of the current argument */
	__u32 at_start; /* at the first byte of an argument */
	__u32 found;    /* the script argument was found */
	__u32 base;     /* start of its basename */
	__u32 equal;    /* compare: result */
};

/* Find the first non-option argument after argv[0] and its basename. */
static long argscan_cb(__u64 i, struct argscan_ctx *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&enf_scratch, &zero);
	if (!s || i >= c->len || i >= ARGS_MAX)
		return 1;
	char ch = s->args[i & (ARGS_MAX - 1)];
	if (c->found) {
		if (ch == 0)
			return 1;
		if (ch == '/')
			c->base = i + 1;
		return 0;
	}
	if (c->at_start) {
		c->at_start = 0;
		if (c->argi >= 1 && ch != '-' && ch != 0) {
			c->found = 1;
			c->base = ch == '/' ? i + 1 : i;
			return 0;
		}
	}
	if (ch == 0) {
		c->argi++;
		c->at_start = 1;
	}
	return 0;
}

/* Compare the basename at c->base with the dentry name (both NUL-terminated). */
static long namecmp_cb(__u64 j, struct argscan_ctx *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&enf_scratch, &zero);
	if (!s || j >= NAME_MAX_)
		return 1;
	char a = s->name[j & (NAME_MAX_ - 1)];
	__u64 bi = c->base + j;
	char b = bi < c->len ? s->args[bi & (ARGS_MAX - 1)] : 0;
	if (a != b)
		return 1;
	if (a == 0) {
		c->equal = 1;
		return 1;
	}
	return 0;
}

/* Whether the dentry name of `file` is the basename of the current process's first
 * non-option argument (argv[1..]): the script an interpreter was started with. */
static __always_inline int is_own_script(struct file *file)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&enf_scratch, &zero);
	if (!s)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 start = BPF_CORE_READ(mm, arg_start);
	__u64 end = BPF_CORE_READ(mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len == 0)
		return 0;
	if (len > ARGS_MAX)
		len = ARGS_MAX;
	if (bpf_probe_read_user(s->args, len, (const void *)start) != 0)
		return 0;
	__builtin_memset(s->name, 0, NAME_MAX_);
	long nlen = bpf_probe_read_kernel_str(s->name, NAME_MAX_,
					      BPF_CORE_READ(file, f_path.dentry, d_name.name));
	if (nlen <= 1)
		return 0;
	struct argscan_ctx c = {.len = len, .at_start = 1};
	bpf_loop(ARGS_MAX, argscan_cb, &c, 0);
	if (!c.found)
		return 0;
	bpf_loop(NAME_MAX_, namecmp_cb, &c, 0);
	return c.equal;
}

/* `enforce`: the opener is in scope (drift tracking applies to every process). */
static __always_inline void on_open(struct enforce_config *cfg, int enforce, __u32 root,
				    __u32 nr, __u64 flags, const char *path, long fd)
{
	if (fd < 0)
		return;
	if (flags & O_PATH)
		return;
	struct file *file = fd_file((int)fd);
	if (!file)
		return;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if (!is_reg(inode))
		return;
	struct devino k = {};
	inode_key(inode, &k);
	__u32 acc = flags & O_ACCMODE;
	if ((cfg->mech & M_EXEC) && (acc == O_WRONLY || acc == O_RDWR || (flags & (O_CREAT | O_TRUNC)))) {
		__u8 one = 1;
		if (!bpf_map_lookup_elem(&drifted, &k)) {
			bpf_map_update_elem(&drifted, &k, &one, BPF_ANY);
			count(S_DRIFT_TRACKED);
		}
	}
	if (!enforce)
		return;
	if (cfg->mech & M_OPEN) {
		__u32 *groups = bpf_map_lookup_elem(&protected_inodes, &k);
		if (groups) {
			struct comm_key ck = {};
			bpf_get_current_comm(ck.comm, sizeof(ck.comm));
			__u32 *ok = bpf_map_lookup_elem(&open_allow, &ck);
			__u32 g = *groups;
			if (!ok || (*ok & g) != g) {
				__u32 action = kill_current(cfg);
				count(S_OPEN_KILLED);
				struct enf_event *e = new_event(K_OPEN, action);
				if (e) {
					event_task(e);
					e->dev = k.dev;
					e->ino = k.ino;
					e->root = root;
					e->nr = nr;
					bpf_probe_read_user_str(e->target, sizeof(e->target), path);
					bpf_ringbuf_submit(e, 0);
				}
				return;
			}
		}
	}
	if ((cfg->mech & M_EXEC) && acc == 0 && !(flags & (O_CREAT | O_TRUNC)) && is_interpreter()) {
		__u32 reason = 0;
		if (bpf_map_lookup_elem(&drifted, &k))
			reason |= R_WRITTEN;
		if (changed_since_start(cfg, inode))
			reason |= R_CHANGED;
		if (!reason || !is_own_script(file) || allowed(AL_EXEC))
			return;
		__u32 action = kill_current(cfg);
		count(S_EXEC_KILLED);
		struct enf_event *e = new_event(K_EXEC, action);
		if (e) {
			event_task(e);
			e->reason = reason | R_SCRIPT;
			e->dev = k.dev;
			e->ino = k.ino;
			e->root = root;
			e->nr = nr;
			bpf_probe_read_user_str(e->target, sizeof(e->target), path);
			bpf_ringbuf_submit(e, 0);
		}
	}
}

/* ---------------------------------------------------------------- sys_exit dispatcher */

static __always_inline int on_sys_exit(struct pt_regs *regs, long ret)
{
	struct enforce_config *cfg = enf_cfg();
	if (!cfg || !cfg->mech)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 root = 0;
	int enforce = in_scope(cfg, tgid, &root);
	if (enforce == 2 && bpf_map_lookup_elem(&doomed, &root)) {
		/* The tree of a ransomware kill: every member dies at its next syscall exit. */
		if (!cfg->dry_run && bpf_send_signal(SIGKILL) == 0) {
			count(S_TREE_KILLED);
			struct enf_event *e = new_event(K_TREE, A_KILLED);
			if (e) {
				event_task(e);
				e->root = root;
				bpf_ringbuf_submit(e, 0);
			}
		}
		return 0;
	}
	long nr = BPF_CORE_READ(regs, orig_ax);
	__u64 args[4];
	switch (nr) {
	case 2:   /* open */
	case 85:  /* creat */
	case 257: /* openat */
	case 437: /* openat2 */
		if (!(cfg->mech & (M_EXEC | M_OPEN)) || ret < 0)
			return 0;
		args[0] = BPF_CORE_READ(regs, di);
		args[1] = BPF_CORE_READ(regs, si);
		args[2] = BPF_CORE_READ(regs, dx);
		if (nr == 2) {
			on_open(cfg, enforce, root, nr, args[1], (const char *)args[0], ret);
		} else if (nr == 85) {
			on_open(cfg, enforce, root, nr, O_CREAT | O_WRONLY | O_TRUNC,
				(const char *)args[0], ret);
		} else if (nr == 257) {
			on_open(cfg, enforce, root, nr, args[2], (const char *)args[1], ret);
		} else {
			__u64 how = 0; /* struct open_how: flags first */
			bpf_probe_read_user(&how, sizeof(how), (const void *)args[2]);
			on_open(cfg, enforce, root, nr, how, (const char *)args[1], ret);
		}
		return 0;
	case 77: /* ftruncate */
	case 91: /* fchmod */
		if (!(cfg->mech & M_EXEC) || ret != 0)
			return 0;
		{
			struct file *file = fd_file((int)BPF_CORE_READ(regs, di));
			if (!file)
				return 0;
			__u64 mode = BPF_CORE_READ(regs, si);
			if (nr == 91 && !(mode & 0111))
				return 0;
			struct inode *inode = BPF_CORE_READ(file, f_inode);
			if (!is_reg(inode))
				return 0;
			struct devino k = {};
			inode_key(inode, &k);
			__u8 one = 1;
			bpf_map_update_elem(&drifted, &k, &one, BPF_ANY);
			count(S_DRIFT_TRACKED);
		}
		return 0;
	case 1:   /* write */
	case 18:  /* pwrite64 */
	case 20:  /* writev */
	case 296: /* pwritev */
	case 328: /* pwritev2 */
		if (!(cfg->mech & M_RANSOM) || !enforce)
			return 0;
		args[0] = BPF_CORE_READ(regs, di);
		args[1] = BPF_CORE_READ(regs, si);
		args[2] = BPF_CORE_READ(regs, dx);
		args[3] = BPF_CORE_READ(regs, r10);
		on_write(cfg, root, nr, args, ret);
		return 0;
	case 82:  /* rename */
	case 87:  /* unlink */
		if (!(cfg->mech & M_RANSOM) || !enforce || ret != 0)
			return 0;
		on_destructive(cfg, root, nr, (const char *)BPF_CORE_READ(regs, di));
		return 0;
	case 263: /* unlinkat */
		if (!(cfg->mech & M_RANSOM) || !enforce || ret != 0)
			return 0;
		if (BPF_CORE_READ(regs, dx) & AT_REMOVEDIR)
			return 0;
		on_destructive(cfg, root, nr, (const char *)BPF_CORE_READ(regs, si));
		return 0;
	case 264: /* renameat */
	case 316: /* renameat2 */
		if (!(cfg->mech & M_RANSOM) || !enforce || ret != 0)
			return 0;
		on_destructive(cfg, root, nr, (const char *)BPF_CORE_READ(regs, si));
		return 0;
	default:
		return 0;
	}
}

/* Preferred attachment: BTF-typed tracepoints. */
SEC("tp_btf/sys_exit")
int BPF_PROG(btf_sys_exit, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs, ret);
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

/* Fallback: raw tracepoints. */
SEC("raw_tp/sys_exit")
int BPF_PROG(raw_sys_exit, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs, ret);
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
