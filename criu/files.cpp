#include "files.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/timerfd.h>

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <set>

#include "arena.h"
#include "eventpoll.pb-c.h"
#include "fdinfo.pb-c.h"
#include "fh.pb-c.h"
#include "fsnotify.pb-c.h"
#include "signalfd.pb-c.h"
#include "timerfd.pb-c.h"
#include "ghost-file.pb-c.h"
#include "memfd.pb-c.h"
#include "pagemap.pb-c.h"
#include "log.h"
#include "mem.h"
#include "magic.h"
#include "pipe-data.pb-c.h"
#include "proc.h"
#include "remap-file-path.pb-c.h"
#include "sk-inet.pb-c.h"
#include "sk-packet.pb-c.h"
#include "sk-unix.pb-c.h"
#include "sockets.h"

namespace criu
{

namespace
{

constexpr size_t kMaxGhost = 64u << 20;
constexpr uint32_t kMemfdPagesBase = 1000000;  // pages-N.img ids of memfd contents, above any task's

bool is_tty(const struct stat &st)
{
	unsigned maj = major(st.st_rdev), min = minor(st.st_rdev);
	return S_ISCHR(st.st_mode) && (maj == 136 || maj == 4 || (maj == 5 && min <= 2));
}

constexpr std::string_view kDeleted = " (deleted)";

// Character devices whose open file has no state worth saving: the memory
// devices (major 1) null, zero, full, random and urandom.
bool stateless_device(dev_t rdev)
{
	unsigned mi = minor(rdev);
	return major(rdev) == 1 && (mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9);
}

// Copies what a pipe holds without consuming it: tee() into our own pipe.
Result<std::string> peek_pipe(pid_t pid, int fd, uint32_t *size)
{
	auto path = strfmt("/proc/%d/fd/%d", pid, fd);
	Fd src(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
	if (!src.valid())
		return sys_error("can't open pipe %s", path.c_str());
	int psize = fcntl(src.get(), F_GETPIPE_SZ);
	if (psize < 0)
		return sys_error("can't get the size of pipe %s", path.c_str());
	*size = psize;
	int p[2];
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return sys_error("can't create a pipe");
	Fd r(p[0]), w(p[1]);
	if (fcntl(w.get(), F_SETPIPE_SZ, psize) < 0)
		return sys_error("can't size a pipe to %d bytes", psize);
	ssize_t n = tee(src.get(), w.get(), psize, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN)
		return sys_error("can't copy the data of pipe %s", path.c_str());
	std::string data(n > 0 ? n : 0, '\0');
	if (n > 0)
		TRY(read_all(r.get(), data.data(), n, "pipe copy"));
	return data;
}

}  // namespace

struct FileTable::Impl {
	Arena arena;
	std::vector<FileEntry *> files;
	std::vector<std::pair<uint32_t, std::string>> pipe_data, fifo_data;  // pipe_id, bytes
	std::vector<std::pair<uint32_t, std::string>> sk_queues;	     // socket file id, packet
	std::set<uint64_t> pipes_seen, fifos_seen;
	std::vector<RemapFilePathEntry *> remaps;
	std::map<std::string, uint32_t> mapped;	 // "path|flags" -> id
	uint32_t next_id = 1;
	const ImageDir *dir = nullptr;

	struct Known {
		pid_t pid;
		int fd;
		uint32_t id;
		dev_t dev;
		ino_t ino;
	};
	std::vector<Known> known;  // open file descriptions already described
	Fd pidfd;		   // of the task, to take its sockets

	FileEntry *new_file(FdTypes type)
	{
		auto *f = arena.make<FileEntry>(FILE_ENTRY__INIT);
		f->type = type;
		f->id = next_id++;
		files.push_back(f);
		return f;
	}

	FownEntry *fown() { return arena.make<FownEntry>(FOWN_ENTRY__INIT); }

	Result<RegFileEntry *> reg(FileEntry *f, std::string path, uint32_t flags, uint64_t pos, const struct stat &st,
				   int mnt_id, const std::string &content_path)
	{
		auto *r = arena.make<RegFileEntry>(REG_FILE_ENTRY__INIT);
		r->id = f->id;
		r->flags = flags;
		r->pos = pos;
		r->fown = fown();
		r->has_size = true;
		r->size = st.st_size;
		r->has_mode = true;
		r->mode = st.st_mode;
		r->has_mnt_id = mnt_id >= 0;
		r->mnt_id = mnt_id;
		if (path.starts_with("/memfd:"))
			return Error{strfmt("%s is a memfd, which is not supported yet", content_path.c_str())};
		if (std::string_view(path).ends_with(kDeleted)) {
			path.resize(path.size() - kDeleted.size());
			TRY(ghost(f->id, st, content_path));
		}
		r->name = arena.str(path);
		f->reg = r;
		return r;
	}

	// A deleted file is saved whole and recreated (then unlinked) at restore.
	Status ghost(uint32_t id, const struct stat &st, const std::string &content_path)
	{
		if (!S_ISREG(st.st_mode))
			return Error{strfmt("%s: deleted non-regular files are not supported", content_path.c_str())};
		if ((size_t)st.st_size > kMaxGhost)
			return Error{strfmt("%s: deleted file of %lld bytes is larger than the %zu-byte ghost limit",
					    content_path.c_str(), (long long)st.st_size, kMaxGhost)};
		Fd in(open(content_path.c_str(), O_RDONLY | O_CLOEXEC));
		if (!in.valid())
			return sys_error("can't open deleted file %s", content_path.c_str());
		std::string data(st.st_size, '\0');
		if (pread(in.get(), data.data(), data.size(), 0) != (ssize_t)data.size())
			return sys_error("can't read deleted file %s", content_path.c_str());
		GhostFileEntry g = GHOST_FILE_ENTRY__INIT;
		g.uid = st.st_uid;
		g.gid = st.st_gid;
		g.mode = st.st_mode;
		g.has_size = true;
		g.size = st.st_size;
		auto w = ImageWriter::create(*dir, strfmt("ghost-file-%u.img", id), GHOST_FILE_MAGIC);
		if (!w)
			return w.error();
		TRY(w->write(&g.base));
		TRY(w->write_raw(data.data(), data.size()));
		TRY(w->close());
		auto *rm = arena.make<RemapFilePathEntry>(REMAP_FILE_PATH_ENTRY__INIT);
		rm->orig_id = id;
		rm->remap_id = id;
		rm->has_remap_type = true;
		rm->remap_type = REMAP_TYPE__GHOST;
		remaps.push_back(rm);
		return {};
	}

	Result<uint32_t> dump_fd(pid_t pid, int fd, bool shell_job, uint32_t *fd_flags);

	// memfds: one inode entry per memfd (memfd.img) with its contents as
	// shmem pages (pagemap-shmem-ID.img + pages-N.img, offsets as vaddr),
	// and one MEMFD file entry per open file description or mapping.
	std::map<ino_t, uint32_t> memfd_inodes;
	std::vector<MemfdInodeEntry *> memfd_entries;

