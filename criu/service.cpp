// The RPC service: `criu service --address PATH` and `criu swrk FD`, speaking
// CRIU's rpc.proto (criu_req/criu_resp, one message per SOCK_SEQPACKET
// packet), as libcriu, pycriu and go-criu expect.
//
// The service forks one worker per connection, so clients are served in
// parallel and a crash or a disconnect affects one request only. A worker
// (and swrk) serves one request, or more while they set keep_open, as
// libcriu expects: criu_restore_child() waits for swrk to exit before it
// closes the socket. Only root peers (SO_PEERCRED) are served: others get
// an error response. With --prepare N, spares made ahead serve restores of
// the image directories restored last (spare.h).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "image.h"
#include "log.h"
#include "net.h"
#include "options.h"
#include "plugin.h"
#include "proc.h"
#include "ptrace.h"
#include "rpc.pb-c.h"
#include "sandbox.h"
#include "spare.h"

#ifndef CRIU_VERSION_MAJOR
#define CRIU_VERSION_MAJOR 3
#define CRIU_VERSION_MINOR 17
#endif

namespace criu
{

namespace
{

constexpr size_t kMaxMsg = 1 << 20;

class Connection
{
public:
	explicit Connection(int fd) : fd_(fd) {}

	Status identify()
	{
		auto cr = peer_cred(fd_.get());
		if (!cr)
			return Error{"RPC peer: " + cr.error().msg};
		peer_pid_ = cr->pid;
		peer_uid_ = cr->uid;
		return {};
	}
	pid_t peer_pid() const { return peer_pid_; }
	int fd() const { return fd_.get(); }
	uid_t peer_uid() const { return peer_uid_; }

	// nullptr at the end of the connection.
	Result<PbPtr<CriuReq>> recv_req()
	{
		// Peek at the packet's size first: no big buffer per message.
		ssize_t n;
		do
			n = recv(fd_.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return sys_error("can't receive an RPC request");
		if (n == 0) {
			// an empty packet or the end of the connection: consume and look
			char c;
			if (recv(fd_.get(), &c, 1, 0) <= 0)
				return PbPtr<CriuReq>();
			return Error{"empty RPC request"};
		}
		if ((size_t)n > kMaxMsg) {
			char c;
			(void)recv(fd_.get(), &c, 1, 0);  // drop it
			return Error{strfmt("RPC request of %zd bytes is larger than %zu", n, kMaxMsg)};
		}
		std::string buf(n, '\0');
		if (recv(fd_.get(), buf.data(), buf.size(), 0) != n)
			return sys_error("can't receive an RPC request");
		auto *req = criu_req__unpack(nullptr, n, reinterpret_cast<uint8_t *>(buf.data()));
		if (!req)
			return Error{strfmt("malformed RPC request (%zd bytes that are not a criu_req)", n)};
		return PbPtr<CriuReq>(req);
	}

	Status send_resp(const CriuResp &r)
	{
		std::string buf(criu_resp__get_packed_size(&r), '\0');
		criu_resp__pack(&r, reinterpret_cast<uint8_t *>(buf.data()));
		if (send(fd_.get(), buf.data(), buf.size(), MSG_NOSIGNAL) != (ssize_t)buf.size())
			return sys_error("can't send the RPC response");
		return {};
	}

private:
	Fd fd_;
	pid_t peer_pid_ = 0;
	uid_t peer_uid_ = (uid_t)-1;
};

Status send_error(Connection &c, CriuReqType type, const std::string &msg)
{
	CriuResp r = CRIU_RESP__INIT;
	r.type = type;
	r.success = false;
	r.has_cr_errno = true;
	r.cr_errno = EINVAL;
	r.cr_errmsg = const_cast<char *>(msg.c_str());
	return c.send_resp(r);
}

// Fields of criu_opts whose features this criu does not have.
Status refuse_unsupported(const CriuOpts &o)
{
	struct {
		bool set;
		const char *name;
	} unsupported[] = {
	    {o.has_ext_unix_sk && o.ext_unix_sk, "ext_unix_sk"},
	    {o.has_tcp_established && o.tcp_established, "tcp_established"},
	    {o.has_evasive_devices && o.evasive_devices, "evasive_devices"},
	    {o.has_file_locks && o.file_locks, "file_locks"},
	    {o.ps != nullptr, "ps (page server)"},
	    {o.parent_img != nullptr, "parent_img"},
	    {o.has_track_mem && o.track_mem, "track_mem"},
	    {o.has_auto_dedup && o.auto_dedup, "auto_dedup"},
	    {o.has_link_remap && o.link_remap, "link_remap"},
	    {o.n_exec_cmd > 0, "exec_cmd"},
	    {o.has_manage_cgroups && o.manage_cgroups, "manage_cgroups"},
	    {o.has_empty_ns && o.empty_ns, "empty_ns"},
	    {o.freeze_cgroup != nullptr, "freeze_cgroup"},
	    {o.has_lazy_pages && o.lazy_pages, "lazy_pages"},
	    {o.has_status_fd != 0, "status_fd"},
	    {o.has_orphan_pts_master && o.orphan_pts_master, "orphan_pts_master"},
	    {o.config_file != nullptr, "config_file"},
	    {o.has_tcp_close && o.tcp_close, "tcp_close"},
	    {o.has_tls && o.tls, "tls"},
	};
	for (auto &u : unsupported)
		if (u.set)
			return Error{strfmt("RPC option %s is not supported by this criu yet", u.name)};
	// Fields our rpc.proto does not have are CRIU options we do not know:
	// refuse them rather than ignore them.
	if (o.base.n_unknown_fields)
		return Error{strfmt("RPC option field %u of criu_opts is not supported by this criu",
				    o.base.unknown_fields[0].tag)};
	return {};
}

std::vector<std::string> restore_argv(const Options &o);

class Worker
{
public:
	Worker(Connection &c, const Options &base, bool swrk, SparePool *spares = nullptr, HeldMemory *held = nullptr)
	    : c_(c), base_(base), swrk_(swrk), spares_(spares), held_(held)
	{
	}

