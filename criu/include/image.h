// CRIU image files: framing, magics and protobuf entries.
//
// An image is [IMG_COMMON magic][image magic] (inventory.img: only its own
// magic), then entries, each a u32 length and a packed protobuf message.
// Readers validate everything and name the file and entry in every error;
// nothing here trusts a length read from disk.
#pragma once

#include <protobuf-c/protobuf-c.h>

#include <memory>
#include <optional>
#include <string>

#include "util.h"

namespace criu
{

// core_entry.tc.task_state, as CRIU numbers it
constexpr uint32_t kTaskAlive = 1, kTaskDead = 2, kTaskStopped = 3;

struct PbFree {
	void operator()(void *m) const
	{
		if (m)
			protobuf_c_message_free_unpacked(static_cast<ProtobufCMessage *>(m), nullptr);
	}
};
template <class T> using PbPtr = std::unique_ptr<T, PbFree>;

class ImageDir
{
public:
	static Result<ImageDir> open(const std::string &path, bool create);
	// Another open directory (a template's pages): fd is duplicated.
	static Result<ImageDir> from_fd(int fd, const std::string &label);
	int fd() const { return fd_.get(); }
	const std::string &path() const { return path_; }

private:
	Fd fd_;
	std::string path_;
};

class ImageWriter
{
public:
	static Result<ImageWriter> create(const ImageDir &dir, const std::string &name, uint32_t magic);
	// Raw files (pages-*.img) have no magic.
	static Result<ImageWriter> create_raw(const ImageDir &dir, const std::string &name);
	Status write(const ProtobufCMessage *msg);
	Status write_raw(const void *buf, size_t len);
	Status close();
	int fd() const { return fd_.get(); }
	const std::string &name() const { return name_; }

private:
	Fd fd_;
	std::string name_;
	std::string buf_;
};

class ImageReader
{
public:
	// A missing optional image reads as empty.
	static Result<ImageReader> open(const ImageDir &dir, const std::string &name, uint32_t magic,
					bool optional = false);
	// The next entry, or nullptr at the end of the image.
	template <class T> Result<PbPtr<T>> next(const ProtobufCMessageDescriptor &d)
	{
		auto r = next_raw(d);
		if (!r)
			return r.error();
		return PbPtr<T>(reinterpret_cast<T *>(r->release()));
	}
	// Raw bytes following an entry (pipe data and the like).
	Result<std::string_view> take_raw(size_t len);
	const std::string &name() const { return name_; }
	bool at_end() const { return pos_ >= data_.size(); }

private:
	Result<PbPtr<ProtobufCMessage>> next_raw(const ProtobufCMessageDescriptor &d);
	std::string name_;
	std::string data_;
	size_t pos_ = 0;
	int entry_ = 0;
};

// Reads exactly one entry of an image that must hold one.
template <class T>
Result<PbPtr<T>> read_one(const ImageDir &dir, const std::string &name, uint32_t magic,
			  const ProtobufCMessageDescriptor &d)
{
	auto r = ImageReader::open(dir, name, magic);
	if (!r)
		return r.error();
	auto e = r->template next<T>(d);
	if (!e)
		return e.error();
	if (!*e)
		return Error{"image " + name + " has no entry"};
	return std::move(*e);
}

Status write_one(const ImageDir &dir, const std::string &name, uint32_t magic, const ProtobufCMessage *m);

}  // namespace criu
