#include "util.h"

#include "log.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <charconv>

namespace criu
{

std::string strfmt(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

Error sys_error(const char *fmt, ...)
{
	int saved = errno;
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return Error{std::string(buf) + ": " + strerror(saved)};
}

timespec now()
{
	timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t;
}

double ms_since(const timespec &t0)
{
	timespec t1 = now();
	return (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
}

namespace
{

Result<std::string> read_whole(int fd, const std::string &what, size_t limit)
{
	std::string out;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("can't read %s", what.c_str());
		}
		if (n == 0)
			break;
		out.append(buf, n);
		if (out.size() > limit)
			return Error{strfmt("%s is larger than %zu bytes", what.c_str(), limit)};
	}
	return out;
}

}  // namespace

Result<std::string> read_file(const std::string &path, size_t limit)
{
	Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd.valid())
		return sys_error("can't open %s", path.c_str());
	return read_whole(fd.get(), path, limit);
}

Result<std::string> read_file_at(int dir_fd, const std::string &name, size_t limit)
{
	Fd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd.valid())
		return sys_error("can't open %s", name.c_str());
	return read_whole(fd.get(), name, limit);
}

Result<std::string> read_link(const std::string &path)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
	if (n < 0)
		return sys_error("can't readlink %s", path.c_str());
	return std::string(buf, n);
}

Result<ucred> peer_cred(int sock)
{
	ucred cr{};
	socklen_t len = sizeof(cr);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return sys_error("can't get the credentials of a socket's peer");
	return cr;
}

Status write_all(int fd, const void *buf, size_t len, const std::string &what)
{
	auto p = static_cast<const char *>(buf);
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("can't write %s", what.c_str());
		}
		p += n;
		len -= n;
	}
	return {};
}

Status read_all(int fd, void *buf, size_t len, const std::string &what)
{
	auto p = static_cast<char *>(buf);
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("can't read %s", what.c_str());
		}
		if (n == 0)
			return Error{strfmt("%s is truncated", what.c_str())};
		p += n;
		len -= n;
	}
	return {};
}

Status send_fds(int sock, const void *buf, size_t len, const std::vector<int> &fds, int flags)
{
	iovec iov{const_cast<void *>(buf), len};
	msghdr mh{};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	std::vector<char> ctl(CMSG_SPACE(sizeof(int) * fds.size()));
	if (!fds.empty()) {
		mh.msg_control = ctl.data();
		mh.msg_controllen = ctl.size();
		cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
		memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		return n < 0 ? sys_error("can't send a message with %zu fds", fds.size())
			     : Error{"a message with fds was sent in part"};
	return {};
}

Result<size_t> recv_fds(int sock, std::string &buf, size_t max_len, std::vector<Fd> &fds, size_t max_fds, int flags)
{
	buf.resize(max_len + 1);
	iovec iov{buf.data(), buf.size()};
	msghdr mh{};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	std::vector<char> ctl(CMSG_SPACE(sizeof(int) * max_fds));
	mh.msg_control = ctl.data();
	mh.msg_controllen = ctl.size();
	ssize_t n;
	do
		n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sys_error("can't receive a message with fds");
	fds.clear();
	for (cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				fds.emplace_back(fd);
			}
	buf.resize(n);
	if ((size_t)n > max_len || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		return Error{strfmt("a message of %zd bytes (%zu fds at most) was cut", n, max_fds)};
	return (size_t)n;
}

std::vector<std::string_view> split(std::string_view s, char sep)
{
	std::vector<std::string_view> out;
	size_t pos = 0;
	while (pos <= s.size()) {
		size_t e = s.find(sep, pos);
		if (e == std::string_view::npos)
			e = s.size();
		out.push_back(s.substr(pos, e - pos));
		pos = e + 1;
	}
	return out;
}

std::optional<uint64_t> parse_u64(std::string_view s, int base)
{
	uint64_t v = 0;
	auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
	if (ec != std::errc() || p != s.data() + s.size() || s.empty())
		return std::nullopt;
	return v;
}

namespace
{

// In the forked child: stdin, stdout and stderr in place, then exec.
[[noreturn]] void exec_tool(const std::vector<std::string> &argv, int in_fd, int out_fd, int err_fd)
{
	// any of the fds may be 0..2 itself: all move above first
	int fds[3] = {in_fd < 0 ? open("/dev/null", O_RDONLY) : in_fd,
		      out_fd < 0 ? open("/dev/null", O_WRONLY) : out_fd, err_fd};
	for (int &fd : fds)
		fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			_exit(127);
	std::vector<char *> args;
	for (auto &a : argv)
		args.push_back(const_cast<char *>(a.c_str()));
	args.push_back(nullptr);
	execvp(args[0], args.data());
	// a service started with a bare environment may have no sbin in PATH
	for (const char *dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"})
		if (!strchr(args[0], '/'))
			execv((dir + argv[0]).c_str(), args.data());
	dprintf(2, "can't run %s: %s\n", args[0], strerror(errno));
	_exit(127);
}

}  // namespace

Status run_tool(const std::vector<std::string> &argv, int in_fd, int out_fd)
{
	std::string cmd;
	for (auto &a : argv)
		cmd += (cmd.empty() ? "" : " ") + a;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sys_error("can't run `%s`", cmd.c_str());
	Fd rd(p[0]), wr(p[1]);
	pid_t pid = fork();
	if (pid < 0)
		return sys_error("can't run `%s`", cmd.c_str());
	if (pid == 0)
		exec_tool(argv, in_fd, out_fd, wr.get());
	wr.reset();
	std::string said;
	char buf[4096];
	for (ssize_t n; (n = read(rd.get(), buf, sizeof(buf))) != 0;)
		if (n > 0 && said.size() < 65536)
			said.append(buf, n);
		else if (n < 0 && errno != EINTR)
			break;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return sys_error("can't wait for `%s` (PID %d)", cmd.c_str(), pid);
	while (!said.empty() && said.back() == '\n')
		said.pop_back();
	if (!said.empty())
		pr_debug("`%s`: %s\n", cmd.c_str(), said.c_str());
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return {};
	for (auto &c : said)
		c = c == '\n' ? ';' : c;
	return Error{strfmt("`%s` failed (%s %d)%s%.300s", cmd.c_str(), WIFEXITED(status) ? "exit status" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), said.empty() ? "" : ": ",
			    said.c_str())};
}

void default_signals(std::initializer_list<int> sigs)
{
	sigset_t set;
	sigemptyset(&set);
	for (int s : sigs) {
		signal(s, SIG_DFL);
		sigaddset(&set, s);
	}
	sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

Result<LinkedChild> fork_linked(const char *comm)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return sys_error("can't make the socket of a %s", comm);
	Fd parent(sv[0]), child(sv[1]);
	pid_t pid = fork();
	if (pid < 0)
		return sys_error("can't fork a %s", comm);
	if (pid == 0) {
		parent.reset();
		default_signals({SIGTERM, SIGINT, SIGCHLD});
		prctl(PR_SET_NAME, comm);
		return LinkedChild{0, std::move(child)};
	}
	return LinkedChild{pid, std::move(parent)};
}

void linger(int fd, int timeout_ms)
{
	sched_param idle{};
	sched_setscheduler(0, SCHED_IDLE, &idle);
	pollfd p{fd, POLLIN, 0};
	while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR)
		;
}

}  // namespace criu