	Result<FileEntry *> memfd(const std::string &link, const std::string &content_path, uint32_t flags,
				  uint64_t pos)
	{
		Fd in(::open(content_path.c_str(), O_RDONLY | O_CLOEXEC));
		if (!in.valid())
			return sys_error("can't open memfd %s", content_path.c_str());
		struct stat st;
		if (fstat(in.get(), &st) < 0)
			return sys_error("can't stat memfd %s", content_path.c_str());
		auto it = memfd_inodes.find(st.st_ino);
		uint32_t inode_id;
		if (it != memfd_inodes.end()) {
			inode_id = it->second;
		} else {
			inode_id = memfd_inodes.size() + 1;
			memfd_inodes[st.st_ino] = inode_id;
			auto *m = arena.make<MemfdInodeEntry>(MEMFD_INODE_ENTRY__INIT);
			std::string name = link.substr(strlen("/memfd:"));
			if (std::string_view(name).ends_with(kDeleted))
				name.resize(name.size() - kDeleted.size());
			m->name = arena.str(name);
			m->uid = st.st_uid;
			m->gid = st.st_gid;
			m->size = st.st_size;
			m->shmid = inode_id;
			int seals = fcntl(in.get(), F_GET_SEALS);
			m->seals = seals < 0 ? 0 : seals;
			m->inode_id = inode_id;
			memfd_entries.push_back(m);
			TRY(memfd_contents(in.get(), inode_id, st.st_size));
		}
		auto *f = new_file(FD_TYPES__MEMFD);
		auto *e = arena.make<MemfdFileEntry>(MEMFD_FILE_ENTRY__INIT);
		e->id = f->id;
		e->flags = flags;
		e->pos = pos;
		e->fown = fown();
		e->inode_id = inode_id;
		f->memfd = e;
		return f;
	}

	Status memfd_contents(int fd, uint32_t inode_id, uint64_t size)
	{
		uint32_t pages_id = kMemfdPagesBase + inode_id;
		auto pm = ImageWriter::create(*dir, strfmt("pagemap-shmem-%u.img", inode_id), PAGEMAP_MAGIC);
		if (!pm)
			return pm.error();
		auto pages = ImageWriter::create_raw(*dir, strfmt("pages-%u.img", pages_id));
		if (!pages)
			return pages.error();
		PagemapHead h = PAGEMAP_HEAD__INIT;
		h.pages_id = pages_id;
		TRY(pm->write(&h.base));
		std::string buf;
		for (uint64_t off = 0; off < size;) {
			off_t data = lseek(fd, off, SEEK_DATA);
			if (data < 0)
				break;	// ENXIO: no more data
			off_t hole = lseek(fd, data, SEEK_HOLE);
			uint64_t from = (uint64_t)data & ~(kPageSize - 1);
			uint64_t to = std::min<uint64_t>(((uint64_t)hole + kPageSize - 1) & ~(kPageSize - 1),
							 (size + kPageSize - 1) & ~(kPageSize - 1));
			if (to <= from)
				break;
			buf.assign(to - from, '\0');
			if (pread(fd, buf.data(), buf.size(), from) < 0)
				return sys_error("can't read memfd contents");
			PagemapEntry e = PAGEMAP_ENTRY__INIT;
			e.vaddr = from;
			e.nr_pages = (to - from) / kPageSize;
			e.has_flags = true;
			e.flags = 1u << 2;  // PE_PRESENT
			TRY(pm->write(&e.base));
			TRY(pages->write_raw(buf.data(), buf.size()));
			off = to;
		}
		TRY(pm->close());
		return pages->close();
	}

	// fdinfo: "clockid", "ticks", "settime flags", "it_value: (s, ns)", "it_interval: (s, ns)"
	Result<TimerfdEntry *> timerfd(uint32_t id, uint32_t flags, const FdInfo &fi)
	{
		auto *e = arena.make<TimerfdEntry>(TIMERFD_ENTRY__INIT);
		e->id = id;
		e->flags = flags;
		e->fown = fown();
		auto get = [&](const char *k) -> const std::string * {
			auto it = fi.extra.find(k);
			return it == fi.extra.end() ? nullptr : &it->second;
		};
		auto *clk = get("clockid"), *ticks = get("ticks"), *sf = get("settime flags");
		auto *val = get("it_value"), *intv = get("it_interval");
		if (!clk || !ticks || !sf || !val || !intv)
			return Error{"timerfd fdinfo lacks clockid/ticks/settime flags/it_value/it_interval"};
		e->clockid = parse_u64(*clk).value_or(0);
		e->ticks = parse_u64(*ticks).value_or(0);
		e->settime_flags = parse_u64(*sf, 8).value_or(0);
		unsigned long long a, b, c, d;
		if (sscanf(val->c_str(), "(%llu, %llu)", &a, &b) != 2 ||
		    sscanf(intv->c_str(), "(%llu, %llu)", &c, &d) != 2)
			return Error{"can't parse timerfd times"};
		e->vsec = a, e->vnsec = b, e->isec = c, e->insec = d;
		return e;
	}

	// fdinfo: one "inotify wd:W ino:I sdev:D mask:M ignored_mask:G
	// fhandle-bytes:B fhandle-type:T f_handle:HEX" line per watch (hex numbers)
	Result<InotifyFileEntry *> inotify(uint32_t id, uint32_t flags, const FdInfo &fi)
	{
		auto *e = arena.make<InotifyFileEntry>(INOTIFY_FILE_ENTRY__INIT);
		e->id = id;
		e->flags = flags;
		e->fown = fown();
		std::vector<InotifyWdEntry *> wds;
		for (auto &l : fi.lines) {
			if (!l.starts_with("inotify wd:"))
				continue;
			unsigned wd, sdev, mask, ign, bytes, type;
			unsigned long long ino;
			char hex[2 * 128 + 1];
			if (sscanf(l.c_str(),
				   "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x "
				   "fhandle-type:%x f_handle:%256s",
				   &wd, &ino, &sdev, &mask, &ign, &bytes, &type, hex) != 8 ||
			    bytes > 128 || strlen(hex) != 2 * bytes)
				return Error{"can't parse inotify line: " + l};
			auto *w = arena.make<InotifyWdEntry>(INOTIFY_WD_ENTRY__INIT);
			w->id = id;
			w->i_ino = ino;
			w->mask = mask;
			w->ignored_mask = ign;
			w->s_dev = sdev;
			w->wd = wd;
			auto *fh = arena.make<FhEntry>(FH_ENTRY__INIT);
			fh->bytes = bytes;
			fh->type = type;
			fh->n_handle = (bytes + 7) / 8;
			fh->handle = arena.array<uint64_t>(fh->n_handle);
			auto *raw = reinterpret_cast<uint8_t *>(fh->handle);
			for (unsigned i = 0; i < bytes; i++)
				raw[i] = std::stoul(std::string(hex + 2 * i, 2), nullptr, 16);
			w->f_handle = fh;
			wds.push_back(w);
		}
		e->n_wd = wds.size();
		e->wd = arena.copy(wds);
		return e;
	}

