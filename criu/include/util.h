// Small RAII helpers and error values shared by every module.
#pragma once

#include <errno.h>
#include <time.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace criu
{

constexpr uint64_t kPageSize = 4096;

// An error is a message with its context ("what, on which PID/path, errno").
struct Error {
	std::string msg;
};

std::string strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// strfmt(...) + ": " + strerror(errno)
Error sys_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Either a T or an Error.
template <class T> class [[nodiscard]] Result
{
public:
	Result(T v) : v_(std::move(v)) {}
	Result(Error e) : v_(std::move(e)) {}
	bool ok() const { return v_.index() == 0; }
	explicit operator bool() const { return ok(); }
	T &operator*() { return std::get<0>(v_); }
	T *operator->() { return &std::get<0>(v_); }
	const Error &error() const { return std::get<1>(v_); }

private:
	std::variant<T, Error> v_;
};

// Success or an Error.
class [[nodiscard]] Status
{
public:
	Status() = default;
	Status(Error e) : err_(std::move(e)) {}
	static Status Ok() { return {}; }
	bool ok() const { return !err_; }
	explicit operator bool() const { return ok(); }
	const Error &error() const { return *err_; }

private:
	std::optional<Error> err_;
};

#define TRY(expr)                                                                                                      \
	do {                                                                                                           \
		auto _st = (expr);                                                                                     \
		if (!_st)                                                                                              \
			return _st.error();                                                                            \
	} while (0)

class Fd
{
public:
	Fd() = default;
	explicit Fd(int fd) : fd_(fd) {}
	Fd(Fd &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
	Fd &operator=(Fd &&o) noexcept
	{
		reset(std::exchange(o.fd_, -1));
		return *this;
	}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	~Fd() { reset(); }
	int get() const { return fd_; }
	bool valid() const { return fd_ >= 0; }
	int release() { return std::exchange(fd_, -1); }
	void reset(int fd = -1)
	{
		if (fd_ >= 0)
			::close(fd_);
		fd_ = fd;
	}

private:
	int fd_ = -1;
};

class Mapping
{
public:
	Mapping() = default;
	Mapping(void *addr, size_t len) : addr_(addr), len_(len) {}
	Mapping(Mapping &&o) noexcept : addr_(std::exchange(o.addr_, nullptr)), len_(o.len_) {}
	Mapping &operator=(Mapping &&o) noexcept
	{
		unmap();
		addr_ = std::exchange(o.addr_, nullptr);
		len_ = o.len_;
		return *this;
	}
	~Mapping() { unmap(); }
	void *get() const { return addr_; }
	size_t size() const { return len_; }
	void *release() { return std::exchange(addr_, nullptr); }

private:
	void unmap()
	{
		if (addr_)
			munmap(addr_, len_);
		addr_ = nullptr;
	}
	void *addr_ = nullptr;
	size_t len_ = 0;
};

// CLOCK_MONOTONIC now, and milliseconds elapsed since t0.
timespec now();
double ms_since(const timespec &t0);

Result<std::string> read_file(const std::string &path, size_t limit = 1 << 20);
// A worker that answered waits, at idle priority, for its client to hang up
// (timeout_ms at most) before it exits. Its exit, and what follows from it
// (the end of a template holder's worker, the next spare made), then costs
// the CPUs nothing while the client wakes up to the answer: on a small
// machine that cost was 0.1-0.4 ms of a start. Woken by the hang-up, it
// does not preempt the client (which reads its clock, say, right after it
// closed).
void linger(int fd, int timeout_ms);
// name relative to the directory dir_fd: no path walk through /proc/self/fd
Result<std::string> read_file_at(int dir_fd, const std::string &name, size_t limit = 1 << 20);
Result<std::string> read_link(const std::string &path);
Status write_all(int fd, const void *buf, size_t len, const std::string &what);
Status read_all(int fd, void *buf, size_t len, const std::string &what);
std::vector<std::string_view> split(std::string_view s, char sep);
std::optional<uint64_t> parse_u64(std::string_view s, int base = 10);

// The credentials (SO_PEERCRED) of the peer of a unix socket.
Result<ucred> peer_cred(int sock);

// One packet on a unix socket with fds attached (SCM_RIGHTS). recv_fds
// returns the packet's size (0: the peer is gone) and the fds, close-on-exec;
// a packet with more than max_fds fds or more than max_len bytes is an error.
Status send_fds(int sock, const void *buf, size_t len, const std::vector<int> &fds, int flags = 0);
Result<size_t> recv_fds(int sock, std::string &buf, size_t max_len, std::vector<Fd> &fds, size_t max_fds,
			int flags = 0);

// Runs a helper program (found in PATH, else in the sbin and bin
// directories) to completion with in_fd and out_fd as its stdin and stdout
// (-1: /dev/null). What it writes on stderr goes to the log (debug); an
// error carries the command, its exit status and that text.
Status run_tool(const std::vector<std::string> &argv, int in_fd, int out_fd);

// In a child of a process that catches or blocks these signals: their
// default dispositions, unblocked.
void default_signals(std::initializer_list<int> sigs);

// fork() of a helper linked to its parent by a SOCK_SEQPACKET pair: pid 0
// and the child's end in the child (named comm, SIGTERM, SIGINT and
// SIGCHLD as by default), the child's pid and the parent's end in the
// parent, where the end hangs up when the child is gone.
struct LinkedChild {
	pid_t pid;
	Fd end;
};
Result<LinkedChild> fork_linked(const char *comm);

}  // namespace criu