	// Serves one request (first, if the worker had it already), or more
	// while they ask for keep_open.
	int serve(PbPtr<CriuReq> first = {});

private:
	bool handed_over(const CriuReq &req);
	Result<bool> handed_to_holder(const CriuReq &req);
	Status restore(const CriuReq &req, CriuResp &r);
	Result<Options> options(const CriuReq &req);
	Status template_options(Options &o, const CriuOpts &ro);
	Status handle(const CriuReq &req);
	Status notify_client(const std::string &script, pid_t pid);

	Connection &c_;
	const Options &base_;
	bool swrk_;
	SparePool *spares_;
	HeldMemory *held_;  // a spare's memory, for its first restore
};

// A worker looks for the spare of its first request's images; nothing
// carried by the request but the images matters to the spare.
bool Worker::handed_over(const CriuReq &req)
{
	return req.type == CRIU_REQ_TYPE__RESTORE && req.opts && !req.opts->mm_template &&
	       spares_->hand_over(strfmt("/proc/%d/fd/%d", c_.peer_pid(), req.opts->images_dir_fd), c_.fd(), req);
}

// A restore from a template goes to a worker of the template's holder with
// its connection: that worker has the memory and the root made ahead, and
// answers the client itself (no relay through this process). This process
// ends once that worker did (the plugin waits): the service forks its next
// worker only then, not while the restore runs.
Result<bool> Worker::handed_to_holder(const CriuReq &req)
{
	if (swrk_ || held_ || req.type != CRIU_REQ_TYPE__RESTORE || !req.opts || !req.opts->mm_template)
		return false;
	std::string buf(criu_req__get_packed_size(&req), '\0');
	criu_req__pack(&req, reinterpret_cast<uint8_t *>(buf.data()));
	pr_info("Handing the RESTORE from template %s, with its connection, to its holder\n", req.opts->mm_template);
	// (false: no plugin handles templates; restore_from_template() says so)
	return plugins::rpc_hand_over(req.opts->mm_template, c_.fd(), buf);
}

Result<Options> Worker::options(const CriuReq &req)
{
	Options o = base_;
	o.notify_cb = nullptr;
	if (!req.opts)
		return Error{"RPC request has no opts"};
	const CriuOpts &ro = *req.opts;
	TRY(refuse_unsupported(ro));
	// The client's fds, seen through /proc: valid for service and swrk alike.
	// On a template's socket, images_dir_fd -1 means the template's own
	// copy of the dump: nothing of the client's to check, nor to log into.
	bool own = ro.images_dir_fd < 0 && held_ && !held_->own_images.empty();
	o.images_dir = own ? held_->own_images : strfmt("/proc/%d/fd/%d", c_.peer_pid(), ro.images_dir_fd);
	o.work_dir = ro.has_work_dir_fd ? strfmt("/proc/%d/fd/%d", c_.peer_pid(), ro.work_dir_fd)
		     : own		? ""
					: o.images_dir;
	o.pid = ro.has_pid ? ro.pid : c_.peer_pid();
	o.leave_running = ro.has_leave_running && ro.leave_running;
	o.shell_job = ro.has_shell_job && ro.shell_job;
	o.verbosity = ro.has_log_level ? ro.log_level : 2;
	o.log_file = ro.log_file ? ro.log_file : "";
	if (o.log_file.find('/') != std::string::npos)
		return Error{"RPC log_file must be a plain name (use work_dir_fd for its directory)"};
	if (!o.log_file.empty() && o.work_dir.empty())
		return Error{"RPC log_file needs work_dir_fd when images_dir_fd is -1 (the template's images)"};
	if (ro.has_timeout && ro.timeout) {
		if (ro.timeout > 86400)
			return Error{strfmt("RPC timeout %u: at most 86400 s", ro.timeout)};
		o.timeout = ro.timeout;
	}
	o.restore_sibling = ro.has_rst_sibling && ro.rst_sibling;
	if (o.restore_sibling && !swrk_)
		return Error{
		    "rst_sibling is for criu swrk only: over the service socket the task would be the service's child"};
	if (ro.n_inherit_fd) {
		// the client's very file, as it passed it (same access mode and offset)
		Fd pidfd(syscall(SYS_pidfd_open, c_.peer_pid(), 0));
		if (!pidfd.valid())
			return sys_error("inherit_fd: can't reach the client PID %d", c_.peer_pid());
		for (size_t i = 0; i < ro.n_inherit_fd; i++) {
			int fd = syscall(SYS_pidfd_getfd, pidfd.get(), ro.inherit_fd[i]->fd, 0);
			if (fd < 0)
				return sys_error("inherit_fd: can't take fd %d of the client", ro.inherit_fd[i]->fd);
			o.inherit_fds.emplace_back(ro.inherit_fd[i]->key, fd);
		}
	}
	if (ro.has_notify_scripts && ro.notify_scripts)
		o.notify_cb = [this](const std::string &script, pid_t pid) { return notify_client(script, pid); };
	for (size_t i = 0; i < ro.n_external; i++)
		TRY(add_external(o, ro.external[i]));
	for (size_t i = 0; i < ro.n_veths; i++) {
		auto veth = parse_veth_pair(std::string(ro.veths[i]->if_in) + "=" + ro.veths[i]->if_out);
		if (!veth)
			return veth.error();
		o.veths.push_back(*veth);
	}
	if (ro.switch_sandbox)
		o.switch_to = ro.switch_sandbox;
	if (ro.switch_deps) {
		if (ro.switch_deps[0] != '/')
			return Error{strfmt("switch_deps wants an absolute path, not '%s'", ro.switch_deps)};
		o.switch_deps = ro.switch_deps;
	}
	for (size_t i = 0; i < ro.n_cg_root; i++) {
		auto r = parse_cgroup_root(std::string(ro.cg_root[i]->ctrl ? ro.cg_root[i]->ctrl : "") +
					   (ro.cg_root[i]->ctrl ? ":" : "") + ro.cg_root[i]->path);
		if (!r)
			return r.error();
		o.cgroup_roots.push_back(*r);
	}
	if (ro.root)
		o.root = ro.root;
	if (held_ && !held_->template_name.empty()) {
		// the template's own socket: its restore, here, with its memory
		if (ro.mm_template && held_->template_name != ro.mm_template)
			return Error{strfmt("this socket serves template %s, not %s", held_->template_name.c_str(),
					    ro.mm_template)};
		TRY(held_->check_images(own ? "" : o.images_dir));
		o.held = held_->ranges;
		o.pages_dir_fd = held_->dir_fd;
		o.argv = restore_argv(o);
	} else if (ro.mm_template)
		TRY(template_options(o, ro));
	else if (held_ && held_->serves(o.images_dir)) {
		o.held = held_->ranges;
		o.pages_dir_fd = held_->dir_fd;
		o.argv = restore_argv(o);  // for the spare's root made ahead, if any
	}
	return o;
}

// mm_template: the restore is done by a worker of the template's holder,
// which runs it as a command line; what that cannot carry is refused.
Status Worker::template_options(Options &o, const CriuOpts &ro)
{
	if (o.restore_sibling || ro.n_inherit_fd || o.notify_cb)
		return Error{"mm_template restores take no rst_sibling, inherit_fd or notify_scripts"};
	o.mm_template = ro.mm_template;
	o.restore_detached = true;
	o.argv = restore_argv(o);
	o.argv.insert(o.argv.end(), {"--mm-template", o.mm_template});
	return {};
}

// The request as a `criu restore` command line, for a process that runs it
// (a template holder's worker, a root made ahead): what it can carry.
std::vector<std::string> restore_argv(const Options &o)
{
	std::vector<std::string> argv = {"criu", "restore",    "-d",
					 "-D",	 o.images_dir, "-v" + std::to_string(o.verbosity)};
	if (!o.log_file.empty())
		argv.insert(argv.end(), {"-o", o.work_dir + "/" + o.log_file});
	if (o.shell_job)
		argv.push_back("-j");
	if (!o.switch_to.empty())
		argv.insert(argv.end(), {"--switch", o.switch_to});
	if (!o.switch_deps.empty())
		argv.insert(argv.end(), {"--switch-deps", o.switch_deps});
	for (auto &r : o.cgroup_roots)
		argv.insert(argv.end(), {"--cgroup-root", (r.ctrl.empty() ? "" : r.ctrl + ":") + r.path});
	for (auto &v : o.veths)
		argv.insert(argv.end(), {"--veth-pair", v.in + "=" + v.out + (v.bridge.empty() ? "" : "@" + v.bridge)});
	return argv;
}

// Tells the client a step is reached and waits for its go-ahead.
Status Worker::notify_client(const std::string &script, pid_t pid)
{
	CriuResp r = CRIU_RESP__INIT;
	CriuNotify n = CRIU_NOTIFY__INIT;
	r.type = CRIU_REQ_TYPE__NOTIFY;
	r.success = true;
	n.script = const_cast<char *>(script.c_str());
	n.has_pid = pid != 0;
	n.pid = pid;
	r.notify = &n;
	TRY(c_.send_resp(r));
	auto ack = c_.recv_req();
	if (!ack)
		return ack.error();
	if (!*ack)
		return Error{"the RPC client went away during notification " + script};
	if ((*ack)->type != CRIU_REQ_TYPE__NOTIFY || !(*ack)->has_notify_success || !(*ack)->notify_success)
		return Error{"the RPC client failed notification " + script};
	return {};
}

Status Worker::restore(const CriuReq &req, CriuResp &r)
{
	auto o = options(req);
	if (!o)
		return o.error();
	log::init(o->verbosity, o->log_file.empty() ? "" : o->work_dir + "/" + o->log_file, o->log_pid);
	plugins::set_options(&*o);
	auto pid = o->mm_template.empty() ? restore_task(*o) : restore_from_template(*o);
	plugins::set_options(&base_);
	for (auto &[key, fd] : o->inherit_fds)
		::close(fd);
	if (!pid)
		return pid.error();
	Fd dir;
	if (spares_ && spares_->enabled() && o->mm_template.empty())
		dir.reset(::open(o->images_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	CriuRestoreResp rr = CRIU_RESTORE_RESP__INIT;
	rr.pid = *pid;
	r.restore = &rr;
	auto st = c_.send_resp(r);
	r.restore = nullptr;
	// after the answer: the next spare's reading is off this restore's path
	if (spares_)
		spares_->restored(std::move(dir));
	return st;
}

Status Worker::handle(const CriuReq &req)
{
	CriuResp r = CRIU_RESP__INIT;
	r.type = req.type;
	r.success = true;
	switch (req.type) {
	case CRIU_REQ_TYPE__DUMP: {
		auto o = options(req);
		if (!o)
			return o.error();
		if (!o->cgroup_roots.empty())
			return Error{"cg_root is a restore option here (criu dumps no cgroup tree)"};
		log::init(o->verbosity, o->log_file.empty() ? "" : o->work_dir + "/" + o->log_file, o->log_pid);
		TRY(dump_task(*o));
		CriuDumpResp d = CRIU_DUMP_RESP__INIT;
		r.dump = &d;
		return c_.send_resp(r);
	}
	case CRIU_REQ_TYPE__RESTORE:
		return restore(req, r);
	case CRIU_REQ_TYPE__CHECK:
		if (!check_kernel(nullptr))
			return Error{"kernel lacks features dump or restore need (run criu check)"};
		return c_.send_resp(r);
	case CRIU_REQ_TYPE__VERSION: {
		CriuVersion v = CRIU_VERSION__INIT;
		v.major_number = CRIU_VERSION_MAJOR;
		v.minor_number = CRIU_VERSION_MINOR;
		v.name = const_cast<char *>("criu-cpp");
		r.version = &v;
		return c_.send_resp(r);
	}
	case CRIU_REQ_TYPE__FEATURE_CHECK: {
		// Report every asked feature as absent: none is implemented yet.
		CriuFeatures f = CRIU_FEATURES__INIT;
		if (req.features) {
			f.has_mem_track = req.features->has_mem_track;
			f.has_lazy_pages = req.features->has_lazy_pages;
			f.has_pidfd_store = req.features->has_pidfd_store;
		}
		r.features = &f;
		return c_.send_resp(r);
	}
	case CRIU_REQ_TYPE__PREPARE: {
		if (!req.opts)
			return Error{"PREPARE request has no opts"};
		auto path = strfmt("/proc/%d/fd/%d", c_.peer_pid(), req.opts->images_dir_fd);
		Fd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (!dir.valid())
			return sys_error("PREPARE: can't open the image directory (images_dir_fd %d of PID %d)",
					 req.opts->images_dir_fd, c_.peer_pid());
		TRY(spares_ ? spares_->prepare(std::move(dir))
			    : Status(Error{"PREPARE is for criu service --prepare"}));
		return c_.send_resp(r);
	}
	case CRIU_REQ_TYPE__WAIT_PID: {
		if (!req.has_pid)
			return Error{"WAIT_PID request without a pid"};
		int status;
		if (waitpid(req.pid, &status, 0) < 0)
			return sys_error("can't wait for PID %u", req.pid);
		r.has_status = true;
		r.status = status;
		return c_.send_resp(r);
	}
	default:
		return Error{strfmt("RPC request type %d is not supported by this criu", req.type)};
	}
}

int Worker::serve(PbPtr<CriuReq> first)
{
	if (auto st = c_.identify(); !st) {
		pr_err("%s\n", st.error().msg.c_str());
		return 1;
	}
	if (c_.peer_uid() != 0) {
		// refused before anything of the request is looked at
		auto msg = strfmt("RPC peer PID %d runs as uid %u: only root is served", c_.peer_pid(), c_.peer_uid());
		pr_err("%s\n", msg.c_str());
		auto req = c_.recv_req();
		(void)send_error(c_, req && *req ? (*req)->type : CRIU_REQ_TYPE__EMPTY, msg);
		return 1;
	}
	// a worker's first request may go to a spare; a spare's may not
	bool may_hand_over = spares_ && spares_->enabled() && !held_;
	for (;; may_hand_over = false) {
		auto req = first ? Result<PbPtr<CriuReq>>(std::move(first)) : c_.recv_req();
		if (!req) {
			// a malformed message gets an answer; the connection goes on
			pr_err("%s\n", req.error().msg.c_str());
			if (!send_error(c_, CRIU_REQ_TYPE__EMPTY, req.error().msg))
				return 1;
			continue;
		}
		if (!*req)
			return 0;
		if (may_hand_over && handed_over(**req))
			return 0;
		auto to_holder = handed_to_holder(**req);
		if (to_holder && *to_holder)
			return 0;
		bool keep = (*req)->has_keep_open && (*req)->keep_open;
		auto st = to_holder ? handle(**req) : Status(to_holder.error());
		if (held_) {
			// A spare's memory serves its first request only. Dropped
			// after the answer: the root then has the only copy (until
			// then, a page it writes is copied). A template's holder
			// keeps a copy anyway: unmapping it here would only compete
			// for a CPU with the client reading its answer.
			if (held_->template_name.empty())
				held_->release();
			held_ = nullptr;
		}
		if (!st) {
			pr_err("%s\n", st.error().msg.c_str());
			if (!send_error(c_, (*req)->type, st.error().msg))
				return 1;
		}
		log::reset_first_error();
		// a failed dump's threads that never stopped are ours until we exit
		if (!keep || tracees_left()) {
			if (!swrk_)
				linger(c_.fd(), 1000);	// see util.h
			return 0;
		}
	}
}

volatile sig_atomic_t g_stop = 0;

void on_term(int)
{
	g_stop = 1;
}

Result<int> listen_on(const std::string &path)
{
	sockaddr_un sa{};
	sa.sun_family = AF_UNIX;
	if (path.size() >= sizeof(sa.sun_path))
		return Error{"service address too long: " + path};
	memcpy(sa.sun_path, path.c_str(), path.size() + 1);
	Fd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (!fd.valid())
		return sys_error("can't create the service socket");
	unlink(path.c_str());
	// 0600 from the start: no window where others could connect
	mode_t old = umask(0177);
	int r = bind(fd.get(), reinterpret_cast<sockaddr *>(&sa), sizeof(sa));
	umask(old);
	if (r < 0)
		return sys_error("can't bind the service socket %s", path.c_str());
	if (listen(fd.get(), 64) < 0)
		return sys_error("can't listen on %s", path.c_str());
	return fd.release();
}

// The next connection's worker, forked ahead: it waits in accept()
// itself, so that a client does not wait for a fork. It tells the main
// process once it took a connection (or the main process sees it die).
class Acceptor
{
public:
	bool ready() const { return ctl_.valid(); }
	int fd() const { return ctl_.get(); }
	// It took a connection or died: a pidfd of it, to see it end (-1 if
	// it is gone already).
	Fd gone()
	{
		ctl_.reset();
		return Fd(syscall(SYS_pidfd_open, std::exchange(pid_, -1), 0));
	}

	void start(int listener, SparePool &spares, const Options &o)
	{
		auto child = fork_linked("criu-idle");
		if (!child) {
			pr_err("%s\n", child.error().msg.c_str());
			usleep(100'000);  // (before the next try)
			return;
		}
		if (child->pid == 0) {
			spares.in_worker();
			_exit(serve_next(listener, std::move(child->end), spares, o));
		}
		ctl_ = std::move(child->end);
		pid_ = child->pid;
	}

private:
	static int serve_next(int listener, Fd ctl, SparePool &spares, const Options &o)
	{
		constexpr char kTook = 'A';
		own_pages_ahead();  // before any request: see proc.h
		for (;;) {
			pollfd fds[2] = {{listener, POLLIN, 0}, {ctl.get(), POLLIN, 0}};
			if (poll(fds, 2, -1) < 0 && errno != EINTR)
				return 1;
			if (fds[1].revents)
				return 0;  // the service stopped
			// (the listener does not block: another may have taken it)
			int cfd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
			if (cfd < 0)
				continue;
			(void)send(ctl.get(), &kTook, 1, MSG_NOSIGNAL);
			ctl.reset();
			::close(listener);
			prctl(PR_SET_NAME, "criu");
			Connection c(cfd);
			Worker w(c, o, false, &spares);
			return w.serve();
		}
	}

	Fd ctl_;  // the main process's end
	pid_t pid_ = -1;
};

}  // namespace

int cmd_swrk(const Options &o)
{
	if (o.swrk_fd < 0) {
		pr_err("swrk: a socket fd is needed (criu swrk FD)\n");
		return 1;
	}
	Connection c(o.swrk_fd);
	Worker w(c, o, true);
	return w.serve();
}

int serve_rpc_with(int conn_fd, HeldMemory &held, const void *first, size_t len)
{
	static const Options defaults;
	Connection c(conn_fd);
	Worker w(c, plugins::current_options() ? *plugins::current_options() : defaults, false, nullptr, &held);
	PbPtr<CriuReq> req;
	if (first) {
		// answered as a malformed message on the connection itself is
		req.reset(criu_req__unpack(nullptr, len, static_cast<const uint8_t *>(first)));
		if (!req) {
			auto msg = strfmt("malformed RPC request handed over (%zu bytes that are not a criu_req)", len);
			pr_err("%s\n", msg.c_str());
			(void)send_error(c, CRIU_REQ_TYPE__EMPTY, msg);
		}
	}
	return w.serve(std::move(req));
}

int cmd_service(const Options &o)
{
	std::string path = o.address.empty() ? "criu_service.socket" : o.address;
	auto lfd = listen_on(path);
	if (!lfd) {
		pr_err("%s\n", lfd.error().msg.c_str());
		return 1;
	}
	Fd listener(*lfd);
	if (o.daemon && daemon(1, 0) < 0) {
		pr_err("can't daemonize: %s\n", strerror(errno));
		return 1;
	}
	if (!o.pidfile.empty()) {
		auto tmp = o.pidfile + ".tmp";
		auto pid = std::to_string(getpid());
		Fd pf(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
		if (!pf.valid() || !write_all(pf.get(), pid.data(), pid.size(), tmp) ||
		    rename(tmp.c_str(), o.pidfile.c_str()) < 0) {
			pr_err("can't write pidfile %s: %s\n", o.pidfile.c_str(), strerror(errno));
			return 1;
		}
	}
	struct sigaction sa {
	};
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, nullptr);
	sigaction(SIGINT, &sa, nullptr);
	// caught only while waiting in ppoll(): a stop that comes meanwhile
	// is not lost between the check of g_stop and the wait
	sigset_t stop, waiting;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, &waiting);
	sigdelset(&waiting, SIGTERM);
	sigdelset(&waiting, SIGINT);
	struct sigaction chld {
	};
	chld.sa_handler = SIG_DFL;
	chld.sa_flags = SA_NOCLDWAIT;  // workers are reaped by the kernel
	sigaction(SIGCHLD, &chld, nullptr);
	SparePool spares(o.prepare, listener.get(),
			 [&o](SparePool &pool, int fd, PbPtr<CriuReq> first, HeldMemory &held) {
				 Connection c(fd);
				 Worker w(c, o, false, &pool, &held);
				 return w.serve(std::move(first));
			 });
	if (auto st = spares.open(); !st) {
		pr_err("%s\n", st.error().msg.c_str());
		return 1;
	}
	pr_info("Serving on %s\n", path.c_str());
	// The next worker is forked once the busy ones ended (they end after
	// their client hung up), not while one restores: on a 2-vCPU machine a
	// restore waited 0.3 ms for that fork. A connection that comes while
	// none is ready gets a worker forked at once.
	Acceptor next;
	std::vector<Fd> busy;  // pidfds of the workers that took a connection
	while (!g_stop) {
		if (!next.ready() && busy.empty())
			next.start(listener.get(), spares, o);
		std::vector<pollfd> fds{{next.ready() ? next.fd() : listener.get(), POLLIN, 0}};
		spares.add_pollfds(fds);
		size_t first_busy = fds.size();
		for (auto &b : busy)
			fds.push_back({b.get(), POLLIN, 0});
		if (ppoll(fds.data(), fds.size(), nullptr, &waiting) < 0) {
			if (errno != EINTR)
				pr_warn("poll on %s: %s\n", path.c_str(), strerror(errno));
			continue;
		}
		spares.handle(&fds[1]);
		for (size_t i = busy.size(); i-- > 0;)
			if (fds[first_busy + i].revents)
				busy.erase(busy.begin() + i);
		if (fds[0].revents && next.ready()) {
			if (Fd pidfd = next.gone(); pidfd.valid())
				busy.push_back(std::move(pidfd));
		} else if (fds[0].revents) {
			next.start(listener.get(), spares, o);
		}
	}
	unlink(path.c_str());
	pr_info("Service on %s stopped\n", path.c_str());
	return 0;
}

}  // namespace criu
