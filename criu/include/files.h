// File descriptors and the files they refer to (files.img, fdinfo-N.img).
//
// Dump: every fd becomes an fdinfo entry pointing at a file entry; file
// entries are shared by id (files.img), as CRIU does. Supported: regular
// files and directories (also deleted ones, whose contents go to a ghost
// image), character devices, pipes and FIFOs with their buffered data,
// eventfd, and the terminal of a --shell-job. Anything else is refused with
// an error naming the PID and fd.
//
// Restore: criu opens every file of the tree before creating the first
// task (see FilePool); each task's restorer blob then moves its own to
// their fd numbers before the task's memory is mapped.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "image.h"
#include "restorer-args.h"
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
	// Once every task is dumped: each connected unix socket's peer must be
	// among the dumped ones, or the restore could not connect it.
	Status check_peers() const;
	Status write(const ImageDir &dir);

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
	friend struct Impl;
};

// Restore side: the files of the whole tree (files.img and the images that
// go with it), and each task's fd table (fdinfo-N.img).
struct RestoredFiles {
	std::vector<PbPtr<FileEntry>> files;
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
using FdTable = std::vector<PbPtr<FdinfoEntry>>;

// Memfd contents come from pages_dir (the images directory, or a template).
Result<RestoredFiles> read_files(const ImageDir &dir, const ImageDir &pages_dir);
Result<FdTable> read_fdinfo(const ImageDir &dir, uint32_t files_id, const RestoredFiles &rf);

// Every open file description of the tree, opened by criu before the first
// task exists and inherited by every task through fork: a pipe, socket or
// file offset that tasks shared is shared again.
struct FilePool {
	std::map<uint32_t, int> by_id;	// file id -> fd
	std::vector<int> fds;		// every fd of the pool, memfds included
	void close_all();
};

// Creates the memfds and opens every file the tables refer to, at fds >=
// min_fd. A file whose resource key ("pipe[INODE]" or its path, with or
// without the leading '/') is in inherited takes that fd instead
// (--inherit-fd).
Status open_file_pool(RestoredFiles &rf, const std::vector<const FdTable *> &tables, bool shell_job,
		      const std::map<std::string, int> &inherited, int min_fd, FilePool &pool);

// Opens a file entry for a mapping or exe_fd (in the restoring task; memfds
// come from the pool).
Result<int> open_file_entry(const RestoredFiles &rf, uint32_t id, int flags);

// In the restoring task: closes every fd below min_service_fd that is none
// of the task's (the blob places those: fd_ops()).
Status close_other_fds(const FdTable &fds, int min_service_fd);
// The restorer blob's system calls (restorer-args.h) that place the task's
// fds from the pool, then add the registrations of the epolls whose dump
// this task did (they name fds by number).
Result<std::vector<rst_op>> fd_ops(const RestoredFiles &rf, const FdTable &fds, const FilePool &pool,
				   const std::set<uint32_t> &epolls_owned);
// How many of them fd_ops() gives.
size_t fd_ops_room(const RestoredFiles &rf, const FdTable &fds, const std::set<uint32_t> &epolls_owned);

}  // namespace criu
