// SPDX-License-Identifier: GPL-2.0
/* The kernel side of scaptool's live capture.
 *
 * It stays generic on purpose: each syscall enter/exit becomes one record with the raw
 * arguments and return value plus the memory that the syscall's rule (set by the loader) asks
 * for. Building sysdig's parameters from that happens in user space (helper.c).
 *
 * Arguments are read from the saved user registers at both enter and exit, so no per-thread
 * stash is needed: a syscall leaves them untouched, and a clone child starts with a copy of its
 * parent's, so the child's own exit record has the clone arguments too.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "helper.h"

char LICENSE[] SEC("license") = "GPL";

/* set by the loader before load */
const volatile u32 self_tgid = 0;
const volatile u32 filter_on = 0;      /* only tgids in `tracked` */
const volatile u32 snaplen = 80;
const volatile u32 capture_switch = 0;
const volatile u64 rb_flags = 0;

#define SCRATCH_SIZE 131072            /* > sizeof(rec) + OFF_MASK + BLOB_MASK */

struct scratch {
	u8 buf[SCRATCH_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} rb SEC(".maps");

/* one buffer per CPU; a plain array because per-CPU values are limited to 32 KiB */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);            /* the loader sets it to the number of CPUs */
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NSYSCALLS);
	__type(key, u32);
	__type(value, struct rule);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, u8);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_EXCLUDED);
	__type(key, u32);
	__type(value, u8);
} excluded SEC(".maps");

/* [0] records lost because the ring buffer was full, [1] records sent */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

struct blob_ctx {
	u64 a[6];
	s64 ret;
	u32 off;
	u32 kind;
	u32 ai;
	u32 b;
};

