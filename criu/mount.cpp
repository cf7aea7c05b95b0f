#include "mount.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "log.h"
#include "magic.h"
#include "mnt.pb-c.h"
#include "sandbox.h"
#include "tar.h"

namespace criu
{

namespace
{

struct MountInfo {
	uint32_t id = 0, parent = 0;
	unsigned major = 0, minor = 0;
	std::string root, mountpoint, mnt_opts, fstype, source, super_opts;
	uint32_t shared = 0, master = 0;  // peer group ids (0: none)
	uint32_t kdev() const { return major << 20 | minor; }
};

struct FsKind {
	std::string_view name;
	Fstype type;
	bool fresh;  // criu makes it anew at restore
};

constexpr FsKind kFsKinds[] = {
    {"proc", FSTYPE__PROC, true},	   {"sysfs", FSTYPE__SYSFS, true},    {"tmpfs", FSTYPE__TMPFS, true},
    {"devpts", FSTYPE__DEVPTS, true},	   {"mqueue", FSTYPE__MQUEUE, true},  {"overlay", FSTYPE__OVERLAYFS, true},
    {"devtmpfs", FSTYPE__DEVTMPFS, false}, {"cgroup", FSTYPE__CGROUP, false}, {"cgroup2", FSTYPE__CGROUP2, false},
};

const FsKind *fs_kind(std::string_view name)
{
	for (auto &k : kFsKinds)
		if (k.name == name)
			return &k;
	return nullptr;
}

constexpr std::pair<std::string_view, unsigned long> kMountFlags[] = {
    {"ro", MS_RDONLY},	     {"nosuid", MS_NOSUID},	    {"nodev", MS_NODEV},       {"noexec", MS_NOEXEC},
    {"noatime", MS_NOATIME}, {"nodiratime", MS_NODIRATIME}, {"relatime", MS_RELATIME}, {"strictatime", MS_STRICTATIME},
};

unsigned long mount_flags(std::string_view opts)
{
	unsigned long flags = 0;
	for (auto o : split(opts, ','))
		for (auto &[name, bit] : kMountFlags)
			if (o == name)
				flags |= bit;
	return flags;
}

// mountinfo writes blanks, newlines and backslashes as \ooo.
std::string unescape(std::string_view s)
{
	std::string out;
	for (size_t i = 0; i < s.size(); i++) {
		if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
			out += (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			out += s[i];
		}
	}
	return out;
}

Result<MountInfo> parse_mount_line(std::string_view line)
{
	auto f = split(line, ' ');
	auto dash = f.size() > 6 ? std::find(f.begin() + 6, f.end(), "-") : f.end();
	MountInfo m;
	auto id = f.size() > 1 ? parse_u64(f[0]) : std::nullopt;
	auto parent = f.size() > 1 ? parse_u64(f[1]) : std::nullopt;
	if (dash == f.end() || f.end() - dash < 4 || !id || !parent ||
	    sscanf(std::string(f[2]).c_str(), "%u:%u", &m.major, &m.minor) != 2)
		return Error{strfmt("can't parse '%.*s'", (int)line.size(), line.data())};
	m.id = *id;
	m.parent = *parent;
	m.root = unescape(f[3]);
	m.mountpoint = unescape(f[4]);
	m.mnt_opts = f[5];
	for (auto it = f.begin() + 6; it != dash; ++it) {
		auto colon = it->find(':');
		auto n = colon == std::string_view::npos ? std::nullopt : parse_u64(it->substr(colon + 1));
		if (n && it->starts_with("shared:"))
			m.shared = *n;
		else if (n && it->starts_with("master:"))
			m.master = *n;
	}
	m.fstype = dash[1];
	m.source = unescape(dash[2]);
	m.super_opts = dash[3];
	return m;
}

// The mounts of pid's namespace, parents before children (depth first,
// siblings in the kernel's order, which is the order they were made in).
Result<std::vector<MountInfo>> read_mounts(pid_t pid)
{
	auto path = strfmt("/proc/%d/mountinfo", pid);
	auto text = read_file(path, 16 << 20);
	if (!text)
		return text.error();
	std::vector<MountInfo> all;
	for (auto line : split(*text, '\n')) {
		if (line.empty())
			continue;
		auto m = parse_mount_line(line);
		if (!m)
			return Error{path + ": " + m.error().msg};
		all.push_back(std::move(*m));
	}
	std::multimap<uint32_t, size_t> kids;
	std::vector<size_t> roots;
	for (size_t i = 0; i < all.size(); i++) {
		bool has_parent = std::any_of(all.begin(), all.end(), [&](auto &p) { return p.id == all[i].parent; });
		if (has_parent && all[i].id != all[i].parent)
			kids.emplace(all[i].parent, i);
		else
			roots.push_back(i);
	}
	if (roots.size() != 1 || all[roots[0]].mountpoint != "/")
		return Error{strfmt("%s: no single root mount at /", path.c_str())};
	std::vector<MountInfo> out;
	std::vector<size_t> stack{roots[0]};
	while (!stack.empty()) {
		size_t i = stack.back();
		stack.pop_back();
		out.push_back(all[i]);
		auto [b, e] = kids.equal_range(all[i].id);
		std::vector<size_t> mine;
		for (auto it = b; it != e; ++it)
			mine.push_back(it->second);
		stack.insert(stack.end(), mine.rbegin(), mine.rend());
	}
	return out;
}

bool is_under(const std::string &path, const std::string &dir)
{
	return dir == "/" || path == dir || (path.starts_with(dir) && path[dir.size()] == '/');
}

// path (under dir) as seen from dir's mountpoint.
std::string relative_to(const std::string &path, const std::string &dir, const std::string &mountpoint)
{
	std::string rest = dir == "/" ? path : path.substr(dir.size());
	if (rest == "/" || rest.empty())
		return mountpoint;
	return (mountpoint == "/" ? "" : mountpoint) + rest;
}

// overlay's options with prefix before each directory (lowerdir's layers,
// upperdir, workdir); the directories go into dirs.
Result<std::string> overlay_options(const std::string &opts, const std::string &prefix,
				    std::vector<std::string> *dirs = nullptr)
{
	std::string out;
	for (auto o : split(opts, ',')) {
		if (!out.empty())
			out += ',';
		auto eq = o.find('=');
		auto key = o.substr(0, eq == std::string_view::npos ? o.size() : eq);
		if (key != "lowerdir" && key != "upperdir" && key != "workdir") {
			out += o;
			continue;
		}
		out += std::string(key) + "=";
		bool first = true;
		for (auto d : split(o.substr(eq + 1), ':')) {
			out += first ? "" : ":";
			first = false;
			if (d.empty())
				continue;  // "::" before data-only layers
			if (d[0] != '/')
				return Error{strfmt("overlay %.*s is the relative path %.*s", (int)key.size(),
						    key.data(), (int)d.size(), d.data())};
			if (dirs)
				dirs->emplace_back(d);
			out += prefix + std::string(d);
		}
	}
	return out;
}

std::string tmpfs_image(uint32_t dev)
{
	return strfmt("tmpfs-dev-%u.tar.gz.img", dev);
}

// A detached copy of the tmpfs mount alone (open_tree, which only clones
// mounts of the caller's namespace: criu steps into the task's for it).
// Through it tar sees the tmpfs's own files: not the mounts over its
// directories and files, whose files would otherwise be saved in their
// place (a file bound from the same tmpfs even as a hard link).
Result<Fd> tmpfs_view(pid_t pid, const std::string &mountpoint)
{
	Fd back(open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)), cwd(open(".", O_PATH | O_CLOEXEC));
	Fd ns(open(strfmt("/proc/%d/ns/mnt", pid).c_str(), O_RDONLY | O_CLOEXEC));
	// (opened here: the task's namespace has another /proc)
	Fd rootfd(open(strfmt("/proc/%d/root", pid).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
	if (!back.valid() || !cwd.valid() || !ns.valid() || !rootfd.valid())
		return sys_error("can't open the mount namespaces and root of criu and PID %d", pid);
	if (setns(ns.get(), CLONE_NEWNS) < 0)
		return sys_error("can't enter the mount namespace of PID %d", pid);
	auto rel = mountpoint == "/" ? std::string(".") : mountpoint.substr(1);
	Fd view(open_tree(rootfd.get(), rel.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW));
	int err = errno;
	if (setns(back.get(), CLONE_NEWNS) < 0 || fchdir(cwd.get()) < 0)
		return sys_error("can't return to criu's mount namespace");
	if (!view.valid())
		return Error{strfmt("can't take a view of the tmpfs at %s: %s", mountpoint.c_str(), strerror(err))};
	return view;
}

Status dump_tmpfs(const ImageDir &dir, pid_t pid, const MountInfo &m)
{
	// through the task's root: the path walks its mounts
	auto path = strfmt("/proc/%d/root%s", pid, m.mountpoint.c_str());
	struct stat st;
	if (stat(path.c_str(), &st) < 0)
		return sys_error("can't reach the tmpfs at %s", m.mountpoint.c_str());
	if (major(st.st_dev) != m.major || minor(st.st_dev) != m.minor)
		return Error{strfmt("the tmpfs at %s is covered by another mount: its files can't be saved",
				    m.mountpoint.c_str())};
	// an unbindable mount can't be copied: its files are read through the
	// task's root then, with what is mounted over them
	auto view = tmpfs_view(pid, m.mountpoint);
	if (view)
		path = strfmt("/proc/%d/fd/%d", getpid(), view->get());
	else
		pr_warn("%s; its files are read with what other mounts put over them\n", view.error().msg.c_str());
	auto name = tmpfs_image(m.kdev());
	Fd out(openat(dir.fd(), name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
	if (!out.valid())
		return sys_error("can't create %s", name.c_str());
	auto st2 = run_tool({"tar", "--create", "--gzip", "--no-unquote", "--no-wildcards", "--one-file-system",
			     "--preserve-permissions", "--sparse", "--numeric-owner", "--xattrs", "--xattrs-include=*",
			     "--directory", path, "."},
			    -1, out.get());
	if (!st2)
		return Error{strfmt("can't save the files of the tmpfs at %s: %s", m.mountpoint.c_str(),
				    st2.error().msg.c_str())};
	return {};
}

// Plain archives (tar.h) in criu itself; the others, or one criu could not
// extract (emptied again first), by tar(1).
Status restore_tmpfs(int images, uint32_t dev, const std::string &target)
{
	auto name = tmpfs_image(dev);
	Fd in(openat(images, name.c_str(), O_RDONLY | O_CLOEXEC));
	if (!in.valid())
		return sys_error("can't open %s", name.c_str());
	struct stat sb;
	if (fstat(in.get(), &sb) == 0 && sb.st_size <= (1 << 20)) {
		auto gz = read_file(strfmt("/proc/self/fd/%d", in.get()), 1 << 20);
		Fd dir(open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		auto done = gz && dir.valid() ? extract_plain_tar_gz(*gz, dir.get(), name)
					      : Result<bool>(Error{"can't read it"});
		if (done && *done)
			return {};
		if (!done) {
			pr_warn("%s: %s; tar extracts it instead\n", name.c_str(), done.error().msg.c_str());
			TRY(run_tool({"find", target, "-mindepth", "1", "-delete"}, -1, -1));
		}
	}
	auto st = run_tool({"tar", "--extract", "--gzip", "--no-unquote", "--no-wildcards", "--preserve-permissions",
			    "--numeric-owner", "--xattrs", "--xattrs-include=*", "--directory", target},
			   in.get(), -1);
	if (!st)
		return Error{strfmt("can't restore the files of the tmpfs at %s from %s: %s", target.c_str(),
				    name.c_str(), st.error().msg.c_str())};
	return {};
}

std::optional<std::string> external_value(const std::vector<std::string> &externals, const std::string &inside)
{
	for (auto &x : externals)
		if (auto e = parse_external(x); e && e->kind == "mnt" && e->inside == inside)
			return e->key;
	return std::nullopt;
}

// Why m can't be made again at restore, or "" (a bind of a mount saved
// before it, or a filesystem made anew).
Result<std::string> why_not(pid_t pid, const MountInfo &m, const std::vector<MountInfo> &saved)
{
	for (auto &s : saved)
		if (s.kdev() == m.kdev() && is_under(m.root, s.root))
			return std::string();
	const FsKind *k = fs_kind(m.fstype);
	if (!k || !k->fresh)
		return strfmt("is %s from %s", m.fstype.c_str(), m.source.c_str());
	if (m.root != "/")
		return strfmt("binds %s of a %s the tree has no other mount of", m.root.c_str(), m.fstype.c_str());
	if (k->type == FSTYPE__OVERLAYFS) {
		std::vector<std::string> dirs;
		auto opts = overlay_options(m.super_opts, "", &dirs);
		if (!opts)
			return opts.error();
		for (auto &d : dirs) {
			struct stat st;
			if (stat(strfmt("/proc/%d/root%s", pid, d.c_str()).c_str(), &st) < 0)
				return strfmt("is an overlay on %s, which the tree does not see", d.c_str());
		}
	}
	return std::string();
}

// Every mount of the tree can be made again (checked before anything is
// written: a refusal costs nothing).
Status check_mounts(pid_t pid, const std::vector<MountInfo> &mounts, const std::vector<std::string> &externals)
{
	std::vector<MountInfo> saved{mounts[0]};
	for (size_t i = 1; i < mounts.size(); i++) {
		const MountInfo &m = mounts[i];
		if (external_value(externals, m.mountpoint))
			continue;
		auto why = why_not(pid, m, saved);
		if (!why)
			return Error{
			    strfmt("PID %d: mount %s: %s", pid, m.mountpoint.c_str(), why.error().msg.c_str())};
		if (!why->empty())
			return Error{strfmt("PID %d: the mount at %s of its mount namespace %s and can't be made "
					    "again: name it with --external mnt[%s]:KEY",
					    pid, m.mountpoint.c_str(), why->c_str(), m.mountpoint.c_str())};
		saved.push_back(m);
	}
	return {};
}

Status write_mount(ImageWriter &w, const MountInfo &m, const std::optional<std::string> &key)
{
	MntEntry e = MNT_ENTRY__INIT;
	const FsKind *k = fs_kind(m.fstype);
	e.fstype = k ? k->type : FSTYPE__UNSUPPORTED;
	e.fsname = const_cast<char *>(m.fstype.c_str());
	e.mnt_id = m.id;
	e.root_dev = m.kdev();
	e.parent_mnt_id = m.parent;
	e.flags = mount_flags(m.mnt_opts);
	e.root = const_cast<char *>(m.root.c_str());
	e.mountpoint = const_cast<char *>(m.mountpoint.c_str());
	e.source = const_cast<char *>(m.source.c_str());
	// the kernel puts the superblock's ro or rw first
	auto comma = m.super_opts.find(',');
	std::string opts = comma == std::string::npos ? "" : m.super_opts.substr(comma + 1);
	e.options = opts.data();
	e.has_sb_flags = true;
	e.sb_flags = m.super_opts.starts_with("ro") ? MS_RDONLY : 0;
	if (key) {
		e.has_ext_mount = e.ext_mount = true;
		e.ext_key = const_cast<char *>(key->c_str());
	}
	e.has_shared_id = m.shared != 0;
	e.shared_id = m.shared;
	e.has_master_id = m.master != 0;
	e.master_id = m.master;
	return w.write(&e.base);
}

}  // namespace

Status dump_mounts(const ImageDir &dir, uint32_t id, pid_t pid, const std::vector<std::string> &externals)
{
	auto mounts = read_mounts(pid);
	if (!mounts)
		return mounts.error();
	TRY(check_mounts(pid, *mounts, externals));
	auto w = ImageWriter::create(dir, strfmt("mountpoints-%u.img", id), MNTS_MAGIC);
	if (!w)
		return w.error();
	std::set<uint32_t> filled;  // tmpfs superblocks whose files are saved
	for (auto &m : *mounts) {
		auto key = external_value(externals, m.mountpoint);
		if (&m != &(*mounts)[0] && !key && m.fstype == "tmpfs" && filled.insert(m.kdev()).second)
			TRY(dump_tmpfs(dir, pid, m));
		TRY(write_mount(*w, m, key));
		pr_debug("mount %u at %s: %s %s, root %s%s\n", m.id, m.mountpoint.c_str(), m.fstype.c_str(),
			 m.source.c_str(), m.root.c_str(), key ? " (external)" : "");
	}
	pr_info("Saved %zu mounts of PID %d's mount namespace\n", mounts->size(), pid);
	return w->close();
}

Result<OwnMntns> OwnMntns::enter(const ImageDir &dir, uint32_t id, const Options &o, bool own_pid, bool own_ipc)
{
	if (o.root.empty())
		return Error{"the images hold a mount namespace of their own: restore with --root DIR, its root "
			     "filesystem"};
	OwnMntns n;
	n.own_pid_ = own_pid;
	n.own_ipc_ = own_ipc;
	n.images_.reset(fcntl(dir.fd(), F_DUPFD_CLOEXEC, 0));
	TRY(n.load(dir, id, o));
	n.back_.reset(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
	n.cwd_.reset(::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!n.back_.valid() || !n.cwd_.valid())
		return sys_error("can't open criu's mount namespace");
	TRY(n.copy_host_mounts());
	if (unshare(CLONE_NEWNS) < 0)
		return sys_error("can't create a mount namespace");
	if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
		return sys_error("can't make criu's mounts private");
	char staging[] = "/tmp/.criu-root.XXXXXX";
	if (!mkdtemp(staging))
		return sys_error("can't make a staging directory in /tmp");
	n.staging_ = staging;
	TRY(n.build());
	return n;
}

Status OwnMntns::load(const ImageDir &dir, uint32_t id, const Options &o)
{
	auto r = ImageReader::open(dir, strfmt("mountpoints-%u.img", id), MNTS_MAGIC);
	if (!r)
		return r.error();
	std::map<uint32_t, size_t> by_id;
	for (;;) {
		auto e = r->next<MntEntry>(mnt_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		Mount m;
		m.id = (*e)->mnt_id;
		m.dev = (*e)->root_dev;
		m.mountpoint = (*e)->mountpoint;
		m.root = (*e)->root;
		m.fstype = (*e)->fsname ? (*e)->fsname : "";
		m.source = (*e)->source;
		m.options = (*e)->options;
		m.flags = (*e)->flags;
		m.sb_flags = (*e)->sb_flags;
		m.external = (*e)->ext_mount;
		m.shared = (*e)->shared_id;
		m.master = (*e)->master_id;
		auto parent = by_id.find((*e)->parent_mnt_id);
		if (mounts_.empty() != (parent == by_id.end()))
			return Error{strfmt("%s: mount %u at %s comes before its parent", r->name().c_str(), m.id,
					    m.mountpoint.c_str())};
		if (auto st = resolve(m, (*e)->ext_key ? (*e)->ext_key : "", o); !st)
			return Error{strfmt("%s: mount %u at %s: %s", r->name().c_str(), m.id, m.mountpoint.c_str(),
					    st.error().msg.c_str())};
		m.late |= !mounts_.empty() && mounts_[parent->second].late;
		by_id[m.id] = mounts_.size();
		if (m.late)
			late_.push_back(mounts_.size());
		mounts_.push_back(std::move(m));
	}
	if (mounts_.empty())
		return Error{r->name() + " has no mount"};
	temp_proc_ = std::none_of(mounts_.begin(), mounts_.end(),
				  [](auto &m) { return m.fstype == "proc" && m.mountpoint == "/proc" && !m.late; });
	return {};
}

// Where m's files come from: --root, the host (external), a mount made
// before it (a bind), or nowhere (a fresh filesystem).
Status OwnMntns::resolve(Mount &m, const std::string &key, const Options &o)
{
	if (mounts_.empty()) {
		char real[PATH_MAX];
		if (!realpath(o.root.c_str(), real))
			return sys_error("--root %s", o.root.c_str());
		m.from = real;
		m.external = true;
		return {};
	}
	if (m.external) {
		auto path = external_value(o.externals, key);
		if (!path)
			return Error{strfmt("it is external (%s): restore with --external mnt[%s]:PATH", key.c_str(),
					    key.c_str())};
		m.from = *path;
		return {};
	}
	for (auto &s : mounts_)
		if (s.dev == m.dev && is_under(m.root, s.root)) {
			m.from = relative_to(m.root, s.root, s.mountpoint);
			m.late = s.late;
			return {};
		}
	const FsKind *k = fs_kind(m.fstype);
	if (!k || !k->fresh || m.root != "/")
		return Error{strfmt("can't make a %s with root %s anew", m.fstype.c_str(), m.root.c_str())};
	m.late = (own_pid_ && k->type == FSTYPE__PROC) || (own_ipc_ && k->type == FSTYPE__MQUEUE);
	return {};
}

// m at prefix + its mountpoint; prefix + m.from is a bind's source.
// A mount of the host's whose master is a peer group outside the tree
// (none of the tree's mounts is its peer), and that is no peer itself.
bool OwnMntns::slave_of_host(const Mount &m) const
{
	return m.external && m.master && !m.shared && !tree_group(m.master);
}

// Is id the peer group of one of the tree's mounts?
bool OwnMntns::tree_group(uint32_t id) const
{
	return id && std::any_of(mounts_.begin(), mounts_.end(), [&](auto &o) { return o.shared == id; });
}

// In the host's mount namespace still: a copy of the host's mount is in
// its peer group, which binds made in criu's private namespace would not be.
Status OwnMntns::copy_host_mounts()
{
	host_.resize(mounts_.size());
	for (size_t i = 0; i < mounts_.size(); i++) {
		if (!slave_of_host(mounts_[i]))
			continue;
		host_[i].reset(open_tree(AT_FDCWD, mounts_[i].from.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
		if (!host_[i].valid())
			return sys_error("can't copy the host's mount of %s", mounts_[i].from.c_str());
	}
	return {};
}

Status OwnMntns::make(const Mount &m, const std::string &prefix, int host_copy) const
{
	auto target = prefix + m.mountpoint;
	const char *t = target.c_str();
	if (host_copy >= 0) {
		// a slave before anything is mounted under it: nothing goes back
		if (move_mount(host_copy, "", AT_FDCWD, t, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return sys_error("can't attach the host's %s at %s", m.from.c_str(), m.mountpoint.c_str());
		if (mount(nullptr, t, nullptr, MS_SLAVE, nullptr) < 0)
			return sys_error("can't make %s a slave of the host's mount", m.mountpoint.c_str());
	} else if (!m.from.empty()) {
		auto src = m.external ? m.from : prefix + m.from;
		if (mount(src.c_str(), t, nullptr, MS_BIND, nullptr) < 0)
			return sys_error("can't bind %s to %s", src.c_str(), m.mountpoint.c_str());
	}
	if (!m.from.empty()) {
		if (mount(nullptr, t, nullptr, MS_REMOUNT | MS_BIND | m.flags, nullptr) < 0)
			return sys_error("can't set the flags %#lx of %s", m.flags, m.mountpoint.c_str());
		return {};
	}
	std::string data = m.options;
	if (m.fstype == "overlay") {
		auto o = overlay_options(m.options, prefix);
		if (!o)
			return o.error();
		data = *o;
	}
	if (mount(m.source.c_str(), t, m.fstype.c_str(), m.flags & ~MS_RDONLY, data.c_str()) < 0)
		return sys_error("can't mount %s (%s) at %s", m.fstype.c_str(), m.source.c_str(), m.mountpoint.c_str());
	if (m.fstype == "tmpfs")
		TRY(restore_tmpfs(images_.get(), m.dev, target));
	if ((m.sb_flags & MS_RDONLY) && mount(nullptr, t, nullptr, MS_REMOUNT | m.flags | MS_RDONLY, data.c_str()) < 0)
		return sys_error("can't make the %s at %s read-only", m.fstype.c_str(), m.mountpoint.c_str());
	if ((m.flags & MS_RDONLY) && mount(nullptr, t, nullptr, MS_REMOUNT | MS_BIND | m.flags, nullptr) < 0)
		return sys_error("can't make %s read-only", m.mountpoint.c_str());
	return {};
}

Status OwnMntns::build()
{
	timespec t0 = now();
	roots_.resize(mounts_.size());
	for (size_t i = 0; i < mounts_.size(); i++) {
		auto &m = mounts_[i];
		if (m.late)
			continue;
		TRY(make(m, staging_, host_[i].get()));
		host_[i].reset();
		roots_[i].reset(::open((staging_ + m.mountpoint).c_str(), O_PATH | O_CLOEXEC));
		if (!roots_[i].valid())
			return sys_error("can't open the mount at %s", m.mountpoint.c_str());
		pr_debug("mounted %s %s at %s%s\n", m.fstype.c_str(),
			 m.from.empty() ? m.source.c_str() : m.from.c_str(), m.mountpoint.c_str(),
			 m.from.empty() ? "" : " (bind)");
	}
	auto proc = staging_ + "/proc";
	if (temp_proc_ && mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
		return sys_error("can't mount criu's proc at /proc of the new root (criu needs it while it restores)");
	if (chdir(staging_.c_str()) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		return sys_error("can't pivot into the new root %s", staging_.c_str());
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return sys_error("can't detach criu's root after pivot_root");
	// after the pivot: a shared root can't be pivoted into
	TRY(propagate());
	roots_.clear();
	pr_info("Mount namespace: %zu mounts made in %.3f ms, %zu wait for the tree's namespaces\n",
		mounts_.size() - late_.size(), ms_since(t0), late_.size());
	return {};
}

namespace
{

Status set_group(int from, int to, const std::string &what)
{
	if (move_mount(from, "", to, "", MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return sys_error("can't put the mount at %s into its peer group", what.c_str());
	return {};
}

Status set_propagation(int fd, uint64_t type, const std::string &what)
{
	mount_attr a{};
	a.propagation = type;
	if (mount_setattr(fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
		return sys_error("can't make the mount at %s %s", what.c_str(),
				 type == MS_SHARED ? "shared" : "a slave");
	return {};
}

}  // namespace

// The made mount of dev whose root holds the roots of all of dev's mounts
// that propagate: a peer group can be copied from it to any of them.
Result<size_t> OwnMntns::widest(uint32_t dev) const
{
	for (size_t i = 0; i < mounts_.size(); i++) {
		auto &w = mounts_[i];
		if (w.dev == dev && roots_[i].valid() && std::all_of(mounts_.begin(), mounts_.end(), [&](auto &m) {
			    return m.dev != dev || m.late || (!m.shared && !tree_group(m.master)) ||
				   is_under(m.root, w.root);
		    }))
			return i;
	}
	return Error{strfmt("no mount of device %u:%u holds all the others", dev >> 20, dev & 0xfffff)};
}

// The dump's peer groups among the tree's mounts, with new numbers. Each
// group gets a detached copy of the widest mount of its filesystem, made
// a slave of the group's master first if that is a group of the tree, then
// shared; its members join it (MOVE_MOUNT_SET_GROUP takes the group and
// the master). A slave that is no peer joins its master's group and is
// made a slave. The copies go when their fds close; the groups stay.
Status OwnMntns::propagate()
{
	std::map<uint32_t, std::vector<size_t>> groups;
	for (size_t i = 0; i < mounts_.size(); i++)
		if (mounts_[i].shared && !mounts_[i].late)
			groups[mounts_[i].shared].push_back(i);
	std::map<uint32_t, Fd> made;
	std::function<Status(uint32_t)> make_group = [&](uint32_t g) -> Status {
		if (made.count(g))
			return {};
		const Mount &first = mounts_[groups[g].front()];
		auto w = widest(first.dev);
		if (!w)
			return Error{
			    strfmt("peer group %u (%s): %s", g, first.mountpoint.c_str(), w.error().msg.c_str())};
		Fd copy(open_tree(roots_[*w].get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
		if (!copy.valid())
			return sys_error("can't copy the mount at %s", mounts_[*w].mountpoint.c_str());
		if (first.master && groups.count(first.master)) {
			TRY(make_group(first.master));
			TRY(set_group(made[first.master].get(), copy.get(), "a copy of " + first.mountpoint));
			TRY(set_propagation(copy.get(), MS_SLAVE, "a copy of " + first.mountpoint));
		}
		TRY(set_propagation(copy.get(), MS_SHARED, "a copy of " + first.mountpoint));
		for (size_t i : groups[g])
			TRY(set_group(copy.get(), roots_[i].get(), mounts_[i].mountpoint));
		made[g] = std::move(copy);
		return {};
	};
	for (auto &[g, members] : groups)
		TRY(make_group(g));
	for (size_t i = 0; i < mounts_.size(); i++) {
		const Mount &m = mounts_[i];
		bool late = m.late && (m.shared || m.master);
		if (late || (m.master && !groups.count(m.master) && !slave_of_host(m)))
			pr_warn("the mount at %s is restored without its %s (peer group %u)\n", m.mountpoint.c_str(),
				late ? "propagation" : "master, which is not in the tree", late ? m.shared : m.master);
		if (m.late || m.shared || !m.master || !groups.count(m.master))
			continue;
		TRY(set_group(made[m.master].get(), roots_[i].get(), m.mountpoint));
		TRY(set_propagation(roots_[i].get(), MS_SLAVE, m.mountpoint));
	}
	if (!made.empty())
		pr_info("Mount namespace: %zu peer groups made again\n", made.size());
	return {};
}

void OwnMntns::leave()
{
	if (!back_.valid())
		return;
	if (setns(back_.get(), CLONE_NEWNS) < 0)
		pr_err("can't return to criu's mount namespace: %s\n", strerror(errno));
	else if (fchdir(cwd_.get()) < 0)
		pr_err("can't return to criu's directory: %s\n", strerror(errno));
	back_.reset();
	if (!staging_.empty() && rmdir(staging_.c_str()) < 0)
		pr_warn("can't remove %s: %s\n", staging_.c_str(), strerror(errno));
	staging_.clear();
}

OwnMntns::~OwnMntns()
{
	leave();
}

// In a process in the tree's namespaces: criu's proc goes, the late mounts
// come.
Status OwnMntns::make_late() const
{
	if (temp_proc_ && umount2("/proc", MNT_DETACH) < 0)
		return sys_error("can't unmount criu's proc from the new root");
	for (size_t i : late_)
		TRY(make(mounts_[i], ""));
	return {};
}

Status OwnMntns::mount_late(pid_t root) const
{
	if (late_.empty() && !temp_proc_)
		return {};
	std::vector<std::pair<Fd, int>> ns;
	for (auto [name, kind] :
	     {std::pair{"ipc", CLONE_NEWIPC}, std::pair{"pid", CLONE_NEWPID}, std::pair{"mnt", CLONE_NEWNS}}) {
		Fd fd(::open(strfmt("/proc/%d/ns/%s", root, name).c_str(), O_RDONLY | O_CLOEXEC));
		if (!fd.valid())
			return sys_error("can't open the %s namespace of PID %d", name, root);
		ns.emplace_back(std::move(fd), kind);
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sys_error("can't make a pipe");
	Fd rd(p[0]), wr(p[1]);
	pid_t helper = fork();
	if (helper < 0)
		return sys_error("can't fork");
	if (helper == 0) {
		// setns(pid) is for the children: a worker makes the mounts
		Status st;
		for (auto &[fd, kind] : ns)
			if (st && setns(fd.get(), kind) < 0)
				st = sys_error("can't enter the namespace of PID %d (kind %#x)", root, kind);
		pid_t worker = st ? fork() : -1;
		if (st && worker < 0)
			st = sys_error("can't fork in the namespaces of PID %d", root);
		if (worker == 0)
			st = make_late();
		if (worker > 0) {
			waitpid(worker, nullptr, 0);
			_exit(0);
		}
		if (!st)
			(void)!write(wr.get(), st.error().msg.data(), st.error().msg.size());
		_exit(st ? 0 : 1);
	}
	wr.reset();
	char msg[1024];
	ssize_t n = read(rd.get(), msg, sizeof(msg));
	while (waitpid(helper, nullptr, 0) < 0 && errno == EINTR)
		;
	if (n > 0)
		return Error{strfmt("mounts in the new namespaces of PID %d: %.*s", root, (int)n, msg)};
	return {};
}

}  // namespace criu
