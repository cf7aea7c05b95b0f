#include "tar.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

#include "log.h"

namespace criu
{

namespace
{

constexpr size_t kBlock = 512;
constexpr size_t kMaxPlain = 4 << 20;

// nullopt: more than kMaxPlain once inflated.
Result<std::optional<std::string>> inflate_gz(const std::string &gz, const std::string &what)
{
	z_stream zs{};
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return Error{what + ": can't start zlib"};
	zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(gz.data()));
	zs.avail_in = gz.size();
	std::string out;
	int r = Z_OK;
	while (r != Z_STREAM_END) {
		if (out.size() >= kMaxPlain) {
			inflateEnd(&zs);
			return std::optional<std::string>();
		}
		size_t at = out.size();
		out.resize(std::min(kMaxPlain + 1, at + 64 * 1024));
		zs.next_out = reinterpret_cast<Bytef *>(out.data() + at);
		zs.avail_out = out.size() - at;
		r = inflate(&zs, Z_NO_FLUSH);
		out.resize(out.size() - zs.avail_out);
		if (r != Z_OK && r != Z_STREAM_END) {
			inflateEnd(&zs);
			return Error{strfmt("%s is not a gzip stream zlib can inflate (%d)", what.c_str(), r)};
		}
		if (r == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
			inflateEnd(&zs);
			return Error{what + " is truncated"};
		}
	}
	inflateEnd(&zs);
	return std::optional<std::string>(std::move(out));
}

// A header's octal field: digits between spaces, NUL-terminated (GNU's
// base-256 numbers are not octal).
std::optional<uint64_t> octal(const char *f, size_t n)
{
	std::string_view v(f, strnlen(f, n));
	v.remove_prefix(std::min(v.find_first_not_of(' '), v.size()));
	auto last = v.find_last_not_of(' ');
	v = v.substr(0, last == std::string_view::npos ? 0 : last + 1);
	return parse_u64(v, 8);
}

struct Entry {
	std::string name;  // relative, "" for the archive's root
	char type;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	timespec mtime;
	dev_t rdev = 0;
	std::string_view data;
	std::string link;
};

// "SECONDS[.FRACTION]" of a pax time.
std::optional<timespec> pax_time(const std::string &v)
{
	auto dot = v.find('.');
	auto sec = parse_u64(v.substr(0, dot));
	if (!sec)
		return std::nullopt;
	timespec ts{(time_t)*sec, 0};
	if (dot != std::string::npos) {
		auto frac = v.substr(dot + 1, 9);
		if (frac.empty() || frac.find_first_not_of("0123456789") != std::string::npos)
			return std::nullopt;
		frac.resize(9, '0');
		ts.tv_nsec = strtol(frac.c_str(), nullptr, 10);
	}
	return ts;
}

// The records of a pax extended header ("LEN KEY=VALUE\n"...) that a
// plain archive may hold: times, and the numbers and names ustar can't.
// nullopt for any other (xattrs, ...): the archive is not plain.
struct Pax {
	std::optional<timespec> mtime;
	std::optional<std::string> path, linkpath;
	std::optional<uint64_t> size, uid, gid;
};

std::optional<Pax> parse_pax(std::string_view d)
{
	Pax p;
	while (!d.empty()) {
		auto sp = d.find(' ');
		if (sp == std::string_view::npos)
			return std::nullopt;
		auto len = parse_u64(d.substr(0, sp));
		if (!len || *len <= sp + 1 || *len > d.size() || d[*len - 1] != '\n')
			return std::nullopt;
		auto rec = d.substr(sp + 1, *len - sp - 2);
		d.remove_prefix(*len);
		auto eq = rec.find('=');
		if (eq == std::string_view::npos)
			return std::nullopt;
		std::string key(rec.substr(0, eq)), val(rec.substr(eq + 1));
		if (key == "mtime") {
			p.mtime = pax_time(val);
			if (!p.mtime)
				return std::nullopt;
		} else if (key == "atime" || key == "ctime" || key == "uname" || key == "gname") {
			// tar sets neither time; owners go by number
		} else if (key == "path" || key == "linkpath") {
			(key == "path" ? p.path : p.linkpath) = val;
		} else if (key == "size" || key == "uid" || key == "gid") {
			auto n = parse_u64(val);
			if (!n)
				return std::nullopt;
			(key == "size" ? p.size : key == "uid" ? p.uid : p.gid) = n;
		} else {
			return std::nullopt;
		}
	}
	return p;
}

std::string field(const char *f, size_t n)
{
	return std::string(f, strnlen(f, n));
}

// "./a/b/" -> "a/b"; nullopt for absolute names and ".." anywhere.
std::optional<std::string> normalize(std::string n)
{
	while (n.starts_with("./"))
		n.erase(0, 2);
	while (n.ends_with("/"))
		n.pop_back();
	if (n == ".")
		n.clear();
	if (n.starts_with("/"))
		return std::nullopt;
	for (size_t at = 0; at <= n.size();) {
		size_t end = n.find('/', at);
		if (end == std::string::npos)
			end = n.size();
		auto part = std::string_view(n).substr(at, end - at);
		if (part == ".." || (part.empty() && !n.empty()) || part == ".")
			return std::nullopt;
		at = end + 1;
	}
	return n;
}

// The entries of a plain archive; nullopt if it is not plain.
std::optional<std::vector<Entry>> parse(const std::string &tar)
{
	std::vector<Entry> out;
	std::optional<Pax> pax;	 // of the next entry
	for (size_t off = 0;;) {
		if (tar.size() - off < kBlock)
			return std::nullopt;  // no end marker
		const char *h = tar.data() + off;
		if (std::all_of(h, h + kBlock, [](char c) { return c == 0; }))
			return out;
		unsigned sum = 0;
		for (size_t i = 0; i < kBlock; i++)
			sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)h[i];
		auto chk = octal(h + 148, 8);
		bool ustar = !memcmp(h + 257, "ustar", 5);
		if (!chk || *chk != sum || !ustar || std::any_of(h + 345, h + 500, [](char c) { return c != 0; }))
			return std::nullopt;
		auto mode = octal(h + 100, 8), uid = octal(h + 108, 8), gid = octal(h + 116, 8);
		auto size = octal(h + 124, 12), mtime = octal(h + 136, 12);
		if (pax) {
			size = pax->size ? pax->size : size;
			uid = pax->uid ? pax->uid : uid;
			gid = pax->gid ? pax->gid : gid;
		}
		if (!mode || !uid || !gid || !size || !mtime || *size > tar.size())
			return std::nullopt;
		size_t blocks = (*size + kBlock - 1) / kBlock;
		if (blocks > (tar.size() - off) / kBlock - 1)
			return std::nullopt;
		if (h[156] == 'x') {
			if (pax)
				return std::nullopt;
			pax = parse_pax(std::string_view(tar).substr(off + kBlock, *size));
			if (!pax)
				return std::nullopt;
			off += kBlock * (1 + blocks);
			continue;
		}
		auto name = normalize(pax && pax->path ? *pax->path : field(h, 100));  // (a pax header's is not)
		if (!name)
			return std::nullopt;
		Entry e{*name, h[156], (mode_t)(*mode & 07777), (uid_t)*uid, (gid_t)*gid, {(time_t)*mtime, 0}};
		if (pax && pax->mtime)
			e.mtime = *pax->mtime;
		if (e.type == '\0')
			e.type = '0';
		switch (e.type) {
		case '0':
			e.data = std::string_view(tar).substr(off + kBlock, *size);
			break;
		case '2':
			e.link = pax && pax->linkpath ? *pax->linkpath : field(h + 157, 100);
			break;
		case '3':
		case '4': {
			auto ma = octal(h + 329, 8), mi = octal(h + 337, 8);
			if (!ma || !mi)
				return std::nullopt;
			e.rdev = makedev(*ma, *mi);
			break;
		}
		case '5':
		case '6':
			break;
		default:
			return std::nullopt;  // hard links, long names, pax headers, sparse files...
		}
		if ((e.type != '0' && *size) || (e.name.empty() && e.type != '5') || (e.type == '2' && e.link.empty()))
			return std::nullopt;
		out.push_back(std::move(e));
		pax.reset();
		off += kBlock * (1 + blocks);
	}
}

