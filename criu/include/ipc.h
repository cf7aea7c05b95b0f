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

#include "image.h"
#include "util.h"

namespace criu
{

Status dump_ipc_ns(const ImageDir &dir, pid_t pid, uint32_t id);
Status restore_ipc_ns(const ImageDir &dir, uint32_t id);

}  // namespace criu
