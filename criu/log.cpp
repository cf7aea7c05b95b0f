#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <ctime>

namespace criu::log
{
namespace
{
int g_level = kWarn;
int g_fd = STDERR_FILENO;
bool g_pid = false;
std::string g_first_error;
timeval g_start;
}  // namespace

void adopt(int verbosity, int fd, bool log_pid)
{
	g_level = verbosity;
	g_pid = log_pid;
	gettimeofday(&g_start, nullptr);
	g_fd = fd >= 0 ? fd : STDERR_FILENO;
}

void init(int verbosity, const std::string &path, bool log_pid, bool append)
{
	if (g_fd != STDERR_FILENO)
		close(g_fd);
	int fd = STDERR_FILENO;
	if (!path.empty() && path != "-") {
		fd = open(path.c_str(), O_WRONLY | O_CREAT | (append ? 0 : O_TRUNC) | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0)
			fprintf(stderr, "Error: can't open log file %s: %s\n", path.c_str(), strerror(errno));
	}
	adopt(verbosity, fd, log_pid);
}

int verbosity()
{
	return g_level;
}

int fd()
{
	return g_fd;
}

void set_fd(int fd)
{
	g_fd = fd;
}

const std::string &first_error()
{
	return g_first_error;
}

void reset_first_error()
{
	g_first_error.clear();
}

void print(Level lvl, const char *fmt, ...)
{
	if (lvl > g_level && !(lvl == kError))
		return;
	char body[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);

	char line[4300];
	int n;
	if (lvl == kMsg) {
		n = snprintf(line, sizeof(line), "%s", body);
	} else {
		timeval now;
		gettimeofday(&now, nullptr);
		long us = (now.tv_sec - g_start.tv_sec) * 1000000L + (now.tv_usec - g_start.tv_usec);
		if (g_pid)
			n = snprintf(line, sizeof(line), "(%02ld.%06ld) %6d: %s", us / 1000000, us % 1000000, getpid(),
				     body);
		else
			n = snprintf(line, sizeof(line), "(%02ld.%06ld) %s", us / 1000000, us % 1000000, body);
	}
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	if (lvl <= g_level || lvl == kMsg) {
		ssize_t w = write(g_fd, line, n);
		(void)w;
	}
	if (lvl == kError) {
		if (g_first_error.empty())
			g_first_error = body;
		// With a log file, stderr still gets the one line that says why.
		if (g_fd != STDERR_FILENO && g_first_error == body) {
			ssize_t w = write(STDERR_FILENO, body, strlen(body));
			(void)w;
		}
	}
}

}  // namespace criu::log
