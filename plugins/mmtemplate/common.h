// Small helpers of the mmtemplate plugin: errors as values, owned fds.
#pragma once

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <utility>

namespace mmt
{

// A value or an error message (one line, with what failed and why).
template <class T> class Result
{
public:
	Result(T v) : v_(std::move(v)) {}
	static Result fail(std::string msg)
	{
		Result r;
		r.err_ = std::move(msg);
		return r;
	}
	explicit operator bool() const { return v_.has_value(); }
	T &operator*() { return *v_; }
	T *operator->() { return &*v_; }
	const std::string &error() const { return err_; }

private:
	Result() = default;
	std::optional<T> v_;
	std::string err_;
};

struct Ok {
};
using Status = Result<Ok>;
inline Status ok()
{
	return Ok{};
}
inline Status fail(std::string msg)
{
	return Status::fail(std::move(msg));
}
std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
// fmt(...) + ": " + strerror(errno)
std::string sys(const char *f, ...) __attribute__((format(printf, 1, 2)));

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

}  // namespace mmt
