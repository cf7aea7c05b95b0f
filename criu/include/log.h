// Logging with CRIU's conventions: -v0 (nothing) .. -v4 (debug), -o FILE.
// Errors also reach stderr as one line, so a failed command always says why.
#pragma once

#include <string>

namespace criu::log
{

enum Level { kMsg = 0, kError = 1, kWarn = 2, kInfo = 3, kDebug = 4 };

// With append, a log that exists is continued (a restore delegated to a
// template holder's worker writes after the criu that delegated it).
void init(int verbosity, const std::string &path, bool log_pid, bool append = false);
int verbosity();
// Takes fd (already open on the log) with that verbosity; for a task that
// logs into criu's log.
void adopt(int verbosity, int fd, bool log_pid);
// The log's fd, so that a restoring child can move it out of the way.
int fd();
void set_fd(int fd);
void print(Level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The first error printed, for callers that must report one line.
const std::string &first_error();
// Forget it: a service worker starts each request afresh.
void reset_first_error();

}  // namespace criu::log

#define pr_msg(fmt, ...) ::criu::log::print(::criu::log::kMsg, fmt, ##__VA_ARGS__)
#define pr_err(fmt, ...)                                                                                               \
	::criu::log::print(::criu::log::kError, "Error (%s:%d): " fmt, __FILE__, __LINE__, ##__VA_ARGS__)
#define pr_warn(fmt, ...)                                                                                              \
	::criu::log::print(::criu::log::kWarn, "Warn  (%s:%d): " fmt, __FILE__, __LINE__, ##__VA_ARGS__)
#define pr_info(fmt, ...) ::criu::log::print(::criu::log::kInfo, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) ::criu::log::print(::criu::log::kDebug, fmt, ##__VA_ARGS__)
