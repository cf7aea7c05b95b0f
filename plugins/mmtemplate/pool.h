// Memory pools and the templates in them.
//
// A pool is a directory: /dev/shm/criu-mm-pool for "dram" (tmpfs is DRAM
// of this node; $CRIU_MM_POOL overrides the path), or a directory on a file
// system mounted with -o dax for "dax" (CXL memory or PMem; several nodes
// can share it). A template NAME is
//   NAME.tmpl      its index: generation, the dump's fingerprint, every
//                  file with its size and checksum (replaced by rename(2),
//                  so a convert switches atomically);
//   NAME.GEN/      a copy of the dump (the page images and the small images
//                  that describe them), one directory per generation; a
//                  holder keeps a shared flock on NAME.GEN/.lock while it
//                  uses one, and old generations are removed once no holder
//                  does.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common.h"

namespace mmt
{

struct Pool {
	std::string kind;  // "dram" or "dax"
	std::string dir;
	// From --mem-pool/--dax-device (criu_get_option); checks a dax pool's mount.
	static Result<Pool> from_options();
	std::string index_path(const std::string &name) const { return dir + "/" + name + ".tmpl"; }
	std::string gen_dir(const std::string &name, uint64_t gen) const
	{
		return dir + "/" + name + "." + std::to_string(gen);
	}
	// Where this node's holder of NAME listens: node-local (/run), named
	// after the pool's identity so that pools don't clash.
	Result<std::string> socket_path(const std::string &name) const;
};

struct FileSum {
	std::string name;
	uint64_t size = 0, sum = 0;
};

struct Index {
	std::string name;
	uint64_t generation = 0;
	std::string kind;
	uint64_t fingerprint = 0;  // of the dump's images but the pages
	uint64_t stamp = 0;	   // dir_stamp() of the dump converted (0: none)
	std::vector<FileSum> files;
	uint64_t bytes() const;
};

Status check_name(const std::string &name);
Result<Index> read_index(const Pool &p, const std::string &name);
// The fingerprint of a dump's images, all but the pages: a restore from
// the template then reads the template's copy of them (see
// criu_template_prepare).
Result<uint64_t> fingerprint(int dir_fd);
// The same images' identity as the file system gives it: device, inode,
// size, mtime and ctime of each. A restore from the very files a template
// was made from (the same stamp) skips reading them for the fingerprint;
// a file rewritten since, or a copy of the dump, has another stamp (ctime
// can't be set back) and gets the full check.
Result<uint64_t> dir_stamp(int dir_fd);
Result<uint64_t> checksum_file(int fd, uint64_t *size);
// Are the images in dir those template ix was made from? By their stamp,
// else by their fingerprint (a copy of the dump).
Status check_images(const Index &ix, const std::string &dir);

// criu convert / mm-template list / mm-template delete
Status convert(const Pool &p, const std::string &name, const std::string &images_dir);
Status list(const Pool &p);
Status remove_template(const Pool &p, const std::string &name);
// Removes the generations of name that no holder uses and that are not
// the current one.
void collect_garbage(const Pool &p, const std::string &name);

}  // namespace mmt
