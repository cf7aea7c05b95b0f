#include "mem.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <algorithm>

#include "arena.h"
#include "log.h"
#include "magic.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "proc.h"
#include "ptrace.h"

namespace criu
{

namespace
{

// vma_entry.status bits, as CRIU defines them in its image format
enum : uint32_t {
	kRegular = 1u << 0,
	kStack = 1u << 1,
	kVsyscall = 1u << 2,
	kVdso = 1u << 3,
	kHeap = 1u << 5,
	kFilePrivate = 1u << 6,
	kFileShared = 1u << 7,
	kAnonShared = 1u << 8,
	kAnonPrivate = 1u << 9,
	kSysvIpc = 1u << 10,
	kVvar = 1u << 12,
};

constexpr uint32_t kPePresent = 1u << 2;
constexpr uint64_t kPmPresent = 1ULL << 63, kPmSwap = 1ULL << 62, kPmFile = 1ULL << 61;
constexpr size_t kChunk = 8u << 20;

// madvise() advice per smaps VmFlags mnemonic
const std::pair<const char *, int> kMadv[] = {
    {"dc", MADV_DONTFORK}, {"hg", MADV_HUGEPAGE},   {"nh", MADV_NOHUGEPAGE},
    {"dd", MADV_DONTDUMP}, {"wf", MADV_WIPEONFORK},
};

bool is_special(const ProcVma &v)
{
	return v.path == "[vdso]" || v.path == "[vvar]" || v.path == "[vvar_vclock]" || v.path == "[vsyscall]";
}

struct VmaClass {
	uint32_t status = kRegular;
	uint32_t flags = 0;
	bool file = false;
	bool dump_pages = true;
};

Result<VmaClass> classify(pid_t pid, const ProcVma &v, bool sysv_ok)
{
	VmaClass c;
	if (v.path == "[vdso]") {
		c.status |= kVdso | kAnonPrivate;
		c.flags = MAP_PRIVATE | MAP_ANONYMOUS;
		c.dump_pages = false;
	} else if (v.path == "[vvar]" || v.path == "[vvar_vclock]") {
		c.status |= kVvar | kAnonPrivate;
		c.flags = MAP_PRIVATE | MAP_ANONYMOUS;
		c.dump_pages = false;
	} else if (v.path == "[vsyscall]") {
		c.status = kVsyscall;
		c.flags = MAP_PRIVATE | MAP_ANONYMOUS;
		c.dump_pages = false;
	} else if (v.path.starts_with("/SYSV")) {  // its inode number is the segment's id, maybe 0
		// its contents are saved with the ipc namespace (ipcns-shm-ID.img)
		if (!sysv_ok)
			return Error{
			    strfmt("PID %d: SysV shared memory at %lx belongs to criu's ipc namespace, which is "
				   "not saved; only a tree's own ipc namespace is",
				   pid, (unsigned long)v.start)};
		c.status |= kSysvIpc;
		c.flags = MAP_SHARED;
		c.dump_pages = false;
	} else if (v.inode == 0 || v.path.starts_with("[")) {
		if (v.shared)
			return Error{strfmt("PID %d: shared mapping %lx-%lx without a backing object is not supported",
					    pid, (unsigned long)v.start, (unsigned long)v.end)};
		c.status |= kAnonPrivate;
		c.flags = MAP_PRIVATE | MAP_ANONYMOUS;
		if (v.path == "[heap]")
			c.status |= kHeap;
		if (v.path == "[stack]")
			c.status |= kStack;
		if (v.has_flag("gd"))
			c.flags |= MAP_GROWSDOWN;
	} else if (v.shared && v.dev_major == 0 && v.dev_minor == 1 && v.path.starts_with("/dev/zero")) {
		c.status |= kAnonShared;
		c.flags = MAP_SHARED | MAP_ANONYMOUS;
	} else {
		c.file = true;
		c.status |= v.shared ? kFileShared : kFilePrivate;
		c.flags = v.shared ? MAP_SHARED : MAP_PRIVATE;
		c.dump_pages = !v.shared;  // a shared file mapping's pages live in the file
	}
	return c;
}

// Which pages of a VMA hold data the file or the zero page would not give back.
bool page_wanted(const VmaClass &c, uint64_t pm)
{
	if (c.file)
		return (pm & kPmSwap) || ((pm & kPmPresent) && !(pm & kPmFile));
	return pm & (kPmPresent | kPmSwap);
}

// Moves pages out of the frozen task without copying them through criu: the
// task vmsplice()s them into a pipe (an injected syscall; the pipe holds
// references to its pages), criu splice()s the pipe into the pages image.
// One copy (into the page cache) instead of two. Pipes are at most
// pipe-max-size (1 MiB unless CAP_SYS_RESOURCE), so this goes in steps.
class PipeTransport
{
public:
	explicit PipeTransport(Seized &s) : s_(s), sc_(s, s.pid()) {}
	PipeTransport(const PipeTransport &) = delete;
	~PipeTransport()
	{
		if (auto st = close(); !st)
			pr_err("%s\n", st.error().msg.c_str());
	}

