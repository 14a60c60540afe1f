/* scaptool-helper: live capture into a .scap file with libbpf (CO-RE, ring buffer).
 *
 *   scaptool-helper -w OUT [-a] [-s SNAPLEN] [-d SECONDS] [-n EVENTS] [-p PID] [-P PID]...
 *                   [-x PID]... [-b RING_KIB] [-S] [-T] [-r FD] [-v] [-- COMMAND ARGS...]
 *
 * The BPF side (helper.bpf.c) sends raw records; this file turns each into an EV_V2 block whose
 * event id, parameter order and encodings follow sysdig 0.29.3's event table, and appends the
 * blocks to OUT. With -a the file already holds a section header and the metadata blocks
 * (scaptool writes those from Python); otherwise, when OUT is empty, a section header and a
 * machine-info block are written first so that the file stands on its own.
 *
 * Blocks are written whole, a poll cycle at a time, so a capture stopped at any point is a valid
 * file. Records are held back for a short time and written in timestamp order: one ring buffer
 * is shared by all CPUs, so records can arrive a few microseconds out of order.
 *
 * Statistics go to stderr as one JSON line at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <linux/openat2.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;

#include "helper.h"
#include "syscalls.h"
#include "helper.skel.h"

/* ------------------------------------------------------------------------------------------ */
/* options and state */

static struct {
	const char *out;
	int append;
	u32 snaplen;
	double duration;
	u64 max_events;
	int target_pid;
	int also[MAX_EXCLUDED];           /* -P: more processes to capture (no stop on exit) */
	int nalso;
	int excluded[MAX_EXCLUDED];
	int nexcluded;
	u32 ring_kib;
	int capture_switch;
	int release_fd;
	int raw_only;                     /* -T: skip tp_btf, use the raw tracepoints */
	char **command;
	int verbose;
	const char *only;                 /* -e: the syscalls to capture, by name (NULL: all) */
} opt = { .snaplen = 80, .ring_kib = 8192, .release_fd = -1 };

static volatile sig_atomic_t stop_requested;
static int target_exited;
static int out_fd = -1;
static u64 epoch_offset;          /* realtime - boottime, ns */
static u64 events_written, records_seen, bytes_written;
static u64 unmatched_kinds;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "scaptool-helper: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static u64 clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* ------------------------------------------------------------------------------------------ */
/* output: whole blocks, in timestamp order */

struct pending {
	u64 ts;
	u64 seq;
	u32 off;
	u32 len;
};

static u8 *arena;
static size_t arena_len, arena_cap;
static struct pending *pend;
static size_t npend, pend_cap;
static u64 seq_counter;
static u64 max_ts_seen;

#define HOLD_NS 5000000ull        /* records this much older than the clock are in order */

static void write_all(const void *buf, size_t len)
{
	const u8 *p = buf;

	while (len) {
		ssize_t n = write(out_fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write %s: %s", opt.out, strerror(errno));
		}
		p += n;
		len -= n;
		bytes_written += n;
	}
}

static void queue_block(u64 ts, const u8 *block, u32 len)
{
	if (arena_len + len > arena_cap) {
		arena_cap = (arena_len + len) * 2 + (1 << 20);
		arena = realloc(arena, arena_cap);
		if (!arena)
			die("out of memory");
	}
	if (npend == pend_cap) {
		pend_cap = pend_cap ? pend_cap * 2 : 65536;
		pend = realloc(pend, pend_cap * sizeof(*pend));
		if (!pend)
			die("out of memory");
	}
	memcpy(arena + arena_len, block, len);
	pend[npend++] = (struct pending){ ts, seq_counter++, (u32)arena_len, len };
	arena_len += len;
	if (ts > max_ts_seen)
		max_ts_seen = ts;
}

static int cmp_pending(const void *x, const void *y)
{
	const struct pending *a = x, *b = y;

	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return a->seq < b->seq ? -1 : (a->seq > b->seq);
}

static int limit_reached(void)
{
	return opt.max_events && events_written >= opt.max_events;
}

/* Write every held block older than the hold window (all of them when `all`). */
static void flush_blocks(int all)
{
	/* a record is in order once the clock (not only the newest record) is HOLD_NS past
	 * it: on a quiet machine the last record must not wait for another one to come */
	u64 newest = clock_ns(CLOCK_BOOTTIME) + epoch_offset;
	u64 cutoff;

	if (newest < max_ts_seen)
		newest = max_ts_seen;
	cutoff = all ? UINT64_MAX : (newest > HOLD_NS ? newest - HOLD_NS : 0);
	static u8 *outbuf;
	static size_t outcap;
	size_t outlen = 0, keep = 0, i;
	static u8 *spare;
	static size_t spare_cap;
	u8 *newarena;
	size_t newlen = 0, newcap;

	if (!npend)
		return;
	qsort(pend, npend, sizeof(*pend), cmp_pending);
	if (outcap < arena_len) {
		outcap = arena_len;
		outbuf = realloc(outbuf, outcap);
		if (!outbuf)
			die("out of memory");
	}
	for (i = 0; i < npend; i++) {
		if (pend[i].ts > cutoff)
			break;
		if (limit_reached())
			continue;     /* -n: the rest is dropped */
		memcpy(outbuf + outlen, arena + pend[i].off, pend[i].len);
		outlen += pend[i].len;
		events_written++;
	}
	if (outlen)
		write_all(outbuf, outlen);
	/* keep the blocks still inside the window, packed into the spare arena (two arenas
	 * swap roles, so nothing is allocated per cycle) */
	if (spare_cap < arena_cap) {
		spare_cap = arena_cap;
		spare = realloc(spare, spare_cap);
		if (!spare)
			die("out of memory");
	}
	for (; i < npend; i++) {
		memcpy(spare + newlen, arena + pend[i].off, pend[i].len);
		pend[keep] = pend[i];
		pend[keep].off = newlen;
		newlen += pend[i].len;
		keep++;
	}
	newarena = arena;
	arena = spare;
	spare = newarena;
	newcap = arena_cap;
	arena_cap = spare_cap;
	spare_cap = newcap;
	arena_len = newlen;
	npend = keep;
}

/* ------------------------------------------------------------------------------------------ */
/* event building: parameters in table order, then one EV_V2 block */

#define EV_V2 0x216
#define MAX_PARAMS 32
#define EV_DATA_MAX 60000         /* stays within a non-LARGE block (65536) */

static struct {
	u16 type;
	u16 n;
	u16 len[MAX_PARAMS];
	u32 used;
	u8 data[EV_DATA_MAX];
} ev;

static void ev_begin(u16 type)
{
	ev.type = type;
	ev.n = 0;
	ev.used = 0;
}

static void p_raw(const void *p, size_t len)
{
	if (ev.n >= MAX_PARAMS)
		die("too many params for event %u", ev.type);
	if (ev.used + len > EV_DATA_MAX)
		len = EV_DATA_MAX - ev.used;   /* never reached with the blob caps; stay safe */
	memcpy(ev.data + ev.used, p, len);
	ev.len[ev.n++] = len;
	ev.used += len;
}

static void p_u8(u8 v) { p_raw(&v, 1); }
static void p_u16(u16 v) { p_raw(&v, 2); }
static void p_u32(u32 v) { p_raw(&v, 4); }
static void p_u64(u64 v) { p_raw(&v, 8); }
static void p_empty(void) { p_raw("", 0); }

/* a CHARBUF/FSPATH: the bytes with their NUL; empty when there is no string */
static void p_str(const char *s, size_t len)
{
	u8 tmp[STR_MAX + 1];

	if (!s) {
		p_empty();
		return;
	}
	if (len > STR_MAX)
		len = STR_MAX;
	memcpy(tmp, s, len);
	tmp[len] = 0;
	p_raw(tmp, len + 1);
}

/* a string blob from bpf_probe_read_user_str: already NUL-terminated, length counts the NUL */
static void p_strblob(const u8 *b, u32 len)
{
	if (!len) {
		p_empty();
		return;
	}
	p_str((const char *)b, strnlen((const char *)b, len));
}

