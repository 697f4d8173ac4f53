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

/* Event kinds (enum EventKind in src/raw.rs). */
#define EV_SYSCALL 1 /* a syscall exit; nr says which */
#define EV_EXEC 2    /* sched_process_exec: a successful execve/execveat */
#define EV_FORK 3    /* sched_process_fork of a new process (not a thread) */
#define EV_EXIT 4    /* sched_process_exit of a thread-group leader */

/* Flags in event.flags. */
#define EF_STR1_TRUNC 1
#define EF_STR2_TRUNC 2
#define EF_EXE_MEMFD 4
#define EF_SOCK_OK 8 /* lport/laddr/l4 were read from the socket */

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
	__u64 ino;     /* exec: inode of the executable */
	__u32 flags;
	__u16 str1_len; /* bytes of str1 in data, including the NUL */
	__u16 str2_len; /* bytes of str2 in data after str1 */
	__u8 addr[ADDR_MAX]; /* connect: the sockaddr as passed */
	__u16 lport;         /* connect: local port (host order) */
	__u16 l4proto;       /* connect: IPPROTO_* of the socket */
	__u8 laddr[16];      /* connect: local address (4 or 16 bytes) */
	__u32 pad[2]; /* data starts at offset 192 */
	char data[2 * STR_MAX];
};

#define HDR_SIZE __builtin_offsetof(struct event, data)

struct sensor_config {
	__u32 self_tgid; /* events of the sensor's own process are dropped */
	__u32 follow;    /* 1: only processes in `tracked` (pyward run) */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sensor_config);
} sensor_config SEC(".maps");

/* Syscall numbers to report (1) or skip (0), filled by user space from what the rules need. */
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

/* Counters: 0 events submitted, 1 ring-buffer drops, 2 tracked-map full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

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
static __always_inline int wanted(__u32 tgid)
{
	struct sensor_config *cfg = get_config();
	if (!cfg)
		return 0;
	if (tgid == cfg->self_tgid)
		return 0;
	if (cfg->follow && !bpf_map_lookup_elem(&tracked, &tgid))
		return 0;
	return 1;
}

static __always_inline struct event *new_event(__u32 kind, __u32 nr)
{
	__u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();
	e->kind = kind;
	e->nr = nr;
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->ret = 0;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)ug;
	e->gid = ug >> 32;
	e->loginuid = (__u32)-1;
	if (bpf_core_field_exists(task->loginuid))
		e->loginuid = BPF_CORE_READ(task, loginuid.val);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	for (int i = 0; i < 6; i++)
		e->args[i] = 0;
	e->ino = 0;
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

static __always_inline void submit(void *ctx, struct event *e)
{
	__u64 len = HDR_SIZE + (e->str1_len & (STR_MAX - 1)) + (e->str2_len & (STR_MAX - 1));
	if (len > sizeof(struct event))
		return;
	if (bpf_ringbuf_output(&events, e, len, 0) == 0)
		count(0);
	else
		count(1);
}

/* Local end of a socket fd of the current task: port, address, protocol. */
static __always_inline void read_socket(struct event *e, int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fdarr = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int maxfds = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd < 0 || (unsigned int)fd >= maxfds)
		return;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fdarr[fd]);
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

/* x86_64 syscall numbers handled here (mirrored in src/raw.rs). */
#define NR_open 2
#define NR_connect 42
#define NR_execve 59
#define NR_rename 82
#define NR_creat 85
#define NR_unlink 87
#define NR_chmod 90
#define NR_ptrace 101
#define NR_setuid 105
#define NR_setgid 106
#define NR_setreuid 113
#define NR_setregid 114
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_openat 257
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_fchmodat 268
#define NR_renameat2 316
#define NR_memfd_create 319
#define NR_execveat 322
#define NR_openat2 437
#define NR_fchmodat2 452

static __always_inline int on_sys_exit(struct pt_regs *regs, long ret)
{
	long nr = BPF_CORE_READ(regs, orig_ax);
	if (nr < 0 || nr >= NR_MAX)
		return 0;
	__u32 key = nr;
	__u8 *on = bpf_map_lookup_elem(&interesting, &key);
	if (!on || !*on)
		return 0;
	/* A successful exec is reported by sched_process_exec, with the new image. */
	if ((nr == NR_execve || nr == NR_execveat) && ret == 0)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	if (!wanted(id >> 32))
		return 0;
	struct event *e = new_event(EV_SYSCALL, nr);
	if (!e)
		return 0;
	e->ret = ret;
	e->args[0] = BPF_CORE_READ(regs, di);
	e->args[1] = BPF_CORE_READ(regs, si);
	e->args[2] = BPF_CORE_READ(regs, dx);
	e->args[3] = BPF_CORE_READ(regs, r10);
	e->args[4] = BPF_CORE_READ(regs, r8);
	e->args[5] = BPF_CORE_READ(regs, r9);
	switch (nr) {
	case NR_open:
	case NR_creat:
	case NR_unlink:
	case NR_chmod:
	case NR_execve:
	case NR_memfd_create:
		read_user_str1(e, (const void *)e->args[0]);
		break;
	case NR_openat:
	case NR_unlinkat:
	case NR_fchmodat:
	case NR_fchmodat2:
	case NR_execveat:
		read_user_str1(e, (const void *)e->args[1]);
		break;
	case NR_rename:
		read_user_str1(e, (const void *)e->args[0]);
		read_user_str2(e, (const void *)e->args[1]);
		break;
	case NR_renameat:
	case NR_renameat2:
		read_user_str1(e, (const void *)e->args[1]);
		read_user_str2(e, (const void *)e->args[3]);
		break;
	case NR_openat2: {
		/* struct open_how { u64 flags; u64 mode; u64 resolve; } */
		__u64 how[3] = {};
		read_user_str1(e, (const void *)e->args[1]);
		bpf_probe_read_user(how, sizeof(how), (const void *)e->args[2]);
		e->args[2] = how[0];
		e->args[3] = how[1];
		e->args[4] = how[2];
		break;
	}
	case NR_connect: {
		__u64 alen = e->args[2];
		if (alen > ADDR_MAX)
			alen = ADDR_MAX;
		__builtin_memset(e->addr, 0, ADDR_MAX);
		bpf_probe_read_user(e->addr, alen & 31, (const void *)e->args[1]);
		read_socket(e, (int)e->args[0]);
		break;
	}
	default:
		break;
	}
	submit(regs, e);
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
	e->ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
	/* memfd files are named "memfd:<name>" (d_name of the file's dentry). */
	char name[6] = {};
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name));
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
			count(2);
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

/* Fallback: raw tracepoints (same arguments, untyped context). */
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