static __always_inline void count(u32 which)
{
	u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

static __always_inline bool wanted(u32 tgid)
{
	if (tgid == self_tgid)
		return false;              /* our own reads and writes would feed back forever */
	if (bpf_map_lookup_elem(&excluded, &tgid))
		return false;
	if (filter_on && !bpf_map_lookup_elem(&tracked, &tgid))
		return false;
	return true;
}

/* a switch rather than a[i]: a computed stack index upsets the verifier */
static __always_inline u64 pick(const u64 *a, u32 i)
{
	switch (i) {
	case 0: return a[0];
	case 1: return a[1];
	case 2: return a[2];
	case 3: return a[3];
	case 4: return a[4];
	default: return a[5];
	}
}

/* Masks a length in a way clang cannot fold away, so the verifier sees the bound right where
 * the helper call needs it (clang drops a plain `&` it can prove redundant, and the bound it
 * relied on may be lost in a register spill). */
#define BOUND(v, mask) asm volatile("%[x] &= %[m]" : [x] "+r"(v) : [m] "i"(mask))

static __always_inline u32 min_u32(u64 x, u32 cap)
{
	return x < cap ? (u32)x : cap;
}

static __always_inline struct file *fd_file(struct task_struct *task, s64 fd)
{
	struct fdtable *fdt;
	struct file **fds;
	struct file *f = 0;

	if (fd < 0)
		return 0;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* FDK_LOG: may the file's path be a log's? spy_logs' rule is a substring test on the path
 * sysdig keeps for the fd (.log, _log or /var/log anywhere in it). The path is walked here
 * from the file's dentry up to the root of its mount namespace, crossing mounts; the answer
 * is "no" only when the whole walk was made and no name matched. Anything unsure (a name too
 * long to read whole, a path too deep, a dentry cut off from its tree) is "maybe", and user
 * space, which applies the exact rule to sysdig's fd name, decides. The walk may go above a
 * chrooted process's root: that only adds names, so it can only turn a "no" into a "maybe".
 * (sysdig names an fd by the path it was opened with: a file renamed since from a log's name
 * to another is the one case this misses.) The answer is kept per open file, so a busy
 * writer costs one lookup per call. */
#define LOG_NAME_BYTES 64              /* longer names are "maybe" */
#define LOG_PATH_DEPTH 24              /* deeper paths are "maybe" */

struct log_name {
	u8 c[LOG_NAME_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct log_name);
} log_name_buf SEC(".maps");

/* the verdict for an open file, valid while the file still has that dentry and inode (a
 * struct file freed and reused for another file does not) */
struct log_verdict {
	u64 dentry;
	u64 ino;
	u64 maybe;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, struct log_verdict);
} log_files SEC(".maps");

enum { NAME_PLAIN, NAME_LOG, NAME_STARTS_LOG, NAME_VAR, NAME_UNSURE };

/* What one path component says: holds .log or _log, is "var", starts with "log". */
static __always_inline int log_name_kind(struct dentry *d)
{
	u32 zero = 0, len = BPF_CORE_READ(d, d_name.len);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	struct log_name *b = bpf_map_lookup_elem(&log_name_buf, &zero);

	if (!b || len >= LOG_NAME_BYTES)
		return NAME_UNSURE;
	if (bpf_probe_read_kernel(b->c, LOG_NAME_BYTES, name))
		if (bpf_probe_read_kernel_str(b->c, LOG_NAME_BYTES, name) < 0)
			return NAME_UNSURE;
	for (u32 j = 0; j + 3 < LOG_NAME_BYTES; j++) {
		if (j + 3 >= len)
			break;
		if ((b->c[j] == '.' || b->c[j] == '_') && b->c[j + 1] == 'l' &&
		    b->c[j + 2] == 'o' && b->c[j + 3] == 'g')
			return NAME_LOG;
	}
	if (len == 3 && b->c[0] == 'v' && b->c[1] == 'a' && b->c[2] == 'r')
		return NAME_VAR;
	if (len >= 3 && b->c[0] == 'l' && b->c[1] == 'o' && b->c[2] == 'g')
		return NAME_STARTS_LOG;
	return NAME_PLAIN;
}

static __always_inline u64 path_may_be_log(struct file *f)
{
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct mount *m = (struct mount *)((u8 *)vm - bpf_core_field_offset(struct mount, mnt));
	bool child_starts_log = false;

	for (int i = 0; i < LOG_PATH_DEPTH; i++) {
		struct dentry *root = BPF_CORE_READ(m, mnt.mnt_root);
		struct dentry *parent;
		int kind;

		if (d == root) {
			struct mount *up = BPF_CORE_READ(m, mnt_parent);

			if (up == m)
				return 0;          /* the namespace's root: the whole path was seen */
			d = BPF_CORE_READ(m, mnt_mountpoint);
			m = up;
			continue;
		}
		parent = BPF_CORE_READ(d, d_parent);
		if (parent == d)
			return 1;                  /* a tree's top that is not the mount's root */
		kind = log_name_kind(d);
		if (kind == NAME_LOG || kind == NAME_UNSURE)
			return 1;
		if (kind == NAME_VAR && child_starts_log)
			return 1;                  /* .../var/log... */
		child_starts_log = kind == NAME_STARTS_LOG;
		d = parent;
	}
	return 1;
}

static __always_inline bool file_may_be_log(struct file *f)
{
	u64 key = (u64)f;
	u64 dentry = (u64)BPF_CORE_READ(f, f_path.dentry);
	u64 ino = BPF_CORE_READ(f, f_inode, i_ino);
	struct log_verdict *v = bpf_map_lookup_elem(&log_files, &key);
	struct log_verdict fresh;

	if (v && v->dentry == dentry && v->ino == ino)
		return v->maybe;
	fresh.dentry = dentry;
	fresh.ino = ino;
	fresh.maybe = path_may_be_log(f);
	bpf_map_update_elem(&log_files, &key, &fresh, BPF_ANY);
	return fresh.maybe;
}

/* Is the fd one of these kinds (FDK_*)? An fd that is not there (closed meanwhile) is: the
 * record goes to user space, which knows what to make of it. */
static __always_inline bool fd_of_kind(s64 fd, u8 kinds)
{
	struct file *f = fd_file((struct task_struct *)bpf_get_current_task(), fd);
	u16 mode;

	if (!f)
		return true;
	mode = BPF_CORE_READ(f, f_inode, i_mode) & 0170000;
	if (mode == 0100000)
		return (kinds & FDK_FILE) || ((kinds & FDK_LOG) && file_may_be_log(f));
	if (mode == 0140000)
		return kinds & FDK_SOCKET;
	return kinds & FDK_OTHER;
}

static __always_inline u32 fill_sock(u8 *dst, struct task_struct *task, s64 fd)
{
	struct sock_info *si = (struct sock_info *)dst;
	struct file *f = fd_file(task, fd);
	struct socket *sock;
	struct sock *sk;
	u16 family;

	__builtin_memset(si, 0, sizeof(*si));
	if (!f)
		return sizeof(*si);
	if ((BPF_CORE_READ(f, f_inode, i_mode) & 0170000) != 0140000)
		return sizeof(*si);        /* not a socket */
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return sizeof(*si);
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	si->family = family;
	si->type = BPF_CORE_READ(sk, sk_type);
	si->proto = BPF_CORE_READ(sk, sk_protocol);
	si->ack_backlog = BPF_CORE_READ(sk, sk_ack_backlog);
	si->max_ack_backlog = BPF_CORE_READ(sk, sk_max_ack_backlog);
	if (family == 2) {
		u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(si->laddr, &l, 4);
		__builtin_memcpy(si->raddr, &r, 4);
		si->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		si->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	} else if (family == 10) {
		BPF_CORE_READ_INTO(&si->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&si->raddr, sk, __sk_common.skc_v6_daddr);
		si->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		si->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	} else if (family == 1) {
		struct unix_sock *us = (struct unix_sock *)sk;
		struct sock *peer = BPF_CORE_READ(us, peer);
		struct unix_address *ua = BPF_CORE_READ(us, addr);
		int len;

		si->sk = (u64)sk;
		si->peer = (u64)peer;
		if (!ua && peer)
			ua = BPF_CORE_READ((struct unix_sock *)peer, addr);
		if (ua) {
			len = BPF_CORE_READ(ua, len) - 2;
			if (len > 0) {
				if (len > 107)
					len = 107;
				u64 m = len;

				BOUND(m, 127);
				bpf_probe_read_kernel(si->path, m, &ua->name[0].sun_path);
				si->pathlen = len;
			}
		}
	}
	return sizeof(*si);
}

static __always_inline u32 fill_file(u8 *dst, struct task_struct *task, s64 fd)
{
	struct file_info *fi = (struct file_info *)dst;
	struct file *f = fd_file(task, fd);
	struct inode *ino;

	__builtin_memset(fi, 0, sizeof(*fi));
	if (!f)
		return sizeof(*fi);
	ino = BPF_CORE_READ(f, f_inode);
	fi->ino = BPF_CORE_READ(ino, i_ino);
	fi->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	fi->mode = BPF_CORE_READ(ino, i_mode);
	fi->flags = BPF_CORE_READ(f, f_flags);
	return sizeof(*fi);
}

static __always_inline u32 pid_nr_at(struct pid *p, bool own_level)
{
	unsigned int level = 0;
	struct upid up = {};

	if (!p)
		return 0;
	if (own_level)
		level = BPF_CORE_READ(p, level);
	/* numbers[level]: a variable index, so the address is computed from the relocated base */
	bpf_probe_read_kernel(&up, sizeof(up),
			      (void *)p + bpf_core_field_offset(struct pid, numbers) +
			      (level & 31) * sizeof(struct upid));
	return up.nr;
}

static __always_inline u32 fill_proc(u8 *dst, struct task_struct *task)
{
	struct proc_info *pi = (struct proc_info *)dst;
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	struct tty_struct *tty;

	__builtin_memset(pi, 0, sizeof(*pi));
	pi->tid = BPF_CORE_READ(task, pid);
	pi->pid = BPF_CORE_READ(task, tgid);
	pi->ptid = BPF_CORE_READ(task, real_parent, tgid);
	pi->vtid = pid_nr_at(BPF_CORE_READ(task, thread_pid), true);
	pi->vpid = pid_nr_at(BPF_CORE_READ(task, group_leader, thread_pid), true);
	pi->pgid = pid_nr_at(BPF_CORE_READ(task, signal, pids[2]), false);
	pi->uid = BPF_CORE_READ(task, cred, uid.val);
	pi->gid = BPF_CORE_READ(task, cred, gid.val);
	pi->loginuid = BPF_CORE_READ(task, loginuid.val);
	tty = BPF_CORE_READ(task, signal, tty);
	if (tty) {
		u32 major = BPF_CORE_READ(tty, driver, major);
		u32 minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
		/* the encoding of /proc/PID/stat's tty_nr */
		pi->tty = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
	}
	pi->fdlimit = BPF_CORE_READ(task, signal, rlim[7].rlim_cur);   /* RLIMIT_NOFILE */
	pi->maj_flt = BPF_CORE_READ(task, maj_flt);
	pi->min_flt = BPF_CORE_READ(task, min_flt);
	if (mm) {
		s64 file = BPF_CORE_READ(mm, rss_stat[0].count);
		s64 anon = BPF_CORE_READ(mm, rss_stat[1].count);
		s64 swap = BPF_CORE_READ(mm, rss_stat[2].count);
		s64 shmem = BPF_CORE_READ(mm, rss_stat[3].count);
		s64 rss = file + anon + shmem;

		pi->vm_pages = BPF_CORE_READ(mm, total_vm);
		pi->rss_pages = rss > 0 ? rss : 0;
		pi->swap_pages = swap > 0 ? swap : 0;
	}
	BPF_CORE_READ_STR_INTO(&pi->comm, task, comm);
	return sizeof(*pi);
}

/* Sum the iovec lengths (pass 1), then copy up to `limit` bytes of their data (pass 2) into
 * dst + 8. Returns the bytes of data copied; *total gets the sum. */
static __always_inline u32 fill_iov(u8 *base, u32 off, u64 iov, u64 cnt, s64 ret, u32 kind,
				    u64 *total)
{
	struct iovec_user v;
	u64 sum = 0;
	u32 got = 0;
	u64 limit;

	if (cnt > IOV_MAX_CAPTURE)
		cnt = IOV_MAX_CAPTURE;
	for (int i = 0; i < IOV_MAX_CAPTURE; i++) {
		if (i >= cnt)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(iov + i * sizeof(v))))
			break;
		sum += v.len;
	}
	*total = sum;
	if (kind == K_IOV_LEN)
		return 0;
	limit = kind == K_IOV_RET ? (ret > 0 ? (u64)ret : 0) : sum;
	if (limit > snaplen)
		limit = snaplen;
	for (int i = 0; i < IOV_MAX_CAPTURE; i++) {
		u32 n;

		if (i >= cnt || got >= limit)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(iov + i * sizeof(v))))
			break;
		n = min_u32(v.len, limit - got);
		u64 at = (off + 8 + got) & OFF_MASK;
		BOUND(n, BLOB_MASK);
		BOUND(at, OFF_MASK);
		if (bpf_probe_read_user(base + at, n, (void *)v.base))
			break;
		got += n;
		if (got > BLOB_MASK - 8)
			break;
	}
	return got;
}

