#include "sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <net/if.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "log.h"
#include "sk-inet.pb-c.h"
#include "sk-unix.pb-c.h"

namespace criu
{

namespace
{

// TCP states, as CRIU stores them (for UDP too)
constexpr uint32_t kEstablished = 1, kClose = 7, kListen = 10;

int get_int(int sk, int level, int opt)
{
	int v = 0;
	socklen_t l = sizeof(v);
	getsockopt(sk, level, opt, &v, &l);
	return v;
}

struct Backlog {
	uint32_t max = 0, pending = 0;
};

// A sock_diag socket with req already sent; the caller reads the answer.
Result<Fd> sock_diag(const void *req, size_t len)
{
	Fd nl(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
	if (!nl.valid())
		return sys_error("can't open a sock_diag socket");
	if (send(nl.get(), req, len, 0) != (ssize_t)len)
		return sys_error("can't query sock_diag");
	return nl;
}

// sock_diag knows a listening socket's backlog and its accept queue.
Result<Backlog> listen_backlog(int family, uint64_t ino)
{
	struct {
		nlmsghdr nlh;
		inet_diag_req_v2 r;
	} req{};
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.r.sdiag_family = family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = 1u << kListen;
	auto nl = sock_diag(&req, sizeof(req));
	if (!nl)
		return nl.error();
	alignas(nlmsghdr) char buf[16384];
	for (;;) {
		ssize_t n = recv(nl->get(), buf, sizeof(buf), 0);
		if (n <= 0)
			return sys_error("can't read sock_diag");
		for (auto *h = reinterpret_cast<nlmsghdr *>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return Error{
				    strfmt("listening socket %llu not found by sock_diag", (unsigned long long)ino)};
			if (h->nlmsg_type == NLMSG_ERROR)
				return Error{"sock_diag answered with an error"};
			auto *m = static_cast<inet_diag_msg *>(NLMSG_DATA(h));
			if (m->idiag_inode == ino)
				return Backlog{m->idiag_wqueue, m->idiag_rqueue};
		}
	}
}

// Addresses are stored as 32-bit words in network order (1 for v4, 4 for v6).
void put_addr(Arena &a, const sockaddr_storage &ss, size_t *n, uint32_t **words, uint32_t *port)
{
	if (ss.ss_family == AF_INET) {
		auto *in = reinterpret_cast<const sockaddr_in *>(&ss);
		*n = 1;
		*words = a.array<uint32_t>(1);
		memcpy(*words, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
	} else {
		auto *in6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
		*n = 4;
		*words = a.array<uint32_t>(4);
		memcpy(*words, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
	}
}

std::string addr_str(const sockaddr_storage &ss)
{
	char host[INET6_ADDRSTRLEN] = "?";
	uint16_t port;
	if (ss.ss_family == AF_INET) {
		auto *in = reinterpret_cast<const sockaddr_in *>(&ss);
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		return strfmt("%s:%u", host, port);
	}
	auto *in6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
	inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
	port = ntohs(in6->sin6_port);
	return strfmt("[%s]:%u", host, port);
}

Result<socklen_t> make_addr(uint32_t family, size_t n, const uint32_t *words, uint32_t port, sockaddr_storage &ss)
{
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET && n == 1) {
		auto *in = reinterpret_cast<sockaddr_in *>(&ss);
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, words, 4);
		in->sin_port = htons(port);
		return (socklen_t)sizeof(sockaddr_in);
	}
	if (family == AF_INET6 && n == 4) {
		auto *in6 = reinterpret_cast<sockaddr_in6 *>(&ss);
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, words, 16);
		in6->sin6_port = htons(port);
		return (socklen_t)sizeof(sockaddr_in6);
	}
	return Error{strfmt("socket address of family %u with %zu words is malformed", family, n)};
}

SkOptsEntry *dump_opts(Arena &a, int sk, bool tcp)
{
	auto *o = a.make<SkOptsEntry>(SK_OPTS_ENTRY__INIT);
	o->so_sndbuf = get_int(sk, SOL_SOCKET, SO_SNDBUF);
	o->so_rcvbuf = get_int(sk, SOL_SOCKET, SO_RCVBUF);
	timeval tv{};
	socklen_t l = sizeof(tv);
	getsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &tv, &l);
	o->so_snd_tmo_sec = tv.tv_sec, o->so_snd_tmo_usec = tv.tv_usec;
	l = sizeof(tv);
	getsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, &l);
	o->so_rcv_tmo_sec = tv.tv_sec, o->so_rcv_tmo_usec = tv.tv_usec;
	o->has_reuseaddr = o->has_so_reuseport = o->has_so_priority = o->has_so_rcvlowat = o->has_so_mark = true;
	o->reuseaddr = get_int(sk, SOL_SOCKET, SO_REUSEADDR);
	o->so_reuseport = get_int(sk, SOL_SOCKET, SO_REUSEPORT);
	o->so_priority = get_int(sk, SOL_SOCKET, SO_PRIORITY);
	o->so_rcvlowat = get_int(sk, SOL_SOCKET, SO_RCVLOWAT);
	o->so_mark = get_int(sk, SOL_SOCKET, SO_MARK);
	o->has_so_broadcast = o->has_so_keepalive = o->has_so_passcred = true;
	o->so_broadcast = get_int(sk, SOL_SOCKET, SO_BROADCAST);
	o->so_keepalive = get_int(sk, SOL_SOCKET, SO_KEEPALIVE);
	o->so_passcred = get_int(sk, SOL_SOCKET, SO_PASSCRED);
	if (tcp) {
		o->has_tcp_keepcnt = o->has_tcp_keepidle = o->has_tcp_keepintvl = true;
		o->tcp_keepcnt = get_int(sk, IPPROTO_TCP, TCP_KEEPCNT);
		o->tcp_keepidle = get_int(sk, IPPROTO_TCP, TCP_KEEPIDLE);
		o->tcp_keepintvl = get_int(sk, IPPROTO_TCP, TCP_KEEPINTVL);
	}
	char dev[IFNAMSIZ + 1] = "";
	l = IFNAMSIZ;
	if (getsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, dev, &l) == 0 && l > 0 && dev[0])
		o->so_bound_dev = a.str(std::string(dev, strnlen(dev, l)));
	return o;
}

