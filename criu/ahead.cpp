// Roots made ahead of their request: a spare (of the service, see spare.h,
// or of a template's holder, see template.h) makes the root task of its
// next restore before the request comes, and the restore goes through it.
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "cgroup.h"
#include "log.h"
#include "restore-tree.h"
#include "sandbox.h"

namespace criu
{

namespace
{

// ------------------------------------------ a root task made ahead of time

// A template's spare worker, or a spare of the service, makes the root task
// of its next restore before the request comes (prepare_root()): the copy
// of the held memory's page tables that creating it costs is then off the
// restore's path. Only for trees in a pid namespace of their own, where the
// root waits as PID 1 of a new one. The root waits for the request's
// command line, opens the tree's files itself (what criu does before
// creating the root otherwise) and goes on as any root. The images are the
// template's copy of the dump (its fingerprint, checked by the plugin,
// covers every image but the pages), or the spare's directory (its files
// checked unchanged by the spare).
struct PreparedRoot {
	ImageDir dir;
	TreeImages tree;
	std::vector<HeldRange> held;
	pid_t pid = -1;
	Fd go, report;	// criu's ends of the root's pipes
	// A thin root (restore_thin()): its region, shared with us; the fds of
	// its go and of our pidfd (their numbers are the same in the root); the
	// write end of its report, which we write for it; the ipc images and
	// the sysctls of a new ipc namespace, read ahead.
	bool thin = false;
	std::optional<RestorerRegion> region;
	Fd child_go, child_pidfd, report_wr;
	std::optional<IpcImages> ipc;
	std::optional<IpcVars> fresh_ipc;
};
std::optional<PreparedRoot> g_prepared;

// A copy of fd of the process of pidfd (-1 and errno on failure).
int take_fd(int pidfd, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

// What the prepared root gets with the go: the log and the command line.
struct GoHeader {
	uint32_t argv_len;
	int32_t log_fd;	 // criu's, taken with pidfd_getfd()
};

// The second go, once criu checked the sandbox (restore_cgroups()) and set
// its limits: criu's fds of the cgroups' files to join through
// (CgroupTarget::join_files()). Until then the root does nothing seen from
// outside it.
struct SandboxGo {
	uint32_t n_cgroups;
	int32_t cgroup_files[4];
};

// What the prepared root opens of a --switch sandbox while criu checks it.
struct SandboxOpened {
	std::vector<std::pair<Fd, int>> ns;
	std::optional<SandboxDeps> deps;
};

Result<SandboxOpened> open_sandbox(const Options &o)
{
	SandboxOpened s;
	if (o.switch_to.empty())
		return s;
	auto ns = sandbox_namespaces(o.switch_to);
	if (!ns)
		return ns.error();
	s.ns = std::move(*ns);
	auto deps = SandboxDeps::clone(o);
	if (!deps)
		return deps.error();
	s.deps.emplace(std::move(*deps));
	return s;
}

// In the prepared root: with --switch, the sandbox's namespaces (as
// JoinedNs gives them to criu otherwise) instead of the dump's; else
// criu's directory (relative paths of the command line are the client's).
Status enter_sandbox(const Options &o, TreeImages &tree, pid_t criu, SandboxOpened &s)
{
	if (o.switch_to.empty()) {
		if (chdir(strfmt("/proc/%d/cwd", criu).c_str()) < 0)
			return sys_error("can't go to criu's directory");
		return {};
	}
	for (auto &[fd, kind] : s.ns)
		if (setns(fd.get(), kind) < 0)
			return sys_error("can't enter a namespace (%#x) of sandbox %s", kind, o.switch_to.c_str());
	if (chdir("/") < 0)
		return sys_error("can't chdir to the root of sandbox %s", o.switch_to.c_str());
	TRY(s.deps->attach());
	tree.ns.uts = tree.ns.ipc = tree.ns.net = tree.ns.mnt = false;
	return {};
}

// The prepared root, once the request came.
// What the prepared root does before the request comes: all that needs
// none of it.
struct RootAhead {
	std::optional<IpcVars> new_ipc;	 // what a new ipc namespace holds (for a root made in one)
	std::optional<IpcImages> ipc;
	std::optional<RestorerRegion> region;
};

RootAhead work_ahead(PreparedRoot &p, const Inherited &inh)
{
	RootAhead a;
	if (p.tree.ns.ipc)
		if (auto v = IpcVars::read())
			a.new_ipc.emplace(std::move(*v));
	TaskImages &ti = p.tree.tasks[0];
	a.ipc = std::move(p.ipc);  // (read by prepare_root(); this is our copy of it)
	auto region = RestorerRegion::make(region_task(p.tree, ti));
	if (!region)
		report_and_exit(inh.report_fd, ti.pid, region.error());
	a.region.emplace(std::move(*region));
	return a;
}

[[noreturn]] void become_root(PreparedRoot &p, pid_t criu, int go_fd, int criu_pidfd, Inherited &inh)
{
	GoHeader h;
	std::string blob;
	Fd criu_fd(criu_pidfd);
	RootAhead ahead = work_ahead(p, inh);
	if (!read_all(go_fd, &h, sizeof(h), "the go") || h.argv_len > (1 << 20))
		_exit(1);  // criu went away
	blob.resize(h.argv_len);
	if (!read_all(go_fd, blob.data(), blob.size(), "the command line"))
		_exit(1);
	std::vector<char *> argv;
	for (size_t at = 0; at < blob.size(); at += strlen(blob.data() + at) + 1)
		argv.push_back(blob.data() + at);
	argv.push_back(nullptr);
	Options o;
	pid_t vpid = p.tree.tasks[0].pid;
	if (!parse_options((int)argv.size() - 1, argv.data(), o))
		report_and_exit(inh.report_fd, vpid, Error{"the prepared root can't parse the command line"});
	o.held = p.held;
	o.pages_dir_fd = p.dir.fd();
	int log_fd = h.log_fd == STDERR_FILENO ? STDERR_FILENO : take_fd(criu_fd.get(), h.log_fd);
	log::adopt(o.verbosity, log_fd, o.log_pid);
	auto opened = open_sandbox(o);
	if (!opened)
		report_and_exit(inh.report_fd, vpid, opened.error());
	SandboxGo sg;
	if (!read_all(go_fd, &sg, sizeof(sg), "the second go"))
		_exit(1);  // criu found the sandbox busy, or went away
	::close(go_fd);
	std::vector<Fd> cgroup_files;
	for (uint32_t i = 0; i < std::min(sg.n_cgroups, 4u); i++) {
		cgroup_files.emplace_back(take_fd(criu_fd.get(), sg.cgroup_files[i]));
		if (!cgroup_files.back().valid())
			report_and_exit(inh.report_fd, vpid, sys_error("can't take criu's fd %d", sg.cgroup_files[i]));
	}
	if (auto st = CgroupTarget::join_through(cgroup_files); !st)
		report_and_exit(inh.report_fd, vpid, st.error());
	criu_fd.reset();
	if (auto st = enter_sandbox(o, p.tree, criu, *opened); !st)
		report_and_exit(inh.report_fd, vpid, st.error());
	if (auto st = prepare_inherited(o, p.tree, inh); !st)
		report_and_exit(inh.report_fd, vpid, st.error());
	ChildSide root(o, p.dir, p.tree, 0, inh);
	root.region_ahead(std::move(*ahead.region));
	if (ahead.ipc)
		root.ipc_read_ahead(std::move(*ahead.ipc));
	// --switch-deps took the sandbox only if it was released: its ipc
	// namespace is as new (criu-sandbox(8) makes one at release)
	if (!o.switch_deps.empty())
		root.ipc_is_new(std::move(ahead.new_ipc));
	root.run_and_exit();
}

// The requests a prepared root can serve: no namespace criu would enter
// before creating the root but a sandbox's (the root enters those itself),
// nothing of the client's to inherit.
bool prepared_fits(const Options &o, const ImageDir &dir)
{
	struct stat st;
	// (the root parses the command line: an RPC request has one only when
	// the spare that made the root serves it, see spare.h)
	return (!o.switch_to.empty() || fstatat(dir.fd(), "external-ns", &st, 0) < 0) && !o.restore_sibling &&
	       o.inherit_fds.empty() && o.root.empty() && !o.argv.empty();
}

Result<pid_t> restore_prepared(const Options &o, const ImageDir &dir, timespec t0)
{
	PreparedRoot &p = *g_prepared;
	pr_info("Restoring PID %d through its root made ahead (PID %d here, %zu task(s))\n", p.tree.tasks[0].pid, p.pid,
		p.tree.tasks.size());
	TRY(notify(o, "pre-restore", 0));
	std::string blob;
	for (auto &a : o.argv)
		blob.append(a.c_str(), a.size() + 1);
	GoHeader h{(uint32_t)blob.size(), log::fd()};
	std::optional<CgroupTarget> cg;
	std::vector<Fd> cgroup_files;  // open until the root took them
	// The root parses the command line and opens the sandbox while we check
	// the sandbox and set its limits: both at once, on two CPUs.
	auto go = [&]() -> Status {
		TRY(write_all(p.go.get(), &h, sizeof(h), "the go"));
		TRY(write_all(p.go.get(), blob.data(), blob.size(), "the command line"));
		auto cgr = restore_cgroups(o);
		if (!cgr)
			return cgr.error();
		cg = std::move(*cgr);
		SandboxGo sg{};
		if (cg) {
			TRY(cg->apply_limits(dir));
			auto files = cg->join_files();
			if (!files)
				return files.error();
			cgroup_files = std::move(*files);
			if (cgroup_files.size() > std::size(sg.cgroup_files))
				return Error{strfmt("more than %zu cgroups to join", std::size(sg.cgroup_files))};
			for (size_t i = 0; i < cgroup_files.size(); i++)
				sg.cgroup_files[i] = cgroup_files[i].get();
			sg.n_cgroups = cgroup_files.size();
		}
		return write_all(p.go.get(), &sg, sizeof(sg), "the second go");
	};
	return trace_tree(o, p.tree, dir, p.report.get(), p.pid, nullptr, go, nullptr, t0);
}

// ---------------------------------------------------------- a thin root

// A root made ahead can run no criu code after its go when criu can do for
// it all it would do before its blob (ChildSide::run()): a tree of one task
// (no children to create), no tty and no unix socket (a socket's peer
// credentials would be criu's), no SysV object to create (its creator would
// be criu). It then enters its blob before the request comes, which
// replaces criu's address space there and waits for the go (rst_args::
// go_fd); criu fills in the rest of the region, shared with it, and lists
// for the blob what only the task can do itself (rst_op): take criu's fds
// of its files (pidfd_getfd), enter the sandbox's namespaces, chroot,
// chdir, umask, setsid. Unmapping criu took 0.2-0.27 ms of each restore's
// path (Documentation/switch.md).
bool thin_fits(const TreeImages &tree, const std::optional<IpcImages> &ipc)
{
	if (tree.tasks.size() != 1 || tree.tasks[0].zombie || (ipc && ipc->objects()))
		return false;
	return std::none_of(tree.tasks[0].fds.begin(), tree.tasks[0].fds.end(), [&](auto &e) {
		auto type = tree.files.find(e->id)->type;
		return type == FD_TYPES__TTY || type == FD_TYPES__UNIXSK;
	});
}

// In the thin root, from its creation: it makes its session or process
// group if it led one (setsid() costs 0.03 ms: a new autogroup), keeps
// only its go fd and our pidfd open, and jumps into the blob.
[[noreturn]] void enter_blob_ahead(const RestorerRegion &r, const TaskImages &ti, int go_fd, int pidfd)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, nullptr);
	if ((ti.pstree->sid == (uint32_t)ti.pid && setsid() < 0) ||
	    (ti.pstree->sid != (uint32_t)ti.pid && ti.pstree->pgid == (uint32_t)ti.pid && setpgid(0, 0) < 0))
		_exit(1);
	int lo = std::min(go_fd, pidfd), hi = std::max(go_fd, pidfd);
	if ((lo > 0 && close_range(0, lo - 1, 0) < 0) || (hi > lo + 1 && close_range(lo + 1, hi - 1, 0) < 0) ||
	    close_range(hi + 1, ~0U, 0) < 0 || !unregister_rseq())
		_exit(1);
	jump_into(r);
}

// Makes the thin root of p (prepare_root()).
Status make_thin_root(PreparedRoot &p)
{
	TaskImages &ti = p.tree.tasks[0];
	int min_fd = p.tree.min_service_fd;
	// (a new region each time: a root's blob writes into its region)
	p.region.reset();
	auto region = RestorerRegion::make(region_task(p.tree, ti, true), true);
	if (!region)
		return region.error();
	p.region.emplace(std::move(*region));
	// the VMAs as held now: the blob unmaps everything else before its go
	TRY(p.region->finish(ti.mem, -1, -1, {}, {}));
	Fd go_rd, go_wr, rep_rd, rep_wr;
	TRY(high_pipe(min_fd, 0, go_rd, go_wr));
	TRY(high_pipe(min_fd, 0, rep_rd, rep_wr));
	// made here: PIDs of criu's namespace mean nothing in the root's
	Fd pidfd((int)syscall(SYS_pidfd_open, getpid(), 0));
	if (!pidfd.valid() || !(pidfd = Fd(fcntl(pidfd.get(), F_DUPFD_CLOEXEC, min_fd))).valid())
		return sys_error("can't open a pidfd of criu");
	p.region->wait_for_go(go_rd.get(), pidfd.get());
	pid_t vpid = ti.pid;
	pid_t pid = clone_with_pid(vpid, false, p.tree.ns.clone_flags());
	if (pid < 0)
		return sys_error("can't create PID %d", vpid);
	if (pid == 0)
		enter_blob_ahead(*p.region, ti, go_rd.get(), pidfd.get());
	p.pid = pid;
	p.go = std::move(go_wr);
	p.report = std::move(rep_rd);
	p.report_wr = std::move(rep_wr);
	p.child_go = std::move(go_rd);
	p.child_pidfd = std::move(pidfd);
	if (p.tree.ns.ipc && !p.fresh_ipc) {
		// what a new ipc namespace holds: the root's is one
		JoinedNs j;
		TRY(j.join_task(pid, CLONE_NEWIPC));
		auto v = IpcVars::read();
		if (!v)
			return v.error();
		p.fresh_ipc.emplace(std::move(*v));
	}
	pr_debug("PID %d made ahead as %d, waiting in its restorer\n", vpid, pid);
	return {};
}

// What criu opens for a thin root, kept open until the root took it, and
// the root's fd numbers for it (its service fds, closed by its blob).
struct ThinSetup {
	std::vector<Fd> ours;
	std::vector<int> close_fds;
	int next;

