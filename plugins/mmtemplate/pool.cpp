#include "pool.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "criu-plugin.h"
#include "holder.h"

namespace mmt
{

std::string fmt(const char *f, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return buf;
}

std::string sys(const char *f, ...)
{
	int e = errno;
	char buf[2048];
	va_list ap;
	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	return std::string(buf) + ": " + strerror(e);
}

namespace
{

constexpr size_t kBuf = 1 << 20;
constexpr uint64_t kProgressEvery = 256ull << 20;

uint64_t mix(uint64_t h, uint64_t w)
{
	h ^= w;
	h *= 0x9e3779b97f4a7c15ULL;
	return (h << 29) | (h >> 35);
}

uint64_t finish(uint64_t h, uint64_t len)
{
	h ^= len;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

// A running checksum over a stream of bytes.
struct Summer {
	uint64_t h = 0x243f6a8885a308d3ULL, len = 0;
	void add(const char *p, size_t n)
	{
		size_t i = 0;
		for (; i + 8 <= n; i += 8) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			h = mix(h, w);
		}
		for (; i < n; i++)
			h = mix(h, (uint8_t)p[i]);
		len += n;
	}
	uint64_t value() const { return finish(h, len); }
};

// Does the mount holding path have the dax option?
bool on_dax_mount(const std::string &path)
{
	struct stat st;
	if (stat(path.c_str(), &st) < 0)
		return false;
	std::ifstream mi("/proc/self/mountinfo");
	std::string line;
	auto want = fmt("%u:%u", major(st.st_dev), minor(st.st_dev));
	while (std::getline(mi, line)) {
		std::istringstream ss(line);
		std::string id, parent, dev;
		ss >> id >> parent >> dev;
		if (dev != want)
			continue;
		auto dash = line.find(" - ");
		if (dash != std::string::npos && line.find("dax", dash) != std::string::npos)
			return true;
	}
	return false;
}

// The names in d (closed here), sorted, without the dot files.
std::vector<std::string> names_in(DIR *d)
{
	std::vector<std::string> out;
	if (d) {
		while (dirent *e = readdir(d))
			if (e->d_name[0] != '.')
				out.emplace_back(e->d_name);
		closedir(d);
	}
	std::sort(out.begin(), out.end());
	return out;
}

std::vector<std::string> list_dir(const std::string &dir)
{
	return names_in(opendir(dir.c_str()));
}

std::vector<std::string> list_dir_fd(int dir_fd)
{
	// a copy of the fd: readdir reads from its offset, closedir closes it
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : nullptr;
	if (fd >= 0 && !d)
		close(fd);
	return names_in(d);
}

Status remove_tree(const std::string &dir)
{
	for (auto &n : list_dir(dir))
		unlink((dir + "/" + n).c_str());
	unlink((dir + "/.lock").c_str());
	if (rmdir(dir.c_str()) < 0 && errno != ENOENT)
		return fail(sys("can't remove %s", dir.c_str()));
	return ok();
}

Result<FileSum> copy_file(int from_dir, int to_dir, const std::string &name, uint64_t *total)
{
	Fd in(openat(from_dir, name.c_str(), O_RDONLY | O_CLOEXEC));
	Fd out(openat(to_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
	if (!in.valid() || !out.valid())
		return Result<FileSum>::fail(sys("can't copy %s into the pool", name.c_str()));
	std::string buf(kBuf, '\0');
	Summer s;
	for (;;) {
		ssize_t n = read(in.get(), buf.data(), kBuf);
		if (n < 0)
			return Result<FileSum>::fail(sys("can't read %s", name.c_str()));
		if (n == 0)
			break;
		s.add(buf.data(), n);
		for (ssize_t w = 0; w < n;) {
			ssize_t k = write(out.get(), buf.data() + w, n - w);
			if (k < 0)
				return Result<FileSum>::fail(sys("can't write %s into the pool", name.c_str()));
			w += k;
		}
		uint64_t before = *total;
		*total += n;
		if (before / kProgressEvery != *total / kProgressEvery)
			criu_log(3, "convert: %llu MiB copied\n", (unsigned long long)(*total >> 20));
	}
	if (fsync(out.get()) < 0)
		return Result<FileSum>::fail(sys("can't sync %s in the pool", name.c_str()));
	return FileSum{name, s.len, s.value()};
}

bool is_image(const std::string &n)
{
	return n.size() > 4 && n.compare(n.size() - 4, 4, ".img") == 0;
}

Status write_index(const Pool &p, const Index &ix)
{
	auto path = p.index_path(ix.name), tmp = path + ".tmp";
	{
		std::ofstream f(tmp, std::ios::trunc);
		f << "criu-mm-template 1\nname " << ix.name << "\ngeneration " << ix.generation << "\nkind " << ix.kind
		  << "\nfingerprint " << std::hex << ix.fingerprint << "\nstamp " << ix.stamp << std::dec << "\n";
		for (auto &fs : ix.files)
			f << "file " << fs.name << " " << fs.size << " " << std::hex << fs.sum << std::dec << "\n";
		f.flush();
		if (!f)
			return fail(sys("can't write %s", tmp.c_str()));
	}
	if (rename(tmp.c_str(), path.c_str()) < 0)
		return fail(sys("can't install %s", path.c_str()));
	return ok();
}

}  // namespace

Result<Pool> Pool::from_options()
{
	const char *kind = criu_get_option("mem-pool");
	const char *dax = criu_get_option("dax-device");
	Pool p;
	p.kind = kind ? kind : (dax ? "dax" : "dram");
	if (p.kind == "dram") {
		if (dax)
			return Result<Pool>::fail("--dax-device is for --mem-pool dax");
		const char *env = getenv("CRIU_MM_POOL");
		p.dir = env && *env ? env : "/dev/shm/criu-mm-pool";
		if (mkdir(p.dir.c_str(), 0700) < 0 && errno != EEXIST)
			return Result<Pool>::fail(sys("can't create the pool %s", p.dir.c_str()));
		return p;
	}
	if (p.kind != "dax")
		return Result<Pool>::fail(fmt("unknown memory pool kind '%s' (dram or dax)", p.kind.c_str()));
	if (!dax)
		return Result<Pool>::fail("--mem-pool dax needs --dax-device PATH");
	struct stat st;
	if (stat(dax, &st) < 0)
		return Result<Pool>::fail(sys("dax pool %s", dax));
	if (S_ISCHR(st.st_mode))
		return Result<Pool>::fail(fmt("%s is a device DAX; this plugin needs a directory on a file system "
					      "mounted with -o dax",
					      dax));
	if (!S_ISDIR(st.st_mode))
		return Result<Pool>::fail(fmt("dax pool %s is not a directory", dax));
	if (!on_dax_mount(dax))
		return Result<Pool>::fail(fmt("%s is not on a file system mounted with -o dax", dax));
	p.dir = dax;
	return p;
}

Result<std::string> Pool::socket_path(const std::string &name) const
{
	struct stat st;
	if (stat(dir.c_str(), &st) < 0)
		return Result<std::string>::fail(sys("pool %s", dir.c_str()));
	const char *run = getenv("CRIU_MM_RUN");
	std::string base = run && *run ? run : "/run/criu-mm";
	if (mkdir(base.c_str(), 0700) < 0 && errno != EEXIST)
		return Result<std::string>::fail(sys("can't create %s", base.c_str()));
	return base + fmt("/%llx-%llx-", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino) + name + ".sock";
}

Status check_images(const Index &ix, const std::string &dir)
{
	Fd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!d.valid())
		return fail(sys("can't open images directory %s", dir.c_str()));
	auto stamp = dir_stamp(d.get());
	if (stamp && ix.stamp && *stamp == ix.stamp)
		return ok();
	criu_log(4, "template %s: %s are not the files it was made from: checked by content\n", ix.name.c_str(),
		 dir.c_str());
	auto fp = fingerprint(d.get());
	if (!fp)
		return fail(fp.error());
	if (*fp != ix.fingerprint)
		return fail(fmt("template %s was made from another dump than %s", ix.name.c_str(), dir.c_str()));
	return ok();
}

uint64_t Index::bytes() const
{
	uint64_t b = 0;
	for (auto &f : files)
		b += f.size;
	return b;
}

Status check_name(const std::string &name)
{
	if (name.empty() || name.size() > 64 || name[0] == '.')
		return fail(fmt("bad template name '%s'", name.c_str()));
	for (char c : name)
		if (!isalnum((unsigned char)c) && c != '-' && c != '_' && c != '.')
			return fail(fmt("bad template name '%s' (letters, digits, '-', '_', '.')", name.c_str()));
	return ok();
}

namespace
{

// The words of line, split at blanks.
std::vector<std::string> words(std::string_view line)
{
	std::vector<std::string> w;
	for (size_t at = 0; (at = line.find_first_not_of(" \t", at)) != std::string_view::npos;) {
		size_t end = std::min(line.find_first_of(" \t", at), line.size());
		w.emplace_back(line.substr(at, end - at));
		at = end;
	}
	return w;
}

// A whole number of the given base, and nothing else.
bool number(const std::string &s, int base, uint64_t &v)
{
	char *end = nullptr;
	errno = 0;
	v = strtoull(s.c_str(), &end, base);
	return !s.empty() && s[0] != '-' && !*end && !errno;
}

// One line of the index into ix; false if it is malformed. (Keys this
// version does not know are skipped.)
bool index_line(const std::vector<std::string> &w, Index &ix)
{
	if (w.empty())
		return true;
	const std::string &key = w[0];
	if (key == "name" || key == "kind") {
		(key == "name" ? ix.name : ix.kind) = w.size() == 2 ? w[1] : "";
		return w.size() == 2;
	}
	if (key == "generation")
		return w.size() == 2 && number(w[1], 10, ix.generation);
	if (key == "fingerprint")
		return w.size() == 2 && number(w[1], 16, ix.fingerprint);
	if (key == "stamp")
		return w.size() == 2 && number(w[1], 16, ix.stamp);
	if (key != "file")
		return true;
	FileSum &fs = ix.files.emplace_back();
	fs.name = w.size() == 4 ? w[1] : "";
	return w.size() == 4 && number(w[2], 10, fs.size) && number(w[3], 16, fs.sum);
}

}  // namespace

// (Read with plain read(2): it is on every restore's path, and a process's
// first iostream costs 0.1 ms of locale set-up.)
Result<Index> read_index(const Pool &p, const std::string &name)
{
	if (auto st = check_name(name); !st)
		return Result<Index>::fail(st.error());
	auto path = p.index_path(name);
	Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd.valid())
		return Result<Index>::fail(
		    fmt("no template %s in the %s pool %s", name.c_str(), p.kind.c_str(), p.dir.c_str()));
	std::string text;
	char buf[4096];
	for (ssize_t n; (n = read(fd.get(), buf, sizeof(buf))) != 0;) {
		if (n < 0 && errno != EINTR)
			return Result<Index>::fail(sys("can't read %s", path.c_str()));
		if (n > 0)
			text.append(buf, n);
		if (text.size() > (64 << 20))
			return Result<Index>::fail(fmt("%s: not a template index", path.c_str()));
	}
	std::string_view rest = text;
	auto next_line = [&rest] {
		size_t nl = std::min(rest.find('\n'), rest.size());
		std::string_view line = rest.substr(0, nl);
		rest.remove_prefix(std::min(nl + 1, rest.size()));
		return line;
	};
	if (next_line() != "criu-mm-template 1")
		return Result<Index>::fail(fmt("%s: not a template index", path.c_str()));
	Index ix;
	while (!rest.empty()) {
		std::string_view line = next_line();
		if (!index_line(words(line), ix))
			return Result<Index>::fail(
			    fmt("%s: malformed line '%.*s'", path.c_str(), (int)line.size(), line.data()));
	}
	if (ix.name != name || !ix.generation || ix.files.empty())
		return Result<Index>::fail(fmt("%s: incomplete index", path.c_str()));
	return ix;
}

Result<uint64_t> checksum_file(int fd, uint64_t *size)
{
	// small files (the fingerprint's) are the common case: grow as needed
	struct stat st;
	size_t len = fstat(fd, &st) == 0 && (size_t)st.st_size < kBuf ? st.st_size + 1 : kBuf;
	std::string buf(len, '\0');
	Summer s;
	for (off_t off = 0;;) {
		ssize_t n = pread(fd, buf.data(), buf.size(), off);
		if (n < 0)
			return Result<uint64_t>::fail(sys("can't read a template file"));
		if (n == 0)
			break;
		s.add(buf.data(), n);
		off += n;
	}
	*size = s.len;
	return s.value();
}

namespace
{

// The images of the dump in dir_fd that a fingerprint covers: all but the
// pages (the template's, checksummed in the index).
std::vector<std::string> fingerprinted(int dir_fd)
{
	auto names = list_dir_fd(dir_fd);
	std::erase_if(names, [](auto &n) { return !is_image(n) || n.starts_with("pages-"); });
	return names;
}

}  // namespace

Result<uint64_t> dir_stamp(int dir_fd)
{
	Summer all;
	for (auto &n : fingerprinted(dir_fd)) {
		struct stat st;
		if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
			return Result<uint64_t>::fail(sys("%s", n.c_str()));
		uint64_t id[] = {(uint64_t)st.st_dev,	      (uint64_t)st.st_ino,	    (uint64_t)st.st_size,
				 (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ctim.tv_sec,
				 (uint64_t)st.st_ctim.tv_nsec};
		all.add(n.data(), n.size());
		all.add(reinterpret_cast<const char *>(id), sizeof(id));
	}
	return all.value();
}

Result<uint64_t> fingerprint(int dir_fd)
{
	Summer all;
	for (auto &n : fingerprinted(dir_fd)) {
		Fd fd(openat(dir_fd, n.c_str(), O_RDONLY | O_CLOEXEC));
		uint64_t size;
		auto sum = fd.valid() ? checksum_file(fd.get(), &size) : Result<uint64_t>::fail(sys("%s", n.c_str()));
		if (!sum)
			return sum;
		all.add(n.data(), n.size());
		all.add(reinterpret_cast<const char *>(&*sum), 8);
	}
	return all.value();
}

namespace
{

// "NAME.N" -> N; 0 for anything else in the pool (indexes, .tmp dirs, other names)
uint64_t generation_of(const std::string &name, const std::string &entry)
{
	auto prefix = name + ".";
	if (!entry.starts_with(prefix))
		return 0;
	auto gen = entry.substr(prefix.size());
	if (gen.empty() || gen.size() > 18 || gen.find_first_not_of("0123456789") != std::string::npos)
		return 0;
	return strtoull(gen.c_str(), nullptr, 10);
}

// A deleted template's generation directory stays while its holder or
// instances still use it, so a new template of that name must not reuse
// its number: the rename would fail, and a late holder would serve the
// wrong memory under a matching generation.
uint64_t next_generation(const Pool &p, const std::string &name)
{
	auto old = read_index(p, name);
	uint64_t last = old ? old->generation : 0;
	for (auto &n : list_dir(p.dir))
		last = std::max(last, generation_of(name, n));
	return last + 1;
}

}  // namespace

Status convert(const Pool &p, const std::string &name, const std::string &images_dir)
{
	if (auto st = check_name(name); !st)
		return st;
	Fd src(open(images_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!src.valid())
		return fail(sys("can't open images directory %s", images_dir.c_str()));
	struct stat st;
	if (fstatat(src.get(), "pstree.img", &st, 0) < 0 || fstatat(src.get(), "inventory.img", &st, 0) < 0)
		return fail(fmt("%s holds no dump (no pstree.img or inventory.img)", images_dir.c_str()));
	Index ix;
	ix.name = name;
	ix.kind = p.kind;
	ix.generation = next_generation(p, name);
	// (the stamp first: a file changed while we read it gets another one)
	auto stamp = dir_stamp(src.get());
	auto fp = fingerprint(src.get());
	if (!fp || !stamp)
		return fail(!fp ? fp.error() : stamp.error());
	ix.fingerprint = *fp;
	ix.stamp = *stamp;
	auto dir = p.gen_dir(name, ix.generation), tmp = dir + ".tmp";
	remove_tree(tmp);
	if (mkdir(tmp.c_str(), 0700) < 0)
		return fail(sys("can't create %s", tmp.c_str()));
	Fd dst(open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	Fd lock(openat(dst.get(), ".lock", O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	if (!dst.valid() || !lock.valid())
		return fail(sys("can't set up %s", tmp.c_str()));
	uint64_t total = 0;
	for (auto &n : list_dir(images_dir)) {
		if (!is_image(n))
			continue;
		auto fs = copy_file(src.get(), dst.get(), n, &total);
		if (!fs) {
			remove_tree(tmp);
			return fail(fs.error());
		}
		ix.files.push_back(*fs);
	}
	fsync(dst.get());
	if (rename(tmp.c_str(), dir.c_str()) < 0)
		return fail(sys("can't install %s", dir.c_str()));
	if (auto st = write_index(p, ix); !st)
		return st;
	criu_log(3, "Template %s generation %llu: %zu files, %llu bytes in the %s pool %s\n", name.c_str(),
		 (unsigned long long)ix.generation, ix.files.size(), (unsigned long long)ix.bytes(), p.kind.c_str(),
		 p.dir.c_str());
	collect_garbage(p, name);
	return ok();
}

void collect_garbage(const Pool &p, const std::string &name)
{
	auto cur = read_index(p, name);
	for (auto &n : list_dir(p.dir)) {
		auto gen = generation_of(name, n);
		if (!gen || (cur && cur->generation == gen))
			continue;
		auto dir = p.dir + "/" + n;
		Fd lock(open((dir + "/.lock").c_str(), O_RDONLY | O_CLOEXEC));
		if (lock.valid() && flock(lock.get(), LOCK_EX | LOCK_NB) < 0)
			continue;  // a holder still uses it; it cleans up when it ends
		remove_tree(dir);
	}
}

Status list(const Pool &p)
{
	printf("%-24s %5s %-5s %12s %6s  %s\n", "NAME", "GEN", "POOL", "BYTES", "FILES", "HOLDER");
	for (auto &n : list_dir(p.dir)) {
		if (!n.ends_with(".tmpl"))
			continue;
		auto name = n.substr(0, n.size() - 5);
		auto ix = read_index(p, name);
		if (!ix) {
			printf("%-24s (unreadable: %s)\n", name.c_str(), ix.error().c_str());
			continue;
		}
		int pid = holder_pid(p, name);
		printf("%-24s %5llu %-5s %12llu %6zu  %s\n", name.c_str(), (unsigned long long)ix->generation,
		       ix->kind.c_str(), (unsigned long long)ix->bytes(), ix->files.size(),
		       pid > 0 ? fmt("running (PID %d)", pid).c_str() : "-");
	}
	return ok();
}

Status remove_template(const Pool &p, const std::string &name)
{
	auto ix = read_index(p, name);
	if (!ix)
		return fail(ix.error());
	if (unlink(p.index_path(name).c_str()) < 0)
		return fail(sys("can't remove %s", p.index_path(name).c_str()));
	stop_holder(p, name);
	collect_garbage(p, name);
	criu_log(3, "Template %s deleted\n", name.c_str());
	return ok();
}

}  // namespace mmt