	Status open()
	{
		pid_t pid = s_.pid();
		TRY(sc_.map());
		int32_t fds[2];
		TRY(sc_.query(pid, SYS_pipe2, sc_.addr(), O_NONBLOCK | O_CLOEXEC, 0, fds, sizeof(fds), "pipe2"));
		tfd_[0] = fds[0];
		tfd_[1] = fds[1];
		Fd pidfd(syscall(SYS_pidfd_open, pid, 0));
		if (!pidfd.valid())
			return sys_error("pidfd_open(%d)", pid);
		rd_.reset(syscall(SYS_pidfd_getfd, pidfd.get(), tfd_[0], 0));
		if (!rd_.valid())
			return sys_error("can't take the pipe of PID %d", pid);
		int cap = fcntl(rd_.get(), F_SETPIPE_SZ, 1 << 20);
		if (cap < 0)
			cap = fcntl(rd_.get(), F_GETPIPE_SZ);
		if (cap < (int)kPageSize)
			return sys_error("can't size the pipe of PID %d", pid);
		cap_ = cap;
		return {};
	}

	size_t capacity() const { return cap_; }
	static constexpr size_t kMaxIov = kPageSize / sizeof(iovec);

	// iov: at most kMaxIov entries, bytes at most capacity().
	Status move(const iovec *iov, size_t n, size_t bytes, int out)
	{
		TRY(s_.write_mem(sc_.addr(), iov, n * sizeof(iovec)));
		auto r = s_.syscall(s_.pid(), SYS_vmsplice, tfd_[1], sc_.addr(), n, SPLICE_F_NONBLOCK);
		if (!r)
			return r.error();
		if (*r != (long)bytes)
			return Error{strfmt("vmsplice in PID %d moved %ld of %zu bytes", s_.pid(), *r, bytes)};
		for (size_t left = bytes; left;) {
			ssize_t m = splice(rd_.get(), nullptr, out, nullptr, left, SPLICE_F_MOVE);
			if (m <= 0)
				return sys_error("can't splice pages of PID %d into the image", s_.pid());
			left -= m;
		}
		return {};
	}

	Status close()
	{
		for (int &fd : tfd_) {
			if (fd < 0)
				continue;
			auto r = s_.syscall(s_.pid(), SYS_close, fd);
			fd = -1;
			if (!r)
				return r.error();
		}
		rd_.reset();
		return sc_.unmap();
	}

private:
	Seized &s_;
	Scratch sc_;
	int tfd_[2] = {-1, -1};
	Fd rd_;
	size_t cap_ = 0;
};

class PageDumper
{
public:
	PageDumper(pid_t pid, ImageWriter &pagemap, ImageWriter &pages, MemStats &st, PipeTransport *pipe)
	    : pid_(pid), pagemap_(pagemap), pages_(pages), st_(st), pipe_(pipe)
	{
	}