	// fdinfo: one "tfd: N events: X data: Y ..." line per registered fd
	Result<EventpollFileEntry *> eventpoll(uint32_t id, uint32_t flags, const FdInfo &fi)
	{
		auto *e = arena.make<EventpollFileEntry>(EVENTPOLL_FILE_ENTRY__INIT);
		e->id = id;
		e->flags = flags;
		e->fown = fown();
		std::vector<EventpollTfdEntry *> tfds;
		for (auto &l : fi.lines) {
			if (!l.starts_with("tfd:"))
				continue;
			unsigned tfd, events;
			unsigned long long data;
			if (sscanf(l.c_str(), "tfd: %u events: %x data: %llx", &tfd, &events, &data) != 3)
				return Error{"can't parse eventpoll line: " + l};
			auto *t = arena.make<EventpollTfdEntry>(EVENTPOLL_TFD_ENTRY__INIT);
			t->id = id;
			t->tfd = tfd;
			t->events = events;
			t->data = data;
			tfds.push_back(t);
		}
		e->n_tfd = tfds.size();
		e->tfd = arena.copy(tfds);
		return e;
	}
};

FileTable::FileTable(const ImageDir &dir) : impl_(std::make_unique<Impl>())
{
	impl_->dir = &dir;
}
FileTable::~FileTable() = default;

Result<uint32_t> FileTable::add_mapped(pid_t pid, const std::string &map_files_path, const std::string &path,
				       uint32_t flags)
{
	auto key = path + "|" + std::to_string(flags);
	if (auto it = impl_->mapped.find(key); it != impl_->mapped.end())
		return it->second;
	if (path.starts_with("/memfd:")) {
		auto f = impl_->memfd(path, map_files_path, flags, 0);
		if (!f)
			return f.error();
		impl_->mapped[key] = (*f)->id;
		return (*f)->id;
	}
	struct stat st;
	if (stat(map_files_path.c_str(), &st) < 0)
		return sys_error("can't stat mapped file %s of PID %d", path.c_str(), pid);
	auto *f = impl_->new_file(FD_TYPES__REG);
	auto r = impl_->reg(f, path, flags, 0, st, -1, map_files_path);
	if (!r)
		return r.error();
	impl_->mapped[key] = f->id;
	return f->id;
}

Result<uint32_t> FileTable::Impl::dump_fd(pid_t pid, int fd, bool shell_job, uint32_t *fd_flags)
{
	auto fdpath = strfmt("/proc/%d/fd/%d", pid, fd);
	auto link = read_link(fdpath);
	if (!link)
		return link.error();
	auto fi = parse_fdinfo(pid, fd);
	if (!fi)
		return fi.error();
	struct stat st;
	if (stat(fdpath.c_str(), &st) < 0)
		return sys_error("can't stat fd %d of PID %d (%s)", fd, pid, link->c_str());
	*fd_flags = (fi->flags & O_CLOEXEC) ? FD_CLOEXEC : 0;
	uint32_t flags = fi->flags & ~O_CLOEXEC;
	// fdinfo lists the locks this task holds on the file ("lock: 1: FLOCK ...")
	if (auto lk = fi->extra.find("lock"); lk != fi->extra.end())
		return Error{strfmt("PID %d fd %d: %s holds a file lock (%s); file locks are not supported yet", pid,
				    fd, link->c_str(), lk->second.c_str())};

	// dup()ed descriptors share one file entry (and so the offset)
	for (auto &k : known)
		if (k.dev == st.st_dev && k.ino == st.st_ino && syscall(SYS_kcmp, pid, k.pid, KCMP_FILE, fd, k.fd) == 0)
			return k.id;

	FileEntry *f = nullptr;
	if (link->starts_with("pipe:[")) {
		f = new_file(FD_TYPES__PIPE);
		auto *p = arena.make<PipeEntry>(PIPE_ENTRY__INIT);
		p->id = f->id;
		p->pipe_id = st.st_ino;
		p->flags = flags;
		p->fown = fown();
		f->pipe = p;
		if (pipes_seen.insert(st.st_ino).second) {
			uint32_t size;
			auto data = peek_pipe(pid, fd, &size);
			if (!data)
				return data.error();
			pipe_data.emplace_back(st.st_ino, std::move(*data));
		}
	} else if (S_ISFIFO(st.st_mode)) {
		// A FIFO is a path (a REG entry) plus the pipe behind it.
		auto *path_entry = new_file(FD_TYPES__REG);
		auto r = reg(path_entry, *link, O_RDWR, 0, st, fi->mnt_id, fdpath);
		if (!r)
			return r.error();
		f = new_file(FD_TYPES__FIFO);
		auto *e = arena.make<FifoEntry>(FIFO_ENTRY__INIT);
		e->id = f->id;
		e->pipe_id = st.st_ino;
		e->has_regf_id = true;
		e->regf_id = path_entry->id;
		f->fifo = e;
		// the open flags of the fd itself
		(*r)->flags = flags;
		if (fifos_seen.insert(st.st_ino).second) {
			uint32_t size;
			auto data = peek_pipe(pid, fd, &size);
			if (!data)
				return data.error();
			fifo_data.emplace_back(st.st_ino, std::move(*data));
		}
	} else if (link->starts_with("/memfd:")) {
		auto r = memfd(*link, fdpath, flags, fi->pos);
		if (!r)
			return r.error();
		f = *r;
	} else if (*link == "anon_inode:[eventfd]") {
		f = new_file(FD_TYPES__EVENTFD);
		auto *e = arena.make<EventfdFileEntry>(EVENTFD_FILE_ENTRY__INIT);
		e->id = f->id;
		e->flags = flags;
		e->fown = fown();
		auto it = fi->extra.find("eventfd-count");
		e->counter = it == fi->extra.end() ? 0 : parse_u64(it->second, 16).value_or(0);
		auto sem = fi->extra.find("eventfd-semaphore");
		if (sem != fi->extra.end() && sem->second == "1")
			e->flags |= EFD_SEMAPHORE;
		f->efd = e;
	} else if (*link == "anon_inode:[timerfd]") {
		f = new_file(FD_TYPES__TIMERFD);
		auto r = timerfd(f->id, flags, *fi);
		if (!r)
			return Error{strfmt("PID %d fd %d: %s", pid, fd, r.error().msg.c_str())};
		f->tfd = *r;
	} else if (*link == "anon_inode:[signalfd]") {
		f = new_file(FD_TYPES__SIGNALFD);
		auto *e = arena.make<SignalfdEntry>(SIGNALFD_ENTRY__INIT);
		e->id = f->id;
		e->flags = flags;
		e->fown = fown();
		auto it = fi->extra.find("sigmask");
		if (it == fi->extra.end())
			return Error{strfmt("PID %d fd %d: signalfd without a sigmask in fdinfo", pid, fd)};
		e->sigmask = parse_u64(it->second, 16).value_or(0);
		f->sgfd = e;
	} else if (link->starts_with("socket:[")) {
		if (!pidfd.valid())
			pidfd.reset(syscall(SYS_pidfd_open, pid, 0));
		Fd sk(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0));
		if (!sk.valid())
			return sys_error("can't take socket fd %d of PID %d", fd, pid);
		if (is_unix_socket(sk.get())) {
			f = new_file(FD_TYPES__UNIXSK);
			auto *e = arena.make<UnixSkEntry>(UNIX_SK_ENTRY__INIT);
			e->id = f->id;
			e->fown = fown();
			std::vector<QueuedPacket> q;
			TRY(dump_unix_socket(arena, pid, fd, sk.get(), flags, e, q));
			for (auto &pkt : q)
				sk_queues.emplace_back(f->id, std::move(pkt.data));
			f->usk = e;
			known.push_back({pid, fd, f->id, st.st_dev, st.st_ino});
			return f->id;
		}
		if (!is_inet_socket(sk.get()))
			return Error{
			    strfmt("PID %d fd %d: %s is neither a unix nor an IPv4/IPv6 socket; others are not "
				   "supported yet",
				   pid, fd, link->c_str())};
		f = new_file(FD_TYPES__INETSK);
		auto *e = arena.make<InetSkEntry>(INET_SK_ENTRY__INIT);
		e->id = f->id;
		e->fown = fown();
		TRY(dump_inet_socket(arena, pid, fd, sk.get(), flags, e));
		f->isk = e;
	} else if (*link == "anon_inode:inotify") {
		f = new_file(FD_TYPES__INOTIFY);
		auto r = inotify(f->id, flags, *fi);
		if (!r)
			return Error{strfmt("PID %d fd %d: %s", pid, fd, r.error().msg.c_str())};
		f->ify = *r;
	} else if (*link == "anon_inode:[eventpoll]") {
		f = new_file(FD_TYPES__EVENTPOLL);
		auto r = eventpoll(f->id, flags, *fi);
		if (!r)
			return Error{strfmt("PID %d fd %d: %s", pid, fd, r.error().msg.c_str())};
		f->epfd = *r;
	} else if (is_tty(st)) {
		if (!shell_job)
			return Error{strfmt("PID %d has a terminal on fd %d (%s); dump it with --shell-job", pid, fd,
					    link->c_str())};
		// A shell job's terminal is the restoring shell's: keep only flags.
		f = new_file(FD_TYPES__TTY);
		auto *t = arena.make<TtyFileEntry>(TTY_FILE_ENTRY__INIT);
		t->id = f->id;
		t->tty_info_id = 0;
		t->flags = flags;
		t->fown = fown();
		f->tty = t;
	} else if (S_ISBLK(st.st_mode) || (S_ISCHR(st.st_mode) && !stateless_device(st.st_rdev))) {
		return Error{strfmt("PID %d fd %d: %s device %s (%u:%u) is not supported: only the memory devices "
				    "(/dev/null, zero, full, random, urandom) can be reopened without losing state",
				    pid, fd, S_ISBLK(st.st_mode) ? "block" : "character", link->c_str(),
				    major(st.st_rdev), minor(st.st_rdev))};
	} else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISCHR(st.st_mode)) {
		if (!link->starts_with("/"))
			return Error{strfmt("PID %d fd %d: unsupported file %s", pid, fd, link->c_str())};
		f = new_file(FD_TYPES__REG);
		auto r = reg(f, *link, flags, fi->pos, st, fi->mnt_id, fdpath);
		if (!r)
			return r.error();
	} else {
		return Error{strfmt("PID %d fd %d: unsupported file type %s", pid, fd, link->c_str())};
	}
	known.push_back({pid, fd, f->id, st.st_dev, st.st_ino});
	return f->id;
}