/* The area after the record where blobs go: each starts below OFF_MASK and is shorter than
 * BLOB_MAX. */
struct blob_area {
	u8 b[OFF_MASK + 1 + BLOB_MAX];
};

/* Fill one blob at offset c->off of the area; returns its length. A global function, so the
 * verifier checks it once for any arguments instead of once per call site and blob kind. */
__noinline int fill_blob(struct blob_area *area, struct blob_ctx *c)
{
	u8 *base;
	u32 off;
	u8 *dst;
	u64 p, q;
	struct task_struct *task;
	u32 n = 0;
	long r;

	if (!area || !c)
		return 0;
	base = area->b;
	off = c->off & OFF_MASK;
	dst = base + off;
	p = pick(c->a, c->ai);
	q = pick(c->a, c->b);
	switch (c->kind) {
	case K_STR:
		if (!p)
			return 0;
		r = bpf_probe_read_user_str(dst, STR_MAX, (void *)p);
		return r > 0 ? (u32)r : 0;
	case K_BUF_RET:
		if (!p || c->ret <= 0)
			return 0;
		n = min_u32(c->ret, snaplen) & BLOB_MASK;
		break;
	case K_BUF_ARG:
		if (!p)
			return 0;
		n = min_u32(q, snaplen) & BLOB_MASK;
		break;
	case K_FIXED:
		if (!p)
			return 0;
		n = c->b & 255;
		break;
	case K_SOCKADDR:
		if (!p)
			return 0;
		n = min_u32(q, SOCKADDR_MAX) & 255;
		break;
	case K_SOCKADDR_PLEN: {
		int len = 0;

		if (!p || !q || c->ret < 0)
			return 0;
		bpf_probe_read_user(&len, sizeof(len), (void *)q);
		if (len <= 0)
			return 0;
		n = min_u32(len, SOCKADDR_MAX) & 255;
		break;
	}
	case K_SOCK:
		task = (struct task_struct *)bpf_get_current_task();
		return fill_sock(dst, task, c->b ? c->ret : (s64)p);
	case K_FILE:
		task = (struct task_struct *)bpf_get_current_task();
		return fill_file(dst, task, c->b ? c->ret : (s64)p);
	case K_PIPE: {
		struct pipe_info *pi = (struct pipe_info *)dst;
		struct file *f;

		__builtin_memset(pi, 0, sizeof(*pi));
		if (!p || c->ret < 0)
			return sizeof(*pi);
		bpf_probe_read_user(pi->fds, sizeof(pi->fds), (void *)p);
		task = (struct task_struct *)bpf_get_current_task();
		f = fd_file(task, pi->fds[0]);
		if (f)
			pi->ino = BPF_CORE_READ(f, f_inode, i_ino);
		return sizeof(*pi);
	}
	case K_IOV_RET:
	case K_IOV_SIZE:
	case K_IOV_LEN: {
		u64 total = 0;

		n = fill_iov(base, off, p, q, c->ret, c->kind, &total);
		*(u64 *)dst = total;
		return 8 + n;
	}
	case K_MSG_RET:
	case K_MSG_SIZE:
	case K_MSG_LEN: {
		struct msghdr_user m = {};
		u64 total = 0;

		if (p)
			bpf_probe_read_user(&m, sizeof(m), (void *)p);
		n = fill_iov(base, off, m.iov, m.iovlen, c->ret, c->kind - (K_MSG_RET - K_IOV_RET),
			     &total);
		*(u64 *)dst = total;
		return 8 + n;
	}
	case K_MSG_NAME: {
		struct msghdr_user m = {};

		if (!p)
			return 0;
		bpf_probe_read_user(&m, sizeof(m), (void *)p);
		if (!m.name || m.namelen <= 0)
			return 0;
		n = min_u32(m.namelen, SOCKADDR_MAX) & 255;
		p = m.name;
		break;
	}
	case K_PROC:
		task = (struct task_struct *)bpf_get_current_task();
		return fill_proc(dst, task);
	case K_ARGS:
	case K_ENV: {
		struct mm_struct *mm;
		u64 start, end;

		task = (struct task_struct *)bpf_get_current_task();
		mm = BPF_CORE_READ(task, mm);
		if (!mm)
			return 0;
		if (c->kind == K_ARGS) {
			start = BPF_CORE_READ(mm, arg_start);
			end = BPF_CORE_READ(mm, arg_end);
		} else {
			start = BPF_CORE_READ(mm, env_start);
			end = BPF_CORE_READ(mm, env_end);
		}
		if (end <= start)
			return 0;
		n = min_u32(end - start, AREA_MAX) & BLOB_MASK;
		p = start;
		break;
	}
	default:
		return 0;
	}
	{
		u64 m = n;

		BOUND(m, BLOB_MASK);
		if (bpf_probe_read_user(dst, m, (void *)p))
			return 0;
		return m;
	}
}

