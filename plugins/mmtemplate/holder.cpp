#include "holder.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <vector>

#include "criu-plugin.h"

namespace mmt
{

namespace
{

constexpr uint32_t kMagic = 0x4d4d5450;	 // "MMTP"
constexpr int kMaxTries = 8;		 // re-executions for an address space layout
// kServe: a `criu service` hands over an RPC connection (the fd) whose
// request (the payload, a packed criu_req) restores from the template.
enum : uint32_t { kRestore = 1, kPing = 2, kQuit = 3, kServe = 4 };
// kEnded: no answer, the connection closed (not sent: what recv_rep()
// makes of that).
enum : int32_t { kOk = 0, kFailed = -1, kStale = 1, kEnded = 2 };
constexpr char kTook = 'T';  // spare -> holder: it took a restore
constexpr size_t kDefaultSpares = 2, kMaxSpares = 16;

// How many spares a holder keeps: $CRIU_MM_SPARES of whoever started it.
size_t spares_wanted()
{
	const char *env = getenv("CRIU_MM_SPARES");
	if (!env || !*env)
		return kDefaultSpares;
	char *end = nullptr;
	unsigned long n = strtoul(env, &end, 10);
	if (*end || n < 1 || n > kMaxSpares) {
		criu_log(2, "CRIU_MM_SPARES=%s is not 1..%zu: keeping %zu spares\n", env, kMaxSpares, kDefaultSpares);
		return kDefaultSpares;
	}
	return n;
}

struct Req {
	uint32_t magic, type;
	uint64_t generation;
	uint32_t argc, pad;
};

struct Rep {
	int32_t status, pid;
	char err[1024];
};

Result<sockaddr_un> unix_address(const std::string &path)
{
	sockaddr_un a{};
	a.sun_family = AF_UNIX;
	if (path.size() >= sizeof(a.sun_path))
		return Result<sockaddr_un>::fail(fmt("socket path %s is too long", path.c_str()));
	memcpy(a.sun_path, path.c_str(), path.size());
	return a;
}

Result<sockaddr_un> address(const Pool &p, const std::string &name)
{
	auto path = p.socket_path(name);
	if (!path)
		return Result<sockaddr_un>::fail(path.error());
	return unix_address(*path);
}

// Listens on path, for root only (a dead holder's socket there is ours to
// replace: we have the node lock). Non-blocking: the spare accepts too.
Result<Fd> listen_at(const std::string &path)
{
	auto a = unix_address(path);
	if (!a)
		return Result<Fd>::fail(a.error());
	unlink(a->sun_path);
	Fd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (!fd.valid() || bind(fd.get(), reinterpret_cast<sockaddr *>(&*a), sizeof(*a)) < 0 ||
	    chmod(a->sun_path, 0600) < 0 || listen(fd.get(), 64) < 0)
		return Result<Fd>::fail(sys("can't listen on %s", a->sun_path));
	return fd;
}

// The template's own CRIU RPC socket, beside the holder's.
Result<std::string> rpc_socket_path(const Pool &p, const std::string &name)
{
	auto path = p.socket_path(name);
	if (!path)
		return path;
	return *path + ".rpc";
}

Result<Fd> connect_to(const Pool &p, const std::string &name)
{
	auto a = address(p, name);
	if (!a)
		return Result<Fd>::fail(a.error());
	Fd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
	if (!s.valid() || connect(s.get(), reinterpret_cast<sockaddr *>(&*a), sizeof(*a)) < 0)
		return Result<Fd>::fail(sys("no holder at %s", a->sun_path));
	return s;
}

// One packet of data with up to two fds (SCM_RIGHTS); fds < 0 are left
// out (so the receiver gets -1 in their place when they are the last).
bool send_with_fds(int s, const std::string &data, std::initializer_list<int> fds)
{
	int valid[2], n = 0;
	for (int fd : fds)
		if (fd >= 0 && n < 2)
			valid[n++] = fd;
	iovec iov = {const_cast<char *>(data.data()), data.size()};
	msghdr mh{};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	char ctl[CMSG_SPACE(2 * sizeof(int))] = {};
	if (n) {
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), valid, n * sizeof(int));
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL) == (ssize_t)data.size();
}

