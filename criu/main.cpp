// The criu command line: commands and options as criu(8) defines them.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstring>
#include <vector>

#include "cgroup.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "plugin.h"
#include "sandbox.h"

#ifndef CRIU_VERSION
#define CRIU_VERSION "0.1"
#endif

namespace criu
{

namespace
{

// CRIU options this implementation knows of but does not implement yet:
// refused with a clear message rather than silently ignored.
const char *const kUnsupported[] = {
    "action-script",
    "auto-dedup",
    "cgroup-dump-controller",
    "cgroup-props",
    "cgroup-props-file",
    "cgroup-yard",
    "config",
    "cpu-cap",
    "display-stats",
    "empty-ns",
    "enable-fs",
    "evasive-devices",
    "exec-cmd",
    "extra",
    "file-locks",
    "file-validation",
    "force-irmap",
    "freeze-cgroup",
    "ghost-limit",
    "irmap-scan-path",
    "join-ns",
    "lazy-pages",
    "leave-stopped",
    "link-remap",
    "lsm-mount-context",
    "lsm-profile",
    "manage-cgroups",
    "mntns-compat-mode",
    "network-lock",
    "page-server",
    "port",
    "pre-dump-mode",
    "prev-images-dir",
    "ps-socket",
    "restore-sibling",
    "skip-in-flight",
    "skip-mnt",
    "status-fd",
    "stream",
    "tcp-close",
    "tcp-established",
    "tls",
    "tls-cacert",
    "tls-cacrl",
    "tls-cert",
    "tls-key",
    "tls-no-cn-verify",
    "track-mem",
    "weak-sysctls",
    "feature",
    "all",
};

void usage()
{
	printf("Usage:\n"
	       "  criu dump -t PID -D DIR [<options>]\n"
	       "  criu restore -D DIR [<options>]\n"
	       "  criu check\n"
	       "  criu service [--address PATH] [--daemon] [--pidfile FILE] [--prepare N]\n"
	       "  criu swrk FD\n"
	       "  criu convert -D DIR --mm-template NAME [--mem-pool dram|dax] [--dax-device PATH]\n"
	       "  criu mm-template list|delete NAME|hold NAME\n"
	       "\n"
	       "Options:\n"
	       "  -t|--tree PID            checkpoint the process PID (with all its threads)\n"
	       "  -D|--images-dir DIR      directory of the image files\n"
	       "  -W|--work-dir DIR        directory for logs (default: the images directory)\n"
	       "  -o|--log-file FILE       log file, relative to the work directory\n"
	       "  -v[NUM]|--verbosity      0: silent, 1: errors, 2: +warnings (default), 3: +info, 4: +debug\n"
	       "  --log-pid                prefix log lines with the PID\n"
	       "  -j|--shell-job           the task uses the terminal of the shell it runs in\n"
	       "  -R|--leave-running       leave the task running after dump\n"
	       "  -d|--restore-detached    do not wait for the restored task\n"
	       "  --timeout N              dump: give up if the tree is not stopped within N s (10)\n"
	       "  --pidfile FILE           write the restored task's PID (service: its own PID) to FILE\n"
	       "  --inherit-fd fd[N]:RES   restore the file RES (pipe[INODE] or a path) as criu's fd N\n"
	       "  --address PATH           service socket (default criu_service.socket)\n"
	       "  --daemon                 service: detach into the background\n"
	       "  --prepare N              service: after a restore, prepare the next one of the same\n"
	       "                           images (their memory read ahead), for N directories at most\n"
	       "  -L|--libdir DIR          plugin directory (default " PLUGIN_DIR ")\n"
	       "  --external net[INODE]:KEY|mnt[INODE]:KEY\n"
	       "                           dump: that namespace of the tree is not saved (external)\n"
	       "  --external mnt[MOUNTPOINT]:KEY\n"
	       "                           dump: the mount at MOUNTPOINT is external (not saved)\n"
	       "  --external mnt[KEY]:PATH restore: bind PATH where the external mount KEY was\n"
	       "  --root DIR               restore: the root filesystem of a tree with its own mount\n"
	       "                           namespace\n"
	       "  --veth-pair IN=OUT[@BRIDGE], --external veth[IN]:OUT[@BRIDGE]\n"
	       "                           restore: the peer of veth IN is OUT in criu's net namespace\n"
	       "                           (put into BRIDGE, up)\n"
	       "  --switch SANDBOX         restore into an existing sandbox (scripts/criu-sandbox)\n"
	       "  --switch-deps DIR        with --switch: repurpose the released SANDBOX for this\n"
	       "                           function: bind DIR read-only where its dependencies go\n"
	       "  --cgroup-root [CTRL:]/PATH\n"
	       "                           restore: put the tree into the cgroup PATH (of the memory and\n"
	       "                           cpu hierarchies, or of CTRL's), with the dump's limits\n"
	       "  --mm-template NAME       convert: make the template NAME of a dump; restore: attach\n"
	       "                           its memory copy-on-write (mmtemplate plugin)\n"
	       "  --mem-pool dram|dax      convert: the memory pool of the template (default dram)\n"
	       "  --dax-device PATH        the dax pool: a directory on a file system mounted -o dax\n"
	       "  -V|--version             print the version\n"
	       "  -h|--help                this text\n");
}

// Appends what a parser made of an option's value to to; false, with the
// error on stderr, if it could not.
template <class T> bool append(Result<T> r, std::vector<T> &to)
{
	if (!r) {
		fprintf(stderr, "Error: %s\n", r.error().msg.c_str());
		return false;
	}
	to.push_back(std::move(*r));
	return true;
}

}  // namespace

int run(const Options &o);

std::string log_path(const Options &o)
{
	if (o.log_file.empty())
		return "";
	std::string wd = o.work_dir.empty() ? o.images_dir : o.work_dir;
	return o.log_file[0] == '/' || o.log_file == "-" ? o.log_file : wd + "/" + o.log_file;
}

Status add_external(Options &o, const std::string &spec)
{
	auto veth = parse_veth_external(spec);
	if (!veth)
		return veth.error();
	if (*veth) {
		o.veths.push_back(**veth);
		return {};
	}
	if (auto e = parse_external(spec); !e)
		return e.error();
	o.externals.push_back(spec);
	return {};
}

bool parse_options(int argc, char **argv, Options &o)
{
	enum {
		kLogPid = 1000,
		kPidfile,
		kAddress,
		kDaemon,
		kInheritFd,
		kMmTemplate,
		kMemPool,
		kDaxDevice,
		kExternal,
		kSwitch,
		kSwitchDeps,
		kCgroupRoot,
		kTimeout,
		kRoot,
		kVethPair,
		kPrepare,
		kUnsup
	};
	// clang-format off
	std::vector<option> longopts = {
		{"tree", required_argument, nullptr, 't'},
		{"images-dir", required_argument, nullptr, 'D'},
		{"work-dir", required_argument, nullptr, 'W'},
		{"log-file", required_argument, nullptr, 'o'},
		{"verbosity", optional_argument, nullptr, 'v'},
		{"log-pid", no_argument, nullptr, kLogPid},
		{"shell-job", no_argument, nullptr, 'j'},
		{"leave-running", no_argument, nullptr, 'R'},
		{"restore-detached", no_argument, nullptr, 'd'},
		{"pidfile", required_argument, nullptr, kPidfile},
		{"address", required_argument, nullptr, kAddress},
		{"daemon", no_argument, nullptr, kDaemon},
		{"prepare", required_argument, nullptr, kPrepare},
		{"inherit-fd", required_argument, nullptr, kInheritFd},
		{"mm-template", required_argument, nullptr, kMmTemplate},
		{"mem-pool", required_argument, nullptr, kMemPool},
		{"dax-device", required_argument, nullptr, kDaxDevice},
		{"external", required_argument, nullptr, kExternal},
		{"switch", required_argument, nullptr, kSwitch},
		{"switch-deps", required_argument, nullptr, kSwitchDeps},
		{"cgroup-root", required_argument, nullptr, kCgroupRoot},
		{"timeout", required_argument, nullptr, kTimeout},
		{"root", required_argument, nullptr, kRoot},
		{"veth-pair", required_argument, nullptr, kVethPair},
		{"libdir", required_argument, nullptr, 'L'},
		{"version", no_argument, nullptr, 'V'},
		{"help", no_argument, nullptr, 'h'},
	};
	// clang-format on
	for (const char *name : kUnsupported)
		longopts.push_back({name, optional_argument, nullptr, kUnsup});
	longopts.push_back({nullptr, 0, nullptr, 0});

	opterr = 0;
	optind = 0;  // a template holder parses several command lines
	int idx = 0;
	o.argv.assign(argv, argv + argc);
	for (;;) {
		int c = getopt_long(argc, argv, ":t:D:W:o:v::jRdVhL:", longopts.data(), &idx);
		if (c == -1)
			break;
		switch (c) {
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > (1 << 22)) {
				fprintf(stderr, "Error: invalid PID '%s'\n", optarg);
				return false;
			}
			o.pid = v;
			break;
		}
		case 'D':
			o.images_dir = optarg;
			break;
		case 'L':
			o.libdir = optarg;
			break;
		case 'W':
			o.work_dir = optarg;
			break;
		case 'o':
			o.log_file = optarg;
			break;
		case 'v':
			if (optarg) {
				char *end;
				long v = strtol(optarg, &end, 10);
				if (*end || v < 0 || v > 4) {
					fprintf(stderr, "Error: invalid verbosity '%s' (0..4)\n", optarg);
					return false;
				}
				o.verbosity = v;
			} else {
				o.verbosity++;
			}
			break;
		case kLogPid:
			o.log_pid = true;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'R':
			o.leave_running = true;
			break;
		case 'd':
			o.restore_detached = true;
			break;
		case kPidfile:
			o.pidfile = optarg;
			break;
		case kAddress:
			o.address = optarg;
			break;
		case kDaemon:
			o.daemon = true;
			break;
		case kPrepare: {
			auto n = parse_u64(optarg);
			if (!n || *n > 64) {
				fprintf(stderr,
					"Error: --prepare wants a number of image directories (0..64), not '%s'\n",
					optarg);
				return false;
			}
			o.prepare = *n;
			break;
		}
		case kInheritFd: {
			// fd[N]:resource
			int fd, n = 0;
			if (sscanf(optarg, "fd[%d]:%n", &fd, &n) != 1 || n == 0 || !optarg[n] || fd < 0) {
				fprintf(stderr, "Error: --inherit-fd wants fd[N]:resource, not '%s'\n", optarg);
				return false;
			}
			o.inherit_fds.emplace_back(optarg + n, fd);
			break;
		}
		case kMmTemplate:
			o.mm_template = optarg;
			break;
		case kMemPool:
			o.mem_pool = optarg;
			break;
		case kDaxDevice:
			o.dax_device = optarg;
			break;
		case kExternal:
			if (auto st = add_external(o, optarg); !st) {
				fprintf(stderr, "Error: %s\n", st.error().msg.c_str());
				return false;
			}
			break;
		case kVethPair:
			if (!append(parse_veth_pair(optarg), o.veths))
				return false;
			break;
		case kSwitch:
			o.switch_to = optarg;
			break;
		case kSwitchDeps:
			if (optarg[0] != '/') {
				fprintf(stderr, "Error: --switch-deps wants an absolute path, not '%s'\n", optarg);
				return false;
			}
			o.switch_deps = optarg;
			break;
		case kTimeout: {
			auto n = parse_u64(optarg);
			if (!n || *n == 0 || *n > 86400) {
				fprintf(stderr, "Error: --timeout wants seconds (1..86400), not '%s'\n", optarg);
				return false;
			}
			o.timeout = *n;
			break;
		}
		case kCgroupRoot:
			if (!append(parse_cgroup_root(optarg), o.cgroup_roots))
				return false;
			break;
		case kRoot:
			o.root = optarg;
			break;
		case 'V':
			printf("Version: %s\n", CRIU_VERSION);
			exit(0);
		case 'h':
			usage();
			exit(0);
		case kUnsup:
			fprintf(stderr, "Error: option --%s is not supported by this criu yet\n", longopts[idx].name);
			return false;
		case ':':
			fprintf(stderr, "Error: option %s needs an argument\n", argv[optind - 1]);
			return false;
		default:
			fprintf(stderr, "Error: unknown option %s (see criu --help)\n", argv[optind - 1]);
			return false;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "Error: no command given (see criu --help)\n");
		return false;
	}
	o.command = argv[optind];
	for (int i = optind; i < argc; i++)
		o.args.emplace_back(argv[i]);
	if (o.command == "swrk" && o.args.size() == 2) {
		char *end;
		long fd = strtol(o.args[1].c_str(), &end, 10);
		if (*end || fd < 0) {
			fprintf(stderr, "Error: swrk wants a socket fd, not '%s'\n", o.args[1].c_str());
			return false;
		}
		o.swrk_fd = fd;
	} else if (!o.cgroup_roots.empty() && o.command != "restore") {
		fprintf(stderr, "Error: --cgroup-root is a restore option here (criu dumps no cgroup tree)\n");
		return false;
	} else if (o.args.size() > 1 && (o.command == "dump" || o.command == "restore" || o.command == "check" ||
					 o.command == "service" || o.command == "swrk")) {
		fprintf(stderr, "Error: unexpected argument '%s'\n", o.args[1].c_str());
		return false;
	}
	return true;
}

}  // namespace criu

