#include "template.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <map>

#include "criu-plugin.h"
#include "fdinfo.pb-c.h"
#include "files.h"
#include "log.h"
#include "mem.h"
#include "proc.h"
#include "mm.pb-c.h"
#include "plugin.h"
#include "pstree.h"
#include "pstree.pb-c.h"
#include "spare.h"

namespace criu
{

namespace
{

constexpr uint64_t kHuge = 2 << 20;
constexpr int kMadvCollapse = 25;

// Fills [v.start, v.end) from the runs of the plan that fall inside it.
Status fill(const MemPlan &m, const rst_vma &v, int pages_fd)
{
	for (auto &r : m.runs) {
		if (r.vaddr < v.start || r.vaddr >= v.end)
			continue;
		for (uint64_t done = 0; done < r.len;) {
			ssize_t n = pread(pages_fd, (char *)(r.vaddr + done), r.len - done, r.file_off + done);
			if (n <= 0)
				return n < 0 ? sys_error("can't read template pages at %lx",
							 (unsigned long)(r.vaddr + done))
					     : Error{"the template's pages are truncated"};
			done += n;
		}
	}
	return {};
}

// Huge pages make a fork copy one entry per 2 MiB; MADV_COLLAPSE does it
// without the VM_HUGEPAGE flag MADV_HUGEPAGE would leave on the VMA. Only
// 2 MiB blocks the template fills to 7/8 at least are collapsed:
// collapsing fills a block's holes with zeros, so a sparse block would
// make memory use grow; a nearly full one grows by 1/8 at most, once for
// all instances (they share it).
void collapse(const MemPlan &m, const rst_vma &v)
{
	std::map<uint64_t, uint64_t> filled;  // block -> bytes of pages in it
	for (auto &r : m.runs) {
		if (r.vaddr < v.start || r.vaddr >= v.end)
			continue;
		for (uint64_t a = r.vaddr; a < r.vaddr + r.len;) {
			uint64_t block = a & ~(kHuge - 1), next = std::min(block + kHuge, r.vaddr + r.len);
			filled[block] += next - a;
			a = next;
		}
	}
	for (auto [block, bytes] : filled)
		if (bytes >= kHuge / 8 * 7 && block >= v.start && block + kHuge <= v.end &&
		    madvise((void *)block, kHuge, kMadvCollapse) < 0)
			pr_debug("MADV_COLLAPSE of %lx: %s\n", (unsigned long)block, strerror(errno));
}

// Maps VMA i of the plan at its address, from file (-1: anonymous), with
// its pages from pages_fd and its final protection. ident: the file is
// to be identified, for the restore to check it sees the same one.
Result<HeldRange> hold_vma(const MemPlan &plan, size_t i, int file, bool ident, int pages_fd, bool huge,
			   bool *collision)
{
	const rst_vma &v = plan.vmas[i];
	HeldRange h{v.start, v.end};
	struct stat st;
	if (ident && fstat(file, &st) < 0)
		return sys_error("can't stat the file mapped at %lx", (unsigned long)v.start);
	if (ident)
		h.dev = st.st_dev, h.ino = st.st_ino;
	// Written at the final protection if nothing is to be written: the
	// restorer's mprotect() of a held VMA would walk every page table
	// entry each instance inherits (0.1 ms for a library's 392 KiB relro).
	uint32_t prot = v.has_pages ? PROT_READ | PROT_WRITE : v.prot;
	uint32_t flags = (v.mmap_flags & ~(MAP_SHARED | MAP_FIXED)) | MAP_FIXED_NOREPLACE;
	void *a = mmap((void *)v.start, v.end - v.start, prot, flags, file, v.pgoff);
	if (a == MAP_FAILED || a != (void *)v.start) {
		// old kernels ignore MAP_FIXED_NOREPLACE and map elsewhere
		*collision = a != MAP_FAILED || errno == EEXIST;
		if (a != MAP_FAILED)
			munmap(a, v.end - v.start);
		if (*collision)
			return Error{
			    strfmt("%lx-%lx is taken in the holder", (unsigned long)v.start, (unsigned long)v.end)};
		return sys_error("can't map template memory at %lx", (unsigned long)v.start);
	}
	if (!v.has_pages)
		return h;
	TRY(fill(plan, v, pages_fd));
	if (huge && file < 0)
		collapse(plan, v);
	if (v.prot != prot && mprotect((void *)v.start, v.end - v.start, v.prot) < 0)
		return sys_error("can't protect template memory at %lx", (unsigned long)v.start);
	return h;
}

}  // namespace

Result<std::vector<HeldRange>> hold_template(const ImageDir &images, const ImageDir &pages, bool huge, bool *collision)
{
	*collision = false;
	auto tree = read_pstree(images);
	if (!tree)
		return tree.error();
	pid_t root = (*tree)[0]->pid;
	auto plan = plan_memory(images, pages, root);
	if (!plan)
		return plan.error();
	auto files = read_files(images, pages);
	if (!files)
		return files.error();
	Fd pages_fd(openat(pages.fd(), plan->pages_image.c_str(), O_RDONLY | O_CLOEXEC));
	if (!pages_fd.valid())
		return sys_error("can't open the template's %s", plan->pages_image.c_str());
	std::vector<HeldRange> held;
	for (size_t i = 0; i < plan->vmas.size(); i++) {
		const rst_vma &v = plan->vmas[i];
		uint32_t fid = plan->vma_file[i];
		bool memfd = fid && files->find(fid) && files->find(fid)->memfd;
		// Every private mapping of a file is held, written or not: each
		// restore then inherits it instead of opening and mapping it
		// (a library's text and relro, say). Anonymous memory only with
		// pages to fill.
		if (!(v.mmap_flags & MAP_PRIVATE) || memfd || (!fid && !v.has_pages))
			continue;
		Fd file;
		if (fid) {
			// A file the holder does not see as the dump did (one of a
			// sandbox's dependency directory, say) is not held: each
			// restore maps the file it sees.
			auto fd = open_file_entry(*files, fid, plan->vma_fflags[i]);
			if (!fd) {
				pr_info("Not holding %lx-%lx: %s\n", (unsigned long)v.start, (unsigned long)v.end,
					fd.error().msg.c_str());
				continue;
			}
			file.reset(*fd);
		}
		// a deleted file's copy has its content from the images: any
		// instance's copy is as good as the holder's
		bool ident = fid && !files->ghosts.count(fid);
		auto r = hold_vma(*plan, i, file.get(), ident, pages_fd.get(), huge, collision);
		if (!r)
			return r.error();
		held.push_back(*r);
	}
	pr_info("Holding %zu VMAs of PID %d\n", held.size(), root);
	return held;
}

}  // namespace criu

