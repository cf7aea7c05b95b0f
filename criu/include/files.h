// File descriptors and the files they refer to (files.img, fdinfo-N.img).
//
// Dump: every fd becomes an fdinfo entry pointing at a file entry; file
// entries are shared by id (files.img), as CRIU does. Supported: regular
// files and directories (also deleted ones, whose contents go to a ghost
// image), character devices, pipes and FIFOs with their buffered data,
// eventfd, and the terminal of a --shell-job. Anything else is refused with
// an error naming the PID and fd.
//
// Restore: files are opened by the restoring task itself and moved to their
// fd numbers before the address space is replaced.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "image.h"
#include "util.h"

struct FileEntry;
struct FdinfoEntry;
struct MemfdInodeEntry;

namespace criu
{

class Seized;

struct DumpOpts;

class FileTable
{
public:
	// Ghost files and memfd contents go into dir as they are met.
	explicit FileTable(const ImageDir &dir);
	~FileTable();
	// A regular file used by a mapping or as exe: returns its file id.
	Result<uint32_t> add_mapped(pid_t pid, const std::string &map_files_path, const std::string &path,
				    uint32_t flags);
	Status dump_fds(pid_t pid, const ImageDir &dir, uint32_t files_id, bool shell_job);
	Status write(const ImageDir &dir);

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
	friend struct Impl;
};

// Restore side.
struct RestoredFiles {
	std::vector<PbPtr<FileEntry>> files;
	std::vector<PbPtr<FdinfoEntry>> fds;
	std::map<uint32_t, std::string> pipe_data;  // pipe_id -> buffered bytes
	std::map<uint32_t, std::string> ghosts;	    // file id -> ghost path to recreate
	struct Memfd {
		PbPtr<MemfdInodeEntry> entry;
		std::vector<std::pair<uint64_t, std::string>> chunks;  // offset, bytes
	};
	std::map<uint32_t, Memfd> memfds;			 // inode id -> memfd
	std::map<uint32_t, int> memfd_fds;			 // inode id -> fd, set by create_memfds()
	std::map<uint32_t, std::vector<std::string>> sk_queues;	 // socket file id -> queued packets
	const FileEntry *find(uint32_t id) const;
};

// Creates every memfd with its contents and seals, at fds >= min_fd (added
// to created). Must run before restore_fds() and open_file_entry().
Status create_memfds(RestoredFiles &rf, int min_fd, std::vector<int> &created);

Result<RestoredFiles> read_files(const ImageDir &dir, uint32_t files_id);
// Opens a file entry for a mapping or exe_fd (in the restoring task).
Result<int> open_file_entry(const RestoredFiles &rf, uint32_t id, int flags);
// Opens every fd and places it at its number. A file whose resource key
// ("pipe[INODE]" or its path, with or without the leading '/') is in
// inherited takes that fd instead (--inherit-fd). Runs in the restored task
// before the memory switch.
Status restore_fds(const RestoredFiles &rf, bool shell_job, int min_service_fd,
		   const std::map<std::string, int> &inherited);

}  // namespace criu
