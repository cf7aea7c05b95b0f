// Namespaces of a process tree.
//
// A tree may live in pid, uts, ipc, net and mount namespaces of its own, as
// a container's does (a net namespace with lo and veth ends, see net.h;
// mounts as mount.h says). Dump: the root must then be the init of its pid
// namespace (PID 1 there), every task must share the root's namespaces, and
// the kinds not supported yet (user, cgroup, time) must be criu's own, else
// the dump is refused naming the PID and the kind. Images hold PIDs as the
// tree sees them. Restore: the root is created in new namespaces of the same
// kinds (a root with PID 1 means a new pid namespace, utsns-ID.img a new uts
// namespace, ipcns-var-ID.img a new ipc namespace, netdev-ID.img a new net
// namespace with its devices, addresses and routes, mountpoints-ID.img a new
// mount namespace with its mounts), the hostname, domain name and IPC
// objects (ipc.h) come back, and every other task is created inside them
// with its PID.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "image.h"
#include "util.h"

struct TaskKobjIdsEntry;

namespace criu
{

struct NsSet {
	bool pid = false, uts = false, ipc = false, net = false, mnt = false;
	std::string ext_net, ext_mnt;  // keys of external namespaces (see sandbox.h)
	unsigned long clone_flags() const;
	std::string str() const;
};

// Dump: which namespaces of pid (the root) differ from criu's; refuses the
// unsupported ones, unless externals (--external) name them.
Result<NsSet> root_namespaces(pid_t pid, const std::vector<std::string> &externals);
// Dump: task must be in the very namespaces of root.
Status check_same_namespaces(pid_t task, pid_t root);
// The PID of tid in its own pid namespace (the last NSpid entry).
Result<pid_t> ns_pid(pid_t tid);
Status write_uts(const ImageDir &dir, uint32_t id, const std::string &nodename, const std::string &domainname);

// Restore: what the images ask for. root_vpid is the root's PID in pstree.img.
Result<NsSet> read_namespaces(const ImageDir &dir, pid_t root_vpid, const TaskKobjIdsEntry &ids);

// In the root task, right after it was created in its new namespaces.
Status restore_uts(const ImageDir &dir, uint32_t uts_id);

}  // namespace criu
