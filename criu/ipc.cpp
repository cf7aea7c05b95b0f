#include "ipc.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <vector>

#include "ipc-msg.pb-c.h"
#include "ipc-sem.pb-c.h"
#include "ipc-shm.pb-c.h"
#include "ipc-var.pb-c.h"
#include "log.h"
#include "magic.h"
#include "sysctl.h"

namespace criu
{

namespace
{

union semun {
	int val;
	semid_ds *buf;
	unsigned short *array;
};

Status pad(ImageWriter &w, size_t len, size_t to)
{
	static const char zero[8] = {};
	size_t n = (to - len % to) % to;
	return n ? w.write_raw(zero, n) : Status();
}

size_t round_up(size_t len, size_t to)
{
	return (len + to - 1) / to * to;
}

// /proc/sysvipc/KIND of the current ipc namespace: one map per object,
// keyed by the header's column names.
Result<std::vector<std::map<std::string, uint64_t>>> list_objects(const char *kind)
{
	auto text = read_file(strfmt("/proc/sysvipc/%s", kind));
	if (!text)
		return text.error();
	std::vector<std::map<std::string, uint64_t>> out;
	std::vector<std::string> cols;
	for (auto line : split(*text, '\n')) {
		std::vector<std::string> f;
		for (auto w : split(line, ' '))
			if (!w.empty())
				f.emplace_back(w);
		if (f.empty())
			continue;
		if (cols.empty()) {
			cols = f;
			continue;
		}
		std::map<std::string, uint64_t> m;
		for (size_t i = 0; i < f.size() && i < cols.size(); i++)
			m[cols[i]] = parse_u64(f[i], cols[i] == "perms" ? 8 : 10).value_or(0);
		out.push_back(std::move(m));
	}
	return out;
}

IpcDescEntry desc_of(std::map<std::string, uint64_t> &m, const char *id_col)
{
	IpcDescEntry d = IPC_DESC_ENTRY__INIT;
	d.key = (uint32_t)m["key"];
	d.id = (uint32_t)m[id_col];
	d.mode = (uint32_t)m["perms"];
	d.uid = (uint32_t)m["uid"], d.gid = (uint32_t)m["gid"];
	d.cuid = (uint32_t)m["cuid"], d.cgid = (uint32_t)m["cgid"];
	return d;
}

// The sysctls of IpcVarEntry but kernel/sem (an array of four), for dump
// and restore alike; `has` for the ones older kernels lack.
struct VarField {
	const char *name;
	uint32_t IpcVarEntry::*u32;
	uint64_t IpcVarEntry::*u64;
	protobuf_c_boolean IpcVarEntry::*has;
	uint64_t get(const IpcVarEntry &e) const { return u32 ? e.*u32 : e.*u64; }
	bool in(const IpcVarEntry &e) const { return !has || e.*has; }
};
const VarField kVars[] = {
    {"kernel/msgmax", &IpcVarEntry::msg_ctlmax, nullptr, nullptr},
    {"kernel/msgmnb", &IpcVarEntry::msg_ctlmnb, nullptr, nullptr},
    {"kernel/msgmni", &IpcVarEntry::msg_ctlmni, nullptr, nullptr},
    {"kernel/shmmax", nullptr, &IpcVarEntry::shm_ctlmax, nullptr},
    {"kernel/shmall", nullptr, &IpcVarEntry::shm_ctlall, nullptr},
    {"kernel/shmmni", &IpcVarEntry::shm_ctlmni, nullptr, nullptr},
    {"kernel/shm_rmid_forced", &IpcVarEntry::shm_rmid_forced, nullptr, nullptr},
    {"fs/mqueue/queues_max", &IpcVarEntry::mq_queues_max, nullptr, nullptr},
    {"fs/mqueue/msg_max", &IpcVarEntry::mq_msg_max, nullptr, nullptr},
    {"fs/mqueue/msgsize_max", &IpcVarEntry::mq_msgsize_max, nullptr, nullptr},
    {"fs/mqueue/msg_default", &IpcVarEntry::mq_msg_default, nullptr, &IpcVarEntry::has_mq_msg_default},
    {"fs/mqueue/msgsize_default", &IpcVarEntry::mq_msgsize_default, nullptr, &IpcVarEntry::has_mq_msgsize_default},
};

Status dump_vars(const ImageDir &dir, uint32_t id)
{
	auto v = IpcVars::read();
	if (!v)
		return v.error();
	return write_one(dir, strfmt("ipcns-var-%u.img", id), IPC_VAR_MAGIC, &v->entry().base);
}

Status dump_shm(const ImageDir &dir, uint32_t id)
{
	auto objs = list_objects("shm");
	if (!objs)
		return objs.error();
	auto w = ImageWriter::create(dir, strfmt("ipcns-shm-%u.img", id), IPCNS_SHM_MAGIC);
	if (!w)
		return w.error();
	for (auto &m : *objs) {
		IpcShmEntry e = IPC_SHM_ENTRY__INIT;
		IpcDescEntry d = desc_of(m, "shmid");
		e.desc = &d;
		e.size = m["size"];
		void *a = shmat((int)d.id, nullptr, SHM_RDONLY);
		if (a == (void *)-1)
			return sys_error("can't attach SysV shm %u", d.id);
		TRY(w->write(&e.base));
		Status st = w->write_raw(a, e.size);
		shmdt(a);
		TRY(st);
		TRY(pad(*w, e.size, 4));
	}
	return w->close();
}

Status dump_sem(const ImageDir &dir, uint32_t id)
{
	auto objs = list_objects("sem");
	if (!objs)
		return objs.error();
	auto w = ImageWriter::create(dir, strfmt("ipcns-sem-%u.img", id), IPCNS_SEM_MAGIC);
	if (!w)
		return w.error();
	for (auto &m : *objs) {
		IpcSemEntry e = IPC_SEM_ENTRY__INIT;
		IpcDescEntry d = desc_of(m, "semid");
		e.desc = &d;
		e.nsems = (uint32_t)m["nsems"];
		std::vector<unsigned short> vals(e.nsems);
		semun arg;
		arg.array = vals.data();
		if (semctl((int)d.id, 0, GETALL, arg) < 0)
			return sys_error("can't read semaphore set %u", d.id);
		TRY(w->write(&e.base));
		TRY(w->write_raw(vals.data(), vals.size() * 2));
		TRY(pad(*w, vals.size() * 2, 8));
	}
	return w->close();
}

Status dump_msg(const ImageDir &dir, uint32_t id)
{
	auto objs = list_objects("msg");
	if (!objs)
		return objs.error();
	auto w = ImageWriter::create(dir, strfmt("ipcns-msg-%u.img", id), IPCNS_MSG_MAGIC);
	if (!w)
		return w.error();
	std::vector<char> buf;	// grown to the largest queue's msg_qbytes, which bounds its messages
	for (auto &m : *objs) {
		IpcMsgEntry e = IPC_MSG_ENTRY__INIT;
		IpcDescEntry d = desc_of(m, "msqid");
		e.desc = &d;
		msqid_ds ds{};
		if (msgctl((int)d.id, IPC_STAT, &ds) < 0)
			return sys_error("can't stat message queue %u", d.id);
		e.qbytes = ds.msg_qbytes;
		e.qnum = ds.msg_qnum;
		TRY(w->write(&e.base));
		if (e.qnum && buf.size() < sizeof(long) + ds.msg_qbytes)
			buf.resize(sizeof(long) + ds.msg_qbytes);
		for (uint32_t i = 0; i < e.qnum; i++) {
			// no MSG_NOERROR: a message cut short would be saved as if whole
			ssize_t n = msgrcv((int)d.id, buf.data(), buf.size() - sizeof(long), i, MSG_COPY | IPC_NOWAIT);
			if (n < 0)
				return sys_error("can't copy message %u of queue %u", i, d.id);
			IpcMsg msg = IPC_MSG__INIT;
			memcpy(&msg.mtype, buf.data(), sizeof(long));
			msg.msize = (uint32_t)n;
			TRY(w->write(&msg.base));
			TRY(w->write_raw(buf.data() + sizeof(long), n));
			TRY(pad(*w, n, 8));
		}
	}
	return w->close();
}

// The next object of kind gets id (the *_next_id sysctls are one-shot).
Status set_next_id(const char *kind, uint32_t id)
{
	return write_sysctl(strfmt("kernel/%s_next_id", kind).c_str(), std::to_string(id));
}

Status check_id(const char *what, int got, uint32_t want)
{
	if (got < 0)
		return sys_error("can't create SysV %s %u", what, want);
	if ((uint32_t)got != want)
		return Error{strfmt("SysV %s got id %d, not %u", what, got, want)};
	return {};
}

Status restore_vars(const IpcVarEntry &v, const IpcVars *fresh)
{
	const IpcVarEntry *f = fresh ? &fresh->entry() : nullptr;
	size_t same = 0;
	if (f && v.n_sem_ctls == f->n_sem_ctls && std::equal(v.sem_ctls, v.sem_ctls + v.n_sem_ctls, f->sem_ctls))
		same++;
	else if (v.n_sem_ctls == 4)
		TRY(write_sysctl("kernel/sem",
				 strfmt("%u %u %u %u", v.sem_ctls[0], v.sem_ctls[1], v.sem_ctls[2], v.sem_ctls[3])));
	for (auto &var : kVars) {
		if (!var.in(v))
			continue;
		if (f && var.in(*f) && var.get(*f) == var.get(v))
			same++;
		else
			TRY(write_sysctl(var.name, std::to_string(var.get(v))));
	}
	if (f)
		pr_debug("ipc sysctls: %zu as in a new ipc namespace, not written\n", same);
	return {};
}

// The owner and mode an object had (its creator, cuid/cgid, is ours).
void set_owner(ipc_perm &p, const IpcDescEntry &d)
{
	p.uid = d.uid;
	p.gid = d.gid;
	p.mode = d.mode & 0777;
}

Status restore_shm(ImageReader &r)
{
	for (;;) {
		auto e = r.next<IpcShmEntry>(ipc_shm_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		const IpcShmEntry &s = **e;
		if (s.in_pagemaps)
			return Error{strfmt("SysV shm %u: contents in pagemaps are not supported", s.desc->id)};
		auto data = r.take_raw(round_up(s.size, 4));
		if (!data)
			return data.error();
		TRY(set_next_id("shm", s.desc->id));
		int shmid = shmget((key_t)s.desc->key, s.size, IPC_CREAT | IPC_EXCL | (s.desc->mode & 0777));
		TRY(check_id("shm", shmid, s.desc->id));
		void *a = shmat(shmid, nullptr, 0);
		if (a == (void *)-1)
			return sys_error("can't attach SysV shm %d", shmid);
		memcpy(a, data->data(), s.size);
		shmdt(a);
		shmid_ds ds{};
		set_owner(ds.shm_perm, *s.desc);
		if (shmctl(shmid, IPC_SET, &ds) < 0)
			return sys_error("can't set the owner of SysV shm %d", shmid);
	}
	return {};
}

Status restore_sem(ImageReader &r)
{
	for (;;) {
		auto e = r.next<IpcSemEntry>(ipc_sem_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		const IpcSemEntry &s = **e;
		if (s.nsems > 65536)
			return Error{strfmt("semaphore set %u: %u semaphores is malformed", s.desc->id, s.nsems)};
		auto data = r.take_raw(round_up(size_t(s.nsems) * 2, 8));
		if (!data)
			return data.error();
		TRY(set_next_id("sem", s.desc->id));
		int semid = semget((key_t)s.desc->key, (int)s.nsems, IPC_CREAT | IPC_EXCL | (s.desc->mode & 0777));
		TRY(check_id("semaphore set", semid, s.desc->id));
		std::vector<unsigned short> vals(s.nsems);
		memcpy(vals.data(), data->data(), size_t(s.nsems) * 2);
		semun arg;
		arg.array = vals.data();
		if (semctl(semid, 0, SETALL, arg) < 0)
			return sys_error("can't set the values of semaphore set %d", semid);
		semid_ds ds{};
		set_owner(ds.sem_perm, *s.desc);
		arg.buf = &ds;
		if (semctl(semid, 0, IPC_SET, arg) < 0)
			return sys_error("can't set the owner of semaphore set %d", semid);
	}
	return {};
}

// One queue and its messages, its owner last.
Status restore_queue(ImageReader &r, const IpcMsgEntry &q, std::vector<char> &buf)
{
	TRY(set_next_id("msg", q.desc->id));
	int msqid = msgget((key_t)q.desc->key, IPC_CREAT | IPC_EXCL | (q.desc->mode & 0777));
	TRY(check_id("message queue", msqid, q.desc->id));
	msqid_ds ds{};
	if (msgctl(msqid, IPC_STAT, &ds) < 0)
		return sys_error("can't stat message queue %d", msqid);
	if (ds.msg_qbytes != q.qbytes)
		return Error{strfmt("message queue %u holds %lu bytes, not %u", q.desc->id,
				    (unsigned long)ds.msg_qbytes, q.qbytes)};
	for (uint32_t i = 0; i < q.qnum; i++) {
		auto m = r.next<IpcMsg>(ipc_msg__descriptor);
		if (!m)
			return m.error();
		if (!*m || (*m)->msize > q.qbytes)
			return Error{
			    strfmt("message queue %u: message %u is missing or bigger than the queue", q.desc->id, i)};
		auto data = r.take_raw(round_up((*m)->msize, 8));
		if (!data)
			return data.error();
		long type = (long)(*m)->mtype;
		if (buf.size() < sizeof(long) + (*m)->msize)
			buf.resize(sizeof(long) + (*m)->msize);
		memcpy(buf.data(), &type, sizeof(long));
		memcpy(buf.data() + sizeof(long), data->data(), (*m)->msize);
		if (msgsnd(msqid, buf.data(), (*m)->msize, IPC_NOWAIT) < 0)
			return sys_error("can't queue message %u of queue %d", i, msqid);
	}
	set_owner(ds.msg_perm, *q.desc);
	if (msgctl(msqid, IPC_SET, &ds) < 0)
		return sys_error("can't set the owner of message queue %d", msqid);
	return {};
}

// A new queue's size is kernel.msgmnb, and IPC_SET past msgmnb needs
// CAP_SYS_RESOURCE, which root in a container often lacks: msgmnb is made
// each queue's size while the queue is made, filled and given its owner,
// then set back to the namespace's own value (restored by restore_vars).
Status restore_msg(ImageReader &r)
{
	// (read at the first queue: most namespaces have none)
	std::optional<uint64_t> mnb;
	// grown to the largest message: most namespaces have no queue, and a
	// buffer of the largest possible one would cost its page faults
	std::vector<char> buf;
	for (;;) {
		auto e = r.next<IpcMsgEntry>(ipc_msg_entry__descriptor);
		if (!e)
			return e.error();
		if (!*e)
			break;
		const IpcMsgEntry &q = **e;
		if (!mnb) {
			auto m = read_sysctl("kernel/msgmnb");
			if (!m)
				return m.error();
			mnb = *m;
		}
		bool resize = q.qbytes != *mnb;
		if (resize)
			TRY(write_sysctl("kernel/msgmnb", std::to_string(q.qbytes)));
		auto st = restore_queue(r, q, buf);
		if (resize) {
			auto back = write_sysctl("kernel/msgmnb", std::to_string(*mnb));
			if (st && !back)
				st = back;
		}
		TRY(st);
	}
	return {};
}

}  // namespace

Status dump_ipc_ns(const ImageDir &dir, pid_t pid, uint32_t id)
{
	Fd mine(::open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC));
	Fd its(::open(strfmt("/proc/%d/ns/ipc", pid).c_str(), O_RDONLY | O_CLOEXEC));
	if (!mine.valid() || !its.valid())
		return sys_error("can't open the ipc namespaces of criu and PID %d", pid);
	if (setns(its.get(), CLONE_NEWIPC) < 0)
		return sys_error("can't enter the ipc namespace of PID %d", pid);
	Status st = dump_vars(dir, id);
	if (st)
		st = dump_shm(dir, id);
	if (st)
		st = dump_sem(dir, id);
	if (st)
		st = dump_msg(dir, id);
	if (setns(mine.get(), CLONE_NEWIPC) < 0)
		return sys_error("can't return to criu's ipc namespace");
	if (!st)
		return Error{strfmt("ipc namespace of PID %d: %s", pid, st.error().msg.c_str())};
	return {};
}

Result<IpcVars> IpcVars::read()
{
	IpcVars v;
	auto sem = read_file("/proc/sys/kernel/sem");
	if (!sem)
		return sem.error();
	for (auto w : split(*sem, '\t'))
		if (auto n = parse_u64(std::string(split(w, '\n')[0])))
			v.sems_.push_back(*n);
	for (auto &var : kVars) {
		auto val = read_sysctl(var.name);
		if (!val) {
			if (var.has)
				continue;
			return val.error();
		}
		if (var.u32)
			v.e_.*var.u32 = (uint32_t)*val;
		else
			v.e_.*var.u64 = *val;
		if (var.has)
			v.e_.*var.has = true;
	}
	return v;
}

const IpcVarEntry &IpcVars::entry() const
{
	e_.n_sem_ctls = sems_.size();
	e_.sem_ctls = const_cast<uint32_t *>(sems_.data());  // (protobuf-c's field type; read only)
	return e_;
}

Result<IpcImages> IpcImages::read(const ImageDir &dir, uint32_t id)
{
	IpcImages i;
	auto v = read_one<IpcVarEntry>(dir, strfmt("ipcns-var-%u.img", id), IPC_VAR_MAGIC, ipc_var_entry__descriptor);
	if (!v)
		return v.error();
	i.vars_ = std::move(*v);
	std::pair<std::optional<ImageReader> *, std::pair<const char *, uint32_t>> objects[] = {
	    {&i.shm_, {"shm", IPCNS_SHM_MAGIC}},
	    {&i.sem_, {"sem", IPCNS_SEM_MAGIC}},
	    {&i.msg_, {"msg", IPCNS_MSG_MAGIC}}};
	for (auto &[to, what] : objects) {
		auto r = ImageReader::open(dir, strfmt("ipcns-%s-%u.img", what.first, id), what.second, true);
		if (!r)
			return r.error();
		to->emplace(std::move(*r));
	}
	return i;
}

bool IpcImages::objects() const
{
	return !shm_->at_end() || !sem_->at_end() || !msg_->at_end();
}

Status IpcImages::restore(const IpcVars *fresh)
{
	TRY(restore_vars(*vars_, fresh));
	TRY(restore_shm(*shm_));
	TRY(restore_sem(*sem_));
	return restore_msg(*msg_);
}

}  // namespace criu
