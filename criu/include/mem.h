// The address space: VMAs (mm-PID.img) and page contents (pagemap-PID.img,
// pages-N.img).
//
// Dump writes only pages that exist: present or swapped anonymous pages,
// copy-on-write copies inside private file mappings, and pages of shared
// anonymous memory; clean file pages come back from the file itself.
// Restore turns the images into a plan for the restorer blob: the VMAs to
// map, the runs of pages to read from the pages image, and where the
// kernel's [vdso]/[vvar] must go.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "files.h"
#include "image.h"
#include "options.h"
#include "restorer-args.h"
#include "util.h"

struct MmEntry;

namespace criu
{

class Seized;

// Values the dump gets by running syscalls inside the task.
struct MmExtras {
	uint64_t brk = 0;
	int dumpable = 1;
	bool thp_disabled = false;
	bool sysv_ok = false;  // SysV segments are saved with the tree's ipc namespace
};

struct MemStats {
	uint64_t vmas = 0, pages_scanned = 0, pages_written = 0;
};

// The images are named after vpid (the PID as the tree sees it); pages_id
// names the task's pages-N.img (unique in the images directory).
Result<MemStats> dump_memory(Seized &s, const ImageDir &dir, FileTable &files, const MmExtras &x, pid_t vpid,
			     uint32_t pages_id);

// Restore plan of one task.
struct MemPlan {
	PbPtr<MmEntry> mm;
	std::vector<rst_vma> vmas;	   // fd holds the file id until fds are opened
	std::vector<uint32_t> vma_file;	   // file id per vma, 0 for anonymous
	std::vector<uint32_t> vma_fflags;  // open flags per file vma
	std::vector<uint64_t> vma_shmid;   // shared anonymous memory object, 0 if none
	std::vector<rst_pagerun> runs;
	std::vector<rst_pagerun> held_runs;  // of held VMAs, in case one is unheld
	std::vector<HeldRange> held;	     // as marked
	std::vector<rst_special> specials;   // target_start and len; cur_* filled later
	std::string pages_image;
	uint64_t pages_bytes = 0;
};

// pages_dir holds the pages images (the images directory, or a template).
Result<MemPlan> plan_memory(const ImageDir &dir, const ImageDir &pages_dir, pid_t pid);

// Marks the VMAs the restoring process already has in place (each held
// range must be exactly one private VMA of the plan) and drops their page
// runs: the blob keeps them instead of mapping and filling them.
Status mark_held(MemPlan &p, const std::vector<HeldRange> &held);

// Gives held VMA i back to the restore, to be mapped and filled as if it
// were not held (the restoring process sees another file than its holder).
void unhold(MemPlan &p, size_t i);

// One shmem object per shared anonymous segment of the tree (as
// mmap(MAP_SHARED|MAP_ANONYMOUS) makes it), sized for every task's windows
// into it, at fds >= min_fd: out maps shmid -> fd. Inherited by the tasks,
// so that what they shared stays shared.
Status create_shmem_objects(const std::vector<const MemPlan *> &plans, int min_fd, std::map<uint64_t, int> &out);

// A pagemap image: which pages-N.img holds the data, and its runs in order
// (vaddr, bytes). For a process these are addresses; for shmem and memfd
// contents (pagemap-shmem-ID.img), offsets. Incremental entries are refused.
struct Pagemap {
	uint32_t pages_id = 0;
	std::vector<std::pair<uint64_t, uint64_t>> runs;
};
Result<Pagemap> read_pagemap(const ImageDir &dir, const std::string &name);

}  // namespace criu