	Status open()
	{
		pm_.reset(::open(strfmt("/proc/%d/pagemap", pid_).c_str(), O_RDONLY | O_CLOEXEC));
		mem_.reset(::open(strfmt("/proc/%d/mem", pid_).c_str(), O_RDONLY | O_CLOEXEC));
		if (!pm_.valid() || !mem_.valid())
			return sys_error("can't open pagemap/mem of PID %d", pid_);
		buf_ =
		    Mapping(mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), kChunk);
		if (buf_.get() == MAP_FAILED)
			return sys_error("can't allocate a %zu-byte buffer", kChunk);
		return {};
	}

	// Shared anonymous memory: take what its shmem object holds in this
	// VMA's window, also pages another alias wrote and this one never touched.
	Status dump_shmem_vma(const ProcVma &v)
	{
		auto path = strfmt("/proc/%d/map_files/%lx-%lx", pid_, (unsigned long)v.start, (unsigned long)v.end);
		Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
		if (!fd.valid())
			return sys_error("can't open %s", path.c_str());
		uint64_t begin = v.pgoff * kPageSize, end = begin + (v.end - v.start);
		for (uint64_t off = begin; off < end;) {
			off_t data = lseek(fd.get(), off, SEEK_DATA);
			if (data < 0 && errno == ENXIO)
				break;
			if (data < 0)
				return sys_error("SEEK_DATA on %s", path.c_str());
			if ((uint64_t)data >= end)
				break;
			off_t hole = lseek(fd.get(), data, SEEK_HOLE);
			if (hole < 0)
				return sys_error("SEEK_HOLE on %s", path.c_str());
			uint64_t from = (uint64_t)data & ~(kPageSize - 1);
			uint64_t to = std::min<uint64_t>(end, ((uint64_t)hole + kPageSize - 1) & ~(kPageSize - 1));
			TRY(flush(v.start + (from - begin), (to - from) / kPageSize, v.prot & PROT_READ));
			off = to;
		}
		st_.pages_scanned += (v.end - v.start) / kPageSize;
		return {};
	}