static void ev_end(u64 ts, u32 tid, u16 cpu)
{
	static u8 block[65536 + 64];
	u32 hdr = 26, reclen = hdr + 2 * ev.n + ev.used;
	u32 total = (8 + ((2 + reclen + 3) & ~3u) + 4);
	u8 *p = block;
	u64 tid64 = tid;
	u32 np = ev.n;

	memset(block, 0, total);
	memcpy(p, &(u32){EV_V2}, 4);
	memcpy(p + 4, &total, 4);
	memcpy(p + 8, &cpu, 2);
	p += 10;
	memcpy(p, &ts, 8);
	memcpy(p + 8, &tid64, 8);
	memcpy(p + 16, &reclen, 4);
	memcpy(p + 20, &ev.type, 2);
	memcpy(p + 22, &np, 4);
	memcpy(p + 26, ev.len, 2 * ev.n);
	memcpy(p + 26 + 2 * ev.n, ev.data, ev.used);
	memcpy(block + total - 4, &total, 4);
	queue_block(ts, block, total);
}

/* ------------------------------------------------------------------------------------------ */
/* encodings of sysdig's parameter types and flag values */

/* O_* -> PPM_O_* (file_flags) */
static u32 open_flags_to_scap(u64 f)
{
	u32 r = 0;

	switch (f & O_ACCMODE) {
	case O_RDONLY: r |= 1; break;
	case O_WRONLY: r |= 2; break;
	case O_RDWR: r |= 3; break;
	}
	if (f & O_CREAT) r |= 4;
	if (f & O_APPEND) r |= 8;
	if (f & O_DSYNC) r |= 16;
	if (f & O_EXCL) r |= 32;
	if (f & O_NONBLOCK) r |= 64;
	if ((f & O_SYNC) == O_SYNC) r |= 128;
	if (f & O_TRUNC) r |= 256;
	if (f & O_DIRECT) r |= 512;
	if ((f & O_TMPFILE) == O_TMPFILE)
		r |= 8192;
	else if (f & O_DIRECTORY)
		r |= 1024;
	if (f & O_LARGEFILE) r |= 2048;
	if (f & O_CLOEXEC) r |= 4096;
	return r;
}

/* the mode matters only when the call can create the file */
static u32 open_mode_to_scap(u64 flags, u64 mode)
{
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		return mode & 07777;
	return 0;
}

/* Linux CLONE_* -> PPM_CL_* (clone_flags) */
static u32 clone_flags_to_scap(u64 f)
{
	static const struct { u64 linux_flag; u32 ppm; } map[] = {
		{ 0x00000400, 1 },       /* CLONE_FILES */
		{ 0x00000200, 2 },       /* CLONE_FS */
		{ 0x80000000ull, 4 },    /* CLONE_IO */
		{ 0x08000000, 8 },       /* CLONE_NEWIPC */
		{ 0x40000000, 16 },      /* CLONE_NEWNET */
		{ 0x00020000, 32 },      /* CLONE_NEWNS */
		{ 0x20000000, 64 },      /* CLONE_NEWPID */
		{ 0x04000000, 128 },     /* CLONE_NEWUTS */
		{ 0x00008000, 256 },     /* CLONE_PARENT */
		{ 0x00100000, 512 },     /* CLONE_PARENT_SETTID */
		{ 0x00002000, 1024 },    /* CLONE_PTRACE */
		{ 0x00000800, 2048 },    /* CLONE_SIGHAND */
		{ 0x00040000, 4096 },    /* CLONE_SYSVSEM */
		{ 0x00010000, 8192 },    /* CLONE_THREAD */
		{ 0x00800000, 16384 },   /* CLONE_UNTRACED */
		{ 0x00000100, 32768 },   /* CLONE_VM */
		{ 0x10000000, 1048576 }, /* CLONE_NEWUSER */
		{ 0x00200000, 8388608 }, /* CLONE_CHILD_CLEARTID */
		{ 0x01000000, 16777216 },/* CLONE_CHILD_SETTID */
		{ 0x00080000, 33554432 },/* CLONE_SETTLS */
		{ 0x00004000, 134217728 },/* CLONE_VFORK */
		{ 0x02000000, 268435456 },/* CLONE_NEWCGROUP */
	};
	u32 r = 0;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (f & map[i].linux_flag)
			r |= map[i].ppm;
	return r;
}

/* F_* -> PPM_FCNTL_* (fcntl_commands) */
static u8 fcntl_cmd_to_scap(u64 cmd)
{
	switch (cmd) {
	case 0: return 1;        /* F_DUPFD */
	case 1: return 2;        /* F_GETFD */
	case 2: return 3;        /* F_SETFD */
	case 3: return 4;        /* F_GETFL */
	case 4: return 5;        /* F_SETFL */
	case 5: return 6;        /* F_GETLK */
	case 6: return 8;        /* F_SETLK */
	case 7: return 9;        /* F_SETLKW */
	case 8: return 10;       /* F_SETOWN */
	case 9: return 12;       /* F_GETOWN */
	case 10: return 13;      /* F_SETSIG */
	case 11: return 15;      /* F_GETSIG */
	case 15: return 21;      /* F_SETOWN_EX */
	case 16: return 22;      /* F_GETOWN_EX */
	case 36: return 30;      /* F_OFD_GETLK */
	case 37: return 31;      /* F_OFD_SETLK */
	case 38: return 32;      /* F_OFD_SETLKW */
	case 1024: return 23;    /* F_SETLEASE */
	case 1025: return 24;    /* F_GETLEASE */
	case 1026: return 27;    /* F_NOTIFY */
	case 1029: return 25;    /* F_CANCELLK */
	case 1030: return 26;    /* F_DUPFD_CLOEXEC */
	case 1031: return 28;    /* F_SETPIPE_SZ */
	case 1032: return 29;    /* F_GETPIPE_SZ */
	default: return 0;
	}
}

/* RESOLVE_* -> PPM_RESOLVE_* (openat2_flags): the same names, other bits */
static u32 resolve_to_scap(u64 r)
{
	u32 out = 0;

	if (r & 0x01) out |= 16;       /* RESOLVE_NO_XDEV */
	if (r & 0x02) out |= 4;        /* RESOLVE_NO_MAGICLINKS */
	if (r & 0x04) out |= 8;        /* RESOLVE_NO_SYMLINKS */
	if (r & 0x08) out |= 1;        /* RESOLVE_BENEATH */
	if (r & 0x10) out |= 2;        /* RESOLVE_IN_ROOT */
	if (r & 0x20) out |= 32;       /* RESOLVE_CACHED */
	return out;
}

