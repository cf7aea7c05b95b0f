#include "sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <optional>
#include <span>
#include <vector>

#include "log.h"
#include "magic.h"

namespace criu
{

namespace
{

// The order is CRIU's image format: an entry's index names its sysctl.
constexpr const char *kConf4[] = {
    "accept_local",
    "accept_redirects",
    "accept_source_route",
    "arp_accept",
    "arp_announce",
    "arp_filter",
    "arp_ignore",
    "arp_notify",
    "bootp_relay",
    "disable_policy",
    "disable_xfrm",
    "force_igmp_version",
    "forwarding",
    "igmpv2_unsolicited_report_interval",
    "igmpv3_unsolicited_report_interval",
    "log_martians",
    "medium_id",
    "promote_secondaries",
    "proxy_arp",
    "proxy_arp_pvlan",
    "route_localnet",
    "rp_filter",
    "secure_redirects",
    "send_redirects",
    "shared_media",
    "src_valid_mark",
    "tag",
    "ignore_routes_with_linkdown",
    "drop_gratuitous_arp",
    "drop_unicast_in_l2_multicast",
};

constexpr const char *kConf6[] = {
    "accept_dad",
    "accept_ra",
    "accept_ra_defrtr",
    "accept_ra_from_local",
    "accept_ra_min_hop_limit",
    "accept_ra_mtu",
    "accept_ra_pinfo",
    "accept_ra_rt_info_max_plen",
    "accept_ra_rtr_pref",
    "accept_redirects",
    "accept_source_route",
    "autoconf",
    "dad_transmits",
    "disable_ipv6",
    "drop_unicast_in_l2_multicast",
    "drop_unsolicited_na",
    "force_mld_version",
    "force_tllao",
    "forwarding",
    "hop_limit",
    "ignore_routes_with_linkdown",
    "keep_addr_on_down",
    "max_addresses",
    "max_desync_factor",
    "mldv1_unsolicited_report_interval",
    "mldv2_unsolicited_report_interval",
    "mtu",
    "ndisc_notify",
    "optimistic_dad",
    "proxy_ndp",
    "regen_max_retry",
    "router_probe_interval",
    "router_solicitation_delay",
    "router_solicitation_interval",
    "router_solicitations",
    "stable_secret",
    "suppress_frag_ndisc",
    "temp_prefered_lft",
    "temp_valid_lft",
    "use_oif_addrs_only",
    "use_optimistic",
    "use_tempaddr",
};

constexpr const char *kUnix[] = {"max_dgram_qlen"};

// The one string among them: an IPv6 address, unreadable (EIO) until set.
bool is_string(const char *name)
{
	return !strcmp(name, "stable_secret");
}

// A directory of sysctls ("net/ipv4/conf/lo", "net/unix"): each value is
// opened relative to it, which spares a walk from /proc per value.
struct SysctlDir {
	std::string path;
	Fd fd;

	explicit SysctlDir(std::string p) : path("/proc/sys/" + std::move(p))
	{
		fd.reset(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
	}
	static SysctlDir conf(const char *proto, const std::string &target)
	{
		return SysctlDir(strfmt("net/%s/conf/%s", proto, target.c_str()));
	}
};

// The value without its newline; nullopt if the file refuses to be read.
std::optional<std::string> read_fd(int fd)
{
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return std::nullopt;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	return std::string(buf, n);
}

// One list of entries and the storage it points into.
struct ConfSet {
	std::vector<SysctlEntry> entries;
	std::vector<SysctlEntry *> ptrs;
	std::vector<std::string> strs;