	Status dump_vma(const ProcVma &v, const VmaClass &c)
	{
		if (c.status & kAnonShared)
			return dump_shmem_vma(v);
		uint64_t npages = (v.end - v.start) / kPageSize;
		std::vector<uint64_t> pm(std::min<uint64_t>(npages, 65536));
		uint64_t run_start = 0, run_len = 0;
		for (uint64_t done = 0; done < npages;) {
			uint64_t n = std::min<uint64_t>(npages - done, pm.size());
			ssize_t r = pread(pm_.get(), pm.data(), n * 8, (v.start / kPageSize + done) * 8);
			if (r != (ssize_t)(n * 8))
				return sys_error("can't read pagemap of PID %d at %lx", pid_, (unsigned long)v.start);
			for (uint64_t i = 0; i < n; i++) {
				uint64_t addr = v.start + (done + i) * kPageSize;
				if (page_wanted(c, pm[i])) {
					if (run_len && run_start + run_len * kPageSize == addr) {
						run_len++;
						continue;
					}
					TRY(flush(run_start, run_len, v.prot & PROT_READ));
					run_start = addr;
					run_len = 1;
				}
			}
			st_.pages_scanned += n;
			done += n;
		}
		return flush(run_start, run_len, v.prot & PROT_READ);
	}

private:
	Status flush(uint64_t start, uint64_t npages, bool readable = true)
	{
		if (!npages)
			return {};
		PagemapEntry e = PAGEMAP_ENTRY__INIT;
		e.vaddr = start;
		e.nr_pages = npages;
		e.has_flags = true;
		e.flags = kPePresent;
		TRY(pagemap_.write(&e.base));
		uint64_t len = npages * kPageSize;
		if (!readable) {
			// vmsplice and process_vm_readv need PROT_READ; /proc/PID/mem
			// reads through FOLL_FORCE.
			TRY(drain());
			for (uint64_t off = 0; off < len;) {
				size_t n = std::min<uint64_t>(len - off, kChunk);
				if (pread(mem_.get(), buf_.get(), n, start + off) != (ssize_t)n)
					return sys_error("can't read memory of PID %d at %lx", pid_,
							 (unsigned long)(start + off));
				TRY(pages_.write_raw(buf_.get(), n));
				off += n;
			}
			st_.pages_written += npages;
			return {};
		}
		for (uint64_t off = 0; off < len;) {
			size_t n = std::min<uint64_t>(len - off, kChunk);
			if (batch_bytes_ + n > kChunk || batch_.size() == kMaxIov)
				TRY(drain());
			batch_.push_back({(void *)(start + off), n});
			batch_bytes_ += n;
			off += n;
		}
		st_.pages_written += npages;
		return {};
	}

public:
	// Many small runs are read with one process_vm_readv and written with
	// one write: a fragmented address space costs few syscalls.
	Status drain()
	{
		if (batch_.empty())
			return {};
		if (pipe_) {
			TRY(drain_pipe());
			batch_.clear();
			batch_bytes_ = 0;
			return {};
		}
		iovec local = {buf_.get(), batch_bytes_};
		ssize_t r = process_vm_readv(pid_, &local, 1, batch_.data(), batch_.size(), 0);
		if (r != (ssize_t)batch_bytes_)
			return sys_error("can't read memory of PID %d", pid_);
		TRY(pages_.write_raw(buf_.get(), batch_bytes_));
		batch_.clear();
		batch_bytes_ = 0;
		return {};
	}

private:
	// The batch in steps that fit the pipe and the iovec page.
	Status drain_pipe()
	{
		TRY(pages_.write_raw(nullptr, 0));  // flush buffered bytes first
		std::vector<iovec> step;
		size_t bytes = 0, cap = pipe_->capacity();
		for (auto io : batch_) {
			while (io.iov_len) {
				size_t n = std::min(io.iov_len, cap - bytes);
				step.push_back({io.iov_base, n});
				bytes += n;
				io.iov_base = static_cast<char *>(io.iov_base) + n;
				io.iov_len -= n;
				if (bytes == cap || step.size() == PipeTransport::kMaxIov) {
					TRY(pipe_->move(step.data(), step.size(), bytes, pages_.fd()));
					step.clear();
					bytes = 0;
				}
			}
		}
		if (!step.empty())
			TRY(pipe_->move(step.data(), step.size(), bytes, pages_.fd()));
		return {};
	}

	static constexpr size_t kMaxIov = 1024;
	std::vector<iovec> batch_;
	size_t batch_bytes_ = 0;
	pid_t pid_;
	ImageWriter &pagemap_, &pages_;
	MemStats &st_;
	Fd pm_, mem_;
	Mapping buf_;
	PipeTransport *pipe_;
};

Result<std::vector<uint64_t>> read_auxv(pid_t pid)
{
	auto text = read_file(strfmt("/proc/%d/auxv", pid));
	if (!text)
		return text.error();
	std::vector<uint64_t> v(text->size() / 8);
	memcpy(v.data(), text->data(), v.size() * 8);
	return v;
}

}  // namespace

