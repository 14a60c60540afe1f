/* A test program for live capture: it makes each syscall the helper decodes, with arguments the
 * test knows, and writes what it did (fds, ports, pids) to DIR/report.txt as key=value lines.
 *
 *   exercise DIR
 *
 * Raw syscall() is used where glibc would pick another syscall (open -> openat, stat ->
 * newfstatat, fork -> clone, ...), so that every listed syscall really happens.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static char report[16384];
static size_t used;

static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	used += vsnprintf(report + used, sizeof(report) - used, fmt, ap);
	va_end(ap);
	used += snprintf(report + used, sizeof(report) - used, "\n");
}

static void child_exit_code(pid_t pid, const char *what)
{
	int status = 0;

	waitpid(pid, &status, 0);
	note("%s=%d", what, pid);
}

int main(int argc, char **argv)
{
	char buf[64];
	struct stat st;
	struct iovec wv[2] = { { "wv1-", 4 }, { "wv2", 3 } };
	struct iovec rv[2];
	char r1[3], r2[3];
	int fd, fd2, p[2], q[2];
	struct sockaddr_in addr = { .sin_family = AF_INET }, from;
	socklen_t alen = sizeof(addr);
	int ls, c, a, c2, a2, u1, u2;
	struct msghdr msg = {};
	struct iovec mv;
	char *const true_argv[] = { "true", "arg1", NULL };
	char *const true_env[] = { "FOO=bar", NULL };
	pid_t pid;

	if (argc < 2)
		return 2;
	/* files */
	syscall(SYS_chdir, argv[1]);
	fd = syscall(SYS_open, "a.txt", O_CREAT | O_WRONLY | O_TRUNC, 0640);
	note("open=%d", fd);
	write(fd, "write-data", 10);
	pwrite(fd, "pwrite", 6, 100);
	writev(fd, wv, 2);
	close(fd);
	fd = openat(AT_FDCWD, "a.txt", O_RDONLY);
	note("openat=%d", fd);
	read(fd, buf, 4);
	pread(fd, buf, 6, 100);
	rv[0] = (struct iovec){ r1, 3 };
	rv[1] = (struct iovec){ r2, 3 };
	readv(fd, rv, 2);
	syscall(SYS_fstat, fd, &st);
	note("ino=%llu", (unsigned long long)st.st_ino);
	note("dev=%llu", (unsigned long long)st.st_dev);
	syscall(SYS_stat, "a.txt", &st);
	syscall(SYS_lstat, "missing.txt", &st);
	fd2 = dup(fd);
	note("dup=%d", fd2);
	syscall(SYS_dup2, fd, 20);
	dup3(fd, 21, O_CLOEXEC);
	note("fcntl=%d", fcntl(fd, F_DUPFD_CLOEXEC, 30));
	fcntl(fd, F_GETFL);
	close(fd2);
	close(20);
	close(21);
	close(30);
	close(fd);
	{
		struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };

		fd = syscall(SYS_openat2, AT_FDCWD, "a.txt", &how, sizeof(how));
		note("openat2=%d", fd);
		close(fd);
	}
	fd = syscall(SYS_creat, "b.txt", 0600);
	note("creat=%d", fd);
	close(fd);
	syscall(SYS_pipe, p);
	note("pipe=%d,%d", p[0], p[1]);
	fstat(p[0], &st);
	note("pipe_ino=%llu", (unsigned long long)st.st_ino);
	pipe2(q, O_CLOEXEC);
	note("pipe2=%d,%d", q[0], q[1]);
	close(p[0]); close(p[1]); close(q[0]); close(q[1]);
	syscall(SYS_mkdir, "d1", 0755);
	mkdirat(AT_FDCWD, "d2", 0700);
	syscall(SYS_rename, "b.txt", "c.txt");
	renameat(AT_FDCWD, "c.txt", AT_FDCWD, "d.txt");
	syscall(SYS_renameat2, AT_FDCWD, "d.txt", AT_FDCWD, "e.txt", 1 /* RENAME_NOREPLACE */);
	syscall(SYS_unlink, "e.txt");
	unlinkat(AT_FDCWD, "d2", AT_REMOVEDIR);
	syscall(SYS_rmdir, "d1");

	/* TCP on the loopback */
	ls = socket(AF_INET, SOCK_STREAM, 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(ls, (struct sockaddr *)&addr, sizeof(addr));
	getsockname(ls, (struct sockaddr *)&addr, &alen);
	note("tcp_port=%d", ntohs(addr.sin_port));
	listen(ls, 5);
	c = socket(AF_INET, SOCK_STREAM, 0);
	note("socket=%d", c);
	connect(c, (struct sockaddr *)&addr, sizeof(addr));
	alen = sizeof(from);
	getsockname(c, (struct sockaddr *)&from, &alen);
	note("client_port=%d", ntohs(from.sin_port));
	a = accept(ls, NULL, NULL);
	note("accept=%d", a);
	sendto(c, "ping", 4, 0, NULL, 0);
	recvfrom(a, buf, sizeof(buf), 0, NULL, NULL);
	mv = (struct iovec){ "pong", 4 };
	msg.msg_iov = &mv;
	msg.msg_iovlen = 1;
	sendmsg(a, &msg, 0);
	mv = (struct iovec){ buf, sizeof(buf) };
	recvmsg(c, &msg, 0);
	shutdown(c, SHUT_WR);
	c2 = socket(AF_INET, SOCK_STREAM, 0);
	connect(c2, (struct sockaddr *)&addr, sizeof(addr));
	a2 = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	note("accept4=%d", a2);
	close(a2); close(c2); close(a); close(c); close(ls);

	/* UDP, with addresses on sendto and recvfrom */
	u1 = socket(AF_INET, SOCK_DGRAM, 0);
	addr.sin_port = 0;
	bind(u1, (struct sockaddr *)&addr, sizeof(addr));
	alen = sizeof(addr);
	getsockname(u1, (struct sockaddr *)&addr, &alen);
	note("udp_port=%d", ntohs(addr.sin_port));
	u2 = socket(AF_INET, SOCK_DGRAM, 0);
	sendto(u2, "udp!", 4, 0, (struct sockaddr *)&addr, sizeof(addr));
	alen = sizeof(from);
	recvfrom(u1, buf, sizeof(buf), 0, (struct sockaddr *)&from, &alen);
	note("udp_from=%d", ntohs(from.sin_port));
	close(u1); close(u2);

	/* processes */
	kill(getpid(), 0);
	pid = fork();                                   /* glibc: the clone syscall */
	if (pid == 0)
		_exit(3);
	child_exit_code(pid, "clone_child");
	pid = syscall(SYS_fork);
	if (pid == 0)
		_exit(4);
	child_exit_code(pid, "fork_child");
	pid = vfork();
	if (pid == 0)
		_exit(5);
	child_exit_code(pid, "vfork_child");
	{
		struct clone_args ca = { .exit_signal = SIGCHLD };

		pid = syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid == 0)
			_exit(6);
		child_exit_code(pid, "clone3_child");
	}
	pid = fork();
	if (pid == 0) {
		execve("/nonexistent/program", true_argv, true_env);
		execve("/bin/true", true_argv, true_env);
		_exit(127);
	}
	child_exit_code(pid, "execve_child");
	pid = fork();
	if (pid == 0) {
		/* on the stack, so that the page is present when the enter event reads it: a
		 * successful exec leaves nothing for the exit event to read it again from */
		char path[] = "/bin/true";

		syscall(SYS_execveat, AT_FDCWD, path, true_argv, true_env, 0);
		_exit(127);
	}
	child_exit_code(pid, "execveat_child");
	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	kill(pid, SIGKILL);
	child_exit_code(pid, "killed_child");

	fd = open("report.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	write(fd, report, used);
	close(fd);
	return 7;
}