int main(int argc, char **argv)
{
	using namespace criu;
	Options o;
	if (!parse_options(argc, argv, o))
		return 1;
	// dump creates its images directory; the log may live in it
	if (o.command == "dump" && !log_path(o).empty())
		mkdir(o.images_dir.c_str(), 0700);
	log::init(o.verbosity, log_path(o), o.log_pid);
	plugins::set_options(&o);
	int stage = o.command == "dump"	     ? CR_PLUGIN_STAGE__DUMP
		    : o.command == "restore" ? CR_PLUGIN_STAGE__RESTORE
					     : CR_PLUGIN_STAGE__COMMAND;
	if (auto st = plugins::load(o.libdir.empty() ? PLUGIN_DIR : o.libdir, !o.libdir.empty(), stage); !st) {
		pr_err("%s\n", st.error().msg.c_str());
		return 1;
	}
	int ret = run(o);
	plugins::unload(ret);
	return ret;
}

namespace criu
{

int run(const Options &o)
{
	if (o.command == "dump")
		return cmd_dump(o);
	if (o.command == "restore")
		return cmd_restore(o);
	if (o.command == "check")
		return cmd_check(o);
	if (o.command == "service")
		return cmd_service(o);
	if (o.command == "swrk")
		return cmd_swrk(o);
	const char *later[] = {"pre-dump", "page-server", "dedup", "lazy-pages", "cpuinfo"};
	for (const char *c : later)
		if (o.command == c) {
			fprintf(stderr, "Error: command '%s' is not supported by this criu yet\n", c);
			return 1;
		}
	std::vector<char *> argv;
	for (auto &a : o.args)
		argv.push_back(const_cast<char *>(a.c_str()));
	argv.push_back(nullptr);
	int r = plugins::run_command(o.command.c_str(), (int)o.args.size(), argv.data());
	if (r >= 0)
		return r;
	fprintf(stderr, "Error: unknown command '%s' (see criu --help)\n", o.command.c_str());
	return 1;
}

}  // namespace criu