Result<MemStats> dump_memory(Seized &s, const ImageDir &dir, FileTable &files, const MmExtras &x, pid_t vpid,
			     uint32_t pages_id)
{
	pid_t pid = s.pid();
	MemStats st;
	auto vmas = parse_smaps(pid);
	if (!vmas)
		return vmas.error();
	auto stat = parse_stat(pid);
	if (!stat)
		return stat.error();
	if (stat->size() < 52)
		return Error{strfmt("/proc/%d/stat has %zu fields, expected 52", pid, stat->size())};
	auto auxv = read_auxv(pid);
	if (!auxv)
		return auxv.error();

	Arena arena;
	MmEntry mm = MM_ENTRY__INIT;
	auto f = [&](int i) { return parse_u64((*stat)[i]).value_or(0); };
	mm.mm_start_code = f(26);
	mm.mm_end_code = f(27);
	mm.mm_start_stack = f(28);
	mm.mm_start_data = f(45);
	mm.mm_end_data = f(46);
	mm.mm_start_brk = f(47);
	mm.mm_arg_start = f(48);
	mm.mm_arg_end = f(49);
	mm.mm_env_start = f(50);
	mm.mm_env_end = f(51);
	mm.mm_brk = x.brk;
	mm.n_mm_saved_auxv = auxv->size();
	mm.mm_saved_auxv = arena.copy(*auxv);
	mm.has_dumpable = true;
	mm.dumpable = x.dumpable;
	mm.has_thp_disabled = true;
	mm.thp_disabled = x.thp_disabled;
	char exe_path[PATH_MAX + 1];
	ssize_t exe_len = readlink(strfmt("/proc/%d/exe", pid).c_str(), exe_path, PATH_MAX);
	if (exe_len < 0)
		return sys_error("can't read the executable of PID %d", pid);
	auto exe = files.add_mapped(pid, strfmt("/proc/%d/exe", pid), std::string(exe_path, exe_len), O_RDONLY);
	if (!exe)
		return exe.error();
	mm.exe_file_id = *exe;

	auto pagemap = ImageWriter::create(dir, strfmt("pagemap-%d.img", vpid), PAGEMAP_MAGIC);
	if (!pagemap)
		return pagemap.error();
	auto pages = ImageWriter::create_raw(dir, strfmt("pages-%u.img", pages_id));
	if (!pages)
		return pages.error();
	PagemapHead head = PAGEMAP_HEAD__INIT;
	head.pages_id = pages_id;
	TRY(pagemap->write(&head.base));
	// The VMA list is taken: the transport's scratch page and pipe may come now.
	PipeTransport pipe(s);
	auto pst = pipe.open();
	if (!pst)
		pr_info("PID %d: no vmsplice transport (%s), reading pages directly\n", pid, pst.error().msg.c_str());
	PageDumper pd(pid, *pagemap, *pages, st, pst ? &pipe : nullptr);
	TRY(pd.open());

	std::vector<VmaEntry *> out;
	for (auto &v : *vmas) {
		auto c = classify(pid, v, x.sysv_ok);
		if (!c)
			return c.error();
		auto *e = arena.make<VmaEntry>(VMA_ENTRY__INIT);
		e->start = v.start;
		e->end = v.end;
		e->pgoff = c->file || (c->status & (kAnonShared | kSysvIpc)) ? v.pgoff * kPageSize : 0;
		e->prot = v.prot;
		e->flags = c->flags;
		e->status = c->status;
		e->fd = -1;
		// the inode of a SysV segment's file is its id
		e->shmid = c->status & (kAnonShared | kSysvIpc) ? v.inode : 0;
		e->has_madv = true;
		for (auto &[name, adv] : kMadv)
			if (v.has_flag(name))
				e->madv |= 1ULL << adv;
		if (c->file) {
			bool writable = v.shared && v.has_flag("mw");
			uint32_t oflags = writable ? O_RDWR : O_RDONLY;
			auto id = files.add_mapped(
			    pid,
			    strfmt("/proc/%d/map_files/%lx-%lx", pid, (unsigned long)v.start, (unsigned long)v.end),
			    v.path, oflags);
			if (!id)
				return id.error();
			e->shmid = *id;
			e->has_fdflags = true;
			e->fdflags = oflags;
		}
		if (c->dump_pages && !is_special(v))
			TRY(pd.dump_vma(v, *c));
		out.push_back(e);
		st.vmas++;
	}
	mm.n_vmas = out.size();
	mm.vmas = out.data();
	TRY(pd.drain());
	TRY(pipe.close());
	TRY(pagemap->close());
	TRY(pages->close());
	TRY(write_one(dir, strfmt("mm-%d.img", vpid), MM_MAGIC, &mm.base));
	pr_info("PID %d: %llu VMAs, %llu of %llu pages written\n", pid, (unsigned long long)st.vmas,
		(unsigned long long)st.pages_written, (unsigned long long)st.pages_scanned);
	return st;
}

