#include "spare.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <memory>

#include "log.h"
#include "template.h"

namespace criu
{

namespace
{

constexpr size_t kMaxTake = 128 << 10;	// worker -> spare: the request (a socket buffer's worth)

// spare -> main; kGone comes before the spare answers a worker, so that
// main forgets it before that worker's restore asks for a successor
constexpr char kReady = 'R', kFailed = 'F', kGone = 'G';
constexpr char kTaken = 'T', kStale = 'S';	 // spare -> worker
constexpr char kRestored = 'D', kPrepare = 'Q';	 // inbox; kPrepare's answer: kReady or kFailed

sockaddr_un abstract(const std::string &name, socklen_t *len)
{
	sockaddr_un sa{};
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name.data(), std::min(name.size(), sizeof(sa.sun_path) - 1));
	*len = offsetof(sockaddr_un, sun_path) + 1 + std::min(name.size(), sizeof(sa.sun_path) - 1);
	return sa;
}

// A root peer: a spare restores as root for whoever hands it a request.
bool root_peer(int fd)
{
	auto cr = peer_cred(fd);
	return cr && cr->uid == 0;
}

// The one-byte answer on sock (0: none, the peer is gone).
char answer_of(int sock)
{
	char c = 0;
	ssize_t n;
	do
		n = recv(sock, &c, 1, 0);
	while (n < 0 && errno == EINTR);
	return n == 1 ? c : 0;
}

// Every entry of the directory by name, inode, size, mtime and ctime: a
// file rewritten or replaced since changes it (ctime can't be set back).
// Logs are left out: restores write theirs there (libcriu's habit), even
// after their answer.
Result<std::string> dir_stamp(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sys_error("can't open the image directory");
	std::unique_ptr<DIR, int (*)(DIR *)> d(fdopendir(fd), closedir);
	if (!d) {
		::close(fd);
		return sys_error("can't read the image directory");
	}
	std::vector<std::string> lines;
	while (dirent *e = readdir(d.get())) {
		struct stat st;
		std::string_view name = e->d_name;
		if (name == "." || name == ".." || name.ends_with(".log"))
			continue;
		if (fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return sys_error("can't stat %s of the image directory", e->d_name);
		lines.push_back(strfmt("%s %lu %lld %lld.%09ld %lld.%09ld", e->d_name, (unsigned long)st.st_ino,
				       (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
				       (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec));
	}
	std::sort(lines.begin(), lines.end());
	std::string s;
	for (auto &l : lines)
		s += l + "\n";
	return s;
}

std::string fd_path(int fd)
{
	auto p = read_link(strfmt("/proc/self/fd/%d", fd));
	return p ? *p : strfmt("fd %d", fd);
}

}  // namespace

bool HeldMemory::serves(const std::string &path) const
{
	struct stat st;
	return dir_fd >= 0 && stat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

void HeldMemory::release()
{
	for (auto &r : ranges)
		munmap((void *)r.start, r.end - r.start);
	ranges.clear();
	dir_fd = -1;
}

SparePool::SparePool(size_t max, int listener_fd, ServeFn serve)
    : max_(max), service_(getpid()), listener_(listener_fd), serve_(std::move(serve))
{
}

Status SparePool::open()
{
	if (!max_)
		return {};
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return sys_error("can't make the spares' inbox");
	inbox_rd_.reset(sv[0]);
	inbox_wr_.reset(sv[1]);
	return {};
}

std::string SparePool::name(dev_t dev, ino_t ino) const
{
	return strfmt("criu-spare/%d/%lx:%lx", service_, (unsigned long)dev, (unsigned long)ino);
}

void SparePool::add_pollfds(std::vector<pollfd> &fds) const
{
	if (!max_)
		return;
	fds.push_back({inbox_rd_.get(), POLLIN, 0});
	for (auto &s : spares_)
		fds.push_back({s.ctl.get(), POLLIN, 0});
}

void SparePool::handle(const pollfd *fds)
{
	if (!max_)
		return;
	// Spares first: one that served a restore is gone before the inbox
	// asks for its successor.
	for (size_t i = spares_.size(); i-- > 0;) {
		Spare &s = spares_[i];
		short ev = fds[1 + i].revents;
		char c = 0;
		if ((ev & POLLIN) && recv(s.ctl.get(), &c, 1, MSG_DONTWAIT) == 1 && c == kFailed)
			failed_.insert({s.dev, s.ino});
		if (c == kReady) {
			s.ready = true;
			for (auto &w : s.waiting)
				(void)send(w.get(), &kReady, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			s.waiting.clear();
		}
		if (c == kFailed || c == kGone || (ev & (POLLHUP | POLLERR)))
			spares_.erase(spares_.begin() + i);
	}
	if (!(fds[0].revents & POLLIN))
		return;
	for (;;) {
		std::string buf;
		std::vector<Fd> got;
		auto n = recv_fds(inbox_rd_.get(), buf, 1, got, 2, MSG_DONTWAIT);
		if (!n || *n == 0)
			return;
		if (buf[0] == kRestored && got.size() == 1) {
			want(std::move(got[0]));
		} else if (buf[0] == kPrepare && got.size() == 2) {
			Spare *s = want(std::move(got[0]));
			if (s && !s->ready)
				s->waiting.push_back(std::move(got[1]));
			else
				(void)send(got[1].get(), s ? &kReady : &kFailed, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
	}
}

// The spare of dir, made now if there is none (nullptr: none can be).
SparePool::Spare *SparePool::want(Fd dir)
{
	struct stat st;
	if (fstat(dir.get(), &st) < 0 || failed_.count({st.st_dev, st.st_ino}))
		return nullptr;
	for (auto &s : spares_)
		if (s.dev == st.st_dev && s.ino == st.st_ino) {
			s.used = ++clock_;
			return &s;
		}
	if (spares_.size() >= max_) {
		auto lru = std::min_element(spares_.begin(), spares_.end(),
					    [](const Spare &a, const Spare &b) { return a.used < b.used; });
		pr_info("Dropping the spare of the least recently restored images\n");
		spares_.erase(lru);
	}
	start(std::move(dir), st.st_dev, st.st_ino);
	auto &last = spares_.back();
	return last.dev == st.st_dev && last.ino == st.st_ino ? &last : nullptr;
}

void SparePool::start(Fd dir, dev_t dev, ino_t ino)
{
	auto child = fork_linked("criu-spare");
	if (!child) {
		pr_warn("%s\n", child.error().msg.c_str());
		return;
	}
	if (child->pid == 0) {
		::close(listener_);
		in_worker();
		run(std::move(child->end), std::move(dir), dev, ino);
	}
	spares_.push_back({dev, ino, std::move(child->end), ++clock_});
}

void SparePool::run(Fd ctl, Fd dir, dev_t dev, ino_t ino)
{
	std::string path = fd_path(dir.get());
	auto fail = [&](const std::string &why) {
		pr_warn("can't prepare the next restore of %s (not tried again): %s\n", path.c_str(), why.c_str());
		(void)send(ctl.get(), &kFailed, 1, MSG_NOSIGNAL);
		_exit(1);
	};
	// Listening before the memory is in: a worker that comes meanwhile
	// waits. A dropped predecessor may still hold the name for a moment.
	Fd lsn(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
	socklen_t alen;
	sockaddr_un sa = abstract(name(dev, ino), &alen);
	int r = -1;
	for (int tries = 0; lsn.valid() && tries < 100; tries++) {
		r = bind(lsn.get(), reinterpret_cast<sockaddr *>(&sa), alen);
		if (r == 0 || errno != EADDRINUSE)
			break;
		usleep(10000);
	}
	if (r < 0 || listen(lsn.get(), 16) < 0)
		fail(strfmt("can't listen on @%s: %s", name(dev, ino).c_str(), strerror(errno)));
	auto stamp = dir_stamp(dir.get());
	auto images = ImageDir::from_fd(dir.get(), path);
	bool collision = false;
	auto ranges = !stamp	? Result<std::vector<HeldRange>>(stamp.error())
		      : !images ? Result<std::vector<HeldRange>>(images.error())
				: hold_template(*images, *images, false, &collision);
	if (!ranges)
		fail(ranges.error().msg);
	if (auto st = read_images_ahead(dir.get(), *ranges); !st)
		fail(st.error().msg);
	// a tree in a pid namespace of its own gets its root made now as well
	if (auto ahead = prepare_root(*ranges, dir.get()); !ahead)
		pr_warn("the root of %s is not made ahead: %s\n", path.c_str(), ahead.error().msg.c_str());
	pr_info("Prepared the next restore of %s: %zu VMAs of memory in place\n", path.c_str(), ranges->size());
	(void)send(ctl.get(), &kReady, 1, MSG_NOSIGNAL);
	for (;;) {
		pollfd fds[2] = {{ctl.get(), POLLIN, 0}, {lsn.get(), POLLIN, 0}};
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			_exit(1);
		if (fds[0].revents)
			_exit(0);  // dropped, or the service ended
		if (!(fds[1].revents & POLLIN))
			continue;
		Fd conn(accept4(lsn.get(), nullptr, nullptr, SOCK_CLOEXEC));
		std::string buf;
		std::vector<Fd> got;
		timeval patience{5, 0};	 // a worker sends at once; nobody else keeps us
		if (!conn.valid() || !root_peer(conn.get()) ||
		    setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience)) < 0)
			continue;
		auto n = recv_fds(conn.get(), buf, kMaxTake, got, 1);
		if (!n || got.size() != 1)
			continue;
		PbPtr<CriuReq> req(criu_req__unpack(nullptr, *n, reinterpret_cast<uint8_t *>(buf.data())));
		if (!req)
			continue;
		auto now = dir_stamp(dir.get());
		if (!now || *now != *stamp) {
			pr_info("The images of %s changed since they were prepared: their spare ends\n", path.c_str());
			lsn.reset();  // (the name is free for a successor)
			(void)send(ctl.get(), &kGone, 1, MSG_NOSIGNAL);
			(void)send(conn.get(), &kStale, 1, MSG_NOSIGNAL);
			_exit(0);
		}
		// Gone for main and for later comers (nobody listens: they restore
		// themselves), then taken. If the worker went away meanwhile, its
		// client gets no answer: as if the worker had failed.
		(void)send(ctl.get(), &kGone, 1, MSG_NOSIGNAL);
		lsn.reset();
		ctl.reset();
		if (send(conn.get(), &kTaken, 1, MSG_NOSIGNAL) != 1)
			_exit(1);
		pr_info("Restoring %s with the memory prepared for it\n", path.c_str());
		prctl(PR_SET_NAME, "criu");
		HeldMemory held{std::move(*ranges), dir.get(), dev, ino};
		_exit(serve_(*this, got[0].release(), std::move(req), held));
	}
}

void SparePool::in_worker()
{
	inbox_rd_.reset();
	spares_.clear();
}

bool SparePool::hand_over(const std::string &images_dir, int conn_fd, const CriuReq &req) const
{
	struct stat st;
	if (!max_ || stat(images_dir.c_str(), &st) < 0)
		return false;
	std::string buf(criu_req__get_packed_size(&req), '\0');
	if (buf.size() > kMaxTake)
		return false;
	criu_req__pack(&req, reinterpret_cast<uint8_t *>(buf.data()));
	Fd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
	socklen_t alen;
	sockaddr_un sa = abstract(name(st.st_dev, st.st_ino), &alen);
	if (!s.valid() || connect(s.get(), reinterpret_cast<sockaddr *>(&sa), alen) < 0)
		return false;  // no spare for these images
	if (!send_fds(s.get(), buf.data(), buf.size(), {conn_fd}))
		return false;
	// A spare still reading its images answers once it holds them; one
	// that is dropped or ends meanwhile closes the connection.
	return answer_of(s.get()) == kTaken;
}

Status SparePool::prepare(Fd dir) const
{
	if (!max_)
		return Error{"PREPARE: this service runs without --prepare"};
	auto path = fd_path(dir.get());
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return sys_error("PREPARE: can't make a socket");
	Fd answer(sv[0]), theirs(sv[1]);
	if (auto st = send_fds(inbox_wr_.get(), &kPrepare, 1, {dir.get(), theirs.get()}); !st)
		return Error{"PREPARE: can't reach the service's main process: " + st.error().msg};
	theirs.reset();
	if (answer_of(answer.get()) != kReady)
		return Error{strfmt("PREPARE: could not prepare %s (see the service's log)", path.c_str())};
	return {};
}

void SparePool::restored(Fd dir) const
{
	// never blocks the worker: a full inbox loses the wish
	if (max_ && dir.valid())
		(void)send_fds(inbox_wr_.get(), &kRestored, 1, {dir.get()}, MSG_DONTWAIT);
}

}  // namespace criu