	explicit ThinSetup(const PreparedRoot &p) : next(p.tree.min_service_fd)
	{
		close_fds = {p.child_go.get(), p.child_pidfd.get()};
	}
	// The root's number for fd (ours): ops gets the take.
	int place(int fd, std::vector<rst_op> &ops)
	{
		while (std::count(close_fds.begin(), close_fds.end(), next))
			next++;
		rst_op op{};
		op.kind = RST_OP_TAKE_FD;
		op.fd = fd;
		op.arg = next;
		op.flags = O_CLOEXEC;
		ours.emplace_back(fd);
		ops.push_back(op);
		close_fds.push_back(next);
		return next++;
	}
};

// The root joins the cgroups itself, first (see RST_OP_JOIN_CGROUP),
// through criu's fds of their tasks files.
Status thin_cgroups(const ImageDir &dir, CgroupTarget &cg, ThinSetup &s, std::vector<rst_op> &ops)
{
	TRY(cg.apply_limits(dir));
	auto files = cg.join_files();
	if (!files)
		return files.error();
	for (auto &f : *files) {
		rst_op op{};
		op.kind = RST_OP_JOIN_CGROUP;
		op.fd = s.place(f.release(), ops);
		ops.push_back(op);
	}
	return {};
}

// In the namespaces the root will have (JoinedNs: a --switch sandbox's, or
// the new uts and ipc ones the root was made in): what the root would do
// there itself before its blob, and the opening of its files; ops gets the
// rest of its setup.
Result<RegionFds> thin_in_namespaces(const Options &o, PreparedRoot &p, JoinedNs &joined, ThinSetup &s, Inherited &inh,
				     std::vector<rst_op> &ops)
{
	TaskImages &ti = p.tree.tasks[0];
	std::vector<rst_op> ns_ops;
	if (o.switch_to.empty()) {
		TRY(joined.join_task(p.pid, (p.tree.ns.uts ? CLONE_NEWUTS : 0) | (p.tree.ns.ipc ? CLONE_NEWIPC : 0)));
		if (p.tree.ns.uts)
			TRY(restore_uts(p.dir, ti.ids->uts_ns_id));
	} else {
		for (auto &[fd, kind] : joined.entered()) {
			int dup = fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
			if (dup < 0)
				return sys_error("can't dup a namespace fd");
			rst_op op{};
			op.kind = RST_OP_SETNS;
			op.fd = s.place(dup, ops);
			op.arg = kind;
			ns_ops.push_back(op);
		}
	}
	// (a released sandbox's ipc namespace is as new, see criu-sandbox(8))
	if (p.ipc)
		TRY(p.ipc->restore(o.switch_to.empty() || !o.switch_deps.empty() ? &*p.fresh_ipc : nullptr));
	TRY(prepare_inherited(o, p.tree, inh));
	auto rfds = open_region_fds(p.tree, ti, p.dir.fd(), inh.shmem, [&](int fd) { return s.place(fd, ops); });
	if (!rfds)
		return rfds.error();
	auto fds = fd_ops(p.tree.files, ti.fds, inh.files, ti.epolls_owned);
	if (!fds)
		return fds.error();
	for (auto op : *fds) {
		if (op.kind == RST_OP_DUP3)
			op.kind = RST_OP_TAKE_FD;
		ops.push_back(op);
	}
	ops.insert(ops.end(), ns_ops.begin(), ns_ops.end());  // mnt last
	add_fs_ops(ops, *rfds, *ti.fs);			      // after setns(mnt): it moves root and cwd
	return rfds;
}

// Everything before the go: the region finished, the root's setup in it.
// We are left in the namespaces the root will have (joined).
Status thin_setup(const Options &o, const ImageDir &dir, PreparedRoot &p, ThinSetup &s, Inherited &inh,
		  std::optional<JoinedNs> &joined)
{
	std::vector<rst_op> ops;
	auto j = JoinedNs::enter(o, {});  // the cgroups, the sandbox's namespaces and deps
	if (!j)
		return j.error();
	joined.emplace(std::move(*j));
	if (auto &cg = joined->cgroups())
		TRY(thin_cgroups(dir, *cg, s, ops));
	auto rfds = thin_in_namespaces(o, p, *joined, s, inh, ops);
	if (!rfds)
		return rfds.error();
	return p.region->finish(p.tree.tasks[0].mem, rfds->pages, rfds->exe, s.close_fds, ops);
}

Result<pid_t> restore_thin(const Options &o, const ImageDir &dir, timespec t0)
{
	PreparedRoot &p = *g_prepared;
	pid_t vpid = p.tree.tasks[0].pid;
	pr_info("Restoring PID %d through its root made ahead (PID %d here, waiting in its restorer)\n", vpid, p.pid);
	TRY(notify(o, "pre-restore", 0));
	ThinSetup s(p);
	Inherited inh;
	std::optional<JoinedNs> joined;
	if (auto st = thin_setup(o, dir, p, s, inh, joined); !st) {
		joined.reset();
		inh.release();
		kill(p.pid, SIGKILL);
		waitpid(p.pid, nullptr, 0);
		return st.error();
	}
	ChildReport rep{};
	rep.pid = vpid;
	rep.ok = 1;
	rep.region_start = p.region->start();
	rep.region_len = p.region->len();
	rep.args = p.region->args_addr();
	auto go = [&]() -> Status {
		TRY(write_all(p.report_wr.get(), &rep, sizeof(rep), "the root's report"));
		auto st = write_all(p.go.get(), "g", 1, "the go");
		joined.reset();	 // (while the root works: the tracer needs our /proc)
		return st;
	};
	auto r = trace_tree(o, p.tree, dir, p.report.get(), p.pid, nullptr, go, nullptr, t0);
	inh.release();
	return r;
}

}  // namespace

