/* The record layout shared by the BPF side (helper.bpf.c) and the loader (helper.c).
 *
 * The BPF side stays generic: for every syscall it sends the raw arguments and return value,
 * plus up to four "blobs" of memory that a per-syscall rule (filled in by the loader) asks for.
 * Turning a record into a scap event with the parameters of sysdig 0.29.3's event table happens
 * in user space, where it is plain C and cannot upset the verifier.
 */
#ifndef SCAPTOOL_HELPER_H
#define SCAPTOOL_HELPER_H

#define MAX_BLOBS 4
#define BLOB_MAX 16384            /* hard cap on one blob: snaplen is clamped below this */
#define BLOB_MASK (BLOB_MAX - 1)
#define OFF_MASK 65535            /* all blobs start below this offset */
#define STR_MAX 4096              /* paths and execve filenames (PATH_MAX) */
#define AREA_MAX 4096             /* execve/clone args and env areas */
#define SOCKADDR_MAX 128
#define IOV_MAX_CAPTURE 16        /* iovecs looked at for sizes and data */
#define NSYSCALLS 512
#define MAX_EXCLUDED 64

enum rec_kind {
	REC_ENTER = 1,
	REC_EXIT = 2,
	REC_PROCEXIT = 3,
	REC_SWITCH = 4,
};

/* What a blob holds; `a` names the argument (0-5) with the pointer, `b` a second argument or a
 * fixed size, as listed. */
enum blob_kind {
	K_NONE = 0,
	K_STR,          /* NUL-terminated user string at arg a */
	K_BUF_RET,      /* user buffer at arg a, min(ret, snaplen) bytes (exit only) */
	K_BUF_ARG,      /* user buffer at arg a, min(arg b, snaplen) bytes */
	K_FIXED,        /* b bytes of user memory at arg a */
	K_SOCKADDR,     /* user sockaddr at arg a, length arg b */
	K_SOCKADDR_PLEN,/* user sockaddr at arg a, length in the int that arg b points to */
	K_SOCK,         /* struct sock_info of fd arg a, or of fd = ret when b is 1 */
	K_FILE,         /* struct file_info of fd arg a, or of fd = ret when b is 1 */
	K_PIPE,         /* struct pipe_info: the int[2] at arg a and the first fd's inode */
	K_IOV_RET,      /* iovec array at arg a, count arg b: u64 total length, then data (ret) */
	K_IOV_SIZE,     /* same, data limited by the total length instead of ret */
	K_IOV_LEN,      /* only the u64 total length */
	K_MSG_RET,      /* struct user_msghdr at arg a: as K_IOV_RET over its iovecs */
	K_MSG_SIZE,     /* as K_IOV_SIZE */
	K_MSG_LEN,      /* as K_IOV_LEN */
	K_MSG_NAME,     /* the msghdr's msg_name sockaddr */
	K_PROC,         /* struct proc_info of the current task */
	K_ARGS,         /* the current task's argument area (argv strings) */
	K_ENV,          /* the current task's environment area */
	K_MAX,
};

/* kinds of file an fd may be (struct rule's fd_kinds), from its inode's mode */
#define FDK_FILE 1      /* regular file */
#define FDK_SOCKET 2
#define FDK_OTHER 4     /* pipe, character or block device, directory, ... */
#define FDK_LOG 8       /* regular file whose path may be a log's (spy_logs' rule: the path
			 * holds .log, _log or /var/log), by its name in the dentry cache */

struct rule {
	unsigned char kind[2][MAX_BLOBS];   /* [0] enter, [1] exit */
	unsigned char a[2][MAX_BLOBS];
	unsigned short b[2][MAX_BLOBS];
	unsigned char on;                   /* 0: not captured at all */
	unsigned char fd_kinds;             /* nonzero: only if arg 0's fd is of these FDK_* */
	unsigned char pad[6];
};

struct rec {
	unsigned short kind;
	unsigned short cpu;
	unsigned int tid;
	unsigned int pid;                   /* tgid */
	unsigned int pad;
	unsigned long long ts;              /* boot-time ns; the loader adds the epoch offset */
	long long id;                       /* native syscall number; next tid for switch */
	long long ret;                      /* return value; exit code for procexit */
	unsigned long long a[6];
	unsigned int blen[MAX_BLOBS];       /* blobs follow the record, back to back */
};

struct sock_info {
	unsigned short family;              /* AF_* of the kernel socket; 0 if fd is no socket */
	unsigned short type;
	unsigned short proto;
	unsigned short lport;               /* host order */
	unsigned short rport;
	unsigned short pathlen;             /* unix: bytes of path (abstract names start with 0) */
	unsigned char laddr[16];
	unsigned char raddr[16];
	unsigned long long sk;              /* unix: kernel addresses, as sysdig shows them */
	unsigned long long peer;
	char path[108];
	unsigned int ack_backlog;           /* listening sockets: connections waiting, and */
	unsigned int max_ack_backlog;       /* the most that may wait (accept's queue figures) */
	unsigned int pad;
};

struct file_info {
	unsigned long long ino;
	unsigned int dev;                   /* kernel dev_t: major << 20 | minor */
	unsigned int flags;
	unsigned int mode;
	unsigned int pad;
};

struct pipe_info {
	int fds[2];
	unsigned long long ino;
};

struct proc_info {
	unsigned int tid, pid, ptid, vtid, vpid, pgid;
	unsigned int uid, gid, loginuid;
	unsigned int tty;
	unsigned long long fdlimit;
	unsigned long long maj_flt, min_flt;
	unsigned long long vm_pages, rss_pages, swap_pages;
	char comm[16];
};

struct switch_info {
	unsigned long long maj_flt, min_flt;
	unsigned long long vm_pages, rss_pages, swap_pages;
};

#endif
