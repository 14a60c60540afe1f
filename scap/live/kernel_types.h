/* The few kernel types the BPF side reads, declared by hand instead of a full vmlinux.h dump.
 *
 * Every struct is marked preserve_access_index, so each field access is recorded as a CO-RE
 * relocation and resolved against the running kernel's BTF at load time: only the field names
 * (and the kinds of their types) have to match the kernel, not the offsets or sizes here.
 * Fields that the kernel keeps in anonymous unions/structs are declared flat; libbpf finds
 * them through the anonymous members.
 */
#ifndef SCAPTOOL_KERNEL_TYPES_H
#define SCAPTOOL_KERNEL_TYPES_H

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef int pid_t;
typedef _Bool bool;
#define true 1
#define false 0

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax;
	unsigned long ip, cs, flags, sp, ss;
};

typedef struct { u32 val; } kuid_t;
typedef struct { u32 val; } kgid_t;

struct cred {
	kuid_t uid;
	kgid_t gid;
};

struct upid {
	int nr;
	void *ns;
};

struct pid {
	unsigned int level;
	struct upid numbers[1];
};

struct rlimit {
	unsigned long rlim_cur;
	unsigned long rlim_max;
};

struct tty_driver {
	int major;
	int minor_start;
};

struct tty_struct {
	int index;
	struct tty_driver *driver;
};

struct signal_struct {
	struct pid *pids[4];
	struct tty_struct *tty;
	struct rlimit rlim[16];
};

struct percpu_counter {
	s64 count;
};

struct mm_struct {
	unsigned long total_vm;
	unsigned long arg_start, arg_end, env_start, env_end;
	struct percpu_counter rss_stat[4];
};

struct super_block {
	u32 s_dev;
};

struct inode {
	unsigned short i_mode;
	struct super_block *i_sb;
	unsigned long i_ino;
};

/* a name in the dentry cache: `len` sits in an anonymous struct in the kernel's union */
struct qstr {
	u32 len;
	const unsigned char *name;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
};

struct vfsmount {
	struct dentry *mnt_root;
};

/* the mount a vfsmount is embedded in: where it is mounted, and on what */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	void *private_data;
	struct inode *f_inode;
	unsigned int f_flags;
	struct path f_path;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	char comm[16];
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct pid *thread_pid;
	struct mm_struct *mm;
	struct files_struct *files;
	const struct cred *cred;
	struct signal_struct *signal;
	unsigned long maj_flt;
	unsigned long min_flt;
	kuid_t loginuid;
};

struct in6_addr {
	u8 s6_addr[16];
};

struct sock_common {
	u32 skc_daddr;
	u32 skc_rcv_saddr;
	u16 skc_dport;
	u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
	struct sock_common __sk_common;
	u16 sk_protocol;
	u16 sk_type;
	u32 sk_ack_backlog;
	u32 sk_max_ack_backlog;
};

struct socket {
	short type;
	struct sock *sk;
};

struct sockaddr_un {
	unsigned short sun_family;
	char sun_path[108];
};

struct unix_address {
	int len;
	struct sockaddr_un name[1];
};

struct unix_sock {
	struct sock sk;
	struct unix_address *addr;
	struct sock *peer;
};

#pragma clang attribute pop

/* user-space ABI structs (fixed layout, no relocation) */
struct iovec_user {
	u64 base;
	u64 len;
};

struct msghdr_user {
	u64 name;
	s32 namelen;
	s32 pad;
	u64 iov;
	u64 iovlen;
};

#endif