std::optional<Result<pid_t>> restore_ahead(const Options &o, const ImageDir &dir, timespec t0)
{
	if (g_prepared && g_prepared->pid > 0) {
		// (our child: still there unless someone killed it)
		int status = 0;
		bool alive = waitpid(g_prepared->pid, &status, WNOHANG) == 0;
		if (!alive)
			pr_info("The root made ahead (PID %d) is gone (%s): restoring without it\n", g_prepared->pid,
				WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "it exited");
		if (alive && prepared_fits(o, dir)) {
			auto r = g_prepared->thin ? restore_thin(o, dir, t0) : restore_prepared(o, dir, t0);
			// used: the next restore makes its own root
			g_prepared->pid = -1;
			g_prepared->go.reset();
			g_prepared->report.reset();
			return r;
		}
		kill(g_prepared->pid, SIGKILL);
		waitpid(g_prepared->pid, nullptr, 0);
		g_prepared.reset();
	}
	return std::nullopt;
}

Result<bool> prepare_root(const std::vector<HeldRange> &held, int images_dir_fd)
{
	if (!g_prepared) {
		auto dir = ImageDir::from_fd(images_dir_fd, "the template's images");
		if (!dir)
			return dir.error();
		auto tree = read_images(*dir, *dir, held);
		if (!tree)
			return tree.error();
		// Outside a pid namespace of its own the root would hold the
		// dump's PID while it waits, for everyone to see (and kill).
		if (!tree->ns.pid || tree->ns.net || tree->ns.mnt)
			return false;
		g_prepared.emplace(PreparedRoot{std::move(*dir), std::move(*tree), held});
		PreparedRoot &p = *g_prepared;
		p.tree.pages = &p.dir;
		if (p.tree.ipc_objects) {
			auto ipc = IpcImages::read(p.dir, p.tree.tasks[0].ids->ipc_ns_id);
			if (!ipc)
				return ipc.error();
			p.ipc.emplace(std::move(*ipc));
		}
		p.thin = thin_fits(p.tree, p.ipc);
	}
	PreparedRoot &p = *g_prepared;
	if (p.pid > 0)
		return true;
	if (p.thin) {
		TRY(make_thin_root(p));
		return true;
	}
	pid_t vpid = p.tree.tasks[0].pid;
	RootPipes pipes;
	TRY(pipes.open(p.tree.min_service_fd));
	Inherited inh;
	pipes.hand_to(inh);
	pid_t criu = getpid();
	// The root takes criu's fds through it (no walk of /proc/PID/fd);
	// made here: PIDs of criu's namespace mean nothing in the root's.
	Fd criu_pidfd((int)syscall(SYS_pidfd_open, criu, 0));
	if (!criu_pidfd.valid())
		return sys_error("can't open a pidfd of criu");
	pid_t pid = clone_with_pid(vpid, false, p.tree.ns.clone_flags());
	if (pid < 0)
		return sys_error("can't create PID %d", vpid);
	if (pid == 0) {
		pipes.report.reset();
		pipes.go.reset();
		become_root(p, criu, pipes.go_child.get(), criu_pidfd.release(), inh);
	}
	p.pid = pid;
	p.go = std::move(pipes.go);
	p.report = std::move(pipes.report);
	pr_debug("PID %d made ahead as %d\n", vpid, pid);
	return true;
}

}  // namespace criu