static __always_inline int handle(u32 kind, long id, long ret, u64 a0, u64 a1, u64 a2, u64 a3,
				  u64 a4, u64 a5)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u32 tgid = pid_tgid >> 32;
	u32 cpu, key;
	struct scratch *s;
	struct rule *r;
	struct rec *h;
	struct blob_ctx c = {};
	u32 dir = kind == REC_EXIT;
	u32 total;

	if (!wanted(tgid))
		return 0;
	if (id < 0 || id >= NSYSCALLS)
		return 0;
	key = id;
	r = bpf_map_lookup_elem(&rules, &key);
	if (!r || !r->on)
		return 0;
	/* a command that wants, say, writes to files only: the others never leave the kernel
	 * (checked at enter and exit alike, so both halves of a call go, or neither) */
	if (r->fd_kinds && !fd_of_kind((s64)a0, r->fd_kinds))
		return 0;
	cpu = bpf_get_smp_processor_id();
	s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s)
		return 0;
	h = (struct rec *)s->buf;
	h->kind = kind;
	h->cpu = cpu;
	h->tid = (u32)pid_tgid;
	h->pid = tgid;
	h->ts = bpf_ktime_get_boot_ns();
	h->id = id;
	h->ret = ret;
	c.a[0] = h->a[0] = a0;
	c.a[1] = h->a[1] = a1;
	c.a[2] = h->a[2] = a2;
	c.a[3] = h->a[3] = a3;
	c.a[4] = h->a[4] = a4;
	c.a[5] = h->a[5] = a5;
	c.ret = ret;
	c.off = 0;