/* kernel dev_t (major << 20 | minor) -> the user-space encoding stat(2) reports */
static u32 encode_dev(u32 kdev)
{
	u32 major = kdev >> 20, minor = kdev & 0xfffff;

	return (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
}

/* a user sockaddr -> PT_SOCKADDR bytes */
static void p_sockaddr(const u8 *sa, u32 len)
{
	u8 out[1 + 108 + 1];
	u16 family;

	if (len < 2) {
		p_empty();
		return;
	}
	memcpy(&family, sa, 2);
	if (family == 2 && len >= 8) {             /* AF_INET: ip, port in host order */
		u16 port = (sa[2] << 8) | sa[3];

		out[0] = 2;
		memcpy(out + 1, sa + 4, 4);
		memcpy(out + 5, &port, 2);
		p_raw(out, 7);
	} else if (family == 10 && len >= 24) {    /* AF_INET6 */
		u8 o6[19];
		u16 port = (sa[2] << 8) | sa[3];

		o6[0] = 10;
		memcpy(o6 + 1, sa + 8, 16);
		memcpy(o6 + 17, &port, 2);
		p_raw(o6, 19);
	} else if (family == 1) {                  /* AF_UNIX: path; abstract names lose the NUL */
		const char *path = (const char *)sa + 2;
		size_t plen = len - 2;

		if (plen && path[0] == 0) {
			path++;
			plen--;
		}
		plen = strnlen(path, plen);
		out[0] = 1;
		memcpy(out + 1, path, plen);
		out[1 + plen] = 0;
		p_raw(out, plen + 2);
	} else {
		p_empty();
	}
}

/* PT_SOCKTUPLE from the kernel socket. Outbound calls (connect, send*) put the local end first,
 * inbound ones (accept, recv*) the peer, as sysdig's driver does. A user address (the
 * destination of sendto, the source of recvfrom, connect's target) replaces the peer. */
static void p_socktuple(const struct sock_info *si, int inbound, const u8 *usa, u32 usalen)
{
	u8 out[1 + 16 + 2 + 16 + 2];
	u8 raddr[16];
	u16 rport;
	u16 ufamily = 0;

	if (!si || si->family == 0) {
		p_empty();
		return;
	}
	rport = si->rport;
	memcpy(raddr, si->raddr, 16);
	if (usa && usalen >= 2)
		memcpy(&ufamily, usa, 2);
	if (si->family == 2 || si->family == 10) {
		/* the same layout for both: family, then each end's address (4 or 16 bytes) and port;
		 * a user sockaddr_in keeps its address at 4, a sockaddr_in6 at 8 */
		u32 alen = si->family == 2 ? 4 : 16;
		u32 uoff = si->family == 2 ? 4 : 8;
		const u8 *first_addr = inbound ? raddr : si->laddr;
		const u8 *second_addr = inbound ? si->laddr : raddr;
		const u16 *first_port = inbound ? &rport : &si->lport;
		const u16 *second_port = inbound ? &si->lport : &rport;

		if (ufamily == si->family && usalen >= uoff + alen) {
			memcpy(raddr, usa + uoff, alen);
			rport = (usa[2] << 8) | usa[3];
		}
		out[0] = si->family;
		memcpy(out + 1, first_addr, alen);
		memcpy(out + 1 + alen, first_port, 2);
		memcpy(out + 3 + alen, second_addr, alen);
		memcpy(out + 3 + 2 * alen, second_port, 2);
		p_raw(out, 5 + 2 * alen);
	} else if (si->family == 1) {
		u8 u[1 + 8 + 8 + 110];
		const char *path = si->path;
		size_t plen = si->pathlen;
		u64 first = inbound ? si->sk : si->peer, second = inbound ? si->peer : si->sk;

		if (ufamily == 1 && usalen > 2) {
			path = (const char *)usa + 2;
			plen = usalen - 2;
		}
		if (plen && path[0] == 0) {      /* abstract socket: the leading NUL is dropped */
			path++;
			plen--;
		}
		plen = strnlen(path, plen > 107 ? 107 : plen);
		u[0] = 1;
		memcpy(u + 1, &first, 8);
		memcpy(u + 9, &second, 8);
		memcpy(u + 17, path, plen);
		u[17 + plen] = 0;
		p_raw(u, 18 + plen);
	} else {
		p_empty();
	}
}

/* ------------------------------------------------------------------------------------------ */
/* per-process facts that the kernel side does not send: cwd and cgroups */

struct proc_facts {
	u32 pid;
	char *cwd;
	char *cgroups;
	u32 cgroups_len;
};

#define FACTS_SLOTS 65536
static struct proc_facts facts[FACTS_SLOTS];

static struct proc_facts *facts_find(u32 pid, int create)
{
	u32 h = (pid * 2654435761u) & (FACTS_SLOTS - 1);

	for (u32 i = 0; i < FACTS_SLOTS; i++, h = (h + 1) & (FACTS_SLOTS - 1)) {
		if (facts[h].pid == pid)
			return &facts[h];
		if (facts[h].pid == 0) {
			if (!create)
				return NULL;
			facts[h].pid = pid;
			return &facts[h];
		}
	}
	return NULL;
}

static void facts_forget(u32 pid)
{
	struct proc_facts *f = facts_find(pid, 0);

	if (f) {
		/* keep the slot (open addressing); a reused pid reads /proc again */
		free(f->cwd);
		free(f->cgroups);
		f->cwd = NULL;
		f->cgroups = NULL;
		f->cgroups_len = 0;
	}
}

static char *proc_cwd(u32 pid)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%u/cwd", pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	return strdup(buf);
}

/* /proc/PID/cgroup as scap lists cgroups: "controller=path\0" for each v1 controller */
static char *proc_cgroups(u32 pid, u32 *len)
{
	char path[64], line[4096];
	FILE *f;
	char *out = NULL;
	size_t used = 0;

	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2, *ctl, *save = NULL;

		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c2 = 0;
		c2[strcspn(c2 + 1, "\n") + 1] = 0;
		for (ctl = strtok_r(c1 + 1, ",", &save); ctl; ctl = strtok_r(NULL, ",", &save)) {
			size_t need = strlen(ctl) + 1 + strlen(c2 + 1) + 1;

			out = realloc(out, used + need);
			used += sprintf(out + used, "%s=%s", ctl, c2 + 1) + 1;
		}
	}
	fclose(f);
	*len = used;
	return out;
}

static const char *cwd_of(u32 pid, u32 ppid)
{
	struct proc_facts *f = facts_find(pid, 1), *pf;

	if (f && f->cwd)
		return f->cwd;
	pf = facts_find(ppid, 0);
	if (f && pf && pf->cwd)
		f->cwd = strdup(pf->cwd);      /* a child starts in its parent's directory */
	else if (f)
		f->cwd = proc_cwd(pid);
	if (f && !f->cwd && ppid)
		f->cwd = proc_cwd(ppid);
	return f && f->cwd ? f->cwd : "";
}

static const char *cgroups_of(u32 pid, u32 ppid, u32 *len)
{
	struct proc_facts *f = facts_find(pid, 1), *pf;

	*len = 0;
	if (!f)
		return NULL;
	if (!f->cgroups) {
		pf = facts_find(ppid, 0);
		if (pf && pf->cgroups) {
			f->cgroups = malloc(pf->cgroups_len);
			memcpy(f->cgroups, pf->cgroups, pf->cgroups_len);
			f->cgroups_len = pf->cgroups_len;
		} else {
			f->cgroups = proc_cgroups(pid, &f->cgroups_len);
			if (!f->cgroups && ppid)
				f->cgroups = proc_cgroups(ppid, &f->cgroups_len);
		}
	}
	*len = f->cgroups_len;
	return f->cgroups;
}

