// Prepared restores (`criu service --prepare N`).
//
// After the service restores from an image directory, it makes a spare
// for that directory's next restore: a process that already holds the
// root task's private memory, read from the pages images and faulted in at
// the dumped addresses (as a template holder does, see template.h). A
// later RESTORE of the same directory, its files unchanged, is served by
// the spare: the root inherits that memory when the spare forks it, the
// restorer reads none of it, and the spare then drops its copy, so the
// memory is the root's alone: private and anonymous, as a plain restore
// makes it. What the spare cannot hold (shared memory, memfd maps, other
// tasks' memory) is restored as usual.
//
// The service's main process keeps at most N spares, one per directory,
// and drops the least recently restored one first. Workers and spares tell
// it which directory they restored through an inbox socket. A spare
// listens on an abstract unix socket named after the service and the
// directory (its device and inode), root peers only; a worker connects
// there and hands over its client's connection. The spare takes it unless
// a file of the directory changed since it read them (by inode, size,
// mtime or ctime; logs, *.log, aside); otherwise, or if there is no spare,
// the worker restores as usual. A spare whose memory collides with the service's own
// mappings, or whose images can't be read, is not made again for that
// directory.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "image.h"
#include "options.h"
#include "rpc.pb-c.h"
#include "util.h"

namespace criu
{

// What a spare holds, for the restore it serves.
struct HeldMemory {
	std::vector<HeldRange> ranges;
	int dir_fd = -1;  // the image directory the memory was read from
	dev_t dev = 0;
	ino_t ino = 0;
	// A template's memory, served on its holder's own RPC socket: the
	// template's name, and the check that a request's images (a path) are
	// the ones the template was made from. Unset for a service's spare.
	// own_images: the path of the template's copy of the dump, restored
	// for a request whose images_dir_fd is -1 (check_images gets "").
	std::string template_name, own_images;
	std::function<Status(const std::string &)> check_images;
	// Same directory as path (the request's images_dir)?
	bool serves(const std::string &path) const;
	// Drops the memory: the restored root keeps the only copy.
	void release();
};

// A process with held memory serves the CRIU RPC connection conn_fd (it
// takes it): its first RESTORE gets that memory (see HeldMemory). first
// (len bytes, a packed criu_req), if not null, is the connection's first
// request, read by the process that handed the connection over. Returns
// the process's exit code.
int serve_rpc_with(int conn_fd, HeldMemory &held, const void *first = nullptr, size_t len = 0);

class SparePool;
// A spare serves the connection it took, starting with the request the
// worker had read; returns the process's exit code.
using ServeFn = std::function<int(SparePool &pool, int conn_fd, PbPtr<CriuReq> first, HeldMemory &held)>;

class SparePool
{
public:
	// max 0: no spares; every call below then does nothing.
	SparePool(size_t max, int listener_fd, ServeFn serve);
	Status open();
	bool enabled() const { return max_ > 0; }

	// In the service's main process, around its poll().
	void add_pollfds(std::vector<pollfd> &fds) const;
	void handle(const pollfd *fds);

	// In a worker, which inherited the pool: closes what is the main
	// process's alone.
	void in_worker();
	// Hands the connection to the spare of images_dir; true once it took
	// it (the worker is then done with the connection).
	bool hand_over(const std::string &images_dir, int conn_fd, const CriuReq &req) const;
	// The image directory dir was restored: the main process prepares its
	// next restore. (Opened before the answer: the client's fd the path
	// goes through may be closed once it has it.)
	void restored(Fd dir) const;
	// The same on request (RPC PREPARE), once the spare holds the memory.
	Status prepare(Fd dir) const;

private:
	struct Spare {
		dev_t dev;
		ino_t ino;
		Fd ctl;	 // the spare ends when it reads the end of it
		uint64_t used;
		bool ready = false;
		// PREPARE requests' answer sockets: closed unanswered (a
		// failure) if the spare goes before it is ready
		std::vector<Fd> waiting;
	};

	std::string name(dev_t dev, ino_t ino) const;
	Spare *want(Fd dir);
	void start(Fd dir, dev_t dev, ino_t ino);
	[[noreturn]] void run(Fd ctl, Fd dir, dev_t dev, ino_t ino);

	size_t max_;
	pid_t service_;
	int listener_;
	ServeFn serve_;
	Fd inbox_rd_, inbox_wr_;
	std::vector<Spare> spares_;
	std::set<std::pair<dev_t, ino_t>> failed_;
	uint64_t clock_ = 0;
};

}  // namespace criu
