#include "namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "magic.h"
#include "core.pb-c.h"
#include "net.h"
#include "proc.h"
#include "sandbox.h"
#include "utsns.pb-c.h"

namespace criu
{

namespace
{

const char *const kKinds[] = {"mnt", "pid", "net", "ipc", "uts", "user", "cgroup", "time"};

Result<ino_t> ns_ino(const std::string &proc, const char *kind)
{
	struct stat st;
	if (stat(strfmt("/proc/%s/ns/%s", proc.c_str(), kind).c_str(), &st) < 0)
		return sys_error("can't read the %s namespace of %s", kind, proc.c_str());
	return st.st_ino;
}

bool kernel_has(const char *kind)
{
	struct stat st;
	return stat(strfmt("/proc/self/ns/%s", kind).c_str(), &st) == 0;
}

}  // namespace

unsigned long NsSet::clone_flags() const
{
	return (pid ? CLONE_NEWPID : 0) | (uts ? CLONE_NEWUTS : 0) | (ipc ? CLONE_NEWIPC : 0);
}

std::string NsSet::str() const
{
	std::string s = std::string(pid ? "pid " : "") + (uts ? "uts " : "") + (ipc ? "ipc " : "") +
			(net ? "net " : "") + (mnt ? "mnt " : "");
	return s.empty() ? "none" : s.substr(0, s.size() - 1);
}

Result<pid_t> ns_pid(pid_t tid)
{
	auto st = parse_status(tid, 0);
	if (!st)
		return st.error();
	auto f = split((*st)["NSpid"], '\t');
	if (f.empty())
		return Error{strfmt("/proc/%d/status has no NSpid", tid)};
	auto v = parse_u64(f.back());
	if (!v)
		return Error{strfmt("/proc/%d/status: bad NSpid", tid)};
	return (pid_t)*v;
}

Result<NsSet> root_namespaces(pid_t pid, const std::vector<std::string> &externals)
{
	NsSet ns;
	auto me = std::string("self"), it = std::to_string(pid);
	for (const char *kind : kKinds) {
		if (!kernel_has(kind))
			continue;
		auto mine = ns_ino(me, kind), its = ns_ino(it, kind);
		if (!mine)
			return mine.error();
		if (!its)
			return its.error();
		if (*mine == *its)
			continue;
		std::string k = kind;
		if (k == "uts") {
			ns.uts = true;
		} else if (k == "ipc") {
			ns.ipc = true;
		} else if (k == "pid") {
			auto v = ns_pid(pid);
			if (!v)
				return v.error();
			if (*v != 1)
				return Error{strfmt(
				    "PID %d is PID %d of its pid namespace, not its init: dump the init", pid, *v)};
			ns.pid = true;
		} else if (k == "net" || k == "mnt") {
			std::string *key = k == "net" ? &ns.ext_net : &ns.ext_mnt;
			for (auto &x : externals)
				if (auto e = parse_external(x); e && e->kind == k && e->inode == *its)
					*key = e->key;
			if (key->empty() && k == "net") {
				TRY(check_net_devices(pid));
				ns.net = true;
			} else if (key->empty()) {
				ns.mnt = true;	// its mounts are checked as they are saved (mount.h)
			}
		} else {
			return Error{strfmt("PID %d lives in its own %s namespace; dumping that kind of namespace "
					    "is not supported yet",
					    pid, kind)};
		}
	}
	return ns;
}

Status check_same_namespaces(pid_t task, pid_t root)
{
	auto t = std::to_string(task), r = std::to_string(root);
	for (const char *kind : kKinds) {
		if (!kernel_has(kind))
			continue;
		auto a = ns_ino(t, kind), b = ns_ino(r, kind);
		if (!a)
			return a.error();
		if (!b)
			return b.error();
		if (*a != *b)
			return Error{strfmt("PID %d is in another %s namespace than the root %d; nested namespaces "
					    "are not supported",
					    task, kind, root)};
	}
	return {};
}

Status write_uts(const ImageDir &dir, uint32_t id, const std::string &nodename, const std::string &domainname)
{
	UtsnsEntry e = UTSNS_ENTRY__INIT;
	std::string n = nodename, d = domainname;
	e.nodename = n.data();
	e.domainname = d.data();
	return write_one(dir, strfmt("utsns-%u.img", id), UTSNS_MAGIC, &e.base);
}

Result<NsSet> read_namespaces(const ImageDir &dir, pid_t root_vpid, const TaskKobjIdsEntry &ids)
{
	uint32_t uts_id = ids.uts_ns_id, ipc_id = ids.ipc_ns_id, net_id = ids.net_ns_id, mnt_id = ids.mnt_ns_id;
	NsSet ns;
	ns.pid = root_vpid == 1;
	struct stat st;
	ns.uts = uts_id && fstatat(dir.fd(), strfmt("utsns-%u.img", uts_id).c_str(), &st, 0) == 0;
	ns.ipc = ipc_id && fstatat(dir.fd(), strfmt("ipcns-var-%u.img", ipc_id).c_str(), &st, 0) == 0;
	ns.net = net_id && fstatat(dir.fd(), strfmt("netdev-%u.img", net_id).c_str(), &st, 0) == 0;
	ns.mnt = mnt_id && fstatat(dir.fd(), strfmt("mountpoints-%u.img", mnt_id).c_str(), &st, 0) == 0;
	return ns;
}

Status restore_uts(const ImageDir &dir, uint32_t uts_id)
{
	auto e = read_one<UtsnsEntry>(dir, strfmt("utsns-%u.img", uts_id), UTSNS_MAGIC, utsns_entry__descriptor);
	if (!e)
		return e.error();
	if (sethostname((*e)->nodename, strlen((*e)->nodename)) < 0)
		return sys_error("can't set the hostname %s", (*e)->nodename);
	if (setdomainname((*e)->domainname, strlen((*e)->domainname)) < 0)
		return sys_error("can't set the domain name %s", (*e)->domainname);
	return {};
}

}  // namespace criu
