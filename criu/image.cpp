#include "image.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "log.h"
#include "magic.h"

namespace criu
{

namespace
{
constexpr size_t kMaxImage = 256u << 20;
constexpr size_t kMaxEntry = 64u << 20;
}  // namespace

Result<ImageDir> ImageDir::open(const std::string &path, bool create)
{
	if (create && mkdir(path.c_str(), 0700) < 0 && errno != EEXIST)
		return sys_error("can't create images directory %s", path.c_str());
	ImageDir d;
	d.fd_.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!d.fd_.valid())
		return sys_error("can't open images directory %s", path.c_str());
	d.path_ = path;
	return d;
}

Result<ImageDir> ImageDir::from_fd(int fd, const std::string &label)
{
	ImageDir d;
	d.fd_.reset(fcntl(fd, F_DUPFD_CLOEXEC, 0));
	if (!d.fd_.valid())
		return sys_error("can't use the directory fd %d (%s)", fd, label.c_str());
	d.path_ = label;
	return d;
}

Result<ImageWriter> ImageWriter::create_raw(const ImageDir &dir, const std::string &name)
{
	ImageWriter w;
	w.name_ = name;
	w.fd_.reset(openat(dir.fd(), name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
	if (!w.fd_.valid())
		return sys_error("can't create image %s/%s", dir.path().c_str(), name.c_str());
	return w;
}

Result<ImageWriter> ImageWriter::create(const ImageDir &dir, const std::string &name, uint32_t magic)
{
	auto w = create_raw(dir, name);
	if (!w)
		return w;
	uint32_t hdr[2] = {IMG_COMMON_MAGIC, magic};
	if (magic == INVENTORY_MAGIC)
		w->buf_.append(reinterpret_cast<char *>(&hdr[1]), 4);
	else
		w->buf_.append(reinterpret_cast<char *>(hdr), 8);
	return w;
}

Status ImageWriter::write(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint32_t l32 = len;
	size_t off = buf_.size();
	buf_.resize(off + 4 + len);
	memcpy(buf_.data() + off, &l32, 4);
	protobuf_c_message_pack(msg, reinterpret_cast<uint8_t *>(buf_.data() + off + 4));
	if (buf_.size() > (1u << 20)) {
		TRY(write_all(fd_.get(), buf_.data(), buf_.size(), name_));
		buf_.clear();
	}
	return {};
}

Status ImageWriter::write_raw(const void *p, size_t len)
{
	if (!buf_.empty()) {
		TRY(write_all(fd_.get(), buf_.data(), buf_.size(), name_));
		buf_.clear();
	}
	return write_all(fd_.get(), p, len, name_);
}

Status ImageWriter::close()
{
	if (!buf_.empty())
		TRY(write_all(fd_.get(), buf_.data(), buf_.size(), name_));
	buf_.clear();
	if (fd_.valid() && ::close(fd_.release()) < 0)
		return sys_error("can't close image %s", name_.c_str());
	return {};
}

Result<ImageReader> ImageReader::open(const ImageDir &dir, const std::string &name, uint32_t magic, bool optional)
{
	ImageReader r;
	r.name_ = name;
	Fd fd(openat(dir.fd(), name.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd.valid()) {
		if (errno == ENOENT && optional)
			return r;
		return sys_error("can't open image %s/%s", dir.path().c_str(), name.c_str());
	}
	struct stat st;
	if (fstat(fd.get(), &st) < 0)
		return sys_error("can't stat image %s", name.c_str());
	if ((size_t)st.st_size > kMaxImage)
		return Error{strfmt("image %s is too large (%lld bytes)", name.c_str(), (long long)st.st_size)};
	r.data_.resize(st.st_size);
	TRY(read_all(fd.get(), r.data_.data(), r.data_.size(), "image " + name));
	size_t hdr = magic == INVENTORY_MAGIC ? 4 : 8;
	if (r.data_.size() < hdr)
		return Error{strfmt("image %s is truncated: no magic", name.c_str())};
	uint32_t m[2] = {0, 0};
	memcpy(m, r.data_.data(), hdr);
	bool good = magic == INVENTORY_MAGIC ? m[0] == magic : (m[0] == IMG_COMMON_MAGIC && m[1] == magic);
	if (!good)
		return Error{strfmt("image %s has a bad magic 0x%x (expected 0x%x)", name.c_str(),
				    hdr == 4 ? m[0] : m[1], magic)};
	r.pos_ = hdr;
	return r;
}

Result<PbPtr<ProtobufCMessage>> ImageReader::next_raw(const ProtobufCMessageDescriptor &d)
{
	if (pos_ >= data_.size())
		return PbPtr<ProtobufCMessage>();
	entry_++;
	if (data_.size() - pos_ < 4)
		return Error{strfmt("image %s is truncated in the length of entry %d", name_.c_str(), entry_)};
	uint32_t len;
	memcpy(&len, data_.data() + pos_, 4);
	pos_ += 4;
	if (len > kMaxEntry || len > data_.size() - pos_)
		return Error{strfmt("image %s is truncated or corrupt: entry %d claims %u bytes, %zu left",
				    name_.c_str(), entry_, len, data_.size() - pos_)};
	auto m = protobuf_c_message_unpack(&d, nullptr, len, reinterpret_cast<const uint8_t *>(data_.data() + pos_));
	if (!m)
		return Error{strfmt("image %s: entry %d is corrupt (not a valid %s)", name_.c_str(), entry_, d.name)};
	pos_ += len;
	return PbPtr<ProtobufCMessage>(m);
}

Result<std::string_view> ImageReader::take_raw(size_t len)
{
	if (len > data_.size() - pos_)
		return Error{strfmt("image %s is truncated: %zu bytes of data missing after entry %d", name_.c_str(),
				    len - (data_.size() - pos_), entry_)};
	std::string_view v(data_.data() + pos_, len);
	pos_ += len;
	return v;
}

Status write_one(const ImageDir &dir, const std::string &name, uint32_t magic, const ProtobufCMessage *m)
{
	auto w = ImageWriter::create(dir, name, magic);
	if (!w)
		return w.error();
	TRY(w->write(m));
	return w->close();
}

}  // namespace criu
