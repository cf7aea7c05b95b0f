#include "sandbox.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "log.h"

namespace criu
{

namespace
{

const char *sandbox_dir()
{
	const char *d = getenv("CRIU_SANDBOX_DIR");
	return d && *d ? d : "/run/criu-sandbox";
}

// scripts/criu-sandbox's sandbox.conf: key=value lines.
Result<std::map<std::string, std::string>> sandbox_conf(const std::string &name)
{
	if (name.empty() || name.find('/') != std::string::npos || name[0] == '.')
		return Error{strfmt("bad sandbox name '%s'", name.c_str())};
	auto path = strfmt("%s/%s/sandbox.conf", sandbox_dir(), name.c_str());
	auto text = read_file(path);
	if (!text)
		return Error{strfmt("no sandbox %s (%s)", name.c_str(), path.c_str())};
	std::map<std::string, std::string> conf;
	for (auto line : split(*text, '\n'))
		if (auto eq = line.find('='); eq != std::string_view::npos)
			conf[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
	for (const char *k : {"netns", "mntns", "utsns", "ipcns", "cgroups"})
		if (conf[k].empty())
			return Error{strfmt("sandbox %s: %s has no %s", name.c_str(), path.c_str(), k)};
	return conf;
}

}  // namespace

Result<ExternalSpec> parse_external(const std::string &s)
{
	auto lb = s.find('['), rb = s.find("]:");
	if (lb == std::string::npos || rb == std::string::npos || rb <= lb + 1 || rb + 2 >= s.size())
		return Error{strfmt("--external %s: expected KIND[INODE]:KEY or mnt[MOUNTPOINT]:KEY", s.c_str())};
	ExternalSpec e;
	e.kind = s.substr(0, lb);
	e.inside = s.substr(lb + 1, rb - lb - 1);
	e.key = s.substr(rb + 2);
	e.inode = parse_u64(e.inside).value_or(0);
	if (e.kind != "net" && e.kind != "mnt")
		return Error{strfmt("--external %s: only net[...] and mnt[...] are supported", s.c_str())};
	if (e.kind == "net" && !e.inode)
		return Error{strfmt("--external %s: bad inode", s.c_str())};
	if (e.key.find_first_of(" \n") != std::string::npos)
		return Error{strfmt("--external %s: the key has blanks", s.c_str())};
	return e;
}

Status write_external_ns(const ImageDir &dir, const ExternalNs &e)
{
	if (!e.any())
		return {};
	std::string text;
	if (!e.net.empty())
		text += "net " + e.net + "\n";
	if (!e.mnt.empty())
		text += "mnt " + e.mnt + "\n";
	auto w = ImageWriter::create_raw(dir, "external-ns");
	if (!w)
		return w.error();
	TRY(w->write_raw(text.data(), text.size()));
	return w->close();
}

Result<ExternalNs> read_external_ns(const ImageDir &dir)
{
	ExternalNs e;
	auto text = read_file_at(dir.fd(), "external-ns");
	if (!text)
		return e;
	for (auto line : split(*text, '\n')) {
		auto sp = line.find(' ');
		if (sp == std::string_view::npos)
			continue;
		auto kind = line.substr(0, sp);
		std::string key(line.substr(sp + 1));
		if (kind == "net")
			e.net = key;
		else if (kind == "mnt")
			e.mnt = key;
		else
			return Error{"external-ns: unknown kind " + std::string(kind)};
	}
	return e;
}

Result<std::vector<std::pair<Fd, int>>> sandbox_namespaces(const std::string &name)
{
	auto conf = sandbox_conf(name);
	if (!conf)
		return conf.error();
	// mnt last: the paths are the caller's until then
	std::vector<std::pair<Fd, int>> ns;
	for (auto [key, kind] : {std::pair{"netns", CLONE_NEWNET}, std::pair{"utsns", CLONE_NEWUTS},
				 std::pair{"ipcns", CLONE_NEWIPC}, std::pair{"mntns", CLONE_NEWNS}}) {
		Fd fd(::open((*conf)[key].c_str(), O_RDONLY | O_CLOEXEC));
		if (!fd.valid())
			return sys_error("sandbox %s: can't open %s", name.c_str(), (*conf)[key].c_str());
		ns.emplace_back(std::move(fd), kind);
	}
	return ns;
}

Result<CgroupTarget> sandbox_cgroups(const std::string &name, bool must_be_clean)
{
	auto conf = sandbox_conf(name);
	if (!conf)
		return conf.error();
	std::vector<std::string> dirs;
	for (auto c : split((*conf)["cgroups"], ','))
		dirs.emplace_back(c);
	auto cg = CgroupTarget::open(dirs);
	if (!cg)
		return cg.error();
	auto busy = cg->tasks();
	if (!busy)
		return busy.error();
	if (*busy)
		return Error{strfmt("sandbox %s is busy (%zu processes in its cgroups): repurpose it first",
				    name.c_str(), *busy)};
	// A released sandbox is clean until something starts in it; the next
	// repurpose must then purge it again (criu-sandbox(8)).
	auto mark = strfmt("%s/%s/clean", sandbox_dir(), name.c_str());
	if (unlink(mark.c_str()) == 0)
		return cg;
	if (errno != ENOENT)
		return sys_error("can't take the clean mark %s of sandbox %s", mark.c_str(), name.c_str());
	if (must_be_clean)
		return Error{strfmt("sandbox %s was not released since its last use: --switch-deps repurposes a "
				    "released sandbox only (criu-sandbox repurpose %s --deps DIR purges it)",
				    name.c_str(), name.c_str())};
	return cg;
}

Result<SandboxDeps> SandboxDeps::clone(const Options &o)
{
	SandboxDeps d;
	if (o.switch_deps.empty())
		return d;
	auto conf = sandbox_conf(o.switch_to);
	if (!conf)
		return conf.error();
	d.at_ = (*conf)["deps"];
	d.sandbox_ = o.switch_to;
	if (d.at_.empty() || d.at_[0] != '/')
		return Error{strfmt("sandbox %s: its sandbox.conf says nowhere (deps=) to bind --switch-deps",
				    o.switch_to.c_str())};
	d.tree_.reset(open_tree(AT_FDCWD, o.switch_deps.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
	if (!d.tree_.valid())
		return sys_error("--switch-deps: can't take a copy of %s", o.switch_deps.c_str());
	mount_attr ro{};
	ro.attr_set = MOUNT_ATTR_RDONLY;
	if (mount_setattr(d.tree_.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof(ro)) < 0)
		return sys_error("--switch-deps: can't make the copy of %s read-only", o.switch_deps.c_str());
	return d;
}

Status SandboxDeps::attach()
{
	if (!tree_.valid())
		return {};
	// The mount point is made only if missing: a mkdir() of an existing
	// directory of an overlay costs 20 us.
	auto attach = [this] { return move_mount(tree_.get(), "", AT_FDCWD, at_.c_str(), MOVE_MOUNT_F_EMPTY_PATH); };
	int r = attach();
	if (r < 0 && errno == ENOENT) {
		if (mkdir(at_.c_str(), 0755) < 0 && errno != EEXIST)
			return sys_error("sandbox %s: can't make %s for --switch-deps", sandbox_.c_str(), at_.c_str());
		r = attach();
	}
	if (r < 0)
		return sys_error("sandbox %s: can't bind --switch-deps at %s", sandbox_.c_str(), at_.c_str());
	tree_.reset();
	pr_info("Bound the dependencies at %s of sandbox %s\n", at_.c_str(), sandbox_.c_str());
	return {};
}

Result<std::optional<CgroupTarget>> restore_cgroups(const Options &o)
{
	if (!o.switch_to.empty() && !o.cgroup_roots.empty())
		return Error{"--switch and --cgroup-root both say which cgroups the tree goes into: give one"};
	if (o.switch_to.empty() && !o.switch_deps.empty())
		return Error{"--switch-deps repurposes the sandbox of --switch: give --switch SANDBOX"};
	std::optional<CgroupTarget> cg;
	if (!o.switch_to.empty() || !o.cgroup_roots.empty()) {
		auto t = o.switch_to.empty() ? CgroupTarget::open(cgroup_root_dirs(o.cgroup_roots))
					     : sandbox_cgroups(o.switch_to, !o.switch_deps.empty());
		if (!t)
			return t.error();
		cg.emplace(std::move(*t));
	}
	return cg;
}

static const char *ns_name(int kind)
{
	return kind == CLONE_NEWNET ? "net" : kind == CLONE_NEWUTS ? "uts" : kind == CLONE_NEWIPC ? "ipc" : "mnt";
}

Result<JoinedNs> JoinedNs::enter(const Options &o, const ExternalNs &ext)
{
	// (namespace file or fd, kind); mnt last: the paths are criu's until then
	std::vector<std::pair<Fd, int>> targets;
	JoinedNs j;
	auto cg = restore_cgroups(o);
	if (!cg)
		return cg.error();
	j.cgroups_ = std::move(*cg);
	if (!o.switch_to.empty()) {
		auto ns = sandbox_namespaces(o.switch_to);
		if (!ns)
			return ns.error();
		targets = std::move(*ns);
	} else if (ext.any()) {
		for (auto &[k, kind] : {std::pair{ext.net, CLONE_NEWNET}, std::pair{ext.mnt, CLONE_NEWNS}}) {
			const std::string &key = k;
			if (key.empty())
				continue;
			auto it = std::find_if(o.inherit_fds.begin(), o.inherit_fds.end(),
					       [&key](auto &p) { return p.first == key; });
			if (it == o.inherit_fds.end())
				return Error{strfmt("the images' %s namespace is external (%s): restore with --switch "
						    "SANDBOX or --inherit-fd fd[N]:%s",
						    kind == CLONE_NEWNET ? "net" : "mnt", key.c_str(), key.c_str())};
			Fd fd(fcntl(it->second, F_DUPFD_CLOEXEC, 0));
			if (!fd.valid())
				return sys_error("--inherit-fd %s: fd %d is not open", key.c_str(), it->second);
			targets.emplace_back(std::move(fd), kind);
		}
	}
	if (targets.empty())
		return j;
	auto deps = SandboxDeps::clone(o);
	if (!deps)
		return deps.error();
	TRY(j.join(std::move(targets), o.switch_to.empty() ? "--inherit-fd" : o.switch_to));
	TRY(deps->attach());
	pr_info("Entered the namespaces of %s\n", o.switch_to.empty() ? "--inherit-fd" : o.switch_to.c_str());
	return j;
}

Status JoinedNs::join(std::vector<std::pair<Fd, int>> targets, const std::string &whose)
{
	if (!cwd_.valid())
		cwd_.reset(::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	for (auto &[fd, kind] : targets) {
		const char *name = ns_name(kind);
		Fd mine(::open(strfmt("/proc/self/ns/%s", name).c_str(), O_RDONLY | O_CLOEXEC));
		if (!mine.valid())
			return sys_error("can't open criu's own %s namespace", name);
		if (setns(fd.get(), kind) < 0)
			return sys_error("can't enter the %s namespace of %s", name, whose.c_str());
		back_.emplace_back(std::move(mine), kind);
		if (kind == CLONE_NEWNS && chdir("/") < 0)
			return sys_error("can't chdir to the root of %s", whose.c_str());
		entered_.emplace_back(std::move(fd), kind);
	}
	return {};
}

Status JoinedNs::join_task(pid_t pid, unsigned long kinds)
{
	std::vector<std::pair<Fd, int>> targets;
	for (int kind : {CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS}) {
		if (!(kinds & kind))
			continue;
		const char *name = ns_name(kind);
		Fd fd(::open(strfmt("/proc/%d/ns/%s", pid, name).c_str(), O_RDONLY | O_CLOEXEC));
		if (!fd.valid())
			return sys_error("can't open the %s namespace of PID %d", name, pid);
		targets.emplace_back(std::move(fd), kind);
	}
	return join(std::move(targets), strfmt("PID %d", pid));
}

JoinedNs::~JoinedNs()
{
	// back in reverse: our mnt namespace first, while our /proc is reachable
	for (auto it = back_.rbegin(); it != back_.rend(); ++it)
		if (setns(it->first.get(), it->second) < 0)
			pr_err("can't return to criu's own namespace (kind %#x): %s\n", it->second, strerror(errno));
	if (cwd_.valid() && fchdir(cwd_.get()) < 0)
		pr_err("can't return to criu's directory: %s\n", strerror(errno));
}

}  // namespace criu
