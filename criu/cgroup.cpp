#include "cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "log.h"

namespace criu
{

namespace
{

const char *const kLimits[] = {"memory.limit_in_bytes",
			       "cpu.cfs_quota_us",
			       "cpu.cfs_period_us",
			       "cpu.shares",
			       "memory.max",
			       "cpu.max",
			       "cpu.weight"};

// controller -> path of pid's cgroup, from /proc/PID/cgroup ("" for v2).
Result<std::map<std::string, std::string>> cgroups_of(pid_t pid)
{
	auto text = read_file(strfmt("/proc/%d/cgroup", pid));
	if (!text)
		return text.error();
	std::map<std::string, std::string> out;
	for (auto line : split(*text, '\n')) {
		auto f = split(line, ':');
		if (f.size() < 3)
			continue;
		std::string path(f[2]);
		for (auto c : split(f[1], ','))
			out[std::string(c)] = path;
	}
	return out;
}

std::string trim(std::string s)
{
	while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
		s.pop_back();
	return s;
}

}  // namespace

Status dump_cgroup_limits(const ImageDir &dir, pid_t pid)
{
	auto cg = cgroups_of(pid);
	if (!cg)
		return cg.error();
	std::string out;
	for (const char *file : kLimits) {
		std::string ctl = std::string(file).substr(0, std::string(file).find('.'));
		std::string path;
		if (cg->count(ctl))
			path = strfmt("/sys/fs/cgroup/%s%s/%s", ctl.c_str(), (*cg)[ctl].c_str(), file);
		else if (cg->count(""))
			path = strfmt("/sys/fs/cgroup%s/%s", (*cg)[""].c_str(), file);
		if (auto v = read_file(path))
			out += strfmt("%s=%s\n", file, trim(*v).c_str());
	}
	auto w = ImageWriter::create_raw(dir, "cgroup-limits");
	if (!w)
		return w.error();
	TRY(w->write_raw(out.data(), out.size()));
	return w->close();
}

Result<CgroupRoot> parse_cgroup_root(const std::string &s)
{
	auto colon = s.find(':');
	bool named = colon != std::string::npos && colon < s.find('/');
	CgroupRoot r{named ? s.substr(0, colon) : "", named ? s.substr(colon + 1) : s};
	bool ctrl_ok =
	    !named ||
	    (!r.ctrl.empty() && r.ctrl.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos);
	if (!ctrl_ok || r.path.empty() || r.path[0] != '/' || (r.path + "/").find("/../") != std::string::npos)
		return Error{strfmt("--cgroup-root wants [CONTROLLER:]/PATH, not '%s'", s.c_str())};
	return r;
}

std::vector<std::string> cgroup_root_dirs(const std::vector<CgroupRoot> &roots)
{
	std::map<std::string, std::string> at;	// controller -> path
	for (auto &r : roots)
		if (r.ctrl.empty())
			at["memory"] = at["cpu"] = r.path;
	for (auto &r : roots)
		if (!r.ctrl.empty())
			at[r.ctrl] = r.path;
	auto v2 = read_file("/sys/fs/cgroup/cgroup.controllers");
	auto on_v2 = [&](const std::string &ctl) {
		if (!v2)
			return false;
		for (auto c : split(trim(*v2), ' '))
			if (c == ctl)
				return true;
		return false;
	};
	std::vector<std::string> dirs;
	for (auto &[ctl, path] : at) {
		auto d =
		    on_v2(ctl) ? "/sys/fs/cgroup" + path : strfmt("/sys/fs/cgroup/%s%s", ctl.c_str(), path.c_str());
		if (std::find(dirs.begin(), dirs.end(), d) == dirs.end())
			dirs.push_back(d);
	}
	return dirs;
}

Result<CgroupTarget> CgroupTarget::open(const std::vector<std::string> &dirs)
{
	CgroupTarget t;
	for (auto &d : dirs) {
		Fd fd(::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (!fd.valid())
			return sys_error("can't open the cgroup %s", d.c_str());
		t.dirs_.emplace_back(d, std::move(fd));
	}
	return t;
}

Status CgroupTarget::apply_limits(const ImageDir &images)
{
	auto text = read_file_at(images.fd(), "cgroup-limits");
	if (!text)
		return {};  // dumped without them
	for (auto line : split(*text, '\n')) {
		auto eq = line.find('=');
		if (eq == std::string_view::npos)
			continue;
		std::string key(line.substr(0, eq)), val(line.substr(eq + 1));
		if (key.find('/') != std::string::npos)
			return Error{"cgroup-limits: malformed key " + key};
		for (auto &[path, fd] : dirs_) {
			Fd f(openat(fd.get(), key.c_str(), O_RDWR | O_CLOEXEC));
			if (!f.valid() && errno == EACCES)
				f = Fd(openat(fd.get(), key.c_str(), O_WRONLY | O_CLOEXEC));
			if (!f.valid())
				continue;  // another controller's file
			// a value already there is not written again (a released
			// sandbox's are the defaults, as most dumps' are): a write of
			// a cgroup file costs 15-20 us, a read a third of it
			char cur[64];
			ssize_t n = pread(f.get(), cur, sizeof(cur), 0);
			if (n > 0 && std::string_view(cur, n - (cur[n - 1] == '\n')) == val) {
				pr_debug("cgroup %s: %s is %s already\n", path.c_str(), key.c_str(), val.c_str());
				continue;
			}
			if (write(f.get(), val.data(), val.size()) < 0)
				return sys_error("can't set %s/%s to %s", path.c_str(), key.c_str(), val.c_str());
			pr_info("cgroup %s: %s = %s\n", path.c_str(), key.c_str(), val.c_str());
		}
	}
	return {};
}

Result<size_t> CgroupTarget::tasks() const
{
	size_t n = 0;
	for (auto &[path, fd] : dirs_) {
		auto text = read_file_at(fd.get(), "cgroup.procs");
		if (!text)
			return Error{strfmt("cgroup %s: %s", path.c_str(), text.error().msg.c_str())};
		for (auto w : split(*text, '\n'))
			n += !w.empty();
	}
	return n;
}

Status CgroupTarget::join_self() const
{
	auto files = join_files();
	if (!files)
		return files.error();
	return join_through(*files);
}

Result<std::vector<Fd>> CgroupTarget::join_files() const
{
	std::vector<Fd> v;
	for (auto &[path, fd] : dirs_) {
		Fd f(openat(fd.get(), "tasks", O_WRONLY | O_CLOEXEC));
		if (!f.valid() && errno == ENOENT)
			f = Fd(openat(fd.get(), "cgroup.procs", O_WRONLY | O_CLOEXEC));
		if (!f.valid())
			return sys_error("can't open the tasks of cgroup %s", path.c_str());
		v.push_back(std::move(f));
	}
	return v;
}

Status CgroupTarget::join_through(const std::vector<Fd> &files)
{
	for (auto &f : files)
		if (write(f.get(), "0", 1) != 1) {
			int err = errno;
			auto name = read_link(strfmt("/proc/self/fd/%d", f.get()));
			errno = err;
			return sys_error("the restored root can't join the cgroup of %s",
					 name ? name->c_str() : "a file criu opened");
		}
	return {};
}

}  // namespace criu
