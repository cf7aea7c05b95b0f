// Switch restore: a tree restored into an existing sandbox (made by
// scripts/criu-sandbox) instead of new namespaces.
//
// Dump: a tree whose network or mount namespace is external
// (`--external net[INODE]:KEY`, `--external mnt[INODE]:KEY`, the second an
// addition of this project) is dumped without it; the keys go into
// external-ns. Restore: such images need somewhere to go:
// `--switch SANDBOX` (the tree joins the sandbox's net, mnt, uts and ipc
// namespaces, gets a new pid namespace, and goes into its cgroups with the
// dump's limits), or `--inherit-fd fd[N]:KEY` for each key (N being a
// namespace fd of the caller, as TrEnv's CRIU took them).
#pragma once

#include <string>
#include <vector>

#include <optional>

#include "cgroup.h"
#include "image.h"
#include "options.h"
#include "util.h"

namespace criu
{

// Keys of the external namespaces in the images ("" if none).
struct ExternalNs {
	std::string net, mnt;
	bool any() const { return !net.empty() || !mnt.empty(); }
};

// "KIND[INSIDE]:KEY". Dump: net[INODE]:KEY and mnt[INODE]:KEY name a whole
// namespace, mnt[MOUNTPOINT]:KEY one mount; restore: mnt[KEY]:PATH binds
// PATH where the mount named KEY was.
struct ExternalSpec {
	std::string kind;
	std::string inside;
	uint64_t inode = 0;  // when inside is a number
	std::string key;
};
Result<ExternalSpec> parse_external(const std::string &s);

Status write_external_ns(const ImageDir &dir, const ExternalNs &e);
Result<ExternalNs> read_external_ns(const ImageDir &dir);

// The sandbox's net, uts, ipc and mnt namespaces (in the order to enter
// them), opened.
Result<std::vector<std::pair<Fd, int>>> sandbox_namespaces(const std::string &name);
// The sandbox's cgroups; refused while a process is in them (busy). Takes
// the sandbox's clean mark away: something is about to start in it. With
// must_be_clean, refused unless the mark was there: the sandbox was
// released (criu-sandbox(8)) and nothing started in it since.
Result<CgroupTarget> sandbox_cgroups(const std::string &name, bool must_be_clean);

// --switch-deps DIR: the function's dependency directory, bound read-only
// in the sandbox where its sandbox.conf says (`deps`; criu-sandbox binds
// its --deps there). Cloned (open_tree) while criu is still in its own
// mount namespace, where DIR is a path; attached in the sandbox's.
class SandboxDeps
{
public:
	// Nothing to bind without --switch-deps.
	static Result<SandboxDeps> clone(const Options &o);
	// In the sandbox's mount namespace.
	Status attach();

private:
	Fd tree_;
	std::string at_, sandbox_;
};

// The cgroups a restore puts the tree into: the sandbox's (--switch), the
// --cgroup-root ones, or none.
Result<std::optional<CgroupTarget>> restore_cgroups(const Options &o);

// Namespaces criu enters for a restore, and leaves (back to its own) when
// this goes out of scope.
class JoinedNs
{
public:
	JoinedNs() = default;
	JoinedNs(JoinedNs &&) = default;
	~JoinedNs();
	// --switch or --inherit-fd, as the images need; also the cgroups of
	// restore_cgroups(), opened before entering any namespace.
	static Result<JoinedNs> enter(const Options &o, const ExternalNs &ext);
	// The cgroups the tree goes into, if any.
	std::optional<CgroupTarget> &cgroups() { return cgroups_; }
	// Also enters these kinds (CLONE_NEW*; net, uts, ipc, mnt) of pid's
	// namespaces.
	Status join_task(pid_t pid, unsigned long kinds);
	// The namespaces entered, in the order entered (mnt last), kind.
	const std::vector<std::pair<Fd, int>> &entered() const { return entered_; }

private:
	Status join(std::vector<std::pair<Fd, int>> targets, const std::string &whose);

	std::vector<std::pair<Fd, int>> back_;	// criu's own namespaces, kind
	std::vector<std::pair<Fd, int>> entered_;
	Fd cwd_;
	std::optional<CgroupTarget> cgroups_;
};

}  // namespace criu