// The next packet (at most 64 KiB) and up to two fds (invalid where none
// came); false at the end of the connection or on error. The buffer is
// sized to the packet, peeked first: zeroing 64 KiB of a heap that forked
// workers share cost 16 copy-on-write faults on a restore's path.
bool recv_with_fds(int s, std::string &data, Fd fds[2])
{
	ssize_t len;
	while ((len = recv(s, nullptr, 0, MSG_PEEK | MSG_TRUNC)) < 0 && errno == EINTR)
		;
	if (len <= 0)
		return false;
	data.assign(std::min<size_t>(len, 65536), '\0');
	iovec iov = {data.data(), data.size()};
	msghdr mh{};
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	char ctl[CMSG_SPACE(2 * sizeof(int))] = {};
	mh.msg_control = ctl;
	mh.msg_controllen = sizeof(ctl);
	ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	int got[2] = {-1, -1};
	if (cmsghdr *c = CMSG_FIRSTHDR(&mh); c && c->cmsg_type == SCM_RIGHTS)
		memcpy(got, CMSG_DATA(c), std::min<size_t>(2 * sizeof(int), c->cmsg_len - CMSG_LEN(0)));
	fds[0].reset(got[0]);
	fds[1].reset(got[1]);
	data.resize(n > 0 ? n : 0);
	return n > 0;
}

// The request's header, if buf has a well-formed one.
std::optional<Req> parse_req(const std::string &buf)
{
	Req r{};
	if (buf.size() < sizeof(Req))
		return std::nullopt;
	memcpy(&r, buf.data(), sizeof(r));
	return r.magic == kMagic ? std::optional<Req>(r) : std::nullopt;
}

Status send_req(int s, uint32_t type, uint64_t gen, const std::string &payload, int fd, uint32_t argc = 0)
{
	std::string msg(sizeof(Req), '\0');
	Req r{kMagic, type, gen, argc, 0};
	memcpy(msg.data(), &r, sizeof(r));
	msg += payload;
	if (msg.size() > 60000)
		return fail("the request is too long for the holder");
	if (!send_with_fds(s, msg, {fd}))
		return fail(sys("can't send a request to the holder"));
	return ok();
}

// argv as the payload of a kRestore.
std::string argv_blob(int argc, char **argv)
{
	std::string blob;
	for (int i = 0; i < argc; i++)
		blob.append(argv[i], strlen(argv[i]) + 1);
	return blob;
}

Result<Rep> recv_rep(int s)
{
	Rep rep{};
	ssize_t n;
	while ((n = recv(s, &rep, sizeof(rep), 0)) < 0 && errno == EINTR)
		;
	if (n == 0)
		return Rep{kEnded, 0, {}};
	if (n != (ssize_t)sizeof(rep))
		return Result<Rep>::fail(n < 0 ? sys("no answer from the holder") : "a short answer from the holder");
	rep.err[sizeof(rep.err) - 1] = 0;
	return rep;
}

Result<Rep> ask(const Pool &p, const std::string &name, uint32_t type, uint64_t gen)
{
	auto s = connect_to(p, name);
	if (!s)
		return Result<Rep>::fail(s.error());
	if (auto st = send_req(s->get(), type, gen, "", -1); !st)
		return Result<Rep>::fail(st.error());
	return recv_rep(s->get());
}

// The connection to the holder's worker that restored: the worker ends
// when it closes, so it stays open until this process ends. A service
// worker ends once its client has the answer: the worker's exit, and the
// next spare that the holder forks then, do not compete with the answer.
void keep_until_exit(Fd conn)
{
	static Fd kept;
	kept = std::move(conn);
}

// This plugin's directory, for the holder's -L.
std::string plugin_dir()
{
	Dl_info info{};
	if (!dladdr(reinterpret_cast<void *>(&plugin_dir), &info) || !info.dli_fname)
		return ".";
	std::string path = info.dli_fname;
	return dirname(path.data());
}