/* chdir succeeded: the new directory, resolved against the old one when relative */
static void chdir_done(u32 pid, const char *path)
{
	struct proc_facts *f = facts_find(pid, 1);
	char *now = proc_cwd(pid);

	if (!f)
		return;
	if (!now && path) {
		if (path[0] == '/' || !f->cwd) {
			now = strdup(path);
		} else if (asprintf(&now, "%s/%s", f->cwd, path) < 0) {
			now = NULL;
		}
	}
	if (now) {
		free(f->cwd);
		f->cwd = now;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* records -> events */

struct blobs {
	const u8 *p[MAX_BLOBS];
	u32 len[MAX_BLOBS];
};

/* event ids of sysdig 0.29.3 (enter; exit is enter + 1) */
enum {
	E_GENERIC = 0, E_OPEN = 2, E_CLOSE = 4, E_READ = 6, E_WRITE = 8, E_SOCKET = 18,
	E_BIND = 20, E_CONNECT = 22, E_LISTEN = 24, E_SENDTO = 30, E_RECVFROM = 34,
	E_SHUTDOWN = 36, E_SENDMSG = 48, E_RECVMSG = 52, E_CREAT = 58, E_PIPE = 60,
	E_STAT = 66, E_LSTAT = 68, E_FSTAT = 70, E_CHDIR = 94, E_PREAD = 112, E_PWRITE = 114,
	E_READV = 116, E_WRITEV = 118, E_DUP = 124, E_KILL = 128, E_FCNTL = 150, E_SWITCH = 152,
	E_RENAME = 174, E_RENAMEAT = 176, E_PROCEXIT = 186, E_CLONE = 222, E_FORK = 224,
	E_VFORK = 226, E_ACCEPT = 246, E_ACCEPT4 = 248, E_MKDIR = 276, E_RMDIR = 278,
	E_EXECVE = 292, E_UNLINK = 300, E_UNLINKAT = 302, E_MKDIRAT = 304, E_OPENAT = 306,
	E_RENAMEAT2 = 318, E_OPENAT2 = 326, E_EXECVEAT = 330, E_CLONE3 = 334,
};

#define B(k, a, b) { k, a, b }
struct blob_rule { u8 kind, a; u16 b; };
struct sc_def {
	int nr;
	u16 event;
	struct blob_rule enter[MAX_BLOBS], exit[MAX_BLOBS];
};

/* which memory each covered syscall needs, at enter and at exit (x86_64 numbers) */
static const struct sc_def sc_defs[] = {
	{ 0, E_READ, {}, { B(K_BUF_RET, 1, 0) } },
	{ 1, E_WRITE, {}, { B(K_BUF_ARG, 1, 2) } },
	{ 2, E_OPEN, { B(K_STR, 0, 0) }, { B(K_STR, 0, 0), B(K_FILE, 0, 1) } },
	{ 3, E_CLOSE, {}, {} },
	{ 4, E_STAT, {}, { B(K_STR, 0, 0) } },
	{ 5, E_FSTAT, {}, {} },
	{ 6, E_LSTAT, {}, { B(K_STR, 0, 0) } },
	{ 17, E_PREAD, {}, { B(K_BUF_RET, 1, 0) } },
	{ 18, E_PWRITE, {}, { B(K_BUF_ARG, 1, 2) } },
	{ 19, E_READV, {}, { B(K_IOV_RET, 1, 2) } },
	{ 20, E_WRITEV, { B(K_IOV_LEN, 1, 2) }, { B(K_IOV_SIZE, 1, 2) } },
	{ 22, E_PIPE, {}, { B(K_PIPE, 0, 0) } },
	{ 32, E_DUP, {}, {} },
	{ 33, E_DUP, {}, {} },
	{ 41, E_SOCKET, {}, {} },
	{ 42, E_CONNECT, { B(K_SOCKADDR, 1, 2) }, { B(K_SOCK, 0, 0), B(K_SOCKADDR, 1, 2) } },
	/* accept: the new socket (fd = ret), then the listening one for its queue figures */
	{ 43, E_ACCEPT, {}, { B(K_SOCK, 0, 1), B(K_SOCK, 0, 0) } },
	{ 44, E_SENDTO, { B(K_SOCK, 0, 0), B(K_SOCKADDR, 4, 5) }, { B(K_BUF_ARG, 1, 2) } },
	{ 45, E_RECVFROM, {}, { B(K_BUF_RET, 1, 0), B(K_SOCK, 0, 0), B(K_SOCKADDR_PLEN, 4, 5) } },
	{ 46, E_SENDMSG, { B(K_MSG_LEN, 1, 0), B(K_SOCK, 0, 0), B(K_MSG_NAME, 1, 0) },
	  { B(K_MSG_SIZE, 1, 0) } },
	{ 47, E_RECVMSG, {}, { B(K_MSG_RET, 1, 0), B(K_SOCK, 0, 0), B(K_MSG_NAME, 1, 0) } },
	{ 48, E_SHUTDOWN, {}, {} },
	{ 49, E_BIND, {}, { B(K_SOCKADDR, 1, 2) } },
	{ 50, E_LISTEN, {}, {} },
	{ 56, E_CLONE, {}, { B(K_PROC, 0, 0), B(K_ARGS, 0, 0) } },
	{ 57, E_FORK, {}, { B(K_PROC, 0, 0), B(K_ARGS, 0, 0) } },
	{ 58, E_VFORK, {}, { B(K_PROC, 0, 0), B(K_ARGS, 0, 0) } },
	/* the exits' last blob is the filename again, for an enter that could not read it */
	{ 59, E_EXECVE, { B(K_STR, 0, 0) },
	  { B(K_PROC, 0, 0), B(K_ARGS, 0, 0), B(K_ENV, 0, 0), B(K_STR, 0, 0) } },
	{ 62, E_KILL, {}, {} },
	{ 72, E_FCNTL, {}, {} },
	{ 80, E_CHDIR, {}, { B(K_STR, 0, 0) } },
	{ 82, E_RENAME, {}, { B(K_STR, 0, 0), B(K_STR, 1, 0) } },
	{ 83, E_MKDIR, {}, { B(K_STR, 0, 0) } },
	{ 84, E_RMDIR, {}, { B(K_STR, 0, 0) } },
	{ 85, E_CREAT, { B(K_STR, 0, 0) }, { B(K_STR, 0, 0), B(K_FILE, 0, 1) } },
	{ 87, E_UNLINK, {}, { B(K_STR, 0, 0) } },
	{ 257, E_OPENAT, { B(K_STR, 1, 0) }, { B(K_STR, 1, 0), B(K_FILE, 0, 1) } },
	{ 258, E_MKDIRAT, {}, { B(K_STR, 1, 0) } },
	{ 263, E_UNLINKAT, {}, { B(K_STR, 1, 0) } },
	{ 264, E_RENAMEAT, {}, { B(K_STR, 1, 0), B(K_STR, 3, 0) } },
	{ 288, E_ACCEPT4, {}, { B(K_SOCK, 0, 1), B(K_SOCK, 0, 0) } },
	{ 292, E_DUP, {}, {} },
	{ 293, E_PIPE, {}, { B(K_PIPE, 0, 0) } },
	{ 316, E_RENAMEAT2, {}, { B(K_STR, 1, 0), B(K_STR, 3, 0) } },
	{ 322, E_EXECVEAT, { B(K_STR, 1, 0) },
	  { B(K_PROC, 0, 0), B(K_ARGS, 0, 0), B(K_ENV, 0, 0), B(K_STR, 1, 0) } },
	{ 435, E_CLONE3, {}, { B(K_PROC, 0, 0), B(K_ARGS, 0, 0), B(K_FIXED, 0, 8) } },
	{ 437, E_OPENAT2, { B(K_STR, 1, 0), B(K_FIXED, 2, 24) },
	  { B(K_STR, 1, 0), B(K_FIXED, 2, 24), B(K_FILE, 0, 1) } },
};

static u16 event_of[NSYSCALLS];   /* 0: generic */

static u16 ppm_sc_of(long nr)
{
	return nr >= 0 && nr < NATIVE_MAX ? syscall_names[nr].ppm_sc : 0;
}

static const u8 *blob(const struct blobs *b, int i, u32 min_len)
{
	return b->len[i] >= min_len ? b->p[i] : NULL;
}

/* pages -> KiB for a u32 parameter: huge reservations show at the cap rather than wrapped */
static u32 pages_kb(u64 pages)
{
	u64 kb = pages * 4;

	return kb > 0xffffffffull ? 0xffffffffu : (u32)kb;
}

/* the 20-ish process parameters that clone and execve exits share */
static void p_process(const struct rec *r, const struct blobs *b, int is_execve, u64 clone_flags)
{
	const struct proc_info *pi = (const struct proc_info *)blob(b, 0, sizeof(struct proc_info));
	struct proc_info none = { .tid = r->tid, .pid = r->pid };
	const char *area = (const char *)b->p[1];
	u32 alen = b->len[1];
	size_t exelen = area ? strnlen(area, alen) : 0;
	u32 cglen = 0;
	const char *cg;

	if (!pi)
		pi = &none;
	/* exe is argv[0]; args are the other NUL-terminated arguments */
	p_str(area ? area : "", exelen);
	if (alen > exelen + 1)
		p_raw(area + exelen + 1, alen - exelen - 1);
	else
		p_empty();
	p_u64(pi->tid);
	p_u64(pi->pid);
	p_u64(pi->ptid);
	p_str(cwd_of(pi->pid, pi->ptid), strlen(cwd_of(pi->pid, pi->ptid)));
	p_u64(pi->fdlimit);
	p_u64(pi->maj_flt);
	p_u64(pi->min_flt);
	p_u32(pages_kb(pi->vm_pages));
	p_u32(pages_kb(pi->rss_pages));
	p_u32(pages_kb(pi->swap_pages));
	p_str(pi->comm, strnlen(pi->comm, 16));
	cg = cgroups_of(pi->pid, pi->ptid, &cglen);
	p_raw(cg ? cg : "", cg ? cglen : 0);
	if (is_execve) {
		p_raw(b->p[2] ? b->p[2] : (const u8 *)"", b->len[2]);   /* env */
		p_u32(pi->tty);
		p_u64(pi->pgid);
		p_u32(pi->loginuid);
		p_u32(0);                  /* flags: EXE_WRITABLE is not detected */
	} else {
		p_u32(clone_flags_to_scap(clone_flags));
		p_u32(pi->uid);
		p_u32(pi->gid);
		p_u64(pi->vtid);
		p_u64(pi->vpid);
	}
}

static u64 iov_total(const struct blobs *b, int i)
{
	u64 t = 0;

	if (b->len[i] >= 8)
		memcpy(&t, b->p[i], 8);
	return t;
}

static void p_iov_data(const struct blobs *b, int i)
{
	if (b->len[i] > 8)
		p_raw(b->p[i] + 8, b->len[i] - 8);
	else
		p_empty();
}

static void convert_syscall(const struct rec *r, const struct blobs *b)
{
	int exit = r->kind == REC_EXIT;
	long nr = r->id;
	u16 event = (nr >= 0 && nr < NSYSCALLS) ? event_of[nr] : 0;
	const unsigned long long *a = r->a;
	s64 ret = r->ret;
	const struct sock_info *si;
	const struct file_info *fi;

	ev_begin(event + exit);
	switch (event) {
	case E_GENERIC:
		p_u16(ppm_sc_of(nr));
		if (!exit)
			p_u16(nr);
		break;
	case E_OPEN:
	case E_CREAT:
	case E_OPENAT: {
		int at = event == E_OPENAT;
		u64 flags = event == E_CREAT ? (O_CREAT | O_WRONLY | O_TRUNC) : a[at + 1];
		u64 mode = a[at + (event == E_CREAT ? 1 : 2)];

		if (exit)
			p_u64(ret);
		if (at)
			p_u64((s64)(int)a[0]);
		p_strblob(b->p[0], b->len[0]);
		if (event != E_CREAT)
			p_u32(open_flags_to_scap(flags));
		p_u32(open_mode_to_scap(flags, mode));
		if (exit) {
			fi = (const struct file_info *)blob(b, 1, sizeof(*fi));
			p_u32(fi && ret >= 0 ? encode_dev(fi->dev) : 0);
		}
		break;
	}
	case E_OPENAT2: {
		struct open_how how = {};

		if (b->len[1] >= sizeof(how))
			memcpy(&how, b->p[1], sizeof(how));
		if (exit)
			p_u64(ret);
		p_u64((s64)(int)a[0]);
		p_strblob(b->p[0], b->len[0]);
		p_u32(open_flags_to_scap(how.flags));
		p_u32(open_mode_to_scap(how.flags, how.mode));
		p_u32(resolve_to_scap(how.resolve));
		break;
	}
	case E_CLOSE:
	case E_FSTAT:
		if (exit)
			p_u64(ret);
		else
			p_u64((s64)(int)a[0]);
		break;
	case E_READ:
	case E_WRITE:
	case E_PREAD:
	case E_PWRITE:
		if (exit) {
			p_u64(ret);
			p_raw(b->p[0] ? b->p[0] : (const u8 *)"", b->len[0]);
		} else {
			p_u64((s64)(int)a[0]);
			p_u32(a[2]);
			if (event == E_PREAD || event == E_PWRITE)
				p_u64(a[3]);
		}
		break;
	case E_READV:
		if (exit) {
			p_u64(ret);
			p_u32(iov_total(b, 0));
			p_iov_data(b, 0);
		} else {
			p_u64((s64)(int)a[0]);
		}
		break;
	case E_WRITEV:
		if (exit) {
			p_u64(ret);
			p_iov_data(b, 0);
		} else {
			p_u64((s64)(int)a[0]);
			p_u32(iov_total(b, 0));
		}
		break;
	case E_SOCKET:
		if (exit) {
			p_u64(ret);
		} else {
			p_u32(a[0]);          /* AF_* equal the PPM_AF_* values */
			p_u32(a[1]);
			p_u32(a[2]);
		}
		break;
	case E_BIND:
		if (exit) {
			p_u64(ret);
			p_sockaddr(b->p[0], b->len[0]);
		} else {
			p_u64((s64)(int)a[0]);
		}
		break;
	case E_CONNECT:
		if (exit) {
			p_u64(ret);
			si = (const struct sock_info *)blob(b, 0, sizeof(*si));
			if (si && (ret == 0 || ret == -EINPROGRESS))
				p_socktuple(si, 0, b->p[1], b->len[1]);
			else
				p_empty();
		} else {
			p_u64((s64)(int)a[0]);
			p_sockaddr(b->p[0], b->len[0]);
		}
		break;
	case E_LISTEN:
		if (exit) {
			p_u64(ret);
		} else {
			p_u64((s64)(int)a[0]);
			p_u32(a[1]);
		}
		break;
	case E_ACCEPT:
	case E_ACCEPT4:
		if (exit) {
			p_u64(ret);
			si = (const struct sock_info *)blob(b, 0, sizeof(*si));
			if (si && ret >= 0)
				p_socktuple(si, 1, NULL, 0);
			else
				p_empty();
			/* the listening socket's queue: waiting connections, as a percentage of
			 * the most allowed, then both numbers */
			si = (const struct sock_info *)blob(b, 1, sizeof(*si));
			p_u8(si && si->max_ack_backlog ?
			     (u8)(si->ack_backlog * 100 / si->max_ack_backlog) : 0);
			p_u32(si ? si->ack_backlog : 0);
			p_u32(si ? si->max_ack_backlog : 0);
		} else if (event == E_ACCEPT4) {
			p_u32(a[3]);
		}
		break;
	case E_SENDTO:
		if (exit) {
			p_u64(ret);
			p_raw(b->p[0] ? b->p[0] : (const u8 *)"", b->len[0]);
		} else {
			p_u64((s64)(int)a[0]);
			p_u32(a[2]);
			si = (const struct sock_info *)blob(b, 0, sizeof(*si));
			p_socktuple(si, 0, b->p[1], b->len[1]);
		}
		break;
	case E_RECVFROM:
		if (exit) {
			p_u64(ret);
			p_raw(b->p[0] ? b->p[0] : (const u8 *)"", b->len[0]);
			si = (const struct sock_info *)blob(b, 1, sizeof(*si));
			if (ret >= 0)
				p_socktuple(si, 1, b->p[2], b->len[2]);
			else
				p_empty();
		} else {
			p_u64((s64)(int)a[0]);
			p_u32(a[2]);
		}
		break;
	case E_SENDMSG:
		if (exit) {
			p_u64(ret);
			p_iov_data(b, 0);
		} else {
			p_u64((s64)(int)a[0]);
			p_u32(iov_total(b, 0));
			si = (const struct sock_info *)blob(b, 1, sizeof(*si));
			p_socktuple(si, 0, b->p[2], b->len[2]);
		}
		break;
	case E_RECVMSG:
		if (exit) {
			p_u64(ret);
			p_u32(iov_total(b, 0));
			p_iov_data(b, 0);
			si = (const struct sock_info *)blob(b, 1, sizeof(*si));
			if (ret >= 0)
				p_socktuple(si, 1, b->p[2], b->len[2]);
			else
				p_empty();
		} else {
			p_u64((s64)(int)a[0]);
		}
		break;
	case E_SHUTDOWN:
		if (exit) {
			p_u64(ret);
		} else {
			p_u64((s64)(int)a[0]);
			p_u8(a[1]);           /* SHUT_* equal the PPM values */
		}
		break;
	case E_PIPE:
		if (exit) {
			const struct pipe_info *pi = (const struct pipe_info *)blob(b, 0, sizeof(*pi));

			p_u64(ret);
			p_u64(pi && ret >= 0 ? (s64)pi->fds[0] : 0);
			p_u64(pi && ret >= 0 ? (s64)pi->fds[1] : 0);
			p_u64(pi && ret >= 0 ? pi->ino : 0);
		}
		break;
	case E_STAT:
	case E_LSTAT:
	case E_CHDIR:
	case E_UNLINK:
	case E_RMDIR:
		if (exit) {
			p_u64(ret);
			if (event == E_CHDIR) {
				/* CHARBUF: the path as given */
				p_strblob(b->p[0], b->len[0]);
				if (ret == 0)
					chdir_done(r->pid, b->len[0] ? (const char *)b->p[0] : NULL);
			} else {
				p_strblob(b->p[0], b->len[0]);
			}
		}
		break;
	case E_MKDIR:
		if (exit) {
			p_u64(ret);
			p_strblob(b->p[0], b->len[0]);
		} else {
			p_u32(a[1]);
		}
		break;
	case E_MKDIRAT:
		if (exit) {
			p_u64(ret);
			p_u64((s64)(int)a[0]);
			p_strblob(b->p[0], b->len[0]);
			p_u32(a[2]);
		}
		break;
	case E_UNLINKAT:
		if (exit) {
			p_u64(ret);
			p_u64((s64)(int)a[0]);
			p_strblob(b->p[0], b->len[0]);
			p_u32(a[2] & 0x200);  /* AT_REMOVEDIR equals its PPM value */
		}
		break;
	case E_RENAME:
		if (exit) {
			p_u64(ret);
			p_strblob(b->p[0], b->len[0]);
			p_strblob(b->p[1], b->len[1]);
		}
		break;
	case E_RENAMEAT:
	case E_RENAMEAT2:
		if (exit) {
			p_u64(ret);
			p_u64((s64)(int)a[0]);
			p_strblob(b->p[0], b->len[0]);
			p_u64((s64)(int)a[2]);
			p_strblob(b->p[1], b->len[1]);
			if (event == E_RENAMEAT2)
				p_u32(a[4] & 7);  /* RENAME_* equal the PPM values */
		}
		break;
	case E_DUP:
		if (exit)
			p_u64(ret);
		else
			p_u64((s64)(int)a[0]);
		break;
	case E_FCNTL:
		if (exit) {
			p_u64(ret);
		} else {
			p_u64((s64)(int)a[0]);
			p_u8(fcntl_cmd_to_scap(a[1]));
		}
		break;
	case E_KILL:
		if (exit) {
			p_u64(ret);
		} else {
			p_u64((s64)(int)a[0]);
			p_u8(a[1]);
		}
		break;
	case E_EXECVE:
	case E_EXECVEAT:
		if (exit) {
			p_u64(ret);
			p_process(r, b, 1, 0);
		} else {
			if (event == E_EXECVEAT)
				p_u64((s64)(int)a[0]);
			p_strblob(b->p[0], b->len[0]);
			if (event == E_EXECVEAT) {
				u32 f = 0;

				if (a[4] & 0x1000) f |= 1;   /* AT_EMPTY_PATH */
				if (a[4] & 0x100) f |= 2;    /* AT_SYMLINK_NOFOLLOW */
				p_u32(f);
			}
		}
		break;
	case E_CLONE:
	case E_FORK:
	case E_VFORK:
	case E_CLONE3:
		if (exit) {
			u64 flags = 0;

			if (event == E_CLONE)
				flags = a[0];
			else if (event == E_VFORK)
				flags = 0x00004000 | 0x00000100;   /* what vfork asks of clone */
			else if (event == E_CLONE3 && b->len[2] >= 8)
				memcpy(&flags, b->p[2], 8);
			p_u64(ret);
			p_process(r, b, 0, flags);
		}
		break;
	default:
		unmatched_kinds++;
		return;
	}
	ev_end(r->ts + epoch_offset, r->tid, r->cpu);
}

static void convert_procexit(const struct rec *r)
{
	int status = (int)r->ret;
	int sig = status & 0x7f;

	ev_begin(E_PROCEXIT);
	p_u64((s64)status);
	p_u64(sig ? 0 : (status >> 8) & 0xff);
	p_u8(sig);
	p_u8(sig && (status & 0x80) ? 1 : 0);
	ev_end(r->ts + epoch_offset, r->tid, r->cpu);
	if (r->tid == r->pid)
		facts_forget(r->pid);
	if (opt.target_pid && (int)r->tid == opt.target_pid)
		target_exited = 1;
}

static void convert_switch(const struct rec *r, const struct switch_info *si)
{
	ev_begin(E_SWITCH);
	p_u64(r->id);
	p_u64(si->maj_flt);
	p_u64(si->min_flt);
	p_u32(pages_kb(si->vm_pages));
	p_u32(pages_kb(si->rss_pages));
	p_u32(pages_kb(si->swap_pages));
	ev_end(r->ts + epoch_offset, r->tid, r->cpu);
}

static void split_blobs(const struct rec *r, size_t size, struct blobs *b)
{
	const u8 *p = (const u8 *)r + sizeof(*r);
	size_t left = size - sizeof(*r);

	for (int i = 0; i < MAX_BLOBS; i++) {
		u32 n = r->blen[i];

		if (n > left)
			n = left;
		b->p[i] = n ? p : NULL;
		b->len[i] = n;
		p += n;
		left -= n;
	}
}

static void dispatch(const struct rec *r, size_t size)
{
	struct blobs b = {};

	split_blobs(r, size, &b);
	switch (r->kind) {
	case REC_ENTER:
	case REC_EXIT:
		convert_syscall(r, &b);
		break;
	case REC_PROCEXIT:
		convert_procexit(r);
		break;
	case REC_SWITCH:
		if (b.len[0] >= sizeof(struct switch_info))
			convert_switch(r, (const struct switch_info *)b.p[0]);
		break;
	}
}

/* Enter records whose path could not be read. The BPF side cannot fault user pages in, so a
 * path in a page the process has not touched yet reads as nothing at enter; by the exit the
 * kernel has touched it, and the exit record carries the same string (blob 0 for open, creat,
 * openat, openat2; blob 3 for execve and execveat, whose exit reads it only for this, and only
 * a failed exec still has it). Such an enter waits for its exit and borrows the string; its
 * own timestamp keeps it in place. */
#define MAX_HELD 256
static struct held { u32 tid; size_t size; struct rec *r; } held[MAX_HELD];
static int nheld;

static int enter_path_missing(const struct rec *r)
{
	long nr = r->id;
	u16 ev = nr >= 0 && nr < NSYSCALLS ? event_of[nr] : 0;

	if (ev != E_OPEN && ev != E_CREAT && ev != E_OPENAT && ev != E_OPENAT2 &&
	    ev != E_EXECVE && ev != E_EXECVEAT)
		return 0;
	return r->blen[0] == 0 &&
	       r->a[ev == E_OPENAT || ev == E_OPENAT2 || ev == E_EXECVEAT ? 1 : 0] != 0;
}

static void release_held(int i, const struct rec *exit_rec, size_t exit_size)
{
	struct held h = held[i];
	int from = (h.r->id == 59 || h.r->id == 322) ? 3 : 0;

	held[i] = held[--nheld];
	if (exit_rec && exit_rec->kind == REC_EXIT && exit_rec->id == h.r->id &&
	    exit_rec->blen[from]) {
		struct blobs eb = {}, nb = {};
		size_t size;
		struct rec *patched;
		u8 *p;

		split_blobs(exit_rec, exit_size, &eb);
		split_blobs(h.r, h.size, &nb);
		/* blob 0 (the path) from the exit; for openat2, blob 1 (open_how) too if missing */
		nb.p[0] = eb.p[from];
		nb.len[0] = eb.len[from];
		if (!nb.len[1] && event_of[h.r->id] == E_OPENAT2) {
			nb.p[1] = eb.p[1];
			nb.len[1] = eb.len[1];
		}
		size = sizeof(struct rec);
		for (int k = 0; k < MAX_BLOBS; k++)
			size += nb.len[k];
		patched = malloc(size);
		if (!patched)
			die("out of memory");
		*patched = *h.r;
		p = (u8 *)patched + sizeof(struct rec);
		for (int k = 0; k < MAX_BLOBS; k++) {
			patched->blen[k] = nb.len[k];
			if (nb.len[k])
				memcpy(p, nb.p[k], nb.len[k]);
			p += nb.len[k];
		}
		dispatch(patched, size);
		free(patched);
	} else {
		dispatch(h.r, h.size);
	}
	free(h.r);
}

static void release_all_held(void)
{
	while (nheld)
		release_held(nheld - 1, NULL, 0);
}

static int on_record(void *ctx, void *data, size_t size)
{
	const struct rec *r = data;

	if (size < sizeof(*r))
		return 0;
	records_seen++;
	for (int i = 0; i < nheld; i++) {
		if (held[i].tid == r->tid) {
			release_held(i, r, size);
			break;
		}
	}
	if (r->kind == REC_ENTER && enter_path_missing(r)) {
		if (nheld == MAX_HELD)
			release_held(0, NULL, 0);
		held[nheld].tid = r->tid;
		held[nheld].size = size;
		held[nheld].r = malloc(size);
		if (!held[nheld].r)
			die("out of memory");
		memcpy(held[nheld].r, r, size);
		nheld++;
		return 0;
	}
	dispatch(r, size);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* file start: section header and machine info, when nobody wrote them */

static void write_file_start(void)
{
	u8 shb[28], mi[192];
	u32 v;
	u64 mem;
	struct sysinfo s;

	memset(shb, 0, sizeof(shb));
	v = 0x0A0D0D0A; memcpy(shb, &v, 4);
	v = 28; memcpy(shb + 4, &v, 4);
	v = 0x1A2B3C4D; memcpy(shb + 8, &v, 4);
	shb[12] = 1;                  /* version 1.2 */
	shb[14] = 2;
	memset(shb + 16, 0xff, 8);
	v = 28; memcpy(shb + 24, &v, 4);
	write_all(shb, sizeof(shb));

	memset(mi, 0, sizeof(mi));
	v = 0x201; memcpy(mi, &v, 4);
	v = 192; memcpy(mi + 4, &v, 4);
	v = sysconf(_SC_NPROCESSORS_ONLN); memcpy(mi + 8, &v, 4);
	sysinfo(&s);
	mem = (u64)s.totalram * s.mem_unit;
	memcpy(mi + 12, &mem, 8);
	gethostname((char *)mi + 28, 127);
	memcpy(mi + 156, &epoch_offset, 8);   /* boot time, epoch ns */
	v = 192; memcpy(mi + 188, &v, 4);
	write_all(mi, sizeof(mi));
}

/* ------------------------------------------------------------------------------------------ */
/* loading */

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !opt.verbose)
		return 0;
	if (level == LIBBPF_INFO && !opt.verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static struct helper *load(int use_btf, u32 self)
{
	struct helper *skel = helper__open();
	int ncpu = libbpf_num_possible_cpus();

	if (!skel)
		return NULL;
	skel->rodata->self_tgid = self;
	skel->rodata->filter_on = opt.target_pid != 0 || opt.nalso != 0;
	skel->rodata->snaplen = opt.snaplen;
	skel->rodata->capture_switch = opt.capture_switch;
	skel->rodata->rb_flags = BPF_RB_NO_WAKEUP;   /* the loop consumes every 10 ms instead */
	bpf_map__set_max_entries(skel->maps.rb, opt.ring_kib * 1024);
	bpf_map__set_max_entries(skel->maps.scratch, ncpu > 0 ? ncpu : 1);
	bpf_program__set_autoload(skel->progs.sys_enter_btf, use_btf);
	bpf_program__set_autoload(skel->progs.sys_exit_btf, use_btf);
	bpf_program__set_autoload(skel->progs.sys_enter_raw, !use_btf);
	bpf_program__set_autoload(skel->progs.sys_exit_raw, !use_btf);
	if (helper__load(skel)) {
		helper__destroy(skel);
		return NULL;
	}
	return skel;
}

static int named(const char *list, const char *name, unsigned char *fd_kinds);

static void fill_rules(struct helper *skel)
{
	int fd = bpf_map__fd(skel->maps.rules);
	struct rule r;

	for (u32 nr = 0; nr < NSYSCALLS; nr++) {
		memset(&r, 0, sizeof(r));
		/* every syscall (at least the generic event), or with -e the ones named: what a
		 * command does not need is never sent, so a busy machine sends less */
		r.on = opt.only == NULL || (nr < NATIVE_MAX && named(opt.only, syscall_names[nr].name,
								   &r.fd_kinds));
		for (size_t i = 0; i < sizeof(sc_defs) / sizeof(sc_defs[0]); i++) {
			if (sc_defs[i].nr != (int)nr)
				continue;
			for (int k = 0; k < MAX_BLOBS; k++) {
				r.kind[0][k] = sc_defs[i].enter[k].kind;
				r.a[0][k] = sc_defs[i].enter[k].a;
				r.b[0][k] = sc_defs[i].enter[k].b;
				r.kind[1][k] = sc_defs[i].exit[k].kind;
				r.a[1][k] = sc_defs[i].exit[k].a;
				r.b[1][k] = sc_defs[i].exit[k].b;
			}
			event_of[nr] = sc_defs[i].event;
		}
		if (bpf_map_update_elem(fd, &nr, &r, BPF_ANY))
			die("cannot fill the syscall rules: %s", strerror(errno));
	}
}

/* Is `name` one of the comma-separated entries of `list`? An entry is a name, or
 * name:KINDS where KINDS are letters of the kinds of fd (its first argument) the call is
 * captured for: f regular file, s socket, o anything else, l a regular file whose path may
 * be a log's (spy_logs' rule); they go into *fd_kinds. */
static int named(const char *list, const char *name, unsigned char *fd_kinds)
{
	size_t len;

	*fd_kinds = 0;
	if (!name)
		return 0;
	len = strlen(name);
	for (const char *p = list; *p; ) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *colon = memchr(p, ':', n);
		size_t word = colon ? (size_t)(colon - p) : n;

		if (word == len && !strncmp(p, name, word)) {
			for (const char *k = colon ? colon + 1 : p + n; k < p + n; k++)
				*fd_kinds |= *k == 'f' ? FDK_FILE : *k == 's' ? FDK_SOCKET :
					     *k == 'o' ? FDK_OTHER : *k == 'l' ? FDK_LOG : 0;
			return 1;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: scaptool-helper -w OUT [-a] [-s SNAPLEN] [-d SECONDS] [-n EVENTS] [-p PID]\n"
		"                       [-P PID]... [-x PID]... [-b RING_KIB] [-S] [-T] [-r FD] [-v]\n"
		"                       [-e SYSCALL,...]\n"
		"                       [-- COMMAND...]\n"
		"  -w OUT      capture file (appended to with -a, which expects its metadata blocks)\n"
		"  -s SNAPLEN  bytes of I/O buffers to keep (default 80)\n"
		"  -d SECONDS  stop after this long;  -n EVENTS  stop after this many events\n"
		"  -p PID      only this process and the children it starts; stop when it exits\n"
		"  -P PID      also capture this process and its children (repeatable)\n"
		"  -x PID      never capture this process (a reader of the capture, say)\n"
		"  -b KIB      ring buffer size (power of two, default 8192)\n"
		"  -S          also capture context switches\n"
		"  -e NAMES    capture only these system calls (comma-separated names; name:fso\n"
		"              only when the first argument is an fd of a regular file, socket, other)\n"
		"  -T          attach with raw tracepoints only (the fallback when tp_btf fails)\n"
		"  -r FD       after attaching, write a byte to FD and close it (tells a caller\n"
		"              that capture has begun)\n"
		"  -- COMMAND  run COMMAND once attached, capture it and its children until it exits\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { { "help", no_argument, 0, 'h' }, { 0 } };
	struct helper *skel = NULL;
	struct ring_buffer *ring = NULL;
	int c, use_btf = 1, gate[2] = { -1, -1 };
	pid_t child = 0;
	u64 deadline = 0, drops = 0, sent = 0;
	struct sigaction sa = {};
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	while ((c = getopt_long(argc, argv, "+w:as:d:n:p:P:x:b:Sr:vTe:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'w': opt.out = optarg; break;
		case 'a': opt.append = 1; break;
		case 's': opt.snaplen = strtoul(optarg, NULL, 0); break;
		case 'd': opt.duration = strtod(optarg, NULL); break;
		case 'n': opt.max_events = strtoull(optarg, NULL, 0); break;
		case 'p': opt.target_pid = atoi(optarg); break;
		case 'P':
			if (opt.nalso < MAX_EXCLUDED)
				opt.also[opt.nalso++] = atoi(optarg);
			break;
		case 'x':
			if (opt.nexcluded < MAX_EXCLUDED)
				opt.excluded[opt.nexcluded++] = atoi(optarg);
			break;
		case 'b': opt.ring_kib = strtoul(optarg, NULL, 0); break;
		case 'S': opt.capture_switch = 1; break;
		case 'r': opt.release_fd = atoi(optarg); break;
		case 'v': opt.verbose = 1; break;
		case 'T': opt.raw_only = 1; break;
		case 'e': opt.only = optarg; break;
		default: usage();
		}
	}
	if (!opt.out)
		usage();
	if (optind < argc)
		opt.command = argv + optind;
	if (opt.snaplen > BLOB_MAX - 16)
		opt.snaplen = BLOB_MAX - 16;
	if (opt.ring_kib < 64 || (opt.ring_kib & (opt.ring_kib - 1)))
		die("-b must be a power of two of at least 64 (KiB)");
	if (geteuid() != 0)
		die("live capture needs root (bpf() is limited to root here)");
	{
		/* the reader that started us going away, even SIGKILLed, stops us as its ^C would
		 * (SIGTERM): nobody else would, and the file we write is its to name or drop */
		pid_t parent = getppid();

		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
			die("prctl: %s", strerror(errno));
		if (getppid() != parent)
			raise(SIGTERM);
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		die("this kernel exposes no BTF (/sys/kernel/btf/vmlinux): CO-RE needs it");

	{
		/* bracket the boot-time read with two realtime reads, take the middle */
		u64 r1 = clock_ns(CLOCK_REALTIME), b = clock_ns(CLOCK_BOOTTIME);
		u64 r2 = clock_ns(CLOCK_REALTIME);

		epoch_offset = r1 / 2 + r2 / 2 - b;
	}

	out_fd = open(opt.out, O_WRONLY | O_CREAT | (opt.append ? O_APPEND : O_TRUNC), 0644);
	if (out_fd < 0)
		die("%s: %s", opt.out, strerror(errno));
	if (lseek(out_fd, 0, SEEK_END) == 0)
		write_file_start();

	if (opt.command) {
		/* the command waits on a pipe until the probes are attached, so its first
		 * syscalls are captured */
		if (pipe(gate))
			die("pipe: %s", strerror(errno));
		child = fork();
		if (child < 0)
			die("fork: %s", strerror(errno));
		if (child == 0) {
			char byte;

			close(gate[1]);
			close(out_fd);
			if (read(gate[0], &byte, 1) != 1)
				_exit(127);
			close(gate[0]);
			execvp(opt.command[0], opt.command);
			fprintf(stderr, "scaptool-helper: %s: %s\n", opt.command[0], strerror(errno));
			_exit(127);
		}
		close(gate[0]);
		opt.target_pid = child;
	}

	/* from here on a stop request is remembered, even one that comes during the load */
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	libbpf_set_print(libbpf_quiet);
	skel = opt.raw_only ? NULL : load(1, getpid());
	if (skel && helper__attach(skel)) {
		helper__destroy(skel);
		skel = NULL;
	}
	if (!skel) {
		use_btf = 0;    /* tp_btf unavailable: the raw tracepoint twins */
		skel = load(0, getpid());
		if (!skel)
			die("cannot load the BPF programs (run with -v for libbpf's log)");
		if (helper__attach(skel))
			die("cannot attach the BPF programs: %s", strerror(errno));
	}
	fill_rules(skel);
	if (opt.target_pid) {
		u32 key = opt.target_pid;
		u8 one = 1;

		bpf_map_update_elem(bpf_map__fd(skel->maps.tracked), &key, &one, BPF_ANY);
	}
	for (int i = 0; i < opt.nalso; i++) {
		u32 key = opt.also[i];
		u8 one = 1;

		bpf_map_update_elem(bpf_map__fd(skel->maps.tracked), &key, &one, BPF_ANY);
	}
	for (int i = 0; i < opt.nexcluded; i++) {
		u32 key = opt.excluded[i];
		u8 one = 1;

		bpf_map_update_elem(bpf_map__fd(skel->maps.excluded), &key, &one, BPF_ANY);
	}
	ring = ring_buffer__new(bpf_map__fd(skel->maps.rb), on_record, NULL, NULL);
	if (!ring)
		die("cannot set up the ring buffer");

	if (opt.verbose)
		fprintf(stderr, "scaptool-helper: attached (%s)\n", use_btf ? "tp_btf" : "raw_tp");
	if (child) {
		if (write(gate[1], "x", 1) != 1)
			die("cannot release the command");
		close(gate[1]);
	}
	if (opt.release_fd >= 0) {
		if (write(opt.release_fd, "x", 1) != 1)
			die("cannot write to the release fd");
		close(opt.release_fd);
	}
	if (opt.duration > 0)
		deadline = clock_ns(CLOCK_MONOTONIC) + (u64)(opt.duration * 1e9);

	while (!stop_requested) {
		ring_buffer__consume(ring);
		flush_blocks(0);
		if (limit_reached() || target_exited)
			break;
		if (deadline && clock_ns(CLOCK_MONOTONIC) >= deadline)
			break;
		if (child && waitpid(child, NULL, WNOHANG) == child) {
			child = 0;
			target_exited = 1;   /* drained on the next turn */
			continue;
		}
		nanosleep(&tick, NULL);
	}
	/* stop producing, then take what is left */
	helper__detach(skel);
	ring_buffer__consume(ring);
	release_all_held();
	flush_blocks(1);

	{
		int ncpu = libbpf_num_possible_cpus();
		u64 *vals = calloc(ncpu, sizeof(u64));
		u32 key;

		key = 0;
		if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &key, vals))
			for (int i = 0; i < ncpu; i++)
				drops += vals[i];
		key = 1;
		if (!bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &key, vals))
			for (int i = 0; i < ncpu; i++)
				sent += vals[i];
		free(vals);
	}
	if (fsync(out_fd) && errno != EINVAL)
		die("fsync %s: %s", opt.out, strerror(errno));
	close(out_fd);
	fprintf(stderr, "{\"events\": %llu, \"records\": %llu, \"drops\": %llu, \"sent\": %llu, "
		"\"bytes\": %llu, \"attach\": \"%s\"}\n",
		(unsigned long long)events_written, (unsigned long long)records_seen,
		(unsigned long long)drops, (unsigned long long)sent,
		(unsigned long long)bytes_written, use_btf ? "tp_btf" : "raw_tp");
	ring_buffer__free(ring);
	helper__destroy(skel);
	if (child) {
		/* interrupted before the command ended: it got the same signal from the terminal,
		 * or gets one now so that it does not outlive the capture unseen */
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	return 0;
}