#pragma unroll
	for (int i = 0; i < MAX_BLOBS; i++) {
		u32 n = 0;

		c.kind = r->kind[dir][i];
		if (c.kind != K_NONE) {
			c.ai = r->a[dir][i];
			c.b = r->b[dir][i];
			n = (u32)fill_blob((struct blob_area *)(s->buf + sizeof(struct rec)), &c) &
			    BLOB_MASK;
		}
		h->blen[i] = n;
		c.off += n;
	}
	total = (sizeof(struct rec) + c.off) & (SCRATCH_SIZE - 1);
	if (bpf_ringbuf_output(&rb, s->buf, total, rb_flags))
		count(0);
	else
		count(1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_btf, struct pt_regs *regs, long id)
{
	return handle(REC_ENTER, id, 0, regs->di, regs->si, regs->dx, regs->r10, regs->r8,
		      regs->r9);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_btf, struct pt_regs *regs, long ret)
{
	return handle(REC_EXIT, regs->orig_ax, ret, regs->di, regs->si, regs->dx, regs->r10,
		      regs->r8, regs->r9);
}

/* raw_tp twins for kernels where tp_btf does not attach; the loader picks one pair */
SEC("raw_tp/sys_enter")
int sys_enter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];

	return handle(REC_ENTER, ctx->args[1], 0, BPF_CORE_READ(regs, di),
		      BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, dx), BPF_CORE_READ(regs, r10),
		      BPF_CORE_READ(regs, r8), BPF_CORE_READ(regs, r9));
}