	void read(std::span<const char *const> names, const SysctlDir &dir)
	{
		entries.assign(names.size(), SysctlEntry SYSCTL_ENTRY__INIT);
		strs.assign(names.size(), std::string());  // no reallocation below: c_str()s stay
		for (size_t i = 0; i < names.size(); i++) {
			auto &e = entries[i];
			e.type = is_string(names[i]) ? SYSCTL_TYPE__CTL_STR : SYSCTL_TYPE__CTL_32;
			Fd fd(dir.fd.valid() ? openat(dir.fd.get(), names[i], O_RDONLY | O_CLOEXEC) : -1);
			auto v = fd.valid() ? read_fd(fd.get()) : std::nullopt;
			if (!v)
				continue;  // the kernel has no such sysctl, or it is unset
			if (e.type == SYSCTL_TYPE__CTL_STR) {
				strs[i] = *v;
				e.sarg = strs[i].data();
			} else {
				e.has_iarg = true;
				e.iarg = (int32_t)strtol(v->c_str(), nullptr, 10);
			}
		}
		ptrs.clear();
		for (auto &e : entries)
			ptrs.push_back(&e);
	}
};

Status write_value(const SysctlDir &dir, const char *name, const std::string &want)
{
	Fd fd(dir.fd.valid() ? openat(dir.fd.get(), name, O_RDWR | O_CLOEXEC) : -1);
	if (!fd.valid()) {
		if (errno != ENOENT)
			return sys_error("can't open %s/%s", dir.path.c_str(), name);
		pr_warn("%s/%s: not in this kernel; its value %s is not restored\n", dir.path.c_str(), name,
			want.c_str());
		return {};
	}
	auto cur = read_fd(fd.get()).value_or("(unset)");  // unreadable: stable_secret not set
	if (cur == want)
		return {};
	if (pwrite(fd.get(), want.data(), want.size(), 0) != (ssize_t)want.size())
		return sys_error("can't set %s/%s to %s (it is %s)", dir.path.c_str(), name, want.c_str(), cur.c_str());
	pr_debug("%s/%s = %s (was %s)\n", dir.path.c_str(), name, want.c_str(), cur.c_str());
	return {};
}

std::optional<std::string> value_of(const SysctlEntry &e)
{
	if (e.type == SYSCTL_TYPE__CTL_32 && e.has_iarg)
		return std::to_string(e.iarg);
	if (e.type == SYSCTL_TYPE__CTL_STR && e.sarg)
		return std::string(e.sarg);
	return std::nullopt;
}

// accept_redirects goes last: writing forwarding resets it.
Status write_set(std::span<const char *const> names, SysctlEntry *const *entries, size_t n, const SysctlDir &dir)
{
	if (n > names.size())
		pr_warn("%s: %zu sysctls in the image, %zu known: the rest are skipped\n", dir.path.c_str(), n,
			names.size());
	for (bool redirects_pass : {false, true})
		for (size_t i = 0; i < std::min(n, names.size()); i++) {
			if (!strcmp(names[i], "accept_redirects") != redirects_pass)
				continue;
			if (auto v = value_of(*entries[i]))
				TRY(write_value(dir, names[i], *v));
		}
	return {};
}

Status write_conf(const char *proto, const std::string &target, std::span<const char *const> names,
		  SysctlEntry *const *entries, size_t n)
{
	return write_set(names, entries, n, SysctlDir::conf(proto, target));
}

}  // namespace

Result<uint64_t> read_sysctl(const char *name)
{
	auto t = read_file(strfmt("/proc/sys/%s", name));
	if (!t)
		return t.error();
	auto v = parse_u64(std::string(split(*t, '\n')[0]));
	if (!v)
		return Error{strfmt("/proc/sys/%s: not a number", name)};
	return *v;
}

Status write_sysctl(const char *name, const std::string &value)
{
	Fd fd(::open(strfmt("/proc/sys/%s", name).c_str(), O_WRONLY | O_CLOEXEC));
	if (!fd.valid())
		return sys_error("can't open /proc/sys/%s", name);
	return write_all(fd.get(), value.data(), value.size(), strfmt("/proc/sys/%s", name));
}

bool has_ipv6()
{
	return access("/proc/sys/net/ipv6", F_OK) == 0;
}

struct DevConfs::Sets {
	ConfSet v4, v6;
};

DevConfs::DevConfs() : s_(std::make_unique<Sets>()) {}
DevConfs::~DevConfs() = default;
DevConfs::DevConfs(DevConfs &&) noexcept = default;

void DevConfs::fill(NetDeviceEntry &e)
{
	e.n_conf4 = s_->v4.ptrs.size();
	e.conf4 = s_->v4.ptrs.data();
	e.n_conf6 = s_->v6.ptrs.size();
	e.conf6 = s_->v6.ptrs.data();
}

DevConfs DevConfs::read(const std::string &dev)
{
	DevConfs c;
	c.s_->v4.read(kConf4, SysctlDir::conf("ipv4", dev));
	if (has_ipv6())
		c.s_->v6.read(kConf6, SysctlDir::conf("ipv6", dev));
	return c;
}

Status dump_netns_confs(const ImageDir &dir, uint32_t id)
{
	ConfSet all4, def4, all6, def6, unix_conf;
	all4.read(kConf4, SysctlDir::conf("ipv4", "all"));
	def4.read(kConf4, SysctlDir::conf("ipv4", "default"));
	if (has_ipv6()) {
		all6.read(kConf6, SysctlDir::conf("ipv6", "all"));
		def6.read(kConf6, SysctlDir::conf("ipv6", "default"));
	}
	unix_conf.read(kUnix, SysctlDir("net/unix"));
	NetnsEntry e = NETNS_ENTRY__INIT;
	e.n_all_conf4 = all4.ptrs.size(), e.all_conf4 = all4.ptrs.data();
	e.n_def_conf4 = def4.ptrs.size(), e.def_conf4 = def4.ptrs.data();
	e.n_all_conf6 = all6.ptrs.size(), e.all_conf6 = all6.ptrs.data();
	e.n_def_conf6 = def6.ptrs.size(), e.def_conf6 = def6.ptrs.data();
	e.n_unix_conf = unix_conf.ptrs.size(), e.unix_conf = unix_conf.ptrs.data();
	return write_one(dir, strfmt("netns-%u.img", id), NETNS_MAGIC, &e.base);
}

Status restore_netns_confs(const ImageDir &dir, uint32_t id)
{
	auto name = strfmt("netns-%u.img", id);
	if (faccessat(dir.fd(), name.c_str(), F_OK, 0) < 0) {
		pr_info("%s: no net sysctls in the dump; the new namespace keeps its own\n", name.c_str());
		return {};
	}
	auto e = read_one<NetnsEntry>(dir, name, NETNS_MAGIC, netns_entry__descriptor);
	if (!e)
		return e.error();
	auto &n = **e;
	TRY(write_conf("ipv4", "all", kConf4, n.all_conf4, n.n_all_conf4));
	TRY(write_conf("ipv4", "default", kConf4, n.def_conf4, n.n_def_conf4));
	if (n.n_all_conf6 || n.n_def_conf6) {
		if (!has_ipv6())
			return Error{name + ": the dump has IPv6 sysctls, this kernel has no IPv6"};
		TRY(write_conf("ipv6", "all", kConf6, n.all_conf6, n.n_all_conf6));
		TRY(write_conf("ipv6", "default", kConf6, n.def_conf6, n.n_def_conf6));
	}
	return write_set(kUnix, n.unix_conf, n.n_unix_conf, SysctlDir("net/unix"));
}

Status restore_dev_confs(const NetDeviceEntry &e)
{
	TRY(write_conf("ipv4", e.name, kConf4, e.conf4, e.n_conf4));
	if (e.n_conf6 && has_ipv6())
		TRY(write_conf("ipv6", e.name, kConf6, e.conf6, e.n_conf6));
	return {};
}

}  // namespace criu