// ------------------------------------------------------------ plugin API

namespace
{

void set_err(char *err, size_t len, const std::string &msg)
{
	if (err && len)
		snprintf(err, len, "%s", msg.c_str());
}

std::vector<criu::HeldRange> held_ranges(const struct cr_held_range *held, unsigned nr_held)
{
	std::vector<criu::HeldRange> h;
	for (unsigned i = 0; i < nr_held; i++)
		h.push_back({held[i].start, held[i].end, held[i].dev, held[i].ino});
	return h;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int criu_template_hold(int images_dir_fd, int pages_dir_fd,
									 struct cr_held_range **held, unsigned *nr_held,
									 char *err, size_t errlen)
{
	using namespace criu;
	auto images = ImageDir::from_fd(images_dir_fd, "template images");
	auto pages = ImageDir::from_fd(pages_dir_fd, "template pages");
	if (!images || !pages) {
		set_err(err, errlen, (!images ? images.error() : pages.error()).msg);
		return -EBADF;
	}
	bool collision;
	auto r = hold_template(*images, *pages, true, &collision);
	if (!r) {
		set_err(err, errlen, r.error().msg);
		return collision ? -EEXIST : -EINVAL;
	}
	*held = static_cast<cr_held_range *>(calloc(r->size() + 1, sizeof(cr_held_range)));
	if (!*held)
		return -ENOMEM;
	for (size_t i = 0; i < r->size(); i++)
		(*held)[i] = {(*r)[i].start, (*r)[i].end, (*r)[i].dev, (*r)[i].ino};
	*nr_held = r->size();
	return 0;
}

extern "C" __attribute__((visibility("default"))) int criu_template_restore(int argc, char **argv,
									    const struct cr_held_range *held,
									    unsigned nr_held, int pages_dir_fd,
									    int *pid, char *err, size_t errlen)
{
	using namespace criu;
	Options o;
	if (!parse_options(argc, argv, o) || o.command != "restore") {
		set_err(err, errlen, "not a valid criu restore command line");
		return -1;
	}
	o.held = held_ranges(held, nr_held);
	o.pages_dir_fd = pages_dir_fd;
	log::init(o.verbosity, log_path(o), o.log_pid, true);
	log::reset_first_error();
	plugins::set_options(&o);
	auto r = restore_and_record(o);
	plugins::set_options(nullptr);
	if (!r) {
		set_err(err, errlen, r.error().msg);
		return -1;
	}
	*pid = *r;
	return 0;
}

extern "C" __attribute__((visibility("default"))) int
criu_template_serve(int conn_fd, const char *name, const char *images, const struct cr_held_range *held,
		    unsigned nr_held, int pages_dir_fd,
		    int (*check_images)(const char *images_dir, void *arg, char *err, size_t errlen), void *arg,
		    const void *first, size_t len)
{
	using namespace criu;
	HeldMemory h{held_ranges(held, nr_held), pages_dir_fd};
	h.template_name = name;
	h.own_images = images;
	h.check_images = [&](const std::string &dir) -> Status {
		char err[1024] = "";
		if (check_images(dir.c_str(), arg, err, sizeof(err)) == 0)
			return {};
		return Error{err};
	};
	return serve_rpc_with(conn_fd, h, first, len);
}

extern "C" __attribute__((visibility("default"))) int
criu_template_prepare(const struct cr_held_range *held, unsigned nr_held, int pages_dir_fd, char *err, size_t errlen)
{
	using namespace criu;
	auto r = prepare_root(held_ranges(held, nr_held), pages_dir_fd);
	if (!r) {
		set_err(err, errlen, r.error().msg);
		return -EINVAL;
	}
	return *r ? 0 : -ENOTSUP;
}

extern "C" __attribute__((visibility("default"))) void criu_own_pages_ahead(const struct cr_held_range *skip,
									    unsigned nr_skip)
{
	std::vector<std::pair<uint64_t, uint64_t>> v;
	for (unsigned i = 0; i < nr_skip; i++)
		v.emplace_back(skip[i].start, skip[i].end);
	criu::own_pages_ahead(v);
}