Status FileTable::dump_fds(pid_t pid, const ImageDir &dir, uint32_t files_id, bool shell_job)
{
	auto fds = list_fds(pid);
	if (!fds)
		return fds.error();
	impl_->pidfd.reset();
	auto w = ImageWriter::create(dir, strfmt("fdinfo-%u.img", files_id), FDINFO_MAGIC);
	if (!w)
		return w.error();
	for (int fd : *fds) {
		uint32_t fd_flags = 0;
		auto id = impl_->dump_fd(pid, fd, shell_job, &fd_flags);
		if (!id)
			return id.error();
		FdinfoEntry e = FDINFO_ENTRY__INIT;
		e.id = *id;
		e.flags = fd_flags;
		e.fd = fd;
		for (auto *f : impl_->files)
			if (f->id == *id)
				e.type = f->type;
		pr_debug("fd %d -> file id %u type %d\n", fd, *id, e.type);
		TRY(w->write(&e.base));
	}
	return w->close();
}

Status FileTable::check_peers() const
{
	std::map<uint32_t, const UnixSkEntry *> inos;
	for (auto *f : impl_->files)
		if (f->usk)
			inos[f->usk->ino] = f->usk;
	for (auto *f : impl_->files) {
		if (!f->usk || !f->usk->peer)
			continue;
		auto k = std::find_if(impl_->known.begin(), impl_->known.end(),
				      [&](const Impl::Known &k) { return k.id == f->id; });
		int pid = k == impl_->known.end() ? 0 : k->pid, fd = k == impl_->known.end() ? -1 : k->fd;
		auto peer = inos.find(f->usk->peer);
		if (peer == inos.end())
			return Error{strfmt("PID %d fd %d: unix socket %u is connected to socket %u outside the dumped "
					    "tree; not supported",
					    pid, fd, f->usk->ino, f->usk->peer)};
		// a datagram socket is connected again by its peer's name, unless
		// both are an unnamed pair
		const UnixSkEntry &p = *peer->second;
		bool pair = p.peer == f->usk->ino && !p.name.len && !f->usk->name.len;
		if (f->usk->type == SOCK_DGRAM && !p.name.len && !pair)
			return Error{strfmt(
			    "PID %d fd %d: unix datagram socket %u is connected to the unnamed socket %u; only a "
			    "named peer or the other end of an unnamed socketpair can be connected again",
			    pid, fd, f->usk->ino, p.ino)};
	}
	return {};
}

static Status write_pipe_data(const ImageDir &dir, const char *name, uint32_t magic,
			      const std::vector<std::pair<uint32_t, std::string>> &data)
{
	auto w = ImageWriter::create(dir, name, magic);
	if (!w)
		return w.error();
	for (auto &[id, bytes] : data) {
		if (bytes.empty())
			continue;
		PipeDataEntry e = PIPE_DATA_ENTRY__INIT;
		e.pipe_id = id;
		e.bytes = bytes.size();
		TRY(w->write(&e.base));
		TRY(w->write_raw(bytes.data(), bytes.size()));
	}
	return w->close();
}

Status FileTable::write(const ImageDir &dir)
{
	auto w = ImageWriter::create(dir, "files.img", FILES_MAGIC);
	if (!w)
		return w.error();
	for (auto *f : impl_->files)
		TRY(w->write(&f->base));
	TRY(w->close());
	TRY(write_pipe_data(dir, "pipes-data.img", PIPES_DATA_MAGIC, impl_->pipe_data));
	TRY(write_pipe_data(dir, "fifo-data.img", FIFO_DATA_MAGIC, impl_->fifo_data));
	auto r = ImageWriter::create(dir, "remap-fpath.img", REMAP_FPATH_MAGIC);
	if (!r)
		return r.error();
	for (auto *m : impl_->remaps)
		TRY(r->write(&m->base));
	TRY(r->close());
	auto q = ImageWriter::create(dir, "sk-queues.img", SK_QUEUES_MAGIC);
	if (!q)
		return q.error();
	for (auto &[id, data] : impl_->sk_queues) {
		SkPacketEntry e = SK_PACKET_ENTRY__INIT;
		e.id_for = id;
		e.length = data.size();
		TRY(q->write(&e.base));
		TRY(q->write_raw(data.data(), data.size()));
	}
	TRY(q->close());
	auto m = ImageWriter::create(dir, "memfd.img", MEMFD_INODE_MAGIC);
	if (!m)
		return m.error();
	for (auto *e : impl_->memfd_entries)
		TRY(m->write(&e->base));
	return m->close();
}

// ---------------------------------------------------------------- restore

const FileEntry *RestoredFiles::find(uint32_t id) const
{
	for (auto &f : files)
		if (f->id == id)
			return f.get();
	return nullptr;
}