Status set_attrs(int dir_fd, const Entry &e)
{
	const char *n = e.name.empty() ? "" : e.name.c_str();
	int flags = AT_SYMLINK_NOFOLLOW | (e.name.empty() ? AT_EMPTY_PATH : 0);
	if (fchownat(dir_fd, n, e.uid, e.gid, flags) < 0)
		return sys_error("can't give %s to %u:%u", e.name.c_str(), e.uid, e.gid);
	// after chown, which clears set-id bits; symlinks have no mode
	if (e.type != '2') {
		int r = e.name.empty() ? fchmod(dir_fd, e.mode) : fchmodat(dir_fd, n, e.mode, 0);
		if (r < 0)
			return sys_error("can't set the mode %o of %s", e.mode, e.name.c_str());
	}
	// the access time is the extraction's, as tar leaves it
	timespec ts[2] = {{0, UTIME_OMIT}, e.mtime};
	int r = e.name.empty() ? futimens(dir_fd, ts) : utimensat(dir_fd, n, ts, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return sys_error("can't set the time of %s", e.name.c_str());
	return {};
}

Status create(int dir_fd, const Entry &e)
{
	const char *n = e.name.c_str();
	switch (e.type) {
	case '0': {
		Fd fd(openat(dir_fd, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
		if (!fd.valid())
			return sys_error("can't create %s", n);
		TRY(write_all(fd.get(), e.data.data(), e.data.size(), e.name));
		break;
	}
	case '5':
		if (!e.name.empty() && mkdirat(dir_fd, n, 0700) < 0)
			return sys_error("can't create the directory %s", n);
		return {};  // its attributes once its contents are in
	case '2':
		if (symlinkat(e.link.c_str(), dir_fd, n) < 0)
			return sys_error("can't create the symlink %s", n);
		break;
	default:
		mode_t kind = e.type == '3' ? S_IFCHR : e.type == '4' ? S_IFBLK : S_IFIFO;
		if (mknodat(dir_fd, n, kind | 0600, e.rdev) < 0)
			return sys_error("can't create the node %s", n);
	}
	return set_attrs(dir_fd, e);
}

}  // namespace

Result<bool> extract_plain_tar_gz(const std::string &gz, int dir_fd, const std::string &what)
{
	auto tar = inflate_gz(gz, what);
	if (!tar)
		return tar.error();
	if (!*tar)
		return false;
	auto entries = parse(**tar);
	if (!entries)
		return false;
	// symlinks last: no later name can then lead through one of them
	for (bool links : {false, true})
		for (auto &e : *entries)
			if ((e.type == '2') == links)
				TRY(create(dir_fd, e));
	for (auto e = entries->rbegin(); e != entries->rend(); ++e)
		if (e->type == '5')
			TRY(set_attrs(dir_fd, *e));
	pr_debug("%s: %zu entries extracted by criu\n", what.c_str(), entries->size());
	return true;
}

}  // namespace criu