SEC("raw_tp/sys_exit")
int sys_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];

	return handle(REC_EXIT, BPF_CORE_READ(regs, orig_ax), ctx->args[1],
		      BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, dx),
		      BPF_CORE_READ(regs, r10), BPF_CORE_READ(regs, r8), BPF_CORE_READ(regs, r9));
}

static __always_inline int emit_fixed(u32 kind, struct task_struct *task, s64 id, s64 ret,
				      struct task_struct *mm_of)
{
	struct {
		struct rec h;
		struct switch_info si;
	} *e;
	struct mm_struct *mm;

	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e) {
		count(0);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->h.kind = kind;
	e->h.cpu = bpf_get_smp_processor_id();
	e->h.tid = BPF_CORE_READ(task, pid);
	e->h.pid = BPF_CORE_READ(task, tgid);
	e->h.ts = bpf_ktime_get_boot_ns();
	e->h.id = id;
	e->h.ret = ret;
	e->h.blen[0] = sizeof(e->si);
	e->si.maj_flt = BPF_CORE_READ(mm_of, maj_flt);
	e->si.min_flt = BPF_CORE_READ(mm_of, min_flt);
	mm = BPF_CORE_READ(mm_of, mm);
	if (mm) {
		s64 file = BPF_CORE_READ(mm, rss_stat[0].count);
		s64 anon = BPF_CORE_READ(mm, rss_stat[1].count);
		s64 swap = BPF_CORE_READ(mm, rss_stat[2].count);
		s64 shmem = BPF_CORE_READ(mm, rss_stat[3].count);
		s64 rss = file + anon + shmem;

		e->si.vm_pages = BPF_CORE_READ(mm, total_vm);
		e->si.rss_pages = rss > 0 ? rss : 0;
		e->si.swap_pages = swap > 0 ? swap : 0;
	}
	bpf_ringbuf_submit(e, rb_flags);
	count(1);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int proc_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	u32 tgid = BPF_CORE_READ(task, tgid);
	u32 tid = BPF_CORE_READ(task, pid);

	if (!wanted(tgid))
		return 0;
	emit_fixed(REC_PROCEXIT, task, 0, BPF_CORE_READ(task, exit_code), task);
	if (filter_on && tid == tgid)
		bpf_map_delete_elem(&tracked, &tgid);
	return 0;
}

SEC("raw_tp/sched_process_fork")
int proc_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	u32 ptgid = BPF_CORE_READ(parent, tgid);
	u32 ctgid = BPF_CORE_READ(child, tgid);
	u8 one = 1;

	if (filter_on && bpf_map_lookup_elem(&tracked, &ptgid))
		bpf_map_update_elem(&tracked, &ctgid, &one, BPF_ANY);
	return 0;
}

SEC("raw_tp/sched_switch")
int sched_switch(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *prev = (struct task_struct *)ctx->args[1];
	struct task_struct *next = (struct task_struct *)ctx->args[2];

	if (!capture_switch || !wanted(BPF_CORE_READ(prev, tgid)))
		return 0;
	return emit_fixed(REC_SWITCH, prev, BPF_CORE_READ(next, pid), 0, prev);
}