Status mark_held(MemPlan &p, const std::vector<HeldRange> &held)
{
	for (auto &h : held) {
		auto it = std::find_if(p.vmas.begin(), p.vmas.end(),
				       [&](const rst_vma &v) { return v.start == h.start && v.end == h.end; });
		if (it == p.vmas.end() || !(it->mmap_flags & MAP_PRIVATE))
			return Error{strfmt("the template's memory %lx-%lx is not a private VMA of these images: the "
					    "template was made from another dump",
					    (unsigned long)h.start, (unsigned long)h.end)};
		it->held = 1;
	}
	p.held = held;
	auto in_held = [&](const rst_pagerun &r) {
		return std::any_of(p.vmas.begin(), p.vmas.end(),
				   [&](const rst_vma &v) { return v.held && r.vaddr >= v.start && r.vaddr < v.end; });
	};
	auto kept = std::stable_partition(p.runs.begin(), p.runs.end(), [&](auto &r) { return !in_held(r); });
	p.held_runs.assign(kept, p.runs.end());
	p.runs.erase(kept, p.runs.end());
	return {};
}

void unhold(MemPlan &p, size_t i)
{
	rst_vma &v = p.vmas[i];
	v.held = 0;
	auto mine = std::stable_partition(p.held_runs.begin(), p.held_runs.end(),
					  [&](auto &r) { return r.vaddr < v.start || r.vaddr >= v.end; });
	p.runs.insert(p.runs.end(), mine, p.held_runs.end());
	p.held_runs.erase(mine, p.held_runs.end());
	std::sort(p.runs.begin(), p.runs.end(), [](auto &a, auto &b) { return a.vaddr < b.vaddr; });
}

Status create_shmem_objects(const std::vector<const MemPlan *> &plans, int min_fd, std::map<uint64_t, int> &out)
{
	std::map<uint64_t, uint64_t> sizes;
	for (auto *m : plans)
		for (size_t i = 0; i < m->vmas.size(); i++)
			if (uint64_t id = m->vma_shmid[i]) {
				auto &v = m->vmas[i];
				sizes[id] = std::max(sizes[id], v.pgoff + v.end - v.start);
			}
	for (auto [id, size] : sizes) {
		void *a = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (a == MAP_FAILED)
			return sys_error("can't create shared memory of %llu bytes", (unsigned long long)size);
		// map_files gives an fd that maps the same object again
		auto path = strfmt("/proc/self/map_files/%lx-%lx", (unsigned long)a, (unsigned long)a + size);
		Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
		munmap(a, size);
		if (!fd.valid())
			return sys_error("can't open %s", path.c_str());
		int hi = fcntl(fd.get(), F_DUPFD_CLOEXEC, min_fd);
		if (hi < 0)
			return sys_error("can't move shared memory object %llx", (unsigned long long)id);
		out[id] = hi;
	}
	return {};
}

