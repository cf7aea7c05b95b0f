#include "proc.h"

#include <dirent.h>
#include <sys/mman.h>

#include <algorithm>

namespace criu
{

bool ProcVma::has_flag(const char *f) const
{
	return std::find(vmflags.begin(), vmflags.end(), f) != vmflags.end();
}

static bool parse_maps_line(std::string_view l, ProcVma &v)
{
	// start-end perms offset major:minor inode [path]
	auto sp = [&](std::string_view &s) {
		size_t e = s.find(' ');
		std::string_view tok = s.substr(0, e);
		s = e == std::string_view::npos ? std::string_view() : s.substr(e + 1);
		return tok;
	};
	std::string_view s = l;
	auto range = sp(s), perms = sp(s), off = sp(s), dev = sp(s), ino = sp(s);
	size_t dash = range.find('-'), colon = dev.find(':');
	if (dash == std::string_view::npos || colon == std::string_view::npos || perms.size() != 4)
		return false;
	auto a = parse_u64(range.substr(0, dash), 16), b = parse_u64(range.substr(dash + 1), 16);
	auto o = parse_u64(off, 16), ma = parse_u64(dev.substr(0, colon), 16),
	     mi = parse_u64(dev.substr(colon + 1), 16);
	auto in = parse_u64(ino);
	if (!a || !b || !o || !ma || !mi || !in)
		return false;
	v.start = *a;
	v.end = *b;
	v.pgoff = *o / kPageSize;
	v.dev_major = *ma;
	v.dev_minor = *mi;
	v.inode = *in;
	v.prot =
	    (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
	v.shared = perms[3] == 's';
	size_t p = s.find_first_not_of(' ');
	v.path = p == std::string_view::npos ? "" : std::string(s.substr(p));
	return true;
}

static Result<std::vector<ProcVma>> parse_maps_text(const std::string &path, bool smaps)
{
	auto text = read_file(path, 256u << 20);
	if (!text)
		return text.error();
	std::vector<ProcVma> out;
	for (auto line : split(*text, '\n')) {
		if (line.empty())
			continue;
		auto first = line.substr(0, line.find(' '));
		bool header = first.find('-') != std::string_view::npos && !first.ends_with(":");
		if (smaps && !header) {
			if (line.starts_with("VmFlags:") && !out.empty())
				for (auto f : split(line.substr(8), ' '))
					if (!f.empty())
						out.back().vmflags.emplace_back(f);
			continue;
		}
		ProcVma v;
		if (!parse_maps_line(line, v))
			return Error{
			    strfmt("%s: can't parse line \"%.*s\"", path.c_str(), (int)line.size(), line.data())};
		out.push_back(std::move(v));
	}
	return out;
}

Result<std::vector<ProcVma>> parse_smaps(pid_t pid)
{
	return parse_maps_text(strfmt("/proc/%d/smaps", pid), true);
}

Result<std::vector<ProcVma>> parse_maps(const std::string &path)
{
	return parse_maps_text(path, false);
}

void own_pages_ahead(const std::vector<std::pair<uint64_t, uint64_t>> &skip)
{
	// beyond this a mapping is a buffer, mostly untouched: populating it
	// would cost more memory than the faults it saves
	constexpr uint64_t kMaxLen = 8 << 20;
	auto maps = parse_maps("/proc/self/maps");
	if (!maps)
		return;
	for (auto &v : *maps) {
		bool special = v.path.starts_with("[") && v.path != "[heap]" && v.path != "[stack]";
		bool held = std::any_of(skip.begin(), skip.end(),
					[&v](auto &r) { return v.start < r.second && r.first < v.end; });
		if (v.shared || special || held || !(v.prot & PROT_READ) || v.end - v.start > kMaxLen)
			continue;
		if (v.prot & PROT_WRITE)
			madvise((void *)v.start, v.end - v.start, MADV_POPULATE_WRITE);
		else if (v.path.starts_with("/"))
			madvise((void *)v.start, v.end - v.start, MADV_POPULATE_READ);
	}
}

Result<std::map<std::string, std::string>> parse_status(pid_t pid, pid_t tid)
{
	auto path = tid ? strfmt("/proc/%d/task/%d/status", pid, tid) : strfmt("/proc/%d/status", pid);
	auto text = read_file(path);
	if (!text)
		return text.error();
	std::map<std::string, std::string> m;
	for (auto line : split(*text, '\n')) {
		size_t c = line.find(':');
		if (c == std::string_view::npos)
			continue;
		auto v = line.substr(c + 1);
		size_t p = v.find_first_not_of(" \t");
		m[std::string(line.substr(0, c))] = p == std::string_view::npos ? "" : std::string(v.substr(p));
	}
	return m;
}

Result<std::vector<std::string>> parse_stat(pid_t pid)
{
	auto path = strfmt("/proc/%d/stat", pid);
	auto text = read_file(path);
	if (!text)
		return text.error();
	size_t lp = text->find('('), rp = text->rfind(')');
	if (lp == std::string::npos || rp == std::string::npos)
		return Error{"can't parse " + path};
	while (!text->empty() && text->back() == '\n')
		text->pop_back();
	std::vector<std::string> f = {"", std::to_string(pid), text->substr(lp + 1, rp - lp - 1)};
	for (auto t : split(std::string_view(*text).substr(rp + 2), ' '))
		if (!t.empty() && t != "\n")
			f.emplace_back(t);
	return f;
}

Result<FdInfo> parse_fdinfo(pid_t pid, int fd)
{
	auto path = strfmt("/proc/%d/fdinfo/%d", pid, fd);
	auto text = read_file(path);
	if (!text)
		return text.error();
	FdInfo fi;
	for (auto line : split(*text, '\n')) {
		size_t c = line.find(':');
		if (c == std::string_view::npos)
			continue;
		fi.lines.emplace_back(line);
		std::string key(line.substr(0, c));
		auto v = line.substr(c + 1);
		size_t p = v.find_first_not_of(" \t");
		std::string val = p == std::string_view::npos ? "" : std::string(v.substr(p));
		if (key == "pos")
			fi.pos = parse_u64(val).value_or(0);
		else if (key == "flags")
			fi.flags = parse_u64(val, 8).value_or(0);
		else if (key == "mnt_id")
			fi.mnt_id = parse_u64(val).value_or(0);
		else
			fi.extra[key] = val;
	}
	return fi;
}

Result<std::vector<Rlimit>> parse_limits(pid_t pid)
{
	// Reading /proc/PID/limits works where prlimit() on another uid does not.
	auto path = strfmt("/proc/%d/limits", pid);
	auto text = read_file(path);
	if (!text)
		return text.error();
	std::vector<Rlimit> out;
	auto lines = split(*text, '\n');
	for (size_t i = 1; i < lines.size(); i++) {
		auto l = lines[i];
		if (l.size() < 26)
			continue;
		// "Limit name" is 25 columns wide, then soft and hard columns.
		std::vector<std::string_view> tok;
		for (auto t : split(l.substr(25), ' '))
			if (!t.empty())
				tok.push_back(t);
		if (tok.size() < 2)
			return Error{"can't parse " + path};
		auto val = [](std::string_view t) -> uint64_t {
			return t == "unlimited" ? ~0ULL : parse_u64(t).value_or(~0ULL);
		};
		out.push_back({val(tok[0]), val(tok[1])});
	}
	if (out.size() != 16)
		return Error{strfmt("%s: expected 16 limits, found %zu", path.c_str(), out.size())};
	return out;
}

static Result<std::vector<int>> list_numeric(const std::string &path)
{
	DIR *d = opendir(path.c_str());
	if (!d)
		return sys_error("can't open %s", path.c_str());
	std::vector<int> out;
	while (dirent *e = readdir(d))
		if (auto n = parse_u64(e->d_name))
			out.push_back((int)*n);
	closedir(d);
	std::sort(out.begin(), out.end());
	return out;
}

Result<std::vector<pid_t>> list_threads(pid_t pid)
{
	return list_numeric(strfmt("/proc/%d/task", pid));
}

Result<std::vector<int>> list_fds(pid_t pid)
{
	return list_numeric(strfmt("/proc/%d/fd", pid));
}

}  // namespace criu
