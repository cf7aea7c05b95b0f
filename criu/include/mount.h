// Mount namespaces of a process tree.
//
// Dump: when the tree's root lives in a mount namespace of its own, its
// mounts are saved (mountpoints-ID.img) as the root sees them, parents
// first. Each mount must be one of:
//  - the root mount: its files are the root filesystem given with --root at
//    restore (as CRIU's --root);
//  - a bind of a directory or file of a mount saved before it (the same
//    superblock);
//  - a filesystem criu makes anew: proc, sysfs, devpts, mqueue, overlay (its
//    lowerdir/upperdir/workdir must be paths the tree sees) and tmpfs, whose
//    own files go into tmpfs-dev-DEV.tar.gz.img (GNU tar, as CRIU's), read
//    through a detached copy of that mount alone: what other mounts hide is
//    saved, what they put over its files is not;
//  - an external mount (a directory or a file), named at dump with
//    --external mnt[MOUNTPOINT]:KEY and bound from the host with
//    --external mnt[KEY]:PATH at restore.
// Anything else (a disk, cgroupfs, devtmpfs, a bind from outside the tree's
// root) is refused naming the PID and the mountpoint. Peer groups and
// masters (shared and slave propagation) are saved as CRIU does
// (shared_id, master_id) and made again among the tree's mounts once they
// all exist, so that nothing propagates while the tree is built. A master
// outside the tree (the host's, as a runtime's rslave root or volume has)
// is kept for the mounts criu takes from the host (the root and external
// mounts) when they are no peers: each is a copy of the host's mount, taken
// before criu leaves the host's mount namespace, made a slave at once. Any
// other mount comes back without such a master, and so does a proc or
// mqueue made in the tree's namespaces.
//
// Restore: criu unshares a mount namespace, builds the tree in a staging
// directory and pivots into it, so that the files and sockets it opens for
// the tasks, and the tasks themselves, are inside. While it works its /proc
// is one of its own pid namespace; proc (and mqueue) mounts that belong to
// the tree's new pid (ipc) namespace are made by mount_late() once every
// task exists.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "image.h"
#include "options.h"
#include "util.h"

namespace criu
{

// Dump: the mounts of pid's mount namespace (id: its mnt_ns_id). Refuses
// what can't be recreated; externals are the --external options.
Status dump_mounts(const ImageDir &dir, uint32_t id, pid_t pid, const std::vector<std::string> &externals);

// Restore: criu in a new mount namespace holding the images' mount tree,
// with o.root as its root mount. Back in criu's own (and the staging
// directory removed) on leave() or when this goes out of scope.
class OwnMntns
{
public:
	OwnMntns() = default;
	OwnMntns(OwnMntns &&) = default;
	OwnMntns &operator=(OwnMntns &&) = default;
	~OwnMntns();
	// own_pid/own_ipc: whether the tree gets new pid/ipc namespaces (their
	// proc and mqueue mounts then wait for mount_late()).
	static Result<OwnMntns> enter(const ImageDir &dir, uint32_t id, const Options &o, bool own_pid, bool own_ipc);
	void leave();
	// After leave(), once the tree's root (root, as criu sees it) exists:
	// the mounts that need its namespaces.
	Status mount_late(pid_t root) const;

	// One mount to make, as the images describe it.
	struct Mount {
		uint32_t id = 0, dev = 0;
		uint32_t shared = 0, master = 0;  // the dump's peer group ids
		std::string mountpoint, root, fstype, source, options;
		unsigned long flags = 0, sb_flags = 0;
		bool external = false;
		std::string from;  // a bind's source: a path of the tree, or the host's
		bool late = false;
	};

private:
	Status load(const ImageDir &dir, uint32_t id, const Options &o);
	Status resolve(Mount &m, const std::string &key, const Options &o);
	Status make(const Mount &m, const std::string &prefix, int host_copy = -1) const;
	bool slave_of_host(const Mount &m) const;
	bool tree_group(uint32_t id) const;
	Status copy_host_mounts();
	Status build();
	Status propagate();
	Result<size_t> widest(uint32_t dev) const;
	Status make_late() const;
	std::vector<Mount> mounts_;
	std::vector<Fd> roots_;	    // of mounts_ once made (O_PATH at their roots)
	std::vector<Fd> host_;	    // copies of the host's mounts for slave_of_host() ones
	std::vector<size_t> late_;  // indexes into mounts_, in order
	bool temp_proc_ = false;    // criu's own proc on the tree's /proc meanwhile
	bool own_pid_ = false, own_ipc_ = false;
	Fd back_, cwd_, images_;
	std::string staging_;
};

}  // namespace criu