Status set_int(int sk, int level, int opt, int v, const char *name)
{
	if (setsockopt(sk, level, opt, &v, sizeof(v)) < 0)
		return sys_error("can't set %s to %d", name, v);
	return {};
}

Status restore_opts(int sk, const SkOptsEntry &o, bool tcp)
{
	// the kernel doubles buffer sizes on set and reports the doubled value
	TRY(set_int(sk, SOL_SOCKET, SO_SNDBUF, o.so_sndbuf / 2, "SO_SNDBUF"));
	TRY(set_int(sk, SOL_SOCKET, SO_RCVBUF, o.so_rcvbuf / 2, "SO_RCVBUF"));
	timeval snd = {(time_t)o.so_snd_tmo_sec, (suseconds_t)o.so_snd_tmo_usec};
	timeval rcv = {(time_t)o.so_rcv_tmo_sec, (suseconds_t)o.so_rcv_tmo_usec};
	if (setsockopt(sk, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd)) < 0 ||
	    setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv)) < 0)
		return sys_error("can't set socket timeouts");
	if (o.has_reuseaddr && o.reuseaddr)
		TRY(set_int(sk, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"));
	if (o.has_so_reuseport && o.so_reuseport)
		TRY(set_int(sk, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"));
	if (o.has_so_priority && o.so_priority)
		TRY(set_int(sk, SOL_SOCKET, SO_PRIORITY, o.so_priority, "SO_PRIORITY"));
	if (o.has_so_rcvlowat && o.so_rcvlowat > 1)
		TRY(set_int(sk, SOL_SOCKET, SO_RCVLOWAT, o.so_rcvlowat, "SO_RCVLOWAT"));
	if (o.has_so_mark && o.so_mark)
		TRY(set_int(sk, SOL_SOCKET, SO_MARK, o.so_mark, "SO_MARK"));
	if (o.has_so_broadcast && o.so_broadcast)
		TRY(set_int(sk, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST"));
	if (o.has_so_keepalive && o.so_keepalive)
		TRY(set_int(sk, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"));
	if (o.has_so_passcred && o.so_passcred)
		TRY(set_int(sk, SOL_SOCKET, SO_PASSCRED, 1, "SO_PASSCRED"));
	if (tcp && o.has_tcp_keepcnt) {
		TRY(set_int(sk, IPPROTO_TCP, TCP_KEEPCNT, o.tcp_keepcnt, "TCP_KEEPCNT"));
		TRY(set_int(sk, IPPROTO_TCP, TCP_KEEPIDLE, o.tcp_keepidle, "TCP_KEEPIDLE"));
		TRY(set_int(sk, IPPROTO_TCP, TCP_KEEPINTVL, o.tcp_keepintvl, "TCP_KEEPINTVL"));
	}
	if (o.so_bound_dev && setsockopt(sk, SOL_SOCKET, SO_BINDTODEVICE, o.so_bound_dev, strlen(o.so_bound_dev)) < 0)
		return sys_error("can't bind the socket to device %s", o.so_bound_dev);
	return {};
}

struct UnixPeer {
	uint32_t peer = 0;
	bool named = false;
	uint32_t rqueue = 0, wqueue = 0;  // listening: pending, backlog
};

// sock_diag: the peer inode and whether the socket has a name.
Result<UnixPeer> unix_peer(uint64_t ino)
{
	struct {
		nlmsghdr nlh;
		unix_diag_req r;
	} req{};
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = ino;
	req.r.udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
	auto nl = sock_diag(&req, sizeof(req));
	if (!nl)
		return nl.error();
	alignas(nlmsghdr) char buf[8192];
	ssize_t n = recv(nl->get(), buf, sizeof(buf), 0);
	if (n <= 0)
		return sys_error("can't read sock_diag");
	auto *h = reinterpret_cast<nlmsghdr *>(buf);
	if (!NLMSG_OK(h, n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return Error{strfmt("sock_diag knows no unix socket %llu", (unsigned long long)ino)};
	auto *m = static_cast<unix_diag_msg *>(NLMSG_DATA(h));
	UnixPeer p;
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	for (auto *a = reinterpret_cast<rtattr *>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == UNIX_DIAG_PEER)
			memcpy(&p.peer, RTA_DATA(a), 4);
		else if (a->rta_type == UNIX_DIAG_NAME)
			p.named = RTA_PAYLOAD(a) > 0;
		else if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(unix_diag_rqlen)) {
			auto *q = static_cast<unix_diag_rqlen *>(RTA_DATA(a));
			p.rqueue = q->udiag_rqueue;
			p.wqueue = q->udiag_wqueue;
		}
	}
	return p;
}

// The receive queue, without consuming it: peeking at increasing offsets
// (SO_PEEK_OFF) walks datagrams one by one and a stream in one piece.
Result<std::vector<QueuedPacket>> peek_queue(int sk, int type)
{
	std::vector<QueuedPacket> out;
	int inq = 0;
	if (ioctl(sk, SIOCINQ, &inq) < 0)
		return sys_error("SIOCINQ");
	if (inq == 0 && type == SOCK_STREAM)
		return out;
	TRY(set_int(sk, SOL_SOCKET, SO_PEEK_OFF, 0, "SO_PEEK_OFF"));
	std::string buf(std::max(inq, 1 << 16), '\0');
	Status st;
	for (;;) {
		char cbuf[256];
		iovec iov = {buf.data(), buf.size()};
		msghdr mh{};
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		ssize_t r = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT);
		if (r < 0) {
			if (errno != EAGAIN)
				st = sys_error("can't peek at a socket queue");
			break;
		}
		if (mh.msg_controllen) {
			st = Error{
			    "a queued packet carries control data (SCM_RIGHTS/credentials), which is not supported"};
			break;
		}
		if (r == 0 && type == SOCK_STREAM)
			break;
		out.push_back({std::string(buf.data(), r)});
		if (type == SOCK_STREAM)
			break;
		if (out.size() > 100000) {
			st = Error{"too many queued packets"};
			break;
		}
	}
	(void)set_int(sk, SOL_SOCKET, SO_PEEK_OFF, -1, "SO_PEEK_OFF");
	if (!st)
		return st.error();
	return out;
}

// getsockname() of a unix socket: "" if it has no name; a path must be
// absolute (a relative one would depend on the cwd of whoever binds it).
Result<std::string> socket_name(int sk)
{
	sockaddr_un sun{};
	socklen_t len = sizeof(sun);
	if (getsockname(sk, reinterpret_cast<sockaddr *>(&sun), &len) < 0)
		return sys_error("getsockname");
	size_t nlen = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
	if (nlen && sun.sun_path[0] != 0) {
		nlen = strnlen(sun.sun_path, nlen);
		if (sun.sun_path[0] != '/')
			return Error{strfmt("unix socket bound to the relative path %.*s is not supported yet",
					    (int)nlen, sun.sun_path)};
	}
	return std::string(sun.sun_path, nlen);
}

// The name of a socket (a path or an abstract name) into e.
Status dump_unix_name(Arena &a, pid_t pid, int fd, int sk, UnixSkEntry *e)
{
	auto name = socket_name(sk);
	if (!name)
		return Error{strfmt("PID %d fd %d: %s", pid, fd, name.error().msg.c_str())};
	e->name.len = name->size();
	e->name.data = name->empty() ? nullptr : a.copy(std::vector<uint8_t>(name->begin(), name->end()));
	return {};
}

// A socket e names by a path is made again there: its socket file must
// still be there, and its mode and owner are kept.
Status dump_socket_file(Arena &a, pid_t pid, int fd, UnixSkEntry *e)
{
	if (e->name.len == 0 || e->name.data[0] == 0)
		return {};
	std::string path(reinterpret_cast<char *>(e->name.data), e->name.len);
	// the path is the task's: look at it through its root (its mount namespace)
	struct stat fst;
	auto seen = strfmt("/proc/%d/root%s", pid, path.c_str());
	if (stat(seen.c_str(), &fst) < 0 || !S_ISSOCK(fst.st_mode))
		return Error{strfmt("PID %d fd %d: the file of unix socket %s is gone", pid, fd, path.c_str())};
	auto *perms = a.make<FilePermsEntry>(FILE_PERMS_ENTRY__INIT);
	perms->mode = fst.st_mode & 07777;
	perms->uid = fst.st_uid;
	perms->gid = fst.st_gid;
	e->file_perms = perms;
	return {};
}

// A listening socket: its name, the socket file's permissions, its backlog.
Status dump_unix_listener(Arena &a, pid_t pid, int fd, int sk, uint32_t flags, const struct stat &st,
			  const UnixPeer &diag, UnixSkEntry *e)
{
	if (diag.rqueue)
		return Error{strfmt("PID %d fd %d: listening unix socket has %u connection(s) waiting to be accepted; "
				    "they can't be saved",
				    pid, fd, diag.rqueue)};
	TRY(dump_unix_name(a, pid, fd, sk, e));
	if (e->name.len == 0)
		return Error{strfmt("PID %d fd %d: unix socket listens without a name", pid, fd)};
	TRY(dump_socket_file(a, pid, fd, e));
	e->ino = st.st_ino;
	e->type = get_int(sk, SOL_SOCKET, SO_TYPE);
	e->state = kListen;
	e->flags = flags;
	e->backlog = diag.wqueue;
	e->opts = dump_opts(a, sk, false);
	return {};
}

Result<sockaddr_un> address_of(const UnixSkEntry &e, socklen_t *len)
{
	sockaddr_un sun{};
	if (e.name.len == 0 || e.name.len > sizeof(sun.sun_path))
		return Error{strfmt("unix socket %u: malformed name", e.id)};
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, e.name.data, e.name.len);
	*len = offsetof(sockaddr_un, sun_path) + e.name.len;
	return sun;
}

// Sends q again from `from`, to `to` (nullptr: its peer).
Status requeue(int from, const std::vector<std::string> &q, const sockaddr_un *to = nullptr, socklen_t len = 0)
{
	for (auto &pkt : q)
		if (sendto(from, pkt.data(), pkt.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(to), len) !=
		    (ssize_t)pkt.size())
			return sys_error("can't requeue %zu bytes on a unix socket", pkt.size());
	return {};
}

// sk bound to e's name, with e's socket file permissions. The dead task's
// socket file is in the way: a socket is replaced, anything else is an
// error.
Status bind_unix_name(int sk, const UnixSkEntry &e)
{
	socklen_t len;
	auto sun = address_of(e, &len);
	if (!sun)
		return sun.error();
	bool abstract = sun->sun_path[0] == 0;
	std::string path(sun->sun_path, abstract ? 0 : strnlen(sun->sun_path, sizeof(sun->sun_path)));
	struct stat st;
	if (!abstract && lstat(path.c_str(), &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return Error{strfmt("unix socket %u: %s exists and is not a socket", e.id, path.c_str())};
		if (unlink(path.c_str()) < 0)
			return sys_error("can't remove the stale socket file %s", path.c_str());
	}
	if (bind(sk, reinterpret_cast<sockaddr *>(&*sun), len) < 0)
		return sys_error("can't bind unix socket %u to %s", e.id, abstract ? "an abstract name" : path.c_str());
	if (!abstract && e.file_perms &&
	    (chmod(path.c_str(), e.file_perms->mode) < 0 ||
	     chown(path.c_str(), e.file_perms->uid, e.file_perms->gid) < 0))
		return sys_error("can't set the permissions of %s", path.c_str());
	return {};
}

}  // namespace

bool is_unix_listener(const UnixSkEntry &e)
{
	return e.state == kListen;
}

Result<int> restore_unix_listener(const UnixSkEntry &e)
{
	Fd sk(socket(AF_UNIX, e.type | SOCK_CLOEXEC, 0));
	if (!sk.valid())
		return sys_error("can't create unix socket %u", e.id);
	TRY(bind_unix_name(sk.get(), e));
	TRY(restore_opts(sk.get(), *e.opts, false));
	if (listen(sk.get(), e.backlog) < 0)
		return sys_error("can't listen on unix socket %u", e.id);
	if (fcntl(sk.get(), F_SETFL, e.flags & O_NONBLOCK) < 0)
		return sys_error("can't set flags of unix socket %u", e.id);
	return sk.release();
}

Result<int> restore_unix_dgram(const UnixSkEntry &e)
{
	Fd sk(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
	if (!sk.valid())
		return sys_error("can't create unix socket %u", e.id);
	if (e.name.len)
		TRY(bind_unix_name(sk.get(), e));
	TRY(restore_opts(sk.get(), *e.opts, false));
	if (fcntl(sk.get(), F_SETFL, e.flags & O_NONBLOCK) < 0)
		return sys_error("can't set flags of unix socket %u", e.id);
	return sk.release();
}

Status connect_unix_dgram(int sk, const UnixSkEntry &e, const UnixSkEntry &peer)
{
	if (peer.type != SOCK_DGRAM || !peer.name.len)
		return Error{strfmt("unix socket %u: its peer %u is not a named datagram socket", e.id, peer.id)};
	socklen_t len;
	auto sun = address_of(peer, &len);
	if (!sun)
		return sun.error();
	if (connect(sk, reinterpret_cast<sockaddr *>(&*sun), len) < 0)
		return sys_error("can't connect unix socket %u to socket %u", e.id, peer.id);
	return {};
}

Status requeue_unix_dgrams(int from, const UnixSkEntry &to, const std::vector<std::string> &q)
{
	if (q.empty())
		return {};
	if (!to.name.len)
		return Error{strfmt("unix socket %u: %zu datagram(s) queued on an unnamed socket can't be sent again",
				    to.id, q.size())};
	socklen_t len;
	auto sun = address_of(to, &len);
	if (!sun)
		return sun.error();
	Fd own;
	if (from < 0) {
		// room for the whole queue at once: it is the receiver's, not ours
		size_t bytes = 1 << 16;
		for (auto &pkt : q)
			bytes += pkt.size() + 2048;
		own.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
		if (!own.valid())
			return sys_error("can't create a unix socket to requeue datagrams");
		TRY(set_int(own.get(), SOL_SOCKET, SO_SNDBUFFORCE, (int)std::min<size_t>(bytes, 1 << 29),
			    "SO_SNDBUFFORCE"));
		from = own.get();
	}
	if (auto st = requeue(from, q, &*sun, len); !st)
		return Error{strfmt("unix socket %u: %s", to.id, st.error().msg.c_str())};
	return {};
}

bool is_unix_socket(int fd)
{
	return get_int(fd, SOL_SOCKET, SO_DOMAIN) == AF_UNIX;
}

Status dump_unix_socket(Arena &a, pid_t pid, int fd, int sk, uint32_t flags, UnixSkEntry *e,
			std::vector<QueuedPacket> &queue)
{
	struct stat st;
	if (fstat(sk, &st) < 0)
		return sys_error("can't stat socket fd %d of PID %d", fd, pid);
	auto peer = unix_peer(st.st_ino);
	if (!peer)
		return Error{strfmt("PID %d fd %d: %s", pid, fd, peer.error().msg.c_str())};
	int type = get_int(sk, SOL_SOCKET, SO_TYPE);
	if (get_int(sk, SOL_SOCKET, SO_ACCEPTCONN))
		return dump_unix_listener(a, pid, fd, sk, flags, st, *peer, e);
	if (!peer->peer && type != SOCK_DGRAM)
		return Error{strfmt("PID %d fd %d: unix socket is not connected; only listening and connected unix "
				    "stream sockets are supported yet",
				    pid, fd)};
	e->ino = st.st_ino;
	e->type = type;
	e->state = peer->peer ? kEstablished : kClose;
	e->flags = flags;
	e->peer = peer->peer;
	e->opts = dump_opts(a, sk, false);
	// an accepted connection is named after its listener, whose socket
	// file is the listener's; a datagram socket is bound again to its own
	TRY(dump_unix_name(a, pid, fd, sk, e));
	if (type == SOCK_DGRAM)
		TRY(dump_socket_file(a, pid, fd, e));
	auto q = peek_queue(sk, type);
	if (!q)
		return Error{strfmt("PID %d fd %d: %s", pid, fd, q.error().msg.c_str())};
	queue = std::move(*q);
	return {};
}

Status restore_unix_pair(const UnixSkEntry &a, const UnixSkEntry &b, const std::vector<std::string> &qa,
			 const std::vector<std::string> &qb, int fds[2])
{
	if (a.type != b.type || a.peer != b.ino || b.peer != a.ino)
		return Error{strfmt("unix sockets %u and %u are not a pair", a.id, b.id)};
	int sv[2];
	if (socketpair(AF_UNIX, a.type | SOCK_CLOEXEC, 0, sv) < 0)
		return sys_error("can't create a unix socket pair (type %u)", a.type);
	Fd fa(sv[0]), fb(sv[1]);
	// what a had queued was sent by b, and the other way round
	TRY(requeue(fb.get(), qa));
	TRY(requeue(fa.get(), qb));
	TRY(restore_opts(fa.get(), *a.opts, false));
	TRY(restore_opts(fb.get(), *b.opts, false));
	if (fcntl(fa.get(), F_SETFL, a.flags & O_NONBLOCK) < 0 || fcntl(fb.get(), F_SETFL, b.flags & O_NONBLOCK) < 0)
		return sys_error("can't set flags of unix sockets");
	fds[0] = fa.release();
	fds[1] = fb.release();
	return {};
}

Status restore_unix_connection(const UnixSkEntry &c, const UnixSkEntry &s, int listener,
			       const std::vector<std::string> &qc, const std::vector<std::string> &qs, int fds[2])
{
	if (c.type != s.type || c.peer != s.ino || s.peer != c.ino)
		return Error{strfmt("unix sockets %u and %u are not a pair", c.id, s.id)};
	socklen_t slen;
	auto saddr = address_of(s, &slen);
	if (!saddr)
		return saddr.error();
	Fd temp;  // the listener is gone: one for this connection only
	if (listener < 0) {
		auto l = restore_unix_listener(s);
		if (!l)
			return l.error();
		temp.reset(*l);
		listener = temp.get();
	}
	Fd fc(socket(AF_UNIX, c.type | SOCK_CLOEXEC, 0));
	if (!fc.valid())
		return sys_error("can't create unix socket %u", c.id);
	if (c.name.len)
		TRY(bind_unix_name(fc.get(), c));
	if (connect(fc.get(), reinterpret_cast<sockaddr *>(&*saddr), slen) < 0)
		return sys_error("can't connect unix socket %u to its listener", c.id);
	Fd fs(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
	if (!fs.valid())
		return sys_error("can't accept unix socket %u", s.id);
	// what c had queued was sent by s, and the other way round
	TRY(requeue(fs.get(), qc));
	TRY(requeue(fc.get(), qs));
	TRY(restore_opts(fc.get(), *c.opts, false));
	TRY(restore_opts(fs.get(), *s.opts, false));
	if (fcntl(fc.get(), F_SETFL, c.flags & O_NONBLOCK) < 0 || fcntl(fs.get(), F_SETFL, s.flags & O_NONBLOCK) < 0)
		return sys_error("can't set flags of unix sockets");
	fds[0] = fc.release();
	fds[1] = fs.release();
	return {};
}

bool is_inet_socket(int fd)
{
	int d = get_int(fd, SOL_SOCKET, SO_DOMAIN);
	return d == AF_INET || d == AF_INET6;
}

Status dump_inet_socket(Arena &a, pid_t pid, int fd, int sk, uint32_t flags, InetSkEntry *e)
{
	struct stat st;
	if (fstat(sk, &st) < 0)
		return sys_error("can't stat socket fd %d of PID %d", fd, pid);
	int family = get_int(sk, SOL_SOCKET, SO_DOMAIN), type = get_int(sk, SOL_SOCKET, SO_TYPE);
	int proto = get_int(sk, SOL_SOCKET, SO_PROTOCOL);
	bool tcp = type == SOCK_STREAM && proto == IPPROTO_TCP, udp = type == SOCK_DGRAM && proto == IPPROTO_UDP;
	if (!tcp && !udp)
		return Error{
		    strfmt("PID %d fd %d: socket of type %d protocol %d is not supported", pid, fd, type, proto)};
	e->ino = st.st_ino;
	e->family = family;
	e->type = type;
	e->proto = proto;
	e->flags = flags;
	sockaddr_storage src{}, dst{};
	socklen_t sl = sizeof(src), dl = sizeof(dst);
	if (getsockname(sk, reinterpret_cast<sockaddr *>(&src), &sl) < 0)
		return sys_error("PID %d fd %d: getsockname", pid, fd);
	bool connected = getpeername(sk, reinterpret_cast<sockaddr *>(&dst), &dl) == 0;
	if (tcp && get_int(sk, SOL_SOCKET, SO_ACCEPTCONN)) {
		auto b = listen_backlog(family, st.st_ino);
		if (!b)
			return Error{strfmt("PID %d fd %d: %s", pid, fd, b.error().msg.c_str())};
		if (b->pending)
			return Error{strfmt("PID %d fd %d: listening socket %s has %u connection(s) waiting to be "
					    "accepted; they can't be saved",
					    pid, fd, addr_str(src).c_str(), b->pending)};
		e->state = kListen;
		e->backlog = b->max;
	} else if (tcp && connected) {
		return Error{strfmt("PID %d fd %d: established TCP connection %s -> %s is not supported (CRIU "
				    "would need --tcp-established)",
				    pid, fd, addr_str(src).c_str(), addr_str(dst).c_str())};
	} else {
		e->state = connected ? kEstablished : kClose;
	}
	put_addr(a, src, &e->n_src_addr, &e->src_addr, &e->src_port);
	if (connected)
		put_addr(a, dst, &e->n_dst_addr, &e->dst_addr, &e->dst_port);
	if (family == AF_INET6) {
		e->has_v6only = true;
		e->v6only = get_int(sk, IPPROTO_IPV6, IPV6_V6ONLY);
	}
	e->opts = dump_opts(a, sk, tcp);
	pr_debug("PID %d fd %d: inet socket %s state %u\n", pid, fd, addr_str(src).c_str(), e->state);
	return {};
}

// The dumped task's own connections on this port may linger a moment after
// it was killed (FIN_WAIT, LAST_ACK: not TIME_WAIT, which SO_REUSEADDR
// would pass): they block the bind until they are gone. Wait for that, a
// little; the socket's own SO_REUSEADDR is kept, so set it only meanwhile.
Status bind_again(int sk, const InetSkEntry &e, const sockaddr_storage &ss, socklen_t len)
{
	int reuse = get_int(sk, SOL_SOCKET, SO_REUSEADDR);
	TRY(set_int(sk, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"));
	for (int tries = 0; bind(sk, reinterpret_cast<const sockaddr *>(&ss), len) < 0; tries++) {
		if (errno != EADDRINUSE || tries >= 200)
			return sys_error("can't bind socket %u to %s", e.id, addr_str(ss).c_str());
		usleep(5000);
	}
	return set_int(sk, SOL_SOCKET, SO_REUSEADDR, reuse, "SO_REUSEADDR");
}

Result<int> restore_inet_socket(const InetSkEntry &e)
{
	if ((e.family != AF_INET && e.family != AF_INET6) || !e.opts)
		return Error{strfmt("inet socket %u: malformed entry (family %u)", e.id, e.family)};
	bool tcp = e.type == SOCK_STREAM;
	Fd sk(socket(e.family, e.type | SOCK_CLOEXEC, e.proto));
	if (!sk.valid())
		return sys_error("can't create socket %u (family %u type %u)", e.id, e.family, e.type);
	TRY(restore_opts(sk.get(), *e.opts, tcp));
	if (e.family == AF_INET6 && e.has_v6only && e.v6only)
		TRY(set_int(sk.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY"));
	sockaddr_storage ss;
	auto len = make_addr(e.family, e.n_src_addr, e.src_addr, e.src_port, ss);
	if (!len)
		return len.error();
	bool any_addr = true;
	for (size_t i = 0; i < e.n_src_addr; i++)
		any_addr = any_addr && e.src_addr[i] == 0;
	if (e.src_port || !any_addr)
		TRY(bind_again(sk.get(), e, ss, *len));
	if (e.state == kListen && listen(sk.get(), e.backlog) < 0)
		return sys_error("can't listen on socket %u", e.id);
	if (e.state == kEstablished && !tcp) {
		auto dl = make_addr(e.family, e.n_dst_addr, e.dst_addr, e.dst_port, ss);
		if (!dl)
			return dl.error();
		if (connect(sk.get(), reinterpret_cast<sockaddr *>(&ss), *dl) < 0)
			return sys_error("can't connect socket %u to %s", e.id, addr_str(ss).c_str());
	}
	if (fcntl(sk.get(), F_SETFL, e.flags & O_NONBLOCK) < 0)
		return sys_error("can't set flags of socket %u", e.id);
	return sk.release();
}

}  // namespace criu