static Status read_pipe_data(const ImageDir &dir, const char *name, uint32_t magic,
			     std::map<uint32_t, std::string> &out)
{
	auto r = ImageReader::open(dir, name, magic, true);
	if (!r)
		return r.error();
	for (;;) {
		auto e = r->next<PipeDataEntry>(pipe_data_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		auto data = r->take_raw((*e)->bytes);
		if (!data)
			return data.error();
		out[(*e)->pipe_id] = std::string(*data);
	}
	return {};
}

static Status read_memfds(const ImageDir &dir, const ImageDir &pages_dir, RestoredFiles &rf)
{
	auto r = ImageReader::open(dir, "memfd.img", MEMFD_INODE_MAGIC, true);
	if (!r)
		return r.error();
	for (;;) {
		auto e = r->next<MemfdInodeEntry>(memfd_inode_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		RestoredFiles::Memfd m;
		uint32_t id = (*e)->inode_id;
		auto name = strfmt("pagemap-shmem-%u.img", id);
		auto pm = read_pagemap(dir, name);
		if (!pm)
			return pm.error();
		auto pages = read_file_at(pages_dir.fd(), strfmt("pages-%u.img", pm->pages_id), kMaxGhost + 1);
		if (!pages)
			return pages.error();
		size_t off = 0;
		for (auto [at, len] : pm->runs) {
			if (len > pages->size() - off || at + len > (*e)->size + kPageSize)
				return Error{strfmt("%s: contents at %llu are truncated or out of range", name.c_str(),
						    (unsigned long long)at)};
			m.chunks.emplace_back(at, pages->substr(off, len));
			off += len;
		}
		m.entry = std::move(*e);
		rf.memfds[id] = std::move(m);
	}
	return {};
}

Result<RestoredFiles> read_files(const ImageDir &dir, const ImageDir &pages_dir)
{
	RestoredFiles rf;
	auto r = ImageReader::open(dir, "files.img", FILES_MAGIC);
	if (!r)
		return r.error();
	for (;;) {
		auto e = r->next<FileEntry>(file_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		auto &f = **e;
		bool ok = (f.type == FD_TYPES__REG && f.reg) || (f.type == FD_TYPES__PIPE && f.pipe) ||
			  (f.type == FD_TYPES__FIFO && f.fifo) || (f.type == FD_TYPES__EVENTFD && f.efd) ||
			  (f.type == FD_TYPES__TTY && f.tty) || (f.type == FD_TYPES__TIMERFD && f.tfd) ||
			  (f.type == FD_TYPES__SIGNALFD && f.sgfd) || (f.type == FD_TYPES__EVENTPOLL && f.epfd) ||
			  (f.type == FD_TYPES__MEMFD && f.memfd) || (f.type == FD_TYPES__INOTIFY && f.ify) ||
			  (f.type == FD_TYPES__INETSK && f.isk) || (f.type == FD_TYPES__UNIXSK && f.usk);
		if (!ok)
			return Error{
			    strfmt("files.img: file id %u has unsupported or inconsistent type %d", f.id, f.type)};
		rf.files.push_back(std::move(*e));
	}
	TRY(read_pipe_data(dir, "pipes-data.img", PIPES_DATA_MAGIC, rf.pipe_data));
	TRY(read_pipe_data(dir, "fifo-data.img", FIFO_DATA_MAGIC, rf.pipe_data));
	TRY(read_memfds(dir, pages_dir, rf));
	auto q = ImageReader::open(dir, "sk-queues.img", SK_QUEUES_MAGIC, true);
	if (!q)
		return q.error();
	for (;;) {
		auto e = q->next<SkPacketEntry>(sk_packet_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		auto data = q->take_raw((*e)->length);
		if (!data)
			return data.error();
		rf.sk_queues[(*e)->id_for].emplace_back(*data);
	}
	for (auto &f : rf.files)
		if (f->type == FD_TYPES__MEMFD && !rf.memfds.count(f->memfd->inode_id))
			return Error{strfmt("files.img: memfd file %u refers to inode %u, which memfd.img lacks", f->id,
					    f->memfd->inode_id)};
	auto rm = ImageReader::open(dir, "remap-fpath.img", REMAP_FPATH_MAGIC, true);
	if (!rm)
		return rm.error();
	for (;;) {
		auto e = rm->next<RemapFilePathEntry>(remap_file_path_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		auto name = strfmt("ghost-file-%u.img", (*e)->remap_id);
		auto g = ImageReader::open(dir, name, GHOST_FILE_MAGIC);
		if (!g)
			return g.error();
		auto ge = g->next<GhostFileEntry>(ghost_file_entry__descriptor);
		if (!ge)
			return ge.error();
		if (!*ge)
			return Error{name + " has no entry"};
		auto data = g->take_raw((*ge)->size);
		if (!data)
			return data.error();
		rf.ghosts[(*e)->orig_id] = std::string(*data);
	}
	return rf;
}

Result<FdTable> read_fdinfo(const ImageDir &dir, uint32_t files_id, const RestoredFiles &rf)
{
	FdTable fds;
	auto fr = ImageReader::open(dir, strfmt("fdinfo-%u.img", files_id), FDINFO_MAGIC);
	if (!fr)
		return fr.error();
	for (;;) {
		auto e = fr->next<FdinfoEntry>(fdinfo_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		if (!rf.find((*e)->id))
			return Error{strfmt("%s: fd %u refers to file id %u, which files.img lacks", fr->name().c_str(),
					    (*e)->fd, (*e)->id)};
		fds.push_back(std::move(*e));
	}
	return fds;
}

// A new open file description of a restored memfd (its own offset and flags).
static Result<int> reopen_memfd(const RestoredFiles &rf, const MemfdFileEntry &e, int flags)
{
	auto it = rf.memfd_fds.find(e.inode_id);
	if (it == rf.memfd_fds.end())
		return Error{strfmt("memfd inode %u was not created", e.inode_id)};
	int fd = ::open(strfmt("/proc/self/fd/%d", it->second).c_str(), (flags & ~(O_CREAT | O_TRUNC)) | O_CLOEXEC);
	if (fd < 0)
		return sys_error("can't reopen memfd inode %u", e.inode_id);
	if (e.pos && lseek(fd, e.pos, SEEK_SET) < 0) {
		::close(fd);
		return sys_error("can't seek memfd to %llu", (unsigned long long)e.pos);
	}
	return fd;
}

static Status create_memfds(RestoredFiles &rf, int min_fd, std::vector<int> &created)
{
	for (auto &[id, m] : rf.memfds) {
		const MemfdInodeEntry &e = *m.entry;
		Fd fd(memfd_create(e.name, MFD_ALLOW_SEALING | MFD_CLOEXEC));
		if (!fd.valid())
			return sys_error("can't create memfd %s", e.name);
		if (ftruncate(fd.get(), e.size) < 0)
			return sys_error("can't size memfd %s to %llu", e.name, (unsigned long long)e.size);
		for (auto &[off, data] : m.chunks) {
			size_t len = std::min<uint64_t>(data.size(), e.size - std::min<uint64_t>(off, e.size));
			if (pwrite(fd.get(), data.data(), len, off) != (ssize_t)len)
				return sys_error("can't fill memfd %s", e.name);
		}
		if (fchown(fd.get(), e.uid, e.gid) < 0)
			return sys_error("can't chown memfd %s", e.name);
		if (e.seals && fcntl(fd.get(), F_ADD_SEALS, e.seals) < 0)
			return sys_error("can't seal memfd %s with 0x%x", e.name, e.seals);
		int hi = fcntl(fd.get(), F_DUPFD_CLOEXEC, min_fd);
		if (hi < 0)
			return sys_error("can't move memfd %s", e.name);
		rf.memfd_fds[id] = hi;
		created.push_back(hi);
	}
	return {};
}

namespace
{

struct Opener {
	Opener(const RestoredFiles &r, bool sj, const std::map<std::string, int> *inh = nullptr)
	    : rf(r), shell_job(sj), inherited(inh)
	{
	}
	Opener(const Opener &) = delete;
	// On an error path too: no helper fd stays open, no ghost stays linked.
	~Opener() { close_all(); }

	const RestoredFiles &rf;
	bool shell_job;
	const std::map<std::string, int> *inherited;
	std::map<uint32_t, int> pipe_ends[2];  // pipe_id -> read/write end
	std::vector<std::string> unlink_after;
	std::map<uint32_t, int> mounts;	 // s_dev -> fd of a mount of it
	std::map<uint32_t, std::string> ghost_paths;

	Status make_ghost(uint32_t id, const RegFileEntry &r)
	{
		if (ghost_paths.count(id))
			return {};
		std::string path = r.name;
		Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
		if (!fd.valid())
			return sys_error("can't recreate deleted file %s", path.c_str());
		auto &data = rf.ghosts.at(id);
		TRY(write_all(fd.get(), data.data(), data.size(), path));
		if (r.has_mode)
			fchmod(fd.get(), r.mode & 07777);
		ghost_paths[id] = path;
		unlink_after.push_back(path);
		return {};
	}

	Result<int> open_reg(uint32_t id, const RegFileEntry &r, int flags)
	{
		if (rf.ghosts.count(id))
			TRY(make_ghost(id, r));
		int fd = ::open(r.name, (flags & ~(O_CREAT | O_TRUNC | O_EXCL)) | O_CLOEXEC);
		if (fd < 0)
			return sys_error("can't open %s (file id %u)", r.name, id);
		if (r.pos && lseek(fd, r.pos, SEEK_SET) < 0) {
			close(fd);
			return sys_error("can't seek %s to %llu", r.name, (unsigned long long)r.pos);
		}
		return fd;
	}

	Result<int> pipe_end(uint32_t pipe_id, uint32_t flags)
	{
		int end = (flags & O_ACCMODE) == O_RDONLY ? 0 : 1;
		if (!pipe_ends[0].count(pipe_id)) {
			int p[2];
			if (pipe2(p, O_CLOEXEC) < 0)
				return sys_error("can't create pipe %u", pipe_id);
			pipe_ends[0][pipe_id] = p[0];
			pipe_ends[1][pipe_id] = p[1];
			if (auto it = rf.pipe_data.find(pipe_id); it != rf.pipe_data.end()) {
				if (it->second.size() > 65536)
					fcntl(p[1], F_SETPIPE_SZ, (int)it->second.size());
				TRY(write_all(p[1], it->second.data(), it->second.size(), "pipe data"));
			}
		}
		int fd = fcntl(pipe_ends[end][pipe_id], F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return sys_error("can't dup pipe %u", pipe_id);
		if (fcntl(fd, F_SETFL, flags & O_NONBLOCK) < 0)
			return sys_error("can't set flags of pipe %u", pipe_id);
		return fd;
	}

	Result<int> open_fifo(const FifoEntry &e)
	{
		const FileEntry *path = rf.find(e.regf_id);
		if (!path || !path->reg)
			return Error{strfmt("fifo %u: path entry %u missing", e.id, e.regf_id)};
		if (!pipe_ends[0].count(e.pipe_id)) {
			// Hold the FIFO open read-write so that opens never block.
			int keep = ::open(path->reg->name, O_RDWR | O_CLOEXEC);
			if (keep < 0)
				return sys_error("can't open fifo %s", path->reg->name);
			pipe_ends[0][e.pipe_id] = keep;
			if (auto it = rf.pipe_data.find(e.pipe_id); it != rf.pipe_data.end())
				TRY(write_all(keep, it->second.data(), it->second.size(), "fifo data"));
		}
		int fd = ::open(path->reg->name, (path->reg->flags | O_NONBLOCK) | O_CLOEXEC);
		if (fd < 0)
			return sys_error("can't open fifo %s", path->reg->name);
		if (fcntl(fd, F_SETFL, path->reg->flags & ~O_ACCMODE) < 0)
			return sys_error("can't set flags of fifo %s", path->reg->name);
		return fd;
	}

	Result<int> open_timerfd(const TimerfdEntry &t)
	{
		int fd = timerfd_create(t.clockid, (t.flags & TFD_NONBLOCK) | TFD_CLOEXEC);
		if (fd < 0)
			return sys_error("can't create timerfd %u (clock %u)", t.id, t.clockid);
		// it_value is what was left: set it relative, whatever the original flags
		itimerspec its = {{(time_t)t.isec, (long)t.insec}, {(time_t)t.vsec, (long)t.vnsec}};
		// fdinfo shows 0 left for a periodic timer that expired unread (the
		// kernel forwards it on read): it is due now, not disarmed
		if (!t.vsec && !t.vnsec && (t.isec || t.insec))
			its.it_value.tv_nsec = 1;
		if ((its.it_value.tv_sec || its.it_value.tv_nsec) && timerfd_settime(fd, 0, &its, nullptr) < 0) {
			::close(fd);
			return sys_error("can't arm timerfd %u", t.id);
		}
		uint64_t ticks = t.ticks;
		if (ticks && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) {
			::close(fd);
			return sys_error("can't set %llu pending ticks of timerfd %u", (unsigned long long)ticks, t.id);
		}
		return fd;
	}

	// A mount of the filesystem s_dev (kernel encoding), for open_by_handle_at.
	Result<int> mount_fd(uint32_t s_dev)
	{
		if (auto it = mounts.find(s_dev); it != mounts.end())
			return it->second;
		auto text = read_file("/proc/self/mountinfo");
		if (!text)
			return text.error();
		auto want = strfmt("%u:%u", s_dev >> 20, s_dev & 0xfffff);
		for (auto line : split(*text, '\n')) {
			auto f = split(line, ' ');
			if (f.size() < 5 || f[2] != want)
				continue;
			// not O_PATH: open_by_handle_at wants a real fd
			int fd = ::open(std::string(f[4]).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				continue;
			mounts[s_dev] = fd;
			return fd;
		}
		return Error{strfmt("no mount of device %s for an inotify watch", want.c_str())};
	}

	// Watches come back with their numbers: a fresh instance hands out wds
	// in increasing order, so re-adding skips the numbers in between.
	Result<int> open_inotify(const InotifyFileEntry &e)
	{
		Fd ifd(inotify_init1((e.flags & IN_NONBLOCK) | IN_CLOEXEC));
		if (!ifd.valid())
			return sys_error("can't create inotify %u", e.id);
		std::vector<const InotifyWdEntry *> wds(e.wd, e.wd + e.n_wd);
		std::sort(wds.begin(), wds.end(), [](auto *a, auto *b) { return a->wd < b->wd; });
		for (auto *w : wds) {
			if (!w->f_handle || w->f_handle->bytes > 8 * w->f_handle->n_handle || w->f_handle->bytes > 128)
				return Error{strfmt("inotify %u: malformed file handle of wd %u", e.id, w->wd)};
			auto mfd = mount_fd(w->s_dev);
			if (!mfd)
				return mfd.error();
			struct {
				file_handle h;
				uint8_t body[128];
			} fh{};
			fh.h.handle_bytes = w->f_handle->bytes;
			fh.h.handle_type = w->f_handle->type;
			memcpy(fh.h.f_handle, w->f_handle->handle, w->f_handle->bytes);
			Fd target(open_by_handle_at(*mfd, &fh.h, O_PATH | O_CLOEXEC));
			if (!target.valid())
				return sys_error("inotify %u: can't open the watched inode %llu", e.id,
						 (unsigned long long)w->i_ino);
			auto path = strfmt("/proc/self/fd/%d", target.get());
			for (int tries = 0;; tries++) {
				int wd = inotify_add_watch(ifd.get(), path.c_str(), w->mask);
				if (wd < 0)
					return sys_error("inotify %u: can't watch inode %llu", e.id,
							 (unsigned long long)w->i_ino);
				if ((uint32_t)wd == w->wd)
					break;
				if ((uint32_t)wd > w->wd || tries > 100000)
					return Error{strfmt("inotify %u: got watch %d, wanted %u", e.id, wd, w->wd)};
				inotify_rm_watch(ifd.get(), wd);
			}
		}
		// The removals queued IN_IGNORED events the task never caused.
		int fl = fcntl(ifd.get(), F_GETFL);
		fcntl(ifd.get(), F_SETFL, fl | O_NONBLOCK);
		char buf[4096];
		while (read(ifd.get(), buf, sizeof(buf)) > 0)
			;
		fcntl(ifd.get(), F_SETFL, fl);
		return ifd.release();
	}

	// The two ends of a pair are made together; the second waits here.
	std::map<uint32_t, int> unix_waiting;  // file id -> fd

	// Listeners are made once: connections through them may need them
	// before the fd table asks for them (and get a dup then).
	std::map<uint32_t, int> unix_listeners;	 // file id -> fd

	Result<int> listener(const FileEntry &l)
	{
		if (!unix_listeners.count(l.id)) {
			auto fd = restore_unix_listener(*l.usk);
			if (!fd)
				return fd;
			unix_listeners[l.id] = *fd;
		}
		return unix_listeners[l.id];
	}

	const FileEntry *unix_listener_named(const ProtobufCBinaryData &name)
	{
		for (auto &g : rf.files)
			if (g->type == FD_TYPES__UNIXSK && is_unix_listener(*g->usk) && g->usk->name.len == name.len &&
			    name.len && !memcmp(g->usk->name.data, name.data, name.len))
				return g.get();
		return nullptr;
	}

	const FileEntry *unix_by_ino(uint32_t ino) const
	{
		for (auto &g : rf.files)
			if (ino && g->type == FD_TYPES__UNIXSK && g->usk->ino == ino)
				return g.get();
		return nullptr;
	}

	// Datagram sockets other than unnamed pairs: made and bound first,
	// connected and given their queues by finish_dgrams(), once every name
	// exists.
	std::map<uint32_t, int> unix_dgrams;  // file id -> fd

	Result<int> open_dgram(const FileEntry &f)
	{
		auto fd = restore_unix_dgram(*f.usk);
		if (!fd)
			return fd;
		int keep = fcntl(*fd, F_DUPFD_CLOEXEC, 0);
		if (keep < 0) {
			::close(*fd);
			return sys_error("can't dup unix socket %u", f.id);
		}
		unix_dgrams[f.id] = keep;
		return fd;
	}

	// Connections first: a connected socket takes datagrams from its peer
	// only, and from it without the queue length limit of other senders.
	Status finish_dgrams()
	{
		std::map<uint32_t, int> by_ino;
		for (auto &[id, fd] : unix_dgrams)
			by_ino[rf.find(id)->usk->ino] = fd;
		for (auto &[id, fd] : unix_dgrams) {
			const UnixSkEntry &e = *rf.find(id)->usk;
			const FileEntry *peer = unix_by_ino(e.peer);
			if (e.peer && !peer)
				return Error{
				    strfmt("unix socket %u: its peer (inode %u) is not in the images", e.id, e.peer)};
			if (peer)
				TRY(connect_unix_dgram(fd, e, *peer->usk));
		}
		for (auto &[id, fd] : unix_dgrams) {
			const UnixSkEntry &e = *rf.find(id)->usk;
			auto from = by_ino.find(e.peer);
			TRY(requeue_unix_dgrams(from == by_ino.end() ? -1 : from->second, e, queue(id)));
		}
		return {};
	}

	const std::vector<std::string> &queue(uint32_t id)
	{
		static const std::vector<std::string> none;
		auto it = rf.sk_queues.find(id);
		return it == rf.sk_queues.end() ? none : it->second;
	}

	Result<int> open_unix(const FileEntry &f)
	{
		if (is_unix_listener(*f.usk)) {
			auto fd = listener(f);
			if (!fd)
				return fd;
			int d = fcntl(*fd, F_DUPFD_CLOEXEC, 0);
			return d >= 0 ? Result<int>(d) : sys_error("can't dup unix listener %u", f.id);
		}
		if (auto it = unix_waiting.find(f.id); it != unix_waiting.end()) {
			int fd = it->second;
			unix_waiting.erase(it);
			return fd;
		}
		const FileEntry *peer = unix_by_ino(f.usk->peer);
		bool pair = peer && !f.usk->name.len && !peer->usk->name.len;
		if (f.usk->type == SOCK_DGRAM && !pair)
			return open_dgram(f);
		if (!peer)
			return Error{
			    strfmt("unix socket %u: its peer (inode %u) is not in the images", f.id, f.usk->peer)};
		int fds[2];
		if (pair) {
			TRY(restore_unix_pair(*f.usk, *peer->usk, queue(f.id), queue(peer->id), fds));
			unix_waiting[peer->id] = fds[1];
			return fds[0];
		}
		// a connection through a listener: the server end is the named one
		bool f_serves = f.usk->name.len && (!peer->usk->name.len || unix_listener_named(f.usk->name));
		const FileEntry &server = f_serves ? f : *peer, &client = f_serves ? *peer : f;
		int lfd = -1;
		if (const FileEntry *l = unix_listener_named(server.usk->name)) {
			auto fd = listener(*l);
			if (!fd)
				return fd.error();
			lfd = *fd;
		}
		TRY(restore_unix_connection(*client.usk, *server.usk, lfd, queue(client.id), queue(server.id), fds));
		unix_waiting[peer->id] = f_serves ? fds[0] : fds[1];
		return f_serves ? fds[1] : fds[0];
	}

	Result<int> open_tty(const TtyFileEntry &t)
	{
		if (!shell_job)
			return Error{"the images hold a terminal: restore with --shell-job"};
		for (int fd = 0; fd < 3; fd++)
			if (isatty(fd)) {
				int n = fcntl(fd, F_DUPFD_CLOEXEC, 0);
				if (n < 0)
					return sys_error("can't dup the terminal");
				fcntl(n, F_SETFL, t.flags & O_NONBLOCK);
				return n;
			}
		int n = ::open("/dev/tty", (t.flags & O_ACCMODE) | O_CLOEXEC);
		if (n < 0) {
			int e = errno;
			char l0[PATH_MAX] = "?";
			ssize_t k = readlink("/proc/self/fd/0", l0, sizeof(l0) - 1);
			l0[k > 0 ? k : 1] = 0;
			errno = e;
			return sys_error(
			    "--shell-job: criu has no terminal to give the restored task (its stdin is %s)", l0);
		}
		return n;
	}

	// The --inherit-fd replacement of f, or -1.
	int inherited_fd(const FileEntry &f) const
	{
		if (!inherited)
			return -1;
		std::vector<std::string> keys;
		if (f.type == FD_TYPES__PIPE)
			keys.push_back(strfmt("pipe[%u]", f.pipe->pipe_id));
		if (f.type == FD_TYPES__REG) {
			keys.emplace_back(f.reg->name);
			if (f.reg->name[0] == '/')
				keys.emplace_back(f.reg->name + 1);
		}
		for (auto &k : keys)
			if (auto it = inherited->find(k); it != inherited->end())
				return it->second;
		return -1;
	}

	Result<int> open_file(const FileEntry &f)
	{
		if (int fd = inherited_fd(f); fd >= 0) {
			int n = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			if (n < 0)
				return sys_error("can't dup inherited fd %d", fd);
			return n;
		}
		switch (f.type) {
		case FD_TYPES__REG:
			return open_reg(f.id, *f.reg, f.reg->flags);
		case FD_TYPES__PIPE:
			return pipe_end(f.pipe->pipe_id, f.pipe->flags);
		case FD_TYPES__FIFO:
			return open_fifo(*f.fifo);
		case FD_TYPES__EVENTFD: {
			int fd = eventfd(0, (f.efd->flags & (EFD_NONBLOCK | EFD_SEMAPHORE)) | EFD_CLOEXEC);
			if (fd < 0)
				return sys_error("can't create eventfd %u", f.id);
			if (f.efd->counter) {
				uint64_t v = f.efd->counter;
				if (::write(fd, &v, 8) != 8)
					return sys_error("can't set eventfd %u to %llu", f.id, (unsigned long long)v);
			}
			return fd;
		}
		case FD_TYPES__TTY:
			return open_tty(*f.tty);
		case FD_TYPES__TIMERFD:
			return open_timerfd(*f.tfd);
		case FD_TYPES__MEMFD:
			return reopen_memfd(rf, *f.memfd, f.memfd->flags);
		case FD_TYPES__INOTIFY:
			return open_inotify(*f.ify);
		case FD_TYPES__INETSK:
			return restore_inet_socket(*f.isk);
		case FD_TYPES__UNIXSK:
			return open_unix(f);
		case FD_TYPES__SIGNALFD: {
			sigset_t mask;
			sigemptyset(&mask);
			for (int sig = 1; sig <= 64; sig++)
				if (f.sgfd->sigmask & (1ULL << (sig - 1)))
					sigaddset(&mask, sig);
			int fd = signalfd(-1, &mask, (f.sgfd->flags & SFD_NONBLOCK) | SFD_CLOEXEC);
			if (fd < 0)
				return sys_error("can't create signalfd %u", f.id);
			return fd;
		}
		case FD_TYPES__EVENTPOLL: {
			// its registrations are added once every fd is in place
			int fd = epoll_create1(EPOLL_CLOEXEC);
			if (fd < 0)
				return sys_error("can't create epoll %u", f.id);
			return fd;
		}
		default:
			return Error{strfmt("file id %u: unsupported type %d", f.id, f.type)};
		}
	}

	void close_all()
	{
		for (auto &[id, fd] : unix_waiting)
			::close(fd);
		unix_waiting.clear();
		for (auto &[id, fd] : unix_listeners)
			::close(fd);
		unix_listeners.clear();
		for (auto &[id, fd] : unix_dgrams)
			::close(fd);
		unix_dgrams.clear();
		for (auto &[dev, fd] : mounts)
			::close(fd);
		mounts.clear();
		for (auto &m : pipe_ends) {
			for (auto &[id, fd] : m)
				::close(fd);
			m.clear();
		}
		for (auto &p : unlink_after)
			unlink(p.c_str());
		unlink_after.clear();
	}
};

}  // namespace

Result<int> open_file_entry(const RestoredFiles &rf, uint32_t id, int flags)
{
	const FileEntry *f = rf.find(id);
	if (f && f->type == FD_TYPES__MEMFD)
		return reopen_memfd(rf, *f->memfd, flags);
	if (!f || f->type != FD_TYPES__REG)
		return Error{strfmt("mapped file id %u is missing in files.img", id)};
	Opener o{rf, false};
	auto fd = o.open_reg(id, *f->reg, flags);
	o.close_all();
	if (!fd)
		return fd;
	// Mapped code and data must be what the dump saw: a library replaced
	// since then would be mapped at the old offsets without a word.
	struct stat st;
	if (f->reg->has_size && fstat(*fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size != f->reg->size) {
		::close(*fd);
		return Error{strfmt("mapped file %s changed since the dump: %lld bytes, was %llu", f->reg->name,
				    (long long)st.st_size, (unsigned long long)f->reg->size)};
	}
	return fd;
}

Status open_file_pool(RestoredFiles &rf, const std::vector<const FdTable *> &tables, bool shell_job,
		      const std::map<std::string, int> &inherited, int min_fd, FilePool &pool)
{
	TRY(create_memfds(rf, min_fd, pool.fds));
	Opener o{rf, shell_job, &inherited};
	for (auto *t : tables)
		for (auto &e : *t) {
			if (pool.by_id.count(e->id))
				continue;
			auto fd = o.open_file(*rf.find(e->id));
			if (!fd)
				return fd.error();
			// Parked above every fd number of every task.
			int hi = fcntl(*fd, F_DUPFD_CLOEXEC, min_fd);
			::close(*fd);
			if (hi < 0)
				return sys_error("can't move fd for file id %u", e->id);
			pool.by_id[e->id] = hi;
			pool.fds.push_back(hi);
		}
	return o.finish_dgrams();
}

void FilePool::close_all()
{
	for (int fd : fds)
		::close(fd);
	fds.clear();
	by_id.clear();
}

Status close_other_fds(const FdTable &fds, int min_service_fd)
{
	std::set<int> targets;
	for (auto &e : fds) {
		if ((int)e->fd >= min_service_fd)
			return Error{strfmt("fd %u is above the service fd range", e->fd)};
		targets.insert(e->fd);
	}
	for (int fd = 0; fd < min_service_fd; fd++)
		if (!targets.count(fd))
			::close(fd);
	return {};
}

// The epolls whose registrations the task restores, once (a table may hold
// one twice).
static std::vector<const FileEntry *> owned_epolls(const RestoredFiles &rf, const FdTable &fds,
						   const std::set<uint32_t> &owned)
{
	std::vector<const FileEntry *> v;
	std::set<uint32_t> done;
	for (auto &e : fds) {
		const FileEntry *f = rf.find(e->id);
		if (f->type == FD_TYPES__EVENTPOLL && owned.count(f->id) && done.insert(f->id).second)
			v.push_back(f);
	}
	return v;
}

size_t fd_ops_room(const RestoredFiles &rf, const FdTable &fds, const std::set<uint32_t> &epolls_owned)
{
	size_t n = fds.size();
	for (auto *f : owned_epolls(rf, fds, epolls_owned))
		n += f->epfd->n_tfd;
	return n;
}

Result<std::vector<rst_op>> fd_ops(const RestoredFiles &rf, const FdTable &fds, const FilePool &pool,
				   const std::set<uint32_t> &epolls_owned)
{
	std::vector<rst_op> ops;
	std::map<uint32_t, int> at;  // file id -> one of the task's fds of it
	for (auto &e : fds) {
		auto it = pool.by_id.find(e->id);
		if (it == pool.by_id.end())
			return Error{strfmt("fd %u: file id %u was not opened", e->fd, e->id)};
		rst_op op{};
		op.kind = RST_OP_DUP3;
		op.fd = it->second;
		op.arg = (int32_t)e->fd;
		op.flags = (e->flags & FD_CLOEXEC) ? O_CLOEXEC : 0;
		ops.push_back(op);
		at.emplace(e->id, e->fd);
	}
	for (auto *f : owned_epolls(rf, fds, epolls_owned))
		for (size_t i = 0; i < f->epfd->n_tfd; i++) {
			const EventpollTfdEntry &t = *f->epfd->tfd[i];
			rst_op op{};
			op.kind = RST_OP_EPOLL_ADD;
			op.fd = at.at(f->id);
			op.arg = (int32_t)t.tfd;
			op.flags = t.events;
			op.data = t.data;
			ops.push_back(op);
		}
	return ops;
}

}  // namespace criu
