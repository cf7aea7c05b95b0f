#include "pstree.h"

#include <linux/kcmp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <set>

#include "log.h"
#include "magic.h"
#include "proc.h"
#include "pstree.pb-c.h"

namespace criu
{

namespace
{

struct Shape {
	pid_t pid, ppid, pgid, sid;
};

// Sessions are only inherited through fork and a process group can only
// be created by its leader: the restore rebuilds both by having each task
// call setsid()/setpgid() itself, so every session must be its own or its
// parent's, and every group must have its leader in the tree (the root's
// group excepted: the root keeps whatever group it is restored into).
Status check_shape(const std::vector<Shape> &t)
{
	std::map<pid_t, const Shape *> by_pid;
	for (auto &s : t) {
		if (s.pid <= 0 || !by_pid.emplace(s.pid, &s).second)
			return Error{strfmt("pstree: PID %d appears twice or is invalid", s.pid)};
		if (&s != &t[0] && !by_pid.count(s.ppid))
			return Error{strfmt("pstree: the parent %d of PID %d is not listed before it", s.ppid, s.pid)};
	}
	const Shape &root = t[0];
	for (auto &s : t) {
		if (&s != &root && s.sid != s.pid && s.sid != by_pid[s.ppid]->sid)
			return Error{strfmt("PID %d is in session %d, which is neither its own nor its parent's; "
					    "restoring it is not supported",
					    s.pid, s.sid)};
		if (s.pgid == s.pid || (s.pgid == root.pgid && s.sid == root.sid))
			continue;
		auto leader = by_pid.find(s.pgid);
		if (leader == by_pid.end() || leader->second->pgid != s.pgid)
			return Error{strfmt("PID %d is in process group %d, whose leader is not in the tree; "
					    "restoring it is not supported",
					    s.pid, s.pgid)};
		if (leader->second->sid != s.sid)
			return Error{strfmt("PID %d is in process group %d of another session", s.pid, s.pgid)};
	}
	return {};
}

// Processes sharing kernel objects that only threads may share could not
// be rebuilt as separate processes.
Status check_sharing(pid_t a, pid_t b)
{
	static const struct {
		int type;
		const char *what;
	} kinds[] = {{KCMP_VM, "memory (CLONE_VM)"},
		     {KCMP_FILES, "its fd table (CLONE_FILES)"},
		     {KCMP_FS, "cwd/root/umask (CLONE_FS)"}};
	for (auto &k : kinds)
		if (syscall(SYS_kcmp, a, b, k.type, 0, 0) == 0)
			return Error{strfmt("PID %d shares %s with its parent %d; not supported", b, k.what, a)};
	return {};
}

Result<std::vector<pid_t>> list_children(pid_t pid, Seized &s)
{
	std::vector<pid_t> out;
	for (pid_t tid : TreeTask::thread_ids(s)) {
		auto text = read_file(strfmt("/proc/%d/task/%d/children", pid, tid));
		if (!text)
			return text.error();
		for (auto f : split(*text, ' '))
			if (auto c = parse_u64(f))
				out.push_back((pid_t)*c);
	}
	return out;
}

Status set_vpids(TreeTask &t, const NsSet &ns)
{
	t.vtids = t.seized ? TreeTask::thread_ids(*t.seized) : std::vector<pid_t>{t.pid};
	if (ns.pid)
		for (auto &tid : t.vtids) {
			auto v = ns_pid(tid);
			if (!v)
				return v.error();
			tid = *v;
		}
	t.vpid = t.vtids[0];
	return {};
}

Status add_task(std::vector<TreeTask> &tree, pid_t pid, pid_t ppid, const std::vector<std::string> &ext, NsSet &ns,
		const timespec &deadline)
{
	auto stat = parse_stat(pid);
	if (!stat)
		return Error{strfmt("PID %d does not exist (%s)", pid, stat.error().msg.c_str())};
	TreeTask t;
	t.pid = pid;
	t.ppid = ppid;
	t.pgid = parse_u64((*stat)[5]).value_or(0);
	t.sid = parse_u64((*stat)[6]).value_or(0);
	if ((*stat)[3] == "Z") {
		// A zombie of a frozen parent stays as it is: nothing to seize.
		if (tree.empty())
			return Error{strfmt("PID %d is a zombie", pid)};
		if (stat->size() < 53)
			return Error{strfmt("/proc/%d/stat has no exit status", pid)};
		t.zombie = true;
		t.exit_status = parse_u64((*stat)[52]).value_or(0);
		TRY(set_vpids(t, ns));
		tree.push_back(std::move(t));
		return {};
	}
	if (tree.empty()) {
		auto n = root_namespaces(pid, ext);
		if (!n)
			return n.error();
		ns = *n;
	} else {
		TRY(check_same_namespaces(pid, tree[0].pid));
	}
	auto s = Seized::seize(pid, deadline);
	if (!s)
		return s.error();
	t.seized.emplace(std::move(*s));
	if (!tree.empty())
		TRY(check_sharing(ppid, pid));
	TRY(set_vpids(t, ns));
	tree.push_back(std::move(t));
	return {};
}

Status seize_subtree(std::vector<TreeTask> &tree, pid_t pid, pid_t ppid, const std::vector<std::string> &ext, NsSet &ns,
		     const timespec &deadline)
{
	TRY(add_task(tree, pid, ppid, ext, ns, deadline));
	size_t me = tree.size() - 1;
	if (tree[me].zombie)
		return {};
	// Frozen now: its list of children can't change under us.
	auto kids = list_children(pid, *tree[me].seized);
	if (!kids)
		return kids.error();
	for (pid_t c : *kids)
		TRY(seize_subtree(tree, c, pid, ext, ns, deadline));
	return {};
}

}  // namespace

std::vector<pid_t> TreeTask::thread_ids(Seized &s)
{
	std::vector<pid_t> out;
	for (auto &t : s.threads())
		out.push_back(t.tid);
	return out;
}

Result<std::vector<TreeTask>> seize_tree(pid_t root, const std::vector<std::string> &externals, NsSet &ns,
					 unsigned timeout_s)
{
	std::vector<TreeTask> tree;
	timespec deadline = now();
	deadline.tv_sec += timeout_s;
	if (auto st = seize_subtree(tree, root, 0, externals, ns, deadline); !st)
		return st.error();  // the Seized destructors let everything run on
	std::vector<Shape> shape;
	for (auto &t : tree)
		shape.push_back({t.pid, t.ppid, t.pgid, t.sid});
	TRY(check_shape(shape));
	return tree;
}

void kill_tree(std::vector<TreeTask> &tree)
{
	for (auto it = tree.rbegin(); it != tree.rend(); ++it)
		if (it->seized)
			it->seized->kill_task();
	for (auto &t : tree)
		for (int i = 0; t.zombie && i < 500 && kill(t.pid, 0) == 0; i++)
			usleep(1000);
}

Status write_pstree(const ImageDir &dir, std::vector<TreeTask> &tree)
{
	auto w = ImageWriter::create(dir, "pstree.img", PSTREE_MAGIC);
	if (!w)
		return w.error();
	// Groups and sessions outside the tree's pid namespace are 0 there.
	std::map<pid_t, pid_t> vpid;
	for (auto &t : tree)
		vpid[t.pid] = t.vpid;
	bool own_ns = tree[0].vpid != tree[0].pid;
	auto v = [&](pid_t p) { return vpid.count(p) ? vpid[p] : own_ns ? 0 : p; };
	for (auto &t : tree) {
		PstreeEntry pe = PSTREE_ENTRY__INIT;
		pe.pid = t.vpid;
		pe.ppid = &t == &tree[0] ? 0 : v(t.ppid);  // the root is adopted by whoever restores it
		pe.pgid = v(t.pgid);
		pe.sid = v(t.sid);
		std::vector<uint32_t> u(t.vtids.begin(), t.vtids.end());
		pe.n_threads = u.size();
		pe.threads = u.data();
		TRY(w->write(&pe.base));
	}
	return w->close();
}

Result<std::vector<PbPtr<PstreeEntry>>> read_pstree(const ImageDir &dir)
{
	auto r = ImageReader::open(dir, "pstree.img", PSTREE_MAGIC);
	if (!r)
		return r.error();
	std::vector<PbPtr<PstreeEntry>> out;
	std::vector<Shape> shape;
	std::set<uint32_t> tids;
	for (;;) {
		auto e = r->next<PstreeEntry>(pstree_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		auto &p = **e;
		if (p.pid <= 0 || p.n_threads < 1 || p.threads[0] != (uint32_t)p.pid)
			return Error{strfmt("pstree.img: malformed entry for PID %d", p.pid)};
		for (size_t i = 0; i < p.n_threads; i++)
			if (!tids.insert(p.threads[i]).second)
				return Error{strfmt("pstree.img: TID %u appears twice", p.threads[i])};
		shape.push_back({(pid_t)p.pid, (pid_t)p.ppid, (pid_t)p.pgid, (pid_t)p.sid});
		out.push_back(std::move(*e));
		if (out.size() > 65536)
			return Error{"pstree.img: too many entries"};
	}
	if (out.empty())
		return Error{"pstree.img has no entry"};
	TRY(check_shape(shape));
	return out;
}

}  // namespace criu
