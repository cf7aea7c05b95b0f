// Sockets (files.img inet_sk_entry).
//
// Dump looks at the task's socket through a duplicate taken with
// pidfd_getfd(): the same socket, so getsockname/getsockopt tell its real
// state. Supported: TCP sockets that are listening (with an empty accept
// queue), bound or fresh; UDP sockets, bound and/or connected; IPv4 and
// IPv6. An established TCP connection, a listening socket with
// connections waiting, and every other family are refused with an error
// naming the PID and fd.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "arena.h"
#include "util.h"

struct InetSkEntry;
struct UnixSkEntry;

namespace criu
{

// True if fd (a duplicate of the task's socket) is AF_INET or AF_INET6.
bool is_inet_socket(int fd);

// Fills e (initialised by the caller with id and fown) from sk, the
// duplicate of the task's socket fd (named in errors as PID/fd).
Status dump_inet_socket(Arena &a, pid_t pid, int fd, int sk, uint32_t flags, InetSkEntry *e);

// A new socket in the state e describes.
Result<int> restore_inet_socket(const InetSkEntry &e);

bool is_unix_socket(int fd);

// Unix sockets: listening ones (absolute path or abstract name, empty
// accept queue), connected pairs with both ends in the tree (socketpair,
// or a stream/seqpacket connection through a named listener: the accepted
// end carries the listener's name), and datagram sockets, named or not,
// connected or not (a connected one's peer must be in the tree, named or
// its socketpair peer); queued packets are returned for sk-queues.img.
struct QueuedPacket {
	std::string data;
};
Status dump_unix_socket(Arena &a, pid_t pid, int fd, int sk, uint32_t flags, UnixSkEntry *e,
			std::vector<QueuedPacket> &queue);

// A listening unix socket (path or abstract name), its stale socket file
// replaced.
bool is_unix_listener(const UnixSkEntry &e);
Result<int> restore_unix_listener(const UnixSkEntry &e);

// A datagram socket that is not one of an unnamed pair, bound to its name
// (a stale socket file replaced). Once every such socket exists,
// connect_unix_dgram() connects it to its peer (by name), and
// requeue_unix_dgrams() sends it its queued datagrams again from `from`:
// its peer, the only socket a connected one takes datagrams from, or -1
// for a socket of our own (the senders' addresses are not saved, as with
// CRIU).
Result<int> restore_unix_dgram(const UnixSkEntry &e);
Status connect_unix_dgram(int sk, const UnixSkEntry &e, const UnixSkEntry &peer);
Status requeue_unix_dgrams(int from, const UnixSkEntry &to, const std::vector<std::string> &q);

// Both ends of a pair, at once: fds[0] is for a, fds[1] for b; each one's
// queue is refilled from the other end.
Status restore_unix_pair(const UnixSkEntry &a, const UnixSkEntry &b, const std::vector<std::string> &qa,
			 const std::vector<std::string> &qb, int fds[2]);

// A connection through a listener, made again the way it was made: c
// (bound first if it had a name) connects to s's name and the listener
// (listener, or a temporary one at that name if the tree's is gone)
// accepts s, so both ends have their names. fds[0] is c, fds[1] s.
Status restore_unix_connection(const UnixSkEntry &c, const UnixSkEntry &s, int listener,
			       const std::vector<std::string> &qc, const std::vector<std::string> &qs, int fds[2]);

}  // namespace criu