Result<MemPlan> plan_memory(const ImageDir &dir, const ImageDir &pages_dir, pid_t pid)
{
	MemPlan p;
	auto mm = read_one<MmEntry>(dir, strfmt("mm-%d.img", pid), MM_MAGIC, mm_entry__descriptor);
	if (!mm)
		return mm.error();
	p.mm = std::move(*mm);
	uint64_t prev_end = 0;
	for (size_t i = 0; i < p.mm->n_vmas; i++) {
		const VmaEntry &e = *p.mm->vmas[i];
		if (e.start >= e.end || (e.start | e.end) % kPageSize || e.start < prev_end)
			return Error{strfmt("mm-%d.img: VMA %zu (%lx-%lx) is malformed or out of order", pid, i,
					    (unsigned long)e.start, (unsigned long)e.end)};
		prev_end = e.end;
		if (e.status & kVsyscall)
			continue;
		if (e.status & (kVdso | kVvar)) {
			p.specials.push_back({0, e.end - e.start, e.start});
			continue;
		}
		if (!(e.status & kRegular))
			return Error{strfmt("mm-%d.img: VMA %lx-%lx has unsupported status 0x%x", pid,
					    (unsigned long)e.start, (unsigned long)e.end, e.status)};
		rst_vma v{};
		v.start = e.start;
		v.end = e.end;
		v.prot = e.prot;
		v.mmap_flags = e.flags;
		v.fd = -1;
		v.madv = e.madv;
		uint32_t file = 0, fflags = 0;
		if (e.status & (kFilePrivate | kFileShared)) {
			v.pgoff = e.pgoff;
			file = e.shmid;
			fflags = e.has_fdflags ? e.fdflags : O_RDONLY;
		} else if (e.status & kAnonShared) {
			v.pgoff = e.pgoff;
		} else if (e.status & kSysvIpc) {
			v.pgoff = e.pgoff;
			v.sysv = 1;
			v.shmid = (int32_t)e.shmid;
		}
		p.vmas.push_back(v);
		p.vma_file.push_back(file);
		p.vma_fflags.push_back(fflags);
		p.vma_shmid.push_back(e.status & kAnonShared ? e.shmid : 0);
	}
	if (p.specials.size() > RST_MAX_SPECIAL)
		return Error{strfmt("mm-%d.img: %zu vdso/vvar areas, at most %d supported", pid, p.specials.size(),
				    RST_MAX_SPECIAL)};

	auto name = strfmt("pagemap-%d.img", pid);
	auto pm = read_pagemap(dir, name);
	if (!pm)
		return pm.error();
	p.pages_image = strfmt("pages-%u.img", pm->pages_id);
	size_t vi = 0;
	for (auto [start, len] : pm->runs) {
		// runs are sorted like VMAs: advance to the VMA holding this run
		while (vi < p.vmas.size() && p.vmas[vi].end <= start)
			vi++;
		if (vi == p.vmas.size() || start < p.vmas[vi].start || start + len > p.vmas[vi].end ||
		    start % kPageSize)
			return Error{strfmt("%s: pages at %lx (+%lu) are outside every VMA", name.c_str(),
					    (unsigned long)start, (unsigned long)len)};
		p.vmas[vi].has_pages = 1;
		p.runs.push_back({start, len, p.pages_bytes});
		p.pages_bytes += len;
	}
	struct stat st;
	if (fstatat(pages_dir.fd(), p.pages_image.c_str(), &st, 0) < 0)
		return sys_error("can't stat image %s", p.pages_image.c_str());
	if ((uint64_t)st.st_size < p.pages_bytes)
		return Error{strfmt("image %s is truncated: %lld bytes, pagemap needs %llu", p.pages_image.c_str(),
				    (long long)st.st_size, (unsigned long long)p.pages_bytes)};
	return p;
}

Result<Pagemap> read_pagemap(const ImageDir &dir, const std::string &name)
{
	auto pr = ImageReader::open(dir, name, PAGEMAP_MAGIC);
	if (!pr)
		return pr.error();
	auto head = pr->next<PagemapHead>(pagemap_head__descriptor);
	if (!head)
		return head.error();
	if (!*head)
		return Error{name + " has no header"};
	Pagemap pm;
	pm.pages_id = (*head)->pages_id;
	for (;;) {
		auto e = pr->next<PagemapEntry>(pagemap_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		if ((*e)->has_in_parent && (*e)->in_parent)
			return Error{name + ": incremental dumps (in_parent pages) are not supported"};
		pm.runs.emplace_back((*e)->vaddr, (uint64_t)(*e)->nr_pages * kPageSize);
	}
	return pm;
}

}  // namespace criu
