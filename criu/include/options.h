// Command line options, named and meaning as in criu(8).
#pragma once

#include <stdio.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "util.h"

namespace criu
{

// A range of memory a template holder already has in place (mm-templates).
// dev and ino name the file it maps, when it maps one by path: the restored
// tree may see another file at that path (a sandbox with a /usr of its
// own), and then maps that one. 0 and 0 for anonymous memory and for the
// holder's copy of a deleted file (its content is the images').
struct HeldRange {
	uint64_t start, end;
	uint64_t dev = 0, ino = 0;
	bool operator==(const HeldRange &) const = default;
};

// --veth-pair IN=OUT[@BRIDGE]: the restored veth IN has its peer OUT in
// criu's net namespace, put into BRIDGE if given.
struct VethPair {
	std::string in, out, bridge;
};

// --cgroup-root [CONTROLLER:]/PATH, RPC cg_root.
struct CgroupRoot {
	std::string ctrl;  // "" for the default
	std::string path;
};

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
	bool restore_sibling = false;			       // RPC rst_sibling
	std::vector<std::pair<std::string, int>> inherit_fds;  // resource -> fd
	std::string address;				       // service --address
	bool daemon = false;				       // service --daemon
	size_t prepare = 0;				       // service --prepare N
	int swrk_fd = -1;				       // swrk FD
	std::string libdir;				       // -L: plugin directory
	std::vector<std::string> args;			       // the command and its arguments
	std::vector<std::string> argv;			       // the whole command line
	std::string mm_template;			       // --mm-template NAME
	std::string mem_pool;				       // --mem-pool dram|dax
	std::string dax_device;				       // --dax-device PATH
	std::vector<std::string> externals;		       // --external KIND[INODE]:KEY
	std::string switch_to;				       // --switch SANDBOX
	std::string switch_deps;			       // --switch-deps DIR
	std::string root;				       // --root DIR
	std::vector<VethPair> veths;			       // --veth-pair, --external veth[...]
	std::vector<CgroupRoot> cgroup_roots;		       // restore: --cgroup-root
	unsigned timeout = 10;				       // dump: --timeout, s to stop the tree
	// Set by a template holder for the restore it runs (see template.cpp).
	std::vector<HeldRange> held;
	int pages_dir_fd = -1;
	// RPC clients get pre-/post- notifications; an error aborts the step.
	std::function<Status(const std::string &script, pid_t pid)> notify_cb;
};

inline Status notify(const Options &o, const std::string &script, pid_t pid)
{
	return o.notify_cb ? o.notify_cb(script, pid) : Status();
}

// Where -o/-W put the log ("" for stderr).
std::string log_path(const Options &o);

// --external SPEC (also over RPC): a namespace or a veth pair.
Status add_external(Options &o, const std::string &spec);

// Parses argv into o. Returns false (after printing one line) on bad input.
// Exits 0 itself for --help and --version.
bool parse_options(int argc, char **argv, Options &o);

int cmd_dump(const Options &o);
int cmd_restore(const Options &o);
int cmd_check(const Options &o);
int cmd_service(const Options &o);
int cmd_swrk(const Options &o);

// The commands' work, for the CLI and the RPC service alike.
Status dump_task(const Options &o);
Result<pid_t> restore_task(const Options &o);
// restore_task() and --pidfile.
Result<pid_t> restore_and_record(const Options &o);
// In a spare of the service (spare.h): the images of the next restore, read
// now; a restore of that directory with that memory held takes them.
Status read_images_ahead(int images_dir_fd, const std::vector<HeldRange> &held);
// In a template's spare worker (see template.h) or a spare of the service
// (spare.h): the root task of the next restore, made before the request
// comes.
// false: this tree is restored the ordinary way (it has no pid namespace
// of its own, or needs criu in its net or mount namespace first).
Result<bool> prepare_root(const std::vector<HeldRange> &held, int images_dir_fd);
// --mm-template: the restore runs in the template's holder (a plugin's);
// o.argv is the command line the holder's worker runs.
Result<pid_t> restore_from_template(const Options &o);
// Prints each kernel feature's state; false if one is missing.
bool check_kernel(FILE *out);

}  // namespace criu
