// Command line options, named and meaning as in criu(8).
#pragma once

#include <sys/types.h>

#include <string>

namespace criu
{

struct Options {
	std::string command;
	pid_t pid = 0;		       // -t
	std::string images_dir = ".";  // -D
	std::string work_dir;	       // -W (defaults to -D)
	std::string log_file;	       // -o, relative to the work dir
	int verbosity = 2;	       // -v
	bool log_pid = false;
	bool shell_job = false;		// -j
	bool leave_running = false;	// -R
	bool restore_detached = false;	// -d
	std::string pidfile;
};

// Parses argv into o. Returns false (after printing one line) on bad input.
// Exits 0 itself for --help and --version.
bool parse_options(int argc, char **argv, Options &o);

int cmd_dump(const Options &o);
int cmd_restore(const Options &o);
int cmd_check(const Options &o);

}  // namespace criu