// Starts `criu mm-template hold NAME` detached (its own session, its log
// beside its socket) and waits until it holds the memory or fails.
Status spawn_holder(const Pool &p, const std::string &name)
{
	auto sock = p.socket_path(name);
	if (!sock)
		return fail(sock.error());
	std::string log = sock->substr(0, sock->size() - 5) + ".log";
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0)
		return fail(sys("can't create a pipe"));
	Fd rd(pp[0]), wr(pp[1]);
	std::vector<std::string> args = {"criu", "-L", plugin_dir(), "-o", log, "-v4", "mm-template", "hold", name};
	if (p.kind == "dax")
		args.insert(args.end(), {"--mem-pool", "dax", "--dax-device", p.dir});
	pid_t child = fork();
	if (child < 0)
		return fail(sys("can't fork the holder"));
	if (child == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		int fd = fcntl(wr.get(), F_DUPFD, 100);	 // survives exec
		setenv("CRIU_MM_READY_FD", std::to_string(fd).c_str(), 1);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0), dup2(null, 1), dup2(null, 2);
		std::vector<char *> av;
		for (auto &a : args)
			av.push_back(a.data());
		av.push_back(nullptr);
		execv("/proc/self/exe", av.data());
		_exit(127);
	}
	waitpid(child, nullptr, 0);
	wr.reset();
	std::string answer;
	char buf[1024];
	ssize_t n;
	while ((n = read(rd.get(), buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			answer.append(buf, n);
	if (answer.starts_with("OK"))
		return ok();
	return fail(answer.empty() ? fmt("the holder of %s died while starting (see %s)", name.c_str(), log.c_str())
				   : answer);
}

void tell_ready(const std::string &answer)
{
	const char *env = getenv("CRIU_MM_READY_FD");
	if (!env)
		return;
	int fd = atoi(env);
	ssize_t w = write(fd, answer.data(), answer.size());
	(void)w;
	close(fd);
	unsetenv("CRIU_MM_READY_FD");
}

// Another address space layout: run again (ASLR moves our own mappings).
void reexec()
{
	const char *env = getenv("CRIU_MM_HOLD_TRY");
	int tries = env ? atoi(env) : 0;
	if (tries >= kMaxTries)
		return;
	setenv("CRIU_MM_HOLD_TRY", std::to_string(tries + 1).c_str(), 1);
	std::ifstream f("/proc/self/cmdline", std::ios::binary);
	std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
	std::vector<char *> av;
	for (size_t i = 0; i < cmdline.size(); i += strlen(&cmdline[i]) + 1)
		av.push_back(&cmdline[i]);
	av.push_back(nullptr);
	criu_log(3, "template memory collides with the holder's own: re-executing (try %d)\n", tries + 1);
	execv("/proc/self/exe", av.data());
}

Status verify(int gen_fd, const Index &ix)
{
	for (auto &f : ix.files) {
		Fd fd(openat(gen_fd, f.name.c_str(), O_RDONLY | O_CLOEXEC));
		if (!fd.valid())
			return fail(sys("template %s: %s", ix.name.c_str(), f.name.c_str()));
		uint64_t size;
		auto sum = checksum_file(fd.get(), &size);
		if (!sum)
			return fail(sum.error());
		if (size != f.size || *sum != f.sum)
			return fail(fmt("template %s is corrupt: %s has %llu bytes and checksum %llx, the index says "
					"%llu and %llx",
					ix.name.c_str(), f.name.c_str(), (unsigned long long)size,
					(unsigned long long)*sum, (unsigned long long)f.size,
					(unsigned long long)f.sum));
	}
	return ok();
}

// Held (LOCK_EX) by the one holder of a template on this node for its life.
std::string holder_lock_path(const Pool &p, const std::string &name)
{
	auto sock = p.socket_path(name);
	return sock ? *sock + ".lock" : std::string();
}

// Is a holder of name starting or running on this node?
bool holder_alive(const Pool &p, const std::string &name)
{
	Fd l(open(holder_lock_path(p, name).c_str(), O_RDONLY | O_CLOEXEC));
	return l.valid() && flock(l.get(), LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

struct Holder {
	const Pool &pool;
	Index ix;
	Fd node_lock, gen_dir, lock, listen_fd, rpc_fd;
	cr_held_range *held = nullptr;
	unsigned nr_held = 0;
	std::string sock, rpc_sock;
	struct stat index_at {
	};  // the index this holder read (a convert replaces it)
	bool stale = false;

	// Workers hold the generation's lock too: it goes once they are done
	// (instances, also our children, are not waited for).
	std::vector<pid_t> workers;

	~Holder()
	{
		free(held);
		if (!sock.empty())
			unlink(sock.c_str());
		if (!rpc_sock.empty())
			unlink(rpc_sock.c_str());
		listen_fd.reset();
		rpc_fd.reset();
		// The next holder may start while our workers finish serving
		// their connections (a client may keep one open for long): they
		// hold the generation's lock, not the node's.
		node_lock.reset();
		spares.clear();	 // the spare workers end
		for (pid_t w : workers)
			waitpid(w, nullptr, 0);
		lock.reset();
		collect_garbage(pool, ix.name);
	}

	// false: another holder of name runs or starts on this node.
	Result<bool> take_node_lock(const std::string &name)
	{
		auto path = holder_lock_path(pool, name);
		node_lock.reset(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
		if (!node_lock.valid())
			return Result<bool>::fail(sys("can't open %s", path.c_str()));
		if (flock(node_lock.get(), LOCK_EX | LOCK_NB) == 0)
			return true;
		if (errno == EWOULDBLOCK)
			return false;
		return Result<bool>::fail(sys("can't lock %s", path.c_str()));
	}

	Status setup(const std::string &name)
	{
		if (stat(pool.index_path(name).c_str(), &index_at) < 0)
			return fail(sys("template %s", name.c_str()));
		auto x = read_index(pool, name);
		if (!x)
			return fail(x.error());
		ix = *x;
		gen_dir.reset(open(pool.gen_dir(name, ix.generation).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (!gen_dir.valid())
			return fail(
			    sys("template %s generation %llu", name.c_str(), (unsigned long long)ix.generation));
		lock.reset(openat(gen_dir.get(), ".lock", O_RDONLY | O_CLOEXEC));
		if (!lock.valid() || flock(lock.get(), LOCK_SH) < 0)
			return fail(sys("can't lock template %s", name.c_str()));
		if (auto st = verify(gen_dir.get(), ix); !st)
			return st;
		char err[1024] = "";
		int r = criu_template_hold(gen_dir.get(), gen_dir.get(), &held, &nr_held, err, sizeof(err));
		if (r == -EEXIST)
			reexec();
		if (r < 0)
			return fail(fmt("can't hold template %s: %s", name.c_str(), err));
		return listen_on(name);
	}

	Status listen_on(const std::string &name)
	{
		auto path = pool.socket_path(name);
		auto rpc = rpc_socket_path(pool, name);
		if (!path || !rpc)
			return fail(!path ? path.error() : rpc.error());
		auto l = listen_at(*path);
		if (!l)
			return fail(l.error());
		listen_fd = std::move(*l);
		sock = *path;
		auto r = listen_at(*rpc);
		if (!r)
			return fail(r.error());
		rpc_fd = std::move(*r);
		rpc_sock = *rpc;
		return ok();
	}

	// A request's images must be the ones this holder's generation was
	// made from; a convert since then (a new index) makes the holder
	// stale: it refuses and ends, and the next holder serves.
	static int check_images_cb(const char *dir, void *arg, char *err, size_t errlen)
	{
		auto *h = static_cast<Holder *>(arg);
		struct stat now;
		if (stat(h->pool.index_path(h->ix.name).c_str(), &now) < 0 || now.st_ino != h->index_at.st_ino ||
		    now.st_dev != h->index_at.st_dev) {
			h->stale = true;
			snprintf(err, errlen,
				 "template %s was converted again or deleted since its holder started: "
				 "ask for its socket again (criu mm-template socket %s)",
				 h->ix.name.c_str(), h->ix.name.c_str());
			return -ESTALE;
		}
		if (!*dir)
			return 0;  // the template's own copy
		auto st = check_images(h->ix, dir);
		if (st)
			return 0;
		snprintf(err, errlen, "%s", st.error().c_str());
		return -EINVAL;
	}

	// Serves a connection to the template's own RPC socket here (first: its
	// first request, if another process read it).
	[[noreturn]] void serve_rpc(Fd conn, const std::string &first = "")
	{
		listen_fd.reset();
		rpc_fd.reset();
		int rc = criu_template_serve(
		    conn.release(), ix.name.c_str(), pool.gen_dir(ix.name, ix.generation).c_str(), held, nr_held,
		    gen_dir.get(), check_images_cb, this, first.empty() ? nullptr : first.data(), first.size());
		if (stale)
			stop_holder(pool, ix.name);
		_exit(rc);
	}

	// The worker: a copy of this process, memory included, restores.
	[[noreturn]] void work(Fd conn, Fd cwd, std::vector<std::string> args)
	{
		listen_fd.reset();
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, nullptr);
		Rep rep{};
		if (!cwd.valid() || fchdir(cwd.get()) < 0) {
			rep.status = kFailed;
			snprintf(rep.err, sizeof(rep.err), "the request came without the client's directory");
		} else {
			cwd.reset();
			std::vector<char *> av;
			for (auto &a : args)
				av.push_back(a.data());
			av.push_back(nullptr);
			int pid = 0;
			int r = criu_template_restore((int)args.size(), av.data(), held, nr_held, gen_dir.get(), &pid,
						      rep.err, sizeof(rep.err));
			rep.status = r == 0 ? kOk : kFailed;
			rep.pid = pid;
		}
		send(conn.get(), &rep, sizeof(rep), MSG_NOSIGNAL);
		// Our exit (a copy of the holder's page tables to free) and the
		// next spare's fork that follows it wait until the client is done
		// with the answer (see keep_until_exit()), 5 s at most.
		criu_linger(conn.get(), 5000);
		_exit(0);
	}

	// A connection handed over by a service (kServe, on from): serves it
	// from its request (req) on. Taking it is answered by our end (from
	// hangs up, unanswered): the service's worker waits for nothing else,
	// and no wake-up of it competes with this restore for the CPUs.
	[[noreturn]] void serve_handed(Fd from, Fd client, const std::string &req)
	{
		if (!client.valid()) {
			Rep rep{kFailed, 0, "the hand-over came without the connection"};
			send(from.get(), &rep, sizeof(rep), MSG_NOSIGNAL);
			_exit(1);
		}
		static Fd until_exit;
		until_exit = std::move(from);
		serve_rpc(std::move(client), req);
	}

	// The next workers are forked ahead of their requests, so that a
	// restore does not wait for a copy of the holder's page tables: each
	// waits for a connection itself, and its ctl carries what it passes on.
	// Several, so that starts of the function that come at once (a burst
	// scaling it out) each find one.
	struct Spare {
		pid_t pid;
		Fd ctl;
	};
	std::vector<Spare> spares;
	size_t want_spares = spares_wanted();

	void fork_spare()
	{
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
			return;
		Fd mine(sp[0]), theirs(sp[1]);
		pid_t w = fork();
		if (w < 0)
			return;
		if (w == 0) {
			mine.reset();
			spares.clear();
			wait_for_work(theirs.get());
		}
		spares.push_back({w, std::move(mine)});
		workers.push_back(w);
	}

	// Makes the next restore's root now (criu_template_prepare), off the
	// restore's path.
	void prepare_root()
	{
		char err[1024] = "";
		if (criu_template_prepare(held, nr_held, gen_dir.get(), err, sizeof(err)) == -EINVAL)
			criu_log(2, "template %s: no root made ahead: %s\n", ix.name.c_str(), err);
	}

	// The argv blob of a request, as words.
	static std::vector<std::string> split_args(const std::string &blob)
	{
		std::vector<std::string> args;
		for (size_t at = 0; at < blob.size();) {
			size_t len = strnlen(blob.data() + at, blob.size() - at);
			args.emplace_back(blob.data() + at, len);
			at += len + 1;
		}
		return args;
	}

	// The spare takes its restore itself: it accepts on the holder's
	// socket (one hand-over less on the restore's path) and tells the
	// holder it did (kTook). Any other request goes to the holder, with
	// its connection, on ctl.
	[[noreturn]] void wait_for_work(int ctl)
	{
		node_lock.reset();  // (the holder's own; see ~Holder)
		prepare_root();
		criu_own_pages_ahead(held, nr_held);
		Fd ep = wake_one_of_the_spares(ctl);
		for (;;) {
			epoll_event ev[3];
			int n = epoll_wait(ep.get(), ev, 3, -1);
			bool ctl_ready = false, listen_ready = false, rpc_ready = false;
			for (int i = 0; i < n; i++) {
				ctl_ready |= ev[i].data.fd == ctl;
				listen_ready |= ev[i].data.fd == listen_fd.get();
				rpc_ready |= ev[i].data.fd == rpc_fd.get();
			}
			if (ctl_ready)
				_exit(0);  // the holder ended
			if (rpc_ready) {
				Fd conn(accept4(rpc_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
				if (!conn.valid())
					continue;
				if (send(ctl, &kTook, 1, MSG_NOSIGNAL) != 1)
					_exit(0);
				serve_rpc(std::move(conn));
			}
			if (!listen_ready)
				continue;
			std::string buf;
			Fd fds[2];
			Fd conn(accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
			if (!conn.valid() || !recv_with_fds(conn.get(), buf, fds))
				continue;  // (a client that went away has nothing to answer)
			auto r = parse_req(buf);
			if (r && (r->type == kRestore || r->type == kServe) && r->generation == ix.generation &&
			    send(ctl, &kTook, 1, MSG_NOSIGNAL) == 1)
				take(r->type, std::move(conn), std::move(fds[0]), buf.substr(sizeof(Req)));
			if (!send_with_fds(ctl, buf, {conn.get(), fds[0].get()}))
				_exit(0);
		}
	}

	// What a spare waits on: its ctl, and the holder's sockets with
	// EPOLLEXCLUSIVE, so that a connection wakes one spare, not all (each
	// woken one would compete with the restore for the CPUs).
	Fd wake_one_of_the_spares(int ctl)
	{
		Fd ep(epoll_create1(EPOLL_CLOEXEC));
		if (!ep.valid())
			_exit(1);
		for (int fd : {ctl, listen_fd.get(), rpc_fd.get()}) {
			epoll_event ev{};
			ev.events = EPOLLIN | (fd == ctl ? 0u : (uint32_t)EPOLLEXCLUSIVE);
			ev.data.fd = fd;
			if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
				_exit(1);
		}
		return ep;
	}

	// A worker forked for a connection the holder has (accepted while no
	// spare waited, or passed on by the spare): it inherits the connection,
	// makes its root ahead and serves. (Sent to a spare instead, it could
	// stay unanswered: the spare may take another request first.)
	template <class Serve> bool fork_worker(Serve serve)
	{
		pid_t w = fork();
		if (w < 0)
			return false;
		if (w == 0) {
			spares.clear();
			node_lock.reset();
			prepare_root();
			serve();  // (never returns)
		}
		workers.push_back(w);
		return true;
	}

	// A restore request (kRestore: fd is the client's directory, payload
	// its command line; kServe: see serve_handed()), in the worker that
	// takes it.
	[[noreturn]] void take(uint32_t type, Fd conn, Fd fd, const std::string &payload)
	{
		if (type == kServe)
			serve_handed(std::move(conn), std::move(fd), payload);
		work(std::move(conn), std::move(fd), split_args(payload));
	}

	// A connection to the RPC socket while no spare waits.
	void dispatch_rpc()
	{
		Fd conn(accept4(rpc_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
		if (conn.valid())
			fork_worker([&] { serve_rpc(std::move(conn)); });
	}

	// One request (buf, with its fd: the client's directory, or the RPC
	// connection handed over); false once the holder should end.
	bool serve(int conn, const std::string &buf, Fd fd)
	{
		auto req = parse_req(buf);
		Req r = req.value_or(Req{});
		Rep rep{};
		rep.pid = getpid();
		if (!req) {
			rep.status = kFailed;
			snprintf(rep.err, sizeof(rep.err), "malformed request");
		} else if (r.generation != ix.generation && r.type != kQuit) {
			rep.status = kStale;
			snprintf(rep.err, sizeof(rep.err), "the holder has generation %llu",
				 (unsigned long long)ix.generation);
		} else if (r.type == kRestore || r.type == kServe) {
			// The next spare is forked once this worker is done (see reap()):
			// forking now would compete with the restore for the CPUs.
			// (conn is ours in the copy)
			if (fork_worker([&] { take(r.type, Fd(conn), std::move(fd), buf.substr(sizeof(Req))); }))
				return true;
			rep.status = kFailed;
			snprintf(rep.err, sizeof(rep.err), "can't start a worker: %s", strerror(errno));
		}
		send(conn, &rep, sizeof(rep), MSG_NOSIGNAL);
		return rep.status != kStale && r.type != kQuit;
	}

	// What spare i says on its ctl: it took a restore (it is no longer a
	// spare), or it passes a request on; false once the holder should end.
	bool from_spare(size_t i)
	{
		std::string buf;
		Fd fds[2];
		if (!recv_with_fds(spares[i].ctl.get(), buf, fds) || buf == std::string(1, kTook) || !fds[0].valid()) {
			spares.erase(spares.begin() + i);  // (or it died)
			return true;
		}
		return serve(fds[0].get(), buf, std::move(fds[1]));
	}

	// Instances end as our children (we are their subreaper): reap them as
	// soon as they die, so that their PIDs are free for the next restore.
	// A spare is forked again for each worker done: not while a restore
	// runs (the fork would compete with it for the CPUs).
	void reap()
	{
		size_t done = 0;
		for (pid_t p; (p = waitpid(-1, nullptr, WNOHANG)) > 0;) {
			done += std::erase(workers, p);
			// (a dead spare's ctl does not hang up: its root made ahead has it)
			std::erase_if(spares, [p](const Spare &s) { return s.pid == p; });
		}
		for (; done > 0 && spares.size() < want_spares; done--)
			fork_spare();
	}

	void loop()
	{
		sigset_t chld;
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigprocmask(SIG_BLOCK, &chld, nullptr);
		Fd sfd(signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK));
		for (bool go = true; go;) {
			reap();
			// the spares accept while there are any
			bool spares_wait = !spares.empty();
			std::vector<pollfd> pf = {{sfd.get(), POLLIN, 0},
						  {spares_wait ? -1 : listen_fd.get(), POLLIN, 0},
						  {spares_wait ? -1 : rpc_fd.get(), POLLIN, 0}};
			for (auto &sp : spares)
				pf.push_back({sp.ctl.get(), POLLIN, 0});
			if (poll(pf.data(), pf.size(), 1000) <= 0)
				continue;
			signalfd_siginfo si;
			while (sfd.valid() && read(sfd.get(), &si, sizeof(si)) > 0)
				;
			if (pf[2].revents)
				dispatch_rpc();
			if (spares_wait) {
				// (from the last: from_spare() may drop the one it asks)
				for (size_t i = spares.size(); go && i-- > 0;)
					if (pf[3 + i].revents)
						go = from_spare(i);
				continue;
			}
			if (!pf[1].revents)
				continue;
			Fd conn(accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
			std::string buf;
			Fd fds[2];
			if (conn.valid() && recv_with_fds(conn.get(), buf, fds))
				go = serve(conn.get(), buf, std::move(fds[0]));
		}
	}
};

}  // namespace

Status run_holder(const Pool &p, const std::string &name)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);
	Holder h{p, {}, {}, {}, {}, {}};
	h.ix.name = name;
	auto mine = h.take_node_lock(name);
	if (!mine || !*mine) {
		// someone else holds it: the clients will reach that holder
		tell_ready(mine ? "OK" : mine.error());
		return mine ? ok() : fail(mine.error());
	}
	if (auto st = h.setup(name); !st) {
		tell_ready(st.error());
		return st;
	}
	criu_log(3, "Holding template %s generation %llu (%u VMAs) on %s\n", name.c_str(),
		 (unsigned long long)h.ix.generation, h.nr_held, h.sock.c_str());
	tell_ready("OK");  // first: a worker must not inherit the ready pipe
	for (size_t i = 0; i < h.want_spares; i++)
		h.fork_spare();
	h.loop();
	return ok();
}

namespace
{

// Sends a request of type to the template's holder (started if needed; a
// stale one is waited out and replaced), with payload and fd, until one
// answers it; returns the connection and the answer: kOk, or kEnded for a
// kServe (see serve_handed()).
Result<std::pair<Fd, Rep>> ask_holder(const Pool &p, const Index &ix, uint32_t type, const std::string &payload, int fd,
				      uint32_t argc = 0)
{
	using R = Result<std::pair<Fd, Rep>>;
	constexpr int kWaitMs = 120000;	 // a holder of a big template takes a while to fill
	bool spawned = false;
	for (int waited = 0, stale = 0; stale < 3;) {
		auto s = connect_to(p, ix.name);
		if (!s) {
			if (!spawned && !holder_alive(p, ix.name)) {
				if (auto st = spawn_holder(p, ix.name); !st)
					return R::fail(st.error());
				spawned = true;
				continue;
			}
			if (!holder_alive(p, ix.name))
				return R::fail(
				    fmt("the holder of template %s ended before it served", ix.name.c_str()));
			if ((waited += 10) > kWaitMs)
				return R::fail(fmt("the holder of template %s did not answer", ix.name.c_str()));
			usleep(10000);
			continue;
		}
		if (auto st = send_req(s->get(), type, ix.generation, payload, fd, argc); !st)
			return R::fail(st.error());
		auto rep = recv_rep(s->get());
		if (!rep)
			return R::fail(rep.error());
		if (rep->status == kOk || (rep->status == kEnded && type == kServe))
			return std::pair(std::move(*s), *rep);
		if (rep->status == kEnded)
			return R::fail("the holder ended without answering");
		if (rep->status == kFailed)
			return R::fail(rep->err);
		// stale: that holder ends; the next attempt starts a fresh one
		for (int i = 0; i < 500 && holder_alive(p, ix.name); i++)
			usleep(10000);
		spawned = false;
		stale++;
	}
	return R::fail(fmt("no holder of template %s could be reached", ix.name.c_str()));
}

}  // namespace

Result<int> restore_via_holder(const Pool &p, const Index &ix, int argc, char **argv)
{
	Fd cwd(open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	auto r = ask_holder(p, ix, kRestore, argv_blob(argc, argv), cwd.get(), argc);
	if (!r)
		return Result<int>::fail(r.error());
	keep_until_exit(std::move(r->first));
	return r->second.pid;
}

Status hand_over_to_holder(const Pool &p, const Index &ix, int conn_fd, const std::string &req)
{
	auto r = ask_holder(p, ix, kServe, req, conn_fd);
	return r ? ok() : fail(r.error());
}

Result<std::string> template_socket(const Pool &p, const std::string &name)
{
	auto ix = read_index(p, name);
	if (!ix)
		return Result<std::string>::fail(ix.error());
	// a holder of an older generation answers a ping of this one stale,
	// and ends: the socket is then the next holder's
	if (holder_alive(p, name))
		if (auto rep = ask(p, name, kPing, ix->generation); rep && rep->status == kStale)
			for (int i = 0; i < 500 && holder_alive(p, name); i++)
				usleep(10000);
	if (!holder_alive(p, name))
		if (auto st = spawn_holder(p, name); !st)
			return Result<std::string>::fail(st.error());
	return rpc_socket_path(p, name);
}

void stop_holder(const Pool &p, const std::string &name)
{
	ask(p, name, kQuit, 0);
}

int holder_pid(const Pool &p, const std::string &name)
{
	auto rep = ask(p, name, kPing, 0);
	return rep ? rep->pid : 0;
}

}  // namespace mmt
