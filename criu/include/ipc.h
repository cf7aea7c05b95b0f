// The SysV IPC namespace of a process tree (ipcns-*-ID.img).
//
// Dump enters the tree's ipc namespace (criu's own thread, and back) and
// saves its sysctls, every shared memory segment with its contents, every
// semaphore set with its values and every message queue with its messages
// (read with MSG_COPY: the queue is left as it was). Restore runs in the
// root task right after it was created in a new ipc namespace, before its
// children: each object comes back with its id (through the *_next_id
// sysctls), key, owner, mode and contents. The creator ids (cuid/cgid) are
// root's: the kernel lets nobody set them. Segments attached to a task's
// memory are refused at dump (see mem.h), POSIX message queues are not
// saved.
#pragma once

#include <sys/types.h>

#include <optional>
#include <vector>

#include "image.h"
#include "ipc-var.pb-c.h"
#include "util.h"

namespace criu
{

// The ipc sysctls of the caller's ipc namespace, as the dump saves them.
class IpcVars
{
public:
	static Result<IpcVars> read();
	const IpcVarEntry &entry() const;

private:
	mutable IpcVarEntry e_ = IPC_VAR_ENTRY__INIT;  // its sem_ctls point into sems_
	std::vector<uint32_t> sems_;
};

Status dump_ipc_ns(const ImageDir &dir, pid_t pid, uint32_t id);

// The images of ipc namespace id, read (a root made ahead reads them
// before its request comes) and then restored once, into the caller's ipc
// namespace.
class IpcImages
{
public:
	static Result<IpcImages> read(const ImageDir &dir, uint32_t id);
	// fresh: the sysctls of a new ipc namespace, when the tree's namespace
	// is known to be new (a released sandbox's, see sandbox.h): those the
	// images hold the same are not written (each write costs 10-15 us).
	Status restore(const IpcVars *fresh = nullptr);
	// Any object to create (before restore())?
	bool objects() const;

private:
	PbPtr<IpcVarEntry> vars_;
	std::optional<ImageReader> shm_, sem_, msg_;
};

}  // namespace criu
